#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""--image NAME end to end (root, FUSE, cgroups): images of the store run by sandbox-run and by sandboxd.

Images are built by the test (tests/lib/image_fixture.py) from Debian's static busybox and small layers with
an /etc/passwd and /etc/group naming a user, pushed with skopeo to Debian's docker-registry on a free
loopback port, and pulled with sandbox-image into stores of the test's own. Then:
- run by tag, by digest and by image ID, through sandbox-run and through sandboxd for a client other than
  root (uid 65534 in a group the daemon allows: the group 'sandbox' of a real host);
- the config applies: Entrypoint and Cmd with and without a command and with --entrypoint, Env under -e,
  WorkingDir (made when missing) under -w, User by name resolved in the image's own /etc/passwd (and a
  group in /etc/group) under -u; a user the image lacks, a passwd hidden by a whiteout, and a passwd that
  is a symlink to the host's /etc/shadow are clear errors;
- a reference not in the store is an error that says to pull it; the root is the image's (no host /usr),
  with /etc/hostname, /etc/hosts and /etc/resolv.conf of the sandbox;
- sandboxd: store= and --store, allow-images restricts clients other than root (compared by image, so a
  digest reference of an allowed tag passes), none forbids, a directory --image stays refused;
- sandbox-image prune while a sandbox runs keeps its layers (and removes them after it ended);
- 100 starts of one image share its layers: the store does not grow, and nothing is left per sandbox.
Every test checks that nothing of its sandboxes is left on the host (tests/lib/sandboxd_fixture.py).
Exit 77 when not root, or without docker-registry, skopeo or a static busybox (scripts/install-deps.sh);
a failure under SBX_TESTS_MUST_RUN=1.
"""

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import sandbox_fixture as sf  # noqa: E402
import sandboxd_fixture as df  # noqa: E402
from image_fixture import (Image, Layer, Registry, build_layout, busybox_layer, busybox_static,  # noqa: E402
                           config_json, containers, registry_binary, registry_manifest)

IMAGE_TOOL = os.path.abspath(os.environ.get("SANDBOX_IMAGE") or sf._default("tools/sandbox-image"))
NOBODY = 65534
PASSWD = b"root:x:0:0:root:/root:/bin/sh\napp:x:1234:2345:App:/home/app:/bin/sh\n"
GROUP = b"root:x:0:\nstaff:x:50:app\napp:x:2345:\n"


def prerequisites():
    why = df.prerequisites()
    if why:
        return why
    if not os.access(IMAGE_TOOL, os.X_OK):
        return f"no sandbox-image at {IMAGE_TOOL} (set SANDBOX_IMAGE)"
    if not registry_binary():
        return "no docker-registry (scripts/install-deps.sh unpacks it)"
    if not shutil.which("skopeo"):
        return "no skopeo (scripts/install-deps.sh)"
    if not busybox_static():
        return "no static busybox (scripts/install-deps.sh unpacks busybox-static)"
    if not df.SETPRIV:
        return "no setpriv"
    return None


# ---------------------------------------------------------------- the images, once for all tests

class Ctx:
    pass


_ctx = None


def sbx_image(store, *args, timeout=120):
    return subprocess.run([IMAGE_TOOL, "--store", store, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def pull(store, ref):
    r = sbx_image(store, "pull", "-q", ref)
    if r.returncode != 0:
        raise AssertionError(f"sandbox-image pull {ref}: {r.stderr}")
    return r.stdout.strip()


def ctx():
    """The registry with the test's images, and a store that has pulled them (shared by the tests)."""
    global _ctx
    if _ctx:
        return _ctx
    c = Ctx()
    c.work = tempfile.mkdtemp(prefix="image-run-", dir="/var/tmp")
    atexit.register(_teardown, c)
    bb = busybox_layer()
    etc = Layer([("d", "etc", 0o755, 0, 0), ("f", "etc/passwd", PASSWD, 0o644, 0, 0),
                 ("f", "etc/group", GROUP, 0o644, 0, 0), ("d", "home", 0o755, 0, 0),
                 ("d", "home/app", 0o750, 1234, 2345), ("d", "srv", 0o755, 0, 0), ("d", "srv/work", 0o755, 0, 0),
                 ("f", "srv/work/data.txt", b"data in the image\n", 0o644, 0, 0)])
    no_passwd = Layer([("d", "etc", 0o755, 0, 0), ("w", "etc/passwd")])
    shadow_link = Layer([("d", "etc", 0o755, 0, 0), ("l", "etc/passwd", "/etc/shadow")])
    env = ["PATH=/bin", "GREETING=hello from the image", "FOO=image"]
    c.images = {
        "app": Image([bb, etc], config_json([bb, etc], env=env, entrypoint=["/bin/echo", "entry"],
                                            cmd=["default-cmd"], workdir="/srv/work", user="app")),
        "plain": Image([bb], config_json([bb], cmd=["/bin/sh", "-c", "echo plain; id -u"])),
        "ghost": Image([bb, etc], config_json([bb, etc], cmd=["/bin/true"], user="ghost")),
        "nowd": Image([bb, etc], config_json([bb, etc], cmd=["/bin/pwd"], workdir="/new/dir", user="app:staff")),
        "whiteout": Image([bb, etc, no_passwd], config_json([bb, etc, no_passwd], cmd=["/bin/true"], user="app")),
        "shadow": Image([bb, shadow_link], config_json([bb, shadow_link], cmd=["/bin/true"], user="root")),
    }
    layout = os.path.join(c.work, "layout")
    build_layout(layout, [(img, name) for name, img in c.images.items()])
    c.registry = Registry(os.path.join(c.work, "registry"), os.path.join(c.work, "storage"))
    if not c.registry.wait_ready():
        raise AssertionError("docker-registry did not start: " + c.registry.log_tail())
    home = os.path.join(c.work, "home")
    for name in c.images:
        r = containers("skopeo", home, "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout}:{name}",
                       f"docker://{c.registry.host}/test/{name}:1")
        if r.returncode != 0:
            raise AssertionError(f"skopeo push of {name}: {r.stdout[-800:]}")
    c.host = c.registry.host
    c.digest = registry_manifest(c.host, "test/app", "1")[0]
    c.ref = {name: f"{c.host}/test/{name}:1" for name in c.images}
    c.ref["app@digest"] = f"{c.host}/test/app@{c.digest}"
    c.store = os.path.join(c.work, "store")
    c.ids = {}
    for name in c.images:
        c.ids[name] = pull(c.store, c.ref[name])
    pull(c.store, c.ref["app@digest"])
    _ctx = c
    return c


