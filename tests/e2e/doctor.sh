#!/usr/bin/env bash
# tests/e2e/doctor.sh — `nvidia-runtime doctor` against simulated hosts, healthy and broken.
#
# Each test builds a fresh 2-GPU simulated host (sim_host: the runtime's config points its driver,
# dev and proc roots at it) and engine configs under $TEST_TMP (passed with --docker-config,
# --containerd-config, --crio-dir, --cdi-dir), breaks one thing, runs the real binary and checks
# the finding ids and severities in --json, the exit status (1 on errors only), the JSON shape,
# and, where the fix is a command, that running it makes the finding go away. Proves:
#  - a healthy host (nodes, /dev/char links, libraries, docker and containerd registrations,
#    an up-to-date CDI spec) exits 0 with no error, and doctor changes nothing on it;
#  - missing uvm nodes, a node with the wrong major, missing /dev/char links (a warning, an error
#    once Docker uses the systemd cgroup driver), libraries of another version than the module,
#    no module, a runtime config naming no file or with a misspelt key;
#  - daemon.json without our runtime (warning, exit 0), naming a missing path (error), with an
#    undefined default runtime (error), malformed (error with the line); a stale CDI spec (another driver's, and ours after a module change);
#  - one trial container (--trial): passes on the healthy host, fails with the cause when
#    /dev/nvidiactl is gone, and leaves no container, cgroup or temp dir behind.
# Validated against runc (RUNTIME=$(command -v runc)), which has no doctor: only the checks that
# nothing was changed or left behind pass there.
source "$(dirname "$0")/../lib.sh"
e2e_init "$@"
need_cmd gcc gcc
need_cmd ldconfig libc-bin

# --- helpers ------------------------------------------------------------------

