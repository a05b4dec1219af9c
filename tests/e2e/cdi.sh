#!/usr/bin/env bash
# tests/e2e/cdi.sh — CDI devices consumed by the runtime, end to end.
#
# Against tests/fixtures/make-driver-root.sh's simulated host (4 GPUs, driver 580.159.04; GPU
# index i has minor i XOR 1, so GPU 1 is /dev/nvidia0) and CDI spec files in this test's temp
# dir (the config's [nvidia-container-runtime.modes.cdi] spec-dirs; /etc/cdi is never touched),
# with real containers through the runtime, looking at what the process inside sees. Proves:
#  - a CDI name reaches the container each way NVIDIA's toolkit takes one: NVIDIA_VISIBLE_DEVICES
#    (nvidia.com/gpu=1, =all, =GPU-uuid), annotations under cdi.k8s.io/ (an unqualified id takes
#    the default kind), device-list mounts /var/run/nvidia-container-devices/cdi/VENDOR/CLASS/NAME;
#  - the process sees exactly the spec's edits: its device nodes (filled from the host nodes),
#    env (NVIDIA_VISIBLE_DEVICES=void from the spec, so nothing is injected twice), mounts,
#    additional gids; the spec's hooks that call our binary are done in-process: the SONAME
#    link, the container's ld.so.cache listing the library, the container's own
#    /proc/driver/nvidia; a hook of someone else's runs as an OCI hook;
#  - runtime.nvidia.com/gpu=ID is this host's GPU ID without any spec file, and nvidia.com/gpu=ID
#    is too while no spec defines nvidia.com/gpu;
#  - another vendor's device (example.com/dev=a, a node made with mknod) needs no NVIDIA driver
#    files at all;
#  - a config.json an engine already applied CDI to (devices there, NVIDIA_VISIBLE_DEVICES=void)
#    passes through byte for byte, unless our hooks there say the spec was generated for
#    another driver (refused, naming both versions);
#  - an unknown name, a name two specs of one dir define, a broken spec, names mixed with plain
#    ids, and a stale spec (a mounted file gone, another driver version) are refused with the
#    cause and the fix named, non-zero, and nothing left behind; so is a spec whose edits fail
#    to apply after its steps ran (their link and ld cache are taken away again);
#  - a spec written by `nvidia-runtime cdi generate` is consumed as is;
#  - an injected config.json edited to name another device is injected again from the original.
source "$(dirname "$0")/../lib.sh"
e2e_init "$@"
need_cmd gcc gcc
need_cmd ldconfig libc-bin
need_cmd sha256sum coreutils
need_cmd unshare util-linux

VERSION=580.159.04
GNU=/usr/lib/x86_64-linux-gnu
LIB64=/usr/local/nvidia/lib64

SIM=$TEST_TMP/sim
bash "$REPO/tests/fixtures/make-driver-root.sh" 4 "$SIM" || die "make-driver-root.sh failed"
SPECS=$TEST_TMP/cdi       # the first spec dir (as /etc/cdi)
RUNSPECS=$TEST_TMP/cdi-run  # the second (as /var/run/cdi): later dirs win
mkdir -p "$SPECS" "$RUNSPECS"

# write_config FILE [EXTRA TOML LINES, top level] : the simulated host, our spec dirs, and
# $PROC_ROOT (default the simulated host) and $CDI_KEYS (more lines of the cdi table).
write_config() {
    local file=$1
    shift
    {
        printf '%s\n' "$@"
        printf '[nvidia-container-cli]\nroot = "%s"\n[nvidia-runtime]\nproc-root = "%s"\ninventory-cache = ""\n' "$SIM" "${PROC_ROOT:-$SIM}"
        printf '[nvidia-container-runtime.modes.cdi]\nspec-dirs = ["%s", "%s"]\n%s\n' "$SPECS" "$RUNSPECS" "${CDI_KEYS:-}"
    } >"$file"
}
export NVIDIA_CTK_CONFIG_FILE_PATH=$TEST_TMP/nvidia-runtime.toml
write_config "$NVIDIA_CTK_CONFIG_FILE_PATH"

