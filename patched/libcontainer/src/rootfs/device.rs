use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::io::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use libc;
use nix::fcntl::{AtFlags, OFlag, open, openat};
use nix::mount::MsFlags;
use nix::sys::stat::{FileStat, Mode, fstat, mknodat, umask};
use nix::unistd::{Gid, Uid, close, fchownat};
use oci_spec::runtime::LinuxDevice;
use pathrs::{Handle, Root};

use super::utils::{dir_in_root, to_sflag};
use crate::syscall::Syscall;
use crate::syscall::syscall::create_syscall;

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("{0:?} is not a valid device path")]
    InvalidDevicePath(std::path::PathBuf),
    #[error("failed syscall to create device")]
    Syscall(#[from] crate::syscall::SyscallError),
    #[error(transparent)]
    Nix(#[from] nix::Error),
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
    #[error("{0}")]
    Custom(String),
    #[error("cannot create the device {path:?} in the container's rootfs")]
    InRootfs {
        path: PathBuf,
        source: pathrs::error::Error,
    },
}

type Result<T> = std::result::Result<T, DeviceError>;

pub(crate) fn open_device_fd(dev_path: &Path) -> nix::Result<(OwnedFd, FileStat)> {
    let fd = open(
        dev_path,
        OFlag::O_PATH | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o000),
    )?;
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let stat = fstat(owned.as_raw_fd())?;
    Ok((owned, stat))
}

pub(crate) fn verify_dev_null(stat: &FileStat) -> Result<()> {
    if stat.st_mode & libc::S_IFMT != libc::S_IFCHR {
        return Err(DeviceError::Custom(
            "device is not a character device".to_string(),
        ));
    }

    let actual_major = libc::major(stat.st_rdev) as i64;
    let actual_minor = libc::minor(stat.st_rdev) as i64;
    if actual_major != 1 || actual_minor != 3 {
        return Err(DeviceError::Custom(format!(
            "device dev null major/minor mismatch: expected 1/3, actual {}/{}",
            actual_major, actual_minor
        )));
    }
    Ok(())
}

pub struct Device {
    syscall: Box<dyn Syscall>,
}

impl Default for Device {
    fn default() -> Self {
        Self::new()
    }
}

impl Device {
    pub fn new() -> Device {
        Device {
            syscall: create_syscall(),
        }
    }

    pub fn new_with_syscall(syscall: Box<dyn Syscall>) -> Device {
        Device { syscall }
    }

