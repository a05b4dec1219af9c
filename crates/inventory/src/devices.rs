//! Device nodes under the dev root.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::{fsx, DeviceNode};

/// Linux's `major()` of a `dev_t` (glibc's encoding: 12 bits in the middle, the rest above).
fn major(rdev: u64) -> u32 {
    (((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff)) as u32
}

/// Linux's `minor()` of a `dev_t`.
fn minor(rdev: u64) -> u32 {
    ((rdev & 0xff) | ((rdev >> 12) & !0xff)) as u32
}

/// How loudly a missing node is reported.
#[derive(Clone, Copy)]
pub(crate) enum IfMissing {
    Warn,
    Debug,
}

/// Stats `dev_root` + `container_path` (e.g. `/dev/nvidia0`). A missing node, or one that is no
/// character device, is left out with a log line: the driver creates some nodes lazily
/// (`nvidia-uvm`, `nvidia-modeset`), and a container that needs a missing one fails later with
/// the node's name in the message, which says more than failing discovery for everyone.
pub(crate) fn node(
    dev_root: &Path,
    container_path: &str,
    if_missing: IfMissing,
) -> Option<DeviceNode> {
    let host_path = fsx::under(dev_root, Path::new(container_path));
    match fsx::metadata(&host_path) {
        Ok(md) if md.file_type().is_char_device() => Some(DeviceNode {
            container_path: PathBuf::from(container_path),
            major: major(md.rdev()),
            minor: minor(md.rdev()),
            mode: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
            host_path,
        }),
        Ok(_) => {
            tracing::warn!(path = %host_path.display(), "not a character device; skipped");
            None
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            match if_missing {
                IfMissing::Warn => {
                    tracing::warn!(path = %host_path.display(), "missing device node")
                }
                IfMissing::Debug => {
                    tracing::debug!(path = %host_path.display(), "missing device node")
                }
            }
            None
        }
        Err(e) => {
            tracing::warn!(path = %host_path.display(), error = %e, "cannot stat device node; skipped");
            None
        }
    }
}

/// Every character device in `/dev/nvidia-caps/` (MIG capability nodes), by minor.
pub(crate) fn mig_caps(dev_root: &Path) -> Vec<DeviceNode> {
    let dir = fsx::under(dev_root, Path::new("/dev/nvidia-caps"));
    let Ok(names) = fsx::read_dir_names(&dir) else {
        return Vec::new();
    };
    let mut nodes: Vec<DeviceNode> = names
        .iter()
        .filter_map(|n| n.to_str())
        .filter_map(|n| node(dev_root, &format!("/dev/nvidia-caps/{n}"), IfMissing::Debug))
        .collect();
    nodes.sort_by_key(|n| (n.major, n.minor));
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_t_encoding() {
        // makedev(195, 255) and makedev(511, 1) in glibc's encoding.
        let mk = |ma: u64, mi: u64| {
            ((ma & 0xfff) << 8) | ((ma & !0xfff) << 32) | (mi & 0xff) | ((mi & !0xff) << 12)
        };
        for (ma, mi) in [(195, 255), (511, 1), (4095, 1 << 19), (1 << 20, 300)] {
            let d = mk(ma, mi);
            assert_eq!((major(d), minor(d)), (ma as u32, mi as u32));
        }
    }

    #[test]
    fn null_is_1_3() {
        let n = node(Path::new("/"), "/dev/null", IfMissing::Warn).unwrap();
        assert_eq!((n.major, n.minor), (1, 3));
        assert_eq!(n.host_path, Path::new("/dev/null"));
        assert!(node(Path::new("/"), "/dev/nvsim-missing", IfMissing::Debug).is_none());
    }
}
