#!/usr/bin/env bash
# tests/e2e/containerd.sh — the runtime under containerd, without docker.
#
# Proves that a private containerd (own root/state/sockets, config version 2)
# runs containers through the runtime via `ctr run --runc-binary $RUNTIME`
# (containerd-shim-runc-v2 → our binary): a hand-built OCI image archive
# (oci-layout, index.json, manifest, config, one gzip layer of a busybox rootfs)
# imports; `ctr run` prints the container's output and returns its exit status;
# a missing binary is reported with its path; a detached task can be exec'd
# into, listed, paused, resumed, killed and deleted; the shim's --runc-root is
# the runtime's --root (the runtime's own `state` sees the task); and the
# binary given with --runc-binary is the one invoked.
source "$(dirname "$0")/../lib.sh"
e2e_init "$@"

IMAGE=docker.io/library/bb:latest

# ctr_run ID ARGS... : `ctr run` through $RUNTIME with state, fifos and cgroup
# kept under our temp dir / per-run cgroup parent (ctr's defaults are
# /run/containerd/runc, /run/containerd/fifo and /<namespace>/<id>).
RUNC_BINARY=$RUNTIME
ctr_run() {
    local id=$1; shift
    local -a opts=()
    while [[ ${1:-} == -* ]]; do opts+=("$1"); shift; done
    ctr_ run --runc-binary "$RUNC_BINARY" --runc-root "$C/runc-root" --fifo-dir "$C/fifo" \
        --cgroup "/$(cgroup_parent)/ctr-$id" "${opts[@]}" "$IMAGE" "$id" "$@"
}
task_status() { ctr_ tasks ls 2>/dev/null | awk -v id="$1" '$1 == id { print $3 }'; }
task_status_is() { [[ $(task_status "$1") == "$2" ]]; }

test_import_image() {
    local r=$TEST_TMP/bb-rootfs
    make_busybox_rootfs "$r"
    make_oci_archive "$r" "$TEST_TMP/bb-oci.tar" "$IMAGE"
    capture ctr_ images import "$TEST_TMP/bb-oci.tar"
    assert_rc 0 "ctr images import of the hand-built OCI archive: rc 0"
    assert_contains "$(ctr_ images ls -q)" "$IMAGE" "the image is listed"
}

test_run_output() {
    capture ctr_run ctr-hello --rm echo hello
    assert_rc 0 "ctr run --rm --runc-binary \$RUNTIME: rc 0"
    assert_eq hello "$OUT" "ctr run: the container's output"
    assert_eq "" "$(ctr_ containers ls -q)" "--rm removed the container"
}

test_exit_code() {
    capture ctr_run ctr-exit --rm sh -c 'exit 9'
    assert_rc 9 "ctr run returns the container's exit status (9)"
    capture ctr_run ctr-false --rm false
    assert_rc 1 "ctr run returns the container's exit status (1)"

    # killed by SIGKILL from outside: 128+9
    ctr_run ctr-killed --rm sh -c 'echo ready; exec sleep 1000' >"$TEST_TMP/ctr-killed.out" 2>&1 </dev/null &
    local bg=$!
    wait_for 10 grep -q ready "$TEST_TMP/ctr-killed.out" || fail "ctr-killed did not start" "$(cat "$TEST_TMP/ctr-killed.out")"
    ctr_ tasks kill -s KILL ctr-killed
    wait_pid "$bg" 20
    assert_rc 137 "ctr run returns 137 when the task is killed by SIGKILL"
}

test_missing_binary() {
    capture ctr_run ctr-missing --rm /does-not-exist
    assert_rc_nonzero "a missing binary fails ctr run"
    # runc: 'OCI runtime create failed: runc create failed: unable to start
    # container process: exec: "/does-not-exist": stat /does-not-exist: no such
    # file or directory' — the shim reads it from the runtime's --log file.
    assert_contains "$ERR" "/does-not-exist" "the error names the missing path"
    ctr_ containers delete ctr-missing >/dev/null 2>&1 || true
}

test_detached_task() {
    local id=ctr-detached pid
    capture ctr_run "$id" -d --null-io sleep 1000
    assert_rc 0 "ctr run -d: rc 0"
    wait_for 10 task_status_is "$id" RUNNING || true
    assert_eq RUNNING "$(task_status "$id")" "ctr tasks ls: RUNNING"
    pid=$(ctr_ tasks ls | awk -v id="$id" '$1 == id { print $2 }')

    # The shim's --runc-root/<namespace> is the runtime's --root.
    capture timeout 10 "$RUNTIME" --root "$C/runc-root/e2e" state "$id"
    assert_rc 0 "the runtime's own state sees the task under --runc-root"
    assert_eq running "$(json_get 'j["status"]' <<<"$OUT")" "…as running"
    assert_eq "$pid" "$(json_get 'j["pid"]' <<<"$OUT")" "…with the task's pid"

    capture ctr_ tasks exec --exec-id e1 --fifo-dir "$C/fifo" "$id" sh -c 'echo from-exec; exit 4'
    assert_eq from-exec "$OUT" "ctr tasks exec: output"
    assert_rc 4 "ctr tasks exec: exit status (4)"

    capture ctr_ tasks ps "$id"
    assert_contains "$OUT" "$pid" "ctr tasks ps lists the init pid"

    capture ctr_ tasks pause "$id"
    assert_rc 0 "ctr tasks pause: rc 0"
    assert_eq PAUSED "$(task_status "$id")" "…PAUSED"
    capture ctr_ tasks resume "$id"
    assert_rc 0 "ctr tasks resume: rc 0"
    assert_eq RUNNING "$(task_status "$id")" "…RUNNING"

    capture ctr_ tasks kill -s KILL "$id"
    assert_rc 0 "ctr tasks kill -s KILL: rc 0"
    wait_for 10 task_status_is "$id" STOPPED || true
    assert_eq STOPPED "$(task_status "$id")" "…STOPPED"
    capture ctr_ tasks delete "$id"
    assert_rc 0 "ctr tasks delete: rc 0"
    capture ctr_ containers delete "$id"
    assert_rc 0 "ctr containers delete: rc 0"
    capture timeout 10 "$RUNTIME" --root "$C/runc-root/e2e" state "$id"
    assert_contains "$ERR" "does not exist" "the runtime's state is gone too"
}

test_runc_binary_is_used() {
    cat >"$TEST_TMP/ctr-wrapper" <<EOF
#!/bin/sh
printf '%s\n' "\$*" >>"$TEST_TMP/ctr-wrapper.calls"
exec "$RUNTIME" "\$@"
EOF
    chmod +x "$TEST_TMP/ctr-wrapper"
    RUNC_BINARY=$TEST_TMP/ctr-wrapper
    capture ctr_run ctr-wrapped --rm echo wrapped
    assert_eq wrapped "$OUT" "ctr run through a wrapper around \$RUNTIME"
    assert_true "the --runc-binary was invoked for create" grep -qE "(^| )create .*ctr-wrapped\$" "$TEST_TMP/ctr-wrapper.calls"
    assert_true "…with --log/--log-format json (the shim's argv)" grep -qE -- "--log .*--log-format json" "$TEST_TMP/ctr-wrapper.calls"
    assert_true "…and for delete" grep -qE "(^| )delete .*ctr-wrapped\$" "$TEST_TMP/ctr-wrapper.calls"
}

start_containerd
run_tests test_import_image test_run_output test_exit_code test_missing_binary \
    test_detached_task test_runc_binary_is_used
e2e_finish
