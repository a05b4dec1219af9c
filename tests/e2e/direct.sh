#!/usr/bin/env bash
# tests/e2e/direct.sh — the runtime driven directly, as containerd-shim and people do.
#
# Proves, on busybox bundles with `$RUNTIME --root $STATE …`, that the runtime's
# CLI behaves exactly like runc's: the create/start/state/pause/resume/kill/delete
# lifecycle and the statuses it reports, exec in all its forms (inline args,
# --process, --detach --pid-file, --env/--cwd, --tty), ps, exit codes of `run`
# (including 128+signal and TERM forwarding), run --detach, read-only rootfs,
# duplicate ids, errors for missing containers, kill --all, update --resources,
# features, spec, and the global flags --root/--log/--log-format/--debug.
# Every expectation was checked against runc 1.1.5 (Debian bookworm).
#
# runc behaviours that may surprise (asserted, so the runtime must match):
#  - `delete --force` of an id that does not exist succeeds silently (rc 0);
#    plain `delete` of it fails (rc 1, "container does not exist").
#  - `exec` failures of the runtime itself exit 255 (missing container, paused
#    container, missing binary); otherwise exec returns the process's code.
#  - `state` of a stopped container reports "pid": 0.
#  - `pause` of a paused container says "container not running".
#  - with `--log F`, stderr gets the bare error message and F gets the
#    (JSON with --log-format json) log line; F is created even if nothing is logged.
#  - `spec` refuses to overwrite an existing config.json (rc 1, "File config.json
#    exists. Remove it first").
#  - `run` deletes the container when it exits (state → "does not exist").
#  - the container's pid 1 cannot be SIGKILLed from inside its pid namespace
#    (`sh -c 'kill -9 $$'` exits 0), so 137 is tested by killing from outside.
#  - not asserted: `list --format json` with no containers prints `null`.
source "$(dirname "$0")/../lib.sh"
e2e_init "$@"

OTHER_ROOT=$TEST_TMP/other-root     # a second --root, for test_global_flags
mkdir -p "$OTHER_ROOT"
_E2E_STATE_ROOTS+=("$OTHER_ROOT")   # (registered here so cleanup sees it)

# --- helpers ---------------------------------------------------------------

# status_of ID : the "status" field of `state`, or "?" if state fails.
status_of() { rt state "$1" 2>/dev/null | json_get 'j["status"]' 2>/dev/null || echo "?"; }
status_is() { [[ $(status_of "$1") == "$2" ]]; }
# new_container NAME ARGS... : bundle $TEST_TMP/NAME, created and started as NAME;
# prints nothing, sets PID to the init's host pid.
PID=""
new_container() {
    local name=$1; shift
    make_bundle "$TEST_TMP/$name" "$@"
    rt create --bundle "$TEST_TMP/$name" --pid-file "$TEST_TMP/$name.pid" "$name" >/dev/null 2>&1 </dev/null
    rt start "$name"
    PID=$(<"$TEST_TMP/$name.pid")
}
# gone ID : kill and delete, ignoring errors (test teardown).
gone() { rt delete --force "$1" >/dev/null 2>&1 || true; }
cmdline_of() { tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" | sed 's/ $//'; }
alive() { kill -0 "$1" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) != Z ]]; }

# --- lifecycle -------------------------------------------------------------

