/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit test of layer/tar.c: the member path check (absolute paths, "..", "./" stripping, long names),
 * the .wh. name mapping, the compression choice, and archives built in memory with libarchive and
 * unpacked into a private temporary directory: content, symlinks, hard links, xattrs, opaque markers,
 * whiteouts (root only: mknod), a symlink-then-write archive that must fail without writing through
 * the symlink and without leaving the temporary directory, and export -> import -> export giving the
 * same bytes. Runs unprivileged (opaque markers in user.*); cases that need root are skipped.
 * Output is TAP.
 */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "macro.h"
#include "ovl.h"
#include "tap.h"
#include "tar.h"

static char tmp_root[256];
static int n_dest;

static int check_norm(const char *in, const char *want, int want_r) {
        char *out = NULL;
        int r = tar_path_normalize(in, &out);
        if (r != want_r || (r >= 0 && strcmp(out, want) != 0)) {
                printf("# tar_path_normalize('%.60s') = %d '%s', expected %d '%s'\n", in, r, out ?: "", want_r,
                       want ?: "");
                free(out);
                return -1;
        }
        free(out);
        return 0;
}

static int test_path_normalize(void) {
        CHECK_EQ(check_norm("a", "a", 0), 0);
        CHECK_EQ(check_norm("./a/b", "a/b", 0), 0);
        CHECK_EQ(check_norm("././a", "a", 0), 0);
        CHECK_EQ(check_norm("a//b/", "a/b", 0), 0);
        CHECK_EQ(check_norm("a/./b/.", "a/b", 0), 0);
        CHECK_EQ(check_norm("./", "", 0), 0);
        CHECK_EQ(check_norm(".", "", 0), 0);
        CHECK_EQ(check_norm("..a/b..", "..a/b..", 0), 0);
        CHECK_EQ(check_norm("...", "...", 0), 0);
        CHECK_EQ(check_norm("/a", NULL, -EINVAL), 0);
        CHECK_EQ(check_norm("/", NULL, -EINVAL), 0);
        CHECK_EQ(check_norm("..", NULL, -EINVAL), 0);
        CHECK_EQ(check_norm("../x", NULL, -EINVAL), 0);
        CHECK_EQ(check_norm("a/..", NULL, -EINVAL), 0);
        CHECK_EQ(check_norm("a/../../x", NULL, -EINVAL), 0);
        CHECK_EQ(check_norm("./../x", NULL, -EINVAL), 0);
        CHECK_EQ(check_norm("a/b/../c", NULL, -EINVAL), 0);

        char name[NAME_MAX + 2];
        memset(name, 'n', sizeof(name) - 1);
        name[NAME_MAX] = '\0';
        CHECK_EQ(check_norm(name, name, 0), 0); /* exactly NAME_MAX */
        name[NAME_MAX] = 'n';
        name[NAME_MAX + 1] = '\0';
        CHECK_EQ(check_norm(name, NULL, -ENAMETOOLONG), 0);

        /* A long path of short components is fine up to PATH_MAX - 1 bytes. */
        static char path[PATH_MAX + 8];
        for (size_t i = 0; i < PATH_MAX - 1; i++)
                path[i] = i % 2 ? '/' : 'd';
        path[PATH_MAX - 1] = '\0';
        path[PATH_MAX - 2] = 'd';
        char *out = NULL;
        CHECK_EQ(tar_path_normalize(path, &out), 0);
        CHECK_EQ(strlen(out), PATH_MAX - 1);
        free(out);
        path[PATH_MAX - 1] = 'd';
        path[PATH_MAX] = '\0';
        CHECK_EQ(tar_path_normalize(path, &out), -ENAMETOOLONG);
        return 0;
}

