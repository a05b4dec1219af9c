#!/usr/bin/env bash
# tests/e2e/package.sh — the Debian package, installed with dpkg into a clean Debian rootfs.
#
# Builds the .deb with hack/package --no-build (it packages the binary hack/build made;
# E2E_DEB=path.deb tests a given one instead), makes a clean Debian bookworm rootfs with
# `debootstrap --variant=minbase` (kept as a tarball in target/e2e-cache/ so that later runs
# only unpack it; the first run needs the Debian mirror and takes a few minutes), and checks
# inside that rootfs (chroot, in a private mount namespace so nothing is mounted on the host):
#  - `dpkg -i` installs /usr/bin/nvidia-runtime, its man pages, its bash/zsh/fish completions,
#    the docs and the commented default config (at /usr/share/nvidia-runtime/config.toml and,
#    with no config there before, at /etc/nvidia-container-runtime/config.toml), and the link
#    /usr/bin/nvidia-container-runtime-hook -> nvidia-runtime; the package's dependencies are
#    met by a minimal Debian (dpkg would refuse otherwise);
#  - the installed binary runs there: --version names the commit and the spec and
#    libcontainer versions, --help of every subcommand is ours, the bash completion loads;
#  - the installed binary runs a GPU container there (simulated 2-GPU driver root inside the
#    rootfs): the container sees exactly the GPUs asked for, nvidia-smi and libcuda;
#  - installing it again (an upgrade's steps) keeps the link and an edited config;
#  - `dpkg -r` removes the binary and the link, keeps the config; `dpkg --purge` then removes the
#    untouched default config, leaving the rootfs's file list as it was before the install;
#  - on a host that has NVIDIA's hook and its own config.toml already, neither is touched by
#    install, remove or purge.
source "$(dirname "$0")/../lib.sh"
e2e_init "$@"
need_cmd debootstrap debootstrap
need_cmd unshare util-linux
need_cmd gcc gcc
need_cmd ldconfig libc-bin

