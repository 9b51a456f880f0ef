/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * config.json → SandboxSpec (+ what sandbox-oci applies itself). Read top-down: the document is parsed under
 * ojson's bounds (size, nesting, duplicate keys, UTF-8), then each part is translated or refused. Refusals name
 * the field in the runtime-spec's own dotted form ("linux.namespaces[2].path"), so that an engine's user sees
 * which option of theirs asked for it. Where the runtime is stricter than asked (a user namespace, pid/ipc/uts
 * namespaces always, no_new_privs always, our /dev), the request is accepted: docs/oci-runtime.md lists these.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bundle.h"
#include "macro.h"
#include "oci-seccomp.h"
#include "ojson.h"
#include "parse.h"

typedef struct Parser {
        char *err;
        size_t errlen;
        const char *bundle;
} Parser;

__attribute__((format(printf, 3, 4)))
static int fail(Parser *p, int r, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(p->err, p->errlen, fmt, ap);
        va_end(ap);
        return r;
}

#define REFUSE(p, field) fail((p), -EINVAL, "%s is not supported by sandbox-oci (docs/oci-runtime.md)", (field))

static const char *const hook_names[_OCI_HOOK_MAX] = {
        [OCI_HOOK_PRESTART] = "prestart",
        [OCI_HOOK_CREATE_RUNTIME] = "createRuntime",
        [OCI_HOOK_POSTSTART] = "poststart",
        [OCI_HOOK_POSTSTOP] = "poststop",
        [OCI_HOOK_CREATE_CONTAINER] = "createContainer",
        [OCI_HOOK_START_CONTAINER] = "startContainer",
};

const char *oci_hook_kind_to_string(OciHookKind k) {
        return k >= 0 && k < _OCI_HOOK_MAX ? hook_names[k] : NULL;
}

static void strv_free_n(char **v, size_t n) {
        if (!v)
                return;
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

static void hook_done(OciHook *h) {
        free(h->path);
        strv_free(h->args);
        strv_free(h->env);
}

void oci_bundle_done(OciBundle *b) {
        if (!b)
                return;
        spec_done(&b->spec);
        free(b->oci_version);
        free(b->root);
        strv_free_n(b->masked, b->n_masked);
        strv_free_n(b->readonly, b->n_readonly);
        for (size_t i = 0; i < b->n_sysctl; i++) {
                free(b->sysctl[i].key);
                free(b->sysctl[i].value);
        }
        free(b->sysctl);
        for (size_t k = 0; k < _OCI_HOOK_MAX; k++) {
                for (size_t i = 0; i < b->n_hooks[k]; i++)
                        hook_done(&b->hooks[k][i]);
                free(b->hooks[k]);
        }
        free(b->cgroup_dest);
        free(b->cgroups_path);
        free(b->mqueue_dest);
        for (size_t i = 0; i < _OCI_JOIN_MAX; i++)
                free(b->join[i]);
        filter_program_free(b->seccomp);
        for (size_t i = 0; i < b->n_devices; i++)
                free(b->devices[i].path);
        free(b->devices);
        *b = (OciBundle) { .umask = -1 };
}

static bool is_empty(const json_t *v) {
        return !v || json_is_null(v) || (json_is_array(v) && json_array_size(v) == 0) ||
               (json_is_object(v) && json_object_size(v) == 0) || (json_is_string(v) && json_string_length(v) == 0);
}

/* OBJ[KEY] as a string of at most MAX bytes: 0 and NULL when missing or null. */
static int get_string(Parser *p, const json_t *obj, const char *key, const char *field, size_t max, const char **ret) {
        const json_t *v = json_object_get(obj, key);

        *ret = NULL;
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_string(v))
                return fail(p, -EINVAL, "%s must be a string", field);
        if (json_string_length(v) > max)
                return fail(p, -E2BIG, "%s is longer than %zu bytes", field, max);
        *ret = json_string_value(v);
        return 0;
}

static int get_bool(Parser *p, const json_t *obj, const char *key, const char *field, bool *ret) {
        const json_t *v = json_object_get(obj, key);

        if (!v || json_is_null(v))
                return 0;
        if (!json_is_boolean(v))
                return fail(p, -EINVAL, "%s must be true or false", field);
        *ret = json_is_true(v);
        return 0;
}

/* OBJ[KEY] as an integer in [MIN, MAX]: -ENOENT when missing or null. */
static int get_int(Parser *p, const json_t *obj, const char *key, const char *field, int64_t min, int64_t max,
                   int64_t *ret) {
        const json_t *v = json_object_get(obj, key);

        if (!v || json_is_null(v))
                return -ENOENT;
        if (!json_is_integer(v))
                return fail(p, -EINVAL, "%s must be an integer", field);
        json_int_t n = json_integer_value(v);
        if (n < min || n > max)
                return fail(p, -EINVAL, "%s is out of range (%" PRId64 " to %" PRId64 ")", field, min, max);
        *ret = n;
        return 0;
}

/* An array of at most MAX strings of at most SPEC_STRING_MAX bytes, NULL-terminated, *ret_n entries. */
static int get_strv(Parser *p, const json_t *obj, const char *key, const char *field, size_t max, char ***ret,
                    size_t *ret_n) {
        const json_t *v = json_object_get(obj, key);
        char **l;

        *ret = NULL;
        if (ret_n)
                *ret_n = 0;
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_array(v))
                return fail(p, -EINVAL, "%s must be an array of strings", field);
        size_t n = json_array_size(v);
        if (n > max)
                return fail(p, -E2BIG, "%s has more than %zu entries", field, max);
        l = calloc(n + 1, sizeof(char *));
        if (!l)
                return fail(p, -ENOMEM, "Out of memory");
        for (size_t i = 0; i < n; i++) {
                const json_t *e = json_array_get(v, i);
                if (!json_is_string(e) || json_string_length(e) >= SPEC_STRING_MAX) {
                        strv_free(l);
                        return fail(p, -EINVAL, "%s[%zu] must be a string shorter than %d bytes", field, i,
                                    SPEC_STRING_MAX);
                }
                l[i] = strdup(json_string_value(e));
                if (!l[i]) {
                        strv_free(l);
                        return fail(p, -ENOMEM, "Out of memory");
                }
        }
        *ret = l;
        if (ret_n)
                *ret_n = n;
        return 0;
}

static bool path_is_absolute(const char *s) {
        return s && s[0] == '/' && strlen(s) < SPEC_STRING_MAX;
}

/* PATH, or BUNDLE/PATH when relative. */
static int bundle_path(Parser *p, const char *path, const char *field, char **ret) {
        char *s;

        if (!path || !*path)
                return fail(p, -EINVAL, "%s is missing", field);
        if (path[0] == '/')
                s = strdup(path);
        else if (asprintf(&s, "%s/%s", p->bundle, path) < 0)
                s = NULL;
        if (!s)
                return fail(p, -ENOMEM, "Out of memory");
        if (strlen(s) >= SPEC_STRING_MAX) {
                free(s);
                return fail(p, -E2BIG, "%s is longer than %d bytes", field, SPEC_STRING_MAX - 1);
        }
        *ret = s;
        return 0;
}