def _teardown(c):
    if getattr(c, "registry", None):
        c.registry.stop()
    subprocess.run(["rm", "-rf", "--one-file-system", c.work])


def run(env, store, image, args=(), opts=(), timeout=60):
    """sandbox-run --store STORE --image IMAGE OPTS [--] ARGS."""
    return env.run(["--store", store, "--image", image, *opts] + (["--", *args] if args else []), probe=False,
                   timeout=timeout)


def ok(r, what):
    sf.check(r.returncode == 0, f"{what}: {r}")
    return r.stdout


def store_usage(store):
    """(bytes, files, directories) of the store's layers and blobs: what sandboxes must never add to."""
    total = files = dirs = 0
    for part in ("layers", "blobs"):
        for dp, dn, fn in os.walk(os.path.join(store, part)):
            dirs += len(dn)
            for n in fn:
                total += os.lstat(os.path.join(dp, n)).st_size
                files += 1
    return total, files, dirs


def pins(store):
    return sorted(os.listdir(os.path.join(store, "pins")))


# ---------------------------------------------------------------- sandbox-run

def test_by_tag_digest_and_id(env):
    c = ctx()
    out = ok(run(env, c.store, c.ref["app"]), "by tag, no command")
    sf.eq(out, "entry default-cmd\n", "no command: the image's Entrypoint, then its Cmd")
    out = ok(run(env, c.store, c.ref["app@digest"]), "by digest")
    sf.eq(out, "entry default-cmd\n", "by digest")
    out = ok(run(env, c.store, c.ids["app"][:19]), "by an image ID prefix")
    sf.eq(out, "entry default-cmd\n", "by image ID prefix")
    sf.eq(pins(c.store), [], "no pin is left once the sandboxes ended")


