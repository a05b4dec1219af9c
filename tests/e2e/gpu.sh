#!/usr/bin/env bash
# tests/e2e/gpu.sh — GPU injection end to end, against a simulated 8-GPU NVIDIA host.
#
# Builds tests/fixtures/make-driver-root.sh's driver root (8 GPUs, driver 580.159.04, CUDA
# 13.0; GPU index i = UUID GPU-4e565349-4d00-4000-8000-<i as 12 hex>, minor i XOR 1) and
# points the runtime at it through $NVIDIA_CTK_CONFIG_FILE_PATH. The image has busybox, a
# glibc, /sbin/ldconfig and `probe` (compiled here: dlopen()s a library, calls
# cuDriverGetVersion and nvsim_marker) — and no NVIDIA file. Every check looks at what the
# process inside the container sees. Proves, with direct bundles (`run` from the bundle dir):
#  - NVIDIA_VISIBLE_DEVICES=all: libcuda loads (13000, "nvsim-libcuda"), exactly the 8 GPU
#    nodes + control nodes, `ldconfig -p` lists libcuda/libnvidia-ml, SONAME and libcuda.so
#    links, /usr/bin/nvidia-smi lists the 8 GPUs;
#  - a list by index and UUID gives exactly those GPUs' nodes (the right minors); `none` gives
#    driver files without GPUs; void / empty / unset give nothing and leave config.json
#    byte-for-byte unchanged;
#  - NVIDIA_DRIVER_CAPABILITIES selects libraries, binaries and nodes (utility, graphics,
#    compute);
#  - legacy CUDA_VERSION images (all GPUs; cuda>=X requirement; NVIDIA_DISABLE_REQUIRE),
#    NVIDIA_REQUIRE_CUDA / NVIDIA_REQUIRE_DRIVER with the host's versions in the error;
#  - a bad UUID fails and leaves the bundle and the state root as they were;
#  - read-only rootfs; images with and without their own /etc/ld.so.cache; musl images
#    (libraries in /usr/lib);
#  - the device cgroup: a GPU not given cannot be opened after mknod (EPERM) while the given
#    one reaches the (absent) driver (ENXIO);
#  - create / delete / create on one bundle injects once;
#  - symlinks planted in the image (absolute, to host paths: the library dir, a SONAME link,
#    a bind-mount destination) never lead a write outside the rootfs; where the target also
#    exists inside the rootfs the container works, where it dangles inside the rootfs the run
#    may be refused (today it is: see refused_or_contained), but then cleanly;
# and through a private dockerd (runtime "nvidia", a fake nvidia-container-runtime-hook on its
# PATH): -e NVIDIA_VISIBLE_DEVICES, --gpus all (the hook never runs and is gone from the
# bundle), --gpus device=1,2, and a failed requirement reported on docker's stderr.
# Validated against runc (RUNTIME=$(command -v runc)): every check that depends on injection
# fails there.
source "$(dirname "$0")/../lib.sh"
e2e_init "$@"
need_cmd gcc gcc
need_cmd ldconfig libc-bin
need_cmd sha256sum coreutils

VERSION=580.159.04
GNU=/usr/lib/x86_64-linux-gnu        # where the runtime puts libraries in a glibc image
NET=(--network=none)

# --- the simulated host -------------------------------------------------------

sim_host 8 "$TEST_TMP/inventory-cache"

ALL_NODES=$(printf '/dev/nvidia%d\n' 0 1 2 3 4 5 6 7)
ALL_SMI=$(smi_lines 0 1 2 3 4 5 6 7)

# --- the image: busybox + glibc + ldconfig + probe, no NVIDIA file -----------

build_probe

GLIBC_IMAGE=$TEST_TMP/.glibc-image
make_busybox_rootfs "$GLIBC_IMAGE"
mkdir -p "$GLIBC_IMAGE/lib/x86_64-linux-gnu" "$GLIBC_IMAGE/lib64"
cp "$TEST_TMP/probe" "$GLIBC_IMAGE/usr/bin/probe"
while read -r lib; do
    case $lib in
        /lib64/*) cp -L "$lib" "$GLIBC_IMAGE/lib64/" ;;
        *) cp -L "$lib" "$GLIBC_IMAGE/lib/x86_64-linux-gnu/" ;;
    esac
done < <(ldd "$TEST_TMP/probe" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
# (Debian's /sbin/ldconfig is static; Ubuntu's is a script in front of ldconfig.real)
if [[ -x /sbin/ldconfig.real ]]; then cp /sbin/ldconfig.real "$GLIBC_IMAGE/sbin/ldconfig"; else cp -L /sbin/ldconfig "$GLIBC_IMAGE/sbin/ldconfig"; fi
file_is_static "$GLIBC_IMAGE/sbin/ldconfig" || die "the host's ldconfig is not a static binary"
[[ -x $GLIBC_IMAGE/lib64/ld-linux-x86-64.so.2 && -f $GLIBC_IMAGE/lib/x86_64-linux-gnu/libc.so.6 ]] \
    || die "the image lacks glibc (ldd output: $(ldd "$TEST_TMP/probe"))"
[[ -z $(find "$GLIBC_IMAGE" \( -iname '*nvidia*' -o -iname '*cuda*' \)) ]] || die "the image has NVIDIA files"

# A musl-like image: busybox and a musl loader's name, no glibc multiarch dir.
MUSL_IMAGE=$TEST_TMP/.musl-image
make_busybox_rootfs "$MUSL_IMAGE"
mkdir -p "$MUSL_IMAGE/lib"
echo "not really musl" >"$MUSL_IMAGE/lib/ld-musl-x86_64.so.1"

# --- helpers ------------------------------------------------------------------

B=""     # the current bundle
# gpu_bundle NAME [IMAGE] [ENV...] : bundle $TEST_TMP/NAME (container id NAME) with a copy of
# IMAGE (default: the glibc image) and ENV added to process.env; sets B.
gpu_bundle() {
    local name=$1 image=${2:-$GLIBC_IMAGE}
    shift
    (($#)) && shift     # IMAGE ("" for the default)
    B=$TEST_TMP/$name
    mkdir -p "$B/rootfs"
    cp -a "$image/." "$B/rootfs/"
    make_bundle "$B" sh
    (($#)) && gpu_env "$@"
    return 0
}
# gpu_env ENV... : append to $B's process.env
gpu_env() { bundle_env "$B" "$@"; }
# count of linux.devices entries with PATH in $B/config.json
device_entries() { bundle_get "$B" "len([d for d in c['linux'].get('devices', []) if d['path'] == '$1'])"; }
annotation() { bundle_get "$B" "c.get('annotations', {}).get('io.github.nvidia-runtime.injected', '<none>')"; }
mounts_at() { bundle_get "$B" "len([m for m in c.get('mounts', []) if m['destination'] == '$1'])"; }

# --- direct bundles: what is injected ------------------------------------------

test_all_gpus() {
    gpu_bundle all "" NVIDIA_VISIBLE_DEVICES=all
    bundle_args "$B" probe
    local before; before=$(sha_of "$B/config.json")
    run_as_is
    assert_rc 0 "all: probe runs"
    assert_eq "$PROBE_OK" "$OUT" "all: libcuda.so.1 loads from an image without NVIDIA files (cuDriverGetVersion 13000, nvsim-libcuda)"
    assert_ne "$before" "$(sha_of "$B/config.json")" "all: config.json was rewritten"
    assert_match "$(annotation)" '^gpus=0,1,2,3,4,5,6,7 ' "all: the injected annotation names the 8 GPUs"

    in_ctr 'ls /dev/nvidia[0-9]*'
    assert_eq "$ALL_NODES" "$OUT" "all: exactly /dev/nvidia0../dev/nvidia7"
    in_ctr 'for n in nvidiactl nvidia-uvm nvidia-uvm-tools nvidia-modeset; do [ -c /dev/$n ] && echo "$n yes" || echo "$n no"; done'
    assert_eq $'nvidiactl yes\nnvidia-uvm yes\nnvidia-uvm-tools yes\nnvidia-modeset no' "$OUT" \
        "all: control nodes nvidiactl, nvidia-uvm(-tools); no nvidia-modeset without graphics/display"
    in_ctr 'stat -c "%n %t:%T" /dev/nvidia0 /dev/nvidia7 /dev/nvidiactl'
    assert_eq $'/dev/nvidia0 c3:0\n/dev/nvidia7 c3:7\n/dev/nvidiactl c3:ff' "$OUT" "all: the nodes are the host's (195:minor)"

    in_ctr 'ldconfig -p | grep -E "libcuda\.so\.1 |libnvidia-ml\.so\.1 " | sed "s/^[[:space:]]*//" | sort'
    assert_eq "libcuda.so.1 (libc6,x86-64) => $GNU/libcuda.so.$VERSION"$'\n'"libnvidia-ml.so.1 (libc6,x86-64) => $GNU/libnvidia-ml.so.$VERSION" \
        "$OUT" "all: ldconfig -p lists libcuda.so.1 and libnvidia-ml.so.1"
    in_ctr "readlink $GNU/libcuda.so.1; readlink $GNU/libcuda.so; readlink $GNU/libnvidia-ml.so.1"
    assert_eq "libcuda.so.$VERSION"$'\n'"libcuda.so.1"$'\n'"libnvidia-ml.so.$VERSION" "$OUT" \
        "all: libcuda.so.1 -> libcuda.so.$VERSION, libcuda.so -> libcuda.so.1, libnvidia-ml.so.1 -> …$VERSION"
    in_ctr 'probe libcuda.so'
    assert_eq "$PROBE_OK" "$OUT" "all: dlopen(\"libcuda.so\") works too"

    in_ctr 'command -v nvidia-smi; nvidia-smi'
    assert_rc 0 "all: nvidia-smi runs"
    assert_eq "/usr/bin/nvidia-smi"$'\n'"$ALL_SMI" "$OUT" "all: /usr/bin/nvidia-smi lists the 8 GPUs"
}

