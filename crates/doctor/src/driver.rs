//! The kernel module, its GPUs, the driver's libraries and the persistence daemon, as the
//! runtime's own discovery (the `inventory` crate) sees them under the runtime's roots.

use std::path::Path;

use inventory::{Capability, Error, Options, Roots};

use crate::{ids, Finding, Severity};

/// The driver findings, and the module's version when it is loaded (the device checks need a
/// loaded module, the CDI checks its version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverCheck {
    /// In report order.
    pub findings: Vec<Finding>,
    /// The loaded module and its GPUs (no driver files: see `check`), when it is loaded.
    pub inventory: Option<inventory::Inventory>,
}

/// The libraries a GPU container of each capability cannot do without (by their real file's
/// name before the version): what NVIDIA's own container CLI insists on.
const ESSENTIAL: [(Capability, &str); 2] = [
    (Capability::Compute, "libcuda.so"),
    (Capability::Utility, "libnvidia-ml.so"),
];

/// Checks the module (`driver.module-*`), its GPUs (`driver.no-gpus`, `driver.gpu-*`), the
/// libraries (`driver.libraries-*`) and persistenced (`driver.persistenced-*`).
pub fn check(roots: &Roots) -> DriverCheck {
    let mut findings = Vec::new();
    // Discovery of nothing but the module and its GPUs: with no capability wanted it neither
    // looks for libraries nor compares their version, so a stale library cannot hide the GPUs.
    let bare = Options {
        capabilities: Some(Vec::new()),
        ..Options::default()
    };
    let inv = match inventory::discover_with(roots, &bare) {
        Ok(inv) => inv,
        Err(err) => {
            findings.push(module_error(&err, roots));
            return DriverCheck {
                findings,
                inventory: None,
            };
        }
    };
    findings.push(Finding::new(
        ids::DRIVER_MODULE_LOADED,
        Severity::Ok,
        format!(
            "NVIDIA kernel module {} is loaded ({})",
            inv.driver_version,
            roots.proc_.join("proc/driver/nvidia/version").display()
        ),
    ));
    let gpus_dir = roots.proc_.join("proc/driver/nvidia/gpus");
    if inv.gpus.is_empty() && inv.unreadable_gpus.is_empty() && !has_entries(&gpus_dir) {
        findings.push(
            Finding::new(
                ids::DRIVER_NO_GPUS,
                Severity::Warning,
                format!("the module lists no GPU ({} is empty or missing)", gpus_dir.display()),
            )
            .fix("check that the GPUs are seen on the PCI bus (`lspci -d 10de:`), are not excluded (NVreg_ExcludedGpus), and that `dmesg | grep NVRM` shows no error"),
        );
    }
    for gpu in &inv.unreadable_gpus {
        findings.push(
            Finding::new(
                ids::DRIVER_GPU_UNREADABLE,
                Severity::Error,
                format!(
                    "GPU {} cannot be handed out: {}",
                    gpu.dir.display(),
                    gpu.reason
                ),
            )
            .fix("look for the GPU's errors in `dmesg | grep NVRM`; reset it (`nvidia-smi -r -i <bus id>`) or reboot"),
        );
    }
    findings.extend(libraries(roots, &inv.driver_version));
    findings.push(persistenced(&roots.driver));
    DriverCheck {
        findings,
        inventory: Some(inv),
    }
}

fn has_entries(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some())
}

fn module_error(err: &Error, roots: &Roots) -> Finding {
    match err {
        Error::NoDriver { path } => Finding::new(
            ids::DRIVER_MODULE_MISSING,
            Severity::Error,
            format!("the NVIDIA kernel module is not loaded: {} does not exist", path.display()),
        )
        .fix(if roots.proc_ == Path::new("/") {
            "load it: `modprobe nvidia` (if that fails, the driver is not installed for this kernel: install it, or check `dmesg | grep -i nvidia`)".to_string()
        } else {
            format!("load it (`modprobe nvidia`), or, if the driver runs elsewhere, set [nvidia-runtime] proc-root (now {}) to where its /proc is", roots.proc_.display())
        }),
        Error::DriverVersion { path, reason } => Finding::new(
            ids::DRIVER_MODULE_UNREADABLE,
            Severity::Error,
            format!("cannot tell the loaded module's version from {}: {reason}", path.display()),
        )
        .fix("the file is not what the NVIDIA module writes: check [nvidia-runtime] proc-root in the runtime's config"),
        other => Finding::new(
            ids::DRIVER_GPU_INFO_INVALID,
            Severity::Error,
            format!("the module's GPU list cannot be read: {other}"),
        )
        .fix("check `dmesg | grep NVRM` for driver errors; reload the module or reboot"),
    }
}

