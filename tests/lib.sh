# shellcheck shell=bash
# tests/lib.sh — helpers sourced by tests/e2e/*.sh.
#
# Provides: a tiny assertion library (pass/fail/assert_*/capture, per-test
# subshells, a summary and a non-zero exit when anything failed), busybox
# rootfs + OCI bundle builders, private dockerd / containerd daemons, and a
# cleanup trap that always stops daemons, kills leftover container processes
# and unmounts everything left under the test's temp dir.
#
# The runtime under test is $RUNTIME (default: $REPO/target/nvidia-runtime, made by hack/build).
# It must be runc-compatible, so the whole suite is validated against runc:
#     RUNTIME=$(command -v runc) bash tests/run-e2e.sh
#
# Environment knobs:
#   RUNTIME        runtime binary (absolute path)
#   E2E_TIMEOUT    seconds for every runtime/docker/ctr call (default 30)
#   E2E_FILTER     regex; only test functions whose name matches run
#   E2E_TEST_TIMEOUT seconds for one test function (default 180)
#   E2E_TMPDIR     parent of the per-script temp dir (default /tmp)
#   E2E_KEEP_TMP=1 keep the temp dir (logs, bundles) after the run
#   E2E_VERBOSE=1  print the output of passing checks too
#
# Usage in a test script:
#     source "$(dirname "$0")/../lib.sh"
#     e2e_init "$@"          # re-execs under a child-reaper, creates $TEST_TMP, installs the trap
#     test_foo() { capture rt state x; assert_rc 1; ... }
#     run_tests test_foo test_bar
#     e2e_finish             # prints the summary, exits 1 if any check failed

set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNTIME="${RUNTIME:-$REPO/target/nvidia-runtime}"
E2E_TIMEOUT="${E2E_TIMEOUT:-30}"
E2E_FILTER="${E2E_FILTER:-}"
export RUNTIME REPO

# Colour only on a terminal.
if [[ -t 1 ]]; then _C_RED=$'\e[31m' _C_GRN=$'\e[32m' _C_BLD=$'\e[1m' _C_OFF=$'\e[0m'
else _C_RED='' _C_GRN='' _C_BLD='' _C_OFF=''; fi

log()  { printf '%s\n' "$*" >&2; }
die()  { printf '%sFATAL%s: %s\n' "$_C_RED" "$_C_OFF" "$*" >&2; exit 2; }

# ---------------------------------------------------------------------------
# Packages: install only what is missing (fresh CI machines have nothing).
# need_cmd CMD PACKAGE
need_cmd() {
    local cmd=$1 pkg=${2:-$1}
    command -v "$cmd" >/dev/null 2>&1 && return 0
    log "installing $pkg (for $cmd)"
    if [[ -z "${_E2E_APT_UPDATED:-}" ]]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || true
        _E2E_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pkg" >&2
    command -v "$cmd" >/dev/null 2>&1 || die "$cmd still missing after installing $pkg"
}

# The busybox-static binary (a dynamically linked busybox would not run in a bare rootfs).
busybox_static() {
    local bb=/bin/busybox
    if ! [[ -x $bb ]] || ! file_is_static "$bb"; then
        log "installing busybox-static"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends busybox-static >&2
        file_is_static "$bb" || die "$bb is not a static binary"
    fi
    echo "$bb"
}
file_is_static() {
    # No PT_INTERP program header => static. Check with python (always present here).
    python3 - "$1" <<'EOF'
import sys, struct
with open(sys.argv[1], 'rb') as f:
    h = f.read(64)
    if h[:4] != b'\x7fELF' or h[4] != 2: sys.exit(1)
    phoff, = struct.unpack_from('<Q', h, 32); phentsize, phnum = struct.unpack_from('<HH', h, 54)
    f.seek(phoff)
    for _ in range(phnum):
        if struct.unpack('<I', f.read(phentsize)[:4])[0] == 3: sys.exit(1)  # PT_INTERP
sys.exit(0)
EOF
}

# ---------------------------------------------------------------------------
# Assertions. Each test function runs in its own subshell (so an unexpected
# error aborts only that test); results go to a file so the parent can count.

_E2E_RESULTS=""        # file with one line per check: "PASS\t..." / "FAIL\t..."
_E2E_CUR_TEST="(setup)"

_record() { [[ -n $_E2E_RESULTS ]] && printf '%s\t%s\t%s\n' "$1" "$_E2E_CUR_TEST" "$2" >>"$_E2E_RESULTS"; return 0; }

pass() {
    _record PASS "$*"
    printf '  %sok%s   %s\n' "$_C_GRN" "$_C_OFF" "$*"
}
# fail MSG [DETAIL...]: DETAIL lines are printed indented (expected/actual, outputs).
fail() {
    local msg=$1; shift || true
    _record FAIL "$msg"
    printf '  %sFAIL%s %s\n' "$_C_RED" "$_C_OFF" "$msg"
    local d
    for d in "$@"; do printf '%s\n' "$d" | sed 's/^/         | /'; done
    return 0
}

# Last captured command: OUT (stdout), ERR (stderr), RC (exit status), CMD (words).
OUT="" ERR="" RC=0 CMD=""
# capture CMD... : run CMD, never fail; sets OUT/ERR/RC. Stdin is inherited.
# Output goes through files, not pipes: a container started by CMD inherits its
# stdio, and a pipe would keep $(...) waiting until that container exits.
capture() {
    local of ef
    of=$(mktemp "$TEST_TMP/.out.XXXXXX"); ef=$(mktemp "$TEST_TMP/.err.XXXXXX")
    CMD="$*"
    if "$@" >"$of" 2>"$ef"; then RC=0; else RC=$?; fi
    OUT=$(<"$of"); ERR=$(<"$ef"); rm -f "$of" "$ef"
    if [[ -n ${E2E_VERBOSE:-} ]]; then
        printf '    $ %s\n    rc=%s\n' "$CMD" "$RC"
        [[ -n $OUT ]] && printf '%s\n' "$OUT" | sed 's/^/    out| /'
        [[ -n $ERR ]] && printf '%s\n' "$ERR" | sed 's/^/    err| /'
    fi
    return 0
}
_last_cmd_details() { printf '%s\n' "command: $CMD" "rc: $RC" "stdout: ${OUT:0:2000}" "stderr: ${ERR:0:2000}"; }

