#!/usr/bin/env bash
# tests/e2e/kubernetes.sh — GPUs for Kubernetes pods, driven through containerd's CRI exactly as
# the kubelet drives it.
#
# A private containerd 1.6 (own root, state and socket under the temp dir) with its CRI plugin
# on, two runtime handlers — `runc` (the default) and `nvidia` (io.containerd.runc.v2 with
# options.BinaryName = $RUNTIME and container_annotations = ["cdi.k8s.io/*"], what a
# RuntimeClass with handler "nvidia" selects) — a sandbox (pause) image and a workload image
# (busybox, glibc, `probe`; no NVIDIA file) imported offline. `cri-client` (crates/cri-client)
# speaks CRI runtime.v1 to its socket: RunPodSandbox with the handler, CreateContainer with the
# pod's sandbox config, StartContainer, ExecSync, Stop/RemovePodSandbox. The runtime reads its
# config from $NVIDIA_CTK_CONFIG_FILE_PATH, which containerd passes to the shim and the shim to
# the runtime: a simulated 4-GPU host (GPU i: UUID `uuid_of i`, minor i XOR 1),
# accept-nvidia-visible-devices-as-volume-mounts = true, and a CDI spec dir.
#
# Proves, by what the processes inside the pod's container see (ExecSync: its /dev, the
# simulated nvidia-smi's UUIDs, libcuda loading, the device cgroup; the init's env, which it
# logs):
#  - envvar (NVIDIA's device plugin, deviceListStrategy=envvar): NVIDIA_VISIBLE_DEVICES=<uuid>
#    gives exactly that GPU, and another GPU's node made with mknod cannot be opened;
#  - volume-mounts: /dev/null mounted at /var/run/nvidia-container-devices/<uuid> gives exactly
#    that GPU, even with NVIDIA_VISIBLE_DEVICES=all in the env (as CUDA images set it); with
#    accept-nvidia-visible-devices-envvar-when-unprivileged = false, env all alone gives nothing;
#  - cdi-annotations: the container annotation cdi.k8s.io/nvidia-device-plugin_<uuid> =
#    nvidia.com/gpu=<uuid>, passed through by container_annotations, resolved from the spec
#    `nvidia-runtime cdi generate` wrote into the configured spec dir (a name no spec defines
#    fails StartContainer with an error naming it);
#  - DRA: a transient claim spec (kind k8s.gpu.nvidia.com/claim, device <uid>-gpu-0, env
#    NVIDIA_VISIBLE_DEVICES=void) asked for through the annotation early DRA kubelets wrote
#    (containerd 1.6 ignores the CRI's CDI field), with NVIDIA_VISIBLE_DEVICES=all in the env:
#    exactly the claimed GPU, and the container's init sees the spec's void;
#  - a pod on the nvidia handler that asks for nothing gets nothing (no /dev/nvidia*, no libcuda,
#    no nvidia-smi, no NVIDIA file), and a pod on the runc handler is untouched even when it
#    asks for a GPU; each handler's containers live under its own runc root (the nvidia ones
#    visible to $RUNTIME's own `state`);
#  - pods stop and are removed through CRI, leaving no container behind.
# The CDI cases need `nvidia-runtime cdi generate` and the runtime's CDI support; with a runtime
# without them (e.g. RUNTIME=runc, which fails every GPU check anyway) they fail.
source "$(dirname "$0")/../lib.sh"
e2e_init "$@"
need_cmd gcc gcc
need_cmd containerd containerd
need_cmd ctr containerd

CRI_CLIENT=${CRI_CLIENT:-$REPO/target/debug/cri-client}
[[ -x $CRI_CLIENT ]] || die "CRI_CLIENT=$CRI_CLIENT is not an executable (cargo build -p cri-client)"

GNU=/usr/lib/x86_64-linux-gnu
IMAGE=docker.io/library/gpu-probe:e2e
PAUSE_IMAGE=registry.k8s.io/pause:e2e
NGPUS=4
minor_of() { echo $(($1 ^ 1)); }

