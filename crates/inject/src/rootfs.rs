//! The one place that touches a container's rootfs from the host.
//!
//! The image controls every name in its rootfs, symlinks included. Every path here is
//! resolved by the kernel with `openat2(RESOLVE_IN_ROOT)` against a handle on the rootfs, so
//! `..` and absolute symlinks stay inside it, and the last component of anything we create is
//! never followed. A planted `/usr/lib/x86_64-linux-gnu -> /host/etc` cannot make us write
//! on the host (the class of CVE-2024-0132).
//!
//! Nothing that is not a regular file is ever opened: a file is first resolved as an `O_PATH`
//! handle, which opens nothing, and only reopened for reading (through `pathrs`, which does it
//! via a private procfs) once `fstat` says it is a regular file. A FIFO planted where we read
//! would hang us, a device node would open a host device.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, readlinkat, renameat, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{fchown, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    // `errno`, not `source`: the message already names it, and a `source` would print twice.
    #[error("cannot open container rootfs {path}: {errno}")]
    Open { path: PathBuf, errno: Errno },
    #[error("cannot {action} {path} inside the container rootfs: {errno}")]
    Op {
        action: &'static str,
        path: PathBuf,
        errno: Errno,
    },
    #[error("{path} is not a plain absolute path")]
    BadPath { path: PathBuf },
    // `reason`, not `source`: pathrs's message is shown once, here.
    #[error("cannot open {path} inside the container rootfs: {reason}")]
    Reopen { path: PathBuf, reason: String },
    #[error("{path} in the container rootfs is {kind}, not a regular file")]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("{path} in the container rootfs is bigger than {limit} bytes ({size} bytes)")]
    TooBig {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error(
        "the image's /dev is a symbolic link (to {target}): GPU devices are only injected into a \
         /dev directory; make /dev a directory in the image"
    )]
    DevIsASymlink { target: String },
}

impl RootfsError {
    /// The rootfs cannot be written from the host at all (a read-only mount, a file system
    /// that refuses root): callers may have a way that needs no write.
    pub fn is_not_writable(&self) -> bool {
        matches!(
            self,
            RootfsError::Op {
                errno: Errno::EROFS | Errno::EACCES | Errno::EPERM,
                ..
            }
        )
    }
}

/// What is at a path, its last component not followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Absent,
    File,
    Directory,
    Symlink,
    /// A FIFO, socket or device node: never opened.
    Special(&'static str),
}

impl FileKind {
    fn of(mode: u32) -> FileKind {
        match SFlag::from_bits_truncate(mode) & SFlag::S_IFMT {
            SFlag::S_IFREG => FileKind::File,
            SFlag::S_IFDIR => FileKind::Directory,
            SFlag::S_IFLNK => FileKind::Symlink,
            other => FileKind::Special(describe(other)),
        }
    }
}

fn describe(kind: SFlag) -> &'static str {
    match kind {
        SFlag::S_IFREG => "a regular file",
        SFlag::S_IFDIR => "a directory",
        SFlag::S_IFLNK => "a symbolic link",
        SFlag::S_IFIFO => "a FIFO",
        SFlag::S_IFSOCK => "a socket",
        SFlag::S_IFCHR => "a character device",
        SFlag::S_IFBLK => "a block device",
        _ => "of an unknown type",
    }
}

/// A regular file of the image, as read: its bytes and what a copy needs to look the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContent {
    pub bytes: Vec<u8>,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// Files bigger than this are not an `ld.so.cache` we want to parse, nor copy aside.
pub const MAX_READ: u64 = 64 << 20;

pub struct Rootfs {
    root: OwnedFd,
}

