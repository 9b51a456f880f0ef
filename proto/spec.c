/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

#include "macro.h"
#include "spec.h"

static void strv_free_n(char **v, size_t n) {
        if (!v)
                return;
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

void spec_done(SandboxSpec *s) {
        if (!s)
                return;
        strv_free_n(s->argv, s->n_argv);
        strv_free_n(s->env, s->n_env);
        strv_free_n(s->layers, s->n_layers);
        free(s->image);
        free(s->image_ref);
        free(s->entrypoint);
        free(s->user);
        free(s->upper);
        free(s->workdir);
        free(s->hostname);
        for (size_t i = 0; i < s->n_binds; i++) {
                free(s->binds[i].source);
                free(s->binds[i].dest);
        }
        free(s->binds);
        for (size_t i = 0; i < s->n_tmpfs; i++)
                free(s->tmpfs[i].dest);
        free(s->tmpfs);
        free(s->seccomp);
        *s = (SandboxSpec) {};
}

static const char *const net_names[_SPEC_NET_MAX] = {
        [SPEC_NET_NONE] = "none",
        [SPEC_NET_BRIDGE] = "bridge",
        [SPEC_NET_ISOLATED] = "isolated",
        [SPEC_NET_HOST] = "host",
};

const char *spec_net_to_string(SpecNet net) {
        return net >= 0 && net < _SPEC_NET_MAX ? net_names[net] : NULL;
}

int spec_net_from_string(const char *s, SpecNet *ret) {
        for (SpecNet n = 0; n < _SPEC_NET_MAX; n++)
                if (streq(s, net_names[n])) {
                        *ret = n;
                        return 0;
                }
        return -EINVAL;
}

static const struct {
        const char *name;
        int resource;
        bool size;              /* in bytes (takes k/m/g/t) */
} rlimit_names[] = {
        { "as", RLIMIT_AS, true },           { "core", RLIMIT_CORE, true },
        { "cpu", RLIMIT_CPU, false },        { "data", RLIMIT_DATA, true },
        { "fsize", RLIMIT_FSIZE, true },     { "locks", RLIMIT_LOCKS, false },
        { "memlock", RLIMIT_MEMLOCK, true }, { "msgqueue", RLIMIT_MSGQUEUE, true },
        { "nice", RLIMIT_NICE, false },      { "nofile", RLIMIT_NOFILE, false },
        { "nproc", RLIMIT_NPROC, false },    { "rss", RLIMIT_RSS, true },
        { "rtprio", RLIMIT_RTPRIO, false },  { "rttime", RLIMIT_RTTIME, false },
        { "sigpending", RLIMIT_SIGPENDING, false }, { "stack", RLIMIT_STACK, true },
};

int spec_rlimit_from_string(const char *name, int *ret_resource) {
        for (size_t i = 0; i < ELEMENTSOF(rlimit_names); i++)
                if (streq(name, rlimit_names[i].name)) {
                        *ret_resource = rlimit_names[i].resource;
                        return 0;
                }
        return -EINVAL;
}

bool spec_rlimit_is_size(int resource) {
        for (size_t i = 0; i < ELEMENTSOF(rlimit_names); i++)
                if (rlimit_names[i].resource == resource)
                        return rlimit_names[i].size;
        return false;
}

const char *spec_rlimit_name_at(size_t i) {
        return i < ELEMENTSOF(rlimit_names) ? rlimit_names[i].name : NULL;
}

const char *spec_rlimit_to_string(int resource) {
        for (size_t i = 0; i < ELEMENTSOF(rlimit_names); i++)
                if (rlimit_names[i].resource == resource)
                        return rlimit_names[i].name;
        return NULL;
}

static const char *const cap_names[SPEC_CAP_LAST + 1] = {
        "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
        "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
        "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
        "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
        "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
        "CHECKPOINT_RESTORE",
};

int spec_cap_from_string(const char *name, int *ret_cap) {
        if (strncasecmp(name, "CAP_", 4) == 0)
                name += 4;
        for (int i = 0; i <= SPEC_CAP_LAST; i++)
                if (strcasecmp(name, cap_names[i]) == 0) {
                        *ret_cap = i;
                        return 0;
                }
        return -EINVAL;
}

const char *spec_cap_to_string(int cap) {
        return cap >= 0 && cap <= SPEC_CAP_LAST ? cap_names[cap] : NULL;
}

void spec_caps_format(uint64_t caps, char *buf, size_t size) {
        size_t n = 0;

        if (size == 0)
                return;
        buf[0] = '\0';
        if ((caps & SPEC_CAPS_ALL) == 0) {
                snprintf(buf, size, "none");
                return;
        }
        for (int i = 0; i <= SPEC_CAP_LAST; i++) {
                if (!(caps & SPEC_CAP(i)))
                        continue;
                int k = snprintf(buf + n, size - n, "%s%s", n ? "," : "", cap_names[i]);
                if (k < 0 || (size_t) k >= size - n) {
                        if (size > 4)
                                memcpy(buf + size - 4, "...", 4);
                        return;
                }
                n += (size_t) k;
        }
}

uint64_t spec_capabilities(const SandboxSpec *s) {
        if (s->cap_add == SPEC_CAPS_ALL)
                return SPEC_CAPS_ALL & ~s->cap_drop;
        return ((SPEC_CAPS_DEFAULT & ~s->cap_drop) | s->cap_add) & SPEC_CAPS_ALL;
}

uint64_t spec_capabilities_added(const SandboxSpec *s) {
        return s->cap_add & spec_capabilities(s);
}

void spec_apply_defaults(SandboxSpec *s) {
        if (s->memory_max == 0)
                s->memory_max = SPEC_DEFAULT_MEMORY;
        if (s->pids_max == 0)
                s->pids_max = SPEC_DEFAULT_PIDS;
        if (s->disk_max == 0)
                s->disk_max = SPEC_DEFAULT_DISK;
        if (s->disk_inodes_max == 0)
                s->disk_inodes_max = SPEC_DEFAULT_DISK_INODES;
        for (size_t i = 0; i < s->n_tmpfs; i++)
                if (s->tmpfs[i].size == 0)
                        s->tmpfs[i].size = SPEC_DEFAULT_TMPFS;
}

static bool string_ok(const char *s) {
        return s && strnlen(s, SPEC_STRING_MAX) < SPEC_STRING_MAX;
}

/* Absolute, normalized enough that no component is ".." (the runtime resolves it beneath the root
 * anyway; refusing ".." keeps error messages about the path the user meant). */
static bool path_ok(const char *p) {
        if (!string_ok(p) || p[0] != '/')
                return false;
        for (const char *c = p; (c = strstr(c, "/..")); c += 3)
                if (c[3] == '/' || c[3] == '\0')
                        return false;
        return true;
}

static bool hostname_ok(const char *h) {
        size_t n = strnlen(h, SPEC_HOSTNAME_MAX + 1);

        if (n == 0 || n > SPEC_HOSTNAME_MAX || h[0] == '-' || h[0] == '.')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.", h[i]))
                        return false;
        return true;
}

/* Checked fully (and normalized) by the image store when it is looked up; here only what keeps it a name:
 * printable, bounded, and never what the command line takes for a directory or an option. */
static bool image_ref_ok(const char *r) {
        size_t n = strnlen(r, SPEC_IMAGE_REF_MAX + 1);

        if (n == 0 || n > SPEC_IMAGE_REF_MAX || r[0] == '/' || r[0] == '.' || r[0] == '-')
                return false;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) r[i] <= ' ' || (unsigned char) r[i] >= 0x7f)
                        return false;
        return true;
}

