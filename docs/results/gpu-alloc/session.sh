#!/bin/bash
# A GPU-machine session for the static build's allocator and the container init's changes:
# the GPU validation (tests/gpu/run.sh, cdi.sh), injection timelines, then hack/bench runs in
# a row, with the kernel's dirty and writeback memory before and after each. The rootfs
# trees go on a journaled ext4 of the session's own (a loop device; the host's root disk is an
# ext4 without a journal, where every new inode skips those deleted in the last minutes);
# "disk" runs put them on the root disk as before.
#   target/speed-probe/: nvidia-runtime-new (the build measured), more builds as
#   nvidia-runtime-NAME (a series each), Debian's crun, runc, busybox, maxrss, lib/ (their
#   libraries the GPU host may lack).
# usage (repository root, as root): bash docs/results/gpu-alloc/session.sh OUTDIR
# environment: N (samples per series, 30), RUNS (the bench runs, in order, each "journal",
#   "disk" or "copy" (on the journaled ext4, each rootfs a full copy); default
#   "journal journal disk")
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
    # whether the root disk's ext4 has a journal (jbd2 lists the devices that have one)
    cat /proc/fs/ext4/*/options 2>&1 | tr '\n' ' '; echo; ls /proc/fs/jbd2/ 2>&1
    for b in "$P"/nvidia-runtime-*; do echo "$b: $("$b" --version | sed -n 2p)"; done
} >"$R/host.txt" 2>&1
# the build's GPU validation first
timeout 150 bash tests/gpu/run.sh "$NEW" "$P/busybox" "$R/gpu" >"$R/gpu-validation.txt" 2>&1
timeout 100 bash tests/gpu/cdi.sh "$NEW" "$P/runc" "$P/busybox" "$R/cdi" >"$R/gpu-cdi.txt" 2>&1
pack "validation: $(tail -1 "$R/gpu-validation.txt"); cdi: $(tail -1 "$R/gpu-cdi.txt")"
for i in 1 2; do
    python3 hack/timeline --runtime "$NEW" --busybox "$P/busybox" >"$R/timeline-gpu-$i.txt" 2>&1
    python3 hack/timeline --runtime "$NEW" --busybox "$P/busybox" --plain >"$R/timeline-plain-$i.txt" 2>&1
done
pack timelines
# the journaled ext4 for the rootfs trees (a tmpfs where a loop device cannot be had)
J=/tmp/session-layers
mkdir -p "$J"
if truncate -s 8G /tmp/session-layers.img && mkfs.ext4 -q -F /tmp/session-layers.img &&
    mount -o loop /tmp/session-layers.img "$J"; then
    echo "journaled ext4 on a loop device: $(findmnt -no SOURCE,FSTYPE,OPTIONS "$J")" >>"$R/host.txt"
else
    mount -t tmpfs tmpfs "$J"; echo "no loop device: a tmpfs for the rootfs trees" >>"$R/host.txt"
fi
COMPARE=()
for b in "$P"/nvidia-runtime-*; do
    [[ $b == "$NEW" ]] || COMPARE+=(--compare "${b##*/nvidia-runtime-}=$b")
done
B=(python3 hack/bench --runtime "$NEW" "${COMPARE[@]}" --crun "$P/crun" --runc "$P/runc"
   --busybox "$P/busybox" --real-driver -n "${N:-30}")
i=0
for kind in ${RUNS:-journal journal disk}; do
    i=$((i + 1))
    case $kind in
        journal) extra=(--work-dir "$J") ;;
        copy) extra=(--work-dir "$J" --copy-rootfs) ;;
        *) extra=() ;;
    esac
    dirty "before bench $i ($kind)" >>"$R/dirty.txt"
    timeout 200 "${B[@]}" "${extra[@]}" --json "$R/bench-$i-$kind.json" >"$R/bench-$i-$kind.txt" 2>&1
    dirty "after bench $i ($kind)" >>"$R/dirty.txt"
    pack "bench $i ($kind): $(grep -E '^\| nvidia-runtime-gpu-lifecycle \|' "$R/bench-$i-$kind.txt" | cut -d'|' -f4,8)"
done
python3 hack/timeline --runtime "$NEW" --busybox "$P/busybox" >"$R/timeline-gpu-after.txt" 2>&1
# each process's syscalls and the slowest of them, for one GPU container
timeout 60 python3 hack/profile-start --strace "$P/strace" --busybox "$P/busybox" --repeat 3 --top 25 --gpu \
    new="$NEW" >"$R/profile-gpu.txt" 2>&1
umount "$J"; rm -f /tmp/session-layers.img
pack done
