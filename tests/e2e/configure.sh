#!/usr/bin/env bash
# tests/e2e/configure.sh — `nvidia-runtime configure docker|containerd|crio`, and the engines
# running on what it wrote.
#
# Every file lives under the temp dir (--config, --drop-in-dir, --hook-dir); nothing in /etc is
# touched. The driver root is the simulated 8-GPU host (sim_host), which dockerd and containerd
# pass to the runtime through NVIDIA_CTK_CONFIG_FILE_PATH in their environment.
# Proves:
#  - docker, on the files: runtimes.nvidia = the binary's real path, default-runtime and
#    features.cdi on request, every other key kept in its place, the file's mode and owner kept,
#    a backup with the previous bytes, the hook link made; a second run changes nothing and
#    says so; --dry-run prints the result and writes nothing; --remove gives back the original
#    bytes and removes the link; a malformed file is refused untouched with its line and column;
#    a hook of that name that is not ours is never replaced nor removed;
#  - docker, running: Debian's dockerd started on the written daemon.json, with the hook link
#    on its PATH, runs GPU containers with --runtime=nvidia (env and --gpus); --gpus under the
#    default runc fails and docker's error says how to switch runtimes; after
#    --set-as-default --cdi, dockerd accepts the file and a plain `docker run --gpus` injects;
#  - containerd: the main config gains only the imports line (comments and order kept), the
#    drop-in registers the runtime (config version 2 keeps the CRI section: containerd 1.6
#    replaces a plugin's section with an imported one), `containerd config dump` shows our
#    BinaryName, the real containerd starts on it with its CRI plugin ok, that BinaryName runs a
#    GPU container, and a pod on the CRI handler "nvidia" (crates/cri-client, as the kubelet
#    asks) gets its GPU from nvidia-runtime; --remove gives back the main config's bytes and deletes the drop-in;
#    a version 3 config gets the 2.x plugin; a malformed config is refused untouched;
#  - CRI-O (not installed here): the drop-in parses, starts from the monitor settings of the
#    packaged default runtime, keeps its own state root, and --remove deletes only it.
source "$(dirname "$0")/../lib.sh"
e2e_init "$@"
need_cmd containerd containerd
need_cmd ctr containerd

NET=(--network=none)
REAL=$(readlink -f "$RUNTIME")
HOOK=nvidia-container-runtime-hook
sim_host 8 ""
ALL_NODES=$(printf '/dev/nvidia%d\n' 0 1 2 3 4 5 6 7)
ALL_SMI=$(smi_lines 0 1 2 3 4 5 6 7)
GPU_CMD='ls /dev/nvidia[0-9]*; nvidia-smi'

cfg() { timeout -k 5 "$E2E_TIMEOUT" "$RUNTIME" configure "$@"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
# py_json FILE EXPR / py_toml FILE EXPR : EXPR on the parsed file `c` (strings printed as is)
py_json() { python3 -c 'import json, sys; c = json.load(open(sys.argv[1])); v = eval(sys.argv[2]); print(v if isinstance(v, str) else json.dumps(v))' "$@"; }
py_toml() { python3 -c 'import json, sys, tomllib; c = tomllib.load(open(sys.argv[1], "rb")); v = eval(sys.argv[2]); print(v if isinstance(v, str) else json.dumps(v))' "$@"; }

# --- docker: the files --------------------------------------------------------------------

USER_DAEMON_JSON='{
    "log-level": "warn",
    "features": {
        "buildkit": true
    },
    "storage-driver": "overlay2",
    "default-ulimits": {
        "nofile": {
            "Name": "nofile",
            "Hard": 65536,
            "Soft": 1024
        }
    }
}'

