#!/bin/bash
# check-v2.sh RUNTIME [BUSYBOX]: a created container's cgroup on cgroup v2: the init is in it (and nothing else
# of ours), limits applied, a device not allowed cannot be opened even after mknod.
RT=$1; BB=${2:-$(dirname $0)/busybox}; W=$(mktemp -d); S=$W/state
mkdir -p $W/b/rootfs/{bin,proc,dev,sys,tmp}; cp $BB $W/b/rootfs/bin/; for t in sh mknod cat echo sleep head; do ln -s busybox $W/b/rootfs/bin/$t; done
python3 - $W/b/config.json <<'PY'
import json, sys
caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_MKNOD"]
c = {"ociVersion": "1.0.2", "process": {"terminal": False, "user": {"uid": 0, "gid": 0}, "cwd": "/",
  "args": ["sh", "-c", "mknod /tmp/mem c 1 1; head -c1 /tmp/mem >/dev/null 2>/tmp/err; echo mem-read-rc=$?; cat /tmp/err; head -c1 /dev/null; echo null-rc=$?; cat /proc/self/cgroup; sleep 1000"],
  "env": ["PATH=/bin"], "capabilities": {k: caps for k in ["bounding", "effective", "permitted"]}},
  "root": {"path": "rootfs"}, "hostname": "chk",
  "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
             {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]}],
  "linux": {"cgroupsPath": "/nvrt-check/c1",
    "resources": {"devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}],
                  "memory": {"limit": 67108864}, "pids": {"limit": 42}},
    "devices": [{"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 438}],
    "namespaces": [{"type": t} for t in ["pid", "ipc", "uts", "mount", "network", "cgroup"]]}}
json.dump(c, open(sys.argv[1], "w"))
PY
$RT --root $S create --bundle $W/b --pid-file $W/pid c1 > $W/create.out 2>&1 < /dev/null; echo create-rc=$?
pid=$(cat $W/pid); echo "init cgroup (host view): $(cat /proc/$pid/cgroup)"
echo "procs in cgroup: $(cat /sys/fs/cgroup/nvrt-check/c1/cgroup.procs | tr '\n' ' ') (init $pid)"
echo "memory.max=$(cat /sys/fs/cgroup/nvrt-check/c1/memory.max) pids.max=$(cat /sys/fs/cgroup/nvrt-check/c1/pids.max)"
$RT --root $S start c1 > $W/out 2>&1 < /dev/null; echo start-rc=$?
sleep 0.5; echo "procs after start: $(cat /sys/fs/cgroup/nvrt-check/c1/cgroup.procs | tr '\n' ' ')"; echo "--- container output:"; cat $W/create.out
$RT --root $S delete --force c1; echo delete-rc=$?; ls -d /sys/fs/cgroup/nvrt-check/c1 2>&1; rmdir /sys/fs/cgroup/nvrt-check 2>/dev/null
rm -rf $W
# A cgroup made beforehand (as a pod's by its manager), whose parent enables no controller:
# the create enables what the limits need, as it does for a cgroup it makes.
W=$(mktemp -d); S=$W/state
mkdir -p $W/b/rootfs/{bin,dev,proc}; cp $BB $W/b/rootfs/bin/; ln -s busybox $W/b/rootfs/bin/sleep
mkdir -p /sys/fs/cgroup/nvrt-pre/c2; echo "pre-made: parent subtree_control='$(cat /sys/fs/cgroup/nvrt-pre/cgroup.subtree_control)'"
python3 - $W/b/config.json <<'PY'
import json, sys
c = {"ociVersion": "1.0.2", "process": {"user": {"uid": 0, "gid": 0}, "cwd": "/", "args": ["sleep", "1000"], "env": ["PATH=/bin"]},
  "root": {"path": "rootfs"}, "linux": {"cgroupsPath": "/nvrt-pre/c2", "resources": {"memory": {"limit": 33554432}, "pids": {"limit": 17}},
  "namespaces": [{"type": t} for t in ["pid", "ipc", "uts", "mount"]]}}
json.dump(c, open(sys.argv[1], "w"))
PY
$RT --root $S create --bundle $W/b --pid-file $W/pid c2 > $W/create.out 2>&1 < /dev/null; echo pre-made-create-rc=$?; cat $W/create.out
echo "pre-made: init $(cat $W/pid) in $(cat /proc/$(cat $W/pid)/cgroup); memory.max=$(cat /sys/fs/cgroup/nvrt-pre/c2/memory.max 2>&1) pids.max=$(cat /sys/fs/cgroup/nvrt-pre/c2/pids.max 2>&1)"
$RT --root $S delete --force c2; echo pre-made-delete-rc=$?; rmdir /sys/fs/cgroup/nvrt-pre/c2 /sys/fs/cgroup/nvrt-pre 2>&1
rm -rf $W
