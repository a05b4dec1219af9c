#!/usr/bin/env bash
# tests/e2e/config.sh — the config file (NVIDIA's config.toml, read unchanged), end to end.
#
# Against tests/fixtures/make-driver-root.sh's simulated host (1 GPU), with real containers
# through the runtime and its `--log` JSON file, as containerd-shim-runc-v2 calls it. Proves:
#  - a key whose value asks for what the runtime does not do (mode = "csv") and a key nobody
#    knows (a typo) do not stop the container: it is created and gets its GPU, and stderr and
#    the log (as "warning" lines) name both keys and the file, each once, though create
#    re-execs itself; a container that asks for no GPU gets the same warnings, once;
#  - NVIDIA's stock file (as `nvidia-ctk config default` writes it, the driver root set) gives
#    no warning at all, and its keys without effect are noted by name in the debug log;
#  - a malformed file, or a value of the wrong type, refuses the container with an error naming
#    the file, the line (and the key), non-zero, on stderr and as the log's last error line,
#    with config.json untouched and nothing left behind.
source "$(dirname "$0")/../lib.sh"
e2e_init "$@"
need_cmd gcc gcc
need_cmd ldconfig libc-bin
need_cmd sha256sum coreutils

sim_host 1 ""

# sim_config FILE [TOML LINES...] : the lines (from line 1), then tables naming the simulated
# host.
sim_config() {
    local file=$1
    shift
    {
        printf '%s\n' "$@"
        printf '[nvidia-container-cli]\nroot = "%s"\n[nvidia-runtime]\nproc-root = "%s"\ninventory-cache = ""\n' "$SIM" "$SIM"
    } >"$file"
}