test_lifecycle() {
    local id=lifecycle b=$TEST_TMP/lifecycle pid cgdir
    make_bundle "$b" sleep 1000

    capture rt create --bundle "$b" --pid-file "$TEST_TMP/lc.pid" "$id" </dev/null
    assert_rc 0 "create succeeds"
    assert_eq "" "$OUT" "create prints nothing on stdout"
    pid=$(cat "$TEST_TMP/lc.pid" 2>/dev/null || true)
    assert_match "$pid" '^[0-9]+$' "--pid-file holds a pid"
    assert_true "the container's init process exists" alive "$pid"
    assert_not_contains "$(cmdline_of "$pid")" "sleep" "the user's program does not run before start"

    capture rt state "$id"
    assert_rc 0 "state of a created container"
    assert_eq created "$(json_get 'j["status"]' <<<"$OUT")" "state: status created"
    assert_eq "$pid" "$(json_get 'j["pid"]' <<<"$OUT")" "state: pid matches the pid file"
    assert_eq "$id" "$(json_get 'j["id"]' <<<"$OUT")" "state: id"
    assert_eq "$b" "$(json_get 'j["bundle"]' <<<"$OUT")" "state: bundle is the absolute bundle path"
    assert_match "$(json_get 'j["ociVersion"]' <<<"$OUT")" '^1\.' "state: ociVersion"

    capture rt start "$id"
    assert_rc 0 "start succeeds"
    assert_eq running "$(status_of "$id")" "state: status running"
    wait_for 5 bash -c "tr '\0' ' ' </proc/$pid/cmdline | grep -q '^sleep 1000'" || true
    assert_eq "sleep 1000" "$(cmdline_of "$pid")" "after start the init pid runs the user's program"
    cgdir=$(cgroup_dir_of "$pid" memory)

    capture rt start "$id"
    assert_rc 1 "start of a running container fails"

    capture rt pause "$id"
    assert_rc 0 "pause succeeds"
    assert_eq paused "$(status_of "$id")" "state: status paused"
    assert_eq FROZEN "$(freezer_state_of "$pid")" "paused: the cgroup is frozen"
    capture rt pause "$id"
    assert_rc 1 "pause of a paused container fails"
    assert_contains "$ERR" "container not running" "pause of a paused container: 'container not running'"

    capture rt resume "$id"
    assert_rc 0 "resume succeeds"
    assert_eq running "$(status_of "$id")" "state: status running again"
    assert_eq THAWED "$(freezer_state_of "$pid")" "resumed: the cgroup is thawed"
    capture rt resume "$id"
    assert_rc 1 "resume of a running container fails"
    assert_contains "$ERR" "container not paused" "resume of a running container: 'container not paused'"

    capture rt delete "$id"
    assert_rc 1 "delete (no --force) of a running container fails"
    assert_contains "$ERR" "not stopped" "…saying it is not stopped"
    assert_true "…and the container survives" alive "$pid"

    capture rt kill "$id" KILL
    assert_rc 0 "kill KILL succeeds"
    wait_for 5 status_is "$id" stopped || true
    assert_eq stopped "$(status_of "$id")" "state: status stopped"
    # runc reports pid 0 once the container has stopped
    assert_eq 0 "$(rt state "$id" | json_get 'j["pid"]')" "state: pid 0 when stopped"

    capture rt kill "$id" KILL
    assert_rc 1 "kill of a stopped container fails"
    assert_contains "$ERR" "container not running" "…with 'container not running'"
    capture rt start "$id"
    assert_rc 1 "start of a stopped container fails"

    capture rt delete "$id"
    assert_rc 0 "delete of a stopped container succeeds"
    assert_eq "" "$OUT" "delete prints nothing"
    capture rt state "$id"
    assert_rc 1 "state after delete fails with rc 1"
    assert_contains "$ERR" "does not exist" "…and says 'does not exist'"
    assert_false "delete removed the container's cgroup ($cgdir)" test -d "$cgdir"
}

# --- exec ------------------------------------------------------------------

