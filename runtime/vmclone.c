/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmclone(): clone3(CLONE_VM) with the child on a stack of its own (vmclone.h says when to use it).
 *
 * glibc has no clone3() wrapper, and its clone() takes no cgroup (CLONE_INTO_CGROUP needs clone3). A
 * raw clone3() system call cannot be made from C when the child shares our memory: the child would
 * return into the caller's frames on a stack of its own and run C code there that assumes the caller's
 * stack. So the system call and the child's first steps are a few instructions of assembly: the child
 * never returns from it, it calls FN(ARG) on the new stack and exits with its result. The parent's
 * side is an ordinary system call.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vmclone.h"

#ifndef SYS_clone3
#define SYS_clone3 435
#endif

#if HAVE_VMCLONE
static long clone3_run(struct clone_args *ca, size_t size, int (*fn)(void *), void *arg) {
        long ret;
        /* The kernel preserves r12/r13 into the child: FN and ARG travel there. rbp zeroed: the end of
         * the child's frame chain. The stack top is 16-byte aligned, so FN sees the ABI's alignment. */
        __asm__ volatile("mov %[fn], %%r12\n\t"
                         "mov %[arg], %%r13\n\t"
                         "syscall\n\t"
                         "test %%rax, %%rax\n\t"
                         "jnz 1f\n\t"
                         "xor %%ebp, %%ebp\n\t"
                         "mov %%r13, %%rdi\n\t"
                         "call *%%r12\n\t"
                         "mov %%eax, %%edi\n\t"
                         "mov %[nr_exit], %%eax\n\t"
                         "syscall\n\t"
                         "ud2\n\t"
                         "1:\n\t"
                         : "=a"(ret)
                         : "0"((long) SYS_clone3), "D"(ca), "S"(size), [fn] "r"(fn), [arg] "r"(arg),
                           [nr_exit] "i"(SYS_exit_group)
                         : "rcx", "r11", "r12", "r13", "memory", "cc");
        return ret;
}
#endif

pid_t vmclone(struct clone_args *ca, int (*fn)(void *), void *arg, void *stack, size_t size) {
#if HAVE_VMCLONE
        if (!stack || size < 4096 || size % 16 != 0)
                return -EINVAL;
        ca->flags |= CLONE_VM | CLONE_VFORK;
        ca->stack = (uint64_t) (uintptr_t) stack;
        ca->stack_size = size;
        long r = clone3_run(ca, sizeof *ca, fn, arg);
        return (pid_t) r;
#else
        (void) ca;
        (void) fn;
        (void) arg;
        (void) stack;
        (void) size;
        return -ENOSYS;
#endif
}

void *vmclone_stack(size_t size) {
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
        return p == MAP_FAILED ? NULL : p;
}

void vmclone_stack_free(void *stack, size_t size) {
        if (stack)
                (void) munmap(stack, size);
}
