/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

#include "exec-options.h"
#include "macro.h"
#include "parse.h"

int parse_seconds(const char *s, uint64_t *ret_usec) {
        char *end;
        double v, scale = 1e6;

        if (!s || !strchr("0123456789.", s[0]))
                return -EINVAL;
        errno = 0;
        v = strtod(s, &end);
        if (errno || !isfinite(v) || v < 0)
                return -EINVAL;
        if (streq(end, "ms"))
                scale = 1e3;
        else if (!streq(end, "") && !streq(end, "s"))
                return -EINVAL;
        v *= scale;
        if (v > (double) (UINT64_C(365) * 24 * 3600 * 1000000))
                return -ERANGE;
        *ret_usec = (uint64_t) llround(v);
        return 0;
}

#define BAD(...)                                                                \
        do {                                                                    \
                fprintf(stderr, "%s: ", program_invocation_short_name);         \
                fprintf(stderr, __VA_ARGS__);                                   \
                fputc('\n', stderr);                                            \
                return -EINVAL;                                                 \
        } while (false)

static int strv_push(char ***v, size_t *n, const char *s, size_t max) {
        char **nv;

        if (*n >= max)
                return -E2BIG;
        nv = realloc(*v, (*n + 2) * sizeof(char *));
        if (!nv)
                return -ENOMEM;
        *v = nv;
        nv[*n] = strdup(s);
        if (!nv[*n])
                return -ENOMEM;
        nv[++*n] = NULL;
        return 0;
}

/* Relative host paths are taken relative to the caller's working directory, as bwrap does. */
static char *absolute_path(const char *p) {
        _cleanup_free_ char *cwd = NULL;
        char *r;

        if (p[0] == '/')
                return strdup(p);
        cwd = getcwd(NULL, 0);
        if (!cwd || asprintf(&r, "%s/%s", cwd, p) < 0)
                return NULL;
        return r;
}

/* SRC:DST[:OPTIONS], OPTIONS a comma-separated list of ro, rw and idmap. */
static int parse_bind(const char *arg, SpecBind *ret) {
        _cleanup_free_ char *copy = strdup(arg);
        char *dst, *mode;
        bool ro = false, rw = false, idmap = false;

        if (!copy)
                return -ENOMEM;
        dst = strchr(copy, ':');
        if (!dst)
                return -EINVAL;
        *dst++ = '\0';
        mode = strchr(dst, ':');
        if (mode)
                *mode++ = '\0';
        if (!*copy || !*dst)
                return -EINVAL;
        for (char *next = mode, *w; next && (w = strsep(&next, ","));) {
                if (streq(w, "ro"))
                        ro = true;
                else if (streq(w, "rw"))
                        rw = true;
                else if (streq(w, "idmap"))
                        idmap = true;
                else
                        return -EINVAL;
        }
        if (ro && rw)
                return -EINVAL;
        *ret = (SpecBind) { .readonly = ro, .idmap = idmap };
        ret->source = absolute_path(copy);
        ret->dest = strdup(dst);
        if (!ret->source || !ret->dest) {
                free(ret->source);
                free(ret->dest);
                return -ENOMEM;
        }
        return 0;
}

/* A size, or "unlimited" (UNLIMITED_VALUE). */
static int parse_size_or_unlimited(const char *s, uint64_t unlimited_value, uint64_t *ret) {
        if (streq(s, "unlimited")) {
                *ret = unlimited_value;
                return 0;
        }
        return parse_size(s, ret);
}

/* DST[:SIZE] */
static int parse_tmpfs(const char *arg, SpecTmpfs *ret) {
        _cleanup_free_ char *copy = strdup(arg);
        char *size;
        uint64_t bytes = 0;

        if (!copy)
                return -ENOMEM;
        size = strchr(copy, ':');
        if (size) {
                *size++ = '\0';
                if (parse_size_or_unlimited(size, SPEC_UNLIMITED, &bytes) < 0 || bytes == 0)
                        BAD("--tmpfs '%s': '%s' is not a size (like 512m or 1.5g) or unlimited", arg, size);
        }
        ret->dest = strdup(copy);
        if (!ret->dest)
                return -ENOMEM;
        ret->size = bytes;
        return 0;
}

/* One rlimit value: "unlimited"/"infinity", a size for byte-valued resources, else a number. */
static int parse_rlimit_value(const char *s, bool size, uint64_t *ret) {
        if (streq(s, "unlimited") || streq(s, "infinity")) {
                *ret = UINT64_MAX;
                return 0;
        }
        return size ? parse_size(s, ret) : safe_atou64(s, ret);
}

