#!/usr/bin/env bash
# GPU validation on a real NVIDIA host (the H100 lent by the `device` tool; see docs/gpu-validation.md).
#
# Builds an image rootfs with NO NVIDIA files (static busybox + the host's glibc + a CUDA program
# compiled here with `nvcc -cudart static`), then runs it through `nvidia-runtime run` with
# different requests and checks what the process inside sees:
#   - nvidia-smi -L inside equals the host's; a CUDA kernel returns the right answer;
#     ldconfig -p lists libcuda.so.1; the same with a read-only rootfs and by UUID;
#   - NVIDIA_VISIBLE_DEVICES=none / void / unset, and a bad UUID, behave as documented;
#   - a GPU the container was not given cannot be opened even after mknod (cgroup v2 rules).
#
# usage: tests/gpu/run.sh RUNTIME BUSYBOX OUTDIR     (as root)
set -uo pipefail

RUNTIME=$(readlink -f "${1:?runtime binary}")
BUSYBOX=$(readlink -f "${2:?static busybox}")
OUTDIR=$(readlink -f "${3:?output dir}")
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUTDIR"
LOG=$OUTDIR/gpu-validation.log
: >"$LOG"
W=$(mktemp -d /tmp/gpuval.XXXXXX)
STATE=$W/state
PASSED=0
FAILED=0

say() { echo "$*" | tee -a "$LOG"; }
pass() { PASSED=$((PASSED + 1)); say "PASS $*"; }
fail() { FAILED=$((FAILED + 1)); say "FAIL $*"; }

say "== host"
say "$(uname -r) $(grep -m1 'NVRM' /proc/driver/nvidia/version)"
HOST_SMI=$(nvidia-smi -L)
say "host nvidia-smi -L: $HOST_SMI"
GPU0_UUID=$(nvidia-smi --query-gpu=uuid --format=csv,noheader | head -n1)

say "== building the CUDA program"
cp "$HERE/vecadd.cu" "$W/"
if ! nvcc -O2 -cudart static -o "$W/vecadd" "$W/vecadd.cu" >>"$LOG" 2>&1; then
    fail "nvcc build"
    exit 1
fi

# The image: busybox, the host's glibc (only what ldd lists for our program and for nvidia-smi,
# minus anything NVIDIA), ldconfig, the CUDA program. No driver file, no ld.so.cache.
ROOTFS=$W/rootfs
mkdir -p "$ROOTFS"/{bin,sbin,usr/bin,lib64,lib/x86_64-linux-gnu,proc,dev,sys,tmp,etc,run}
cp "$BUSYBOX" "$ROOTFS/bin/busybox"
for tool in sh ls cat grep mknod head echo id env readlink wc sort sed; do
    ln -sf busybox "$ROOTFS/bin/$tool"
done
cp "$W/vecadd" "$ROOTFS/usr/bin/vecadd"
for bin in "$W/vecadd" "$(command -v nvidia-smi)"; do
    ldd "$bin" | awk '/=>/ {print $3} /^\s*\/lib/ {print $1}' | while read -r lib; do
        case "$lib" in */nvidia*|*libnvidia*|*libcuda*|"") continue ;; esac
        cp -L "$lib" "$ROOTFS/lib/x86_64-linux-gnu/" 2>/dev/null || true
    done
done
cp -L /lib64/ld-linux-x86-64.so.2 "$ROOTFS/lib64/"
if [ -x /sbin/ldconfig.real ]; then cp /sbin/ldconfig.real "$ROOTFS/sbin/ldconfig"; else cp -L /sbin/ldconfig "$ROOTFS/sbin/ldconfig"; fi
say "image files: $(find "$ROOTFS" -type f | wc -l); NVIDIA files in image: $(find "$ROOTFS" -iname '*nvidia*' -o -iname '*cuda*' | wc -l)"

# write_bundle DIR ENV_JSON_LIST READONLY EXTRA_CAPS ARGS...
write_bundle() {
    local dir=$1 env=$2 readonly=$3 caps=$4
    shift 4
    mkdir -p "$dir"
    # A fresh copy per case: mount points and links of one case must not leak into the next.
    cp -a "$ROOTFS" "$dir/rootfs"
    python3 - "$dir/config.json" "$env" "$readonly" "$caps" "$@" <<'EOF'
import json, sys
path, env, readonly, caps, args = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3] == "1", sys.argv[4], sys.argv[5:]
base_caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"] + ([c for c in caps.split(",") if c])
config = {
    "ociVersion": "1.0.2",
    "process": {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": args,
                "env": ["PATH=/usr/bin:/bin:/sbin"] + env, "cwd": "/",
                "capabilities": {k: base_caps for k in ["bounding", "effective", "permitted"]},
                "noNewPrivileges": True},
    "root": {"path": "rootfs", "readonly": readonly},
    "hostname": "gpu",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]},
    ],
    "linux": {
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "namespaces": [{"type": t} for t in ["pid", "ipc", "uts", "mount", "network"]],
        "maskedPaths": ["/proc/kcore", "/proc/keys", "/sys/firmware"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
}
json.dump(config, open(path, "w"), indent=1)
EOF
}

N=0
# run_case NAME ENV_JSON READONLY CAPS SCRIPT -> sets OUTPUT and RC
run_case() {
    local name=$1 env=$2 readonly=$3 caps=$4 script=$5
    N=$((N + 1))
    local dir=$W/bundle-$N
    write_bundle "$dir" "$env" "$readonly" "$caps" sh -c "$script"
    OUTPUT=$(cd "$dir" && timeout 120 "$RUNTIME" --root "$STATE" run "gpu-$N" 2>&1)
    RC=$?
    {
        echo "---- case $name (env $env readonly=$readonly caps=$caps) rc=$RC"
        echo "\$ $script"
        echo "$OUTPUT"
    } >>"$LOG"
}

