#!/usr/bin/env bash
# tests/e2e/limits.sh — what a container may see and change of the limits put on it.
#
# Proves, directly and through a private dockerd, that:
#  - every option of every spec mount is honoured (ro, nosuid, nodev, noexec, propagation…),
#    including a read-only /dev tmpfs and, on cgroup v1, the per-controller cgroup mounts, so
#    a container cannot raise its own pids.max or cpu.shares;
#  - a mount the kernel refuses is reported with its source and destination, in the last
#    `--log-format json` error line (the line containerd shows the user);
#  - `exec --cap X` adds X to the bounding, effective and permitted sets only (never to the
#    inheritable or ambient ones, as runc since CVE-2022-29162);
#  - the container's processes start with no signal blocked or ignored, whether
#    started by `run`, `create`/`start` or a foreground/--tty `exec`, and so do the hooks
#    a foreground `run` starts;
#  - a seccomp profile in the spec is loaded and enforced (the static build links libseccomp);
#  - `features` claims nothing the runtime does not do (no SELinux, no idmapped mounts) and
#    has runc's shape;
#  - without `cgroupsPath` the container's cgroup is `<the caller's cgroup>/<id>` in every
#    controller (runc's cgroupfs default), and `delete` removes it; a relative `cgroupsPath` is
#    below the caller's cgroup too, and cannot climb out of it with `..`; the path is resolved
#    at create, so `ps`, `exec`, `pause`, `resume` and `delete` run from another cgroup find it.
# Every expectation was checked against runc 1.1.5 (Debian bookworm).
source "$(dirname "$0")/../lib.sh"
e2e_init "$@"

CAP_NET_RAW_BIT=13

