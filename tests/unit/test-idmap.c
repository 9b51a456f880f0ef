/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit test of unionfs/idmap.c: the "FROM:TO:COUNT[:...]" grammar (on-disk FROM is shown as TO),
 * its rejections (empty fields, partial ranges, count 0, overlap on either side, 32-bit overflow,
 * too many ranges), and the mapping in both directions with the overflow id for unmapped ids.
 * Pure logic, no privileges. Output is TAP.
 */
#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "tap.h"
#include "unionfs/idmap.h"

#define OVERFLOW IDMAP_OVERFLOW_ID

/* A map filled with garbage, to see that a failed parse does not write *ret. */
static void poison(IdMap *m) {
        memset(m, 0xA5, sizeof *m);
}

static bool is_poisoned(const IdMap *m) {
        const unsigned char *p = (const unsigned char *) m;
        for (size_t i = 0; i < sizeof *m; i++)
                if (p[i] != 0xA5)
                        return false;
        return true;
}

/* Parse S, expect error R, and expect the output untouched. */
static int expect_reject(const char *s, int r) {
        IdMap m;
        poison(&m);
        int got = idmap_parse(s, &m);
        if (got != r) {
                printf("# idmap_parse(\"%s\") = %d (%s), expected %d (%s)\n", s ? s : "(null)", got,
                       tap_errname(got), r, tap_errname(r));
                return -1;
        }
        if (!is_poisoned(&m)) {
                printf("# idmap_parse(\"%s\") failed but wrote *ret\n", s ? s : "(null)");
                return -1;
        }
        return 0;
}

#define REJECT(s, r) CHECK(expect_reject((s), (r)) == 0)

static int test_single_range(void) {
        IdMap m;
        poison(&m);
        CHECK_EQ(idmap_parse("0:1000:1", &m), 0);
        CHECK_EQ(m.n_ranges, 1);
        CHECK_U64(m.ranges[0].disk, 0);
        CHECK_U64(m.ranges[0].shown, 1000);
        CHECK_U64(m.ranges[0].count, 1);

        /* on-disk 0 is shown as 1000, and a caller 1000 is stored as 0 */
        CHECK_U64(idmap_to_shown(&m, 0), 1000);
        CHECK_U64(idmap_to_disk(&m, 1000), 0);
        /* everything else is unmapped in its direction */
        CHECK_U64(idmap_to_shown(&m, 1), OVERFLOW);
        CHECK_U64(idmap_to_shown(&m, 1000), OVERFLOW);
        CHECK_U64(idmap_to_disk(&m, 0), OVERFLOW);
        CHECK_U64(idmap_to_disk(&m, 1001), OVERFLOW);
        CHECK_U64(idmap_to_disk(&m, 999), OVERFLOW);
        CHECK_U64(idmap_to_shown(&m, UINT32_MAX), OVERFLOW);
        return 0;
}

static int test_several_ranges(void) {
        IdMap m;
        /* the usual rootless layout: root to the user, the rest to a subordinate range */
        CHECK_EQ(idmap_parse("0:1000:1:1:100000:65536", &m), 0);
        CHECK_EQ(m.n_ranges, 2);
        CHECK_U64(m.ranges[1].disk, 1);
        CHECK_U64(m.ranges[1].shown, 100000);
        CHECK_U64(m.ranges[1].count, 65536);

        CHECK_U64(idmap_to_shown(&m, 0), 1000);
        CHECK_U64(idmap_to_shown(&m, 1), 100000);
        CHECK_U64(idmap_to_shown(&m, 65536), 165535);
        CHECK_U64(idmap_to_shown(&m, 65537), OVERFLOW);
        CHECK_U64(idmap_to_disk(&m, 100000), 1);
        CHECK_U64(idmap_to_disk(&m, 165535), 65536);
        CHECK_U64(idmap_to_disk(&m, 165536), OVERFLOW);
        CHECK_U64(idmap_to_disk(&m, 99999), OVERFLOW);
        CHECK_U64(idmap_to_disk(&m, 1000), 0);
        return 0;
}

static int test_leading_zeros(void) {
        IdMap m;
        CHECK_EQ(idmap_parse("010:0020:03", &m), 0); /* decimal, not octal */
        CHECK_U64(m.ranges[0].disk, 10);
        CHECK_U64(m.ranges[0].shown, 20);
        CHECK_U64(m.ranges[0].count, 3);
        return 0;
}

