/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Volumes: storage of sandboxd's, per uid, that sandboxes mount with --volume NAME:/path[:ro] and that
 * outlives them (sandboxctl volume create|ls|rm). Each is an ext4 file system in a file of the data
 * directory, whose size is the volume's quota (docs/volumes.md has the layout and the reasons):
 *   DATA/volumes/                  0700 root
 *   DATA/volumes/uid-UID/          0700 root: one uid's volumes
 *   DATA/volumes/uid-UID/NAME/     0700 root: image (0600, the file system), meta (0600, text)
 * A volume being made is .new-NAME-RANDOM and one being removed .rm-NAME-RANDOM (renamed first, so that
 * a half-made or half-removed volume never shows as one); a daemon's start removes such leftovers.
 * The library side: no logging, -errno returns; messages for the client in ERR where given.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "msg.h"

#define VOLUMES_DIR "volumes"
#define VOLUME_META_MAX 512     /* bytes of a meta file read back */

typedef struct VolumeMeta {
        uint64_t size;          /* bytes of its file system: the quota */
        uint64_t created_usec;  /* CLOCK_REALTIME */
} VolumeMeta;

/* volume-meta.c: "sandbox-volume 1\nsize BYTES\ncreated USEC\n". The file is ours, but read back as
 * untrusted input: at most VOLUME_META_MAX bytes, every line known and once, size within
 * [VOLUME_SIZE_MIN, VOLUME_SIZE_MAX]. -EBADMSG otherwise. */
#define VOLUME_SIZE_MIN (UINT64_C(16) << 20)
#define VOLUME_SIZE_MAX (UINT64_C(16) << 40)
int volume_meta_parse(const char *data, size_t size, VolumeMeta *ret);
int volume_meta_format(const VolumeMeta *m, char *buf, size_t size);

typedef struct VolumeInfo {
        char name[MSG_VOLUME_NAME_MAX + 1];
        uid_t uid;
        VolumeMeta meta;
        uint64_t used;          /* bytes its image takes on the host's disk */
} VolumeInfo;

/* A new volume NAME of UID of SIZE bytes. MAX_COUNT (0: none): how many UID may have. -EEXIST, -EDQUOT
 * (MAX_COUNT reached), or another error, with a message in ERR. */
int volume_create(int data_fd, uid_t uid, const char *name, uint64_t size, unsigned max_count, char *err,
                  size_t errlen);
/* Removes UID's volume NAME (-ENOENT: none). */
int volume_remove(int data_fd, uid_t uid, const char *name);
/* UID's volume NAME: its image, opened O_RDWR (-ENOENT: none). */
int volume_open(int data_fd, uid_t uid, const char *name, int *ret_fd);
/* The volumes of UID, or of every uid if ALL; sorted by uid and name. */
int volume_list(int data_fd, bool all, uid_t uid, VolumeInfo **ret, size_t *ret_n);
/* What a predecessor left half made or half removed. */
int volume_clean_leftovers(int data_fd);
