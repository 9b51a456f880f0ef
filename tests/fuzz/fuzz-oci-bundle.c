/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for sandbox-oci's config.json parser (oci/bundle.c): the bundle an engine hands the runtime.
 * Beyond "no crash": a document that parses gives a spec that passes spec_validate(), with a command, an
 * absolute working directory and root, counts within the bounds, and every hook an absolute path.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oci/bundle.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        OciBundle b = {};
        char err[1024];
        const char *verr = NULL;

        if (oci_bundle_parse((const char *) data, size, "/bundle", &b, err, sizeof err) < 0) {
                ASSERT(strlen(err) > 0);
                return 0;
        }
        ASSERT(spec_validate(&b.spec, &verr) == 0);
        ASSERT(b.spec.n_argv >= 1 && b.spec.argv[0][0] != '\0');
        ASSERT(b.spec.workdir && b.spec.workdir[0] == '/');
        ASSERT(b.root && b.root[0] == '/' && b.spec.image && strcmp(b.root, b.spec.image) == 0);
        ASSERT(b.n_masked <= OCI_PATHS_MAX && b.n_readonly <= OCI_PATHS_MAX && b.n_sysctl <= OCI_SYSCTL_MAX);
        /* cpuset and io: lists the kernel takes, a weight in range, at most CGROUP_IO_DEVICES_MAX devices, each with a
         * bound. */
        ASSERT(!b.cpuset_io.cpus[0] || cgroup_cpuset_list_valid(b.cpuset_io.cpus));
        ASSERT(!b.cpuset_io.mems[0] || cgroup_cpuset_list_valid(b.cpuset_io.mems));
        ASSERT(b.cpuset_io.io_weight == 0 || (b.cpuset_io.io_weight >= 10 && b.cpuset_io.io_weight <= 1000));
        ASSERT(b.cpuset_io.n_devices <= CGROUP_IO_DEVICES_MAX);
        for (size_t i = 0; i < b.cpuset_io.n_devices; i++) {
                const CgroupIoDevice *d = &b.cpuset_io.devices[i];
                ASSERT(d->rbps || d->wbps || d->riops || d->wiops);
        }
        ASSERT(b.has_cpuset_io ==
               (b.cpuset_io.cpus[0] || b.cpuset_io.mems[0] || b.cpuset_io.io_weight || b.cpuset_io.n_devices));
        for (size_t i = 0; i < b.n_masked; i++)
                ASSERT(b.masked[i][0] == '/');
        for (int k = 0; k < _OCI_HOOK_MAX; k++) {
                ASSERT(b.n_hooks[k] <= OCI_HOOKS_MAX);
                for (size_t i = 0; i < b.n_hooks[k]; i++)
                        ASSERT(b.hooks[k][i].path[0] == '/');
        }
        ASSERT(b.umask >= -1 && b.umask <= 0777);
        oci_bundle_done(&b);
        return 0;
}