static int test_whiteout_names(void) {
        const char *t = NULL;
        CHECK_EQ(tar_whiteout_decode(".wh.foo", &t), TAR_WH_FILE);
        CHECK_STREQ(t, "foo");
        CHECK_EQ(tar_whiteout_decode(".wh..hidden", &t), TAR_WH_FILE);
        CHECK_STREQ(t, ".hidden");
        CHECK_EQ(tar_whiteout_decode(".wh..wh..opq", NULL), TAR_WH_OPAQUE);
        CHECK_EQ(tar_whiteout_decode(".wh..wh.plnk", NULL), TAR_WH_META);
        CHECK_EQ(tar_whiteout_decode(".wh..wh.aufs", NULL), TAR_WH_META);
        CHECK_EQ(tar_whiteout_decode("foo", NULL), TAR_WH_NONE);
        CHECK_EQ(tar_whiteout_decode("x.wh.foo", NULL), TAR_WH_NONE);
        CHECK_EQ(tar_whiteout_decode(".wh", NULL), TAR_WH_NONE);
        CHECK_EQ(tar_whiteout_decode(".wh.", NULL), -EINVAL);
        CHECK_EQ(tar_whiteout_decode(".wh..", NULL), -EINVAL);
        CHECK_EQ(tar_whiteout_decode(".wh...", NULL), -EINVAL);
        return 0;
}

static int test_compress_names(void) {
        CHECK_EQ(tar_compress_from_name("layer.tar"), TAR_COMPRESS_NONE);
        CHECK_EQ(tar_compress_from_name("layer"), TAR_COMPRESS_NONE);
        CHECK_EQ(tar_compress_from_name("layer.tar.gz"), TAR_COMPRESS_GZIP);
        CHECK_EQ(tar_compress_from_name("layer.tgz"), TAR_COMPRESS_GZIP);
        CHECK_EQ(tar_compress_from_name("layer.tar.zst"), TAR_COMPRESS_ZSTD);
        CHECK_EQ(tar_compress_from_name("layer.zstd"), TAR_COMPRESS_ZSTD);
        CHECK_EQ(tar_compress_from_string("none"), TAR_COMPRESS_NONE);
        CHECK_EQ(tar_compress_from_string("gzip"), TAR_COMPRESS_GZIP);
        CHECK_EQ(tar_compress_from_string("zstd"), TAR_COMPRESS_ZSTD);
        CHECK_EQ(tar_compress_from_string("xz"), -EINVAL);
        return 0;
}

/* ------------------------------------------------------------------ in-memory archives */

typedef struct Member {
        const char *path;
        mode_t mode; /* with type */
        const char *data;
        const char *link; /* symlink target, or hard link target when mode is 0 */
        const char *xattr_name, *xattr_value;
} Member;

/* Write MEMBERS as a pax tar into a memfd, rewound. */
static int build_archive(const Member *m, size_t n) {
        size_t cap = 1 << 20, used = 0;
        char *buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        struct archive *a = archive_write_new();
        struct archive_entry *e = archive_entry_new();
        archive_write_set_format_pax_restricted(a);
        archive_write_add_filter_none(a);
        int r = archive_write_open_memory(a, buf, cap, &used) == ARCHIVE_OK ? 0 : -EIO;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                archive_entry_clear(e);
                archive_entry_set_pathname(e, m[i].path);
                archive_entry_set_mtime(e, 1600000000, 0);
                if (m[i].mode == 0) {
                        archive_entry_set_mode(e, S_IFREG | 0644);
                        archive_entry_set_hardlink(e, m[i].link);
                } else {
                        archive_entry_set_mode(e, m[i].mode);
                        if (S_ISLNK(m[i].mode))
                                archive_entry_set_symlink(e, m[i].link);
                        if (S_ISREG(m[i].mode))
                                archive_entry_set_size(e, m[i].data ? (la_int64_t) strlen(m[i].data) : 0);
                }
                if (m[i].xattr_name)
                        archive_entry_xattr_add_entry(e, m[i].xattr_name, m[i].xattr_value,
                                                      strlen(m[i].xattr_value));
                if (archive_write_header(a, e) != ARCHIVE_OK)
                        r = -EIO;
                else if (m[i].mode && S_ISREG(m[i].mode) && m[i].data &&
                         archive_write_data(a, m[i].data, strlen(m[i].data)) < 0)
                        r = -EIO;
        }
        if (r >= 0 && archive_write_close(a) != ARCHIVE_OK)
                r = -EIO;
        archive_entry_free(e);
        archive_write_free(a);
        int fd = r < 0 ? -1 : memfd_create("tar", MFD_CLOEXEC);
        if (fd >= 0 && (write(fd, buf, used) != (ssize_t) used || lseek(fd, 0, SEEK_SET) != 0)) {
                close(fd);
                fd = -1;
        }
        free(buf);
        return r < 0 ? r : fd < 0 ? -errno : fd;
}

