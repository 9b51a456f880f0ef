/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stddef.h>
#include <pwd.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "daemon-config.h"
#include "fs.h"
#include "macro.h"
#include "parse.h"
#include "ref.h"
#include "spec.h"

void config_init(DaemonConfig *c) {
        *c = (DaemonConfig) {
                .max_per_client = 16,
                .max_created_per_uid = CONFIG_DEFAULT_MAX_CREATED_PER_UID,
                .max_snapshots_per_uid = CONFIG_DEFAULT_MAX_SNAPSHOTS_PER_UID,
                .max_snapshot_size = CONFIG_DEFAULT_MAX_SNAPSHOT_SIZE,
                .max_volumes_per_uid = CONFIG_DEFAULT_MAX_VOLUMES_PER_UID,
                .max_volume_size = CONFIG_DEFAULT_MAX_VOLUME_SIZE,
                .max_sandboxes = 256,
                .max_connections = CONFIG_DEFAULT_MAX_CONNECTIONS,
                .max_connections_per_uid = CONFIG_DEFAULT_MAX_CONNECTIONS_PER_UID,
                .max_buffer_per_uid = CONFIG_DEFAULT_MAX_BUFFER_PER_UID,
                .max_starts = CONFIG_DEFAULT_MAX_STARTS,
                .max_starts_per_uid = CONFIG_DEFAULT_MAX_STARTS_PER_UID,
                .min_published_port = 1024,
                .max_memory = SPEC_DEFAULT_MEMORY,
                .max_pids = SPEC_DEFAULT_PIDS,
                .max_timeout_usec = SPEC_DEFAULT_CLIENT_TIMEOUT_USEC,
                .max_ttl_usec = CONFIG_DEFAULT_MAX_TTL_USEC,
                .max_disk = SPEC_DEFAULT_DISK,
                .max_disk_inodes = SPEC_DEFAULT_DISK_INODES,
                .max_memory_per_client = CONFIG_DEFAULT_MEMORY_PER_CLIENT,
                .max_pids_per_client = CONFIG_DEFAULT_PIDS_PER_CLIENT,
                .max_disk_per_client = CONFIG_DEFAULT_DISK_PER_CLIENT,
                .pool_size = CONFIG_DEFAULT_POOL_SIZE,
                .pool_per_shape = CONFIG_DEFAULT_POOL_PER_SHAPE,
                .pool_memory = CONFIG_DEFAULT_POOL_MEMORY,
                .pool_idle_usec = CONFIG_DEFAULT_POOL_IDLE_USEC,
                .pool_max_age_usec = CONFIG_DEFAULT_POOL_MAX_AGE_USEC,
        };
        net_config_init(&c->net);
        /* The daemon's configuration decides the rules of its bridges (sandbox-run keeps them). */
        c->net.replace_rules = true;
}

/* Space- or comma-separated CIDRs appended to LIST (at most MAX in all). */
static int parse_cidrs(char *v, NetCidr *list, size_t *n, size_t max) {
        char *save = NULL;
        for (char *w = strtok_r(v, " \t,", &save); w; w = strtok_r(NULL, " \t,", &save)) {
                if (*n >= max)
                        return -E2BIG;
                if (net_cidr_parse(w, &list[*n]) < 0)
                        return -EINVAL;
                (*n)++;
        }
        return 0;
}

/* "10.88.0.0/16" */
static int parse_subnet(const char *v, struct in_addr *ret_addr, unsigned *ret_prefixlen) {
        char buf[32];
        char *slash;
        uint32_t p;

        if (strlen(v) >= sizeof buf)
                return -EINVAL;
        strcpy(buf, v);
        slash = strchr(buf, '/');
        if (!slash)
                return -EINVAL;
        *slash++ = '\0';
        if (inet_pton(AF_INET, buf, ret_addr) != 1 || safe_atou32(slash, &p) < 0 || p > 32)
                return -EINVAL;
        *ret_prefixlen = p;
        return 0;
}

static char *strip(char *s) {
        char *e;
        while (*s == ' ' || *s == '\t')
                s++;
        e = s + strlen(s);
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
                *--e = '\0';
        return s;
}

