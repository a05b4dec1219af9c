#!/usr/bin/env bash
# tests/e2e/attack-cdi.sh — hostile files where the runtime's own commands read and write.
#
# Every file lives under the temp dir; nothing in /etc is touched. Proves:
#  - `configure docker|containerd` on a config path that is a symlink to a device node (as
#    `daemon.json -> /dev/null` is, to switch a file off), a FIFO, or a device itself refuses
#    it at once, naming what is there, and leaves the node a node (before, the device node was
#    replaced by a regular file holding our JSON, and a FIFO hung the command for ever);
#  - `doctor` with a FIFO as daemon.json, containerd's config or the runtime's own config
#    reports each as an error finding and finishes (it hung);
#  - a FIFO as the runtime's config file makes `run` fail at once with the cause named, no
#    container left (every create hung before);
#  - an image whose rootfs has links leading out where a CDI spec's steps write
#    (/usr/lib -> a host dir by absolute path, /etc/ld.so.conf.d -> ../../..host dir,
#    /etc/ld.so.cache -> a host file) gets the spec's mount, SONAME link, ld cache and
#    ld.so.conf.d entry inside its rootfs only, whether our runtime does the steps in-process
#    or Debian's runc runs them as the spec's createContainer hooks (as Podman does, LD_PRELOAD
#    in the hooks' env); the host's files and dirs stay as they were.
source "$(dirname "$0")/../lib.sh"
e2e_init "$@"

need_cmd gcc gcc
need_cmd runc runc
sim_host 1 ""
# Commands that hung before must now end well within this.
QUICK=20
quick() { capture timeout -k 2 "$QUICK" "$RUNTIME" "$@"; }

test_configure_refuses_what_is_not_a_file() {
    local t=$TEST_TMP/configure
    mkdir -p "$t/ctd"
    mknod "$t/null" c 1 3
    chmod 0666 "$t/null"
    ln -s "$t/null" "$t/daemon.json"
    quick configure docker --config "$t/daemon.json" --no-hook
    assert_rc_nonzero "configure docker: a daemon.json linked to a device node is refused"
    assert_contains "$ERR" "character device, not a regular file" "the error says what is there"
    assert_true "the device node is still a device node" test -c "$t/null"
    assert_eq "daemon.json null" "$(ls "$t" | grep -v ctd | tr '\n' ' ' | sed 's/ $//')" "no backup or temp file left"

    mkfifo "$t/fifo.json"
    quick configure docker --config "$t/fifo.json" --no-hook
    assert_rc_nonzero "configure docker: a FIFO daemon.json is refused, not waited on"
    assert_contains "$ERR" "a FIFO, not a regular file" "the error names the FIFO"
    assert_true "the FIFO is left as it is" test -p "$t/fifo.json"

    quick configure docker --config /dev/zero --no-hook --dry-run
    assert_rc_nonzero "configure docker: /dev/zero is refused, not read without end"

    mkfifo "$t/ctd/config.toml"
    quick configure containerd --config "$t/ctd/config.toml" --drop-in-dir "$t/ctd/conf.d"
    assert_rc_nonzero "configure containerd: a FIFO main config is refused"
    assert_contains "$ERR" "a FIFO, not a regular file" "the error names the FIFO"
    assert_false "no drop-in written" test -e "$t/ctd/conf.d/99-nvidia.toml"
}

test_doctor_finishes_on_fifos() {
    local t=$TEST_TMP/doctor
    mkdir -p "$t/crio" "$t/cdi" "$t/ctd"
    mkfifo "$t/daemon.json" "$t/ctd/config.toml" "$t/runtime.toml"
    NVIDIA_CTK_CONFIG_FILE_PATH=$t/runtime.toml quick doctor --docker-config "$t/daemon.json" \
        --containerd-config "$t/ctd/config.toml" --crio-dir "$t/crio" --cdi-dir "$t/cdi"
    assert_ne 124 "$RC" "doctor finishes with FIFOs as configs"
    assert_rc_nonzero "doctor reports errors"
    assert_contains "$OUT" "docker config $t/daemon.json cannot be parsed: cannot read it: it is a FIFO" "daemon.json named"
    assert_contains "$OUT" "$t/ctd/config.toml" "containerd's config named"
    assert_contains "$OUT" "cannot read config file $t/runtime.toml: it is a FIFO" "the runtime's config named"
}

