#!/usr/bin/env bash
# CDI on a real NVIDIA host: a spec from `nvidia-runtime cdi generate`, applied to an OCI bundle
# as an engine applies it (device nodes with their cgroup rules, mounts, env, createContainer
# hooks), run by plain runc (the hooks then run `nvidia-runtime hook …`) and by nvidia-runtime.
# The image has no NVIDIA file (static busybox, the host's glibc for nvidia-smi and a CUDA
# program, ldconfig). Checks, for each runtime, with the spec's device for GPU 0 alone:
# `nvidia-smi -L` lists exactly that GPU, a CUDA kernel runs, `ldconfig -p` lists libcuda.so.1,
# the SONAME link exists, /dev has that GPU's node only (after nvidia-smi ran), and
# /proc/driver/nvidia/params says ModifyDeviceFiles: 0 (the disable-device-node-modification
# hook). A spec generated for another driver is refused by both (with runc, by our hook).
#
# usage: tests/gpu/cdi.sh NVIDIA_RUNTIME RUNC BUSYBOX OUTDIR     (as root)
# Prints "N passed, M failed" last; details in OUTDIR/cdi-validation.log.
set -uo pipefail

RUNTIME=$(readlink -f "${1:?nvidia-runtime binary}")
RUNC=$(readlink -f "${2:?runc binary}")
BUSYBOX=$(readlink -f "${3:?static busybox}")
OUTDIR=$(readlink -f "${4:?output dir}")
HERE=$(cd "$(dirname "$0")" && pwd)
for bin in "$RUNTIME" "$RUNC" "$BUSYBOX"; do
    [ -n "$bin" ] && [ -x "$bin" ] || { echo "cdi.sh: ${1:-} ${2:-} ${3:-}: not all executables (carry them along)" >&2; exit 2; }
done
mkdir -p "$OUTDIR"
LOG=$OUTDIR/cdi-validation.log
: >"$LOG"
W=$(mktemp -d /tmp/cdival.XXXXXX)
PASSED=0
FAILED=0
say() { echo "$*" | tee -a "$LOG"; }
pass() { PASSED=$((PASSED + 1)); say "PASS $*"; }
fail() { FAILED=$((FAILED + 1)); say "FAIL $*"; }
finish() { say "$PASSED passed, $FAILED failed"; exit $((FAILED > 0)); }

say "== host: $(uname -r) $(grep -m1 NVRM /proc/driver/nvidia/version)"
HOST_PARAMS=$(grep ModifyDeviceFiles /proc/driver/nvidia/params)
say "host params: $HOST_PARAMS"
GPU0=$(nvidia-smi -L | head -n1)

say "== cdi generate"
SPEC=$OUTDIR/nvidia.yaml
START=$(date +%s%N)
if "$RUNTIME" cdi generate --output "$SPEC" --device-name-strategy index,uuid >>"$LOG" 2>&1; then
    pass "cdi generate on the real driver ($((($(date +%s%N) - START) / 1000000)) ms)"
else
    fail "cdi generate"; finish
fi
"$RUNTIME" cdi generate --output "$W/nvidia.json" --device-name-strategy index,uuid >>"$LOG" 2>&1
GPU0_NODE=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(next(d for d in s["devices"] if d["name"]=="0")["containerEdits"]["deviceNodes"][0]["path"])' "$W/nvidia.json")
say "GPU 0's node per the spec: $GPU0_NODE"
"$RUNTIME" cdi list --spec-dir "$OUTDIR" >"$W/list" 2>&1
grep -qx 'nvidia.com/gpu=0' "$W/list" && grep -qx 'nvidia.com/gpu=all' "$W/list" \
    && pass "cdi list: $(tr '\n' ' ' <"$W/list")" || fail "cdi list: $(cat "$W/list")"

