/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Command-line parsing for sandbox-unionfs. Accepts:
 *   sandbox-unionfs [-f] [-d] [-o OPTS]... [SOURCE] MOUNTPOINT
 * SOURCE is ignored, so mount(8) can call us as a helper ("mount -t fuse.sandbox-unionfs none MNT -o ...").
 * Our options are taken out of the -o list; overlayfs options that do not apply to us are accepted
 * and ignored where that is harmless, refused where ignoring them would change semantics; every
 * other option goes to libfuse, which rejects the ones it does not know.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "options.h"
#include "parse.h"

void union_options_done(UnionOptions *o) {
        for (size_t i = 0; i < o->n_lowerdirs; i++)
                free(o->lowerdirs[i]);
        free(o->upperdir);
        free(o->workdir);
        free(o->mountpoint);
        free(o->fuse_opts);
        *o = (UnionOptions) {};
}

/* Copy one field of S up to an unescaped SEP ('\0' for all of S), removing backslash escapes. */
static char *unescape_field(const char *s, char sep, const char **ret_end) {
        size_t n = strlen(s);
        char *out = malloc(n + 1), *q = out;

        if (!out)
                return NULL;
        for (; *s && *s != sep; s++) {
                if (*s == '\\' && s[1])
                        s++;
                *q++ = *s;
        }
        *q = '\0';
        *ret_end = s;
        return out;
}

static int append_fuse_opt(UnionOptions *o, const char *opt) {
        size_t old = o->fuse_opts ? strlen(o->fuse_opts) : 0, add = strlen(opt);
        char *n = realloc(o->fuse_opts, old + add + 2);

        if (!n)
                return -ENOMEM;
        if (old)
                n[old++] = ',';
        memcpy(n + old, opt, add + 1);
        o->fuse_opts = n;
        return 0;
}

static int set_path(char **dst, const char *name, const char *value) {
        const char *end;
        if (!*value) {
                log_error("Option '%s=' needs a directory.", name);
                return -EINVAL;
        }
        char *p = unescape_field(value, '\0', &end);
        if (!p)
                return -ENOMEM;
        free(*dst);
        *dst = p;
        return 0;
}

static int parse_bool_opt(const char *name, const char *value, bool *ret) {
        if (streq(value, "1") || streq(value, "on") || streq(value, "yes") || streq(value, "true"))
                *ret = true;
        else if (streq(value, "0") || streq(value, "off") || streq(value, "no") || streq(value, "false"))
                *ret = false;
        else {
                log_error("Option '%s=%s': expected on or off.", name, value);
                return -EINVAL;
        }
        return 0;
}

static int parse_lowerdir(UnionOptions *o, const char *value) {
        const char *p = value;

        if (!*value) {
                log_error("Option 'lowerdir=' needs at least one directory.");
                return -EINVAL;
        }
        for (size_t i = 0; i < o->n_lowerdirs; i++)
                free(o->lowerdirs[i]);
        o->n_lowerdirs = 0;

        for (;;) {
                const char *end;
                char *dir = unescape_field(p, ':', &end);
                if (!dir)
                        return -ENOMEM;
                if (!*dir) {
                        free(dir);
                        log_error("Option 'lowerdir=%s' has an empty layer.", value);
                        return -EINVAL;
                }
                if (o->n_lowerdirs >= UNION_MAX_LOWER) {
                        free(dir);
                        log_error("Too many lower layers (at most %d).", UNION_MAX_LOWER);
                        return -E2BIG;
                }
                o->lowerdirs[o->n_lowerdirs++] = dir;
                if (*end == '\0')
                        break;
                p = end + 1;
        }
        return 0;
}