IMAGE=$TEST_TMP/.image
make_busybox_rootfs "$IMAGE"
mkdir -p "$IMAGE$GNU"

B=""
bundle() { image_bundle "$@"; }

# in_host_view SCRIPT : runs SCRIPT in $B's container from a private mount namespace whose
# /proc/driver/nvidia is the simulated host's (a tmpfs over /proc/driver; the runtime reads proc
# root "/" there), so the container's own /proc/driver/nvidia can be made. Sets OUT/ERR/RC.
in_host_view() {
    local cfg=$TEST_TMP/host-view.toml
    PROC_ROOT=/ write_config "$cfg"
    bundle_args "$B" sh -c "$1"
    NVIDIA_CTK_CONFIG_FILE_PATH=$cfg B=$B STATE=$STATE RUNTIME=$RUNTIME SIM=$SIM ID=$(basename "$B") \
        capture timeout -k 5 "$E2E_TIMEOUT" unshare -m --propagation private bash -c '
            set -e
            mount -t tmpfs -o mode=0555 nvsim-proc-driver /proc/driver
            cp -a "$SIM/proc/driver/nvidia" /proc/driver/
            cd "$B" && "$RUNTIME" --root "$STATE" run "$ID" </dev/null'
}

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
    assert_eq "" "$(ls -A "$B/rootfs$GNU")" "$label: nothing left in the image's library dir"
    assert_eq "" "$(ls -A "$STATE")" "$label: no state left"
}

# nvidia_spec FILE [DRIVER VERSION] : a spec of kind nvidia.com/gpu for the simulated host, in
# the shape NVIDIA's and our generators write: devices by index, by UUID and `all`; common
# edits with the control nodes, libcuda, NVIDIA_VISIBLE_DEVICES=void, a group, and hooks of
# our binary for the SONAME link, the ld cache and /proc/driver/nvidia.
nvidia_spec() {
    python3 - "$1" "$SIM" "$RUNTIME" "$VERSION" "${2:-$VERSION}" "$GNU" "$LIB64" <<'EOF'
import json, sys
out, sim, runtime, version, spec_version, gnu, lib64 = sys.argv[1:]
def uuid(i): return "GPU-4e565349-4d00-4000-8000-%012x" % i
def node(minor): return {"path": "/dev/nvidia%d" % minor, "hostPath": "%s/dev/nvidia%d" % (sim, minor)}
def hook(*args):
    # the driver version in the hooks' env, where `cdi generate` writes it
    return {"hookName": "createContainer", "path": runtime, "args": ["nvidia-runtime", "hook", *args],
            "env": ["PATH=/usr/bin:/bin", "NVIDIA_RUNTIME_DRIVER_VERSION=" + spec_version]}
devices = []
for i in range(4):
    edits = {"deviceNodes": [node(i ^ 1)]}
    devices.append({"name": str(i), "containerEdits": edits})
    devices.append({"name": uuid(i), "containerEdits": edits})
devices.append({"name": "all", "containerEdits": {"deviceNodes": [node(i ^ 1) for i in range(4)]}})
lib = "libcuda.so." + version
spec = {
    "cdiVersion": "0.7.0",
    "kind": "nvidia.com/gpu",
    "devices": devices,
    "containerEdits": {
        "env": ["NVIDIA_VISIBLE_DEVICES=void", "NVIDIA_CDI_TEST=from-spec"],
        "deviceNodes": [{"path": "/dev/nvidiactl", "hostPath": sim + "/dev/nvidiactl"}],
        "mounts": [{"hostPath": "%s%s/%s" % (sim, lib64, lib), "containerPath": "%s/%s" % (gnu, lib),
                    "options": ["ro", "nosuid", "nodev", "bind"]},
                   {"hostPath": sim + "/usr/local/nvidia/bin/nvidia-smi", "containerPath": "/usr/bin/nvidia-smi",
                    "options": ["ro", "nosuid", "nodev", "bind"]}],
        "hooks": [hook("create-symlinks", "--link", "%s::%s/libcuda.so.1" % (lib, gnu)),
                  hook("update-ldcache", "--folder", gnu),
                  hook("disable-device-node-modification")],
        "additionalGids": [44],
    },
}
with open(out, "w") as f: json.dump(spec, f, indent=2)
EOF
}