say "== image"
cp "$HERE/vecadd.cu" "$W/"
nvcc -O2 -cudart static -o "$W/vecadd" "$W/vecadd.cu" >>"$LOG" 2>&1 || { fail "nvcc"; finish; }
ROOTFS=$W/rootfs
mkdir -p "$ROOTFS"/{bin,sbin,usr/bin,lib64,lib/x86_64-linux-gnu,proc,dev,sys,tmp,etc/ld.so.conf.d,run}
cp "$BUSYBOX" "$ROOTFS/bin/busybox"
for tool in sh ls cat grep readlink head; do ln -sf busybox "$ROOTFS/bin/$tool"; done
cp "$W/vecadd" "$ROOTFS/usr/bin/"
for bin in "$W/vecadd" "$(command -v nvidia-smi)"; do
    ldd "$bin" | awk '/=>/ {print $3} /^\s*\/lib/ {print $1}' | while read -r lib; do
        case "$lib" in */nvidia*|*libnvidia*|*libcuda*|"") continue ;; esac
        cp -L "$lib" "$ROOTFS/lib/x86_64-linux-gnu/" 2>/dev/null || true
    done
done
cp -L /lib64/ld-linux-x86-64.so.2 "$ROOTFS/lib64/"
if [ -x /sbin/ldconfig.real ]; then cp /sbin/ldconfig.real "$ROOTFS/sbin/ldconfig"; else cp -L /sbin/ldconfig "$ROOTFS/sbin/ldconfig"; fi
echo 'include /etc/ld.so.conf.d/*.conf' >"$ROOTFS/etc/ld.so.conf"
printf '/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n' >"$ROOTFS/etc/ld.so.conf.d/x86_64-linux-gnu.conf"
say "NVIDIA files in the image: $(find "$ROOTFS" -iname '*nvidia*' -o -iname '*cuda*' | wc -l)"

# bundle DIR DEVICE: a bundle with the spec's common edits and DEVICE's applied, as CDI says.
bundle() {
    mkdir -p "$1"
    cp -a "$ROOTFS" "$1/rootfs"
    python3 - "${SPEC_JSON:-$W/nvidia.json}" "$2" "$1/config.json" <<'EOF'
import json, os, stat, sys
spec_path, device, out = sys.argv[1:]
spec = json.load(open(spec_path))
dev = next(d for d in spec["devices"] if d["name"] == device)
edits = [spec.get("containerEdits", {}), dev["containerEdits"]]
config = {
    "ociVersion": "1.0.2",
    "process": {"user": {"uid": 0, "gid": 0}, "cwd": "/", "noNewPrivileges": True,
                "args": ["sh", "-c", os.environ["SCRIPT"]], "env": ["PATH=/usr/bin:/bin:/sbin"],
                "capabilities": {k: ["CAP_KILL", "CAP_MKNOD"] for k in ["bounding", "effective", "permitted"]}},
    "root": {"path": "rootfs"},
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]},
    ],
    "hooks": {},
    "linux": {"namespaces": [{"type": t} for t in ["pid", "ipc", "uts", "mount", "network"]],
              "devices": [],
              "resources": {"devices": [{"allow": False, "access": "rwm"},
                                        {"allow": True, "type": "c", "access": "m"}]}},
}
for e in edits:
    config["process"]["env"] += e.get("env", [])
    for n in e.get("deviceNodes", []):
        st = os.stat(n.get("hostPath", n["path"]))
        major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
        config["linux"]["devices"].append({"path": n["path"], "type": "c", "major": major, "minor": minor,
                                           "fileMode": stat.S_IMODE(st.st_mode), "uid": 0, "gid": 0})
        config["linux"]["resources"]["devices"].append({"allow": True, "type": "c", "major": major,
                                                        "minor": minor, "access": n.get("permissions", "rwm")})
    for m in e.get("mounts", []):
        config["mounts"].append({"destination": m["containerPath"], "source": m["hostPath"],
                                 "type": m.get("type", "bind"), "options": m.get("options", [])})
    for h in e.get("hooks", []):
        config["hooks"].setdefault(h["hookName"], []).append({k: v for k, v in h.items() if k != "hookName"})
json.dump(config, open(out, "w"), indent=1)
EOF
}