test_gpu_list() {
    gpu_bundle list "" "NVIDIA_VISIBLE_DEVICES=1,$(uuid_of 3)"
    in_ctr 'ls /dev/nvidia[0-9]*; stat -c "%n %t:%T" /dev/nvidia[0-9]*'
    assert_rc 0 "index 1 + UUID of 3: runs"
    assert_eq $'/dev/nvidia0\n/dev/nvidia2\n/dev/nvidia0 c3:0\n/dev/nvidia2 c3:2' "$OUT" \
        "index 1 + UUID of 3: exactly /dev/nvidia0 and /dev/nvidia2 (minors 0 and 2)"
    in_ctr 'ls -d /dev/nvidia*'
    assert_eq $'/dev/nvidia-uvm\n/dev/nvidia-uvm-tools\n/dev/nvidia0\n/dev/nvidia2\n/dev/nvidiactl' "$OUT" \
        "index 1 + UUID of 3: those two GPUs, nvidiactl and uvm, nothing else"
    in_ctr 'nvidia-smi'
    assert_eq "$(smi_lines 1 3)" "$OUT" "index 1 + UUID of 3: nvidia-smi lists 2 GPUs (UUIDs …01 and …03)"
    in_ctr 'probe'
    assert_eq "$PROBE_OK" "$OUT" "index 1 + UUID of 3: libcuda loads"
}

test_none() {
    gpu_bundle none "" NVIDIA_VISIBLE_DEVICES=none
    in_ctr 'ls -d /dev/nvidia*'
    assert_eq $'/dev/nvidia-uvm\n/dev/nvidia-uvm-tools\n/dev/nvidiactl' "$OUT" "none: nvidiactl and uvm, no /dev/nvidia[0-9]*"
    in_ctr 'probe'
    assert_eq "$PROBE_OK" "$OUT" "none: libcuda still loads"
    in_ctr 'nvidia-smi'
    assert_eq "No devices were found" "$OUT" "none: nvidia-smi is there and sees no GPU"
}

# check_nothing LABEL ENV... : a container asking for nothing gets nothing.
check_nothing() {
    local label=$1 before; shift
    gpu_bundle "nothing-$label" "" "$@" NVIDIA_DRIVER_CAPABILITIES=all
    bundle_args "$B" sh -c 'ls -A /dev; echo ---; probe; echo ---; command -v nvidia-smi || echo no-nvidia-smi; echo ---; find / -path /proc -prune -o -path /sys -prune -o \( -name "*nvidia*" -o -name "*cuda*" \) -print'
    before=$(sha_of "$B/config.json")
    run_as_is
    assert_eq "$before" "$(sha_of "$B/config.json")" "$label: config.json byte-for-byte unchanged"
    assert_false "$label: no .nvidia-runtime dir in the bundle" test -e "$B/.nvidia-runtime"
    local devs probe smi files
    devs=$(awk '/^---$/{n++; next} n == 0' <<<"$OUT")
    probe=$(awk '/^---$/{n++; next} n == 1' <<<"$OUT")
    smi=$(awk '/^---$/{n++; next} n == 2' <<<"$OUT")
    files=$(awk '/^---$/{n++; next} n == 3' <<<"$OUT")
    assert_contains "$devs" "null" "$label: /dev was listed"
    assert_not_contains "$devs" "nvidia" "$label: no /dev/nvidia*"
    assert_eq "dlopen-failed: libcuda.so.1: cannot open shared object file: No such file or directory" "$probe" "$label: libcuda does not load"
    assert_eq "no-nvidia-smi" "$smi" "$label: no nvidia-smi"
    assert_eq "" "$files" "$label: no file named *nvidia* or *cuda* anywhere in the container (but /proc, /sys)"
}
test_nothing_requested() {
    check_nothing void NVIDIA_VISIBLE_DEVICES=void
    check_nothing empty NVIDIA_VISIBLE_DEVICES=
    check_nothing unset
}