# --- the simulated host and the runtime's config -----------------------------

sim_host "$NGPUS" "$TEST_TMP/inventory-cache"
CDI_DIR=$TEST_TMP/cdi
mkdir -p "$CDI_DIR"
# A top-level key must come before the first table.
{
    echo 'accept-nvidia-visible-devices-as-volume-mounts = true'
    cat "$NVIDIA_CTK_CONFIG_FILE_PATH"
    printf '[nvidia-container-runtime.modes.cdi]\nspec-dirs = ["%s"]\n' "$CDI_DIR"
} >"$TEST_TMP/nvidia-runtime.toml.new"
mv "$TEST_TMP/nvidia-runtime.toml.new" "$NVIDIA_CTK_CONFIG_FILE_PATH"

# --- images: pause, and busybox + glibc + probe (no NVIDIA file) -------------

build_probe
WORK_ROOTFS=$TEST_TMP/.work-rootfs
make_busybox_rootfs "$WORK_ROOTFS"
mkdir -p "$WORK_ROOTFS/lib/x86_64-linux-gnu" "$WORK_ROOTFS/lib64"
cp "$TEST_TMP/probe" "$WORK_ROOTFS/usr/bin/probe"
while read -r lib; do
    case $lib in
        /lib64/*) cp -L "$lib" "$WORK_ROOTFS/lib64/" ;;
        *) cp -L "$lib" "$WORK_ROOTFS/lib/x86_64-linux-gnu/" ;;
    esac
done < <(ldd "$TEST_TMP/probe" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
[[ -x $WORK_ROOTFS/lib64/ld-linux-x86-64.so.2 ]] || die "the image lacks glibc (ldd: $(ldd "$TEST_TMP/probe"))"
[[ -z $(find "$WORK_ROOTFS" \( -iname '*nvidia*' -o -iname '*cuda*' \)) ]] || die "the image has NVIDIA files"
make_oci_archive "$WORK_ROOTFS" "$TEST_TMP/work.tar" "$IMAGE"

# The sandbox's process: waits for ever, exits at once on SIGTERM (as pause does).
PAUSE_ROOTFS=$TEST_TMP/.pause-rootfs
make_busybox_rootfs "$PAUSE_ROOTFS"
printf '%s\n' "trap 'exit 0' TERM INT" 'while :; do sleep 3600 & wait $!; done' >"$PAUSE_ROOTFS/pause"
make_oci_archive "$PAUSE_ROOTFS" "$TEST_TMP/pause.tar" "$PAUSE_IMAGE" '["/bin/sh", "/pause"]'
rm -rf "$WORK_ROOTFS" "$PAUSE_ROOTFS"

# --- containerd with its CRI plugin ------------------------------------------

C=$TEST_TMP/containerd
SOCK=$C/containerd.sock
POD_CGROUP=/$(cgroup_parent)/kubepods   # the kubelet's cgroupfs driver: pods under /kubepods
cri() { timeout -k 5 "$E2E_TIMEOUT" "$CRI_CLIENT" -r "$SOCK" --timeout "$E2E_TIMEOUT" "$@"; }
ctr_k8s() { timeout -k 5 "$E2E_TIMEOUT" ctr -a "$SOCK" -n k8s.io "$@"; }

start_cri_containerd() {
    mkdir -p "$C/cni/bin" "$C/cni/conf"
    _E2E_CONTAINERDS+=("$C")
    local cri='plugins."io.containerd.grpc.v1.cri"'
    cat >"$C/config.toml" <<EOF
version = 2
root = "$C/root"
state = "$C/state"
disabled_plugins = ["io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  address = "$C/debug.sock"
  level = "info"
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$C/opt"

[$cri]
  sandbox_image = "$PAUSE_IMAGE"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # The pause container's oom_score_adj (-998) may not be lowered here (EACCES): keep
  # every container at containerd's own.
  restrict_oom_score_adj = true
  [$cri.cni]
    bin_dir = "$C/cni/bin"
    conf_dir = "$C/cni/conf"
  [$cri.containerd]
    default_runtime_name = "runc"
    snapshotter = "overlayfs"
    [$cri.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [$cri.containerd.runtimes.runc.options]
        Root = "$C/runc-root"
    [$cri.containerd.runtimes.nvidia]
      runtime_type = "io.containerd.runc.v2"
      container_annotations = ["cdi.k8s.io/*"]
      [$cri.containerd.runtimes.nvidia.options]
        BinaryName = "$RUNTIME"
        Root = "$C/nvidia-root"
EOF
    # NVIDIA_CTK_CONFIG_FILE_PATH (exported by sim_host) reaches the runtime through
    # containerd → containerd-shim-runc-v2 → $RUNTIME, which all inherit the environment.
    setsid containerd --config "$C/config.toml" >"$C/containerd.log" 2>&1 </dev/null &
    echo $! >"$C/containerd.pid"
    local end=$((SECONDS + 30))
    until "$CRI_CLIENT" -r "$SOCK" --timeout 2 version >/dev/null 2>&1; do
        if ((SECONDS >= end)) || ! kill -0 "$(<"$C/containerd.pid")" 2>/dev/null; then
            log "containerd's CRI did not become ready; its log:"
            tail -n 50 "$C/containerd.log" >&2
            die "start_cri_containerd failed"
        fi
        sleep 0.2
    done
}

# --- pods ---------------------------------------------------------------------

POD=""   # the current pod's id
CID=""   # the current container's id
# pod NAME HANDLER [run-pod options...] : RunPodSandbox (host network: no CNI needed); sets POD.
pod() {
    local name=$1 handler=$2; shift 2
    mkdir -p "$TEST_TMP/pods/$name"
    capture cri run-pod --handler "$handler" --name "$name" --uid "uid-$name" \
        --log-dir "$TEST_TMP/pods/$name" --cgroup-parent "$POD_CGROUP" \
        --config-out "$TEST_TMP/pods/$name/sandbox.json" "$@"
    [[ $RC == 0 ]] || { fail "RunPodSandbox $name (handler $handler)" "$(_last_cmd_details)"; return 1; }
    POD=$OUT
}
# container POD_NAME NAME [create-container options...] : CreateContainer + StartContainer of the
# workload image in the current pod, running until the pod goes; sets CID. Its first log line is
# its own NVIDIA_VISIBLE_DEVICES: ExecSync's processes get containerd's copy of the process spec,
# not the config.json the runtime edited, so only the container's init shows the edited env.
container() {
    local podname=$1 name=$2; shift 2
    capture cri create-container "$POD" --pod-config "$TEST_TMP/pods/$podname/sandbox.json" \
        --name "$name" --image "$IMAGE" "$@" -- \
        sh -c 'echo "NVIDIA_VISIBLE_DEVICES=${NVIDIA_VISIBLE_DEVICES-(unset)}"; exec sleep 2147483647'
    [[ $RC == 0 ]] || { fail "CreateContainer $name in pod $podname" "$(_last_cmd_details)"; return 1; }
    CID=$OUT
    capture cri start "$CID"
    [[ $RC == 0 ]] || { fail "StartContainer $name in pod $podname" "$(_last_cmd_details)"; return 1; }
}
image_known() { [[ $(cri image-status "$1" | json_get 'j["image"] is not None') == true ]]; }
# init_env : the NVIDIA_VISIBLE_DEVICES line the current container's init logged.
init_env() {
    wait_for 10 _logged || true
    cri logs "$CID" | head -n1
}
_logged() { [[ -n $(cri logs "$CID") ]]; }
# in_ctr SCRIPT : ExecSync `sh -c SCRIPT` in the current container; sets OUT/ERR/RC.
in_ctr() { capture cri exec-sync "$CID" -- sh -c "$1"; }
rm_pod() {
    capture cri stop-pod "$POD"
    assert_rc 0 "StopPodSandbox: rc 0"
    capture cri rm-pod "$POD"
    assert_rc 0 "RemovePodSandbox: rc 0"
}

# check_gpu LABEL INDEX : the current container sees exactly GPU INDEX, and it works.
check_gpu() {
    local label=$1 i=$2 m
    m=$(minor_of "$i")
    in_ctr 'ls /dev/nvidia[0-9]*'
    assert_eq "/dev/nvidia$m" "$OUT" "$label: exactly GPU $i's node (/dev/nvidia$m) under /dev"
    in_ctr "stat -c '%t:%T' /dev/nvidia$m"
    assert_eq "c3:$(printf '%x' "$m")" "$OUT" "$label: …the host's node (195:$m)"
    in_ctr 'nvidia-smi'
    assert_eq "$(smi_lines "$i")" "$OUT" "$label: nvidia-smi lists only $(uuid_of "$i")"
    in_ctr 'probe'
    assert_eq "$PROBE_OK" "$OUT" "$label: libcuda.so.1 loads and works"
}

# check_nothing LABEL : the current container has nothing of NVIDIA's.
check_nothing() {
    local label=$1
    in_ctr 'ls -A /dev'
    assert_contains "$OUT" "null" "$label: /dev was listed"
    assert_not_contains "$OUT" "nvidia" "$label: no /dev/nvidia*"
    in_ctr 'probe'
    assert_eq "dlopen-failed: libcuda.so.1: cannot open shared object file: No such file or directory" "$OUT" \
        "$label: libcuda does not load"
    in_ctr 'command -v nvidia-smi || echo no-nvidia-smi'
    assert_eq "no-nvidia-smi" "$OUT" "$label: no nvidia-smi"
    in_ctr 'find / -path /proc -prune -o -path /sys -prune -o \( -name "*nvidia*" -o -name "*cuda*" \) -print'
    assert_eq "" "$OUT" "$label: no file named *nvidia* or *cuda* (but in /proc, /sys)"
}

# --- tests ------------------------------------------------------------------------

test_cri_ready() {
    capture cri version
    assert_rc 0 "CRI Version over the unix socket: rc 0"
    assert_eq containerd "$(json_get 'j["runtime_name"]' <<<"$OUT")" "…the runtime is containerd"
    assert_eq v1 "$(json_get 'j["runtime_api_version"]' <<<"$OUT")" "…speaking CRI runtime.v1"
    capture ctr_k8s plugins ls
    assert_match "$OUT" 'io\.containerd\.grpc\.v1[[:space:]]+cri[[:space:]]+linux/[^[:space:]]+[[:space:]]+ok' "ctr plugins ls: cri ok"

    capture ctr_k8s images import "$TEST_TMP/pause.tar"
    assert_rc 0 "the pause image imports offline (k8s.io namespace)"
    capture ctr_k8s images import "$TEST_TMP/work.tar"
    assert_rc 0 "the workload image imports offline"
    local ref
    for ref in "$PAUSE_IMAGE" "$IMAGE"; do
        wait_for 10 image_known "$ref" || true
        assert_true "CRI ImageStatus knows $ref" image_known "$ref"
    done
}

test_envvar() {
    pod envvar nvidia || return 0
    container envvar work --env "NVIDIA_VISIBLE_DEVICES=$(uuid_of 2)" || return 0
    check_gpu "envvar (NVIDIA_VISIBLE_DEVICES=<uuid of 2>)" 2
    assert_eq "NVIDIA_VISIBLE_DEVICES=$(uuid_of 2)" "$(init_env)" "envvar: the container's init sees the env as given (CRI logs)"
    # The device cgroup: the given GPU reaches the (absent) driver, another is denied.
    local other; other=$(minor_of 0)
    in_ctr "head -c1 /dev/nvidia$(minor_of 2) 2>&1; mknod /tmp/other c 195 $other && head -c1 /tmp/other 2>&1"
    assert_contains "$OUT" "/dev/nvidia$(minor_of 2): No such device or address" "envvar: the given GPU opens as far as the driver (ENXIO)"
    assert_contains "$OUT" "/tmp/other: Operation not permitted" "envvar: another GPU's node made with mknod is denied by the device cgroup (EPERM)"
    capture timeout 10 "$RUNTIME" --root "$C/nvidia-root/k8s.io" state "$CID"
    assert_eq running "$(json_get 'j["status"]' <<<"$OUT")" "envvar: the container is \$RUNTIME's (its state under the nvidia handler's root)"
    # The pod's sandbox (pause) ran through the runtime too, asking for nothing.
    local sandbox=$C/state/io.containerd.runtime.v2.task/k8s.io/$POD/config.json
    assert_eq "0 0" "$(python3 -c 'import json, sys
c = json.load(open(sys.argv[1]))
print(len([d for d in c["linux"].get("devices", []) if "nvidia" in d["path"]]),
      len([m for m in c.get("mounts", []) if "nvidia" in m["destination"]]))' "$sandbox" 2>&1)" \
        "envvar: the pod's sandbox config.json got no NVIDIA device or mount"
    rm_pod
}

test_volume_mounts() {
    pod volmounts nvidia || return 0
    container volmounts work --env NVIDIA_VISIBLE_DEVICES=all \
        --mount "/dev/null:/var/run/nvidia-container-devices/$(uuid_of 1):ro" || return 0
    check_gpu "volume-mounts (/var/run/nvidia-container-devices/<uuid of 1>, env all)" 1
    rm_pod
}

# What NVIDIA recommends with volume-mounts: an image's NVIDIA_VISIBLE_DEVICES=all gives an
# unprivileged pod nothing, only the device plugin's mounts count.
test_volume_mounts_only() {
    local cfg=$NVIDIA_CTK_CONFIG_FILE_PATH
    cp "$cfg" "$cfg.orig"
    { echo 'accept-nvidia-visible-devices-envvar-when-unprivileged = false'; cat "$cfg.orig"; } >"$cfg"
    _volume_mounts_only
    mv "$cfg.orig" "$cfg"
}
_volume_mounts_only() {
    pod mountsonly nvidia || return 0
    container mountsonly work --env NVIDIA_VISIBLE_DEVICES=all \
        --mount "/dev/null:/var/run/nvidia-container-devices/$(uuid_of 0):ro" || return 0
    check_gpu "volume-mounts, envvar refused when unprivileged (mount of <uuid of 0>, env all)" 0
    container mountsonly bare --env NVIDIA_VISIBLE_DEVICES=all || return 0
    check_nothing "envvar refused when unprivileged, env all and no mount"
    rm_pod
}

test_cdi_annotations() {
    capture "$RUNTIME" cdi generate --device-name-strategy uuid --format yaml --output "$CDI_DIR/nvidia.yaml"
    assert_rc 0 "nvidia-runtime cdi generate --device-name-strategy uuid writes the spec"
    pod cdi nvidia || return 0
    container cdi work --annotation "cdi.k8s.io/nvidia-device-plugin_$(uuid_of 3)=nvidia.com/gpu=$(uuid_of 3)" || return 0
    check_gpu "cdi-annotations (cdi.k8s.io/nvidia-device-plugin_<uuid of 3>)" 3
    assert_eq NVIDIA_VISIBLE_DEVICES=void "$(init_env)" "cdi-annotations: the spec's NVIDIA_VISIBLE_DEVICES=void is in the container's env"

    # A name no spec defines: StartContainer fails, and the kubelet's error names the device.
    local bad=nvidia.com/gpu=GPU-4e565349-4d00-4000-8000-00000000ffff
    capture cri create-container "$POD" --pod-config "$TEST_TMP/pods/cdi/sandbox.json" \
        --name bad --image "$IMAGE" --annotation "cdi.k8s.io/nvidia-device-plugin_bad=$bad" -- true
    assert_rc 0 "cdi-annotations, unknown device: CreateContainer (no runtime call yet)"
    local bad_id=$OUT
    capture cri start "$bad_id"
    assert_rc_nonzero "cdi-annotations, unknown device: StartContainer fails"
    assert_contains "$ERR" "$bad" "…and the CRI error names the device"
    rm_pod
}

test_dra_claim() {
    local uid=6b0c3a3e-2f5e-4b0e-9d51-0f6f3a1c2d7e
    # What NVIDIA's DRA driver writes per prepared claim: a transient spec of kind
    # k8s.gpu.nvidia.com/claim whose device <claim uid>-gpu-0 carries the GPU's edits and
    # NVIDIA_VISIBLE_DEVICES=void. Here made from the generated spec's GPU 0 (device + common edits).
    capture "$RUNTIME" cdi generate --device-name-strategy uuid --format json --output "$TEST_TMP/base.json"
    assert_rc 0 "cdi generate --format json (the claim spec's source)"
    python3 - "$TEST_TMP/base.json" "$CDI_DIR/k8s.gpu.nvidia.com-claim_$uid.json" "$uid" "$(uuid_of 0)" <<'EOF' || { fail "cannot make the claim spec from the generated one"; return 0; }
import json, sys
base, out, uid, uuid = sys.argv[1:]
b = json.load(open(base))
dev = next(d for d in b["devices"] if d["name"] == uuid)
edits = {}
for src in (b.get("containerEdits", {}), dev["containerEdits"]):
    for k, v in src.items():
        edits[k] = edits.get(k, []) + v if isinstance(v, list) else v
edits["env"] = [e for e in edits.get("env", []) if not e.startswith("NVIDIA_VISIBLE_DEVICES=")] + ["NVIDIA_VISIBLE_DEVICES=void"]
json.dump({"cdiVersion": b["cdiVersion"], "kind": "k8s.gpu.nvidia.com/claim",
           "devices": [{"name": uid + "-gpu-0", "containerEdits": edits}]}, open(out, "w"), indent=2)
EOF
    # Without the device-plugin spec: the claim spec alone must carry everything.
    rm -f "$CDI_DIR/nvidia.yaml"
    pod dra nvidia || return 0
    container dra work --env NVIDIA_VISIBLE_DEVICES=all \
        --annotation "cdi.k8s.io/gpu.nvidia.com_$uid=k8s.gpu.nvidia.com/claim=$uid-gpu-0" || return 0
    check_gpu "DRA claim (k8s.gpu.nvidia.com/claim=<uid>-gpu-0, env all)" 0
    assert_eq NVIDIA_VISIBLE_DEVICES=void "$(init_env)" "DRA: NVIDIA_VISIBLE_DEVICES=void from the claim spec replaced the pod's all"
    rm_pod
    rm -f "$CDI_DIR/k8s.gpu.nvidia.com-claim_$uid.json"
}

test_nothing_asked() {
    pod nothing nvidia || return 0
    container nothing work || return 0
    check_nothing "nvidia handler, nothing asked"
    rm_pod
}

test_runc_handler() {
    pod plain runc || return 0
    container plain work --env "NVIDIA_VISIBLE_DEVICES=$(uuid_of 2)" \
        --annotation "cdi.k8s.io/nvidia-device-plugin_x=nvidia.com/gpu=$(uuid_of 3)" || return 0
    check_nothing "runc handler, GPU asked"
    assert_true "runc handler: the container lives under the runc handler's root" test -d "$C/runc-root/k8s.io/$CID"
    assert_false "…not under the nvidia handler's" test -e "$C/nvidia-root/k8s.io/$CID"
    rm_pod
}

test_all_removed() {
    capture cri pods
    assert_eq "" "$OUT" "CRI ListPodSandbox: no pod left"
    capture cri containers
    assert_eq "" "$OUT" "CRI ListContainers: no container left"
    capture ctr_k8s tasks ls -q
    assert_eq "" "$OUT" "containerd: no task left"
}

start_cri_containerd
run_tests test_cri_ready test_envvar test_volume_mounts test_volume_mounts_only test_cdi_annotations test_dra_claim \
    test_nothing_asked test_runc_handler test_all_removed
e2e_finish
