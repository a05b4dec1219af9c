#!/usr/bin/env bash
# tests/e2e/request.sh — which GPUs a request may get, and hosts that cannot serve it, end to end.
#
# Against tests/fixtures/make-driver-root.sh's simulated host (4 GPUs, driver 580.159.04; GPU
# index i = UUID GPU-4e565349-4d00-4000-8000-<i as 12 hex>, bus id 0000:{18,2a,3a,5d}:00.0,
# minor i XOR 1), with real containers through the runtime, looking at what the process inside
# sees. Proves:
#  - the container's /proc/driver/nvidia shows only its own GPUs and ModifyDeviceFiles: 0, so
#    an NVML that mknods the GPUs it sees (the fixture's nvidia-smi does, as the real one run
#    as root with CAP_MKNOD does) makes no node for a GPU the container was not given. The
#    host's /proc/driver/nvidia is simulated in a private mount namespace (a tmpfs over
#    /proc/driver), and the container gets that /proc through an rbind mount;
#  - device-list mounts (/var/run/nvidia-container-devices/ID) count only when their source is
#    /dev/null, as in NVIDIA's toolkit: an emptyDir-like directory mounted there gives nothing;
#  - a GPU directory whose `information` is missing or garbled shifts no index: the other
#    GPUs keep theirs, a request that touches that GPU (by index, or `all`) is refused naming
#    the directory, and a directory that is not a bus id makes every index ambiguous (refused)
#    while UUIDs still work;
#  - a kernel module whose version is not the installed libraries' is refused, naming both;
#  - NVIDIA_CTK_CONFIG_FILE_PATH naming a missing file, or a config naming a missing driver
#    root, is an error naming that file or directory.
source "$(dirname "$0")/../lib.sh"
e2e_init "$@"
need_cmd gcc gcc
need_cmd ldconfig libc-bin
need_cmd sha256sum coreutils
need_cmd unshare util-linux

VERSION=580.159.04
GNU=/usr/lib/x86_64-linux-gnu

SIM=$TEST_TMP/sim
bash "$REPO/tests/fixtures/make-driver-root.sh" 4 "$SIM" || die "make-driver-root.sh failed"

# write_config FILE DRIVER_ROOT PROC_ROOT [EXTRA TOML LINES, top level]
write_config() {
    local file=$1 root=$2 proc=$3
    shift 3
    {
        printf '%s\n' "$@"
        printf '[nvidia-container-cli]\nroot = "%s"\n[nvidia-runtime]\nproc-root = "%s"\ninventory-cache = ""\n' "$root" "$proc"
    } >"$file"
}
export NVIDIA_CTK_CONFIG_FILE_PATH=$TEST_TMP/nvidia-runtime.toml
write_config "$NVIDIA_CTK_CONFIG_FILE_PATH" "$SIM" "$SIM"

BUSES=(0000:18:00.0 0000:2a:00.0 0000:3a:00.0 0000:5d:00.0)

IMAGE=$TEST_TMP/.image
make_busybox_rootfs "$IMAGE"
mkdir -p "$IMAGE$GNU"     # a glibc-like image: the driver's libraries go to $GNU

B=""
bundle() { image_bundle "$@"; }

# run_refused LABEL : the runtime refuses $B before a container exists, leaving nothing behind.
run_refused() {
    local label=$1 before
    bundle_args "$B" echo program-ran
    before=$(sha_of "$B/config.json")
    capture _run_in "$B" "$(basename "$B")"
    assert_rc_nonzero "$label: run fails"
    assert_not_contains "$OUT" "program-ran" "$label: the container's program never ran"
    assert_eq "$before" "$(sha_of "$B/config.json")" "$label: config.json unchanged"
    assert_eq "config.json rootfs" "$(ls -A "$B" | tr '\n' ' ' | sed 's/ $//')" "$label: nothing else left in the bundle"
    assert_eq "" "$(ls -A "$STATE")" "$label: no state left"
}

run_refused_with_config() { NVIDIA_CTK_CONFIG_FILE_PATH=$1 run_refused "$2"; }

# --- /proc/driver/nvidia in the container ---------------------------------------

