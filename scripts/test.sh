#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Build and run the whole test suite, as CI does: a -Werror build with all suites (unit, integration,
# the differential test against kernel overlayfs), then an ASan+UBSan build with the same suites.
# Root is needed for the FUSE and overlayfs integration tests; in CI a skip counts as a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
        echo "test.sh: run as root (the integration tests mount FUSE and overlayfs)" >&2
        exit 1
fi
scripts/install-deps.sh
export SBX_TESTS_MUST_RUN=1

logs=()
run_suite() {
        local dir=$1 name=$2; shift 2
        logs+=("$dir/meson-logs/$name.json")
        meson test -C "$dir" --print-errorlogs --num-processes 2 --logbase "$name" "$@"
}

summary() {
        # One closing line over both builds, from meson's machine-readable logs.
        python3 - "$@" <<'PY'
import json, sys
passed = failed = skipped = 0
for path in sys.argv[1:]:
    with open(path) as f:
        for line in f:
            r = json.loads(line)["result"]
            if r in ("OK", "EXPECTEDFAIL"): passed += 1
            elif r == "SKIP": skipped += 1
            else: failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
}

rc=0
rm -rf build-ci build-asan build-clang
meson setup build-ci --werror -Dbuildtype=debugoptimized >/dev/null
ninja -C build-ci
# Every suite, the VM test (suite vm: a Debian 12 guest under qemu, a few minutes; the first run on a
# machine also builds its cached image) included: it runs here only, with the gcc build.
run_suite build-ci all || rc=1

# clang catches other warnings; its unit tests and fuzz corpus replays are quick.
# clang, with the libFuzzer targets: the protocol decoder is fuzzed for a bounded time (suite fuzz).
CC=clang meson setup build-clang --werror -Dbuildtype=debugoptimized -Dfuzz=true >/dev/null
ninja -C build-clang
run_suite build-clang clang-unit --suite unit --suite fuzz-regress --suite fuzz || rc=1

meson setup build-asan --werror -Dbuildtype=debug -Db_sanitize=address,undefined >/dev/null
ninja -C build-asan
# The FUSE server daemonizes (forks); leak checking stays on for the unit tests only.
# One differential-test seed under the sanitizers; the -Werror build above runs them all.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
run_suite build-asan asan-integration --suite integration --no-suite difftest --suite fuzz-regress || rc=1
run_suite build-asan asan-difftest unionfs-difftest-seed1 || rc=1
unset ASAN_OPTIONS
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 run_suite build-asan asan-unit --suite unit || rc=1

summary "${logs[@]}"
exit $rc