#[derive(Debug, PartialEq, Eq)]
pub enum LinkOutcome {
    Created,
    /// A symlink of the image's was there and now points where we said.
    Replaced,
    /// The symlink already pointed where we said (a restarted container, a re-used bundle):
    /// rewriting it would cost a journal transaction for nothing.
    AlreadyRight,
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
        .map_err(|errno| RootfsError::Open {
            path: path.to_owned(),
            errno,
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

    /// The image's regular file at `path` (symlinks followed within the rootfs), or `None`
    /// when absent. Anything else there (a FIFO, a device node, a directory) is never opened:
    /// [`RootfsError::NotAFile`]. A file over [`MAX_READ`] is [`RootfsError::TooBig`], never
    /// a truncated copy: whoever saves what it read must be able to put back all of it.
    pub fn read(&self, path: &Path) -> Result<Option<FileContent>, RootfsError> {
        let Some((file, stat)) = self.open_regular(path)? else {
            return Ok(None);
        };
        let too_big = |size: u64| RootfsError::TooBig {
            path: path.to_owned(),
            size,
            limit: MAX_READ,
        };
        if stat.st_size as u64 > MAX_READ {
            return Err(too_big(stat.st_size as u64));
        }
        let mut bytes = Vec::new();
        // One byte more than allowed: a file that grew since the fstat is refused too.
        file.take(MAX_READ + 1)
            .read_to_end(&mut bytes)
            .map_err(|err| {
                self.error(
                    "read",
                    path,
                    Errno::from_raw(err.raw_os_error().unwrap_or(0)),
                )
            })?;
        if bytes.len() as u64 > MAX_READ {
            return Err(too_big(bytes.len() as u64));
        }
        Ok(Some(FileContent {
            bytes,
            mode: stat.st_mode & 0o7777,
            uid: stat.st_uid,
            gid: stat.st_gid,
        }))
    }

    /// The image's regular file at `path` (symlinks followed within the rootfs) opened for
    /// reading, or `None` when absent; anything else there is never opened
    /// ([`RootfsError::NotAFile`]). For reading a part of a big file (a library's ELF header).
    pub fn open_file(&self, path: &Path) -> Result<Option<File>, RootfsError> {
        Ok(self.open_regular(path)?.map(|(file, _)| file))
    }

    /// What [`Self::read`] and [`Self::open_file`] share: an `O_PATH` handle, `fstat`ed, and
    /// reopened for reading only if it is a regular file, with that `stat`.
    fn open_regular(
        &self,
        path: &Path,
    ) -> Result<Option<(File, nix::sys::stat::FileStat)>, RootfsError> {
        let handle = match self.resolve(path, OFlag::O_PATH) {
            Ok(fd) => fd,
            Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(None),
            Err(source) => return Err(self.error("open", path, source)),
        };
        let stat =
            fstat(handle.as_raw_fd()).map_err(|source| self.error("inspect", path, source))?;
        let kind = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
        if kind != SFlag::S_IFREG {
            return Err(RootfsError::NotAFile {
                path: path.to_owned(),
                kind: describe(kind),
            });
        }
        // The handle pins the inode that was checked: the reopen cannot reach another file.
        let file = pathrs::Handle::from_fd(handle)
            .reopen(pathrs::flags::OpenFlags::O_RDONLY)
            .map_err(|err| RootfsError::Reopen {
                path: path.to_owned(),
                reason: err.to_string(),
            })?;
        Ok(Some((file, stat)))
    }

    /// The names in the directory `dir` (resolved inside the rootfs) and what each is, its
    /// last component not followed; empty when `dir` does not exist. Sorted by name.
    pub fn list_dir(&self, dir: &Path) -> Result<Vec<(std::ffi::OsString, FileKind)>, RootfsError> {
        let fd = match self.resolve(dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY) {
            Ok(fd) => fd,
            Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(Vec::new()),
            Err(source) => return Err(self.error("open", dir, source)),
        };
        let raw = fd.as_raw_fd();
        let mut listing = nix::dir::Dir::from_fd(fd.into_raw_fd())
            .map_err(|source| self.error("list", dir, source))?;
        let mut entries = Vec::new();
        for entry in listing.iter() {
            let entry = entry.map_err(|source| self.error("list", dir, source))?;
            let name = entry.file_name();
            if name.to_bytes() == b"." || name.to_bytes() == b".." {
                continue;
            }
            let kind = match fstatat(Some(raw), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(stat) => FileKind::of(stat.st_mode),
                // gone since it was listed
                Err(Errno::ENOENT) => continue,
                Err(source) => {
                    return Err(self.error(
                        "inspect",
                        &dir.join(std::ffi::OsStr::from_bytes(name.to_bytes())),
                        source,
                    ))
                }
            };
            entries.push((
                std::ffi::OsStr::from_bytes(name.to_bytes()).to_owned(),
                kind,
            ));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(entries)
    }

    /// Bind-mounts the host file `source` read-only over `path`, which must be a file of a
    /// procfs mounted in the rootfs (the container's `/proc`, in the container's mount namespace
    /// before `pivot_root`): never over a file of the image's, never where a procfs is not.
    /// `Ok(false)`: there is no such file (no driver in the container's procfs; or not in the
    /// container's mount namespace, where the rootfs's `/proc` is an empty dir).
    pub fn bind_over_proc_file(&self, path: &Path, source: &Path) -> Result<bool, RootfsError> {
        use nix::mount::{mount, MsFlags};
        let target = match self.resolve(path, OFlag::O_PATH | OFlag::O_NOFOLLOW) {
            Ok(fd) => fd,
            Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(false),
            Err(source) => return Err(self.error("open", path, source)),
        };
        let fs = nix::sys::statfs::fstatfs(&target)
            .map_err(|source| self.error("inspect", path, source))?;
        if fs.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC {
            return Ok(false);
        }
        let at = PathBuf::from(format!("/proc/self/fd/{}", target.as_raw_fd()));
        mount(
            Some(source),
            &at,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|errno| self.error("bind-mount over", path, errno))?;
        let flags = MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC;
        // Resolved again: the handle taken before names the file under the new mount.
        let mounted = self
            .resolve(path, OFlag::O_PATH | OFlag::O_NOFOLLOW)
            .map_err(|source| self.error("open", path, source))?;
        let at = PathBuf::from(format!("/proc/self/fd/{}", mounted.as_raw_fd()));
        mount(None::<&str>, &at, None::<&str>, flags, None::<&str>)
            .map_err(|errno| self.error("make read-only", path, errno))?;
        Ok(true)
    }

    /// Whether this process may write `path`: the kernel's write check (`faccessat2(W_OK,
    /// AT_EACCESS)`, Linux >= 5.8; where it is missing or refused, `statvfs`'s read-only flag)
    /// on the file, if there, and on its nearest existing directory, which a write renames
    /// into or makes directories in. False where a write would fail with `EROFS` or `EACCES`
    /// (a read-only mount, a file system that refuses root); anything else (an immutable file:
    /// `EPERM`) is left for the write to find.
    pub fn may_write(&self, path: &Path) -> bool {
        let Ok((mut dir, name)) = split_plain(path) else {
            return true;
        };
        let mut file = Some(name);
        let dir = loop {
            match self.resolve(&dir, OFlag::O_PATH | OFlag::O_DIRECTORY) {
                Ok(fd) => break fd,
                Err(Errno::ENOENT) if dir.pop() => file = None,
                Err(_) => return true,
            }
        };
        let allowed = |name: &Path, flags: nix::libc::c_int| -> bool {
            let Ok(name) = std::ffi::CString::new(name.as_os_str().as_bytes()) else {
                return true;
            };
            // SAFETY: a NUL-terminated name and a descriptor that outlive the call
            let ret = unsafe {
                nix::libc::syscall(
                    nix::libc::SYS_faccessat2,
                    dir.as_raw_fd(),
                    name.as_ptr(),
                    nix::libc::W_OK,
                    nix::libc::AT_EACCESS | flags,
                )
            };
            match Errno::result(ret) {
                Ok(_) | Err(Errno::ENOENT) => true,
                // (EPERM is also what a seccomp profile older than faccessat2 answers, for a
                // runtime run inside a container: only the read-only flag is asked then)
                Err(Errno::ENOSYS | Errno::EPERM) => nix::sys::statvfs::fstatvfs(&dir)
                    .map_or(true, |fs| {
                        !fs.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY)
                    }),
                Err(errno) => !matches!(errno, Errno::EROFS | Errno::EACCES),
            }
        };
        file.is_none_or(|name| allowed(&name, nix::libc::AT_SYMLINK_NOFOLLOW))
            && allowed(Path::new(""), nix::libc::AT_EMPTY_PATH)
    }

    /// What is at `path`, its last component not followed.
    pub fn kind(&self, path: &Path) -> Result<FileKind, RootfsError> {
        let (parent, name) = split_plain(path)?;
        let dir = match self.resolve(&parent, OFlag::O_PATH | OFlag::O_DIRECTORY) {
            Ok(dir) => dir,
            Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(FileKind::Absent),
            Err(source) => return Err(self.error("open", &parent, source)),
        };
        match fstatat(
            Some(dir.as_raw_fd()),
            name.as_path(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(stat) => Ok(FileKind::of(stat.st_mode)),
            Err(Errno::ENOENT) => Ok(FileKind::Absent),
            Err(source) => Err(self.error("inspect", path, source)),
        }
    }

    /// Where the symlink at `path` points (its last component not followed), or `None` when
    /// there is no symlink there.
    pub fn link_target(&self, path: &Path) -> Result<Option<std::ffi::OsString>, RootfsError> {
        if self.kind(path)? != FileKind::Symlink {
            return Ok(None);
        }
        let (parent, name) = split_plain(path)?;
        let dir = self
            .resolve(&parent, OFlag::O_PATH | OFlag::O_DIRECTORY)
            .map_err(|source| self.error("open", &parent, source))?;
        match readlinkat(Some(dir.as_raw_fd()), name.as_path()) {
            Ok(target) => Ok(Some(target)),
            Err(Errno::ENOENT | Errno::EINVAL) => Ok(None),
            Err(source) => Err(self.error("read link", path, source)),
        }
    }

    /// Refuses an image whose `/dev` is a symbolic link. libcontainer makes everything under
    /// `/dev` inside the rootfs, wherever such a link leads there; but the GPU devices, their
    /// device-cgroup rules and the clean-up of a failed create are planned by their `/dev`
    /// paths, so injection does not guess where the image's link puts them.
    pub fn check_dev(&self) -> Result<(), RootfsError> {
        let dev = Path::new("/dev");
        if self.kind(dev)? != FileKind::Symlink {
            return Ok(());
        }
        let root = self
            .resolve(Path::new("/"), OFlag::O_PATH | OFlag::O_DIRECTORY)
            .map_err(|source| self.error("open", dev, source))?;
        let target = readlinkat(Some(root.as_raw_fd()), "dev")
            .map_err(|source| self.error("read link", dev, source))?;
        Err(RootfsError::DevIsASymlink {
            target: target.to_string_lossy().into_owned(),
        })
    }

    /// Writes `path` as a regular file with `bytes`, `mode` and owner (`None`: the owner of
    /// its directory, so that a user-namespaced container owns what it owns elsewhere),
    /// creating missing parent dirs. Only a regular file is ever replaced (atomically: a temp
    /// file renamed over it); anything else there is [`RootfsError::NotAFile`].
    pub fn write_file(
        &self,
        path: &Path,
        bytes: &[u8],
        mode: u32,
        owner: Option<(u32, u32)>,
    ) -> Result<(), RootfsError> {
        let (parent, name) = split_plain(path)?;
        let dir = self.mkdir_all(&parent)?;
        match fstatat(
            Some(dir.as_raw_fd()),
            name.as_path(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(stat) if FileKind::of(stat.st_mode) == FileKind::File => {}
            Ok(stat) => {
                return Err(RootfsError::NotAFile {
                    path: path.to_owned(),
                    kind: describe(SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT),
                })
            }
            Err(Errno::ENOENT) => {}
            Err(source) => return Err(self.error("inspect", path, source)),
        }
        let (uid, gid) = match owner {
            Some(owner) => owner,
            None => {
                let stat: FileStat = fstat(dir.as_raw_fd())
                    .map_err(|source| self.error("inspect", &parent, source))?;
                (stat.st_uid, stat.st_gid)
            }
        };
        let tmp = PathBuf::from(format!(
            ".{}.nvidia-runtime-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        // A temp file of ours left by a killed runtime: only its name is removed, never followed.
        let _ = unlinkat(
            Some(dir.as_raw_fd()),
            tmp.as_path(),
            UnlinkatFlags::NoRemoveDir,
        );
        let fd = openat(
            Some(dir.as_raw_fd()),
            tmp.as_path(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|source| self.error("create", path, source))?;
        // SAFETY: openat returned a fresh descriptor that nothing else owns.
        let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let written = file
            .write_all(bytes)
            .map_err(|err| Errno::from_raw(err.raw_os_error().unwrap_or(0)))
            .and_then(|()| {
                fchown(
                    file.as_raw_fd(),
                    Some(Uid::from_raw(uid)),
                    Some(Gid::from_raw(gid)),
                )
            })
            .and_then(|()| {
                nix::sys::stat::fchmod(file.as_raw_fd(), Mode::from_bits_truncate(mode & 0o7777))
            })
            .and_then(|()| {
                renameat(
                    Some(dir.as_raw_fd()),
                    tmp.as_path(),
                    Some(dir.as_raw_fd()),
                    name.as_path(),
                )
            });
        if let Err(source) = written {
            let _ = unlinkat(
                Some(dir.as_raw_fd()),
                tmp.as_path(),
                UnlinkatFlags::NoRemoveDir,
            );
            return Err(self.error("write", path, source));
        }
        Ok(())
    }

    /// Removes a regular file we wrote (a failed create undoes it); anything else stays.
    pub fn remove_file(&self, path: &Path) {
        self.remove_if(path, |kind, _| {
            (kind == SFlag::S_IFREG).then_some(UnlinkatFlags::NoRemoveDir)
        });
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
        Ok(self.symlinks(&[(link, target)])?.remove(0))
    }

    /// `symlink` for many links; links sharing a parent dir resolve it once.
    pub fn symlinks(&self, links: &[(&Path, &str)]) -> Result<Vec<LinkOutcome>, RootfsError> {
        let mut dirs = ParentDirs::default();
        let mut outcomes = Vec::with_capacity(links.len());
        for &(link, target) in links {
            let (parent, name) = split_plain(link)?;
            let dir = dirs.get(self, parent)?;
            outcomes.push(self.symlink_in(dir, &name, link, target)?);
        }
        Ok(outcomes)
    }

    /// Makes missing mount points for bind mounts, `(path, is_dir)`: an empty regular file
    /// (mode 0644), or a directory (0755) where `is_dir`, and their parent directories, as
    /// runc and libcontainer make them. Whatever already exists at a path is left as it is.
    /// Stops at the first error, which names the path.
    pub fn mount_points(&self, points: &[(&Path, bool)]) -> Result<(), RootfsError> {
        let mut dirs = ParentDirs::default();
        for &(point, is_dir) in points {
            let (parent, name) = split_plain(point)?;
            let dir = dirs.get(self, parent)?.as_raw_fd();
            let made = if is_dir {
                mkdirat(Some(dir), name.as_path(), Mode::from_bits_truncate(0o755))
            } else {
                openat(
                    Some(dir),
                    name.as_path(),
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o644),
                )
                // SAFETY: openat returned a fresh descriptor that nothing else owns.
                .map(|fd| drop(unsafe { OwnedFd::from_raw_fd(fd) }))
            };
            match made {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(source) => return Err(self.error("create mount point", point, source)),
            }
        }
        Ok(())
    }

    fn symlink_in(
        &self,
        dir: &OwnedFd,
        name: &Path,
        link: &Path,
        target: &str,
    ) -> Result<LinkOutcome, RootfsError> {
        match fstatat(
            Some(dir.as_raw_fd()),
            name,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(stat) => {
                if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFLNK {
                    return Ok(LinkOutcome::KeptImageFile);
                }
                if readlinkat(Some(dir.as_raw_fd()), name).is_ok_and(|t| t == *target) {
                    return Ok(LinkOutcome::AlreadyRight);
                }
                unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir)
                    .map_err(|source| self.error("replace", link, source))?;
                symlinkat(target, Some(dir.as_raw_fd()), name)
                    .map_err(|source| self.error("create symlink", link, source))?;
                Ok(LinkOutcome::Replaced)
            }
            Err(Errno::ENOENT) => {
                symlinkat(target, Some(dir.as_raw_fd()), name)
                    .map_err(|source| self.error("create symlink", link, source))?;
                Ok(LinkOutcome::Created)
            }
            Err(source) => Err(self.error("inspect", link, source)),
        }
    }

    /// The components of `path` that do not exist yet, shallowest first (`/a/b/c` where only
    /// `/a` exists: `/a/b`, `/a/b/c`): what a create may add there, and a failed one must take
    /// away again (see [`Rootfs::remove_if_empty`]). Each path's last component is not
    /// followed: a dangling symlink is the image's, not missing.
    pub fn missing(&self, path: &Path) -> Vec<PathBuf> {
        let mut missing = Vec::new();
        let mut current = path.to_path_buf();
        while current != Path::new("/") && matches!(self.kind(&current), Ok(FileKind::Absent)) {
            missing.push(current.clone());
            if !current.pop() {
                break;
            }
        }
        missing.reverse();
        missing
    }

    /// Removes a symlink we created (a failed create undoes its links); anything that is not a
    /// symlink, or a path that no longer resolves, is left alone.
    pub fn remove_symlink(&self, link: &Path) {
        self.remove_if(link, |kind, _| {
            (kind == SFlag::S_IFLNK).then_some(UnlinkatFlags::NoRemoveDir)
        });
    }

    /// Removes what a failed create left at `path`: an empty regular file (a mount point made
    /// for a file) or an empty directory. Anything else, or anything with content, stays.
    pub fn remove_if_empty(&self, path: &Path) {
        self.remove_if(path, |kind, size| {
            if kind == SFlag::S_IFREG && size == 0 {
                Some(UnlinkatFlags::NoRemoveDir)
            } else {
                // fails on a directory that is not empty, which is what we want
                (kind == SFlag::S_IFDIR).then_some(UnlinkatFlags::RemoveDir)
            }
        });
    }

    /// The links we made, then what did not exist before (deepest first, see
    /// [`Rootfs::missing`]): what a failed create takes away.
    pub fn take_away(&self, created_links: &[PathBuf], new_paths: &[PathBuf]) {
        for link in created_links {
            self.remove_symlink(link);
        }
        for path in new_paths.iter().rev() {
            self.remove_if_empty(path);
        }
    }

    /// Unlinks `path` (not following it) when `how` says so for its kind and size; a path that
    /// does not resolve inside the rootfs is left alone.
    fn remove_if(&self, path: &Path, how: impl FnOnce(SFlag, i64) -> Option<UnlinkatFlags>) {
        let Ok((parent, name)) = split_plain(path) else {
            return;
        };
        let Ok(dir) = self.resolve(&parent, OFlag::O_PATH | OFlag::O_DIRECTORY) else {
            return;
        };
        let Ok(stat) = fstatat(
            Some(dir.as_raw_fd()),
            name.as_path(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        ) else {
            return;
        };
        let kind = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
        if let Some(flags) = how(kind, stat.st_size) {
            let _ = unlinkat(Some(dir.as_raw_fd()), name.as_path(), flags);
        }
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
            errno: source,
        }
    }
}

/// Handles on the directories that paths made one after another go in, each made (as
/// `mkdir -p`) and resolved once.
#[derive(Default)]
struct ParentDirs(Vec<(PathBuf, OwnedFd)>);

impl ParentDirs {
    fn get(&mut self, rootfs: &Rootfs, parent: PathBuf) -> Result<&OwnedFd, RootfsError> {
        let i = match self.0.iter().position(|(p, _)| *p == parent) {
            Some(i) => i,
            None => {
                let fd = rootfs.mkdir_all(&parent)?;
                self.0.push((parent, fd));
                self.0.len() - 1
            }
        };
        Ok(&self.0[i].1)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_in_the_image_never_lead_outside_it() {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        let outside = dir.path().join("host");
        std::fs::create_dir_all(rootfs.join("usr/lib")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret"), "host").unwrap();
        // An absolute symlink and a `..` escape, both planted by the image.
        symlink(&outside, rootfs.join("usr/lib/x86_64-linux-gnu")).unwrap();
        symlink("../../../../host/secret", rootfs.join("usr/lib/escape")).unwrap();

        let root = Rootfs::open(&rootfs).unwrap();
        // Resolved inside the rootfs, the absolute target does not exist: a clear error,
        // and nothing written on the host.
        let err = root
            .symlink(
                Path::new("/usr/lib/x86_64-linux-gnu/libcuda.so.1"),
                "libcuda.so.580",
            )
            .unwrap_err();
        assert!(
            err.to_string().contains("/usr/lib/x86_64-linux-gnu"),
            "{err}"
        );
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            1,
            "nothing written outside"
        );
        assert_eq!(root.read(Path::new("/usr/lib/escape")).unwrap(), None);
        assert_eq!(
            std::fs::read_to_string(outside.join("secret")).unwrap(),
            "host"
        );

        // The same absolute target made to exist inside the rootfs: the link goes there.
        let inside = rootfs.join(outside.strip_prefix("/").unwrap());
        std::fs::create_dir_all(&inside).unwrap();
        root.symlink(
            Path::new("/usr/lib/x86_64-linux-gnu/libcuda.so.1"),
            "libcuda.so.580",
        )
        .unwrap();
        assert_eq!(
            std::fs::read_link(inside.join("libcuda.so.1")).unwrap(),
            PathBuf::from("libcuda.so.580")
        );
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            1,
            "nothing written outside"
        );
    }

    #[test]
    fn mount_points_are_made_inside_and_never_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        let outside = dir.path().join("host");
        std::fs::create_dir_all(rootfs.join("usr/bin")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        // planted by the image: a parent that leads out, a last component that does, and a
        // file of its own where a mount point goes
        symlink(&outside, rootfs.join("usr/lib64")).unwrap();
        symlink(outside.join("smi"), rootfs.join("usr/bin/nvidia-smi")).unwrap();
        std::fs::write(rootfs.join("usr/bin/nvidia-debugdump"), "image").unwrap();

        let root = Rootfs::open(&rootfs).unwrap();
        root.mount_points(&[
            (Path::new("/usr/bin/nvidia-smi"), false),
            (Path::new("/usr/bin/nvidia-debugdump"), false),
            (Path::new("/lib/firmware/nvidia/580/gsp.bin"), false),
            (Path::new("/tmp/nvidia-mps"), true),
        ])
        .unwrap();
        let meta = |p: &str| rootfs.join(p).symlink_metadata().unwrap();
        assert!(
            meta("usr/bin/nvidia-smi").is_symlink(),
            "the image's link is left"
        );
        assert_eq!(
            std::fs::read_to_string(rootfs.join("usr/bin/nvidia-debugdump")).unwrap(),
            "image"
        );
        assert!(meta("lib/firmware/nvidia/580/gsp.bin").is_file());
        assert_eq!(meta("lib/firmware/nvidia/580/gsp.bin").len(), 0);
        assert!(meta("tmp/nvidia-mps").is_dir());

        // Through the planted parent: resolved inside the rootfs, where it does not exist.
        let err = root
            .mount_points(&[(Path::new("/usr/lib64/libcuda.so.580"), false)])
            .unwrap_err();
        assert!(err.to_string().contains("/usr/lib64"), "{err}");
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            0,
            "nothing made outside"
        );
    }

    #[test]
    fn merged_usr_links_are_followed_inside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("usr/lib")).unwrap();
        symlink("usr/lib", dir.path().join("lib")).unwrap();
        let root = Rootfs::open(dir.path()).unwrap();
        root.symlink(
            Path::new("/lib/x86_64-linux-gnu/libfoo.so.1"),
            "libfoo.so.1.0",
        )
        .unwrap();
        assert!(dir
            .path()
            .join("usr/lib/x86_64-linux-gnu/libfoo.so.1")
            .symlink_metadata()
            .is_ok());
    }

    #[test]
    fn a_link_that_is_already_right_is_not_rewritten() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("lib")).unwrap();
        let root = Rootfs::open(dir.path()).unwrap();
        let link = Path::new("/lib/libfoo.so.1");
        assert_eq!(
            root.symlink(link, "libfoo.so.1.0").unwrap(),
            LinkOutcome::Created
        );
        let first = dir
            .path()
            .join("lib/libfoo.so.1")
            .symlink_metadata()
            .unwrap();
        assert_eq!(
            root.symlink(link, "libfoo.so.1.0").unwrap(),
            LinkOutcome::AlreadyRight
        );
        let second = dir
            .path()
            .join("lib/libfoo.so.1")
            .symlink_metadata()
            .unwrap();
        assert_eq!(
            (first.ino(), first.ctime_nsec()),
            (second.ino(), second.ctime_nsec())
        );
        // a different target is still rewritten
        assert_eq!(
            root.symlink(link, "libfoo.so.2.0").unwrap(),
            LinkOutcome::Replaced
        );
        assert_eq!(
            std::fs::read_link(dir.path().join("lib/libfoo.so.1")).unwrap(),
            Path::new("libfoo.so.2.0")
        );
    }

