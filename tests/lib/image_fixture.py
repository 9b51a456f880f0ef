# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fixtures for the image store tests and benchmark (stdlib only): images built from small trees, real
registries on the loopback, a bearer token server, an HTTP proxy that can cut or slow a transfer, and the
containers tools (skopeo, podman) run so that they change nothing on the host.

What it does:
- Layer / build_layout: OCI image layouts written from a spec of entries (directories, files, symlinks,
  hard links, whiteouts, opaque directories, set-id bits, owners), layers as tar, tar+gzip or tar+zstd,
  single images and multi-platform indexes. expected_tree() says what a layer directory unpacked from a
  layer must hold (whiteouts as 0/0 devices, opaque markers as trusted.overlay.opaque).
- Registry: Debian's docker-registry (distribution 2.8) on a free loopback port with a config and storage of
  the test's own; plain HTTP, TLS with a certificate of a CA the test makes, or token auth.
- TokenServer: the token endpoint of the distribution token auth spec, in a thread: JWTs signed RS256 by
  `openssl dgst` with a key whose self-signed certificate the registry trusts (x5c header); anonymous
  clients get pull on public/*, clients with the right basic credentials get push and pull on anything.
- Proxy: an HTTP/1.0 reverse proxy in front of a registry that logs requests (path, Range), and for one
  blob can cut the connection or stall after N bytes, or slow it down.
- containers(): skopeo/podman in a private mount namespace with an empty /var/lib (containers/image keeps
  a blob-info cache for root in /var/lib/containers) and HOME below the test's directory.

What it does not do: mock anything. Every server is a real one; the tests talk to them over real sockets.
"""

import base64
import gzip
import hashlib
import http.client
import http.server
import io
import json
import os
import shutil
import signal
import socket
import ssl
import stat as S
import subprocess
import tarfile
import threading
import time
import urllib.parse
import urllib.request

MTIME = 1700000000
# scripts/install-deps.sh unpacks Debian's docker-registry there (installing it would start a registry
# for the whole host); one on $PATH does too.
REGISTRY_ROOT = os.environ.get("SANDBOX_TEST_REGISTRY", "/var/cache/sandbox-tests/registry")


def registry_binary():
    unpacked = os.path.join(REGISTRY_ROOT, "usr", "bin", "docker-registry")
    return unpacked if os.access(unpacked, os.X_OK) else shutil.which("docker-registry")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- layers and layouts

class Layer:
    """A layer from entries, in order:
      ("d", path, mode, uid, gid)        directory
      ("f", path, data, mode, uid, gid)  regular file
      ("l", path, target)                symlink
      ("h", path, target)                hard link to an earlier file
      ("w", path)                        whiteout: DIR/.wh.NAME
      ("o", dir)                         opaque directory: DIR/.wh..wh..opq
    compression: "gzip", "zstd" or None."""

    def __init__(self, entries, compression="gzip"):
        self.entries = entries
        self.compression = compression
        self.tar = self._tar()
        self.diff_id = sha256(self.tar)
        self.blob = self._compress()
        self.digest = sha256(self.blob)
        self.media_type = {"gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
                           "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
                           None: "application/vnd.oci.image.layer.v1.tar"}[compression]

    @classmethod
    def from_tar(cls, tar, compression="gzip"):
        """A layer of a tar made elsewhere (GNU tar of host directories, for a benchmark's image)."""
        self = cls.__new__(cls)
        self.entries, self.compression, self.tar = [], compression, tar
        self.diff_id = sha256(tar)
        self.blob = self._compress()
        self.digest = sha256(self.blob)
        self.media_type = {"gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
                           "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
                           None: "application/vnd.oci.image.layer.v1.tar"}[compression]
        return self

    def _tar(self):
        b = io.BytesIO()
        with tarfile.open(fileobj=b, mode="w", format=tarfile.PAX_FORMAT) as t:
            for e in self.entries:
                kind, path = e[0], e[1]
                if kind == "w":
                    d, n = os.path.split(path)
                    ti = tarfile.TarInfo(os.path.join(d, ".wh." + n))
                    ti.mode = 0o644
                elif kind == "o":
                    ti = tarfile.TarInfo(os.path.join(path, ".wh..wh..opq"))
                    ti.mode = 0o644
                else:
                    ti = tarfile.TarInfo(path)
                ti.mtime = MTIME
                data = None
                if kind == "d":
                    ti.type, ti.mode, ti.uid, ti.gid = tarfile.DIRTYPE, e[2], e[3], e[4]
                elif kind == "f":
                    data = e[2]
                    ti.size, ti.mode, ti.uid, ti.gid = len(data), e[3], e[4], e[5]
                elif kind == "l":
                    ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, e[2], 0o777
                elif kind == "h":
                    ti.type, ti.linkname, ti.mode = tarfile.LNKTYPE, e[2], 0o644
                t.addfile(ti, io.BytesIO(data) if data is not None else None)
        return b.getvalue()

    def _compress(self):
        if self.compression == "gzip":
            return gzip.compress(self.tar, compresslevel=1, mtime=0)
        if self.compression == "zstd":
            return subprocess.run(["zstd", "-q", "-c", "-3"], input=self.tar, stdout=subprocess.PIPE,
                                  check=True).stdout
        return self.tar

    def expected(self):
        """{path: fields} a layer directory unpacked from this layer holds ("" is the root)."""
        out = {}
        links = {}
        for e in self.entries:
            kind, path = e[0], e[1]
            if kind == "d":
                out[path] = {"type": "d", "mode": e[2], "uid": e[3], "gid": e[4]}
            elif kind == "f":
                out[path] = {"type": "f", "mode": e[3], "uid": e[4], "gid": e[5],
                             "sha": hashlib.sha256(e[2]).hexdigest()}
            elif kind == "l":
                out[path] = {"type": "l", "target": e[2]}
            elif kind == "h":
                out[path] = dict(out[e[2]])
                links.setdefault(e[2], [e[2]]).append(path)
            elif kind == "w":
                out[path] = {"type": "w"}
            elif kind == "o":
                out[path] = dict(out[path], opaque=True)
        return out, list(links.values())


# scripts/install-deps.sh unpacks Debian's busybox-static there (it conflicts with the dynamic busybox).
BUSYBOX_STATIC = os.environ.get("SANDBOX_TEST_BUSYBOX", "/var/cache/sandbox-tests/busybox-static/bin/busybox")
BUSYBOX_APPLETS = ("sh", "echo", "id", "pwd", "env", "cat", "ls", "sleep", "test", "mkdir", "touch", "stat",
                   "hostname", "true", "false", "printf", "du", "head")


def busybox_static():
    """The static busybox, or None."""
    return BUSYBOX_STATIC if os.access(BUSYBOX_STATIC, os.X_OK) else None


def busybox_layer(compression="gzip", applets=BUSYBOX_APPLETS):
    """A base layer: bin/busybox (static) and bin/APPLET links to it; no /etc, no /usr."""
    with open(BUSYBOX_STATIC, "rb") as f:
        bb = f.read()
    return Layer([("d", "bin", 0o755, 0, 0), ("f", "bin/busybox", bb, 0o755, 0, 0)] +
                 [("l", f"bin/{a}", "busybox") for a in applets], compression)


def tree_of(root):
    """{relpath: fields} of a layer directory, in the terms of Layer.expected() (root left out)."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if S.S_ISDIR(st.st_mode):
                e = {"type": "d", "mode": S.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid}
                try:
                    if os.getxattr(p, "trusted.overlay.opaque", follow_symlinks=False) == b"y":
                        e["opaque"] = True
                except OSError:
                    pass
            elif S.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    e = {"type": "f", "mode": S.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid,
                         "sha": hashlib.sha256(f.read()).hexdigest()}
            elif S.S_ISLNK(st.st_mode):
                e = {"type": "l", "target": os.readlink(p)}
            elif S.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                e = {"type": "w"}
            else:
                e = {"type": "?", "mode": st.st_mode}
            out[rel] = e
    return out


def inode_groups(root, groups):
    """True when every group of paths is one inode in ROOT."""
    return all(len({os.lstat(os.path.join(root, p)).st_ino for p in g}) == 1 for g in groups)


def config_json(layers, arch="amd64", os_name="linux", env=None, entrypoint=None, cmd=None, workdir=None, user=None,
                extra=None):
    cfg = {"Env": env or ["PATH=/usr/bin:/bin"]}
    if entrypoint is not None:
        cfg["Entrypoint"] = entrypoint
    if cmd is not None:
        cfg["Cmd"] = cmd
    if workdir is not None:
        cfg["WorkingDir"] = workdir
    if user is not None:
        cfg["User"] = user
    doc = {"created": "2024-01-02T03:04:05Z", "architecture": arch, "os": os_name, "config": cfg,
           "rootfs": {"type": "layers", "diff_ids": [l.diff_id for l in layers]},
           "history": [{"created_by": "test"} for _ in layers]}
    if extra:
        doc.update(extra)
    return json.dumps(doc, sort_keys=True).encode()


class Image:
    def __init__(self, layers, config):
        self.layers = layers
        self.config = config
        self.id = sha256(config)
        self.manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": self.id,
                       "size": len(config)},
            "layers": [{"mediaType": l.media_type, "digest": l.digest, "size": len(l.blob)} for l in layers],
        }, sort_keys=True).encode()
        self.manifest_digest = sha256(self.manifest)


def _put_blob(root, data):
    d = sha256(data)
    path = os.path.join(root, "blobs", "sha256", d.split(":")[1])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return d


def build_layout(root, entries):
    """An OCI image layout at ROOT. ENTRIES: [(Image or [(platform, Image), ...], ref_name or None)]: a
    list of (platform, Image) becomes an index of those images. Returns the index.json entries' digests."""
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    manifests = []
    for what, ref_name in entries:
        images = what if isinstance(what, list) else [(None, what)]
        descs = []
        for platform, img in images:
            for l in img.layers:
                _put_blob(root, l.blob)
            _put_blob(root, img.config)
            _put_blob(root, img.manifest)
            d = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": img.manifest_digest,
                 "size": len(img.manifest)}
            if platform:
                o, a = platform.split("/")[:2]
                d["platform"] = {"os": o, "architecture": a}
            descs.append(d)
        if isinstance(what, list):
            index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                                "manifests": descs}, sort_keys=True).encode()
            top = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": _put_blob(root, index),
                   "size": len(index)}
        else:
            top = descs[0]
        if ref_name:
            top["annotations"] = {"org.opencontainers.image.ref.name": ref_name}
        manifests.append(top)
    with open(os.path.join(root, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": manifests}, f)
    return [m["digest"] for m in manifests]


# ---------------------------------------------------------------- containers tools

def containers(tool, home, *args, timeout=300, stdin=None):
    """skopeo or podman in a private mount namespace whose /var/lib is an empty tmpfs, HOME=HOME."""
    cmd = ["env", f"HOME={home}", f"XDG_CONFIG_HOME={home}/.config", f"XDG_DATA_HOME={home}/.local/share",
           f"XDG_RUNTIME_DIR={home}/run", "unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
           'mount -t tmpfs -o mode=0755 tmpfs /var/lib && exec "$0" "$@"', tool, *args]
    os.makedirs(os.path.join(home, "run"), mode=0o700, exist_ok=True)
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
                          stdin=stdin if stdin is not None else subprocess.DEVNULL)


def podman_base(root):
    """podman's options for a storage of its own below ROOT (vfs; nothing in /run or /var/lib)."""
    return ["--root", os.path.join(root, "root"), "--runroot", os.path.join(root, "run"), "--storage-driver", "vfs",
            "--tmpdir", os.path.join(root, "tmp"), "--network-config-dir", os.path.join(root, "net"),
            "--events-backend", "none", "--cgroup-manager", "cgroupfs"]


# ---------------------------------------------------------------- certificates

def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_tls(dir):
    """A CA and a server certificate for 127.0.0.1/localhost signed by it: (ca.pem, server.pem, server.key)."""
    os.makedirs(dir, exist_ok=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=sandbox test CA", cwd=dir)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj",
            "/CN=127.0.0.1", cwd=dir)
    with open(os.path.join(dir, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out",
            "server.pem", "-days", "2", "-extfile", "ext.cnf", cwd=dir)
    return tuple(os.path.join(dir, n) for n in ("ca.pem", "server.pem", "server.key"))


# ---------------------------------------------------------------- registry

class Registry:
    """docker-registry serving STORAGE on a free loopback port. tls=(cert, key) for HTTPS; token=dict(realm=,
    service=, issuer=, rootcertbundle=) for token auth; htpasswd={user: password} for basic auth."""

    def __init__(self, dir, storage, tls=None, token=None, htpasswd=None):
        self.dir = dir
        os.makedirs(dir, exist_ok=True)
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.tls = tls
        lines = ["version: 0.1", "log:", "  level: warn", "  accesslog:", "    disabled: true", "storage:",
                 "  filesystem:", f"    rootdirectory: {storage}", "  delete:", "    enabled: true",
                 "http:", f"  addr: 127.0.0.1:{self.port}"]
        if tls:
            lines += ["  tls:", f"    certificate: {tls[0]}", f"    key: {tls[1]}"]
        if token:
            lines += ["auth:", "  token:"] + [f"    {k}: {v}" for k, v in token.items()]
        if htpasswd:
            import crypt  # bcrypt, the only hash the registry takes, from the C library (libxcrypt)
            path = os.path.join(dir, "htpasswd")
            with open(path, "w") as f:
                for user, password in htpasswd.items():
                    f.write(f"{user}:{crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))}\n")
            lines += ["auth:", "  htpasswd:", "    realm: sandbox-test-basic", f"    path: {path}"]
        self.config = os.path.join(dir, "config.yml")
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.log = open(os.path.join(dir, "registry.log"), "wb")
        self.proc = subprocess.Popen([registry_binary(), "serve", self.config], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, ca=None, timeout=30):
        deadline = time.monotonic() + timeout
        ctx = ssl.create_default_context(cafile=ca) if self.tls else None
        url = f"{'https' if self.tls else 'http'}://{self.host}/v2/"
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                urllib.request.urlopen(url, timeout=2, context=ctx)
                return True
            except urllib.error.HTTPError:
                return True  # 401 with token auth: it answers
            except OSError:
                time.sleep(0.1)
        return False

    def log_tail(self):
        with open(os.path.join(self.dir, "registry.log"), "rb") as f:
            return f.read()[-800:].decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


def registry_manifest(host, repo, ref, index=False):
    """(digest, document) of a manifest (or with INDEX an index) as the plain-HTTP registry at HOST serves it."""
    accept = ("application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json"
              if index else "application/vnd.oci.image.manifest.v1+json, "
              "application/vnd.docker.distribution.manifest.v2+json")
    req = urllib.request.Request(f"http://{host}/v2/{repo}/manifests/{ref}", headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=10) as r:
        body = r.read()
    return sha256(body), json.loads(body)


def blob_data_path(storage, digest):
    hexd = digest.split(":")[1]
    return os.path.join(storage, "docker", "registry", "v2", "blobs", "sha256", hexd[:2], hexd, "data")


# ---------------------------------------------------------------- token server

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """The token endpoint: GET /token?service=S&scope=repository:NAME:ACTIONS[&scope=...]."""

    def __init__(self, dir, users, service="sandbox-test", issuer="sandbox-test-issuer"):
        self.dir = dir
        os.makedirs(dir, exist_ok=True)
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "token.key", "-out", "token.pem",
                "-days", "2", "-subj", "/CN=sandbox test token issuer", cwd=dir)
        der = subprocess.run(["openssl", "x509", "-in", "token.pem", "-outform", "DER"], cwd=dir, check=True,
                             stdout=subprocess.PIPE).stdout
        self.x5c = base64.b64encode(der).decode()
        self.users = users
        self.service, self.issuer = service, issuer
        self.requests = []  # (user or None, scopes)
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                u = urllib.parse.urlparse(self.path)
                q = urllib.parse.parse_qs(u.query)
                user = None
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    try:
                        name, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                    except ValueError:
                        name, password = "", None
                    if server.users.get(name) != password:
                        server.requests.append(("!" + name, q.get("scope", [])))
                        self.send_response(401)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    user = name
                server.requests.append((user, q.get("scope", [])))
                access = []
                for scope in q.get("scope", []):
                    parts = scope.split(":")
                    if len(parts) != 3 or parts[0] != "repository":
                        continue
                    wanted = parts[2].split(",")
                    if user:
                        granted = wanted
                    elif parts[1].startswith("public/"):
                        granted = [a for a in wanted if a == "pull"]
                    else:
                        granted = []
                    access.append({"type": "repository", "name": parts[1], "actions": granted})
                body = json.dumps({"token": server.sign(user or "", access), "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.realm = f"http://127.0.0.1:{self.port}/token"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def sign(self, subject, access):
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": os.urandom(8).hex(), "access": access}
        signing_input = (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())).encode()
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", os.path.join(self.dir, "token.key")],
                             input=signing_input, stdout=subprocess.PIPE, check=True).stdout
        return signing_input.decode() + "." + b64url(sig)

    def registry_token_config(self):
        return {"realm": self.realm, "service": self.service, "issuer": self.issuer,
                "rootcertbundle": os.path.join(self.dir, "token.pem")}

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# ---------------------------------------------------------------- proxy

class Proxy:
    """A reverse proxy to http://127.0.0.1:UPSTREAM that logs (path, Range) per GET. For the blob DIGEST
    set in .target: mode "cut" closes the connection after .after bytes, "stall" stops sending after
    .after bytes until released, "slow" sends .chunk bytes per .delay seconds."""

    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.log = []
        self.target, self.mode, self.after, self.chunk, self.delay = None, None, 0, 1 << 20, 0.0
        self.sent = 0
        self.release = threading.Event()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *a):
                pass

            def do_GET(self):
                proxy.log.append((self.path, self.headers.get("Range")))
                conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream, timeout=60)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("accept", "range", "authorization", "user-agent")}
                conn.request("GET", self.path, headers=headers)
                resp = conn.getresponse()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "keep-alive"):
                        self.send_header(k, v)
                self.end_headers()
                special = proxy.target and self.path.endswith("/blobs/" + proxy.target) and resp.status // 100 == 2
                sent = 0
                try:
                    while True:
                        want = proxy.chunk if special and proxy.mode == "slow" else 65536
                        if special and proxy.mode in ("cut", "stall"):
                            want = min(want, proxy.after - sent)
                            if want <= 0:
                                self.wfile.flush()
                                proxy.sent = sent
                                if proxy.mode == "stall":
                                    proxy.release.wait(120)
                                self.connection.shutdown(socket.SHUT_RDWR)
                                return
                        data = resp.read(want)
                        if not data:
                            break
                        self.wfile.write(data)
                        sent += len(data)
                        if special and proxy.mode == "slow":
                            self.wfile.flush()
                            time.sleep(proxy.delay)
                except OSError:
                    pass
                finally:
                    conn.close()
                if special:
                    proxy.sent = sent

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def blob_gets(self, digest):
        return [r for p, r in self.log if p.endswith("/blobs/" + digest)]

    def stop(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


# ---------------------------------------------------------------- docker

DOCKER_ROOT = os.environ.get("SANDBOX_TEST_DOCKER", "/var/cache/sandbox-tests/docker")


class PrivateDockerd:
    """A dockerd of our own (scripts/install-deps.sh unpacks docker.io, containerd and runc, without
    installing them): data, exec root and socket below ROOT; in a private mount namespace where /run
    and /var/lib are empty tmpfs and /etc is an overlay whose upper is ours (dockerd writes
    /etc/docker/key.json), and in a network namespace of its own (dockerd sets ip_forward, among
    others, when it may), so the host sees none of it. No bridge, no iptables, no forwarding;
    containers are only created, never started."""

    def __init__(self, root):
        self.root = root
        self.sock = os.path.join(root, "sock")
        self.exec_root = os.path.join(root, "exec")
        os.makedirs(os.path.join(root, "etc-up"))
        os.makedirs(os.path.join(root, "etc-work"))
        os.makedirs(os.path.join(root, "home"))
        self.env = dict(os.environ, PATH=f"{DOCKER_ROOT}/usr/bin:{DOCKER_ROOT}/usr/sbin:{os.environ.get('PATH', '')}",
                        HOME=os.path.join(root, "home"), DOCKER_CONFIG=os.path.join(root, "home", ".docker"))
        setup = ("mount -t tmpfs -o mode=0755 tmpfs /run && mount -t tmpfs -o mode=0755 tmpfs /var/lib && "
                 f"mount -t overlay overlay -o lowerdir=/etc,upperdir={root}/etc-up,workdir={root}/etc-work /etc && "
                 'exec "$@"')
        self.log = open(os.path.join(root, "dockerd.log"), "wb")
        # unshare without --fork execs: the pid we hold is dockerd's.
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--net", "--propagation", "private", "--", "sh", "-c", setup, "sh",
             "dockerd", "--data-root", os.path.join(root, "data"), "--exec-root", self.exec_root,
             "--pidfile", os.path.join(root, "pid"), "-H", f"unix://{self.sock}", "--iptables=false",
             "--ip6tables=false", "--ip-forward=false", "--bridge=none", "--ip-masq=false", "--userland-proxy=false"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, env=self.env)

    @staticmethod
    def available():
        return os.access(f"{DOCKER_ROOT}/usr/sbin/dockerd", os.X_OK)

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if self.cli("version").returncode == 0:
                return True
            time.sleep(0.5)
        return False

    def cli(self, *args, timeout=60):
        return subprocess.run(["docker", "-H", f"unix://{self.sock}", *args], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
                              env=self.env)

    def log_tail(self):
        with open(os.path.join(self.root, "dockerd.log"), "rb") as f:
            return f.read()[-600:].decode(errors="replace")

    def stop(self):
        # dockerd's own containerd: its pid, read before dockerd removes the file.
        containerd = None
        try:
            with open(os.path.join(self.exec_root, "containerd", "containerd.pid")) as f:
                containerd = int(f.read().strip())
        except (OSError, ValueError):
            pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()
        if containerd:
            try:  # only if it is still the containerd we started (its config is below our root)
                with open(f"/proc/{containerd}/cmdline", "rb") as f:
                    if self.exec_root.encode() in f.read():
                        os.kill(containerd, signal.SIGKILL)
            except OSError:
                pass
