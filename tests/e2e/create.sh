#!/usr/bin/env bash
# tests/e2e/create.sh — what a GPU `create` does to the bundle, and what it must never do.
#
# Against a simulated 8-GPU host (tests/fixtures/make-driver-root.sh; GPU index i has minor
# i XOR 1), with busybox bundles driven directly. Proves:
#  - the hand-over from the first process to the sealed re-exec cannot be forged from the
#    environment: a caller's _NVIDIA_RUNTIME_INJECTED_FD (with a memfd it named like ours)
#    neither skips the injection nor makes a failed create "roll back" a file of its choosing;
#    a config.json that merely carries our marker annotation is not taken as injected;
#  - two creates of one id on one bundle at once: exactly one wins, and its container starts
#    with its GPUs; two different ids on one bundle at once both work;
#  - a disk that fills up while our files are written: a clear error, the bundle exactly as
#    it was; a temp file left by a killed create is gone after the next create, and a create
#    killed at any moment leaves nothing the next create trips on;
#  - the rewrite of config.json keeps what it does not own: a symlinked config.json stays a
#    symlink (its target is rewritten), owner and mode stay, a 30-digit integer keeps its text
#    — after a successful create and after a failed one;
#  - a bundle run once with all GPUs, then edited to ask for GPU 1, gets GPU 1 only.
source "$(dirname "$0")/../lib.sh"
e2e_init "$@"
need_cmd gcc gcc
need_cmd ldconfig libc-bin
need_cmd sha256sum coreutils

sim_host 8 "$TEST_TMP/inventory-cache"
HANDOVER_ENV=_NVIDIA_RUNTIME_INJECTED_FD
ALL_NODES=$(printf '/dev/nvidia%d\n' 0 1 2 3 4 5 6 7)

B=""
# gpu_bundle NAME ENV... : busybox bundle $TEST_TMP/NAME asking for ENV; sets B.
gpu_bundle() {
    local name=$1; shift
    B=$TEST_TMP/$name
    make_bundle "$B" sh
    python3 - "$B/config.json" "$@" <<'EOF'
import json, sys
path = sys.argv[1]
with open(path) as f: c = json.load(f)
c["process"]["env"] += sys.argv[2:]
with open(path, "w") as f: json.dump(c, f, indent=2)
EOF
}
# listing DIR : every name under DIR with its type, mode, owner and size (what "as it was" means)
listing() { (cd "$1" && find . -path ./rootfs -prune -o -printf '%p %y %m %u:%g %s %l\n' | LC_ALL=C sort); }
rootfs_tree() { (cd "$1/rootfs" && find . -printf '%p %y %l\n' | LC_ALL=C sort); }
annotation() { bundle_get "$B" "c.get('annotations', {}).get('io.github.nvidia-runtime.injected', '<none>')"; }
# fail_late : a namespace path that does not exist: libcontainer refuses the create after the
# injection, in the sealed process.
fail_late() { bundle_set "$B" 'c["linux"]["namespaces"].append({"type": "cgroup", "path": "/nonexistent/ns/cgroup"})'; }
run_in() { (cd "$1" && rt run "$2" </dev/null); }

# with_forged_handover JSON CMD... : CMD with an inherited memfd named like the runtime's
# hand-over, holding JSON, and the variable naming it.
with_forged_handover() {
    local json=$1; shift
    python3 -c '
import os, sys
fd = os.memfd_create("nvidia-runtime-handover", 0)
os.write(fd, sys.argv[1].encode())
os.lseek(fd, 0, 0)
os.set_inheritable(fd, True)
os.environ[sys.argv[2]] = str(fd)
os.execvp(sys.argv[3], sys.argv[3:])' "$json" "$HANDOVER_ENV" "$@"
}

# --- the hand-over cannot be forged --------------------------------------------

