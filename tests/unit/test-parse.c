/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit test of common/parse.c: safe_atou64/safe_atou32 take the whole string or nothing; parse_size
 * takes k/m/g/t (either case, optional "b"/"ib") as powers of 1024, fractions with a suffix (rounded
 * down to whole bytes), and refuses overflow and junk.
 * Output is TAP.
 */
#include <stdint.h>

#include "macro.h"
#include "parse.h"
#include "tap.h"

static int test_atou(void) {
        uint64_t v;
        uint32_t w;

        CHECK_EQ(safe_atou64("0", &v), 0);
        CHECK_U64(v, 0);
        CHECK_EQ(safe_atou64("18446744073709551615", &v), 0);
        CHECK_U64(v, UINT64_MAX);
        CHECK_EQ(safe_atou64("18446744073709551616", &v), -ERANGE);
        CHECK_EQ(safe_atou64("", &v), -EINVAL);
        CHECK_EQ(safe_atou64("-1", &v), -EINVAL);
        CHECK_EQ(safe_atou64(" 1", &v), -EINVAL);
        CHECK_EQ(safe_atou64("1 ", &v), -EINVAL);
        CHECK_EQ(safe_atou64("12x", &v), -EINVAL);
        CHECK_EQ(safe_atou64(NULL, &v), -EINVAL);
        CHECK_EQ(safe_atou32("4294967295", &w), 0);
        CHECK_U64(w, UINT32_MAX);
        CHECK_EQ(safe_atou32("4294967296", &w), -ERANGE);
        return 0;
}

static int test_size(void) {
        static const struct {
                const char *s;
                uint64_t v;
        } good[] = {
                { "0", 0 },
                { "123", 123 },
                { "1k", 1024 },
                { "1K", 1024 },
                { "64m", 64 << 20 },
                { "64MiB", 64 << 20 },
                { "64MB", 64 << 20 },
                { "2g", UINT64_C(2) << 30 },
                { "1T", UINT64_C(1) << 40 },
                { "16777215T", UINT64_C(16777215) << 40 },
                { "1.5g", UINT64_C(3) << 29 },
                { "1.5G", UINT64_C(3) << 29 },
                { "0.5k", 512 },
                { "2.25MiB", UINT64_C(9) << 18 },
                { "100.0m", UINT64_C(100) << 20 },
                { "0.1k", 102 },                /* 102.4: rounded down */
                { "0.000001t", 1099511 },       /* six decimals at most */
                { "16777215.999999T", (UINT64_C(16777215) << 40) + UINT64_C(999999) * (UINT64_C(1) << 40) / 1000000 },
        };
        static const char *const bad[] = {
                "", "k", "-1", "1x", "1kk", "1 k", "1kiBs", " 1",
                "1.5",          /* a fraction of a byte */
                "1.", "1.k", ".5g", "1..5g", "1.5.g", "1,5g", "1.-5g",
                "0.0000001t",   /* seven decimals */
                "1.5 g", "1e3k",
        };
        uint64_t v;

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                v = 0;
                CHECK_EQ(parse_size(good[i].s, &v), 0);
                CHECK_U64(v, good[i].v);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                v = 42;
                CHECK_EQ(parse_size(bad[i], &v), -EINVAL);
                CHECK_U64(v, 42); /* untouched on failure */
        }
        CHECK_EQ(parse_size("16777216T", &v), -ERANGE);
        CHECK_EQ(parse_size("16777215.9999999T", &v), -EINVAL);
        CHECK_EQ(parse_size("17179869183.999999g", &v), 0); /* just below 2^64 */
        CHECK_EQ(parse_size("18446744073709551615", &v), 0);
        CHECK_U64(v, UINT64_MAX);
        CHECK_EQ(parse_size("99999999999999999999", &v), -ERANGE);
        CHECK_EQ(parse_size(NULL, &v), -EINVAL);
        return 0;
}

static int test_format(void) {
        char buf[FORMAT_SIZE_MAX];

        CHECK_STREQ(format_size(0, buf, sizeof buf), "0 bytes");
        CHECK_STREQ(format_size(1000, buf, sizeof buf), "1000 bytes");
        CHECK_STREQ(format_size(1024, buf, sizeof buf), "1 KiB");
        CHECK_STREQ(format_size(UINT64_C(2) << 30, buf, sizeof buf), "2 GiB");
        CHECK_STREQ(format_size(UINT64_C(3) << 29, buf, sizeof buf), "1536 MiB");
        CHECK_STREQ(format_size(UINT64_C(1) << 50, buf, sizeof buf), "1024 TiB");
        CHECK_STREQ(format_size(UINT64_MAX, buf, sizeof buf), "18446744073709551615 bytes");
        return 0;
}

int main(void) {
        static const TapTest tests[] = {
                TAP_TEST(atou),
                TAP_TEST(size),
                TAP_TEST(format),
        };
        return tap_run(tests, ELEMENTSOF(tests));
}