test_exec() {
    local id=exec
    new_container "$id" sleep 1000
    local initpid=$PID

    capture rt exec "$id" echo hi
    assert_rc 0 "exec inline args: rc 0"
    assert_eq hi "$OUT" "exec inline args: output"

    capture rt exec "$id" sh -c 'exit 4'
    assert_rc 4 "exec propagates the process's exit code"

    capture rt exec "$id" sh -c 'echo "$TERM"; hostname; echo $$'
    assert_eq $'xterm\ne2e' "$(head -n 2 <<<"$OUT")" "exec inherits the config's env and runs in the container's uts ns"
    assert_ne 1 "$(tail -n 1 <<<"$OUT")" "exec'd process is not pid 1 in the container"

    capture rt exec --env FOO=bar --env TERM=dumb --cwd /tmp "$id" sh -c 'echo "$FOO $TERM"; pwd'
    assert_rc 0 "exec --env --cwd: rc 0"
    assert_eq $'bar dumb\n/tmp' "$OUT" "exec --env sets/overrides variables, --cwd sets the directory"

    cat >"$TEST_TMP/process.json" <<'EOF'
{"terminal": false, "user": {"uid": 65534, "gid": 65534}, "cwd": "/etc",
 "args": ["sh", "-c", "echo from-process-file $X; id -u; pwd; echo TERM=$TERM"],
 "env": ["PATH=/bin:/usr/bin", "X=42"]}
EOF
    capture rt exec --process "$TEST_TMP/process.json" "$id"
    assert_rc 0 "exec --process FILE: rc 0"
    assert_eq $'from-process-file 42\n65534\n/etc\nTERM=' "$OUT" "exec --process uses args, env, user and cwd from the file"

    capture rt exec --detach --pid-file "$TEST_TMP/exec.pid" "$id" sleep 500 </dev/null
    assert_rc 0 "exec --detach returns at once with rc 0"
    local epid; epid=$(cat "$TEST_TMP/exec.pid" 2>/dev/null || true)
    assert_match "$epid" '^[0-9]+$' "exec --detach --pid-file writes the pid"
    assert_eq "sleep 500" "$(cmdline_of "$epid")" "the detached process runs"
    assert_eq "$(readlink /proc/"$initpid"/ns/pid)" "$(readlink /proc/"$epid"/ns/pid 2>/dev/null)" \
        "the detached process is in the container's pid namespace"

    capture rt ps --format json "$id"
    assert_rc 0 "ps --format json: rc 0"
    assert_eq "[$initpid, $epid]" "$(json_get 'sorted(j)' <<<"$OUT")" "ps --format json lists init and exec'd pids (host pids)"

    capture rt ps "$id"
    assert_rc 0 "ps (table): rc 0"
    assert_match "$(head -n 1 <<<"$OUT")" '(^|[[:space:]])PID([[:space:]]|$)' "ps table has a PID header"
    assert_match "$OUT" "[[:space:]]${epid}[[:space:]].*sleep 500" "ps table lists the exec'd process"

    capture pty_run "$RUNTIME" --root "$STATE" exec --tty "$id" sh -c 'tty; exit 5'
    assert_rc 5 "exec --tty: exit code propagates through the pty"
    assert_contains "$OUT" "/dev/pts/" "exec --tty: the process has a pty as its terminal"

    capture rt exec "$id" tty
    assert_rc 1 "exec without --tty: no terminal (tty exits 1)"

    capture rt exec "$id" /does-not-exist
    # runc exits 255 for any exec failure of its own (not the process's code)
    assert_rc 255 "exec of a missing binary fails with rc 255"
    assert_contains "$ERR" "/does-not-exist" "…naming the missing path"

    rt pause "$id"
    capture rt exec "$id" true
    assert_rc 255 "exec into a paused container fails with rc 255"
    assert_contains "$ERR" "paused" "…saying the container is paused"
    rt resume "$id"

    gone "$id"
}

# --- kill ------------------------------------------------------------------

test_kill_signal_names() {
    local sig id
    # runc accepts names with or without SIG, any case, and numbers
    for sig in KILL SIGKILL 9 kill; do
        id=kill-$(tr -dc 'a-z0-9' <<<"$sig")
        new_container "$id" sleep 1000
        capture rt kill "$id" "$sig"
        assert_rc 0 "kill $sig accepted"
        wait_for 5 status_is "$id" stopped || true
        assert_eq stopped "$(status_of "$id")" "kill $sig stops the container"
        gone "$id"
    done

    # (signalled only once the trap is set: before, pid 1 of a pid namespace ignores TERM)
    new_container kill-default sh -c 'trap "exit 0" TERM; touch /trap-set; sleep 1000 & wait'
    wait_for 10 test -e "$TEST_TMP/kill-default/rootfs/trap-set" || true
    capture rt kill kill-default
    assert_rc 0 "kill without a signal succeeds"
    wait_for 5 status_is kill-default stopped || true
    assert_eq stopped "$(status_of kill-default)" "kill's default signal is TERM (the trap ran)"
    gone kill-default

    new_container kill-bogus sleep 1000
    capture rt kill kill-bogus BOGUS
    assert_rc 1 "kill with an unknown signal fails with rc 1"
    assert_contains "$ERR" "BOGUS" "…naming the signal"
    assert_eq running "$(status_of kill-bogus)" "…and the container keeps running"
    gone kill-bogus
}

