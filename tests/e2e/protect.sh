#!/usr/bin/env bash
# tests/e2e/protect.sh — the runtime's binary cannot be overwritten from a container
# (CVE-2019-5736).
#
# A created container's init is the runtime itself until `start` makes it exec the payload; a
# process that reaches it (the container's own processes can, through /proc/<pid>/exe, as
# can an entrypoint `#!/proc/self/exe`) keeps an O_PATH handle on that file and reopens it for
# writing once nobody executes it any more. Proves, with exactly that sequence from the host:
#  - the file the init runs is a protected view of the binary (a read-only overlayfs or a
#    sealed memfd), never the installed binary;
#  - reopening the handle for writing after the init has exec'd its payload fails with EROFS
#    (the overlay), or gives a memfd sealed against writes; the installed binary is unchanged.
# (`run` and `exec` take the same re-exec path as `create`, protect.rs.)
source "$(dirname "$0")/../lib.sh"
e2e_init "$@"
need_cmd sha256sum coreutils


# reopen_for_writing PID CMD... : holds an O_PATH handle on /proc/PID/exe, runs CMD (which
# makes PID exec its payload), waits until PID runs something else, then reopens the handle
# for appending (writing nothing; a sealed memfd's seals are read instead). Prints "fs=<type of the held file> open=<result>".
reopen_for_writing() {
    local pid=$1; shift
    python3 - "$pid" "$@" <<'EOF'
import fcntl, os, subprocess, sys, time
pid, cmd = sys.argv[1], sys.argv[2:]
fd = os.open(f"/proc/{pid}/exe", os.O_PATH)
held = os.readlink(f"/proc/self/fd/{fd}")
fstype = subprocess.run(["stat", "-f", "-L", "-c", "%T", f"/proc/self/fd/{fd}"],
                        capture_output=True, text=True, pass_fds=(fd,)).stdout.strip()
subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
for _ in range(100):   # the payload replaces the runtime in the init
    try:
        if os.readlink(f"/proc/{pid}/exe") != held:
            break
    except OSError:
        break
    time.sleep(0.05)
try:
    w = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_APPEND)
    try:   # a sealed memfd opens for writing; its seal refuses every write
        sealed = fcntl.fcntl(w, fcntl.F_GET_SEALS) & fcntl.F_SEAL_WRITE
    except OSError:
        sealed = 0
    os.close(w)
    result = "sealed against writes" if sealed else "WRITABLE"
except OSError as e:
    result = os.strerror(e.errno)
print(f"fs={fstype} open={result}")
EOF
}

test_created_init_cannot_be_written() {
    local b=$TEST_TMP/created before pid
    before=$(sha_of "$RUNTIME")
    make_bundle "$b" sleep 1000
    rt create --bundle "$b" --pid-file "$b/pid" created </dev/null >/dev/null 2>&1
    pid=$(<"$b/pid")
    assert_ne "$(readlink -f "$RUNTIME")" "$(readlink "/proc/$pid/exe")" "the created init does not run the installed binary"
    capture reopen_for_writing "$pid" "$RUNTIME" --root "$STATE" start created
    assert_rc 0 "the init's file was held, the container started"
    assert_match "$OUT" '^fs=(overlayfs|tmpfs|hugetlbfs) ' "the init ran from a read-only overlay or a sealed memfd"
    assert_match "$OUT" 'open=(Read-only file system|sealed against writes)$' "reopening it for writing after the exec fails"
    assert_eq "$before" "$(sha_of "$RUNTIME")" "the installed binary is unchanged"
    rt delete --force created >/dev/null 2>&1 || true
}

run_tests test_created_init_cannot_be_written
e2e_finish