/* Capability names separated by blanks or commas (ALL, or NONE alone), added to *RET. */
static int parse_caps(char *v, uint64_t *ret) {
        uint64_t mask = 0;
        size_t n = 0;
        int cap;

        for (char *save = NULL, *w = strtok_r(v, " \t,", &save); w; w = strtok_r(NULL, " \t,", &save), n++) {
                if (strcasecmp(w, "all") == 0)
                        mask = SPEC_CAPS_ALL;
                else if (strcasecmp(w, "none") == 0)
                        continue;
                else if (spec_cap_from_string(w, &cap) < 0)
                        return -EINVAL;
                else
                        mask |= SPEC_CAP(cap);
        }
        if (n == 0)
                return -EINVAL;
        *ret |= mask;
        return 0;
}

static int parse_bool(const char *v, bool *ret) {
        if (streq(v, "yes") || streq(v, "true") || streq(v, "1"))
                *ret = true;
        else if (streq(v, "no") || streq(v, "false") || streq(v, "0"))
                *ret = false;
        else
                return -EINVAL;
        return 0;
}

/* Space-separated names or numbers. */
static int parse_ids(char *v, bool groups, uint32_t *ids, size_t *n) {
        char *save = NULL;
        for (char *w = strtok_r(v, " \t,", &save); w; w = strtok_r(NULL, " \t,", &save)) {
                uint32_t id;
                if (safe_atou32(w, &id) < 0) {
                        if (groups) {
                                struct group *g = getgrnam(w);
                                if (!g)
                                        return -ENOENT;
                                id = g->gr_gid;
                        } else {
                                struct passwd *p = getpwnam(w);
                                if (!p)
                                        return -ENOENT;
                                id = p->pw_uid;
                        }
                }
                if (*n >= CONFIG_MAX_IDS)
                        return -E2BIG;
                ids[(*n)++] = id;
        }
        return 0;
}

const char *config_allow_image(const DaemonConfig *c, size_t i) {
        const char *p = c->allow_images;

        assert(i < c->n_allow_images);
        for (; i > 0; i--)
                p += strlen(p) + 1;
        return p;
}

/* An image ID as the store takes one: "sha256:" and 64 hex digits, or 4 to 64 hex digits (a prefix). */
static bool is_image_id(const char *s) {
        const char *hex = startswith(s, "sha256:") ?: s;
        size_t n = strlen(hex);

        return n >= 4 && n <= 64 && strspn(hex, "0123456789abcdef") == n && (hex == s || n == 64);
}

/* allow-images: references or image IDs, separated by spaces or commas; "none" alone for none. */
static int parse_allow_images(char *v, DaemonConfig *c, const char **ret_word, const char **ret_why) {
        char *save = NULL;
        size_t used = 0;

        for (size_t i = 0; i < c->n_allow_images; i++)
                used += strlen(config_allow_image(c, i)) + 1;
        if (streq(v, "none")) {
                if (c->allow_images_set && c->n_allow_images > 0)
                        return -EINVAL;
                c->allow_images_set = true;
                return 0;
        }
        if (c->allow_images_set && c->n_allow_images == 0)
                return -EINVAL; /* after "none" */
        if (!v[strspn(v, " \t,")])
                return -ENODATA;
        for (char *w = strtok_r(v, " \t,", &save); w; w = strtok_r(NULL, " \t,", &save)) {
                size_t n = strlen(w);
                if (image_ref_check(w) && !is_image_id(w)) {
                        *ret_word = w;
                        *ret_why = image_ref_check(w);
                        return -EBADMSG;
                }
                if (c->n_allow_images >= CONFIG_ALLOW_IMAGES_MAX || used + n + 1 > sizeof c->allow_images)
                        return -E2BIG;
                memcpy(c->allow_images + used, w, n + 1);
                used += n + 1;
                c->n_allow_images++;
        }
        c->allow_images_set = true;
        return 0;
}