test_kill_all() {
    local id=killall
    new_container "$id" sleep 1000
    local initpid=$PID
    rt exec --detach "$id" sleep 501 </dev/null >/dev/null 2>&1
    rt exec --detach "$id" sleep 502 </dev/null >/dev/null 2>&1
    assert_eq 3 "$(rt ps --format json "$id" | json_get 'len(j)')" "three processes in the container"

    # The init (pid 1 in its namespace, no handler) ignores TERM; the others die.
    # So `kill --all TERM` is observable: only the init is left.
    capture rt kill --all "$id" TERM
    assert_rc 0 "kill --all TERM succeeds"
    wait_for 5 bash -c "[[ \$('$RUNTIME' --root '$STATE' ps --format json $id) == '[$initpid]' ]]" || true
    assert_eq "[$initpid]" "$(rt ps --format json "$id")" "kill --all signalled every process (only the TERM-immune init is left)"
    assert_eq running "$(status_of "$id")" "the container still runs"

    capture rt kill --all "$id" KILL
    assert_rc 0 "kill --all KILL succeeds"
    wait_for 5 status_is "$id" stopped || true
    assert_eq stopped "$(status_of "$id")" "kill --all KILL stops the container"
    gone "$id"
}

# --- run -------------------------------------------------------------------

test_run_exit_code() {
    make_bundle "$TEST_TMP/run-exit" sh -c 'echo to-stdout; echo to-stderr >&2; exit 7'
    capture rt run --bundle "$TEST_TMP/run-exit" run-exit </dev/null
    assert_rc 7 "run: the container's exit code (7) is run's exit code"
    assert_eq to-stdout "$OUT" "run: the container's stdout is run's stdout"
    assert_contains "$ERR" to-stderr "run: the container's stderr is run's stderr"
    capture rt state run-exit
    assert_rc 1 "run deletes the container when it exits"
    assert_contains "$ERR" "does not exist" "…state says 'does not exist'"

    make_bundle "$TEST_TMP/run-true" true
    capture rt run --bundle "$TEST_TMP/run-true" run-true </dev/null
    assert_rc 0 "run of 'true' exits 0"
}

# Start `run` in the background (no timeout wrapper: signals go straight to the runtime).
_run_bg() {  # _run_bg ID BUNDLE → RUN_PID, output in $TEST_TMP/ID.out
    "$RUNTIME" --root "$STATE" run --bundle "$2" "$1" >"$TEST_TMP/$1.out" 2>&1 </dev/null &
    RUN_PID=$!
}

# runc gives a foreground `run` whose spec asks for a terminal a pty of its own when no
# --console-socket is passed (runc's `spec` template asks for one).
test_run_terminal() {
    make_bundle "$TEST_TMP/run-tty" sh -c 'tty; exit 4'
    bundle_set "$TEST_TMP/run-tty" 'c["process"]["terminal"] = True'
    capture pty_run "$RUNTIME" --root "$STATE" run --bundle "$TEST_TMP/run-tty" run-tty
    assert_rc 4 "run with terminal: exit code through the pty"
    assert_contains "$OUT" "/dev/pts/" "run with terminal: the process has a pty"
    assert_false "run with terminal: container removed afterwards" rt state run-tty
}

