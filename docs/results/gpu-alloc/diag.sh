#!/bin/bash
# Why a GPU container's create was slow on a fresh GPU host: the driver-file witnesses' times
# against the clock, whether the inventory cache is used, then the bench again.
# usage (repository root, as root): bash docs/results/gpu-alloc/diag.sh OUTDIR
set -u
OUTDIR=$(readlink -f "${1:?output dir}")
P=$PWD/target/speed-probe NEW=$PWD/target/speed-probe/nvidia-runtime-new
R=/tmp/diag-r; rm -rf "$R"; mkdir -p "$R"
mkdir -p /tmp/xlib
for l in "$P"/lib/*; do n=$(basename "$l"); ldconfig -p | grep -q "	$n " || cp "$l" /tmp/xlib/; done
export LD_LIBRARY_PATH=/tmp/xlib MAXRSS=$P/maxrss
pack() { tar czf "$OUTDIR/r.tgz" -C /tmp diag-r; echo "[$(date -u +%T)] $1"; }
witnesses() {
    echo "now: $(date +%s.%N)"
    for f in /run/nvidia-runtime-cache/*; do
        [[ -f $f ]] || continue
        python3 - "$f" <<'PY'
import json, sys, time
e = json.load(open(sys.argv[1]))
now = time.time()
for w in e.get("witnesses", []):
    s = w.get("seen") or {}
    print(w.get("path"), {k: v for k, v in s.items() if k in ("mtime", "ctime")}, "now", round(now, 3))
PY
    done
    stat -c '%n mtime=%.9Y ctime=%.9Z' /usr/bin /bin /usr/local/nvidia/bin /usr/local/nvidia/lib64 /etc/ld.so.cache 2>&1
}
{ witnesses; ls -la /run/nvidia-runtime-cache 2>&1; } >"$R/before.txt" 2>&1
for i in 1 2 3; do
    python3 hack/timeline --runtime "$NEW" --busybox "$P/busybox" --all-lines >"$R/timeline-$i.txt" 2>&1
    { echo "== after timeline $i"; witnesses; } >>"$R/before.txt" 2>&1
    sleep 3
done
pack timelines
COMPARE=()
for b in "$P"/nvidia-runtime-*; do
    [[ $b == "$NEW" ]] || COMPARE+=(--compare "${b##*/nvidia-runtime-}=$b")
done
B=(python3 hack/bench --runtime "$NEW" "${COMPARE[@]}" --crun "$P/crun" --runc "$P/runc"
   --busybox "$P/busybox" --real-driver)
for i in 1 2 3; do
    timeout 200 "${B[@]}" -n "${N:-30}" --json "$R/bench-$i.json" >"$R/bench-$i.txt" 2>&1
    { echo "== after bench $i"; witnesses; } >>"$R/before.txt" 2>&1
    pack "bench-$i: $(grep -E 'gpu-lifecycle \|' "$R/bench-$i.txt" | head -1)"
done
python3 hack/timeline --runtime "$NEW" --busybox "$P/busybox" --all-lines >"$R/timeline-after.txt" 2>&1
pack done