CACHE=$REPO/target/e2e-cache
BASE_TAR=$CACHE/debian-bookworm-minbase.tar
MIRROR=${E2E_DEBIAN_MIRROR:-http://deb.debian.org/debian}
R=$TEST_TMP/rootfs        # the Debian rootfs the package is installed in

# --- the clean rootfs, made once and kept as a tarball ------------------------

if [[ ! -s $BASE_TAR ]]; then
    log "making a Debian bookworm minbase rootfs with debootstrap (once; kept in $BASE_TAR)"
    mkdir -p "$CACHE"
    tmp_root=$TEST_TMP/debootstrap
    if ! debootstrap --variant=minbase bookworm "$tmp_root" "$MIRROR" >"$TEST_TMP/debootstrap.log" 2>&1; then
        tail -n 20 "$TEST_TMP/debootstrap.log" >&2
        die "debootstrap --variant=minbase bookworm $MIRROR failed (log above): is the Debian mirror reachable? (set E2E_DEBIAN_MIRROR to another)"
    fi
    # (debootstrap leaves no mounts once it succeeded; the tarball is written beside, then moved)
    tar -C "$tmp_root" --numeric-owner -cf "$BASE_TAR.tmp" . || die "cannot write $BASE_TAR"
    mv "$BASE_TAR.tmp" "$BASE_TAR"
    rm -rf --one-file-system "$tmp_root"
fi
mkdir -p "$R"
tar -C "$R" --numeric-owner -xf "$BASE_TAR" || die "cannot unpack $BASE_TAR"

# --- the package ---------------------------------------------------------------

if [[ -n ${E2E_DEB:-} ]]; then
    DEB=$E2E_DEB
else
    DEB=$("$REPO/hack/package" --no-build 2>"$TEST_TMP/package.log" | tail -n1) \
        || { cat "$TEST_TMP/package.log" >&2; die "hack/package --no-build failed (log above)"; }
fi
[[ -f $DEB ]] || die "no .deb at '$DEB'"
cp "$DEB" "$R/tmp/nvidia-runtime.deb"

# in_root CMD... : CMD inside the rootfs (chroot), with /proc, /sys and /dev of the host
# bound into it in a private mount namespace: the mounts end with the command. The rootfs is
# made a mount point of its own, as a real root is (the runtime changes its propagation).
in_root() {
    timeout -k 5 120 unshare --mount --propagation private -- /bin/sh -c '
        r=$1; shift
        mount --bind "$r" "$r" && mount --rbind /proc "$r/proc" && mount --rbind /sys "$r/sys" \
            && mount --rbind /dev "$r/dev" || exit 99
        exec chroot "$r" "$@"' in_root "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"
}

# The rootfs's files, less what dpkg and our tests write anyway (dpkg's database and logs).
file_list() {
    (cd "$R" && find . -xdev \( -path ./var/lib/dpkg -o -path ./var/log -o -path ./var/cache \
        -o -path ./proc -o -path ./sys -o -path ./dev -o -path ./tmp -o -path ./run \) -prune -o -print | sort)
}

HOOK=/usr/bin/nvidia-container-runtime-hook
CONFIG=/etc/nvidia-container-runtime/config.toml

# --- the tests -------------------------------------------------------------------

test_install_on_a_clean_debian() {
    file_list >"$TEST_TMP/files.before"
    capture in_root dpkg -i /tmp/nvidia-runtime.deb
    assert_rc 0 "dpkg -i installs the package in a minimal Debian (its dependencies are met)"
    capture in_root dpkg-query -W -f '${Status} ${Depends}' nvidia-runtime
    assert_contains "$OUT" "install ok installed" "dpkg knows it installed"
    # hack/build's static (musl) binary needs no shared library; the dynamically linked one
    # (its fallback) needs libseccomp2, which dpkg-shlibdeps must have found
    if readelf -l "$R/usr/bin/nvidia-runtime" | grep -q "program interpreter"; then
        assert_contains "$OUT" "libseccomp2" "the dynamically linked build depends on libseccomp2 (found by dpkg-shlibdeps)"
    else
        assert_not_contains "$OUT" "libseccomp" "the static build depends on no shared library"
        capture in_root /usr/bin/nvidia-runtime --version
        assert_rc 0 "the static build runs in a minimal Debian"
    fi

    assert_true "the binary is /usr/bin/nvidia-runtime, executable" test -x "$R/usr/bin/nvidia-runtime"
    assert_eq "nvidia-runtime" "$(readlink "$R$HOOK")" "the hook link points at nvidia-runtime"
    capture in_root dpkg -S "$HOOK"
    assert_rc_nonzero "…and no package owns it (postinst made it; NVIDIA's package may own that path)"
    assert_true "man page nvidia-runtime(8)" test -s "$R/usr/share/man/man8/nvidia-runtime.8.gz"
    assert_true "man page nvidia-runtime-create(8)" test -s "$R/usr/share/man/man8/nvidia-runtime-create.8.gz"
    assert_true "man page of a nested command, nvidia-runtime-cdi-generate(8)" \
        test -s "$R/usr/share/man/man8/nvidia-runtime-cdi-generate.8.gz"
    local man_refs missing=""
    man_refs=$(gzip -dc "$R"/usr/share/man/man8/*.8.gz | grep -oE 'nvidia\\?-runtime[a-z\\-]*\(8\)' | tr -d '\\' | sort -u)
    for ref in $man_refs; do
        [[ -s $R/usr/share/man/man8/${ref%(8)}.8.gz ]] || missing+=" $ref"
    done
    assert_eq "" "$missing" "…and every page a page refers to exists"
    assert_eq ".TH nvidia-runtime 8" "$(gzip -dc "$R/usr/share/man/man8/nvidia-runtime.8.gz" | grep -m1 '^\.TH' | cut -d' ' -f1-3)" \
        "the man page is roff, section 8"
    assert_true "bash completion" test -s "$R/usr/share/bash-completion/completions/nvidia-runtime"
    assert_true "zsh completion" test -s "$R/usr/share/zsh/vendor-completions/_nvidia-runtime"
    assert_true "fish completion" test -s "$R/usr/share/fish/vendor_completions.d/nvidia-runtime.fish"
    assert_true "the user guide" test -s "$R/usr/share/doc/nvidia-runtime/user-guide.md.gz"
    # and every page it links to
    local page
    for page in $(grep -o '([a-z-]*\.md' "$REPO/docs/user-guide.md" | tr -d '(' | sort -u); do
        assert_true "…and $page, which it links to" test -s "$R/usr/share/doc/nvidia-runtime/$page.gz"
    done
    assert_true "the copyright file" test -s "$R/usr/share/doc/nvidia-runtime/copyright"
    assert_eq "$(cat "$REPO/packaging/config.toml")" "$(cat "$R$CONFIG" 2>&1)" \
        "the commented default config is installed where there was none"
    assert_eq "" "$(grep -v -e '^#' -e '^\[' -e '^$' "$R$CONFIG")" "…and every key in it is commented out"
    local unit installed
    for unit in "$REPO"/deploy/systemd/*.service "$REPO"/deploy/systemd/*.path; do
        [[ -e $unit ]] || continue
        installed=$R/lib/systemd/system/$(basename "$unit")
        assert_eq "$(sed 's#/usr/local/bin/nvidia-runtime#/usr/bin/nvidia-runtime#g' "$unit")" "$(cat "$installed" 2>&1)" \
            "systemd unit $(basename "$unit") installed, naming /usr/bin/nvidia-runtime"
        assert_not_contains "$(cat "$installed" 2>&1)" "/usr/local/bin" "…and no binary under /usr/local"
    done

    capture in_root nvidia-runtime --version
    assert_rc 0 "the installed binary runs in the clean rootfs"
    assert_match "$OUT" '^nvidia-runtime version [0-9]' "--version: runc's first line"
    assert_match "$OUT" $'\ncommit: [0-9a-f]{7,}' "--version names the commit"
    assert_match "$OUT" $'\nspec: 1\\.[0-9]+\\.[0-9]+' "--version names the OCI spec version"
    assert_match "$OUT" $'\nlibcontainer: 0\\.[0-9]+\\.[0-9]+' "--version names libcontainer's version"
    local sub help
    for sub in "" create start state kill delete run exec ps pause resume update features spec list events checkpoint completion; do
        help=$(in_root nvidia-runtime $sub --help 2>&1)
        if [[ $help == *Examples:* && $help != *youki* && $help != *checkpointt* && $help != *http* ]]; then
            pass "'nvidia-runtime $sub --help': our words, with examples"
        else
            fail "'nvidia-runtime $sub --help': our words, with examples" "$help"
        fi
    done
    capture in_root bash -c 'source /usr/share/bash-completion/completions/nvidia-runtime && complete -p nvidia-runtime'
    assert_contains "$OUT" "nvidia-runtime" "the bash completion loads and registers"
}

test_installed_binary_runs_a_gpu_container() {
    bash "$REPO/tests/fixtures/make-driver-root.sh" 2 "$R/sim" || die "make-driver-root.sh failed"
    printf '[nvidia-container-cli]\nroot = "/sim"\n[nvidia-runtime]\nproc-root = "/sim"\ninventory-cache = ""\n' >"$R/sim.toml"
    make_bundle "$R/bundle" sh -c 'ls /dev | grep -E "^nvidia[0-9]+$"; nvidia-smi -L; ls /usr/lib/x86_64-linux-gnu /usr/lib64 2>/dev/null | grep -c "^libcuda.so"'
    bundle_set "$R/bundle" 'c["process"]["env"] += ["NVIDIA_VISIBLE_DEVICES=1", "NVIDIA_DRIVER_CAPABILITIES=compute,utility"]'
    capture in_root env NVIDIA_CTK_CONFIG_FILE_PATH=/sim.toml /usr/bin/nvidia-runtime --root /run/nvidia-runtime run --bundle /bundle pkg-gpu
    assert_rc 0 "the installed nvidia-runtime runs a GPU container inside the Debian rootfs"
    # (the simulated GPU i has device minor i XOR 1: GPU 1 is /dev/nvidia0)
    assert_eq "nvidia0
$(smi_lines 1)" "$(sed -n 1,2p <<<"$OUT")" \
        "the container sees GPU 1 only (its node, /dev/nvidia0), and the simulated nvidia-smi lists it"
    assert_match "$(sed -n 3p <<<"$OUT")" '^[1-9][0-9]*$' "…and the driver's libcuda.so files were injected"
    capture in_root /usr/bin/nvidia-runtime --root /run/nvidia-runtime list -q
    assert_eq "" "$OUT" "…and nothing is left in its state"
    rm -rf --one-file-system "$R/sim" "$R/sim.toml" "$R/bundle" "$R/run/nvidia-runtime"
}

test_reinstall_keeps_the_link_and_an_edited_config() {
    cp "$R$CONFIG" "$TEST_TMP/config.default"
    printf '\n[nvidia-container-runtime]\nlog-level = "info"\n' >>"$R$CONFIG"
    capture in_root dpkg -i /tmp/nvidia-runtime.deb
    assert_rc 0 "dpkg -i of the same package again (an upgrade's steps)"
    assert_eq "nvidia-runtime" "$(readlink "$R$HOOK")" "the hook link is still there"
    assert_contains "$(cat "$R$CONFIG")" 'log-level = "info"' "the administrator's edit of the config is kept"
    cp "$TEST_TMP/config.default" "$R$CONFIG"
}

test_remove_and_purge_leave_a_clean_debian() {
    capture in_root dpkg -r nvidia-runtime
    assert_rc 0 "dpkg -r removes the package"
    assert_false "the binary is gone" test -e "$R/usr/bin/nvidia-runtime"
    assert_false "the hook link is gone" test -L "$R$HOOK"
    assert_true "the config stays after remove (it is the administrator's now)" test -f "$R$CONFIG"
    capture in_root dpkg --purge nvidia-runtime
    assert_rc 0 "dpkg --purge"
    assert_false "purge removes the untouched default config" test -e "$R$CONFIG"
    file_list >"$TEST_TMP/files.after"
    assert_eq "" "$(diff "$TEST_TMP/files.before" "$TEST_TMP/files.after")" \
        "after purge the rootfs has exactly the files it had before the install"
}

test_nvidia_hook_and_config_already_there_are_kept() {
    # A host with NVIDIA's toolkit: its hook and its config.toml are not ours to touch.
    mkdir -p "$R/etc/nvidia-container-runtime"
    printf '#!/bin/sh\necho nvidia-hook\n' >"$R$HOOK"
    chmod 755 "$R$HOOK"
    printf '[nvidia-container-cli]\nroot = "/run/nvidia/driver"\n' >"$R$CONFIG"
    local hook_sum config_sum
    hook_sum=$(sha256sum <"$R$HOOK") config_sum=$(sha256sum <"$R$CONFIG")
    capture in_root dpkg -i /tmp/nvidia-runtime.deb
    assert_rc 0 "dpkg -i with NVIDIA's hook and a config already there"
    assert_false "the hook is not replaced by a link" test -L "$R$HOOK"
    assert_eq "$hook_sum" "$(sha256sum <"$R$HOOK")" "…and is byte for byte the same"
    assert_eq "$config_sum" "$(sha256sum <"$R$CONFIG")" "the existing config.toml is not overwritten"
    assert_true "the commented default is there as an example" test -s "$R/usr/share/nvidia-runtime/config.toml"
    capture in_root dpkg --purge nvidia-runtime
    assert_rc 0 "dpkg --purge"
    assert_eq "$hook_sum" "$(sha256sum <"$R$HOOK" 2>&1)" "NVIDIA's hook survives remove and purge"
    assert_eq "$config_sum" "$(sha256sum <"$R$CONFIG" 2>&1)" "…and so does the config that was there before"
}

run_tests test_install_on_a_clean_debian test_installed_binary_runs_a_gpu_container \
    test_reinstall_keeps_the_link_and_an_edited_config test_remove_and_purge_leave_a_clean_debian test_nvidia_hook_and_config_already_there_are_kept
e2e_finish