test_forged_handover() {
    local victim=$TEST_TMP/victim json
    printf 'root:x:0:0:precious:/root:/bin/sh\n' >"$victim"
    local victim_sum; victim_sum=$(sha_of "$victim")

    # 1. a failed create whose "undo" names the victim
    gpu_bundle forged-fail NVIDIA_VISIBLE_DEVICES=all
    bundle_args "$B" echo program-ran
    fail_late
    local before; before=$(sha_of "$B/config.json")
    json=$(python3 -c 'import json, sys; print(json.dumps({"bundle": sys.argv[1], "undo": {"config_path": sys.argv[2], "original": "pwned\n", "created_links": [], "new_paths": [], "rootfs": None}}))' "$B" "$victim")
    capture with_forged_handover "$json" timeout 30 "$RUNTIME" --root "$STATE" run --bundle "$B" forged-fail
    assert_rc_nonzero "forged hand-over, failing create: run fails"
    assert_eq "$victim_sum" "$(sha_of "$victim")" "forged hand-over: the file its undo names is intact"
    assert_eq "$before" "$(sha_of "$B/config.json")" "forged hand-over: config.json as it was"
    assert_eq "" "$(ls -A "$STATE")" "forged hand-over: no state left"

    # 2. a forged hand-over saying "injected, nothing to undo": the injection still happens
    gpu_bundle forged-ok NVIDIA_VISIBLE_DEVICES=all
    bundle_args "$B" sh -c 'ls /dev/nvidia[0-9]*'
    json=$(python3 -c 'import json, sys; print(json.dumps({"bundle": sys.argv[1], "undo": None}))' "$B")
    capture with_forged_handover "$json" timeout 30 "$RUNTIME" --root "$STATE" run --bundle "$B" forged-ok
    assert_rc 0 "forged 'already injected' hand-over: run succeeds"
    assert_eq "$ALL_NODES" "$OUT" "forged 'already injected' hand-over: the container still gets its 8 GPUs"

    # 3. our marker annotation alone (no record of ours in the bundle) is not an injection
    gpu_bundle marker-only NVIDIA_VISIBLE_DEVICES=all
    bundle_set "$B" 'c["annotations"] = {"io.github.nvidia-runtime.injected": "gpus=0,1,2,3,4,5,6,7"}'
    bundle_args "$B" sh -c 'ls /dev/nvidia[0-9]*'
    capture run_in "$B" marker-only
    if [[ $RC == 0 ]]; then
        assert_eq "$ALL_NODES" "$OUT" "marker annotation without our record: injected anyway"
    else
        assert_contains "$ERR" "io.github.nvidia-runtime.injected" "marker annotation without our record: refused, naming the annotation"
    fi
}

# --- concurrent creates on one bundle -------------------------------------------