/* The caps: "KEY = VALUE" or "KEY = unlimited" (SPEC_UNLIMITED). */
typedef struct CapKey {
        const char *key;
        size_t offset;          /* of the uint64_t in DaemonConfig */
        bool size;              /* parse_size (k/m/g/t, fractions) instead of a plain number */
        uint64_t min, max, scale;
        const char *expected;
} CapKey;

#define SECONDS_MAX (UINT64_C(365) * 24 * 3600)
static const CapKey cap_keys[] = {
        { "max-memory", offsetof(DaemonConfig, max_memory), true, 1 << 20, UINT64_MAX - 1, 1,
          "a size of at least 1m like 2g" },
        { "max-pids", offsetof(DaemonConfig, max_pids), false, 1, 4194304, 1, "a number from 1 to 4194304" },
        { "max-timeout", offsetof(DaemonConfig, max_timeout_usec), false, 1, SECONDS_MAX, 1000000,
          "seconds, from 1 to a year" },
        { "max-ttl", offsetof(DaemonConfig, max_ttl_usec), false, 1, SECONDS_MAX, 1000000,
          "seconds, from 1 to a year" },
        { "max-disk", offsetof(DaemonConfig, max_disk), true, 1 << 20, UINT64_MAX - 1, 1,
          "a size of at least 1m like 10g" },
        { "max-disk-inodes", offsetof(DaemonConfig, max_disk_inodes), false, 1, UINT64_MAX - 1, 1,
          "a positive number" },
        { "max-memory-per-client", offsetof(DaemonConfig, max_memory_per_client), true, 1 << 20, UINT64_MAX - 1,
          1, "a size of at least 1m like 8g" },
        { "max-pids-per-client", offsetof(DaemonConfig, max_pids_per_client), false, 1, UINT64_MAX - 1, 1,
          "a positive number" },
        { "max-disk-per-client", offsetof(DaemonConfig, max_disk_per_client), true, 1 << 20, UINT64_MAX - 1, 1,
          "a size of at least 1m like 40g" },
};

/* A per-uid total must leave room for one sandbox at its cap. */
static const struct {
        size_t one, all;
        const char *one_key, *all_key;
} total_caps[] = {
        { offsetof(DaemonConfig, max_memory), offsetof(DaemonConfig, max_memory_per_client), "max-memory",
          "max-memory-per-client" },
        { offsetof(DaemonConfig, max_pids), offsetof(DaemonConfig, max_pids_per_client), "max-pids",
          "max-pids-per-client" },
        { offsetof(DaemonConfig, max_disk), offsetof(DaemonConfig, max_disk_per_client), "max-disk",
          "max-disk-per-client" },
};

static const CapKey *find_cap(const char *key) {
        for (size_t i = 0; i < ELEMENTSOF(cap_keys); i++)
                if (streq(key, cap_keys[i].key))
                        return &cap_keys[i];
        return NULL;
}

#define BAD(...)                                                                           \
        do {                                                                               \
                snprintf(errbuf, errsize, __VA_ARGS__);                                    \
                return -EINVAL;                                                            \
        } while (false)

/* The daemon's own bounds: "max-connections" and friends. 0: not one of these keys. */
static int parse_daemon_bound(const char *key, const char *value, DaemonConfig *c, const char *path,
                              unsigned lineno, char *errbuf, size_t errsize) {
        static const struct {
                const char *key;
                size_t offset;
                uint32_t max;
        } counts[] = {
                { "max-connections", offsetof(DaemonConfig, max_connections), 65536 },
                { "max-connections-per-uid", offsetof(DaemonConfig, max_connections_per_uid), 65536 },
                { "max-starts", offsetof(DaemonConfig, max_starts), CONFIG_MAX_STARTS_LIMIT },
                { "max-starts-per-uid", offsetof(DaemonConfig, max_starts_per_uid), CONFIG_MAX_STARTS_LIMIT },
        };

        for (size_t i = 0; i < ELEMENTSOF(counts); i++) {
                uint32_t n;

                if (!streq(key, counts[i].key))
                        continue;
                if (safe_atou32(value, &n) < 0 || n == 0 || n > counts[i].max)
                        BAD("%s:%u: %s: expected a number from 1 to %u", path, lineno, key, counts[i].max);
                *(unsigned *) ((uint8_t *) c + counts[i].offset) = n;
                return 1;
        }
        if (streq(key, "max-buffer-per-uid")) {
                uint64_t u;
                if (parse_size(value, &u) < 0 || u < CONFIG_MIN_BUFFER_PER_UID)
                        BAD("%s:%u: max-buffer-per-uid: expected a size of at least 64k, like 16m", path, lineno);
                c->max_buffer_per_uid = u;
                return 1;
        }
        return 0;
}

