//! The CDI devices a host offers: every spec file of the spec dirs, indexed by qualified name.
//!
//! Rules (CDI spec and the reference implementation's cache): the files of a dir are `*.json`,
//! `*.yaml` (and here also `*.yml`), read in name order, not recursively; a later dir has
//! priority over an earlier one, so a name defined in `/var/run/cdi` shadows the same name in
//! `/etc/cdi`; two files of the dir with the highest priority for a name both defining it is a
//! conflict, which makes that name unusable (both files are reported). A broken file is
//! reported and skipped; it never hides the others. A missing dir is an empty one.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::cache::{Fingerprint, SpecCache};
use crate::error::SpecError;
use crate::name::QualifiedName;
use crate::spec::{ContainerEdits, Spec, MAX_SPEC_BYTES};

/// The spec dirs runtimes read by default, lowest priority first (CDI reference
/// implementation): static specs, then specs generated at boot.
pub const DEFAULT_SPEC_DIRS: [&str; 2] = ["/etc/cdi", "/var/run/cdi"];

/// Most spec files read over all dirs; the rest are reported, not read.
pub const MAX_SPEC_FILES: usize = 4096;

/// Most bytes read over all spec files; the files past it are reported, not read.
pub const MAX_TOTAL_SPEC_BYTES: u64 = 256 << 20;

/// Why the registry could not read a file or dir, or could not resolve a device.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A spec file that does not parse or breaks the spec's rules.
    #[error(transparent)]
    Spec(#[from] SpecError),

    #[error("cannot read CDI spec {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("cannot list CDI spec dir {}", dir.display())]
    ReadDir {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A `*.json`/`*.yaml`/`*.yml` entry that is not a regular file (or a symlink to one).
    #[error("CDI spec {} is not a regular file ({kind}); only regular files and symlinks to them are read", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },

    /// [`MAX_SPEC_FILES`] or [`MAX_TOTAL_SPEC_BYTES`] reached; `skipped` files were not read.
    #[error(
        "CDI spec dirs hold more than {limit}; {} and {} more files were not read: remove stale specs",
        first.display(), skipped - 1
    )]
    TooMuch {
        limit: String,
        first: PathBuf,
        skipped: usize,
    },

    /// Several files of one dir define the same device: it is unusable until one goes.
    #[error(
        "CDI device {name} is defined by {}: remove or rename all but one (the device is unusable until then)",
        join_paths(paths)
    )]
    Conflict {
        name: QualifiedName,
        paths: Vec<PathBuf>,
    },

    /// No spec defines the requested kind.
    #[error(
        "no CDI spec defines kind {} (requested as {name}); specs are read from {}{}: \
         generate one (nvidia-runtime cdi generate) or fix the name",
        name.kind(),
        join_paths(dirs),
        broken_note(broken)
    )]
    UnknownKind {
        name: QualifiedName,
        dirs: Vec<PathBuf>,
        broken: Vec<PathBuf>,
    },

    /// The kind exists but not the device.
    #[error(
        "no CDI device {name}; {} has {}{}: request one of these, or regenerate the spec if \
         the device is new",
        name.kind(), known.join(", "), broken_note(broken)
    )]
    UnknownDevice {
        name: QualifiedName,
        known: Vec<String>,
        broken: Vec<PathBuf>,
    },
}

fn join_paths(paths: &[PathBuf]) -> String {
    let v: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    v.join(", ")
}

fn broken_note(broken: &[PathBuf]) -> String {
    if broken.is_empty() {
        String::new()
    } else {
        format!(
            " (spec files refused: {}; see nvidia-runtime cdi list)",
            join_paths(broken)
        )
    }
}

/// One device a request resolved to, with everything needed to apply it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedDevice {
    pub name: QualifiedName,
    /// The spec file that defines it.
    pub spec_path: PathBuf,
    /// The spec-level `containerEdits`: apply once per spec, however many of its devices are
    /// requested (see [`Registry::edits_for`]).
    pub spec_edits: ContainerEdits,
    /// The device's own `containerEdits`.
    pub device_edits: ContainerEdits,
    /// The spec's `annotations` (information for the consumer; they change nothing).
    pub spec_annotations: BTreeMap<String, String>,
    /// The device's `annotations`.
    pub device_annotations: BTreeMap<String, String>,
}

