#!/usr/bin/env bash
# GPU validation on a real NVIDIA host (the H100 lent by the `device` tool; see docs/gpu-validation.md).
#
# Builds an image rootfs with NO NVIDIA files (static busybox + the host's glibc + a CUDA program
# compiled here with `nvcc -cudart static`), then runs it through `nvidia-runtime run` with
# different requests and checks what the process inside sees:
#   - nvidia-smi -L inside equals the host's; a CUDA kernel returns the right answer;
#     ldconfig -p lists libcuda.so.1; the same with a read-only rootfs and by UUID;
#   - NVIDIA_VISIBLE_DEVICES=none / void / unset, and a bad UUID, behave as documented;
#   - a GPU the container was not given cannot be opened even after mknod (cgroup v2 rules);
#   - each GPU alone, by index and by UUID (any number of GPUs, one included): nvidia-smi -L
#     inside lists exactly that GPU; after it ran (NVML makes the nodes of the GPUs it sees in
#     /proc/driver/nvidia) /dev has exactly that GPU's node; /proc/driver/nvidia/gpus shows only
#     it and params says ModifyDeviceFiles: 0; a CUDA program runs on it and sees only it; every
#     other GPU, mknod'ed, cannot be opened;
#   - CDI: a spec generated from the real driver lists each GPU; a container named by it (and by
#     runtime.nvidia.com/gpu) sees exactly its GPU and runs CUDA (plain runc running the spec's
#     hooks: tests/gpu/cdi.sh);
#   - `nvidia-runtime doctor` finds no error on the host.
# Bundles get Docker's default device rules ("mknod any device"; CAP_MKNOD where asked), so a
# device node the container should not have can be made, as in a Docker container.
#
# usage: tests/gpu/run.sh RUNTIME BUSYBOX OUTDIR     (as root)
# Prints "N passed, M failed" last; every case's output is in OUTDIR/gpu-validation.log.
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

say "== building the CUDA programs"
cp "$HERE/vecadd.cu" "$W/"
# whichgpu: the UUID of the GPU CUDA runs on (device 0) and how many it sees.
cat >"$W/whichgpu.cu" <<'EOF'
#include <cstdio>
#include <cuda_runtime.h>
int main() {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) { printf("whichgpu: no device\n"); return 1; }
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, 0) != cudaSuccess) { printf("whichgpu: no properties\n"); return 1; }
    const unsigned char *u = (const unsigned char *)p.uuid.bytes;
    printf("whichgpu count=%d uuid=GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x\n", n,
           u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
    return 0;
}
EOF
# dlopen NAME...: what a program that dlopens a library by a development name gets.
cat >"$W/dlopen.cu" <<'EOF'
#include <dlfcn.h>
#include <stdio.h>
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        void *h = dlopen(argv[i], RTLD_NOW);
        printf("dlopen %s: %s\n", argv[i], h ? "ok" : dlerror());
    }
    return 0;
}
EOF
for prog in vecadd whichgpu dlopen; do
    if ! nvcc -O2 -cudart static -o "$W/$prog" "$W/$prog.cu" >>"$LOG" 2>&1; then
        fail "nvcc build of $prog"
        say "$PASSED passed, $FAILED failed"
        exit 1
    fi
done

# The image: busybox, the host's glibc (only what ldd lists for our program and for nvidia-smi,
# minus anything NVIDIA), ldconfig, the CUDA program. No driver file, no ld.so.cache.
ROOTFS=$W/rootfs
mkdir -p "$ROOTFS"/{bin,sbin,usr/bin,lib64,lib/x86_64-linux-gnu,proc,dev,sys,tmp,etc,run}
cp "$BUSYBOX" "$ROOTFS/bin/busybox"
for tool in sh ls cat grep mknod head echo id env readlink wc sort sed; do
    ln -sf busybox "$ROOTFS/bin/$tool"
done
cp "$W/vecadd" "$W/whichgpu" "$W/dlopen" "$ROOTFS/usr/bin/"
for bin in "$W/vecadd" "$W/whichgpu" "$W/dlopen" "$(command -v nvidia-smi)"; do
    ldd "$bin" | awk '/=>/ {print $3} /^\s*\/lib/ {print $1}' | while read -r lib; do
        case "$lib" in */nvidia*|*libnvidia*|*libcuda*|"") continue ;; esac
        cp -L "$lib" "$ROOTFS/lib/x86_64-linux-gnu/" 2>/dev/null || true
    done
