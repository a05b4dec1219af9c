#!/usr/bin/env bash
# tests/e2e/rootfs.sh — what GPU injection does to a container's rootfs, end to end, against
# tests/fixtures/make-driver-root.sh's simulated host (2 GPUs, driver 580.159.04).
#
# The images have busybox, a glibc, Debian's static /sbin/ldconfig with a Debian-like
# /etc/ld.so.conf (`include /etc/ld.so.conf.d/*.conf`), `probe` (dlopen()s a library and
# calls what the simulated driver exports) and a library of their own (libhello.so.1 in
# /opt/hello, not in any loader path: what `apt-get install` of a library looks like before
# ldconfig). Every check looks at what the process inside the container sees, or at the host
# paths a hostile image aims at. Proves:
#  - `ldconfig` run inside a GPU container succeeds (the container's /etc/ld.so.cache is a
#    file it may replace, not a mount), and its new cache still lists the driver's libraries,
#    also from a library dir no ldconfig searches by itself (/usr/lib64 in a Fedora-like
#    image): the loader keeps finding them; on a read-only rootfs `ldconfig -p` lists them;
#  - a rootfs the host cannot write gets the cache as a mount, as before;
#  - a failed create puts the image's own /etc/ld.so.cache back byte for byte and leaves no
#    file of ours in the rootfs; a restart on the same rootfs (also over the empty
#    mount-point file earlier versions left) works without a warning;
#  - every development link the host has for an injected library (libnvidia-ml.so, ...,
#    also one ldconfig never saw) exists in the container, and dlopen("libnvidia-ml.so") works;
#  - a hostile image cache (thousands of entries naming one long string, both formats) costs
#    memory in proportion to its size: the runtime, limited to 1 GiB of address space, starts
#    the container (the cache ignored with a warning);
#  - a FIFO or a device node at /etc/ld.so.cache is never opened by the runtime (inotify sees
#    no open), create does not hang, the container starts;
#  - an image whose /etc/ld.so.cache is a symlink (dangling, out of the rootfs, climbing with
#    ../), a directory, or whose /etc is a symlink out of the rootfs starts, loads libcuda and
#    is warned that ldconfig -p won't list the libraries; that path and the host file a link
#    aims at stay as they were, also after a failed create;
#  - a failed create points the image's own SONAME links back where they pointed (also a
#    dangling one), and a 70 MiB image cache is left byte for byte (never a truncated copy);
#  - the copy of the image's cache kept in the bundle is readable by root only;
#  - an image whose /dev is a symlink to a host directory (absolute, or climbing with ../) gets
#    nothing created there: a GPU container is refused, naming /dev; one without GPUs gets its
#    /dev links and device nodes where the link leads inside its rootfs, with the spec's /dev
#    mounts or without; a /dev/shm link to a host dir gets the spec's tmpfs inside the rootfs;
#  - in a user namespace, what the image has at a device path is mounted over, not opened;
# and through a private dockerd with `default-runtime: nvidia`: a `docker build` RUN step and a
# restarted container run ldconfig and still load libcuda.
# Validated against runc (RUNTIME=$(command -v runc)): every check that depends on injection
# fails there.
source "$(dirname "$0")/../lib.sh"
e2e_init "$@"
need_cmd gcc gcc
need_cmd ldconfig libc-bin
need_cmd sha256sum coreutils
need_cmd prlimit util-linux

VERSION=580.159.04
GNU=/usr/lib/x86_64-linux-gnu

sim_host 2 ""

# --- images --------------------------------------------------------------------

build_probe
echo 'const char *nvsim_marker(void) { return "hello"; }' >"$TEST_TMP/hello.c"
gcc -shared -fPIC -nostdlib -o "$TEST_TMP/libhello.so.1" -Wl,-soname,libhello.so.1 "$TEST_TMP/hello.c" \
    || die "cannot compile libhello"