test_run_killed_by_signal() {
    local id=run-kill
    # (`sh -c 'kill -9 $$'` inside would not do: pid 1 of a pid namespace
    # cannot be killed from inside it, even by SIGKILL — it just exits 0.)
    make_bundle "$TEST_TMP/$id" sh -c 'echo ready; exec sleep 1000'
    _run_bg "$id" "$TEST_TMP/$id"
    wait_for 10 grep -q ready "$TEST_TMP/$id.out" || fail "container did not start" "$(cat "$TEST_TMP/$id.out")"
    rt kill "$id" KILL
    wait_pid "$RUN_PID" 15
    assert_rc 137 "run returns 128+9 when the container is killed by SIGKILL"
    [[ $RC == 124 ]] && { kill -9 "$RUN_PID" 2>/dev/null; gone "$id"; }
    capture rt state "$id"
    assert_rc 1 "…and the container is deleted"
}

test_run_forwards_term() {
    local id=run-term
    make_bundle "$TEST_TMP/$id" sh -c 'trap "echo got-TERM; exit 143" TERM; echo ready; sleep 1000 & wait $!'
    _run_bg "$id" "$TEST_TMP/$id"
    wait_for 10 grep -q ready "$TEST_TMP/$id.out" || fail "container did not start" "$(cat "$TEST_TMP/$id.out")"
    kill -TERM "$RUN_PID"
    wait_pid "$RUN_PID" 15
    assert_rc 143 "TERM sent to the runtime's 'run' reaches the container (its trap exits 143)"
    [[ $RC == 124 ]] && { gone "$id"; wait_pid "$RUN_PID" 5; }
    assert_contains "$(cat "$TEST_TMP/$id.out")" got-TERM "…and the trap's output came through"
}

test_run_detach() {
    local id=run-detach pid
    make_bundle "$TEST_TMP/$id" sleep 1000
    capture rt run --detach --pid-file "$TEST_TMP/$id.pid" --bundle "$TEST_TMP/$id" "$id" </dev/null
    assert_rc 0 "run --detach returns with rc 0"
    pid=$(cat "$TEST_TMP/$id.pid" 2>/dev/null || true)
    assert_eq running "$(status_of "$id")" "run --detach: container is running"
    assert_eq "$pid" "$(rt state "$id" | json_get 'j["pid"]')" "run --detach --pid-file: pid matches state"
    assert_eq "sleep 1000" "$(cmdline_of "$pid")" "run --detach: the program runs"
    gone "$id"
    assert_false "delete --force killed it" alive "$pid"
}

# --- rootfs, ids, errors ---------------------------------------------------

test_readonly_rootfs() {
    local b=$TEST_TMP/ro
    make_bundle "$b" touch /probe
    bundle_set "$b" 'c["root"]["readonly"] = True'
    capture rt run --bundle "$b" ro </dev/null
    assert_rc 1 "writing to / fails inside a read-only rootfs"
    assert_contains "$ERR" "Read-only file system" "…with EROFS"
    assert_false "nothing was written to the bundle's rootfs" test -e "$b/rootfs/probe"

    bundle_args "$b" sh -c 'echo ok >/dev/shm/x && cat /dev/shm/x'
    capture rt run --bundle "$b" ro2 </dev/null
    assert_rc 0 "tmpfs mounts stay writable on a read-only rootfs"

    bundle_set "$b" 'c["root"]["readonly"] = False'
    bundle_args "$b" touch /probe
    capture rt run --bundle "$b" rw </dev/null
    assert_rc 0 "the same write works when root.readonly is false"
}

test_duplicate_id() {
    local id=dup pid
    make_bundle "$TEST_TMP/dup-a" sleep 1000
    make_bundle "$TEST_TMP/dup-b" sleep 1000
    rt create --bundle "$TEST_TMP/dup-a" --pid-file "$TEST_TMP/dup.pid" "$id" </dev/null >/dev/null 2>&1
    pid=$(<"$TEST_TMP/dup.pid")
    capture rt create --bundle "$TEST_TMP/dup-b" --pid-file "$TEST_TMP/dup2.pid" "$id" </dev/null
    assert_rc 1 "a second create with the same id fails with rc 1"
    assert_contains "$ERR" "already exists" "…saying the id already exists"
    capture rt state "$id"
    assert_eq created "$(json_get 'j["status"]' <<<"$OUT")" "the first container is still 'created'"
    assert_eq "$pid" "$(json_get 'j["pid"]' <<<"$OUT")" "…with its own pid"
    assert_eq "$TEST_TMP/dup-a" "$(json_get 'j["bundle"]' <<<"$OUT")" "…and its own bundle"
    capture rt start "$id"
    assert_rc 0 "the first container still starts"
    assert_eq running "$(status_of "$id")" "…and runs"

    capture rt run --detach --bundle "$TEST_TMP/dup-b" "$id" </dev/null
    assert_rc 1 "run --detach with a running container's id fails with rc 1"
    assert_true "…and the first container is still alive" alive "$pid"
    gone "$id"
}

