/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * --image NAME: a sandbox on an image of the store (docs/images.md). The parent's side, before anything
 * of the sandbox exists: the reference is looked up in the store, the image's layers are pinned for the
 * sandbox's life (so that `sandbox-image prune` keeps them), and its config becomes the spec's defaults:
 *
 *   argv     --entrypoint PROG (or '' for none) and the command; else the image's Entrypoint and, after
 *            it, the command or else the image's Cmd (docker's and podman's rules: a command replaces Cmd,
 *            never Entrypoint; --entrypoint drops both)
 *   env      the image's Env, then -e over it (by name); HOME from the user's /etc/passwd entry when
 *            neither sets it
 *   workdir  -w, else the image's WorkingDir (made when the image lacks it, as docker does)
 *   ids      -u, else the image's User, resolved in the image's own /etc/passwd and /etc/group (read
 *            through its layers: image/rootfs.h), else 0:0
 *
 * What the image gives is bounded like a spec from the command line: the result goes through
 * spec_validate() (argument and environment counts and bytes, an absolute working directory, ids below
 * 65536), and a failure names the image and what of it is at fault. The store is only read here: the
 * image's layers are its own directories, used as lower layers of the sandbox's union and never written.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "macro.h"
#include "passwd.h"
#include "rootfs.h"
#include "runtime.h"

struct ImageRun {
        ImagePin *pin;
        bool command_optional;  /* a sandbox without a program of its own: no command is needed */
        char id[DIGEST_STRING_MAX];
        char **layers;          /* the image's layer directories, topmost first */
        size_t n_layers;
        char **argv, **env;
        size_t n_argv, n_env;
        char *workdir;
        bool workdir_from_image;
        uint32_t uid, gid;
};

__attribute__((format(printf, 4, 5)))
static int fail(char *err, size_t errlen, int r, const char *fmt, ...) {
        va_list ap;

        if (err && errlen > 0) {
                va_start(ap, fmt);
                vsnprintf(err, errlen, fmt, ap);
                va_end(ap);
        }
        return r;
}