done
cp -L /lib64/ld-linux-x86-64.so.2 "$ROOTFS/lib64/"
if [ -x /sbin/ldconfig.real ]; then cp /sbin/ldconfig.real "$ROOTFS/sbin/ldconfig"; else cp -L /sbin/ldconfig "$ROOTFS/sbin/ldconfig"; fi
# as Debian's images have it, so that the container's ldconfig reads ld.so.conf.d
mkdir -p "$ROOTFS/etc/ld.so.conf.d"
echo 'include /etc/ld.so.conf.d/*.conf' >"$ROOTFS/etc/ld.so.conf"
printf '/usr/local/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n' >"$ROOTFS/etc/ld.so.conf.d/x86_64-linux-gnu.conf"
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
        # Docker's defaults: nothing may be opened but what is given, any device may be mknod'ed
        "resources": {"devices": [{"allow": False, "access": "rwm"},
                                  {"allow": True, "type": "c", "access": "m"},
                                  {"allow": True, "type": "b", "access": "m"}]},
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

say "== ldconfig inside a GPU container; the host's development links"
# (link name, library file) of every link the host's driver dir has to a library
LIBDIR=$(dirname "$(ldconfig -p | sed -n 's/.*libcuda.so.1 (libc6,x86-64) => //p' | head -n1)")
PAIRS=$(for l in "$LIBDIR"/*.so*; do [ -L "$l" ] && [ -f "$l" ] && echo "$(basename "$l")=$(basename "$(readlink -f "$l")")"; done | tr '\n' ' ')
say "host driver dir $LIBDIR: $(echo $PAIRS | wc -w) links"
run_case ldconfig '["NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DRIVER_CAPABILITIES=all"]' 0 "" \
    "ldconfig; echo \"ldconfig rc=\$?\"; ldconfig -p | grep -E 'libcuda.so.1 |libnvidia-ml.so.1 '; vecadd; dlopen libnvidia-ml.so libcuda.so; for p in $PAIRS; do l=\${p%%=*}; f=\${p#*=}; [ -e /usr/lib/x86_64-linux-gnu/\$f ] && { [ -e /usr/lib/x86_64-linux-gnu/\$l ] || echo \"missing link \$l -> \$f\"; }; done; echo links-checked"
echo "$OUTPUT" | grep -q '^ldconfig rc=0$' && pass "ldconfig inside a GPU container succeeds" || fail "ldconfig inside: $(echo "$OUTPUT" | head -n3 | tr '\n' ' ')"
echo "$OUTPUT" | grep -q 'libcuda.so.1 (libc6,x86-64)' && echo "$OUTPUT" | grep -q 'libnvidia-ml.so.1 (libc6,x86-64)' \
    && pass "after the container's ldconfig, ldconfig -p still lists libcuda.so.1 and libnvidia-ml.so.1" || fail "cache after ldconfig"
echo "$OUTPUT" | grep -q '^vecadd OK' && pass "CUDA runs after the container's ldconfig" || fail "CUDA after ldconfig"
echo "$OUTPUT" | grep -q '^dlopen libnvidia-ml.so: ok' && echo "$OUTPUT" | grep -q '^dlopen libcuda.so: ok' \
    && pass "dlopen of the development names libnvidia-ml.so and libcuda.so works" || fail "dlopen: $(echo "$OUTPUT" | grep '^dlopen' | tr '\n' ' ')"
echo "$OUTPUT" | grep -q '^links-checked' && ! echo "$OUTPUT" | grep -q '^missing link' \
    && pass "every host link to an injected library exists in the container" || fail "links: $(echo "$OUTPUT" | grep '^missing link' | head -n5 | tr '\n' ' ')"

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

say "== each GPU alone, by index and by UUID"
# index, UUID, minor and /proc directory of every GPU, in nvidia-smi's order
IDS=() UUIDS=() MINORS=() BUSES=()
while IFS=, read -r idx uuid bus; do
    bus=$(echo "$bus" | tr 'A-F' 'a-f')
    bus=${bus: -12}     # 00000000:18:00.0 (nvidia-smi) -> 0000:18:00.0 (/proc)
    minor=$(sed -n 's/^Device Minor:[[:space:]]*//p' "/proc/driver/nvidia/gpus/$bus/information")
    IDS+=("$idx") UUIDS+=("$uuid") MINORS+=("$minor") BUSES+=("$bus")
done < <(nvidia-smi --query-gpu=index,uuid,pci.bus_id --format=csv,noheader | tr -d ' ')
say "GPUs: ${#IDS[@]}; index/UUID/minor/bus: $(for k in "${!IDS[@]}"; do printf '%s/%s/%s/%s ' "${IDS[k]}" "${UUIDS[k]}" "${MINORS[k]}" "${BUSES[k]}"; done)"
[ ${#IDS[@]} -ge 1 ] && pass "nvidia-smi lists ${#IDS[@]} GPU(s), each with its minor" || fail "no GPU listed by nvidia-smi"

# section NAME : the lines of $OUTPUT between "--NAME" and the next "--…" line
section() { echo "$OUTPUT" | sed -n "/^--$1\$/,/^--/p" | sed '1d;/^--/d'; }
for k in "${!IDS[@]}"; do
    others=""
    for j in "${!IDS[@]}"; do [ "$j" != "$k" ] && others="$others ${MINORS[j]}"; done
    for form in index uuid; do
        id=${IDS[k]}
        [ $form = uuid ] && id=${UUIDS[k]}
        label="GPU ${IDS[k]} by $form ($id)"
        # nvidia-smi runs first: it is what would make the nodes of GPUs /proc shows
        run_case "gpu${IDS[k]}-$form" "[\"NVIDIA_VISIBLE_DEVICES=$id\", \"NVIDIA_DRIVER_CAPABILITIES=compute,utility\"]" 0 "CAP_MKNOD" \
            "echo --smi; nvidia-smi -L 2>&1; echo --nodes; ls /dev/nvidia[0-9]* 2>&1; echo --proc; ls /proc/driver/nvidia/gpus 2>&1; grep ModifyDeviceFiles /proc/driver/nvidia/params 2>&1; echo --cuda; vecadd 2>&1; whichgpu 2>&1; echo --others; for m in $others; do mknod /dev/other\$m c 195 \$m 2>&1 && head -c0 /dev/other\$m 2>&1 && echo \"open \$m: opened\"; done; echo --end"
        smi=$(section smi | grep '^GPU ')
        [ "$(echo "$smi" | grep -c .)" = 1 ] && echo "$smi" | grep -q "${UUIDS[k]}" \
            && pass "$label: nvidia-smi -L lists exactly that GPU" || fail "$label: nvidia-smi -L: $smi"
        nodes=$(section nodes)
        [ "$nodes" = "/dev/nvidia${MINORS[k]}" ] \
            && pass "$label: /dev has exactly its node /dev/nvidia${MINORS[k]}, even after nvidia-smi" || fail "$label: /dev has: $(echo $nodes)"
        [ "$(section proc | head -n1)" = "${BUSES[k]}" ] && [ "$(section proc | wc -l)" = 2 ] \
            && section proc | grep -q '^ModifyDeviceFiles: 0$' \
            && pass "$label: /proc/driver/nvidia/gpus shows only its bus id; ModifyDeviceFiles: 0" || fail "$label: /proc/driver/nvidia: $(section proc | tr '\n' ' ')"
        section cuda | grep -q '^vecadd OK' && section cuda | grep -q "^whichgpu count=1 uuid=${UUIDS[k]}\$" \
            && pass "$label: CUDA runs on it and sees only it" || fail "$label: CUDA: $(section cuda | tr '\n' ' ')"
        if [ -z "$others" ]; then
            say "     $label: no other GPU on this host to try"
        elif [ "$(section others | grep -c 'Operation not permitted')" = "$(echo $others | wc -w)" ] && ! section others | grep -q opened; then
            pass "$label: every other GPU (minor$others), mknod'ed, cannot be opened"
        else
            fail "$label: other GPUs: $(section others | tr '\n' ' ')"
        fi
        [ $RC -eq 0 ] && pass "$label: exit code 0" || fail "$label: exit code $RC"
    done
done

say "== CDI: a spec generated from this host's driver"
CDI_DIR=$W/cdi
mkdir -p "$CDI_DIR"
printf '[nvidia-container-runtime.modes.cdi]\nspec-dirs = ["%s"]\n' "$CDI_DIR" >"$W/cdi-config.toml"
if "$RUNTIME" cdi generate --output "$CDI_DIR/nvidia.json" --device-name-strategy index,uuid >>"$LOG" 2>&1; then
    pass "cdi generate on the real driver"
else
    fail "cdi generate on the real driver"
fi
cp "$CDI_DIR/nvidia.json" "$OUTDIR/cdi-spec.json" 2>/dev/null
LISTED=$("$RUNTIME" cdi list --spec-dir "$CDI_DIR" 2>>"$LOG")
echo "$LISTED" >>"$LOG"
echo "$LISTED" | grep -q "nvidia.com/gpu=$GPU0_UUID" && echo "$LISTED" | grep -q "nvidia.com/gpu=all" \
    && pass "cdi list shows nvidia.com/gpu=<uuid> and =all" || fail "cdi list: $LISTED"
CDI_CASE='echo --smi; nvidia-smi -L 2>&1; echo --cuda; vecadd 2>&1; whichgpu 2>&1; echo --ld; ldconfig -p | grep -c "libcuda.so.1 "; echo --params; grep ModifyDeviceFiles /proc/driver/nvidia/params 2>&1; echo --end'
# cdi_checks LABEL UUID: what a container given exactly that GPU must see
cdi_checks() {
    local label=$1 uuid=$2
    [ "$(section smi | grep -c '^GPU ')" = 1 ] && section smi | grep -q "$uuid" \
        && pass "$label: nvidia-smi -L lists exactly that GPU" || fail "$label: nvidia-smi: $(section smi | tr '\n' ' ')"
    section cuda | grep -q '^vecadd OK' && section cuda | grep -q "uuid=$uuid" \
        && pass "$label: CUDA runs on it" || fail "$label: CUDA: $(section cuda | tr '\n' ' ')"
    [ "$(section ld)" -ge 1 ] 2>/dev/null && pass "$label: ldconfig -p lists libcuda.so.1" || fail "$label: ldconfig -p: $(section ld)"
    section params | grep -q '^ModifyDeviceFiles: 0$' && pass "$label: ModifyDeviceFiles: 0" || fail "$label: params: $(section params)"
    [ $RC -eq 0 ] && pass "$label: exit code 0" || fail "$label: exit code $RC"
}
export NVIDIA_CTK_CONFIG_FILE_PATH=$W/cdi-config.toml
run_case cdi-name "[\"NVIDIA_VISIBLE_DEVICES=nvidia.com/gpu=$GPU0_UUID\"]" 0 "" "$CDI_CASE"
cdi_checks "nvidia.com/gpu=<uuid> from the generated spec" "$GPU0_UUID"
run_case cdi-runtime-kind '["NVIDIA_VISIBLE_DEVICES=runtime.nvidia.com/gpu=0", "NVIDIA_DRIVER_CAPABILITIES=compute,utility"]' 0 "" "$CDI_CASE"
cdi_checks "runtime.nvidia.com/gpu=0 (this host's GPU, no spec)" "$(nvidia-smi --query-gpu=uuid --format=csv,noheader -i 0)"
unset NVIDIA_CTK_CONFIG_FILE_PATH

# Plain runc through the spec's hooks: tests/gpu/cdi.sh.

say "== doctor on this host"
"$RUNTIME" doctor --json >"$OUTDIR/doctor.json" 2>>"$LOG"
DRC=$?
"$RUNTIME" doctor >>"$LOG" 2>&1
[ $DRC -eq 0 ] && pass "doctor finds no error on this host" \
    || fail "doctor exit $DRC: $(python3 -c 'import json,sys; print([f["id"] for f in json.load(open(sys.argv[1]))["findings"] if f["severity"]=="error"])' "$OUTDIR/doctor.json")"

say "== state dir after all runs: $(ls "$STATE" 2>/dev/null | wc -l) entries"
say "$PASSED passed, $FAILED failed"
rm -rf "$W"
[ $FAILED -eq 0 ]
