//! The container's `/proc/driver/nvidia`: its own GPUs only, and no leave to make device nodes.
//!
//! The kernel module's `/proc/driver/nvidia` is the same in every proc mount: a container given
//! GPU 1 sees every GPU under `gpus/`, and `params` says `ModifyDeviceFiles: 1`, so NVML (run as
//! root with CAP_MKNOD, nvidia-smi for one) makes `/dev/nvidia<N>` for every GPU it sees. The
//! device cgroup keeps those from opening, but they must not exist at all. As NVIDIA's
//! libnvidia-container does with a tmpfs, the container gets a directory of our own over
//! `/proc/driver/nvidia` holding copies of `version` and `registry`, `params` with
//! `ModifyDeviceFiles: 0`, and the host's `gpus/<bus id>` of its GPUs bound into it. Everything
//! else there (`capabilities/` of MIG, `warnings/`, `patches/`) is hidden, as NVIDIA's does.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use inventory::Gpu;
use serde_json::Value;

use crate::plan::BindMount;
use crate::{InjectError, ARTIFACTS_DIR};

/// Where the module's files are, in the container and under the proc root.
const DRIVER_PROC: &str = "/proc/driver/nvidia";
/// The files copied; any other file of the module's stays hidden.
const COPIED: [&str; 3] = ["params", "version", "registry"];
/// Our copy, under the bundle's artifacts dir.
const COPY_DIR: &str = "proc-driver-nvidia";

/// The container's `/proc/driver/nvidia`: the mounts that show it, in order (our copy's
/// directory under `<bundle>/.nvidia-runtime/` first, then each GPU's), and the copy to write
/// before the container's init mounts them ([`Copy::write`]). `None` when the host's proc
/// (under `proc_root`) shows no driver, when the container has no `/proc`, or when this
/// process's own `/proc` has no driver: the container's proc would not either, and a mount
/// onto a path procfs lacks fails the container.
pub fn plan(
    bundle: &Path,
    spec: &Value,
    proc_root: &Path,
    gpus: &[&Gpu],
) -> Option<(Vec<BindMount>, Copy)> {
    let host = proc_root.join(DRIVER_PROC.trim_start_matches('/'));
    if !host.is_dir() || !Path::new(DRIVER_PROC).is_dir() || !mounts_proc(spec) {
        tracing::debug!(host = %host.display(), "no /proc/driver/nvidia to hide in the container");
        return None;
    }
    let copy = bundle.join(ARTIFACTS_DIR).join(COPY_DIR);
    let mut mounts = vec![BindMount {
        host: copy.clone(),
        container: PathBuf::from(DRIVER_PROC),
    }];
    let mut gpu_dirs = Vec::new();
    for gpu in gpus {
        let Some(name) = gpu.proc_dir.file_name() else {
            continue;
        };
        gpu_dirs.push(PathBuf::from(name));
        mounts.push(BindMount {
            host: gpu.proc_dir.clone(),
            container: Path::new(DRIVER_PROC).join("gpus").join(name),
        });
    }
    Some((
        mounts,
        Copy {
            host,
            copy,
            gpu_dirs,
        },
    ))
}

/// Our copy of the module's `/proc/driver/nvidia` for one container: what [`plan`]'s first
/// mount shows.
#[derive(Debug)]
pub struct Copy {
    /// The module's directory under the proc root.
    host: PathBuf,
    /// Ours, under the bundle's artifacts dir.
    copy: PathBuf,
    /// The GPUs' directory names under `gpus/` (mount points of their own directories).
    gpu_dirs: Vec<PathBuf>,
}

impl Copy {
    /// Writes the copy: `params` (with `ModifyDeviceFiles: 0`), `version` and `registry`
    /// read from the host, 0444, and an empty `gpus/<bus id>` per GPU. Errors name the file.
    pub fn write(&self) -> Result<(), InjectError> {
        write_copy(&self.host, &self.copy, &self.gpu_dirs)
    }
}

/// Whether the spec mounts something at `/proc` (our mounts go on top of it).
fn mounts_proc(spec: &Value) -> bool {
    spec.get("mounts")
        .and_then(Value::as_array)
        .is_some_and(|mounts| {
            mounts.iter().any(|m| {
                m.get("destination")
                    .and_then(Value::as_str)
                    .is_some_and(|d| d.trim_end_matches('/') == "/proc")
            })
        })
}