# in_host_view SCRIPT : bash SCRIPT in a private mount namespace whose /proc/driver/nvidia is
# the simulated host's (a tmpfs over /proc/driver), with the runtime reading proc-root "/" there.
# SCRIPT sees $B, $STATE, $RUNTIME, $ID; sets OUT/ERR/RC.
in_host_view() {
    local cfg=$TEST_TMP/host-view.toml
    write_config "$cfg" "$SIM" /
    NVIDIA_CTK_CONFIG_FILE_PATH=$cfg B=$B STATE=$STATE RUNTIME=$RUNTIME SIM=$SIM ID=$(basename "$B") \
        capture timeout -k 5 "$E2E_TIMEOUT" unshare -m --propagation private bash -c '
            set -e
            mount -t tmpfs -o mode=0555 nvsim-proc-driver /proc/driver
            cp -a "$SIM/proc/driver/nvidia" /proc/driver/
            '"$1"
}
# docker_like_bundle NAME ENV... : a bundle whose /proc is the runtime's (rbind, no pid
# namespace), running as root with CAP_MKNOD and docker's "mknod any device" cgroup rules.
docker_like_bundle() {
    bundle "$@"
    bundle_set "$B" '
c["mounts"] = [{"destination": "/proc", "type": "bind", "source": "/proc", "options": ["rbind", "nosuid", "nodev", "noexec"]} if m["destination"] == "/proc" else m for m in c["mounts"]]
c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "pid"]
c["linux"]["maskedPaths"] = []
c["linux"]["readonlyPaths"] = []
c["linux"]["resources"]["devices"] += [{"allow": True, "type": "c", "access": "m"}, {"allow": True, "type": "b", "access": "m"}]
for k in ("bounding", "effective", "permitted"): c["process"]["capabilities"][k].append("CAP_MKNOD")'
}
RUN_IN_VIEW='cd "$B" && "$RUNTIME" --root "$STATE" run "$ID" </dev/null; echo "host-params: $(grep ModifyDeviceFiles /proc/driver/nvidia/params)"; echo "host-gpus: $(ls /proc/driver/nvidia/gpus | wc -l)"'

test_proc_driver_shows_only_the_given_gpus() {
    docker_like_bundle proc-one NVIDIA_VISIBLE_DEVICES=1
    bundle_args "$B" sh -c 'nvidia-smi; echo "nodes: $(ls /dev/nvidia[0-9]* | tr "\n" " ")"; echo "gpus: $(ls /proc/driver/nvidia/gpus | tr "\n" " ")"; grep ModifyDeviceFiles /proc/driver/nvidia/params; grep "GPU UUID" /proc/driver/nvidia/gpus/*/information | awk "{print \$NF}"; head -c 12 /proc/driver/nvidia/version; echo; cat /proc/driver/nvidia/registry'
    in_host_view "$RUN_IN_VIEW"
    assert_rc 0 "NVIDIA_VISIBLE_DEVICES=1 (host /proc shows 4 GPUs): runs"
    assert_contains "$OUT" "nodes: /dev/nvidia0 "$'\n' \
        "…after nvidia-smi (which mknods what /proc shows) /dev has only GPU 1's node, /dev/nvidia0"
    assert_contains "$OUT" "gpus: ${BUSES[1]} "$'\n' "…/proc/driver/nvidia/gpus lists only GPU 1's bus id"
    assert_contains "$OUT" $'\nModifyDeviceFiles: 0\n' "…/proc/driver/nvidia/params says ModifyDeviceFiles: 0"
    assert_contains "$OUT" "$(uuid_of 1)"$'\n'"NVRM version"$'\nBinary: ""' \
        "…GPU 1's information (the host's), version and registry are readable"
    assert_contains "$OUT" "$(smi_lines 1)" "…nvidia-smi lists GPU 1"
    assert_contains "$OUT" $'host-params: ModifyDeviceFiles: 1\nhost-gpus: 4' "…and the host's own view is unchanged"

    docker_like_bundle proc-none NVIDIA_VISIBLE_DEVICES=none
    bundle_args "$B" sh -c 'nvidia-smi; ls /dev/nvidia[0-9]* 2>/dev/null | wc -l; ls /proc/driver/nvidia/gpus | wc -l'
    in_host_view "$RUN_IN_VIEW"
    assert_contains "$OUT" $'No devices were found\n0\n0\n' "none: no GPU node even after nvidia-smi, no GPU in /proc/driver/nvidia/gpus"

    docker_like_bundle proc-all NVIDIA_VISIBLE_DEVICES=all
    bundle_args "$B" sh -c 'ls /dev/nvidia[0-9]* | wc -l; ls /proc/driver/nvidia/gpus | tr "\n" " "'
    in_host_view "$RUN_IN_VIEW"
    assert_contains "$OUT" $'4\n'"${BUSES[*]} " "all: the 4 nodes and the 4 GPUs' directories"
}

# --- device-list mounts ------------------------------------------------------------