/* A fresh, empty directory below the test root. */
static int new_dest(char *path, size_t size) {
        snprintf(path, size, "%s/dest%d", tmp_root, n_dest++);
        if (mkdir(path, 0700) < 0)
                return -errno;
        return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static int read_at(int dirfd, const char *path, char *buf, size_t size) {
        int fd = openat(dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t n = read(fd, buf, size - 1);
        close(fd);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        return (int) n;
}

static int test_extract_memory(void) {
        const Member m[] = {
                { "./d/", S_IFDIR | 0750 },
                { "./d/f", S_IFREG | 0640, "file data", NULL, "user.test", "value" },
                { "./d/l", S_IFLNK | 0777, NULL, "/etc/passwd" },
                { "./d/h", 0, NULL, "d/f" },
                { "./implicit/parent/file", S_IFREG | 0600, "deep" },
                { "./o/", S_IFDIR | 0755 },
                { "./o/.wh..wh..opq", S_IFREG | 0644, "" },
                { "./o/kept", S_IFREG | 0644, "kept" },
                { "./o/.wh..wh.plnk", S_IFREG | 0644, "" },
        };
        _cleanup_close_ int in = build_archive(m, ELEMENTSOF(m));
        CHECK(in >= 0);
        char path[PATH_MAX];
        _cleanup_close_ int dest = new_dest(path, sizeof(path));
        CHECK(dest >= 0);
        TarReport rep = {};
        TarImportOptions o = { .ovl_ns = OVL_NS_USER };
        int r = tar_extract(in, dest, &o, &rep);
        if (r < 0)
                printf("# %s\n", rep.error);
        CHECK_EQ(r, 0);
        CHECK_EQ(rep.entries, ELEMENTSOF(m));

        char buf[64];
        CHECK_EQ(read_at(dest, "d/f", buf, sizeof(buf)), 9);
        CHECK_STREQ(buf, "file data");
        struct stat st, st2;
        CHECK_EQ(fstatat(dest, "d/f", &st, AT_SYMLINK_NOFOLLOW), 0);
        CHECK_EQ(st.st_mode, S_IFREG | 0640);
        CHECK_EQ(st.st_mtim.tv_sec, 1600000000);
        CHECK_EQ(st.st_nlink, 2);
        CHECK_EQ(fstatat(dest, "d/h", &st2, AT_SYMLINK_NOFOLLOW), 0);
        CHECK_EQ(st2.st_ino, st.st_ino);
        CHECK_EQ(fstatat(dest, "d", &st, AT_SYMLINK_NOFOLLOW), 0);
        CHECK_EQ(st.st_mode, S_IFDIR | 0750); /* applied after its children were written */
        CHECK_EQ(st.st_mtim.tv_sec, 1600000000);
        CHECK_EQ(fstatat(dest, "implicit/parent", &st, AT_SYMLINK_NOFOLLOW), 0);
        CHECK_EQ(st.st_mode, S_IFDIR | 0755);
        CHECK_EQ(readlinkat(dest, "d/l", buf, sizeof(buf)), 11);

        char v[16] = "";
        snprintf(path + strlen(path), sizeof(path) - strlen(path), "/d/f");
        ssize_t n = getxattr(path, "user.test", v, sizeof(v));
        if (n != -1 || errno != EOPNOTSUPP) {
                CHECK_EQ(n, 5);
                CHECK(memcmp(v, "value", 5) == 0);
                _cleanup_close_ int ofd = openat(dest, "o", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                CHECK_EQ(ovl_dir_is_opaque(ofd), 1);
        }
        /* The markers themselves are not files. */
        CHECK_EQ(fstatat(dest, "o/.wh..wh..opq", &st, AT_SYMLINK_NOFOLLOW), -1);
        CHECK_EQ(fstatat(dest, "o/.wh..wh.plnk", &st, AT_SYMLINK_NOFOLLOW), -1);
        CHECK_EQ(fstatat(dest, "o/kept", &st, AT_SYMLINK_NOFOLLOW), 0);
        return 0;
}

static int test_extract_whiteout(void) {
        if (geteuid() != 0)
                return tap_skip("whiteouts are device nodes: needs root");
        const Member m[] = {
                { "a/.wh.gone", S_IFREG | 0644, "" },
                { ".wh.top", S_IFREG | 0644, "" },
        };
        _cleanup_close_ int in = build_archive(m, ELEMENTSOF(m));
        CHECK(in >= 0);
        char path[PATH_MAX];
        _cleanup_close_ int dest = new_dest(path, sizeof(path));
        TarReport rep = {};
        TarImportOptions o = { .ovl_ns = OVL_NS_USER };
        CHECK_EQ(tar_extract(in, dest, &o, &rep), 0);
        struct stat st;
        CHECK_EQ(fstatat(dest, "a/gone", &st, AT_SYMLINK_NOFOLLOW), 0);
        CHECK(ovl_is_whiteout(&st));
        CHECK_EQ(fstatat(dest, "top", &st, AT_SYMLINK_NOFOLLOW), 0);
        CHECK(ovl_is_whiteout(&st));
        return 0;
}

/* Count the entries of the directory PATH. */
static int count_entries(const char *path) {
        DIR *d = opendir(path);
        if (!d)
                return -errno;
        int n = 0;
        for (struct dirent *de; (de = readdir(d));)
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        n++;
        closedir(d);
        return n;
}

static int test_import_symlink_then_write(void) {
        char outside[PATH_MAX], parent[PATH_MAX];
        snprintf(outside, sizeof(outside), "%s/outside", tmp_root);
        snprintf(parent, sizeof(parent), "%s/parent", tmp_root);
        CHECK_EQ(mkdir(outside, 0700), 0);
        CHECK_EQ(mkdir(parent, 0700), 0);
        const Member m[] = {
                { "ok/file", S_IFREG | 0644, "fine" },
                { "l", S_IFLNK | 0777, NULL, outside },
                { "l/evil", S_IFREG | 0644, "evil" },
        };
        _cleanup_close_ int in = build_archive(m, ELEMENTSOF(m));
        CHECK(in >= 0);
        _cleanup_close_ int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        TarReport rep = {};
        TarImportOptions o = { .ovl_ns = OVL_NS_USER };
        int r = tar_import(in, pfd, "dest", &o, &rep);
        printf("# error: %s\n", rep.error);
        CHECK(r == -ELOOP || r == -ENOTDIR);
        CHECK(strstr(rep.error, "'l/evil'") && strstr(rep.error, "refusing to write through 'l'"));
        CHECK_EQ(count_entries(outside), 0);
        CHECK_EQ(count_entries(parent), 0); /* neither DEST nor the temporary directory */
        return 0;
}

static int test_import_existing_dest(void) {
        char parent[PATH_MAX];
        snprintf(parent, sizeof(parent), "%s/parent2", tmp_root);
        CHECK_EQ(mkdir(parent, 0700), 0);
        _cleanup_close_ int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CHECK_EQ(mkdirat(pfd, "dest", 0700), 0);
        const Member m[] = { { "f", S_IFREG | 0644, "x" } };
        _cleanup_close_ int in = build_archive(m, ELEMENTSOF(m));
        TarReport rep = {};
        TarImportOptions o = { .ovl_ns = OVL_NS_USER };
        CHECK_EQ(tar_import(in, pfd, "dest", &o, &rep), -EEXIST);
        CHECK(strstr(rep.error, "already exists"));
        CHECK_EQ(count_entries(parent), 1);
        return 0;
}

/* ------------------------------------------------------------------ bounds */

typedef struct Big {
        const char *path;
        uint64_t size;          /* the file's size */
        uint64_t stride, len;   /* stride > 0: sparse, LEN bytes of data every STRIDE bytes, holes between */
} Big;

/* Write BIGS as a pax tar (filtered by COMPRESS) into a memfd, rewound: files of zeros, or sparse ones
 * ('x' in the data regions). libarchive stores a sparse file's map (GNU sparse 1.0) and its regions. */
static int build_big(const Big *m, size_t n, TarCompress compress) {
        int fd = memfd_create("big", MFD_CLOEXEC);
        struct archive *a = archive_write_new();
        struct archive_entry *e = archive_entry_new();
        static char zeros[1 << 16], xs[1 << 16];
        int r = fd >= 0 && a && e ? 0 : -ENOMEM;

        memset(xs, 'x', sizeof xs);
        if (r >= 0 && (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
                       (compress == TAR_COMPRESS_GZIP ? archive_write_add_filter_gzip(a)
                        : compress == TAR_COMPRESS_ZSTD ? archive_write_add_filter_zstd(a)
                                                        : archive_write_add_filter_none(a)) != ARCHIVE_OK ||
                       archive_write_open_fd(a, fd) != ARCHIVE_OK))
                r = -EIO;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                archive_entry_clear(e);
                archive_entry_set_pathname(e, m[i].path);
                archive_entry_set_mode(e, S_IFREG | 0644);
                archive_entry_set_mtime(e, 1600000000, 0);
                archive_entry_set_size(e, (la_int64_t) m[i].size);
                for (uint64_t off = 0; m[i].stride && off < m[i].size; off += m[i].stride)
                        archive_entry_sparse_add_entry(e, (la_int64_t) off, (la_int64_t) MIN(m[i].len, m[i].size - off));
                if (archive_write_header(a, e) != ARCHIVE_OK) {
                        r = -EIO;
                        break;
                }
                for (uint64_t off = 0; off < m[i].size;) {
                        /* In a sparse file, up to the next boundary of a region or a hole. */
                        uint64_t in = m[i].stride ? off % m[i].stride : 0;
                        bool data = m[i].stride && in < m[i].len;
                        uint64_t k = MIN(m[i].size - off, (uint64_t) sizeof zeros);
                        if (m[i].stride)
                                k = MIN(k, data ? m[i].len - in : m[i].stride - in);
                        if (archive_write_data(a, data ? xs : zeros, k) != (la_ssize_t) k) {
                                r = -EIO;
                                break;
                        }
                        off += k;
                }
        }
        if (r >= 0 && archive_write_close(a) != ARCHIVE_OK)
                r = -EIO;
        if (e)
                archive_entry_free(e);
        if (a)
                archive_write_free(a);
        if (r >= 0 && lseek(fd, 0, SEEK_SET) != 0)
                r = -errno;
        if (r < 0) {
                if (fd >= 0)
                        close(fd);
                return r;
        }
        return fd;
}

/* A fresh, empty parent directory for tar_import(). */
static int new_parent(char *path, size_t size) {
        snprintf(path, size, "%s/parent%d", tmp_root, n_dest++);
        if (mkdir(path, 0700) < 0)
                return -errno;
        return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static int test_limits_resolve(void) {
        TarLimits l = tar_limits_resolve(&(TarLimits) {});
        CHECK_U64(l.max_entries, 1000000);
        CHECK_U64(l.max_size, UINT64_C(10) << 30);
        CHECK_U64(l.max_meta, UINT64_C(64) << 20);
        /* Raising the entries raises the metadata bound with them. */
        l = tar_limits_resolve(&(TarLimits) { .max_entries = 4000000 });
        CHECK_U64(l.max_meta, 4000000 * 64);
        l = tar_limits_resolve(&(TarLimits) { .max_entries = UINT64_MAX });
        CHECK_U64(l.max_meta, UINT64_MAX);
        l = tar_limits_resolve(&(TarLimits) { .max_size = 5, .max_meta = 7 });
        CHECK_U64(l.max_size, 5);
        CHECK_U64(l.max_meta, 7);
        return 0;
}

static int test_max_size(void) {
        const Big m[] = { { "a", 10 }, { "b", 200 << 10 } };
        _cleanup_close_ int in = build_big(m, ELEMENTSOF(m), TAR_COMPRESS_NONE);
        CHECK(in >= 0);
        char path[PATH_MAX];
        _cleanup_close_ int dest = new_dest(path, sizeof(path));
        TarReport rep = {};
        TarImportOptions o = { .ovl_ns = OVL_NS_USER, .limits.max_size = 64 << 10 };
        CHECK_EQ(tar_extract(in, dest, &o, &rep), -EFBIG);
        printf("# %s\n", rep.error);
        CHECK(strstr(rep.error, "'b'") && strstr(rep.error, "64 KiB") && strstr(rep.error, "--max-size"));
        /* The same archive within the default bounds. */
        CHECK_EQ(lseek(in, 0, SEEK_SET), 0);
        _cleanup_close_ int dest2 = new_dest(path, sizeof(path));
        TarImportOptions d = { .ovl_ns = OVL_NS_USER };
        TarReport rep2 = {};
        CHECK_EQ(tar_extract(in, dest2, &d, &rep2), 0);
        CHECK_U64(rep2.bytes, 10 + (200 << 10));
        return 0;
}

/* A bomb must stop at its bound, with the bound in the message, and leave nothing in DEST's parent. */
static int check_bomb(int in, const TarImportOptions *o, int want, const char *const *words) {
        char parent[PATH_MAX];
        _cleanup_close_ int pfd = new_parent(parent, sizeof(parent));
        TarReport rep = {};
        CHECK(in >= 0 && pfd >= 0);
        CHECK_EQ(tar_import(in, pfd, "dest", o, &rep), want);
        printf("# %s\n", rep.error);
        for (size_t i = 0; words[i]; i++)
                if (!strstr(rep.error, words[i])) {
                        printf("# '%s' is not in the message\n", words[i]);
                        return -1;
                }
        CHECK_EQ(count_entries(parent), 0);
        return 0;
}

static int test_gzip_bomb(void) {
        /* 384 MiB of zeros in under 1 MiB: refused at its header, before a byte of it is written. */
        const Big m[] = { { "ok", 100 }, { "bomb", UINT64_C(384) << 20 } };
        _cleanup_close_ int in = build_big(m, ELEMENTSOF(m), TAR_COMPRESS_GZIP);
        CHECK(in >= 0);
        CHECK(lseek(in, 0, SEEK_END) < (4 << 20));
        CHECK_EQ(lseek(in, 0, SEEK_SET), 0);
        TarImportOptions o = { .ovl_ns = OVL_NS_USER, .limits.max_size = 64 << 20 };
        return check_bomb(in, &o, -EFBIG,
                          (const char *const[]) { "'bomb'", "declared size", "64 MiB", "--max-size", NULL });
}

static int test_zstd_bomb(void) {
        /* Many files that each fit: stopped at the first whose data would cross the bound. */
        Big m[64];
        char names[64][8];
        for (size_t i = 0; i < ELEMENTSOF(m); i++) {
                snprintf(names[i], sizeof names[i], "f%02zu", i);
                m[i] = (Big) { names[i], 1 << 20 };
        }
        _cleanup_close_ int in = build_big(m, ELEMENTSOF(m), TAR_COMPRESS_ZSTD);
        CHECK(in >= 0);
        CHECK(lseek(in, 0, SEEK_END) < (1 << 20));
        CHECK_EQ(lseek(in, 0, SEEK_SET), 0);
        TarImportOptions o = { .ovl_ns = OVL_NS_USER, .limits.max_size = 16 << 20 };
        return check_bomb(in, &o, -EFBIG,
                          (const char *const[]) { "'f15'", "larger than 16 MiB uncompressed", "--max-size", NULL });
}

static int test_sparse_data_bound(void) {
        /* Sparse files escape the header check (their data is smaller than their size): the stream
         * itself is bounded as it is read. 4 files of 4 MiB with 3 MiB of data each, 8 MiB allowed. */
        const Big m[] = {
                { "s1", 4 << 20, 4 << 20, 3 << 20 }, { "s2", 4 << 20, 4 << 20, 3 << 20 },
                { "s3", 4 << 20, 4 << 20, 3 << 20 }, { "s4", 4 << 20, 4 << 20, 3 << 20 },
        };
        _cleanup_close_ int in = build_big(m, ELEMENTSOF(m), TAR_COMPRESS_GZIP);
        CHECK(in >= 0);
        TarImportOptions o = { .ovl_ns = OVL_NS_USER, .limits.max_size = 8 << 20 };
        return check_bomb(in, &o, -EFBIG,
                          (const char *const[]) { "the archive is larger than 8 MiB uncompressed", "--max-size",
                                                  NULL });
}

static int test_header_bound(void) {
        /* A sparse map of 300,000 one-byte regions: ~2.6 MB of map, read with the header. */
        const Big m[] = { { "map", 600000, 2, 1 } };
        _cleanup_close_ int in = build_big(m, ELEMENTSOF(m), TAR_COMPRESS_GZIP);
        CHECK(in >= 0);
        TarImportOptions o = { .ovl_ns = OVL_NS_USER };
        if (check_bomb(in, &o, -E2BIG, (const char *const[]) { "take more than 2 MiB", "sparse map", NULL }) < 0)
                return -1;
        /* A real sparse file (a few holes) is fine. */
        const Big ok[] = { { "holes", 1 << 20, 256 << 10, 4096 } };
        _cleanup_close_ int in2 = build_big(ok, ELEMENTSOF(ok), TAR_COMPRESS_NONE);
        char path[PATH_MAX];
        _cleanup_close_ int dest = new_dest(path, sizeof(path));
        TarReport rep = {};
        CHECK_EQ(tar_extract(in2, dest, &o, &rep), 0);
        struct stat st;
        CHECK_EQ(fstatat(dest, "holes", &st, 0), 0);
        CHECK_U64(st.st_size, 1 << 20);
        return 0;
}

static int test_max_entries(void) {
        Member m[100];
        char names[100][8];
        for (size_t i = 0; i < ELEMENTSOF(m); i++) {
                snprintf(names[i], sizeof names[i], "e%03zu", i);
                m[i] = (Member) { names[i], S_IFREG | 0644, "" };
        }
        _cleanup_close_ int in = build_archive(m, ELEMENTSOF(m));
        TarImportOptions o = { .ovl_ns = OVL_NS_USER, .limits.max_entries = 50 };
        if (check_bomb(in, &o, -E2BIG,
                       (const char *const[]) { "'e050'", "more than 50 entries", "--max-entries", NULL }) < 0)
                return -1;
        /* Directories a path implies count too: one member, six entries. */
        const Member deep[] = { { "a/b/c/d/e/f", S_IFREG | 0644, "x" } };
        _cleanup_close_ int in2 = build_archive(deep, ELEMENTSOF(deep));
        o.limits.max_entries = 4;
        if (check_bomb(in2, &o, -E2BIG, (const char *const[]) { "'a/b/c/d'", "more than 4 entries", NULL }) < 0)
                return -1;
        _cleanup_close_ int in3 = build_archive(deep, ELEMENTSOF(deep));
        o.limits.max_entries = 6;
        char path[PATH_MAX];
        _cleanup_close_ int dest = new_dest(path, sizeof(path));
        TarReport rep = {};
        CHECK_EQ(tar_extract(in3, dest, &o, &rep), 0);
        return 0;
}

static int test_max_meta(void) {
        /* Directories' modes and times wait in memory for the end: bounded. */
        Member m[40];
        char names[40][220];
        for (size_t i = 0; i < ELEMENTSOF(m); i++) {
                snprintf(names[i], sizeof names[i], "%0200zu/", i);
                m[i] = (Member) { names[i], S_IFDIR | 0755 };
        }
        _cleanup_close_ int in = build_archive(m, ELEMENTSOF(m));
        TarImportOptions o = { .ovl_ns = OVL_NS_USER, .limits.max_meta = 8192 };
        if (check_bomb(in, &o, -E2BIG, (const char *const[]) { "take more than 8 KiB of memory", NULL }) < 0)
                return -1;
        _cleanup_close_ int in2 = build_archive(m, ELEMENTSOF(m));
        char path[PATH_MAX];
        _cleanup_close_ int dest = new_dest(path, sizeof(path));
        TarReport rep = {};
        o.limits.max_meta = 0; /* the default */
        CHECK_EQ(tar_extract(in2, dest, &o, &rep), 0);
        return 0;
}

static int memfd_bytes(int fd, char **ret, size_t *ret_size) {
        off_t size = lseek(fd, 0, SEEK_END);
        if (size < 0)
                return -errno;
        char *b = malloc((size_t) size + 1);
        if (!b)
                return -ENOMEM;
        if (pread(fd, b, (size_t) size, 0) != size) {
                free(b);
                return -EIO;
        }
        *ret = b;
        *ret_size = (size_t) size;
        return 0;
}

static int test_export_import_export(void) {
        const Member m[] = {
                { "z/", S_IFDIR | 0755 },
                { "z/b", S_IFREG | 0644, "bbb", NULL, "user.k", "v" },
                { "z/a", S_IFREG | 0600, "aaaa" },
                { "z/link", 0, NULL, "z/a" },
                { "y", S_IFLNK | 0777, NULL, "z/b" },
        };
        _cleanup_close_ int in = build_archive(m, ELEMENTSOF(m));
        char path[PATH_MAX];
        _cleanup_close_ int dest = new_dest(path, sizeof(path));
        TarReport rep = {};
        TarImportOptions o = { .ovl_ns = OVL_NS_USER };
        CHECK_EQ(tar_extract(in, dest, &o, &rep), 0);

        _cleanup_close_ int out1 = memfd_create("out1", MFD_CLOEXEC), out2 = memfd_create("out2", MFD_CLOEXEC);
        TarReport r1 = {}, r2 = {};
        CHECK_EQ(tar_export(dest, out1, TAR_COMPRESS_GZIP, NULL, &r1), 0);
        CHECK_EQ(r1.entries, 5);
        CHECK_EQ(r1.bytes, 7); /* the hard link carries no data */

        /* Import the export and export that: the same bytes. */
        CHECK_EQ(lseek(out1, 0, SEEK_SET), 0);
        char path2[PATH_MAX];
        _cleanup_close_ int dest2 = new_dest(path2, sizeof(path2));
        TarReport ri = {};
        CHECK_EQ(tar_extract(out1, dest2, &o, &ri), 0);
        CHECK_EQ(tar_export(dest2, out2, TAR_COMPRESS_GZIP, NULL, &r2), 0);
        _cleanup_free_ char *b1 = NULL, *b2 = NULL;
        size_t s1, s2;
        CHECK_EQ(memfd_bytes(out1, &b1, &s1), 0);
        CHECK_EQ(memfd_bytes(out2, &b2, &s2), 0);
        CHECK_U64(s1, s2);
        CHECK(memcmp(b1, b2, s1) == 0);
        CHECK(b1[0] == '\x1f' && b1[1] == '\x8b');
        struct stat st, st2;
        CHECK_EQ(fstatat(dest2, "z/a", &st, AT_SYMLINK_NOFOLLOW), 0);
        CHECK_EQ(fstatat(dest2, "z/link", &st2, AT_SYMLINK_NOFOLLOW), 0);
        CHECK_EQ(st.st_ino, st2.st_ino);
        return 0;
}

int main(void) {
        static const TapTest tests[] = {
                TAP_TEST(path_normalize),
                TAP_TEST(whiteout_names),
                TAP_TEST(compress_names),
                TAP_TEST(extract_memory),
                TAP_TEST(extract_whiteout),
                TAP_TEST(import_symlink_then_write),
                TAP_TEST(import_existing_dest),
                TAP_TEST(limits_resolve),
                TAP_TEST(max_size),
                TAP_TEST(gzip_bomb),
                TAP_TEST(zstd_bomb),
                TAP_TEST(sparse_data_bound),
                TAP_TEST(header_bound),
                TAP_TEST(max_entries),
                TAP_TEST(max_meta),
                TAP_TEST(export_import_export),
        };
        if (tap_scratch_dir(tmp_root, sizeof tmp_root, "test-layer-tar") < 0)
                return 1;
        int r = tap_run(tests, ELEMENTSOF(tests));
        tap_remove_tree(tmp_root);
        return r;
}