def test_command_and_entrypoint(env):
    c = ctx()
    sf.eq(ok(run(env, c.store, c.ref["app"], ["a", "b c"]), "with a command"), "entry a b c\n",
          "a command replaces Cmd, never Entrypoint")
    sf.eq(ok(run(env, c.store, c.ref["app"], ["-c", "echo shell"], ["--entrypoint", "/bin/sh"]), "--entrypoint"),
          "shell\n", "--entrypoint replaces Entrypoint (and Cmd); the command follows it")
    sf.eq(ok(run(env, c.store, c.ref["app"], ["/bin/echo", "no", "entry"], ["--entrypoint", ""]), "--entrypoint ''"),
          "no entry\n", "--entrypoint '': the command alone")
    r = run(env, c.store, c.ref["app"], (), ["--entrypoint", ""])
    sf.check(r.returncode == 125 and "nothing to run" in r.stderr, f"--entrypoint '' without a command: {r}")
    sf.eq(ok(run(env, c.store, c.ref["plain"]), "Cmd only"), "plain\n0\n", "an image with a Cmd and no User")
    r = run(env, c.store, c.ref["app"], ["x"], ["--entrypoint", "/bin/nonesuch"])
    sf.check(r.returncode == 127 and "/bin/nonesuch: command not found" in r.stderr, f"a missing program: {r}")


def test_env_workdir_user(env):
    c = ctx()
    sh = ["--entrypoint", "/bin/sh"]
    script = 'echo "$GREETING|$FOO|$BAR|$HOME|$PATH"; pwd; id -u; id -g; cat data.txt 2>/dev/null || echo no-data'
    out = ok(run(env, c.store, c.ref["app"], ["-c", script], sh), "the image's config")
    sf.eq(out.splitlines(), ["hello from the image|image||/home/app|/bin", "/srv/work", "1234", "2345",
                             "data in the image"],
          "Env, HOME of the user, WorkingDir, User by name (its uid and primary group from /etc/passwd)")
    out = ok(run(env, c.store, c.ref["app"], ["-c", script],
                 sh + ["-e", "FOO=mine", "-e", "BAR=new", "-w", "/", "-u", "0", "-e", "HOME=/h"]), "overrides")
    sf.eq(out.splitlines(), ["hello from the image|mine|new|/h|/bin", "/", "0", "0", "no-data"],
          "-e over Env, -w over WorkingDir, -u over User")
    out = ok(run(env, c.store, c.ref["app"], ["-c", "id -u; id -g"], sh + ["-u", "app:staff"]), "-u NAME:GROUP")
    sf.eq(out.split(), ["1234", "50"], "-u NAME:GROUP: the group from the image's /etc/group")
    out = ok(run(env, c.store, c.ref["app"], ["-c", "id -u; id -g; echo $HOME"], sh + ["-u", "4321"]), "-u UID")
    sf.eq(out.split(), ["4321", "0", "/"], "-u UID not in /etc/passwd: gid 0, HOME /")
    out = ok(run(env, c.store, c.ref["nowd"]), "a WorkingDir the image lacks")
    sf.eq(out, "/new/dir\n", "a missing WorkingDir is made (as docker does)")
    out = ok(run(env, c.store, c.ref["nowd"], ["-c", "stat -c '%u %a' /new/dir; id -g"], sh), "its owner")
    sf.eq(out.split(), ["0", "755", "50"], "made by root, 0755; User app:staff has the group from /etc/group")


