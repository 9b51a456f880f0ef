#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""sandbox-image end to end (root): a real registry, real token auth, real TLS, real archives.

Images are built by the test from small trees (tests/lib/image_fixture.py: OCI layouts with gzip, zstd and
plain layers, whiteouts, opaque directories, hard links, set-id bits, owners) and pushed with skopeo to
Debian's docker-registry running on a free loopback port with a storage directory of the test's own.
1. pull by tag and by digest; OCI and Docker v2 schema 2 media types; a multi-platform index chooses
   linux/amd64 (or --platform); layers shared between images are unpacked once; the unpacked layers
   hold exactly what the tars say (whiteouts, opaque markers, owners, modes, hard links); inspect shows
   the config and the layer directories topmost first; tag, rm, ls; the store is root's and 0700.
2. bearer token auth against a token server of the test's own (JWT signed by openssl, trusted by the
   registry): anonymous pulls of public repositories, credentials from --authfile (containers auth.json)
   and from $DOCKER_CONFIG/config.json (docker's), refusals with clear messages.
3. HTTPS with a CA of the test's own: refused without --ca-file (no fallback to plain HTTP), pulled with.
4. a corrupted blob in the registry: refused, nothing kept; an interrupted pull (the connection cut, and
   the puller killed mid-blob) resumed by the next pull with a Range request; two concurrent pulls of
   one image download its layer once.
5. import of an OCI layout, skopeo's oci-archive and docker-archive, podman save (both formats), docker
   save (a private dockerd); hostile layouts and stores refused with nothing kept.
6. prune keeps what a running user pins (tests/helpers/image-pin.c) and removes it once that user is gone.
7. sandbox-layer import of an image archive refuses and points at sandbox-image import.
8. progress on a terminal.
Exit 77 when not root or when docker-registry, skopeo, openssl or zstd are missing (a failure under
SBX_TESTS_MUST_RUN=1).
"""

import base64
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import ovltest  # noqa: E402
from image_fixture import (Image, Layer, PrivateDockerd, Proxy, Registry, TokenServer, blob_data_path,  # noqa: E402
                           build_layout, config_json, containers, inode_groups, make_tls, podman_base,
                           registry_binary, registry_manifest, tree_of)

T = ovltest.Tap()
IMAGE = os.environ.get("SANDBOX_IMAGE", "")
LAYER = os.environ.get("SANDBOX_LAYER", "")
PIN = os.environ.get("SANDBOX_IMAGE_PIN", "")


def sbx(store, *args, env=None, timeout=300, stdin=None):
    return subprocess.run([IMAGE, "--store", store, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=timeout, env=env, stdin=stdin if stdin is not None else subprocess.DEVNULL)


def inspect(store, ref):
    r = sbx(store, "inspect", ref)
    return json.loads(r.stdout)[0] if r.returncode == 0 else None


def refs(store):
    r = sbx(store, "ls", "--json")
    return sorted(ref for i in json.loads(r.stdout) for ref in i["References"]) if r.returncode == 0 else None


def layer_dir(store, diff_id):
    return os.path.join(store, "layers", "sha256", diff_id.split(":")[1])


def listdir(path):
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return []


def nothing_left(store):
    """Nothing of an operation in progress is left: tmp/ is empty."""
    return listdir(os.path.join(store, "tmp")) == []


# ---------------------------------------------------------------- the images

def make_images():
    rnd = os.urandom(1 << 20)
    l1 = Layer([("d", "etc", 0o755, 0, 0), ("f", "etc/os-release", b"ID=sbxtest\n", 0o644, 0, 0),
                ("d", "bin", 0o755, 0, 0), ("f", "bin/tool", rnd[:4096], 0o4755, 0, 0),
                ("h", "bin/tool-hard", "bin/tool"), ("l", "bin/sh", "tool"),
                ("d", "home", 0o755, 0, 0), ("d", "home/user", 0o700, 1000, 1000),
                ("f", "home/user/notes", b"mine\n", 0o600, 1000, 1000),
                ("d", "var", 0o755, 0, 0), ("d", "var/cache", 0o755, 0, 0), ("f", "var/cache/old", b"old", 0o644, 0, 0),
                ("d", "opt", 0o755, 0, 0), ("d", "opt/data", 0o755, 0, 0), ("f", "opt/data/a", b"a", 0o644, 0, 0)],
               "gzip")
    l2 = Layer([("d", "etc", 0o755, 0, 0), ("f", "etc/app.conf", b"level=2\n", 0o640, 0, 42),
                ("d", "var", 0o755, 0, 0), ("d", "var/cache", 0o755, 0, 0), ("w", "var/cache/old"),
                ("d", "opt", 0o755, 0, 0), ("d", "opt/data", 0o750, 0, 0), ("o", "opt/data"),
                ("f", "opt/data/b", rnd[4096:70000], 0o644, 0, 0), ("d", "work", 0o1777, 0, 0)], "zstd")
    l3 = Layer([("d", "srv", 0o755, 0, 0), ("f", "srv/app.py", b"print('app')\n", 0o755, 33, 33)], None)
    l4 = Layer([("d", "etc", 0o755, 0, 0), ("f", "etc/arch", b"arm64\n", 0o644, 0, 0)], "gzip")
    big = Layer([("d", "data", 0o755, 0, 0), ("f", "data/big", os.urandom(24 << 20), 0o644, 0, 0)], None)
    bad = Layer([("d", "c", 0o755, 0, 0), ("f", "c/f", os.urandom(1 << 20), 0o644, 0, 0)], "gzip")
    base = Image([l1, l2], config_json([l1, l2], env=["PATH=/bin", "GREETING=hello world"], entrypoint=["/bin/tool"],
                                       cmd=["--help"], workdir="/work", user="1000:1000"))
    app = Image([l1, l2, l3], config_json([l1, l2, l3], cmd=["/srv/app.py"]))
    arm = Image([l4], config_json([l4], arch="arm64"))
    bigimg = Image([big], config_json([big]))
    badimg = Image([bad], config_json([bad]))
    dk = Image([l1], config_json([l1], cmd=["/bin/sh"]))
    return dict(l1=l1, l2=l2, l3=l3, l4=l4, big=big, bad=bad, base=base, app=app, arm=arm, bigimg=bigimg,
                badimg=badimg, dk=dk)


def layer_matches(store, layer):
    """The layer directory holds exactly what the layer's tar says."""
    want, groups = layer.expected()
    root = os.path.join(layer_dir(store, layer.diff_id), "root")
    got = tree_of(root)
    return got == want and inode_groups(root, groups), ovltest.dict_diff(want, got)


class Ctx:
    pass


def setup(work):
    c = Ctx()
    c.work = work
    c.img = make_images()
    c.layout = os.path.join(work, "layout")
    i = c.img
    build_layout(c.layout, [(i["base"], "base"), (i["app"], "app"),
                                             ([("linux/amd64", i["app"]), ("linux/arm64", i["arm"])], "multi"),
                                             (i["bigimg"], "big"), (i["badimg"], "bad"), (i["dk"], "dk")])
    c.home = os.path.join(work, "home")
    c.storage = os.path.join(work, "registry-storage")
    c.registry = Registry(os.path.join(work, "registry"), c.storage)
    if not c.registry.wait_ready():
        raise RuntimeError("docker-registry did not start: " + c.registry.log_tail())
    pushes = [("base", "test/base:1", []), ("app", "test/app:1", []), ("multi", "test/multi:1", ["--all"]),
              ("big", "test/big:1", []), ("bad", "corrupt/img:1", []), ("dk", "docker/base:1", ["--format", "v2s2"]),
              ("base", "public/img:1", []), ("base", "private/img:1", [])]
    for ref, dest, extra in pushes:
        r = containers("skopeo", c.home, "copy", "--quiet", *extra, "--dest-tls-verify=false",
                       f"oci:{c.layout}:{ref}", f"docker://{c.registry.host}/{dest}")
        if r.returncode != 0:
            raise RuntimeError(f"skopeo push of {ref} to {dest} failed: {r.stdout[-800:]}")
    # What the registry holds: skopeo compresses the uncompressed layers it pushes and writes the index
    # anew, so blob and index digests are taken from there.
    c.index_digest = registry_manifest(c.registry.host, "test/multi", "1", index=True)[0]
    big = registry_manifest(c.registry.host, "test/big", "1")[1]["layers"][0]
    c.big_blob, c.big_size = big["digest"], big["size"]
    return c


# ---------------------------------------------------------------- 1. pull

def test_pull(c):
    store = os.path.join(c.work, "store-pull")
    i = c.img
    host = c.registry.host
    r = sbx(store, "pull", f"{host}/test/base:1")
    T.ok(r.returncode == 0 and r.stdout.strip() == i["base"].id, "pull by tag prints the image ID (the config's digest)",
         r.stderr + r.stdout)
    st = os.stat(store)
    T.ok(st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o700, "the store is root's, mode 0700",
         f"{st.st_uid} {oct(st.st_mode)}")
    root = os.path.join(layer_dir(store, i["l1"].diff_id), "root")
    rst = os.stat(root)
    try:
        record = os.getxattr(root, "trusted.overlay.sandbox.rootattr")
    except OSError as e:
        record = e
    T.ok(rst.st_uid == 0 and stat.S_IMODE(rst.st_mode) == 0o700 and record == b"755 0 0",
         "a layer's root is private (root, 0700) and records what it shows (755 0 0)",
         f"{oct(rst.st_mode)} {rst.st_uid} {record!r}")
    for name in ("l1", "l2"):
        ok, diff = layer_matches(store, i[name])
        T.ok(ok, f"layer {name} ({i[name].compression}) unpacked as its tar says: whiteouts, opaque, owners, "
             "set-id, hard links", diff)
    j = inspect(store, f"{host}/test/base:1")
    T.ok(j and [l["DiffId"] for l in j["Layers"]] == [i["l2"].diff_id, i["l1"].diff_id],
         "inspect: layers topmost first, by diff_id", json.dumps(j)[:500])
    T.ok(j and all(l["Path"] == os.path.join(layer_dir(store, l["DiffId"]), "root") and os.path.isdir(l["Path"])
                   for l in j["Layers"]), "inspect: each layer's directory in the store", json.dumps(j)[:500])
    T.ok(j and j["Config"] == {"Env": ["PATH=/bin", "GREETING=hello world"], "Entrypoint": ["/bin/tool"],
                               "Cmd": ["--help"], "WorkingDir": "/work", "User": "1000:1000"}
         and j["Manifest"] == i["base"].manifest_digest and j["Os"] == "linux" and j["Architecture"] == "amd64",
         "inspect: Env, Entrypoint, Cmd, WorkingDir, User, platform and manifest digest", json.dumps(j)[:600])

    r = sbx(store, "pull", f"{host}/test/app:1")
    T.ok(r.returncode == 0 and r.stdout.strip() == i["app"].id and "3 layers (1 new)" in r.stderr,
         "a second image sharing two layers unpacks only its own", r.stderr)
    ok, diff = layer_matches(store, i["l3"])
    T.ok(ok, "an uncompressed layer unpacks too", diff)
    T.ok(len(listdir(os.path.join(store, "layers", "sha256"))) == 3, "three layers in the store, each once",
         listdir(os.path.join(store, "layers", "sha256")))

    r = sbx(store, "pull", f"{host}/test/base@{i['base'].manifest_digest}")
    T.ok(r.returncode == 0 and r.stdout.strip() == i["base"].id and "(0 new)" in r.stderr,
         "pull by digest: the same image, nothing unpacked again", r.stderr)
    T.ok(f"{host}/test/base@{i['base'].manifest_digest}" in (refs(store) or []), "the digest reference is kept",
         refs(store))
    wrong = "sha256:" + "0" * 64
    r = sbx(store, "pull", f"{host}/test/base@{wrong}")
    T.ok(r.returncode == 1 and "not found" in r.stderr, "pull of a digest the registry lacks: refused, says so",
         r.stderr)

    # A multi-platform index.
    r = sbx(store, "pull", f"{host}/test/multi:1")
    T.ok(r.returncode == 0 and r.stdout.strip() == i["app"].id, "an index chooses linux/amd64", r.stderr)
    r = sbx(store, "pull", "--platform", "linux/arm64", f"{host}/test/multi:1")
    T.ok(r.returncode == 0 and r.stdout.strip() == i["arm"].id, "--platform linux/arm64 chooses the other image",
         r.stderr)
    T.ok(inspect(store, f"{host}/test/multi:1")["Id"] == i["arm"].id,
         "the tag names what was pulled last (linux/arm64 here)")
    r = sbx(store, "pull", f"{host}/test/multi@{c.index_digest}")
    T.ok(r.returncode == 0 and r.stdout.strip() == i["app"].id, "pull by an index's digest", r.stderr)
    r = sbx(store, "pull", "--platform", "linux/s390x", f"{host}/test/multi:1")
    T.ok(r.returncode == 1 and "no image for linux/s390x" in r.stderr, "an index without the platform: refused",
         r.stderr)
    r = sbx(store, "pull", "--platform", "linux/arm64", f"{host}/test/base:1")
    T.ok(r.returncode == 1 and "linux/amd64, not linux/arm64" in r.stderr,
         "an image for another platform than asked: refused", r.stderr)

    # Docker v2 schema 2 media types (skopeo --format v2s2).
    r = sbx(store, "pull", f"{host}/docker/base:1")
    j = inspect(store, f"{host}/docker/base:1")
    T.ok(r.returncode == 0 and j and [l["DiffId"] for l in j["Layers"]] == [i["l1"].diff_id],
         "a Docker v2 schema 2 manifest and config pull, sharing the layer", r.stderr)

    # Names.
    r = sbx(store, "tag", f"{host}/test/base:1", "local/alias:2")
    T.ok(r.returncode == 0 and (inspect(store, "local/alias:2") or {}).get("Id") == i["base"].id,
         "tag: a second name for an image", r.stderr)
    T.ok((inspect(store, i["base"].id.split(":")[1][:12]) or {}).get("Id") == i["base"].id,
         "an image ID prefix names the image")
    r = sbx(store, "rm", "local/alias:2")
    T.ok(r.returncode == 0 and "Untagged: docker.io/local/alias:2" in r.stdout and
         "docker.io/local/alias:2" not in refs(store) and os.path.isdir(layer_dir(store, i["l1"].diff_id)),
         "rm of one name keeps the image and its layers", r.stdout + r.stderr)
    r = sbx(store, "ls")
    T.ok(r.returncode == 0 and f"{host}/test/base:1" in r.stdout and "@sha256" not in r.stdout,
         "ls lists the names by tag", r.stdout)
    r = sbx(store, "inspect", "no/such:image")
    T.ok(r.returncode == 1 and "sandbox-image pull no/such:image" in r.stderr,
         "an image the store lacks: the message says to pull it", r.stderr)
    T.ok(nothing_left(store), "no temporaries left", listdir(os.path.join(store, "tmp")))


# ---------------------------------------------------------------- 2. bearer tokens

def test_auth(c):
    users = {"alice": "s3cret:with:colons"}
    tokens = TokenServer(os.path.join(c.work, "token"), users)
    reg = Registry(os.path.join(c.work, "registry-token"), c.storage, token=tokens.registry_token_config())
    store = os.path.join(c.work, "store-auth")
    i = c.img
    env = {k: v for k, v in os.environ.items() if k not in ("REGISTRY_AUTH_FILE", "DOCKER_CONFIG", "XDG_RUNTIME_DIR")}
    env["HOME"] = os.path.join(c.work, "auth-home")  # no credentials anywhere by default
    try:
        if not T.ok(reg.wait_ready(), "the token-auth registry starts", reg.log_tail()):
            return
        import urllib.error
        import urllib.request
        try:
            urllib.request.urlopen(f"http://{reg.host}/v2/private/img/manifests/1", timeout=5)
            code = 200
        except urllib.error.HTTPError as e:
            code = e.code
        T.ok(code == 401, "the registry itself refuses a request without a token (401)", code)

        r = sbx(store, "pull", f"{reg.host}/public/img:1", env=env)
        T.ok(r.returncode == 0 and r.stdout.strip() == i["base"].id, "anonymous bearer token: a public repository",
             r.stderr)
        T.ok((None, ["repository:public/img:pull"]) in tokens.requests,
             "the token was asked for anonymously, for pull on that repository", tokens.requests)

        r = sbx(store, "pull", f"{reg.host}/private/img:1", env=env)
        T.ok(r.returncode == 1 and "--authfile" in r.stderr and "private/img" in r.stderr,
             "a private repository without credentials: refused, the message points at --authfile", r.stderr)
        T.ok(f"{reg.host}/private/img:1" not in (refs(store) or []), "... and nothing named")

        auth = base64.b64encode(f"alice:{users['alice']}".encode()).decode()
        authfile = os.path.join(c.work, "auth.json")
        with open(authfile, "w") as f:
            json.dump({"auths": {reg.host: {"auth": auth}}}, f)
        n = len(tokens.requests)
        r = sbx(store, "pull", "--authfile", authfile, f"{reg.host}/private/img:1", env=env)
        T.ok(r.returncode == 0 and r.stdout.strip() == i["base"].id,
             "--authfile (containers auth.json): the private repository pulls", r.stderr)
        T.ok(("alice", ["repository:private/img:pull"]) in tokens.requests[n:],
             "the token server got our basic credentials", tokens.requests[n:])

        with open(authfile, "w") as f:
            json.dump({"auths": {reg.host: {"auth": base64.b64encode(b"alice:wrong").decode()}}}, f)
        r = sbx(store, "pull", "--authfile", authfile, f"{reg.host}/private/img:1", env=env)
        T.ok(r.returncode == 1 and "refused our credentials" in r.stderr, "wrong credentials: refused, says so",
             r.stderr)

        # Docker's config.json, found through $DOCKER_CONFIG, keyed by a URL as docker login writes it.
        dc = os.path.join(c.work, "docker-config")
        os.makedirs(dc)
        with open(os.path.join(dc, "config.json"), "w") as f:
            json.dump({"auths": {f"http://{reg.host}": {"auth": auth}}, "credsStore": ""}, f)
        sbx(store, "rm", f"{reg.host}/private/img:1")
        r = sbx(store, "pull", f"{reg.host}/private/img:1", env=dict(env, DOCKER_CONFIG=dc))
        T.ok(r.returncode == 0 and r.stdout.strip() == i["base"].id,
             "$DOCKER_CONFIG/config.json (docker's format) is used when no --authfile is given", r.stderr)
    finally:
        reg.stop()
        tokens.stop()

    # Basic auth (htpasswd): the registry asks for credentials itself.
    reg = Registry(os.path.join(c.work, "registry-basic"), c.storage, htpasswd=users)
    try:
        if not T.ok(reg.wait_ready(), "the basic-auth registry starts", reg.log_tail()):
            return
        store = os.path.join(c.work, "store-basic")
        r = sbx(store, "pull", f"{reg.host}/test/base:1", env=env)
        T.ok(r.returncode == 1 and "needs credentials" in r.stderr and "--authfile" in r.stderr,
             "basic auth without credentials: refused, the message points at --authfile", r.stderr)
        authfile = os.path.join(c.work, "auth-basic.json")
        with open(authfile, "w") as f:
            json.dump({"auths": {reg.host: {"auth": base64.b64encode(f"alice:{users['alice']}".encode()).decode()}}},
                      f)
        r = sbx(store, "pull", "--authfile", authfile, f"{reg.host}/test/base:1", env=env)
        T.ok(r.returncode == 0 and r.stdout.strip() == i["base"].id, "basic auth with --authfile: pulled", r.stderr)
    finally:
        reg.stop()


# ---------------------------------------------------------------- 3. TLS

def test_tls(c):
    ca, cert, key = make_tls(os.path.join(c.work, "tls"))
    reg = Registry(os.path.join(c.work, "registry-tls"), c.storage, tls=(cert, key))
    store = os.path.join(c.work, "store-tls")
    try:
        if not T.ok(reg.wait_ready(ca=ca), "the TLS registry starts", reg.log_tail()):
            return
        r = sbx(store, "pull", f"{reg.host}/test/base:1")
        T.ok(r.returncode == 1 and "--ca-file" in r.stderr and "certificate" in r.stderr.lower(),
             "HTTPS with an unknown CA: refused (no plain HTTP fallback), the message points at --ca-file", r.stderr)
        r = sbx(store, "pull", "--ca-file", ca, f"{reg.host}/test/base:1")
        T.ok(r.returncode == 0 and r.stdout.strip() == c.img["base"].id, "HTTPS with --ca-file: pulled", r.stderr)
        wrong = make_tls(os.path.join(c.work, "tls-other"))[0]
        r = sbx(store, "pull", "--ca-file", wrong, f"{reg.host}/test/app:1")
        T.ok(r.returncode == 1, "HTTPS with another CA's file: refused", r.stderr)
    finally:
        reg.stop()


# ---------------------------------------------------------------- 4. corruption, resume, concurrency

def test_corrupt(c):
    store = os.path.join(c.work, "store-corrupt")
    bad = c.img["bad"]
    path = blob_data_path(c.storage, bad.digest)
    with open(path, "r+b") as f:
        f.seek(len(bad.blob) // 2)
        f.write(b"\0CORRUPT\0")
    r = sbx(store, "pull", f"{c.registry.host}/corrupt/img:1")
    T.ok(r.returncode == 1 and "does not match its digest" in r.stderr and bad.digest in r.stderr,
         "a corrupted blob: refused, naming it", r.stderr)
    T.ok(not os.path.exists(layer_dir(store, bad.diff_id)) and nothing_left(store) and refs(store) == [],
         "nothing of it is kept: no layer, no download, no name",
         f"{listdir(os.path.join(store, 'layers', 'sha256'))} {listdir(os.path.join(store, 'tmp'))} {refs(store)}")


def partial_path(store, digest):
    return os.path.join(store, "tmp", f"blob-{digest.split(':')[1]}.partial")


def test_resume(c):
    big = c.img["big"]
    proxy = Proxy(c.registry.port)
    store = os.path.join(c.work, "store-resume")
    ref = f"{proxy.host}/test/big:1"
    try:
        # The connection breaks after 8 MiB.
        proxy.target, proxy.mode, proxy.after = c.big_blob, "cut", 8 << 20
        r = sbx(store, "pull", ref)
        T.ok(r.returncode == 1 and "pull again to resume" in r.stderr, "a broken transfer fails and says it resumes",
             r.stderr)
        size = os.path.getsize(partial_path(store, c.big_blob)) if os.path.exists(partial_path(store, c.big_blob)) else 0
        T.ok(size == 8 << 20, "the 8 MiB received are kept", size)
        proxy.mode = None
        n = len(proxy.log)
        r = sbx(store, "pull", ref)
        gets = [rg for p, rg in proxy.log[n:] if p.endswith("/blobs/" + c.big_blob)]
        T.ok(r.returncode == 0 and r.stdout.strip() == c.img["bigimg"].id and "resumed" in r.stderr,
             "the next pull completes", r.stderr)
        T.ok(gets == [f"bytes={8 << 20}-"], "... asking only for the rest (Range: bytes=8388608-)", gets)
        ok, diff = layer_matches(store, big)
        T.ok(ok and nothing_left(store), "the resumed layer is whole; no download file left", diff)

        # The puller is killed mid-blob (SIGKILL: no chance to clean up).
        sbx(store, "rm", ref)
        T.ok(not os.path.exists(layer_dir(store, big.diff_id)), "rm removed the layer (no other user)")
        proxy.target, proxy.mode, proxy.after = c.big_blob, "stall", 5 << 20
        proxy.release.clear()
        proxy.sent = 0
        p = subprocess.Popen([IMAGE, "--store", store, "pull", ref], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (os.path.exists(partial_path(store, c.big_blob)) and
                                                   os.path.getsize(partial_path(store, c.big_blob)) >= 5 << 20):
            time.sleep(0.05)
        p.send_signal(signal.SIGKILL)
        p.communicate()
        proxy.release.set()
        size = os.path.getsize(partial_path(store, c.big_blob)) if os.path.exists(partial_path(store, c.big_blob)) else 0
        T.ok(size == 5 << 20, "a killed pull leaves its download (5 MiB) for the next", size)
        proxy.mode = None
        n = len(proxy.log)
        r = sbx(store, "pull", ref)
        gets = [rg for pth, rg in proxy.log[n:] if pth.endswith("/blobs/" + c.big_blob)]
        T.ok(r.returncode == 0 and gets == [f"bytes={5 << 20}-"], "the next pull resumes it at 5 MiB",
             f"{r.stderr} {gets}")
        ok, diff = layer_matches(store, big)
        T.ok(ok and nothing_left(store), "... and the layer is whole", diff)
    finally:
        proxy.stop()


def test_concurrent(c):
    big = c.img["big"]
    proxy = Proxy(c.registry.port)
    store = os.path.join(c.work, "store-concurrent")
    ref = f"{proxy.host}/test/big:1"
    try:
        proxy.target, proxy.mode, proxy.chunk, proxy.delay = c.big_blob, "slow", 1 << 20, 0.04
        procs = [subprocess.Popen([IMAGE, "--store", store, "pull", ref], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outs = [p.communicate(timeout=120) for p in procs]
        T.ok(all(p.returncode == 0 for p in procs) and all(o[0].strip() == c.img["bigimg"].id for o in outs),
             "two concurrent pulls of one image both succeed", outs)
        T.ok(len(proxy.blob_gets(c.big_blob)) == 1, "the layer was downloaded once", proxy.blob_gets(c.big_blob))
        T.ok(listdir(os.path.join(store, "layers", "sha256")) == [big.diff_id.split(":")[1]] and nothing_left(store),
             "one layer directory, no temporaries", listdir(os.path.join(store, "layers", "sha256")))
        ok, diff = layer_matches(store, big)
        T.ok(ok, "the layer is whole", diff)
    finally:
        proxy.stop()


# ---------------------------------------------------------------- 5. import

def same_layers(store, ref, layers, what):
    j = inspect(store, ref)
    T.ok(j is not None and [l["DiffId"] for l in j["Layers"]] == [l.diff_id for l in reversed(layers)],
         f"{what}: imported under its name with its layers", json.dumps(j)[:300] if j else "no image")
    for l in layers:
        ok, diff = layer_matches(store, l)
        T.ok(ok, f"{what}: layer {l.diff_id[:19]} as its tar says", diff)
    return j


def test_import(c):
    i = c.img
    store = os.path.join(c.work, "store-import")
    r = sbx(store, "import", "--tag", "localhost/from-layout:1", os.path.join(c.layout))
    T.ok(r.returncode == 1 and "--tag names only one" in r.stderr, "--tag on a layout of several images: refused",
         r.stderr)
    r = sbx(store, "import", c.layout)
    T.ok(r.returncode == 0 and len(r.stdout.splitlines()) == 6, "a layout of six images imports them all", r.stdout + r.stderr)
    j = inspect(store, i["app"].id)
    T.ok(j is not None and j["References"] == [], "an image whose ref.name is a bare tag is kept by ID only",
         json.dumps(j)[:300] if j else "")

    one = os.path.join(c.work, "layout-one")
    build_layout(one, [(i["base"], "localhost/one/base:7")])
    r = sbx(store, "import", one)
    T.ok(r.returncode == 0 and r.stdout.split() == [i["base"].id, "localhost/one/base:7"],
         "a full reference in org.opencontainers.image.ref.name names the image", r.stdout + r.stderr)

    home = c.home
    oa = os.path.join(c.work, "skopeo-oci.tar")
    da = os.path.join(c.work, "skopeo-docker.tar")
    T.ok(containers("skopeo", home, "copy", "--quiet", f"oci:{c.layout}:base", f"oci-archive:{oa}:localhost/imp/oa:1")
         .returncode == 0, "skopeo writes an oci-archive")
    T.ok(containers("skopeo", home, "copy", "--quiet", f"oci:{c.layout}:dk", f"docker-archive:{da}:localhost/imp/da:1")
         .returncode == 0, "skopeo writes a docker-archive")
    for path, name, layers in ((oa, "localhost/imp/oa:1", [i["l1"], i["l2"]]), (da, "localhost/imp/da:1", [i["l1"]])):
        s = os.path.join(c.work, "store-" + os.path.basename(path))
        r = sbx(s, "import", path)
        T.ok(r.returncode == 0, f"import of {os.path.basename(path)}", r.stderr)
        same_layers(s, name, layers, os.path.basename(path))
        T.ok(nothing_left(s), f"{os.path.basename(path)}: no temporaries")

    test_import_podman(c)
    test_import_docker(c, da)


def test_import_podman(c):
    if not shutil.which("podman"):
        T.ok(not ovltest.must_run(), "podman # SKIP podman is not installed")
        return
    i = c.img
    root = os.path.join(c.work, "podman")
    base = podman_base(root)
    try:
        # docker-archive cannot hold zstd layers: that format gets the gzip-only image.
        for fmt, ref, name, layers in (("oci-archive", "base", "localhost/imp/pm:1", [i["l1"], i["l2"]]),
                                       ("docker-archive", "dk", "localhost/imp/pmd:1", [i["l1"]])):
            src = os.path.join(c.work, f"podman-in-{ref}.tar")
            containers("skopeo", c.home, "copy", "--quiet", f"oci:{c.layout}:{ref}", f"oci-archive:{src}:{name}")
            r = containers("podman", c.home, *base, "load", "-i", src)
            if not T.ok(r.returncode == 0, f"podman load of our image {ref}", r.stdout[-500:]):
                continue
            pid = containers("podman", c.home, *base, "inspect", "--format", "{{.Id}}", name).stdout.strip()
            out = os.path.join(c.work, f"podman-save-{fmt}.tar")
            r = containers("podman", c.home, *base, "save", "--format", fmt, "-o", out, name)
            if not T.ok(r.returncode == 0, f"podman save --format {fmt}", r.stdout[-500:]):
                continue
            s = os.path.join(c.work, f"store-podman-{fmt}")
            r = sbx(s, "import", out)
            T.ok(r.returncode == 0, f"import of podman save --format {fmt}", r.stderr)
            j = same_layers(s, name, layers, f"podman save ({fmt})")
            T.ok(j is not None and j["Id"] == "sha256:" + pid, f"podman save ({fmt}): podman's image ID",
                 (pid, j and j["Id"]))
    finally:
        containers("podman", c.home, *base, "rmi", "-a", "-f")
        for m in reversed(ovltest.mounts_under(root)):
            ovltest.umount(m)


def test_import_docker(c, docker_archive):
    if not PrivateDockerd.available():
        T.ok(not ovltest.must_run(), "docker # SKIP no private dockerd (scripts/install-deps.sh)")
        return
    d = PrivateDockerd(os.path.join(c.work, "docker"))
    try:
        if not d.wait_ready():
            T.diag(d.log_tail())
            T.ok(not ovltest.must_run(), "docker # SKIP dockerd did not start")
            return
        r = d.cli("load", "-i", docker_archive)
        if not T.ok(r.returncode == 0, "docker load of our image", r.stdout):
            return
        out = os.path.join(c.work, "docker-save.tar")
        r = d.cli("save", "-o", out, "localhost/imp/da:1")
        if not T.ok(r.returncode == 0, "docker save", r.stdout):
            return
        did = d.cli("inspect", "--format", "{{.Id}}", "localhost/imp/da:1").stdout.strip()
        s = os.path.join(c.work, "store-docker-save")
        r = sbx(s, "import", out)
        T.ok(r.returncode == 0, "import of docker save", r.stderr)
        j = same_layers(s, "localhost/imp/da:1", [c.img["l1"]], "docker save")
        T.ok(j is not None and j["Id"] == did, "docker save: docker's image ID", (did, j and j["Id"]))
    finally:
        d.stop()


def hostile_layout(c, name, layers, config=None, manifest_layers=None, tamper=None):
    root = os.path.join(c.work, "hostile", name)
    img = Image(layers, config or config_json(layers))
    if manifest_layers is not None:
        img.manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": img.id,
                       "size": len(img.config)}, "layers": manifest_layers}).encode()
        img.manifest_digest = "sha256:" + hashlib.sha256(img.manifest).hexdigest()
    build_layout(root, [(img, "localhost/hostile:1")])
    if tamper:
        tamper(root, img)
    return root


def test_hostile(c):
    store = os.path.join(c.work, "store-hostile")
    os.makedirs(store, mode=0o700)
    ok_layer = c.img["l3"]

    def check(path, want, what):
        before = listdir(os.path.join(store, "layers", "sha256"))
        r = sbx(store, "import", path)
        T.ok(r.returncode == 1 and want in r.stderr, f"{what}: refused, saying so", r.stderr)
        T.ok(listdir(os.path.join(store, "layers", "sha256")) == before and nothing_left(store) and
             "localhost/hostile:1" not in " ".join(refs(store) or []), f"{what}: nothing kept")

    many = [{"mediaType": ok_layer.media_type, "digest": ok_layer.digest, "size": len(ok_layer.blob)}] * 121
    check(hostile_layout(c, "many", [ok_layer], manifest_layers=many), "121 layers exceeds the limit of 120",
          "a manifest of 121 layers")
    liar = Layer([("d", "x", 0o755, 0, 0), ("f", "x/y", b"liar", 0o644, 0, 0)], "gzip")
    cfg = json.loads(config_json([liar]))
    cfg["rootfs"]["diff_ids"] = [ok_layer.diff_id]
    check(hostile_layout(c, "diffid", [liar], config=json.dumps(cfg).encode()), "but the image config says",
          "a config whose diff_id does not match the layer")
    T.ok(not os.path.exists(layer_dir(store, ok_layer.diff_id)), "... and no layer under the claimed diff_id")

    def flip(root, img):
        p = os.path.join(root, "blobs", "sha256", img.layers[0].digest.split(":")[1])
        with open(p, "r+b") as f:
            f.seek(20)
            f.write(b"\xff\xfe")
    check(hostile_layout(c, "tampered", [Layer([("f", "t", b"t" * 5000, 0o644, 0, 0)], "gzip")], tamper=flip),
          "does not match its digest", "a layer blob changed in the layout")
    escape = Layer([("f", "../escape", b"out", 0o644, 0, 0)], None)
    check(hostile_layout(c, "escape", [escape]), "unsafe path", "a layer with '../escape'")
    T.ok(not os.path.exists(os.path.join(store, "layers", "escape")) and not os.path.exists(
        os.path.join(c.work, "hostile", "escape-out")), "nothing written outside the layer")

    def symlink_blob(root, img):
        p = os.path.join(root, "blobs", "sha256", img.layers[0].digest.split(":")[1])
        os.unlink(p)
        os.symlink("/etc/passwd", p)
    check(hostile_layout(c, "symlink", [Layer([("f", "s", b"s", 0o644, 0, 0)], "gzip")], tamper=symlink_blob),
          "cannot open", "a blob that is a symlink in the layout")

    deep = os.path.join(c.work, "hostile", "deep")
    build_layout(deep, [(Image([ok_layer], config_json([ok_layer])), None)])
    with open(os.path.join(deep, "index.json"), "w") as f:
        f.write('{"schemaVersion": 2, "manifests": [], "x": ' + "[" * 200 + "]" * 200 + "}")
    check(deep, "nested deeper than 64", "an index.json nested 200 levels deep")

    open_store = os.path.join(c.work, "store-open")
    os.makedirs(open_store, mode=0o755)
    os.chmod(open_store, 0o755)
    r = sbx(open_store, "import", c.layout)
    T.ok(r.returncode == 1 and "chmod 0700" in r.stderr, "a store others can enter: refused, says how to fix it",
         r.stderr)


# ---------------------------------------------------------------- 6. prune and pins

def test_prune(c):
    i = c.img
    store = os.path.join(c.work, "store-prune")
    host = c.registry.host
    for ref in ("test/base:1", "test/app:1"):
        sbx(store, "pull", f"{host}/{ref}")
    pin = subprocess.Popen([PIN, store, f"{host}/test/app:1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while True:
            line = pin.stdout.readline()
            if not line or line.strip() == "pinned":
                break
            lines.append(line.strip())
        T.ok(lines == [os.path.join(layer_dir(store, l.diff_id), "root") for l in (i["l3"], i["l2"], i["l1"])],
             "the library gives a pinning user the layer directories, topmost first", lines)
        r = sbx(store, "rm", f"{host}/test/app:1")
        T.ok(r.returncode == 0 and "1 running sandbox" in r.stdout and os.path.isdir(layer_dir(store, i["l3"].diff_id)),
             "rm of a pinned image: its name goes, its layers stay", r.stdout + r.stderr)
        r = sbx(store, "prune")
        T.ok(r.returncode == 0 and os.path.isdir(layer_dir(store, i["l3"].diff_id)) and
             os.path.isfile(os.path.join(store, "blobs", "sha256", i["app"].id.split(":")[1])),
             "prune keeps the layers and config a running user pins", r.stdout + r.stderr)
    finally:
        pin.kill()  # a crash: the pin's lock goes with the process
        pin.communicate()
    r = sbx(store, "prune")
    T.ok(r.returncode == 0 and "1 stale pin" in r.stdout and not os.path.exists(layer_dir(store, i["l3"].diff_id)),
         "once the user is gone (killed), prune removes its pin and the layer", r.stdout + r.stderr)
    T.ok(os.path.isdir(layer_dir(store, i["l1"].diff_id)) and os.path.isdir(layer_dir(store, i["l2"].diff_id)),
         "the layers of the remaining image stay")
    T.ok(listdir(os.path.join(store, "pins")) == [], "no pin file left")

    # Leftovers of a killed pull go with prune too.
    proxy = Proxy(c.registry.port)
    try:
        proxy.target, proxy.mode, proxy.after = c.big_blob, "stall", 2 << 20
        p = subprocess.Popen([IMAGE, "--store", store, "pull", f"{proxy.host}/test/big:1"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proxy.sent < (2 << 20):
            time.sleep(0.05)
        time.sleep(0.2)
        p.kill()
        p.wait()
    finally:
        proxy.stop()
    T.ok(os.path.exists(partial_path(store, c.big_blob)), "a killed pull left its download")
    r = sbx(store, "rm", f"{host}/test/base:1")
    T.ok(r.returncode == 0 and listdir(os.path.join(store, "layers", "sha256")) == [] and nothing_left(store) and
         listdir(os.path.join(store, "blobs", "sha256")) == [],
         "rm of the last image: no layer, no blob, no leftover download", r.stdout + r.stderr)


# ---------------------------------------------------------------- 7. sandbox-layer refuses image archives

def test_layer_refuses(c):
    if not LAYER:
        T.ok(not ovltest.must_run(), "sandbox-layer # SKIP SANDBOX_LAYER is not set")
        return
    oa = os.path.join(c.work, "refuse-oci.tar")
    da = os.path.join(c.work, "refuse-docker.tar")
    containers("skopeo", c.home, "copy", "--quiet", f"oci:{c.layout}:base", f"oci-archive:{oa}:localhost/x:1")
    containers("skopeo", c.home, "copy", "--quiet", f"oci:{c.layout}:dk", f"docker-archive:{da}:localhost/x:1")
    subprocess.run(["gzip", "-k", "-1", oa], check=True)
    for path, kind in ((oa, "oci-archive"), (da, "docker/podman save"), (oa + ".gz", "oci-archive")):
        dest = os.path.join(c.work, "refused-layer")
        r = subprocess.run([LAYER, "import", path, dest], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        T.ok(r.returncode == 1 and kind in r.stderr and f"sandbox-image import {path}" in r.stderr and
             not os.path.exists(dest), f"sandbox-layer import {os.path.basename(path)}: refused, points at "
             "sandbox-image import, no DEST", r.stderr)
    with open(da, "rb") as f:
        r = subprocess.run([LAYER, "import", "-", dest], stdin=f, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    T.ok(r.returncode == 1 and "sandbox-image import" in r.stderr and not os.path.exists(dest),
         "... also from standard input", r.stderr)
    T.ok(not [n for n in os.listdir(c.work) if n.startswith(".refused-layer")], "no temporary left beside DEST")


# ---------------------------------------------------------------- 8. progress

def test_progress(c):
    proxy = Proxy(c.registry.port)
    store = os.path.join(c.work, "store-progress")
    big = c.img["big"]
    try:
        proxy.target, proxy.mode, proxy.chunk, proxy.delay = c.big_blob, "slow", 2 << 20, 0.05
        rc, out, seen = ovltest.run_on_pty([IMAGE, "--store", store, "pull", f"{proxy.host}/test/big:1"])
        h = c.big_blob.split(":")[1][:12].encode()
        d = big.diff_id.split(":")[1][:12].encode()
        total = f" of {c.big_size / (1 << 20):.1f} MiB".encode()
        T.ok(rc == 0 and b"download layer 1/1 " + h + b": " in seen and total in seen and
             b"unpack layer 1/1 " + d + b": " in seen and b"entries" in seen,
             "on a terminal: download (bytes of the total) and unpack (entries, bytes) lines", repr(seen[-300:]))
        T.ok(b"\r\x1b[KPulled " in seen, "the progress line is cleared before the summary", repr(seen[-200:]))
        r = sbx(store, "pull", f"{proxy.host}/test/big:1")
        T.ok("\x1b[K" not in r.stderr, "not on a terminal: no progress", repr(r.stderr[:200]))
    finally:
        proxy.stop()


def main():
    ovltest.install_signal_handlers()
    ovltest.require_root()
    for name, value in (("SANDBOX_IMAGE", IMAGE), ("SANDBOX_IMAGE_PIN", PIN)):
        if not value or not os.access(value, os.X_OK):
            ovltest.skip_all(f"{name} is not set or not executable")
    if not registry_binary():
        ovltest.skip_all("no docker-registry (scripts/install-deps.sh unpacks it)")
    for tool in ("skopeo", "openssl", "zstd"):
        if not shutil.which(tool):
            ovltest.skip_all(f"{tool} is not installed (scripts/install-deps.sh)")
    start = time.monotonic()
    work = tempfile.mkdtemp(prefix="image-store-", dir="/var/tmp")
    c = None
    try:
        c = setup(work)
        T.diag(f"set-up: {time.monotonic() - start:.1f} s")
        for t in (test_pull, test_auth, test_tls, test_corrupt, test_resume, test_concurrent, test_import,
                  test_hostile, test_prune, test_layer_refuses, test_progress):
            t0 = time.monotonic()
            try:
                t(c)
            except Exception:  # a crash in one part fails it without hiding the others
                T.ok(False, f"{t.__name__} raised", traceback.format_exc())
            T.diag(f"{t.__name__}: {time.monotonic() - t0:.1f} s")
    except Exception:
        T.ok(False, "set-up", traceback.format_exc())
    finally:
        if c is not None:
            c.registry.stop()
        ovltest.remove_tree(work)
    T.diag(f"{time.monotonic() - start:.1f} s")
    sys.exit(T.done())


if __name__ == "__main__":
    main()