    #[test]
    fn what_a_failed_create_added_can_be_taken_away() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        std::fs::create_dir_all(r.join("usr/lib")).unwrap();
        std::fs::write(r.join("usr/lib/image.so"), "image's own").unwrap();
        symlink("usr/lib", r.join("lib")).unwrap();
        let root = Rootfs::open(r).unwrap();
        assert_eq!(
            root.missing(Path::new("/usr/lib64/nvidia/libcuda.so.1")),
            vec![
                PathBuf::from("/usr/lib64"),
                PathBuf::from("/usr/lib64/nvidia"),
                PathBuf::from("/usr/lib64/nvidia/libcuda.so.1")
            ]
        );
        assert_eq!(
            root.missing(Path::new("/lib/image.so")),
            Vec::<PathBuf>::new()
        );
        // what libcontainer would have made: the dirs and an empty mount point
        std::fs::create_dir_all(r.join("usr/lib64/nvidia")).unwrap();
        std::fs::write(r.join("usr/lib64/nvidia/libcuda.so.1"), "").unwrap();
        for p in [
            "/usr/lib64/nvidia/libcuda.so.1",
            "/usr/lib64/nvidia",
            "/usr/lib64",
        ] {
            root.remove_if_empty(Path::new(p));
        }
        assert!(!r.join("usr/lib64").exists());
        // a file with content, a directory with content, a symlink: left alone
        root.remove_if_empty(Path::new("/usr/lib/image.so"));
        root.remove_if_empty(Path::new("/usr/lib"));
        root.remove_if_empty(Path::new("/lib"));
        assert!(r.join("usr/lib/image.so").exists() && r.join("lib").symlink_metadata().is_ok());
    }

    #[test]
    fn image_files_are_kept_and_fifos_do_not_hang() {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path();
        std::fs::create_dir_all(rootfs.join("lib")).unwrap();
        std::fs::create_dir_all(rootfs.join("etc")).unwrap();
        std::fs::write(rootfs.join("lib/libcuda.so.1"), "image's own").unwrap();
        nix::unistd::mkfifo(
            &rootfs.join("etc/ld.so.cache"),
            Mode::from_bits_truncate(0o644),
        )
        .unwrap();

        let root = Rootfs::open(rootfs).unwrap();
        let outcome = root.symlink(Path::new("/lib/libcuda.so.1"), "x").unwrap();
        assert_eq!(outcome, LinkOutcome::KeptImageFile);
        assert_eq!(
            std::fs::read_to_string(rootfs.join("lib/libcuda.so.1")).unwrap(),
            "image's own"
        );
        let err = root.read(Path::new("/etc/ld.so.cache")).unwrap_err();
        assert!(
            matches!(err, RootfsError::NotAFile { kind: "a FIFO", .. }),
            "{err}"
        );
        // an existing symlink is replaced, and missing parents are created inside the root
        root.symlink(Path::new("/new/dir/libx.so.1"), "libx.so.1.0")
            .unwrap();
        root.symlink(Path::new("/new/dir/libx.so.1"), "libx.so.1.1")
            .unwrap();
        assert_eq!(
            std::fs::read_link(rootfs.join("new/dir/libx.so.1")).unwrap(),
            PathBuf::from("libx.so.1.1")
        );
    }

    #[test]
    fn dangling_links_are_the_images_not_missing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("lib")).unwrap();
        symlink("/gone/libcuda.so.1", dir.path().join("lib/libcuda.so.1")).unwrap();
        symlink("/gone", dir.path().join("opt")).unwrap();
        let root = Rootfs::open(dir.path()).unwrap();
        assert_eq!(
            root.missing(Path::new("/lib/libcuda.so.1")),
            Vec::<PathBuf>::new()
        );
        assert_eq!(
            root.link_target(Path::new("/lib/libcuda.so.1")).unwrap(),
            Some("/gone/libcuda.so.1".into())
        );
        assert_eq!(root.link_target(Path::new("/lib")).unwrap(), None);
        assert_eq!(root.link_target(Path::new("/lib/absent")).unwrap(), None);
        // below a dangling link: missing up to it, not the link itself
        assert_eq!(
            root.missing(Path::new("/opt/x/y")),
            vec![PathBuf::from("/opt/x"), PathBuf::from("/opt/x/y")]
        );
    }

    #[test]
    fn a_file_too_big_is_refused_whole() {
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::File::create(dir.path().join("big")).unwrap();
        file.set_len(MAX_READ + 1).unwrap();
        std::fs::write(dir.path().join("limit"), vec![1u8; MAX_READ as usize]).unwrap();
        let root = Rootfs::open(dir.path()).unwrap();
        let err = root.read(Path::new("/big")).unwrap_err();
        assert!(matches!(err, RootfsError::TooBig { .. }), "{err}");
        assert_eq!(
            root.read(Path::new("/limit")).unwrap().unwrap().bytes.len() as u64,
            MAX_READ
        );
    }

    #[test]
    fn library_dir_follows_the_image() {
        let dir = tempfile::tempdir().unwrap();
        let root = Rootfs::open(dir.path()).unwrap();
        assert_eq!(root.library_dir(), PathBuf::from("/usr/lib64"));
        std::fs::create_dir_all(dir.path().join("lib")).unwrap();
        std::fs::write(dir.path().join("lib/ld-musl-x86_64.so.1"), "").unwrap();
        assert_eq!(root.library_dir(), PathBuf::from("/usr/lib"));
        std::fs::create_dir_all(dir.path().join("usr/lib/x86_64-linux-gnu")).unwrap();
        assert_eq!(
            root.library_dir(),
            PathBuf::from("/usr/lib/x86_64-linux-gnu")
        );
    }
}
