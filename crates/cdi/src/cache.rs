//! Parsed spec files kept between runtime processes, so that a container naming CDI devices
//! does not parse (YAML, typically) every spec file of the spec dirs on every create.
//!
//! An entry is the spec as read from one file, valid by every rule, stored with the file's
//! path and its fingerprint (device, inode, mode, size, mtime, ctime, of the file a symlink
//! leads to). It is used only while `stat` of the path still gives that fingerprint: rewriting
//! the file changes its mtime and ctime (the kernel sets ctime on every change and it cannot be
//! set back from user space), replacing it changes the inode. Two rules keep that exact, as
//! for the inventory cache:
//! - the fingerprint is taken (`fstat` of the opened file) before the read it vouches for, so a
//!   change racing with the read is a mismatch later, never a stale match;
//! - timestamps are only as fine as the kernel's clock tick, so two changes within one tick can
//!   share an mtime: a spec file changed less than [`SETTLE`] ago is not stored (the "racily
//!   clean" rule of git's index).
//!
//! Files that are refused are never stored: their errors come from parsing them each time.
//!
//! The entries decide what gets mounted into containers, so they are trusted only in a
//! directory and files that belong to the caller and that nobody else can write: the cache dir
//! and its [`SUBDIR`] are opened without following symlinks, checked with `fstat`, and entries
//! are opened relative to that handle, again without following symlinks.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::fcntl::{openat, renameat, OFlag};
use nix::sys::stat::{fstat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};
use serde::{Deserialize, Serialize};

use crate::spec::Spec;

/// How old the last change of a spec file must be before its parsed spec is stored.
pub const SETTLE: Duration = Duration::from_secs(2);

/// The directory, inside the cache dir given, that holds the entries.
pub const SUBDIR: &str = "cdi-specs";

/// Entries kept; beyond this the least recently written go (one entry per spec path, so only
/// test suites with many temporary spec dirs get there).
const MAX_ENTRIES: usize = 256;

/// Bumped whenever what is stored changes meaning.
const FORMAT: u32 = 1;

/// What identifies one version of a file's content (see the module's docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Fingerprint {
    dev: u64,
    ino: u64,
    mode: u32,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Fingerprint {
    pub(crate) fn of(md: &std::fs::Metadata) -> Self {
        Self {
            dev: md.dev(),
            ino: md.ino(),
            mode: md.mode(),
            size: md.size(),
            mtime: (md.mtime(), md.mtime_nsec()),
            ctime: (md.ctime(), md.ctime_nsec()),
        }
    }

    /// Whether the file changed less than `settle` before now.
    fn recent(&self, settle: Duration) -> bool {
        let horizon = SystemTime::now()
            .checked_sub(settle)
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or((0, 0), |d| {
                (d.as_secs() as i64, i64::from(d.subsec_nanos()))
            });
        self.mtime >= horizon || self.ctime >= horizon
    }
}

#[derive(Serialize)]
struct EntryOut<'a> {
    format: u32,
    build: &'a str,
    path: &'a Path,
    fingerprint: Fingerprint,
    spec: &'a Spec,
}

#[derive(Deserialize)]
struct EntryIn {
    format: u32,
    build: String,
    path: PathBuf,
    fingerprint: Fingerprint,
    spec: Spec,
}

/// The runtime build that parsed and validated the spec: another build may judge it
/// differently, so it never takes an entry this one stored.
fn runtime_build() -> String {
    format!(
        "{}+{}",
        env!("CARGO_PKG_VERSION"),
        option_env!("NVIDIA_RUNTIME_COMMIT").unwrap_or("unknown")
    )
}

/// The entries of one [`crate::Registry`] load.
#[derive(Debug)]
pub(crate) struct SpecCache {
    root: PathBuf,
    settle: Duration,
    build: String,
    /// [`SUBDIR`], opened on first use; `Some(None)`: missing or not safe to use.
    dir: Option<Option<OwnedFd>>,
    /// Whether making the dirs was tried already (once per load is enough).
    create_tried: bool,
    /// Specs served from the cache, and stored into it, during this load.
    pub(crate) hits: usize,
    pub(crate) stored: usize,
}

impl SpecCache {
    /// The cache in `root/`[`SUBDIR`]; `root` is made (0700) when something is first stored.
    pub(crate) fn new(root: &Path, settle: Duration) -> Self {
        Self {
            root: root.to_owned(),
            settle,
            build: runtime_build(),
            dir: None,
            create_tried: false,
            hits: 0,
            stored: 0,
        }
    }