#[derive(Debug)]
struct Loaded {
    path: PathBuf,
    /// Index of the dir in [`Registry::dirs`]; higher wins.
    priority: usize,
    spec: Spec,
}

/// The devices of a set of spec dirs, read once (no watching: a runtime process lives for one
/// container operation).
#[derive(Debug, Default)]
pub struct Registry {
    dirs: Vec<PathBuf>,
    specs: Vec<Loaded>,
    /// Usable names: (index in `specs`, index of the device in its spec).
    devices: BTreeMap<QualifiedName, (usize, usize)>,
    /// Names defined twice in their highest-priority dir, with the files.
    conflicts: BTreeMap<QualifiedName, Vec<PathBuf>>,
    errors: Vec<RegistryError>,
    /// Specs taken from the parse cache, and stored into it.
    cache_hits: usize,
    cache_stored: usize,
}

impl Registry {
    /// Reads the spec dirs, lowest priority first (e.g. [`DEFAULT_SPEC_DIRS`]). Never fails as
    /// a whole: what could not be read is in [`Registry::errors`].
    pub fn load(dirs: &[PathBuf]) -> Registry {
        Registry::load_inner(dirs, None)
    }

    /// [`Registry::load`], taking each spec file's parsed spec from `cache_dir` while the file
    /// is unchanged, and storing those parsed anew (see [`crate::cache`]; entries live in its
    /// [`crate::cache::SUBDIR`]). The result is what [`Registry::load`] gives; only the time
    /// differs. A cache dir that is missing, not a private directory of this user, or not
    /// writable is not used (logged at debug level).
    pub fn load_cached(dirs: &[PathBuf], cache_dir: &Path) -> Registry {
        Registry::load_inner(dirs, Some(SpecCache::new(cache_dir, crate::cache::SETTLE)))
    }

    pub(crate) fn load_inner(dirs: &[PathBuf], mut cache: Option<SpecCache>) -> Registry {
        let mut reg = Registry::default();
        for dir in dirs {
            if !reg.dirs.contains(dir) {
                reg.dirs.push(dir.clone());
            }
        }
        let mut budget = Budget {
            files: 0,
            bytes: 0,
            over: None,
        };
        for priority in 0..reg.dirs.len() {
            let dir = reg.dirs[priority].clone();
            for path in reg.list_dir(&dir) {
                if let Some(over) = &mut budget.over {
                    over.1 += 1;
                    continue;
                }
                if budget.files >= MAX_SPEC_FILES {
                    budget.over = Some((format!("{MAX_SPEC_FILES} spec files"), 1, path));
                    continue;
                }
                budget.files += 1;
                match read_spec_file(
                    &path,
                    MAX_TOTAL_SPEC_BYTES,
                    &mut budget.bytes,
                    cache.as_mut(),
                ) {
                    Ok(Some(spec)) => reg.specs.push(Loaded {
                        path,
                        priority,
                        spec,
                    }),
                    Ok(None) => {
                        budget.over = Some((
                            format!("{} MiB of specs", MAX_TOTAL_SPEC_BYTES >> 20),
                            1,
                            path,
                        ));
                    }
                    Err(e) => reg.errors.push(e),
                }
            }
        }
        if let Some((limit, skipped, first)) = budget.over {
            reg.errors.push(RegistryError::TooMuch {
                limit,
                first,
                skipped,
            });
        }
        if let Some(cache) = cache {
            reg.cache_hits = cache.hits;
            reg.cache_stored = cache.stored;
        }
        reg.index();
        reg
    }

    /// How many specs came from the parse cache and how many were stored into it during the
    /// load (both 0 for [`Registry::load`]).
    pub fn cache_use(&self) -> (usize, usize) {
        (self.cache_hits, self.cache_stored)
    }

    /// [`Registry::load`] of [`DEFAULT_SPEC_DIRS`].
    pub fn load_default() -> Registry {
        let dirs: Vec<PathBuf> = DEFAULT_SPEC_DIRS.iter().map(PathBuf::from).collect();
        Registry::load(&dirs)
    }