static int parse_root(Parser *p, const json_t *doc, OciBundle *b) {
        const json_t *root = json_object_get(doc, "root");
        const char *path;
        int r;

        if (!json_is_object(root))
                return fail(p, -EINVAL, "root is missing (root.path names the container's root file system)");
        r = get_string(p, root, "path", "root.path", SPEC_STRING_MAX - 1, &path);
        if (r < 0)
                return r;
        r = bundle_path(p, path, "root.path", &b->root);
        if (r < 0)
                return r;
        return get_bool(p, root, "readonly", "root.readonly", &b->root_readonly);
}

/* "CAP_CHOWN" names: as a mask. */
static int parse_cap_set(Parser *p, const json_t *caps, const char *key, uint64_t *ret, bool *ret_present) {
        const json_t *v = json_object_get(caps, key);
        char field[64];
        uint64_t mask = 0;

        snprintf(field, sizeof field, "process.capabilities.%s", key);
        *ret_present = v && !json_is_null(v);
        if (!*ret_present) {
                *ret = 0;
                return 0;
        }
        if (!json_is_array(v) || json_array_size(v) > 64)
                return fail(p, -EINVAL, "%s must be an array of at most 64 capability names", field);
        for (size_t i = 0; i < json_array_size(v); i++) {
                const json_t *e = json_array_get(v, i);
                int cap;
                if (!json_is_string(e) || spec_cap_from_string(json_string_value(e), &cap) < 0)
                        return fail(p, -EINVAL, "%s[%zu] is not a capability this runtime knows", field, i);
                mask |= SPEC_CAP(cap);
        }
        *ret = mask;
        return 0;
}

/* The program's capabilities are one set here (spec_capabilities()): root gets bounding ∩ permitted (ambient
 * for other users), expressed as cap_add/cap_drop against our default set. */
static int parse_capabilities(Parser *p, const json_t *process, OciBundle *b) {
        const json_t *caps = json_object_get(process, "capabilities");
        uint64_t bounding, permitted, effective, ambient, inheritable, want;
        bool has_b, has_p, has_e, has_a, has_i;
        int r;

        if (!caps || json_is_null(caps)) {
                /* No capabilities at all. */
                b->spec.cap_drop = SPEC_CAPS_ALL;
                return 0;
        }
        if (!json_is_object(caps))
                return fail(p, -EINVAL, "process.capabilities must be an object");
        if ((r = parse_cap_set(p, caps, "bounding", &bounding, &has_b)) < 0 ||
            (r = parse_cap_set(p, caps, "permitted", &permitted, &has_p)) < 0 ||
            (r = parse_cap_set(p, caps, "effective", &effective, &has_e)) < 0 ||
            (r = parse_cap_set(p, caps, "ambient", &ambient, &has_a)) < 0 ||
            (r = parse_cap_set(p, caps, "inheritable", &inheritable, &has_i)) < 0)
                return r;
        if (b->spec.uid == 0)
                want = (has_b ? bounding : 0) & (has_p ? permitted : effective);
        else
                want = ambient & (has_b ? bounding : SPEC_CAPS_ALL);
        if (want == 0) {
                b->spec.cap_drop = SPEC_CAPS_ALL;
                return 0;
        }
        b->spec.cap_add = want & ~SPEC_CAPS_DEFAULT;
        b->spec.cap_drop = SPEC_CAPS_DEFAULT & ~want;
        /* Both ALL-less masks: they cannot overlap (spec_validate()). */
        return 0;
}

static int parse_rlimits(Parser *p, const json_t *process, OciBundle *b) {
        const json_t *v = json_object_get(process, "rlimits");

        if (!v || json_is_null(v))
                return 0;
        if (!json_is_array(v))
                return fail(p, -EINVAL, "process.rlimits must be an array");
        if (json_array_size(v) > SPEC_RLIMITS_MAX)
                return fail(p, -E2BIG, "process.rlimits has more than %d entries", SPEC_RLIMITS_MAX);
        for (size_t i = 0; i < json_array_size(v); i++) {
                const json_t *e = json_array_get(v, i);
                const json_t *soft, *hard;
                const char *type;
                char name[32];
                int resource;

                if (!json_is_object(e) || !(type = json_string_value(json_object_get(e, "type"))) ||
                    strncmp(type, "RLIMIT_", 7) != 0 || strlen(type) >= sizeof name + 7)
                        return fail(p, -EINVAL, "process.rlimits[%zu].type must be RLIMIT_NAME", i);
                size_t k = 0;
                for (const char *c = type + 7; *c; c++)
                        name[k++] = (char) (*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
                name[k] = '\0';
                if (spec_rlimit_from_string(name, &resource) < 0)
                        return fail(p, -EINVAL, "process.rlimits[%zu].type: %s is not supported", i, type);
                soft = json_object_get(e, "soft");
                hard = json_object_get(e, "hard");
                if (!json_is_integer(soft) || !json_is_integer(hard))
                        return fail(p, -EINVAL, "process.rlimits[%zu] needs integer soft and hard", i);
                /* Go's uint64 max arrives as a value jansson cannot hold: refused by the parser as too big.
                 * -1 (as some engines write it) is unlimited. */
                json_int_t s = json_integer_value(soft), h = json_integer_value(hard);
                uint64_t us = s < 0 ? RLIM_INFINITY : (uint64_t) s, uh = h < 0 ? RLIM_INFINITY : (uint64_t) h;
                if (us > uh)
                        return fail(p, -EINVAL, "process.rlimits[%zu]: soft is above hard", i);
                for (size_t j = 0; j < b->spec.n_rlimits; j++)
                        if (b->spec.rlimits[j].resource == resource)
                                return fail(p, -EINVAL, "process.rlimits[%zu]: %s is set twice", i, type);
                b->spec.rlimits[b->spec.n_rlimits++] = (SpecRlimit) { .resource = resource, .soft = us, .hard = uh };
        }
        return 0;
}

static int parse_process(Parser *p, const json_t *doc, OciBundle *b) {
        const json_t *process = json_object_get(doc, "process"), *user, *v;
        const char *s;
        int64_t n;
        int r;

        if (!json_is_object(process))
                return fail(p, -EINVAL, "process is missing (process.args names the program)");
        r = get_strv(p, process, "args", "process.args", SPEC_ARGS_MAX, &b->spec.argv, &b->spec.n_argv);
        if (r < 0)
                return r;
        if (b->spec.n_argv == 0 || b->spec.argv[0][0] == '\0')
                return fail(p, -EINVAL, "process.args is missing or empty");
        if (json_object_get(process, "commandLine"))
                return REFUSE(p, "process.commandLine");
        r = get_strv(p, process, "env", "process.env", SPEC_ENV_MAX, &b->spec.env, &b->spec.n_env);
        if (r < 0)
                return r;
        for (size_t i = 0; i < b->spec.n_env; i++) {
                const char *eq = strchr(b->spec.env[i], '=');
                if (!eq || eq == b->spec.env[i])
                        return fail(p, -EINVAL, "process.env[%zu] is not NAME=VALUE", i);
        }
        r = get_string(p, process, "cwd", "process.cwd", SPEC_STRING_MAX - 1, &s);
        if (r < 0)
                return r;
        if (!path_is_absolute(s))
                return fail(p, -EINVAL, "process.cwd must be an absolute path");
        if (!(b->spec.workdir = strdup(s)))
                return fail(p, -ENOMEM, "Out of memory");
        r = get_bool(p, process, "terminal", "process.terminal", &b->spec.tty);
        if (r < 0)
                return r;

        user = json_object_get(process, "user");
        if (!json_is_object(user))
                return fail(p, -EINVAL, "process.user is missing");
        r = get_int(p, user, "uid", "process.user.uid", 0, 65535, &n);
        if (r == -ENOENT)
                return fail(p, -EINVAL, "process.user.uid is missing");
        if (r < 0)
                return r;
        b->spec.uid = (uint32_t) n;
        r = get_int(p, user, "gid", "process.user.gid", 0, 65535, &n);
        if (r == -ENOENT)
                return fail(p, -EINVAL, "process.user.gid is missing");
        if (r < 0)
                return r;
        b->spec.gid = (uint32_t) n;
        r = get_int(p, user, "umask", "process.user.umask", 0, 0777, &n);
        if (r == 0)
                b->umask = (int) n;
        else if (r != -ENOENT)
                return r;
        if (json_object_get(user, "username") && !is_empty(json_object_get(user, "username")))
                return REFUSE(p, "process.user.username");
        /* Supplementary groups: ids inside (the sandbox's user namespace maps 0-65535 and nothing else). */
        v = json_object_get(user, "additionalGids");
        if (v && !json_is_null(v)) {
                if (!json_is_array(v) || json_array_size(v) > OCI_GIDS_MAX)
                        return fail(p, -EINVAL, "process.user.additionalGids must be an array of at most %d gids",
                                    OCI_GIDS_MAX);
                for (size_t i = 0; i < json_array_size(v); i++) {
                        const json_t *e = json_array_get(v, i);
                        if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) > 65535)
                                return fail(p, -EINVAL, "process.user.additionalGids[%zu] must be a gid below 65536",
                                            i);
                        b->gids[b->n_gids++] = (uint32_t) json_integer_value(e);
                }
        }

        r = parse_capabilities(p, process, b);
        if (r < 0)
                return r;
        r = parse_rlimits(p, process, b);
        if (r < 0)
                return r;
        /* no_new_privs is always set: false is accepted (stricter). */
        bool nnp = true;
        r = get_bool(p, process, "noNewPrivileges", "process.noNewPrivileges", &nnp);
        if (r < 0)
                return r;
        int64_t oom;
        r = get_int(p, process, "oomScoreAdj", "process.oomScoreAdj", -1000, 1000, &oom);
        if (r == 0) {
                b->has_oom_score_adj = true;
                b->oom_score_adj = (int) oom;
        } else if (r != -ENOENT)
                return r;
        if (!is_empty(json_object_get(process, "apparmorProfile")))
                return REFUSE(p, "process.apparmorProfile");
        if (!is_empty(json_object_get(process, "selinuxLabel")))
                return REFUSE(p, "process.selinuxLabel");
        if (!is_empty(json_object_get(process, "ioPriority")))
                return REFUSE(p, "process.ioPriority");
        if (!is_empty(json_object_get(process, "scheduler")))
                return REFUSE(p, "process.scheduler");
        if (!is_empty(json_object_get(process, "execCPUAffinity")))
                return REFUSE(p, "process.execCPUAffinity");
        return 0;
}

