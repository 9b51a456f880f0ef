#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""sandboxctl snapshot (docs/protocol.md SNAPSHOT) end to end against a real socket-activated sandboxd, with
non-root clients in group "sandbox" (the set-up of test_sandboxd_life.py) and an image of a static busybox
imported into a store of the test's own:

- a snapshot taken while a program writes is consistent (a counter file renamed into place after each line
  of a log is appended: the snapshot holds whole lines, and the counter is the log's last or one before),
  and a sandbox created from it (a fork) sees exactly it: the snapshot's files, not what was written later;
  a file of the image whose mode was changed (a metacopy copy-up) keeps its data, a deleted one stays deleted;
- a tag taken again moves to the new snapshot;
- allow-images lets a user run its own snapshots of an allowed image;
- another uid can neither use nor see it (by its name, its store reference or its ID: the message is the one
  for an image that does not exist), and
  its own snapshot of the same name is its own; the per-uid count bound refuses with its name;
- 100 forks of one snapshot share its layers: the store does not grow, and the daemon's data directory grows
  by about nothing per fork.

Environment as test_sandboxd_life.py (SANDBOXD, SANDBOXCTL, SANDBOX_UNIONFS) and SANDBOX_IMAGE. Root only
(exit 77), and a static busybox (scripts/install-deps.sh)."""

import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
import sandbox_fixture as sf  # noqa: E402
import sandboxd_fixture as df  # noqa: E402
import test_sandboxd_life as life  # noqa: E402
from image_fixture import Image, Layer, build_layout, busybox_layer, busybox_static, config_json  # noqa: E402

USER, OTHER = life.USER, life.OTHER
IMAGE_TOOL = os.path.abspath(os.environ.get("SANDBOX_IMAGE") or sf._default("tools/sandbox-image"))
APPLETS = ("sh", "echo", "cat", "ls", "sleep", "test", "mkdir", "mv", "rm", "chmod", "stat", "sync", "tail",
           "wc", "true", "seq", "cmp", "dd")
BIG = bytes(range(256)) * 4096  # 1 MiB, in the image: its data must reach a snapshot that only chmods it


def prerequisites():
    why = life.prerequisites()
    if why:
        return why
    if not os.access(IMAGE_TOOL, os.X_OK):
        return f"no sandbox-image at {IMAGE_TOOL} (set SANDBOX_IMAGE)"
    if not busybox_static():
        return "no static busybox (scripts/install-deps.sh unpacks busybox-static)"
    return None


def make_store(env):
    """A store of the test's own with the image base:1 (busybox, /data/big, /etc/motd)."""
    bb = busybox_layer(applets=APPLETS)
    data = Layer([("d", "data", 0o755, 0, 0), ("f", "data/big", BIG, 0o644, 0, 0), ("d", "etc", 0o755, 0, 0),
                  ("f", "etc/motd", b"motd\n", 0o644, 0, 0), ("d", "root", 0o700, 0, 0)])
    img = Image([bb, data], config_json([bb, data], env=["PATH=/bin"], cmd=["/bin/sh"]))
    layout = env.path("layout")
    build_layout(layout, [(img, "base")])
    store = env.path("store")
    r = subprocess.run([IMAGE_TOOL, "--store", store, "import", "--tag", "localhost/base:1", layout],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    sf.eq(r.returncode, 0, f"sandbox-image import: {r.stderr}")
    return store


def daemon(env, config=""):
    store = make_store(env)
    d = life.LifeDaemon(env, config=f"store = {store}\n" + config)
    d.store = store
    return d


def snapshot(d, uid, target, name, ok=True):
    r = d.ctl_as(uid, ["snapshot", target, name, "--json"], timeout=300)
    if not ok:
        return r
    sf.eq(r.returncode, 0, f"snapshot {target} {name}: {r}")
    try:
        j = json.loads(r.stdout)
    except ValueError as e:
        raise AssertionError(f"snapshot --json printed invalid JSON ({e}): {r.stdout!r}")
    sf.check(j["id"].startswith("sha256:") and len(j["id"]) == 71, f"an image ID: {j}")
    sf.check(isinstance(j["layer_bytes"], int) and isinstance(j["pause_usec"], int), f"numbers: {j}")
    return j


def store_refs(store):
    with open(os.path.join(store, "refs.json")) as f:
        return json.load(f)


def ref_ids(store):
    """{reference: image ID} of the store, whatever the layout of refs.json."""
    refs = store_refs(store)
    entries = refs.get("refs", refs) if isinstance(refs, dict) else refs
    out = {}
    if isinstance(entries, dict):
        for k, v in entries.items():
            out[k] = v["id"] if isinstance(v, dict) else v
    else:
        for e in entries:
            out[e["name"]] = e["id"]
    return out


def usage(path, parts=("")):
    """(bytes allocated, entries) under PATH/PART for each PART."""
    total = n = 0
    for part in parts:
        for dp, dn, fn in os.walk(os.path.join(path, part)):
            for x in dn + fn:
                st = os.lstat(os.path.join(dp, x))
                total += st.st_blocks * 512
                n += 1
    return total, n


def rm_all(d, uid=None):
    for e in d.ps(0):
        if e.get("kind") == "created" and (uid is None or e.get("uid") == uid):
            d.ctl_as(0, ["rm", "-f", e["id"]])


# ==================================================================================================

WRITER = ("i=0; while :; do echo $i >> /root/log; echo $i > /root/c.tmp; mv /root/c.tmp /root/c; "
          "i=$((i+1)); done")


def test_snapshot_under_a_writer_and_fork(env):
    d = daemon(env)
    d.create(USER, ["--image", "localhost/base:1", "--name", "box"])
    r = d.exec_in(USER, "box", ["sh", "-c", "chmod 600 /data/big && rm /etc/motd && mkdir -p /root/w && "
                                "echo kept > /root/w/f"])
    sf.eq(r.returncode, 0, f"changes before the snapshot: {r}")
    writer = d.popen_as(USER, ["exec", "--in", "box", "--", "sh", "-c", WRITER])
    time.sleep(1.5)
    j = snapshot(d, USER, "box", "work:v1")
    sf.check(j["reference"].endswith(f"/uid-{USER}/work:v1"), f"the reference is in the uid's name space: {j}")
    r = d.exec_in(USER, "box", ["sh", "-c", "echo after > /root/after"])
    sf.eq(r.returncode, 0, f"a write after the snapshot: {r}")
    d.ctl_as(USER, ["rm", "-f", "box"])
    life.reap(env, writer)

    d.create(USER, ["--image", "work:v1", "--name", "fork"])
    r = d.exec_in(USER, "fork", ["sh", "-c", "cat /root/c; tail -n 1 /root/log; wc -l < /root/log; "
                                 "test -e /root/after && echo AFTER; test -e /etc/motd && echo MOTD; "
                                 "cat /root/w/f; stat -c %a /data/big"])
    sf.eq(r.returncode, 0, f"the fork reads the snapshot: {r}")
    c, last, lines, *rest = r.stdout.split("\n")
    sf.check(c.isdigit() and last.isdigit() and int(last) in (int(c), int(c) + 1),
             f"the counter ({c!r}) is the log's last line ({last!r}) or one before: a consistent instant")
    sf.eq(int(lines.strip()), int(last) + 1, "the log has every line from 0 to its last, whole")
    sf.check(int(c) > 10, f"the writer ran for a while before the snapshot (counter {c})")
    sf.eq(rest[:3], ["kept", "600", ""], "no later write, the deleted file stays deleted, the chmod kept")
    r = d.exec_in(USER, "fork", ["sh", "-c", "cat /data/big"], text=False)
    sf.eq(r.returncode, 0, f"cat /data/big in the fork: {r}")
    sf.check(r.stdout == BIG, "a file only chmod'ed in the sandbox (metacopy) keeps its data in the snapshot")
    r = d.exec_in(USER, "fork", ["sh", "-c", "seq 0 $(tail -n 1 /root/log) | cmp - /root/log"])
    sf.eq(r.returncode, 0, f"the log is exactly 0..N: {r}")
    rm_all(d)


def test_tag_moves(env):
    d = daemon(env)
    d.create(USER, ["--image", "localhost/base:1", "--name", "box"])
    sf.eq(d.exec_in(USER, "box", ["sh", "-c", "echo one > /root/v"]).returncode, 0, "write one")
    j1 = snapshot(d, USER, "box", "t")
    sf.check(j1["layer_bytes"] < 64 << 10, f"the new layer holds the sandbox's changes only, not its image: {j1}")
    sf.eq(d.exec_in(USER, "box", ["sh", "-c", "echo two > /root/v"]).returncode, 0, "write two")
    j2 = snapshot(d, USER, "box", "t")
    sf.check(j1["id"] != j2["id"], f"a new image: {j1} {j2}")
    sf.eq(j1["reference"], j2["reference"], "the same tag")
    sf.eq(ref_ids(d.store).get(j2["reference"]), j2["id"], "the tag names the new snapshot in the store")
    d.create(USER, ["--image", "t", "--name", "f"])
    r = d.exec_in(USER, "f", ["cat", "/root/v"])
    sf.eq((r.returncode, r.stdout), (0, "two\n"), f"a fork of the tag sees the second snapshot: {r}")
    # a snapshot of a fork stacks one more layer
    sf.eq(d.exec_in(USER, "f", ["sh", "-c", "echo three > /root/w"]).returncode, 0, "write in the fork")
    j3 = snapshot(d, USER, "f", "t:again")
    d.create(USER, ["--image", "t:again", "--name", "g"])
    r = d.exec_in(USER, "g", ["cat", "/root/v", "/root/w"])
    sf.eq((r.returncode, r.stdout), (0, "two\nthree\n"), f"a fork of a fork's snapshot: {r}")
    sf.check(j3["id"] not in (j1["id"], j2["id"]), "yet another image")
    rm_all(d)


def test_other_uid_cannot_use_or_see_it(env):
    d = daemon(env, "max-snapshots-per-uid = 2\n")
    d.create(USER, ["--image", "localhost/base:1", "--name", "box"])
    sf.eq(d.exec_in(USER, "box", ["sh", "-c", "echo secret > /root/s"]).returncode, 0, "write")
    j = snapshot(d, USER, "box", "mine:1")
    missing = {"mine:1": "nothere:1", j["reference"]: j["reference"].replace("mine:1", "nothere:1"),
               j["id"]: "sha256:" + "0" * 64, j["id"][7:19]: "0" * 12}
    for ref, absent in missing.items():
        r = d.ctl_as(OTHER, ["create", "--image", ref])
        r2 = d.ctl_as(OTHER, ["create", "--image", absent])
        sf.check(r.returncode == 125 and r.stderr.strip() and
                 r.stderr.replace(ref, "X") == r2.stderr.replace(absent, "X"),
                 f"another uid cannot use {ref}, and is told as for an image that does not exist: {r} {r2}")
        r = d.ctl_as(OTHER, ["exec", "--image", ref, "--", "cat", "/root/s"])
        sf.check(r.returncode == 125 and "secret" not in r.stdout and "no image" in r.stderr,
                 f"nor exec from {ref}: {r}")
    r = d.ctl_as(OTHER, ["snapshot", "box", "steal"])
    sf.check(r.returncode != 0 and "no sandbox" in r.stderr, f"nor snapshot the sandbox: {r}")
    # its own snapshot of the same name is its own
    d.create(OTHER, ["--image", "localhost/base:1", "--name", "obox"])
    sf.eq(d.exec_in(OTHER, "obox", ["sh", "-c", "echo other > /root/s"]).returncode, 0, "other's write")
    jo = snapshot(d, OTHER, "obox", "mine:1")
    sf.check(jo["reference"] != j["reference"] and jo["id"] != j["id"], f"two snapshots: {j} {jo}")
    r = d.ctl_as(USER, ["exec", "--image", "mine:1", "--", "cat", "/root/s"])
    sf.eq((r.returncode, r.stdout), (0, "secret\n"), f"each uid's name is its own snapshot: {r}")
    r = d.ctl_as(OTHER, ["exec", "--image", "mine:1", "--", "cat", "/root/s"])
    sf.eq((r.returncode, r.stdout), (0, "other\n"), f"each uid's name is its own snapshot: {r}")
    # root sees every uid's, by its reference
    r = d.ctl_as(0, ["exec", "--image", j["reference"], "--", "cat", "/root/s"])
    sf.eq((r.returncode, r.stdout), (0, "secret\n"), f"root uses a user's snapshot: {r}")
    # the count bound: a tag taken again is no new snapshot; a third name is refused, naming the bound
    snapshot(d, USER, "box", "mine:1")
    snapshot(d, USER, "box", "mine:2")
    r = snapshot(d, USER, "box", "mine:3", ok=False)
    sf.check(r.returncode == 125 and "max-snapshots-per-uid = 2" in r.stderr, f"the third is refused: {r}")
    sf.check(not any(k.endswith("/mine:3") for k in ref_ids(d.store)), "and not stored")
    for bad in ("UPPER", "a@sha256:" + "0" * 64, "x" * 300, "a b"):
        r = snapshot(d, USER, "box", bad, ok=False)
        sf.check(r.returncode == 125 and r.stderr.strip(), f"a bad name {bad!r} is refused: {r}")
    rm_all(d)


def test_allow_images_lets_users_fork_their_own_snapshots(env):
    d = daemon(env, "allow-images = localhost/base:1\n")
    d.create(USER, ["--image", "localhost/base:1", "--name", "box"])
    sf.eq(d.exec_in(USER, "box", ["sh", "-c", "echo hi > /root/h"]).returncode, 0, "write")
    snapshot(d, USER, "box", "own")
    r = d.ctl_as(USER, ["exec", "--image", "own", "--", "cat", "/root/h"])
    sf.eq((r.returncode, r.stdout), (0, "hi\n"), f"a snapshot of an allowed image is the user's to run: {r}")
    r = d.ctl_as(OTHER, ["exec", "--image", "own", "--", "true"])
    sf.check(r.returncode == 125 and "no image" in r.stderr, f"not another user's: {r}")
    rm_all(d)


def test_100_forks_share_the_layers(env):
    d = daemon(env)
    d.create(USER, ["--image", "localhost/base:1", "--name", "box"])
    r = d.exec_in(USER, "box", ["sh", "-c", "dd if=/dev/zero of=/root/blob bs=1M count=64 2>/dev/null && sync"])
    sf.eq(r.returncode, 0, f"64 MiB of changes: {r}")
    j = snapshot(d, USER, "box", "big")
    sf.check(j["layer_bytes"] >= 64 << 20, f"the layer holds the 64 MiB: {j}")
    d.ctl_as(USER, ["rm", "-f", "box"])
    store_before = usage(d.store, ("layers", "blobs"))
    data_before = usage(env.data)[0]
    ids = []
    for i in range(100):
        r = d.ctl_as(0, ["create", "--image", j["reference"]])
        sf.eq(r.returncode, 0, f"fork {i}: {r}")
        ids.append(r.stdout.strip())
    r = d.exec_in(0, ids[-1], ["stat", "-c", "%s", "/root/blob"])
    sf.eq((r.returncode, r.stdout), (0, f"{64 << 20}\n"), f"the last fork sees the snapshot: {r}")
    sf.eq(usage(d.store, ("layers", "blobs")), store_before, "100 forks add nothing to the store")
    grown = usage(env.data)[0] - data_before
    print(f"# 100 forks: store {store_before[0]} bytes before and after, data directory +{grown} bytes", flush=True)
    sf.check(grown < 100 * (256 << 10), f"the data directory grew by {grown} bytes for 100 forks (< 256 KiB each)")
    for sid in ids:
        sf.eq(d.ctl_as(0, ["rm", "-f", sid]).returncode, 0, f"rm -f {sid}")
    rm_all(d)


if __name__ == "__main__":
    sf.main(globals(), make_env=df.DaemonEnv,
            header=f"# sandboxd under test: {df.sandboxd()}; sandboxctl: {df.sandboxctl()}",
            check_prerequisites=prerequisites, after_pass=df._after_pass, on_failure=df.print_daemon_logs)
