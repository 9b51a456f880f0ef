/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * --systemd-cgroup: the container's cgroup is a systemd unit, as engines on systemd hosts ask for it
 * (podman's and the kubelet's default cgroup manager). linux.cgroupsPath "SLICE:PREFIX:NAME" names the
 * transient scope PREFIX-NAME.scope in SLICE. The monitor asks the service manager (D-Bus,
 * StartTransientUnit) for that scope with itself in it and Delegate=yes, waits until it is in it, and
 * the caller then divides the scope as sandbox-run divides a delegated one (sandbox_setup_cgroups()):
 * the monitor moves into the leaf "supervisor", the sandbox's cgroup is made beside it. When the monitor
 * exits the scope is empty, and systemd stops it and removes its cgroup.
 *
 * The bus: systemd's private socket (root only, there whenever systemd is PID 1), else the system bus.
 * Everything here runs in the monitor, before the sandbox exists; errors go to ERR for the engine.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "macro.h"
#include "systemd-cgroup.h"

#define SCOPE_WAIT_USEC (10 * UINT64_C(1000000))
#define SCOPE_POLL_USEC (10 * UINT64_C(1000))

/* A unit name's characters (systemd's unit_name_is_valid(), without templates). */
static bool unit_chars_valid(const char *s, size_t n) {
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_.\\", s[i]))
                        return false;
        return true;
}

int oci_systemd_scope_parse(const char *cgroups_path, const char *id, OciScope *ret, char *err, size_t errlen) {
        const char *a, *b;
        OciScope s = {};
        int n;

        if (!cgroups_path || !*cgroups_path)
                cgroups_path = ""; /* the default: system.slice, sandbox-oci-ID.scope */
        a = strchr(cgroups_path, ':');
        b = a ? strchr(a + 1, ':') : NULL;
        if (*cgroups_path && (!a || !b || strchr(b + 1, ':'))) {
                snprintf(err, errlen, "linux.cgroupsPath '%.64s' is not systemd's form slice:prefix:name, which "
                         "--systemd-cgroup needs", cgroups_path);
                return -EINVAL;
        }
        const char *slice = *cgroups_path ? cgroups_path : "", *prefix = a ? a + 1 : "sandbox-oci";
        size_t slice_len = a ? (size_t) (a - cgroups_path) : 0, prefix_len = b ? (size_t) (b - prefix) : strlen(prefix);
        const char *name = b ? b + 1 : id;

        if (slice_len == 0) {
                slice = "system.slice";
                slice_len = strlen(slice);
        }
        if (slice_len >= sizeof s.slice || slice_len < 7 || !unit_chars_valid(slice, slice_len) ||
            memcmp(slice + slice_len - 6, ".slice", 6) != 0) {
                snprintf(err, errlen, "linux.cgroupsPath: '%.*s' is not a slice name (letters, digits, ':-_.\\', "
                         "ending in .slice, at most %zu bytes)", (int) MIN(slice_len, (size_t) 64), slice,
                         sizeof s.slice - 1);
                return -EINVAL;
        }
        if (strlen(name) > 6 && streq(name + strlen(name) - 6, ".slice")) {
                snprintf(err, errlen, "linux.cgroupsPath: the name '%.64s' is a slice; sandbox-oci makes a scope for "
                         "each container", name);
                return -EINVAL;
        }
        memcpy(s.slice, slice, slice_len);
        n = snprintf(s.unit, sizeof s.unit, "%.*s%s%s.scope", (int) prefix_len, prefix, prefix_len ? "-" : "", name);
        if (n < 0 || (size_t) n >= sizeof s.unit || !unit_chars_valid(s.unit, (size_t) n)) {
                snprintf(err, errlen, "linux.cgroupsPath: the scope name '%.64s' is not a unit name (letters, digits, "
                         "':-_.\\', at most %zu bytes)", s.unit, sizeof s.unit - 1);
                return -EINVAL;
        }
        *ret = s;
        return 0;
}

static int bus_open(sd_bus **ret) {
        sd_bus *bus = NULL;
        int r;

        r = sd_bus_new(&bus);
        if (r < 0)
                return r;
        r = sd_bus_set_address(bus, "unix:path=/run/systemd/private");
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r >= 0) {
                *ret = bus;
                return 0;
        }
        sd_bus_unref(bus);
        return sd_bus_open_system(ret);
}

/* Our own cgroup2 path's last component is UNIT. */
static bool in_unit(const char *unit) {
        char line[4096];
        bool found = false;
        FILE *f = fopen("/proc/self/cgroup", "re");

        if (!f)
                return false;
        while (fgets(line, sizeof line, f))
                if (startswith(line, "0::")) {
                        line[strcspn(line, "\n")] = '\0';
                        const char *last = strrchr(line, '/');
                        found = last && streq(last + 1, unit);
                }
        fclose(f);
        return found;
}

int oci_systemd_scope_join(const OciScope *s, const char *description, char *err, size_t errlen) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *m = NULL, *reply = NULL;
        sd_bus *bus = NULL;
        int r;

        r = bus_open(&bus);
        if (r < 0) {
                snprintf(err, errlen, "--systemd-cgroup: cannot reach systemd (neither /run/systemd/private nor the "
                         "system bus): %s; without systemd, configure the engine with cgroupfs (podman: "
                         "--cgroup-manager cgroupfs; containerd: SystemdCgroup = false)", strerror(-r));
                return r;
        }
        r = sd_bus_message_new_method_call(bus, &m, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                           "org.freedesktop.systemd1.Manager", "StartTransientUnit");
        if (r >= 0)
                r = sd_bus_message_append(m, "ss", s->unit, "fail");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "(sv)");
        if (r >= 0)
                r = sd_bus_message_append(m, "(sv)(sv)(sv)(sv)(sv)", "Description", "s", description, "Slice", "s",
                                          s->slice, "Delegate", "b", 1, "PIDs", "au", 1, (uint32_t) getpid(),
                                          "CollectMode", "s", "inactive-or-failed");
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_append(m, "a(sa(sv))", 0);
        if (r >= 0)
                r = sd_bus_call(bus, m, 0, &e, &reply);
        if (r < 0) {
                snprintf(err, errlen, "--systemd-cgroup: systemd did not start the scope %s in %s: %s", s->unit,
                         s->slice, e.message ?: strerror(-r));
                goto out;
        }
        /* The job moves us into the scope as it runs: wait for that, bounded. */
        for (uint64_t waited = 0; !in_unit(s->unit); waited += SCOPE_POLL_USEC) {
                if (waited >= SCOPE_WAIT_USEC) {
                        snprintf(err, errlen, "--systemd-cgroup: the scope %s did not take the monitor within %u s",
                                 s->unit, (unsigned) (SCOPE_WAIT_USEC / 1000000));
                        r = -ETIMEDOUT;
                        goto out;
                }
                (void) usleep(SCOPE_POLL_USEC);
        }
        r = 0;
out:
        sd_bus_error_free(&e);
        sd_bus_message_unref(reply);
        sd_bus_message_unref(m);
        sd_bus_flush_close_unref(bus);
        return r;
}
