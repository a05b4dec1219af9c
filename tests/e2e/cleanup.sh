#!/usr/bin/env bash
# tests/e2e/cleanup.sh — what `delete` and a refused `create`/`exec` leave behind.
#
# Proves, on busybox bundles with `$RUNTIME --root $STATE …`, that:
#  - `delete --force` removes a container whose state.json is corrupt: its processes (found
#    from its cgroup), its cgroups and its state dir, so that the id can be used again; and
#    that it fails, naming what is left, when nothing says where the container's cgroup is;
#  - a poststop hook that fails, or whose binary is missing, is a warning in the log and the
#    delete goes on (the OCI runtime spec's rule), running the hooks after it too;
#  - `delete --force` of a container whose processes made sub-cgroups (some of them frozen)
#    kills everything in the subtree and removes the sub-cgroups;
#  - `create` into a cgroup that is already frozen is refused at once (runc: "container's
#    cgroup unexpectedly frozen") instead of hanging, leaving no container behind;
#  - `exec --cgroup SUB` joins an existing sub-cgroup, and refuses a missing one (runc: "no
#    such file or directory") without making it;
#  - `create` into a cgroup that has processes is refused (runc: "container's cgroup is not
#    empty"), and a refused create (frozen or busy cgroup) leaves a cgroup it did not make, and
#    the processes in it, as they were;
#  - a foreground `run` reports a failing poststop hook as a warning in its log and still
#    exits with the container's code;
#  - `delete --force` after a create killed inside libcontainer (state "creating" with no pid,
#    an empty state.json, no saved config yet) kills the orphaned init and removes the cgroups
#    and the state dir, so that the id can be used again.
# Cgroups are looked at from the host, in every hierarchy (cgroup v1, hybrid or v2).
source "$(dirname "$0")/../lib.sh"
e2e_init "$@"

# --- helpers ---------------------------------------------------------------

status_of() { rt state "$1" 2>/dev/null | json_get 'j["status"]' 2>/dev/null || echo "?"; }
status_is() { [[ $(status_of "$1") == "$2" ]]; }
PID=""
# new_container NAME ARGS... : bundle $TEST_TMP/NAME, created and started; PID = its init.
new_container() {
    local name=$1; shift
    [[ -f $TEST_TMP/$name/config.json ]] || make_bundle "$TEST_TMP/$name" "$@"
    rt create --bundle "$TEST_TMP/$name" --pid-file "$TEST_TMP/$name.pid" "$name" >/dev/null 2>&1 </dev/null
    rt start "$name"
    PID=$(<"$TEST_TMP/$name.pid")
}
gone() { rt delete --force "$1" >/dev/null 2>&1 || true; }
alive() { kill -0 "$1" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) != Z ]]; }
# exec_detached ID ARGS... : prints the host pid of a detached exec.
exec_detached() {
    local id=$1 pidfile; shift
    pidfile=$(mktemp "$TEST_TMP/.exec.XXXXXX")
    rt exec --detach --pid-file "$pidfile" "$id" "$@" </dev/null >/dev/null 2>&1
    cat "$pidfile"
}
# cgroups_left REL : the dirs of cgroup REL still there, on one line (empty when none).
cgroups_left() { cgroup_dirs_for "$1" | tr '\n' ' ' | sed 's/ $//'; }
# make_sub_cgroup REL SUB : SUB under cgroup REL in every hierarchy, usable at once (a v1
# cpuset takes no task until it has cpus and mems).
make_sub_cgroup() {
    local d parent
    for d in $(cgroup_dirs_for "$1"); do
        mkdir -p "$d/$2"
        if ! cgroup_v2_only && [[ -f $d/$2/cpuset.cpus ]]; then
            parent=$(dirname "$d/$2")
            cat "$parent/cpuset.cpus" >"$d/$2/cpuset.cpus"
            cat "$parent/cpuset.mems" >"$d/$2/cpuset.mems"
        fi
    done
}
# move_to_sub_cgroup PID REL SUB : PID into SUB under REL in every hierarchy.
move_to_sub_cgroup() {
    local d
    for d in $(cgroup_dirs_for "$2"); do
        [[ -f $d/$3/cgroup.procs ]] && echo "$1" >"$d/$3/cgroup.procs"
    done
    return 0
}
# log_has FILE LEVEL TEXT : a JSON log line of LEVEL whose msg contains TEXT.
log_has() {
    python3 - "$@" <<'EOF'
import json, sys
path, level, text = sys.argv[1:4]
for line in open(path):
    try:
        j = json.loads(line)
    except ValueError:
        continue
    if j.get("level") == level and text in j.get("msg", ""):
        sys.exit(0)
sys.exit(1)
EOF
}