test_missing_container() {
    local c
    for c in "state" "delete" "start" "kill @ KILL" "pause" "resume" "ps" "update --memory 100000000"; do
        # '@' marks where the id goes when it is not last
        local -a argv; read -ra argv <<<"$c"
        if [[ $c == *@* ]]; then argv=("${argv[@]/@/nope}"); else argv+=(nope); fi
        capture rt "${argv[@]}"
        assert_rc 1 "'${argv[*]}' (missing container): rc 1"
        assert_contains "$ERR" "does not exist" "'${argv[*]}' (missing container): 'does not exist'"
    done
    capture rt exec nope true
    assert_rc 255 "exec into a missing container: rc 255 (runc's exec-failure code)"
    assert_contains "$ERR" "does not exist" "exec into a missing container: 'does not exist'"
    # runc: `delete --force` of an id that does not exist succeeds silently
    capture rt delete --force nope
    assert_rc 0 "delete --force of a missing container succeeds (as runc)"
    assert_eq "" "$OUT$ERR" "…silently"
    capture rt create --bundle "$TEST_TMP/no-such-bundle" nb </dev/null
    assert_rc 1 "create with a missing bundle dir fails with rc 1"
    assert_contains "$ERR" "no-such-bundle" "…naming the bundle"
    assert_eq 1 "$(grep -c "no-such-bundle" <<<"$ERR")" "…once"
    local b=$TEST_TMP/badid
    make_bundle "$b" true
    capture rt run --bundle "$b" "bad/id" </dev/null
    assert_rc 1 "run with an id that is not one fails with rc 1"
    assert_contains "$ERR" "invalid container id" "…saying so"
    assert_eq 1 "$(grep -c "invalid container id" <<<"$ERR")" "…once"
    assert_eq "" "$(ls -A "$STATE")" "…leaving nothing under \$STATE"
}

test_delete_force_running() {
    local id=delforce cgdir
    new_container "$id" sleep 1000
    local pid=$PID
    cgdir=$(cgroup_dir_of "$pid" memory)
    capture rt delete --force "$id"
    assert_rc 0 "delete --force of a running container succeeds"
    assert_false "…its process is gone" alive "$pid"
    capture rt state "$id"
    assert_contains "$ERR" "does not exist" "…and so is its state"
    assert_false "…and its cgroup" test -d "$cgdir"
}

# --- update / features / spec ----------------------------------------------

test_update_resources() {
    local id=update
    have_controllers memory pids || return 0
    new_container "$id" sleep 1000
    local pid=$PID
    capture rt update --resources - "$id" <<<'{"memory": {"limit": 67108864}, "pids": {"limit": 42}}'
    assert_rc 0 "update --resources - (JSON on stdin) succeeds"
    assert_eq 67108864 "$(memory_limit_of "$pid")" "the cgroup's memory limit is 64 MiB"
    assert_eq 42 "$(cat "$(cgroup_dir_of "$pid" pids)/pids.max")" "the cgroup's pids limit is 42"

    capture rt update --memory 100663296 "$id"
    assert_rc 0 "update --memory N succeeds"
    assert_eq 100663296 "$(memory_limit_of "$pid")" "the cgroup's memory limit is 96 MiB"

    capture rt update --resources - "$id" <<<'not json'
    assert_rc 1 "update with invalid JSON fails with rc 1"
    assert_eq 100663296 "$(memory_limit_of "$pid")" "…and leaves the limit alone"
    gone "$id"
}

