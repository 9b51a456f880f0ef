/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The new mount API's system calls, which glibc 2.36 does not wrap: one copy for the runtime's users
 * (mount.c, volume.c). Each returns what the system call returns (-1 with errno on failure). */
#pragma once

#include <linux/mount.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <unistd.h>

static inline int sys_fsopen(const char *fs, unsigned flags) {
        return (int) syscall(SYS_fsopen, fs, flags);
}
static inline int sys_fsconfig(int fd, unsigned cmd, const char *key, const void *value, int aux) {
        return (int) syscall(SYS_fsconfig, fd, cmd, key, value, aux);
}
static inline int sys_fsmount(int fd, unsigned flags, unsigned attrs) {
        return (int) syscall(SYS_fsmount, fd, flags, attrs);
}
static inline int sys_move_mount(int from_dfd, const char *from, int to_dfd, const char *to, unsigned flags) {
        return (int) syscall(SYS_move_mount, from_dfd, from, to_dfd, to, flags);
}
static inline int sys_open_tree(int dfd, const char *path, unsigned flags) {
        return (int) syscall(SYS_open_tree, dfd, path, flags);
}
static inline int sys_mount_setattr(int dfd, const char *path, unsigned flags, struct mount_attr *attr,
                                    size_t size) {
        return (int) syscall(SYS_mount_setattr, dfd, path, flags, attr, size);
}
