//! Every finding id. Stable: scripts match on them, and docs/doctor.md explains each.

pub const CONFIG_LOADED: &str = "config.loaded";
pub const CONFIG_INVALID: &str = "config.invalid";
pub const CONFIG_IGNORED_KEY: &str = "config.ignored-key";
pub const DRIVER_MODULE_LOADED: &str = "driver.module-loaded";
pub const DRIVER_MODULE_MISSING: &str = "driver.module-missing";
pub const DRIVER_MODULE_UNREADABLE: &str = "driver.module-unreadable";
pub const DRIVER_GPU_INFO_INVALID: &str = "driver.gpu-info-invalid";
pub const DRIVER_NO_GPUS: &str = "driver.no-gpus";
pub const DRIVER_GPU_UNREADABLE: &str = "driver.gpu-unreadable";
pub const DRIVER_LIBRARIES_FOUND: &str = "driver.libraries-found";
pub const DRIVER_LIBRARIES_MISSING: &str = "driver.libraries-missing";
pub const DRIVER_LIBRARIES_STALE: &str = "driver.libraries-stale";
pub const DRIVER_PERSISTENCED_RUNNING: &str = "driver.persistenced-running";
pub const DRIVER_PERSISTENCED_OFF: &str = "driver.persistenced-off";
pub const DEVICES_OK: &str = "devices.ok";
pub const DEVICES_CTL_MISSING: &str = "devices.ctl-missing";
pub const DEVICES_GPU_MISSING: &str = "devices.gpu-missing";
pub const DEVICES_UVM_MODULE_MISSING: &str = "devices.uvm-module-missing";
pub const DEVICES_UVM_MISSING: &str = "devices.uvm-missing";
pub const DEVICES_WRONG_NUMBER: &str = "devices.wrong-number";
pub const DEVICES_CAPS_MISSING: &str = "devices.caps-missing";
pub const DEVICES_CHAR_LINKS_OK: &str = "devices.char-links-ok";
pub const DEVICES_CHAR_LINKS_MISSING: &str = "devices.char-links-missing";
pub const CGROUP_VERSION: &str = "cgroup.version";
pub const CGROUP_NONE: &str = "cgroup.none";
pub const CGROUP_DRIVER: &str = "cgroup.driver";
pub const DOCKER_NOT_CONFIGURED: &str = "docker.not-configured";
pub const DOCKER_CONFIG_MALFORMED: &str = "docker.config-malformed";
pub const DOCKER_RUNTIME_REGISTERED: &str = "docker.runtime-registered";
pub const DOCKER_RUNTIME_MISSING: &str = "docker.runtime-missing";
pub const DOCKER_RUNTIME_PATH_MISSING: &str = "docker.runtime-path-missing";
pub const DOCKER_RUNTIME_OTHER: &str = "docker.runtime-other";
pub const DOCKER_DEFAULT_RUNTIME_UNKNOWN: &str = "docker.default-runtime-unknown";
pub const CONTAINERD_NOT_CONFIGURED: &str = "containerd.not-configured";
pub const CONTAINERD_CONFIG_MALFORMED: &str = "containerd.config-malformed";
pub const CONTAINERD_RUNTIME_REGISTERED: &str = "containerd.runtime-registered";
pub const CONTAINERD_RUNTIME_MISSING: &str = "containerd.runtime-missing";
pub const CONTAINERD_RUNTIME_PATH_MISSING: &str = "containerd.runtime-path-missing";
pub const CONTAINERD_RUNTIME_OTHER: &str = "containerd.runtime-other";
pub const CONTAINERD_DEFAULT_RUNTIME_UNKNOWN: &str = "containerd.default-runtime-unknown";
pub const CRIO_NOT_CONFIGURED: &str = "crio.not-configured";
pub const CRIO_CONFIG_MALFORMED: &str = "crio.config-malformed";
pub const CRIO_RUNTIME_REGISTERED: &str = "crio.runtime-registered";
pub const CRIO_RUNTIME_MISSING: &str = "crio.runtime-missing";
pub const CRIO_RUNTIME_PATH_MISSING: &str = "crio.runtime-path-missing";
pub const CRIO_RUNTIME_OTHER: &str = "crio.runtime-other";
pub const CRIO_DEFAULT_RUNTIME_UNKNOWN: &str = "crio.default-runtime-unknown";
pub const CDI_NO_SPECS: &str = "cdi.no-specs";
pub const CDI_SPECS_OK: &str = "cdi.specs-ok";
pub const CDI_SPEC_MALFORMED: &str = "cdi.spec-malformed";
pub const CDI_SPEC_STALE: &str = "cdi.spec-stale";
pub const CDI_DEVICE_CONFLICT: &str = "cdi.device-conflict";
pub const TRIAL_PASSED: &str = "trial.passed";
pub const TRIAL_FAILED: &str = "trial.failed";
pub const TRIAL_SKIPPED: &str = "trial.skipped";

/// All of them, in report order.
pub const ALL: &[&str] = &[
    CONFIG_LOADED,
    CONFIG_INVALID,
    CONFIG_IGNORED_KEY,
    DRIVER_MODULE_LOADED,
    DRIVER_MODULE_MISSING,
    DRIVER_MODULE_UNREADABLE,
    DRIVER_GPU_INFO_INVALID,
    DRIVER_NO_GPUS,
    DRIVER_GPU_UNREADABLE,
    DRIVER_LIBRARIES_FOUND,
    DRIVER_LIBRARIES_MISSING,
    DRIVER_LIBRARIES_STALE,
    DRIVER_PERSISTENCED_RUNNING,
    DRIVER_PERSISTENCED_OFF,
    DEVICES_OK,
    DEVICES_CTL_MISSING,
    DEVICES_GPU_MISSING,
    DEVICES_UVM_MODULE_MISSING,
    DEVICES_UVM_MISSING,
    DEVICES_WRONG_NUMBER,
    DEVICES_CAPS_MISSING,
    DEVICES_CHAR_LINKS_OK,
    DEVICES_CHAR_LINKS_MISSING,
    CGROUP_VERSION,
    CGROUP_NONE,
    CGROUP_DRIVER,
    DOCKER_NOT_CONFIGURED,
    DOCKER_CONFIG_MALFORMED,
    DOCKER_RUNTIME_REGISTERED,
    DOCKER_RUNTIME_MISSING,
    DOCKER_RUNTIME_PATH_MISSING,
    DOCKER_RUNTIME_OTHER,
    DOCKER_DEFAULT_RUNTIME_UNKNOWN,
    CONTAINERD_NOT_CONFIGURED,
    CONTAINERD_CONFIG_MALFORMED,
    CONTAINERD_RUNTIME_REGISTERED,
    CONTAINERD_RUNTIME_MISSING,
    CONTAINERD_RUNTIME_PATH_MISSING,
    CONTAINERD_RUNTIME_OTHER,
    CONTAINERD_DEFAULT_RUNTIME_UNKNOWN,
    CRIO_NOT_CONFIGURED,
    CRIO_CONFIG_MALFORMED,
    CRIO_RUNTIME_REGISTERED,
    CRIO_RUNTIME_MISSING,
    CRIO_RUNTIME_PATH_MISSING,
    CRIO_RUNTIME_OTHER,
    CRIO_DEFAULT_RUNTIME_UNKNOWN,
    CDI_NO_SPECS,
    CDI_SPECS_OK,
    CDI_SPEC_MALFORMED,
    CDI_SPEC_STALE,
    CDI_DEVICE_CONFLICT,
    TRIAL_PASSED,
    TRIAL_FAILED,
    TRIAL_SKIPPED,
];