# example_spec FILE [DEVICE NAME] : another vendor's spec: example.com/dev=NAME, a node made
# here with mknod (the host's zero device), env, a mount, a gid and a createRuntime hook.
example_spec() {
    python3 - "$1" "$TEST_TMP" "${2:-a}" <<'EOF'
import json, sys
out, tmp, name = sys.argv[1:]
spec = {
    "cdiVersion": "0.7.0",
    "kind": "example.com/dev",
    "devices": [{"name": name, "containerEdits": {
        "env": ["EXAMPLE_DEVICE=" + name],
        "deviceNodes": [{"path": "/dev/exdev-" + name, "hostPath": tmp + "/hostdev/ex-" + name, "permissions": "rw"}],
    }}],
    "containerEdits": {
        "mounts": [{"hostPath": tmp + "/example-data", "containerPath": "/opt/example/data", "options": ["ro", "bind"]}],
        "hooks": [{"hookName": "createRuntime", "path": "/bin/sh",
                   "args": ["sh", "-c", "echo ran >" + tmp + "/example-hook-ran"]}],
        "additionalGids": [1234],
    },
}
with open(out, "w") as f: json.dump(spec, f, indent=2)
EOF
}
mkdir -p "$TEST_TMP/hostdev"
mknod -m 0666 "$TEST_TMP/hostdev/ex-a" c 1 5
echo example-data >"$TEST_TMP/example-data"

# --- NVIDIA's kind, each way of naming it ---------------------------------------------

