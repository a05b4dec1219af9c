//! The one place that touches a container's rootfs from the host.
//!
//! The image controls every name in its rootfs, symlinks included. Every path here is
//! resolved by the kernel with `openat2(RESOLVE_IN_ROOT)` against a handle on the rootfs, so
//! `..` and absolute symlinks stay inside it, and the last component of anything we create is
//! never followed. A planted `/usr/lib/x86_64-linux-gnu -> /host/etc` cannot make us write
//! on the host (the class of CVE-2024-0132).

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstatat, mkdirat, Mode, SFlag};
use nix::unistd::{symlinkat, unlinkat, UnlinkatFlags};

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("cannot open container rootfs {path}: {source}")]
    Open { path: PathBuf, source: Errno },
    #[error("cannot {action} {path} inside the container rootfs: {source}")]
    Op {
        action: &'static str,
        path: PathBuf,
        source: Errno,
    },
    #[error("{path} is not a plain absolute path")]
    BadPath { path: PathBuf },
}

/// Files bigger than this are not an `ld.so.cache` we want to parse.
const MAX_READ: u64 = 64 << 20;

pub struct Rootfs {
    root: OwnedFd,
}

#[derive(Debug, PartialEq, Eq)]
pub enum LinkOutcome {
    Created,
    /// Something that is not a symlink is there already (the image's own file): left alone.
    KeptImageFile,
}

impl Rootfs {
    pub fn open(path: &Path) -> Result<Self, RootfsError> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|source| RootfsError::Open {
            path: path.to_owned(),
            source,
        })?;
        // SAFETY: open returned a fresh descriptor that nothing else owns.
        let root = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self { root })
    }

    fn resolve(&self, path: &Path, flags: OFlag) -> Result<OwnedFd, Errno> {
        let relative = path.strip_prefix("/").unwrap_or(path);
        let relative = if relative.as_os_str().is_empty() {
            Path::new(".")
        } else {
            relative
        };
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let fd = openat2(self.root.as_raw_fd(), relative, how)?;
        // SAFETY: openat2 returned a fresh descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    pub fn exists(&self, path: &Path) -> bool {
        self.resolve(path, OFlag::O_PATH).is_ok()
    }

    /// The image's file at `path` (followed within the rootfs), or `None` when absent.
    pub fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, RootfsError> {
        let fd = match self.resolve(path, OFlag::O_RDONLY) {
            Ok(fd) => fd,
            Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(None),
            Err(source) => return Err(self.error("open", path, source)),
        };
        let mut file = File::from(fd);
        let mut bytes = Vec::new();
        file.by_ref()
            .take(MAX_READ)
            .read_to_end(&mut bytes)
            .map_err(|err| {
                self.error(
                    "read",
                    path,
                    Errno::from_raw(err.raw_os_error().unwrap_or(0)),
                )
            })?;
        Ok(Some(bytes))
    }

    /// Where the image's loader looks for libraries: the multiarch dir on Debian-like
    /// images, `/usr/lib` on musl (its default path), else `/usr/lib64`.
    pub fn library_dir(&self) -> PathBuf {
        for dir in ["/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu"] {
            if self.exists(Path::new(dir)) {
                return PathBuf::from("/usr/lib/x86_64-linux-gnu");
            }
        }
        if self.exists(Path::new("/lib/ld-musl-x86_64.so.1")) {
            return PathBuf::from("/usr/lib");
        }
        PathBuf::from("/usr/lib64")
    }

    /// Makes `link -> target` (target relative, like the driver's own links), creating the
    /// parent dirs. An existing symlink is replaced; any other file is the image's and stays.
    pub fn symlink(&self, link: &Path, target: &str) -> Result<LinkOutcome, RootfsError> {
        let (parent, name) = split_plain(link)?;
        let dir = self.mkdir_all(&parent)?;
        match fstatat(
            Some(dir.as_raw_fd()),
            name.as_path(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(stat) => {
                if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFLNK {
                    return Ok(LinkOutcome::KeptImageFile);
                }
                unlinkat(
                    Some(dir.as_raw_fd()),
                    name.as_path(),
                    UnlinkatFlags::NoRemoveDir,
                )
                .map_err(|source| self.error("replace", link, source))?;
            }
            Err(Errno::ENOENT) => {}
            Err(source) => return Err(self.error("inspect", link, source)),
        }
        symlinkat(target, Some(dir.as_raw_fd()), name.as_path())
            .map_err(|source| self.error("create symlink", link, source))?;
        Ok(LinkOutcome::Created)
    }

    /// `mkdir -p` where each step is resolved from the rootfs handle, so a symlink met on the
    /// way (`lib -> usr/lib`, or a hostile `-> /etc`) is followed inside the rootfs only.
    fn mkdir_all(&self, dir: &Path) -> Result<OwnedFd, RootfsError> {
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
        if let Ok(fd) = self.resolve(dir, flags) {
            return Ok(fd);
        }
        let mut prefix = PathBuf::from("/");
        let mut current = self
            .resolve(&prefix, flags)
            .map_err(|source| self.error("open", dir, source))?;
        for component in dir.components() {
            let Component::Normal(name) = component else {
                continue;
            };
            prefix.push(name);
            current = match self.resolve(&prefix, flags) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => {
                    match mkdirat(
                        Some(current.as_raw_fd()),
                        name,
                        Mode::from_bits_truncate(0o755),
                    ) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(source) => return Err(self.error("create directory", &prefix, source)),
                    }
                    self.resolve(&prefix, flags)
                        .map_err(|source| self.error("open", &prefix, source))?
                }
                Err(source) => return Err(self.error("open", &prefix, source)),
            };
        }
        Ok(current)
    }

    fn error(&self, action: &'static str, path: &Path, source: Errno) -> RootfsError {
        RootfsError::Op {
            action,
            path: path.to_owned(),
            source,
        }
    }
}

/// Splits an absolute container path into (parent, file name), refusing `..` and the like.
fn split_plain(path: &Path) -> Result<(PathBuf, PathBuf), RootfsError> {
    let plain = path.is_absolute()
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    match (plain, path.parent(), path.file_name()) {
        (true, Some(parent), Some(name)) => Ok((parent.to_owned(), PathBuf::from(name))),
        _ => Err(RootfsError::BadPath {
            path: path.to_owned(),
        }),
    }
}