test_capabilities() {
    gpu_bundle cap-utility "" NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=utility
    in_ctr 'nvidia-smi'
    assert_eq "$ALL_SMI" "$OUT" "utility: nvidia-smi runs"
    in_ctr 'probe'
    assert_eq 1 "$RC" "utility: probe fails"
    assert_contains "$OUT" "dlopen-failed: libcuda.so.1" "utility: no libcuda"
    in_ctr 'probe libnvidia-ml.so.1'
    assert_eq "version=-1 marker=nvsim-libnvidia-ml" "$OUT" "utility: libnvidia-ml.so.1 loads"
    in_ctr 'ls -d /dev/nvidia-uvm 2>&1; ldconfig -p | grep -oE "lib(cuda|nvidia-ml)\.so\.1 \(" | sort -u'
    assert_eq "ls: /dev/nvidia-uvm: No such file or directory"$'\n'"libnvidia-ml.so.1 (" "$OUT" \
        "utility: no /dev/nvidia-uvm (compute only); ldconfig -p lists libnvidia-ml.so.1, not libcuda.so.1"

    gpu_bundle cap-graphics "" NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=graphics
    in_ctr "readlink $GNU/libGLX_nvidia.so.0; probe libGLX_nvidia.so.0"
    assert_eq "libGLX_nvidia.so.$VERSION"$'\n'"version=-1 marker=nvsim-libGLX_nvidia" "$OUT" \
        "graphics: libGLX_nvidia.so.0 is present and loads"
    in_ctr '[ -c /dev/nvidia-modeset ] && echo modeset; probe; command -v nvidia-smi || echo no-nvidia-smi'
    assert_eq $'modeset\ndlopen-failed: libcuda.so.1: cannot open shared object file: No such file or directory\nno-nvidia-smi' "$OUT" \
        "graphics: /dev/nvidia-modeset; no libcuda, no nvidia-smi"

    gpu_bundle cap-compute "" NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute
    in_ctr 'probe; ls /usr/bin/nvidia-smi 2>&1; command -v nvidia-smi || echo no-nvidia-smi'
    assert_eq "$PROBE_OK"$'\n'"ls: /usr/bin/nvidia-smi: No such file or directory"$'\n'"no-nvidia-smi" "$OUT" \
        "compute: libcuda loads, no nvidia-smi binary"
    in_ctr "ls $GNU | grep -E '^lib(cuda|nvidia-ml)\.so\.1\$'"
    assert_eq "libcuda.so.1" "$OUT" "compute: libcuda.so.1 but no libnvidia-ml.so.1 (utility)"
}

# run_refused LABEL : run $B with `echo program-ran` (rc 0 on any runtime that starts it) and
# check that the runtime refused it before a container existed: rc != 0, the program never
# ran, config.json byte-for-byte as before, nothing added to the bundle, no state left.
run_refused() {
    local label=$1 before
    bundle_args "$B" echo program-ran
    before=$(sha_of "$B/config.json")
    run_as_is
    assert_rc_nonzero "$label: run fails"
    assert_not_contains "$OUT" "program-ran" "$label: the container's program never ran"
    assert_eq "$before" "$(sha_of "$B/config.json")" "$label: config.json unchanged"
    assert_eq "config.json rootfs" "$(ls -A "$B" | tr '\n' ' ' | sed 's/ $//')" "$label: nothing else left in the bundle (no .nvidia-runtime, no temp file)"
    assert_eq "" "$(ls -A "$STATE")" "$label: no state left under \$STATE"
}

test_legacy_cuda_image() {
    gpu_bundle legacy "" CUDA_VERSION=12.2.0
    in_ctr 'ls /dev/nvidia[0-9]*; probe'
    assert_rc 0 "CUDA_VERSION=12.2.0 (no NVIDIA_VISIBLE_DEVICES): runs"
    assert_eq "$ALL_NODES"$'\n'"$PROBE_OK" "$OUT" "CUDA_VERSION=12.2.0: all 8 GPUs and libcuda"

    gpu_bundle legacy-99 "" CUDA_VERSION=99.0
    run_refused "CUDA_VERSION=99.0"
    assert_contains "$ERR" "cuda>=99.0" "CUDA_VERSION=99.0: the error names cuda>=99.0"
    assert_contains "$ERR" "CUDA 13.0" "CUDA_VERSION=99.0: …and the host's CUDA 13.0"

    gpu_bundle legacy-99-disabled "" CUDA_VERSION=99.0 NVIDIA_DISABLE_REQUIRE=true
    in_ctr 'ls /dev/nvidia[0-9]* | wc -l; probe'
    assert_rc 0 "CUDA_VERSION=99.0 + NVIDIA_DISABLE_REQUIRE=true: runs"
    assert_eq "8"$'\n'"$PROBE_OK" "$OUT" "…with all 8 GPUs and libcuda"
}

test_requirements() {
    gpu_bundle req-fail "" NVIDIA_VISIBLE_DEVICES=all "NVIDIA_REQUIRE_CUDA=cuda>=99.0 brand=tesla"
    run_refused "NVIDIA_REQUIRE_CUDA='cuda>=99.0 brand=tesla' (an H100 is brand nvidia)"
    assert_contains "$ERR" "cuda>=99.0 brand=tesla" "…the error quotes the requirement"
    assert_contains "$ERR" "CUDA 13.0" "…and the host's CUDA 13.0"

    gpu_bundle req-or "" NVIDIA_VISIBLE_DEVICES=all "NVIDIA_REQUIRE_CUDA=cuda>=99.0 brand=nvidia"
    in_ctr 'probe'
    assert_rc 0 "NVIDIA_REQUIRE_CUDA='cuda>=99.0 brand=nvidia' passes (space = or)"

    gpu_bundle req-ok "" NVIDIA_VISIBLE_DEVICES=all "NVIDIA_REQUIRE_CUDA=cuda>=12.0"
    in_ctr 'probe'
    assert_rc 0 "NVIDIA_REQUIRE_CUDA=cuda>=12.0: runs"
    assert_eq "$PROBE_OK" "$OUT" "NVIDIA_REQUIRE_CUDA=cuda>=12.0: libcuda loads"

    gpu_bundle req-driver "" NVIDIA_VISIBLE_DEVICES=all "NVIDIA_REQUIRE_DRIVER=driver>=600"
    run_refused "NVIDIA_REQUIRE_DRIVER=driver>=600"
    assert_contains "$ERR" "driver>=600" "…the error quotes the requirement"
    assert_contains "$ERR" "driver $VERSION" "…and names the host's driver $VERSION"
}

test_bad_uuid() {
    local bad=GPU-4e565349-4d00-4000-8000-0000000000ff
    gpu_bundle bad-uuid "" "NVIDIA_VISIBLE_DEVICES=$bad"
    run_refused "bad UUID"
    assert_contains "$ERR" "unknown NVIDIA GPU" "bad UUID: the error says 'unknown NVIDIA GPU'"
    assert_contains "$ERR" "$bad" "bad UUID: …and names it"
    # The injection runs in a process of its own while the first one re-execs; the error is
    # said once, on stderr and as the log's last error line.
    assert_eq 1 "$(grep -c "unknown NVIDIA GPU" <<<"$ERR")" "bad UUID: the error is said once on stderr"
    capture rt state bad-uuid
    assert_rc 1 "bad UUID: the container does not exist"
    local log=$TEST_TMP/bad-uuid.log
    capture bash -c "cd '$B' && exec timeout -k 5 $E2E_TIMEOUT '$RUNTIME' --root '$STATE' --log '$log' --log-format json run bad-uuid </dev/null"
    assert_rc 1 "bad UUID with --log: rc 1"
    assert_eq 1 "$(grep -c "unknown NVIDIA GPU" "$log")" "…the error is one line of the log"
    assert_contains "$(grep '"level":"error"' "$log" | tail -1)" "unknown NVIDIA GPU" "…its last error line"
}

# The first process names the process injecting for it to the re-exec'd one; a name the caller
# put in the environment is dropped: a child of the caller's that fails (exec'd into the
# runtime, the runtime inherits it) changes nothing.
test_injector_name_from_the_caller_is_ignored() {
    gpu_bundle forged "" NVIDIA_VISIBLE_DEVICES=all
    bundle_args "$B" sh -c 'ls /dev/nvidia[0-9]* | wc -l'
    capture bash -c "cd '$B'; (exit 3) & export _NVIDIA_RUNTIME_INJECTOR=\$!; sleep 0.2; exec timeout -k 5 $E2E_TIMEOUT '$RUNTIME' --root '$STATE' run forged </dev/null"
    assert_rc 0 "a caller's _NVIDIA_RUNTIME_INJECTOR naming its failed child: runs"
    assert_eq 8 "$OUT" "…with all 8 GPUs injected"
    capture bash -c "cd '$B'; exec env _NVIDIA_RUNTIME_INJECTOR=1 timeout -k 5 $E2E_TIMEOUT '$RUNTIME' --root '$STATE' run forged </dev/null"
    assert_rc 0 "_NVIDIA_RUNTIME_INJECTOR=1 (not a child): runs"
    assert_eq 8 "$OUT" "…with all 8 GPUs"
}

