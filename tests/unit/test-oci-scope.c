/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandbox-oci --systemd-cgroup: linux.cgroupsPath in systemd's form (slice:prefix:name) becomes the scope
 * PREFIX-NAME.scope in SLICE (oci/systemd-cgroup.c); the defaults; refusals that say what is wrong.
 */
#include <string.h>

#include "macro.h"
#include "systemd-cgroup.h"
#include "tap.h"

static int test_forms(void) {
        static const struct {
                const char *path, *slice, *unit;
        } cases[] = {
                { "machine.slice:libpod:abc", "machine.slice", "libpod-abc.scope" },
                { ":cri-containerd:0123", "system.slice", "cri-containerd-0123.scope" },
                { "kubepods-besteffort.slice:cri-containerd:x", "kubepods-besteffort.slice", "cri-containerd-x.scope" },
                { "system.slice::plain", "system.slice", "plain.scope" },
                { NULL, "system.slice", "sandbox-oci-ctr1.scope" },
                { "", "system.slice", "sandbox-oci-ctr1.scope" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                OciScope s;
                char err[256];
                CHECK_EQ(oci_systemd_scope_parse(cases[i].path, "ctr1", &s, err, sizeof err), 0);
                CHECK_STREQ(s.slice, cases[i].slice);
                CHECK_STREQ(s.unit, cases[i].unit);
        }
        return 0;
}

static int test_refusals(void) {
        static const struct {
                const char *path, *want;
        } cases[] = {
                { "/libpod_parent/x", "not systemd's form" },
                { "a:b", "not systemd's form" },
                { "a.slice:b:c:d", "not systemd's form" },
                { "machine:libpod:x", "not a slice name" },
                { "../x.slice:p:n", "not a slice name" },
                { "machine.slice:p:n/../../x", "not a unit name" },
                { "machine.slice:p:sub.slice", "is a slice" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                OciScope s;
                char err[256] = "";
                CHECK_EQ(oci_systemd_scope_parse(cases[i].path, "ctr1", &s, err, sizeof err), -EINVAL);
                CHECK(strstr(err, cases[i].want));
        }
        /* a name longer than a unit name may be */
        char longname[400];
        memset(longname, 'n', sizeof longname - 1);
        longname[sizeof longname - 1] = '\0';
        char path[512], err[256];
        OciScope s;
        snprintf(path, sizeof path, "system.slice:p:%s", longname);
        CHECK_EQ(oci_systemd_scope_parse(path, "ctr1", &s, err, sizeof err), -EINVAL);
        CHECK(strstr(err, "not a unit name"));
        return 0;
}

int main(void) {
        static const TapTest tests[] = {
                TAP_TEST(forms),
                TAP_TEST(refusals),
        };
        return tap_run(tests, ELEMENTSOF(tests));
}
