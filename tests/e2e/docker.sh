#!/usr/bin/env bash
# tests/e2e/docker.sh — the runtime under a real Docker engine.
#
# Proves that a private dockerd with the runtime registered as "nvidia"
# (daemon.json "runtimes") runs busybox containers through it: output, stdin,
# Docker's default seccomp profile (and none with seccomp=unconfined),
# exit codes, detached containers with logs/exec/top, pause/unpause, stop
# (TERM, then KILL), update --memory, --read-only, -it through a pty, a missing
# entrypoint reported with its path, and — with a second daemon whose
# "default-runtime" is "nvidia" — that a plain `docker run` goes through the
# runtime binary (a wrapper script in front of $RUNTIME leaves a trace).
# The engine talks to the runtime through containerd-shim-runc-v2, so this also
# covers the shim's argv (--root/--log/--log-format json, create --bundle
# --pid-file, start, state, kill, delete, exec --process --detach, ps, update,
# pause/resume).
source "$(dirname "$0")/../lib.sh"
e2e_init "$@"

NET=(--network=none)
RT=(--runtime=nvidia)

# container_pid NAME : host pid of the container's init
container_pid() { docker_ inspect -f '{{.State.Pid}}' "$1"; }
# wait_log NAME TEXT : until `docker logs NAME` contains TEXT (10 s)
wait_log() { wait_for 10 bash -c "docker -H unix://$D/docker.sock logs $1 2>&1 | grep -q '$2'"; }

test_run_output() {
    capture docker_ run --rm "${RT[@]}" "${NET[@]}" bb echo hello
    assert_rc 0 "docker run --runtime=nvidia: rc 0"
    assert_eq hello "$OUT" "docker run --runtime=nvidia: output"

    capture docker_ run --rm -i "${RT[@]}" "${NET[@]}" bb sh -c 'cat; hostname' <<<"piped-in"
    assert_eq piped-in "$(head -n 1 <<<"$OUT")" "docker run -i: stdin reaches the container"

    capture docker_ run "${RT[@]}" "${NET[@]}" --name runtime-check bb true
    assert_eq nvidia "$(docker_ inspect -f '{{.HostConfig.Runtime}}' runtime-check)" "the container's runtime is nvidia"
    docker_ rm runtime-check >/dev/null
}

test_default_seccomp_profile() {
    capture docker_ run --rm "${RT[@]}" "${NET[@]}" bb grep "^Seccomp:" /proc/self/status
    assert_match "$OUT" "Seccomp:[[:space:]]+2" "docker's default seccomp profile is loaded (mode 2)"
    capture docker_ run --rm "${RT[@]}" "${NET[@]}" --security-opt seccomp=unconfined bb grep "^Seccomp:" /proc/self/status
    assert_match "$OUT" "Seccomp:[[:space:]]+0" "…and none with --security-opt seccomp=unconfined"
}

test_exit_codes() {
    capture docker_ run --rm "${RT[@]}" "${NET[@]}" bb sh -c 'exit 3'
    assert_rc 3 "docker run returns the container's exit code (3)"
    capture docker_ run --rm "${RT[@]}" "${NET[@]}" bb false
    assert_rc 1 "docker run returns the container's exit code (1)"
}