    /// The spec file paths of `dir` (`*.json`, `*.yaml`, `*.yml`), by name. Subdirs are not
    /// entered.
    fn list_dir(&mut self, dir: &Path) -> Vec<PathBuf> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Vec::new(),
            Err(source) => {
                self.errors.push(RegistryError::ReadDir {
                    dir: dir.to_owned(),
                    source,
                });
                return Vec::new();
            }
        };
        let mut paths = Vec::new();
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(source) => {
                    self.errors.push(RegistryError::ReadDir {
                        dir: dir.to_owned(),
                        source,
                    });
                    break;
                }
            };
            let path = entry.path();
            let is_spec = matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("json" | "yaml" | "yml")
            );
            if is_spec && !entry.file_type().is_ok_and(|t| t.is_dir()) {
                paths.push(path);
            }
        }
        paths.sort();
        paths
    }

    fn index(&mut self) {
        // name -> every definition (spec index, device index)
        let mut all: BTreeMap<QualifiedName, Vec<(usize, usize)>> = BTreeMap::new();
        for (si, loaded) in self.specs.iter().enumerate() {
            let Some((vendor, class)) = loaded.spec.vendor_class() else {
                continue;
            };
            for (di, device) in loaded.spec.devices.iter().enumerate() {
                let name = QualifiedName::new(vendor, class, &device.name);
                all.entry(name).or_default().push((si, di));
            }
        }
        for (name, defs) in all {
            let top = defs
                .iter()
                .map(|&(si, _)| self.specs[si].priority)
                .max()
                .unwrap_or(0);
            let winners: Vec<(usize, usize)> = defs
                .iter()
                .copied()
                .filter(|&(si, _)| self.specs[si].priority == top)
                .collect();
            if winners.len() > 1 {
                let paths: Vec<PathBuf> = winners
                    .iter()
                    .map(|&(si, _)| self.specs[si].path.clone())
                    .collect();
                self.errors.push(RegistryError::Conflict {
                    name: name.clone(),
                    paths: paths.clone(),
                });
                self.conflicts.insert(name, paths);
                continue;
            }
            for &(si, _) in defs
                .iter()
                .filter(|&&(si, _)| self.specs[si].priority != top)
            {
                tracing::debug!(
                    "CDI device {name} of {} is shadowed by {}",
                    self.specs[si].path.display(),
                    self.specs[winners[0].0].path.display()
                );
            }
            self.devices.insert(name, winners[0]);
        }
    }

    /// The dirs read, lowest priority first (duplicates removed).
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// What could not be read or indexed: broken or unreadable files, unlistable dirs,
    /// conflicting definitions, limits reached. Empty when all is well.
    pub fn errors(&self) -> &[RegistryError] {
        &self.errors
    }

    /// Every usable device, by name, with the file that defines it.
    pub fn devices(&self) -> Vec<(QualifiedName, PathBuf)> {
        self.devices
            .iter()
            .map(|(name, &(si, _))| (name.clone(), self.specs[si].path.clone()))
            .collect()
    }

    /// Every spec read and valid, with its path, in reading order.
    pub fn specs(&self) -> impl Iterator<Item = (&Path, &Spec)> {
        self.specs.iter().map(|l| (l.path.as_path(), &l.spec))
    }

    /// Looks the names up, in request order; a name asked twice is returned once.
    ///
    /// Errors: the first name that is unknown ([`RegistryError::UnknownKind`],
    /// [`RegistryError::UnknownDevice`], listing what exists) or unusable
    /// ([`RegistryError::Conflict`]).
    pub fn resolve(&self, names: &[QualifiedName]) -> Result<Vec<ResolvedDevice>, RegistryError> {
        let mut out: Vec<ResolvedDevice> = Vec::with_capacity(names.len());
        for name in names {
            if out.iter().any(|d| &d.name == name) {
                continue;
            }
            let &(si, di) = self
                .devices
                .get(name)
                .ok_or_else(|| self.unresolved(name))?;
            let loaded = &self.specs[si];
            let device = &loaded.spec.devices[di];
            out.push(ResolvedDevice {
                name: name.clone(),
                spec_path: loaded.path.clone(),
                spec_edits: loaded.spec.container_edits.clone(),
                device_edits: device.container_edits.clone(),
                spec_annotations: loaded.spec.annotations.clone(),
                device_annotations: device.annotations.clone(),
            });
        }
        Ok(out)
    }

    /// The merged edits of the named devices, as a runtime applies them: in request order, each
    /// spec's own edits once, just before the first of its devices, then the device's edits
    /// (see [`ContainerEdits::append`]). Also returns the spec files used, in that order.
    ///
    /// Errors: as [`Registry::resolve`].
    pub fn edits_for(
        &self,
        names: &[QualifiedName],
    ) -> Result<(ContainerEdits, Vec<PathBuf>), RegistryError> {
        // What `resolve` gives, without its copies of every device's spec edits: only the
        // edits applied are copied, once (a generated spec's edits are most of it).
        let mut edits = ContainerEdits::default();
        let mut used: Vec<usize> = Vec::new();
        for (i, name) in names.iter().enumerate() {
            if names[..i].contains(name) {
                continue;
            }
            let &(si, di) = self
                .devices
                .get(name)
                .ok_or_else(|| self.unresolved(name))?;
            let spec = &self.specs[si].spec;
            if !used.contains(&si) {
                edits.append(&spec.container_edits);
                used.push(si);
            }
            edits.append(&spec.devices[di].container_edits);
        }
        let used = used.iter().map(|&si| self.specs[si].path.clone()).collect();
        Ok((edits, used))
    }

    fn unresolved(&self, name: &QualifiedName) -> RegistryError {
        if let Some(paths) = self.conflicts.get(name) {
            return RegistryError::Conflict {
                name: name.clone(),
                paths: paths.clone(),
            };
        }
        let known: BTreeSet<String> = self
            .devices
            .keys()
            .chain(self.conflicts.keys())
            .filter(|q| q.vendor == name.vendor && q.class == name.class)
            .map(|q| q.to_string())
            .collect();
        let broken: Vec<PathBuf> = self
            .errors
            .iter()
            .filter_map(|e| match e {
                RegistryError::Spec(s) => s.path().map(Path::to_path_buf),
                RegistryError::Read { path, .. } | RegistryError::NotRegular { path, .. } => {
                    Some(path.clone())
                }
                _ => None,
            })
            .collect();
        if known.is_empty() {
            RegistryError::UnknownKind {
                name: name.clone(),
                dirs: self.dirs.clone(),
                broken,
            }
        } else {
            RegistryError::UnknownDevice {
                name: name.clone(),
                known: known.into_iter().collect(),
                broken,
            }
        }
    }
}