static bool has_option(const json_t *options, const char *name) {
        for (size_t i = 0; i < json_array_size(options); i++)
                if (json_is_string(json_array_get(options, i)) && streq(json_string_value(json_array_get(options, i)), name))
                        return true;
        return false;
}

static int add_bind(Parser *p, OciBundle *b, const char *source, const char *dest, bool ro, size_t i) {
        char field[64];
        SpecBind *n;
        int r;

        if (b->spec.n_binds >= SPEC_MOUNTS_MAX)
                return fail(p, -E2BIG, "mounts: more than %d bind mounts", SPEC_MOUNTS_MAX);
        n = realloc(b->spec.binds, (b->spec.n_binds + 1) * sizeof *n);
        if (!n)
                return fail(p, -ENOMEM, "Out of memory");
        b->spec.binds = n;
        SpecBind *e = &n[b->spec.n_binds];
        *e = (SpecBind) { .readonly = ro };
        snprintf(field, sizeof field, "mounts[%zu].source", i);
        r = bundle_path(p, source, field, &e->source);
        if (r < 0)
                return r;
        if (!(e->dest = strdup(dest))) {
                free(e->source);
                return fail(p, -ENOMEM, "Out of memory");
        }
        b->spec.n_binds++;
        return 0;
}

static int add_tmpfs(Parser *p, OciBundle *b, const char *dest, const json_t *options, size_t i) {
        uint64_t size = 0;
        SpecTmpfs *n;

        for (size_t k = 0; k < json_array_size(options); k++) {
                const char *o = json_string_value(json_array_get(options, k));
                if (o && strneq(o, "size=", 5)) {
                        if (parse_size(o + 5, &size) < 0 || size == 0)
                                return fail(p, -EINVAL, "mounts[%zu].options: %s is not a size", i, o);
                }
        }
        for (size_t k = 0; k < b->spec.n_tmpfs; k++)
                if (streq(b->spec.tmpfs[k].dest, dest))
                        return fail(p, -EINVAL, "mounts[%zu]: a second tmpfs at %s", i, dest);
        if (b->spec.n_tmpfs >= SPEC_MOUNTS_MAX)
                return fail(p, -E2BIG, "mounts: more than %d tmpfs mounts", SPEC_MOUNTS_MAX);
        n = realloc(b->spec.tmpfs, (b->spec.n_tmpfs + 1) * sizeof *n);
        if (!n)
                return fail(p, -ENOMEM, "Out of memory");
        b->spec.tmpfs = n;
        if (!(n[b->spec.n_tmpfs].dest = strdup(dest)))
                return fail(p, -ENOMEM, "Out of memory");
        n[b->spec.n_tmpfs++].size = size;
        return 0;
}

