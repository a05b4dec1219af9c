//! What a create keeps in its bundle, and how it changes the bundle's files.
//!
//! `<bundle>/.nvidia-runtime/record.json` says which create injected the bundle, from what
//! `config.json`, what it wrote, and how to undo it. A create writes it *before* it changes
//! anything, as "pending" and owned by its process (pid and start time: the re-exec from the
//! sealed copy keeps both, nothing in a caller's environment can change them). So:
//! - the sealed process adopts an injection only when its own process wrote it;
//! - a create killed at any moment leaves a pending record whose owner is gone, and the next
//!   create on the bundle undoes what it did before doing anything;
//! - a later create knows whether `config.json` is still what we wrote (same request: nothing
//!   to do) or was edited since (injected again from the original plus the edits).
//!
//! Every change happens under an exclusive `flock` of the bundle directory; a create waits
//! while another process's create of the same bundle is pending.
//!
//! What was in `.nvidia-runtime` before a re-injection is set aside in `previous/` until the
//! create commits, so a failed one puts the bundle back exactly as it was.
//!
//! Whoever can write the bundle can write anything in it, so nothing there is taken on trust:
//! `.nvidia-runtime` must be a real directory of ours (never followed to somewhere else), kept
//! 0711: not listable by others, and the copies of the image's files in it are 0600, while a
//! container whose root is mapped to another user (user namespaces) can still reach what is
//! bind-mounted from it; the record must be a regular file of a sane size; and undoing what a record
//! describes touches only the rootfs the bundle's `config.json` names, never with set-id bits.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::sys::stat::Mode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{InjectError, Rootfs, Undo, WrittenFile, ARTIFACTS_DIR};

/// What is wrong with the bundle's own files, and how to put it right.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(
        "{path} is {what}, not a directory of nvidia-runtime's; it keeps its files for the \
         bundle there: remove it, or give the container a bundle without it"
    )]
    NotOurDir { path: PathBuf, what: String },
    #[error(
        "{path} is {what}, not an injection record nvidia-runtime wrote: remove it (the \
         bundle's config.json must then be the one from before any injection)"
    )]
    NotARecord { path: PathBuf, what: String },
}

/// The record in [`ARTIFACTS_DIR`].
const RECORD: &str = "record.json";
/// Where what was in [`ARTIFACTS_DIR`] waits while a re-injection is pending.
const PREVIOUS: &str = "previous";
/// Bumped whenever the record changes meaning.
const RECORD_FORMAT: u32 = 1;
/// Suffix of the temp file beside a file we replace; one name per file, so a create killed
/// while writing leaves at most one, which the next create removes.
const TEMP_SUFFIX: &str = ".nvidia-runtime-tmp";
/// How long a create waits for another process's pending create of the same bundle.
const WAIT_FOR_OTHER: Duration = Duration::from_secs(30);
/// A record holds a few copies of `config.json`; no real one comes near this.
const MAX_RECORD_BYTES: u64 = 64 << 20;

/// A process, told apart from any later one with the same pid by its start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub pid: i32,
    /// Clock ticks after boot (`/proc/<pid>/stat`, field 22).
    pub start: u64,
}

/// The process this one acts for, if it was forked to do that process's work (see
/// [`Owner::act_for`]).
static ACTING_FOR: std::sync::OnceLock<Owner> = std::sync::OnceLock::new();

impl Owner {
    /// This process (the same before and after it execs), or the one it acts for.
    pub fn this_process() -> Self {
        if let Some(owner) = ACTING_FOR.get() {
            return *owner;
        }
        let pid = std::process::id() as i32;
        Self {
            pid,
            start: start_time(pid).unwrap_or(0),
        }
    }

    /// Makes this process act for `owner` from now on: what it reserves and records is
    /// `owner`'s, as if `owner` had done it. For a child forked to inject GPUs while its
    /// parent re-execs; the parent, which keeps its pid and start time across the exec, then
    /// finds the work its own. Only the first call counts.
    pub fn act_for(owner: Owner) {
        let _ = ACTING_FOR.set(owner);
    }

    pub fn is_alive(&self) -> bool {
        start_time(self.pid) == Some(self.start)
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.pid, self.start)
    }
}

impl std::str::FromStr for Owner {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let (pid, start) = s.split_once(':').ok_or(())?;
        Ok(Self {
            pid: pid.parse().map_err(|_| ())?,
            start: start.parse().map_err(|_| ())?,
        })
    }
}

fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the command name (field 2) may hold spaces and parentheses: count from the last ')'
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Record {
    format: u32,
    /// The runtime version that wrote it (for whoever reads a bundle by hand).
    runtime: String,
    owner: Owner,
    committed: bool,
    /// `config.json` without our edits: what an edited bundle is injected again from.
    original: String,
    /// `config.json` as the committed create left it.
    written: Option<String>,
    undo: Undo,
}

impl Record {
    pub(crate) fn is_pending_of(&self, owner: &Owner) -> bool {
        !self.committed && self.owner == *owner
    }

    /// Whether `config.json` is what we wrote (whitespace aside).
    pub(crate) fn wrote(&self, current: &Value) -> bool {
        self.committed
            && self
                .written
                .as_deref()
                .and_then(|text| serde_json::from_str::<Value>(text).ok())
                .is_some_and(|written| written == *current)
    }

    /// `current` with our marker annotation as we wrote it, where it lost it: dropping the
    /// annotation (or all annotations) is an edit like any other, never a way to make an
    /// injected config.json look like one we have not seen.
    pub(crate) fn with_our_marker(&self, current: &Value) -> Value {
        let mut current = current.clone();
        let pointer = format!(
            "/annotations/{}",
            crate::apply::MARKER_ANNOTATION
                .replace('~', "~0")
                .replace('/', "~1")
        );
        let marker = self
            .written
            .as_deref()
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
            .and_then(|written| written.pointer(&pointer).cloned());
        if let (Some(marker), Value::Object(spec)) = (marker, &mut current) {
            let annotations = spec
                .entry("annotations")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(annotations) = annotations {
                annotations
                    .entry(crate::apply::MARKER_ANNOTATION)
                    .or_insert(marker);
            }
        }
        current
    }

    pub(crate) fn is_committed(&self) -> bool {
        self.committed
    }

    /// `current`, an edited copy of what we wrote, with our edits taken back out: the user's
    /// config as it would be had they edited the original.
    pub(crate) fn original_with_edits(
        &self,
        current: &Value,
        config_path: &Path,
    ) -> Result<Value, InjectError> {
        let unreadable = |what: &str| InjectError::Record {
            path: config_path.to_owned(),
            reason: format!("its {what} is unreadable"),
        };
        let original: Value =
            serde_json::from_str(&self.original).map_err(|_| unreadable("original"))?;
        let Some(written) = self.written.as_deref() else {
            return Err(unreadable("written config"));
        };
        let written: Value = serde_json::from_str(written).map_err(|_| unreadable("written"))?;
        let mut conflicts = Vec::new();
        let merged = merge3(&written, &original, current, "", &mut conflicts);
        if !conflicts.is_empty() {
            return Err(InjectError::EditedAfterInjection {
                path: config_path.to_owned(),
                fields: conflicts.join(", "),
            });
        }
        Ok(merged.unwrap_or(Value::Null))
    }
}

/// Three-way merge: `written` (what we wrote), `original` (before we injected) and
/// `current` (what is there now). Where the user changed nothing the original wins; where we
/// changed nothing the user's edit wins; arrays keep the user's items less those we added,
/// plus those we removed. Both sides changing one scalar is a conflict, listed by path.
fn merge3(
    written: &Value,
    original: &Value,
    current: &Value,
    path: &str,
    conflicts: &mut Vec<String>,
) -> Option<Value> {
    merge3_opt(
        Some(written),
        Some(original),
        Some(current),
        path,
        conflicts,
    )
}