CU='"NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DRIVER_CAPABILITIES=compute,utility"'

say "== all GPUs, compute,utility"
run_case all "[$CU]" 0 "" 'nvidia-smi -L; echo "--"; vecadd; echo "--"; ldconfig -p | grep -E "libcuda.so.1|libnvidia-ml.so.1"; ls -l /usr/lib/x86_64-linux-gnu/libcuda.so*; ls /dev/nvidia*'
INNER_SMI=$(echo "$OUTPUT" | sed -n '1,/^--$/p' | grep '^GPU')
[ "$INNER_SMI" = "$HOST_SMI" ] && pass "nvidia-smi -L inside equals the host's" || fail "nvidia-smi -L inside: '$INNER_SMI' vs host '$HOST_SMI'"
echo "$OUTPUT" | grep -q '^vecadd OK' && pass "CUDA kernel result correct in the container" || fail "CUDA kernel in the container"
echo "$OUTPUT" | grep -q 'libcuda.so.1 (libc6,x86-64)' && pass "ldconfig -p lists libcuda.so.1" || fail "ldconfig -p does not list libcuda.so.1"
echo "$OUTPUT" | grep -q 'libcuda.so -> libcuda.so.1' && pass "libcuda.so dev link exists" || fail "libcuda.so link"
[ $RC -eq 0 ] && pass "exit code 0" || fail "exit code $RC"

say "== by UUID, read-only rootfs"
run_case uuid-ro "[\"NVIDIA_VISIBLE_DEVICES=$GPU0_UUID\"]" 1 "" 'vecadd; ldconfig -p | grep -c libcuda.so.1; touch /x 2>&1'
echo "$OUTPUT" | grep -q '^vecadd OK' && pass "UUID request on a read-only rootfs runs CUDA" || fail "UUID/read-only CUDA"
echo "$OUTPUT" | grep -q 'Read-only file system' && pass "rootfs really read-only" || fail "rootfs was writable"

say "== none"
run_case none '["NVIDIA_VISIBLE_DEVICES=none", "NVIDIA_DRIVER_CAPABILITIES=compute,utility"]' 0 "" 'ls /dev/nvidia*; nvidia-smi -L; echo "smi rc=$?"; vecadd; echo "vecadd rc=$?"'
echo "$OUTPUT" | grep -q '/dev/nvidiactl' && ! echo "$OUTPUT" | grep -q '/dev/nvidia0' && pass "none: control nodes, no GPU node" || fail "none: device nodes"
echo "$OUTPUT" | grep -q 'vecadd rc=[1-9]' && pass "none: CUDA finds no device" || fail "none: CUDA ran"

for variant in void unset; do
    say "== $variant"
    env='["NVIDIA_VISIBLE_DEVICES=void"]'
    [ $variant = unset ] && env='[]'
    run_case $variant "$env" 0 "" 'ls /dev/ | grep -c nvidia; ls /usr/bin/nvidia-smi 2>&1; ldconfig -p | grep -c libcuda'
    [ "$(echo "$OUTPUT" | head -n1)" = 0 ] && echo "$OUTPUT" | grep -q 'No such file' && pass "$variant: nothing injected" || fail "$variant: something injected"
done

say "== bad UUID"
N=$((N + 1))
dir=$W/bundle-$N
write_bundle "$dir" '["NVIDIA_VISIBLE_DEVICES=GPU-00000000-dead-beef-0000-000000000000"]' 0 "" true
before=$(sha256sum "$dir/config.json")
OUTPUT=$(cd "$dir" && "$RUNTIME" --root "$STATE" run "gpu-$N" 2>&1)
RC=$?
echo "---- case bad-uuid rc=$RC"$'\n'"$OUTPUT" >>"$LOG"
[ $RC -ne 0 ] && echo "$OUTPUT" | grep -q 'unknown NVIDIA GPU' && pass "bad UUID refused: $(echo "$OUTPUT" | tail -n1 | cut -c1-160)" || fail "bad UUID"
[ "$before" = "$(sha256sum "$dir/config.json")" ] && [ ! -e "$STATE/gpu-$N" ] && pass "bad UUID left nothing behind" || fail "bad UUID left state"

say "== device cgroup: mknod of a GPU not given"
run_case denied '["NVIDIA_VISIBLE_DEVICES=none"]' 0 "CAP_MKNOD" 'mknod /dev/nv0 c 195 0 && head -c1 /dev/nv0; echo "open rc=$?"'
echo "$OUTPUT" | grep -q 'Operation not permitted' && pass "unrequested GPU denied by cgroup v2 after mknod" || fail "mknod'ed GPU could be opened: $OUTPUT"
run_case allowed-control "[$CU]" 0 "CAP_MKNOD" 'mknod /dev/nv0 c 195 0 && head -c0 /dev/nv0; echo "open rc=$?"'
echo "$OUTPUT" | grep -q 'open rc=0' && pass "control: a requested GPU opens after mknod" || fail "control: requested GPU did not open"

say "== state dir after all runs: $(ls "$STATE" 2>/dev/null | wc -l) entries"
say "SUMMARY passed=$PASSED failed=$FAILED"
rm -rf "$W"
[ $FAILED -eq 0 ]