# --- delete --force with a corrupt state -----------------------------------

test_delete_force_corrupt_state() {
    local id=corrupt b=$TEST_TMP/corrupt rel epid
    make_bundle "$b" sleep 1000
    rel=$(bundle_cgroup_path "$b")
    new_container "$id"
    local pid=$PID
    epid=$(exec_detached "$id" sleep 601)
    assert_ne "" "$(cgroups_left "$rel")" "the container has cgroups"

    printf '{"id": "%s", "status": "run' "$id" >"$STATE/$id/state.json"
    capture rt delete --force "$id"
    assert_rc 0 "delete --force of a container with a corrupt state.json succeeds"
    wait_for 5 bash -c "! kill -0 $pid 2>/dev/null" || true
    assert_false "…its init is gone" alive "$pid"
    assert_false "…its exec'd process is gone" alive "$epid"
    assert_eq "" "$(cgroups_left "$rel")" "…its cgroups are gone"
    assert_false "…its state dir is gone" test -e "$STATE/$id"

    capture rt create --bundle "$b" "$id" </dev/null
    assert_rc 0 "the id can be used again"
    capture rt start "$id"
    assert_eq running "$(status_of "$id")" "…and the new container runs"
    gone "$id"
    assert_eq "" "$(cgroups_left "$rel")" "…and deleting it leaves no cgroup"
}