test_detached_logs_exec_top() {
    local name=detached
    capture docker_ run -d "${RT[@]}" "${NET[@]}" --name "$name" bb sh -c 'echo started; exec sleep 1000'
    assert_rc 0 "docker run -d: rc 0"
    assert_match "$OUT" '^[0-9a-f]{64}$' "docker run -d prints the container id"
    wait_log "$name" started || true
    capture docker_ logs "$name"
    assert_eq started "$OUT" "docker logs shows the container's output"
    assert_eq true "$(docker_ inspect -f '{{.State.Running}}' "$name")" "the container is running"

    capture docker_ exec "$name" sh -c 'echo from-exec; cat /proc/1/cmdline | tr "\0" " "'
    assert_rc 0 "docker exec: rc 0"
    assert_eq "from-exec"$'\n'"sleep 1000 " "$OUT" "docker exec runs inside the container (pid 1 is the sleep)"
    capture docker_ exec "$name" sh -c 'exit 6'
    assert_rc 6 "docker exec returns the process's exit code"
    capture docker_ exec -e FOO=bar -w /tmp "$name" sh -c 'echo "$FOO $(pwd)"'
    assert_eq "bar /tmp" "$OUT" "docker exec -e/-w set env and cwd"
    capture docker_ exec "$name" /does-not-exist
    assert_rc_nonzero "docker exec of a missing binary fails"
    assert_contains "$OUT$ERR" "/does-not-exist" "…naming the path"

    capture docker_ top "$name"
    assert_rc 0 "docker top: rc 0"
    assert_match "$(head -n 1 <<<"$OUT")" 'PID' "docker top has a PID column"
    assert_contains "$OUT" "sleep 1000" "docker top lists the container's process"
    docker_ rm -f "$name" >/dev/null
}

test_pause_unpause() {
    local name=pausable pid
    docker_ run -d "${RT[@]}" "${NET[@]}" --name "$name" bb sleep 1000 >/dev/null
    pid=$(container_pid "$name")
    capture docker_ pause "$name"
    assert_rc 0 "docker pause: rc 0"
    assert_eq paused "$(docker_ inspect -f '{{.State.Status}}' "$name")" "docker says paused"
    assert_eq FROZEN "$(freezer_state_of "$pid")" "the container's cgroup is frozen"
    capture docker_ unpause "$name"
    assert_rc 0 "docker unpause: rc 0"
    assert_eq running "$(docker_ inspect -f '{{.State.Status}}' "$name")" "docker says running"
    assert_eq THAWED "$(freezer_state_of "$pid")" "the container's cgroup is thawed"
    capture docker_ exec "$name" echo alive
    assert_eq alive "$OUT" "exec works after unpause"
    docker_ rm -f "$name" >/dev/null
}

test_update_memory() {
    local name=updatable pid
    docker_ run -d "${RT[@]}" "${NET[@]}" --name "$name" bb sleep 1000 >/dev/null
    pid=$(container_pid "$name")
    # (docker itself refuses --memory alone on a container started without
    # limits: "Memory limit should be smaller than already set memoryswap
    # limit, update the memoryswap at the same time")
    capture docker_ update --memory 64m --memory-swap 128m "$name"
    assert_rc 0 "docker update --memory 64m --memory-swap 128m: rc 0"
    assert_eq 67108864 "$(docker_ inspect -f '{{.HostConfig.Memory}}' "$name")" "docker inspect: Memory is 64 MiB"
    assert_eq 67108864 "$(memory_limit_of "$pid")" "the container's cgroup limit is 64 MiB (host side)"
    if ! cgroup_v2_only; then
        capture docker_ exec "$name" cat /sys/fs/cgroup/memory/memory.limit_in_bytes
        assert_eq 67108864 "$OUT" "memory.limit_in_bytes inside the container is 64 MiB"
    fi
    docker_ rm -f "$name" >/dev/null
}

test_stop() {
    local name=stop-trap start elapsed
    docker_ run -d "${RT[@]}" "${NET[@]}" --name "$name" bb \
        sh -c 'trap "echo got-TERM; exit 42" TERM; echo ready; sleep 1000 & wait $!' >/dev/null
    wait_log "$name" ready || true
    start=$SECONDS
    capture docker_ stop -t 10 "$name"
    elapsed=$((SECONDS - start))
    assert_rc 0 "docker stop: rc 0"
    assert_eq "exited 42" "$(docker_ inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$name")" \
        "docker stop delivers TERM (the trap's exit code 42)"
    assert_true "…quickly (${elapsed}s < 5s)" test "$elapsed" -lt 5
    assert_contains "$(docker_ logs "$name")" got-TERM "…and the trap's output is in the logs"
    docker_ rm "$name" >/dev/null

    # pid 1 without a handler ignores TERM: docker falls back to KILL after -t
    name=stop-notrap
    docker_ run -d "${RT[@]}" "${NET[@]}" --name "$name" bb sleep 1000 >/dev/null
    start=$SECONDS
    capture docker_ stop -t 2 "$name"
    elapsed=$((SECONDS - start))
    assert_rc 0 "docker stop of a TERM-immune container: rc 0"
    assert_eq "exited 137" "$(docker_ inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$name")" \
        "…it is KILLed after the timeout (exit 137)"
    assert_true "…within 15s (${elapsed}s)" test "$elapsed" -lt 15
    docker_ rm "$name" >/dev/null
}