/// `driver.libraries-stale` when the witness libraries exist only at another version than the
/// module's, `driver.libraries-missing` when a capability's essential library is absent,
/// else `driver.libraries-found`.
fn libraries(roots: &Roots, module_version: &str) -> Vec<Finding> {
    let inv = match inventory::discover(roots) {
        Ok(inv) => inv,
        Err(Error::VersionMismatch {
            module_version,
            version_file,
            library,
            library_version,
        }) => {
            return vec![Finding::new(
                ids::DRIVER_LIBRARIES_STALE,
                Severity::Error,
                format!(
                    "the driver libraries are version {library_version} ({}) but the loaded kernel module is {module_version} ({}): a driver upgrade or downgrade is half done",
                    library.display(),
                    version_file.display()
                ),
            )
            .fix(format!(
                "reboot, or stop everything using the GPUs and reload the modules (`rmmod nvidia_uvm nvidia_drm nvidia_modeset nvidia && modprobe nvidia nvidia-uvm`), so that the module is {library_version}; or reinstall the libraries of {module_version}"
            ))];
        }
        // Anything else failed in the bare discovery already and was reported there.
        Err(_) => return Vec::new(),
    };
    let missing: Vec<String> = ESSENTIAL
        .iter()
        .filter(|(capability, name)| {
            !inv.libraries_for(*capability).any(|l| {
                l.file_name
                    .strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('.'))
            })
        })
        .map(|(_, name)| format!("{name}.{module_version}"))
        .collect();
    if !missing.is_empty() {
        return vec![Finding::new(
            ids::DRIVER_LIBRARIES_MISSING,
            Severity::Error,
            format!(
                "driver libraries not found under driver root {}: {} (looked in its etc/ld.so.cache and the usual library dirs)",
                roots.driver.display(),
                missing.join(", ")
            ),
        )
        .fix(format!(
            "install the driver's user-space libraries of version {module_version} (e.g. the distribution's libnvidia-compute package), then run `ldconfig`; if the driver lives elsewhere, set [nvidia-container-cli] root in the runtime's config"
        ))];
    }
    vec![Finding::new(
        ids::DRIVER_LIBRARIES_FOUND,
        Severity::Ok,
        format!(
            "{} driver libraries of version {module_version} found, {} binaries, {} firmware files",
            inv.libraries.len(),
            inv.binaries.len(),
            inv.firmware.len()
        ),
    )]
}

/// Where nvidia-persistenced listens, under the driver root.
const PERSISTENCED_SOCKETS: [&str; 2] = [
    "run/nvidia-persistenced/socket",
    "var/run/nvidia-persistenced/socket",
];