test_delete_force_nothing_readable() {
    local id=unreadable b=$TEST_TMP/unreadable rel
    make_bundle "$b" sleep 1000
    rel=$(bundle_cgroup_path "$b")
    new_container "$id"
    local pid=$PID
    local f
    for f in "$STATE/$id"/*.json; do echo garbage >"$f"; done

    capture rt --log "$TEST_TMP/unreadable.log" --log-format json delete --force "$id"
    assert_rc_nonzero "delete --force fails when neither the state nor the saved config says where the container is"
    assert_contains "$ERR" "$STATE/$id" "…naming the state dir it leaves"
    assert_true "…which is left, so that nothing is lost track of" test -d "$STATE/$id"
    assert_true "…and the error is the log's last error line" \
        log_has "$TEST_TMP/unreadable.log" error "$STATE/$id"

    # what the message tells a person to do
    kill -9 "$pid"
    wait_for 5 bash -c "! kill -0 $pid 2>/dev/null" || true
    local d
    for d in $(cgroup_dirs_for "$rel"); do rmdir "$d"; done
    rm -rf "${STATE:?}/$id"
    capture rt create --bundle "$b" "$id" </dev/null
    assert_rc 0 "after that the id can be used again"
    gone "$id"
}

# The saved config is what names the cgroup; without it the init is still killed (its pid
# namespace dies with it), so that no container process outlives a delete --force.
test_delete_force_config_unreadable() {
    local id=noconfig b=$TEST_TMP/noconfig epid
    make_bundle "$b" sleep 1000
    new_container "$id"
    local pid=$PID
    epid=$(exec_detached "$id" sleep 604)
    echo garbage >"$STATE/$id/youki_config.json"

    capture rt delete --force "$id"
    assert_rc 0 "delete --force of a container whose saved config is corrupt succeeds"
    wait_for 5 bash -c "! kill -0 $pid 2>/dev/null && ! kill -0 $epid 2>/dev/null" || true
    assert_false "…its init is gone" alive "$pid"
    assert_false "…and so is the rest of its pid namespace" alive "$epid"
    assert_false "…its state dir is gone" test -e "$STATE/$id"
}

# --- poststop hooks --------------------------------------------------------

test_poststop_hook_fails() {
    local id=hookfail b=$TEST_TMP/hookfail rel log=$TEST_TMP/hookfail.log
    make_bundle "$b" sleep 1000
    bundle_set "$b" "c['hooks'] = {'poststop': [
        {'path': '/bin/sh', 'args': ['sh', '-c', 'exit 1']},
        {'path': '/bin/sh', 'args': ['sh', '-c', 'echo ran >$TEST_TMP/hookfail.after']}]}"
    rel=$(bundle_cgroup_path "$b")
    new_container "$id"
    rt kill "$id" KILL
    wait_for 5 status_is "$id" stopped || true

    capture rt --log "$log" --log-format json delete "$id"
    assert_rc 0 "delete succeeds although a poststop hook exits 1"
    assert_true "…the failure is a warning in the log" log_has "$log" warning "poststop"
    assert_eq ran "$(cat "$TEST_TMP/hookfail.after" 2>/dev/null)" "…the hook after it still ran"
    capture rt state "$id"
    assert_contains "$ERR" "does not exist" "…the container is gone"
    assert_eq "" "$(cgroups_left "$rel")" "…with its cgroups"
}

test_poststop_hook_missing() {
    local id=hookgone b=$TEST_TMP/hookgone rel log=$TEST_TMP/hookgone.log
    make_bundle "$b" sleep 1000
    bundle_set "$b" "c['hooks'] = {'poststop': [{'path': '$TEST_TMP/no-such-hook'}]}"
    rel=$(bundle_cgroup_path "$b")
    new_container "$id"
    local pid=$PID

    capture rt --log "$log" --log-format json delete --force "$id"
    assert_rc 0 "delete --force succeeds although the poststop hook's binary is missing"
    assert_true "…the failure is a warning in the log naming the hook" log_has "$log" warning "$TEST_TMP/no-such-hook"
    assert_false "…the container's process is gone" alive "$pid"
    capture rt state "$id"
    assert_contains "$ERR" "does not exist" "…and so is the container"
    assert_eq "" "$(cgroups_left "$rel")" "…with its cgroups"
}

# --- sub-cgroups -----------------------------------------------------------

test_delete_force_sub_cgroups() {
    local id=subcg b=$TEST_TMP/subcg rel p1 p2
    make_bundle "$b" sleep 1000
    rel=$(bundle_cgroup_path "$b")
    new_container "$id"
    local pid=$PID
    p1=$(exec_detached "$id" sleep 601)
    p2=$(exec_detached "$id" sleep 602)
    # what a container with a writable cgroupfs does for its own processes
    make_sub_cgroup "$rel" sub
    make_sub_cgroup "$rel" sub/deeper
    move_to_sub_cgroup "$p1" "$rel" sub
    move_to_sub_cgroup "$p2" "$rel" sub/deeper
    freeze_dir "$(freezer_dir_for "$rel")/sub/deeper"
    assert_contains "$(cat /proc/"$p2"/cgroup)" "$rel/sub/deeper" "a process runs in a nested sub-cgroup"

    capture rt delete --force "$id"
    assert_rc 0 "delete --force of a container with (frozen) sub-cgroups succeeds"
    wait_for 5 bash -c "! kill -0 $pid 2>/dev/null && ! kill -0 $p1 2>/dev/null && ! kill -0 $p2 2>/dev/null" || true
    assert_false "…its init is gone" alive "$pid"
    assert_false "…the process in the sub-cgroup is gone" alive "$p1"
    assert_false "…the process in the frozen nested sub-cgroup is gone" alive "$p2"
    assert_eq "" "$(cgroups_left "$rel")" "…all its cgroups, sub-cgroups included, are gone"
    capture rt state "$id"
    assert_contains "$ERR" "does not exist" "…and so is its state"
}

test_delete_force_paused() {
    local id=paused b=$TEST_TMP/paused rel epid
    make_bundle "$b" sleep 1000
    rel=$(bundle_cgroup_path "$b")
    new_container "$id"
    local pid=$PID
    epid=$(exec_detached "$id" sleep 605)
    rt pause "$id"
    assert_eq paused "$(status_of "$id")" "the container is paused"

    capture rt delete --force "$id"
    assert_rc 0 "delete --force of a paused container succeeds"
    wait_for 5 bash -c "! kill -0 $pid 2>/dev/null && ! kill -0 $epid 2>/dev/null" || true
    assert_false "…its init is gone" alive "$pid"
    assert_false "…its exec'd process is gone" alive "$epid"
    assert_eq "" "$(cgroups_left "$rel")" "…its cgroups are gone"
    assert_false "…its state dir is gone" test -e "$STATE/$id"
}

test_exec_sub_cgroup() {
    local id=execcg b=$TEST_TMP/execcg rel
    make_bundle "$b" sleep 1000
    rel=$(bundle_cgroup_path "$b")
    new_container "$id"

    capture rt exec --cgroup nosuch "$id" true
    assert_rc_nonzero "exec --cgroup into a missing sub-cgroup fails"
    assert_contains "$ERR" "o such file or directory" "…saying it does not exist (as runc)"
    assert_contains "$ERR" "nosuch" "…naming it"
    assert_eq "" "$(cgroups_left "$rel/nosuch")" "…and does not make it"

    capture rt exec --cgroup ../.. "$id" true
    assert_rc_nonzero "exec --cgroup outside the container's cgroup fails"

    make_sub_cgroup "$rel" sub
    capture rt exec --cgroup sub "$id" cat /proc/self/cgroup
    assert_rc 0 "exec --cgroup into an existing sub-cgroup succeeds"
    assert_contains "$OUT" "$rel/sub" "…and the process runs in it"

    capture rt delete --force "$id"
    assert_rc 0 "the container is deleted afterwards"
    assert_eq "" "$(cgroups_left "$rel")" "…with all its cgroups"
}

# --- create into a frozen cgroup -------------------------------------------

test_create_frozen_cgroup() {
    local id=frozen b=$TEST_TMP/frozen rel fdir
    make_bundle "$b" sleep 1000
    rel=$(bundle_cgroup_path "$b")
    fdir=$(freezer_dir_for "$rel")
    mkdir -p "$fdir"
    freeze_dir "$fdir"

    E2E_TIMEOUT=20 capture rt create --bundle "$b" "$id" </dev/null
    assert_ne 124 "$RC" "create into a frozen cgroup does not hang"
    assert_rc_nonzero "…it fails"
    assert_contains "$ERR" "unexpectedly frozen" "…saying the container's cgroup is unexpectedly frozen (as runc)"
    assert_false "…no state is left" test -e "$STATE/$id"
    assert_eq "" "$(cat "$fdir/cgroup.procs" 2>/dev/null)" "…no process is left in the frozen cgroup"
    assert_eq "" "$(cgroups_left "$rel" | tr ' ' '\n' | grep -vxF "$fdir" || true)" \
        "…and no cgroup was made"

    # A stuck process would stay frozen for ever: let it go before cleaning up.
    [[ -d $fdir ]] && thaw_dir "$fdir"
    local p
    for p in $(cat "$fdir/cgroup.procs" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    gone "$id"
    [[ -d $fdir ]] && wait_for 5 rmdir "$fdir"

    capture rt create --bundle "$b" "$id" </dev/null
    assert_rc 0 "once the cgroup is gone, create succeeds"
    gone "$id"
}

# --- create into a cgroup that someone else's processes use ------------------

# premake_cgroup REL : cgroup REL in every hierarchy, as a person or another tool makes it
# (v1 cpusets primed level by level: an empty one takes no task).
premake_cgroup() {
    local rel=${1#/} d p comp
    if cgroup_v2_only; then mkdir -p "/sys/fs/cgroup/$rel"; return 0; fi
    for d in /sys/fs/cgroup/*; do
        [[ -L $d || ! -f $d/cgroup.procs ]] && continue
        p=$d
        for comp in ${rel//\// }; do
            p=$p/$comp
            mkdir -p "$p"
            if [[ -f $p/cpuset.cpus && -z $(<"$p/cpuset.cpus") ]]; then
                cat "$(dirname "$p")/cpuset.cpus" >"$p/cpuset.cpus"
                cat "$(dirname "$p")/cpuset.mems" >"$p/cpuset.mems"
            fi
        done
    done
}
# start_in_cgroup REL : prints the pid of a new `sleep` moved into REL in every hierarchy.
start_in_cgroup() {
    local pid d
    sleep 1000 </dev/null >/dev/null 2>&1 &
    pid=$!
    for d in $(cgroup_dirs_for "$1"); do echo "$pid" >"$d/cgroup.procs"; done
    echo "$pid"
}
# drop_premade_cgroup REL PID : kills PID (thawed first) and removes REL everywhere.
drop_premade_cgroup() {
    local d
    [[ -d $(freezer_dir_for "$1") ]] && thaw_dir "$(freezer_dir_for "$1")"
    kill -9 "$2" 2>/dev/null || true
    wait_for 5 bash -c "! kill -0 $2 2>/dev/null" || true
    for d in $(cgroup_dirs_for "$1"); do wait_for 5 rmdir "$d" || true; done
}

# runc refuses a cgroup that has processes ("container's cgroup is not empty"), and a failed
# create must not touch a cgroup it did not make: before, libcontainer's clean-up of the
# failed create SIGKILLed the processes already there and removed their cgroup.
test_create_cgroup_not_empty() {
    local id=busycg b=$TEST_TMP/busycg rel sp before
    make_bundle "$b" sleep 1000
    rel=$(bundle_cgroup_path "$b")
    premake_cgroup "$rel"
    sp=$(start_in_cgroup "$rel")
    before=$(cgroups_left "$rel")
    assert_contains "$(cat /proc/"$sp"/cgroup)" "$rel" "a process of someone else runs in the cgroup"

    capture rt create --bundle "$b" "$id" </dev/null
    assert_rc_nonzero "create into a cgroup that has processes fails"
    assert_contains "$ERR" "cgroup is not empty" "…saying the container's cgroup is not empty (as runc)"
    assert_true "…the process already there is alive" alive "$sp"
    assert_contains "$(cat /proc/"$sp"/cgroup 2>/dev/null)" "$rel" "…and still in its cgroup"
    assert_eq "$before" "$(cgroups_left "$rel")" "…the cgroup is kept, in every hierarchy"
    assert_false "…no state is left" test -e "$STATE/$id"

    drop_premade_cgroup "$rel" "$sp"
    capture rt create --bundle "$b" "$id" </dev/null
    assert_rc 0 "once the cgroup is free, the id can be used"
    gone "$id"
}

test_create_frozen_cgroup_with_process() {
    local id=frozenbusy b=$TEST_TMP/frozenbusy rel sp fdir before
    make_bundle "$b" sleep 1000
    rel=$(bundle_cgroup_path "$b")
    premake_cgroup "$rel"
    sp=$(start_in_cgroup "$rel")
    fdir=$(freezer_dir_for "$rel")
    freeze_dir "$fdir"
    before=$(cgroups_left "$rel")

    E2E_TIMEOUT=20 capture rt create --bundle "$b" "$id" </dev/null
    assert_ne 124 "$RC" "create into a frozen cgroup with a process does not hang"
    assert_rc_nonzero "…it fails"
    assert_true "…the process already there is alive" alive "$sp"
    assert_eq FROZEN "$(freezer_state_of "$sp" 2>/dev/null)" "…and still frozen"
    assert_eq "$before" "$(cgroups_left "$rel")" "…the cgroup is kept, in every hierarchy"
    assert_false "…no state is left" test -e "$STATE/$id"

    drop_premade_cgroup "$rel" "$sp"
    gone "$id"
}

# --- run: poststop hooks ---------------------------------------------------

test_run_poststop_hook_fails() {
    local id=runhook b=$TEST_TMP/runhook rel log=$TEST_TMP/runhook.log hook=$TEST_TMP/failing-poststop
    printf '#!/bin/sh\nexit 1\n' >"$hook"
    chmod +x "$hook"
    make_bundle "$b" sh -c 'exit 3'
    bundle_set "$b" "c['hooks'] = {'poststop': [{'path': '$hook'}]}"
    rel=$(bundle_cgroup_path "$b")

    capture rt --log "$log" --log-format json run --bundle "$b" "$id" </dev/null
    assert_rc 3 "run's exit code is the container's although its poststop hook exits 1"
    assert_true "…the failure is a warning in the log naming the hook" log_has "$log" warning "$hook"
    capture rt state "$id"
    assert_contains "$ERR" "does not exist" "…the container is gone"
    assert_eq "" "$(cgroups_left "$rel")" "…with its cgroups"
}

# --- delete --force after a create killed inside libcontainer ---------------

# kill_create_in_hook ID BUNDLE : starts a create whose createRuntime hook waits, and kills
# the runtime (kill -9) while the hook runs: the state dir says "creating" with no pid and
# the container's init waits in its cgroup. Prints the init's pid.
kill_create_in_hook() {
    local id=$1 b=$2 mark=$TEST_TMP/$1.hook init
    rm -f "$mark"
    bundle_set "$b" "c['hooks'] = {'createRuntime': [{'path': '/bin/sh', 'args': ['sh', '-c', 'echo \$PPID \$\$ >$mark; exec sleep 1000']}]}"
    "$RUNTIME" --root "$STATE" create --bundle "$b" --pid-file "$TEST_TMP/$id.pid" "$id" </dev/null >/dev/null 2>&1 &
    wait_for 10 test -s "$mark" || true
    local rt_pid hook_pid
    read -r rt_pid hook_pid <"$mark"
    local dirs
    dirs=$(cgroup_dirs_for "$(bundle_cgroup_path "$b")")
    init=$(cat "${dirs%%$'\n'*}/cgroup.procs" 2>/dev/null)
    init=${init%%$'\n'*}
    kill -9 "$rt_pid" "$hook_pid" 2>/dev/null || true
    wait_for 5 bash -c "! kill -0 $rt_pid 2>/dev/null" || true
    bundle_set "$b" "c.pop('hooks', None)"
    echo "$init"
}

test_delete_force_killed_create() {
    local id=killedcreate b=$TEST_TMP/killedcreate rel init
    make_bundle "$b" sleep 1000
    rel=$(bundle_cgroup_path "$b")
    init=$(kill_create_in_hook "$id" "$b")
    assert_ne "" "$init" "the killed create's init waits in the container's cgroup"
    assert_contains "$(cat "$STATE/$id/state.json" 2>/dev/null)" creating "…its state says creating"

    capture rt delete --force "$id"
    assert_rc 0 "delete --force after a create killed in libcontainer succeeds"
    wait_for 5 bash -c "! kill -0 $init 2>/dev/null" || true
    assert_false "…the orphaned init is gone" alive "$init"
    assert_eq "" "$(cgroups_left "$rel")" "…the cgroups are gone"
    assert_false "…the state dir is gone" test -e "$STATE/$id"
    capture rt create --bundle "$b" "$id" </dev/null
    assert_rc 0 "…and the id can be used again"
    gone "$id"
}

test_delete_force_killed_create_empty_state() {
    local id=killedempty b=$TEST_TMP/killedempty rel init
    make_bundle "$b" sleep 1000
    rel=$(bundle_cgroup_path "$b")
    init=$(kill_create_in_hook "$id" "$b")
    assert_ne "" "$init" "the killed create's init waits in the container's cgroup"
    # what a kill in the middle of writing state.json leaves
    : >"$STATE/$id/state.json"

    capture rt delete --force "$id"
    assert_rc 0 "delete --force with an empty state.json succeeds"
    wait_for 5 bash -c "! kill -0 $init 2>/dev/null" || true
    assert_false "…the orphaned init is gone" alive "$init"
    assert_eq "" "$(cgroups_left "$rel")" "…the cgroups are gone"
    assert_false "…the state dir is gone" test -e "$STATE/$id"
    capture rt create --bundle "$b" "$id" </dev/null
    assert_rc 0 "…and the id can be used again"
    gone "$id"
}

# What libcontainer leaves when a create is killed while it writes its first file: a state
# dir with an empty state.json and no saved config (which it writes before any process or
# cgroup exists).
test_delete_force_killed_before_config() {
    local id=killedearly b=$TEST_TMP/killedearly
    make_bundle "$b" sleep 1000
    mkdir -p "$STATE/$id"
    : >"$STATE/$id/state.json"

    capture rt --log "$TEST_TMP/killedearly.log" --log-format json delete --force "$id"
    assert_rc 0 "delete --force of a state dir with an empty state.json and no saved config succeeds"
    assert_false "…the state dir is gone" test -e "$STATE/$id"
    capture rt create --bundle "$b" "$id" </dev/null
    assert_rc 0 "…and the id can be used again"
    gone "$id"
}

run_tests \
    test_delete_force_corrupt_state test_delete_force_nothing_readable test_delete_force_config_unreadable \
    test_poststop_hook_fails test_poststop_hook_missing \
    test_delete_force_sub_cgroups test_delete_force_paused test_exec_sub_cgroup test_create_frozen_cgroup \
    test_create_cgroup_not_empty test_create_frozen_cgroup_with_process test_run_poststop_hook_fails \
    test_delete_force_killed_create test_delete_force_killed_create_empty_state \
    test_delete_force_killed_before_config
e2e_finish