def test_errors(env):
    c = ctx()
    r = run(env, c.store, c.ref["ghost"])
    sf.check(r.returncode == 125 and "the image's User: user 'ghost' is not in the image's /etc/passwd" in r.stderr,
             f"an image whose User does not exist: {r}")
    r = run(env, c.store, c.ref["app"], ["x"], ["-u", "nobody"])
    sf.check(r.returncode == 125 and "--user: user 'nobody' is not in the image's /etc/passwd" in r.stderr,
             f"-u NAME the image lacks: {r}")
    r = run(env, c.store, c.ref["app"], ["x"], ["-u", "app:wheel"])
    sf.check(r.returncode == 125 and "group 'wheel' is not in the image's /etc/group" in r.stderr, f"-u :GROUP: {r}")
    r = run(env, c.store, c.ref["plain"], ["/bin/true"], ["-u", "app"])
    sf.check(r.returncode == 125 and "the image has no /etc/passwd" in r.stderr, f"-u NAME, no /etc/passwd: {r}")
    r = run(env, c.store, c.ref["whiteout"])
    sf.check(r.returncode == 125 and "the image has no /etc/passwd" in r.stderr,
             f"a /etc/passwd removed by an upper layer's whiteout: {r}")
    r = run(env, c.store, c.ref["shadow"])
    sf.check(r.returncode == 125 and "cannot read the image's /etc/passwd: it is a symlink" in r.stderr
             and "root:" not in r.stderr, f"/etc/passwd a symlink to the host's /etc/shadow: never followed {r}")
    missing = f"{c.host}/test/app:2"
    r = run(env, c.store, missing, ["/bin/true"])
    sf.check(r.returncode == 125 and f"pull it with 'sandbox-image pull {missing}'" in r.stderr,
             f"a reference not in the store: {r}")
    empty = env.path("no-store")
    r = run(env, empty, "busybox", ["/bin/true"])
    sf.check(r.returncode == 125 and "there is no image store at" in r.stderr and "sandbox-image pull busybox" in
             r.stderr, f"no store at all: {r}")
    r = run(env, c.store, "Bad/Upper", ["/bin/true"])
    sf.check(r.returncode == 125 and "is not an image reference" in r.stderr, f"a malformed reference: {r}")
    r = env.run(["--image", "/bin", "-u", "app", "/bin/true"], probe=False)
    sf.check(r.returncode == 125 and "names need an image of the store" in r.stderr, f"-u NAME with a directory: {r}")
    sf.eq(pins(c.store), [], "refused starts leave no pin")


def test_root_and_etc(env):
    c = ctx()
    out = ok(run(env, c.store, c.ref["plain"], ["-c", "ls /; echo; cat /etc/hostname /etc/hosts; "
                                                "test -e /usr && echo has-usr || echo no-usr"],
                 ["--entrypoint", "/bin/sh", "--hostname", "imgbox"]), "the root")
    top, _, rest = out.partition("\n\n")
    sf.check("bin" in top.split() and "etc" in top.split() and "usr" not in top.split(), f"the image's root: {top!r}")
    sf.check(rest.startswith("imgbox\n") and "127.0.0.1\tlocalhost" in rest and "imgbox" in rest.splitlines()[-2] and
             rest.rstrip().endswith("no-usr"), f"/etc/hostname and /etc/hosts of the sandbox, no host /usr: {rest!r}")
    out = ok(run(env, c.store, c.ref["plain"], ["/etc/resolv.conf"], ["--entrypoint", "/bin/cat", "--net", "host"]),
             "resolv.conf")
    sf.check("nameserver" in out, f"/etc/resolv.conf in an image that has none (--net host): {out!r}")
    r = run(env, c.store, c.ref["plain"], ["/etc/resolv.conf"], ["--entrypoint", "/bin/cat"])
    sf.check(r.returncode != 0, f"--net none: no resolv.conf made for nobody to ask {r}")
    # The image's layers are read-only lowers: writes go to the sandbox's upper, never to the store.
    before = store_usage(c.store)
    ok(run(env, c.store, c.ref["app"], ["-c", "echo x >> /srv/work/data.txt; rm /bin/ls; cat /srv/work/data.txt"],
           ["--entrypoint", "/bin/sh", "-u", "0"]), "writes")
    sf.eq(store_usage(c.store), before, "a sandbox's writes do not reach the store")
    with open(os.path.join(c.store, "layers", "sha256", c.images["app"].layers[1].diff_id.split(":")[1], "root",
                           "srv", "work", "data.txt"), "rb") as f:
        sf.eq(f.read(), b"data in the image\n", "the layer's file is unchanged")


