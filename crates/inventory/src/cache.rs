//! The driver's installed files (libraries with their SONAMEs, binaries, firmware), found
//! once and reused by later containers for as long as nothing they were found from has changed.
//!
//! Finding them means parsing the host's `ld.so.cache`, resolving every candidate path and
//! reading ELF headers; checking a cached answer means one `stat` per path discovery looked at
//! (`fsx::Witness`), compared with what discovery saw: a driver upgrade, a new `ld.so.cache`, a
//! library or link replaced, added or removed in a directory that was searched — each changes
//! some witness's inode, size, mtime or ctime, and the files are found again. GPUs, device
//! nodes, the driver version and the daemons' sockets are never cached: they are read on every
//! call (hot-plug, module reload, a daemon started).
//!
//! Two rules keep the check exact:
//! - a change racing with discovery: every fingerprint is taken before the read it vouches
//!   for, so a later change is a mismatch, never a stale match;
//! - timestamps are only as fine as the kernel's clock tick, so two changes within one tick can
//!   share an mtime: a result is not stored while any witness changed less than
//!   [`SETTLE`] ago (the "racily clean" rule of git's index).
//!
//! The file names host paths that get bind-mounted into containers, so it is trusted only in a
//! directory and a file that belong to the caller and that nobody else can write.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::fsx::{Fingerprint, Witness};
use crate::{HostFile, Library};

/// How old every change must be before a result found from it is stored.
pub const SETTLE: Duration = Duration::from_secs(2);

/// Entries kept in the cache directory; beyond this the least recently written go (only test
/// suites with many temporary driver roots ever get there).
const MAX_ENTRIES: usize = 64;

/// Bumped whenever what is stored, or how it is found, changes meaning.
const FORMAT: u32 = 2;

/// What is cached: the part of an inventory that comes from the driver root's files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DriverFiles {
    pub libraries: Vec<Library>,
    pub binaries: Vec<HostFile>,
    pub firmware: Vec<HostFile>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    format: u32,
    key: String,
    witnesses: Vec<Witness>,
    files: DriverFiles,
}

/// How a lookup went, for the log and the tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    /// Served from the cache after every witness matched.
    Hit,
    /// Found again and stored.
    Stored,
    /// Found again; not stored (something changed too recently, or the directory is not safe
    /// or not writable).
    NotStored,
}

/// The runtime build that finds the files: another build (an upgrade, a downgrade) may find
/// them differently, so it never takes an entry this one stored.
fn runtime_build() -> String {
    format!(
        "{}+{}",
        env!("CARGO_PKG_VERSION"),
        option_env!("NVIDIA_RUNTIME_COMMIT").unwrap_or("unknown")
    )
}

/// The driver files for `key`, from `dir` when every witness still matches, else from
/// `discover` (whose result is stored when it is settled).
pub(crate) fn driver_files(
    dir: &Path,
    key: &str,
    settle: Duration,
    discover: impl FnOnce() -> DriverFiles,
) -> (DriverFiles, CacheUse) {
    driver_files_of_build(dir, &runtime_build(), key, settle, discover)
}

fn driver_files_of_build(
    dir: &Path,
    build: &str,
    key: &str,
    settle: Duration,
    discover: impl FnOnce() -> DriverFiles,
) -> (DriverFiles, CacheUse) {
    let key = &format!("runtime {build}\n{key}");
    let path = dir.join(file_name(key));
    match load(dir, &path, key) {
        Ok(Some(files)) => return (files, CacheUse::Hit),
        Ok(None) => {}
        Err(err) => {
            tracing::debug!(path = %path.display(), error = %err, "inventory cache not used")
        }
    }
    let (files, witnesses) = crate::fsx::witnessed(discover);
    let stored = settled(&witnesses, settle)
        && store(dir, &path, key, &witnesses, &files)
            .map_err(|err| tracing::debug!(path = %path.display(), error = %err, "inventory cache not written"))
            .is_ok();
    let how = if stored {
        CacheUse::Stored
    } else {
        CacheUse::NotStored
    };
    (files, how)
}

/// A stable file name for a key (FNV-1a; the key itself is checked inside the file).
fn file_name(key: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("driver-files-{hash:016x}.json")
}

/// `Ok(None)`: no entry, another key's, another format's, or a witness that no longer matches.
fn load(dir: &Path, path: &Path, key: &str) -> io::Result<Option<DriverFiles>> {
    check_private(&fs::symlink_metadata(dir)?, true)?;
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    check_private(&file.metadata()?, false)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let entry: Entry = match serde_json::from_slice(&bytes) {
        Ok(entry) => entry,
        Err(err) => {
            tracing::debug!(path = %path.display(), error = %err, "unreadable inventory cache entry; finding the files again");
            return Ok(None);
        }
    };
    if entry.format != FORMAT || entry.key != key {
        return Ok(None);
    }
    for w in &entry.witnesses {
        let now = Witness::look(&w.path, w.follow);
        if now.seen != w.seen {
            tracing::debug!(path = %w.path.display(), "driver files changed; finding them again");
            return Ok(None);
        }
    }
    Ok(Some(entry.files))
}