gone() { rt delete --force "$1" >/dev/null 2>&1 || true; }
new_container() {  # new_container NAME ARGS... : created and started; PID = its init
    local name=$1; shift
    make_bundle "$TEST_TMP/$name" "$@"
    rt create --bundle "$TEST_TMP/$name" --pid-file "$TEST_TMP/$name.pid" "$name" >/dev/null 2>&1 </dev/null
    rt start "$name"
    PID=$(<"$TEST_TMP/$name.pid")
}
# status_field TEXT NAME : the value of "NAME:" in a /proc/PID/status text
status_field() { awk -v k="$2:" '$1 == k { print $2 }' <<<"$1"; }
# has_bit HEX BIT : is BIT set in the hex mask HEX
has_bit() { (( (16#$1 >> $2) & 1 )); }

# --- capabilities of exec --cap ----------------------------------------------

test_exec_cap_goes_to_bounding_effective_permitted_only() {
    local id=cap-exec set
    new_container "$id" sleep 1000
    capture rt exec --cap CAP_NET_RAW "$id" cat /proc/self/status
    assert_rc 0 "exec --cap CAP_NET_RAW: rc 0"
    for set in CapEff CapPrm CapBnd; do
        assert_true "exec --cap CAP_NET_RAW: in $set ($(status_field "$OUT" $set))" \
            has_bit "$(status_field "$OUT" $set)" $CAP_NET_RAW_BIT
    done
    for set in CapInh CapAmb; do
        assert_false "exec --cap CAP_NET_RAW: not in $set ($(status_field "$OUT" $set))" \
            has_bit "$(status_field "$OUT" $set)" $CAP_NET_RAW_BIT
    done
    capture rt exec "$id" cat /proc/self/status
    assert_false "plain exec: CAP_NET_RAW not in CapEff (the bundle does not grant it)" \
        has_bit "$(status_field "$OUT" CapEff)" $CAP_NET_RAW_BIT
    gone "$id"
}

# --- signal state of the container's processes -------------------------------

# assert_clean_signals WHAT STATUS_TEXT
assert_clean_signals() {
    local blk ign
    blk=$(status_field "$2" SigBlk) ign=$(status_field "$2" SigIgn)
    assert_match "$blk" '^0+$' "$1: no signal blocked (SigBlk $blk)"
    # (the runtime's own dispositions, such as Rust's ignored SIGPIPE, must not leak in)
    assert_match "$ign" '^0+$' "$1: no signal ignored (SigIgn $ign)"
}

test_signals_of_run_and_exec() {
    local id=sig-run
    make_bundle "$TEST_TMP/$id" cat /proc/self/status
    capture rt run --bundle "$TEST_TMP/$id" "$id" </dev/null
    assert_rc 0 "foreground run: rc 0"
    assert_clean_signals "foreground run" "$OUT"

    id=sig-exec
    new_container "$id" sleep 1000
    assert_clean_signals "create/start: the init" "$(cat /proc/"$PID"/status)"
    capture rt exec "$id" cat /proc/self/status
    assert_rc 0 "foreground exec: rc 0"
    assert_clean_signals "foreground exec" "$OUT"
    capture pty_run "$RUNTIME" --root "$STATE" exec --tty "$id" cat /proc/self/status
    assert_rc 0 "exec --tty: rc 0"
    assert_clean_signals "exec --tty (relayed pty)" "$OUT"
    capture rt exec --detach --pid-file "$TEST_TMP/sig-exec-d.pid" "$id" sleep 999 </dev/null
    local epid
    epid=$(cat "$TEST_TMP/sig-exec-d.pid" 2>/dev/null || true)
    assert_match "$epid" '^[0-9]+$' "exec --detach: the process runs"
    [[ -n $epid ]] && assert_clean_signals "exec --detach" "$(cat /proc/"$epid"/status)"
    gone "$id"
}

# Hooks run by a foreground `run` are the runtime's children too.
test_signals_of_hooks() {
    local id=sig-hooks b=$TEST_TMP/sig-hooks
    make_bundle "$b" true
    bundle_set "$b" "c['hooks'] = {h: [{'path': '/bin/sh', 'args': ['sh', '-c', 'cat /proc/self/status >$TEST_TMP/hook-' + h]}] for h in ('createRuntime', 'poststart', 'poststop')}"
    capture rt run --bundle "$b" "$id" </dev/null
    assert_rc 0 "foreground run with hooks: rc 0"
    local h
    for h in createRuntime poststart poststop; do
        assert_clean_signals "$h hook of a foreground run" "$(cat "$TEST_TMP/hook-$h" 2>/dev/null)"
    done
}

# --- features ----------------------------------------------------------------

test_features_claims_only_what_it_does() {
    capture rt features
    assert_rc 0 "features: rc 0"
    local f=$OUT
    # (runc does SELinux labels and tmpcopyup; this runtime does neither)
    if [[ $(json_get 'j.get("annotations", {}).get("org.opencontainers.runc.version", "")' <<<"$f") == "" ]]; then
        assert_ne true "$(json_get 'j.get("linux", {}).get("selinux", {}).get("enabled", False)' <<<"$f")" \
            "features: SELinux is not claimed"
        assert_eq '[]' "$(json_get '[o for o in j.get("mountOptions", []) if o in ("idmap", "ridmap", "tmpcopyup")]' <<<"$f")" \
            "features: mountOptions lists no option that is ignored"
    fi
    assert_ne true "$(json_get 'j.get("linux", {}).get("mountExtensions", {}).get("idmap", {}).get("enabled", False)' <<<"$f")" \
        "features: idmapped mounts are not claimed"
    # runc's shape: camelCase keys of the runtime-spec's features document, no nulls
    assert_eq '[]' "$(json_get '[k for k in j if k not in ("ociVersionMin", "ociVersionMax", "hooks", "mountOptions", "linux", "annotations", "potentiallyUnsafeConfigAnnotations")]' <<<"$f")" \
        "features: only the spec's top-level keys"
    assert_eq '[]' "$(json_get '[k for k in j.get("linux", {}) if k not in ("namespaces", "capabilities", "cgroup", "seccomp", "apparmor", "selinux", "intelRdt", "mountExtensions", "netDevices", "memoryPolicy")]' <<<"$f")" \
        "features: only the spec's linux keys"
    assert_eq 0 "$(python3 -c '
import json, sys
def nulls(v):
    if v is None: return 1
    if isinstance(v, dict): return sum(nulls(x) for x in v.values())
    if isinstance(v, list): return sum(nulls(x) for x in v)
    return 0
print(nulls(json.load(sys.stdin)))' <<<"$f")" "features: no null values (runc omits what it does not know)"
    assert_contains "$(json_get 'j["linux"]["namespaces"]' <<<"$f")" '"pid"' "features: namespaces listed"
    assert_contains "$(json_get 'j["mountOptions"]' <<<"$f")" '"nosuid"' "features: mountOptions include nosuid"
}

# --- mount errors ------------------------------------------------------------

test_refused_mount_is_named() {
    local id=mount-missing b=$TEST_TMP/mount-missing log=$TEST_TMP/mount-missing.log
    make_bundle "$b" true
    bundle_set "$b" "c['mounts'].append({'destination': '/mnt/data', 'type': 'bind', 'source': '$TEST_TMP/no-such-dir', 'options': ['rbind', 'ro']})"
    capture rt --log "$log" --log-format json create --bundle "$b" "$id" </dev/null
    assert_rc_nonzero "create with a bind mount of a missing source fails"
    local last
    last=$(grep '"level":"error"' "$log" | tail -n 1 | json_get 'j["msg"]' || true)
    assert_contains "$last" "$TEST_TMP/no-such-dir" "the last json error line names the mount's source"
    assert_contains "$last" "/mnt/data" "…and its destination"
    assert_contains "$ERR" "$TEST_TMP/no-such-dir" "stderr names the source too"
    capture rt state "$id"
    assert_rc 1 "nothing is left behind (state: does not exist)"
    assert_false "…and no cgroup is left" test -d "/sys/fs/cgroup/pids/$(cgroup_parent)/mount-missing"
}

# --- mount options -----------------------------------------------------------

# mount_opts_ok CONFIG MOUNTINFO : for every spec mount, its flag options (ro/rw, nosuid,
# nodev, noexec) are what the container's mountinfo says; prints one line per mismatch.
mount_opts_ok() {
    python3 - "$1" "$2" <<'EOF'
import json, sys
cfg = json.load(open(sys.argv[1]))
mounts = {}
for line in open(sys.argv[2]):
    f = line.split()
    mounts[f[4].replace("\\040", " ")] = set(f[5].split(","))   # the last mount wins
bad = []
for m in cfg["mounts"]:
    d = m["destination"].rstrip("/") or "/"
    opts = m.get("options", [])
    if m.get("type") == "cgroup":
        # on v1 a tmpfs carries the controllers; each controller's mount takes the options
        ctl = [p for p in mounts if p.startswith(d + "/")] or [d]
        targets = ctl
    else:
        targets = [d]
    for t in targets:
        have = mounts.get(t)
        if have is None:
            bad.append("%s: not mounted" % t); continue
        want = {"ro"} if "ro" in opts else {"rw"}
        want |= {o for o in opts if o in ("nosuid", "nodev", "noexec")}
        missing = want - have
        if missing:
            bad.append("%s: spec %s, mountinfo %s (missing %s)" % (t, opts, sorted(have), sorted(missing)))
for b in bad:
    print(b)
EOF
}

test_mount_options_direct() {
    local id=mount-opts b=$TEST_TMP/mount-opts src=$TEST_TMP/mount-opts-src
    mkdir -p "$src"; echo host >"$src/file"
    make_bundle "$b" sleep 1000
    bundle_set "$b" "
for m in c['mounts']:
    if m['destination'] == '/dev':
        m['options'].append('ro')
c['mounts'] += [
    {'destination': '/mnt/ro-bind', 'type': 'bind', 'source': '$src', 'options': ['rbind', 'ro', 'nosuid', 'nodev', 'noexec']},
    {'destination': '/mnt/rw-bind', 'type': 'none', 'source': '$src', 'options': ['bind', 'nosuid']},
    {'destination': '/mnt/ro-tmpfs', 'type': 'tmpfs', 'source': 'tmpfs', 'options': ['ro', 'nodev', 'size=1m']},
    {'destination': '/mnt/shared', 'type': 'bind', 'source': '$src', 'options': ['rbind', 'rshared']},
    {'destination': '/mnt/unbindable', 'type': 'bind', 'source': '$src', 'options': ['bind', 'unbindable']},
    {'destination': '/mnt/sync-tmpfs', 'type': 'tmpfs', 'source': 'tmpfs', 'options': ['sync', 'dirsync', 'noatime', 'noexec']},
]"
    capture rt create --bundle "$b" --pid-file "$TEST_TMP/$id.pid" "$id" </dev/null
    assert_rc 0 "create with ro /dev, ro binds and a ro tmpfs: rc 0"
    rt start "$id"

    capture rt exec "$id" cat /proc/self/mountinfo
    printf '%s\n' "$OUT" >"$TEST_TMP/$id.mountinfo"
    local bad
    bad=$(mount_opts_ok "$b/config.json" "$TEST_TMP/$id.mountinfo")
    assert_eq "" "$bad" "every spec mount has its options in the container's mountinfo"
    local mi=$OUT
    assert_match "$(awk '$5 == "/mnt/shared"' <<<"$mi")" ' shared:[0-9]+ ' "a bind with rshared is a shared mount"
    assert_match "$(awk '$5 == "/mnt/unbindable"' <<<"$mi")" ' unbindable ' "a bind with unbindable is unbindable"
    assert_match "$(awk '$5 == "/mnt/sync-tmpfs" { print $NF }' <<<"$mi")" '(^|,)sync(,|$)' "a tmpfs with sync is mounted synchronous"
    assert_match "$(awk '$5 == "/mnt/sync-tmpfs" { print $NF }' <<<"$mi")" '(^|,)dirsync(,|$)' "…and dirsync"
    assert_match "$(awk '$5 == "/mnt/sync-tmpfs" { print $6 }' <<<"$mi")" '(^|,)noatime(,|$)' "…and noatime"

    capture rt exec "$id" touch /dev/probe
    assert_rc_nonzero "/dev tmpfs with ro: cannot create a file in /dev"
    assert_contains "$ERR" "Read-only file system" "…EROFS"
    capture rt exec "$id" sh -c 'echo x >/dev/null && head -c 1 /dev/zero | wc -c'
    assert_eq 1 "$OUT" "…while its device nodes still work"
    capture rt exec "$id" touch /mnt/ro-bind/probe
    assert_contains "$ERR" "Read-only file system" "a ro bind mount is read-only"
    capture rt exec "$id" touch /mnt/ro-tmpfs/probe
    assert_contains "$ERR" "Read-only file system" "a ro tmpfs is read-only"
    capture rt exec "$id" sh -c 'touch /mnt/rw-bind/probe && echo ok'
    assert_eq ok "$OUT" "a bind mount without ro stays writable"
    rm -f "$src/probe"

    if ! cgroup_v2_only; then
        capture rt exec "$id" sh -c 'echo max >/sys/fs/cgroup/pids/pids.max'
        assert_rc_nonzero "cgroup v1: writing pids.max fails"
        assert_contains "$ERR" "Read-only file system" "…with EROFS"
        capture rt exec "$id" sh -c 'echo 4096 >/sys/fs/cgroup/cpu/cpu.shares'
        assert_contains "$ERR" "Read-only file system" "cgroup v1: cpu.shares cannot be raised"
    fi
    gone "$id"
}

# --- default cgroup path -----------------------------------------------------

# runc_cgroup_base CALLER_CGROUP : where runc's cgroupfs driver puts a relative or default
# cgroup path: below the caller's cgroup in each v1 hierarchy; on a cgroup v2 host below its
# parent (the caller's own cgroup has processes, so its children could not get controllers).
runc_cgroup_base() {
    if cgroup_v2_only; then dirname "$1"; else echo "${1%/}"; fi
}
test_default_cgroup_path() {
    local id b pid line ctl path own want ok=1 dirs=()
    id=nocgpath-$(basename "$TEST_TMP" | tr -cd 'a-zA-Z0-9')
    b=$TEST_TMP/nocgpath
    make_bundle "$b" sleep 1000
    bundle_set "$b" 'del c["linux"]["cgroupsPath"]'
    capture rt create --bundle "$b" --pid-file "$TEST_TMP/nocgpath.pid" "$id" </dev/null
    assert_rc 0 "create without cgroupsPath: rc 0"
    pid=$(<"$TEST_TMP/nocgpath.pid")
    rt start "$id"
    # runc: each controller's path is the calling process's own cgroup in that controller + /<id>
    # (on cgroup v2: its parent's + /<id>)
    while read -r ctl path dir; do
        want=$(runc_cgroup_base "$(cgroup_of $$ "$ctl")")/$id
        want=${want//\/\//\/}
        if [[ $path != "$want" ]]; then
            ok=0; fail "controller '$ctl': cgroup $path" "expected: $want"
        fi
        [[ -d $dir ]] && dirs+=("$dir")
    done < <(cgroup_lines "$pid")
    ((ok)) && pass "every controller: the container's cgroup is runc's default for $id"
    assert_ne 0 "${#dirs[@]}" "the container's cgroup directories exist"

    capture rt exec "$id" cat /proc/self/cgroup
    assert_eq "$(cat /proc/"$pid"/cgroup)" "$OUT" "exec joins the same cgroups"
    capture rt ps --format json "$id"
    assert_contains "$OUT" "$pid" "ps finds the container's processes"

    rt kill "$id" KILL
    wait_for 5 bash -c "! kill -0 $pid 2>/dev/null" || true
    capture rt delete "$id"
    assert_rc 0 "delete: rc 0"
    local left=()
    for d in "${dirs[@]}"; do [[ -d $d ]] && left+=("$d"); done
    assert_eq "" "${left[*]}" "delete removes the container's cgroup in every controller"
    for d in "${left[@]}"; do rmdir "$d" 2>/dev/null || true; done
    # a runtime that named it otherwise leaves it at the root of each hierarchy
    for d in /sys/fs/cgroup/*/":youki:$id" /sys/fs/cgroup/*/"$id"; do [[ -d $d ]] && rmdir "$d" 2>/dev/null; done
    gone "$id"
}

# A relative cgroupsPath is relative to the caller's cgroup in each controller, like the default.
test_relative_cgroup_path() {
    local id=relcg b=$TEST_TMP/relcg rel pid ctl path own bad="" dirs=()
    rel=$(cgroup_parent)-rel/inner
    make_bundle "$b" sleep 1000
    bundle_set "$b" "c['linux']['cgroupsPath'] = '../$rel'"
    capture rt create --bundle "$b" --pid-file "$TEST_TMP/relcg.pid" "$id" </dev/null
    assert_rc 0 "create with a relative cgroupsPath (../$rel): rc 0"
    pid=$(<"$TEST_TMP/relcg.pid")
    while read -r ctl path dir; do
        want=$(runc_cgroup_base "$(cgroup_of $$ "$ctl")")/$rel
        want=${want//\/\//\/}
        [[ $path == "$want" ]] || bad+="$ctl:$path (expected $want) "
        dirs+=("$dir")
    done < <(cgroup_lines "$pid")
    assert_ne 0 "${#dirs[@]}" "the container has cgroups to check"
    assert_eq "" "$bad" "every controller: runc's base for a relative path + $rel ('..' cannot climb out)"
    gone "$id"
    local d
    for d in "${dirs[@]}"; do rmdir "$d" "$(dirname "$d")" 2>/dev/null || true; done
}

# The default cgroup is resolved against the caller's cgroup once, at create (runc saves the
# resolved paths): commands run later from another cgroup find the container's cgroup.
test_default_cgroup_path_from_another_cgroup() {
    local id b sub pid line ctl path own dirs=() subdirs=() d
    id=othercg-$(basename "$TEST_TMP" | tr -cd 'a-zA-Z0-9')
    b=$TEST_TMP/othercg
    sub=$(cgroup_parent)-caller
    make_bundle "$b" sleep 1000
    bundle_set "$b" 'del c["linux"]["cgroupsPath"]'
    # a child cgroup of ours in every controller (v1 cpusets primed: empty ones take no task)
    while IFS=: read -r _ ctl own; do
        [[ $ctl == name=* ]] && continue
        if [[ -z $ctl ]]; then cgroup_v2_only || [[ -d /sys/fs/cgroup/unified ]] || continue; fi
        local mp=$ctl; [[ -z $ctl ]] && { cgroup_v2_only && mp="" || mp=unified; }
        d=/sys/fs/cgroup/${mp:+$mp}${own%/}/$sub
        d=${d//\/\//\/}
        mkdir -p "$d"
        if [[ -f $d/cpuset.cpus && -z $(<"$d/cpuset.cpus") ]]; then
            cat "$(dirname "$d")/cpuset.cpus" >"$d/cpuset.cpus"
            cat "$(dirname "$d")/cpuset.mems" >"$d/cpuset.mems"
        fi
        subdirs+=("$d")
    done </proc/self/cgroup
    (
        for d in "${subdirs[@]}"; do echo "$BASHPID" >"$d/cgroup.procs"; done
        rt create --bundle "$b" --pid-file "$TEST_TMP/othercg.pid" "$id" </dev/null >/dev/null 2>&1
    )
    pid=$(cat "$TEST_TMP/othercg.pid" 2>/dev/null)
    assert_ne "" "$pid" "create without cgroupsPath from a child cgroup of the caller's"
    local where=$sub/$id
    cgroup_v2_only && where=$(cgroup_of $$ -)/$id    # runc's v2 rule: the parent of create's cgroup
    while read -r ctl path dir; do
        [[ -d $dir ]] && dirs+=("$dir")
    done < <(cgroup_lines "$pid")
    assert_ne 0 "${#dirs[@]}" "…it has cgroups to check"
    assert_contains "$(cat /proc/"$pid"/cgroup)" "${where//\/\//\/}" "…its cgroup is runc's default for the cgroup create ran in"
    rt start "$id"

    # from the caller's own cgroup, not the one create ran in
    capture rt ps --format json "$id"
    assert_contains "$OUT" "$pid" "ps from another cgroup finds the container's processes"
    # (every controller; the hybrid's controller-less v2 line and named hierarchies are the
    # caller's, as with runc's cgroupfs driver)
    local skip=(-e '^0::' -e ':name=')
    cgroup_v2_only && skip=(-e ':name=')
    capture rt exec "$id" cat /proc/self/cgroup
    assert_eq "$(grep -v "${skip[@]}" /proc/"$pid"/cgroup)" "$(grep -v "${skip[@]}" <<<"$OUT")" \
        "exec from another cgroup joins the container's cgroups"
    capture rt pause "$id"
    assert_eq FROZEN "$(freezer_state_of "$pid")" "pause from another cgroup freezes the container"
    capture rt resume "$id"
    assert_eq THAWED "$(freezer_state_of "$pid")" "resume from another cgroup thaws it"
    capture rt delete --force "$id"
    assert_rc 0 "delete --force from another cgroup: rc 0"
    wait_for 5 bash -c "! kill -0 $pid 2>/dev/null" || true
    assert_false "…the container's init is gone" kill -0 "$pid"
    local left=()
    for d in "${dirs[@]}"; do [[ -d $d ]] && left+=("$d"); done
    assert_eq "" "${left[*]}" "…its cgroup is removed in every controller"
    kill -9 "$pid" 2>/dev/null || true
    for d in "${left[@]}"; do wait_for 5 rmdir "$d" 2>/dev/null || true; done
    for d in "${subdirs[@]}"; do rmdir "$d" 2>/dev/null || true; done
    gone "$id"
}

# cgroup v2: the container's processes are born in its cgroup and its device rules are a BPF
# program attached there. A runtime without CAP_SYS_RESOURCE (itself in a container, or a
# service with a bounded capability set) cannot raise `ulimit -l`, which kernels since 5.11 no
# longer charge BPF programs to; the rules must hold all the same.
test_v2_cgroup_and_device_rules() {
    cgroup_v2_only || { log "  skipped: cgroup v2 only (run-e2e.sh --cgroup2-view)"; return 0; }
    need_cmd capsh libcap2-bin
    local b=$TEST_TMP/v2dev id=v2dev cg
    make_bundle "$b" sh -c 'mknod /tmp/mem c 1 1; head -c1 /tmp/mem >/dev/null; echo mem=$?; head -c1 /dev/null; echo null=$?; cat /proc/self/cgroup'
    bundle_set "$b" 'for k in ("bounding", "effective", "permitted"): c["process"]["capabilities"][k].append("CAP_MKNOD")
c["linux"]["resources"]["devices"].append({"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"})
c["linux"]["devices"] = [{"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 438}]
c["linux"]["namespaces"].append({"type": "cgroup"})'
    cg=$(bundle_get "$b" 'c["linux"]["cgroupsPath"]')
    capture capsh --drop=cap_sys_resource -- -c "exec timeout -k 5 $E2E_TIMEOUT $RUNTIME --root $STATE run --bundle $b $id" </dev/null
    assert_rc 0 "run without CAP_SYS_RESOURCE: rc 0"
    assert_contains "$OUT" "mem=1" "…a device node the rules do not allow cannot be read after mknod"
    assert_contains "$ERR$OUT" "Operation not permitted" "…refused by the device rules (EPERM)"
    assert_contains "$OUT" "null=0" "…an allowed device reads"
    assert_contains "$OUT" "0::/" "…the init sees its own cgroup as the root of its cgroup namespace"
    assert_false "…its cgroup is removed after the run" test -d "/sys/fs/cgroup$cg"

    # a frozen cgroup made beforehand: a process born in it would stop there
    mkdir -p "/sys/fs/cgroup$cg"
    echo 1 >"/sys/fs/cgroup$cg/cgroup.freeze"
    capture rt create --bundle "$b" "$id" </dev/null
    assert_rc_nonzero "create into a frozen cgroup fails"
    assert_contains "$ERR" "unexpectedly frozen" "…saying so (as runc)"
    assert_eq "" "$(cat "/sys/fs/cgroup$cg/cgroup.procs")" "…and nothing was started in it"
    echo 0 >"/sys/fs/cgroup$cg/cgroup.freeze"
    assert_true "…the cgroup made beforehand is left in place" test -d "/sys/fs/cgroup$cg"
    rmdir "/sys/fs/cgroup$cg"
    gone "$id"
}

# --- through dockerd ---------------------------------------------------------

test_docker_cgroup_limits_are_read_only() {
    capture docker_ run --rm --runtime=nvidia --network=none --pids-limit 50 bb \
        sh -c 'cat /sys/fs/cgroup/pids/pids.max; echo max >/sys/fs/cgroup/pids/pids.max; cat /sys/fs/cgroup/pids/pids.max'
    assert_eq $'50\n50' "$OUT" "docker --pids-limit 50: the container cannot raise its pids.max"
    assert_contains "$ERR" "Read-only file system" "…the write fails with EROFS"
    capture docker_ run --rm --runtime=nvidia --network=none bb sh -c 'echo 4096 >/sys/fs/cgroup/cpu/cpu.shares'
    assert_rc_nonzero "docker: the container cannot raise its cpu.shares"
    assert_contains "$ERR" "Read-only file system" "…EROFS"
    capture docker_ run --rm --runtime=nvidia --network=none bb cat /proc/self/mountinfo
    local bad
    bad=$(awk '$5 ~ "^/sys/fs/cgroup/" && $6 !~ /(^|,)ro(,|$)/ { print $5, $6 }' <<<"$OUT")
    assert_eq "" "$bad" "docker: every cgroup controller mount is read-only"
    bad=$(awk '$5 ~ "^/sys/fs/cgroup/" && !($6 ~ /nosuid/ && $6 ~ /nodev/ && $6 ~ /noexec/) { print $5, $6 }' <<<"$OUT")
    assert_eq "" "$bad" "docker: …and nosuid,nodev,noexec"
    capture docker_ run --rm --runtime=nvidia --network=none --read-only bb touch /dev/shm/ok
    assert_rc 0 "docker --read-only: /dev/shm stays writable"
}

test_an_rlimit_that_cannot_be_set_is_named() {
    # above fs.nr_open: refused by the kernel even to root
    local n
    n=$(($(cat /proc/sys/fs/nr_open) + 1))
    make_bundle "$TEST_TMP/rlimit" true
    bundle_set "$TEST_TMP/rlimit" "c['process']['rlimits'] = [{'type': 'RLIMIT_NOFILE', 'soft': $n, 'hard': $n}]"
    capture bash -c 'cd "$1" && shift && exec "$@" </dev/null' _ "$TEST_TMP/rlimit" \
        timeout -k 5 "$E2E_TIMEOUT" "$RUNTIME" --root "$STATE" --log "$TEST_TMP/rlimit.json" --log-format json run rlimit
    assert_rc 1 "an RLIMIT_NOFILE above fs.nr_open: run fails"
    assert_contains "$ERR" "rlimit RLIMIT_NOFILE to soft $n, hard $n" "…naming the limit and its values"
    assert_contains "$ERR" "EPERM" "…and the kernel's answer"
    assert_eq "" "$(ls -A "$STATE")" "…no state left"
}

# --- seccomp ---------------------------------------------------------------

test_seccomp_profile_is_enforced() {
    # The same container with and without a profile that makes mkdir fail with EPERM
    # (errnoRet 1): the filter is libseccomp's, linked into the binary, loaded in the init.
    local id=seccomp-off script='grep "^Seccomp:" /proc/self/status; mkdir /tmp/made && echo made'
    make_bundle "$TEST_TMP/$id" sh -c "$script"
    capture _run_in "$TEST_TMP/$id" "$id"
    assert_rc 0 "without a seccomp profile: run rc 0"
    assert_match "$OUT" "Seccomp:[[:space:]]+0" "…no filter on the process"
    assert_contains "$OUT" "made" "…and mkdir works"

    id=seccomp-on
    make_bundle "$TEST_TMP/$id" sh -c "$script"
    bundle_set "$TEST_TMP/$id" 'c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}'
    capture _run_in "$TEST_TMP/$id" "$id"
    assert_match "$OUT" "Seccomp:[[:space:]]+2" "with a profile: the process runs under a filter (mode 2)"
    assert_not_contains "$OUT" "made" "…mkdir is refused"
    assert_contains "$ERR" "Operation not permitted" "…with the profile's errno, EPERM"
    assert_eq "" "$(ls -A "$STATE")" "…and nothing is left in the state dir"
}

run_tests \
    test_seccomp_profile_is_enforced \
    test_an_rlimit_that_cannot_be_set_is_named \
    test_exec_cap_goes_to_bounding_effective_permitted_only \
    test_signals_of_run_and_exec \
    test_signals_of_hooks \
    test_features_claims_only_what_it_does \
    test_refused_mount_is_named \
    test_mount_options_direct \
    test_default_cgroup_path \
    test_relative_cgroup_path \
    test_default_cgroup_path_from_another_cgroup \
    test_v2_cgroup_and_device_rules

if cgroup_v2_only; then
    log "cgroup v2 host: the v1 per-controller mount checks through dockerd are skipped"
else
    start_dockerd --name docker-limits
    import_busybox_image bb
    run_tests test_docker_cgroup_limits_are_read_only
    stop_dockerd "$D"
fi
e2e_finish