test_run_fails_fast_on_a_fifo_config() {
    local b=$TEST_TMP/fifo-config
    mkfifo "$TEST_TMP/fifo.toml"
    make_bundle "$b" echo program-ran
    bundle_set "$b" 'c["process"]["env"].append("NVIDIA_VISIBLE_DEVICES=all")'
    cd "$b"
    NVIDIA_CTK_CONFIG_FILE_PATH=$TEST_TMP/fifo.toml capture timeout -k 2 "$QUICK" \
        "$RUNTIME" --root "$STATE" run fifo-config </dev/null
    assert_ne 124 "$RC" "run does not wait on a FIFO config"
    assert_rc_nonzero "run fails"
    assert_contains "$ERR" "fifo.toml: it is a FIFO, not a regular file" "the cause is named"
    assert_not_contains "$OUT" "program-ran" "the container's program never ran"
    assert_eq "" "$(ls -A "$STATE")" "no container state left"
}

# --- CDI steps in an image whose links lead out -------------------------------------------

GNU=/usr/lib/x86_64-linux-gnu
SPECS=$TEST_TMP/cdi
# The host's side: what an image's absolute links name.
HOSTDIR=$TEST_TMP/hostdir
HOSTCONFD=$TEST_TMP/hostconfd
HOSTFILE=$TEST_TMP/hostfile
host_view() { (cd "$TEST_TMP" && ls -lAR hostdir hostconfd && sha256sum hostfile) 2>&1; }

# cdi_setup : a spec of example.com/x=a mounting libfoo.so.1 into $GNU, with our binary's hooks
# for its SONAME link and the ld cache (the hooks' env has LD_PRELOAD: never honoured by us).
cdi_setup() {
    mkdir -p "$SPECS" "$HOSTDIR" "$HOSTCONFD"
    echo "host file" >"$HOSTFILE"
    gcc -shared -Wl,-soname,libfoo.so.1 -o "$TEST_TMP/libfoo.so.1" -x c - <<<'int foo(void) { return 1; }' ||
        die "cannot build libfoo.so.1"
    printf '[nvidia-container-runtime.modes.cdi]\nspec-dirs = ["%s"]\n' "$SPECS" >>"$NVIDIA_CTK_CONFIG_FILE_PATH"
    python3 - "$SPECS/x.json" "$TEST_TMP/libfoo.so.1" "$(readlink -f "$RUNTIME")" "$GNU" <<'PY'
import json, sys
out, lib, rt, gnu = sys.argv[1:]
def hook(*a):
    return {"hookName": "createContainer", "path": rt, "args": ["nvidia-runtime", "hook", *a],
            "env": ["LD_PRELOAD=/nonexistent-preload.so", "LD_LIBRARY_PATH=/tmp"]}
json.dump({"cdiVersion": "0.6.0", "kind": "example.com/x",
           "devices": [{"name": "a", "containerEdits": {"env": ["EXAMPLE_X=a"]}}],
           "containerEdits": {
               "mounts": [{"hostPath": lib, "containerPath": gnu + "/libfoo.so.1", "options": ["ro", "bind"]}],
               "hooks": [hook("create-symlinks", "--link", "libfoo.so.1::" + gnu + "/libfoo.so"),
                         hook("update-ldcache", "--folder", gnu)]}}, open(out, "w"))
PY
}

