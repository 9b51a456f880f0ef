/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The state directory's records (state.c). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define ID_MAX 256
#define STATE_SIZE_MAX (UINT64_C(1) << 20)

typedef struct State {
        json_t *doc;
        const char *status;     /* creating, created, running, stopped */
        pid_t pid;              /* the monitor */
        uint64_t start_time;    /* its start time, /proc/PID/stat field 22 */
        bool alive;             /* the monitor still runs */
} State;

/* 1-255 letters, digits, '_', '.', '-', '+', not starting with '.' or '-'. */
bool id_valid(const char *id);
/* The start time of PID (field 22 of /proc/PID/stat), 0 when there is no such process. */
uint64_t pid_start_time(pid_t pid);
/* DIR: ROOT/ID. -ENOENT, -EBADMSG, or 0 and RET. */
int state_read(int dir, State *ret);
void state_done(State *s);

/* Our own oom_score_adj (what the union's server and an exec's helper inherit); 0 if it cannot be read. */
int oci_own_oom_score_adj(void);

/* The score of a program that asks for ASKED: never below OWN + 1 (it stays the OOM killer's choice before
 * the processes of ours it depends on), at most 1000. */
static inline int oci_program_oom_score_adj(int asked, int own) {
        int floor = own + 1 > 1000 ? 1000 : own + 1;
        return asked > floor ? asked : floor;
}
