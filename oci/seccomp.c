/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An engine's seccomp profile (config.json's linux.seccomp, the runtime-spec's JSON form) compiled to BPF with
 * libseccomp, to be installed after our own allow-list: the kernel runs every filter a task has and the most
 * restrictive result wins, so the engine's profile can only take away from ours, never add to it.
 *
 * config.json is outside input: the counts are bounded (OCI_SECCOMP_*_MAX), every action, architecture, flag and
 * comparison must be one we know, and a refusal names the field ("linux.seccomp.syscalls[3].action"). Syscall
 * names this libseccomp does not know are skipped, as runc and crun do (profiles list newer ones); a rule whose
 * action is the default one is skipped too (libseccomp refuses it; it changes nothing).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <seccomp.h>

#include "macro.h"
#include "oci-seccomp.h"

typedef struct Ctx {
        char *err;
        size_t errlen;
} Ctx;

__attribute__((format(printf, 3, 4)))
static int fail(Ctx *c, int r, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(c->err, c->errlen, fmt, ap);
        va_end(ap);
        return r;
}

static int parse_errno(Ctx *c, const json_t *v, const char *field, uint32_t *ret) {
        if (!v || json_is_null(v))
                return -ENOENT;
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 4095)
                return fail(c, -EINVAL, "%s must be an errno number (0-4095)", field);
        *ret = (uint32_t) json_integer_value(v);
        return 0;
}

/* The action NAME; ERRNO_RET is the rule's errnoRet (or the default's), for SCMP_ACT_ERRNO and _TRACE. */
static int parse_action(Ctx *c, const json_t *v, const char *field, uint32_t errno_ret, uint32_t *ret) {
        const char *name = json_string_value(v);

        if (!name)
                return fail(c, -EINVAL, "%s must be a string (SCMP_ACT_...)", field);
        if (streq(name, "SCMP_ACT_ALLOW"))
                *ret = SCMP_ACT_ALLOW;
        else if (streq(name, "SCMP_ACT_ERRNO"))
                *ret = SCMP_ACT_ERRNO(errno_ret);
        else if (streq(name, "SCMP_ACT_KILL") || streq(name, "SCMP_ACT_KILL_THREAD"))
                *ret = SCMP_ACT_KILL_THREAD;
        else if (streq(name, "SCMP_ACT_KILL_PROCESS"))
                *ret = SCMP_ACT_KILL_PROCESS;
        else if (streq(name, "SCMP_ACT_TRAP"))
                *ret = SCMP_ACT_TRAP;
        else if (streq(name, "SCMP_ACT_TRACE"))
                *ret = SCMP_ACT_TRACE(errno_ret);
        else if (streq(name, "SCMP_ACT_LOG"))
                *ret = SCMP_ACT_LOG;
        else if (streq(name, "SCMP_ACT_NOTIFY"))
                return fail(c, -EINVAL, "%s: SCMP_ACT_NOTIFY needs a listener (linux.seccomp.listenerPath), which "
                                        "sandbox-oci does not support", field);
        else
                return fail(c, -EINVAL, "%s: unknown action '%.64s'", field, name);
        return 0;
}