static void rlimit_names(char *buf, size_t size) {
        size_t n = 0;

        buf[0] = '\0';
        for (size_t i = 0; spec_rlimit_name_at(i) && n < size; i++)
                n += (size_t) snprintf(buf + n, size - n, "%s%s", i ? ", " : "", spec_rlimit_name_at(i));
}

/* NAME=VALUE or NAME=SOFT:HARD; a message names the part that is wrong. */
static int parse_rlimit(const char *arg, SpecRlimit *ret) {
        _cleanup_free_ char *copy = strdup(arg);
        char *value, *hard, names[256];
        SpecRlimit rl = {};
        bool size;

        if (!copy)
                return -ENOMEM;
        value = strchr(copy, '=');
        if (!value)
                BAD("--rlimit '%s': expected NAME=VALUE or NAME=SOFT:HARD", arg);
        *value++ = '\0';
        if (spec_rlimit_from_string(copy, &rl.resource) < 0) {
                rlimit_names(names, sizeof names);
                BAD("--rlimit '%s': unknown resource '%s' (one of %s)", arg, copy, names);
        }
        size = spec_rlimit_is_size(rl.resource);
        hard = strchr(value, ':');
        if (hard)
                *hard++ = '\0';
        if (parse_rlimit_value(value, size, &rl.soft) < 0)
                BAD("--rlimit '%s': %s '%s' is not %s or unlimited", arg, hard ? "the soft limit" : "the value",
                    value, size ? "a size (like 100m)" : "a number");
        if (!hard)
                rl.hard = rl.soft;
        else if (parse_rlimit_value(hard, size, &rl.hard) < 0)
                BAD("--rlimit '%s': the hard limit '%s' is not %s or unlimited", arg, hard,
                    size ? "a size (like 100m)" : "a number");
        if (rl.soft > rl.hard)
                BAD("--rlimit '%s': the soft limit (%s) is above the hard limit (%s)", arg, value, hard);
        *ret = rl;
        return 0;
}

/* SIZE[,inodes=N]; each may be "unlimited". */
static int parse_disk(const char *arg, SandboxSpec *s) {
        _cleanup_free_ char *copy = strdup(arg);
        char *inodes;
        uint64_t bytes, n = 0;

        if (!copy)
                return -ENOMEM;
        inodes = strchr(copy, ',');
        if (inodes) {
                *inodes++ = '\0';
                if (!startswith(inodes, "inodes="))
                        BAD("--disk '%s': expected SIZE[,inodes=N], not '%s'", arg, inodes);
                inodes += strlen("inodes=");
                if (streq(inodes, "unlimited"))
                        n = SPEC_UNLIMITED;
                else if (safe_atou64(inodes, &n) < 0 || n == 0)
                        BAD("--disk '%s': inodes '%s' is not a positive number or unlimited", arg, inodes);
        }
        if (parse_size_or_unlimited(copy, SPEC_UNLIMITED, &bytes) < 0 || bytes < 1024 * 1024)
                BAD("--disk '%s': '%s' is not a size of at least 1m (like 10g or 2.5g) or unlimited", arg, copy);
        s->disk_max = bytes;
        if (inodes)
                s->disk_inodes_max = n;
        return 0;
}

/* "fd:N" (an open descriptor of ours, for writing) or a file name. */
static int parse_stats(const char *arg, ExecOptions *o) {
        const char *num = startswith(arg, "fd:");

        if (num) {
                uint32_t fd;
                int fl;

                if (safe_atou32(num, &fd) < 0 || fd > INT_MAX)
                        BAD("--stats '%s': '%s' is not a file descriptor number", arg, num);
                fl = fcntl((int) fd, F_GETFL);
                if (fl < 0)
                        BAD("--stats '%s': file descriptor %s is not open", arg, num);
                if ((fl & O_ACCMODE) == O_RDONLY)
                        BAD("--stats '%s': file descriptor %s is not open for writing", arg, num);
                /* Ours only: nothing we start inherits it. */
                (void) fcntl((int) fd, F_SETFD, FD_CLOEXEC);
                o->stats_fd = (int) fd;
                free(o->stats_path);
                o->stats_path = NULL;
                return 0;
        }
        if (!*arg)
                BAD("--stats: expected a file name or fd:N");
        free(o->stats_path);
        o->stats_fd = -EBADF;
        return (o->stats_path = strdup(arg)) ? 0 : -ENOMEM;
}

/* UID[:GID], numbers (without an image of the store, whose names the runtime looks up). */
static int parse_user(const char *arg, uint32_t *ret_uid, uint32_t *ret_gid) {
        _cleanup_free_ char *copy = strdup(arg);
        char *gid;
        uint32_t u, g;

        if (!copy)
                return -ENOMEM;
        gid = strchr(copy, ':');
        if (gid)
                *gid++ = '\0';
        if (safe_atou32(copy, &u) < 0 || (gid && safe_atou32(gid, &g) < 0))
                return -EINVAL;
        *ret_uid = u;
        *ret_gid = gid ? g : u;
        return 0;
}