static void strv_free_n(char **v, size_t n) {
        if (!v)
                return;
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

ImageRun *image_run_free(ImageRun *r) {
        if (!r)
                return NULL;
        image_pin_release(r->pin);
        strv_free_n(r->layers, r->n_layers);
        strv_free_n(r->argv, r->n_argv);
        strv_free_n(r->env, r->n_env);
        free(r->workdir);
        free(r);
        return NULL;
}

/* Append a copy of S to *V (*N entries, NULL-terminated). */
static int push(char ***v, size_t *n, const char *s) {
        char **nv = reallocarray(*v, *n + 2, sizeof(char *));
        if (!nv)
                return -ENOMEM;
        *v = nv;
        if (!(nv[*n] = strdup(s)))
                return -ENOMEM;
        nv[++*n] = NULL;
        return 0;
}

/* NAME=... in V[0..n): its index, or -1. */
static ssize_t env_find(char *const *v, size_t n, const char *entry) {
        size_t klen = strcspn(entry, "=") + 1;

        for (size_t i = 0; i < n; i++)
                if (strncmp(v[i], entry, klen) == 0)
                        return (ssize_t) i;
        return -1;
}

/* Set ENTRY (NAME=VALUE) in *V: replaces an entry of that name, else appended. */
static int env_set(char ***v, size_t *n, const char *entry) {
        ssize_t i = env_find(*v, *n, entry);

        if (i < 0)
                return push(v, n, entry);
        char *c = strdup(entry);
        if (!c)
                return -ENOMEM;
        free((*v)[i]);
        (*v)[i] = c;
        return 0;
}

int image_run_merge(const SandboxSpec *spec, const OciConfig *cfg, const char *home, ImageRun *ir, char *err,
                    size_t errlen) {
        char *const *entrypoint = NULL, *const *args = NULL;
        size_t n_args = 0;
        int r;

        /* The command: --entrypoint replaces the image's Entrypoint and Cmd; else a command replaces Cmd. */
        if (spec->entrypoint) {
                if (*spec->entrypoint && (r = push(&ir->argv, &ir->n_argv, spec->entrypoint)) < 0)
                        return r;
                args = spec->argv;
                n_args = spec->n_argv;
        } else {
                entrypoint = cfg->entrypoint;
                if (spec->n_argv > 0) {
                        args = spec->argv;
                        n_args = spec->n_argv;
                } else {
                        args = cfg->cmd;
                        n_args = args ? strv_length(args) : 0;
                }
        }
        for (size_t i = 0; entrypoint && entrypoint[i]; i++)
                if ((r = push(&ir->argv, &ir->n_argv, entrypoint[i])) < 0)
                        return r;
        for (size_t i = 0; i < n_args; i++)
                if ((r = push(&ir->argv, &ir->n_argv, args[i])) < 0)
                        return r;
        if (ir->n_argv == 0 && ir->command_optional)
                ; /* a sandbox without a program of its own: the image's command is only a default */
        else if (ir->n_argv == 0)
                return fail(err, errlen, -EINVAL, "%s",
                            spec->entrypoint ? "--entrypoint '' and no command: nothing to run"
                                             : "the image has no Entrypoint and no Cmd: give a command");
        else if (!*ir->argv[0])
                return fail(err, errlen, -EINVAL, "the command the image gives is empty (its Entrypoint or Cmd "
                            "begins with '')");

        /* The environment: the image's, then ours over it. */
        for (char **e = cfg->env; e && *e; e++)
                if ((r = env_set(&ir->env, &ir->n_env, *e)) < 0)
                        return r;
        for (size_t i = 0; i < spec->n_env; i++)
                if ((r = env_set(&ir->env, &ir->n_env, spec->env[i])) < 0)
                        return r;
        if (home && *home && env_find(ir->env, ir->n_env, "HOME=") < 0) {
                _cleanup_free_ char *h = NULL;
                if (asprintf(&h, "HOME=%s", home) < 0)
                        return -ENOMEM;
                if ((r = push(&ir->env, &ir->n_env, h)) < 0)
                        return r;
        }

        if (!spec->workdir && cfg->working_dir) {
                if (cfg->working_dir[0] != '/')
                        return fail(err, errlen, -EINVAL, "its WorkingDir '%s' is not an absolute path",
                                    cfg->working_dir);
                if (!(ir->workdir = strdup(cfg->working_dir)))
                        return -ENOMEM;
                ir->workdir_from_image = true;
        }
        return 0;
}

/* /etc/passwd or /etc/group of the image: 0 and the text, or 0 and NULL when it has none, or -errno. */
static int read_etc(const ImageRun *ir, const char *path, char **ret, size_t *ret_size) {
        int r = image_rootfs_read_file(ir->layers, ir->n_layers, path, IMAGE_ROOTFS_FILE_MAX, ret, ret_size);
        if (r == -ENOENT) {
                *ret = NULL;
                *ret_size = 0;
                return 0;
        }
        return r;
}

static const char *read_error(int r) {
        switch (r) {
        case -ELOOP:
                return "it is a symlink, or reached through one, which is not followed";
        case -EFBIG:
                return "it is larger than 1 MiB";
        case -EISDIR:
                return "it is a directory";
        case -EPERM:
                return "it is not a regular file";
        default:
                return strerror(-r);
        }
}

/* The user: -u, else the image's User, else root. */
static int resolve_user(const SandboxSpec *spec, const OciConfig *cfg, ImageRun *ir, ImageUser *ret, char *err,
                        size_t errlen) {
        const char *user = spec->user ?: cfg->user;
        const char *what = spec->user ? "--user" : "the image's User";
        _cleanup_free_ char *passwd = NULL, *group = NULL;
        size_t passwd_len = 0, group_len = 0;
        const char *colon;
        char why[512];
        int r;

        if (!user) {
                *ret = (ImageUser) {};
                return 0;
        }
        r = read_etc(ir, "etc/passwd", &passwd, &passwd_len);
        if (r < 0)
                return fail(err, errlen, r, "%s '%s': cannot read the image's /etc/passwd: %s", what, user,
                            read_error(r));
        colon = strchr(user, ':');
        if (colon && colon[1] && strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
                r = read_etc(ir, "etc/group", &group, &group_len);
                if (r < 0)
                        return fail(err, errlen, r, "%s '%s': cannot read the image's /etc/group: %s", what, user,
                                    read_error(r));
        }
        r = image_user_resolve(user, passwd, passwd_len, group, group_len, ret, why, sizeof why);
        if (r < 0)
                return fail(err, errlen, r, "%s: %s", what, why);
        if (ret->uid > 65535 || ret->gid > 65535)
                return fail(err, errlen, -ERANGE, "%s '%s' is uid %u, gid %u: a sandbox maps the ids 0 to 65535 "
                            "only", what, user, ret->uid, ret->gid);
        return 0;
}

int image_run_prepare(const char *store_path, const SandboxSpec *spec, bool need_command, ImageRun **ret, char *err,
                      size_t errlen) {
        _cleanup_(image_store_freep) ImageStore *store = NULL;
        _cleanup_(image_freep) Image *img = NULL;
        _cleanup_(image_run_freep) ImageRun *ir = NULL;
        const char *path = store_path ?: IMAGE_STORE_DEFAULT;
        const char *ref = spec->image_ref;
        ImageReport rep = {};
        ImageUser user;
        char why[768] = "";
        int r;

        r = image_store_open(path, false, &store, &rep);
        if (r == -ENOENT)
                return fail(err, errlen, r, "--image '%s': there is no image store at '%s': pull the image with "
                            "'sandbox-image pull %s'", ref, path, ref);
        if (r < 0)
                return fail(err, errlen, r, "--image '%s': %s", ref, rep.error);
        r = image_store_lookup(store, ref, &img, &rep);
        if (r < 0)
                return fail(err, errlen, r, "--image '%s': %s", ref, rep.error);
        if (img->n_layers == 0)
                return fail(err, errlen, -EINVAL, "--image '%s': image %s has no layers", ref, img->id);

        ir = calloc(1, sizeof *ir);
        if (!ir)
                return -ENOMEM;
        ir->command_optional = !need_command;
        snprintf(ir->id, sizeof ir->id, "%s", img->id);
        /* Pinned before anything reads its layers: a prune from now on keeps them. */
        r = image_store_pin(store, img, &ir->pin, &rep);
        if (r < 0)
                return fail(err, errlen, r, "--image '%s': %s", ref, rep.error);
        for (size_t i = 0; i < img->n_layers; i++)
                if ((r = push(&ir->layers, &ir->n_layers, img->layers[i].path)) < 0)
                        return r;

        r = resolve_user(spec, img->config, ir, &user, why, sizeof why);
        if (r < 0)
                return fail(err, errlen, r, "--image '%s': %s", ref, why);
        ir->uid = user.uid;
        ir->gid = user.gid;
        r = image_run_merge(spec, img->config, user.home, ir, why, sizeof why);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return fail(err, errlen, r, "--image '%s': %s", ref, why);
        *ret = TAKE_PTR(ir);
        return 0;
}

void image_run_apply(const ImageRun *ir, SandboxSpec *spec) {
        spec->argv = ir->argv;
        spec->n_argv = ir->n_argv;
        spec->env = ir->env;
        spec->n_env = ir->n_env;
        if (ir->workdir)
                spec->workdir = ir->workdir;
        spec->uid = ir->uid;
        spec->gid = ir->gid;
}

char *const *image_run_layers(const ImageRun *ir, size_t *ret_n) {
        *ret_n = ir->n_layers;
        return ir->layers;
}

bool image_run_workdir_from_image(const ImageRun *ir) {
        return ir->workdir_from_image;
}

const char *image_run_id(const ImageRun *ir) {
        return ir->id;
}

ImageRun *image_run_new(void) {
        return calloc(1, sizeof(ImageRun));
}

char *const *image_run_argv(const ImageRun *ir, size_t *ret_n) {
        *ret_n = ir->n_argv;
        return ir->argv;
}

char *const *image_run_env(const ImageRun *ir, size_t *ret_n) {
        *ret_n = ir->n_env;
        return ir->env;
}

const char *image_run_workdir(const ImageRun *ir) {
        return ir->workdir;
}

int image_run_pin_fd(const ImageRun *ir) {
        return ir ? image_pin_fd(ir->pin) : -EBADF;
}

void image_run_unpin(ImageRun *ir) {
        ir->pin = image_pin_release(ir->pin);
}