static int test_identity_when_empty(void) {
        IdMap m = {};
        CHECK_U64(idmap_to_shown(&m, 0), 0);
        CHECK_U64(idmap_to_shown(&m, 12345), 12345);
        CHECK_U64(idmap_to_shown(&m, UINT32_MAX), UINT32_MAX);
        CHECK_U64(idmap_to_disk(&m, 0), 0);
        CHECK_U64(idmap_to_disk(&m, 65534), 65534);
        CHECK_U64(idmap_to_disk(&m, UINT32_MAX), UINT32_MAX);
        return 0;
}

static int test_empty_and_missing_fields(void) {
        REJECT(NULL, -EINVAL);
        REJECT("", -EINVAL);
        REJECT(":", -EINVAL);
        REJECT("::", -EINVAL);
        REJECT("0::1", -EINVAL);        /* strtok_r would see "0:1": must not */
        REJECT("0:1000:1:", -EINVAL);   /* trailing ':' */
        REJECT(":0:1000:1", -EINVAL);   /* leading ':' */
        REJECT("0:1000:1::1:2000:1", -EINVAL);
        REJECT("0:1000:1:::1:2000:1", -EINVAL);
        REJECT("0", -EINVAL);
        REJECT("0:1000", -EINVAL);      /* partial range */
        REJECT("0:1000:1:5", -EINVAL);
        REJECT("0:1000:1:5:6", -EINVAL);
        return 0;
}

static int test_not_numbers(void) {
        REJECT("a:b:c", -EINVAL);
        REJECT("-1:0:1", -EINVAL);
        REJECT("+1:0:1", -EINVAL);
        REJECT(" 1:0:1", -EINVAL);
        REJECT("1 :0:1", -EINVAL);
        REJECT("1:0:1 ", -EINVAL);
        REJECT("0x10:0:1", -EINVAL);
        REJECT("1,2:0:1", -EINVAL);     /* the -o list separator never reaches us, but still */
        REJECT("1:0:1\n", -EINVAL);
        return 0;
}

static int test_count_zero(void) {
        REJECT("0:1000:0", -EINVAL);
        REJECT("0:1000:1:5:2000:0", -EINVAL);
        return 0;
}

static int test_overlap(void) {
        IdMap m;
        /* on-disk side overlaps */
        REJECT("0:1000:10:5:2000:10", -EINVAL);
        REJECT("5:2000:10:0:1000:10", -EINVAL);
        REJECT("0:1000:10:9:2000:1", -EINVAL);
        REJECT("0:1000:1:0:2000:1", -EINVAL);
        /* shown side overlaps */
        REJECT("0:1000:10:100:1005:10", -EINVAL);
        REJECT("100:1005:10:0:1000:10", -EINVAL);
        REJECT("0:1000:10:100:1009:1", -EINVAL);
        /* one range containing another */
        REJECT("0:0:100:50:500:1", -EINVAL);
        REJECT("50:500:1:0:0:100", -EINVAL);
        /* overlap with the first of several */
        REJECT("0:0:10:100:100:10:200:5:1", -EINVAL);
        /* adjacent is fine on both sides */
        CHECK_EQ(idmap_parse("0:1000:10:10:1010:10", &m), 0);
        CHECK_EQ(m.n_ranges, 2);
        CHECK_U64(idmap_to_shown(&m, 9), 1009);
        CHECK_U64(idmap_to_shown(&m, 10), 1010);
        CHECK_U64(idmap_to_disk(&m, 1019), 19);
        /* crossing (disk of one = shown of another) is not an overlap */
        CHECK_EQ(idmap_parse("0:1:1:1:0:1", &m), 0);
        CHECK_U64(idmap_to_shown(&m, 0), 1);
        CHECK_U64(idmap_to_shown(&m, 1), 0);
        CHECK_U64(idmap_to_disk(&m, 0), 1);
        CHECK_U64(idmap_to_disk(&m, 1), 0);
        return 0;
}

