/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The state directory's records: ROOT/ID/state.json, written by the container's monitor (main.c) and read by
 * every command. A record whose monitor is gone (its pid has another start time, or none) is a stopped
 * container, whatever it says.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"
#include "macro.h"
#include "state.h"

bool id_valid(const char *id) {
        size_t n = strlen(id);
        if (n == 0 || n >= ID_MAX || id[0] == '.' || id[0] == '-')
                return false;
        for (const char *c = id; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                      strchr("_.-+", *c)))
                        return false;
        return true;
}

/* The start time of PID (field 22 of /proc/PID/stat): a pid with another start time is another process. */
uint64_t pid_start_time(pid_t pid) {
        char path[64], buf[1024], *p;
        _cleanup_close_ int fd = -EBADF;
        ssize_t n;

        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        n = read(fd, buf, sizeof buf - 1);
        if (n <= 0)
                return 0;
        buf[n] = '\0';
        p = strrchr(buf, ')');
        if (!p)
                return 0;
        /* after ") ": state is field 3; start time is field 22 */
        p += 2;
        for (int field = 3; field < 22 && p; field++) {
                p = strchr(p, ' ');
                if (p)
                        p++;
        }
        return p ? strtoull(p, NULL, 10) : 0;
}

void state_done(State *s) {
        json_decref(s->doc);
}

int state_read(int dir, State *ret) {
        _cleanup_free_ char *buf = NULL;
        json_error_t jerr;
        size_t size;
        json_t *doc;
        int r;

        r = read_file_at(dir, "state.json", STATE_SIZE_MAX, &buf, &size);
        if (r < 0)
                return r;
        doc = json_loadb(buf, size, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(doc)) {
                json_decref(doc);
                return -EBADMSG;
        }
        *ret = (State) { .doc = doc };
        ret->status = json_string_value(json_object_get(doc, "status")) ?: "stopped";
        ret->pid = (pid_t) json_integer_value(json_object_get(doc, "pid"));
        ret->start_time = (uint64_t) json_integer_value(json_object_get(doc, "monitorStartTime"));
        ret->alive = ret->pid > 0 && ret->start_time > 0 && pid_start_time(ret->pid) == ret->start_time;
        if (!ret->alive && !streq(ret->status, "stopped") && !streq(ret->status, "creating"))
                ret->status = "stopped";
        return 0;
}

int oci_own_oom_score_adj(void) {
        char buf[16] = "";
        int fd = open("/proc/self/oom_score_adj", O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;

        if (fd >= 0)
                close(fd);
        if (n <= 0)
                return 0;
        buf[n] = '\0';
        return atoi(buf);
}
