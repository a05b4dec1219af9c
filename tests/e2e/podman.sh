#!/usr/bin/env bash
# tests/e2e/podman.sh — a CDI spec made by `nvidia-runtime cdi generate`, applied by Podman.
#
# A simulated 2-GPU host (tests/lib.sh sim_host: GPU index i has minor i XOR 1, so
# nvidia.com/gpu=1 is /dev/nvidia0) gets a spec written into /var/run/cdi (Podman 4.3 reads
# only /etc/cdi and /var/run/cdi) under a name of this run's own, removed at the end. Debian's
# Podman runs an image of busybox + glibc + ldconfig + probe (dlopen()s libcuda.so.1, calls
# what the simulated driver exports) and no NVIDIA file, with its own storage, run root and
# tmp dir under the test dir, `--device nvidia.com/gpu=1`, and:
#  - Debian's runc (`--runtime runc`): the spec's createContainer hooks run our binary
#    (`nvidia-runtime hook …`), which makes the SONAME links and the container's ld.so.cache;
#  - our binary as the runtime (`--runtime $RUNTIME`).
# Both must see exactly that GPU's node (not the other, whose node made with mknod cannot be
# opened: the device cgroup), the control nodes, a loadable libcuda.so.1, `ldconfig -p`
# listing it, the SONAME link, the ld.so.conf.d entry, NVIDIA_VISIBLE_DEVICES=void, and, where
# the host has an NVIDIA driver, /proc/driver/nvidia/params with ModifyDeviceFiles: 0.
# `cdi list` shows the spec's devices; after a library of the driver is removed, `cdi list`
# reports the spec as stale naming the file, and our runtime refuses the container naming it.
source "$(dirname "$0")/../lib.sh"
e2e_init "$@"
need_cmd podman podman
need_cmd gcc gcc
need_cmd ldconfig libc-bin

GNU=/usr/lib/x86_64-linux-gnu     # where the spec puts the libraries
VERSION=580.159.04
SPEC=/var/run/cdi/nvrt-e2e-$(basename "$TEST_TMP").yaml
PM=$TEST_TMP/podman
IMAGE=localhost/nvrt-glibc:e2e

# Paths Podman and the spec add outside the test dir (Podman's blob cache, and the runtimes'
# default state dirs, are not set from Podman's command line): those new now are removed at
# the end, children first, dirs only when empty.
for p in "$SPEC" /var/run/cdi /var/lib/containers/cache/blob-info-cache-v1.boltdb \
    /var/lib/containers/cache /var/lib/containers /run/runc /run/nvidia-runtime; do
    [[ -e $p ]] || _E2E_HOST_PATHS_NEW+=("$p")
done

sim_host 2 ""

# pm ARGS... : Podman with everything it keeps under $PM.
pm() {
    # (Podman refuses a run root path over 50 characters)
    timeout -k 5 "$E2E_TIMEOUT" podman --root "$PM/root" --runroot "$TEST_TMP/r" --tmpdir "$PM/tmp" \
        --storage-driver vfs --cgroup-manager cgroupfs --events-backend file "$@"
}
# pm_run RUNTIME ARGS... : `podman run --rm` as this host needs it (see the header of lib.sh's
# daemons: the hard nofile limit, no network), its cgroup under this run's parent, and leave
# to mknod (so that only the device cgroup keeps a GPU not given from being opened).
pm_run() {
    local runtime=$1; shift
    pm run --rm --runtime "$runtime" --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
        --network none --cgroup-parent "/$(cgroup_parent)" --cap-add MKNOD "$@"
}

# --- the image: busybox + glibc + ldconfig + probe, no NVIDIA file -----------