test_device_list_mounts_only_from_dev_null() {
    local cfg=$TEST_TMP/hardened.toml
    write_config "$cfg" "$SIM" "$SIM" \
        'accept-nvidia-visible-devices-envvar-when-unprivileged = false' \
        'accept-nvidia-visible-devices-as-volume-mounts = true'
    mkdir -p "$TEST_TMP/emptydir"
    local before

    # a pod's emptyDir at the device-list path: not a device list
    bundle devlist-emptydir NVIDIA_VISIBLE_DEVICES=all
    bundle_set "$B" "c['mounts'].append({'destination': '/var/run/nvidia-container-devices/all', 'type': 'bind', 'source': '$TEST_TMP/emptydir', 'options': ['rbind', 'rw']})"
    bundle_args "$B" sh -c 'ls /dev | grep -c nvidia; true'
    before=$(sha_of "$B/config.json")
    NVIDIA_CTK_CONFIG_FILE_PATH=$cfg capture _run_in "$B" devlist-emptydir
    assert_rc 0 "emptyDir at /var/run/nvidia-container-devices/all (unprivileged, env refused): runs"
    assert_eq "0" "$OUT" "…and gets no GPU node at all"
    assert_eq "$before" "$(sha_of "$B/config.json")" "…config.json untouched (nothing requested)"

    # the same with a host file that is not /dev/null
    echo x >"$TEST_TMP/not-null"
    bundle devlist-file
    bundle_set "$B" "c['mounts'].append({'destination': '/var/run/nvidia-container-devices/0', 'type': 'bind', 'source': '$TEST_TMP/not-null', 'options': ['bind', 'ro']})"
    bundle_args "$B" sh -c 'ls /dev | grep -c nvidia; true'
    NVIDIA_CTK_CONFIG_FILE_PATH=$cfg capture _run_in "$B" devlist-file
    assert_eq "0" "$OUT" "a plain file mounted at …/0: no GPU"

    # what the device plugin mounts: /dev/null
    bundle devlist-null NVIDIA_VISIBLE_DEVICES=all
    bundle_set "$B" "c['mounts'].append({'destination': '/var/run/nvidia-container-devices/2', 'type': 'bind', 'source': '/dev/null', 'options': ['bind', 'ro']})"
    bundle_args "$B" sh -c 'ls /dev/nvidia[0-9]*'
    NVIDIA_CTK_CONFIG_FILE_PATH=$cfg capture _run_in "$B" devlist-null
    assert_rc 0 "/dev/null at /var/run/nvidia-container-devices/2: runs"
    assert_eq "/dev/nvidia3" "$OUT" "…and gets exactly GPU 2 (minor 3), not all (the env is refused)"

    bundle devlist-null-all
    bundle_set "$B" "c['mounts'].append({'destination': '/var/run/nvidia-container-devices/./all', 'type': 'bind', 'source': '/dev//null', 'options': ['bind', 'ro']})"
    bundle_args "$B" sh -c 'ls /dev/nvidia[0-9]* | wc -l'
    NVIDIA_CTK_CONFIG_FILE_PATH=$cfg capture _run_in "$B" devlist-null-all
    assert_eq "4" "$OUT" "/dev//null at …/./all (paths as given, cleaned as NVIDIA does): all 4 GPUs"
}

# --- a GPU whose information cannot be read ------------------------------------------

# broken_host NAME : a copy of the simulated host; sets H and exports its config.
broken_host() {
    H=$TEST_TMP/$1
    cp -a "$SIM" "$H"
    write_config "$TEST_TMP/$1.toml" "$H" "$H"
    export NVIDIA_CTK_CONFIG_FILE_PATH=$TEST_TMP/$1.toml
}