/// Info either way: persistence mode only saves the driver's start-up on each first use.
fn persistenced(driver_root: &Path) -> Finding {
    let found = PERSISTENCED_SOCKETS
        .iter()
        .map(|s| driver_root.join(s))
        .find(|p| p.symlink_metadata().is_ok());
    match found {
        Some(socket) => Finding::new(
            ids::DRIVER_PERSISTENCED_RUNNING,
            Severity::Ok,
            format!("nvidia-persistenced is running ({})", socket.display()),
        ),
        None => Finding::new(
            ids::DRIVER_PERSISTENCED_OFF,
            Severity::Info,
            format!(
                "nvidia-persistenced is not running (no {}): unless persistence mode is on otherwise (`nvidia-smi -q | grep Persistence`), each GPU is initialised again whenever no process holds it, which adds seconds to a container's first CUDA call",
                driver_root.join(PERSISTENCED_SOCKETS[0]).display()
            ),
        )
        .fix("`systemctl enable --now nvidia-persistenced` (or `nvidia-smi -pm 1`)"),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;
    use std::process::Command;

    use super::*;

    /// A simulated host (tests/fixtures/make-driver-root.sh) with `n` GPUs, or `None` where the
    /// script cannot run (it needs root and gcc).
    fn sim(n: u32) -> Option<tempfile::TempDir> {
        let root_user = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
        if !root_user || Command::new("gcc").arg("--version").output().is_err() {
            eprintln!("skipped: make-driver-root.sh needs root and gcc");
            return None;
        }
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/make-driver-root.sh");
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("bash")
            .arg(&script)
            .arg(n.to_string())
            .arg(dir.path().join("root"))
            .status()
            .unwrap();
        assert!(status.success());
        Some(dir)
    }

    fn ids_of(f: &[Finding]) -> Vec<(&'static str, Severity)> {
        f.iter().map(|f| (f.id, f.severity)).collect()
    }

    #[test]
    fn simulated_host() {
        let Some(t) = sim(2) else { return };
        let root = t.path().join("root");
        let roots = Roots::all(&root);
        let c = check(&roots);
        assert_eq!(
            c.inventory.as_ref().map(|i| i.driver_version.as_str()),
            Some("580.159.04")
        );
        assert_eq!(
            ids_of(&c.findings),
            vec![
                (ids::DRIVER_MODULE_LOADED, Severity::Ok),
                (ids::DRIVER_LIBRARIES_FOUND, Severity::Ok),
                (ids::DRIVER_PERSISTENCED_RUNNING, Severity::Ok),
            ]
        );
        assert!(c.findings[0].message.contains("580.159.04"));

        // Persistenced stopped: info only.
        std::fs::remove_file(root.join("run/nvidia-persistenced/socket")).unwrap();
        let c = check(&roots);
        assert_eq!(
            ids_of(&c.findings[2..]),
            vec![(ids::DRIVER_PERSISTENCED_OFF, Severity::Info)]
        );

        // The module upgraded, the libraries not (or the reverse): stale.
        let version = root.join("proc/driver/nvidia/version");
        let text = std::fs::read_to_string(&version).unwrap();
        std::fs::write(&version, text.replace("580.159.04", "580.160.01")).unwrap();
        let c = check(&roots);
        let stale = &c.findings[1];
        assert_eq!(
            (stale.id, stale.severity),
            (ids::DRIVER_LIBRARIES_STALE, Severity::Error)
        );
        assert!(
            stale.message.contains("version 580.159.04") && stale.message.contains("is 580.160.01"),
            "{}",
            stale.message
        );
        std::fs::write(&version, &text).unwrap();

        // No libnvidia-ml at all.
        for f in std::fs::read_dir(root.join("usr/local/nvidia/lib64"))
            .unwrap()
            .flatten()
        {
            if f.file_name()
                .to_string_lossy()
                .starts_with("libnvidia-ml.so")
            {
                std::fs::remove_file(f.path()).unwrap();
            }
        }
        let c = check(&roots);
        let missing = &c.findings[1];
        assert_eq!(
            (missing.id, missing.severity),
            (ids::DRIVER_LIBRARIES_MISSING, Severity::Error)
        );
        assert!(
            missing.message.contains("libnvidia-ml.so.580.159.04"),
            "{}",
            missing.message
        );
        assert!(!missing.message.contains("libcuda"), "{}", missing.message);

        // No module.
        std::fs::remove_file(&version).unwrap();
        let c = check(&roots);
        assert_eq!(c.inventory, None);
        assert_eq!(
            ids_of(&c.findings),
            vec![(ids::DRIVER_MODULE_MISSING, Severity::Error)]
        );
        assert!(c.findings[0].fix.as_deref().unwrap().contains("proc-root"));

        std::fs::write(&version, "NVRM version: garbage\n").unwrap();
        let c = check(&roots);
        assert_eq!(
            ids_of(&c.findings),
            vec![(ids::DRIVER_MODULE_UNREADABLE, Severity::Error)]
        );
    }

    #[test]
    fn no_gpus_listed() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("proc/driver/nvidia");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(
            p.join("version"),
            "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.129.03  Thu Oct 19 2023\n",
        )
        .unwrap();
        let c = check(&Roots::all(t.path()));
        let got = ids_of(&c.findings);
        assert_eq!(got[0], (ids::DRIVER_MODULE_LOADED, Severity::Ok));
        assert_eq!(got[1], (ids::DRIVER_NO_GPUS, Severity::Warning));
        assert_eq!(got[2], (ids::DRIVER_LIBRARIES_MISSING, Severity::Error));
        assert_eq!(got[3], (ids::DRIVER_PERSISTENCED_OFF, Severity::Info));
    }
}