static int parse_mounts(Parser *p, const json_t *doc, OciBundle *b) {
        const json_t *mounts = json_object_get(doc, "mounts");

        if (!mounts || json_is_null(mounts))
                return 0;
        if (!json_is_array(mounts))
                return fail(p, -EINVAL, "mounts must be an array");
        if (json_array_size(mounts) > 2 * SPEC_MOUNTS_MAX + 16)
                return fail(p, -E2BIG, "mounts has more than %d entries", 2 * SPEC_MOUNTS_MAX + 16);
        for (size_t i = 0; i < json_array_size(mounts); i++) {
                const json_t *m = json_array_get(mounts, i), *options;
                const char *dest, *type, *source;
                char field[64];
                int r;

                if (!json_is_object(m))
                        return fail(p, -EINVAL, "mounts[%zu] must be an object", i);
                snprintf(field, sizeof field, "mounts[%zu].destination", i);
                if ((r = get_string(p, m, "destination", field, SPEC_STRING_MAX - 1, &dest)) < 0)
                        return r;
                if (!path_is_absolute(dest) || streq(dest, "/") || strstr(dest, "/../") ||
                    (strlen(dest) >= 3 && streq(dest + strlen(dest) - 3, "/..")))
                        return fail(p, -EINVAL, "%s must be an absolute path other than / without '..'", field);
                snprintf(field, sizeof field, "mounts[%zu].type", i);
                if ((r = get_string(p, m, "type", field, 64, &type)) < 0)
                        return r;
                snprintf(field, sizeof field, "mounts[%zu].source", i);
                if ((r = get_string(p, m, "source", field, SPEC_STRING_MAX - 1, &source)) < 0)
                        return r;
                options = json_object_get(m, "options");
                if (options && !json_is_null(options) && (!json_is_array(options) || json_array_size(options) > 64))
                        return fail(p, -EINVAL, "mounts[%zu].options must be an array of at most 64 strings", i);
                if (json_object_get(m, "uidMappings") || json_object_get(m, "gidMappings"))
                        return fail(p, -EINVAL, "mounts[%zu].uidMappings: idmapped mounts are not supported by "
                                                "sandbox-oci", i);
                bool bind = has_option(options, "bind") || has_option(options, "rbind") || (type && streq(type, "bind"));
                bool ro = has_option(options, "ro");

                if (bind) {
                        r = add_bind(p, b, source, dest, ro, i);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (!type)
                        return fail(p, -EINVAL, "mounts[%zu].type is missing", i);
                /* What the runtime mounts anyway, as engines ask for it. */
                if ((streq(type, "proc") && streq(dest, "/proc")) || (streq(type, "sysfs") && streq(dest, "/sys")) ||
                    (streq(type, "devpts") && streq(dest, "/dev/pts")) || (streq(type, "tmpfs") && streq(dest, "/dev")) ||
                    (streq(type, "mqueue") && streq(dest, "/dev/mqueue")))
                        continue;
                if (streq(type, "tmpfs")) {
                        r = add_tmpfs(p, b, dest, options, i);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (streq(type, "mqueue")) {
                        if (b->mqueue_dest)
                                return fail(p, -EINVAL, "mounts[%zu]: a second mqueue mount", i);
                        if (!(b->mqueue_dest = strdup(dest)))
                                return fail(p, -ENOMEM, "Out of memory");
                        continue;
                }
                if (streq(type, "cgroup") || streq(type, "cgroup2")) {
                        if (b->cgroup_dest)
                                return fail(p, -EINVAL, "mounts[%zu]: a second cgroup mount", i);
                        if (!(b->cgroup_dest = strdup(dest)))
                                return fail(p, -ENOMEM, "Out of memory");
                        b->cgroup_readonly = ro;
                        continue;
                }
                return fail(p, -EINVAL, "mounts[%zu]: type '%s' at %s is not supported by sandbox-oci (bind, tmpfs, "
                                        "proc, sysfs, devpts, mqueue and cgroup are)", i, type, dest);
        }
        return 0;
}

static const char *const join_names[_OCI_JOIN_MAX] = {
        [OCI_JOIN_NET] = "network",
        [OCI_JOIN_IPC] = "ipc",
        [OCI_JOIN_UTS] = "uts",
};

const char *oci_join_to_string(OciJoin j) {
        return j >= 0 && j < _OCI_JOIN_MAX ? join_names[j] : NULL;
}

static int parse_namespaces(Parser *p, const json_t *linux_, OciBundle *b) {
        const json_t *ns = json_object_get(linux_, "namespaces");
        bool network = false;

        if (ns && !json_is_null(ns)) {
                if (!json_is_array(ns) || json_array_size(ns) > OCI_NAMESPACES_MAX)
                        return fail(p, -EINVAL, "linux.namespaces must be an array of at most %d entries",
                                    OCI_NAMESPACES_MAX);
                for (size_t i = 0; i < json_array_size(ns); i++) {
                        const json_t *e = json_array_get(ns, i);
                        const char *type = json_is_object(e) ? json_string_value(json_object_get(e, "type")) : NULL;
                        const char *path;
                        char field[64];
                        int r;

                        if (!type)
                                return fail(p, -EINVAL, "linux.namespaces[%zu].type is missing", i);
                        if (!streq(type, "pid") && !streq(type, "network") && !streq(type, "ipc") &&
                            !streq(type, "uts") && !streq(type, "mount") && !streq(type, "user") &&
                            !streq(type, "cgroup"))
                                return fail(p, -EINVAL, "linux.namespaces[%zu]: a '%s' namespace is not supported by "
                                                        "sandbox-oci", i, type);
                        snprintf(field, sizeof field, "linux.namespaces[%zu].path", i);
                        r = get_string(p, e, "path", field, SPEC_STRING_MAX - 1, &path);
                        if (r < 0)
                                return r;
                        if (path && *path) {
                                OciJoin j = _OCI_JOIN_MAX;
                                for (OciJoin k = 0; k < _OCI_JOIN_MAX; k++)
                                        if (streq(type, join_names[k]))
                                                j = k;
                                /* The user namespace stays ours (a private id range); the init is pid 1 of its
                                 * own pid namespace and builds its root in a mount namespace of its own. */
                                if (j == _OCI_JOIN_MAX)
                                        return fail(p, -EINVAL, "%s: joining an existing %s namespace is not "
                                                                "supported by sandbox-oci (network, ipc and uts "
                                                                "namespaces may be joined)", field, type);
                                if (!path_is_absolute(path))
                                        return fail(p, -EINVAL, "%s must be an absolute path", field);
                                if (b->join[j])
                                        return fail(p, -EINVAL, "%s: a second %s namespace", field, type);
                                if (!(b->join[j] = strdup(path)))
                                        return fail(p, -ENOMEM, "Out of memory");
                        }
                        if (streq(type, "network"))
                                network = true;
                }
        }
        /* Without a network namespace the engine asks for the host's network; a joined one is like the
         * host's to the runtime (it sets up nothing in it). Every other namespace is always new (stricter
         * than asked) unless joined. */
        b->spec.net = network && !b->join[OCI_JOIN_NET] ? SPEC_NET_NONE : SPEC_NET_HOST;
        return 0;
}

static int parse_idmaps(Parser *p, const json_t *linux_, const char *key) {
        const json_t *v = json_object_get(linux_, key);

        if (!v || json_is_null(v))
                return 0;
        if (!json_is_array(v) || json_array_size(v) > OCI_IDMAPS_MAX)
                return fail(p, -EINVAL, "linux.%s must be an array of at most %d entries", key, OCI_IDMAPS_MAX);
        for (size_t i = 0; i < json_array_size(v); i++) {
                const json_t *e = json_array_get(v, i), *c, *s;
                c = json_is_object(e) ? json_object_get(e, "containerID") : NULL;
                s = json_is_object(e) ? json_object_get(e, "size") : NULL;
                if (!json_is_integer(c) || !json_is_integer(s) || json_integer_value(c) < 0 || json_integer_value(s) < 1 ||
                    json_integer_value(c) + json_integer_value(s) > (json_int_t) 65536)
                        return fail(p, -EINVAL, "linux.%s[%zu]: sandbox-oci maps container ids 0-65535 to a private "
                                                "host range of its own; this entry is outside it", key, i);
        }
        return 0;
}

static int parse_paths(Parser *p, const json_t *linux_, const char *key, char ***ret, size_t *ret_n) {
        char field[64];
        int r;

        snprintf(field, sizeof field, "linux.%s", key);
        r = get_strv(p, linux_, key, field, OCI_PATHS_MAX, ret, ret_n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < *ret_n; i++)
                if (!path_is_absolute((*ret)[i]) || strstr((*ret)[i], "/.."))
                        return fail(p, -EINVAL, "%s[%zu] must be an absolute path without '..'", field, i);
        return 0;
}

static int parse_resources(Parser *p, const json_t *linux_, OciBundle *b);

int oci_resources_parse(const char *buf, size_t len, uint64_t *ret_memory, uint64_t *ret_pids, uint32_t *ret_cpus_milli,
                        char *err, size_t errlen) {
        _cleanup_(json_decrefp) json_t *doc = NULL, *linux_ = NULL;
        OciBundle b = { .umask = -1 };
        Parser p = { .err = err, .errlen = errlen, .bundle = "/" };
        char why[256];
        int r;

        r = ojson_parse_object(buf, len, OCI_CONFIG_SIZE_MAX, OCI_CONFIG_DEPTH_MAX, &doc, why, sizeof why);
        if (r < 0)
                return fail(&p, r, "--resources: %s", why);
        linux_ = json_pack("{s:O}", "resources", doc);
        if (!linux_)
                return fail(&p, -ENOMEM, "Out of memory");
        r = parse_resources(&p, linux_, &b);
        if (r >= 0 && b.has_cpuset_io)
                /* The cgroup's cpuset and io are set when it is made; the children's cpuset copies it. */
                r = fail(&p, -EOPNOTSUPP, "--resources: %s cannot be changed on a running container",
                         b.cpuset_io.cpus[0] ? "linux.resources.cpu.cpus" :
                         b.cpuset_io.mems[0] ? "linux.resources.cpu.mems" : "linux.resources.blockIO");
        if (r >= 0) {
                *ret_memory = b.spec.memory_max;
                *ret_pids = b.spec.pids_max;
                *ret_cpus_milli = b.spec.cpus_milli;
        }
        oci_bundle_done(&b);
        return r;
}

static bool sysctl_allowed(const char *key) {
        /* Namespaced ones only, as runc: the network's, and IPC's. */
        static const char *const ipc[] = { "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                                           "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced" };
        if (strneq(key, "net.", 4) || strneq(key, "fs.mqueue.", 10))
                return true;
        for (size_t i = 0; i < ELEMENTSOF(ipc); i++)
                if (streq(key, ipc[i]))
                        return true;
        return false;
}

static int parse_sysctl(Parser *p, const json_t *linux_, OciBundle *b) {
        const json_t *v = json_object_get(linux_, "sysctl");
        const char *key;
        json_t *value;

        if (!v || json_is_null(v))
                return 0;
        if (!json_is_object(v) || json_object_size(v) > OCI_SYSCTL_MAX)
                return fail(p, -EINVAL, "linux.sysctl must be an object of at most %d entries", OCI_SYSCTL_MAX);
        b->sysctl = calloc(json_object_size(v) + 1, sizeof *b->sysctl);
        if (!b->sysctl)
                return fail(p, -ENOMEM, "Out of memory");
        json_object_foreach((json_t *) v, key, value) {
                if (!json_is_string(value) || json_string_length(value) > 1024)
                        return fail(p, -EINVAL, "linux.sysctl[%.64s] must be a string of at most 1024 bytes", key);
                if (strlen(key) > 128 || strstr(key, "..") || strchr(key, '/') || !sysctl_allowed(key))
                        return fail(p, -EINVAL, "linux.sysctl[%.64s]: only the network's and IPC's sysctls (net.*, "
                                                "kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*) are supported", key);
                OciSysctl *s = &b->sysctl[b->n_sysctl];
                s->key = strdup(key);
                s->value = strdup(json_string_value(value));
                b->n_sysctl++;
                if (!s->key || !s->value)
                        return fail(p, -ENOMEM, "Out of memory");
        }
        return 0;
}

/* linux.resources.blockIO.FIELD[]: {major, minor, rate}, one bound per device (at most CGROUP_IO_DEVICES_MAX
 * devices in all); rate 0 is no bound. */
static int parse_throttle(Parser *p, const json_t *blkio, const char *key, size_t which, OciBundle *b) {
        const json_t *v = json_object_get(blkio, key), *e;
        char field[96];
        size_t i;

        snprintf(field, sizeof field, "linux.resources.blockIO.%s", key);
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_array(v))
                return fail(p, -EINVAL, "%s must be an array", field);
        if (json_array_size(v) > CGROUP_IO_DEVICES_MAX)
                return fail(p, -E2BIG, "%s has more than %d entries", field, CGROUP_IO_DEVICES_MAX);
        json_array_foreach(v, i, e) {
                CgroupCpusetIo *x = &b->cpuset_io;
                CgroupIoDevice *d = NULL;
                int64_t major, minor, rate;
                char f[128];
                int r;

                if (!json_is_object(e))
                        return fail(p, -EINVAL, "%s[%zu] must be an object", field, i);
                snprintf(f, sizeof f, "%s[%zu].major", field, i);
                if ((r = get_int(p, e, "major", f, 0, 4095, &major)) < 0)
                        return r == -ENOENT ? fail(p, -EINVAL, "%s is missing", f) : r;
                snprintf(f, sizeof f, "%s[%zu].minor", field, i);
                if ((r = get_int(p, e, "minor", f, 0, 1048575, &minor)) < 0)
                        return r == -ENOENT ? fail(p, -EINVAL, "%s is missing", f) : r;
                snprintf(f, sizeof f, "%s[%zu].rate", field, i);
                if ((r = get_int(p, e, "rate", f, 0, INT64_MAX, &rate)) < 0)
                        return r == -ENOENT ? fail(p, -EINVAL, "%s is missing", f) : r;
                if (rate == 0)
                        continue;
                for (size_t k = 0; k < x->n_devices; k++)
                        if (x->devices[k].major == major && x->devices[k].minor == minor)
                                d = &x->devices[k];
                if (!d) {
                        if (x->n_devices >= CGROUP_IO_DEVICES_MAX)
                                return fail(p, -E2BIG, "linux.resources.blockIO: throttles of more than %d devices",
                                            CGROUP_IO_DEVICES_MAX);
                        d = &x->devices[x->n_devices++];
                        *d = (CgroupIoDevice) { .major = (uint32_t) major, .minor = (uint32_t) minor };
                }
                uint64_t *slot[] = { &d->rbps, &d->wbps, &d->riops, &d->wiops };
                *slot[which] = (uint64_t) rate;
                b->has_cpuset_io = true;
        }
        return 0;
}

/* linux.resources.cpu.cpus or .mems: a list the kernel's cpuset files take. */
static int parse_cpuset_list(Parser *p, const json_t *cpu, const char *key, char *ret, OciBundle *b) {
        char field[64];
        const char *s;
        int r;

        snprintf(field, sizeof field, "linux.resources.cpu.%s", key);
        r = get_string(p, cpu, key, field, CGROUP_CPUSET_LIST_MAX - 1, &s);
        if (r < 0 || !s || !*s)
                return r;
        if (!cgroup_cpuset_list_valid(s))
                return fail(p, -EINVAL, "%s: '%.64s' is not a list like \"0-1,3\" (numbers at most %d)", field, s,
                            CGROUP_CPUSET_ID_MAX);
        snprintf(ret, CGROUP_CPUSET_LIST_MAX, "%s", s);
        b->has_cpuset_io = true;
        return 0;
}

/* linux.resources: what the runtime's cgroups can bound, or a refusal naming the field. */
static int parse_resources(Parser *p, const json_t *linux_, OciBundle *b) {
        const json_t *res = json_object_get(linux_, "resources"), *v;
        const char *key;
        json_t *value;
        int64_t n;
        int r;

        if (!res || json_is_null(res))
                return 0;
        if (!json_is_object(res))
                return fail(p, -EINVAL, "linux.resources must be an object");
        json_object_foreach((json_t *) res, key, value) {
                if (streq(key, "memory") || streq(key, "pids") || streq(key, "cpu") || streq(key, "devices") ||
                    streq(key, "blockIO"))
                        continue;
                if (is_empty(value))
                        continue;
                char field[96];
                snprintf(field, sizeof field, "linux.resources.%.64s", key);
                return REFUSE(p, field);
        }
        v = json_object_get(res, "memory");
        if (v && !json_is_null(v)) {
                if (!json_is_object(v))
                        return fail(p, -EINVAL, "linux.resources.memory must be an object");
                json_object_foreach((json_t *) v, key, value) {
                        if (streq(key, "limit") || streq(key, "swap") || streq(key, "disableOOMKiller") ||
                            streq(key, "reservation") || streq(key, "swappiness") || streq(key, "useHierarchy"))
                                continue;
                        if (is_empty(value))
                                continue;
                        char field[96];
                        snprintf(field, sizeof field, "linux.resources.memory.%.64s", key);
                        return REFUSE(p, field);
                }
                r = get_int(p, v, "limit", "linux.resources.memory.limit", -1, INT64_MAX, &n);
                if (r == 0)
                        b->spec.memory_max = n < 0 ? SPEC_UNLIMITED : (uint64_t) MAX(n, (int64_t) 1);
                else if (r != -ENOENT)
                        return r;
                bool no_oom = false;
                r = get_bool(p, v, "disableOOMKiller", "linux.resources.memory.disableOOMKiller", &no_oom);
                if (r < 0)
                        return r;
                if (no_oom)
                        return REFUSE(p, "linux.resources.memory.disableOOMKiller");
                /* swap: the sandbox never swaps (docs/cgroups.md); reservation and swappiness are hints. */
        }
        v = json_object_get(res, "pids");
        if (v && !json_is_null(v)) {
                r = get_int(p, v, "limit", "linux.resources.pids.limit", -1, INT64_MAX, &n);
                if (r == 0)
                        b->spec.pids_max = n <= 0 ? SPEC_UNLIMITED : (uint64_t) n;
                else if (r != -ENOENT)
                        return r;
        }
        v = json_object_get(res, "cpu");
        if (v && !json_is_null(v)) {
                int64_t quota = -1, period = 100000;
                if (!json_is_object(v))
                        return fail(p, -EINVAL, "linux.resources.cpu must be an object");
                json_object_foreach((json_t *) v, key, value) {
                        if (streq(key, "quota") || streq(key, "period") || streq(key, "cpus") || streq(key, "mems"))
                                continue;
                        if (is_empty(value) || (streq(key, "shares") && json_is_integer(value)))
                                continue; /* shares: a relative weight; every sandbox weighs the same */
                        char field[96];
                        snprintf(field, sizeof field, "linux.resources.cpu.%.64s", key);
                        return REFUSE(p, field);
                }
                r = get_int(p, v, "quota", "linux.resources.cpu.quota", -1, INT64_MAX / 1000, &quota);
                if (r < 0 && r != -ENOENT)
                        return r;
                r = get_int(p, v, "period", "linux.resources.cpu.period", 1000, 1000000, &period);
                if (r < 0 && r != -ENOENT)
                        return r;
                if (quota > 0) {
                        int64_t milli = quota * 1000 / period;
                        if (milli < 1 || milli > 1024 * 1000)
                                return fail(p, -EINVAL, "linux.resources.cpu: quota/period is out of range");
                        b->spec.cpus_milli = (uint32_t) milli;
                }
                r = parse_cpuset_list(p, v, "cpus", b->cpuset_io.cpus, b);
                if (r < 0)
                        return r;
                r = parse_cpuset_list(p, v, "mems", b->cpuset_io.mems, b);
                if (r < 0)
                        return r;
        }
        v = json_object_get(res, "blockIO");
        if (v && !json_is_null(v)) {
                static const char *const throttles[] = { "throttleReadBpsDevice", "throttleWriteBpsDevice",
                                                         "throttleReadIOPSDevice", "throttleWriteIOPSDevice" };
                int64_t weight;

                if (!json_is_object(v))
                        return fail(p, -EINVAL, "linux.resources.blockIO must be an object");
                json_object_foreach((json_t *) v, key, value) {
                        bool known = streq(key, "weight");
                        for (size_t i = 0; i < ELEMENTSOF(throttles); i++)
                                known = known || streq(key, throttles[i]);
                        if (known || is_empty(value))
                                continue; /* leafWeight, weightDevice: no per-device weights here */
                        char field[96];
                        snprintf(field, sizeof field, "linux.resources.blockIO.%.64s", key);
                        return REFUSE(p, field);
                }
                r = get_int(p, v, "weight", "linux.resources.blockIO.weight", 10, 1000, &weight);
                if (r == 0) {
                        b->cpuset_io.io_weight = (uint32_t) weight;
                        b->has_cpuset_io = true;
                } else if (r != -ENOENT)
                        return r;
                for (size_t i = 0; i < ELEMENTSOF(throttles); i++) {
                        r = parse_throttle(p, v, throttles[i], i, b);
                        if (r < 0)
                                return r;
                }
        }
        /* devices: the sandbox's /dev has only null, zero, full, random, urandom, tty and its own ptys, and
         * nothing in it can make device nodes that work; the rules are accepted as they can only narrow that. */
        return 0;
}

/* linux.devices: no mknod in a user namespace; the devices a container may have are the harmless ones our /dev
 * binds from the host anyway (docs/oci-runtime.md). One of them at another path is bound there too; anything
 * else is refused, naming it. fileMode, uid and gid are the host node's (a bind cannot change them). */
static int parse_devices(Parser *p, const json_t *linux_, OciBundle *b) {
        static const struct {
                const char *node;
                int64_t major, minor;
        } allowed[] = {
                { "/dev/null", 1, 3 }, { "/dev/zero", 1, 5 }, { "/dev/full", 1, 7 }, { "/dev/random", 1, 8 },
                { "/dev/urandom", 1, 9 }, { "/dev/tty", 5, 0 },
        };
        const json_t *v = json_object_get(linux_, "devices");
        int r;

        if (is_empty(v))
                return 0;
        if (!json_is_array(v) || json_array_size(v) > OCI_DEVICES_MAX)
                return fail(p, -EINVAL, "linux.devices must be an array of at most %d devices", OCI_DEVICES_MAX);
        b->devices = calloc(json_array_size(v), sizeof *b->devices);
        if (!b->devices)
                return fail(p, -ENOMEM, "Out of memory");
        for (size_t i = 0; i < json_array_size(v); i++) {
                const json_t *d = json_array_get(v, i);
                const char *path, *type;
                int64_t major, minor;
                char field[64];

                if (!json_is_object(d))
                        return fail(p, -EINVAL, "linux.devices[%zu] must be an object", i);
                snprintf(field, sizeof field, "linux.devices[%zu].path", i);
                if ((r = get_string(p, d, "path", field, 256, &path)) < 0)
                        return r;
                snprintf(field, sizeof field, "linux.devices[%zu].type", i);
                if ((r = get_string(p, d, "type", field, 1, &type)) < 0)
                        return r;
                snprintf(field, sizeof field, "linux.devices[%zu].major", i);
                if ((r = get_int(p, d, "major", field, 0, UINT32_MAX, &major)) < 0)
                        return r == -ENOENT ? fail(p, -EINVAL, "%s is missing", field) : r;
                snprintf(field, sizeof field, "linux.devices[%zu].minor", i);
                if ((r = get_int(p, d, "minor", field, 0, UINT32_MAX, &minor)) < 0)
                        return r == -ENOENT ? fail(p, -EINVAL, "%s is missing", field) : r;
                if (!path || !strneq(path, "/dev/", 5) || strstr(path, "/..") || strstr(path, "//") ||
                    path[strlen(path) - 1] == '/')
                        return fail(p, -EINVAL, "linux.devices[%zu].path must be a path under /dev/ without '..'", i);
                const char *node = NULL;
                for (size_t k = 0; k < ELEMENTSOF(allowed); k++)
                        if (major == allowed[k].major && minor == allowed[k].minor)
                                node = allowed[k].node;
                if (!node || !type || (!streq(type, "c") && !streq(type, "u")))
                        return fail(p, -EINVAL, "linux.devices[%zu]: %s (%s %" PRId64 ":%" PRId64 ") is not a device "
                                                "sandbox-oci gives a container: only null, zero, full, random, urandom "
                                                "and tty (the host's nodes, bound)", i, path, type ?: "?", major, minor);
                if (streq(path, node))
                        continue; /* in our /dev already */
                if (!(b->devices[b->n_devices].path = strdup(path)))
                        return fail(p, -ENOMEM, "Out of memory");
                b->devices[b->n_devices++].node = node;
        }
        return 0;
}

/* The engine's profile, stacked on ours (oci/seccomp.c); with the annotation "ours" it is dropped. */
static int parse_seccomp(Parser *p, const json_t *linux_, const char *annotation, OciBundle *b) {
        const json_t *v = json_object_get(linux_, "seccomp");

        if (is_empty(v) || annotation)
                return 0;
        return oci_seccomp_parse(v, &b->seccomp, p->err, p->errlen);
}

static int parse_linux(Parser *p, const json_t *doc, OciBundle *b, const char *seccomp_annotation) {
        const json_t *linux_ = json_object_get(doc, "linux");
        const char *key;
        json_t *value;
        int r;

        if (!linux_ || json_is_null(linux_)) {
                b->spec.net = SPEC_NET_HOST;
                return 0;
        }
        if (!json_is_object(linux_))
                return fail(p, -EINVAL, "linux must be an object");
        json_object_foreach((json_t *) linux_, key, value) {
                static const char *const known[] = { "namespaces", "uidMappings", "gidMappings", "resources", "sysctl",
                                                     "maskedPaths", "readonlyPaths", "seccomp", "devices",
                                                     "cgroupsPath", "rootfsPropagation", "mountLabel" };
                bool ok = false;
                for (size_t i = 0; i < ELEMENTSOF(known); i++)
                        if (streq(key, known[i]))
                                ok = true;
                if (ok || is_empty(value))
                        continue;
                char field[96];
                snprintf(field, sizeof field, "linux.%.64s", key);
                return REFUSE(p, field);
        }
        if ((r = parse_namespaces(p, linux_, b)) < 0 || (r = parse_idmaps(p, linux_, "uidMappings")) < 0 ||
            (r = parse_idmaps(p, linux_, "gidMappings")) < 0 || (r = parse_resources(p, linux_, b)) < 0 ||
            (r = parse_sysctl(p, linux_, b)) < 0 ||
            (r = parse_paths(p, linux_, "maskedPaths", &b->masked, &b->n_masked)) < 0 ||
            (r = parse_paths(p, linux_, "readonlyPaths", &b->readonly, &b->n_readonly)) < 0 ||
            (r = parse_seccomp(p, linux_, seccomp_annotation, b)) < 0)
                return r;
        if ((r = parse_devices(p, linux_, b)) < 0)
                return r;
        if (!is_empty(json_object_get(linux_, "mountLabel")))
                return REFUSE(p, "linux.mountLabel");
        /* The cgroupfs form ("/a/b" from the cgroup root, "a/b" below the runtime's own cgroup) or, with
         * --systemd-cgroup, systemd's ("slice:prefix:name"): checked where the cgroup is made. */
        const char *cg = NULL;
        r = get_string(p, linux_, "cgroupsPath", "linux.cgroupsPath", OCI_CGROUPS_PATH_MAX, &cg);
        if (r < 0)
                return r;
        if (cg && *cg && !(b->cgroups_path = strdup(cg)))
                return -ENOMEM;
        return 0;
}

static int parse_hooks(Parser *p, const json_t *doc, OciBundle *b) {
        const json_t *hooks = json_object_get(doc, "hooks");
        const char *key;
        json_t *value;

        if (!hooks || json_is_null(hooks))
                return 0;
        if (!json_is_object(hooks))
                return fail(p, -EINVAL, "hooks must be an object");
        json_object_foreach((json_t *) hooks, key, value) {
                OciHookKind kind = _OCI_HOOK_MAX;
                for (OciHookKind k = 0; k < _OCI_HOOK_MAX; k++)
                        if (streq(key, hook_names[k]))
                                kind = k;
                if (kind == _OCI_HOOK_MAX) {
                        if (is_empty(value))
                                continue;
                        char field[96];
                        snprintf(field, sizeof field, "hooks.%.64s", key);
                        return REFUSE(p, field);
                }
                if (json_is_null(value))
                        continue;
                if (!json_is_array(value) || json_array_size(value) > OCI_HOOKS_MAX)
                        return fail(p, -EINVAL, "hooks.%s must be an array of at most %d hooks", key, OCI_HOOKS_MAX);
                b->hooks[kind] = calloc(json_array_size(value) + 1, sizeof(OciHook));
                if (!b->hooks[kind])
                        return fail(p, -ENOMEM, "Out of memory");
                for (size_t i = 0; i < json_array_size(value); i++) {
                        const json_t *h = json_array_get(value, i);
                        OciHook *o = &b->hooks[kind][i];
                        char field[96];
                        const char *path;
                        int64_t t;
                        int r;

                        if (!json_is_object(h))
                                return fail(p, -EINVAL, "hooks.%s[%zu] must be an object", key, i);
                        b->n_hooks[kind]++;
                        snprintf(field, sizeof field, "hooks.%s[%zu].path", key, i);
                        if ((r = get_string(p, h, "path", field, SPEC_STRING_MAX - 1, &path)) < 0)
                                return r;
                        if (!path_is_absolute(path))
                                return fail(p, -EINVAL, "%s must be an absolute path", field);
                        if (!(o->path = strdup(path)))
                                return fail(p, -ENOMEM, "Out of memory");
                        snprintf(field, sizeof field, "hooks.%s[%zu].args", key, i);
                        if ((r = get_strv(p, h, "args", field, OCI_HOOK_ARGS_MAX, &o->args, NULL)) < 0)
                                return r;
                        snprintf(field, sizeof field, "hooks.%s[%zu].env", key, i);
                        if ((r = get_strv(p, h, "env", field, SPEC_ENV_MAX, &o->env, NULL)) < 0)
                                return r;
                        snprintf(field, sizeof field, "hooks.%s[%zu].timeout", key, i);
                        r = get_int(p, h, "timeout", field, 1, 3600, &t);
                        if (r == 0)
                                o->timeout = (unsigned) t;
                        else if (r != -ENOENT)
                                return r;
                }
        }
        return 0;
}

int oci_bundle_parse(const char *buf, size_t len, const char *bundle_dir, OciBundle *ret, char *err, size_t errlen) {
        _cleanup_(json_decrefp) json_t *doc = NULL;
        OciBundle b = { .umask = -1 };
        Parser p = { .err = err, .errlen = errlen, .bundle = bundle_dir };
        const char *s, *seccomp_annotation = NULL;
        char why[256];
        int r;

        if (!bundle_dir || bundle_dir[0] != '/')
                return fail(&p, -EINVAL, "The bundle's path must be absolute");
        r = ojson_parse_object(buf, len, OCI_CONFIG_SIZE_MAX, OCI_CONFIG_DEPTH_MAX, &doc, why, sizeof why);
        if (r < 0)
                return fail(&p, r, "config.json: %s", why);

        r = get_string(&p, doc, "ociVersion", "ociVersion", 64, &s);
        if (r < 0)
                goto fail;
        if (!s || !strneq(s, "1.", 2)) {
                r = fail(&p, -EINVAL, "ociVersion must be 1.x (runtime-spec 1)");
                goto fail;
        }
        if (!(b.oci_version = strdup(s))) {
                r = fail(&p, -ENOMEM, "Out of memory");
                goto fail;
        }
        static const char *const other_platforms[] = { "solaris", "windows", "vm", "zos" };
        for (size_t i = 0; i < ELEMENTSOF(other_platforms); i++)
                if (!is_empty(json_object_get(doc, other_platforms[i]))) {
                        r = REFUSE(&p, other_platforms[i]);
                        goto fail;
                }

        /* Annotations first: they change how the rest is read. */
        const json_t *ann = json_object_get(doc, "annotations");
        if (ann && !json_is_null(ann)) {
                const char *key;
                json_t *value;
                if (!json_is_object(ann) || json_object_size(ann) > OCI_ANNOTATIONS_MAX) {
                        r = fail(&p, -EINVAL, "annotations must be an object of at most %d strings", OCI_ANNOTATIONS_MAX);
                        goto fail;
                }
                json_object_foreach((json_t *) ann, key, value) {
                        if (!json_is_string(value)) {
                                r = fail(&p, -EINVAL, "annotations[%.64s] must be a string", key);
                                goto fail;
                        }
                        const char *v = json_string_value(value);
                        if (streq(key, OCI_ANNOTATION_LIMITS)) {
                                if (!streq(v, "none") && !streq(v, "default")) {
                                        r = fail(&p, -EINVAL, "annotations[" OCI_ANNOTATION_LIMITS "] must be 'none' "
                                                              "or 'default'");
                                        goto fail;
                                }
                                b.no_limits = streq(v, "none");
                        } else if (streq(key, OCI_ANNOTATION_SECCOMP)) {
                                if (!streq(v, "ours")) {
                                        r = fail(&p, -EINVAL, "annotations[" OCI_ANNOTATION_SECCOMP "] must be 'ours'");
                                        goto fail;
                                }
                                seccomp_annotation = v;
                        } else if (streq(key, OCI_ANNOTATION_USERNS)) {
                                if (!streq(v, "private")) {
                                        r = fail(&p, -EINVAL, "annotations[" OCI_ANNOTATION_USERNS "]: a container "
                                                              "always gets a private id range in sandbox-oci; only "
                                                              "'private' is accepted");
                                        goto fail;
                                }
                        }
                }
        }

        if ((r = parse_root(&p, doc, &b)) < 0 || (r = parse_process(&p, doc, &b)) < 0 ||
            (r = parse_mounts(&p, doc, &b)) < 0 || (r = parse_linux(&p, doc, &b, seccomp_annotation)) < 0 ||
            (r = parse_hooks(&p, doc, &b)) < 0)
                goto fail;
        r = get_string(&p, doc, "hostname", "hostname", SPEC_HOSTNAME_MAX, &s);
        if (r < 0)
                goto fail;
        if (s && *s && !(b.spec.hostname = strdup(s))) {
                r = fail(&p, -ENOMEM, "Out of memory");
                goto fail;
        }
        if (b.mqueue_dest && b.join[OCI_JOIN_IPC]) {
                r = fail(&p, -EINVAL, "mounts: an mqueue mount at %s in a joined ipc namespace (%s) is not "
                                      "supported by sandbox-oci (an mqueue instance is its namespace owner's)",
                         b.mqueue_dest, b.join[OCI_JOIN_IPC]);
                goto fail;
        }
        if (!is_empty(json_object_get(doc, "domainname"))) {
                r = REFUSE(&p, "domainname");
                goto fail;
        }
        if (!(b.spec.image = strdup(b.root))) {
                r = fail(&p, -ENOMEM, "Out of memory");
                goto fail;
        }
        if (b.no_limits) {
                if (b.spec.memory_max == 0)
                        b.spec.memory_max = SPEC_UNLIMITED;
                if (b.spec.pids_max == 0)
                        b.spec.pids_max = SPEC_UNLIMITED;
        }
        /* The rest of the spec's own checks (the hostname's characters, argument bytes). */
        const char *verr = NULL;
        if (spec_validate(&b.spec, &verr) < 0) {
                r = fail(&p, -EINVAL, "config.json: %s", verr);
                goto fail;
        }
        *ret = b;
        return 0;
fail:
        oci_bundle_done(&b);
        return r;
}
