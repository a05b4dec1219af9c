#!/usr/bin/env bash
# tests/e2e/attack-cdi.sh — hostile files where the runtime's own commands read and write.
#
# Every file lives under the temp dir; nothing in /etc is touched. Proves:
#  - `configure docker|containerd` on a config path that is a symlink to a device node (as
#    `daemon.json -> /dev/null` is, to switch a file off), a FIFO, or a device itself refuses
#    it at once, naming what is there, and leaves the node a node (before, the device node was
#    replaced by a regular file holding our JSON, and a FIFO hung the command for ever);
#  - `doctor` with a FIFO as daemon.json, containerd's config or the runtime's own config
#    reports each as an error finding and finishes (it hung);
#  - a FIFO as the runtime's config file makes `run` fail at once with the cause named, no
#    container left (every create hung before).
source "$(dirname "$0")/../lib.sh"
e2e_init "$@"

sim_host 1 ""
# Commands that hung before must now end well within this.
QUICK=20
quick() { capture timeout -k 2 "$QUICK" "$RUNTIME" "$@"; }

test_configure_refuses_what_is_not_a_file() {
    local t=$TEST_TMP/configure
    mkdir -p "$t/ctd"
    mknod "$t/null" c 1 3
    chmod 0666 "$t/null"
    ln -s "$t/null" "$t/daemon.json"
    quick configure docker --config "$t/daemon.json" --no-hook
    assert_rc_nonzero "configure docker: a daemon.json linked to a device node is refused"
    assert_contains "$ERR" "character device, not a regular file" "the error says what is there"
    assert_true "the device node is still a device node" test -c "$t/null"
    assert_eq "daemon.json null" "$(ls "$t" | grep -v ctd | tr '\n' ' ' | sed 's/ $//')" "no backup or temp file left"

    mkfifo "$t/fifo.json"
    quick configure docker --config "$t/fifo.json" --no-hook
    assert_rc_nonzero "configure docker: a FIFO daemon.json is refused, not waited on"
    assert_contains "$ERR" "a FIFO, not a regular file" "the error names the FIFO"
    assert_true "the FIFO is left as it is" test -p "$t/fifo.json"

    quick configure docker --config /dev/zero --no-hook --dry-run
    assert_rc_nonzero "configure docker: /dev/zero is refused, not read without end"

    mkfifo "$t/ctd/config.toml"
    quick configure containerd --config "$t/ctd/config.toml" --drop-in-dir "$t/ctd/conf.d"
    assert_rc_nonzero "configure containerd: a FIFO main config is refused"
    assert_contains "$ERR" "a FIFO, not a regular file" "the error names the FIFO"
    assert_false "no drop-in written" test -e "$t/ctd/conf.d/99-nvidia.toml"
}

test_doctor_finishes_on_fifos() {
    local t=$TEST_TMP/doctor
    mkdir -p "$t/crio" "$t/cdi" "$t/ctd"
    mkfifo "$t/daemon.json" "$t/ctd/config.toml" "$t/runtime.toml"
    NVIDIA_CTK_CONFIG_FILE_PATH=$t/runtime.toml quick doctor --docker-config "$t/daemon.json" \
        --containerd-config "$t/ctd/config.toml" --crio-dir "$t/crio" --cdi-dir "$t/cdi"
    assert_ne 124 "$RC" "doctor finishes with FIFOs as configs"
    assert_rc_nonzero "doctor reports errors"
    assert_contains "$OUT" "docker config $t/daemon.json cannot be parsed: cannot read it: it is a FIFO" "daemon.json named"
    assert_contains "$OUT" "$t/ctd/config.toml" "containerd's config named"
    assert_contains "$OUT" "cannot read config file $t/runtime.toml: it is a FIFO" "the runtime's config named"
}

test_run_fails_fast_on_a_fifo_config() {
    local b=$TEST_TMP/fifo-config
    mkfifo "$TEST_TMP/fifo.toml"
    make_bundle "$b" echo program-ran
    bundle_set "$b" 'c["process"]["env"].append("NVIDIA_VISIBLE_DEVICES=all")'
    cd "$b"
    NVIDIA_CTK_CONFIG_FILE_PATH=$TEST_TMP/fifo.toml capture timeout -k 2 "$QUICK" \
        "$RUNTIME" --root "$STATE" run fifo-config </dev/null
    assert_ne 124 "$RC" "run does not wait on a FIFO config"
    assert_rc_nonzero "run fails"
    assert_contains "$ERR" "fifo.toml: it is a FIFO, not a regular file" "the cause is named"
    assert_not_contains "$OUT" "program-ran" "the container's program never ran"
    assert_eq "" "$(ls -A "$STATE")" "no container state left"
}

run_tests test_configure_refuses_what_is_not_a_file test_doctor_finishes_on_fifos \
    test_run_fails_fast_on_a_fifo_config
e2e_finish