# assert_eq EXPECTED ACTUAL MSG
assert_eq() {
    if [[ "$1" == "$2" ]]; then pass "$3"
    else fail "$3" "expected: $1" "actual:   $2"; fi
}
assert_ne() {
    if [[ "$1" != "$2" ]]; then pass "$3"
    else fail "$3" "expected anything but: $1"; fi
}
# assert_contains HAYSTACK NEEDLE MSG (fixed string)
assert_contains() {
    if [[ "$1" == *"$2"* ]]; then pass "$3"
    else fail "$3" "expected to contain: $2" "actual: $1"; fi
}
assert_not_contains() {
    if [[ "$1" != *"$2"* ]]; then pass "$3"
    else fail "$3" "expected NOT to contain: $2" "actual: $1"; fi
}
# assert_match HAYSTACK ERE MSG
assert_match() {
    if [[ "$1" =~ $2 ]]; then pass "$3"
    else fail "$3" "expected to match: $2" "actual: $1"; fi
}
# assert_rc EXPECTED [MSG] — checks $RC of the last capture.
assert_rc() {
    local msg="${2:-rc of '$CMD' is $1}"
    if [[ "$RC" == "$1" ]]; then pass "$msg"
    else fail "$msg" "expected rc: $1" "$(_last_cmd_details)"; fi
}
# assert_rc_nonzero [MSG]
assert_rc_nonzero() {
    local msg="${1:-'$CMD' fails}"
    if [[ "$RC" != 0 ]]; then pass "$msg"
    else fail "$msg" "expected a non-zero rc" "$(_last_cmd_details)"; fi
}
# assert_ok MSG CMD... : capture CMD and assert rc 0.
assert_ok() { local m=$1; shift; capture "$@"; assert_rc 0 "$m"; }
# assert_true MSG CMD... : like assert_ok without output capture noise.
assert_true() { local m=$1; shift; if "$@" >/dev/null 2>&1; then pass "$m"; else fail "$m" "command failed: $*"; fi; }
assert_false() { local m=$1; shift; if "$@" >/dev/null 2>&1; then fail "$m" "command unexpectedly succeeded: $*"; else pass "$m"; fi; }

# wait_for TIMEOUT_S CMD... : poll CMD every 0.1s until it succeeds; rc 1 on timeout.
wait_for() {
    local t=$1; shift
    local end=$((SECONDS + t))
    while ! "$@" >/dev/null 2>&1; do
        ((SECONDS < end)) || return 1
        sleep 0.1
    done
}

# pty_run CMD... : run CMD with a fresh pty as its controlling terminal and
# stdin/stdout/stderr (like `script -qec`, without depending on our own stdin);
# prints what it wrote (CR stripped) and exits with its exit status (bounded by E2E_TIMEOUT).
pty_run() {
    timeout -k 5 "$E2E_TIMEOUT" python3 -c '
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
out = b""
while True:
    try:
        b = os.read(fd, 65536)
    except OSError:          # EIO: the slave side was closed
        break
    if not b:
        break
    out += b
_, st = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace").replace("\r", ""))
rc = os.waitstatus_to_exitcode(st)
sys.exit(128 - rc if rc < 0 else rc)' "$@"
}

# wait_pid PID TIMEOUT_S : wait for a background child; sets RC (124 on timeout,
# after which the caller must clean up the process itself).
wait_pid() {
    local pid=$1 end=$((SECONDS + $2))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < end)); do sleep 0.05; done
    if kill -0 "$pid" 2>/dev/null; then RC=124; return 0; fi
    if wait "$pid"; then RC=0; else RC=$?; fi
}

_on_test_err() {
    # errtrace also fires inside $(...) of an assertion's argument; only a
    # failure at the test function's own level stops the test.
    [[ $BASH_SUBSHELL == "$_E2E_TEST_SUBSHELL" ]] || return 0
    fail "unexpected error (line $1): ${2%%$'\n'*}" "the test stopped here"
}

# descendants PID : all descendants of PID (children first, then theirs).
descendants() {
    local kids k
    kids=$(ps -o pid= --ppid "$1" 2>/dev/null || true)
    for k in $kids; do echo "$k"; descendants "$k"; done
}
# kill_tree PID : SIGKILL PID and everything below it.
kill_tree() { local all; all=$(descendants "$1"); kill -9 "$1" $all 2>/dev/null || true; }

