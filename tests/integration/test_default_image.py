#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The default image (sandbox-run with no options) works for everyday tools and holds nothing secret.

As root, no mocks: every sandbox is a real sandbox-run with no option at all (not even the probe), on
the host's own /usr, in a state directory of the test's own. Everyday tools: awk and cc (found through
/etc/alternatives), a C program compiled and run, git init and commit, perl, Python's
ssl.create_default_context() loading the host's CA store, ldconfig -p (the host's ld.so.cache), date in
the host's time zone, /etc/os-release; java too where the host has one. Nothing secret: no shadow,
gshadow, ssh keys, machine-id, /etc/ssl/private, nothing that only some host users may read on the host,
no set-id file. The shared image is never changed by a sandbox (its writes to /etc stay in its upper),
and --hostname puts a layer of its own over it.

The host's /etc is never changed here (it is global state), and other work on the machine may change it
meanwhile: that an image is reused while the host's /etc is unchanged and replaced when it changes is
tested in tests/unit/test-image.c, on an /etc of the test's own."""

import fcntl
import hashlib
import os
import shutil
import stat
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sandbox_fixture as sf  # noqa: E402


def run(env, script, *options, timeout=60):
    """Runs SCRIPT with sh -c in a sandbox with the given options (none by default)."""
    return env.run(list(options) + ["sh", "-c", script], probe=False, timeout=timeout)


def ok(r, what):
    sf.eq(r.returncode, 0, f"{what}: {r}")
    return r.stdout


def host(cmd):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=True).stdout


def images(env):
    d = os.path.join(env.state, "images")
    return sorted(n for n in os.listdir(d) if n.startswith("host-")) if os.path.isdir(d) else []


def tree_digest(root):
    """Names, types, modes and contents (link targets) of everything below ROOT, as one digest."""
    h = hashlib.sha256()
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for n in sorted(dirs + files):
            p = os.path.join(d, n)
            st = os.lstat(p)
            h.update(f"{os.path.relpath(p, root)} {st.st_mode:o} {st.st_uid}:{st.st_gid}\n".encode())
            if stat.S_ISLNK(st.st_mode):
                h.update(os.readlink(p).encode())
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    h.update(f.read())
    return h.hexdigest()


def test_awk_and_cc_through_alternatives(env):
    out = ok(run(env, "command -v awk; command -v cc; awk 'BEGIN { print 6 * 7 }'"), "awk")
    sf.eq(out.split(), ["/usr/bin/awk", "/usr/bin/cc", "42"], "awk and cc found, awk runs")
    prog = r'''#include <stdio.h>
int main(void) { printf("compiled %d\n", 6 * 7); return 0; }'''
    out = ok(run(env, f"cat > /tmp/t.c <<'EOF'\n{prog}\nEOF\n"
                      "cc -O2 -Wall -o /tmp/t /tmp/t.c && /tmp/t && c++ --version >/dev/null && echo c++"),
             "cc")
    sf.eq(out.split(), ["compiled", "42", "c++"], "a C program compiled with cc and run")


def test_git(env):
    out = ok(run(env, "set -e; cd /tmp; git init -q repo; cd repo; echo hello > f; git add f; "
                      "git -c user.name=Test -c user.email=test@example.invalid commit -q -m first; "
                      "git log --format=%s; git cat-file -p HEAD:f"), "git")
    sf.eq(out.split(), ["first", "hello"], "git init, add, commit, log")


def test_perl(env):
    out = ok(run(env, "perl -MPOSIX -MSocket -e 'print floor(2.5), \" \", scalar getprotobyname(\"tcp\"), "
                      "\" \", scalar getservbyname(\"ssh\", \"tcp\"), \"\\n\"'"), "perl")
    sf.eq(out.split(), ["2", "6", "22"], "perl with POSIX and the protocols/services databases")


def test_python_ssl_has_the_host_ca_store(env):
    code = ("import ssl; c = ssl.create_default_context(); s = c.cert_store_stats(); "
            "print(s['x509_ca'], len(c.get_ca_certs()))")
    want = host([sys.executable, "-c", code]).split()
    sf.check(int(want[0]) > 0, f"the host itself has no CA certificates ({want}): install ca-certificates")
    out = ok(run(env, f'python3 -c "{code}"'), "python3 ssl")
    sf.eq(out.split(), want, "CA certificates loaded by ssl.create_default_context(), as on the host")
    # And an OpenSSL verification against the store (no network: a certificate of the store itself).
    out = ok(run(env, "openssl version >/dev/null 2>&1 || exit 0; "
                      "f=$(ls /etc/ssl/certs/*.pem | head -1); openssl verify \"$f\""), "openssl verify")
    sf.check(out == "" or out.strip().endswith(": OK"), f"openssl verify of a store certificate: {out!r}")


def test_ldconfig_sees_the_host_cache(env):
    # Other work on the machine may install packages (and so rewrite the cache) meanwhile.
    before = host(["/sbin/ldconfig", "-p"]).splitlines()[0]
    out = ok(run(env, "ldconfig -p | head -1; ls /etc/ld.so.conf /etc/ld.so.conf.d >/dev/null && echo conf"),
             "ldconfig -p")
    after = host(["/sbin/ldconfig", "-p"]).splitlines()[0]
    lines = out.splitlines()
    sf.eq(lines[1:], ["conf"], "ld.so.conf and ld.so.conf.d in the sandbox")
    sf.check(lines[0] in (before, after), f"ldconfig -p in the sandbox: {lines[0]!r}, on the host: {before!r}")