build_probe
IMG=$TEST_TMP/image
make_busybox_rootfs "$IMG"
mkdir -p "$IMG/lib/x86_64-linux-gnu" "$IMG/lib64" "$IMG/etc/ld.so.conf.d"
cp "$TEST_TMP/probe" "$IMG/usr/bin/probe"
while read -r lib; do
    case $lib in
        /lib64/*) cp -L "$lib" "$IMG/lib64/" ;;
        *) cp -L "$lib" "$IMG/lib/x86_64-linux-gnu/" ;;
    esac
done < <(ldd "$TEST_TMP/probe" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
if [[ -x /sbin/ldconfig.real ]]; then cp /sbin/ldconfig.real "$IMG/sbin/ldconfig"; else cp -L /sbin/ldconfig "$IMG/sbin/ldconfig"; fi
file_is_static "$IMG/sbin/ldconfig" || die "the host's ldconfig is not a static binary"
echo 'include /etc/ld.so.conf.d/*.conf' >"$IMG/etc/ld.so.conf"
[[ -z $(find "$IMG" \( -iname '*nvidia*' -o -iname '*cuda*' \)) ]] || die "the image has NVIDIA files"

# What the container reports, one fact per line.
PROBE_SCRIPT='
for n in /dev/nvidia*; do echo "node $n"; done
echo "visible=$NVIDIA_VISIBLE_DEVICES"
echo "probe: $(probe)"
ldconfig -p | grep -q "libcuda.so.1 .*=> '"$GNU"'/libcuda.so" && echo "ldconfig lists libcuda.so.1"
echo "soname-link=$(readlink '"$GNU"'/libcuda.so.1)"
grep -qx '"$GNU"' /etc/ld.so.conf.d/00-nvidia-runtime.conf && echo "ld.so.conf.d names the dir"
echo "own-gpu: $(cat /dev/nvidia0 2>&1 >/dev/null)"
echo "other-gpu: $(mknod /tmp/other c 195 1 2>&1 && cat /tmp/other 2>&1 >/dev/null)"
if [ -e /proc/driver/nvidia/params ]; then echo "params: $(grep ModifyDeviceFiles /proc/driver/nvidia/params)"; fi
'

test_generate() {
    capture "$RUNTIME" cdi generate --output "$SPEC"
    assert_rc 0 "cdi generate --output $SPEC: rc 0"
    assert_match "$(head -1 "$SPEC")" '^cdiVersion: "?0\.5\.0"?$' "the spec is CDI 0.5.0 (what Podman 4.x reads)"
    capture "$RUNTIME" cdi list --spec-dir "$(dirname "$SPEC")"
    assert_rc 0 "cdi list: rc 0"
    for d in 0 1 all; do assert_contains "$OUT" "nvidia.com/gpu=$d" "cdi list shows nvidia.com/gpu=$d"; done
    assert_not_contains "$ERR" "$SPEC" "cdi list reports nothing about the fresh spec"
    capture pm import - "$IMAGE" < <(tar -C "$IMG" -c .)
    assert_rc 0 "podman import of the glibc image: rc 0"
}

# check_gpu1 WHAT : the facts of a container given nvidia.com/gpu=1 (OUT from PROBE_SCRIPT)
check_gpu1() {
    local what=$1
    assert_eq "$(printf 'node %s\n' /dev/nvidia-modeset /dev/nvidia-uvm /dev/nvidia-uvm-tools /dev/nvidia0 /dev/nvidiactl)" \
        "$(grep '^node ' <<<"$OUT" | sort)" "$what: exactly GPU 1's node (/dev/nvidia0) and the control nodes"
    assert_contains "$OUT" "visible=void" "$what: NVIDIA_VISIBLE_DEVICES=void from the spec"
    assert_contains "$OUT" "probe: $PROBE_OK" "$what: libcuda.so.1 loads and works"
    assert_contains "$OUT" "ldconfig lists libcuda.so.1" "$what: ldconfig -p lists libcuda.so.1"
    assert_contains "$OUT" "soname-link=libcuda.so.$VERSION" "$what: the SONAME link"
    assert_contains "$OUT" "ld.so.conf.d names the dir" "$what: the ld.so.conf.d entry"
    assert_match "$(grep '^own-gpu' <<<"$OUT")" "own-gpu: .*(No such device or address|No such device)" \
        "$what: its GPU's node reaches the (absent) driver"
    assert_match "$(grep '^other-gpu' <<<"$OUT")" "other-gpu: .*Operation not permitted" \
        "$what: the other GPU's node, made with mknod, cannot be opened"
    if [[ -e /proc/driver/nvidia/params ]]; then
        assert_contains "$OUT" "params: ModifyDeviceFiles: 0" "$what: /proc/driver/nvidia/params says ModifyDeviceFiles: 0"
    else
        log "(this host has no NVIDIA driver: /proc/driver/nvidia/params not checked)"
    fi
}

test_podman_with_runc() {
    capture pm_run runc --device nvidia.com/gpu=1 "$IMAGE" sh -c "$PROBE_SCRIPT"
    assert_rc 0 "podman --runtime runc --device nvidia.com/gpu=1: rc 0"
    check_gpu1 "runc"
}

test_podman_with_our_runtime() {
    capture pm_run "$RUNTIME" --device nvidia.com/gpu=1 "$IMAGE" sh -c "$PROBE_SCRIPT"
    assert_rc 0 "podman --runtime \$RUNTIME --device nvidia.com/gpu=1: rc 0"
    check_gpu1 "our runtime"
}

test_stale_spec() {
    local lib=$SIM/usr/local/nvidia/lib64/libnvidia-ml.so.$VERSION
    [[ -f $lib ]] || die "the simulated host has no $lib"
    mv "$lib" "$TEST_TMP/moved-lib"
    capture "$RUNTIME" cdi list --spec-dir "$(dirname "$SPEC")"
    assert_contains "$ERR" "stale CDI spec $SPEC" "cdi list reports the spec as stale, by name"
    assert_contains "$ERR" "$lib no longer exists" "cdi list names the file gone"
    capture pm_run "$RUNTIME" --device nvidia.com/gpu=1 "$IMAGE" true
    assert_rc_nonzero "our runtime refuses a container from the stale spec"
    assert_contains "$OUT$ERR" "$lib" "the refusal names the file gone"
    mv "$TEST_TMP/moved-lib" "$lib"
}

run_tests test_generate test_podman_with_runc test_podman_with_our_runtime test_stale_spec
e2e_finish