# run_tests FN... : run each test function in its own subshell, bounded by
# E2E_TEST_TIMEOUT seconds (default 180); honour E2E_FILTER.
run_tests() {
    local fn tpid
    for fn in "$@"; do
        if [[ -n $E2E_FILTER && ! $fn =~ $E2E_FILTER ]]; then continue; fi
        printf '%s=== %s%s\n' "$_C_BLD" "$fn" "$_C_OFF"
        _E2E_CUR_TEST=$fn
        (
            set -eEuo pipefail
            trap - EXIT INT TERM
            _E2E_TEST_SUBSHELL=$BASH_SUBSHELL
            trap '_on_test_err "$LINENO" "$BASH_COMMAND"' ERR
            "$fn"
        ) &
        tpid=$!
        _E2E_TEST_PID=$tpid
        wait_pid "$tpid" "${E2E_TEST_TIMEOUT:-180}"
        if [[ $RC == 124 ]]; then
            kill_tree "$tpid"
            wait "$tpid" 2>/dev/null || true
            fail "$fn timed out after ${E2E_TEST_TIMEOUT:-180}s (killed)"
        elif [[ $RC != 0 ]]; then
            # The ERR trap already recorded why, unless the subshell died otherwise.
            grep -q "^FAIL	$fn	" "$_E2E_RESULTS" || fail "$fn exited with rc $RC"
        fi
        _E2E_CUR_TEST="(teardown)" _E2E_TEST_PID=""
    done
}

# e2e_finish: print the summary and exit (1 if any check failed or nothing ran).
e2e_finish() {
    local npass nfail
    npass=$(grep -c '^PASS' "$_E2E_RESULTS" || true)
    nfail=$(grep -c '^FAIL' "$_E2E_RESULTS" || true)
    printf '\n%s--- %s: %d passed, %d failed%s\n' "$_C_BLD" "$(basename "$0")" "$npass" "$nfail" "$_C_OFF"
    [[ -z ${E2E_COUNTS:-} ]] || echo "$npass $nfail" >"$E2E_COUNTS"
    if ((nfail > 0)); then
        printf 'failed checks:\n'
        awk -F'\t' '$1=="FAIL"{printf "  %s: %s\n", $2, $3}' "$_E2E_RESULTS"
        exit 1
    fi
    ((npass > 0)) || { echo "no checks ran"; exit 1; }
    exit 0
}

# ---------------------------------------------------------------------------
# Setup / teardown.

TEST_TMP=""
STATE=""                 # runtime --root for direct runs (a dir under $TEST_TMP)
_E2E_STATE_ROOTS=()      # every --root we used, for cleanup
_E2E_DOCKERDS=()         # dirs of started dockerds
_E2E_CONTAINERDS=()      # dirs of started containerds
# children before parents
_E2E_HOST_PATHS=(/etc/docker/key.json /etc/docker /run/docker/plugins /run/docker
    /run/containerd/s /run/containerd/fifo /run/containerd/runc /run/containerd)
_E2E_HOST_PATHS_NEW=()

# The script is re-executed under a tiny python "subreaper": PID 1 on this
# kind of VM does not reap orphans, and container inits / shims are orphaned
# by design (runc create exits, the shim double-forks). The reaper waits for
# them so no zombies are left, forwards TERM/INT, and as a last resort
# SIGKILLs any descendant still alive when the script ends (reported on stderr).
_E2E_REAPER_PY='
import ctypes, os, signal, sys, time
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(36, 1, 0, 0, 0) != 0:          # PR_SET_CHILD_SUBREAPER
    print("e2e reaper: prctl failed; zombies may be left", file=sys.stderr)
os.environ["_E2E_UNDER_REAPER"] = str(os.getpid())
main = os.fork()
if main == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
def fwd(sig, _):
    try: os.kill(main, sig)
    except ProcessLookupError: pass
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(s, fwd)
rc = 1
while True:
    try:
        pid, st = os.wait()
    except ChildProcessError:
        break
    if pid == main:
        rc = os.waitstatus_to_exitcode(st)
        rc = 128 - rc if rc < 0 else rc
        break
def children():
    me, out = os.getpid(), []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f: st = f.read()
            except OSError: continue
            fields = st.rsplit(")", 1)[1].split()
            if int(fields[1]) == me and fields[0] != "Z": out.append((int(d), st.split(" (")[1].split(")")[0]))
    return out
left = children()
if left:
    print("e2e reaper: killing leftover processes: %s" % left, file=sys.stderr)
    for p, _ in left:
        try: os.kill(p, signal.SIGKILL)
        except ProcessLookupError: pass
    if rc == 0: rc = 1
deadline = time.time() + 5
while time.time() < deadline:
    try:
        p, _ = os.waitpid(-1, os.WNOHANG)
        if p == 0: time.sleep(0.05)
    except ChildProcessError:
        break
sys.exit(rc)
'

# e2e_init "$@": call first thing in every test script.
e2e_init() {
    [[ $EUID == 0 ]] || die "the e2e tests need root"
    need_cmd python3 python3
    if [[ -z ${_E2E_UNDER_REAPER:-} ]]; then
        exec python3 -c "$_E2E_REAPER_PY" bash "$0" "$@"
    fi
    need_cmd timeout coreutils
    need_cmd ps procps
    [[ -x $RUNTIME ]] || die "RUNTIME=$RUNTIME is not an executable (build it, or set RUNTIME=\$(command -v runc))"
    # (run-e2e.sh sets E2E_TMPDIR to its own run dir, for its leak check)
    TEST_TMP=$(mktemp -d "${E2E_TMPDIR:-/tmp}/nvrt-e2e.XXXXXX")
    chmod 755 "$TEST_TMP"
    [[ -n ${E2E_TMPDIR:-} ]] && basename "$TEST_TMP" >>"$E2E_TMPDIR/runs.list"
    _E2E_RESULTS=$TEST_TMP/results
    : >"$_E2E_RESULTS"
    STATE=$TEST_TMP/state
    mkdir -p "$STATE"
    _E2E_STATE_ROOTS+=("$STATE")
    # Host paths that dockerd/containerd/ctr create outside their configured
    # dirs (not configurable in docker 20.10 / containerd 1.6): remember which
    # did not exist, so cleanup can remove them again (only if empty).
    local p
    for p in "${_E2E_HOST_PATHS[@]}"; do [[ -e $p ]] || _E2E_HOST_PATHS_NEW+=("$p"); done
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    log "$(basename "$0"): RUNTIME=$RUNTIME TEST_TMP=$TEST_TMP"
}