static int parse_op(const char *name, enum scmp_compare *ret) {
        static const struct {
                const char *name;
                enum scmp_compare op;
        } ops[] = {
                { "SCMP_CMP_NE", SCMP_CMP_NE }, { "SCMP_CMP_LT", SCMP_CMP_LT }, { "SCMP_CMP_LE", SCMP_CMP_LE },
                { "SCMP_CMP_EQ", SCMP_CMP_EQ }, { "SCMP_CMP_GE", SCMP_CMP_GE }, { "SCMP_CMP_GT", SCMP_CMP_GT },
                { "SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ },
        };
        for (size_t i = 0; name && i < ELEMENTSOF(ops); i++)
                if (streq(name, ops[i].name)) {
                        *ret = ops[i].op;
                        return 0;
                }
        return -EINVAL;
}

static int parse_args(Ctx *c, const json_t *v, size_t i, struct scmp_arg_cmp args[static 6], unsigned *ret_n) {
        unsigned n = 0;

        if (!v || json_is_null(v)) {
                *ret_n = 0;
                return 0;
        }
        if (!json_is_array(v) || json_array_size(v) > 6)
                return fail(c, -EINVAL, "linux.seccomp.syscalls[%zu].args must be an array of at most 6 entries", i);
        for (size_t k = 0; k < json_array_size(v); k++) {
                const json_t *a = json_array_get(v, k), *index, *value, *two;
                enum scmp_compare op;

                index = json_is_object(a) ? json_object_get(a, "index") : NULL;
                value = json_is_object(a) ? json_object_get(a, "value") : NULL;
                two = json_is_object(a) ? json_object_get(a, "valueTwo") : NULL;
                if (!json_is_integer(index) || json_integer_value(index) < 0 || json_integer_value(index) > 5)
                        return fail(c, -EINVAL, "linux.seccomp.syscalls[%zu].args[%zu].index must be 0-5", i, k);
                if (!json_is_integer(value) || (two && !json_is_null(two) && !json_is_integer(two)))
                        return fail(c, -EINVAL, "linux.seccomp.syscalls[%zu].args[%zu].value must be an integer", i, k);
                if (parse_op(json_is_object(a) ? json_string_value(json_object_get(a, "op")) : NULL, &op) < 0)
                        return fail(c, -EINVAL, "linux.seccomp.syscalls[%zu].args[%zu].op must be SCMP_CMP_NE, _LT, "
                                                "_LE, _EQ, _GE, _GT or _MASKED_EQ", i, k);
                args[n++] = (struct scmp_arg_cmp) {
                        .arg = (unsigned) json_integer_value(index),
                        .op = op,
                        .datum_a = (scmp_datum_t) json_integer_value(value),
                        .datum_b = json_is_integer(two) ? (scmp_datum_t) json_integer_value(two) : 0,
                };
        }
        *ret_n = n;
        return 0;
}

static int parse_arches(Ctx *c, scmp_filter_ctx ctx, const json_t *v) {
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_array(v) || json_array_size(v) > OCI_SECCOMP_ARCHES_MAX)
                return fail(c, -EINVAL, "linux.seccomp.architectures must be an array of at most %d entries",
                            OCI_SECCOMP_ARCHES_MAX);
        for (size_t i = 0; i < json_array_size(v); i++) {
                const char *name = json_string_value(json_array_get(v, i));
                char lower[32];
                uint32_t arch;
                int r;

                if (!name || !strneq(name, "SCMP_ARCH_", 10) || strlen(name + 10) >= sizeof lower)
                        return fail(c, -EINVAL, "linux.seccomp.architectures[%zu] must be SCMP_ARCH_...", i);
                size_t k = 0;
                for (const char *s = name + 10; *s; s++)
                        lower[k++] = (char) (*s >= 'A' && *s <= 'Z' ? *s - 'A' + 'a' : *s);
                lower[k] = '\0';
                arch = seccomp_arch_resolve_name(lower);
                if (arch == 0)
                        return fail(c, -EINVAL, "linux.seccomp.architectures[%zu]: unknown architecture %.32s", i, name);
                /* Only the native one is compiled (the context has it): our own filter kills every syscall of
                 * another ABI (i386, x32) before the engine's is asked, so its rules for them could only cost
                 * time (podman's profile: 1058 instructions and ~12 ms for three, 342 and ~1.4 ms for one). */
                if (arch != seccomp_arch_native())
                        continue;
                r = seccomp_arch_add(ctx, arch);
                if (r < 0 && r != -EEXIST)
                        return fail(c, r, "linux.seccomp.architectures[%zu]: %.32s: %s", i, name, strerror(-r));
        }
        return 0;
}

static int parse_flags(Ctx *c, const json_t *v) {
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_array(v) || json_array_size(v) > 8)
                return fail(c, -EINVAL, "linux.seccomp.flags must be an array of at most 8 entries");
        for (size_t i = 0; i < json_array_size(v); i++) {
                const char *f = json_string_value(json_array_get(v, i));
                /* TSYNC: the program has one thread when the filter is installed. SPEC_ALLOW: the program keeps
                 * the kernel's speculative-store-bypass mitigation, which is stricter. */
                if (f && (streq(f, "SECCOMP_FILTER_FLAG_TSYNC") || streq(f, "SECCOMP_FILTER_FLAG_SPEC_ALLOW")))
                        continue;
                return fail(c, -EINVAL, "linux.seccomp.flags[%zu]: %.64s is not supported by sandbox-oci (TSYNC and "
                                        "SPEC_ALLOW are accepted)", i, f ?: "(not a string)");
        }
        return 0;
}