/* "pool-shape = memory=256m,pids=64,cpus=0.5,disk=1g,net=none|bridge|isolated" (each part optional). */
static int parse_pool_shape(char *value, PoolShapeConfig *ret) {
        PoolShapeConfig sh = {};

        for (char *next = value, *part; (part = strsep(&next, ","));) {
                char *eq;
                uint64_t u;

                part = strip(part);
                if (!*part)
                        continue;
                eq = strchr(part, '=');
                if (!eq)
                        return -EINVAL;
                *eq++ = '\0';
                if (streq(part, "memory")) {
                        if (parse_size(eq, &u) < 0 || u < (1u << 20))
                                return -EINVAL;
                        sh.memory_max = u;
                } else if (streq(part, "disk")) {
                        if (parse_size(eq, &u) < 0 || u < (1u << 20))
                                return -EINVAL;
                        sh.disk_max = u;
                } else if (streq(part, "pids")) {
                        if (safe_atou64(eq, &u) < 0 || u == 0 || u > 4194304)
                                return -EINVAL;
                        sh.pids_max = u;
                } else if (streq(part, "cpus")) {
                        char *end = NULL;
                        errno = 0;
                        double d = strtod(eq, &end);
                        if (errno || end == eq || *end || !(d > 0) || d > 4096)
                                return -EINVAL;
                        sh.cpus_milli = (uint32_t) (d * 1000 + 0.5);
                        if (sh.cpus_milli == 0)
                                return -EINVAL;
                } else if (streq(part, "net")) {
                        if (streq(eq, "none"))
                                sh.net = SPEC_NET_NONE;
                        else if (streq(eq, "bridge"))
                                sh.net = SPEC_NET_BRIDGE;
                        else if (streq(eq, "isolated"))
                                sh.net = SPEC_NET_ISOLATED;
                        else
                                return -EINVAL;
                } else
                        return -EINVAL;
        }
        *ret = sh;
        return 0;
}

/* The pool's keys. */
static int parse_pool_key(const char *key, char *value, DaemonConfig *c, const char *path, unsigned lineno,
                          char *errbuf, size_t errsize) {
        uint32_t n;
        uint64_t u;

        if (streq(key, "pool-size")) {
                if (safe_atou32(value, &n) < 0 || n > CONFIG_POOL_SIZE_MAX)
                        BAD("%s:%u: pool-size: expected a number from 0 (no pool) to %u", path, lineno,
                            CONFIG_POOL_SIZE_MAX);
                c->pool_size = n;
        } else if (streq(key, "pool-per-shape")) {
                if (safe_atou32(value, &n) < 0 || n == 0 || n > CONFIG_POOL_SIZE_MAX)
                        BAD("%s:%u: pool-per-shape: expected a number from 1 to %u", path, lineno,
                            CONFIG_POOL_SIZE_MAX);
                c->pool_per_shape = n;
        } else if (streq(key, "pool-memory")) {
                if (parse_size(value, &u) < 0 || u < (UINT64_C(1) << 20))
                        BAD("%s:%u: pool-memory: expected a size of at least 1m like 256m", path, lineno);
                c->pool_memory = u;
        } else if (streq(key, "pool-idle-timeout")) {
                if (safe_atou64(value, &u) < 0 || u == 0 || u > 86400)
                        BAD("%s:%u: pool-idle-timeout: expected seconds from 1 to 86400", path, lineno);
                c->pool_idle_usec = u * 1000000;
        } else if (streq(key, "pool-max-age")) {
                if (safe_atou64(value, &u) < 0 || u == 0 || u > 86400)
                        BAD("%s:%u: pool-max-age: expected seconds from 1 to 86400", path, lineno);
                c->pool_max_age_usec = u * 1000000;
        } else if (streq(key, "pool-shape")) {
                if (c->n_pool_shapes >= CONFIG_POOL_SHAPES_MAX)
                        BAD("%s:%u: pool-shape: more than %u shapes", path, lineno, CONFIG_POOL_SHAPES_MAX);
                if (parse_pool_shape(value, &c->pool_shapes[c->n_pool_shapes]) < 0)
                        BAD("%s:%u: pool-shape: expected comma-separated memory=SIZE, pids=N, cpus=N, disk=SIZE, "
                            "net=none|bridge|isolated", path, lineno);
                c->n_pool_shapes++;
        } else
                BAD("%s:%u: unknown key '%s'", path, lineno, key);
        return 0;
}