# rt ARGS... : the runtime with our state root, bounded by a timeout.
rt() { timeout -k 5 "$E2E_TIMEOUT" "$RUNTIME" --root "$STATE" "$@"; }

# Process helpers scoped to our temp dir (never touch anything else).
_pids_in_container_of() {      # container processes we started: their cgroup or rootfs is ours
    local dir=$1 cg="" p
    [[ $dir == "$TEST_TMP" ]] && cg=$(cgroup_parent)
    for p in /proc/[0-9]*; do
        # direct bundles: cgroupsPath under our per-run parent
        if [[ -n $cg ]] && grep -qF -- "/$cg/" "$p/cgroup" 2>/dev/null; then echo "${p#/proc/}"; continue; fi
        # any runtime/daemon: the process's "/" mount comes from under DIR
        # (bind-mounted bundle rootfs, or an overlay whose layers live there)
        awk '$5 == "/"' "$p/mountinfo" 2>/dev/null | grep -qF -- "$dir/" && echo "${p#/proc/}"
    done
    return 0
}
_pids_with_cmdline_mentioning() {   # processes whose argv mentions DIR (daemons, shims)
    local dir=$1 p pid
    for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        [[ $pid == "$$" || $pid == "$BASHPID" || $pid == "${_E2E_UNDER_REAPER:-x}" ]] && continue
        tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF -- "$dir/" && echo "$pid"
    done
    return 0
}
# mounts under DIR, deepest first
_mounts_under() {
    awk -v d="$1/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r | uniq
}
unmount_under() {
    local dir=$1 m _
    for _ in 1 2 3; do
        local any=0
        while read -r m; do
            [[ -z $m ]] && continue
            any=1
            m=$(printf '%b' "$m")     # mountinfo escapes spaces as \040
            umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
        done < <(_mounts_under "$dir")
        ((any)) || return 0
    done
}
kill_pids() { local p; for p in "$@"; do kill -9 "$p" 2>/dev/null || true; done; }

cleanup() {
    local rc=$?
    trap - EXIT INT TERM ERR
    set +e
    [[ -n ${_E2E_TEST_PID:-} ]] && kill_tree "$_E2E_TEST_PID"   # interrupted mid-test
    [[ -n $TEST_TMP && -d $TEST_TMP ]] || exit "$rc"
    # 1. containers we created directly: ask the runtime, then make sure.
    local root id
    for root in "${_E2E_STATE_ROOTS[@]}"; do
        [[ -d $root ]] || continue
        for id in $(timeout 10 "$RUNTIME" --root "$root" list -q 2>/dev/null); do
            timeout 10 "$RUNTIME" --root "$root" kill "$id" KILL >/dev/null 2>&1
            timeout 10 "$RUNTIME" --root "$root" delete --force "$id" >/dev/null 2>&1
        done
    done
    # 2. daemons (each stop also removes its containers).
    local d
    for d in "${_E2E_DOCKERDS[@]}"; do stop_dockerd "$d"; done
    for d in "${_E2E_CONTAINERDS[@]}"; do stop_containerd "$d"; done
    # 3. safety net: anything still running from our temp dir.
    kill_pids $(_pids_in_container_of "$TEST_TMP")
    kill_pids $(_pids_with_cmdline_mentioning "$TEST_TMP")
    sleep 0.2
    # 4. state the runtime could not remove (its processes are gone now).
    for root in "${_E2E_STATE_ROOTS[@]}"; do
        [[ -d $root ]] || continue
        for id in $(timeout 10 "$RUNTIME" --root "$root" list -q 2>/dev/null); do
            timeout 10 "$RUNTIME" --root "$root" delete --force "$id" >/dev/null 2>&1
        done
    done
    # 5. mounts, cgroups, host paths the daemons made.
    unmount_under "$TEST_TMP"
    _rmdir_cgroups
    local p
    for p in "${_E2E_HOST_PATHS_NEW[@]}"; do
        if [[ -f $p ]]; then rm -f "$p"; elif [[ -d $p ]]; then rmdir "$p" 2>/dev/null || log "cleanup: $p left behind (not empty)"; fi
    done
    if [[ -n $(_mounts_under "$TEST_TMP") ]]; then
        log "cleanup: mounts still left under $TEST_TMP:"; _mounts_under "$TEST_TMP" >&2; rc=1
    fi
    if [[ -n ${E2E_KEEP_TMP:-} ]]; then
        log "cleanup: kept $TEST_TMP"
    else
        rm -rf --one-file-system "$TEST_TMP"
    fi
    exit "$rc"
}