    pub fn create_devices<'a, I>(&self, rootfs: &Path, devices: I, bind: bool) -> Result<()>
    where
        I: IntoIterator<Item = &'a LinuxDevice>,
    {
        let old_mode = umask(Mode::from_bits_truncate(0o000));
        devices
            .into_iter()
            .map(|dev| {
                if !dev.path().starts_with("/dev") {
                    tracing::error!(
                        "{:?} is not a valid device path starting with /dev",
                        dev.path()
                    );
                    return Err(DeviceError::InvalidDevicePath(dev.path().to_path_buf()));
                }

                if bind {
                    self.bind_dev(rootfs, dev)
                } else {
                    self.mknod_dev(rootfs, dev)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        umask(old_mode);

        Ok(())
    }

    fn bind_dev(&self, rootfs: &Path, dev: &LinuxDevice) -> Result<()> {
        let (root, dir, name) = container_dev_dir(rootfs, dev)?;
        tracing::debug!("bind_dev with container path {:?}", dev.path());

        // Only create the mount point: whatever the image already has there (a FIFO, a device
        // node of its choosing) is mounted over, never opened.
        match openat(
            Some(dir.as_fd().as_raw_fd()),
            &name,
            OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        ) {
            Ok(fd) => close(fd)?,
            Err(nix::errno::Errno::EEXIST) => {}
            Err(err) => {
                tracing::error!("failed to create bind dev {:?}: {}", dev.path(), err);
                return Err(err.into());
            }
        }
        // The target by a handle resolved inside the rootfs, mounted on through procfs: a
        // path would let the kernel follow the image's links out of the rootfs.
        let target = root
            .resolve(dev.path())
            .map_err(|source| DeviceError::InRootfs {
                path: dev.path().clone(),
                source,
            })?;
        let target_path = PathBuf::from(format!("/proc/self/fd/{}", target.as_fd().as_raw_fd()));
        self.syscall
            .mount(
                Some(dev.path()),
                &target_path,
                Some("bind"),
                MsFlags::MS_BIND,
                None,
            )
            .map_err(|err| {
                tracing::error!(?err, path = ?dev.path(), "failed to mount bind dev");
                err
            })?;

        Ok(())
    }

    fn mknod_dev(&self, rootfs: &Path, dev: &LinuxDevice) -> Result<()> {
        fn makedev(major: i64, minor: i64) -> u64 {
            ((minor & 0xff)
                | ((major & 0xfff) << 8)
                | ((minor & !0xff) << 12)
                | ((major & !0xfff) << 32)) as u64
        }

        let (_root, dir, name) = container_dev_dir(rootfs, dev)?;

        mknodat(
            Some(dir.as_fd().as_raw_fd()),
            &name,
            to_sflag(dev.typ()),
            Mode::from_bits_truncate(dev.file_mode().unwrap_or(0o666)),
            makedev(dev.major(), dev.minor()),
        )
        .map_err(|err| {
            tracing::error!(
                ?err,
                path = ?dev.path(),
                major = ?dev.major(),
                minor = ?dev.minor(),
                "failed to mknod device"
            );
            err
        })?;
        fchownat(
            Some(dir.as_fd().as_raw_fd()),
            &name,
            dev.uid().map(Uid::from_raw),
            dev.gid().map(Gid::from_raw),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|err| {
            tracing::error!(
                path = ?dev.path(),
                ?err,
                uid = ?dev.uid(),
                gid = ?dev.gid(),
                "failed to chown device"
            );
            err
        })?;

        Ok(())
    }
}

/// Opens (making it if needed) the directory that holds `dev` in the container, and returns
/// it with the rootfs and the device's file name. Every component, an image's own links
/// included, is resolved inside `rootfs`: an image whose `/dev` links to a host directory
/// must not get device nodes created in that directory.
fn container_dev_dir(rootfs: &Path, dev: &LinuxDevice) -> Result<(Root, Handle, PathBuf)> {
    let in_rootfs = |source| DeviceError::InRootfs {
        path: dev.path().clone(),
        source,
    };
    let (parent, name) = match (dev.path().parent(), dev.path().file_name()) {
        (Some(parent), Some(name)) => (parent, PathBuf::from(name)),
        _ => return Err(DeviceError::InvalidDevicePath(dev.path().clone())),
    };
    let root = Root::open(rootfs).map_err(in_rootfs)?;
    // (an O_PATH handle: it serves `mknodat`/`fchownat` and `openat` as a directory fd)
    let dir = dir_in_root(&root, parent, &Permissions::from_mode(0o755)).map_err(|source| {
        tracing::error!(?source, path = ?dev.path(), "failed to create the parent dir of a device");
        in_rootfs(source)
    })?;
    Ok((root, dir, name))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, symlink};
    use std::path::PathBuf;

    use anyhow::Result;
    use oci_spec::runtime::{LinuxDeviceBuilder, LinuxDeviceType};

    use super::*;
    use crate::syscall::test::TestHelperSyscall;

    fn dev_null(path: &str) -> LinuxDevice {
        LinuxDeviceBuilder::default()
            .path(PathBuf::from(path))
            .major(1)
            .minor(3)
            .typ(LinuxDeviceType::C)
            .file_mode(0o644u32)
            .uid(1000u32)
            .gid(1000u32)
            .build()
            .unwrap()
    }

    fn mounts_made(device: &Device) -> Vec<crate::syscall::test::MountArgs> {
        device
            .syscall
            .as_any()
            .downcast_ref::<TestHelperSyscall>()
            .unwrap()
            .get_mount_args()
    }

    // mknod needs CAP_MKNOD: these checks run as root only.
    fn can_mknod() -> bool {
        nix::unistd::geteuid().is_root()
    }

    fn assert_dev_null(path: &Path) -> Result<()> {
        let meta = fs::symlink_metadata(path)?;
        assert!(meta.file_type().is_char_device(), "{path:?}");
        assert_eq!(meta.rdev(), nix::sys::stat::makedev(1, 3));
        assert_eq!(meta.mode() & 0o7777, 0o644);
        assert_eq!((meta.uid(), meta.gid()), (1000, 1000));
        Ok(())
    }

    #[test]
    fn test_bind_dev() -> Result<()> {
        let tmp_dir = tempfile::tempdir()?;
        let device = Device::new_with_syscall(Box::<TestHelperSyscall>::default());
        device.bind_dev(
            tmp_dir.path(),
            &LinuxDeviceBuilder::default()
                .path(PathBuf::from("/dev/null"))
                .build()
                .unwrap(),
        )?;

        let mount_args = mounts_made(&device);
        assert_eq!(1, mount_args.len());
        let got = &mount_args[0];
        assert_eq!(Some(PathBuf::from("/dev/null")), got.source);
        assert_eq!(tmp_dir.path().join("dev").join("null"), got.target);
        assert_eq!(MsFlags::MS_BIND, got.flags);
        assert!(got.data.is_none());
        Ok(())
    }

    #[test]
    fn test_mknod_dev() -> Result<()> {
        if !can_mknod() {
            return Ok(());
        }
        let tmp_dir = tempfile::tempdir()?;
        let device = Device::new_with_syscall(Box::<TestHelperSyscall>::default());
        device.mknod_dev(tmp_dir.path(), &dev_null("/null"))?;
        assert_dev_null(&tmp_dir.path().join("null"))
    }

    #[test]
    fn test_create_devices() -> Result<()> {
        let tmp_dir = tempfile::tempdir()?;
        let device = Device::new_with_syscall(Box::<TestHelperSyscall>::default());
        let devices = vec![dev_null("/dev/null")];

        device.create_devices(tmp_dir.path(), &devices, true)?;
        let mount_args = mounts_made(&device);
        assert_eq!(1, mount_args.len());
        let bind = &mount_args[0];
        assert_eq!(Some(PathBuf::from("/dev/null")), bind.source);
        assert_eq!(tmp_dir.path().join("dev/null"), bind.target);
        assert_eq!(MsFlags::MS_BIND, bind.flags);
        assert!(bind.data.is_none());

        if can_mknod() {
            let tmp_dir = tempfile::tempdir()?;
            device.create_devices(tmp_dir.path(), &devices, false)?;
            assert_dev_null(&tmp_dir.path().join("dev/null"))?;
        }
        Ok(())
    }

    /// An image whose /dev links out of the rootfs (to a host path, or climbing with ..) gets
    /// its device nodes and bind-mount points where the container itself will find them:
    /// inside its rootfs.
    #[test]
    fn test_devices_stay_inside_a_rootfs_whose_dev_links_out() -> Result<()> {
        let tmp_dir = tempfile::tempdir()?;
        let outside = tmp_dir.path().join("outside");
        fs::create_dir(&outside)?;
        // (link, where it leads when resolved inside the rootfs)
        for (dev_link, inside) in [
            (outside.clone(), outside.strip_prefix("/")?.to_owned()),
            (PathBuf::from("../outside"), PathBuf::from("outside")),
        ] {
            for bind in [true, false] {
                if !bind && !can_mknod() {
                    continue;
                }
                let rootfs = tempfile::tempdir_in(tmp_dir.path())?;
                fs::create_dir_all(rootfs.path().join(&inside))?;
                symlink(&dev_link, rootfs.path().join("dev"))?;
                let device = Device::new_with_syscall(Box::<TestHelperSyscall>::default());

                device.create_devices(rootfs.path(), &[dev_null("/dev/null")], bind)?;

                assert_eq!(fs::read_dir(&outside)?.count(), 0, "{dev_link:?}: made outside");
                let inside = rootfs.path().join(&inside).join("null");
                if bind {
                    assert_eq!(mounts_made(&device)[0].target, inside);
                } else {
                    assert_dev_null(&inside)?;
                }
            }
        }
        Ok(())
    }
}
