//! Binaries, firmware and IPC endpoints under the driver root.

use std::collections::HashSet;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::fsx::{self, Resolver};
use crate::{Capability, HostFile};

/// Searched in this order; the first hit of a name wins, as on a `PATH`.
pub const BIN_DIRS: &[&str] = &[
    "/usr/local/nvidia/bin",
    "/usr/bin",
    "/usr/sbin",
    "/bin",
    "/usr/local/bin",
];

/// NVIDIA's `utility_bins` and `compute_bins`.
const BINARIES: &[(&str, Capability)] = &[
    ("nvidia-smi", Capability::Utility),
    ("nvidia-debugdump", Capability::Utility),
    ("nvidia-persistenced", Capability::Utility),
    ("nv-fabricmanager", Capability::Utility),
    ("nvidia-cuda-mps-control", Capability::Compute),
    ("nvidia-cuda-mps-server", Capability::Compute),
];

/// Container path `/usr/bin/<name>`; host path the real file the name resolves to.
pub(crate) fn binaries(
    res: &mut Resolver<'_>,
    wants: &dyn Fn(Capability) -> bool,
) -> Vec<HostFile> {
    let mut out = Vec::new();
    for (name, cap) in BINARIES.iter().filter(|(_, cap)| wants(*cap)) {
        for dir in BIN_DIRS {
            let Ok(real) = res.resolve(&Path::new(dir).join(name)) else {
                continue;
            };
            match real.metadata {
                md if md.is_file() && md.permissions().mode() & 0o111 != 0 => {
                    out.push(HostFile {
                        host_path: real.path,
                        container_path: PathBuf::from("/usr/bin").join(name),
                        capability: Some(*cap),
                    });
                    break;
                }
                _ => {}
            }
        }
    }
    out
}

/// `gsp*.bin` for this driver version from `/lib/firmware/nvidia/<version>/` (where the driver
/// installer puts it and the kernel loads it from) and `/usr/local/nvidia/firmware/nvidia/<version>/`
/// (the GPU host's read-only driver mount). Always at `/lib/firmware/nvidia/<version>/` in the
/// container, with no capability: the toolkit mounts the GSP firmware with any GPU.
pub(crate) fn firmware(res: &mut Resolver<'_>, version: &str) -> Vec<HostFile> {
    let container_dir = PathBuf::from("/lib/firmware/nvidia").join(version);
    let dirs = [
        container_dir.clone(),
        PathBuf::from("/usr/local/nvidia/firmware/nvidia").join(version),
    ];
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for dir in dirs {
        let Ok(real_dir) = res.resolve(&dir) else {
            continue;
        };
        let Ok(mut names) = fsx::read_dir_names(&real_dir.path) else {
            continue;
        };
        names.sort();
        for name in names {
            let Some(name) = name.to_str() else { continue };
            if !(name.starts_with("gsp") && name.ends_with(".bin")) || seen.contains(name) {
                continue;
            }
            let Ok(real) = res.resolve(&dir.join(name)) else {
                continue;
            };
            if real.metadata.is_file() {
                seen.insert(name.to_string());
                out.push(HostFile {
                    host_path: real.path,
                    container_path: container_dir.join(name),
                    capability: None,
                });
            }
        }
    }
    out.sort_by(|a, b| a.container_path.cmp(&b.container_path));
    out
}

/// The persistenced and fabric manager sockets (utility, as the toolkit mounts them) and the MPS
/// pipe directory (compute), where present; container path = host path in the root's view.
pub(crate) fn ipc(res: &mut Resolver<'_>) -> Vec<HostFile> {
    // (path, capability, a socket rather than a directory)
    let wanted = [
        ("/run/nvidia-persistenced/socket", Capability::Utility, true),
        (
            "/run/nvidia-fabricmanager/socket",
            Capability::Utility,
            true,
        ),
        ("/tmp/nvidia-mps", Capability::Compute, false),
    ];
    let mut out = Vec::new();
    for (path, cap, socket) in wanted {
        let ok = |m: &std::fs::Metadata| {
            if socket {
                m.file_type().is_socket()
            } else {
                m.is_dir()
            }
        };
        match res.resolve(Path::new(path)) {
            Ok(real) if ok(&real.metadata) => out.push(HostFile {
                host_path: real.path,
                container_path: PathBuf::from(path),
                capability: Some(cap),
            }),
            Ok(real) => {
                tracing::debug!(path = %real.path.display(), "unexpected file type; skipped")
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                tracing::debug!(root = %res.root().display(), path, "no IPC endpoint");
            }
            Err(e) => tracing::debug!(path, error = %e, "cannot resolve IPC endpoint"),
        }
    }
    out
}
