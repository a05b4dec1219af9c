#!/bin/bash
# A GPU-machine session for the static build's allocator and the bench's rootfs layout:
# injection timelines, then hack/bench runs in a row, new rootfs trees of hard links (the
# default) and of full copies (--copy-rootfs), with the kernel's dirty and writeback memory
# before and after each run.
#   target/speed-probe/: nvidia-runtime-new (the build measured), more builds as
#   nvidia-runtime-NAME (a series each), Debian's crun, runc, busybox, maxrss, lib/ (their
#   libraries the GPU host may lack).
# usage (repository root, as root): bash docs/results/gpu-alloc/session.sh OUTDIR
# environment: N (samples per series, 30), RUNS (the bench runs, in order, each "links" or
#   "copy"; default "links links copy links")
set -u
OUTDIR=$(readlink -f "${1:?output dir}")
P=$PWD/target/speed-probe NEW=$PWD/target/speed-probe/nvidia-runtime-new
R=/tmp/session-r; rm -rf "$R"; mkdir -p "$R"
mkdir -p /tmp/xlib
for l in "$P"/lib/*; do n=$(basename "$l"); ldconfig -p | grep -q "	$n " || cp "$l" /tmp/xlib/; done
export LD_LIBRARY_PATH=/tmp/xlib MAXRSS=$P/maxrss
pack() { tar czf "$OUTDIR/r.tgz" -C /tmp session-r; echo "[$(date -u +%T)] $1"; }
dirty() { echo "== $1: $(grep -E '^(Dirty|Writeback):' /proc/meminfo | tr -s ' ' | tr '\n' ' ')"; }
{
    date -u; uname -r; nproc; nvidia-smi -L; findmnt -T /tmp; "$NEW" --version
    for b in "$P"/nvidia-runtime-*; do echo "$b: $("$b" --version | sed -n 2p)"; done
} >"$R/host.txt" 2>&1
for i in 1 2; do
    python3 hack/timeline --runtime "$NEW" --busybox "$P/busybox" >"$R/timeline-gpu-$i.txt" 2>&1
    python3 hack/timeline --runtime "$NEW" --busybox "$P/busybox" --plain >"$R/timeline-plain-$i.txt" 2>&1
done
pack timelines
COMPARE=()
for b in "$P"/nvidia-runtime-*; do
    [[ $b == "$NEW" ]] || COMPARE+=(--compare "${b##*/nvidia-runtime-}=$b")
done
B=(python3 hack/bench --runtime "$NEW" "${COMPARE[@]}" --crun "$P/crun" --runc "$P/runc"
   --busybox "$P/busybox" --real-driver -n "${N:-30}")
i=0
for kind in ${RUNS:-links links copy links}; do
    i=$((i + 1))
    extra=(); [[ $kind == copy ]] && extra=(--copy-rootfs)
    dirty "before bench $i ($kind)" >>"$R/dirty.txt"
    timeout 200 "${B[@]}" "${extra[@]}" --json "$R/bench-$i-$kind.json" >"$R/bench-$i-$kind.txt" 2>&1
    dirty "after bench $i ($kind)" >>"$R/dirty.txt"
    pack "bench $i ($kind): $(grep -E '^\| nvidia-runtime-gpu-lifecycle \|' "$R/bench-$i-$kind.txt" | cut -d'|' -f4,8)"
done
python3 hack/timeline --runtime "$NEW" --busybox "$P/busybox" >"$R/timeline-gpu-after.txt" 2>&1
# each process's syscalls and the slowest of them, for one GPU container
timeout 60 python3 hack/profile-start --strace "$P/strace" --busybox "$P/busybox" --repeat 3 --top 25 --gpu \
    new="$NEW" >"$R/profile-gpu.txt" 2>&1
pack done