test_docker_files() {
    local dir=$TEST_TMP/docker-files f
    mkdir -p "$dir"
    f=$dir/daemon.json
    printf '%s\n' "$USER_DAEMON_JSON" >"$f"
    cp "$f" "$dir/original"
    chmod 640 "$f"
    chown nobody "$f"

    capture cfg docker --config "$f" --hook-dir "$dir/hook" --set-as-default --cdi
    assert_rc 0 "configure docker --set-as-default --cdi: rc 0"
    assert_eq "$REAL" "$(py_json "$f" 'c["runtimes"]["nvidia"]["path"]')" "runtimes.nvidia.path is the binary's real path"
    assert_eq nvidia "$(py_json "$f" 'c["default-runtime"]')" "default-runtime is nvidia"
    assert_eq true "$(py_json "$f" 'c["features"]["cdi"]')" "features.cdi is true"
    assert_eq '["log-level", "features", "storage-driver", "default-ulimits", "runtimes", "default-runtime"]' \
        "$(py_json "$f" 'list(c)')" "the user's keys keep their order, ours come after"
    assert_eq '{"buildkit": true, "cdi": true}' "$(py_json "$f" 'c["features"]')" "features.buildkit kept"
    assert_eq '{"Name": "nofile", "Hard": 65536, "Soft": 1024}' "$(py_json "$f" 'c["default-ulimits"]["nofile"]')" "nested values kept"
    assert_eq "640 nobody" "$(stat -c '%a %U' "$f")" "the file's mode and owner are kept"
    local backups
    backups=$(ls "$dir" | grep -c '^daemon\.json\..*\.bak$' || true)
    assert_eq 1 "$backups" "one backup next to it"
    assert_true "…holding the previous bytes" cmp "$dir/original" "$dir"/daemon.json.*.bak
    assert_eq "$REAL" "$(readlink "$dir/hook/$HOOK")" "the hook link points at the binary"
    assert_contains "$ERR" "restart dockerd" "…and it says to restart dockerd"
    assert_eq "" "$(ls -A "$dir" | grep '\.tmp$' || true)" "no temp file left"

    local before
    before=$(sha "$f")
    capture cfg docker --config "$f" --hook-dir "$dir/hook" --set-as-default --cdi
    assert_rc 0 "a second run: rc 0"
    assert_contains "$ERR" "nothing to change" "…says nothing changes"
    assert_eq "$before" "$(sha "$f")" "…and leaves the file as it was"
    assert_eq 1 "$(ls "$dir" | grep -c '\.bak$' || true)" "…with no new backup"

    capture cfg docker --config "$f" --hook-dir "$dir/hook" --remove --cdi --dry-run
    assert_rc 0 "--remove --dry-run: rc 0"
    assert_eq "$USER_DAEMON_JSON" "$OUT" "--dry-run prints the resulting daemon.json on stdout"
    assert_eq "$before" "$(sha "$f")" "…and writes nothing"
    assert_true "…not even the link" test -L "$dir/hook/$HOOK"

    capture cfg docker --config "$f" --hook-dir "$dir/hook" --remove --cdi
    assert_rc 0 "--remove --cdi: rc 0"
    assert_true "--remove gives back the original bytes" cmp "$dir/original" "$f"
    assert_false "…and removes the hook link" test -L "$dir/hook/$HOOK"
    assert_eq "640 nobody" "$(stat -c '%a %U' "$f")" "…mode and owner still kept"
}

test_docker_malformed() {
    local dir=$TEST_TMP/docker-bad f before
    mkdir -p "$dir"
    f=$dir/daemon.json
    printf '{\n  "debug": true,\n  "x" 1\n}\n' >"$f"
    before=$(sha "$f")
    capture cfg docker --config "$f" --hook-dir "$dir/hook"
    assert_rc 1 "a malformed daemon.json: rc 1"
    assert_contains "$ERR" "line 3, column 7" "…the error names line 3, column 7"
    assert_contains "$ERR" "$f" "…and the file"
    assert_contains "$ERR" "nothing was changed" "…and says nothing was changed"
    assert_eq "$before" "$(sha "$f")" "…the file is untouched"
    assert_eq "daemon.json" "$(ls -A "$dir")" "…no backup, temp file or hook link made"

    printf '["not", "an", "object"]\n' >"$f"
    capture cfg docker --config "$f" --no-hook
    assert_rc 1 "a daemon.json that is not an object: rc 1"
    assert_contains "$ERR" "a JSON object" "…says what it must be"
}

test_docker_foreign_hook() {
    local dir=$TEST_TMP/docker-foreign hook
    mkdir -p "$dir/hook"
    hook=$dir/hook/$HOOK
    printf '#!/bin/sh\n# NVIDIA'"'"'s hook stands here\nexit 0\n' >"$hook"
    chmod 755 "$hook"
    cp "$hook" "$dir/hook.orig"
    capture cfg docker --config "$dir/daemon.json" --hook-dir "$dir/hook"
    assert_rc 0 "configure docker with another $HOOK in the hook dir: rc 0"
    assert_true "…that file is left as it was" cmp "$dir/hook.orig" "$hook"
    assert_contains "$ERR" "not ours" "…and it says so"
    capture cfg docker --config "$dir/daemon.json" --hook-dir "$dir/hook" --remove
    assert_rc 0 "--remove: rc 0"
    assert_true "…never removes a hook that is not ours" cmp "$dir/hook.orig" "$hook"
    assert_false "…and the daemon.json it created is gone" test -e "$dir/daemon.json"
}