/// Ours alone: owned by our effective uid, writable by nobody else, and the kind we expect.
fn check_private(md: &fs::Metadata, dir: bool) -> io::Result<()> {
    let kind_ok = if dir {
        md.file_type().is_dir()
    } else {
        md.file_type().is_file()
    };
    let euid = nix::unistd::geteuid().as_raw();
    if !kind_ok || md.uid() != euid || md.mode() & 0o022 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "not a private {} (uid {}, mode {:o}; want uid {euid}, not writable by group or others)",
                if dir { "directory" } else { "file" },
                md.uid(),
                md.mode() & 0o7777
            ),
        ));
    }
    Ok(())
}

/// Whether every witness is old enough that a later change cannot hide behind an equal
/// timestamp, and no path was seen two ways during one discovery.
fn settled(witnesses: &[Witness], settle: Duration) -> bool {
    let horizon = SystemTime::now()
        .checked_sub(settle)
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or((0, 0), |d| {
            (d.as_secs() as i64, i64::from(d.subsec_nanos()))
        });
    let recent = |fp: &Fingerprint| fp.mtime >= horizon || fp.ctime >= horizon;
    for (i, w) in witnesses.iter().enumerate() {
        if w.seen.as_ref().is_some_and(recent) {
            tracing::debug!(path = %w.path.display(), "changed moments ago; driver files not cached yet");
            return false;
        }
        let seen_differently = witnesses[..i]
            .iter()
            .any(|o| o.path == w.path && o.follow == w.follow && o.seen != w.seen);
        if seen_differently {
            tracing::debug!(path = %w.path.display(), "changed during discovery; not cached");
            return false;
        }
    }
    true
}

fn store(
    dir: &Path,
    path: &Path,
    key: &str,
    witnesses: &[Witness],
    files: &DriverFiles,
) -> io::Result<()> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    check_private(&fs::symlink_metadata(dir)?, true)?;
    let entry = Entry {
        format: FORMAT,
        key: key.to_owned(),
        witnesses: essential(witnesses),
        files: files.clone(),
    };
    let bytes = serde_json::to_vec(&entry).map_err(io::Error::other)?;
    let tmp = dir.join(format!(
        ".{}.{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let written = (|| {
        let mut file: File = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&tmp)?;
        file.write_all(&bytes)?;
        // The umask may have taken bits we did not want taken, never added any.
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    prune(dir);
    Ok(())
}

/// The witnesses that a check must look at again; the others are implied by one of them:
/// - the same look twice (the first is kept: `settled` made sure both saw the same);
/// - a followed look at a path whose `lstat`, seen earlier, was no symlink (same inode);
/// - an absence in a directory whose `lstat` was seen earlier: creating an entry changes the
///   directory's mtime and ctime, so the directory's witness catches it.
fn essential(witnesses: &[Witness]) -> Vec<Witness> {
    const KIND: u32 = 0o170000;
    const DIR: u32 = 0o040000;
    const LINK: u32 = 0o120000;
    let mut kept: Vec<Witness> = Vec::with_capacity(witnesses.len());
    // The kind of file an earlier `lstat` of `path` saw, if there was one and it found a file.
    let kind_seen = |kept: &[Witness], path: &Path| -> Option<u32> {
        kept.iter()
            .find(|k| !k.follow && k.path == path)
            .and_then(|k| k.seen.map(|fp| fp.mode & KIND))
    };
    for w in witnesses {
        let implied = kept
            .iter()
            .any(|k| k.path == w.path && k.follow == w.follow)
            || (w.follow && kind_seen(&kept, &w.path).is_some_and(|kind| kind != LINK))
            || (w.seen.is_none()
                && w.path.parent().and_then(|dir| kind_seen(&kept, dir)) == Some(DIR));
        if !implied {
            kept.push(w.clone());
        }
    }
    kept
}

