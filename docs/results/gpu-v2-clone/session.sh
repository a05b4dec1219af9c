#!/bin/bash
# One GPU-machine session (cgroup v2): validation of a build that clones the container's first
# process into its cgroup, and the start-speed figures next to crun and runc.
#   target/speed-probe/: nvidia-runtime-base (without the change), nvidia-runtime-new (with it),
#   optionally more builds as nvidia-runtime-NAME (a series each, named NAME),
#   Debian's crun, runc, busybox (static), strace, maxrss (hack/maxrss.c), lib/ (their libraries
#   the GPU host may lack: libyajl, libseccomp, ...).
# usage (repository root, as root): bash docs/results/gpu-v2-clone/session.sh OUTDIR
# environment: N (samples, 30), BENCH2=true (a second bench run), BENCH_DISK=true (one with
#   everything on disk, hack/bench --all-on-disk), CHECK=false, CDI=false, E2E=false, PROFILE=false,
#   TIMELINE=false, SEQUENTIAL=false (skip those),
#   E2E_FILES (the e2e files to run; default protect cleanup direct: limits and gpu need the
#   CI-kind VM, capsh from a package mirror and a simulated driver's device numbers)
# Each step is bounded; OUTDIR/r.tgz is rewritten after each, so a cut-off run keeps what it did.
set -u
OUTDIR=$(readlink -f "${1:?output dir}")
P=$PWD/target/speed-probe
R=/tmp/session-r
rm -rf "$R"; mkdir -p "$R" "$OUTDIR"
NEW=$P/nvidia-runtime-new BASE=$P/nvidia-runtime-base
chmod +x "$P"/* 2>/dev/null
# libraries crun/runc/strace need and the host lacks; the host's own ones win
mkdir -p /tmp/xlib
for l in "$P"/lib/*; do
    n=$(basename "$l")
    ldconfig -p | grep -q "	$n " || cp "$l" /tmp/xlib/
done
export LD_LIBRARY_PATH=/tmp/xlib MAXRSS=$P/maxrss
pack() { tar czf "$OUTDIR/r.tgz" -C /tmp session-r; echo "[$(date -u +%T)] $1"; }
step() { # step NAME SECONDS CMD... : output in $R/NAME.txt
    local name=$1 secs=$2; shift 2
    timeout -k 5 "$secs" "$@" >"$R/$name.txt" 2>&1
    echo "rc=$?" >>"$R/$name.txt"
    pack "$name: $(tail -2 "$R/$name.txt" | head -1 | cut -c1-150)"
}
{
    date -u; uname -a; nproc; nvidia-smi -L; grep cgroup /proc/mounts; ls /tmp/xlib
    findmnt -T /tmp; findmnt -T /run; ldd --version | head -1
    "$P/crun" --version | head -1; "$P/runc" --version | head -1; "$NEW" --version; "$BASE" --version
    ls -l "$NEW" "$BASE" "$P/runc" "$P/crun"; command -v gcc python3
} >"$R/host.txt" 2>&1
pack host

# one start of each binary (spawn to exit), /bin/true as the floor
EXEC=(/bin/true "$P/crun --version" "$P/runc --version")
for b in "$P"/nvidia-runtime-*; do EXEC+=("$b --version"); done
step exec-cost 60 python3 hack/exec-cost -n 200 "${EXEC[@]}"

${CHECK:-true} && step check-v2-new 30 bash docs/results/local-speed/check-v2.sh "$NEW" "$P/busybox"
${CHECK:-true} && step check-v2-base 30 bash docs/results/local-speed/check-v2.sh "$BASE" "$P/busybox"
step gpu-validation 180 bash tests/gpu/run.sh "$NEW" "$P/busybox" "$R/gpu"
# every other build there is a series of its own: nvidia-runtime-NAME -> NAME
COMPARE=()
for b in "$P"/nvidia-runtime-*; do
    [[ $b == "$NEW" ]] || COMPARE+=(--compare "${b##*/nvidia-runtime-}=$b")
done
B=(python3 hack/bench --runtime "$NEW" "${COMPARE[@]}" --crun "$P/crun" --runc "$P/runc"
   --busybox "$P/busybox" --real-driver)
step bench-1 200 "${B[@]}" -n "${N:-30}" --json "$R/bench-1.json"
${BENCH2:-false} && step bench-2 200 "${B[@]}" -n "${N:-30}" --json "$R/bench-2.json"
${BENCH_DISK:-false} && step bench-disk 200 "${B[@]}" -n "${N:-30}" --all-on-disk --json "$R/bench-disk.json"
${CDI:-true} && step gpu-cdi 120 bash tests/gpu/cdi.sh "$NEW" "$P/runc" "$P/busybox" "$R/cdi"
BB=
[[ -e /bin/busybox ]] || { cp "$P/busybox" /bin/busybox; BB=1; }
${E2E:-true} && step e2e-new 240 env RUNTIME="$NEW" E2E_FILE_TIMEOUT=120 bash tests/run-e2e.sh ${E2E_FILES:-protect cleanup direct}
${PROFILE:-true} && step profile-plain 60 python3 hack/profile-start --strace "$P/strace" --busybox "$P/busybox" --repeat 3 \
    crun="$P/crun" runc="$P/runc" base="$BASE" new="$NEW"
${PROFILE:-true} && step profile-gpu 60 python3 hack/profile-start --strace "$P/strace" --busybox "$P/busybox" --repeat 3 --gpu \
    base="$BASE" new="$NEW"
${TIMELINE:-true} && step timeline-new-plain 20 python3 hack/timeline --runtime "$NEW" --busybox "$P/busybox" --plain
${TIMELINE:-true} && step timeline-new-gpu 20 python3 hack/timeline --runtime "$NEW" --busybox "$P/busybox"
${SEQUENTIAL:-true} && step sequential-gpu 90 python3 hack/bench-sequential -n 500 --runtime "$NEW" --busybox "$P/busybox" \
    --json "$R/sequential-gpu.json"
[[ -n $BB ]] && rm -f /bin/busybox
pack done