def test_prune_while_running(env):
    c = ctx()
    store = env.path("store")
    pull(store, c.ref["app"])
    layers = [os.path.join(store, "layers", "sha256", l.diff_id.split(":")[1]) for l in c.images["app"].layers]
    p = env.popen(["--store", store, "--image", c.ref["app"], "--entrypoint", "/bin/sh", "--", "-c",
                   "echo ready; read x; cat /srv/work/data.txt; ls /bin/busybox"], probe=False, stdin=subprocess.PIPE)
    df.wait_line(p.stdout, "ready")
    sf.eq(len(pins(store)), 1, "a running sandbox pins its image")
    r = sbx_image(store, "rm", c.ref["app"])
    sf.check(r.returncode == 0 and "1 running sandbox" in r.stdout, f"rm of the running image: {r.stdout}{r.stderr}")
    r = sbx_image(store, "prune")
    sf.check(r.returncode == 0 and all(os.path.isdir(l) for l in layers),
             f"prune while a sandbox runs keeps its layers: {r.stdout}{r.stderr}")
    out, err = p.communicate(b"go\n", timeout=30)
    sf.eq((p.returncode, out.decode()), (0, "data in the image\n/bin/busybox\n"),
          f"the sandbox still reads its layers after the prune ({err!r})")
    sf.eq(pins(store), [], "its pin went with it")
    r = sbx_image(store, "prune")
    sf.check(r.returncode == 0 and not any(os.path.exists(l) for l in layers),
             f"once it ended, prune removes the layers: {r.stdout}{r.stderr}")


def test_many_starts_share_layers(env):
    c = ctx()
    store = env.path("store")
    pull(store, c.ref["app"])
    before = store_usage(store)
    layer_bytes = sum(os.lstat(os.path.join(dp, n)).st_size for dp, dn, fn in os.walk(os.path.join(store, "layers"))
                      for n in fn)
    # One sandbox's own directory while it runs: an upper and a tiny /etc layer, no copy of the image.
    p = env.popen(["--store", store, "--image", c.ref["app"], "--entrypoint", "/bin/sh", "--", "-c",
                   "echo ready; read x"], probe=False, stdin=subprocess.PIPE)
    df.wait_line(p.stdout, "ready")
    sid = env.wait_sandbox_id()
    own = sum(os.lstat(os.path.join(dp, n)).st_size for dp, dn, fn in os.walk(os.path.join(env.state, sid)) for n in fn)
    p.communicate(b"x\n", timeout=30)
    sf.check(own < 64 * 1024 < layer_bytes, f"a running sandbox holds {own} bytes of its own; the image's layers "
             f"{layer_bytes}: shared, not copied")
    t0 = time.monotonic()
    for i in range(100):
        r = run(env, store, c.ref["app"], [str(i)])
        if r.returncode != 0 or r.stdout != f"entry {i}\n":
            raise AssertionError(f"start {i}: {r}")
    elapsed = time.monotonic() - t0
    print(f"# 100 starts of one image: {elapsed:.1f} s")
    sf.eq(store_usage(store), before, "100 starts: the store's layers and blobs did not grow (bytes, files, dirs)")
    sf.eq(pins(store), [], "no pin left")
    sf.eq(env.sandbox_ids(), [], "nothing left per sandbox in the state directory")