fn write_copy(host: &Path, copy: &Path, gpu_dirs: &[PathBuf]) -> Result<(), InjectError> {
    let write_err = |path: &Path| {
        let path = path.to_owned();
        move |source| InjectError::Write { path, source }
    };
    // A bundle used before (a restarted container) has one from then: start afresh.
    if copy.exists() {
        std::fs::remove_dir_all(copy).map_err(write_err(copy))?;
    }
    let gpus_dir = copy.join("gpus");
    std::fs::create_dir_all(&gpus_dir).map_err(write_err(&gpus_dir))?;
    for name in gpu_dirs {
        let dir = gpus_dir.join(name);
        std::fs::create_dir(&dir).map_err(write_err(&dir))?;
    }
    for name in COPIED {
        let from = host.join(name);
        let text = match std::fs::read_to_string(&from) {
            Ok(text) => text,
            // Older modules lack `registry`; the container lacks it then too.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(InjectError::Read { path: from, source }),
        };
        let text = if name == "params" {
            without_device_file_changes(&text)
        } else {
            text
        };
        let to = copy.join(name);
        std::fs::write(&to, text).map_err(write_err(&to))?;
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o444))
            .map_err(write_err(&to))?;
    }
    Ok(())
}

/// The module's parameters with `ModifyDeviceFiles: 0`: NVML then uses the device nodes it
/// finds and makes none.
pub(crate) fn without_device_file_changes(params: &str) -> String {
    let mut out = String::with_capacity(params.len() + 24);
    let mut found = false;
    for line in params.lines() {
        if line.starts_with("ModifyDeviceFiles:") {
            out.push_str("ModifyDeviceFiles: 0\n");
            found = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !found {
        out.push_str("ModifyDeviceFiles: 0\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_say_modify_device_files_0() {
        let host = "RmLogonRC: 1\nModifyDeviceFiles: 1\nDeviceFileMode: 438\n";
        assert_eq!(
            without_device_file_changes(host),
            "RmLogonRC: 1\nModifyDeviceFiles: 0\nDeviceFileMode: 438\n"
        );
        assert_eq!(
            without_device_file_changes("RmLogonRC: 1"),
            "RmLogonRC: 1\nModifyDeviceFiles: 0\n"
        );
    }

    #[test]
    fn only_a_spec_with_proc_gets_mounts() {
        assert!(mounts_proc(
            &serde_json::json!({"mounts": [{"destination": "/proc", "type": "proc"}]})
        ));
        assert!(!mounts_proc(
            &serde_json::json!({"mounts": [{"destination": "/procs"}]})
        ));
        assert!(!mounts_proc(&serde_json::json!({})));
    }

    #[test]
    fn the_copy_holds_the_module_files_and_the_given_gpus_dirs() {
        let host = tempfile::tempdir().unwrap();
        let nv = host.path().join("nvidia");
        std::fs::create_dir_all(nv.join("gpus/0000:18:00.0")).unwrap();
        std::fs::create_dir_all(nv.join("capabilities")).unwrap();
        std::fs::write(nv.join("params"), "ModifyDeviceFiles: 1\n").unwrap();
        std::fs::write(nv.join("version"), "NVRM version: x 580.159.04\n").unwrap();
        std::fs::write(nv.join("warnings"), "").unwrap();
        let bundle = tempfile::tempdir().unwrap();
        let copy = bundle.path().join("copy");
        for _ in 0..2 {
            write_copy(&nv, &copy, &[PathBuf::from("0000:2a:00.0")]).unwrap();
            let mut names: Vec<String> = std::fs::read_dir(&copy)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            assert_eq!(names, ["gpus", "params", "version"]);
            let gpus: Vec<_> = std::fs::read_dir(copy.join("gpus")).unwrap().collect();
            assert_eq!(gpus.len(), 1);
            assert!(copy.join("gpus/0000:2a:00.0").is_dir());
            assert_eq!(
                std::fs::read_to_string(copy.join("params")).unwrap(),
                "ModifyDeviceFiles: 0\n"
            );
        }
    }
}