/* One option from an -o list, already unescaped of its ',' separators. */
static int parse_one(UnionOptions *o, const char *opt) {
        const char *eq = strchr(opt, '=');
        size_t klen = eq ? (size_t) (eq - opt) : strlen(opt);
        const char *value = eq ? eq + 1 : NULL;
        char key[64];
        int r;

        if (klen == 0)
                return 0;
        if (klen >= sizeof key)
                return append_fuse_opt(o, opt);
        memcpy(key, opt, klen);
        key[klen] = '\0';

#define NEEDS_VALUE()                                                           \
        do {                                                                    \
                if (!value) {                                                   \
                        log_error("Option '%s' needs a value.", key);           \
                        return -EINVAL;                                         \
                }                                                               \
        } while (false)

        if (streq(key, "lowerdir")) {
                NEEDS_VALUE();
                return parse_lowerdir(o, value);
        }
        if (streq(key, "upperdir")) {
                NEEDS_VALUE();
                return set_path(&o->upperdir, key, value);
        }
        if (streq(key, "workdir")) {
                NEEDS_VALUE();
                return set_path(&o->workdir, key, value);
        }
        if (streq(key, "uidmapping") || streq(key, "gidmapping")) {
                NEEDS_VALUE();
                r = idmap_parse(value, key[0] == 'u' ? &o->uidmap : &o->gidmap);
                if (r < 0)
                        log_error("Invalid '%s=%s': expected FROM:TO:COUNT[:FROM:TO:COUNT...] with "
                                  "non-overlapping ranges.", key, value);
                return r;
        }
        if (streq(key, "timeout")) {
                char *end = NULL;
                NEEDS_VALUE();
                errno = 0;
                o->timeout = strtod(value, &end);
                if (errno != 0 || !end || end == value || *end || !isfinite(o->timeout) || o->timeout < 0 || o->timeout > 1e9) {
                        log_error("Invalid 'timeout=%s': expected seconds.", value);
                        return -EINVAL;
                }
                return 0;
        }
        if (streq(key, "threads")) {
                uint32_t n;
                NEEDS_VALUE();
                if (safe_atou32(value, &n) < 0 || n < 1 || n > 64) {
                        log_error("Invalid 'threads=%s': expected 1..64.", value);
                        return -EINVAL;
                }
                o->max_threads = n;
                return 0;
        }
        if (streq(key, "redirect_dir")) {
                NEEDS_VALUE();
                /* "follow"/"nofollow" are the kernel's read-side variants: both mean no new redirects. */
                if (streq(value, "on"))
                        o->redirect_dir = true;
                else if (streq(value, "off") || streq(value, "follow") || streq(value, "nofollow"))
                        o->redirect_dir = false;
                else {
                        log_error("Invalid 'redirect_dir=%s': expected on, off, follow or nofollow.", value);
                        return -EINVAL;
                }
                return 0;
        }
        if (streq(key, "userxattr")) {
                o->userxattr = true;
                return 0;
        }
        if (streq(key, "volatile")) {
                o->sync_copyup = false;
                return 0;
        }
        if (streq(key, "fsync")) {
                NEEDS_VALUE();
                return parse_bool_opt(key, value, &o->sync_copyup);
        }
        if (streq(key, "writeback")) {
                NEEDS_VALUE();
                return parse_bool_opt(key, value, &o->writeback);
        }
        if (streq(key, "snapshot")) {
                NEEDS_VALUE();
                return parse_bool_opt(key, value, &o->snapshot);
        }
        if (streq(key, "quota_bytes")) {
                NEEDS_VALUE();
                if (parse_size(value, &o->quota_bytes) < 0 || o->quota_bytes == 0) {
                        log_error("Invalid 'quota_bytes=%s': expected a size of at least 1 (k, m, g, t suffixes).",
                                  value);
                        return -EINVAL;
                }
                return 0;
        }
        if (streq(key, "quota_inodes")) {
                NEEDS_VALUE();
                if (safe_atou64(value, &o->quota_inodes) < 0 || o->quota_inodes == 0) {
                        log_error("Invalid 'quota_inodes=%s': expected a number of at least 1.", value);
                        return -EINVAL;
                }
                return 0;
        }
        if (streq(key, "quota_notify_fd")) {
                uint32_t fd;
                NEEDS_VALUE();
                if (safe_atou32(value, &fd) < 0 || fd < 3 || fd > INT_MAX) {
                        log_error("Invalid 'quota_notify_fd=%s': expected a file descriptor number above 2.", value);
                        return -EINVAL;
                }
                o->quota_notify = true;
                o->quota_notify_fd = (int) fd;
                return 0;
        }
        if (streq(key, "metacopy")) {
                NEEDS_VALUE();
                return parse_bool_opt(key, value, &o->metacopy);
        }
        /* Kernel overlayfs options with no meaning here: inode numbers are always unique (xino),
         * hard links are always kept (index), and we never export file handles. */
        if (streq(key, "index") || streq(key, "xino") || streq(key, "nfs_export") || streq(key, "uuid") ||
            streq(key, "verity"))
                return 0;

        /* fuse-overlayfs's options (1.10 to 1.16), see docs/unionfs.md for each. */
        if (streq(key, "squash_to_root")) {
                if (value) {
                        log_error("Option 'squash_to_root' takes no value.");
                        return -EINVAL;
                }
                o->squash_to_root = true;
                return 0;
        }
        if (streq(key, "squash_to_uid") || streq(key, "squash_to_gid")) {
                uint32_t id;
                NEEDS_VALUE();
                if (safe_atou32(value, &id) < 0 || id == UINT32_MAX) {
                        log_error("Invalid '%s=%s': expected a numeric id below 4294967295.", key, value);
                        return -EINVAL;
                }
                *(key[10] == 'u' ? &o->squash_uid : &o->squash_gid) = id;
                return 0;
        }
        if (streq(key, "static_nlink")) {
                o->static_nlink = true;
                return 0;
        }
        if (streq(key, "noxattrs")) {
                o->noxattrs = true;
                return value ? parse_bool_opt(key, value, &o->noxattrs) : 0;
        }
        if (streq(key, "xattr_permissions")) {
                uint32_t v;
                NEEDS_VALUE();
                if (safe_atou32(value, &v) < 0 || v > 2) {
                        log_error("Invalid 'xattr_permissions=%s': expected 0, 1 or 2.", value);
                        return -EINVAL;
                }
                o->xattr_permissions = v;
                return 0;
        }
        if (streq(key, "plugins")) {
                log_error("Option 'plugins=' is not supported: fuse-overlayfs's data-source plugins read lower "
                          "layers that are not directories; every layer here is a directory.");
                return -EOPNOTSUPP;
        }
        /* Accepted, nothing to do here: we are always multi-threaded (threaded), inode numbers never
         * need a lookup in the other layers (fast_ino), POSIX ACLs are never enabled through the mount
         * (noacl), the mount has no SELinux label of its own (context: fuse-overlayfs ignores it too),
         * and data always goes through splice and keep_cache (splice_*, kernel_cache). */
        if (streq(key, "threaded") || streq(key, "fast_ino") || streq(key, "noacl") || streq(key, "context") ||
            streq(key, "splice_read") || streq(key, "splice_write") || streq(key, "splice_move") ||
            streq(key, "kernel_cache") || streq(key, "max_write") || streq(key, "lazytime"))
                return 0;
        /* The FUSE kernel module never updates a directory's atime by itself: nodiratime always holds. */
        if (streq(key, "diratime") || streq(key, "nodiratime"))
                return 0;
        if (streq(key, "max_read")) {
                /* libfuse needs init() to ask for the same size, else it ends the session */
                uint32_t v;
                NEEDS_VALUE();
                if (safe_atou32(value, &v) < 0 || v < 4096) {
                        log_error("Invalid 'max_read=%s': expected bytes, at least 4096.", value);
                        return -EINVAL;
                }
                o->max_read = v;
                return append_fuse_opt(o, opt);
        }
        if (streq(key, "ro")) {
                o->readonly = true;
                return append_fuse_opt(o, opt);
        }
        if (streq(key, "rw"))
                return 0; /* mount(8) passes it; libfuse 3 does not take it */
        return append_fuse_opt(o, opt);
#undef NEEDS_VALUE
}