    fn dir(&mut self, create: bool) -> Option<RawFd> {
        let retry = create && !self.create_tried && matches!(self.dir, Some(None));
        if self.dir.is_none() || retry {
            self.create_tried |= create;
            let opened = open_dirs(&self.root, create);
            if let Err(err) = &opened {
                if create || err.kind() != io::ErrorKind::NotFound {
                    tracing::debug!(dir = %self.root.display(), error = %err, "CDI spec cache not used");
                }
            }
            self.dir = Some(opened.ok());
        }
        self.dir.as_ref()?.as_ref().map(AsRawFd::as_raw_fd)
    }

    /// The spec stored for `path` when the file still has `now`, its fingerprint.
    pub(crate) fn get(&mut self, path: &Path, now: &Fingerprint) -> Option<Spec> {
        let dir = self.dir(false)?;
        let name = entry_name(path);
        let entry = match read_entry(dir, &name) {
            Ok(Some(entry)) => entry,
            Ok(None) => return None,
            Err(err) => {
                tracing::debug!(spec = %path.display(), error = %err, "CDI spec cache entry not used");
                return None;
            }
        };
        if entry.format != FORMAT
            || entry.build != self.build
            || entry.path != path
            || entry.fingerprint != *now
        {
            return None;
        }
        self.hits += 1;
        Some(entry.spec)
    }

    /// Stores `spec`, read from `path` whose fingerprint before the read was `seen`, unless the
    /// file changed too recently to tell a later change from this version.
    pub(crate) fn put(&mut self, path: &Path, seen: &Fingerprint, spec: &Spec) {
        if seen.recent(self.settle) {
            tracing::debug!(spec = %path.display(), "changed moments ago; not cached yet");
            return;
        }
        let Some(dir) = self.dir(true) else {
            return;
        };
        let entry = EntryOut {
            format: FORMAT,
            build: &self.build,
            path,
            fingerprint: *seen,
            spec,
        };
        match write_entry(dir, &entry_name(path), &entry) {
            Ok(()) => self.stored += 1,
            Err(err) => {
                tracing::debug!(spec = %path.display(), error = %err, "CDI spec cache entry not written")
            }
        }
    }
}

/// A stable file name for a spec path (FNV-1a; the path itself is checked inside the entry).
fn entry_name(path: &Path) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in path.as_os_str().as_encoded_bytes() {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("spec-{hash:016x}.json")
}

fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful open and is owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Opens `root` and its [`SUBDIR`] without following a symlink at either, making both (0700)
/// when `create`, and checks both are private directories of ours.
fn open_dirs(root: &Path, create: bool) -> io::Result<OwnedFd> {
    let root = open_private_dir(None, root, create)?;
    open_private_dir(Some(root.as_raw_fd()), Path::new(SUBDIR), create)
}

fn open_private_dir(at: Option<RawFd>, path: &Path, create: bool) -> io::Result<OwnedFd> {
    if create {
        match mkdirat(at, path, Mode::S_IRWXU) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // O_NONBLOCK: whatever is there is never waited on (a FIFO fails O_DIRECTORY anyway).
    let flags = OFlag::O_RDONLY
        | OFlag::O_DIRECTORY
        | OFlag::O_NOFOLLOW
        | OFlag::O_CLOEXEC
        | OFlag::O_NONBLOCK;
    let fd = owned(openat(at, path, flags, Mode::empty()).map_err(|e| {
        if e == nix::errno::Errno::ELOOP || e == nix::errno::Errno::ENOTDIR {
            io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} is not a directory (a symlink is not followed)",
                    path.display()
                ),
            )
        } else {
            e.into()
        }
    })?);
    check_private(&fstat(fd.as_raw_fd())?, SFlag::S_IFDIR)?;
    Ok(fd)
}

/// Ours alone: owned by our effective uid, writable by nobody else, and of the kind expected.
fn check_private(st: &FileStat, kind: SFlag) -> io::Result<()> {
    let euid = nix::unistd::geteuid().as_raw();
    let is_kind = st.st_mode & SFlag::S_IFMT.bits() == kind.bits();
    if !is_kind || st.st_uid != euid || st.st_mode & 0o022 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "not a private {} (mode {:o}, uid {}; want uid {euid}, not writable by group or others)",
                if kind == SFlag::S_IFDIR { "directory" } else { "file" },
                st.st_mode,
                st.st_uid,
            ),
        ));
    }
    Ok(())
}