/* "NET_RAW,cap_sys_ptrace" or "ALL" → a mask (ALL: SPEC_CAPS_ALL). */
static int parse_caps(const char *arg, uint64_t *ret) {
        _cleanup_free_ char *copy = strdup(arg);
        uint64_t mask = 0;
        int cap;

        if (!copy)
                return -ENOMEM;
        for (char *save = NULL, *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
                if (strcasecmp(w, "ALL") == 0)
                        mask = SPEC_CAPS_ALL;
                else if (spec_cap_from_string(w, &cap) < 0)
                        return -EINVAL;
                else
                        mask |= SPEC_CAP(cap);
        }
        if (mask == 0)
                return -EINVAL;
        *ret = mask;
        return 0;
}

void exec_options_help(FILE *f, bool daemon) {
        char mem[FORMAT_SIZE_MAX], disk[FORMAT_SIZE_MAX], tmpfs[FORMAT_SIZE_MAX];

        fputs("Options:\n"
              "      --image host|DIR|NAME[:TAG|@sha256:DIGEST]\n"
              "                            the root's base: host (default: the host's /usr read-only and\n"
              "                            a generated /etc), a directory (a value starting with / or .),\n"
              "                            or an image of the store (sandbox-image pull NAME): its layers,\n"
              "                            Env, Entrypoint, Cmd, WorkingDir and User\n"
              "      --entrypoint PROG     with --image NAME: run PROG instead of the image's Entrypoint and\n"
              "                            Cmd ('' for none); the command's arguments follow it\n"
              "      --layer DIR           another read-only layer above the image (repeatable, topmost first)\n"
              "      --upper DIR           keep the sandbox's changes in DIR (created 0700 if missing; one\n"
              "                            sandbox at a time; default: discarded at exit)\n"
              "  -e, --env K=V             set an environment variable (repeatable; over the image's Env)\n"
              "  -w, --workdir DIR         working directory inside (default: the image's, else /)\n"
              "  -u, --user UID[:GID]      ids inside (default: the image's User, else 0:0); with --image NAME\n"
              "                            also NAME[:GROUP], looked up in the image's /etc/passwd and /etc/group\n"
              "      --hostname NAME       host name inside (default sandbox)\n"
              "  -t, --tty                 give the program a terminal\n"
              "      --bind SRC:DST[:OPTS]  bind a host path into the sandbox; OPTS: ro or rw (default),\n"
              "                            idmap (what root inside writes belongs to SRC's owner)\n"
              "      --tmpfs DST[:SIZE]    mount a tmpfs; SIZE or unlimited (also over /tmp, /dev/shm)\n"
              "      --memory SIZE         memory limit (like 512m or 1.5g, or unlimited); exceeding it\n"
              "                            ends the sandbox (137)\n"
              "      --pids N              limit on processes and threads (or unlimited)\n"
              "      --disk SIZE[,inodes=N]  what the sandbox may add to its upper layer (or unlimited)\n"
              "      --cpus F              CPU bandwidth, in CPUs (0.5 = half of one; at most the host's)\n"
              "      --timeout SECONDS     wall-clock limit (exit 124)\n"
              "      --cpu-time SECONDS    CPU-time limit of the whole sandbox (exit 124)\n"
              "      --rlimit NAME=VALUE   a resource limit, VALUE or SOFT:HARD or unlimited; sizes take\n"
              "                            k/m/g (fsize=100m) (repeatable)\n"
              "      --seccomp default|unconfined|FILE  system call filter (default: default)\n"
              "      --cap-add CAP[,CAP]   give root inside another capability (or ALL); repeatable\n"
              "      --cap-drop CAP[,CAP]  take one of the default capabilities away (ALL: none at all)\n"
              "      --net MODE            network: none (default: lo only), bridge (eth0 on the sandbox\n"
              "                            bridge, NAT to the outside), isolated (like bridge, but no\n"
              "                            traffic between sandboxes), host (the host's; root only)\n"
              "  -p, --publish HOSTPORT:PORT[/tcp|/udp]  forward a host port to the sandbox (repeatable)\n"
              "      --stats FILE|fd:N     write JSON accounting to FILE (or descriptor N) at exit\n"
              "  -h, --help                show this help\n"
              "      --version             show the version\n",
              f);
        if (!daemon)
                fputs("      --store DIR           the image store (default " SPEC_IMAGE_STORE_DEFAULT ")\n", f);
        else
                fputs("      --volume NAME:/PATH[:ro]  mount your volume NAME (sandboxctl volume create) at PATH,\n"
                      "                            read-only with :ro (repeatable, at most 8; one sandbox at a time)\n",
                      f);
        fputs("\n", f);
        fprintf(f,
                "Default bounds (docs/limits.md), with no option given:\n"
                "  memory %s (no swap), pids %" PRIu64 ", disk %s and %" PRIu64 " inodes added to the upper,\n"
                "  /tmp and /dev/shm %s each (and each --tmpfs without SIZE), open files (nofile)\n"
                "  %" PRIu64 ":%" PRIu64 " (the hard limit at most the caller's), no core dumps.\n",
                format_size(SPEC_DEFAULT_MEMORY, mem, sizeof mem), SPEC_DEFAULT_PIDS,
                format_size(SPEC_DEFAULT_DISK, disk, sizeof disk), SPEC_DEFAULT_DISK_INODES,
                format_size(SPEC_DEFAULT_TMPFS, tmpfs, sizeof tmpfs), SPEC_DEFAULT_NOFILE_SOFT,
                SPEC_DEFAULT_NOFILE_HARD);
        if (daemon)
                fprintf(f,
                        "Through sandboxd, users other than root also get a wall-clock limit (%" PRIu64 " s unless\n"
                        "the daemon's max-timeout says otherwise), the daemon's caps (max-memory, max-pids,\n"
                        "max-disk, ...) bound what they may ask for, and --rlimit may only lower limits.\n"
                        "Root may raise any bound, or pass unlimited.\n\n",
                        SPEC_DEFAULT_CLIENT_TIMEOUT_USEC / 1000000);
        else
                fputs("Raise a bound with its option (--memory 8g, --pids unlimited, --disk unlimited, ...).\n\n", f);
        fputs("Exit status: the program's; 128+N if signal N killed it; 124 when a time limit ended it;\n"
              "137 when the memory limit ended it; 125 for a usage error or when the sandbox could not be\n"
              "set up; 126 when the command cannot be executed; 127 when it is not found.\n",
              f);
}