SCRIPT='ls /dev/nvidia*; echo "--"; nvidia-smi -L; echo "--"; nvidia-smi -L >/dev/null; ls /dev/nvidia[0-9]*; vecadd; ldconfig -p | grep "libcuda.so.1 "; readlink /usr/lib/x86_64-linux-gnu/libcuda.so.1; grep ModifyDeviceFiles /proc/driver/nvidia/params'
export SCRIPT
for runtime in runc nvidia-runtime; do
    say "== nvidia.com/gpu=0 with $runtime"
    dir=$W/bundle-$runtime
    bundle "$dir" 0 || { fail "$runtime: bundle"; continue; }
    bin=$RUNC; [ "$runtime" = nvidia-runtime ] && bin=$RUNTIME
    OUTPUT=$(cd "$dir" && timeout 120 "$bin" --root "$W/state-$runtime" run "cdi-$runtime" 2>&1)
    RC=$?
    { echo "---- $runtime rc=$RC"; echo "$OUTPUT"; } >>"$LOG"
    [ $RC -eq 0 ] && pass "$runtime: rc 0" || fail "$runtime: rc $RC: $(echo "$OUTPUT" | tail -n3 | tr '\n' ' ')"
    SMI=$(echo "$OUTPUT" | sed -n '/^--$/,/^--$/p' | grep '^GPU')
    [ "$SMI" = "$GPU0" ] && pass "$runtime: nvidia-smi -L lists exactly GPU 0" || fail "$runtime: nvidia-smi -L: '$SMI' vs '$GPU0'"
    echo "$OUTPUT" | grep -q '^vecadd OK' && pass "$runtime: a CUDA kernel runs" || fail "$runtime: CUDA"
    echo "$OUTPUT" | grep -q 'libcuda.so.1 (libc6,x86-64)' && pass "$runtime: ldconfig -p lists libcuda.so.1" || fail "$runtime: ldconfig -p"
    echo "$OUTPUT" | grep -q '^libcuda.so.[0-9]' && pass "$runtime: the SONAME link" || fail "$runtime: SONAME link"
    NODES=$(echo "$OUTPUT" | grep -E '^/dev/nvidia[0-9]+$' | sort -u | tr '\n' ' ')
    [ "$NODES" = "$GPU0_NODE " ] \
        && pass "$runtime: /dev has only GPU 0's node after nvidia-smi ran ($NODES)" || fail "$runtime: /dev GPU nodes after nvidia-smi: $NODES"
    echo "$OUTPUT" | grep -q '^ModifyDeviceFiles: 0' && pass "$runtime: params say ModifyDeviceFiles: 0 (host: $HOST_PARAMS)" \
        || fail "$runtime: params: $(echo "$OUTPUT" | grep ModifyDeviceFiles)"
done
say "== a spec generated for another driver"
sed 's/NVIDIA_RUNTIME_DRIVER_VERSION=[^"]*/NVIDIA_RUNTIME_DRIVER_VERSION=1.0.0/' "$W/nvidia.json" >"$W/stale.json"
for runtime in runc nvidia-runtime; do
    dir=$W/stale-$runtime
    SPEC_JSON=$W/stale.json bundle "$dir" 0 || { fail "$runtime: bundle"; continue; }
    bin=$RUNC; [ "$runtime" = nvidia-runtime ] && bin=$RUNTIME
    OUTPUT=$(cd "$dir" && timeout 120 "$bin" --root "$W/state-$runtime" run "stale-$runtime" 2>&1)
    RC=$?
    { echo "---- stale $runtime rc=$RC"; echo "$OUTPUT"; } >>"$LOG"
    [ $RC -ne 0 ] && echo "$OUTPUT" | grep -q '1\.0\.0' && echo "$OUTPUT" | grep -q 'cdi refresh' \
        && pass "$runtime: a container from a spec of driver 1.0.0 is refused, naming it and cdi refresh" \
        || fail "$runtime: stale spec: rc $RC: $(echo "$OUTPUT" | tail -n3 | tr '\n' ' ')"
done
"$RUNC" --root "$W/state-runc" list >>"$LOG" 2>&1
rm -rf "$W"
finish