def test_time_zone_and_os_release(env):
    want_zone = host(["date", "+%Z %z"]).strip()
    want_link = os.readlink("/etc/localtime") if os.path.islink("/etc/localtime") else None
    with open("/etc/os-release") as f:
        want_release = f.read()
    out = ok(run(env, "date '+%Z %z'; readlink /etc/localtime || echo no-link; echo ---; cat /etc/os-release"),
             "date, os-release")
    zone, link, rest = out.split("\n", 2)
    sf.eq(zone, want_zone, "time zone of date(1)")
    sf.eq(link, want_link or "no-link", "/etc/localtime")
    sf.eq(rest, "---\n" + want_release, "/etc/os-release")
    if os.path.exists("/etc/timezone"):
        with open("/etc/timezone") as f:
            sf.eq(ok(run(env, "cat /etc/timezone"), "timezone"), f.read(), "/etc/timezone")


def test_java_where_the_host_has_one(env):
    if not shutil.which("java"):
        raise sf.Skip("no java on this host")
    want = subprocess.run(["java", "-version"], stderr=subprocess.PIPE, text=True).stderr.splitlines()[0]
    out = ok(run(env, "java -version 2>&1 | head -1"), "java -version")
    sf.eq(out.strip(), want, "java -version (jvm.cfg and conf/ come through /etc/java-*)")


SECRETS = ["/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-", "/etc/ssh", "/etc/machine-id",
           "/var/lib/dbus/machine-id", "/etc/ssl/private", "/etc/sudoers", "/etc/sudoers.d", "/etc/security",
           "/etc/subuid", "/etc/subgid", "/root/.ssh"]


def test_nothing_secret(env):
    # Every entry under /etc inside, with its type and mode, and any set-id file.
    out = ok(run(env, "for p in " + " ".join(SECRETS) + "; do [ -e $p ] || [ -L $p ] && echo present $p; done; "
                      "find /etc -xdev -printf '%y %m %p\\n'; find / -xdev -perm /6000 -printf 'setid %p\\n'"),
             "listing /etc")
    present = [line for line in out.splitlines() if line.startswith("present ")]
    sf.eq(present, [], "secret or host-identity files in the default image")
    setid = [line for line in out.splitlines() if line.startswith("setid ")]
    sf.eq(setid, [], "set-id files in the default image")
    entries = [line.split(" ", 2) for line in out.splitlines() if line[:2] in ("f ", "d ", "l ")]
    sf.check(len(entries) > 100, f"/etc inside has only {len(entries)} entries")
    generated = {"/etc/passwd", "/etc/group", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf",
                 "/etc/nsswitch.conf", "/etc/mtab"}
    for kind, mode, path in entries:
        if kind == "l" or path in generated or path == "/etc":
            continue
        # Everything else is a copy of a host entry that every host user may read.
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue  # gone from the host since the image was built
        need = stat.S_IROTH | (stat.S_IXOTH if kind == "d" else 0)
        sf.check(st.st_mode & need == need, f"{path} is in the image but not readable by others on the host "
                                           f"({stat.filemode(st.st_mode)})")
    # The host's machine id appears nowhere under /etc inside.
    with open("/etc/machine-id") as f:
        mid = f.read().strip()
    if mid:
        r = run(env, f"grep -rqs {mid} /etc; echo $?")
        sf.eq(r.stdout.strip(), "1", "the host's machine id under /etc in the sandbox")


def test_shared_image_is_not_changed_by_a_sandbox(env):
    ok(run(env, "true"), "first sandbox")
    names = images(env)
    sf.eq(len(names), 1, f"images after one sandbox: {names}")
    image = os.path.join(env.state, "images", names[0])
    # Held as a sandbox holds it, so that a change of the host's /etc meanwhile (other work on the
    # machine installing packages) cannot have it removed under the test.
    lock = os.open(image, os.O_RDONLY | os.O_DIRECTORY)
    env.fds.append(lock)
    fcntl.flock(lock, fcntl.LOCK_SH)
    image_etc = os.path.join(image, "etc")
    before = tree_digest(image_etc)
    st = os.stat(image)
    sf.eq((st.st_uid, stat.S_IMODE(st.st_mode) & 0o022), (0, 0), "the image is root's and nobody else may write")
    r = run(env, "set -e; echo overwritten > /etc/ld.so.cache; rm /etc/alternatives/awk; "
                 "echo new > /etc/ssl/certs/new.pem; chmod 777 /etc/ssl; echo done")
    sf.eq(r.stdout.strip(), "done", f"root inside may change its own /etc: {r}")
    sf.eq(tree_digest(image_etc), before, "the shared image after a sandbox wrote to /etc")
    out = ok(run(env, "command -v awk; head -c 20 /etc/ld.so.cache; echo; ls /etc/ssl/certs/new.pem 2>&1; true"),
             "second sandbox")
    lines = out.splitlines()
    sf.eq(lines[0], "/usr/bin/awk", "awk in the next sandbox")
    sf.check(lines[1].startswith("glibc-ld.so.cache"), f"ld.so.cache in the next sandbox: {lines[1]!r}")
    sf.check("No such file" in lines[2], f"a file the previous sandbox made: {lines[2]!r}")


def test_host_name_layer(env):
    out = ok(run(env, "cat /etc/hostname; grep -c box-xyz /etc/hosts; awk 'BEGIN { print \"awk\" }'; "
                      "test -s /etc/ld.so.cache && echo cache", "--hostname", "box-xyz"), "--hostname")
    sf.eq(out.split(), ["box-xyz", "1", "awk", "cache"], "--hostname: its own hosts and hostname over the image")
    out = ok(run(env, "cat /etc/hostname"), "default host name")
    sf.eq(out.strip(), "sandbox", "default host name after a --hostname sandbox")


if __name__ == "__main__":
    sf.main()
