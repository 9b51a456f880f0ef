#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The bash completions (completions/) against the tools' own --help, so that the two stay in step:
every option each tool's --help (and each command's --help) lists is offered where it applies, and
nothing else is (besides -h/--help); every command of a "Commands:" section is offered; every -o option
of sandbox-unionfs. Then a few completions driven as bash drives them (COMP_WORDS, COMP_CWORD, with the
words split at ':' and '=' as COMP_WORDBREAKS splits them): option values, the command after the
options, files after it, `kill` offering nothing when no daemon answers, and sandbox-oci's container ids
from a --root state directory of the test's own.

Runs as any user, with bash and the built tools (TAP; exit 77 without bash or the tools unless
SBX_TESTS_MUST_RUN=1)."""

import atexit
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.normpath(os.path.join(HERE, "..", ".."))
COMPLETIONS = os.environ.get("SANDBOX_COMPLETIONS") or os.path.join(SRC, "completions")
BUILD = os.environ.get("SANDBOX_BUILD") or os.path.join(SRC, "build")
TOOLS = {
    "sandbox-run": os.environ.get("SANDBOX_RUN") or os.path.join(BUILD, "tools", "sandbox-run"),
    "sandboxctl": os.environ.get("SANDBOXCTL") or os.path.join(BUILD, "tools", "sandboxctl"),
    "sandboxd": os.environ.get("SANDBOXD") or os.path.join(BUILD, "sandboxd", "sandboxd"),
    "sandbox-layer": os.environ.get("SANDBOX_LAYER") or os.path.join(BUILD, "tools", "sandbox-layer"),
    "sandbox-image": os.environ.get("SANDBOX_IMAGE") or os.path.join(BUILD, "tools", "sandbox-image"),
    "sandbox-unionfs": os.environ.get("SANDBOX_UNIONFS") or os.path.join(BUILD, "unionfs", "sandbox-unionfs"),
    "sandbox-oci": os.environ.get("SANDBOX_OCI") or os.path.join(BUILD, "oci", "sandbox-oci"),
}
BASH = shutil.which("bash")
ALWAYS = {"-h", "--help"}
OPT_RE = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")


# --------------------------------------------------------------------------------------------------
# what --help says

def help_text(tool, *args):
    argv = [TOOLS[tool]]
    if tool == "sandboxctl":
        argv += ["--socket", "/nonexistent/sandboxd.sock"]   # `version --help` would otherwise connect
    r = subprocess.run(argv + list(args) + ["--help"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=20)
    return r.stdout if "Usage:" in r.stdout else ""


def sections(text):
    """(commands section lines, the other lines)."""
    commands, other, in_commands = [], [], False
    for line in text.splitlines():
        if line.startswith("Commands:"):
            in_commands = True
            continue
        if in_commands and not line.strip():
            in_commands = False
        (commands if in_commands else other).append(line)
    return commands, other


def option_lines_options(lines):
    """The options defined by lines whose first non-blank character is '-': the cluster of options that
    starts the line ("-e, --env", "-h --help", "-t|--time"; not the prose after them)."""
    opts = set()
    for line in lines:
        m = re.match(r"^\s*(--?[A-Za-z][\w-]*(?:(?:,\s*|\s+|\|)--?[A-Za-z][\w-]*)*)", line)
        if m:
            opts.update(OPT_RE.findall(m.group(1)))
    return opts


def usage_options(text, tool, after=None, before=None):
    """Options in the Usage lines: those after the word AFTER (the command) if given, those before the
    word BEFORE ("COMMAND") if given."""
    opts = set()
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("Usage:"):
            s = s[len("Usage:"):]
        elif not line.startswith(" ") or not s.startswith(tool + " "):
            continue
        s = f" {s} "
        if after is not None:
            if f" {after} " not in s:
                continue
            s = s.split(f" {after} ", 1)[1]
        if before is not None:
            s = s.split(f" {before} ", 1)[0]
        opts.update(OPT_RE.findall(s))
    return opts


def commands_of(text):
    """{command: options on its line} of a Commands: section. A deeper indented line that starts with '[' or
    '-' continues the synopsis of the command above it (sandbox-oci's exec)."""
    cmds, _ = sections(text)
    out, last = {}, None
    for line in cmds:
        m = re.match(r"^  ([a-z][a-z-]*)\b(.*)$", line)
        if m:   # a command may have several lines (exec, exec --in)
            last = m.group(1)
            out.setdefault(last, set()).update(OPT_RE.findall(re.split(r"\s{2,}", m.group(2).strip())[0]))
        elif last and re.match(r"^   +[\[-]", line):
            out[last].update(OPT_RE.findall(re.split(r"\s{2,}", line.strip())[0]))
    return out


def expected():
    """[(tool, words before the option being completed, options --help lists)], [(tool, commands)]."""
    cases, command_sets = [], []
    for tool in TOOLS:
        text = help_text(tool)
        if not text:
            raise AssertionError(f"{tool} --help printed no usage")
        cmds = commands_of(text)
        _, other = sections(text)
        top = option_lines_options(other) | usage_options(text, tool, before="COMMAND")
        if cmds:
            command_sets.append((tool, set(cmds)))
        cases.append((tool, [], top))
        for cmd, on_line in cmds.items():
            sub = help_text(tool, cmd)
            opts = set(on_line)
            if sub:
                opts |= option_lines_options(sub.splitlines()) | usage_options(sub, tool, after=cmd)
            cases.append((tool, [cmd], opts))
    return cases, command_sets


def unionfs_mount_options():
    text = help_text("sandbox-unionfs")
    opts, on = set(), False
    for line in text.splitlines():
        if line.startswith("Options (-o"):
            on = True
            continue
        if on and not line.strip():
            break
        if on and line.strip().startswith("Any ") and "(" in line:
            # "Any FUSE mount option (allow_other, fsname=, ...)": those named.
            opts.update(i.strip() for i in line[line.index("(") + 1:line.rindex(")")].split(",")
                        if i.strip() and i.strip() != "...")
        elif on and line.startswith("  "):
            left = re.split(r"\s{2,}", line.strip())[0]
            for item in left.split(","):
                item = item.strip()
                if not item:
                    continue
                opts.add(item[:item.index("=") + 1] if "=" in item and not item.endswith("=0") else item)
    return opts


# --------------------------------------------------------------------------------------------------
# what the completion offers

_TOOL_DIR = []


def tool_dir():
    """A directory of links named as the tools, to the binaries under test."""
    if not _TOOL_DIR:
        d = tempfile.mkdtemp(prefix="sbx-completion-")
        atexit.register(shutil.rmtree, d, True)
        for name, path in TOOLS.items():
            os.symlink(os.path.abspath(path), os.path.join(d, name))
        _TOOL_DIR.append(d)
    return _TOOL_DIR[0]


def complete(tool, words, env=None):
    """COMPREPLY for the command line WORDS (the last one being completed), as bash's programmable
    completion calls the function `complete -p TOOL` names."""
    script = r'''
set -u
source "$1/$2" || exit 3
spec=$(complete -p "$2") || exit 4
fn=$(sed -n 's/.*-F \([^ ]*\) .*/\1/p' <<<"$spec")
shift 2
COMP_WORDS=("$@")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_LINE="${COMP_WORDS[*]}"
COMP_POINT=${#COMP_LINE}
"$fn" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
printf '%s\n' "${COMPREPLY[@]}"
'''
    if env is None:
        env = dict(os.environ)
    # The tools under test come first on PATH: a completion may ask its tool (sandboxctl --help).
    env["PATH"] = tool_dir() + ":" + env.get("PATH", "/usr/bin:/bin")
    r = subprocess.run([BASH, "--norc", "--noprofile", "-c", script, "drive", COMPLETIONS, tool] + list(words),
                       capture_output=True, text=True, timeout=20, env=env)
    if r.returncode != 0:
        raise AssertionError(f"completing {words} with completions/{tool} failed ({r.returncode}): {r.stderr}")
    return [x for x in r.stdout.split("\n") if x]


# --------------------------------------------------------------------------------------------------
# tests

def test_options_match_help():
    cases, _ = expected()
    problems = []
    for tool, before, opts in cases:
        got = set(complete(tool, [tool] + before + ["-"]))
        missing = opts - got
        extra = got - opts - ALWAYS - ({"--version"} if not before else set())
        if missing:
            problems.append(f"{tool} {' '.join(before)}: --help lists {sorted(missing)}, the completion lacks them")
        if extra:
            problems.append(f"{tool} {' '.join(before)}: the completion offers {sorted(extra)}, --help has no such option")
    assert not problems, "\n".join(problems)
    return f"{len(cases)} option lists"


def test_commands_match_help():
    _, command_sets = expected()
    problems = []
    for tool, cmds in command_sets:
        got = set(complete(tool, [tool, ""]))
        if got != cmds:
            problems.append(f"{tool}: --help's commands {sorted(cmds)}, the completion's {sorted(got)}")
    assert not problems, "\n".join(problems)
    return f"{len(command_sets)} tools with commands"


def test_unionfs_mount_options():
    want = unionfs_mount_options()
    got = set(complete("sandbox-unionfs", ["sandbox-unionfs", "-o", ""]))
    assert want and got == want, f"-o options: --help {sorted(want)}, completion {sorted(got)}"


def eq(got, want, what):
    assert got == want, f"{what}: expected {want!r}, got {got!r}"


def test_values():
    eq(complete("sandbox-run", ["sandbox-run", "--net", ""]), ["none", "bridge", "isolated", "host"], "--net")
    eq(complete("sandbox-run", ["sandbox-run", "--memory", "un"]), ["unlimited"], "--memory")
    eq(complete("sandbox-run", ["sandbox-run", "--cap-drop", "NET_B"]), ["NET_BIND_SERVICE", "NET_BROADCAST"],
       "--cap-drop")
    eq(complete("sandbox-run", ["sandbox-run", "--rlimit", "nof"]), ["nofile="], "--rlimit")
    eq(complete("sandboxctl", ["sandboxctl", "exec", "--seccomp", "unc"]), ["unconfined"], "exec --seccomp")
    eq(complete("sandbox-layer", ["sandbox-layer", "export", "--compress", "z"]), ["zstd"], "export --compress")
    eq(complete("sandboxctl", ["sandboxctl", "kill", "0123456789abcdef", "KI"]), ["KILL"], "kill's signal")
    eq(complete("sandbox-unionfs", ["sandbox-unionfs", "-o", "ro,meta"]), ["ro,metacopy="], "-o after a comma")
    eq(complete("sandbox-unionfs", ["sandbox-unionfs", "-o", "lowerdir", "=", "/a,meta"]), ["/a,metacopy="],
       "-o after lowerdir=/a,")


def test_word_breaks():
    # bash splits "--net=br" into "--net" "=" "br" and replaces only the last piece.
    eq(complete("sandbox-run", ["sandbox-run", "--net", "=", "br"]), ["bridge"], "--net=br")
    eq(complete("sandboxctl", ["sandboxctl", "exec", "--bind", "/tmp", ":", "/x", ":", "r"]), ["ro", "rw", "ro,idmap"],
       "--bind SRC:DST:r")
    eq(complete("sandbox-unionfs", ["sandbox-unionfs", "-o", "metacopy", "=", "of"]), ["off"], "-o metacopy=of")
    eq(complete("sandbox-run", ["sandbox-run", "--net", "="]), ["=none", "=bridge", "=isolated", "=host"],
       "--net= (the '=' is the word bash replaces)")
    eq(complete("sandbox-run", ["sandbox-run", "--stats", "f"]), ["fd:"], "--stats fd:")


def test_positions():
    # Options, then the command (from PATH), then the command's arguments (files), also after --.
    env = dict(os.environ, PATH="/usr/bin:/bin")
    got = complete("sandbox-run", ["sandbox-run", "--memory", "1g", "-t", "trueX"], env=env)
    eq(got, [], "no command named trueX")
    got = complete("sandbox-run", ["sandbox-run", "--memory", "1g", "-t", "tru"], env=env)
    assert "true" in got and "--memory" not in got, f"the command after the options: {got}"
    got = complete("sandboxctl", ["sandboxctl", "--socket", "/x", "exec", "--", "ls", "-"])
    eq(got, [], "an option of the command, not of exec")
    got = complete("sandboxctl", ["sandboxctl", "exec", "sh", "/et"])
    eq(got, ["/etc"], "a file argument of the command")
    got = complete("sandboxctl", ["sandboxctl", "--socket", "/nonexistent.sock", "kill", ""])
    eq(got, [], "kill's ids when no daemon answers")
    got = complete("sandbox-image", ["sandbox-image", "--store", "/tmp", "pu"])
    eq(got, ["pull"], "the command after --store DIR")


def test_oci():
    # Container ids are the directories of the --root state directory; values, signals, files by position.
    root = tempfile.mkdtemp(prefix="sbx-completion-oci-")
    try:
        for d in ("web-1", "db.2", ".hidden"):
            os.mkdir(os.path.join(root, d))
        open(os.path.join(root, "notes"), "w").close()
        os.symlink("web-1", os.path.join(root, "link"))

        def oci(*words):
            return complete("sandbox-oci", ["sandbox-oci"] + list(words))
        eq(oci("--root", root, "st"), ["start", "state"], "the command after --root DIR")
        eq(oci("--root", root, "start", ""), ["db.2", "web-1"], "start's ids from --root")
        eq(oci("--root", "=", root, "kill", "--all", "w"), ["web-1"], "kill's ids after --root=DIR, --all")
        eq(oci("--root", "/nonexistent/sbx-oci", "delete", ""), [], "ids of a missing state directory")
        eq(oci("--root", root, "create", ""), [], "create's id is a new one")
        eq(oci("--root", root, "kill", "web-1", "KI"), ["KILL"], "kill's signal")
        eq(oci("--root", root, "kill", "web-1", "SIGTE"), ["SIGTERM"], "kill's signal with SIG")
        eq(oci("--root", root, "exec", "--cwd", "/x", "-e", "A=1", "d"), ["db.2"], "exec's id after values")
        eq(oci("--root", root, "exec", "web-1", "-"), [], "exec: the command's arguments, not options")
        eq(oci("ps", "--format", "j"), ["json"], "ps --format")
        eq(oci("--log-format", "=", "t"), ["text"], "--log-format=t")
        eq(oci("create", "--bundle", os.path.join(root, "n")), [], "--bundle: directories only")
        eq(oci("create", "--bundle", os.path.join(root, "w")), [os.path.join(root, "web-1")], "--bundle DIR")
        eq(oci("create", "--pid-file", os.path.join(root, "n")), [os.path.join(root, "notes")], "--pid-file")
        eq(oci("exec", "--process", os.path.join(root, "n")), [os.path.join(root, "notes")], "--process")
        eq(oci("--log", os.path.join(root, "n")), [os.path.join(root, "notes")], "--log FILE")
    finally:
        shutil.rmtree(root, True)


def main():
    must = os.environ.get("SBX_TESTS_MUST_RUN") == "1"
    tests = [(n, f) for n, f in globals().items() if n.startswith("test_") and callable(f)]
    print(f"1..{len(tests)}")
    why = None if BASH else "no bash"
    for tool, path in TOOLS.items():
        if not why and not os.access(path, os.X_OK):
            why = f"no {tool} at {path} (set SANDBOX_BUILD or the tool's variable)"
    if why:
        for i, (n, _) in enumerate(tests, 1):
            print(f"{'not ok' if must else 'ok'} {i} - {n[5:]} # SKIP {why}")
        sys.exit(1 if must else 77)
    failed = 0
    for i, (n, f) in enumerate(tests, 1):
        try:
            note = f()
            print(f"ok {i} - {n[5:]}" + (f" ({note})" if note else ""))
        except AssertionError as e:
            failed += 1
            print(f"not ok {i} - {n[5:]}")
            for line in str(e).splitlines():
                print(f"#   {line}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