enum {
        ARG_IMAGE = 0x100,
        ARG_LAYER,
        ARG_UPPER,
        ARG_HOSTNAME,
        ARG_BIND,
        ARG_TMPFS,
        ARG_MEMORY,
        ARG_DISK,
        ARG_PIDS,
        ARG_CPUS,
        ARG_TIMEOUT,
        ARG_CPU_TIME,
        ARG_RLIMIT,
        ARG_SECCOMP,
        ARG_NET,
        ARG_CAP_ADD,
        ARG_CAP_DROP,
        ARG_STATS,
        ARG_VERSION,
        ARG_ENTRYPOINT,
        ARG_STORE,
        ARG_IN,
        ARG_NAME,
        ARG_TTL,
        ARG_IDLE_TTL,
        ARG_JSON,
        ARG_VOLUME,
};

static const struct option long_options[] = {
        { "image", required_argument, NULL, ARG_IMAGE },
        { "layer", required_argument, NULL, ARG_LAYER },
        { "upper", required_argument, NULL, ARG_UPPER },
        { "env", required_argument, NULL, 'e' },
        { "workdir", required_argument, NULL, 'w' },
        { "user", required_argument, NULL, 'u' },
        { "hostname", required_argument, NULL, ARG_HOSTNAME },
        { "tty", no_argument, NULL, 't' },
        { "bind", required_argument, NULL, ARG_BIND },
        { "tmpfs", required_argument, NULL, ARG_TMPFS },
        { "memory", required_argument, NULL, ARG_MEMORY },
        { "disk", required_argument, NULL, ARG_DISK },
        { "pids", required_argument, NULL, ARG_PIDS },
        { "cpus", required_argument, NULL, ARG_CPUS },
        { "timeout", required_argument, NULL, ARG_TIMEOUT },
        { "cpu-time", required_argument, NULL, ARG_CPU_TIME },
        { "rlimit", required_argument, NULL, ARG_RLIMIT },
        { "seccomp", required_argument, NULL, ARG_SECCOMP },
        { "net", required_argument, NULL, ARG_NET },
        { "cap-add", required_argument, NULL, ARG_CAP_ADD },
        { "cap-drop", required_argument, NULL, ARG_CAP_DROP },
        { "publish", required_argument, NULL, 'p' },
        { "stats", required_argument, NULL, ARG_STATS },
        { "entrypoint", required_argument, NULL, ARG_ENTRYPOINT },
        { "store", required_argument, NULL, ARG_STORE },
        { "in", required_argument, NULL, ARG_IN },
        { "name", required_argument, NULL, ARG_NAME },
        { "ttl", required_argument, NULL, ARG_TTL },
        { "idle-ttl", required_argument, NULL, ARG_IDLE_TTL },
        { "json", no_argument, NULL, ARG_JSON },
        { "volume", required_argument, NULL, ARG_VOLUME },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, ARG_VERSION },
        {}
};