# image_common DIR : busybox, probe, ldconfig, a Debian-like ld.so.conf, libhello in /opt/hello
image_common() {
    local dir=$1
    make_busybox_rootfs "$dir"
    cp "$TEST_TMP/probe" "$dir/usr/bin/probe"
    if [[ -x /sbin/ldconfig.real ]]; then cp /sbin/ldconfig.real "$dir/sbin/ldconfig"; else cp -L /sbin/ldconfig "$dir/sbin/ldconfig"; fi
    file_is_static "$dir/sbin/ldconfig" || die "the host's ldconfig is not a static binary"
    mkdir -p "$dir/etc/ld.so.conf.d" "$dir/opt/hello" "$dir/var/cache/ldconfig"
    echo 'include /etc/ld.so.conf.d/*.conf' >"$dir/etc/ld.so.conf"
    cp "$TEST_TMP/libhello.so.1" "$dir/opt/hello/"
}
# Debian-like: glibc in the multiarch dir, where the runtime also puts the driver's libraries.
GLIBC_IMAGE=$TEST_TMP/.glibc-image
image_common "$GLIBC_IMAGE"
mkdir -p "$GLIBC_IMAGE/lib/x86_64-linux-gnu" "$GLIBC_IMAGE/lib64"
while read -r lib; do
    case $lib in
        /lib64/*) cp -L "$lib" "$GLIBC_IMAGE/lib64/" ;;
        *) cp -L "$lib" "$GLIBC_IMAGE/lib/x86_64-linux-gnu/" ;;
    esac
done < <(ldd "$TEST_TMP/probe" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
[[ -x $GLIBC_IMAGE/lib64/ld-linux-x86-64.so.2 ]] || die "the image lacks glibc's loader"
# Fedora-like: no multiarch dir, so the runtime puts the driver's libraries in /usr/lib64,
# which neither this glibc's loader nor its ldconfig searches by itself (libc in /usr/lib is).
LIB64_IMAGE=$TEST_TMP/.lib64-image
image_common "$LIB64_IMAGE"
mkdir -p "$LIB64_IMAGE/lib64" "$LIB64_IMAGE/usr/lib"
while read -r lib; do
    case $lib in
        /lib64/*) cp -L "$lib" "$LIB64_IMAGE/lib64/" ;;
        *) cp -L "$lib" "$LIB64_IMAGE/usr/lib/" ;;
    esac
done < <(ldd "$TEST_TMP/probe" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
[[ -z $(find "$GLIBC_IMAGE" "$LIB64_IMAGE" \( -iname '*nvidia*' -o -iname '*cuda*' \)) ]] || die "an image has NVIDIA files"
MUSL_IMAGE=$TEST_TMP/.musl-image
make_busybox_rootfs "$MUSL_IMAGE"
mkdir -p "$MUSL_IMAGE/lib"
echo "not really musl" >"$MUSL_IMAGE/lib/ld-musl-x86_64.so.1"

# --- helpers --------------------------------------------------------------------

B=""
# gpu_bundle NAME [IMAGE] [ENV...] : bundle $TEST_TMP/NAME with a copy of IMAGE (default: the
# Debian-like one) and ENV added to process.env; sets B.
gpu_bundle() {
    local name=$1 image=${2:-$GLIBC_IMAGE}
    shift
    (($#)) && shift
    B=$TEST_TMP/$name
    mkdir -p "$B/rootfs"
    cp -a "$image/." "$B/rootfs/"
    make_bundle "$B" sh
    if (($#)); then
        python3 - "$B/config.json" "$@" <<'EOF'
import json, sys
path = sys.argv[1]
with open(path) as f: c = json.load(f)
c["process"]["env"] += sys.argv[2:]
with open(path, "w") as f: json.dump(c, f, indent=2)
EOF
    fi
    return 0
}
tree_of() { (cd "$1" && find . | LC_ALL=C sort); }
# names the new cache lists, of those that match ERE
listed() { echo "ldconfig -p | sed 's/^[[:space:]]*//' | cut -d' ' -f1 | grep -E '$1' | LC_ALL=C sort -u"; }

# --- ldconfig inside the container --------------------------------------------------

test_ldconfig_in_a_gpu_container() {
    gpu_bundle ldconfig "" NVIDIA_VISIBLE_DEVICES=all
    # what `apt-get install` of a library does: a file, a conf entry, ldconfig
    in_ctr "echo /opt/hello >/etc/ld.so.conf.d/hello.conf; ldconfig; echo ldconfig-rc=\$?; $(listed '^lib(cuda|nvidia-ml|hello)\.so\.1$'); probe; probe libhello.so.1"
    assert_rc 0 "ldconfig in a GPU container: runs"
    assert_eq "ldconfig-rc=0"$'\n'"libcuda.so.1"$'\n'"libhello.so.1"$'\n'"libnvidia-ml.so.1"$'\n'"$PROBE_OK"$'\n'"version=-1 marker=hello" "$OUT" \
        "ldconfig exits 0; its new cache lists the image's new library and libcuda.so.1, libnvidia-ml.so.1; both load"
    assert_not_contains "$ERR$OUT" "Device or resource busy" "no EBUSY from ldconfig"
    # a second container on the same rootfs (a restart): ldconfig again
    in_ctr "ldconfig; echo ldconfig-rc=\$?; $(listed '^libcuda\.so\.1$'); probe"
    assert_eq "ldconfig-rc=0"$'\n'"libcuda.so.1"$'\n'"$PROBE_OK" "$OUT" "restarted: ldconfig again, libcuda still listed and loading"
}

test_ldconfig_keeps_a_dir_it_does_not_search_itself() {
    gpu_bundle lib64 "$LIB64_IMAGE" NVIDIA_VISIBLE_DEVICES=all
    in_ctr "probe; ls /usr/lib64/libcuda.so.1"
    assert_eq "$PROBE_OK"$'\n'"/usr/lib64/libcuda.so.1" "$OUT" "Fedora-like image: libcuda.so.1 in /usr/lib64 loads (found through the cache)"
    in_ctr "ldconfig; echo ldconfig-rc=\$?; $(listed '^lib(cuda|nvidia-ml)\.so\.1$'); probe; probe libnvidia-ml.so.1"
    assert_eq "ldconfig-rc=0"$'\n'"libcuda.so.1"$'\n'"libnvidia-ml.so.1"$'\n'"$PROBE_OK"$'\n'"version=-1 marker=nvsim-libnvidia-ml" "$OUT" \
        "Fedora-like image: after ldconfig, /usr/lib64's driver libraries are still listed and load (ld.so.conf.d names the dir)"
}