/* Split an -o argument on unescaped commas. Escapes stay in each option: paths are unescaped by
 * their own parsers (lowerdir splits on unescaped ':' first), and options for libfuse go on in
 * escaped form, which libfuse's own option parser understands. */
int union_options_parse_list(UnionOptions *o, const char *list) {
        const char *p = list;
        _cleanup_free_ char *buf = malloc(strlen(list) + 1);

        if (!buf)
                return -ENOMEM;
        while (*p) {
                size_t k = 0;
                for (; *p && *p != ','; p++) {
                        if (*p == '\\' && p[1])
                                buf[k++] = *p++;
                        buf[k++] = *p;
                }
                buf[k] = '\0';
                int r = parse_one(o, buf);
                if (r < 0)
                        return r;
                if (*p == ',')
                        p++;
        }
        return 0;
}

int union_options_parse(int argc, char **argv, UnionOptions *ret) {
        _cleanup_(union_options_done) UnionOptions o = {
                .timeout = 86400,
                .max_threads = 0,
                .redirect_dir = true,
                .sync_copyup = true,
                .writeback = true,
                .snapshot = true,
                .squash_uid = -1,
                .squash_gid = -1,
        };
        const char *positional[2];
        size_t n_positional = 0;
        bool options_end = false;
        int r;

        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];

                if (!options_end && a[0] == '-' && a[1] != '\0') {
                        if (streq(a, "--")) {
                                options_end = true;
                        } else if (streq(a, "-h") || streq(a, "--help")) {
                                o.show_help = true;
                        } else if (streq(a, "-V") || streq(a, "--version")) {
                                o.show_version = true;
                        } else if (streq(a, "-f")) {
                                o.foreground = true;
                        } else if (streq(a, "-d") || streq(a, "--debug")) {
                                o.debug = o.foreground = true;
                        } else if (streq(a, "-s")) {
                                /* libfuse's single-threaded switch: accepted, we stay multi-threaded */
                        } else if (streq(a, "-o") || strneq(a, "-o", 2)) {
                                const char *list = a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);
                                if (!list) {
                                        log_error("Option '-o' needs an argument.");
                                        return -EINVAL;
                                }
                                r = union_options_parse_list(&o, list);
                                if (r < 0)
                                        return r;
                        } else {
                                log_error("Unknown argument '%s'. See --help.", a);
                                return -EINVAL;
                        }
                        continue;
                }
                if (n_positional >= ELEMENTSOF(positional)) {
                        log_error("Too many arguments: '%s'. See --help.", a);
                        return -EINVAL;
                }
                positional[n_positional++] = a;
        }

        if (o.show_help || o.show_version) {
                *ret = o;
                o = (UnionOptions) {};
                return 0;
        }
        if (n_positional == 0) {
                log_error("Missing mount point. See --help.");
                return -EINVAL;
        }
        o.mountpoint = strdup(positional[n_positional - 1]); /* an optional SOURCE comes first */
        if (!o.mountpoint)
                return -ENOMEM;
        if (o.n_lowerdirs == 0) {
                log_error("Missing 'lowerdir=' option: at least one lower layer is needed.");
                return -EINVAL;
        }
        if (o.upperdir && !o.workdir) {
                log_error("Option 'upperdir=' needs 'workdir=' on the same filesystem.");
                return -EINVAL;
        }
        if (o.metacopy && !o.redirect_dir) {
                /* a metacopy file that moves needs a redirect to its data, as in overlayfs */
                log_error("Option 'metacopy=on' needs 'redirect_dir=on'.");
                return -EINVAL;
        }
        if (o.workdir && !o.upperdir) {
                log_error("Option 'workdir=' is only meaningful with 'upperdir='.");
                return -EINVAL;
        }
        if ((o.quota_bytes || o.quota_inodes || o.quota_notify) && !o.upperdir) {
                log_error("Options 'quota_bytes=', 'quota_inodes=' and 'quota_notify_fd=' need 'upperdir='.");
                return -EINVAL;
        }

        *ret = o;
        o = (UnionOptions) {};
        return 0;
}