static bool user_ok(const char *u) {
        size_t n = strnlen(u, SPEC_USER_MAX);

        if (n == 0 || n >= SPEC_USER_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) u[i] <= ' ' || (unsigned char) u[i] >= 0x7f)
                        return false;
        return true;
}

#define FAIL(msg)                               \
        do {                                    \
                if (ret_error)                  \
                        *ret_error = (msg);     \
                return -EINVAL;                 \
        } while (false)

int spec_validate(const SandboxSpec *s, const char **ret_error) {
        return spec_validate_flags(s, 0, ret_error);
}

int spec_validate_flags(const SandboxSpec *s, unsigned flags, const char **ret_error) {
        size_t bytes = 0;

        /* With an image of the store, the image may give the command (its Entrypoint and Cmd). */
        if (s->n_argv == 0 && !s->image_ref && !(flags & SPEC_VALIDATE_NO_COMMAND))
                FAIL("a command is required (at most 4096 arguments)");
        if (s->n_argv > SPEC_ARGS_MAX || (s->n_argv > 0 && (!s->argv || s->argv[s->n_argv])))
                FAIL("a command is required (at most 4096 arguments)");
        for (size_t i = 0; i < s->n_argv; i++) {
                if (!s->argv[i])
                        FAIL("an argument is missing");
                bytes += strnlen(s->argv[i], SPEC_ARG_BYTES_MAX) + 1;
        }
        if (s->n_argv > 0 && s->argv[0][0] == '\0')
                FAIL("the command is empty");
        if (s->n_env > SPEC_ENV_MAX || (s->n_env > 0 && (!s->env || s->env[s->n_env])))
                FAIL("too many environment variables (at most 1024)");
        for (size_t i = 0; i < s->n_env; i++) {
                const char *eq = s->env[i] ? strchr(s->env[i], '=') : NULL;
                if (!eq || eq == s->env[i])
                        FAIL("an environment variable is not of the form NAME=VALUE");
                bytes += strnlen(s->env[i], SPEC_ARG_BYTES_MAX) + 1;
        }
        if (bytes > SPEC_ARG_BYTES_MAX)
                FAIL("arguments and environment are larger than 1 MiB");

        if (s->image && !path_ok(s->image))
                FAIL("--image must be 'host' or an absolute directory path");
        if (s->image_ref && !image_ref_ok(s->image_ref))
                FAIL("--image: an image reference is 1-1024 printable characters, not starting with '/', '.' "
                     "or '-'");
        if (s->image && s->image_ref)
                FAIL("--image: a directory and an image of the store at once");
        if (s->entrypoint && (!s->image_ref || strnlen(s->entrypoint, SPEC_STRING_MAX) >= SPEC_STRING_MAX))
                FAIL("--entrypoint needs an image of the store (--image NAME) and is at most 4095 bytes");
        if (s->user && ((!s->image_ref && !(flags & SPEC_VALIDATE_EXEC_IN)) || !user_ok(s->user)))
                FAIL("--user as a name needs an image of the store (--image NAME); at most 255 bytes");
        if (s->n_layers > SPEC_LAYERS_MAX)
                FAIL("too many --layer options (at most 64)");
        for (size_t i = 0; i < s->n_layers; i++)
                if (!path_ok(s->layers[i]))
                        FAIL("--layer must be an absolute directory path");
        if (s->upper && !path_ok(s->upper))
                FAIL("--upper must be an absolute directory path");
        if (s->workdir && !path_ok(s->workdir))
                FAIL("--workdir must be an absolute path");
        if (s->uid > 65535 || s->gid > 65535)
                FAIL("--user ids must be below 65536 (the sandbox maps 65536 ids)");
        if (s->hostname && !hostname_ok(s->hostname))
                FAIL("--hostname must be 1-64 letters, digits, '-' or '.'");

        if (s->n_binds > SPEC_MOUNTS_MAX || s->n_tmpfs > SPEC_MOUNTS_MAX)
                FAIL("too many --bind or --tmpfs options (at most 64 each)");
        for (size_t i = 0; i < s->n_binds; i++)
                if (!path_ok(s->binds[i].source) || !path_ok(s->binds[i].dest) || streq(s->binds[i].dest, "/"))
                        FAIL("--bind needs absolute paths, and not / as destination");
        for (size_t i = 0; i < s->n_tmpfs; i++)
                if (!path_ok(s->tmpfs[i].dest) || streq(s->tmpfs[i].dest, "/"))
                        FAIL("--tmpfs needs an absolute destination other than /");

        if (s->cpus_milli > 1024 * 1000)
                FAIL("--cpus is out of range");
        if (s->timeout_usec > UINT64_C(365) * 24 * 3600 * 1000000 || s->cpu_time_usec > UINT64_C(365) * 24 * 3600 * 1000000)
                FAIL("a time limit is out of range (at most a year)");
        if (s->n_rlimits > SPEC_RLIMITS_MAX)
                FAIL("too many --rlimit options");
        for (size_t i = 0; i < s->n_rlimits; i++)
                if (!spec_rlimit_to_string(s->rlimits[i].resource) || s->rlimits[i].soft > s->rlimits[i].hard)
                        FAIL("an --rlimit is invalid (unknown name, or soft above hard)");
        if (s->seccomp && !streq(s->seccomp, "default") && !streq(s->seccomp, "unconfined") && !path_ok(s->seccomp))
                FAIL("--seccomp must be 'default', 'unconfined' or an absolute file path");
        if ((s->cap_add | s->cap_drop) & ~SPEC_CAPS_ALL)
                FAIL("--cap-add or --cap-drop names an unknown capability");
        if ((s->cap_add & s->cap_drop) && (s->cap_add == SPEC_CAPS_ALL) == (s->cap_drop == SPEC_CAPS_ALL))
                FAIL("--cap-add and --cap-drop name the same capability");
        if (s->net < 0 || s->net >= _SPEC_NET_MAX)
                FAIL("--net is invalid");
        if (s->n_publish > SPEC_PUBLISH_MAX)
                FAIL("too many --publish options (at most 32)");
        if (s->n_publish > 0 && s->net != SPEC_NET_BRIDGE && s->net != SPEC_NET_ISOLATED)
                FAIL("--publish needs --net bridge or --net isolated");
        for (size_t i = 0; i < s->n_publish; i++) {
                const SpecPublish *p = &s->publish[i];
                if ((p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP) || p->host_port < 1 || p->host_port > 65535 ||
                    p->port < 1 || p->port > 65535)
                        FAIL("--publish needs ports from 1 to 65535 and tcp or udp");
                for (size_t j = 0; j < i; j++)
                        if (s->publish[j].proto == p->proto && s->publish[j].host_port == p->host_port)
                                FAIL("--publish names the same host port twice");
        }
        return 0;
}