struct Budget {
    files: usize,
    bytes: u64,
    /// (limit reached, files skipped, first file skipped)
    over: Option<(String, usize, PathBuf)>,
}

/// Reads and validates one spec file, adding the bytes read to `used` (broken files count
/// too). `Ok(None)` when that would pass `limit`. With a `cache`, an unchanged file's spec
/// comes from there (its size still counts), and a valid one parsed anew goes there.
fn read_spec_file(
    path: &Path,
    limit: u64,
    used: &mut u64,
    mut cache: Option<&mut SpecCache>,
) -> Result<Option<Spec>, RegistryError> {
    let read_err = |source| RegistryError::Read {
        path: path.to_owned(),
        source,
    };
    // Follows a symlink; refuses FIFOs, devices and sockets before opening them (opening a
    // FIFO would block, opening a device may act on it).
    let meta = fs::metadata(path).map_err(read_err)?;
    if !meta.is_file() {
        return Err(RegistryError::NotRegular {
            path: path.to_owned(),
            kind: file_kind(&meta),
        });
    }
    if let Some(spec) = cache
        .as_mut()
        .and_then(|c| c.get(path, &Fingerprint::of(&meta)))
    {
        // A stored spec parsed, so its file was within MAX_SPEC_BYTES.
        if *used + meta.len() > limit {
            return Ok(None);
        }
        *used += meta.len();
        return Ok(Some(spec));
    }
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(read_err)?;
    // The entry may have been swapped since the check: judge what was opened.
    let meta = file.metadata().map_err(read_err)?;
    if !meta.is_file() {
        return Err(RegistryError::NotRegular {
            path: path.to_owned(),
            kind: file_kind(&meta),
        });
    }
    let mut bytes = Vec::with_capacity(meta.len().min(MAX_SPEC_BYTES as u64) as usize);
    file.take(MAX_SPEC_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    let size = bytes.len() as u64;
    if *used + size > limit {
        return Ok(None);
    }
    *used += size;
    let spec = Spec::parse(&bytes, path)?;
    if let Some(cache) = cache {
        // `meta` is from before the read: a change during it shows as a mismatch later.
        cache.put(path, &Fingerprint::of(&meta), &spec);
    }
    Ok(Some(spec))
}

fn file_kind(meta: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() || t.is_block_device() {
        "a device node"
    } else {
        "not a file"
    }
}

impl fmt::Display for ResolvedDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.spec_path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn spec(kind: &str, devices: &[&str], global_env: &str) -> String {
        let devs: Vec<String> = devices
            .iter()
            .map(|d| format!(r#"{{"name":"{d}","containerEdits":{{"env":["DEV={d}"]}}}}"#))
            .collect();
        format!(
            r#"{{"cdiVersion":"0.6.0","kind":"{kind}","devices":[{}],"containerEdits":{{"env":["{global_env}"]}}}}"#,
            devs.join(",")
        )
    }

    fn q(s: &str) -> QualifiedName {
        QualifiedName::parse(s).unwrap()
    }

    #[test]
    fn later_dirs_win_and_broken_files_do_not_hide_others() {
        let etc = tempfile::tempdir().unwrap();
        let run = tempfile::tempdir().unwrap();
        fs::write(
            etc.path().join("nvidia.json"),
            spec("nvidia.com/gpu", &["0", "1"], "G=etc"),
        )
        .unwrap();
        fs::write(run.path().join("nvidia.yaml"), "cdiVersion: 0.6.0\nkind: nvidia.com/gpu\ndevices:\n- name: \"1\"\n  containerEdits: {env: [DEV=run1]}\ncontainerEdits: {env: [G=run]}\n").unwrap();
        fs::write(
            run.path().join("broken.yaml"),
            "cdiVersion: 0.6.0\nkind: x.com/y\nbogus: 1\n",
        )
        .unwrap();
        fs::write(run.path().join("notes.txt"), "not a spec").unwrap();
        let missing = etc.path().join("missing");
        let reg = Registry::load(&[etc.path().into(), missing, run.path().into()]);

        assert_eq!(reg.errors().len(), 1, "{:?}", reg.errors());
        let msg = reg.errors()[0].to_string();
        assert!(
            msg.contains("broken.yaml") && msg.contains("bogus"),
            "{msg}"
        );

        let names: Vec<String> = reg.devices().iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(names, ["nvidia.com/gpu=0", "nvidia.com/gpu=1"]);
        let got = reg
            .resolve(&[
                q("nvidia.com/gpu=1"),
                q("nvidia.com/gpu=0"),
                q("nvidia.com/gpu=1"),
            ])
            .unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].spec_path, run.path().join("nvidia.yaml"));
        assert_eq!(got[0].device_edits.env, ["DEV=run1"]);
        assert_eq!(got[1].spec_path, etc.path().join("nvidia.json"));

        let (edits, used) = reg
            .edits_for(&[q("nvidia.com/gpu=1"), q("nvidia.com/gpu=0")])
            .unwrap();
        assert_eq!(edits.env, ["G=run", "DEV=run1", "G=etc", "DEV=0"]);
        assert_eq!(
            used,
            [
                run.path().join("nvidia.yaml"),
                etc.path().join("nvidia.json")
            ]
        );
    }

    #[test]
    fn spec_edits_once_per_spec() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("a.json"),
            spec("nvidia.com/gpu", &["0", "1", "2"], "G=1"),
        )
        .unwrap();
        let reg = Registry::load(&[dir.path().into()]);
        let (edits, used) = reg
            .edits_for(&[q("nvidia.com/gpu=2"), q("nvidia.com/gpu=0")])
            .unwrap();
        assert_eq!(edits.env, ["G=1", "DEV=2", "DEV=0"]);
        assert_eq!(used.len(), 1);
    }

    #[test]
    fn same_dir_conflict_makes_the_name_unusable() {
        let dir = tempfile::tempdir().unwrap();
        let high = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("a.json"),
            spec("nvidia.com/gpu", &["0", "1"], "G=a"),
        )
        .unwrap();
        fs::write(
            dir.path().join("b.json"),
            spec("nvidia.com/gpu", &["1", "2"], "G=b"),
        )
        .unwrap();
        // A conflict shadowed by a higher dir is none.
        fs::write(
            dir.path().join("c.json"),
            spec("nvidia.com/gpu", &["2"], "G=c"),
        )
        .unwrap();
        fs::write(
            high.path().join("d.json"),
            spec("nvidia.com/gpu", &["2"], "G=d"),
        )
        .unwrap();
        let reg = Registry::load(&[dir.path().into(), high.path().into()]);

        // gpu=2 is defined twice in the low dir, but the high dir's wins: no conflict.
        assert_eq!(reg.errors().len(), 1, "{:?}", reg.errors());
        let conflict = reg
            .errors()
            .iter()
            .find(|e| e.to_string().contains("gpu=1"))
            .unwrap()
            .to_string();
        assert!(
            conflict.contains("a.json") && conflict.contains("b.json"),
            "{conflict}"
        );
        assert!(reg.resolve(&[q("nvidia.com/gpu=0")]).is_ok());
        assert_eq!(
            reg.resolve(&[q("nvidia.com/gpu=2")]).unwrap()[0].spec_path,
            high.path().join("d.json")
        );
        let err = reg.resolve(&[q("nvidia.com/gpu=1")]).unwrap_err();
        assert!(matches!(err, RegistryError::Conflict { .. }), "{err}");
        // The name is listed nowhere as usable.
        assert!(!reg.devices().iter().any(|(n, _)| n.name == "1"));
    }

    #[test]
    fn unknown_names_say_what_exists() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("a.json"),
            spec("nvidia.com/gpu", &["0", "all"], "G=a"),
        )
        .unwrap();
        let reg = Registry::load(&[dir.path().into()]);
        let err = reg
            .resolve(&[q("nvidia.com/gpu=7")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("nvidia.com/gpu=0, nvidia.com/gpu=all"),
            "{err}"
        );
        let err = reg.resolve(&[q("amd.com/gpu=0")]).unwrap_err().to_string();
        assert!(
            err.contains("no CDI spec defines kind amd.com/gpu"),
            "{err}"
        );
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
    }

    #[test]
    fn symlinks_only_to_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let target = elsewhere.path().join("real.json");
        fs::write(&target, spec("nvidia.com/gpu", &["0"], "G=a")).unwrap();
        symlink(&target, dir.path().join("link.json")).unwrap();
        symlink("/dev/null", dir.path().join("null.json")).unwrap();
        symlink(elsewhere.path(), dir.path().join("dir.json")).unwrap();
        symlink("/nonexistent/x", dir.path().join("dangling.yaml")).unwrap();
        fs::create_dir(dir.path().join("subdir.json")).unwrap();
        let fifo = dir.path().join("fifo.yaml");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);

        let reg = Registry::load(&[dir.path().into()]);
        assert_eq!(reg.devices().len(), 1);
        let errs: Vec<String> = reg.errors().iter().map(|e| e.to_string()).collect();
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert!(
            errs.iter()
                .any(|e| e.contains("null.json") && e.contains("device node")),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.contains("dir.json") && e.contains("directory")),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.contains("fifo.yaml") && e.contains("FIFO")),
            "{errs:?}"
        );
        assert!(errs.iter().any(|e| e.contains("dangling.yaml")), "{errs:?}");
    }

    #[test]
    fn oversized_file_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let mut big = spec("nvidia.com/gpu", &["0"], "G=a");
        big.push_str(&" ".repeat(MAX_SPEC_BYTES));
        fs::write(dir.path().join("big.json"), big).unwrap();
        let reg = Registry::load(&[dir.path().into()]);
        let err = reg.errors()[0].to_string();
        assert!(
            err.contains("big.json") && err.contains("more than"),
            "{err}"
        );
    }

    #[test]
    fn file_count_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..MAX_SPEC_FILES + 3 {
            let body = spec(&format!("v.com/c{i}"), &["0"], "G=1");
            fs::write(dir.path().join(format!("s{i:05}.json")), body).unwrap();
        }
        let reg = Registry::load(&[dir.path().into()]);
        assert_eq!(reg.devices().len(), MAX_SPEC_FILES);
        let errs: Vec<String> = reg.errors().iter().map(|e| e.to_string()).collect();
        assert_eq!(errs.len(), 1, "{errs:?}");
        let want = format!("s{MAX_SPEC_FILES:05}.json and 2 more files were not read");
        assert!(errs[0].contains(&want), "{errs:?}");
    }
}
