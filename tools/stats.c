/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * --stats: the accounting of one sandbox as a JSON object (docs/limits.md lists the fields), written to
 * a file (beside its final name, then renamed over it: a reader never sees half) or, with fd:N, to a
 * descriptor the caller gave us (written whole, from its current offset; never closed here).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"
#include "macro.h"
#include "stats.h"

static const char *limit_name(SandboxLimitHit l) {
        switch (l) {
        case SANDBOX_LIMIT_TIMEOUT:
                return "timeout";
        case SANDBOX_LIMIT_CPU_TIME:
                return "cpu-time";
        case SANDBOX_LIMIT_MEMORY:
                return "memory";
        case SANDBOX_LIMIT_NONE:
                break;
        }
        return NULL;
}

static int write_json_file(const char *path, const char *json) {
        _cleanup_free_ char *dir = strdup(path);
        char *slash;
        const char *name;
        _cleanup_close_ int dfd = -EBADF;

        if (!dir)
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (slash) {
                *slash = '\0';
                name = slash + 1;
                dfd = open(*dir ? dir : "/", O_DIRECTORY | O_CLOEXEC | O_RDONLY);
        } else {
                name = path;
                dfd = open(".", O_DIRECTORY | O_CLOEXEC | O_RDONLY);
        }
        if (dfd < 0)
                return -errno;
        if (!filename_is_valid(name))
                return -EINVAL;
        return write_file_atomic_at(dfd, name, json, strlen(json), 0644);
}

static int write_json_fd(int fd, const char *json) {
        size_t n = strlen(json);

        while (n > 0) {
                ssize_t k = write(fd, json, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                json += k;
                n -= (size_t) k;
        }
        return 0;
}

static int write_json(const StatsTarget *t, const char *json) {
        return t->fd >= 0 ? write_json_fd(t->fd, json) : write_json_file(t->path, json);
}

int stats_format(const SandboxResult *r, char *buf, size_t size) {
        const char *limit = limit_name(r->limit);
        int n;

        n = snprintf(buf, size,
                     "{\n"
                     "  \"status\": %d,\n"
                     "  \"exit_code\": %d,\n"
                     "  \"signal\": %d,\n"
                     "  \"wall_time_us\": %llu,\n"
                     "  \"cpu_time_us\": %llu,\n"
                     "  \"memory_peak_bytes\": %llu,\n"
                     "  \"max_rss_bytes\": %llu,\n"
                     "  \"limit\": %s%s%s,\n"
                     "  \"memory_limit_hit\": %s,\n"
                     "  \"time_limit_hit\": %s,\n"
                     "  \"pids_limit_hit\": %s,\n"
                     "  \"disk_limit_hit\": %s,\n"
                     "  \"union_failed\": %s\n"
                     "}\n",
                     r->status,
                     r->signal ? -1 : r->exit_code,
                     r->signal,
                     (unsigned long long) r->wall_usec, (unsigned long long) r->cpu_usec,
                     (unsigned long long) r->memory_peak, (unsigned long long) r->max_rss,
                     limit ? "\"" : "", limit ?: "null", limit ? "\"" : "",
                     yes_no_json(r->limit == SANDBOX_LIMIT_MEMORY),
                     yes_no_json(r->limit == SANDBOX_LIMIT_TIMEOUT || r->limit == SANDBOX_LIMIT_CPU_TIME),
                     yes_no_json(r->pids_limit_hit),
                     yes_no_json(r->disk_limit_hit), yes_no_json(r->union_failed));
        if (n < 0)
                return -EINVAL;
        return (size_t) n < size ? 0 : -ENOBUFS;
}

int stats_write(const StatsTarget *t, const SandboxResult *r) {
        char json[1024];
        int k = stats_format(r, json, sizeof json);
        if (k < 0)
                return k;
        return write_json(t, json);
}

int stats_write_error(const StatsTarget *t, int status, const char *message) {
        char json[2304], esc[2200]; /* a 1024-byte message, escaped */
        size_t j = 0;

        for (const char *c = message; *c && j < sizeof esc - 7; c++) {
                if (*c == '"' || *c == '\\')
                        esc[j++] = '\\', esc[j++] = *c;
                else if ((unsigned char) *c < 0x20)
                        j += (size_t) snprintf(esc + j, sizeof esc - j, "\\u%04x", (unsigned char) *c);
                else
                        esc[j++] = *c;
        }
        esc[j] = '\0';
        snprintf(json, sizeof json, "{\n  \"status\": %d,\n  \"error\": \"%s\"\n}\n", status, esc);
        return write_json(t, json);
}

const char *stats_target_name(const StatsTarget *t, char *buf, size_t size) {
        if (t->fd >= 0)
                snprintf(buf, size, "fd:%d", t->fd);
        else
                snprintf(buf, size, "%s", t->path);
        return buf;
}