test_readonly_rootfs_lists_the_libraries() {
    gpu_bundle readonly "" NVIDIA_VISIBLE_DEVICES=all
    bundle_set "$B" 'c["root"]["readonly"] = True'
    in_ctr "$(listed '^lib(cuda|nvidia-ml)\.so\.1$'); probe; touch /written 2>&1; echo touch-rc=\$?"
    assert_rc 0 "read-only rootfs: runs"
    assert_eq "libcuda.so.1"$'\n'"libnvidia-ml.so.1"$'\n'"$PROBE_OK"$'\n'"touch: /written: Read-only file system"$'\n'"touch-rc=1" "$OUT" \
        "read-only rootfs: ldconfig -p lists the driver's libraries, libcuda loads, / stays read-only"
}

test_images_with_and_without_a_cache() {
    gpu_bundle own-cache "" NVIDIA_VISIBLE_DEVICES=all
    ldconfig -r "$B/rootfs"
    in_ctr "$(listed '^lib(c|cuda)\.so\.[0-9]+$'); probe; ldconfig && $(listed '^lib(c|cuda)\.so\.[0-9]+$')"
    assert_eq "libc.so.6"$'\n'"libcuda.so.1"$'\n'"$PROBE_OK"$'\n'"libc.so.6"$'\n'"libcuda.so.1" "$OUT" \
        "image with its own cache: the image's libc.so.6 and libcuda.so.1 listed, before and after ldconfig"

    gpu_bundle no-cache "" NVIDIA_VISIBLE_DEVICES=all
    in_ctr "$(listed '^libcuda\.so\.1$'); probe"
    assert_eq "libcuda.so.1"$'\n'"$PROBE_OK" "$OUT" "image without a cache: libcuda.so.1 listed and loading"

    gpu_bundle musl "$MUSL_IMAGE" NVIDIA_VISIBLE_DEVICES=all
    in_ctr 'readlink /usr/lib/libcuda.so.1; grep -q nvsim-libcuda /usr/lib/libcuda.so.1 && echo marker'
    assert_rc 0 "musl image: runs"
    assert_eq "libcuda.so.$VERSION"$'\n'"marker" "$OUT" "musl image: libcuda.so.1 in /usr/lib"
}

# A rootfs the host cannot write (here a read-only bind mount over it, on a second start when
# the links already exist): the cache is mounted from the bundle instead, said at debug level.
_run_debug() ( cd "$1" && rt --debug run "$2" </dev/null )
test_rootfs_not_writable_from_the_host() {
    gpu_bundle host-ro "" NVIDIA_VISIBLE_DEVICES=all
    bundle_args "$B" sh -c "$(listed '^lib(cuda|nvidia-ml)\.so\.1$'); probe"
    cp "$B/config.json" "$TEST_TMP/host-ro.json"
    run_as_is
    assert_eq "libcuda.so.1"$'\n'"libnvidia-ml.so.1"$'\n'"$PROBE_OK" "$OUT" "first start, rootfs writable: libraries listed and loading"
    cp "$TEST_TMP/host-ro.json" "$B/config.json"
    mount --bind "$B/rootfs" "$B/rootfs"
    mount -o remount,bind,ro "$B/rootfs"
    assert_false "the rootfs is read-only for the host now" touch "$B/rootfs/etc/probe-write"
    capture _run_debug "$B" host-ro
    umount "$B/rootfs"
    assert_rc 0 "rootfs read-only for the host: runs"
    assert_eq "libcuda.so.1"$'\n'"libnvidia-ml.so.1"$'\n'"$PROBE_OK" "$OUT" "…libraries listed and loading (the cache mounted from the bundle)"
    assert_contains "$ERR" "level=debug msg=\"the container's ld.so.cache is mounted, not written" "…and the debug log says why"
    assert_not_contains "$ERR" "level=warning msg=\"the container's ld.so.cache" "…without a warning"
}

# Earlier versions mounted the cache, and libcontainer left an empty file as the mount point:
# a container restarted on that rootfs must work, without a warning about a broken cache.
test_restart_over_an_old_mount_point() {
    gpu_bundle old-mount-point "" NVIDIA_VISIBLE_DEVICES=all
    : >"$B/rootfs/etc/ld.so.cache"
    bundle_args "$B" sh -c "$(listed '^libcuda\.so\.1$'); probe"
    cp "$B/config.json" "$TEST_TMP/old-mount-point.json"
    run_as_is
    assert_eq "libcuda.so.1"$'\n'"$PROBE_OK" "$OUT" "over the empty mount-point file: libcuda listed and loading"
    assert_not_contains "$ERR" "level=warning" "…without a warning"
    cp "$TEST_TMP/old-mount-point.json" "$B/config.json"
    run_as_is
    assert_eq "libcuda.so.1"$'\n'"$PROBE_OK" "$OUT" "started again from a fresh config.json on that rootfs: the same"
    assert_not_contains "$ERR" "level=warning" "…without a warning"
}