static int stat_dir(const char *what, const char *path, struct stat *ret) {
        if (stat(path, ret) < 0)
                return log_error_errno(errno, "Cannot use %s '%s': %m", what, path);
        if (!S_ISDIR(ret->st_mode)) {
                log_error("Cannot use %s '%s': not a directory.", what, path);
                return -ENOTDIR;
        }
        return 0;
}

/* Is the directory at path B (with its stat) inside A or equal to it? Compares resolved paths. */
static bool path_is_beneath(const char *a, const char *b) {
        size_t n = strlen(a);
        if (n == 1 && a[0] == '/')
                return true;
        return strneq(a, b, n) && (b[n] == '/' || b[n] == '\0');
}

static bool mountpoint_is_fd(const char *mountpoint) {
        const char *n = startswith(mountpoint, "/dev/fd/");
        uint32_t fd;

        return n && safe_atou32(n, &fd) >= 0 && fd <= INT_MAX && fcntl((int) fd, F_GETFD) >= 0;
}

int union_options_check(const UnionOptions *o) {
        char *real[UNION_MAX_LOWER + 2] = {};
        size_t n_real = 0;
        struct stat st, ust, wst;
        int r = 0;

        for (size_t i = 0; i < o->n_lowerdirs; i++) {
                r = stat_dir("lower layer", o->lowerdirs[i], &st);
                if (r < 0)
                        goto finish;
        }
        /* "/dev/fd/N": the caller mounted already and hands us the /dev/fuse fd (libfuse >= 3.3). */
        if (!mountpoint_is_fd(o->mountpoint)) {
                r = stat_dir("mount point", o->mountpoint, &st);
                if (r < 0)
                        goto finish;
        }
        if (!o->upperdir)
                goto finish;
        if (o->quota_notify) {
                /* A pipe, and nothing else: not the FUSE connection, not a file we would scribble on. */
                if (fstat(o->quota_notify_fd, &st) < 0) {
                        r = log_error_errno(errno, "Cannot use 'quota_notify_fd=%d': %m", o->quota_notify_fd);
                        goto finish;
                }
                if (!S_ISFIFO(st.st_mode)) {
                        log_error("Cannot use 'quota_notify_fd=%d': not a pipe.", o->quota_notify_fd);
                        r = -EINVAL;
                        goto finish;
                }
        }

        r = stat_dir("upper layer", o->upperdir, &ust);
        if (r < 0)
                goto finish;
        r = stat_dir("work directory", o->workdir, &wst);
        if (r < 0)
                goto finish;
        if (ust.st_dev != wst.st_dev) {
                log_error("The work directory '%s' must be on the same filesystem as the upper layer '%s'.",
                          o->workdir, o->upperdir);
                r = -EXDEV;
                goto finish;
        }

        /* Resolved paths: [0] upper, [1] work, then the lowers. */
        const char *names[UNION_MAX_LOWER + 2];
        names[n_real] = o->upperdir, real[n_real++] = realpath(o->upperdir, NULL);
        names[n_real] = o->workdir, real[n_real++] = realpath(o->workdir, NULL);
        for (size_t i = 0; i < o->n_lowerdirs; i++)
                names[n_real] = o->lowerdirs[i], real[n_real++] = realpath(o->lowerdirs[i], NULL);
        for (size_t i = 0; i < n_real; i++)
                if (!real[i]) {
                        r = log_error_errno(errno, "Cannot resolve '%s': %m", names[i]);
                        goto finish;
                }

        if (path_is_beneath(real[0], real[1]) || path_is_beneath(real[1], real[0])) {
                log_error("The upper layer '%s' and the work directory '%s' must not contain each other.",
                          o->upperdir, o->workdir);
                r = -EINVAL;
                goto finish;
        }
        for (size_t i = 2; i < n_real; i++)
                for (size_t j = 0; j < 2; j++)
                        if (path_is_beneath(real[i], real[j]) || path_is_beneath(real[j], real[i])) {
                                log_error("The %s '%s' and the lower layer '%s' must not contain each other.",
                                          j == 0 ? "upper layer" : "work directory", names[j], names[i]);
                                r = -EINVAL;
                                goto finish;
                        }
finish:
        for (size_t i = 0; i < n_real; i++)
                free(real[i]);
        return r;
}