# The child that injects while the first process re-execs is killed (here while it waits for
# the bundle's lock, held by someone else): the run fails saying so, and the re-exec'd
# process undoes what the child did for it (the id's reservation).
test_killed_injection_is_undone() {
    gpu_bundle killed "" NVIDIA_VISIBLE_DEVICES=all
    bundle_args "$B" echo program-ran
    local before holder runner child rc
    before=$(sha_of "$B/config.json")
    flock "$B" sleep 30 &
    holder=$!
    sleep 0.2
    (cd "$B" && exec "$RUNTIME" --root "$STATE" run killed </dev/null >"$TEST_TMP/killed.out" 2>&1) &
    runner=$!
    wait_for 5 pgrep -P "$runner" >/dev/null || true
    child=$(pgrep -P "$runner" | head -1 || true)
    assert_ne "" "$child" "the runtime has a child injecting (waiting for the bundle's lock)"
    [[ -n $child ]] && kill -9 "$child"
    sleep 0.2
    pkill -P "$holder" || true; kill "$holder" 2>/dev/null || true; wait "$holder" 2>/dev/null || true
    if wait "$runner"; then rc=0; else rc=$?; fi
    assert_ne 0 "$rc" "the run fails"
    assert_contains "$(cat "$TEST_TMP/killed.out")" "killed by signal 9" "…saying the injection was killed"
    assert_not_contains "$(cat "$TEST_TMP/killed.out")" "program-ran" "…the program never ran"
    assert_eq "" "$(ls -A "$STATE")" "…no reservation or state left under \$STATE"
    assert_eq "$before" "$(sha_of "$B/config.json")" "…config.json unchanged"
    assert_eq "config.json rootfs" "$(ls -A "$B" | tr '\n' ' ' | sed 's/ $//')" "…nothing else left in the bundle"
}

# A caller that ignores SIGCHLD (the disposition survives exec) would have the kernel reap the
# injecting child, and the init of `run`, before the runtime could learn how they ended.
test_caller_ignoring_sigchld() {
    local ign=$TEST_TMP/ignore-sigchld.py
    printf 'import os, signal, sys\nsignal.signal(signal.SIGCHLD, signal.SIG_IGN)\nos.execv(sys.argv[1], sys.argv[1:])\n' >"$ign"
    gpu_bundle sigchld "" NVIDIA_VISIBLE_DEVICES=all
    bundle_args "$B" sh -c 'ls /dev/nvidia[0-9]* | wc -l'
    capture bash -c "cd '$B' && exec timeout -k 5 $E2E_TIMEOUT python3 '$ign' '$RUNTIME' --root '$STATE' run sigchld </dev/null"
    assert_rc 0 "run from a caller that ignores SIGCHLD: rc 0"
    assert_eq 8 "$OUT" "…with all 8 GPUs"
    gpu_bundle sigchld-bad "" NVIDIA_VISIBLE_DEVICES=99
    capture bash -c "cd '$B' && exec timeout -k 5 $E2E_TIMEOUT python3 '$ign' '$RUNTIME' --root '$STATE' run sigchld-bad </dev/null"
    assert_rc 1 "…a refused one: rc 1"
    assert_eq 1 "$(grep -c "unknown NVIDIA GPU" <<<"$ERR")" "…its error said once"
    assert_eq "" "$(ls -A "$STATE")" "…nothing left under \$STATE"
}

# A shim that gives up kills the runtime's pid only: the child injecting for it must not go on
# and change the bundle after the runtime is gone.
test_runtime_killed_while_injecting() {
    gpu_bundle orphan "" NVIDIA_VISIBLE_DEVICES=all
    local before holder runner child
    before=$(sha_of "$B/config.json")
    flock "$B" sleep 30 &
    holder=$!
    sleep 0.2
    (cd "$B" && exec "$RUNTIME" --root "$STATE" create orphan </dev/null >/dev/null 2>&1) &
    runner=$!
    wait_for 5 pgrep -P "$runner" >/dev/null || true
    child=$(pgrep -P "$runner" | head -1 || true)
    assert_ne "" "$child" "the runtime has a child injecting (waiting for the bundle's lock)"
    kill -9 "$runner"
    wait "$runner" 2>/dev/null || true
    [[ -n $child ]] && wait_for 5 bash -c "! kill -0 $child 2>/dev/null" || true
    assert_false "…killing the runtime kills it too" kill -0 "${child:-0}"
    pkill -P "$holder" || true; kill "$holder" 2>/dev/null || true; wait "$holder" 2>/dev/null || true
    sleep 0.3
    assert_eq "$before" "$(sha_of "$B/config.json")" "…and the bundle's config.json stays as it was"
    assert_eq "config.json rootfs" "$(ls -A "$B" | tr '\n' ' ' | sed 's/ $//')" "…with nothing added to the bundle"
    rm -rf "$STATE/@creating"
}

# Where the binary cannot be seen through overlayfs (a directory name with a comma; also any
# kernel before 6.5) it re-execs from a sealed copy: a caller's _NVIDIA_RUNTIME_INJECTOR naming
# its own child must not make it wait for that child.
test_injector_name_on_the_copy_path() {
    local dir="$TEST_TMP/copy,path"
    mkdir -p "$dir"
    cp "$RUNTIME" "$dir/nvidia-runtime"
    gpu_bundle copypath "" NVIDIA_VISIBLE_DEVICES=all
    bundle_args "$B" sh -c 'ls /dev/nvidia[0-9]* | wc -l'
    local start=$SECONDS
    capture bash -c "cd '$B'; sleep 30 & echo \$! >'$TEST_TMP/copypath.pid'; export _NVIDIA_RUNTIME_INJECTOR=\$!; exec timeout -k 5 20 '$dir/nvidia-runtime' --root '$STATE' run copypath </dev/null"
    assert_rc 0 "re-exec from a sealed copy with a caller's _NVIDIA_RUNTIME_INJECTOR: rc 0"
    assert_eq 8 "$OUT" "…with all 8 GPUs"
    assert_true "…without waiting for the caller's child" test $((SECONDS - start)) -lt 15
    kill "$(cat "$TEST_TMP/copypath.pid")" 2>/dev/null || true
}