test_concurrent_creates_of_one_id() {
    local trial wins pa pb ra rb
    gpu_bundle race NVIDIA_VISIBLE_DEVICES=all
    bundle_args "$B" sleep 1000
    cp "$B/config.json" "$TEST_TMP/race.pristine.json"
    for trial in 1 2 3 4 5 6; do
        cp "$TEST_TMP/race.pristine.json" "$B/config.json"
        rm -rf "$B/.nvidia-runtime"
        "$RUNTIME" --root "$STATE" create --bundle "$B" race >"$TEST_TMP/race-a.log" 2>&1 </dev/null &
        pa=$!
        "$RUNTIME" --root "$STATE" create --bundle "$B" race >"$TEST_TMP/race-b.log" 2>&1 </dev/null &
        pb=$!
        wait_pid "$pa" 30; ra=$RC
        wait_pid "$pb" 30; rb=$RC
        wins=$(( (ra == 0) + (rb == 0) ))
        assert_eq 1 "$wins" "trial $trial: exactly one of two concurrent creates of one id succeeds (rc $ra, $rb)"
        if ((wins == 1)); then
            local loser_log=$TEST_TMP/race-b.log; ((ra != 0)) && loser_log=$TEST_TMP/race-a.log
            assert_contains "$(cat "$loser_log")" "race" "trial $trial: the loser names the id"
        fi
        capture rt start race
        assert_rc 0 "trial $trial: the winner starts"
        capture rt exec race sh -c 'ls /dev/nvidia[0-9]*'
        assert_eq "$ALL_NODES" "$OUT" "trial $trial: the winner runs with its 8 GPUs"
        rt delete --force race >/dev/null 2>&1 || true
    done

    # two different ids on one bundle at once: both work, the bundle injected once (each in
    # a cgroup of its own, the default: as runc, a create refuses a cgroup that has processes)
    cp "$TEST_TMP/race.pristine.json" "$B/config.json"
    bundle_set "$B" 'del c["linux"]["cgroupsPath"]'
    rm -rf "$B/.nvidia-runtime"
    "$RUNTIME" --root "$STATE" create --bundle "$B" race-x >"$TEST_TMP/race-x.log" 2>&1 </dev/null &
    pa=$!
    "$RUNTIME" --root "$STATE" create --bundle "$B" race-y >"$TEST_TMP/race-y.log" 2>&1 </dev/null &
    pb=$!
    wait_pid "$pa" 30; ra=$RC
    wait_pid "$pb" 30; rb=$RC
    assert_eq "0 0" "$ra $rb" "two ids on one bundle at once: both creates succeed" "$(cat "$TEST_TMP/race-x.log" "$TEST_TMP/race-y.log")"
    local id
    for id in race-x race-y; do
        rt start "$id" >/dev/null 2>&1 || true
        capture rt exec "$id" sh -c 'ls /dev/nvidia[0-9]*'
        assert_eq "$ALL_NODES" "$OUT" "two ids on one bundle: $id runs with its 8 GPUs"
    done
    rt delete --force race-x >/dev/null 2>&1 || true
    rt delete --force race-y >/dev/null 2>&1 || true
    assert_eq 1 "$(bundle_get "$B" "len([d for d in c['linux']['devices'] if d['path'] == '/dev/nvidiactl'])")" \
        "two ids on one bundle: /dev/nvidiactl injected once"
}

# --- what a failed or killed create leaves --------------------------------------

test_disk_full() {
    local mnt=$TEST_TMP/tiny
    mkdir -p "$mnt"
    mount -t tmpfs -o size=64k tmpfs "$mnt"
    # the rootfs lives elsewhere (root.path absolute): only the bundle's own files are on the tmpfs
    make_bundle "$TEST_TMP/full" sh -c 'ls /dev/nvidia[0-9]*'
    B=$mnt/bundle
    mkdir -p "$B"
    cp "$TEST_TMP/full/config.json" "$B/config.json"
    bundle_set "$B" "c['root']['path'] = '$TEST_TMP/full/rootfs'; c['process']['env'].append('NVIDIA_VISIBLE_DEVICES=all')"
    # fill the tmpfs up, leaving less than a page
    dd if=/dev/zero of="$mnt/filler" bs=4k 2>/dev/null || true
    local before tree; before=$(listing "$mnt"); tree=$(rootfs_tree "$TEST_TMP/full")
    capture run_in "$B" full
    assert_rc_nonzero "disk full: run fails"
    assert_contains "$ERR" "No space left on device" "disk full: the error says why"
    assert_contains "$ERR" "$B" "disk full: …and names where"
    assert_eq "$before" "$(listing "$mnt")" "disk full: the bundle is exactly as it was (no .nvidia-runtime, no temp file)"
    assert_eq "$tree" "$(rootfs_tree "$TEST_TMP/full")" "disk full: the rootfs is exactly as it was"
    assert_eq "" "$(ls -A "$STATE")" "disk full: no state left"
    # with room again, the same bundle works
    rm -f "$mnt/filler"
    capture run_in "$B" full
    assert_rc 0 "room again: run succeeds"
    assert_eq "$ALL_NODES" "$OUT" "room again: 8 GPUs"
    umount "$mnt"
}