# hostile_bundle DIR : a busybox bundle whose image links lead out of its rootfs.
hostile_bundle() {
    local r=$1/rootfs
    make_busybox_rootfs "$r"
    rm -rf "$r/usr/lib"
    ln -s "$HOSTDIR" "$r/usr/lib"
    ln -s "../../../../../../../../..$HOSTCONFD" "$r/etc/ld.so.conf.d"
    ln -s "$HOSTFILE" "$r/etc/ld.so.cache"
    touch "$r/etc/ld.so.conf"
    # the same paths inside the rootfs, where the links resolve when followed inside it
    mkdir -p "$r$HOSTDIR/x86_64-linux-gnu" "$r$HOSTCONFD"
    echo "image's file" >"$r$HOSTFILE"
    make_bundle "$1" sh -c "ls $GNU; cat /etc/ld.so.conf.d/*; cat /etc/ld.so.cache"
}

# check_inside LABEL ROOTFS : what the container printed, and where the steps wrote.
check_inside() {
    local label=$1 r=$2
    assert_rc 0 "$label: the container runs"
    assert_contains "$OUT" "libfoo.so.1" "$label: the spec's library is in the image's library dir"
    assert_contains "$OUT" "image's file" "$label: /etc/ld.so.cache is still the image's link, not written through"
    assert_true "$label: the SONAME link was made inside the rootfs" test -L "$r$HOSTDIR/x86_64-linux-gnu/libfoo.so"
    assert_eq "$HOST_BEFORE" "$(host_view)" "$label: the host's dirs and file are as they were"
}

test_cdi_steps_stay_in_the_rootfs() {
    cdi_setup
    HOST_BEFORE=$(host_view)

    local b=$TEST_TMP/steps-ours
    hostile_bundle "$b"
    bundle_set "$b" 'c["annotations"] = {"cdi.k8s.io/x": "example.com/x=a"}'
    cd "$b"
    capture rt run steps-ours </dev/null
    check_inside "our runtime" "$b/rootfs"

    # As Podman hands the spec to runc: the mount and the hooks in config.json.
    b=$TEST_TMP/steps-runc
    hostile_bundle "$b"
    bundle_set "$b" '
import json
e = json.load(open("'"$SPECS"'/x.json"))["containerEdits"]
c["mounts"] += [{"destination": m["containerPath"], "type": "bind", "source": m["hostPath"], "options": m["options"]} for m in e["mounts"]]
c["hooks"] = {"createContainer": [{"path": h["path"], "args": h["args"], "env": h["env"]} for h in e["hooks"]]}'
    cd "$b"
    capture timeout -k 5 "$E2E_TIMEOUT" runc --root "$STATE/runc" run steps-runc </dev/null
    check_inside "runc with our hooks" "$b/rootfs"
    rm -rf "$STATE/runc"

    # With a regular ld.so.cache, the cache and the ld.so.conf.d entry are written, inside.
    b=$TEST_TMP/steps-cache
    hostile_bundle "$b"
    rm "$b/rootfs/etc/ld.so.cache"
    bundle_set "$b" 'c["annotations"] = {"cdi.k8s.io/x": "example.com/x=a"}
c["process"]["args"] = ["sh", "-c", "cat /etc/ld.so.conf.d/*; grep -c libfoo.so /etc/ld.so.cache"]'
    cd "$b"
    capture rt run steps-cache </dev/null
    assert_rc 0 "cache: the container runs"
    assert_contains "$OUT" "$GNU" "cache: the container sees the ld.so.conf.d entry"
    assert_true "cache: the ld.so.conf.d entry was written inside the rootfs" test -f "$b/rootfs$HOSTCONFD/00-nvidia-runtime.conf"
    assert_true "cache: the cache was written inside the rootfs" test -f "$b/rootfs/etc/ld.so.cache"
    assert_eq "$HOST_BEFORE" "$(host_view)" "cache: the host's dirs and file are as they were"
}

run_tests test_configure_refuses_what_is_not_a_file test_doctor_finishes_on_fifos \
    test_run_fails_fast_on_a_fifo_config test_cdi_steps_stay_in_the_rootfs
e2e_finish
