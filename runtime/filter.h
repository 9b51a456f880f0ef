/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Seccomp policies: "default" (an allow-list, see docs/seccomp.md), "unconfined", or a policy file.
 * A policy is parsed and compiled to BPF in the parent, once, so that errors are reported before
 * any set-up and the child only has to install it (one syscall, nothing allocated).
 */
#pragma once

#include <stddef.h>

typedef struct FilterProgram FilterProgram;
struct sock_fprog;

/* Limits on a policy file (filter_compile() and filter_compile_text()). */
#define FILTER_POLICY_MAX_SIZE (1024u * 1024u) /* bytes */
#define FILTER_POLICY_MAX_LINE 4096u           /* bytes on one line, without the newline */
#define FILTER_POLICY_MAX_NAMES 4096u          /* syscall names in the whole file */

/* POLICY is "default", "unconfined" or the path of a policy file (write "./default" for a file of
 * that name). *ret_program is NULL for "unconfined". On failure, *ret_error (if not NULL) gets a
 * malloc'd human message naming the file and line ("policy.txt:3: unknown syscall 'foo'"), or NULL
 * when even that could not be allocated; the return value is -errno (-EINVAL for every problem in
 * the policy text itself, including its limits). On success *ret_error is left alone. */
int filter_compile(const char *policy, FilterProgram **ret_program, char **ret_error);

/* The same for policy text in memory (what filter_compile reads from a file). NAME is only used
 * in messages. TEXT need not be NUL-terminated; a NUL byte inside it is an error. */
int filter_compile_text(const char *name, const char *text, size_t size, FilterProgram **ret_program,
                        char **ret_error);

/* filter_compile(), but the "default" policy's program is kept in CACHE_DIRFD (a directory only
 * root can write) and loaded from there next time: compiling it takes milliseconds. */
int filter_compile_cached(const char *policy, int cache_dirfd, FilterProgram **ret_program, char **ret_error);

/* Install the program in the calling thread/process. Requires no_new_privs. Async-signal-safe:
 * only the seccomp() syscall, usable in a child after fork/clone. PROGRAM must not be NULL
 * ("unconfined" means: do not call this); NULL gives -EINVAL rather than running unconfined. */
int filter_install(const FilterProgram *program);

/* Number of BPF instructions in PROGRAM (for logging and tests). */
size_t filter_program_size(const FilterProgram *program);

/* The program itself (<linux/filter.h>), valid as long as PROGRAM; for tests that evaluate it. */
const struct sock_fprog *filter_program_fprog(const FilterProgram *program);

FilterProgram *filter_program_free(FilterProgram *program);

/* The program of a libseccomp filter context (a scmp_filter_ctx) that the caller built itself (sandbox-oci: an
 * engine's profile). */
int filter_export(void *scmp_ctx, FilterProgram **ret_program);

/* A program from its instructions as filter_program_fprog() gives them (SIZE bytes, 8 each, at most
 * BPF_MAXINSNS): a detached sandbox's record. -EINVAL for a size that is not that. The kernel checks the
 * program itself when it is installed. */
int filter_program_from_bpf(const void *insns, size_t size, FilterProgram **ret_program);

static inline void filter_program_freep(FilterProgram **program) {
        filter_program_free(*program);
}