fn merge3_opt(
    written: Option<&Value>,
    original: Option<&Value>,
    current: Option<&Value>,
    path: &str,
    conflicts: &mut Vec<String>,
) -> Option<Value> {
    if current == written {
        return original.cloned();
    }
    if original == written || current == original {
        return current.cloned();
    }
    match (written, original, current) {
        (Some(Value::Object(w)), Some(Value::Object(o)), Some(Value::Object(c))) => {
            let mut merged = Map::new();
            let keys = c.keys().chain(o.keys().filter(|k| !c.contains_key(*k)));
            for key in keys {
                let sub = format!("{path}/{key}");
                if let Some(value) = merge3_opt(w.get(key), o.get(key), c.get(key), &sub, conflicts)
                {
                    merged.insert(key.clone(), value);
                }
            }
            Some(Value::Object(merged))
        }
        (Some(Value::Array(w)), Some(Value::Array(o)), Some(Value::Array(c))) => {
            // by canonical text, not `contains`: arrays of thousands of device rules are real
            let keys = |items: &[Value]| -> Vec<String> { items.iter().map(canonical).collect() };
            let (w_keys, o_keys, c_keys) = (keys(w), keys(o), keys(c));
            let o_set: HashSet<&str> = o_keys.iter().map(String::as_str).collect();
            let w_set: HashSet<&str> = w_keys.iter().map(String::as_str).collect();
            let c_set: HashSet<&str> = c_keys.iter().map(String::as_str).collect();
            let added: HashSet<&str> = w_set.difference(&o_set).copied().collect();
            let kept = c
                .iter()
                .zip(&c_keys)
                .filter(|(_, key)| !added.contains(key.as_str()));
            let removed = o
                .iter()
                .zip(&o_keys)
                .filter(|(_, key)| !w_set.contains(key.as_str()) && !c_set.contains(key.as_str()));
            Some(Value::Array(
                kept.chain(removed)
                    .map(|(value, _)| value.clone())
                    .collect(),
            ))
        }
        _ => {
            conflicts.push(if path.is_empty() {
                "/".into()
            } else {
                path.into()
            });
            current.cloned()
        }
    }
}