test_nvidia_spec_by_env() {
    rm -f "$SPECS"/* "$RUNSPECS"/*
    nvidia_spec "$SPECS/nvidia.json"

    bundle env-one NVIDIA_VISIBLE_DEVICES=nvidia.com/gpu=1
    # the runtime's /proc (rbind, no pid namespace), where the simulated driver shows
    bundle_set "$B" '
c["mounts"] = [{"destination": "/proc", "type": "bind", "source": "/proc", "options": ["rbind", "nosuid", "nodev", "noexec"]} if m["destination"] == "/proc" else m for m in c["mounts"]]
c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "pid"]
c["linux"]["maskedPaths"] = []
c["linux"]["readonlyPaths"] = []'
    in_host_view 'echo "nodes: $(ls /dev/nvidia* | tr "\n" " ")"; echo "env: $NVIDIA_VISIBLE_DEVICES $NVIDIA_CDI_TEST"; echo "groups: $(id -G)"; echo "link: $(readlink '"$GNU"'/libcuda.so.1)"; echo "lib: $(cat '"$GNU"'/libcuda.so.1 | grep -c nvsim-libcuda)"; echo "cache: $(grep -c libcuda.so.1 /etc/ld.so.cache)"; echo "gpus: $(ls /proc/driver/nvidia/gpus) $(grep ModifyDeviceFiles /proc/driver/nvidia/params)"; nvidia-smi'
    assert_rc 0 "NVIDIA_VISIBLE_DEVICES=nvidia.com/gpu=1 from a spec: runs"
    assert_contains "$OUT" "nodes: /dev/nvidia0 /dev/nvidiactl "$'\n' "…the spec's nodes for GPU 1 (minor 0) and nvidiactl, nothing else"
    assert_contains "$OUT" "env: void from-spec" "…the spec's env (NVIDIA_VISIBLE_DEVICES=void)"
    assert_match "$OUT" "groups: 0 44" "…its additional gid"
    assert_contains "$OUT" "link: libcuda.so.$VERSION" "…the create-symlinks hook's SONAME link, made in-process"
    assert_contains "$OUT" "lib: 1" "…through which the mounted libcuda is read"
    assert_contains "$OUT" "cache: 1" "…and the update-ldcache hook's /etc/ld.so.cache lists libcuda.so.1"
    assert_contains "$OUT" "gpus: 0000:2a:00.0 ModifyDeviceFiles: 0" \
        "…the disable-device-node-modification hook: the container's own /proc/driver/nvidia, GPU 1's only"
    assert_contains "$OUT" "$(smi_lines 1)" "…nvidia-smi (a spec mount) sees GPU 1"
    local config=$B/config.json
    assert_eq "0" "$(python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print(sum(len(v) for v in c.get("hooks",{}).values()))' "$config")" \
        "…none of our steps became an OCI hook"
    assert_eq "1" "$(grep -c '"/dev/nvidia0"' "$config")" "…and config.json lists the node once (nothing injected twice)"

    bundle env-all NVIDIA_VISIBLE_DEVICES=nvidia.com/gpu=all
    in_ctr 'ls /dev/nvidia[0-9]* | wc -l'
    assert_eq "4" "$OUT" "nvidia.com/gpu=all: the 4 GPU nodes"

    bundle env-uuid "NVIDIA_VISIBLE_DEVICES=nvidia.com/gpu=$(uuid_of 3)"
    in_ctr 'ls /dev/nvidia[0-9]*'
    assert_eq "/dev/nvidia2" "$OUT" "nvidia.com/gpu=GPU-…3: GPU 3's node (minor 2)"
}

test_nvidia_spec_by_annotation_and_mount() {
    rm -f "$SPECS"/* "$RUNSPECS"/*
    nvidia_spec "$RUNSPECS/nvidia.json"

    bundle annot-one NVIDIA_VISIBLE_DEVICES=all
    bundle_set "$B" 'c["annotations"] = {"cdi.k8s.io/nvidia-device-plugin_x": "nvidia.com/gpu=1,2", "other/x": "nvidia.com/gpu=0"}'
    in_ctr 'ls /dev/nvidia[0-9]* | tr "\n" " "; echo "$NVIDIA_VISIBLE_DEVICES"'
    assert_rc 0 "annotation cdi.k8s.io/…: nvidia.com/gpu=1,2 (2 unqualified): runs"
    assert_eq "/dev/nvidia0 /dev/nvidia3 void" "$OUT" "…GPU 1 and 2 (default kind) from the annotation, not all from the env"

    local cfg=$TEST_TMP/prefixes.toml
    CDI_KEYS='annotation-prefixes = ["nvidia.cdi.k8s.io/"]' \
        write_config "$cfg" 'accept-nvidia-visible-devices-as-volume-mounts = true'
    bundle annot-prefix
    bundle_set "$B" 'c["annotations"] = {"cdi.k8s.io/x": "nvidia.com/gpu=0", "nvidia.cdi.k8s.io/y": "nvidia.com/gpu=3"}'
    bundle_args "$B" sh -c 'ls /dev/nvidia[0-9]*'
    NVIDIA_CTK_CONFIG_FILE_PATH=$cfg capture _run_in "$B" annot-prefix
    assert_eq "/dev/nvidia2" "$OUT" "annotation-prefixes = [nvidia.cdi.k8s.io/]: only that annotation counts (GPU 3)"

    bundle devlist-cdi NVIDIA_VISIBLE_DEVICES=all
    bundle_set "$B" "c['mounts'].append({'destination': '/var/run/nvidia-container-devices/cdi/nvidia.com/gpu/$(uuid_of 2)', 'type': 'bind', 'source': '/dev/null', 'options': ['bind', 'ro']})"
    bundle_args "$B" sh -c 'ls /dev/nvidia[0-9]*'
    NVIDIA_CTK_CONFIG_FILE_PATH=$cfg capture _run_in "$B" devlist-cdi
    assert_rc 0 "device-list mount …/cdi/nvidia.com/gpu/GPU-…2: runs"
    assert_eq "/dev/nvidia3" "$OUT" "…exactly GPU 2, over the env's all"
}

test_generated_spec() {
    rm -f "$SPECS"/* "$RUNSPECS"/*
    capture bash -c 'umask 077 && exec "$@"' _ "$RUNTIME" cdi generate --output "$RUNSPECS/nvidia.yaml"
    assert_rc 0 "nvidia-runtime cdi generate --output …/nvidia.yaml: writes the host's spec"
    assert_eq 644 "$(stat -c %a "$RUNSPECS/nvidia.yaml")" "…readable by all (0644) under umask 077"
    capture "$RUNTIME" cdi list
    assert_contains "$OUT" "nvidia.com/gpu=all" "cdi list without --spec-dir reads the config's spec-dirs"
    bundle generated
    bundle_set "$B" 'c["annotations"] = {"cdi.k8s.io/gpu": "nvidia.com/gpu=2"}'
    in_ctr 'ls /dev/nvidia[0-9]*; readlink '"$GNU"'/libcuda.so.1; grep -c nvsim-libcuda '"$GNU"'/libcuda.so.1; grep -c libcuda.so.1 /etc/ld.so.cache; echo "$NVIDIA_VISIBLE_DEVICES"'
    assert_rc 0 "nvidia.com/gpu=2 from the generated spec: runs"
    assert_eq "/dev/nvidia3"$'\n'"libcuda.so.$VERSION"$'\n'"1"$'\n'"1"$'\n'"void" "$OUT" \
        "…GPU 2, libcuda through its SONAME link, listed in the container's ld.so.cache, env void"
    assert_not_contains "$(cat "$B/config.json")" '"hooks"' "…its hooks of ours done in-process, none in config.json"
}

test_runtime_kind_needs_no_spec() {
    rm -f "$SPECS"/* "$RUNSPECS"/*
    bundle rt-two NVIDIA_VISIBLE_DEVICES=runtime.nvidia.com/gpu=2
    in_ctr 'ls /dev/nvidia[0-9]*; readlink '"$GNU"'/libcuda.so.1'
    assert_rc 0 "runtime.nvidia.com/gpu=2 without any spec file: runs"
    assert_eq "/dev/nvidia3"$'\n'"libcuda.so.$VERSION" "$OUT" "…GPU 2 and the driver's libraries, from this host's inventory"
    assert_not_contains "$(cat "$B/config.json")" '"hooks"' "…no hook in config.json"

    bundle rt-all NVIDIA_VISIBLE_DEVICES=runtime.nvidia.com/gpu=all
    in_ctr 'ls /dev/nvidia[0-9]* | wc -l'
    assert_eq "4" "$OUT" "runtime.nvidia.com/gpu=all: the 4 GPUs"

    bundle rt-uuid
    bundle_set "$B" "c['annotations'] = {'cdi.k8s.io/x': 'runtime.nvidia.com/gpu=$(uuid_of 0)'}"
    in_ctr 'ls /dev/nvidia[0-9]*'
    assert_eq "/dev/nvidia1" "$OUT" "annotation runtime.nvidia.com/gpu=GPU-…0: GPU 0 (minor 1)"

    bundle nv-nospec NVIDIA_VISIBLE_DEVICES=nvidia.com/gpu=1
    in_ctr 'ls /dev/nvidia[0-9]*'
    assert_eq "/dev/nvidia0" "$OUT" "nvidia.com/gpu=1 while no spec defines nvidia.com/gpu: this host's GPU 1"

    # a spec file that is refused may be the one meant: no quiet fallback then
    printf '{"cdiVersion": "0.6.0", "kind": "nvidia.com/gpu", "devices": [{"name": "1"}]}\n' >"$RUNSPECS/nvidia.json"
    bundle nv-broken NVIDIA_VISIBLE_DEVICES=nvidia.com/gpu=1
    run_refused "nvidia.com/gpu=1 while the only spec that could define it is refused"
    assert_contains "$ERR" "$RUNSPECS/nvidia.json" "…the error names the refused spec file"
    rm -f "$RUNSPECS/nvidia.json"
}

# --- another vendor -----------------------------------------------------------------

test_foreign_vendor_device() {
    rm -f "$SPECS"/* "$RUNSPECS"/* "$TEST_TMP/example-hook-ran"
    example_spec "$SPECS/example.json"
    # no NVIDIA driver at all: a driver root without one
    local cfg=$TEST_TMP/nodriver.toml
    mkdir -p "$TEST_TMP/empty-root"
    printf '[nvidia-container-cli]\nroot = "%s"\n[nvidia-runtime]\nproc-root = "%s"\ninventory-cache = ""\n[nvidia-container-runtime.modes.cdi]\nspec-dirs = ["%s"]\n' \
        "$TEST_TMP/empty-root" "$TEST_TMP/empty-root" "$SPECS" >"$cfg"
    bundle foreign NVIDIA_VISIBLE_DEVICES=example.com/dev=a
    bundle_args "$B" sh -c 'ls -l /dev/exdev-a | cut -c1; ls /dev | grep -c nvidia; head -c 3 /dev/exdev-a | od -An -tx1; echo "env: $EXAMPLE_DEVICE"; cat /opt/example/data; id -G'
    NVIDIA_CTK_CONFIG_FILE_PATH=$cfg capture _run_in "$B" foreign
    assert_rc 0 "example.com/dev=a on a host without an NVIDIA driver: runs"
    assert_eq "c"$'\n'"0"$'\n'" 00 00 00"$'\n'"env: a"$'\n'"example-data"$'\n'"0 1234" "$OUT" \
        "…its node (type and numbers from the mknod'ed host node) reads, its env, mount and gid; no NVIDIA node"
    assert_eq "ran" "$(cat "$TEST_TMP/example-hook-ran" 2>/dev/null)" "…its createRuntime hook ran as an OCI hook"
    assert_false "…and nothing was written into the image (no ld cache)" test -e "$B/rootfs/etc/ld.so.cache"
    local rule
    rule=$(python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print([r for r in c["linux"]["resources"]["devices"] if r.get("major")==1 and r.get("minor")==5])' "$B/config.json")
    assert_eq "[{'allow': True, 'type': 'c', 'major': 1, 'minor': 5, 'access': 'rw'}]" "$rule" "…a cgroup rule with the spec's permissions"
}

# --- engine-applied CDI ---------------------------------------------------------------

test_engine_applied_config_passes_through() {
    rm -f "$SPECS"/* "$RUNSPECS"/*
    nvidia_spec "$SPECS/nvidia.json"
    bundle engine
    # what containerd or Podman leave after applying nvidia.com/gpu=1: the annotation that asked
    # for it, the spec's env, nodes and mounts (our hooks they would run as OCI hooks; left out)
    python3 - "$B/config.json" "$SPECS/nvidia.json" <<'EOF'
import json, os, sys
path, spec_path = sys.argv[1:]
c = json.load(open(path)); spec = json.load(open(spec_path))
edits = [spec["containerEdits"], [d for d in spec["devices"] if d["name"] == "1"][0]["containerEdits"]]
c["annotations"] = {"cdi.k8s.io/x": "nvidia.com/gpu=1"}
for e in edits:
    c["process"]["env"] += e.get("env", [])
    for n in e.get("deviceNodes", []):
        st = os.stat(n["hostPath"])
        c["linux"].setdefault("devices", []).append({"path": n["path"], "type": "c", "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev), "fileMode": 0o666})
        c["linux"]["resources"]["devices"].append({"allow": True, "type": "c", "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev), "access": "rwm"})
    for m in e.get("mounts", []):
        c["mounts"].append({"destination": m["containerPath"], "source": m["hostPath"], "options": m["options"]})
json.dump(c, open(path, "w"), indent=2)
EOF
    bundle_args "$B" sh -c 'ls /dev/nvidia* | tr "\n" " "; echo "$NVIDIA_VISIBLE_DEVICES"'
    local before
    before=$(sha_of "$B/config.json")
    capture _run_in "$B" engine
    assert_rc 0 "a config.json with CDI applied by the engine: runs"
    assert_eq "/dev/nvidia0 /dev/nvidiactl void" "$OUT" "…with what the engine applied"
    assert_eq "$before" "$(sha_of "$B/config.json")" "…config.json byte for byte as the engine left it"
    assert_eq "config.json rootfs" "$(ls -A "$B" | tr '\n' ' ' | sed 's/ $//')" "…no record of ours in the bundle"

    # the same from a spec cdi generate wrote for another driver: our hook there says which
    local applied=$B/config.json
    bundle engine-stale
    cp "$applied" "$B/config.json"
    bundle_set "$B" "c['hooks'] = {'createContainer': [{'path': '$RUNTIME', 'args': ['nvidia-runtime', 'hook', 'disable-device-node-modification'], 'env': ['PATH=/bin', 'NVIDIA_RUNTIME_DRIVER_VERSION=570.86.10']}]}"
    run_refused "an engine-applied config.json from a spec for driver 570.86.10"
    assert_contains "$ERR" "570.86.10" "…the error names the spec's driver"
    assert_contains "$ERR" "$VERSION" "…the loaded one"
    assert_contains "$ERR" "nvidia-runtime cdi refresh" "…and the fix"
}

# --- refused ---------------------------------------------------------------------------

test_bad_names_and_specs_are_refused() {
    rm -f "$SPECS"/* "$RUNSPECS"/*
    nvidia_spec "$SPECS/nvidia.json"

    bundle unknown NVIDIA_VISIBLE_DEVICES=nvidia.com/gpu=7
    run_refused "nvidia.com/gpu=7 (no such device in the spec)"
    assert_contains "$ERR" "nvidia.com/gpu=7" "…the error names the device"
    assert_contains "$ERR" "nvidia.com/gpu=3, nvidia.com/gpu=GPU-" "…and the devices there are"

    bundle unknown-kind
    bundle_set "$B" 'c["annotations"] = {"cdi.k8s.io/x": "example.com/nothing=a"}'
    run_refused "example.com/nothing=a (no spec of that kind)"
    assert_contains "$ERR" "example.com/nothing=a" "…the error names the device"
    assert_contains "$ERR" "$SPECS, $RUNSPECS" "…and the spec dirs searched"

    bundle mixed NVIDIA_VISIBLE_DEVICES=0,nvidia.com/gpu=1
    run_refused "NVIDIA_VISIBLE_DEVICES=0,nvidia.com/gpu=1 (a plain id and a name)"
    assert_contains "$ERR" 'CDI name \"nvidia.com/gpu=1\"' "…the error names the name"
    assert_contains "$ERR" 'plain device id \"0\"' "…and the plain id"
    assert_contains "$ERR" 'runtime.nvidia.com/gpu=0' "…and how to name GPU 0 instead"

    # two specs of one dir define example.com/dev=a
    example_spec "$SPECS/example-1.json"
    example_spec "$SPECS/example-2.json"
    bundle conflict NVIDIA_VISIBLE_DEVICES=example.com/dev=a
    run_refused "example.com/dev=a defined by two specs of one dir"
    assert_contains "$ERR" "example-1.json" "…the error names one spec"
    assert_contains "$ERR" "example-2.json" "…and the other"
    rm -f "$SPECS"/example-*.json

    # a later dir's spec of the same name wins: no conflict
    example_spec "$SPECS/example.json"
    example_spec "$RUNSPECS/example.json"
    bundle later-dir-wins NVIDIA_VISIBLE_DEVICES=example.com/dev=a
    in_ctr 'echo "$EXAMPLE_DEVICE"'
    assert_rc 0 "example.com/dev=a in both spec dirs: runs (the later dir wins)"
    rm -f "$SPECS"/example.json "$RUNSPECS"/example.json

    # a broken spec: an unknown field
    python3 - "$RUNSPECS/broken.json" <<'EOF'
import json, sys
json.dump({"cdiVersion": "0.6.0", "kind": "example.com/dev", "devices": [
    {"name": "b", "containerEdits": {"env": ["A=1"], "devicenodes": []}}]}, open(sys.argv[1], "w"))
EOF
    bundle broken NVIDIA_VISIBLE_DEVICES=example.com/dev=b
    run_refused "a spec with an unknown field"
    assert_contains "$ERR" "$RUNSPECS/broken.json" "…the error names the spec file"
    assert_contains "$ERR" "devicenodes" "…and the field"
    rm -f "$RUNSPECS/broken.json"
}

test_failed_apply_leaves_nothing() {
    rm -f "$SPECS"/* "$RUNSPECS"/*
    # a spec whose steps of ours run (a link, the ld cache) before its device node turns out to
    # be no block device: what the steps wrote must go again
    python3 - "$SPECS/mismatch.json" "$RUNTIME" "$TEST_TMP/hostdev/ex-a" "$GNU" <<'EOF'
import json, sys
out, runtime, node, gnu = sys.argv[1:]
hook = lambda *a: {"hookName": "createContainer", "path": runtime, "args": ["nvidia-runtime", "hook", *a]}
json.dump({"cdiVersion": "0.5.0", "kind": "example.com/mismatch", "devices": [{"name": "m", "containerEdits": {
    "deviceNodes": [{"path": "/dev/exm", "hostPath": node, "type": "b"}]}}],
    "containerEdits": {"hooks": [hook("create-symlinks", "--link", "libfoo.so.1.0::%s/libfoo.so.1" % gnu),
                                 hook("update-ldcache", "--folder", gnu)]}}, open(out, "w"))
EOF
    bundle mismatch NVIDIA_VISIBLE_DEVICES=example.com/mismatch=m
    run_refused "a device node of type b whose host node is a character device"
    assert_contains "$ERR" "/dev/exm" "…the error names the node"
    assert_contains "$ERR" "$TEST_TMP/hostdev/ex-a" "…and the host's"
    assert_false "…no ld.so.cache left in the image" test -e "$B/rootfs/etc/ld.so.cache"
}

test_stale_specs_are_refused() {
    rm -f "$SPECS"/* "$RUNSPECS"/*
    nvidia_spec "$SPECS/nvidia.json" 570.86.10
    bundle stale-version NVIDIA_VISIBLE_DEVICES=nvidia.com/gpu=0
    run_refused "a spec generated for driver 570.86.10 (the module is $VERSION)"
    assert_contains "$ERR" "$SPECS/nvidia.json" "…the error names the spec file"
    assert_contains "$ERR" "570.86.10" "…the spec's driver version"
    assert_contains "$ERR" "$VERSION" "…and the loaded one"
    assert_contains "$ERR" "nvidia-runtime cdi refresh --output $SPECS/nvidia.json" "…and the fix, for that file"

    nvidia_spec "$SPECS/nvidia.json"
    python3 - "$SPECS/nvidia.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
s["containerEdits"]["mounts"][0]["hostPath"] = s["containerEdits"]["mounts"][0]["hostPath"].replace("580.159.04", "580.1.1")
json.dump(s, open(sys.argv[1], "w"))
EOF
    bundle stale-file NVIDIA_VISIBLE_DEVICES=nvidia.com/gpu=0
    run_refused "a spec mounting a driver file that is gone"
    assert_contains "$ERR" "libcuda.so.580.1.1" "…the error names the missing file"
    assert_contains "$ERR" "nvidia-runtime cdi refresh" "…and the fix"
    assert_contains "$ERR" "stale" "…and calls the spec stale"
}

test_edited_config_is_injected_again() {
    rm -f "$SPECS"/* "$RUNSPECS"/*
    nvidia_spec "$SPECS/nvidia.json"
    bundle reinject
    bundle_set "$B" 'c["annotations"] = {"cdi.k8s.io/x": "nvidia.com/gpu=1"}'
    bundle_args "$B" sh -c 'ls /dev/nvidia[0-9]*'
    capture _run_in "$B" reinject
    assert_eq "/dev/nvidia0" "$OUT" "first run: GPU 1"
    bundle_set "$B" 'c["annotations"]["cdi.k8s.io/x"] = "nvidia.com/gpu=3"'
    capture _run_in "$B" reinject
    assert_rc 0 "the injected config.json edited to ask for GPU 3: runs"
    assert_eq "/dev/nvidia2" "$OUT" "…and gets GPU 3 only, not GPU 1 too"
}

run_tests \
    test_nvidia_spec_by_env test_nvidia_spec_by_annotation_and_mount test_generated_spec \
    test_runtime_kind_needs_no_spec \
    test_foreign_vendor_device test_engine_applied_config_passes_through \
    test_bad_names_and_specs_are_refused test_failed_apply_leaves_nothing test_stale_specs_are_refused test_edited_config_is_injected_again
e2e_finish