int oci_seccomp_parse(const json_t *v, FilterProgram **ret, char *err, size_t errlen) {
        Ctx c = { .err = err, .errlen = errlen };
        scmp_filter_ctx ctx = NULL;
        uint32_t default_action, default_errno = EPERM;
        const json_t *syscalls;
        size_t total_names = 0;
        int r;

        if (!json_is_object(v))
                return fail(&c, -EINVAL, "linux.seccomp must be an object");
        const char *key;
        json_t *value;
        json_object_foreach((json_t *) v, key, value) {
                static const char *const known[] = { "defaultAction", "defaultErrnoRet", "architectures", "flags",
                                                     "syscalls" };
                bool ok = false;
                for (size_t i = 0; i < ELEMENTSOF(known); i++)
                        ok = ok || streq(key, known[i]);
                if (!ok && !(json_is_null(value) || (json_is_string(value) && json_string_length(value) == 0)))
                        return fail(&c, -EINVAL, "linux.seccomp.%.64s is not supported by sandbox-oci", key);
        }
        r = parse_errno(&c, json_object_get(v, "defaultErrnoRet"), "linux.seccomp.defaultErrnoRet", &default_errno);
        if (r < 0 && r != -ENOENT)
                return r;
        r = parse_action(&c, json_object_get(v, "defaultAction"), "linux.seccomp.defaultAction", default_errno,
                         &default_action);
        if (r < 0)
                return r;
        if ((r = parse_flags(&c, json_object_get(v, "flags"))) < 0)
                return r;
        syscalls = json_object_get(v, "syscalls");
        if (syscalls && !json_is_null(syscalls) &&
            (!json_is_array(syscalls) || json_array_size(syscalls) > OCI_SECCOMP_RULES_MAX))
                return fail(&c, -EINVAL, "linux.seccomp.syscalls must be an array of at most %d entries",
                            OCI_SECCOMP_RULES_MAX);

        ctx = seccomp_init(default_action);
        if (!ctx)
                return fail(&c, -ENOMEM, "linux.seccomp: cannot make a filter");
        /* The filter is installed by the runtime, after ours: no_new_privs is ours to set. */
        r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
        if (r < 0) {
                r = fail(&c, r, "linux.seccomp: %s", strerror(-r));
                goto out;
        }
        if ((r = parse_arches(&c, ctx, json_object_get(v, "architectures"))) < 0)
                goto out;
        for (size_t i = 0; syscalls && i < json_array_size(syscalls); i++) {
                const json_t *s = json_array_get(syscalls, i), *names;
                struct scmp_arg_cmp args[6];
                uint32_t action, errno_ret = default_errno;
                unsigned n_args = 0;
                char field[64];

                names = json_is_object(s) ? json_object_get(s, "names") : NULL;
                if (!json_is_array(names) || json_array_size(names) == 0) {
                        r = fail(&c, -EINVAL, "linux.seccomp.syscalls[%zu].names must be a non-empty array", i);
                        goto out;
                }
                total_names += json_array_size(names);
                if (total_names > OCI_SECCOMP_NAMES_MAX) {
                        r = fail(&c, -EINVAL, "linux.seccomp.syscalls: more than %d names in all", OCI_SECCOMP_NAMES_MAX);
                        goto out;
                }
                snprintf(field, sizeof field, "linux.seccomp.syscalls[%zu].errnoRet", i);
                r = parse_errno(&c, json_object_get(s, "errnoRet"), field, &errno_ret);
                if (r < 0 && r != -ENOENT)
                        goto out;
                snprintf(field, sizeof field, "linux.seccomp.syscalls[%zu].action", i);
                if ((r = parse_action(&c, json_object_get(s, "action"), field, errno_ret, &action)) < 0 ||
                    (r = parse_args(&c, json_object_get(s, "args"), i, args, &n_args)) < 0)
                        goto out;
                for (size_t k = 0; k < json_array_size(names); k++) {
                        const char *name = json_string_value(json_array_get(names, k));
                        if (!name || strlen(name) > 64) {
                                r = fail(&c, -EINVAL, "linux.seccomp.syscalls[%zu].names[%zu] must be a syscall name", i, k);
                                goto out;
                        }
                        int nr = seccomp_syscall_resolve_name(name);
                        if (nr == __NR_SCMP_ERROR || action == default_action)
                                continue; /* a syscall this libseccomp does not know; a rule that changes nothing */
                        r = seccomp_rule_add_array(ctx, action, nr, n_args, args);
                        if (r < 0) {
                                r = fail(&c, -EINVAL, "linux.seccomp.syscalls[%zu]: %s: %s", i, name, strerror(-r));
                                goto out;
                        }
                }
        }
        r = filter_export(ctx, ret);
        if (r < 0)
                r = fail(&c, r, "linux.seccomp: cannot compile the profile: %s", strerror(-r));
out:
        seccomp_release(ctx);
        return r;
}