/// `value` as text that two equal values share (object keys sorted: `Value`'s equality
/// ignores their order).
fn canonical(value: &Value) -> String {
    fn write(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                out.push('{');
                for (i, (key, value)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push(':');
                    write(value, out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

/// An exclusive lock on a bundle, released when dropped (and by the kernel when the process
/// dies or execs: the fd is close-on-exec).
pub struct BundleLock(#[allow(dead_code)] Flock<File>);

impl BundleLock {
    pub fn acquire(bundle: &Path) -> Result<Self, InjectError> {
        let dir = OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_CLOEXEC)
            .open(bundle)
            .map_err(|source| InjectError::Read {
                path: bundle.to_owned(),
                source,
            })?;
        Flock::lock(dir, FlockArg::LockExclusive)
            .map(Self)
            .map_err(|(_, errno)| InjectError::Lock {
                path: bundle.to_owned(),
                source: errno.into(),
            })
    }

    /// The lock, once no other process's create of the bundle is pending, and whatever a
    /// killed create left is undone.
    pub(crate) fn acquire_settled(bundle: &Path) -> Result<Self, InjectError> {
        let deadline = Instant::now() + WAIT_FOR_OTHER;
        loop {
            let lock = Self::acquire(bundle)?;
            match recover(bundle) {
                Ok(()) => return Ok(lock),
                Err(Unsettled::Broken(err)) => return Err(err),
                Err(Unsettled::Busy(other)) if Instant::now() < deadline => {
                    drop(lock);
                    tracing::debug!(pid = other.pid, "waiting for another create of this bundle");
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(Unsettled::Busy(other)) => {
                    return Err(InjectError::Busy {
                        path: bundle.to_owned(),
                        pid: other.pid,
                    })
                }
            }
        }
    }
}

pub(crate) fn artifacts(bundle: &Path) -> PathBuf {
    bundle.join(ARTIFACTS_DIR)
}

/// A handle on our directory in the bundle; `None` when there is none. Anything at its name
/// but a real directory of ours (a symlink to a host dir, a file, another user's directory)
/// is refused and left as it is: we move, write and delete what is in it.
pub(crate) fn open_artifacts(bundle: &Path) -> Result<Option<File>, InjectError> {
    let path = artifacts(bundle);
    let not_ours = |what: String| BundleError::NotOurDir {
        path: path.clone(),
        what,
    };
    let meta = match fs::symlink_metadata(&path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(InjectError::Read { path, source }),
    };
    if !meta.file_type().is_dir() {
        return Err(not_ours(describe(&meta.file_type())).into());
    }
    // O_NOFOLLOW: what was checked above cannot have become a symlink since
    let dir = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(&path)
        .map_err(|source| match source.raw_os_error() {
            Some(nix::libc::ELOOP) | Some(nix::libc::ENOTDIR) => {
                not_ours("no longer a directory".into()).into()
            }
            _ => InjectError::Read {
                path: path.clone(),
                source,
            },
        })?;
    let meta = dir.metadata().map_err(|source| InjectError::Read {
        path: path.clone(),
        source,
    })?;
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(not_ours(format!("a directory owned by uid {}", meta.uid())).into());
    }
    Ok(Some(dir))
}

/// Others may pass through our directory to what is mounted from it, never list it; what is
/// private in it (the record, the image's saved files) is 0600 itself.
const ARTIFACTS_MODE: u32 = 0o711;

/// Our directory in the bundle, made if missing, [`ARTIFACTS_MODE`] either way (older
/// versions made it 0755); `true` when this call made it.
fn ensure_artifacts(bundle: &Path) -> Result<(File, bool), InjectError> {
    let path = artifacts(bundle);
    let made = match open_artifacts(bundle)? {
        Some(_) => false,
        None => {
            fs::DirBuilder::new()
                .mode(ARTIFACTS_MODE)
                .create(&path)
                .map_err(|source| InjectError::Write {
                    path: path.clone(),
                    source,
                })?;
            true
        }
    };
    let Some(dir) = open_artifacts(bundle)? else {
        return Err(InjectError::Write {
            path,
            source: io::Error::new(io::ErrorKind::NotFound, "removed while being made"),
        });
    };
    // the handle's mode, not the path's: it cannot be made to lead elsewhere
    dir.set_permissions(fs::Permissions::from_mode(ARTIFACTS_MODE))
        .map_err(|source| InjectError::Write { path, source })?;
    Ok((dir, made))
}

/// Makes our directory in the bundle (or checks the one there is ours), private; its path.
pub(crate) fn create_artifacts_dir(bundle: &Path) -> Result<PathBuf, InjectError> {
    ensure_artifacts(bundle)?;
    Ok(artifacts(bundle))
}

fn describe(kind: &fs::FileType) -> String {
    let what = if kind.is_symlink() {
        "a symlink"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_file() {
        "a regular file"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device node"
    } else {
        "a special file"
    };
    what.into()
}

/// The bundle's record; `None` when absent, or unreadable as a record (a damaged one is no
/// evidence). Something that cannot be one at all — a FIFO (reading it would block for
/// ever), a symlink, a file of hundreds of MB — is an error naming it.
pub(crate) fn read_record(bundle: &Path) -> Result<Option<Record>, InjectError> {
    let Some(dir) = open_artifacts(bundle)? else {
        return Ok(None);
    };
    let path = artifacts(bundle).join(RECORD);
    let not_a_record = |what: String| -> InjectError {
        BundleError::NotARecord {
            path: path.clone(),
            what,
        }
        .into()
    };
    let opened = nix::fcntl::openat(
        Some(dir.as_raw_fd()),
        RECORD,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    );
    let file = match opened {
        // SAFETY: openat returned a fresh descriptor that nothing else owns.
        Ok(fd) => File::from(unsafe { OwnedFd::from_raw_fd(fd) }),
        Err(nix::errno::Errno::ENOENT) => return Ok(None),
        Err(nix::errno::Errno::ELOOP) => return Err(not_a_record("a symlink".into())),
        Err(errno) => {
            return Err(InjectError::Read {
                path,
                source: errno.into(),
            })
        }
    };
    let meta = file.metadata().map_err(|source| InjectError::Read {
        path: path.clone(),
        source,
    })?;
    if !meta.file_type().is_file() {
        return Err(not_a_record(describe(&meta.file_type())));
    }
    if meta.len() > MAX_RECORD_BYTES {
        return Err(not_a_record(format!(
            "{} bytes, more than a record ever holds ({MAX_RECORD_BYTES})",
            meta.len()
        )));
    }
    let mut bytes = Vec::new();
    file.take(MAX_RECORD_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|source| InjectError::Read {
            path: path.clone(),
            source,
        })?;
    match serde_json::from_slice::<Record>(&bytes) {
        Ok(mut record) if record.format == RECORD_FORMAT => {
            record.undo.bundle = bundle.to_owned();
            Ok(Some(record))
        }
        Ok(_) => Ok(None),
        Err(err) => {
            tracing::warn!(path = %path.display(), "ignoring an unreadable record: {err}");
            Ok(None)
        }
    }
}

fn write_record(bundle: &Path, record: &Record) -> Result<(), InjectError> {
    let bytes = serde_json::to_vec(record).expect("a record always serialises");
    // it holds the container's config, environment included: for root's eyes only
    replace_file(&artifacts(bundle).join(RECORD), &bytes, None)
}

/// Why a create cannot go on with a bundle yet.
enum Unsettled {
    /// Another live process's create of the bundle is pending: wait for it.
    Busy(Owner),
    /// Something in the bundle must be put right by hand first.
    Broken(InjectError),
}

/// Puts right what a create killed on this bundle left (the lock is held).
fn recover(bundle: &Path) -> Result<(), Unsettled> {
    remove_config_leftovers(bundle);
    let dir = artifacts(bundle);
    if open_artifacts(bundle).map_err(Unsettled::Broken)?.is_none() {
        return Ok(());
    }
    let _ = fs::remove_file(temp_beside(&dir.join(RECORD)));
    match read_record(bundle).map_err(Unsettled::Broken)? {
        Some(record) if !record.committed => {
            let me = Owner::this_process();
            if record.owner == me {
                return Ok(());
            }
            if record.owner.is_alive() {
                return Err(Unsettled::Busy(record.owner));
            }
            tracing::warn!(
                bundle = %bundle.display(),
                pid = record.owner.pid,
                "undoing what an interrupted create left in the bundle"
            );
            // A config.json without our marker is not the one it wrote (say, a fresh one
            // written since for the next create): that stays.
            let ours = fs::read(bundle.join("config.json"))
                .ok()
                .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
                .is_some_and(|spec| crate::apply::already_injected(&spec));
            restore(bundle, &record.undo, ours);
        }
        Some(_) => {
            // a commit that did not get to tidy up
            let _ = fs::remove_dir_all(dir.join(PREVIOUS));
        }
        None if is_real_dir(&dir.join(PREVIOUS)) => put_back_previous(&dir),
        None if fs::symlink_metadata(dir.join(RECORD)).is_err() => {
            // made by a create killed before it wrote its record
            let _ = fs::remove_dir_all(&dir);
        }
        None => {}
    }
    Ok(())
}

/// Before the first change to the bundle: makes (or sets aside what is in) our directory and
/// writes the pending record. Fills in `undo.made_dir`. On failure nothing is left changed.
pub(crate) fn begin(bundle: &Path, original: String, undo: &mut Undo) -> Result<(), InjectError> {
    let dir = artifacts(bundle);
    let write_err = |path: &Path| {
        let path = path.to_owned();
        move |source| InjectError::Write { path, source }
    };
    let (_handle, made) = ensure_artifacts(bundle)?;
    match made {
        true => undo.made_dir = true,
        false => {
            undo.made_dir = false;
            let previous = dir.join(PREVIOUS);
            fs::create_dir(&previous).map_err(write_err(&previous))?;
            let set_aside = (|| -> io::Result<()> {
                for entry in fs::read_dir(&dir)? {
                    let entry = entry?;
                    if entry.file_name() != PREVIOUS {
                        fs::rename(entry.path(), previous.join(entry.file_name()))?;
                    }
                }
                Ok(())
            })();
            if let Err(source) = set_aside {
                put_back_previous(&dir);
                return Err(InjectError::Write { path: dir, source });
            }
        }
    }
    let record = Record {
        format: RECORD_FORMAT,
        runtime: env!("CARGO_PKG_VERSION").into(),
        owner: Owner::this_process(),
        committed: false,
        original,
        written: None,
        undo: undo.clone(),
    };
    if let Err(err) = write_record(bundle, &record) {
        restore(bundle, undo, true);
        return Err(err);
    }
    Ok(())
}

/// Records in the pending record what this create is about to change beyond what `begin`
/// recorded (the paths, links and files it makes in the rootfs), so that whoever undoes it —
/// the sealed process, or the next create after a kill — takes those away too. The lock is
/// held.
pub(crate) fn record_progress(bundle: &Path, undo: &Undo) -> Result<(), InjectError> {
    let Some(mut record) = read_record(bundle)? else {
        return Err(InjectError::Write {
            path: artifacts(bundle).join(RECORD),
            source: io::Error::new(io::ErrorKind::NotFound, "the pending record is gone"),
        });
    };
    record.undo = undo.clone();
    write_record(bundle, &record)
}

/// Puts the bundle back as it was before the create `undo` describes (the lock is held);
/// `config.json` too when `config_too`.
pub(crate) fn restore(bundle: &Path, undo: &Undo, config_too: bool) {
    let config_path = bundle.join("config.json");
    // Read before config.json is put back: a forged record's original may name any root.
    let rootfs = rootfs_to_restore(bundle, undo);
    let unchanged = fs::read(&config_path).is_ok_and(|now| now == undo.original.as_bytes());
    if config_too && !unchanged {
        if let Err(err) = write_config(bundle, undo.original.as_bytes()) {
            // The pending record stays, so the next create of the bundle finishes this.
            tracing::error!("cannot put back config.json: {err}");
            return;
        }
    }
    let dir = artifacts(bundle);
    if let Some(rootfs) = rootfs {
        for written in undo.written_files.iter().rev() {
            if let Some(written) = restorable(&dir, written) {
                crate::restore_written(&rootfs, Some(&dir), &written);
            }
        }
        rootfs.take_away(&undo.created_links, &undo.new_paths);
    }
    if open_artifacts(bundle).ok().flatten().is_none() {
        return;
    }
    if undo.made_dir {
        let _ = fs::remove_dir_all(&dir);
    } else {
        put_back_previous(&dir);
    }
}

/// The rootfs whose files `undo` puts back: the one the bundle's `config.json` names now
/// (the config a create injected names the rootfs its original did), and only when the
/// record's original names the same one. A record is a file in the bundle, which anyone who
/// can write there can forge: its own word never leads us to another directory of the host.
fn rootfs_to_restore(bundle: &Path, undo: &Undo) -> Option<Rootfs> {
    let root_of = |text: &[u8]| {
        serde_json::from_slice::<Value>(text)
            .ok()
            .and_then(|spec| crate::rootfs_path(bundle, &spec).ok())
    };
    let current = root_of(&fs::read(bundle.join("config.json")).ok()?)?;
    let recorded = root_of(undo.original.as_bytes())?;
    if current != recorded {
        tracing::warn!(
            recorded = %recorded.display(),
            rootfs = %current.display(),
            "the injection record names another rootfs than config.json: its files are not put back"
        );
        return None;
    }
    Rootfs::open(&current).ok()
}

/// `written` as it may be put back: from a regular file of ours (never one a symlink leads
/// to), without set-id or sticky bits (the image's files are never set-id ones of ours to
/// restore; a forged record must not make one).
fn restorable(dir: &Path, written: &WrittenFile) -> Option<WrittenFile> {
    let mut written = written.clone();
    if let Some(saved) = &mut written.replaced {
        let plain = !saved.saved_as.is_empty()
            && !saved.saved_as.contains('/')
            && !saved.saved_as.starts_with('.');
        let regular = plain
            && fs::symlink_metadata(dir.join(&saved.saved_as))
                .is_ok_and(|meta| meta.file_type().is_file() && meta.len() <= MAX_RECORD_BYTES);
        if !regular {
            tracing::warn!(path = %written.path.display(), saved_as = %saved.saved_as, "the image's saved copy is not a regular file of ours; not put back");
            return None;
        }
        saved.mode &= 0o777;
    }
    Some(written)
}

fn is_real_dir(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_dir())
}

/// Replaces what is in `dir` with what was set aside in `dir/previous`.
fn put_back_previous(dir: &Path) {
    let previous = dir.join(PREVIOUS);
    if !is_real_dir(&previous) {
        let _ = fs::remove_file(dir.join(RECORD));
        return;
    }
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_name() == PREVIOUS {
            continue;
        }
        let _ = match entry.file_type() {
            Ok(kind) if kind.is_dir() => fs::remove_dir_all(entry.path()),
            _ => fs::remove_file(entry.path()),
        };
    }
    for entry in fs::read_dir(&previous).into_iter().flatten().flatten() {
        let _ = fs::rename(entry.path(), dir.join(entry.file_name()));
    }
    let _ = fs::remove_dir(&previous);
}

/// For the sealed process: the injection its own first process did (same pid and start
/// time), still pending. Anything else — no record, another process's, a committed one — is
/// not ours to adopt: the caller injects (or finds the bundle injected) itself.
///
/// Without the bundle's lock: the injecting process holds it while it finishes the rootfs
/// work (see [`crate::inject_bundle_then`]), and the record is only ever replaced whole.
pub fn adopt(bundle: &Path) -> Result<Option<Undo>, InjectError> {
    Ok(read_record(bundle)?
        .filter(|record| record.is_pending_of(&Owner::this_process()))
        .map(|record| record.undo))
}

/// The create succeeded: its injection stays. Records what `config.json` now holds and drops
/// what was set aside.
pub fn commit(bundle: &Path) -> Result<(), InjectError> {
    let _lock = BundleLock::acquire(bundle)?;
    let Some(mut record) = read_record(bundle)? else {
        return Ok(());
    };
    if !record.is_pending_of(&Owner::this_process()) {
        return Ok(());
    }
    let config_path = bundle.join("config.json");
    let written = fs::read(&config_path).map_err(|source| InjectError::Read {
        path: config_path,
        source,
    })?;
    record.written = Some(String::from_utf8_lossy(&written).into_owned());
    record.committed = true;
    write_record(bundle, &record)?;
    let _ = fs::remove_dir_all(artifacts(bundle).join(PREVIOUS));
    Ok(())
}

/// Rolls back the pending injection of `undo`'s bundle, if it is still this process's, as its
/// record now says: the injecting process adds to it after `config.json` is written (the
/// rootfs files it writes), which an `undo` adopted before may lack.
pub(crate) fn rollback(undo: &Undo) {
    let bundle = &undo.bundle;
    let Ok(_lock) = BundleLock::acquire(bundle) else {
        tracing::error!(bundle = %bundle.display(), "cannot lock the bundle to undo the injection");
        return;
    };
    match read_record(bundle) {
        Ok(Some(record)) if record.is_pending_of(&Owner::this_process()) => restore(
            bundle,
            &Undo {
                bundle: bundle.clone(),
                ..record.undo
            },
            true,
        ),
        Ok(_) => tracing::warn!(bundle = %bundle.display(), "no pending injection of ours to undo"),
        Err(err) => tracing::error!("cannot undo the injection: {err}"),
    }
}

/// Where `config.json` really is: itself, or the file its symlink leads to.
fn config_target(bundle: &Path) -> io::Result<PathBuf> {
    let path = bundle.join("config.json");
    if fs::symlink_metadata(&path)?.file_type().is_symlink() {
        let target = fs::canonicalize(&path)?;
        if !fs::metadata(&target)?.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("config.json leads to {}, not a file", target.display()),
            ));
        }
        return Ok(target);
    }
    Ok(path)
}