test_docker_relative_hook_link_is_kept() {
    # as the Debian package makes it: a relative link beside the binary
    local dir=$TEST_TMP/docker-relative hook target
    mkdir -p "$dir/hook"
    hook=$dir/hook/$HOOK
    target=$(realpath --relative-to="$dir/hook" "$RUNTIME")
    ln -s "$target" "$hook"
    capture cfg docker --config "$dir/daemon.json" --hook-dir "$dir/hook"
    assert_rc 0 "configure docker with a relative link of ours already there: rc 0"
    assert_eq "$target" "$(readlink "$hook")" "…the link is left as it was"
    assert_not_contains "$OUT$ERR" "$hook: link to" "…and not reported as a change"
}

# --- docker: dockerd on the written file ---------------------------------------------------

HOOKBIN=$TEST_TMP/hookbin
DCFG=$TEST_TMP/dockerd-config/daemon.json

test_dockerd_runtime_flag() {
    assert_eq runc "$(docker_ info -f '{{.DefaultRuntime}}')" "dockerd on the written daemon.json: default runtime still runc"
    capture docker_ run --rm --runtime=nvidia "${NET[@]}" -e NVIDIA_VISIBLE_DEVICES=all bb sh -c "$GPU_CMD"
    assert_rc 0 "docker run --runtime=nvidia -e NVIDIA_VISIBLE_DEVICES=all: rc 0"
    assert_eq "$ALL_NODES"$'\n'"$ALL_SMI" "$OUT" "…the container sees the 8 GPUs (nodes and nvidia-smi)"

    capture docker_ run --rm --runtime=nvidia "${NET[@]}" --gpus '"device=1,2"' bb sh -c "$GPU_CMD"
    assert_rc 0 "docker run --runtime=nvidia --gpus device=1,2 (the link enabled --gpus): rc 0"
    assert_eq $'/dev/nvidia0\n/dev/nvidia3\n'"$(smi_lines 1 2)" "$OUT" "…exactly GPUs 1 and 2"

    capture docker_ run --rm "${NET[@]}" bb sh -c 'ls /dev | grep -c nvidia || true'
    assert_eq 0 "$OUT" "a plain docker run (runc) gets no GPU"

    capture docker_ run --rm "${NET[@]}" --gpus all bb echo ran
    assert_rc_nonzero "docker run --gpus under runc fails (no silent GPU-less container)"
    assert_not_contains "$OUT" ran "…the program never ran"
    assert_contains "$ERR" "$HOOK" "…docker's error comes from the hook link"
    assert_contains "$ERR" "docker run --runtime=nvidia" "…and says to use --runtime=nvidia"
    assert_contains "$ERR" "configure docker --set-as-default" "…or to make nvidia the default"
}

test_dockerd_default_runtime() {
    assert_eq nvidia "$(docker_ info -f '{{.DefaultRuntime}}')" "after --set-as-default --cdi: dockerd's default runtime is nvidia"
    capture docker_ run --rm "${NET[@]}" --gpus all bb sh -c "$GPU_CMD"
    assert_rc 0 "plain docker run --gpus all: rc 0"
    assert_eq "$ALL_NODES"$'\n'"$ALL_SMI" "$OUT" "…injected: the 8 GPUs"
    capture docker_ run --rm "${NET[@]}" -e NVIDIA_VISIBLE_DEVICES=3 bb nvidia-smi
    assert_eq "$(smi_lines 3)" "$OUT" "plain docker run -e NVIDIA_VISIBLE_DEVICES=3: GPU 3"
}

# --- containerd ------------------------------------------------------------------------------

