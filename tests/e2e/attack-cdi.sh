#!/usr/bin/env bash
# tests/e2e/attack-cdi.sh — hostile files where the runtime's own commands read and write.
#
# Every file lives under the temp dir; nothing in /etc is touched. Proves:
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

run_tests test_doctor_finishes_on_fifos test_run_fails_fast_on_a_fifo_config
e2e_finish