static int replace_string(char **field, const char *value) {
        char *c = strdup(value);
        if (!c)
                return -ENOMEM;
        free(*field);
        *field = c;
        return 0;
}

static int parse_one(int c, const char *arg, ExecOptions *o) {
        SandboxSpec *s = &o->spec;
        int r;

        switch (c) {
        case ARG_IMAGE:
                /* host, a directory (/..., ./..., ../...), or a name the image store resolves. */
                free(s->image);
                free(s->image_ref);
                s->image = s->image_ref = NULL;
                if (streq(arg, "host"))
                        return 0;
                if (arg[0] == '/' || arg[0] == '.')
                        return (s->image = absolute_path(arg)) ? 0 : -ENOMEM;
                if (!*arg)
                        BAD("--image '': expected host, a directory or an image name");
                return (s->image_ref = strdup(arg)) ? 0 : -ENOMEM;
        case ARG_ENTRYPOINT:
                return replace_string(&s->entrypoint, arg);
        case ARG_STORE:
                if (!*arg)
                        BAD("--store '': expected a directory");
                free(o->store);
                return (o->store = absolute_path(arg)) ? 0 : -ENOMEM;
        case ARG_LAYER: {
                _cleanup_free_ char *p = absolute_path(arg);
                if (!p)
                        return -ENOMEM;
                r = strv_push(&s->layers, &s->n_layers, p, SPEC_LAYERS_MAX);
                if (r == -E2BIG)
                        BAD("too many --layer options (at most %d)", SPEC_LAYERS_MAX);
                return r;
        }
        case ARG_UPPER:
                free(s->upper);
                return (s->upper = absolute_path(arg)) ? 0 : -ENOMEM;
        case 'e':
                if (!strchr(arg, '=') || arg[0] == '=')
                        BAD("--env '%s': expected NAME=VALUE", arg);
                r = strv_push(&s->env, &s->n_env, arg, SPEC_ENV_MAX);
                if (r == -E2BIG)
                        BAD("too many --env options (at most %d)", SPEC_ENV_MAX);
                return r;
        case 'w':
                if (arg[0] != '/')
                        BAD("--workdir '%s': must be an absolute path", arg);
                return replace_string(&s->workdir, arg);
        case 'u':
                return replace_string(&o->user_arg, arg);
        case ARG_HOSTNAME:
                return replace_string(&s->hostname, arg);
        case 't':
                s->tty = true;
                return 0;
        case ARG_BIND: {
                SpecBind *nb;
                if (s->n_binds >= SPEC_MOUNTS_MAX)
                        BAD("too many --bind options (at most %d)", SPEC_MOUNTS_MAX);
                nb = realloc(s->binds, (s->n_binds + 1) * sizeof *nb);
                if (!nb)
                        return -ENOMEM;
                s->binds = nb;
                r = parse_bind(arg, &s->binds[s->n_binds]);
                if (r == -EINVAL)
                        BAD("--bind '%s': expected SRC:DST or SRC:DST:OPTIONS, OPTIONS one or more of ro, rw, "
                            "idmap separated by commas (not both ro and rw)", arg);
                if (r < 0)
                        return r;
                if (s->binds[s->n_binds].dest[0] != '/') {
                        free(s->binds[s->n_binds].source);
                        free(s->binds[s->n_binds].dest);
                        BAD("--bind '%s': the destination must be an absolute path", arg);
                }
                s->n_binds++;
                return 0;
        }
        case ARG_TMPFS: {
                SpecTmpfs *nt;
                if (s->n_tmpfs >= SPEC_MOUNTS_MAX)
                        BAD("too many --tmpfs options (at most %d)", SPEC_MOUNTS_MAX);
                nt = realloc(s->tmpfs, (s->n_tmpfs + 1) * sizeof *nt);
                if (!nt)
                        return -ENOMEM;
                s->tmpfs = nt;
                r = parse_tmpfs(arg, &s->tmpfs[s->n_tmpfs]);
                if (r < 0)
                        return r;
                s->n_tmpfs++;
                return 0;
        }
        case ARG_MEMORY:
                if (streq(arg, "unlimited"))
                        s->memory_max = SPEC_UNLIMITED;
                else if (parse_size(arg, &s->memory_max) < 0 || s->memory_max < 1024 * 1024)
                        BAD("--memory '%s': expected a size of at least 1m, like 512m or 1.5g, or unlimited", arg);
                return 0;
        case ARG_DISK:
                return parse_disk(arg, s);
        case ARG_PIDS:
                if (streq(arg, "unlimited"))
                        s->pids_max = SPEC_UNLIMITED;
                else if (safe_atou64(arg, &s->pids_max) < 0 || s->pids_max == 0 || s->pids_max > 4194304)
                        BAD("--pids '%s': expected a number from 1 to 4194304, or unlimited", arg);
                return 0;
        case ARG_CPUS: {
                char *end;
                double v;
                errno = 0;
                v = strtod(arg, &end);
                if (errno || *end || end == arg || !isfinite(v) || v < 0.001 || v > 1024)
                        BAD("--cpus '%s': expected a number of CPUs from 0.001 to 1024, like 0.5", arg);
                long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
                if (ncpu > 0 && v > (double) ncpu)
                        BAD("--cpus '%s': this host has %ld CPU%s", arg, ncpu, ncpu == 1 ? "" : "s");
                s->cpus_milli = (uint32_t) llround(v * 1000);
                return 0;
        }
        case ARG_TIMEOUT:
                if (parse_seconds(arg, &s->timeout_usec) < 0 || s->timeout_usec == 0)
                        BAD("--timeout '%s': expected a positive number of seconds", arg);
                return 0;
        case ARG_CPU_TIME:
                if (parse_seconds(arg, &s->cpu_time_usec) < 0 || s->cpu_time_usec == 0)
                        BAD("--cpu-time '%s': expected a positive number of seconds", arg);
                return 0;
        case ARG_RLIMIT: {
                SpecRlimit rl;
                r = parse_rlimit(arg, &rl);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < s->n_rlimits; i++)
                        if (s->rlimits[i].resource == rl.resource) {
                                s->rlimits[i] = rl;
                                return 0;
                        }
                if (s->n_rlimits >= SPEC_RLIMITS_MAX)
                        BAD("too many --rlimit options");
                s->rlimits[s->n_rlimits++] = rl;
                return 0;
        }
        case ARG_SECCOMP:
                if (streq(arg, "default") || streq(arg, "unconfined"))
                        return replace_string(&s->seccomp, arg);
                free(s->seccomp);
                return (s->seccomp = absolute_path(arg)) ? 0 : -ENOMEM;
        case ARG_NET:
                if (spec_net_from_string(arg, &s->net) < 0)
                        BAD("--net '%s': expected none, bridge, isolated or host", arg);
                return 0;
        case 'p': {
                SpecPublish pub = { .proto = IPPROTO_TCP };
                char *colon, *slash, *end;
                _cleanup_free_ char *copy = strdup(arg);
                unsigned long hp, pp;

                if (!copy)
                        return -ENOMEM;
                slash = strchr(copy, '/');
                if (slash) {
                        *slash++ = '\0';
                        if (streq(slash, "udp"))
                                pub.proto = IPPROTO_UDP;
                        else if (!streq(slash, "tcp"))
                                BAD("--publish '%s': the protocol must be tcp or udp", arg);
                }
                colon = strchr(copy, ':');
                if (!colon)
                        BAD("--publish '%s': expected HOSTPORT:PORT[/tcp|/udp]", arg);
                *colon++ = '\0';
                errno = 0;
                hp = strtoul(copy, &end, 10);
                if (errno || *end || !*copy || hp < 1 || hp > 65535)
                        BAD("--publish '%s': the host port must be 1..65535", arg);
                pp = strtoul(colon, &end, 10);
                if (errno || *end || !*colon || pp < 1 || pp > 65535)
                        BAD("--publish '%s': the sandbox port must be 1..65535", arg);
                if (s->n_publish >= SPEC_PUBLISH_MAX)
                        BAD("too many --publish options (at most %d)", SPEC_PUBLISH_MAX);
                pub.host_port = (uint32_t) hp;
                pub.port = (uint32_t) pp;
                s->publish[s->n_publish++] = pub;
                return 0;
        }
        case ARG_CAP_ADD:
        case ARG_CAP_DROP: {
                const char *opt = c == ARG_CAP_ADD ? "--cap-add" : "--cap-drop";
                uint64_t mask;
                r = parse_caps(arg, &mask);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        BAD("%s '%s': expected capability names (like NET_RAW or CAP_NET_RAW) separated by "
                            "commas, or ALL; see capabilities(7)", opt, arg);
                if (c == ARG_CAP_ADD)
                        s->cap_add |= mask;
                else
                        s->cap_drop |= mask;
                return 0;
        }
        case ARG_STATS:
                return parse_stats(arg, o);
        case ARG_IN:
                if (o->mode != EXEC_OPTIONS_EXEC)
                        BAD("--in is sandboxctl exec's");
                if (!msg_target_is_valid(arg))
                        BAD("--in '%s': expected a sandbox id (16 hex digits) or name (1-%d letters, digits, '_', "
                            "'.' or '-', starting with a letter or digit)", arg, MSG_NAME_MAX);
                snprintf(o->in, sizeof o->in, "%s", arg);
                return 0;
        case ARG_NAME:
                if (o->mode != EXEC_OPTIONS_CREATE)
                        BAD("--name is sandboxctl create's");
                if (!msg_name_is_valid(arg))
                        BAD("--name '%s': expected 1-%d letters, digits, '_', '.' or '-', starting with a letter or "
                            "digit, and not 16 hex digits (an id)", arg, MSG_NAME_MAX);
                snprintf(o->name, sizeof o->name, "%s", arg);
                return 0;
        case ARG_TTL:
        case ARG_IDLE_TTL: {
                const char *opt = c == ARG_TTL ? "--ttl" : "--idle-ttl";
                uint64_t v;
                if (o->mode != EXEC_OPTIONS_CREATE)
                        BAD("%s is sandboxctl create's", opt);
                if (parse_seconds(arg, &v) < 0 || v == 0 || v > MSG_TTL_MAX_USEC)
                        BAD("%s '%s': expected seconds, more than 0 and at most a year", opt, arg);
                *(c == ARG_TTL ? &o->ttl_usec : &o->idle_ttl_usec) = v;
                return 0;
        }
        case ARG_VOLUME: {
                MsgVolumeMount *v;
                const char *colon = strchr(arg, ':');
                size_t len;
                if (o->mode == EXEC_OPTIONS_RUN)
                        BAD("--volume is sandboxctl's (volumes are sandboxd's)");
                if (o->n_volumes >= MSG_VOLUMES_MAX)
                        BAD("--volume '%s': at most %d volumes", arg, MSG_VOLUMES_MAX);
                v = &o->volumes[o->n_volumes];
                *v = (MsgVolumeMount) {};
                if (!colon || (size_t) (colon - arg) > MSG_VOLUME_NAME_MAX)
                        BAD("--volume '%s': expected NAME:/PATH[:ro]", arg);
                memcpy(v->name, arg, (size_t) (colon - arg));
                v->name[colon - arg] = '\0';
                if (!msg_volume_name_is_valid(v->name))
                        BAD("--volume '%s': '%s' is not a volume name (1-%d letters, digits, '_', '.' or '-', starting "
                            "with a letter or digit)", arg, v->name, MSG_VOLUME_NAME_MAX);
                v->dest = strdup(colon + 1);
                if (!v->dest)
                        return -ENOMEM;
                len = strlen(v->dest);
                if (len > 3 && (streq(v->dest + len - 3, ":ro") || streq(v->dest + len - 3, ":rw"))) {
                        v->readonly = v->dest[len - 2] == 'r' && v->dest[len - 1] == 'o';
                        v->dest[len - 3] = '\0';
                }
                if (!msg_volume_dest_is_valid(v->dest)) {
                        free(v->dest);
                        v->dest = NULL;
                        BAD("--volume '%s': the path must be absolute, without '.' or '..' components, and not '/'",
                            arg);
                }
                o->n_volumes++;
                return 0;
        }
        case ARG_JSON:
                if (o->mode != EXEC_OPTIONS_CREATE)
                        BAD("--json is sandboxctl create's (and ps's, version's)");
                o->json = true;
                return 0;
        case 'h':
                o->show_help = true;
                return 0;
        case ARG_VERSION:
                o->show_version = true;
                return 0;
        default:
                return -EINVAL; /* getopt printed why */
        }
}