static int test_overflow(void) {
        IdMap m;
        /* numbers beyond 32 bits */
        REJECT("4294967296:0:1", -ERANGE);
        REJECT("0:4294967296:1", -ERANGE);
        REJECT("0:0:4294967296", -ERANGE);
        REJECT("99999999999999999999999:0:1", -ERANGE);
        /* ranges running past UINT32_MAX */
        REJECT("4294967295:0:2", -ERANGE);
        REJECT("0:4294967295:2", -ERANGE);
        REJECT("4294967000:0:4294967295", -ERANGE);
        REJECT("2:0:4294967295", -ERANGE);
        REJECT("0:2:4294967295", -ERANGE);

        /* ranges ending exactly at UINT32_MAX are fine */
        CHECK_EQ(idmap_parse("4294967295:0:1", &m), 0);
        CHECK_U64(idmap_to_shown(&m, UINT32_MAX), 0);
        CHECK_U64(idmap_to_disk(&m, 0), UINT32_MAX);
        CHECK_U64(idmap_to_shown(&m, UINT32_MAX - 1), OVERFLOW);

        CHECK_EQ(idmap_parse("0:4294967295:1", &m), 0);
        CHECK_U64(idmap_to_shown(&m, 0), UINT32_MAX);
        CHECK_U64(idmap_to_disk(&m, UINT32_MAX), 0);
        CHECK_U64(idmap_to_disk(&m, UINT32_MAX - 1), OVERFLOW);

        CHECK_EQ(idmap_parse("4294967290:10:6", &m), 0);
        CHECK_U64(idmap_to_shown(&m, 4294967290u), 10);
        CHECK_U64(idmap_to_shown(&m, UINT32_MAX), 15);
        CHECK_U64(idmap_to_disk(&m, 15), UINT32_MAX);
        CHECK_U64(idmap_to_disk(&m, 16), OVERFLOW);
        CHECK_U64(idmap_to_disk(&m, 9), OVERFLOW);

        /* the largest single range */
        CHECK_EQ(idmap_parse("0:0:4294967295", &m), 0);
        CHECK_U64(idmap_to_shown(&m, 4294967294u), 4294967294u);
        CHECK_U64(idmap_to_shown(&m, UINT32_MAX), OVERFLOW);
        CHECK_EQ(idmap_parse("1:1:4294967295", &m), 0);
        CHECK_U64(idmap_to_shown(&m, UINT32_MAX), UINT32_MAX);
        CHECK_U64(idmap_to_shown(&m, 0), OVERFLOW);
        return 0;
}

static int append_range(char *buf, size_t size, size_t *len, unsigned a, unsigned b, unsigned c) {
        int k = snprintf(buf + *len, size - *len, "%s%u:%u:%u", *len ? ":" : "", a, b, c);
        if (k < 0 || (size_t) k >= size - *len)
                return -1;
        *len += (size_t) k;
        return 0;
}

static int test_too_many_ranges(void) {
        char buf[4096];
        size_t len = 0;
        IdMap m;

        for (unsigned i = 0; i < IDMAP_MAX_RANGES; i++)
                CHECK_EQ(append_range(buf, sizeof buf, &len, i * 10, 100000 + i * 10, 10), 0);
        CHECK_EQ(idmap_parse(buf, &m), 0);
        CHECK_EQ(m.n_ranges, IDMAP_MAX_RANGES);
        CHECK_U64(idmap_to_shown(&m, 635), 100635);
        CHECK_U64(idmap_to_disk(&m, 100639), 639);
        CHECK_U64(idmap_to_shown(&m, 640), OVERFLOW);

        CHECK_EQ(append_range(buf, sizeof buf, &len, 640, 200000, 1), 0);
        REJECT(buf, -E2BIG);
        return 0;
}

static int test_round_trip(void) {
        static const char *const maps[] = {
                "0:1000:1:1:100000:65536",
                "0:1:1:1:0:1",
                "4294967290:10:6:10:4294967290:6",
                "0:0:4294967295",
                "100:0:50:0:100:50",
        };
        for (size_t k = 0; k < ELEMENTSOF(maps); k++) {
                IdMap m;
                CHECK_EQ(idmap_parse(maps[k], &m), 0);
                for (size_t i = 0; i < m.n_ranges; i++) {
                        const IdRange *g = &m.ranges[i];
                        uint32_t probes[] = { g->disk, g->disk + g->count / 2, g->disk + (g->count - 1) };
                        for (size_t j = 0; j < ELEMENTSOF(probes); j++) {
                                uint32_t x = probes[j], s = idmap_to_shown(&m, x);
                                CHECK_U64(s, g->shown + (x - g->disk));
                                CHECK_U64(idmap_to_disk(&m, s), x);
                        }
                }
        }
        return 0;
}

int main(void) {
        static const TapTest tests[] = {
                TAP_TEST(single_range),
                TAP_TEST(several_ranges),
                TAP_TEST(leading_zeros),
                TAP_TEST(identity_when_empty),
                TAP_TEST(empty_and_missing_fields),
                TAP_TEST(not_numbers),
                TAP_TEST(count_zero),
                TAP_TEST(overlap),
                TAP_TEST(overflow),
                TAP_TEST(too_many_ranges),
                TAP_TEST(round_trip),
        };
        return tap_run(tests, ELEMENTSOF(tests));
}