C_DIR=$TEST_TMP/cfg-containerd
CRI='plugins."io.containerd.grpc.v1.cri"'
PAUSE_IMAGE=registry.example/pause:e2e
BB_IMAGE=docker.io/library/bb:latest
CRI_CLIENT=${CRI_CLIENT:-$REPO/target/debug/cri-client}
cri() { timeout -k 5 "$E2E_TIMEOUT" "$CRI_CLIENT" -r "$C_DIR/containerd.sock" --timeout "$E2E_TIMEOUT" "$@"; }
write_containerd_main() {
    mkdir -p "$C_DIR"
    cat >"$C_DIR/config.toml" <<EOF
# A private containerd for the configure test.
version = 2
root = "$C_DIR/root"
state = "$C_DIR/state"
disabled_plugins = ["io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$C_DIR/containerd.sock"
[ttrpc]
  address = "$C_DIR/containerd.sock.ttrpc"
[debug]
  address = "$C_DIR/debug.sock"
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$C_DIR/opt"

[$CRI]
  # kept in the drop-in's copy: containerd 1.6 would fall back to its defaults otherwise
  sandbox_image = "$PAUSE_IMAGE"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # the pause container's oom_score_adj (-998) may not be lowered here
  restrict_oom_score_adj = true
  [$CRI.cni]
    bin_dir = "$C_DIR/cni/bin"
    conf_dir = "$C_DIR/cni/conf"
  [$CRI.containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [$CRI.containerd.runtimes.runc.options]
      Root = "$C_DIR/runc-root"
EOF
    cp "$C_DIR/config.toml" "$C_DIR/original.toml"
}

test_containerd_files() {
    write_containerd_main
    capture cfg containerd --config "$C_DIR/config.toml" --drop-in-dir "$C_DIR/conf.d" --set-as-default
    assert_rc 0 "configure containerd --set-as-default: rc 0"
    local drop=$C_DIR/conf.d/99-nvidia.toml
    assert_true "the drop-in is written" test -f "$drop"
    assert_eq "[\"$drop\"]" "$(py_toml "$C_DIR/config.toml" 'c["imports"]')" "the main config imports it"
    assert_true "…and is otherwise byte for byte the same (comments, order)" \
        cmp "$C_DIR/original.toml" <(grep -v '^imports = ' "$C_DIR/config.toml")
    local nv="c['plugins']['io.containerd.grpc.v1.cri']['containerd']['runtimes']['nvidia']"
    assert_eq "$REAL" "$(py_toml "$drop" "$nv['options']['BinaryName']")" "drop-in: options.BinaryName is the binary"
    assert_eq io.containerd.runc.v2 "$(py_toml "$drop" "$nv['runtime_type']")" "drop-in: runtime_type io.containerd.runc.v2"
    assert_eq '["cdi.k8s.io/*"]' "$(py_toml "$drop" "$nv['container_annotations']")" "drop-in: CDI annotations passed through"
    assert_eq "$C_DIR/runc-root" "$(py_toml "$drop" "$nv['options']['Root']")" "drop-in: runc's options carried over"

    # what containerd itself makes of main config + drop-in
    containerd --config "$C_DIR/config.toml" config dump >"$C_DIR/dump.toml" 2>"$C_DIR/dump.err"
    assert_eq "$REAL" "$(py_toml "$C_DIR/dump.toml" "$nv['options']['BinaryName']")" "containerd config dump: runtime nvidia with our BinaryName"
    assert_eq nvidia "$(py_toml "$C_DIR/dump.toml" "c['plugins']['io.containerd.grpc.v1.cri']['containerd']['default_runtime_name']")" "…default_runtime_name nvidia"
    assert_eq "$PAUSE_IMAGE" "$(py_toml "$C_DIR/dump.toml" "c['plugins']['io.containerd.grpc.v1.cri']['sandbox_image']")" "…the main config's CRI settings survive the import"
    assert_eq io.containerd.runc.v2 "$(py_toml "$C_DIR/dump.toml" "c['plugins']['io.containerd.grpc.v1.cri']['containerd']['runtimes']['runc']['runtime_type']")" "…and so does the runc runtime"

    local before
    before=$(sha "$drop")$(sha "$C_DIR/config.toml")
    capture cfg containerd --config "$C_DIR/config.toml" --drop-in-dir "$C_DIR/conf.d" --set-as-default
    assert_contains "$ERR" "nothing to change" "a second run: nothing to change"
    assert_eq "$before" "$(sha "$drop")$(sha "$C_DIR/config.toml")" "…both files as they were"
}

test_containerd_running() {
    local id=cfg-gpu binary r=$TEST_TMP/cfg-rootfs
    capture ctr_ plugins ls
    assert_match "$OUT" $'io\\.containerd\\.grpc\\.v1[[:space:]]+cri[[:space:]]+[^\n]*ok' "containerd started on the written configs: ctr plugins ls shows cri ok"
    binary=$(py_toml "$C_DIR/dump.toml" "c['plugins']['io.containerd.grpc.v1.cri']['containerd']['runtimes']['nvidia']['options']['BinaryName']")
    make_busybox_rootfs "$r"
    make_oci_archive "$r" "$TEST_TMP/cfg-bb.tar" "$BB_IMAGE"
    printf '%s\n' "trap 'exit 0' TERM INT" 'while :; do sleep 3600 & wait $!; done' >"$r/pause"
    make_oci_archive "$r" "$TEST_TMP/cfg-pause.tar" "$PAUSE_IMAGE" '["/bin/sh", "/pause"]'
    rm -rf "$r"
    ctr_ images import "$TEST_TMP/cfg-bb.tar" >/dev/null
    capture ctr_ run --rm --runc-binary "$binary" --runc-root "$C_DIR/runc-root" --fifo-dir "$C_DIR/fifo" \
        --cgroup "/$(cgroup_parent)/ctr-$id" --env NVIDIA_VISIBLE_DEVICES=2 "$BB_IMAGE" "$id" sh -c "$GPU_CMD"
    assert_rc 0 "the configured BinaryName runs a container under containerd: rc 0"
    assert_eq $'/dev/nvidia3\n'"$(smi_lines 2)" "$OUT" "…NVIDIA_VISIBLE_DEVICES=2 gives exactly GPU 2"
}

# A pod on the "nvidia" handler through the CRI, as the kubelet runs one for a RuntimeClass
# with handler nvidia: containerd picks the runtime from the drop-in alone.
test_containerd_cri_pod() {
    if ! [[ -x $CRI_CLIENT ]]; then
        fail "CRI_CLIENT=$CRI_CLIENT is not an executable (cargo build -p cri-client)"
        return 0
    fi
    local k8s=(timeout -k 5 "$E2E_TIMEOUT" ctr -a "$C_DIR/containerd.sock" -n k8s.io) pod cid
    "${k8s[@]}" images import "$TEST_TMP/cfg-pause.tar" >/dev/null
    "${k8s[@]}" images import "$TEST_TMP/cfg-bb.tar" >/dev/null
    mkdir -p "$TEST_TMP/cfg-pod"
    capture cri run-pod --handler nvidia --name cfg-pod --uid uid-cfg-pod --log-dir "$TEST_TMP/cfg-pod" \
        --cgroup-parent "/$(cgroup_parent)/kubepods" --config-out "$TEST_TMP/cfg-pod/sandbox.json"
    assert_rc 0 "CRI RunPodSandbox with handler nvidia (registered by the drop-in): rc 0"
    pod=$OUT
    capture cri create-container "$pod" --pod-config "$TEST_TMP/cfg-pod/sandbox.json" --name work \
        --image "$BB_IMAGE" --env NVIDIA_VISIBLE_DEVICES=5 -- sleep 2147483647
    assert_rc 0 "…CreateContainer: rc 0"
    cid=$OUT
    capture cri start "$cid"
    assert_rc 0 "…StartContainer: rc 0"
    capture cri exec-sync "$cid" -- sh -c "$GPU_CMD"
    assert_eq $'/dev/nvidia4\n'"$(smi_lines 5)" "$OUT" "…the pod's container sees exactly GPU 5 (injected by nvidia-runtime)"
    capture timeout 10 "$RUNTIME" --root "$C_DIR/runc-root/k8s.io" state "$cid"
    assert_eq running "$(json_get 'j["status"]' <<<"$OUT")" "…and nvidia-runtime's own state shows it running"
    capture cri stop-pod "$pod"
    assert_rc 0 "…StopPodSandbox: rc 0"
    capture cri rm-pod "$pod"
    assert_rc 0 "…RemovePodSandbox: rc 0"
}

test_containerd_drop_in_beside_its_config() {
    local dir=$TEST_TMP/ctd-beside
    mkdir -p "$dir"
    printf 'version = 2\n' >"$dir/config.toml"
    cp "$dir/config.toml" "$dir/config.orig"
    capture cfg containerd --config "$dir/config.toml"
    assert_rc 0 "configure containerd --config DIR/config.toml (no --drop-in-dir): rc 0"
    assert_true "…the drop-in goes to DIR/conf.d, beside that config" test -f "$dir/conf.d/99-nvidia.toml"
    assert_contains "$(cat "$dir/config.toml")" "$dir/conf.d/99-nvidia.toml" "…and the config imports it"
    capture cfg containerd --config "$dir/config.toml" --remove
    assert_rc 0 "--remove with the same --config: rc 0"
    assert_false "…finds and removes that drop-in" test -e "$dir/conf.d/99-nvidia.toml"
    assert_true "…and the config is as it was" cmp "$dir/config.orig" "$dir/config.toml"
}

test_containerd_remove() {
    capture cfg containerd --config "$C_DIR/config.toml" --drop-in-dir "$C_DIR/conf.d" --remove
    assert_rc 0 "configure containerd --remove: rc 0"
    assert_true "…gives back the main config's original bytes" cmp "$C_DIR/original.toml" "$C_DIR/config.toml"
    assert_false "…and deletes the drop-in" test -e "$C_DIR/conf.d/99-nvidia.toml"
}

test_containerd_v3_and_malformed() {
    local dir=$TEST_TMP/containerd-v3
    mkdir -p "$dir"
    printf 'version = 3\n\n[plugins."io.containerd.cri.v1.images"]\n  snapshotter = "overlayfs"\n' >"$dir/config.toml"
    capture cfg containerd --config "$dir/config.toml" --drop-in-dir "$dir/conf.d" --cdi --dry-run
    assert_rc 0 "a version 3 config, --dry-run: rc 0"
    assert_false "…writes nothing" test -e "$dir/conf.d"
    capture cfg containerd --config "$dir/config.toml" --drop-in-dir "$dir/conf.d" --cdi
    local plugin="c['plugins']['io.containerd.cri.v1.runtime']"
    assert_eq "$REAL" "$(py_toml "$dir/conf.d/99-nvidia.toml" "$plugin['containerd']['runtimes']['nvidia']['options']['BinaryName']")" \
        "version 3: the runtime is in io.containerd.cri.v1.runtime (containerd 2.x)"
    assert_eq true "$(py_toml "$dir/conf.d/99-nvidia.toml" "$plugin['enable_cdi']")" "…with enable_cdi"
    assert_eq '["io.containerd.cri.v1.runtime"]' "$(py_toml "$dir/conf.d/99-nvidia.toml" "list(c['plugins'])")" "…and no copy of other plugins"

    printf 'version = 2\n[plugins\nx = 1\n' >"$dir/bad.toml"
    local before
    before=$(sha "$dir/bad.toml")
    capture cfg containerd --config "$dir/bad.toml" --drop-in-dir "$dir/bad.d"
    assert_rc 1 "a malformed containerd config: rc 1"
    assert_contains "$ERR" "line 2, column 9" "…the error names line 2, column 9"
    assert_eq "$before" "$(sha "$dir/bad.toml")" "…untouched"
    assert_false "…no drop-in written" test -e "$dir/bad.d"

    # a drop-in of that name that is not ours (NVIDIA's toolkit writes one) is never replaced
    mkdir -p "$dir/theirs.d"
    printf 'version = 2\n# nvidia-ctk\n' >"$dir/theirs.d/99-nvidia.toml"
    capture cfg containerd --config "$dir/config.toml" --drop-in-dir "$dir/theirs.d"
    assert_rc 1 "someone else's 99-nvidia.toml: rc 1"
    assert_contains "$ERR" "not written by nvidia-runtime" "…says whose it is not"
    assert_eq $'version = 2\n# nvidia-ctk' "$(cat "$dir/theirs.d/99-nvidia.toml")" "…and leaves it"
    printf 'version = 2\nimports = ["%s"]\n' "$dir/theirs.d/99-nvidia.toml" >"$dir/theirs.toml"
    before=$(sha "$dir/theirs.toml")
    capture cfg containerd --config "$dir/theirs.toml" --drop-in-dir "$dir/theirs.d" --remove
    assert_rc 0 "--remove with someone else's 99-nvidia.toml: rc 0"
    assert_eq "$before" "$(sha "$dir/theirs.toml")" "…keeps its import (it is what loads that file)"
    assert_true "…and the file" test -f "$dir/theirs.d/99-nvidia.toml"
}

# --- CRI-O (not installed: the drop-in is checked by parsing) ------------------------------------

test_crio() {
    local dir=$TEST_TMP/crio before
    mkdir -p "$dir/crio.conf.d"
    printf '# all defaults\n[crio]\n' >"$dir/crio.conf"
    cat >"$dir/crio.conf.d/10-crio.conf" <<'EOF'
[crio.runtime]
default_runtime = "crun"

[crio.runtime.runtimes.crun]
runtime_path = "/usr/libexec/crio/crun"
runtime_root = "/run/crun"
monitor_path = "/usr/libexec/crio/conmon"
allowed_annotations = ["io.containers.trace-syscall"]
EOF
    before=$(sha "$dir/crio.conf.d/10-crio.conf")$(sha "$dir/crio.conf")
    capture cfg crio --config "$dir/crio.conf" --drop-in-dir "$dir/crio.conf.d" --set-as-default
    assert_rc 0 "configure crio --set-as-default: rc 0"
    local f=$dir/crio.conf.d/99-nvidia.toml nv="c['crio']['runtime']['runtimes']['nvidia']"
    assert_eq "$REAL" "$(py_toml "$f" "$nv['runtime_path']")" "CRI-O drop-in: runtime_path is the binary"
    assert_eq oci "$(py_toml "$f" "$nv['runtime_type']")" "…runtime_type oci"
    assert_eq /run/nvidia-runtime "$(py_toml "$f" "$nv['runtime_root']")" "…its own state root, not crun's"
    assert_eq /usr/libexec/crio/conmon "$(py_toml "$f" "$nv['monitor_path']")" "…conmon as the default runtime has it"
    assert_eq '["io.containers.trace-syscall"]' "$(py_toml "$f" "$nv['allowed_annotations']")" "…and its allowed annotations"
    assert_eq nvidia "$(py_toml "$f" "c['crio']['runtime']['default_runtime']")" "…default_runtime nvidia"
    assert_eq "$before" "$(sha "$dir/crio.conf.d/10-crio.conf")$(sha "$dir/crio.conf")" "the other files are untouched"
    capture cfg crio --config "$dir/crio.conf" --drop-in-dir "$dir/crio.conf.d" --set-as-default
    assert_contains "$ERR" "nothing to change" "a second run: nothing to change"
    capture cfg crio --config "$dir/crio.conf" --drop-in-dir "$dir/crio.conf.d" --remove
    assert_rc 0 "--remove: rc 0"
    assert_eq "10-crio.conf" "$(ls -A "$dir/crio.conf.d")" "…deletes the drop-in only (no backup for CRI-O to read)"
}

run_tests test_docker_files test_docker_malformed test_docker_foreign_hook test_docker_relative_hook_link_is_kept

DOCKERD_TESTS=(test_dockerd_runtime_flag test_dockerd_default_runtime)
if [[ -z $E2E_FILTER ]] || printf '%s\n' "${DOCKERD_TESTS[@]}" | grep -qE -- "$E2E_FILTER"; then
    mkdir -p "$(dirname "$DCFG")"
    echo '{"log-level": "warn"}' >"$DCFG"
    cfg docker --config "$DCFG" --hook-dir "$HOOKBIN" >/dev/null 2>&1 || fail "configure docker for dockerd failed"
    start_dockerd --name cfg-docker --config "$DCFG" --path-prepend "$HOOKBIN"
    import_busybox_image bb
    run_tests test_dockerd_runtime_flag
    stop_dockerd "$D"
    cfg docker --config "$DCFG" --hook-dir "$HOOKBIN" --set-as-default --cdi >/dev/null 2>&1 || fail "configure docker --set-as-default failed"
    start_dockerd --name cfg-docker-default --config "$DCFG" --path-prepend "$HOOKBIN"
    import_busybox_image bb
    run_tests test_dockerd_default_runtime
    stop_dockerd "$D"
fi

run_tests test_containerd_files
if [[ -f $C_DIR/conf.d/99-nvidia.toml ]]; then
    start_containerd cfg-containerd "$C_DIR/config.toml"
    run_tests test_containerd_running test_containerd_cri_pod
    stop_containerd "$C"
fi
run_tests test_containerd_remove test_containerd_drop_in_beside_its_config test_containerd_v3_and_malformed test_crio
e2e_finish