# run_refused_late LABEL : a create libcontainer refuses after the injection (a namespace
# path that does not exist) leaves the rootfs as it was: same tree, same cache bytes.
run_refused_late() {
    local label=$1 sha_before tree_before cache_before
    bundle_set "$B" 'c["linux"]["namespaces"].append({"type": "cgroup", "path": "/nonexistent/ns/cgroup"})'
    bundle_args "$B" echo program-ran
    sha_before=$(sha_of "$B/config.json")
    tree_before=$(tree_of "$B/rootfs")
    cache_before=$( [[ -f $B/rootfs/etc/ld.so.cache ]] && sha_of "$B/rootfs/etc/ld.so.cache" || echo none)
    run_as_is
    assert_rc_nonzero "$label: run fails"
    assert_eq "$sha_before" "$(sha_of "$B/config.json")" "$label: config.json unchanged"
    assert_eq "$tree_before" "$(tree_of "$B/rootfs")" "$label: the rootfs has exactly the files it had"
    assert_eq "$cache_before" "$( [[ -f $B/rootfs/etc/ld.so.cache ]] && sha_of "$B/rootfs/etc/ld.so.cache" || echo none)" \
        "$label: /etc/ld.so.cache as it was"
    assert_eq "config.json rootfs" "$(ls -A "$B" | tr '\n' ' ' | sed 's/ $//')" "$label: nothing else left in the bundle"
}
test_failed_create_restores_the_rootfs() {
    gpu_bundle refused-own-cache "" NVIDIA_VISIBLE_DEVICES=all
    ldconfig -r "$B/rootfs"
    run_refused_late "image with a cache"
    gpu_bundle refused-no-cache "" NVIDIA_VISIBLE_DEVICES=all
    run_refused_late "image without a cache"
    gpu_bundle refused-no-etc "$MUSL_IMAGE" NVIDIA_VISIBLE_DEVICES=all
    rm -rf "$B/rootfs/etc"
    run_refused_late "image without /etc"
}

# --- development links ----------------------------------------------------------------