test_many_starts_share_layers.timeout = 240


# ---------------------------------------------------------------- sandboxd

def client(d, gid, args, timeout=60):
    """sandboxctl ARGS as uid 65534 with the supplementary group GID (the daemon's allowed group)."""
    argv = [df.SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}", f"--groups={gid}"] + d.argv_ctl(args)
    return df.run(d.env, argv, timeout=timeout)


def group_gid():
    """A group the daemon lets run sandboxes: 'sandbox' when the host has it, else a number of our own
    (allow-groups)."""
    import grp
    try:
        return grp.getgrnam("sandbox").gr_gid, ""
    except KeyError:
        gid = 40000 + os.getpid() % 20000
        return gid, f"allow-groups = {gid}\n"


def test_sandboxd(env):
    c = ctx()
    gid, allow = group_gid()
    d = df.Daemon(env, name="img", config=f"store = {c.store}\n{allow}")
    os.chmod(d.sock, 0o666)
    r = client(d, gid, ["exec", "--image", c.ref["app"]])
    sf.eq((r.returncode, r.stdout), (0, "entry default-cmd\n"), f"a client other than root, by tag {r}")
    r = client(d, gid, ["exec", "--image", c.ref["app@digest"], "--", "x", "y"])
    sf.eq((r.returncode, r.stdout), (0, "entry x y\n"), f"... by digest, with a command {r}")
    r = client(d, gid, ["exec", "--image", c.ref["app"], "--entrypoint", "/bin/sh", "-e", "FOO=mine", "--", "-c",
                        'id -u; pwd; echo "$FOO $GREETING"'])
    sf.eq((r.returncode, r.stdout.splitlines()), (0, ["1234", "/srv/work", "mine hello from the image"]),
          f"... the config applies (User, WorkingDir, Env under -e) {r}")
    r = client(d, gid, ["exec", "--image", c.ref["ghost"]])
    sf.check(r.returncode == 125 and "user 'ghost' is not in the image's /etc/passwd" in r.stderr,
             f"... a missing user {r}")
    r = client(d, gid, ["exec", "--image", f"{c.host}/test/app:9", "--", "/bin/true"])
    sf.check(r.returncode == 125 and "pull it with 'sandbox-image pull" in r.stderr, f"... not in the store {r}")
    r = client(d, gid, ["exec", "--image", "/bin", "--", "/bin/true"])
    sf.check(r.returncode == 125 and "only root may use host paths" in r.stderr,
             f"... a directory image stays refused without allow-host-paths {r}")
    r = client(d, gid, ["exec", "--store", "/tmp", "--image", c.ref["app"]])
    sf.check(r.returncode == 125 and "--store is sandbox-run's" in r.stderr, f"sandboxctl --store {r}")
    # ps names what runs: the image's entrypoint.
    p = d.ctl_popen(["exec", "--image", c.ref["app"], "--entrypoint", "/bin/sh", "--", "-c", "echo ready; read x"],
                    stdin=subprocess.PIPE)
    df.wait_line(p.stdout, "ready")
    r = d.ctl(["ps", "--json"])
    sf.check(r.returncode == 0 and [e["command"] for e in json.loads(r.stdout)] == ["/bin/sh"], f"ps {r}")
    sf.eq(len(pins(c.store)), 1, "the daemon pins the image of a running sandbox")
    p.communicate(b"x\n", timeout=30)
    df.wait_for(lambda: pins(c.store) == [], 10, "the daemon's pin to go")
    d.stop()
    # --store over the configuration's store=.
    d = df.Daemon(env, name="opt", config=f"store = /nonexistent\n{allow}", extra=["--store", c.store])
    os.chmod(d.sock, 0o666)
    r = client(d, gid, ["exec", "--image", c.ref["plain"]])
    sf.eq((r.returncode, r.stdout), (0, "plain\n0\n"), f"sandboxd --store {r}")