test_killed_create_leaves_nothing() {
    gpu_bundle killed NVIDIA_VISIBLE_DEVICES=all
    bundle_args "$B" sh -c 'ls /dev/nvidia[0-9]*'
    cp "$B/config.json" "$TEST_TMP/killed.pristine.json"
    # a temp file beside config.json as a create killed during the rewrite leaves it (today's
    # names and the old pid-named ones)
    echo '{"half": ' >"$B/.config.json.nvidia-runtime-tmp"
    echo '{"half": ' >"$B/.config.json.nvidia-runtime-4242"
    capture run_in "$B" killed
    assert_rc 0 "after a killed create's leftovers: run succeeds"
    assert_eq "$ALL_NODES" "$OUT" "…with its GPUs"
    assert_eq "" "$(ls -A "$B" | grep -v -x -e config.json -e rootfs -e .nvidia-runtime)" \
        "…and the temp files left beside config.json are gone"

    # kill -9 at many moments of a create; the next create always works and leaves no temp file
    local t pid delay
    # Each create in a cgroup of its own: a create killed while libcontainer's child processes
    # start can leave its init to join its cgroup after `delete --force` ran (a known gap), and
    # a cgroup with a process in it is refused to the next container, as runc does.
    for t in $(seq 1 12); do
        cp "$TEST_TMP/killed.pristine.json" "$B/config.json"
        bundle_set "$B" "c['linux']['cgroupsPath'] += '-$t'"
        delay=$(printf '0.%03d' $(( (t * 7) % 40 )))
        "$RUNTIME" --root "$STATE" create --bundle "$B" killed-$t >/dev/null 2>&1 </dev/null &
        pid=$!
        sleep "$delay"
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        rt delete --force killed-$t >/dev/null 2>&1 || true
    done
    cp "$TEST_TMP/killed.pristine.json" "$B/config.json"
    bundle_set "$B" "c['linux']['cgroupsPath'] += '-after'"
    capture run_in "$B" killed-after
    assert_rc 0 "after creates killed at many moments: the next run succeeds"
    assert_eq "$ALL_NODES" "$OUT" "…with its GPUs"
    assert_eq "" "$(ls -A "$B" | grep -v -x -e config.json -e rootfs -e .nvidia-runtime)" "…and nothing but our dir is left in the bundle"
    # (A create killed inside libcontainer can leave its "creating" state dir and init: those
    # are `delete --force`'s to remove, not the bundle's; only what create itself keeps counts.)
    assert_eq "" "$(ls -A "$STATE" | grep -v -x -e 'killed-[0-9]*')" "…and no reservation or state of the next create left"
    # what the killed creates left is the shim's to remove, as it would: again, once their
    # processes settled (the tests after this one check that no state is left)
    sleep 1
    for t in $(seq 1 12); do rt delete --force killed-$t >/dev/null 2>&1 || true; done
}

# --- the rewrite keeps what it does not own --------------------------------------