int exec_options_parse(int argc, char *argv[], ExecOptions *ret) {
        return exec_options_parse_mode(argc, argv, EXEC_OPTIONS_RUN, ret);
}

/* With --in, what a program of a created sandbox may not say (the sandbox has it). */
static const char *exec_in_extra(const ExecOptions *o) {
        SandboxSpec only = o->spec;

        if (o->store)
                return "--store";
        if (o->n_volumes > 0)
                return "volumes (give --volume to create)";
        only.argv = NULL;
        only.n_argv = 0;
        only.env = NULL;
        only.n_env = 0;
        only.workdir = NULL;
        only.user = NULL;
        only.tty = false;
        only.timeout_usec = 0;
        only.uid = only.gid = 0;
        if (memcmp(&only, &(SandboxSpec) {}, sizeof only) == 0)
                return NULL;
        return "sandbox options (--image, --memory, --bind, --net, ...)";
}

int exec_options_parse_mode(int argc, char *argv[], ExecOptionsMode mode, ExecOptions *ret) {
        ExecOptions o = { .stats_fd = -EBADF, .mode = mode };
        const char *err = NULL;
        unsigned flags = 0;
        int c, r;

        optind = 0;
        /* "+": stop at the first non-option, so "sandbox-run ls -l" runs "ls -l". */
        while ((c = getopt_long(argc, argv, "+e:w:u:thp:", long_options, NULL)) >= 0) {
                r = parse_one(c, optarg, &o);
                if (r == -ENOMEM)
                        fprintf(stderr, "%s: out of memory\n", program_invocation_short_name);
                if (r < 0)
                        goto fail;
        }
        if (o.show_help || o.show_version) {
                *ret = o;
                return 0;
        }
        /* An image of the store may give the command; numeric ids are the spec's own, names are looked up
         * in the image by the runtime. */
        if (mode == EXEC_OPTIONS_CREATE) {
                const char *bad = optind < argc ? "a command (run programs with sandboxctl exec --in)" :
                                  o.spec.tty ? "-t (give it to exec --in)" :
                                  o.spec.timeout_usec ? "--timeout (give it to exec --in)" :
                                  o.spec.cpu_time_usec ? "--cpu-time (a bound of one program)" :
                                  o.stats_path || o.stats_fd >= 0 ? "--stats (give it to exec --in)" :
                                  o.spec.entrypoint ? "--entrypoint (the image's command is not run)" : NULL;
                if (bad) {
                        fprintf(stderr, "%s: create takes no %s\n", program_invocation_short_name, bad);
                        r = -EINVAL;
                        goto fail;
                }
                flags |= SPEC_VALIDATE_NO_COMMAND;
        } else if (o.in[0]) {
                const char *bad = exec_in_extra(&o);
                if (bad) {
                        fprintf(stderr, "%s: exec --in takes only -e, -w, -u, -t, --timeout and --stats: the "
                                "sandbox has its own %s\n", program_invocation_short_name, bad);
                        r = -EINVAL;
                        goto fail;
                }
                if (optind >= argc) {
                        fprintf(stderr, "%s: no command given (see --help)\n", program_invocation_short_name);
                        r = -EINVAL;
                        goto fail;
                }
                flags |= SPEC_VALIDATE_EXEC_IN;
        } else if (optind >= argc && !o.spec.image_ref) {
                fprintf(stderr, "%s: no command given (see --help)\n", program_invocation_short_name);
                r = -EINVAL;
                goto fail;
        }
        if (o.spec.entrypoint && !o.spec.image_ref) {
                fprintf(stderr, "%s: --entrypoint needs an image of the store (--image NAME)\n",
                        program_invocation_short_name);
                r = -EINVAL;
                goto fail;
        }
        if (o.user_arg && (o.spec.image_ref || o.in[0])) {
                if (strlen(o.user_arg) >= SPEC_USER_MAX || !*o.user_arg) {
                        fprintf(stderr, "%s: --user '%s': expected NAME[:GROUP] or UID[:GID] of at most %d bytes\n",
                                program_invocation_short_name, o.user_arg, SPEC_USER_MAX - 1);
                        r = -EINVAL;
                        goto fail;
                }
                o.spec.user = TAKE_PTR(o.user_arg);
        } else if (o.user_arg && parse_user(o.user_arg, &o.spec.uid, &o.spec.gid) < 0) {
                fprintf(stderr, "%s: --user '%s': expected UID or UID:GID (numbers; names need an image of the "
                        "store, --image NAME)\n", program_invocation_short_name, o.user_arg);
                r = -EINVAL;
                goto fail;
        }
        for (int i = optind; i < argc; i++) {
                r = strv_push(&o.spec.argv, &o.spec.n_argv, argv[i], SPEC_ARGS_MAX);
                if (r < 0) {
                        fprintf(stderr, "%s: %s\n", program_invocation_short_name,
                                r == -E2BIG ? "too many arguments" : "out of memory");
                        goto fail;
                }
        }
        r = spec_validate_flags(&o.spec, flags, &err);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", program_invocation_short_name, err);
                goto fail;
        }
        *ret = o;
        return 0;
fail:
        exec_options_done(&o);
        return -EINVAL;
}

void exec_options_done(ExecOptions *o) {
        spec_done(&o->spec);
        free(o->store);
        o->store = NULL;
        free(o->user_arg);
        o->user_arg = NULL;
        free(o->stats_path);
        o->stats_path = NULL;
        o->stats_fd = -EBADF; /* not ours to close: the caller's */
        msg_volume_mounts_done(o->volumes, &o->n_volumes);
}