test_read_only() {
    capture docker_ run --rm "${RT[@]}" "${NET[@]}" --read-only bb touch /probe
    assert_rc 1 "--read-only: writing to / fails"
    assert_contains "$ERR" "Read-only file system" "…with EROFS"
    capture docker_ run --rm "${RT[@]}" "${NET[@]}" --read-only --tmpfs /scratch bb sh -c 'echo ok >/scratch/x && cat /scratch/x'
    assert_eq ok "$OUT" "--read-only with --tmpfs: the tmpfs is writable"
}

test_interactive_tty() {
    capture pty_run docker -H "unix://$D/docker.sock" run --rm -it "${RT[@]}" "${NET[@]}" bb sh -c 'tty; exit 5'
    assert_rc 5 "docker run -it: exit code through the pty"
    assert_contains "$OUT" "/dev/pts/" "docker run -it: the container has a pty"
}

test_missing_entrypoint() {
    capture docker_ run --rm "${RT[@]}" "${NET[@]}" bb /does-not-exist
    assert_rc_nonzero "a missing entrypoint fails docker run"
    # runc says: OCI runtime create failed: runc create failed: unable to start container
    # process: exec: "/does-not-exist": stat /does-not-exist: no such file or directory
    # Only the path is required of our runtime, not runc's wording.
    assert_contains "$ERR" "/does-not-exist" "docker's error names the missing path"
    # The docker CLI turns errors containing "no such file or directory" into 127
    # (as for a shell's command-not-found); scripts rely on it.
    assert_rc 127 "…and docker run exits 127"
}

test_default_runtime() {
    assert_eq nvidia "$(docker_ info -f '{{.DefaultRuntime}}')" "docker info: default runtime is nvidia"
    : >"$TEST_TMP/wrapper.calls"
    capture docker_ run "${NET[@]}" --name plain bb echo via-default
    assert_rc 0 "plain docker run (no --runtime): rc 0"
    assert_eq via-default "$OUT" "plain docker run: output"
    assert_eq nvidia "$(docker_ inspect -f '{{.HostConfig.Runtime}}' plain)" "plain docker run used runtime nvidia"
    local id
    id=$(docker_ inspect -f '{{.Id}}' plain)
    assert_true "the runtime binary was invoked: create --bundle … $id" \
        grep -qE "(^| )create .*--bundle .*$id" "$TEST_TMP/wrapper.calls"
    assert_true "…and start $id" grep -qE "(^| )start $id\$" "$TEST_TMP/wrapper.calls"
    docker_ rm plain >/dev/null
}

# --- daemon 1: runtime "nvidia" registered, default runtime untouched -------
start_dockerd --name docker
import_busybox_image bb
run_tests \
    test_run_output test_default_seccomp_profile test_exit_codes test_detached_logs_exec_top test_pause_unpause \
    test_update_memory test_stop test_read_only test_interactive_tty test_missing_entrypoint
stop_dockerd "$D"

# --- daemon 2: "default-runtime": "nvidia", pointing at a tracing wrapper -----
cat >"$TEST_TMP/nvidia-wrapper" <<EOF
#!/bin/sh
# Leaves a trace of every invocation, then becomes the runtime under test.
printf '%s\n' "\$*" >>"$TEST_TMP/wrapper.calls"
exec "$RUNTIME" "\$@"
EOF
chmod +x "$TEST_TMP/nvidia-wrapper"
start_dockerd --name docker-default --default-runtime nvidia --runtime-path "$TEST_TMP/nvidia-wrapper"
import_busybox_image bb
run_tests test_default_runtime
e2e_finish