# A binary already on a read-only overlay (an image's or a composefs /usr) does not re-exec
# itself, so its caller's environment reaches the process that creates the container: a
# _NVIDIA_RUNTIME_INJECTOR there naming a child of the caller's and a descriptor that is not
# the injecting child's pipe (here fd 3, the runtime's own log file) is ignored, and the
# log keeps every line.
test_injector_name_on_a_read_only_binary() {
    local dir=$TEST_TMP/ro-binary log=$TEST_TMP/ro-binary.log
    mkdir -p "$dir/bin" "$dir/empty" "$dir/mnt"
    cp "$RUNTIME" "$dir/bin/nvidia-runtime"
    mount -t overlay overlay -o "ro,lowerdir=$dir/bin:$dir/empty" "$dir/mnt"
    gpu_bundle ro-binary "" NVIDIA_VISIBLE_DEVICES=all
    bundle_args "$B" sh -c 'ls /dev/nvidia[0-9]* | wc -l'
    # (exec'd straight from the shell, no timeout in between: its child, alive until the
    # runtime looks, must be the runtime's)
    capture bash -c "cd '$B'; exec 3>&-; sleep 0.5 & echo \$! >'$dir/child.pid'; export _NVIDIA_RUNTIME_INJECTOR=\$!:3; exec '$dir/mnt/nvidia-runtime' --debug --log '$log' --root '$STATE' run ro-binary </dev/null"
    umount "$dir/mnt"
    wait_for 5 bash -c "! kill -0 $(cat "$dir/child.pid") 2>/dev/null" || true
    assert_rc 0 "a binary on a read-only overlay, _NVIDIA_RUNTIME_INJECTOR naming its log's descriptor: runs"
    assert_eq 8 "$OUT" "…with all 8 GPUs injected"
    assert_contains "$(cat "$log")" "injected: gpus=0,1,2,3,4,5,6,7" "…and its log has the injection's line"
}

# The injection writes config.json first, and prepares the rootfs (links, mount points, the
# cache) while the re-exec'd process sets the container up; the container's init waits for
# that before it touches the rootfs. Where that work fails (the image has a file where the
# driver's libraries go), the create fails with the injection's error, said once and the last
# error line of the log, and leaves nothing: no state, no cgroup, the bundle and rootfs as
# they were.
test_rootfs_work_fails_after_config_written() {
    gpu_bundle lib-dir-file "" NVIDIA_VISIBLE_DEVICES=all
    rm -rf "$B/rootfs$GNU"
    mkdir -p "$(dirname "$B/rootfs$GNU")"
    echo "not a directory" >"$B/rootfs$GNU"
    bundle_args "$B" echo program-ran
    local before tree_before cg log=$TEST_TMP/lib-dir-file.log
    before=$(sha_of "$B/config.json")
    tree_before=$(cd "$B/rootfs" && find . | LC_ALL=C sort)
    cg=$(bundle_cgroup_path "$B")
    capture bash -c "cd '$B' && exec timeout -k 5 $E2E_TIMEOUT '$RUNTIME' --root '$STATE' --log '$log' --log-format json create lib-dir-file </dev/null"
    assert_rc 1 "a file where the libraries go: create fails"
    assert_contains "$ERR" "$GNU inside the container rootfs: ENOTDIR" "…the error names the path and the cause"
    assert_eq 1 "$(grep -c '"level":"error"' "$log")" "…one error line in the log"
    assert_contains "$(grep '"level":"error"' "$log" | tail -1)" "cannot inject NVIDIA GPUs" "…the injection's"
    assert_not_contains "$(cat "$log")$ERR" "reported above" "…no line repeating it"
    assert_eq "" "$(ls -A "$STATE")" "…no state left under \$STATE"
    assert_eq "" "$(cgroup_dirs_for "$cg")" "…no cgroup left"
    assert_eq "$before" "$(sha_of "$B/config.json")" "…config.json as it was"
    assert_eq "config.json rootfs" "$(ls -A "$B" | tr '\n' ' ' | sed 's/ $//')" "…nothing else left in the bundle"
    assert_eq "$tree_before" "$(cd "$B/rootfs" && find . | LC_ALL=C sort)" \
        "…the rootfs has exactly the files it had"
    run_as_is
    assert_rc 1 "…run fails the same way"
    assert_not_contains "$OUT" "program-ran" "…the program never ran"
    assert_eq 1 "$(grep -c "ENOTDIR" <<<"$ERR")" "…its error said once"
    assert_eq "" "$(ls -A "$STATE")" "…and leaves no state"

    # The id's reservation is the runtime's own until its create has failed: the injecting
    # child, failing after config.json was out, must not free it while the runtime still
    # builds the container (another create of the id could take it, and lose its state dir).
    local trace=$TEST_TMP/lib-dir-file.strace main freed_by
    (cd "$B" && strace -f -qq -o "$trace" -e trace=execve,unlink,unlinkat \
        "$RUNTIME" --root "$STATE" create lib-dir-file </dev/null >/dev/null 2>&1) || true
    main=$(awk '/execve\(/ { print $1; exit }' "$trace")
    freed_by=$(grep -E 'unlink(at)?\(.*creating/lib-dir-file"' "$trace" | grep -v ENOENT | awk '{ print $1 }' | sort -u | tr '\n' ' ')
    assert_eq "$main " "$freed_by" "…the reservation is freed by the runtime's own process, once its create failed"
    assert_eq "" "$(ls -A "$STATE")" "…and nothing is left under \$STATE"
}

# Injection happens for the first process while it re-execs; the container is created by the
# re-exec'd process. A create libcontainer refuses after the
# injection (a namespace path that does not exist) must still be undone, across that exec.
test_refused_after_injection_is_undone() {
    gpu_bundle refused-late "" NVIDIA_VISIBLE_DEVICES=all
    python3 - "$B/config.json" <<'EOF'
import json, sys
path = sys.argv[1]
with open(path) as f: c = json.load(f)
c["linux"]["namespaces"].append({"type": "cgroup", "path": "/nonexistent/ns/cgroup"})
with open(path, "w") as f: json.dump(c, f, indent=2)
EOF
    local tree_before; tree_before=$(cd "$B/rootfs" && find . | LC_ALL=C sort)
    run_refused "refused by libcontainer after injection"
    assert_contains "$ERR" "nonexistent/ns/cgroup" "…and the error names the namespace path"
    assert_false "…and the SONAME link made by the injection is gone" test -L "$B/rootfs$GNU/libcuda.so.1"
    assert_eq "$tree_before" "$(cd "$B/rootfs" && find . | LC_ALL=C sort)" \
        "…and the rootfs has exactly the files it had (no link or directory left)"

    # Refused later, after libcontainer made the mount points and mounted the driver files: a
    # program that does not exist, in an image without the library dir the files go to.
    gpu_bundle refused-later "$MUSL_IMAGE" NVIDIA_VISIBLE_DEVICES=all
    bundle_args "$B" /no/such/program
    local sha; sha=$(sha_of "$B/config.json")
    tree_before=$(cd "$B/rootfs" && find . | LC_ALL=C sort)
    run_as_is
    assert_rc_nonzero "a missing program: run fails"
    assert_eq "$sha" "$(sha_of "$B/config.json")" "a missing program: config.json unchanged"
    assert_eq "$tree_before" "$(cd "$B/rootfs" && find . | LC_ALL=C sort)" \
        "a missing program: the rootfs has exactly the files it had (no mount point, link or directory left)"
    assert_eq "" "$(ls -A "$STATE")" "a missing program: no state left under \$STATE"
}

test_readonly_rootfs() {
    gpu_bundle readonly "" NVIDIA_VISIBLE_DEVICES=all
    bundle_set "$B" 'c["root"]["readonly"] = True'
    in_ctr 'probe; ldconfig -p | grep -c "libcuda\.so\.1 "; touch /written 2>&1; echo "touch-rc=$?"'
    assert_rc 0 "read-only rootfs: runs"
    assert_eq "$PROBE_OK"$'\n'"1"$'\n'"touch: /written: Read-only file system"$'\n'"touch-rc=1" "$OUT" \
        "read-only rootfs: libcuda loads, ldconfig -p lists it, / is not writable"
    assert_false "read-only rootfs: nothing written on the host side" test -e "$B/rootfs/written"
}