int config_load(const char *path, bool must_exist, DaemonConfig *c, char *errbuf, size_t errsize) {
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        int r;

        r = read_file(path, CONFIG_MAX_SIZE, &text, &size);
        if (r == -ENOENT && !must_exist)
                return 0;
        if (r < 0) {
                snprintf(errbuf, errsize, "%s: %s", path, r == -EFBIG ? "file too big" : strerror(-r));
                return r;
        }
        return config_parse(text, size, path, c, errbuf, errsize);
}

int config_parse(const char *data, size_t size, const char *path, DaemonConfig *c, char *errbuf, size_t errsize) {
        _cleanup_free_ char *text = NULL;
        unsigned lineno = 0;
        bool pool_given = false;
        int r;

        if (size > CONFIG_MAX_SIZE)
                BAD("%s: file too big", path);
        if (memchr(data, '\0', size))
                BAD("%s: contains a NUL byte", path);
        text = strndup(data, size);
        if (!text) {
                snprintf(errbuf, errsize, "%s: out of memory", path);
                return -ENOMEM;
        }

        for (char *next = text, *line; (line = strsep(&next, "\n"));) {
                char *eq, *key, *value;
                uint64_t u;
                const CapKey *cap;

                lineno++; /* strsep(), unlike strtok(), keeps empty lines: the numbers stay right */
                line = strip(line);
                if (!*line || *line == '#')
                        continue;
                eq = strchr(line, '=');
                if (!eq)
                        BAD("%s:%u: expected 'key = value'", path, lineno);
                *eq = '\0';
                key = strip(line);
                value = strip(eq + 1);

                if (streq(key, "allow-users")) {
                        r = parse_ids(value, false, c->allow_users, &c->n_allow_users);
                        if (r < 0)
                                BAD("%s:%u: allow-users: %s", path, lineno, r == -E2BIG ? "too many" : "unknown user");
                } else if (streq(key, "allow-groups")) {
                        r = parse_ids(value, true, c->allow_groups, &c->n_allow_groups);
                        if (r < 0)
                                BAD("%s:%u: allow-groups: %s", path, lineno, r == -E2BIG ? "too many" : "unknown group");
                } else if (streq(key, "max-sandboxes-per-client") || streq(key, "max-sandboxes") ||
                           streq(key, "max-created-per-uid") || streq(key, "max-snapshots-per-uid") ||
                           streq(key, "max-volumes-per-uid")) {
                        uint32_t n;
                        if (safe_atou32(value, &n) < 0 || n == 0 || n > 65536)
                                BAD("%s:%u: %s: expected a number from 1 to 65536", path, lineno, key);
                        if (streq(key, "max-sandboxes"))
                                c->max_sandboxes = n;
                        else if (streq(key, "max-created-per-uid"))
                                c->max_created_per_uid = n;
                        else if (streq(key, "max-snapshots-per-uid"))
                                c->max_snapshots_per_uid = n;
                        else if (streq(key, "max-volumes-per-uid"))
                                c->max_volumes_per_uid = n;
                        else
                                c->max_per_client = n;
                } else if ((cap = find_cap(key))) {
                        uint64_t *field = (uint64_t *) ((char *) c + cap->offset);
                        if (streq(value, "unlimited"))
                                u = SPEC_UNLIMITED;
                        else if ((cap->size ? parse_size(value, &u) : safe_atou64(value, &u)) < 0 || u < cap->min ||
                                 u > cap->max)
                                BAD("%s:%u: %s: expected %s, or unlimited", path, lineno, key, cap->expected);
                        else
                                u *= cap->scale;
                        *field = u;
                } else if (streq(key, "max-snapshot-size")) {
                        if (parse_size(value, &u) < 0 || u < 4096 || u > (UINT64_C(1) << 40))
                                BAD("%s:%u: max-snapshot-size: expected a size from 4K to 1T", path, lineno);
                        c->max_snapshot_size = u;
                } else if (streq(key, "max-volume-size")) {
                        if (parse_size(value, &u) < 0 || u < CONFIG_VOLUME_SIZE_MIN || u > CONFIG_VOLUME_SIZE_MAX)
                                BAD("%s:%u: max-volume-size: expected a size from 16M to 16T", path, lineno);
                        c->max_volume_size = u;
                } else if (streq(key, "allow-host-paths")) {
                        if (parse_bool(value, &c->allow_host_paths) < 0)
                                BAD("%s:%u: allow-host-paths: expected yes or no", path, lineno);
                } else if (streq(key, "id-base")) {
                        if (safe_atou32(value, &c->id_base) < 0 || c->id_base < 65536)
                                BAD("%s:%u: id-base: expected a number of at least 65536", path, lineno);
                } else if (streq(key, "id-ranges")) {
                        if (safe_atou32(value, &c->id_ranges) < 0 || c->id_ranges == 0)
                                BAD("%s:%u: id-ranges: expected a positive number", path, lineno);
                } else if (streq(key, "allow-cap-add")) {
                        if (parse_caps(value, &c->allow_cap_add) < 0)
                                BAD("%s:%u: allow-cap-add: expected capability names (like NET_RAW) separated by "
                                    "spaces or commas, 'all' or 'none'", path, lineno);
                } else if (streq(key, "allow-net-host")) {
                        if (parse_bool(value, &c->allow_net_host) < 0)
                                BAD("%s:%u: allow-net-host: expected yes or no", path, lineno);
                } else if (streq(key, "bridge") || streq(key, "isolated-bridge")) {
                        char *dst = streq(key, "bridge") ? c->net.bridge : c->net.isolated_bridge;
                        if (strlen(value) >= sizeof c->net.bridge || !*value)
                                BAD("%s:%u: %s: expected an interface name of 1-15 characters", path, lineno, key);
                        strcpy(dst, value);
                } else if (streq(key, "subnet") || streq(key, "isolated-subnet")) {
                        bool iso = streq(key, "isolated-subnet");
                        if (parse_subnet(value, iso ? &c->net.isolated_subnet : &c->net.subnet,
                                         iso ? &c->net.isolated_prefixlen : &c->net.prefixlen) < 0)
                                BAD("%s:%u: %s: expected an IPv4 subnet like 10.88.0.0/16", path, lineno, key);
                } else if (streq(key, "subnet-pool")) {
                        /* Replaces the default pool; more lines add to it. */
                        if (!pool_given)
                                c->net.n_pool = 0;
                        pool_given = true;
                        r = parse_cidrs(value, c->net.pool, &c->net.n_pool, NET_POOL_MAX);
                        if (r < 0)
                                BAD("%s:%u: subnet-pool: %s", path, lineno,
                                    r == -E2BIG ? "more than 8 subnets" : "expected IPv4 subnets like 10.88.0.0/13");
                } else if (streq(key, "subnet-pool-prefix")) {
                        uint32_t n;
                        if (safe_atou32(value, &n) < 0 || n < 8 || n > 30)
                                BAD("%s:%u: subnet-pool-prefix: expected a prefix length from 8 to 30", path, lineno);
                        c->net.pool_prefixlen = n;
                } else if (streq(key, "egress-allow") || streq(key, "egress-deny")) {
                        bool allow = streq(key, "egress-allow");
                        r = parse_cidrs(value, allow ? c->net.egress_allow : c->net.egress_deny,
                                        allow ? &c->net.n_egress_allow : &c->net.n_egress_deny, NET_EGRESS_MAX);
                        if (r < 0)
                                BAD("%s:%u: %s: %s", path, lineno, key,
                                    r == -E2BIG ? "more than 16 entries"
                                                : "expected IPv4 addresses or subnets like 10.0.0.0/8 (host bits 0)");
                } else if (streq(key, "min-published-port")) {
                        uint32_t n;
                        if (safe_atou32(value, &n) < 0 || n < 1 || n > 65535)
                                BAD("%s:%u: min-published-port: expected a port from 1 to 65535", path, lineno);
                        c->min_published_port = n;
                } else if (streq(key, "resolv-conf") || streq(key, "resolv-conf-upstream")) {
                        char *dst = streq(key, "resolv-conf") ? c->net.resolv_conf : c->net.resolv_conf_upstream;
                        if (value[0] != '/' || strlen(value) >= sizeof c->net.resolv_conf)
                                BAD("%s:%u: %s: expected an absolute path", path, lineno, key);
                        strcpy(dst, value);
                } else if (streq(key, "mtu")) {
                        if (safe_atou32(value, &c->net.mtu) < 0)
                                BAD("%s:%u: mtu: expected a number", path, lineno);
                } else if (streq(key, "netfilter-table")) {
                        if (strlen(value) >= sizeof c->net.table || !*value)
                                BAD("%s:%u: netfilter-table: expected a name of 1-31 characters", path, lineno);
                        strcpy(c->net.table, value);
                } else if ((r = parse_daemon_bound(key, value, c, path, lineno, errbuf, errsize)) != 0) {
                        if (r < 0)
                                return r;
                } else if (streq(key, "store")) {
                        if (value[0] != '/' || strlen(value) >= sizeof c->store)
                                BAD("%s:%u: store: expected an absolute path of at most %zu bytes", path, lineno,
                                    sizeof c->store - 1);
                        strcpy(c->store, value);
                } else if (streq(key, "allow-images")) {
                        const char *word = "", *why = NULL;
                        r = parse_allow_images(value, c, &word, &why);
                        if (r == -EBADMSG)
                                BAD("%s:%u: allow-images: '%s' is not an image reference or image ID (%s)", path,
                                    lineno, word, why ?: "invalid");
                        if (r == -ENODATA)
                                BAD("%s:%u: allow-images: expected image references or image IDs, or none", path,
                                    lineno);
                        if (r == -E2BIG)
                                BAD("%s:%u: allow-images: more than %u entries or %u bytes", path, lineno,
                                    CONFIG_ALLOW_IMAGES_MAX, CONFIG_ALLOW_IMAGES_BYTES);
                        if (r < 0)
                                BAD("%s:%u: allow-images: 'none' cannot go with images", path, lineno);
                } else if (startswith(key, "pool-")) {
                        r = parse_pool_key(key, value, c, path, lineno, errbuf, errsize);
                        if (r < 0)
                                return r;
                } else if (streq(key, "unionfs")) {
                        if (value[0] != '/' || strlen(value) >= sizeof c->unionfs)
                                BAD("%s:%u: unionfs: expected an absolute path", path, lineno);
                        strcpy(c->unionfs, value);
                } else
                        BAD("%s:%u: unknown key '%s'", path, lineno, key);
        }
        {
                const char *e = NULL;
                if (net_config_validate(&c->net, &e) < 0)
                        BAD("%s: network settings: %s", path, e);
        }
        for (size_t i = 0; i < ELEMENTSOF(total_caps); i++) {
                uint64_t one = *(const uint64_t *) ((const char *) c + total_caps[i].one);
                uint64_t all = *(const uint64_t *) ((const char *) c + total_caps[i].all);
                if (one != SPEC_UNLIMITED && all < one)
                        BAD("%s: %s is below %s: no client could use what one sandbox may have", path,
                            total_caps[i].all_key, total_caps[i].one_key);
        }
        if (c->id_base && c->id_ranges &&
            (uint64_t) c->id_base + (uint64_t) c->id_ranges * 65536 > UINT32_MAX)
                BAD("%s: id-base + id-ranges * 65536 is beyond the last uid", path);
        return 0;
}