/// Writes `config.json` atomically: a symlinked one stays a symlink (its target is
/// replaced), owner and mode are kept. A reader (libcontainer, `exec` later, a retry) sees the
/// old or the new file, never half of one.
///
/// No fsync: it would only add durability across a power loss, and a bundle does not outlive
/// one (containerd and dockerd rebuild bundles, and the containers are gone). On a disk-backed
/// bundle dir it cost ~0.3 ms per container (docs/benchmarks.md).
pub fn write_config(bundle: &Path, bytes: &[u8]) -> Result<(), InjectError> {
    let path = bundle.join("config.json");
    let target = config_target(bundle).map_err(|source| InjectError::Write { path, source })?;
    let keep = fs::metadata(&target).ok();
    replace_file(&target, bytes, keep.as_ref())
}

/// Temp file beside `path` (one fixed name), then rename. `keep`: the owner and mode to give
/// the new file (else root's, 0600).
fn replace_file(path: &Path, bytes: &[u8], keep: Option<&fs::Metadata>) -> Result<(), InjectError> {
    let tmp = temp_beside(path);
    let result = (|| -> io::Result<()> {
        match fs::remove_file(&tmp) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
            _ => {}
        }
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
            .open(&tmp)?;
        file.write_all(bytes)?;
        if let Some(meta) = keep {
            // owner first: chown clears set-id bits that the mode may then set again
            std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid()))?;
            file.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        }
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(|source| InjectError::Write {
        path: path.to_owned(),
        source,
    })
}