test_image_with_ld_cache() {
    gpu_bundle own-cache "" NVIDIA_VISIBLE_DEVICES=all
    ldconfig -r "$B/rootfs"
    local img_cache; img_cache=$(sha_of "$B/rootfs/etc/ld.so.cache")
    in_ctr 'ldconfig -p | sed "s/^[[:space:]]*//" | grep -E "^(libc\.so\.6|libcuda\.so\.1) "; probe'
    assert_rc 0 "image with its own /etc/ld.so.cache: runs"
    assert_eq "libc.so.6 (libc6,x86-64) => /lib/x86_64-linux-gnu/libc.so.6"$'\n'"libcuda.so.1 (libc6,x86-64) => $GNU/libcuda.so.$VERSION"$'\n'"$PROBE_OK" \
        "$(LC_ALL=C sort <<<"$OUT")" "image ld.so.cache: ldconfig -p lists the image's libc.so.6 and libcuda.so.1"
    assert_ne "$img_cache" "$(sha_of "$B/rootfs/etc/ld.so.cache")" "image ld.so.cache: the container's cache (the image's entries plus the driver's) is a file of the rootfs"
}

test_musl_image() {
    gpu_bundle musl "$MUSL_IMAGE" NVIDIA_VISIBLE_DEVICES=all
    in_ctr 'readlink /usr/lib/libcuda.so.1; readlink /usr/lib/libcuda.so; ls /usr/lib/libcuda.so.1; grep -q nvsim-libcuda /usr/lib/libcuda.so.1 && echo marker; [ -e /usr/lib/x86_64-linux-gnu ] || echo no-multiarch-dir'
    assert_rc 0 "musl image: runs"
    assert_eq "libcuda.so.$VERSION"$'\n'"libcuda.so.1"$'\n'"/usr/lib/libcuda.so.1"$'\n'"marker"$'\n'"no-multiarch-dir" "$OUT" \
        "musl image: libcuda.so.1 (-> libcuda.so.$VERSION, the driver's file) in /usr/lib, no multiarch dir"
}

test_device_cgroup() {
    gpu_bundle devcg "" NVIDIA_VISIBLE_DEVICES=1
    bundle_set "$B" 'for k in ("bounding", "effective", "permitted"): c["process"]["capabilities"][k].append("CAP_MKNOD")'
    in_ctr 'ls /dev/nvidia[0-9]*'
    assert_eq "/dev/nvidia0" "$OUT" "NVIDIA_VISIBLE_DEVICES=1: only /dev/nvidia0"
    in_ctr 'mknod /dev/x c 195 1 && head -c1 /dev/x'
    assert_rc_nonzero "mknod + open of GPU 195:1 (not given) fails"
    assert_contains "$ERR" "Operation not permitted" "…with EPERM: the device cgroup denies it"
    in_ctr 'mknod /dev/y c 195 0 && head -c1 /dev/y'
    assert_rc_nonzero "mknod + open of GPU 195:0 (given) fails too (no driver)"
    assert_contains "$ERR" "No such device or address" "…with ENXIO: the cgroup allows it, the driver is absent"
    in_ctr 'head -c1 /dev/nvidia0'
    assert_contains "$ERR" "No such device or address" "opening the injected /dev/nvidia0 reaches the (absent) driver: ENXIO"
}

test_create_delete_create() {
    local id=recreate
    gpu_bundle "$id" "" NVIDIA_VISIBLE_DEVICES=all
    bundle_args "$B" probe
    capture rt create --bundle "$B" "$id" </dev/null
    assert_rc 0 "first create"
    capture rt delete "$id"
    assert_rc 0 "delete of the created container"
    capture rt create --bundle "$B" "$id" </dev/null
    assert_rc 0 "second create on the same bundle"
    assert_eq 1 "$(device_entries /dev/nvidia0)" "linux.devices has /dev/nvidia0 exactly once"
    assert_eq 1 "$(device_entries /dev/nvidiactl)" "linux.devices has /dev/nvidiactl exactly once"
    assert_eq 1 "$(bundle_get "$B" "len([r for r in c['linux']['resources']['devices'] if r.get('allow') and r.get('major') == 195 and r.get('minor') == 0])")" \
        "the cgroup allows 195:0 exactly once"
    assert_eq 1 "$(mounts_at "$GNU/libcuda.so.$VERSION")" "libcuda is mounted exactly once"
    assert_eq 0 "$(mounts_at /etc/ld.so.cache)" "/etc/ld.so.cache is not mounted (written into the rootfs)"
    assert_match "$(annotation)" '^gpus=0,1,2,3,4,5,6,7 ' "the annotation io.github.nvidia-runtime.injected is there"
    capture rt delete "$id"
    assert_rc 0 "delete again"
    capture _run_in "$B" "$id"
    assert_eq "$PROBE_OK" "$OUT" "a third use (run) of the bundle still works"
}

# A restarted docker container: a fresh config.json (docker rewrites it) over the rootfs of
# the first start, which now holds our SONAME links and libcontainer's empty mount points.
test_restart_on_the_same_rootfs() {
    gpu_bundle restarted "" NVIDIA_VISIBLE_DEVICES=all
    bundle_args "$B" probe
    cp "$B/config.json" "$TEST_TMP/restarted.pristine.json"
    run_as_is
    assert_eq "$PROBE_OK" "$OUT" "first start: probe loads libcuda"
    local link_id; link_id=$(stat -c '%i %Z' "$B/rootfs$GNU/libcuda.so.1")
    cp "$TEST_TMP/restarted.pristine.json" "$B/config.json"
    run_as_is
    assert_rc 0 "second start on the same rootfs"
    assert_eq "$PROBE_OK" "$OUT" "second start: probe loads libcuda"
    assert_not_contains "$ERR" "level=warning" "second start: no warning (the empty /etc/ld.so.cache mount point is no broken cache)"
    assert_eq "$link_id" "$(stat -c '%i %Z' "$B/rootfs$GNU/libcuda.so.1")" "second start: the SONAME link that was already right is left as it was"
}

