#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Security of sandbox-unionfs against hostile layers and racing clients. The kernel follows symlinks
itself while walking the merged view (so open(MNT/link/x, O_CREAT) with link -> /elsewhere creates in
/elsewhere: that is the kernel's walk, the same as kernel overlayfs, not an escape). What must never
happen is the server itself following a symlink in a layer: writing, creating or setting xattrs outside
its layers, or copying data from outside into the upper. Every test has its own "outside" directory
(outside all layers) and asserts it is untouched, or touched exactly as kernel overlayfs touches its own."""

import ast
import errno
import os
import stat
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import unionfs_fixture as uf  # noqa: E402

SECRET = b"OUTSIDE-SECRET-DO-NOT-COPY"


def make_outside(env, name="outside"):
    out = env.mkdir(name)
    uf.write(os.path.join(out, "target"), SECRET, mode=0o644)
    uf.write(os.path.join(out, "f"), SECRET + b"-f", mode=0o644)
    os.mkdir(os.path.join(out, "sub"))
    os.utime(os.path.join(out, "target"), ns=(10**18, 10**18))
    return out


def upper_files_containing_secret(upper):
    bad = []
    for dp, dns, fns in os.walk(upper):
        for n in fns:
            p = os.path.join(dp, n)
            if stat.S_ISREG(os.lstat(p).st_mode) and SECRET in uf.read(p):
                bad.append(os.path.relpath(p, upper))
    return bad


def test_symlink_copyup_stays_symlink(env):
    res = {}
    for kind in ("kernel", "union"):
        outside = make_outside(env, f"outside-{kind}")
        lay = uf.layout(env, kind)
        lo = lay["lowers"][0]
        os.makedirs(lo + "/sub")
        os.symlink(outside + "/target", lo + "/abs")
        os.symlink("../../../" + os.path.basename(outside) + "/target", lo + "/sub/rel")
        os.symlink(outside + "/sub", lo + "/absdir")
        before = uf.snapshot(outside)
        m = env.union(lay["lowers"], lay["upper"], lay["work"], lay["mnt"]) if kind == "union" else \
            env.kernel_overlay(lay["lowers"], lay["upper"], lay["work"], lay["mnt"])
        out = []
        for n in ("abs", "sub/rel", "absdir"):
            out.append(uf.errname(os.lchown, m.p(n), 4321, 4321))
            out.append(uf.errname(os.utime, m.p(n), ns=(5 * 10**17, 5 * 10**17), follow_symlinks=False))
        out.append(uf.errname(os.rename, m.p("absdir"), m.p("absdir2")))
        for n in ("abs", "sub/rel", "absdir2"):
            up = os.path.join(m.upper, n)
            out.append((n, os.readlink(m.p(n)) == os.readlink(os.path.join(lo, n.replace("absdir2", "absdir"))),
                        stat.S_ISLNK(os.lstat(up).st_mode) if os.path.lexists(up) else "not in upper",
                        os.lstat(m.p(n)).st_uid, os.lstat(m.p(n)).st_mtime_ns))
        out.append(uf.read(m.p("abs")) == SECRET)  # reading through it: the kernel's walk, allowed
        out.append(uf.snapshot(outside) == before)
        res[kind] = out
    uf.oracle(res["kernel"], res["union"],
              ["OK"] * 7 + [("abs", True, True, 4321, 5 * 10**17), ("sub/rel", True, True, 4321, 5 * 10**17),
                            ("absdir2", True, True, 4321, 5 * 10**17), True, True],
              "copy-up of symlinks (lchown, lutimes, rename): [results, (name, same target, symlink in upper, "
              "uid, mtime), read through, outside untouched]")


def _swap_after_lookup(env, kind):
    outside = make_outside(env, f"outside-{kind}")
    before = uf.snapshot(outside)
    lay = uf.layout(env, kind)
    lo = lay["lowers"][0]
    stash = env.mkdir(f"stash-{kind}")
    for n in ("wfile", "cfile", "tfile"):
        uf.write(f"{lo}/{n}", f"lower-{n}")
    os.makedirs(lo + "/d")
    uf.write(lo + "/d/f", "lower-d-f")
    m = env.union(lay["lowers"], lay["upper"], lay["work"], lay["mnt"]) if kind == "union" else \
        env.kernel_overlay(lay["lowers"], lay["upper"], lay["work"], lay["mnt"])
    # the kernel and the server look everything up and cache it
    for n in ("wfile", "cfile", "tfile", "d", "d/f"):
        os.stat(m.p(n))
    uf.read(m.p("d/f"))
    # the hostile layer swaps the files for symlinks pointing outside
    for n in ("wfile", "cfile", "tfile"):
        os.rename(f"{lo}/{n}", f"{stash}/{n}")
        os.symlink(outside + "/target", f"{lo}/{n}")
    os.rename(lo + "/d", stash + "/d")
    os.symlink(outside, lo + "/d")
    results = {
        "append": uf.errname(lambda: open(m.p("wfile"), "a").write("PWNED")),
        "chmod": uf.errname(os.chmod, m.p("cfile"), 0o600),
        "truncate": uf.errname(os.truncate, m.p("tfile"), 2),
        "append in swapped dir": uf.errname(lambda: open(m.p("d/f"), "a").write("PWNED")),
        "create in swapped dir": uf.errname(lambda: open(m.p("d/new"), "w").write("PWNED")),
        "mkdir in swapped dir": uf.errname(os.mkdir, m.p("d/newdir")),
        "setxattr in swapped dir": uf.errname(os.setxattr, m.p("d/f"), "user.pwned", b"1"),
    }
    after = uf.snapshot(outside)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    return {"outside changed": changed, "outside data copied into the upper": upper_files_containing_secret(m.upper),
            "stash (old lower files) changed": sorted(os.listdir(stash)) != ["cfile", "d", "tfile", "wfile"] or
            uf.read(stash + "/d/f") != b"lower-d-f"}, results


def test_lower_replaced_by_symlink_after_lookup(env):
    """Layers must not change under a mounted union, but a hostile one may: even then the server must not
    follow the swapped-in symlinks (the kernel keeps using the dentries it looked up)."""
    k, kres = _swap_after_lookup(env, "kernel")
    u, ures = _swap_after_lookup(env, "union")
    print(f"# operation results after the swap: kernel {kres}, union {ures}")
    uf.oracle(k, u, {"outside changed": [], "outside data copied into the upper": [],
                     "stash (old lower files) changed": False},
              f"swapping lower entries for symlinks after lookup (union results {ures})")


def _creator(ch, dfd, deadline):
    ok, errs, n = 0, {}, 0
    while time.monotonic() < deadline:
        n += 1
        try:
            fd = os.open(f"f{n}", os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644, dir_fd=dfd)
            os.write(fd, b"x")
            os.close(fd)
            ok += 1
        except OSError as e:
            errs[errno.errorcode[e.errno]] = errs.get(errno.errorcode[e.errno], 0) + 1
    os.close(dfd)
    ch.send(repr((ok, errs)))


def _swapper(ch, mnt, name, outside, deadline):
    d, away = os.path.join(mnt, name), os.path.join(mnt, name + ".away")
    cycles, errs = 0, {}
    while time.monotonic() < deadline:
        try:
            os.rename(d, away)
            os.symlink(outside, d)
            os.unlink(d)
            os.rename(away, d)
            cycles += 1
        except OSError as e:
            errs[errno.errorcode[e.errno]] = errs.get(errno.errorcode[e.errno], 0) + 1
            # restore a consistent state
            if os.path.islink(d):
                os.unlink(d)
            if os.path.isdir(away) and not os.path.lexists(d):
                os.rename(away, d)
    ch.send(repr((cycles, errs)))


def race(env, m, name, outside, seconds=2.5):
    before = uf.snapshot(outside)
    dfd = os.open(m.p(name), os.O_RDONLY | os.O_DIRECTORY)  # held by the creator from the start
    deadline = time.monotonic() + seconds
    a = uf.Child(env, _creator, dfd, deadline)
    os.close(dfd)
    b = uf.Child(env, _swapper, m.mnt, name, outside, deadline)
    ok, aerrs = ast.literal_eval(a.recv(seconds + 30))
    cycles, berrs = ast.literal_eval(b.recv(seconds + 30))
    a.wait()
    b.wait()
    created_upper = [p for p in uf.tree(m.upper) if os.path.basename(p).startswith("f") and not p.endswith("/")]
    created_mnt = [n for n in os.listdir(m.p(name)) if n.startswith("f")]
    return {"outside_untouched": uf.snapshot(outside) == before,
            "outside_entries": sorted(os.listdir(outside)),
            "created_in_upper_equals_successes": (len(created_upper), ok),
            "all_under_dir": all(p.startswith(name + "/") for p in created_upper),
            "visible": len(created_mnt) == ok,
            "cycles": cycles > 20, "ok": ok > 20}, (ok, aerrs, cycles, berrs)


def _race_test(env, lower_dir):
    res, info = {}, {}
    for kind in ("kernel", "union"):
        outside = make_outside(env, f"outside-{kind}")
        lay = uf.layout(env, kind)
        if lower_dir:
            os.makedirs(lay["lowers"][0] + "/D")
            uf.write(lay["lowers"][0] + "/D/keep", "k")
        else:
            os.makedirs(lay["upper"] + "/D")
        m = env.union(lay["lowers"], lay["upper"], lay["work"], lay["mnt"]) if kind == "union" else \
            env.kernel_overlay(lay["lowers"], lay["upper"], lay["work"], lay["mnt"])
        res[kind], info[kind] = race(env, m, "D", outside)
        r = res[kind]
        r["created_in_upper_equals_successes"] = r["created_in_upper_equals_successes"][0] == \
            r["created_in_upper_equals_successes"][1]
    print(f"# (creates ok, errors, rename cycles, errors): {info}")
    uf.oracle(res["kernel"], res["union"],
              {"outside_untouched": True, "outside_entries": ["f", "sub", "target"],
               "created_in_upper_equals_successes": True, "all_under_dir": True, "visible": True,
               "cycles": True, "ok": True},
              f"openat(dirfd) racing rename+symlink swaps of the dir (details {info})")


@uf.timeout(60)
def test_rename_race_upper_dir(env):
    _race_test(env, lower_dir=False)


@uf.timeout(60)
def test_rename_race_lower_dir(env):
    _race_test(env, lower_dir=True)


def test_hostile_image_symlinks(env):
    res = {}
    for kind in ("kernel", "union"):
        outside = make_outside(env, f"outside-{kind}")
        ob = os.path.basename(outside)
        lay = uf.layout(env, kind)
        lo, up = lay["lowers"][0], lay["upper"]
        os.symlink("/etc", lo + "/lib")  # the classic: an absolute dir symlink in the image
        os.symlink(outside, lo + "/olib")
        # ../ chains that reach the outside dir both from the layer dir and from the mountpoint
        os.symlink(f"../../{ob}", lo + "/dotdot")
        os.makedirs(lo + "/dir")
        os.symlink(f"../../../{ob}/target", lo + "/dir/rel")
        os.symlink(outside + "/newfile", lo + "/dangling")
        os.makedirs(lo + "/shadowed/inner")  # a lower dir shadowed by a planted upper symlink
        uf.write(lo + "/shadowed/inner/x", "x")
        os.symlink(outside, up + "/shadowed")
        os.symlink(f"../../{ob}", up + "/updotdot")
        before = uf.snapshot(outside)
        m = env.union(lay["lowers"], lay["upper"], lay["work"], lay["mnt"]) if kind == "union" else \
            env.kernel_overlay(lay["lowers"], lay["upper"], lay["work"], lay["mnt"])
        out = {}
        out["read lib/passwd (kernel walk)"] = uf.value(uf.read, m.p("lib/passwd")) == uf.read("/etc/passwd")
        out["read olib/target"] = uf.value(uf.read, m.p("olib/target"))
        out["read dotdot/target"] = uf.value(uf.read, m.p("dotdot/target"))
        # operations on the links themselves: the server must act on the link, never through it
        ops = [
            ("lchown lib", lambda: os.lchown(m.p("lib"), 7, 7)),
            ("lutimes olib", lambda: os.utime(m.p("olib"), ns=(1, 1), follow_symlinks=False)),
            ("rename dotdot", lambda: os.rename(m.p("dotdot"), m.p("dotdot2"))),
            ("rename dir/rel", lambda: os.rename(m.p("dir/rel"), m.p("dir/rel2"))),
            ("rmdir olib", lambda: os.rmdir(m.p("olib"))),
            ("unlink olib", lambda: os.unlink(m.p("olib"))),
            ("mkdir olib (opaque over a whiteout)", lambda: os.mkdir(m.p("olib"))),
            ("create olib/new", lambda: uf.write(m.p("olib/new"), "inside")),
            ("rmdir shadowed", lambda: os.rmdir(m.p("shadowed"))),
            ("unlink shadowed", lambda: os.unlink(m.p("shadowed"))),
            ("mkdir shadowed", lambda: os.mkdir(m.p("shadowed"))),
            ("listing shadowed", lambda: os.listdir(m.p("shadowed"))),
            ("unlink updotdot", lambda: os.unlink(m.p("updotdot"))),
            ("rmdir dir/rel2", lambda: os.rmdir(m.p("dir/rel2"))),
            ("unlink dangling", lambda: os.unlink(m.p("dangling"))),
            ("mkdir dir/sub then rmdir dir", lambda: [os.mkdir(m.p("dir/sub")), os.unlink(m.p("dir/rel2")),
                                                      os.rmdir(m.p("dir/sub")), os.rmdir(m.p("dir"))] and None),
            ("mkdir dir again", lambda: os.mkdir(m.p("dir"))),
        ]
        for label, op in ops:
            out[label] = uf.value(op)
        out["outside untouched by link operations"] = uf.snapshot(outside) == before
        out["xattrs on outside dir"] = [x for x in os.listxattr(outside) if "overlay" in x or "fuse" in x]
        # now the kernel walks through the links: these may touch outside, exactly as kernel overlayfs does
        os.symlink(outside + "/kwalk", m.p("kwalk"))
        out["create through a dangling link (kernel walk)"] = uf.errname(uf.write, m.p("kwalk"), "via kernel walk")
        out["create under updotdot-like link (kernel walk)"] = uf.errname(
            uf.write, m.p("dotdot2/sub/created"), "via kernel walk")
        snap = uf.snapshot(outside)
        out["outside after kernel walks"] = sorted((k, v[5]) for k, v in snap.items() if k != ".")
        out["upper root listing"] = sorted(os.listdir(m.upper))
        res[kind] = out
    ok_ = "OK"
    uf.oracle(res["kernel"], res["union"], {
        "read lib/passwd (kernel walk)": True, "read olib/target": SECRET, "read dotdot/target": SECRET,
        "lchown lib": None, "lutimes olib": None, "rename dotdot": None, "rename dir/rel": None,
        "rmdir olib": "ENOTDIR", "unlink olib": None, "mkdir olib (opaque over a whiteout)": None,
        "create olib/new": None, "rmdir shadowed": "ENOTDIR", "unlink shadowed": None, "mkdir shadowed": None,
        "listing shadowed": [], "unlink updotdot": None, "rmdir dir/rel2": "ENOTDIR", "unlink dangling": None,
        "mkdir dir/sub then rmdir dir": None, "mkdir dir again": None,
        "outside untouched by link operations": True, "xattrs on outside dir": [],
        "create through a dangling link (kernel walk)": ok_, "create under updotdot-like link (kernel walk)": ok_,
        "outside after kernel walks": sorted([("f", SECRET + b"-f"), ("kwalk", b"via kernel walk"), ("sub", None),
                                              ("sub/created", b"via kernel walk"), ("target", SECRET)]),
        "upper root listing": sorted(["dangling", "dir", "dotdot", "dotdot2", "kwalk", "lib", "olib", "shadowed"]),
    }, "hostile image symlinks: {operation: result}")


if __name__ == "__main__":
    uf.main()