def test_sandboxd_many_at_once(env):
    """More sandboxes of one image at once than the pin names a per-store counter gave (each start opens
    the store anew on a worker thread of the one daemon process): every one is pinned, and the pins go."""
    c = ctx()
    n = 120
    d = df.Daemon(env, name="many", config=f"store = {c.store}\nmax-starts = 16\n")
    procs = [d.ctl_popen(["exec", "--image", c.ref["app"], "--entrypoint", "/bin/sh", "--", "-c", "echo up; read x"],
                         stdin=subprocess.PIPE) for _ in range(n)]
    for p in procs:
        df.wait_line(p.stdout, "up", timeout=120)
    sf.eq(len(pins(c.store)), n, f"{n} sandboxes of one image at once, each pinned")
    for p in procs:
        p.stdin.write(b"x\n")
        p.stdin.close()
    for p in procs:
        p.wait(60)
        sf.eq(p.returncode, 0, f"a sandbox's client: {p.stderr.read()!r}")
    df.wait_for(lambda: pins(c.store) == [], 20, "the pins to go")
test_sandboxd_many_at_once.timeout = 300


def test_sandboxd_allow_images(env):
    c = ctx()
    gid, allow = group_gid()
    d = df.Daemon(env, name="allow", config=f"store = {c.store}\n{allow}allow-images = {c.ref['app']}, "
                  f"{c.ids['plain']}\n")
    os.chmod(d.sock, 0o666)
    r = client(d, gid, ["exec", "--image", c.ref["app"], "--", "ok"])
    sf.eq((r.returncode, r.stdout), (0, "entry ok\n"), f"an allowed image {r}")
    r = client(d, gid, ["exec", "--image", c.ref["app@digest"], "--", "ok"])
    sf.eq((r.returncode, r.stdout), (0, "entry ok\n"), f"the same image by digest {r}")
    r = client(d, gid, ["exec", "--image", c.ids["plain"][7:19]])
    sf.eq((r.returncode, r.stdout), (0, "plain\n0\n"), f"an image allowed by ID, named by an ID prefix {r}")
    r = client(d, gid, ["exec", "--image", c.ref["nowd"]])
    sf.check(r.returncode == 125 and "permission denied" in r.stderr and "allow-images" in r.stderr and
             c.ref["nowd"] in r.stderr, f"an image not allowed {r}")
    r = d.ctl(["exec", "--image", c.ref["nowd"]])
    sf.eq((r.returncode, r.stdout), (0, "/new/dir\n"), f"root runs any image of the store {r}")
    d.stop()
    d = df.Daemon(env, name="none", config=f"store = {c.store}\n{allow}allow-images = none\n")
    os.chmod(d.sock, 0o666)
    r = client(d, gid, ["exec", "--image", c.ref["app"]])
    sf.check(r.returncode == 125 and "allow-images = none" in r.stderr, f"allow-images = none {r}")
    r = client(d, gid, ["exec", "/bin/true"])
    sf.eq(r.returncode, 0, f"allow-images = none leaves the host image {r}")


# The first test to run also builds, pushes and pulls the images.
for _name, _fn in list(globals().items()):
    if _name.startswith("test_") and callable(_fn) and not hasattr(_fn, "timeout"):
        _fn.timeout = 180

if __name__ == "__main__":
    df.sf.main(globals(), make_env=df.DaemonEnv,
               header=f"# sandbox-run {sf.sandbox_run()}; sandboxd {df.sandboxd()}; sandbox-image {IMAGE_TOOL}",
               check_prerequisites=prerequisites, after_pass=df._after_pass, on_failure=df.print_daemon_logs)
