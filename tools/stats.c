/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

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
        default:
                return NULL;
        }
}

/* The file is written beside its final name and renamed over it: a reader never sees half. */
static int write_json(const char *path, const char *json) {
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

int stats_write(const char *path, const SandboxResult *r) {
        char json[1024];
        const char *limit = limit_name(r->limit);

        snprintf(json, sizeof json,
                 "{\n"
                 "  \"status\": %d,\n"
                 "  \"exit_code\": %s%d%s,\n"
                 "  \"signal\": %d,\n"
                 "  \"wall_time_us\": %llu,\n"
                 "  \"cpu_time_us\": %llu,\n"
                 "  \"memory_peak_bytes\": %llu,\n"
                 "  \"limit\": %s%s%s,\n"
                 "  \"memory_limit_hit\": %s,\n"
                 "  \"time_limit_hit\": %s\n"
                 "}\n",
                 r->status,
                 "", r->signal ? -1 : r->exit_code, "",
                 r->signal,
                 (unsigned long long) r->wall_usec, (unsigned long long) r->cpu_usec,
                 (unsigned long long) r->memory_peak,
                 limit ? "\"" : "", limit ?: "null", limit ? "\"" : "",
                 r->limit == SANDBOX_LIMIT_MEMORY ? "true" : "false",
                 r->limit == SANDBOX_LIMIT_TIMEOUT || r->limit == SANDBOX_LIMIT_CPU_TIME ? "true" : "false");
        return write_json(path, json);
}

int stats_write_error(const char *path, int status, const char *message) {
        char json[1024], esc[600];
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
        return write_json(path, json);
}
