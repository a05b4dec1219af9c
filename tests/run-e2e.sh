#!/usr/bin/env bash
# tests/run-e2e.sh — runs every tests/e2e/*.sh (each in its own process),
# prints a summary, and exits non-zero if any of them failed or if anything
# was left behind (mounts, processes, cgroups, temp dirs).
#
#   RUNTIME=$(command -v runc) bash tests/run-e2e.sh           # validate the harness against runc
#   bash tests/run-e2e.sh                                     # target/nvidia-runtime (hack/build)
#   bash tests/run-e2e.sh direct docker                       # only some files
#   E2E_FILTER=exec bash tests/run-e2e.sh direct              # only some test functions
#   bash tests/run-e2e.sh --cgroup2-view direct limits          # on cgroup v2 (see below)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# --cgroup2-view: run the files as on a cgroup v2 host. On a v1 or hybrid host they run in a
# private mount namespace whose /sys/fs/cgroup is the kernel's unified hierarchy (the same
# one a hybrid host mounts at /sys/fs/cgroup/unified), from a cgroup of their own below its
# root, as a shell on a v2 host is. The runtime then takes its cgroup v2 paths for real:
# cgroup creation, clone3(CLONE_INTO_CGROUP), BPF device rules, cgroup.freeze, removal. Only
# controllers still bound to v1 (memory, pids, cpu… on a hybrid host) are missing; the
# checks that need one say so and are skipped.
if [[ ${1:-} == --cgroup2-view ]]; then
    shift
    if [[ ! -f /sys/fs/cgroup/cgroup.controllers && -z ${_E2E_CGROUP2_VIEW:-} ]]; then
        [[ $EUID == 0 ]] || { echo "run-e2e: needs root" >&2; exit 2; }
        export _E2E_CGROUP2_VIEW=1
        exec unshare --mount --propagation private bash -c '
            set -e
            umount -l /sys/fs/cgroup
            mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 /sys/fs/cgroup
            caller=/sys/fs/cgroup/nvrt-e2e-caller.$$
            mkdir "$caller"
            echo $$ >"$caller/cgroup.procs"
            set +e
            bash "$0" "$@"
            rc=$?
            echo $$ >/sys/fs/cgroup/cgroup.procs
            rmdir "$caller" || rc=1
            exit $rc' "${BASH_SOURCE[0]}" --cgroup2-view "$@"
    fi
    echo "cgroup v2 view: /sys/fs/cgroup is the unified hierarchy; controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
fi
# resolved: target/nvidia-runtime is hack/build's link to the binary it built
export RUNTIME="$(readlink -f "${RUNTIME:-$REPO/target/nvidia-runtime}")"
FILE_TIMEOUT="${E2E_FILE_TIMEOUT:-900}"

[[ $EUID == 0 ]] || { echo "run-e2e: needs root" >&2; exit 2; }
if ! [[ -x $RUNTIME ]]; then
    echo "run-e2e: RUNTIME=$RUNTIME is not executable (hack/build, or RUNTIME=\$(command -v runc))" >&2
    exit 2
fi
case $RUNTIME in /*) ;; *) RUNTIME=$(cd "$(dirname "$RUNTIME")" && pwd)/$(basename "$RUNTIME") ;; esac

files=()
if (($#)); then
    for n in "$@"; do files+=("$REPO/tests/e2e/${n%.sh}.sh"); done
else
    files=("$REPO"/tests/e2e/*.sh)
fi

echo "runtime: $RUNTIME"
"$RUNTIME" --version 2>&1 | sed 's/^/  /' || true

# Every script makes its temp dir under RUN_DIR and lists its name in
# RUN_DIR/runs.list; the leak check below looks only at those.
RUN_DIR=$(mktemp -d /tmp/nvrt-e2e-run.XXXXXX)
chmod 755 "$RUN_DIR"
: >"$RUN_DIR/runs.list"
export E2E_TMPDIR=$RUN_DIR

declare -A result
declare -A took
failed=0
# Every check of every file counts (each file's e2e_finish appends "passed failed" to
# E2E_COUNTS); a file that ends without counting, or fails with no failed check, adds one
# failed check, so a crash or a timeout can never look like fewer checks.
export E2E_COUNTS
E2E_COUNTS=$(mktemp /tmp/nvrt-e2e-counts.XXXXXX)
checks_passed=0
checks_failed=0
for f in "${files[@]}"; do
    name=$(basename "$f" .sh)
    echo
    echo "################ $name"
    start=$SECONDS
    : >"$E2E_COUNTS"
    set +e
    timeout -k 20 "$FILE_TIMEOUT" bash "$f"
    rc=$?
    set -e
    read -r np nf <"$E2E_COUNTS" || true
    checks_passed=$((checks_passed + ${np:-0}))
    checks_failed=$((checks_failed + ${nf:-0}))
    if [[ $rc != 0 && ${nf:-0} == 0 ]]; then checks_failed=$((checks_failed + 1)); fi
    np="" nf=""
    took[$name]=$((SECONDS - start))
    if [[ $rc == 0 ]]; then result[$name]=PASS
    elif [[ $rc == 124 || $rc == 137 ]]; then result[$name]="FAIL (timed out after ${FILE_TIMEOUT}s)"; failed=1
    else result[$name]="FAIL (rc $rc)"; failed=1; fi
done

# Leak check: nothing of ours may survive the scripts' cleanup.
leaks=()
mapfile -t runs <"$RUN_DIR/runs.list"
if [[ -z ${E2E_KEEP_TMP:-} ]]; then
    for d in "$RUN_DIR"/*; do
        [[ -e $d && $d != "$RUN_DIR/runs.list" ]] && leaks+=("temp dir left: $d")
    done
fi
while read -r m; do
    [[ -n $m ]] && leaks+=("mount left: $m")
done < <(awk -v d="$RUN_DIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo)
for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [[ $pid == "$$" ]] && continue
    args=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline" || true)
    if [[ $args == *"$RUN_DIR/"* ]]; then
        leaks+=("process left: $pid $args")
        continue
    fi
    for r in "${runs[@]}"; do
        if grep -qF "/$r/" "$p/cgroup" 2>/dev/null; then leaks+=("process left in cgroup /$r: $pid $args"); break; fi
    done
done
for r in "${runs[@]}"; do
    for c in /sys/fs/cgroup/*/"$r" /sys/fs/cgroup/"$r"; do
        [[ -e $c ]] && leaks+=("cgroup left: $c")
    done
done
if ((${#leaks[@]} == 0)) && [[ -z ${E2E_KEEP_TMP:-} ]]; then
    rm -rf "$RUN_DIR"
fi

echo
echo "================ e2e summary (RUNTIME=$RUNTIME)"
for f in "${files[@]}"; do
    name=$(basename "$f" .sh)
    printf '  %-12s %-40s %4ss\n' "$name" "${result[$name]}" "${took[$name]}"
done
if ((${#leaks[@]})); then
    checks_failed=$((checks_failed + 1))
    echo "  leak check   FAIL"
    printf '    %s\n' "${leaks[@]}"
    failed=1
else
    checks_passed=$((checks_passed + 1))
    echo "  leak check   PASS (no mounts, processes, cgroups or temp dirs left)"
fi
rm -f "$E2E_COUNTS"
echo "e2e checks: $checks_passed passed, $checks_failed failed"
[[ -z ${E2E_TOTALS:-} ]] || echo "$checks_passed $checks_failed" >"$E2E_TOTALS"
exit "$failed"