# cgroups of our bundles live under /<CGROUP_PARENT>/ in every hierarchy.
cgroup_parent() { basename "$TEST_TMP"; }
_rmdir_cgroups() {
    local parent; parent=$(cgroup_parent)
    local h
    for h in /sys/fs/cgroup/*/"$parent" /sys/fs/cgroup/"$parent"; do
        [[ -d $h ]] || continue
        find "$h" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
}

# ---------------------------------------------------------------------------
# Cgroups, read from the host side (works for any runtime and for docker).

cgroup_v2_only() { [[ -f /sys/fs/cgroup/cgroup.controllers ]]; }
# have_controllers CTL... : whether the cgroup hierarchy the runtime uses has these controllers;
# if not (cgroup v2 view of a hybrid host: run-e2e.sh --cgroup2-view, where they stay bound to
# v1), says which test is skipped and why.
have_controllers() {
    local ctl missing=()
    cgroup_v2_only || return 0
    for ctl in "$@"; do
        grep -qw "$ctl" /sys/fs/cgroup/cgroup.controllers || missing+=("$ctl")
    done
    ((${#missing[@]} == 0)) && return 0
    log "  skipped: ${FUNCNAME[1]} needs the ${missing[*]} controller(s), bound to cgroup v1 on this host"
    return 1
}
# The parsers of /proc/PID/cgroup ("ID:CONTROLLERS:PATH" lines; ID 0 is the unified hierarchy).
# cgroup_of PID CONTROLLER : PID's cgroup path in CONTROLLER's hierarchy ("cpu" or, as the
# line names it, "cpu,cpuacct"); "-" (and any controller on a cgroup v2 host) means the unified one.
cgroup_of() {
    local pid=$1 ctl=$2
    if [[ $ctl == - ]] || cgroup_v2_only; then
        awk -F: '$1 == "0" { print $3 }' "/proc/$pid/cgroup"
    else
        # CONTROLLER is one of the line's controllers, or all of them as the line has them
        awk -F: -v c="$ctl" '$2 == c { print $3; next }
            { n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) print $3 }' "/proc/$pid/cgroup"
    fi
}
# cgroup_dir_of PID CONTROLLER : the host directory of PID's cgroup for CONTROLLER.
cgroup_dir_of() {
    if cgroup_v2_only; then
        echo "/sys/fs/cgroup$(cgroup_of "$1" -)"
    else
        echo "/sys/fs/cgroup/$2$(cgroup_of "$1" "$2")"
    fi
}
# cgroup_lines PID : "CONTROLLER PATH HOSTDIR" for each of PID's cgroups that carries limits
# (the unified line on a cgroup v2 host; the v1 controllers, not named hierarchies, otherwise).
cgroup_lines() {
    local ctl path
    while IFS=: read -r _ ctl path; do
        if cgroup_v2_only; then
            [[ -z $ctl ]] && echo "- $path /sys/fs/cgroup${path%/}"
        else
            [[ -z $ctl || $ctl == name=* ]] && continue
            echo "$ctl $path /sys/fs/cgroup/$ctl$path"
        fi
    done <"/proc/$1/cgroup"
}
# memory_limit_of PID : bytes ("max" means unlimited on v2)
memory_limit_of() {
    local d; d=$(cgroup_dir_of "$1" memory)
    if cgroup_v2_only; then cat "$d/memory.max"; else cat "$d/memory.limit_in_bytes"; fi
}
# freezer_state_of PID : FROZEN or THAWED
freezer_state_of() {
    local d; d=$(cgroup_dir_of "$1" freezer)
    if cgroup_v2_only; then
        [[ $(<"$d/cgroup.freeze") == 1 ]] && echo FROZEN || echo THAWED
    else
        cat "$d/freezer.state"
    fi
}

# ---------------------------------------------------------------------------
# Rootfs and bundles.

# make_busybox_rootfs DIR: busybox-static + applet links made on the host side
# (absolute links to /bin/busybox, so they resolve inside the container's root),
# /etc/passwd, /etc/group, and the usual empty dirs. Built once per run, then copied.
make_busybox_rootfs() {
    local dir=$1 tpl=$TEST_TMP/.rootfs-template bb
    if ! [[ -d $tpl ]]; then
        bb=$(busybox_static)
        mkdir -p "$tpl.tmp"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,proc,dev,sys,root,run,var}
        chmod 1777 "$tpl.tmp/tmp"
        cp "$bb" "$tpl.tmp/bin/busybox"
        "$bb" --list-full | python3 -c '
import os, sys
root = sys.argv[1]
for rel in sys.stdin.read().split():
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    if not os.path.lexists(p):
        os.symlink("/bin/busybox", p)' "$tpl.tmp"
        printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$tpl.tmp/etc/passwd"
        printf '%s\n' 'root:x:0:' 'tty:x:5:' 'nogroup:x:65534:' >"$tpl.tmp/etc/group"
        mv "$tpl.tmp" "$tpl"
    fi
    mkdir -p "$dir"
    cp -a "$tpl/." "$dir/"
}

# make_bundle DIR ARGS... : DIR/rootfs (busybox) + DIR/config.json running ARGS.
# The config mirrors `runc spec` (but terminal=false, rw rootfs) and puts the
# cgroup under a per-run parent so cleanup can always find it.
make_bundle() {
    local dir=$1; shift
    (($# > 0)) || set -- sh
    mkdir -p "$dir"
    [[ -d $dir/rootfs/bin ]] || make_busybox_rootfs "$dir/rootfs"
    python3 - "$dir/config.json" "$(cgroup_parent)/$(basename "$dir")" "$@" <<'EOF'
import json, sys
path, cgpath, args = sys.argv[1], sys.argv[2], sys.argv[3:]
caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
cfg = {
  "ociVersion": "1.0.2",
  "process": {
    "terminal": False,
    "user": {"uid": 0, "gid": 0},
    "args": args,
    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
    "cwd": "/",
    "capabilities": {k: caps for k in ("bounding", "effective", "permitted", "ambient")},
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
    "noNewPrivileges": True,
  },
  "root": {"path": "rootfs", "readonly": False},
  "hostname": "e2e",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
     "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs",
     "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
     "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
  ],
  "linux": {
    "cgroupsPath": "/" + cgpath,
    "resources": {"devices": [{"allow": False, "access": "rwm"}]},
    "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
    "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
    "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
  },
}
with open(path, "w") as f:
    json.dump(cfg, f, indent=2)
EOF
}

# bundle_set DIR 'PYTHON' : edit DIR/config.json; the config is the dict `c`.
#   bundle_set "$B" 'c["root"]["readonly"] = True'
#   bundle_set "$B" 'c["process"]["args"] = ["sleep", "100"]'
#   bundle_set "$B" 'c["process"]["env"].append("FOO=bar")'
bundle_set() {
    python3 - "$1/config.json" "$2" <<'EOF'
import json, sys
path, code = sys.argv[1], sys.argv[2]
with open(path) as f: c = json.load(f)
exec(code, {"c": c, "json": json})
with open(path, "w") as f: json.dump(c, f, indent=2)
EOF
}
# bundle_get DIR 'PYTHON EXPRESSION' : print a value (JSON for non-strings).
bundle_get() {
    python3 - "$1/config.json" "$2" <<'EOF'
import json, sys
with open(sys.argv[1]) as f: c = json.load(f)
v = eval(sys.argv[2], {"c": c})
print(v if isinstance(v, str) else json.dumps(v))
EOF
}
# bundle_args DIR ARGS... : set process.args.
bundle_args() {
    local dir=$1; shift
    python3 - "$dir/config.json" "$@" <<'EOF2'
import json, sys
with open(sys.argv[1]) as f: c = json.load(f)
c["process"]["args"] = sys.argv[2:]
with open(sys.argv[1], "w") as f: json.dump(c, f, indent=2)
EOF2
}

# bundle_env DIR ENV... : append NAME=value entries to DIR's process.env.
bundle_env() {
    local dir=$1; shift
    python3 - "$dir/config.json" "$@" <<'EOF3'
import json, sys
with open(sys.argv[1]) as f: c = json.load(f)
c["process"]["env"] += sys.argv[2:]
with open(sys.argv[1], "w") as f: json.dump(c, f, indent=2)
EOF3
}

# image_bundle NAME [ENV...] : bundle $TEST_TMP/NAME (container id NAME) with a copy of the
# rootfs $IMAGE, running `sh`, the ENV added; sets B.
image_bundle() {
    local name=$1
    shift
    B=$TEST_TMP/$name
    mkdir -p "$B/rootfs"
    cp -a "$IMAGE/." "$B/rootfs/"
    make_bundle "$B" sh
    (($#)) || return 0
    bundle_env "$B" "$@"
}

# _run_in DIR ID : `run ID` from the bundle dir DIR, as containerd's shim starts it.
_run_in() ( cd "$1" && rt run "$2" </dev/null )
# in_ctr SCRIPT : `sh -c SCRIPT` in a container of bundle $B, through `run` from the bundle
# dir; sets OUT/ERR/RC. (Re-running a bundle is fine: the first run injected it.)
in_ctr() {
    bundle_args "$B" sh -c "$1"
    capture _run_in "$B" "$(basename "$B")"
}
# run_as_is : like in_ctr, with the bundle's config.json as it is
run_as_is() { capture _run_in "$B" "$(basename "$B")"; }
sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# json_get 'PYTHON EXPRESSION on j' < JSON : tiny jq.
json_get() {
    python3 -c '
import json, sys
try:
    j = json.load(sys.stdin)
    v = eval(sys.argv[1], {"j": j})
except Exception as e:
    print("<json_get %s: %s: %s>" % (sys.argv[1], type(e).__name__, e))
    sys.exit(1)
print(v if isinstance(v, str) else json.dumps(v))' "$1"
}

# ---------------------------------------------------------------------------
# Private dockerd (data root, exec root and socket under the test dir; no iptables, no bridge).

D=""   # dir of the current dockerd: D/docker.sock, D/dockerd.log, D/daemon.json
docker_() { timeout -k 5 "$E2E_TIMEOUT" docker -H "unix://$D/docker.sock" "$@"; }

# stop_daemon_pid PID: TERM, up to 20 s to exit, then KILL (best effort; empty PID is fine).
stop_daemon_pid() {
    local pid=$1 end
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    end=$((SECONDS + 20))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < end)); do sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
}

# start_dockerd [--name N] [--default-runtime RT] [--runtime-path P] [--path-prepend DIR] [--config FILE]
#   registers runtime "nvidia" → P (default $RUNTIME), or runs on daemon.json FILE as it is; sets D.
start_dockerd() {
    local name=docker default_rt="" rt_path=$RUNTIME path_prepend="" config=""
    while (($#)); do
        case $1 in
            --name) name=$2; shift 2 ;;
            --config) config=$2; shift 2 ;;
            --default-runtime) default_rt=$2; shift 2 ;;
            --runtime-path) rt_path=$2; shift 2 ;;
            --path-prepend) path_prepend=$2; shift 2 ;;
            *) die "start_dockerd: unknown option $1" ;;
        esac
    done
    need_cmd dockerd docker.io
    need_cmd docker docker.io
    D=$TEST_TMP/$name
    mkdir -p "$D"
    _E2E_DOCKERDS+=("$D")
    if [[ -z $config ]]; then
        config=$D/daemon.json
        python3 - "$config" "$rt_path" "$default_rt" <<'EOF'
import json, sys
cfg = {"runtimes": {"nvidia": {"path": sys.argv[2]}}}
if sys.argv[3]:
    cfg["default-runtime"] = sys.argv[3]
json.dump(cfg, open(sys.argv[1], "w"), indent=2)
EOF
    fi
    local path=$PATH
    [[ -n $path_prepend ]] && path=$path_prepend:$PATH
    PATH=$path setsid dockerd \
        --config-file "$config" \
        --data-root "$D/data" --exec-root "$D/exec" \
        -H "unix://$D/docker.sock" --pidfile "$D/docker.pid" \
        --iptables=false --ip-masq=false --bridge=none \
        --cgroup-parent "/$(cgroup_parent)/$name" \
        >"$D/dockerd.log" 2>&1 </dev/null &
    echo $! >"$D/dockerd.launcher-pid"
    local end=$((SECONDS + 60))
    until docker -H "unix://$D/docker.sock" version >/dev/null 2>&1; do
        if ((SECONDS >= end)) || ! kill -0 "$(<"$D/dockerd.launcher-pid")" 2>/dev/null; then
            log "dockerd did not become ready; its log:"
            tail -n 50 "$D/dockerd.log" >&2
            die "start_dockerd failed"
        fi
        sleep 0.2
    done
}

# stop_dockerd [DIR]: remove containers, stop the daemon, reap shims, unmount.
stop_dockerd() (    # subshell body: best effort, never trips set -e
    set +e
    local dir=${1:-$D}
    [[ -d $dir ]] || return 0
    if [[ -S $dir/docker.sock ]]; then
        local ids
        ids=$(timeout 20 docker -H "unix://$dir/docker.sock" ps -aq 2>/dev/null || true)
        [[ -n $ids ]] && timeout 30 docker -H "unix://$dir/docker.sock" rm -f $ids >/dev/null 2>&1
    fi
    stop_daemon_pid "$(cat "$dir/dockerd.launcher-pid" 2>/dev/null || true)"
    rm -f "$dir/dockerd.launcher-pid"
    # its containerd and shims mention the exec-root in their argv
    kill_pids $(_pids_in_container_of "$dir") $(_pids_with_cmdline_mentioning "$dir")
    unmount_under "$dir"
)

# import_busybox_image NAME: busybox rootfs → docker image NAME (CMD sh).
import_busybox_image() {
    local name=$1 r
    r=$(mktemp -d "$TEST_TMP/img.XXXXXX")
    make_busybox_rootfs "$r"
    tar -C "$r" -c . | docker_ import -c 'CMD ["sh"]' -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$name" >/dev/null
    rm -rf "$r"
}

# ---------------------------------------------------------------------------
# Private containerd.

C=""   # dir of the current containerd: C/containerd.sock, C/containerd.log
ctr_() { timeout -k 5 "$E2E_TIMEOUT" ctr -a "$C/containerd.sock" -n e2e "$@"; }

# start_containerd [NAME [CONFIG]] : sets C=$TEST_TMP/NAME; CONFIG (whose sockets must be
# C/containerd.sock[.ttrpc]) replaces the default config (version 2, CRI off).
start_containerd() {
    local name=${1:-containerd} config=${2:-}
    need_cmd containerd containerd
    need_cmd ctr containerd
    C=$TEST_TMP/$name
    mkdir -p "$C"
    _E2E_CONTAINERDS+=("$C")
    if [[ -n $config ]]; then
        [[ $config == "$C/config.toml" ]] || cp "$config" "$C/config.toml"
    else
    cat >"$C/config.toml" <<EOF
version = 2
root = "$C/root"
state = "$C/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$C/containerd.sock"

[ttrpc]
  address = "$C/containerd.sock.ttrpc"

[debug]
  address = "$C/debug.sock"
  level = "info"

[metrics]
  address = ""

# (its default, /opt/containerd, would be left behind on the host)
[plugins."io.containerd.internal.v1.opt"]
  path = "$C/opt"
EOF
    fi
    setsid containerd --config "$C/config.toml" >"$C/containerd.log" 2>&1 </dev/null &
    echo $! >"$C/containerd.pid"
    local end=$((SECONDS + 30))
    until ctr -a "$C/containerd.sock" version >/dev/null 2>&1; do
        if ((SECONDS >= end)) || ! kill -0 "$(<"$C/containerd.pid")" 2>/dev/null; then
            log "containerd did not become ready; its log:"
            tail -n 50 "$C/containerd.log" >&2
            die "start_containerd failed"
        fi
        sleep 0.2
    done
}

stop_containerd() (    # subshell body: best effort, never trips set -e
    set +e
    local dir=${1:-$C} ns id
    [[ -d $dir ]] || return 0
    if [[ -S $dir/containerd.sock ]]; then
        local c="timeout 20 ctr -a $dir/containerd.sock"
        for ns in $($c namespaces ls -q 2>/dev/null); do
            for id in $($c -n "$ns" tasks ls -q 2>/dev/null); do
                $c -n "$ns" tasks kill -s KILL "$id" >/dev/null 2>&1
                $c -n "$ns" tasks delete -f "$id" >/dev/null 2>&1
            done
            for id in $($c -n "$ns" containers ls -q 2>/dev/null); do
                $c -n "$ns" containers delete "$id" >/dev/null 2>&1
            done
        done
    fi
    stop_daemon_pid "$(cat "$dir/containerd.pid" 2>/dev/null || true)"
    rm -f "$dir/containerd.pid"
    kill_pids $(_pids_in_container_of "$dir") $(_pids_with_cmdline_mentioning "$dir")
    unmount_under "$dir"
)

# make_oci_archive ROOTFS OUT.tar REF [CMD_JSON] : a one-layer OCI image archive (oci-layout,
# index.json, blobs/sha256/…) that `ctr images import` accepts; REF like
# docker.io/library/bb:latest; CMD_JSON the image's Cmd (default ["sh"]).
make_oci_archive() {
    local rootfs=$1 out=$2 ref=$3 cmd=${4:-'["sh"]'} work
    work=$(mktemp -d "$TEST_TMP/oci.XXXXXX")
    tar -C "$rootfs" -c . >"$work/layer.tar"
    local arch
    case $(uname -m) in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
    python3 - "$work" "$ref" "$arch" "$cmd" <<'EOF'
import gzip, hashlib, json, os, sys
work, ref, arch, cmd = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
blobs = os.path.join(work, "img", "blobs", "sha256"); os.makedirs(blobs)
def put(data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, d), "wb") as f: f.write(data)
    return {"digest": "sha256:" + d, "size": len(data)}
raw = open(os.path.join(work, "layer.tar"), "rb").read()
diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
layer = put(gzip.compress(raw, mtime=0))
config = put(json.dumps({
    "architecture": arch, "os": "linux",
    "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": cmd},
    "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    "history": [{"created_by": "tests/lib.sh make_oci_archive"}],
}).encode())
manifest = put(json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": dict(mediaType="application/vnd.oci.image.config.v1+json", **config),
    "layers": [dict(mediaType="application/vnd.oci.image.layer.v1.tar+gzip", **layer)],
}).encode())
tag = ref.rsplit(":", 1)[1] if ":" in ref.rsplit("/", 1)[-1] else "latest"
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
    dict(mediaType="application/vnd.oci.image.manifest.v1+json", **manifest,
         platform={"architecture": arch, "os": "linux"},
         annotations={"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": tag})]}
with open(os.path.join(work, "img", "index.json"), "w") as f: json.dump(index, f)
with open(os.path.join(work, "img", "oci-layout"), "w") as f: json.dump({"imageLayoutVersion": "1.0.0"}, f)
EOF
    tar -C "$work/img" -cf "$out" oci-layout index.json blobs
    rm -rf "$work"
}

# ---------------------------------------------------------------------------
# A bundle's cgroup, by its cgroupsPath (e.g. "/<cgroup_parent>/NAME"), in every
# hierarchy; works before a process runs in it and after they are all gone.

# cgroup_dirs_for REL : the existing dirs of cgroup REL, one per hierarchy (v1: every
# mounted hierarchy, links like cpu -> cpu,cpuacct skipped; v2: the one unified dir).
cgroup_dirs_for() {
    local rel=${1#/} d
    if cgroup_v2_only; then
        [[ -d /sys/fs/cgroup/$rel ]] && echo "/sys/fs/cgroup/$rel"
        return 0
    fi
    for d in /sys/fs/cgroup/*; do
        [[ -L $d ]] && continue
        [[ -d $d/$rel ]] && echo "$d/$rel"
    done
    return 0
}
# freezer_dir_for REL : the dir whose freezer freezes cgroup REL (it may not exist yet).
freezer_dir_for() {
    if cgroup_v2_only; then echo "/sys/fs/cgroup/${1#/}"; else echo "/sys/fs/cgroup/freezer/${1#/}"; fi
}
# freeze_dir DIR / thaw_dir DIR : set a freezer cgroup dir's own state.
freeze_dir() { if cgroup_v2_only; then echo 1 >"$1/cgroup.freeze"; else echo FROZEN >"$1/freezer.state"; fi; }
thaw_dir() { if cgroup_v2_only; then echo 0 >"$1/cgroup.freeze"; else echo THAWED >"$1/freezer.state"; fi; }
# bundle_cgroup_path DIR : the cgroupsPath of bundle DIR.
bundle_cgroup_path() { bundle_get "$1" 'c["linux"]["cgroupsPath"]'; }

# ---------------------------------------------------------------------------
# Simulated NVIDIA host (tests/fixtures/make-driver-root.sh) for GPU tests.

# sim_host N CACHE : a driver root with N GPUs at $SIM (driver 580.159.04; GPU i has minor i
# and UUID `uuid_of i`), and a config naming it exported as NVIDIA_CTK_CONFIG_FILE_PATH, with
# `inventory-cache = CACHE` ("" = off).
sim_host() {
    SIM=$TEST_TMP/sim
    bash "$REPO/tests/fixtures/make-driver-root.sh" "$1" "$SIM" || die "make-driver-root.sh failed"
    export NVIDIA_CTK_CONFIG_FILE_PATH=$TEST_TMP/nvidia-runtime.toml
    printf '[nvidia-container-cli]\nroot = "%s"\n[nvidia-runtime]\nproc-root = "%s"\ninventory-cache = "%s"\n' \
        "$SIM" "$SIM" "$2" >"$NVIDIA_CTK_CONFIG_FILE_PATH"
}
uuid_of() { printf 'GPU-4e565349-4d00-4000-8000-%012x\n' "$1"; }
# smi_lines INDEX... : what the fake nvidia-smi prints when it sees these GPUs (bus order)
smi_lines() {
    local k=0 i
    for i in "$@"; do echo "GPU $k: NVIDIA H100 80GB HBM3 (UUID: $(uuid_of "$i"))"; k=$((k + 1)); done
}
# What $TEST_TMP/probe prints when the simulated libcuda is found and works.
PROBE_OK="version=13000 marker=nvsim-libcuda"
# build_probe : $TEST_TMP/probe [LIB], which dlopens LIB (default libcuda.so.1) and calls what
# the simulated driver exports.
build_probe() {
    cat >"$TEST_TMP/probe.c" <<'C'
#include <dlfcn.h>
#include <stdio.h>
int main(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : "libcuda.so.1";
    void *h = dlopen(name, RTLD_NOW);
    if (!h) { printf("dlopen-failed: %s\n", dlerror()); return 1; }
    int (*ver)(int *) = (int (*)(int *))dlsym(h, "cuDriverGetVersion");
    const char *(*marker)(void) = (const char *(*)(void))dlsym(h, "nvsim_marker");
    int v = -1;
    if (ver && ver(&v) != 0) v = -2;
    printf("version=%d marker=%s\n", v, marker ? marker() : "(none)");
    return 0;
}
C
    gcc -O2 -o "$TEST_TMP/probe" "$TEST_TMP/probe.c" || die "cannot compile probe.c"
}
