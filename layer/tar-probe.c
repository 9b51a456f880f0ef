/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Image archive detection by member names; see tar-probe.h. Library code: never logs, never fails loudly. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "tar-probe.h"
#include "tar.h"

#define PROBE_MAX_HEADERS 1000000

typedef struct Seen {
        bool oci_layout, index_json, manifest_json, repositories, blobs, layer_tar, top_tar;
} Seen;

static TarKind decide(const Seen *s) {
        if (s->oci_layout && s->index_json)
                return TAR_KIND_OCI_ARCHIVE;
        if (s->manifest_json && (s->repositories || s->blobs || s->layer_tar || s->top_tar))
                return TAR_KIND_DOCKER_ARCHIVE;
        return TAR_KIND_LAYER;
}

static void see(Seen *s, const char *name) {
        const char *slash = strchr(name, '/');
        if (!slash) {
                s->oci_layout = s->oci_layout || streq(name, "oci-layout");
                s->index_json = s->index_json || streq(name, "index.json");
                s->manifest_json = s->manifest_json || streq(name, "manifest.json");
                s->repositories = s->repositories || streq(name, "repositories");
                s->blobs = s->blobs || streq(name, "blobs");
                size_t n = strlen(name);
                s->top_tar = s->top_tar || (n > 4 && streq(name + n - 4, ".tar")); /* podman: "<hex>.tar" */
                return;
        }
        s->blobs = s->blobs || strneq(name, "blobs/", 6);
        /* "<id>/layer.tar", one level down. */
        s->layer_tar = s->layer_tar || (streq(slash + 1, "layer.tar") && !strchr(slash + 1, '/'));
}

TarKind tar_probe_fd(int fd) {
        struct stat st;
        unsigned char magic[4];
        Seen s = {};

        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return TAR_KIND_LAYER;
        /* gzip or zstd: skipping data would mean decompressing it all; leave it to tar_probe_dir(). */
        if (pread(fd, magic, sizeof(magic), 0) != (ssize_t) sizeof(magic) || (magic[0] == 0x1f && magic[1] == 0x8b) ||
            (magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd))
                return TAR_KIND_LAYER;
        struct archive *a = archive_read_new();
        if (!a)
                return TAR_KIND_LAYER;
        if (archive_read_support_format_tar(a) == ARCHIVE_OK && archive_read_support_filter_none(a) == ARCHIVE_OK &&
            archive_read_open_fd(a, fd, 64 * 1024) == ARCHIVE_OK)
                for (unsigned i = 0; i < PROBE_MAX_HEADERS; i++) {
                        struct archive_entry *e;
                        int r = archive_read_next_header(a, &e);
                        if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
                                break;
                        const char *raw = archive_entry_pathname(e);
                        char *name = NULL;
                        if (raw && tar_path_normalize(raw, &name) >= 0 && *name)
                                see(&s, name);
                        free(name);
                }
        archive_read_free(a);
        (void) lseek(fd, 0, SEEK_SET);
        return decide(&s);
}

TarKind tar_probe_dir(int dir_fd) {
        Seen s = {};
        int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return TAR_KIND_LAYER;
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return TAR_KIND_LAYER;
        }
        struct dirent *de;
        for (unsigned i = 0; i < PROBE_MAX_HEADERS && (de = readdir(d)); i++) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                see(&s, de->d_name);
                char sub[NAME_MAX + sizeof("/layer.tar")];
                snprintf(sub, sizeof(sub), "%s/layer.tar", de->d_name);
                if (de->d_type == DT_DIR && faccessat(dir_fd, sub, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                        see(&s, sub);
        }
        closedir(d);
        return decide(&s);
}

const char *tar_kind_describe(TarKind k) {
        switch (k) {
        case TAR_KIND_OCI_ARCHIVE:
                return "an oci-archive (an image: oci-layout, index.json, blobs)";
        case TAR_KIND_DOCKER_ARCHIVE:
                return "a docker/podman save archive (an image: manifest.json and its layers)";
        case TAR_KIND_LAYER:
        default:
                return "a layer";
        }
}