# healthy_host : a 2-GPU simulated host with /dev/char links, Docker (cgroupfs) and containerd
# (through a drop-in) registering $RUNTIME, and a CDI spec from `cdi generate`.
healthy_host() {
    sim_host 2 ""
    local n
    mkdir -p "$SIM/dev/char"
    for n in "$SIM"/dev/nvidia* "$SIM"/dev/nvidia-caps/*; do
        [[ -c $n ]] || continue
        ln -s "../${n#"$SIM"/dev/}" "$SIM/dev/char/$(printf '%d:%d' "0x$(stat -c %t "$n")" "0x$(stat -c %T "$n")")"
    done
    ENG=$TEST_TMP/engines
    rm -rf "$ENG"
    mkdir -p "$ENG/containerd/conf.d" "$ENG/crio" "$ENG/cdi"
    printf '{\n  "log-level": "warn",\n  "runtimes": {\n    "nvidia": {"path": "%s"}\n  }\n}\n' "$RUNTIME" >"$ENG/daemon.json"
    printf 'version = 2\nimports = ["conf.d/*.toml"]\n' >"$ENG/containerd/config.toml"
    printf '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]\nruntime_type = "io.containerd.runc.v2"\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia.options]\nBinaryName = "%s"\n' \
        "$RUNTIME" >"$ENG/containerd/conf.d/99-nvidia.toml"
    rt cdi generate --output "$ENG/cdi/nvidia.yaml" || die "cdi generate failed"
}
# cdi_spec LIBRARY VERSION : a spec mounting LIBRARY, made for driver VERSION.
cdi_spec() {
    printf '{"cdiVersion": "0.6.0", "kind": "nvidia.com/gpu",
 "annotations": {"io.github.nvidia-runtime/driver-version": "%s"},
 "devices": [{"name": "0", "containerEdits": {"deviceNodes": [{"path": "/dev/nvidia0", "hostPath": "%s/dev/nvidia0"}]}}],
 "containerEdits": {"mounts": [{"hostPath": "%s", "containerPath": "/usr/lib/x86_64-linux-gnu/libcuda.so.1", "options": ["ro", "nosuid", "nodev", "bind"]}]}}\n' \
        "$2" "$SIM" "$1"
}
# doctor ARGS... : the runtime's doctor on this test's engine configs (OUT, ERR, RC set).
doctor() {
    capture rt doctor --docker-config "$ENG/daemon.json" --containerd-config "$ENG/containerd/config.toml" \
        --crio-dir "$ENG/crio" --cdi-dir "$ENG/cdi" "$@"
}
# severity_of ID : the severities of the findings with this id in $OUT (JSON), space separated.
severity_of() {
    json_get '" ".join(f["severity"] for f in j["findings"] if f["id"] == "'"$1"'")' <<<"$OUT"
}
# field_of ID FIELD : a field of the first finding with this id.
field_of() {
    json_get '([f for f in j["findings"] if f["id"] == "'"$1"'"] or [{}])[0].get("'"$2"'") or ""' <<<"$OUT"
}
# assert_finding ID SEVERITY
assert_finding() { assert_eq "$2" "$(severity_of "$1")" "finding $1 is $2"; }
assert_no_finding() { assert_eq "" "$(severity_of "$1")" "no finding $1"; }
# errors_in_out : the ids of the error findings
errors_in_out() { json_get '" ".join(f["id"] for f in j["findings"] if f["severity"] == "error")' <<<"$OUT"; }
# run_fix_lines ID PREFIX : runs the lines of the finding's fix that start with PREFIX.
run_fix_lines() {
    local line n=0
    while IFS= read -r line; do
        [[ $line == "$2"* ]] || continue
        eval "$line"
        n=$((n + 1))
    done < <(field_of "$1" fix)
    echo "$n"
}
host_state() { find "$SIM" "$ENG" -printf '%p %y %m %s %T@ %l\n' | sort | sha256sum; }

# --- tests ----------------------------------------------------------------------

test_healthy_host() {
    healthy_host
    local before; before=$(host_state)
    doctor --json
    assert_rc 0 "a healthy host: exit 0"
    assert_eq "" "$(errors_in_out)" "no error finding"
    assert_finding driver.module-loaded ok
    assert_contains "$(field_of driver.module-loaded message)" "580.159.04" "the module's version is named"
    assert_finding driver.libraries-found ok
    assert_finding driver.persistenced-running ok
    assert_finding devices.ok ok
    assert_finding devices.char-links-ok ok
    assert_finding docker.runtime-registered ok
    assert_finding containerd.runtime-registered ok
    assert_contains "$(field_of containerd.runtime-registered message)" "99-nvidia.toml" "the drop-in is named"
    assert_finding crio.not-configured info
    assert_finding cdi.specs-ok ok
    assert_finding cgroup.driver info
    assert_no_finding trial.passed
    # The JSON shape scripts rely on.
    assert_eq "ok" "$(json_get '("ok" if set(j) == {"findings", "summary"}
        and all(set(f) == {"id", "severity", "message", "fix"} for f in j["findings"])
        and all(f["severity"] in ("error", "warning", "info", "ok") for f in j["findings"])
        and all(isinstance(f["message"], str) and f["message"] for f in j["findings"])
        and all(f["fix"] is None or isinstance(f["fix"], str) for f in j["findings"])
        and set(j["summary"]) == {"errors", "warnings", "info", "ok"}
        and all(j["summary"][k] == sum(f["severity"] == s for f in j["findings"])
                for k, s in (("errors", "error"), ("warnings", "warning"), ("info", "info"), ("ok", "ok")))
        else "bad shape")' <<<"$OUT")" "--json: findings of {id, severity, message, fix} and a matching summary"
    doctor
    assert_rc 0 "text output: exit 0"
    assert_match "$OUT" $'devices\n  \\[ ok  \\] ' "text output groups by area with severity marks"
    assert_contains "$OUT" "0 error(s)" "text output ends with the counts"
    assert_eq "$before" "$(host_state)" "doctor changed nothing on the host"
}

test_uvm_nodes_missing() {
    healthy_host
    rm "$SIM/dev/nvidia-uvm" "$SIM/dev/nvidia-uvm-tools"
    doctor --json
    assert_rc 1 "missing uvm nodes: exit 1"
    assert_finding devices.uvm-missing error
    assert_no_finding devices.ok
    local major; major=$(awk '$2 == "nvidia-uvm" { print $1 }' "$SIM/proc/devices")
    assert_contains "$(field_of devices.uvm-missing fix)" "mknod -m 666 $SIM/dev/nvidia-uvm c $major 0" \
        "the fix makes the node with the major from proc/devices"
    assert_eq 2 "$(run_fix_lines devices.uvm-missing 'mknod ')" "the fix has one mknod per node"
    doctor --json
    assert_rc 0 "after the fix: exit 0"
    assert_finding devices.ok ok
}

test_uvm_module_not_loaded() {
    healthy_host
    sed -i '/nvidia-uvm$/d' "$SIM/proc/devices"
    doctor --json
    assert_rc 1 "uvm module not loaded: exit 1"
    assert_finding devices.uvm-module-missing error
    assert_contains "$(field_of devices.uvm-module-missing fix)" "modprobe nvidia-uvm" "the fix loads the module"
}

test_wrong_major() {
    healthy_host
    local major; major=$(awk '$2 == "nvidia-uvm" { print $1 }' "$SIM/proc/devices")
    rm "$SIM/dev/nvidia-uvm"
    mknod -m 666 "$SIM/dev/nvidia-uvm" c $((major - 100)) 0
    doctor --json
    assert_rc 1 "a node with the wrong major: exit 1"
    assert_finding devices.wrong-number error
    assert_contains "$(field_of devices.wrong-number message)" "is ($((major - 100)), 0), must be ($major, 0)" \
        "the message names both numbers"
    run_fix_lines devices.wrong-number 'rm ' >/dev/null
    doctor --json
    assert_finding devices.ok ok
}

test_char_links_missing() {
    healthy_host
    rm "$SIM/dev/char/195:0" "$SIM/dev/char/195:255"
    doctor --json
    assert_rc 0 "missing /dev/char links with cgroupfs engines: a warning, exit 0"
    assert_finding devices.char-links-missing warning
    local msg; msg=$(field_of devices.char-links-missing message)
    assert_contains "$msg" "(195:255, 195:0)" "the message names the links"
    assert_contains "$msg" "Failed to initialize NVML: Unknown Error" "the message names the symptom"
    python3 - "$ENG/daemon.json" <<'EOF'
import json, sys
p = sys.argv[1]; c = json.load(open(p)); c["exec-opts"] = ["native.cgroupdriver=systemd"]
json.dump(c, open(p, "w"))
EOF
    doctor --json
    assert_rc 1 "with Docker on the systemd cgroup driver: an error, exit 1"
    assert_finding devices.char-links-missing error
    assert_contains "$(field_of cgroup.driver message)" "docker: systemd" "cgroup.driver names Docker's"
    assert_eq 2 "$(run_fix_lines devices.char-links-missing 'ln -sfn ')" "the fix has one ln per missing link"
    doctor --json
    assert_rc 0 "after the fix: exit 0"
    assert_finding devices.char-links-ok ok
}

test_stale_libraries() {
    healthy_host
    sed -i 's/580\.159\.04/580.163.01/' "$SIM/proc/driver/nvidia/version"
    doctor --json
    assert_rc 1 "module 580.163.01, libraries 580.159.04: exit 1"
    assert_finding driver.libraries-stale error
    local msg; msg=$(field_of driver.libraries-stale message)
    assert_contains "$msg" "version 580.159.04" "names the libraries' version"
    assert_contains "$msg" "is 580.163.01" "names the module's version"
    assert_contains "$(field_of driver.libraries-stale fix)" "reboot" "the fix says reboot"
    # The CDI spec made for the old module is stale too.
    assert_finding cdi.spec-stale error
    assert_contains "$(field_of cdi.spec-stale message)" "generated for driver 580.159.04" "the spec's version is named"
}

test_module_not_loaded() {
    healthy_host
    rm "$SIM/proc/driver/nvidia/version"
    doctor --json
    assert_rc 1 "no module: exit 1"
    assert_finding driver.module-missing error
    assert_contains "$(field_of driver.module-missing fix)" "modprobe nvidia" "the fix loads it"
    assert_no_finding devices.ok
    assert_no_finding devices.char-links-ok
    assert_finding docker.runtime-registered ok
}

test_config_invalid() {
    healthy_host
    printf 'suported-driver-capabilities = "compute"\n' >>"$NVIDIA_CTK_CONFIG_FILE_PATH"
    doctor --json
    assert_rc 0 "a misspelt config key: a warning, exit 0"
    assert_finding config.loaded ok
    assert_contains "$(field_of config.loaded message)" "proc root $SIM" "config.loaded names the roots"
    assert_finding config.ignored-key warning
    assert_contains "$(field_of config.ignored-key message)" "suported-driver-capabilities" "the key is named"
    NVIDIA_CTK_CONFIG_FILE_PATH=$TEST_TMP/no-such.toml doctor --json
    assert_rc 1 "a config naming no file: exit 1"
    assert_finding config.invalid error
    assert_contains "$(field_of config.invalid message)" "no-such.toml" "the file is named"
    assert_no_finding driver.module-loaded
}

test_docker_registration() {
    healthy_host
    printf '{"log-level": "warn"}\n' >"$ENG/daemon.json"
    doctor --json
    assert_rc 0 "daemon.json without our runtime: a warning, exit 0"
    assert_finding docker.runtime-missing warning
    assert_contains "$(field_of docker.runtime-missing fix)" "nvidia-runtime configure docker" "the fix is our configure"
    printf '{"runtimes": {"nvidia": {"path": "%s/gone/nvidia-runtime"}}}\n' "$TEST_TMP" >"$ENG/daemon.json"
    doctor --json
    assert_rc 1 "a runtime path that does not exist: exit 1"
    assert_finding docker.runtime-path-missing error
    assert_contains "$(field_of docker.runtime-path-missing message)" "$TEST_TMP/gone/nvidia-runtime" "the path is named"
    printf '{"default-runtime": "nvidia", "runtimes": {"runc-debug": {"path": "runc"}}}\n' >"$ENG/daemon.json"
    doctor --json
    assert_rc 1 "a default runtime that is not defined: exit 1"
    assert_finding docker.default-runtime-unknown error
        printf '{\n  "runtimes": {\n    "nvidia": {"path": "x",}\n  }\n}\n' >"$ENG/daemon.json"
    doctor --json
    assert_rc 1 "a malformed daemon.json: exit 1"
    assert_finding docker.config-malformed error
    assert_contains "$(field_of docker.config-malformed message)" "line 3" "the line is named"
}

test_stale_cdi_spec() {
    healthy_host
    cdi_spec "$SIM/usr/local/nvidia/lib64/libcuda.so.570.86.15" 570.86.15 >"$ENG/cdi/old-driver.json"
    doctor --json
    assert_rc 1 "a stale CDI spec: exit 1"
    assert_finding cdi.spec-stale error
    local msg; msg=$(field_of cdi.spec-stale message)
    assert_contains "$msg" "old-driver.json" "the spec is named"
    assert_contains "$msg" "libcuda.so.570.86.15 no longer exists" "the missing file is named"
    assert_contains "$msg" "generated for driver 570.86.15" "the other driver version is named"
    assert_contains "$(field_of cdi.specs-ok message)" "nvidia.yaml" "the generated spec still passes"
}

test_trial_container() {
    healthy_host
    local leftovers='/sys/fs/cgroup/*/nvidia-runtime-doctor-* /sys/fs/cgroup/nvidia-runtime-doctor-* /tmp/nvidia-runtime-doctor.*'
    doctor --json --trial
    assert_rc 0 "--trial on a healthy host: exit 0"
    assert_finding trial.passed ok
    assert_contains "$(field_of trial.passed message)" "2 GPU node(s)" "the container saw both GPUs"
    rm "$SIM/dev/nvidiactl"
    doctor --json --trial
    assert_rc 1 "--trial without /dev/nvidiactl: exit 1"
    assert_finding trial.failed error
    assert_contains "$(field_of trial.failed message)" "no /dev/nvidiactl in the container" "the cause is named"
    doctor --json --trial --busybox "$TEST_TMP/no-busybox-here"
    assert_rc 1 "--trial --busybox MISSING: exit 1"
    assert_contains "$(field_of trial.failed message)" "$TEST_TMP/no-busybox-here is not a file" "…naming the path given"
    assert_contains "$(field_of trial.failed fix)" "--busybox" "…and the fix"
    # shellcheck disable=SC2086
    assert_eq "" "$(ls -d $leftovers 2>/dev/null)" "no cgroup or temp dir left behind"
    assert_eq "" "$(pgrep -f 'nvidia-runtime-doctor-[0-9]' || true)" "no runtime or container process left behind"
}

run_tests test_healthy_host test_uvm_nodes_missing test_uvm_module_not_loaded test_wrong_major \
    test_char_links_missing test_stale_libraries test_module_not_loaded test_config_invalid \
    test_docker_registration test_stale_cdi_spec test_trial_container
e2e_finish