B=""
# bundle NAME [ENV...] : bundle $TEST_TMP/NAME (container id NAME), the ENV added; sets B.
bundle() {
    B=$TEST_TMP/$1
    shift
    make_bundle "$B" sh
    (($#)) || return 0
    bundle_env "$B" "$@"
}

# rt_logged CONFIG LOG ARGS... : the runtime as containerd runs it (--log LOG --log-format
# json), reading CONFIG; sets OUT/ERR/RC.
rt_logged() {
    local cfg=$1 log=$2
    shift 2
    NVIDIA_CTK_CONFIG_FILE_PATH=$cfg capture bash -c 'cd "$1" && shift && "$@" </dev/null' _ "$B" \
        timeout -k 5 "$E2E_TIMEOUT" "$RUNTIME" --root "$STATE" --log "$log" --log-format json "$@"
}

# count TEXT NEEDLE : how many lines of TEXT contain NEEDLE.
count() { grep -cF -- "$2" <<<"$1" || true; }
warning_lines() { grep -F '"level":"warning"' "$1" || true; }

CSV='nvidia-container-runtime.mode = \"csv\"'
TYPO='unknown key \"disable-requir\"'

test_unsupported_and_unknown_keys_warn_once_and_the_container_is_created() {
    local cfg=$TEST_TMP/warned.toml log=$TEST_TMP/warned.log
    sim_config "$cfg" 'disable-requir = true' '[nvidia-container-runtime]' 'mode = "csv"'
    : >"$log"

    bundle warned-create NVIDIA_VISIBLE_DEVICES=0
    rt_logged "$cfg" "$log" create --bundle "$B" warned-create
    assert_rc 0 "mode = \"csv\" and a typo key: create succeeds"
    assert_eq created "$(rt state warned-create | json_get 'j["status"]')" "…the container exists, created"
    # with --log, stderr is the container's own under an engine: nothing of ours goes there
    assert_not_contains "${ERR:-}" "config file" "…stderr (the container's, under an engine) says nothing"
    local warnings
    warnings=$(warning_lines "$log")
    assert_eq 1 "$(count "$warnings" "$CSV")" "…the log has one warning line naming mode = \"csv\""
    assert_eq 1 "$(count "$warnings" "$TYPO")" "…and one naming the typo key"
    assert_eq 2 "$(count "$warnings" "config file $cfg:")" "…both naming the file, no other"
    capture rt delete --force warned-create
    assert_rc 0 "…deleted"

    # The container's program sees its GPU; the warnings come once for the whole run.
    : >"$log"
    bundle warned-run NVIDIA_VISIBLE_DEVICES=0
    bundle_args "$B" sh -c 'test -c /dev/nvidia0 && echo gpu-node-present'
    rt_logged "$cfg" "$log" run warned-run
    assert_rc 0 "run with the same config succeeds"
    assert_contains "$OUT" "gpu-node-present" "…and the container has its GPU"
    assert_not_contains "$ERR" "config file" "…nothing on stderr"
    assert_eq 2 "$(count "$(warning_lines "$log")" "config file $cfg:")" "…two warning lines in the log"

    # No GPU asked for: nothing injected, so the sealed process has no injection to adopt and
    # reads the config again; it still reports nothing twice.
    : >"$log"
    bundle warned-plain
    bundle_args "$B" echo plain-ran
    rt_logged "$cfg" "$log" run warned-plain
    assert_rc 0 "a container asking for no GPU: run succeeds"
    assert_contains "$OUT" "plain-ran" "…its program ran"
    assert_eq 2 "$(count "$(warning_lines "$log")" "config file $cfg:")" "…two warning lines in the log"
    assert_eq "" "$(ls -A "$STATE")" "…no state left"

    # By hand, without --log: the log is stderr, and each warning is there once.
    bundle warned-direct NVIDIA_VISIBLE_DEVICES=0
    bundle_args "$B" true
    NVIDIA_CTK_CONFIG_FILE_PATH=$cfg capture bash -c 'cd "$1" && shift && "$@" </dev/null' _ "$B" \
        timeout -k 5 "$E2E_TIMEOUT" "$RUNTIME" --root "$STATE" run warned-direct
    assert_rc 0 "run without --log succeeds"
    # stderr is the log here, in logrus' text format: the message is quoted, its quotes escaped
    assert_eq 1 "$(count "$ERR" "$CSV")" "…stderr names mode = \"csv\" once"
    assert_contains "$ERR" "not supported" "…saying it is not supported"
    assert_eq 1 "$(count "$ERR" "$TYPO")" "…and the typo key once"
    assert_contains "$ERR" "config file $cfg:" "…naming the file"
}

test_nvidias_stock_file_is_quiet() {
    local cfg=$TEST_TMP/stock.toml log=$TEST_TMP/stock.log
    # `nvidia-ctk config default`, with the driver root uncommented (and ours added)
    cat >"$cfg" <<EOF
#accept-nvidia-visible-devices-as-volume-mounts = false
#accept-nvidia-visible-devices-envvar-when-unprivileged = true
disable-require = false
supported-driver-capabilities = "compat32,compute,display,graphics,ngx,utility,video"
#swarm-resource = "DOCKER_RESOURCE_GPU"

[nvidia-container-cli]
#debug = "/var/log/nvidia-container-toolkit.log"
environment = []
#ldcache = "/etc/ld.so.cache"
ldconfig = "@/sbin/ldconfig.real"
load-kmods = true
#no-cgroups = false
#path = "/usr/bin/nvidia-container-cli"
root = "$SIM"
#user = "root:video"

[nvidia-container-runtime]
#debug = "/var/log/nvidia-container-runtime.log"
log-level = "info"
mode = "auto"
runtimes = ["runc", "crun"]

[nvidia-container-runtime.modes]

[nvidia-container-runtime.modes.cdi]
annotation-prefixes = ["cdi.k8s.io/"]
default-kind = "nvidia.com/gpu"
spec-dirs = ["/etc/cdi", "/var/run/cdi"]

[nvidia-container-runtime.modes.csv]
mount-spec-path = "/etc/nvidia-container-runtime/host-files-for-container.d"

[nvidia-container-runtime.modes.legacy]
cuda-compat-mode = "ldconfig"

[nvidia-container-runtime-hook]
path = "nvidia-container-runtime-hook"
skip-mode-detection = false

[nvidia-ctk]
path = "nvidia-ctk"

[nvidia-runtime]
proc-root = "$SIM"
inventory-cache = ""
EOF
    : >"$log"
    bundle stock NVIDIA_VISIBLE_DEVICES=0
    bundle_args "$B" sh -c 'test -c /dev/nvidia0 && echo gpu-node-present'
    NVIDIA_RUNTIME_LOG_LEVEL=debug rt_logged "$cfg" "$log" run stock
    assert_rc 0 "NVIDIA's stock config.toml: run succeeds"
    assert_contains "$OUT" "gpu-node-present" "…the container has its GPU"
    assert_not_contains "$ERR" "config file" "…stderr says nothing of the config"
    # (at debug level libcontainer warns about this host's cgroup controllers: not ours)
    assert_not_contains "$(warning_lines "$log")" "config file" "…no warning line in the log is of the config"
    local debug
    debug=$(grep -F '"level":"debug"' "$log" || true)
    assert_contains "$debug" "config file $cfg: nvidia-container-cli.ldconfig: no effect" \
        "…the debug log notes the keys without effect by name (ldconfig)"
    assert_contains "$debug" "config file $cfg: nvidia-container-runtime.runtimes: no effect" \
        "…(runtimes)"
    assert_eq 1 "$(count "$debug" "nvidia-container-cli.load-kmods")" "…each once (load-kmods)"
}

# refused_by CONFIG LABEL : run $B with CONFIG; it must fail before any container exists,
# leaving the bundle and the state root as they were. Sets ERR and LAST_ERROR (the log's last
# error line).
LAST_ERROR=""
refused_by() {
    local cfg=$1 label=$2 log=$TEST_TMP/refused.log before
    : >"$log"
    bundle_args "$B" echo program-ran
    before=$(sha_of "$B/config.json")
    rt_logged "$cfg" "$log" run "$(basename "$B")"
    assert_rc_nonzero "$label: run fails"
    assert_not_contains "$OUT" "program-ran" "…the program never ran"
    assert_eq "$before" "$(sha_of "$B/config.json")" "…config.json unchanged"
    assert_eq "config.json rootfs" "$(ls -A "$B" | tr '\n' ' ' | sed 's/ $//')" "…nothing else left in the bundle"
    assert_eq "" "$(ls -A "$STATE")" "…no state left"
    LAST_ERROR=$(grep -F '"level":"error"' "$log" | tail -n 1)
}

test_a_malformed_file_is_refused_with_its_line() {
    local cfg=$TEST_TMP/malformed.toml
    sim_config "$cfg" '[nvidia-container-runtime' 'mode = "legacy"'
    bundle malformed NVIDIA_VISIBLE_DEVICES=0
    refused_by "$cfg" "a table header without its ]"
    assert_contains "$ERR" "malformed config file $cfg, line 1, column" "…stderr names the file and the line"
    assert_contains "$LAST_ERROR" "malformed config file $cfg, line 1" "…so does the log's last error line"

    sim_config "$cfg" 'disable-require = "yes"'
    bundle mistyped NVIDIA_VISIBLE_DEVICES=0
    refused_by "$cfg" "disable-require = \"yes\""
    assert_contains "$ERR" "config file $cfg, line 1, column 19: key disable-require: invalid type" \
        "…stderr names the file, the line and the key"
    assert_contains "$ERR" "expected a boolean" "…and what it must be"
    assert_contains "$LAST_ERROR" "key disable-require" "…so does the log's last error line"
}

test_no_driver_names_where_it_looked_and_which_config_said_so() {
    local cfg=$TEST_TMP/nodriver.toml empty=$TEST_TMP/no-driver-here log=$TEST_TMP/nodriver.log
    mkdir -p "$empty"
    printf '[nvidia-container-cli]\nroot = "%s"\n[nvidia-runtime]\nproc-root = "%s"\n' "$empty" "$empty" >"$cfg"
    : >"$log"
    bundle nodriver NVIDIA_VISIBLE_DEVICES=all
    rt_logged "$cfg" "$log" run nodriver
    assert_rc_nonzero "a host without the driver: run fails"
    assert_contains "$ERR" "driver root $empty, proc root $empty (from $cfg, named by NVIDIA_CTK_CONFIG_FILE_PATH)" \
        "…naming the roots and the config file that set them"
    assert_contains "$ERR" "no NVIDIA driver" "…and the cause"
    assert_eq "" "$(ls -A "$STATE")" "…no state left"
}

run_tests test_no_driver_names_where_it_looked_and_which_config_said_so \
    test_unsupported_and_unknown_keys_warn_once_and_the_container_is_created \
    test_nvidias_stock_file_is_quiet test_a_malformed_file_is_refused_with_its_line
e2e_finish