# The driver's files come from the inventory cache once the driver root has settled, and what
# changes in the driver root is in the very next container (a library installed beside the
# driver, without ldconfig: only the library directory's witness can tell).
_run_debug() ( cd "$1" && rt --debug run "$2" </dev/null )
test_inventory_cache_follows_the_driver() {
    local drv=$TEST_TMP/drv-cache cache=$TEST_TMP/cache-test cfg=$TEST_TMP/cache-test.toml
    cp -a "$SIM" "$drv"
    printf '[nvidia-container-cli]\nroot = "%s"\n[nvidia-runtime]\nproc-root = "%s"\ninventory-cache = "%s"\n' \
        "$drv" "$drv" "$cache" >"$cfg"
    gpu_bundle cached "" NVIDIA_VISIBLE_DEVICES=0 NVIDIA_DRIVER_CAPABILITIES=utility
    bundle_args "$B" sh -c "ls $GNU | grep -c '^libnvidia-nscq' || true; nvidia-smi -L"
    cp "$B/config.json" "$TEST_TMP/cached.pristine.json"
    # start LABEL : a run of the bundle from its pristine config.json with the test's config
    start() {
        cp "$TEST_TMP/cached.pristine.json" "$B/config.json"
        NVIDIA_CTK_CONFIG_FILE_PATH=$cfg capture _run_debug "$B" cached
        assert_rc 0 "$1: runs"
    }
    start "a driver root copied moments ago"
    assert_contains "$ERR" "inventory_cache: Some(NotStored)" "a driver root changed moments ago is not cached yet"
    sleep 2.2   # inventory::SETTLE
    start "settled"
    assert_contains "$ERR" "inventory_cache: Some(Stored)" "settled: the driver files are stored"
    assert_eq 1 "$(ls "$cache" | grep -c '^driver-files-')" "one cache entry"
    assert_eq "700 600" "$(stat -c %a "$cache") $(stat -c %a "$cache"/driver-files-*)" "the cache dir and entry are private"
    local entry_id; entry_id=$(stat -c %i "$cache"/driver-files-*)
    start "cached"
    assert_contains "$ERR" "inventory_cache: Some(Hit)" "the next container uses the cache"
    assert_eq "0"$'\n'"$(smi_lines 0)" "$OUT" "cached: the same driver files and GPU as found afresh"
    assert_eq "$entry_id" "$(stat -c %i "$cache"/driver-files-*)" "a hit does not rewrite the entry"

    cp "$drv/usr/local/nvidia/lib64/libnvidia-cfg.so.$VERSION" "$drv/usr/local/nvidia/lib64/libnvidia-nscq.so.$VERSION"
    start "a library added"
    assert_not_contains "$ERR" "inventory_cache: Some(Hit)" "a library added: the cache is not used"
    assert_eq "1"$'\n'"$(smi_lines 0)" "$OUT" "a library added: it is in the container at once"
    sleep 2.2
    start "settled again"
    assert_contains "$ERR" "inventory_cache: Some(Stored)" "settled again: stored again"
    start "cached again"
    assert_contains "$ERR" "inventory_cache: Some(Hit)" "cached again: used again"
    assert_eq "1"$'\n'"$(smi_lines 0)" "$OUT" "cached again: with the new library"

    # inventory-cache = "" turns it off: found afresh, nothing written (not even under the
    # directory the runtime runs in, which an empty path could be mistaken for)
    entry_id=$(stat -c %i "$cache"/driver-files-*)
    printf '[nvidia-container-cli]\nroot = "%s"\n[nvidia-runtime]\nproc-root = "%s"\ninventory-cache = ""\n' \
        "$drv" "$drv" >"$cfg"
    start "cache off"
    assert_contains "$ERR" "inventory_cache: None" "cache off: the driver files are found afresh"
    assert_eq "1"$'\n'"$(smi_lines 0)" "$OUT" "cache off: the same files"
    assert_eq "" "$(find "$B" -name 'driver-files-*')" "cache off: no entry written in the bundle dir the runtime ran in"
    assert_eq "$entry_id" "$(stat -c %i "$cache"/driver-files-*)" "cache off: the other cache dir untouched"
    unset -f start
}

# refused_or_contained LABEL SHA : after a run of $B whose image plants a symlink, either it ran
# (and probe loaded libcuda) or it was refused cleanly (config.json as it was: SHA).
refused_or_contained() {
    local label=$1 before=$2
    if [[ $RC == 0 ]]; then
        assert_eq "$PROBE_OK" "$(head -n 1 <<<"$OUT")" "$label: ran, and libcuda loads from inside the rootfs"
    else
        assert_match "$ERR" "inside the container rootfs|pathrs" "$label: refused, with an error about the rootfs path"
        assert_eq "$before" "$(sha_of "$B/config.json")" "$label: refused, config.json unchanged"
    fi
}

test_symlink_safety() {
    local before
    # 1. the image's library dir is an absolute symlink to a dir that exists on the host only
    local target=$TEST_TMP/host-target
    mkdir -p "$target"
    gpu_bundle symlink-dir "" NVIDIA_VISIBLE_DEVICES=all
    mkdir -p "$B/rootfs/usr/lib"
    ln -s "$target" "$B/rootfs$GNU"
    bundle_args "$B" probe
    before=$(sha_of "$B/config.json")
    run_as_is
    assert_eq "" "$(ls -A "$target")" "lib dir -> host-only dir: nothing created in the host dir"
    refused_or_contained "lib dir -> host-only dir" "$before"

    # 2. the same, but the target path exists inside the rootfs too: the files must land there
    gpu_bundle symlink-dir2 "" NVIDIA_VISIBLE_DEVICES=all
    mkdir -p "$B/rootfs/usr/lib" "$B/rootfs$target"
    ln -s "$target" "$B/rootfs$GNU"
    in_ctr "probe; readlink $GNU/libcuda.so.1; ls $target | grep -c ."
    assert_eq "" "$(ls -A "$target")" "lib dir -> dir on host and in rootfs: nothing created in the host dir"
    assert_rc 0 "lib dir -> dir on host and in rootfs: runs"
    assert_eq "$PROBE_OK"$'\n'"libcuda.so.$VERSION" "$(head -n 2 <<<"$OUT")" "…libcuda loads, links resolved inside the rootfs"
    assert_true "…the links were made in the rootfs's copy of the dir" test -L "$B/rootfs$target/libcuda.so.1"

    # 3. libcuda.so.1 (a link the runtime makes) -> a host file, passwd-like
    local victim=$TEST_TMP/host-passwd sum
    echo "root:x:0:0:precious:/root:/bin/sh" >"$victim"
    sum=$(sha_of "$victim")
    gpu_bundle symlink-file "" NVIDIA_VISIBLE_DEVICES=all
    mkdir -p "$B/rootfs$GNU"
    ln -s "$victim" "$B/rootfs$GNU/libcuda.so.1"
    in_ctr "probe; readlink $GNU/libcuda.so.1"
    assert_eq "$sum" "$(sha_of "$victim")" "libcuda.so.1 -> host file: the host file is unchanged"
    assert_true "libcuda.so.1 -> host file: the host file is still a plain file" test -f "$victim" -a ! -L "$victim"
    assert_rc 0 "libcuda.so.1 -> host file: runs"
    assert_eq "$PROBE_OK"$'\n'"libcuda.so.$VERSION" "$OUT" "libcuda.so.1 -> host file: replaced by the driver's link inside the rootfs"

    # 4. a bind-mount destination (libnvidia-ml.so.VERSION) -> a path in a host dir
    local target3=$TEST_TMP/host-target3
    mkdir -p "$target3"
    gpu_bundle symlink-mountpoint "" NVIDIA_VISIBLE_DEVICES=all
    mkdir -p "$B/rootfs$GNU"
    ln -s "$target3/planted" "$B/rootfs$GNU/libnvidia-ml.so.$VERSION"
    bundle_args "$B" probe
    before=$(sha_of "$B/config.json")
    run_as_is
    assert_eq "" "$(ls -A "$target3")" "mount point -> host dir: nothing created in the host dir"
    refused_or_contained "mount point -> host dir" "$before"
}

# --- docker --------------------------------------------------------------------

test_docker_env_all() {
    capture docker_ run --rm --runtime=nvidia "${NET[@]}" -e NVIDIA_VISIBLE_DEVICES=all gpuimg \
        sh -c 'probe; ls /dev/nvidia[0-9]*; nvidia-smi'
    assert_rc 0 "docker run -e NVIDIA_VISIBLE_DEVICES=all: rc 0"
    assert_eq "$PROBE_OK"$'\n'"$ALL_NODES"$'\n'"$ALL_SMI" "$OUT" "docker -e NVIDIA_VISIBLE_DEVICES=all: libcuda, 8 nodes, nvidia-smi sees 8 GPUs"
}