BIG=123456789012345678901234567890
# kept_checks LABEL yes|no : (injected or not) config.json is still a symlink to real/config.json, owner 1234:5678,
# mode 0640, and the 30-digit integer keeps its text.
kept_checks() {
    local label=$1 injected=$2
    assert_true "$label: config.json is still a symlink" test -L "$B/config.json"
    assert_eq "real/config.json" "$(readlink "$B/config.json")" "$label: …to the same target"
    assert_eq "1234:5678 640" "$(stat -c '%u:%g %a' "$B/real/config.json")" "$label: owner and mode kept"
    assert_match "$(tr -d ' \n' <"$B/real/config.json")" "\"x-big\":$BIG[,}]" "$label: the 30-digit integer keeps its exact text"
    if [[ $injected == yes ]]; then
        assert_contains "$(cat "$B/real/config.json")" "io.github.nvidia-runtime.injected" "$label: the target holds the injected config"
    fi
    assert_eq "config.json real rootfs" "$(ls -A "$B" | grep -v -x .nvidia-runtime | tr '\n' ' ' | sed 's/ $//')" "$label: no temp file beside config.json"
    assert_eq "config.json" "$(ls -A "$B/real" | tr '\n' ' ' | sed 's/ $//')" "$label: no temp file beside its target"
}
keep_bundle() {
    gpu_bundle "$1" NVIDIA_VISIBLE_DEVICES=all
    mkdir -p "$B/real"
    python3 - "$B/config.json" "$B/real/config.json" "$BIG" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["x-big"] = int(sys.argv[3])
with open(sys.argv[2], "w") as f: json.dump(c, f, indent=2)
EOF
    rm "$B/config.json"
    ln -s real/config.json "$B/config.json"
    chown 1234:5678 "$B/real/config.json"
    chmod 0640 "$B/real/config.json"
}

test_rewrite_keeps_what_it_does_not_own() {
    keep_bundle keep-ok
    bundle_args "$B" sh -c 'ls /dev/nvidia[0-9]*' 2>/dev/null
    # (bundle_args replaced the symlink with a file: make it again)
    if ! [[ -L $B/config.json ]]; then mv "$B/config.json" "$B/real/config.json"; ln -s real/config.json "$B/config.json"; chown 1234:5678 "$B/real/config.json"; chmod 0640 "$B/real/config.json"; fi
    capture run_in "$B" keep-ok
    assert_rc 0 "symlinked, owned, 0640 config.json with a 30-digit integer: runs"
    assert_eq "$ALL_NODES" "$OUT" "…with its GPUs"
    assert_match "$(annotation)" '^gpus=0,1,2,3,4,5,6,7 ' "…injected"
    kept_checks "after success" yes

    # the same, config.json a plain file
    keep_bundle keep-plain
    rm "$B/config.json"
    mv "$B/real/config.json" "$B/config.json"
    rmdir "$B/real"
    bundle_args "$B" true
    capture run_in "$B" keep-plain
    assert_rc 0 "a plain config.json: runs"
    assert_eq "1234:5678 640" "$(stat -c '%u:%g %a' "$B/config.json")" "a plain config.json: owner and mode kept"
    assert_match "$(tr -d ' \n' <"$B/config.json")" "\"x-big\":$BIG[,}]" "a plain config.json: the 30-digit integer keeps its exact text"
    assert_contains "$(cat "$B/config.json")" "io.github.nvidia-runtime.injected" "a plain config.json: injected"

    keep_bundle keep-fail
    bundle_set "$B" 'c["linux"]["namespaces"].append({"type": "cgroup", "path": "/nonexistent/ns/cgroup"})'
    if ! [[ -L $B/config.json ]]; then mv "$B/config.json" "$B/real/config.json"; ln -s real/config.json "$B/config.json"; chown 1234:5678 "$B/real/config.json"; chmod 0640 "$B/real/config.json"; fi
    local before; before=$(sha_of "$B/real/config.json")
    capture run_in "$B" keep-fail
    assert_rc_nonzero "failing create: run fails"
    assert_eq "$before" "$(sha_of "$B/real/config.json")" "failing create: config.json's target byte for byte as it was"
    kept_checks "after a failed create" no
}

# --- a changed request on an injected bundle ------------------------------------