/// Keeps the directory from growing without bound (a test suite makes a driver root per run).
fn prune(dir: &Path) {
    let Ok(read) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<(SystemTime, PathBuf)> = read
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("driver-files-"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    if entries.len() <= MAX_ENTRIES {
        return;
    }
    entries.sort();
    for (_, path) in &entries[..entries.len() - MAX_ENTRIES / 2] {
        let _ = fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where `lookup` stores its entry.
    fn entry_path(cache: &Path) -> PathBuf {
        cache.join(file_name(&format!("runtime {}\nkey", runtime_build())))
    }

    fn files(name: &str) -> DriverFiles {
        DriverFiles {
            libraries: Vec::new(),
            binaries: vec![HostFile {
                host_path: PathBuf::from(name),
                container_path: PathBuf::from("/usr/bin/x"),
                capability: None,
            }],
            firmware: Vec::new(),
        }
    }

    /// A "discovery" that looks at `watched` through fsx (as the real one does) and answers
    /// `name`; counts how often it ran.
    fn lookup(
        cache: &Path,
        watched: &Path,
        name: &str,
        settle: Duration,
        runs: &mut u32,
    ) -> (DriverFiles, CacheUse) {
        driver_files(cache, "key", settle, || {
            *runs += 1;
            let _ = crate::fsx::symlink_metadata(watched);
            files(name)
        })
    }

    #[test]
    fn a_stored_answer_is_reused_until_a_witness_changes() {
        let t = tempfile::tempdir().unwrap();
        let cache = t.path().join("cache");
        let watched = t.path().join("lib");
        fs::create_dir(&watched).unwrap();
        let mut runs = 0;
        let z = Duration::ZERO;
        assert_eq!(
            lookup(&cache, &watched, "a", z, &mut runs).1,
            CacheUse::Stored
        );
        assert_eq!(
            fs::metadata(&cache).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let (got, how) = lookup(&cache, &watched, "b", z, &mut runs);
        assert_eq!((got, how, runs), (files("a"), CacheUse::Hit, 1));

        // a new entry in a directory that was looked at: found again, with the new answer (after
        // a clock tick, or the directory's mtime could not tell: what SETTLE is for)
        std::thread::sleep(Duration::from_millis(30));
        fs::write(watched.join("libnew.so.1"), b"").unwrap();
        let (got, how) = lookup(&cache, &watched, "b", z, &mut runs);
        assert_eq!((got, how, runs), (files("b"), CacheUse::Stored, 2));
        // a path that was absent and now exists
        let cache = t.path().join("cache2");
        let absent = t.path().join("absent");
        lookup(&cache, &absent, "c", z, &mut runs);
        assert_eq!(lookup(&cache, &absent, "x", z, &mut runs).0, files("c"));
        fs::write(&absent, b"").unwrap();
        let (got, _) = lookup(&cache, &absent, "d", z, &mut runs);
        assert_eq!((got, runs), (files("d"), 4));
    }

    #[test]
    fn a_fresh_change_is_not_trusted_yet() {
        let t = tempfile::tempdir().unwrap();
        let cache = t.path().join("cache");
        let mut runs = 0;
        let settle = Duration::from_secs(3600);
        let (_, how) = lookup(&cache, t.path(), "a", settle, &mut runs);
        assert_eq!(how, CacheUse::NotStored);
        lookup(&cache, t.path(), "a", settle, &mut runs);
        assert_eq!(runs, 2, "nothing was cached");
    }

    #[test]
    fn entries_others_can_write_are_ignored() {
        let t = tempfile::tempdir().unwrap();
        let cache = t.path().join("cache");
        let mut runs = 0;
        let z = Duration::ZERO;
        lookup(&cache, t.path(), "a", z, &mut runs);
        let entry = entry_path(&cache);
        fs::set_permissions(&entry, fs::Permissions::from_mode(0o666)).unwrap();
        let (got, how) = lookup(&cache, t.path(), "b", z, &mut runs);
        assert_eq!((got, runs), (files("b"), 2));
        assert_eq!(how, CacheUse::Stored, "rewritten private");
        assert_eq!(
            fs::metadata(&entry).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // a group-writable directory: neither read nor written
        fs::set_permissions(&cache, fs::Permissions::from_mode(0o770)).unwrap();
        let (_, how) = lookup(&cache, t.path(), "c", z, &mut runs);
        assert_eq!((how, runs), (CacheUse::NotStored, 3));
        // a symlinked entry is not followed
        fs::set_permissions(&cache, fs::Permissions::from_mode(0o700)).unwrap();
        fs::remove_file(&entry).unwrap();
        let elsewhere = t.path().join("planted.json");
        fs::write(&elsewhere, b"{}").unwrap();
        std::os::unix::fs::symlink(&elsewhere, &entry).unwrap();
        let (got, _) = lookup(&cache, t.path(), "d", z, &mut runs);
        assert_eq!((got, runs), (files("d"), 4));
    }

    #[test]
    fn another_runtime_build_finds_the_files_again() {
        let t = tempfile::tempdir().unwrap();
        let cache = t.path().join("cache");
        let z = Duration::ZERO;
        let mut runs = 0;
        let mut lookup_as = |build: &str, name: &str| {
            driver_files_of_build(&cache, build, "key", z, || {
                runs += 1;
                files(name)
            })
        };
        assert_eq!(lookup_as("0.1.0+old", "a").1, CacheUse::Stored);
        assert_eq!(lookup_as("0.1.0+old", "x"), (files("a"), CacheUse::Hit));
        assert_eq!(lookup_as("0.2.0+new", "b"), (files("b"), CacheUse::Stored));
        assert_eq!(runs, 2, "the upgraded runtime found the files itself");
    }

    #[test]
    fn a_damaged_entry_is_found_again() {
        let t = tempfile::tempdir().unwrap();
        let cache = t.path().join("cache");
        let mut runs = 0;
        let z = Duration::ZERO;
        lookup(&cache, t.path(), "a", z, &mut runs);
        fs::write(entry_path(&cache), b"{\"format\":").unwrap();
        let (got, how) = lookup(&cache, t.path(), "b", z, &mut runs);
        assert_eq!((got, how, runs), (files("b"), CacheUse::Stored, 2));
    }
}
