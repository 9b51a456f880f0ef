/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * clone3() of a child that shares the caller's memory (CLONE_VM) and runs a function on a stack of its
 * own: a process that only sets itself up and executes a program needs no copy of its parent's address
 * space. A copy costs what the parent maps (sandboxd: 20 threads and 27 libraries), again when the
 * child's execve() throws it away, and every later write of the parent's to a page still shared (a
 * copy-on-write fault and a TLB shoot-down on every CPU the parent runs on).
 *
 * The child runs FN(ARG) on STACK and exits with its return value. It shares every page with the caller:
 * it must make plain system calls only (no malloc, no locks, no stdio), touch only what the caller keeps
 * alive and unchanged until the child executes or exits, and leave signal dispositions alone while a
 * handler could run (the callers install none). The caller's thread waits for that point: vmclone()
 * always adds CLONE_VFORK. Without it the kernel would also mark the memory as shared by several
 * processes for good (MMF_MULTIPROCESS), after which an oom_score_adj written by any of them applies to
 * all: the union server's -1000 would become the daemon's, the program's +1000 the init's.
 */
#include <linux/sched.h>
#include <stddef.h>
#include <sys/types.h>

/* Big enough for the set-up functions that run there (execvp() puts argv and a path on the stack). */
#define VMCLONE_STACK_SIZE (256U * 1024U)

/* Whether this architecture has the trampoline (x86-64 only: the one where it runs in CI): elsewhere
 * vmclone() is -ENOSYS and the callers copy.
 * AddressSanitizer builds copy too: its shadow of the child's stack is ours, the child's frames would
 * leave it poisoned, and it cannot tell the child's stack from a thread's (false reports). */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VMCLONE_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define VMCLONE_ASAN 1
#endif
#if defined(__x86_64__) && !defined(VMCLONE_ASAN)
#define HAVE_VMCLONE 1
#else
#define HAVE_VMCLONE 0
#endif

/* CA: the caller's clone_args (CLONE_VM and CLONE_VFORK are added; its stack is set here); STACK:
 * SIZE bytes from vmclone_stack(), the child's stack growing down from its end. The child's pid, or
 * -errno. */
pid_t vmclone(struct clone_args *ca, int (*fn)(void *), void *arg, void *stack, size_t size);

/* SIZE bytes (a multiple of the page size) for vmclone()'s child: its stack, and whatever the caller puts
 * at their start for it to read. MAP_NORESERVE: only what is touched costs memory. NULL on failure. */
void *vmclone_stack(size_t size);
void vmclone_stack_free(void *stack, size_t size);