test_changed_request_is_honoured() {
    gpu_bundle regpu NVIDIA_VISIBLE_DEVICES=all
    bundle_args "$B" sh -c 'ls /dev/nvidia[0-9]*; nvidia-smi'
    capture run_in "$B" regpu
    assert_rc 0 "all GPUs: runs"
    assert_eq "$ALL_NODES" "$(grep '^/dev' <<<"$OUT")" "all GPUs: 8 nodes"
    # the user edits the injected config.json: GPU 1 only
    bundle_set "$B" 'c["process"]["env"] = [e for e in c["process"]["env"] if not e.startswith("NVIDIA_VISIBLE_DEVICES=")] + ["NVIDIA_VISIBLE_DEVICES=1"]'
    capture run_in "$B" regpu
    assert_rc 0 "edited to GPU 1: runs"
    assert_eq "/dev/nvidia0" "$(grep '^/dev' <<<"$OUT")" "edited to GPU 1: only GPU 1's node (minor 0)"
    assert_eq "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-4e565349-4d00-4000-8000-000000000001)" "$(grep '^GPU' <<<"$OUT")" \
        "edited to GPU 1: nvidia-smi sees GPU 1 only"
    assert_match "$(annotation)" '^gpus=1 ' "edited to GPU 1: the annotation says gpus=1"
    assert_eq 1 "$(bundle_get "$B" "len([d for d in c['linux']['devices'] if d['path'] == '/dev/nvidiactl'])")" \
        "edited to GPU 1: /dev/nvidiactl once"
    # an edit of something else keeps the request
    bundle_args "$B" sh -c 'ls /dev/nvidia[0-9]*'
    capture run_in "$B" regpu
    assert_eq "/dev/nvidia0" "$OUT" "args edited afterwards: still GPU 1 only"
}

# --- what the bundle's own directory may hold, and where its record may lead ------

# the GPU nodes a container sees, then "ran" (its program got to run)
nodes_then_ran='ls /dev/nvidia[0-9]* 2>/dev/null; echo ran'

test_saved_image_files_are_private() {
    gpu_bundle private NVIDIA_VISIBLE_DEVICES=all
    bundle_args "$B" true
    mkdir -p "$B/rootfs/etc"
    echo TOPSECRET >"$B/rootfs/etc/ld.so.cache"
    chmod 0600 "$B/rootfs/etc/ld.so.cache"
    # as containerd makes bundle dirs: others may pass through, not list
    chmod 0711 "$B"
    capture run_in "$B" private
    assert_rc 0 "an image with a 0600 ld.so.cache: runs"
    assert_eq 711 "$(stat -c %a "$B/.nvidia-runtime")" "our dir in the bundle is 0711 (passable, not listable)"
    assert_true "…and the image's saved copy is there" test -f "$B/.nvidia-runtime/image-ld.so.cache"
    capture setpriv --reuid=65534 --regid=65534 --clear-groups cat "$B/.nvidia-runtime/image-ld.so.cache"
    assert_rc_nonzero "nobody cannot read the image's saved 0600 file"
    assert_not_contains "$OUT" TOPSECRET "…nor see its content"
    # a dir of ours an earlier version left 0755 is made private by the next create
    chmod 0755 "$B/.nvidia-runtime"
    bundle_set "$B" 'c["process"]["env"] = [e for e in c["process"]["env"] if not e.startswith("NVIDIA_VISIBLE_DEVICES=")] + ["NVIDIA_VISIBLE_DEVICES=1"]'
    capture run_in "$B" private
    assert_rc 0 "edited to GPU 1: runs"
    assert_eq 711 "$(stat -c %a "$B/.nvidia-runtime")" "a 0755 dir of ours is 0711 after the next create"
}