test_features() {
    capture rt features
    assert_rc 0 "features: rc 0"
    assert_true "features prints JSON" json_get 'j' <<<"$OUT"
    assert_match "$(json_get 'j.get("ociVersionMin", "")' <<<"$OUT")" '^1\.' "features: ociVersionMin"
    assert_match "$(json_get 'j.get("ociVersionMax", "")' <<<"$OUT")" '^1\.' "features: ociVersionMax"
    assert_contains "$(json_get 'j.get("hooks", [])' <<<"$OUT")" prestart "features: hooks include prestart"
    # runc writes the annotations map ordered by key; every run prints the same bytes
    local first=$OUT differing=0
    for _ in 1 2 3 4 5 6 7 8; do
        capture rt features
        [[ $OUT == "$first" ]] || differing=$((differing + 1))
    done
    assert_eq 0 "$differing" "features: eight more runs print the same bytes"
    assert_eq "$(json_get 'sorted(j["annotations"])' <<<"$first")" \
        "$(json_get 'list(j["annotations"])' <<<"$first")" "features: annotations in key order"
}

test_spec() {
    local dir=$TEST_TMP/spec sum
    mkdir -p "$dir"
    capture bash -c "cd '$dir' && timeout 10 '$RUNTIME' spec"
    assert_rc 0 "spec in an empty dir: rc 0"
    assert_true "spec wrote ./config.json as JSON" json_get 'j' <"$dir/config.json"
    assert_eq '["sh"]' "$(json_get 'j["process"]["args"]' <"$dir/config.json")" "spec: process.args is [sh]"
    assert_eq 'true' "$(json_get 'j["process"]["terminal"]' <"$dir/config.json")" "spec: process.terminal is true"
    assert_eq '{"path": "rootfs", "readonly": true}' "$(json_get 'j["root"]' <"$dir/config.json")" "spec: root is rootfs, read-only"
    assert_match "$(json_get 'j["ociVersion"]' <"$dir/config.json")" '^1\.' "spec: ociVersion"

    sum=$(md5sum <"$dir/config.json")
    capture bash -c "cd '$dir' && timeout 10 '$RUNTIME' spec"
    # runc refuses to overwrite: 'File config.json exists. Remove it first'
    assert_rc 1 "spec refuses when config.json exists (rc 1)"
    assert_contains "$ERR" "exists" "…saying the file exists"
    assert_eq "$sum" "$(md5sum <"$dir/config.json")" "…and leaves the file alone"

    mkdir -p "$TEST_TMP/spec-b"
    capture timeout 10 "$RUNTIME" spec --bundle "$TEST_TMP/spec-b"
    assert_rc 0 "spec --bundle DIR: rc 0"
    assert_true "spec --bundle DIR writes DIR/config.json" test -s "$TEST_TMP/spec-b/config.json"
}

# --- global flags ----------------------------------------------------------