void union_options_help(const char *argv0) {
        printf("Usage: %s [-f] [-d] -o lowerdir=TOP:...:BOTTOM[,upperdir=DIR,workdir=DIR][,OPTIONS] [SOURCE] MOUNTPOINT\n\n"
               "Copy-on-write union filesystem in user space, compatible with overlayfs.\n\n"
               "  -h --help              Show this help\n"
               "  -V --version           Show the version\n"
               "  -f                     Stay in the foreground\n"
               "  -d                     Debug output (implies -f)\n\n"
               "Options (-o, comma separated):\n"
               "  lowerdir=TOP:...:BOTTOM  Read-only layers, leftmost on top ('\\:' and '\\,' escape)\n"
               "  upperdir=DIR           Writable layer; without it the mount is read-only\n"
               "  workdir=DIR            Scratch directory on the upper's filesystem\n"
               "  uidmapping=FROM:TO:COUNT[:...]  Show on-disk uid FROM as TO (and store back)\n"
               "  gidmapping=FROM:TO:COUNT[:...]  The same for gids\n"
               "  redirect_dir=on|off    Rename lower directories in place (on) or fail with EXDEV\n"
               "  userxattr              Use user.overlay.* instead of trusted.overlay.* xattrs\n"
               "  volatile, fsync=0      Do not fsync copied-up data, fsync() does nothing\n"
               "  metacopy=on|off        Metadata-only copy-up of files (default off)\n"
               "  writeback=0|1          Kernel writeback cache (default 1)\n"
               "  snapshot=0|1           Allow 'sandbox-layer snapshot' by the mount's owner (default 1)\n"
               "  quota_bytes=SIZE       Bytes the upper may grow by (allocated; k, m, g, t suffixes)\n"
               "  quota_inodes=N         Inodes the upper may gain\n"
               "  quota_notify_fd=N      Report the first refusal at the quota on this fd (a pipe)\n"
               "  timeout=SECONDS        Entry/attribute cache timeout (default 86400)\n"
               "  threads=N              Maximum worker threads\n"
               "  squash_to_root, squash_to_uid=UID, squash_to_gid=GID  Show every object owned by 0:0 / UID / GID\n"
               "  static_nlink           Every directory shows a link count of 1\n"
               "  noxattrs=0|1           No xattrs through the mount\n"
               "  xattr_permissions=0|1|2  Also keep owners and modes in fuse-overlayfs's override xattr\n"
               "  index=, xino=, nfs_export=, uuid=, verity=, threaded=, fast_ino=, noacl, context=  Accepted\n"
               "  Any FUSE mount option (allow_other, fsname=, ...). default_permissions is always on.\n\n"
               "See sandbox-unionfs(1).\n",
               argv0);
}