test_request_narrows_after_marker_lost() {
    gpu_bundle narrow NVIDIA_VISIBLE_DEVICES=all
    bundle_args "$B" sh -c "$nodes_then_ran"
    capture run_in "$B" narrow
    assert_eq "$ALL_NODES"$'\n'ran "$OUT" "all GPUs: 8 nodes"
    # the annotations (our marker with them) dropped by whoever edits config.json
    bundle_set "$B" 'c.pop("annotations")'
    capture run_in "$B" narrow
    assert_rc 0 "marker dropped: runs"
    assert_eq "$ALL_NODES"$'\n'ran "$OUT" "marker dropped: still its 8 GPUs, nothing injected twice"
    assert_eq 1 "$(bundle_get "$B" "len([d for d in c['linux']['devices'] if d['path'] == '/dev/nvidiactl'])")" \
        "marker dropped: /dev/nvidiactl once"
    bundle_set "$B" 'c["process"]["env"] = [e for e in c["process"]["env"] if not e.startswith("NVIDIA_VISIBLE_DEVICES=")] + ["NVIDIA_VISIBLE_DEVICES=1"]'
    capture run_in "$B" narrow
    assert_eq "/dev/nvidia0"$'\n'ran "$OUT" "marker dropped, then edited to GPU 1: GPU 1 only"
    bundle_set "$B" 'c.pop("annotations", None); c["process"]["env"] = [e for e in c["process"]["env"] if not e.startswith("NVIDIA_VISIBLE_DEVICES=")] + ["NVIDIA_VISIBLE_DEVICES=void"]'
    capture run_in "$B" narrow
    assert_rc 0 "marker dropped again, then edited to void: runs"
    assert_eq ran "$OUT" "…with no GPU at all"
    assert_eq 0 "$(bundle_get "$B" "len([d for d in c['linux'].get('devices', []) if d['path'].startswith('/dev/nvidia')])")" \
        "…and no NVIDIA device left in config.json"
}

test_record_that_is_not_a_regular_file() {
    local kind
    for kind in fifo huge; do
        gpu_bundle "record-$kind" NVIDIA_VISIBLE_DEVICES=all
        bundle_args "$B" true
        mkdir "$B/.nvidia-runtime"
        case $kind in
            fifo) mkfifo "$B/.nvidia-runtime/record.json" ;;
            huge) truncate -s 300M "$B/.nvidia-runtime/record.json" ;;
        esac
        local before; before=$(sha_of "$B/config.json")
        capture timeout 20 "$RUNTIME" --root "$STATE" run --bundle "$B" "record-$kind"
        assert_ne 124 "$RC" "$kind at .nvidia-runtime/record.json: create does not hang"
        assert_rc_nonzero "$kind at .nvidia-runtime/record.json: refused"
        assert_contains "$ERR" "$B/.nvidia-runtime/record.json" "$kind record: the error names the file"
        assert_contains "$ERR" "remove" "$kind record: …and says to remove it"
        assert_eq "$before" "$(sha_of "$B/config.json")" "$kind record: config.json as it was"
        assert_eq "" "$(ls -A "$STATE")" "$kind record: no state left"
    done
    # a container that asks for no GPU is not held up by it either
    make_bundle "$TEST_TMP/record-nogpu" true
    B=$TEST_TMP/record-nogpu
    mkdir "$B/.nvidia-runtime"
    mkfifo "$B/.nvidia-runtime/record.json"
    capture timeout 20 "$RUNTIME" --root "$STATE" run --bundle "$B" record-nogpu
    assert_ne 124 "$RC" "FIFO record, no GPU asked for: create does not hang"
}

test_artifacts_dir_that_is_not_ours() {
    local host=$TEST_TMP/hostdir kind
    for kind in symlink file; do
        rm -rf "$host"
        mkdir -p "$host"
        echo keep >"$host/precious"
        echo '{"format":1,"runtime":"x","owner":{"pid":1,"start":1},"committed":true,"original":"{}","written":"{}","undo":{"original":"{}","created_links":[],"new_paths":[],"made_dir":false}}' >"$host/record.json"
        local host_listing; host_listing=$(cd "$host" && find . -printf '%p %y %s\n' | sort)
        gpu_bundle "notours-$kind" NVIDIA_VISIBLE_DEVICES=all
        bundle_args "$B" true
        case $kind in
            symlink) ln -s "$host" "$B/.nvidia-runtime" ;;
            file) echo 'not a dir' >"$B/.nvidia-runtime" ;;
        esac
        local before; before=$(sha_of "$B/config.json")
        capture run_in "$B" "notours-$kind"
        assert_rc_nonzero ".nvidia-runtime a $kind: refused"
        assert_contains "$ERR" "$B/.nvidia-runtime" ".nvidia-runtime a $kind: the error names it"
        assert_eq "$host_listing" "$(cd "$host" && find . -printf '%p %y %s\n' | sort)" ".nvidia-runtime a $kind: the host dir untouched"
        assert_eq "keep" "$(cat "$host/precious")" ".nvidia-runtime a $kind: the host file intact"
        assert_eq "$before" "$(sha_of "$B/config.json")" ".nvidia-runtime a $kind: config.json as it was"
        if [[ $kind == symlink ]]; then
            assert_true ".nvidia-runtime a symlink: still the same symlink" test -L "$B/.nvidia-runtime"
        fi
    done
}

