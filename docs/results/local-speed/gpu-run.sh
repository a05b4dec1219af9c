#!/bin/bash
# one GPU-machine session: A/B bench, per-process profiles, timelines, cgroup v2 checks
set -u
P=$PWD/target/speed-probe; R=$OUT/r; mkdir -p $R; cd $P/repo
NEW=$P/nvidia-runtime-new; BASE=$P/nvidia-runtime-base
chmod +x $P/nvidia-runtime-cgroup-only $P/inject_bench $P/crun $P/runc $P/busybox $P/strace $P/maxrss $NEW $BASE 2>/dev/null
mkdir -p /tmp/xlib; for l in $P/lib/*; do n=$(basename $l); ldconfig -p | grep -q " $n " || ldconfig -p | grep -q "^	$n " || cp $l /tmp/xlib/; done
export LD_LIBRARY_PATH=/tmp/xlib MAXRSS=$P/maxrss
{ date -u; uname -a; nproc; nvidia-smi -L; ls /tmp/xlib; grep cgroup /proc/mounts; cat /sys/kernel/mm/transparent_hugepage/enabled
  $P/crun --version | head -1; $P/runc --version | head -1; $NEW --version; $BASE --version; ls -l $NEW $BASE $P/runc $P/crun; } > $R/host.txt 2>&1
B="python3 hack/bench --runtime $NEW --compare base=$BASE --compare cgroup-only=$P/nvidia-runtime-cgroup-only --crun $P/crun --runc $P/runc --busybox $P/busybox --real-driver"
${BENCH1:-true} && $B -n ${N:-30} --json $R/bench-1.json > $R/bench-1.txt 2>&1
echo "bench-1 done $(date -u +%T)"; tail -16 $R/bench-1.txt
${PROFILE:-true} && {
python3 hack/profile-start --strace $P/strace --busybox $P/busybox --repeat 3 crun=$P/crun runc=$P/runc base=$BASE new=$NEW > $R/profile-plain.md 2>&1
python3 hack/profile-start --strace $P/strace --busybox $P/busybox --repeat 3 --gpu base=$BASE new=$NEW > $R/profile-gpu.md 2>&1
for r in base new; do bin=$NEW; [ $r = base ] && bin=$BASE
  for i in 1; do python3 hack/timeline --runtime $bin --busybox $P/busybox --plain > $R/timeline-$r-plain-$i.txt 2>&1
  python3 hack/timeline --runtime $bin --busybox $P/busybox > $R/timeline-$r-gpu-$i.txt 2>&1; done; done
echo "profiles done $(date -u +%T)"; }
# cgroup v2 checks of the new build: cgroup membership, limits, device rules, no process left
bash $P/check-v2.sh $NEW > $R/check-v2-new.txt 2>&1; bash $P/check-v2.sh $BASE > $R/check-v2-base.txt 2>&1
tail -12 $R/check-v2-new.txt
# CVE-2019-5736 e2e
BB=; [ -e /bin/busybox ] || { cp $P/busybox /bin/busybox; BB=1; }; RUNTIME=$NEW timeout 120 bash tests/run-e2e.sh protect > $R/e2e-protect.txt 2>&1; tail -3 $R/e2e-protect.txt; [ -n "$BB" ] && rm -f /bin/busybox
${BENCH2:-false} && $B -n ${N:-30} --json $R/bench-2.json > $R/bench-2.txt 2>&1 && tail -16 $R/bench-2.txt
${EXTRA:-true} && {
python3 hack/bench-sequential -n 500 --runtime $NEW --busybox $P/busybox --json $R/sequential-gpu.json > $R/sequential-gpu.txt 2>&1; tail -13 $R/sequential-gpu.txt
[ -x $P/inject_bench ] && INJECT_BENCH=$P/inject_bench timeout 200 bash hack/bench-inject 300 > $R/inject-sim.txt 2>&1; tail -12 $R/inject-sim.txt; }
ls $R | wc -l