/// `Ok(None)`: no entry, or one that does not parse (an older format, a torn write).
fn read_entry(dir: RawFd, name: &str) -> io::Result<Option<EntryIn>> {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
    let fd = match openat(Some(dir), name, flags, Mode::empty()) {
        Ok(fd) => owned(fd),
        Err(nix::errno::Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let st = fstat(fd.as_raw_fd())?;
    check_private(&st, SFlag::S_IFREG)?;
    let mut bytes = Vec::with_capacity(st.st_size as usize);
    File::from(fd)
        .take(2 * crate::spec::MAX_SPEC_BYTES as u64)
        .read_to_end(&mut bytes)?;
    Ok(serde_json::from_slice(&bytes).ok())
}

/// Writes the entry beside its place and renames it there: a reader sees the old entry or the
/// new one, never half of one.
fn write_entry(dir: RawFd, name: &str, entry: &EntryOut<'_>) -> io::Result<()> {
    let bytes = serde_json::to_vec(entry).map_err(io::Error::other)?;
    let tmp = format!(".{name}.{}", std::process::id());
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let written = (|| -> io::Result<()> {
        let fd = owned(openat(
            Some(dir),
            tmp.as_str(),
            flags,
            Mode::S_IRUSR | Mode::S_IWUSR,
        )?);
        let mut file = File::from(fd);
        file.write_all(&bytes)?;
        renameat(Some(dir), tmp.as_str(), Some(dir), name)?;
        Ok(())
    })();
    if written.is_err() {
        let _ = unlinkat(Some(dir), tmp.as_str(), UnlinkatFlags::NoRemoveDir);
    }
    written?;
    prune(dir);
    Ok(())
}

/// Keeps the directory from growing without bound (a test suite makes spec dirs per run).
fn prune(dir: RawFd) {
    let Ok(mut listing) = nix::dir::Dir::openat(
        Some(dir),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) else {
        return;
    };
    let names: Vec<std::ffi::CString> = listing
        .iter()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_owned())
        .filter(|n| n.to_bytes().starts_with(b"spec-"))
        .collect();
    if names.len() <= MAX_ENTRIES {
        return;
    }
    let mut aged: Vec<((i64, i64), std::ffi::CString)> = names
        .into_iter()
        .filter_map(|n| {
            let st = nix::sys::stat::fstatat(
                Some(dir),
                n.as_c_str(),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .ok()?;
            Some(((st.st_mtime, st.st_mtime_nsec), n))
        })
        .collect();
    aged.sort();
    let drop = aged.len() - MAX_ENTRIES / 2;
    for (_, name) in &aged[..drop] {
        let _ = unlinkat(Some(dir), name.as_c_str(), UnlinkatFlags::NoRemoveDir);
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{symlink, PermissionsExt};

    use super::*;
    use crate::Registry;

    const YAML: &str = "cdiVersion: 0.6.0\nkind: nvidia.com/gpu\ndevices:\n- name: \"0\"\n  containerEdits: {env: [DEV=a]}\ncontainerEdits: {env: [G=a]}\n";

    /// Loads `dir` through the cache at `root`, settled after `settle`.
    fn load(dir: &Path, root: &Path, settle: Duration) -> Registry {
        Registry::load_inner(&[dir.to_owned()], Some(SpecCache::new(root, settle)))
    }

    fn env_of(reg: &Registry) -> Vec<String> {
        let names = [crate::QualifiedName::parse("nvidia.com/gpu=0").unwrap()];
        reg.edits_for(&names).unwrap().0.env
    }

    /// Sets the file's mtime back to `to`, as a tool copying timestamps would.
    fn set_mtime(path: &Path, to: SystemTime) {
        fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(to)
            .unwrap();
    }

    #[test]
    fn an_unchanged_file_comes_from_the_cache_a_changed_one_never() {
        let t = tempfile::tempdir().unwrap();
        let (dir, root) = (t.path().join("specs"), t.path().join("cache"));
        fs::create_dir(&dir).unwrap();
        let file = dir.join("nvidia.yaml");
        fs::write(&file, YAML).unwrap();
        let z = Duration::ZERO;

        let first = load(&dir, &root, z);
        assert_eq!(first.cache_use(), (0, 1));
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&root), mode(&root.join(SUBDIR))), (0o700, 0o700));
        let second = load(&dir, &root, z);
        assert_eq!(second.cache_use(), (1, 0));
        let plain = Registry::load(std::slice::from_ref(&dir));
        let specs = |r: &Registry| {
            r.specs()
                .map(|(p, s)| (p.to_owned(), s.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(specs(&second), specs(&plain));
        assert_eq!(env_of(&second), ["G=a", "DEV=a"]);

        // Rewritten in place, same size, mtime set back: the ctime still tells.
        let mtime = fs::metadata(&file).unwrap().modified().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        fs::write(&file, YAML.replace("=a", "=b")).unwrap();
        set_mtime(&file, mtime);
        let third = load(&dir, &root, z);
        assert_eq!(env_of(&third), ["G=b", "DEV=b"]);
        assert_eq!(third.cache_use(), (0, 1));
        assert_eq!(load(&dir, &root, z).cache_use(), (1, 0));

        // Replaced by another file (a new inode), same size and mtime.
        let new = dir.join("new.tmp");
        fs::write(&new, YAML.replace("=a", "=c")).unwrap();
        set_mtime(&new, mtime);
        fs::rename(&new, &file).unwrap();
        let fourth = load(&dir, &root, z);
        assert_eq!(env_of(&fourth), ["G=c", "DEV=c"]);
        assert_eq!(fourth.cache_use(), (0, 1));

        // Another path to the same file: its own entry (the format comes from the name).
        let other = t.path().join("other");
        fs::create_dir(&other).unwrap();
        symlink(&file, other.join("nvidia.yaml")).unwrap();
        assert_eq!(load(&other, &root, z).cache_use(), (0, 1));
        assert_eq!(load(&dir, &root, z).cache_use(), (1, 0));
    }

    #[test]
    fn a_fresh_change_is_not_stored() {
        let t = tempfile::tempdir().unwrap();
        let (dir, root) = (t.path().join("specs"), t.path().join("cache"));
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("nvidia.yaml"), YAML).unwrap();
        let hour = Duration::from_secs(3600);
        assert_eq!(load(&dir, &root, hour).cache_use(), (0, 0));
        assert_eq!(load(&dir, &root, hour).cache_use(), (0, 0));
        assert!(!root.exists(), "nothing was stored, nothing made");
    }

    #[test]
    fn refused_files_are_not_cached_and_say_the_same() {
        let t = tempfile::tempdir().unwrap();
        let (dir, root) = (t.path().join("specs"), t.path().join("cache"));
        fs::create_dir(&dir).unwrap();
        fs::write(
            dir.join("bad.yaml"),
            "cdiVersion: 0.6.0\nkind: x.com/y\nbogus: 1\n",
        )
        .unwrap();
        fs::write(dir.join("nvidia.yaml"), YAML).unwrap();
        let errors = |r: &Registry| {
            r.errors()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        let plain = errors(&Registry::load(std::slice::from_ref(&dir)));
        assert_eq!(plain.len(), 1);
        for want in [(0, 1), (1, 0)] {
            let reg = load(&dir, &root, Duration::ZERO);
            assert_eq!((errors(&reg), reg.cache_use()), (plain.clone(), want));
        }
    }

    #[test]
    fn a_cache_dir_not_ours_alone_is_not_used() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("specs");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("nvidia.yaml"), YAML).unwrap();
        let z = Duration::ZERO;
        let real = t.path().join("real");
        fs::create_dir(&real).unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o700)).unwrap();

        // a symlink to a private dir: not followed, neither read nor written
        let link = t.path().join("link");
        symlink(&real, &link).unwrap();
        for _ in 0..2 {
            let reg = load(&dir, &link, z);
            assert_eq!((reg.cache_use(), reg.devices().len()), ((0, 0), 1));
        }
        assert!(!real.join(SUBDIR).exists());

        // a FIFO: refused at once, never waited on
        let fifo = t.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert_eq!(load(&dir, &fifo, z).cache_use(), (0, 0));

        // its subdir a symlink, or a FIFO
        symlink(&real, real.join(SUBDIR)).unwrap();
        assert_eq!(load(&dir, &real, z).cache_use(), (0, 0));
        fs::remove_file(real.join(SUBDIR)).unwrap();
        let c = std::ffi::CString::new(real.join(SUBDIR).as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert_eq!(load(&dir, &real, z).cache_use(), (0, 0));
        fs::remove_file(real.join(SUBDIR)).unwrap();

        // writable by the group
        assert_eq!(load(&dir, &real, z).cache_use(), (0, 1));
        fs::set_permissions(&real, fs::Permissions::from_mode(0o770)).unwrap();
        assert_eq!(load(&dir, &real, z).cache_use(), (0, 0));
        fs::set_permissions(&real, fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(load(&dir, &real, z).cache_use(), (1, 0));

        // an entry writable by others, or a symlink to one: not used (then replaced)
        let entry = real.join(SUBDIR).join(entry_name(&dir.join("nvidia.yaml")));
        fs::set_permissions(&entry, fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(load(&dir, &real, z).cache_use(), (0, 1));
        assert_eq!(
            fs::metadata(&entry).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let planted = t.path().join("planted.json");
        fs::rename(&entry, &planted).unwrap();
        symlink(&planted, &entry).unwrap();
        assert_eq!(load(&dir, &real, z).cache_use(), (0, 1));
        assert!(!fs::symlink_metadata(&entry)
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn a_damaged_entry_is_parsed_again() {
        let t = tempfile::tempdir().unwrap();
        let (dir, root) = (t.path().join("specs"), t.path().join("cache"));
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("nvidia.yaml"), YAML).unwrap();
        load(&dir, &root, Duration::ZERO);
        let entry = root.join(SUBDIR).join(entry_name(&dir.join("nvidia.yaml")));
        fs::write(&entry, b"{\"format\":").unwrap();
        let reg = load(&dir, &root, Duration::ZERO);
        assert_eq!(
            (reg.cache_use(), env_of(&reg)),
            ((0, 1), vec!["G=a".into(), "DEV=a".into()])
        );
    }
}