# forge_pending_record ROOT PATH SAVED MODE : a pending record of a dead create whose
# original names ROOT as root.path and which "wrote" PATH there, replacing the image's file
# saved as SAVED with MODE.
forge_pending_record() {
    python3 - "$B" "$@" <<'EOF'
import json, sys
bundle, root, path, saved, mode = sys.argv[1:]
original = json.load(open(bundle + "/config.json"))
original["root"]["path"] = root
original = json.dumps(original)
undo = {"original": original, "created_links": [], "new_paths": [], "made_dir": False,
        "written_files": [{"path": path, "replaced": {"saved_as": saved, "mode": int(mode, 8), "uid": 0, "gid": 0}}]}
json.dump({"format": 1, "runtime": "x", "owner": {"pid": 1, "start": 1}, "committed": False,
           "original": original, "written": None, "undo": undo},
          open(bundle + "/.nvidia-runtime/record.json", "w"))
EOF
}

test_forged_pending_record_stays_in_the_rootfs() {
    local host=$TEST_TMP/hostroot
    mkdir -p "$host/etc"
    echo orig >"$host/etc/victim"
    chmod 0644 "$host/etc/victim"
    gpu_bundle forged-root NVIDIA_VISIBLE_DEVICES=all
    bundle_args "$B" sh -c "$nodes_then_ran"
    mkdir "$B/.nvidia-runtime"
    printf EVIL >"$B/.nvidia-runtime/image-x"
    forge_pending_record "$host" /etc/victim image-x 4755
    capture run_in "$B" forged-root
    assert_eq "orig 644" "$(cat "$host/etc/victim") $(stat -c %a "$host/etc/victim")" \
        "a forged pending record naming another root: that root untouched"
    assert_eq "$ALL_NODES"$'\n'ran "$OUT" "…and the container still runs with its 8 GPUs"

    # in the bundle's own rootfs: no set-id bit comes back
    gpu_bundle forged-suid NVIDIA_VISIBLE_DEVICES=all
    bundle_args "$B" true
    mkdir -p "$B/.nvidia-runtime" "$B/rootfs/etc"
    cp "$B/rootfs/bin/busybox" "$B/.nvidia-runtime/image-ld.so.cache" 2>/dev/null || printf 'x' >"$B/.nvidia-runtime/image-ld.so.cache"
    forge_pending_record rootfs /etc/ld.so.cache image-ld.so.cache 4755
    capture run_in "$B" forged-suid
    assert_rc 0 "a forged pending record asking for a setuid file: runs"
    assert_eq 0 "$(( 0$(stat -c %a "$B/rootfs/etc/ld.so.cache") & 07000 ))" "…and no set-id or sticky bit in the rootfs"
}

run_tests test_forged_handover test_concurrent_creates_of_one_id test_disk_full \
    test_killed_create_leaves_nothing test_rewrite_keeps_what_it_does_not_own test_changed_request_is_honoured \
    test_saved_image_files_are_private test_request_narrows_after_marker_lost test_record_that_is_not_a_regular_file \
    test_artifacts_dir_that_is_not_ours test_forged_pending_record_stays_in_the_rootfs
e2e_finish