fn temp_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}{TEMP_SUFFIX}"))
}

/// Temp files a killed rewrite of `config.json` left: ours, beside its target, and those of
/// earlier versions, named `.config.json.nvidia-runtime-<pid>` beside it.
fn remove_config_leftovers(bundle: &Path) {
    if let Ok(target) = config_target(bundle) {
        let _ = fs::remove_file(temp_beside(&target));
    }
    let Ok(entries) = fs::read_dir(bundle) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let old_temp = name
            .strip_prefix(".config.json.nvidia-runtime-")
            .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
        if old_temp {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn merged(w: Value, o: Value, c: Value) -> (Option<Value>, Vec<String>) {
        let mut conflicts = Vec::new();
        (merge3(&w, &o, &c, "", &mut conflicts), conflicts)
    }

    #[test]
    fn an_edited_injected_config_becomes_the_original_with_the_edits() {
        let original = json!({
            "process": {"env": ["NVIDIA_VISIBLE_DEVICES=all"], "args": ["sh"]},
            "mounts": [{"destination": "/proc"}],
            "hooks": {"prestart": [{"path": "nvidia-container-runtime-hook"}]},
            "x": 1
        });
        let written = json!({
            "process": {"env": ["NVIDIA_VISIBLE_DEVICES=all"], "args": ["sh"]},
            "mounts": [{"destination": "/proc"}, {"destination": "/usr/lib/libcuda.so.1"}],
            "hooks": {"prestart": []},
            "annotations": {"io.github.nvidia-runtime.injected": "gpus=0"},
            "x": 1
        });
        let mut current = written.clone();
        current["process"]["env"] = json!(["NVIDIA_VISIBLE_DEVICES=1"]);
        current["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/data"}));
        let (value, conflicts) = merged(written.clone(), original.clone(), current);
        assert!(conflicts.is_empty());
        assert_eq!(
            value.unwrap(),
            json!({
                "process": {"env": ["NVIDIA_VISIBLE_DEVICES=1"], "args": ["sh"]},
                "mounts": [{"destination": "/proc"}, {"destination": "/data"}],
                "hooks": {"prestart": [{"path": "nvidia-container-runtime-hook"}]},
                "x": 1
            })
        );
        // unchanged: the original itself
        let (value, _) = merged(written.clone(), original.clone(), written.clone());
        assert_eq!(value.unwrap(), original);
        // a scalar both sides changed is a conflict, named by its path
        let w = json!({"a": {"b": 2}});
        let (_, conflicts) = merged(w, json!({"a": {"b": 1}}), json!({"a": {"b": 3}}));
        assert_eq!(conflicts, vec!["/a/b".to_string()]);
    }

    #[test]
    fn arrays_of_thousands_merge_in_linear_time_with_the_same_result() {
        let rule = |i: u64| json!({"allow": false, "type": "c", "major": 7, "minor": i});
        let ours = json!({"allow": true, "type": "c", "major": 195, "minor": 0});
        let original: Vec<Value> = (0..50_000).map(rule).collect();
        let mut written = original.clone();
        written.push(ours.clone());
        let mut current = written.clone();
        current.remove(0);
        current.push(rule(99_999_999));
        let (value, conflicts) = merged(
            json!({"d": written}),
            json!({"d": original.clone()}),
            json!({"d": current}),
        );
        assert!(conflicts.is_empty());
        let mut want: Vec<Value> = original[1..].to_vec();
        want.push(rule(99_999_999));
        assert_eq!(value.unwrap(), json!({"d": want}));
    }

    #[test]
    fn array_items_match_whatever_their_key_order() {
        // `Value` equality ignores key order; so does the merge
        let added = serde_json::from_str::<Value>(r#"{"a": 1, "b": 2}"#).unwrap();
        let reordered = serde_json::from_str::<Value>(r#"{"b": 2, "a": 1}"#).unwrap();
        assert_eq!(added, reordered);
        assert_eq!(canonical(&added), canonical(&reordered));
        let (value, _) = merged(
            json!({"d": [added], "x": 1}),
            json!({"d": [], "x": 1}),
            json!({"d": [reordered, 3], "x": 1}),
        );
        assert_eq!(value.unwrap(), json!({"d": [3], "x": 1}));
    }

    #[test]
    fn owners_are_this_process_across_exec_and_nobody_else() {
        let me = Owner::this_process();
        assert!(me.is_alive() && me.start > 0);
        assert_eq!(me.to_string().parse::<Owner>(), Ok(me));
        let other = Owner {
            start: me.start + 1,
            ..me
        };
        assert!(
            !other.is_alive(),
            "same pid, other start time: another process"
        );
    }

    #[test]
    fn config_json_keeps_its_symlink_owner_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path();
        fs::create_dir(bundle.join("real")).unwrap();
        fs::write(bundle.join("real/config.json"), "{}").unwrap();
        std::os::unix::fs::symlink("real/config.json", bundle.join("config.json")).unwrap();
        fs::set_permissions(
            bundle.join("real/config.json"),
            fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        std::os::unix::fs::chown(bundle.join("real/config.json"), Some(1234), Some(5678)).ok();
        let before = fs::metadata(bundle.join("real/config.json")).unwrap();
        // a leftover of a killed rewrite is replaced, not followed
        fs::write(bundle.join("real/.config.json.nvidia-runtime-tmp"), "half").unwrap();
        write_config(bundle, b"{\"a\":1}").unwrap();
        assert!(fs::symlink_metadata(bundle.join("config.json"))
            .unwrap()
            .file_type()
            .is_symlink());
        let after = fs::metadata(bundle.join("real/config.json")).unwrap();
        assert_eq!(
            (after.uid(), after.gid(), after.mode()),
            (before.uid(), before.gid(), before.mode())
        );
        assert_eq!(
            fs::read_to_string(bundle.join("config.json")).unwrap(),
            "{\"a\":1}"
        );
        assert_eq!(fs::read_dir(bundle.join("real")).unwrap().count(), 1);
    }
}
