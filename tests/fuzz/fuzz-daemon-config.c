/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for sandboxd's configuration parser (config_parse(), what /etc/sandboxd.conf holds).
 * The input is the file's text. Whatever it is, the parser must not crash, must either accept it with
 * every value inside the range sandboxd(8) documents, or refuse it with -EINVAL and a message naming
 * the file; strings it keeps are NUL-terminated within their buffers.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon-config.h"
#include "fuzz.h"

#define FUZZ_MAX_INPUT 8192

static bool terminated(const char *s, size_t size) {
        return memchr(s, '\0', size) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        DaemonConfig c;
        char err[512];
        int r;

        if (size > FUZZ_MAX_INPUT)
                return 0;
        config_init(&c);
        err[0] = '\0';
        r = config_parse((const char *) data, size, "fuzz.conf", &c, err, sizeof err);
        if (r < 0) {
                ASSERT(r == -EINVAL || r == -ENOMEM);
                ASSERT(strncmp(err, "fuzz.conf", 9) == 0);
                return 0;
        }
        ASSERT(c.max_connections >= 1 && c.max_connections <= 65536);
        ASSERT(c.max_connections_per_uid >= 1 && c.max_connections_per_uid <= 65536);
        ASSERT(c.max_starts >= 1 && c.max_starts <= CONFIG_MAX_STARTS_LIMIT);
        ASSERT(c.max_starts_per_uid >= 1 && c.max_starts_per_uid <= CONFIG_MAX_STARTS_LIMIT);
        ASSERT(c.max_buffer_per_uid >= CONFIG_MIN_BUFFER_PER_UID);
        ASSERT(c.max_sandboxes >= 1 && c.max_sandboxes <= 65536);
        ASSERT(c.max_per_client >= 1 && c.max_per_client <= 65536);
        ASSERT(c.n_allow_users <= CONFIG_MAX_IDS && c.n_allow_groups <= CONFIG_MAX_IDS);
        /* The caps: in range, or unlimited; a per-uid total never below its per-sandbox cap. */
        ASSERT(c.max_timeout_usec == SPEC_UNLIMITED ||
               (c.max_timeout_usec >= 1000000 && c.max_timeout_usec <= UINT64_C(365) * 24 * 3600 * 1000000));
        ASSERT(c.max_memory >= (1 << 20) && c.max_disk >= (1 << 20));
        ASSERT(c.max_pids >= 1 && (c.max_pids <= 4194304 || c.max_pids == SPEC_UNLIMITED));
        ASSERT(c.max_disk_inodes >= 1);
        ASSERT(c.max_memory == SPEC_UNLIMITED || c.max_memory_per_client >= c.max_memory);
        ASSERT(c.max_pids == SPEC_UNLIMITED || c.max_pids_per_client >= c.max_pids);
        ASSERT(c.max_disk == SPEC_UNLIMITED || c.max_disk_per_client >= c.max_disk);
        ASSERT(terminated(c.unionfs, sizeof c.unionfs));
        ASSERT(c.unionfs[0] == '\0' || c.unionfs[0] == '/');
        ASSERT(terminated(c.net.bridge, sizeof c.net.bridge));
        ASSERT(terminated(c.net.isolated_bridge, sizeof c.net.isolated_bridge));
        ASSERT(terminated(c.net.table, sizeof c.net.table));
        ASSERT(!c.id_base || !c.id_ranges || (uint64_t) c.id_base + (uint64_t) c.id_ranges * 65536 <= UINT32_MAX);
        /* The network settings: what the runtime would be given passes its own check. */
        {
                const char *e = NULL;
                ASSERT(net_config_validate(&c.net, &e) == 0);
        }
        ASSERT(c.net.n_pool <= NET_POOL_MAX && c.net.n_egress_allow <= NET_EGRESS_MAX &&
               c.net.n_egress_deny <= NET_EGRESS_MAX);
        ASSERT(c.min_published_port >= 1 && c.min_published_port <= 65535);
        ASSERT(terminated(c.net.resolv_conf, sizeof c.net.resolv_conf) && c.net.resolv_conf[0] == '/');
        ASSERT(terminated(c.net.resolv_conf_upstream, sizeof c.net.resolv_conf_upstream) &&
               c.net.resolv_conf_upstream[0] == '/');
        return 0;
}
