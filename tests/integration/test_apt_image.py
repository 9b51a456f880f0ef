#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""apt-get update && apt-get install in a Debian image, as root inside with the default capabilities,
from a repository the test makes and serves itself; no internet, no mocks.

What it does:
- The image: Debian 12 minbase from tests/integration/apt-image-recipe.sh (mmdebstrap from the host's
  apt sources), a directory used as --image DIR, cached by tests/lib/image_cache.py in
  /var/cache/sandbox-tests/debian-apt-<hash of the recipe>/ (built when missing or when the recipe
  changed, under a lock; about a minute here the first time, then nothing).
- The repository: a package of the test's own, sbx-hello (a program, a directory, and a postinst that
  chowns and chmods it as packages do), built with dpkg-deb; a flat repository (Packages from
  dpkg-scanpackages) bound read-only at /repo and named in the sandbox's apt sources as
  "deb [trusted=yes] file:/repo ./".
- In a sandbox on that image (--net none: nothing else is reachable): apt-get update, apt-get install -y
  sbx-hello, run it, and look at what the postinst did. apt switches to its _apt user for its
  downloads (setgroups, setresgid, setresuid: CAP_SETGID, CAP_SETUID) and dpkg chowns what it unpacks
  (CAP_CHOWN, CAP_FOWNER, CAP_DAC_OVERRIDE for root's files of other owners).
- The same with --cap-drop ALL (the old behaviour) fails, and says why.

Contract: exit 0 all passed, 1 some failed, 77 skipped (not root, no /dev/fuse, no mmdebstrap to build a
missing image, no dpkg-deb/dpkg-scanpackages) unless SBX_TESTS_MUST_RUN=1, which turns a skip into a
failure.
"""

import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import image_cache  # noqa: E402
import sandbox_fixture as sf  # noqa: E402

RECIPE = os.path.join(HERE, "apt-image-recipe.sh")
IMAGE_NAME = "debian-apt"
# Measured here: the image builds in about 60 s (mmdebstrap, minbase, from the host's mirror).
IMAGE_BUILD_TIMEOUT = 600

POSTINST = """#!/bin/sh
set -e
if [ "$1" = configure ]; then
        chown nobody:nogroup /var/lib/sbx-hello/state
        chmod 0750 /var/lib/sbx-hello/state
        echo configured > /var/lib/sbx-hello/state/marker
        chown nobody:nogroup /var/lib/sbx-hello/state/marker
fi
"""


def image():
    d = image_cache.cached(IMAGE_NAME, RECIPE, ("root/usr/bin/apt-get",))
    if d:
        return os.path.join(d, "root")
    if not shutil.which("mmdebstrap"):
        raise sf.Skip("no mmdebstrap to build the Debian image (scripts/install-deps.sh installs it)")
    d, took = image_cache.ensure(IMAGE_NAME, RECIPE, ("root/usr/bin/apt-get",), IMAGE_BUILD_TIMEOUT,
                                 IMAGE_BUILD_TIMEOUT + 60)
    if took is not None:
        print(f"# built the Debian image in {took:.0f} s")
    return os.path.join(d, "root")


def make_repo(env):
    for tool in ("dpkg-deb", "dpkg-scanpackages"):
        if not shutil.which(tool):
            raise sf.Skip(f"no {tool} (package dpkg-dev; scripts/install-deps.sh installs it)")
    pkg = env.mkdir("pkg")
    env.write("pkg/DEBIAN/control", "Package: sbx-hello\nVersion: 1.0\nArchitecture: all\n"
              "Maintainer: sandbox tests <tests@example.invalid>\nDescription: the apt test's package\n")
    env.write("pkg/DEBIAN/postinst", POSTINST, mode=0o755)
    env.write("pkg/usr/bin/sbx-hello", "#!/bin/sh\necho hello from sbx-hello\n", mode=0o755)
    env.mkdir("pkg", "var", "lib", "sbx-hello", "state")
    repo = env.mkdir("repo")
    p = subprocess.run(["dpkg-deb", "--root-owner-group", "--build", pkg, os.path.join(repo, "sbx-hello_1.0_all.deb")],
                       capture_output=True, text=True, timeout=60)
    sf.eq(p.returncode, 0, f"dpkg-deb --build: {p.stderr}")
    with open(os.path.join(repo, "Packages"), "w") as f:
        p = subprocess.run(["dpkg-scanpackages", "--multiversion", ".", "/dev/null"], cwd=repo, stdout=f,
                           stderr=subprocess.PIPE, text=True, timeout=60)
    sf.eq(p.returncode, 0, f"dpkg-scanpackages: {p.stderr}")
    return repo


SCRIPT = """set -e
echo 'deb [trusted=yes] file:/repo ./' > /etc/apt/sources.list.d/test.list
apt-get update
apt-get install -y --no-install-recommends sbx-hello
sbx-hello
stat -c 'state=%U:%G %a' /var/lib/sbx-hello/state
stat -c 'marker=%U:%G' /var/lib/sbx-hello/state/marker
dpkg-query -W -f='installed=${Status}\\n' sbx-hello
"""


@sf.timeout(IMAGE_BUILD_TIMEOUT + 240)
def test_apt_install(env):
    root = image()
    repo = make_repo(env)
    args = ["--image", root, "--bind", f"{repo}:/repo:ro", "--net", "none"]
    r = env.run(args + ["sh", "-c", SCRIPT], probe=False, timeout=180)
    sf.eq(r.returncode, 0, f"apt-get update && apt-get install in the Debian image: {r}")
    kv = r.kv()
    sf.check("hello from sbx-hello" in r.stdout, f"the installed program: {r.stdout!r}")
    sf.eq((kv.get("state"), kv.get("marker"), kv.get("installed")),
          ("nobody:nogroup 750", "nobody:nogroup", "install ok installed"), "what the package's postinst did")
    # The image is shared and read-only: the installation stayed in the sandbox's upper.
    sf.check(not os.path.exists(os.path.join(root, "usr", "bin", "sbx-hello")), "the install reached the image")


@sf.timeout(IMAGE_BUILD_TIMEOUT + 240)
def test_apt_without_capabilities(env):
    root = image()
    repo = make_repo(env)
    args = ["--image", root, "--bind", f"{repo}:/repo:ro", "--net", "none", "--cap-drop", "ALL"]
    r = env.run(args + ["sh", "-c", SCRIPT], probe=False, timeout=180)
    sf.check(r.returncode != 0, f"apt-get with --cap-drop ALL succeeded: {r}")
    out = r.stdout + r.stderr
    # apt's methods switch to _apt: setgroups() is the first step and needs CAP_SETGID
    sf.check("setgroups" in out and "Operation not permitted" in out, f"why apt failed: {out[-1500:]!r}")


if __name__ == "__main__":
    sf.main()