test_docker_gpus_all() {
    rm -f "$HOOK_MARK"
    capture docker_ run --rm --runtime=nvidia "${NET[@]}" --gpus all gpuimg \
        sh -c 'probe; ls /dev/nvidia[0-9]*; nvidia-smi'
    assert_rc 0 "docker run --gpus all: rc 0"
    assert_eq "$PROBE_OK"$'\n'"$ALL_NODES"$'\n'"$ALL_SMI" "$OUT" "docker --gpus all: libcuda, 8 nodes, nvidia-smi sees 8 GPUs"
    assert_false "docker --gpus all: the nvidia-container-runtime-hook never ran" test -e "$HOOK_MARK"

    # the bundle containerd hands to the runtime, after create
    local id cfg
    id=$(docker_ run -d --runtime=nvidia "${NET[@]}" --gpus all gpuimg sleep 1000)
    cfg=$D/exec/containerd/daemon/io.containerd.runtime.v2.task/moby/$id/config.json
    assert_eq "[]" "$(python3 -c 'import json, sys; c = json.load(open(sys.argv[1])); print(json.dumps([h["path"] for h in c.get("hooks", {}).get("prestart", []) if "nvidia" in h["path"]]))' "$cfg" 2>&1)" \
        "docker --gpus all: no nvidia hook left in the bundle's config.json"
    assert_match "$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["annotations"].get("io.github.nvidia-runtime.injected", "<none>"))' "$cfg" 2>&1)" \
        '^gpus=0,1,2,3,4,5,6,7 ' "docker --gpus all: injected natively (annotation names the 8 GPUs)"
    docker_ rm -f "$id" >/dev/null
    assert_false "…and the hook did not run then either" test -e "$HOOK_MARK"
}

test_docker_gpus_devices() {
    rm -f "$HOOK_MARK"
    capture docker_ run --rm --runtime=nvidia "${NET[@]}" --gpus '"device=1,2"' gpuimg \
        sh -c 'ls /dev/nvidia[0-9]*; nvidia-smi'
    assert_rc 0 "docker run --gpus device=1,2: rc 0"
    assert_eq $'/dev/nvidia0\n/dev/nvidia3\n'"$(smi_lines 1 2)" "$OUT" \
        "docker --gpus device=1,2: exactly /dev/nvidia0 and /dev/nvidia3; nvidia-smi sees GPUs 1 and 2"
    assert_false "docker --gpus device=1,2: the hook never ran" test -e "$HOOK_MARK"
}

test_docker_requirement() {
    capture docker_ run --rm --runtime=nvidia "${NET[@]}" -e 'NVIDIA_REQUIRE_CUDA=cuda>=99.0' \
        -e NVIDIA_VISIBLE_DEVICES=all gpuimg echo program-ran
    assert_rc_nonzero "docker run with an unmet NVIDIA_REQUIRE_CUDA fails"
    assert_contains "$ERR" "cuda>=99.0" "…and docker's stderr names cuda>=99.0"
    assert_contains "$ERR" "CUDA 13.0" "…and the host's CUDA 13.0"
    assert_not_contains "$OUT" "program-ran" "…and the program never ran"
}

# The class of CVE-2025-23266: NVIDIA's createContainer hook inherited the image's LD_PRELOAD
# and loaded the image's library with host privileges. Here the image sets LD_PRELOAD to a
# library whose constructor leaves a marker in /tmp, and asks for GPUs with docker's hook in
# the spec. The container's own process must load it (marker in the container's /tmp: the
# library works) and no process on the host may (no marker in the host's /tmp).
test_image_ld_preload_never_runs_on_host() {
    local mark=/tmp/nvrt-e2e-preload-$$-$RANDOM
    cat >"$TEST_TMP/evil.c" <<EOF
#include <fcntl.h>
#include <unistd.h>
__attribute__((constructor)) static void mark(void) {
    int fd = open("$mark", O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) { write(fd, "loaded\n", 7); close(fd); }
}
EOF
    gcc -shared -fPIC -o "$TEST_TMP/evil.so" "$TEST_TMP/evil.c" || { fail "cannot build evil.so"; return; }
    gpu_bundle preload "" NVIDIA_VISIBLE_DEVICES=all LD_PRELOAD=/evil.so
    cp "$TEST_TMP/evil.so" "$B/rootfs/evil.so"
    bundle_set "$B" 'c.setdefault("hooks", {})["prestart"] = [{"path": "/usr/bin/nvidia-container-runtime-hook", "args": ["nvidia-container-runtime-hook", "prestart"]}]'
    rm -f "$mark"
    in_ctr "probe; cat $mark"
    assert_rc 0 "LD_PRELOAD image with docker's hook: runs"
    assert_contains "$OUT" "$PROBE_OK" "…the GPU is injected"
    assert_contains "$OUT" "loaded" "…the container's own process loaded the image's LD_PRELOAD"
    assert_false "…and no process on the host did (no $mark on the host)" test -e "$mark"
    rm -f "$mark"
}

# Installed as a link named nvidia-container-runtime-hook (what dockerd looks for to enable
# --gpus), the binary refuses to act as a hook and says why, instead of silently injecting nothing.
test_hook_name_link() {
    mkdir -p "$TEST_TMP/hooklink"
    ln -sf "$RUNTIME" "$TEST_TMP/hooklink/nvidia-container-runtime-hook"
    capture "$TEST_TMP/hooklink/nvidia-container-runtime-hook" prestart
    assert_rc 1 "run as nvidia-container-runtime-hook: exit 1"
    assert_contains "$ERR" "run the container with nvidia-runtime as its runtime" "…and it says what to do"
}

run_tests \
    test_all_gpus test_gpu_list test_none test_nothing_requested test_capabilities \
    test_legacy_cuda_image test_requirements test_bad_uuid test_injector_name_from_the_caller_is_ignored test_killed_injection_is_undone \
    test_caller_ignoring_sigchld test_runtime_killed_while_injecting test_injector_name_on_the_copy_path test_injector_name_on_a_read_only_binary test_rootfs_work_fails_after_config_written \
    test_refused_after_injection_is_undone \
    test_readonly_rootfs \
    test_image_with_ld_cache test_musl_image test_device_cgroup test_create_delete_create \
    test_restart_on_the_same_rootfs test_inventory_cache_follows_the_driver \
    test_symlink_safety test_hook_name_link test_image_ld_preload_never_runs_on_host

DOCKER_TESTS=(test_docker_env_all test_docker_gpus_all test_docker_gpus_devices test_docker_requirement)
if [[ -z $E2E_FILTER ]] || printf '%s\n' "${DOCKER_TESTS[@]}" | grep -qE -- "$E2E_FILTER"; then
    # A fake hook on dockerd's PATH enables --gpus; the runtime removes the hook, so it must
    # never run (it would leave $HOOK_MARK).
    HOOK_MARK=$TEST_TMP/hook-ran
    mkdir -p "$TEST_TMP/hookbin"
    printf '#!/bin/sh\necho "$0 $*" >>%s\nexit 1\n' "$HOOK_MARK" >"$TEST_TMP/hookbin/nvidia-container-runtime-hook"
    chmod +x "$TEST_TMP/hookbin/nvidia-container-runtime-hook"
    # dockerd passes its environment (NVIDIA_CTK_CONFIG_FILE_PATH) to containerd, the shim and the runtime.
    start_dockerd --name gpu-docker --path-prepend "$TEST_TMP/hookbin"
    tar -C "$GLIBC_IMAGE" -c . | docker_ import -c 'CMD ["sh"]' \
        -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - gpuimg >/dev/null
    run_tests "${DOCKER_TESTS[@]}"
fi
e2e_finish