test_development_links() {
    gpu_bundle devlinks "" NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=all
    # every symlink of the driver root's library dirs that leads to a driver library
    local links=() l
    for l in "$SIM"/usr/local/nvidia/lib64/*.so "$SIM"/usr/local/nvidia/lib64/*.so.* "$SIM/$GNU"/*.so "$SIM/$GNU"/*.so.*; do
        [[ -L $l && $(readlink -f "$l") == *.so.* ]] && links+=("$(basename "$l")")
    done
    ((${#links[@]} > 20)) || { fail "the driver root has too few links (${#links[@]})"; return; }
    local script=""
    for l in "${links[@]}"; do script+="[ -L $GNU/$l ] && [ -f $GNU/$l ] && echo ok || echo missing:$l;"; done
    in_ctr "$script"
    assert_eq "$(printf 'ok\n%.0s' "${links[@]}" | sed '$d')"$'\n'"ok" "$OUT" \
        "all ${#links[@]} links of the driver's library dirs exist in the container and lead to a file"
    in_ctr "probe libnvidia-ml.so; probe libnvidia-ptxjitcompiler.so; readlink $GNU/libnvidia-ml.so; readlink $GNU/libnvidia-allocator.so"
    assert_eq "version=-1 marker=nvsim-libnvidia-ml"$'\n'"version=-1 marker=nvsim-libnvidia-ptxjitcompiler"$'\n'"libnvidia-ml.so.1"$'\n'"libnvidia-allocator.so.1" "$OUT" \
        "dlopen(\"libnvidia-ml.so\") and (\"libnvidia-ptxjitcompiler.so\") work; the links point as the host's do (also one ldconfig never listed)"
    in_ctr "$(listed '^lib(nvidia-ml|cuda)\.so$')"
    assert_eq "libcuda.so"$'\n'"libnvidia-ml.so" "$OUT" "ldconfig -p lists the development names"

    gpu_bundle devlinks-utility "" NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=utility
    in_ctr "ls $GNU | grep -E '^lib(cuda|nvidia-ml)\.so' | LC_ALL=C sort"
    assert_eq "libnvidia-ml.so"$'\n'"libnvidia-ml.so.1"$'\n'"libnvidia-ml.so.$VERSION" "$OUT" \
        "utility only: libnvidia-ml's links, none of libcuda's"
}

# --- hostile image caches ---------------------------------------------------------------

# hostile_cache FORMAT OUT : a cache of ~2 MB whose 40000 entries all name one 1 MB string
hostile_cache() {
    python3 - "$1" "$2" <<'EOF'
import struct, sys
fmt, out = sys.argv[1], sys.argv[2]
n, long = 40000, b"/" + b"a" * (1 << 20) + b"\0"
if fmt == "new":
    strings_at = 48 + 24 * n
    head = b"glibc-ld.so.cache1.1" + struct.pack("<II", n, len(long)) + bytes([2, 0, 0, 0]) + struct.pack("<I", 0) + bytes(12)
    entries = struct.pack("<iIIIQ", 0x0303, strings_at, strings_at, 0, 0) * n
else:
    head = b"ld.so-1.7.0\0" + struct.pack("<I", n)
    entries = struct.pack("<iII", 0x0303, 0, 0) * n
open(out, "wb").write(head + entries + long)
EOF
}
test_hostile_image_cache() {
    local fmt
    for fmt in new old; do
        gpu_bundle "hostile-$fmt" "" NVIDIA_VISIBLE_DEVICES=all
        hostile_cache "$fmt" "$B/rootfs/etc/ld.so.cache"
        local size; size=$(stat -c %s "$B/rootfs/etc/ld.so.cache")
        bundle_args "$B" probe
        local start=$SECONDS
        # 1 GiB of address space is far more than the runtime needs, and far less than a
        # parser that copies the long string for every entry would take (80 GB)
        capture prlimit --as=$((1 << 30)) -- bash -c 'cd "$1" && exec timeout -k 5 60 "$RUNTIME" --root "$2" run "$3" </dev/null' _ "$B" "$STATE" "hostile-$fmt"
        assert_rc 0 "$fmt-format cache of $size bytes naming one 1 MB string 80000 times: the container starts under a 1 GiB limit"
        assert_eq "$PROBE_OK" "$OUT" "$fmt format: libcuda loads"
        assert_contains "$ERR" "ld.so.cache" "$fmt format: a warning names the image's cache"
        assert_not_contains "$ERR" "memory allocation" "$fmt format: no allocation failure"
        (( SECONDS - start < 20 )) && pass "$fmt format: done in $((SECONDS - start)) s" || fail "$fmt format: took $((SECONDS - start)) s"
    done
}

# --- files that are not files ----------------------------------------------------------

# watch_opens PATH : starts an inotify watch on PATH (not followed); sets WATCH_PID and
# WATCH_OUT, where it writes "ready", then one line per open of PATH's inode.
watch_opens() {
    WATCH_OUT=$TEST_TMP/watch.$RANDOM
    python3 -c '
import ctypes, os, select, sys
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init1(0)
IN_OPEN, IN_DONT_FOLLOW = 0x20, 0x02000000
if libc.inotify_add_watch(fd, sys.argv[1].encode(), IN_OPEN | IN_DONT_FOLLOW) < 0:
    sys.exit("inotify_add_watch failed")
out = open(sys.argv[2], "w", buffering=1)
out.write("ready\n")
while True:
    if select.select([fd], [], [], 1)[0]:
        os.read(fd, 4096)
        out.write("opened\n")
' "$1" "$WATCH_OUT" &
    WATCH_PID=$!
    wait_for 10 grep -q ready "$WATCH_OUT" || die "the inotify watch did not start"
}
stop_watch() { kill "$WATCH_PID" 2>/dev/null; wait "$WATCH_PID" 2>/dev/null || true; }

test_fifo_and_device_at_the_cache_path() {
    local kind
    for kind in fifo null-device; do
        gpu_bundle "odd-$kind" "" NVIDIA_VISIBLE_DEVICES=all
        case $kind in
            fifo) mkfifo "$B/rootfs/etc/ld.so.cache" ;;
            null-device) mknod -m 0666 "$B/rootfs/etc/ld.so.cache" c 1 3 ;;
        esac
        # the static busybox only: nothing in the container opens the cache either
        bundle_args "$B" echo program-ran
        watch_opens "$B/rootfs/etc/ld.so.cache"
        local start=$SECONDS
        capture bash -c 'cd "$1" && exec timeout -k 5 20 "$RUNTIME" --root "$2" run "$3" </dev/null' _ "$B" "$STATE" "odd-$kind"
        sleep 0.5
        stop_watch
        assert_eq "ready" "$(cat "$WATCH_OUT")" "$kind at /etc/ld.so.cache: never opened"
        assert_rc 0 "$kind at /etc/ld.so.cache: the container starts (rc 0, in $((SECONDS - start)) s)"
        assert_eq "program-ran" "$OUT" "$kind: the program ran"
        assert_contains "$ERR" "/etc/ld.so.cache" "$kind: a warning names /etc/ld.so.cache"
        bundle_args "$B" probe
        capture bash -c 'cd "$1" && exec timeout -k 5 20 "$RUNTIME" --root "$2" run "$3" </dev/null' _ "$B" "$STATE" "odd-$kind"
        assert_eq "$PROBE_OK" "$OUT" "$kind: libcuda loads"
    done
}

# In a user namespace libcontainer bind-mounts device nodes instead of making them; where the
# image already has something at the node's path (no /dev mount here), it must mount over it,
# not open it: a FIFO would hang, a device node of the image's choosing would be opened.
test_userns_device_paths_are_not_opened() {
    gpu_bundle userns-dev "" 
    bundle_set "$B" 'c["mounts"] = [m for m in c["mounts"] if not m["destination"].startswith("/dev")]
c["linux"]["namespaces"].append({"type": "user"})
c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]'
    rm -f "$B/rootfs/dev/null"
    mkfifo "$B/rootfs/dev/null"
    bundle_args "$B" echo program-ran
    watch_opens "$B/rootfs/dev/null"
    capture bash -c 'cd "$1" && exec timeout -k 5 20 "$RUNTIME" --root "$2" run "$3" </dev/null' _ "$B" "$STATE" userns-dev
    sleep 0.5
    stop_watch
    assert_eq "ready" "$(cat "$WATCH_OUT")" "user namespace, a FIFO at /dev/null in the image: never opened"
    assert_rc 0 "…and the container starts"
    assert_eq "program-ran" "$OUT" "…its program ran"
}

# --- /dev a symlink to a host directory ----------------------------------------------------

test_dev_symlink_to_a_host_dir() {
    local host_dir=$TEST_TMP/host-dev
    mkdir -p "$host_dir"
    gpu_bundle dev-link "" NVIDIA_VISIBLE_DEVICES=all
    rm -rf "$B/rootfs/dev"
    ln -s "$host_dir" "$B/rootfs/dev"
    bundle_set "$B" 'c["mounts"] = [m for m in c["mounts"] if not m["destination"].startswith("/dev")]'
    bundle_args "$B" sh -c 'ls /dev/nvidia0 /dev/null'
    local before; before=$(sha_of "$B/config.json")
    run_as_is
    assert_eq "" "$(ls -A "$host_dir")" "/dev -> a host dir: nothing created in the host dir"
    if [[ $RC == 0 ]]; then
        assert_eq "/dev/null"$'\n'"/dev/nvidia0" "$OUT" "/dev -> a host dir: started, with the devices inside its rootfs"
    else
        assert_contains "$ERR" "/dev" "/dev -> a host dir: refused, the error names /dev"
        assert_eq "$before" "$(sha_of "$B/config.json")" "/dev -> a host dir: refused, config.json unchanged"
    fi
}

# escape_link DIR TARGET : a relative link target that, from DIR, climbs to the host's / and
# then goes to the absolute path TARGET (inside the container it just names TARGET).
escape_link() {
    local up="" rest=$1
    while [[ $rest != / && -n $rest ]]; do up+="../"; rest=$(dirname "$rest"); done
    echo "$up${2#/}"
}
# no_leftovers ID BUNDLE WHAT : neither state nor a cgroup of container ID is left.
no_leftovers() {
    capture rt state "$1"
    assert_rc_nonzero "$3: no state is left"
    assert_eq "" "$(cgroup_dirs_for "$(bundle_cgroup_path "$2")")" "$3: no cgroup is left"
}
# Containers that ask for no GPU: the default /dev links (fd, stdin, ptmx, kcore…) and the
# device nodes are made by libcontainer, through the image's /dev link (to a host dir, absolute
# or climbing with ../). All of it must stay inside the rootfs, whether the image also has the
# link's target (then the container runs, its devices there) or not, and with the spec's /dev
# mounts or without any.
test_dev_symlink_without_gpu() {
    local how mounts has host_dir id target what
    for how in absolute relative; do
        for mounts in no-dev-mounts dev-mounts; do
            for has in image-has-target no-target-in-image; do
                id=devlink-$how-$mounts-$has
                what="/dev -> host dir ($how, $mounts, $has), no GPU"
                host_dir=$TEST_TMP/host-$id
                mkdir -p "$host_dir"
                B=$TEST_TMP/$id
                make_bundle "$B" sh
                rm -rf "$B/rootfs/dev"
                if [[ $how == absolute ]]; then target=$host_dir; else target=$(escape_link "$B/rootfs" "$host_dir"); fi
                ln -s "$target" "$B/rootfs/dev"
                [[ $(readlink -f "$B/rootfs/dev") == "$host_dir" ]] || die "the link does not reach $host_dir"
                [[ $has == no-target-in-image ]] || mkdir -p "$B/rootfs$host_dir"
                [[ $mounts == dev-mounts ]] \
                    || bundle_set "$B" 'c["mounts"] = [m for m in c["mounts"] if not m["destination"].startswith("/dev")]'
                bundle_args "$B" sh -c 'test -c /dev/null && test -c /dev/zero && echo devices-ok; readlink /dev/stdin; readlink /dev/ptmx'
                run_as_is
                assert_eq "" "$(find "$host_dir" -mindepth 1)" "$what: nothing created in the host dir"
                if [[ $RC == 0 ]]; then
                    assert_eq "devices-ok"$'\n'"/proc/self/fd/0"$'\n'"pts/ptmx" "$OUT" "$what: started, its devices and links in its /dev"
                    [[ $mounts == dev-mounts ]] \
                        || assert_true "$what: …made in the rootfs, where its /dev leads" test -c "$B/rootfs$host_dir/null"
                else
                    assert_eq "no-target-in-image" "$has" "$what: refused only when the link leads nowhere in the image"
                    assert_contains "$ERR" "/dev" "$what: refused, the error names /dev"
                fi
                no_leftovers "$id" "$B" "$what"
            done
        done
    done
}
# A real /dev whose shm is a link to a host dir, and a spec that mounts /dev/shm but not /dev:
# the tmpfs lands inside the rootfs and what the container writes there stays out of the host dir.
test_dev_shm_symlink_to_a_host_dir() {
    local how has host_dir id target what
    for how in absolute relative; do
        for has in image-has-target no-target-in-image; do
            id=shmlink-$how-$has
            what="/dev/shm -> host dir ($how, $has)"
            host_dir=$TEST_TMP/host-$id
            mkdir -p "$host_dir"
            B=$TEST_TMP/$id
            make_bundle "$B" sh
            if [[ $how == absolute ]]; then target=$host_dir; else target=$(escape_link "$B/rootfs/dev" "$host_dir"); fi
            rm -rf "$B/rootfs/dev/shm"
            mkdir -p "$B/rootfs/dev"
            ln -s "$target" "$B/rootfs/dev/shm"
            [[ $(readlink -f "$B/rootfs/dev/shm") == "$host_dir" ]] || die "the link does not reach $host_dir"
            [[ $has == no-target-in-image ]] || mkdir -p "$B/rootfs$host_dir"
            bundle_set "$B" 'c["mounts"] = [m for m in c["mounts"] if m["destination"] != "/dev"]'
            # what the container writes there, and the type of the file system mounted where
            # /dev/shm leads (the link's target, inside the container)
            cat >"$B/rootfs/check-shm" <<EOF
echo x >/dev/shm/written && cat /dev/shm/written
awk '\$5 == "$host_dir" { for (i = 7; i < NF; i++) if (\$i == "-") print \$(i + 1) }' /proc/self/mountinfo
EOF
            bundle_args "$B" sh /check-shm
            run_as_is
            assert_eq "" "$(find "$host_dir" -mindepth 1)" "$what: nothing created in the host dir"
            if [[ $RC == 0 ]]; then
                assert_eq "x"$'\n'"tmpfs" "$OUT" "$what: started, the tmpfs mounted inside the rootfs"
            else
                assert_eq "no-target-in-image" "$has" "$what: refused only when the link leads nowhere in the image"
                assert_contains "$ERR" "/dev/shm" "$what: refused, the error names /dev/shm"
            fi
            no_leftovers "$id" "$B" "$what"
        done
    done
}

# --- docker ----------------------------------------------------------------------------

# `docker build` under `default-runtime: nvidia`: a RUN step of an image that asks for GPUs
# runs ldconfig (what every `apt-get install` of a library does); a restarted container too.
test_docker_build_and_restart_run_ldconfig() {
    capture docker_ build -q -t gpuimg-built - <<EOF
FROM gpuimg
ENV NVIDIA_VISIBLE_DEVICES=all
RUN ldconfig && ldconfig -p | grep -q "libcuda\.so\.1 " && probe
EOF
    assert_rc 0 "docker build: a RUN step with ldconfig succeeds and still finds libcuda"
    capture docker_ run --rm --network=none gpuimg-built sh -c "ldconfig; echo ldconfig-rc=\$?; probe"
    assert_eq "ldconfig-rc=0"$'\n'"$PROBE_OK" "$OUT" "docker run (default runtime nvidia): ldconfig exits 0, libcuda loads"
    local id
    id=$(docker_ run -d --network=none gpuimg-built sh -c "ldconfig && probe && sleep 1000")
    capture docker_ restart -t 1 "$id"
    assert_rc 0 "docker restart of a GPU container"
    wait_for 20 sh -c "[ \$(timeout 10 docker -H unix://$D/docker.sock logs $id 2>&1 | grep -c version=13000) -ge 2 ]" || true
    assert_eq 2 "$(docker_ logs "$id" 2>&1 | grep -c "$PROBE_OK")" "…both starts ran ldconfig and loaded libcuda"
    docker_ rm -f "$id" >/dev/null
}

# --- what the image has at the cache path or at a link's path, kept --------------------

# odd_cache_image KIND : a GPU bundle whose /etc/ld.so.cache (or /etc) is KIND; HOST_FILE is
# a host file an escaping link aims at, which must stay as it is.
HOST_FILE=""
odd_cache_image() {
    gpu_bundle "cache-$1" "" NVIDIA_VISIBLE_DEVICES=all
    HOST_FILE=$TEST_TMP/host-$1/ld.so.cache
    mkdir -p "$(dirname "$HOST_FILE")"
    echo "host's own" >"$HOST_FILE"
    local etc=$B/rootfs/etc
    rm -rf "$etc/ld.so.cache"
    case $1 in
        dangling-link) ln -s /nonexistent/ld.so.cache "$etc/ld.so.cache" ;;
        link-out) ln -s "$HOST_FILE" "$etc/ld.so.cache" ;;
        climbing-link) ln -s "../../../../../../../../..$HOST_FILE" "$etc/ld.so.cache" ;;
        directory) mkdir "$etc/ld.so.cache" && echo image >"$etc/ld.so.cache/inside" ;;
        etc-link-out)
            cp -a "$etc/." "$(dirname "$HOST_FILE")/"
            echo "host's own" >"$HOST_FILE"
            rm -rf "$etc" && ln -s "$(dirname "$HOST_FILE")" "$etc"
            ;;
    esac
}
what_is_at() { if [[ -L $1 ]]; then echo "link to $(readlink "$1")"; elif [[ -d $1 ]]; then echo "dir: $(ls -A "$1")"; else sha_of "$1"; fi; }

test_cache_path_not_a_regular_file() {
    local kind before host_before host_tree
    for kind in dangling-link link-out climbing-link directory etc-link-out; do
        odd_cache_image "$kind"
        before=$(what_is_at "$B/rootfs/etc/ld.so.cache")
        host_before=$(sha_of "$HOST_FILE")
        host_tree=$(tree_of "$(dirname "$HOST_FILE")")
        run_refused_late "$kind, failed create"
        assert_eq "$host_before" "$(sha_of "$HOST_FILE")" "$kind, failed create: the host file is untouched"
        bundle_set "$B" 'c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if "path" not in n]'
        bundle_args "$B" probe
        run_as_is
        assert_rc 0 "$kind at /etc/ld.so.cache: the container starts"
        assert_eq "$PROBE_OK" "$OUT" "$kind: libcuda loads from the image's library dir"
        assert_contains "$ERR" "/etc/ld.so.cache" "$kind: a warning names /etc/ld.so.cache"
        assert_contains "$ERR" "ldconfig -p" "$kind: …and says ldconfig -p does not list the libraries"
        assert_eq "$before" "$(what_is_at "$B/rootfs/etc/ld.so.cache")" "$kind: the image's /etc/ld.so.cache is as it was"
        assert_eq "$host_before" "$(sha_of "$HOST_FILE")" "$kind: the host file a link aims at is untouched"
        assert_eq "$host_tree" "$(tree_of "$(dirname "$HOST_FILE")")" "$kind: nothing added next to it on the host"
    done
}

test_failed_create_keeps_the_image_links() {
    gpu_bundle image-links "" NVIDIA_VISIBLE_DEVICES=all
    local lib=$B/rootfs/usr/lib/x86_64-linux-gnu
    mkdir -p "$B/rootfs/opt/stub" "$lib"
    echo stub >"$B/rootfs/opt/stub/libcuda.so.1"
    ln -s /opt/stub/libcuda.so.1 "$lib/libcuda.so.1"
    ln -s /opt/gone/libnvidia-ml.so.1 "$lib/libnvidia-ml.so.1"
    run_refused_late "image with its own links"
    assert_eq "/opt/stub/libcuda.so.1" "$(readlink "$lib/libcuda.so.1")" "failed create: the image's libcuda.so.1 link points where it did"
    assert_eq "/opt/gone/libnvidia-ml.so.1" "$(readlink "$lib/libnvidia-ml.so.1" || echo deleted)" \
        "failed create: the image's dangling libnvidia-ml.so.1 link is kept"
    bundle_set "$B" 'c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if "path" not in n]'
    bundle_args "$B" probe
    run_as_is
    assert_eq "$PROBE_OK" "$OUT" "then a create that succeeds: the driver's libcuda loads"
    assert_match "$(readlink "$lib/libcuda.so.1")" '^libcuda\.so\.580' "…through the image's link, now pointed at the driver's library"
}

test_big_image_cache_kept_whole() {
    gpu_bundle big-cache "" NVIDIA_VISIBLE_DEVICES=all
    head -c 70M /dev/urandom >"$B/rootfs/etc/ld.so.cache"
    run_refused_late "70 MiB image cache"
    local sha
    sha=$(sha_of "$B/rootfs/etc/ld.so.cache")
    bundle_set "$B" 'c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if "path" not in n]'
    bundle_args "$B" probe
    run_as_is
    assert_rc 0 "70 MiB image cache: the container starts"
    assert_eq "$PROBE_OK" "$OUT" "70 MiB image cache: libcuda loads"
    assert_contains "$ERR" "bigger than" "70 MiB image cache: a warning says it is too big"
    assert_eq "$sha" "$(sha_of "$B/rootfs/etc/ld.so.cache")" "70 MiB image cache: left as it was"
}

test_saved_image_file_is_private() {
    gpu_bundle private-cache "" NVIDIA_VISIBLE_DEVICES=all
    echo secret >"$B/rootfs/etc/ld.so.cache"
    chmod 600 "$B/rootfs/etc/ld.so.cache"
    bundle_args "$B" probe
    run_as_is
    assert_eq "$PROBE_OK" "$OUT" "image cache readable by root only: libcuda loads"
    assert_eq "600" "$(stat -c %a "$B/.nvidia-runtime/image-ld.so.cache")" \
        "…and the copy of it kept in the bundle is readable by root only too"
}

run_tests \
    test_saved_image_file_is_private test_cache_path_not_a_regular_file test_failed_create_keeps_the_image_links \
    test_big_image_cache_kept_whole \
    test_ldconfig_in_a_gpu_container test_ldconfig_keeps_a_dir_it_does_not_search_itself \
    test_readonly_rootfs_lists_the_libraries test_images_with_and_without_a_cache \
    test_restart_over_an_old_mount_point test_rootfs_not_writable_from_the_host \
    test_failed_create_restores_the_rootfs \
    test_development_links test_hostile_image_cache test_fifo_and_device_at_the_cache_path \
    test_userns_device_paths_are_not_opened \
    test_dev_symlink_to_a_host_dir test_dev_symlink_without_gpu test_dev_shm_symlink_to_a_host_dir

if [[ -z $E2E_FILTER ]] || [[ test_docker_build_and_restart_run_ldconfig =~ $E2E_FILTER ]]; then
    start_dockerd --name rootfs-docker --default-runtime nvidia
    tar -C "$GLIBC_IMAGE" -c . | docker_ import -c 'CMD ["sh"]' \
        -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - gpuimg >/dev/null
    run_tests test_docker_build_and_restart_run_ldconfig
fi
e2e_finish