test_global_flags() {
    local other=$OTHER_ROOT
    make_bundle "$TEST_TMP/gf" sleep 1000
    capture timeout 30 "$RUNTIME" --root "$other" run --detach --bundle "$TEST_TMP/gf" gf </dev/null
    assert_rc 0 "--root DIR before the subcommand"
    assert_contains "$(timeout 10 "$RUNTIME" --root "$other" list -q)" gf "list -q under that root shows the container"
    capture rt state gf
    assert_rc 1 "…and another --root does not see it"
    assert_contains "$(ls "$other")" gf "the state lives under --root"
    timeout 10 "$RUNTIME" --root "$other" delete --force gf

    local log=$TEST_TMP/rt-log.json
    capture rt --log "$log" --log-format json start no-such-container
    assert_rc 1 "--log F --log-format json start <missing>: rc 1"
    assert_contains "$ERR" "does not exist" "the error still goes to stderr"
    assert_true "the log file exists" test -f "$log"
    local check
    check=$(python3 - "$log" <<'EOF'
import json, sys
lines = [l for l in open(sys.argv[1]).read().splitlines() if l.strip()]
bad = [l for l in lines if not (isinstance(json.loads(l), dict) and {"level", "msg", "time"} <= json.loads(l).keys())]
err = [json.loads(l) for l in lines if json.loads(l).get("level") == "error"]
print("lines=%d bad=%d error_has_msg=%s" % (len(lines), len(bad), any("does not exist" in e["msg"] for e in err)))
EOF
    ) || check="unparseable: $(head -c 500 "$log")"
    assert_match "$check" '^lines=[1-9][0-9]* bad=0 error_has_msg=True$' \
        "log file: JSON lines with level/msg/time, an error line says 'does not exist'"

    capture rt --log "$TEST_TMP/rt-log2.json" --log-format json list
    assert_rc 0 "--log with a successful command: rc 0"
    assert_true "…the log file is created even when nothing is logged" test -f "$TEST_TMP/rt-log2.json"

    capture rt --log "$TEST_TMP/rt-log.txt" start no-such-container
    assert_contains "$(cat "$TEST_TMP/rt-log.txt" 2>/dev/null)" "does not exist" "--log F (text format) gets the error"

    capture rt --debug list
    assert_rc 0 "--debug list: rc 0"
    capture rt --debug state no-such-container
    assert_rc 1 "--debug state <missing>: rc 1"
    assert_contains "$ERR" "does not exist" "--debug: the error is still reported"
}

test_list() {
    new_container list-a sleep 1000
    capture rt list -q
    assert_rc 0 "list -q: rc 0"
    assert_contains "$OUT" list-a "list -q shows the id"
    capture rt list --format json
    assert_eq running "$(json_get '[c["status"] for c in j if c["id"] == "list-a"][0]' <<<"$OUT")" "list --format json: status running"
    capture rt list
    assert_match "$(head -n 1 <<<"$OUT")" '^ID +PID +STATUS +BUNDLE +CREATED +OWNER' "list: table header"
    gone list-a
}

test_missing_executable_is_one_error() {
    make_bundle "$TEST_TMP/noexe" /no/such/program
    local log=$TEST_TMP/noexe.json
    capture bash -c 'cd "$1" && shift && exec "$@" </dev/null' _ "$TEST_TMP/noexe" \
        timeout -k 5 "$E2E_TIMEOUT" "$RUNTIME" --root "$STATE" --log "$log" --log-format json run noexe
    assert_rc 1 "run of a program the image lacks: rc 1"
    assert_contains "$ERR" "/no/such/program" "…stderr names the program"
    assert_eq 1 "$(grep -c . <<<"$ERR")" "…in one line"
    assert_contains "$(grep '"level":"error"' "$log" | tail -n1)" "no such file or directory" \
        "…the log's last error line (what containerd shows) has the cause"
    assert_eq "" "$(ls -A "$STATE")" "…no state left"

    # a program that exists but cannot be exec'd (a dynamic one, and the image has no loader):
    # this fails after start, where only the container's stderr is left to say so (as runc)
    make_bundle "$TEST_TMP/noloader" /dyn
    cp /usr/bin/env "$TEST_TMP/noloader/rootfs/dyn"
    rm -f "$TEST_TMP/noloader/rootfs/lib64/ld-linux-x86-64.so.2"
    capture bash -c 'cd "$1" && shift && exec "$@" </dev/null' _ "$TEST_TMP/noloader" \
        timeout -k 5 "$E2E_TIMEOUT" "$RUNTIME" --root "$STATE" run noloader
    assert_rc 1 "run of a dynamic program without its loader: exit status 1 (runc's init's)"
    assert_contains "$ERR" "exec /dyn: no such file or directory" "…and runc's sentence on the container's stderr"
    assert_eq "" "$(ls -A "$STATE")" "…no state left"
}

run_tests \
    test_lifecycle test_exec test_kill_signal_names test_kill_all \
    test_run_exit_code test_run_terminal test_run_killed_by_signal test_run_forwards_term test_run_detach \
    test_readonly_rootfs test_duplicate_id test_missing_container test_delete_force_running \
    test_update_resources test_features test_spec test_global_flags test_list \
    test_missing_executable_is_one_error
e2e_finish