test_gpu_without_information() {
    broken_host host-noinfo
    local dir=$H/proc/driver/nvidia/gpus/${BUSES[1]}
    rm "$dir/information"

    bundle noinfo-2 NVIDIA_VISIBLE_DEVICES=2
    in_ctr 'ls /dev/nvidia[0-9]*; nvidia-smi'
    assert_rc 0 "GPU 1 has no information file; index 2: runs"
    assert_eq "/dev/nvidia3"$'\n'"$(smi_lines 2)" "$OUT" "…and gets GPU 2 (minor 3, UUID …02), not the next one"

    bundle noinfo-uuid "NVIDIA_VISIBLE_DEVICES=$(uuid_of 3)"
    in_ctr 'ls /dev/nvidia[0-9]*'
    assert_eq "/dev/nvidia2" "$OUT" "…by UUID, GPU 3 (minor 2)"

    bundle noinfo-1 NVIDIA_VISIBLE_DEVICES=1
    run_refused "index 1 (the GPU without information)"
    assert_contains "$ERR" "$dir" "…the error names its directory"
    assert_contains "$ERR" "information" "…and the missing information file"

    bundle noinfo-all NVIDIA_VISIBLE_DEVICES=all
    run_refused "all, with one GPU unreadable"
    assert_contains "$ERR" "$dir" "…the error names the directory"
    assert_contains "$ERR" "UUID" "…and says to name the GPUs by UUID meanwhile"

    bundle noinfo-none NVIDIA_VISIBLE_DEVICES=none
    in_ctr 'ls /dev/nvidia[0-9]* 2>/dev/null | wc -l'
    assert_eq "0" "$OUT" "none: still works (no GPU touched)"

    # garbled rather than missing: the same
    printf 'garbage\0\1\n' >"$dir/information"
    bundle garbled-2 NVIDIA_VISIBLE_DEVICES=2
    in_ctr 'ls /dev/nvidia[0-9]*'
    assert_rc 0 "GPU 1's information garbled; index 2: runs"
    assert_eq "/dev/nvidia3" "$OUT" "…and gets GPU 2 (minor 3)"
    bundle garbled-1 NVIDIA_VISIBLE_DEVICES=1
    run_refused "index 1 (garbled information)"
    assert_contains "$ERR" "$dir" "…the error names its directory"

    # a directory that is no bus id cannot be placed in bus order: every index is ambiguous
    rm -rf "$dir"
    mkdir "$H/proc/driver/nvidia/gpus/broken"
    bundle unplaced-0 NVIDIA_VISIBLE_DEVICES=0
    run_refused "an unplaceable GPU directory; index 0"
    assert_contains "$ERR" "$H/proc/driver/nvidia/gpus/broken" "…the error names the directory"
    bundle unplaced-uuid "NVIDIA_VISIBLE_DEVICES=$(uuid_of 2)"
    in_ctr 'ls /dev/nvidia[0-9]*'
    assert_eq "/dev/nvidia3" "$OUT" "…while a UUID (GPU 2) still works"
}

# --- kernel module and libraries of different versions ---------------------------------

test_module_and_library_versions_differ() {
    broken_host host-mismatch
    sed -i "s/$VERSION/575.57.08/" "$H/proc/driver/nvidia/version"
    bundle mismatch NVIDIA_VISIBLE_DEVICES=all
    run_refused "module 575.57.08, libraries $VERSION"
    assert_contains "$ERR" "575.57.08" "…the error names the module's version"
    assert_contains "$ERR" "$VERSION" "…and the libraries'"
    assert_contains "${ERR,,}" "reboot" "…and the fix (reboot or reload the module)"

    bundle mismatch-utility NVIDIA_VISIBLE_DEVICES=0 NVIDIA_DRIVER_CAPABILITIES=utility
    run_refused "the same, utility only"
    assert_contains "$ERR" "libnvidia-ml" "…the error names libnvidia-ml"
}

# --- the config file -------------------------------------------------------------------

test_missing_config_file() {
    local missing=$TEST_TMP/no-such-dir/config.toml log=$TEST_TMP/missing-config.log
    bundle missing-config NVIDIA_VISIBLE_DEVICES=all
    bundle_args "$B" echo program-ran
    NVIDIA_CTK_CONFIG_FILE_PATH=$missing capture bash -c 'cd "$1" && timeout 30 "$RUNTIME" --root "$2" --log "$3" --log-format json run missing-config </dev/null' _ "$B" "$STATE" "$log"
    assert_rc_nonzero "NVIDIA_CTK_CONFIG_FILE_PATH names a missing file: run fails"
    assert_not_contains "$OUT" "program-ran" "…the program never ran"
    assert_contains "$ERR" "$missing" "…stderr names the file"
    assert_contains "$ERR" "NVIDIA_CTK_CONFIG_FILE_PATH" "…and the variable"
    assert_not_contains "$ERR" "/proc/driver/nvidia/version" "…and does not blame the driver"
    assert_contains "$(grep '"level":"error"' "$log" | tail -n 1)" "$missing" "…the last JSON error line names the file too"
    assert_eq "" "$(ls -A "$STATE")" "…no state left"

    # a root the file names that does not exist (a driver container not up yet)
    local cfg=$TEST_TMP/missing-root.toml
    write_config "$cfg" "$TEST_TMP/no-such-driver-root" "$SIM"
    bundle missing-root NVIDIA_VISIBLE_DEVICES=all
    run_refused_with_config "$cfg" "[nvidia-container-cli] root names a missing directory"
    assert_contains "$ERR" "$TEST_TMP/no-such-driver-root" "…the error names the directory"
    assert_contains "$ERR" "[nvidia-container-cli] root" "…and the key"
    assert_contains "$ERR" "$cfg" "…and the file"
}

run_tests \
    test_proc_driver_shows_only_the_given_gpus test_device_list_mounts_only_from_dev_null \
    test_gpu_without_information test_module_and_library_versions_differ test_missing_config_file
e2e_finish
