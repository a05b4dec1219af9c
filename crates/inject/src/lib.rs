//! GPU injection: read what a container asks for from its bundle's `config.json`, discover
//! what the host has, plan the edits and write them back atomically.
//!
//! ```text
//! request::parse(spec, config) ─┐
//! inventory::discover(roots)  ──┼─► require::check ─► plan::plan ─► rootfs (links, ld.so.cache)
//!                               └──────────────────────────────────► apply::apply ─► atomic write
//! ```
//! Everything but `rootfs` and the final write is a pure function of its inputs.
//!
//! CDI names are resolved from spec files by `cdi_request`; their edits go through
//! `cdi::apply`, and the hooks of theirs that are steps of ours (links, the ld cache, the
//! container's `/proc/driver/nvidia`) are done here in-process, as for native injection.

pub mod apply;
pub mod bundle;
pub mod cdi_hooks;
pub mod cdi_request;
pub mod cdi_spec;
pub mod config;
pub mod driver_proc;
pub mod plan;
pub mod request;
pub mod require;
pub mod rootfs;
pub mod steps;
pub mod textfile;

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

pub use bundle::{adopt, commit, write_config, BundleLock, Owner};
pub use cdi_request::CdiError;
pub use config::{Config, ConfigError};
use plan::{BindMount, Symlink};
pub use plan::{Edits, PlanError};
pub use request::{Asked, Devices, Request, RequestError};
pub use require::RequireError;
pub use rootfs::{FileKind, Rootfs, RootfsError};

/// Our files for one bundle (the image's files we replaced in its rootfs, kept until the
/// container exists; the container's `ld.so.cache` where it cannot be written into the rootfs).
/// Inside the bundle so they live exactly as long as it does, and a re-used bundle still finds
/// them.
pub const ARTIFACTS_DIR: &str = ".nvidia-runtime";

/// The container's loader cache, which we write into its rootfs.
pub(crate) const LD_SO_CACHE: &str = "/etc/ld.so.cache";
/// What `ldconfig` reads; only where the image has it is our entry in its `.d` dir worth
/// writing.
pub(crate) const LD_SO_CONF: &str = "/etc/ld.so.conf";
/// Names the injected libraries' dirs, so that an `ldconfig` run in the container (an
/// `apt-get install`) lists them again in the cache it writes. NVIDIA's toolkit writes
/// `00-nvcr-*.conf` there for the same reason; `00` puts them before the image's own dirs.
pub(crate) const LD_SO_CONF_ENTRY: &str = "/etc/ld.so.conf.d/00-nvidia-runtime.conf";

#[derive(Debug, thiserror::Error)]
pub enum InjectError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot parse {path}: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("config.json has no root.path")]
    NoRoot,
    #[error(transparent)]
    Request(#[from] RequestError),
    /// Boxed: a registry error is large, and every create returns this type.
    #[error(transparent)]
    Cdi(Box<CdiError>),
    #[error("cannot discover the NVIDIA driver: {0}")]
    Inventory(#[from] inventory::Error),
    #[error(transparent)]
    Require(#[from] RequireError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot lock bundle {path}: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "bundle {path} is being injected by another create (pid {pid}), which did not finish in \
         30 s; try again once it has"
    )]
    Busy { path: PathBuf, pid: i32 },
    #[error(
        "{path} carries the annotation {annotation} but the bundle holds no record of that \
         injection ({ARTIFACTS_DIR}/record.json): it was copied from another bundle or edited; \
         give the container its config.json from before the injection",
        annotation = apply::MARKER_ANNOTATION
    )]
    MarkerWithoutRecord { path: PathBuf },
    #[error(
        "{path} was edited after nvidia-runtime injected GPUs into it, in what the injection \
         also changed ({fields}); give the container its config.json from before the injection"
    )]
    EditedAfterInjection { path: PathBuf, fields: String },
    #[error("the injection record for {path} cannot be used: {reason}")]
    Record { path: PathBuf, reason: String },
    #[error(transparent)]
    Bundle(#[from] bundle::BundleError),
}

impl From<CdiError> for InjectError {
    fn from(err: CdiError) -> Self {
        InjectError::Cdi(Box::new(err))
    }
}

/// Microseconds spent in each stage of one injection (for the log and `hack/bench`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Timings {
    pub read_spec_us: u64,
    pub inventory_us: u64,
    pub plan_us: u64,
    pub rootfs_links_us: u64,
    pub ld_cache_us: u64,
    pub write_spec_us: u64,
    pub total_us: u64,
    /// How the driver's files were found (`None`: the cache is off).
    pub inventory_cache: Option<inventory::CacheUse>,
}

struct Stopwatch(std::time::Instant);

impl Stopwatch {
    fn start() -> Self {
        Self(std::time::Instant::now())
    }

    /// Microseconds since the last lap.
    fn lap(&mut self) -> u64 {
        let now = std::time::Instant::now();
        let elapsed = now.duration_since(self.0).as_micros() as u64;
        self.0 = now;
        elapsed
    }
}

/// What `inject_bundle` did.
#[derive(Debug)]
pub enum Outcome {
    /// The container asks for nothing: `config.json` was not rewritten.
    NotRequested,
    /// A previous `create` on this bundle injected already.
    AlreadyInjected,
    /// `config.json` was rewritten; `undo` can put the bundle back.
    Rewritten {
        summary: String,
        timings: Timings,
        undo: Box<Undo>,
    },
}

impl Outcome {
    /// What `rollback` would undo, kept by the caller until the create succeeds or fails (the
    /// same is in the bundle's record, for [`adopt`] after a re-exec).
    pub fn undo(&self) -> Option<Undo> {
        match self {
            Outcome::Rewritten { undo, .. } => Some((**undo).clone()),
            Outcome::NotRequested | Outcome::AlreadyInjected => None,
        }
    }

    /// Puts the bundle back as it was (a failed create must leave nothing behind).
    pub fn rollback(&self) {
        if let Outcome::Rewritten { undo, .. } = self {
            undo.rollback();
        }
    }
}

/// How to put a rewritten bundle back as it was. Kept in the bundle's record (see
/// `bundle.rs`), so it names nothing outside the bundle: `config.json` is the bundle's, and
/// the rootfs paths are container paths, resolved inside the rootfs that `original` names.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Undo {
    /// The bundle; never stored, always the one the record was read from.
    #[serde(skip)]
    pub bundle: PathBuf,
    /// `config.json` as it was before this create, byte for byte.
    pub original: String,
    /// SONAME links that did not exist before.
    pub created_links: Vec<PathBuf>,
    /// Paths in the rootfs that did not exist before, shallowest first: directories and mount
    /// points we or libcontainer may create; a failed create removes those still empty.
    pub new_paths: Vec<PathBuf>,
    /// Whether this create made `<bundle>/.nvidia-runtime` (else what was in it is set aside
    /// until the create commits).
    pub made_dir: bool,
    /// Files we wrote into the rootfs (the container's `ld.so.cache`, its `ld.so.conf.d`
    /// entry), in the order written, and the image's symlinks we pointed elsewhere.
    #[serde(default)]
    pub written_files: Vec<WrittenFile>,
}

/// A file we wrote into the rootfs, or a symlink of the image's we pointed at a driver
/// library, and what a failed create puts back there.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WrittenFile {
    /// Inside the rootfs.
    pub path: PathBuf,
    /// The image's own file we replaced; `None`: there was none, ours is removed.
    pub replaced: Option<SavedFile>,
    /// Set for a symlink of the image's: where it pointed (`replaced` is then `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_target: Option<String>,
}

/// A copy of an image's file, in the bundle's [`ARTIFACTS_DIR`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SavedFile {
    /// File name in the bundle's [`ARTIFACTS_DIR`].
    pub saved_as: String,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Undo {
    /// Puts the bundle back as it was before this process injected it; nothing when the
    /// pending injection in the bundle is not this process's.
    pub fn rollback(&self) {
        bundle::rollback(self);
    }
}

/// Puts back the image's file `written` replaced, or removes ours where there was none.
pub(crate) fn restore_written(rootfs: &Rootfs, artifacts: Option<&Path>, written: &WrittenFile) {
    if let Some(target) = &written.link_target {
        // Only a symlink (ours, or the image's unchanged) is replaced, an absent one made
        // again: never anything else that is there now, and no directory is made for it.
        if rootfs
            .missing(&written.path)
            .iter()
            .any(|p| *p != written.path)
        {
            return;
        }
        if let Err(err) = rootfs.symlink(&written.path, target) {
            tracing::warn!(
                "cannot point the image's {} back at {target}: {err}",
                written.path.display()
            );
        }
        return;
    }
    let Some(saved) = &written.replaced else {
        rootfs.remove_file(&written.path);
        return;
    };
    // a plain file name, so that the hand-over can never name another host file
    let copy = artifacts
        .filter(|_| !saved.saved_as.contains('/') && !saved.saved_as.starts_with('.'))
        .map(|dir| dir.join(&saved.saved_as));
    let Some(bytes) = copy.and_then(|copy| std::fs::read(copy).ok()) else {
        tracing::warn!(path = %written.path.display(), "the image's file could not be put back: its copy is gone");
        return;
    };
    if let Err(err) = rootfs.write_file(
        &written.path,
        &bytes,
        saved.mode,
        Some((saved.uid, saved.gid)),
    ) {
        tracing::warn!(
            "cannot put back the image's {}: {err}",
            written.path.display()
        );
    }
}

/// Injects what the bundle's `config.json` asks for (NVIDIA's env vars, device-list mounts,
/// CDI names): rewrites `config.json` and prepares the rootfs (SONAME links, mount points, the
/// container's `ld.so.cache`). On error the bundle is as it was. See [`inject_bundle_then`].
pub fn inject_bundle(bundle: &Path, config: &Config) -> Result<Outcome, InjectError> {
    inject_bundle_then(bundle, config, || {})
}

/// [`inject_bundle`], calling `spec_written` once the new `config.json` is in place and
/// before the rootfs work (SONAME links, mount points, the container's `ld.so.cache`), so
/// that a caller may start building the container from it meanwhile; nothing of that work
/// changes `config.json`. The bundle's lock is held until this returns, and an error after
/// `spec_written` still puts the bundle back as it was, `config.json` too: whoever read it
/// must not start the container before this returned `Ok`. Not called when nothing is
/// rewritten ([`Outcome::AlreadyInjected`], [`Outcome::NotRequested`]) or for a rewrite that
/// only removes ("hook removed, no GPU requested").
pub fn inject_bundle_then(
    bundle: &Path,
    config: &Config,
    spec_written: impl FnOnce(),
) -> Result<Outcome, InjectError> {
    let started = std::time::Instant::now();
    let mut clock = Stopwatch::start();
    let mut timings = Timings::default();
    // Held until we return: one create at a time changes a bundle, and what a killed one left
    // is undone first.
    let _lock = BundleLock::acquire_settled(bundle)?;
    let config_path = bundle.join("config.json");
    let before = std::fs::read(&config_path).map_err(|source| InjectError::Read {
        path: config_path.clone(),
        source,
    })?;
    let current: Value = serde_json::from_slice(&before).map_err(|source| InjectError::Parse {
        path: config_path.clone(),
        source,
    })?;
    // serde_json parsed it, so it is UTF-8; lossy only to keep the type honest
    let before = String::from_utf8_lossy(&before).into_owned();

    // Injected already? Only our record can say so: the marker annotation is in a file anyone
    // can write or copy, or drop. An injected config.json edited since is injected again from
    // the original with the edits, so a changed request is honoured. Without the marker, a
    // committed record still decides: a config.json edited from the one we wrote (say, with
    // its annotations dropped) is that one edited, never a fresh original — else the next
    // create would take our injection for the user's own request, and keep it for ever.
    let record = bundle::read_record(bundle)?;
    let marked = apply::already_injected(&current);
    let record = match record {
        Some(record) if marked || record.is_committed() => Some(record),
        None if marked => return Err(InjectError::MarkerWithoutRecord { path: config_path }),
        _ => None,
    };
    let (mut spec, original) = if let Some(record) = record {
        let current = record.with_our_marker(&current);
        if (marked && record.is_pending_of(&Owner::this_process())) || record.wrote(&current) {
            return Ok(Outcome::AlreadyInjected);
        }
        let spec = record.original_with_edits(&current, &config_path)?;
        tracing::info!("config.json was edited since it was injected; injecting it again");
        let text = String::from_utf8_lossy(&serialise(&spec)).into_owned();
        (spec, Some(text))
    } else {
        (current, None)
    };
    let edited = original.is_some();
    let original = original.unwrap_or_else(|| before.clone());

    let hook_removed = request::remove_gpu_hooks(&mut spec);
    let asked = request::parse(&spec, config)?;
    let resolved = match &asked {
        Some(asked) if !asked.cdi.is_empty() => cdi_request::resolve(&asked.cdi, config, &spec)?,
        _ => cdi_request::Resolved::default(),
    };
    let native = match (
        asked.as_ref().and_then(|a| a.native.clone()),
        resolved.native.clone(),
    ) {
        (None, None) => None,
        (Some(devices), None) | (None, Some(devices)) => Some(devices),
        (Some(a), Some(b)) => Some(merge_devices(a, b)),
    };
    let asked = asked.filter(|_| native.is_some() || !resolved.is_empty());
    let Some(asked) = asked else {
        if cdi_hooks::applied_driver_version(&spec).is_some() {
            // An engine applied a spec of ours: its files must still be the loaded driver's.
            let options = inventory::Options {
                capabilities: Some(Vec::new()),
                ..inventory::Options::default()
            };
            match discover(config, &options) {
                Ok((inventory, _)) => {
                    cdi_request::check_applied(&spec, Some(&inventory.driver_version))?
                }
                Err(err) => tracing::warn!("cannot check the CDI spec the engine applied: {err}"),
            }
        }
        if !hook_removed && !edited {
            return Ok(Outcome::NotRequested);
        }
        // `--gpus` with NVIDIA_VISIBLE_DEVICES=void: the hook must still go; an injected
        // config.json edited to ask for nothing: our edits must go.
        let mut undo = Undo {
            bundle: bundle.to_owned(),
            original: before,
            ..Undo::default()
        };
        bundle::begin(bundle, original, &mut undo)?;
        if let Err(err) = write_config(bundle, &serialise(&spec)) {
            bundle::restore(bundle, &undo, true);
            return Err(err);
        }
        timings.total_us = started.elapsed().as_micros() as u64;
        return Ok(Outcome::Rewritten {
            summary: "hook removed, no GPU requested".into(),
            timings,
            undo: Box::new(undo),
        });
    };
    timings.read_spec_us = clock.lap();

    // The host's driver: for native GPUs, and for CDI specs of NVIDIA's whose steps or
    // staleness need it. A CDI device of another vendor needs no NVIDIA driver at all.
    let inventory = if native.is_some() || resolved.needs_inventory {
        let options = inventory::Options {
            cuda_version: config.cuda_version,
            capabilities: Some(asked.capabilities.clone()),
        };
        let (inventory, how) = discover(config, &options)?;
        timings.inventory_cache = how;
        Some(inventory)
    } else {
        None
    };
    timings.inventory_us = clock.lap();
    cdi_request::check_fresh(&resolved, inventory.as_ref())?;
    let request = native.map(|devices| asked.request(devices));
    let mut gpus: Vec<&inventory::Gpu> = Vec::new();
    if let (Some(request), Some(inventory)) = (&request, &inventory) {
        require::check_gpus_readable(inventory, &request.devices)?;
        gpus = plan::select_gpus(inventory, &request.devices)?;
        if !request.disable_require {
            require::check(&request.requirements, &require::Host::new(inventory, &gpus))?;
        }
    }

    let rootfs_path = rootfs_path(bundle, &spec)?;
    let rootfs = Rootfs::open(&rootfs_path)?;
    rootfs.check_dev()?;
    let lib_dir = rootfs.library_dir();
    let mut edits = match (&request, &inventory) {
        (Some(request), Some(inventory)) => plan::plan(inventory, request, &gpus, &lib_dir),
        _ => Edits::default(),
    };
    // The CDI specs' steps of ours, done here as for native injection.
    let mut proc_gpus = gpus.clone();
    let wants_proc =
        cdi_request::add_steps(&resolved, inventory.as_ref(), &mut edits, &mut proc_gpus)
            || request.is_some();
    let cdi_mounts: Vec<PathBuf> = resolved
        .edits
        .mounts
        .iter()
        .map(|m| PathBuf::from(&m.container_path))
        .filter(|p| p.is_absolute())
        .collect();
    // Only a request that lists libraries gets the container's cache: a CDI device of
    // another vendor leaves the image's alone.
    let wants_ld_cache = request.is_some() || !edits.ld_cache.is_empty();
    timings.plan_us = clock.lap();

    // The pending record, before any change: config.json's original. What the rootfs work
    // will change is added to it after config.json is written, before that work begins.
    let mut undo = Undo {
        bundle: bundle.to_owned(),
        original: before,
        ..Undo::default()
    };
    bundle::begin(bundle, original, &mut undo)?;

    let rewrite = || -> Result<String, InjectError> {
        // config.json first: whoever waits for it (the runtime's create) goes on with the
        // container while the rootfs work below is done. Only the cache's way into the
        // container must be known before.
        let ld_cache = if wants_ld_cache {
            plan_ld_cache(bundle, &rootfs, &edits)?
        } else {
            LdCachePlan::Nothing
        };
        // These destinations are in the container's procfs, never in its rootfs: not among
        // the paths the rootfs work lists and makes below. Their source, our copy of the
        // module's files, is written after config.json.
        let rootfs_mounts = edits.mounts.len();
        let driver_proc = wants_proc
            .then(|| driver_proc::plan(bundle, &spec, &config.proc_root, &proc_gpus))
            .flatten()
            .map(|(mounts, copy)| {
                edits.mounts.extend(mounts);
                copy
            });
        apply::apply(&mut spec, &edits, ld_cache.mount());
        if !resolved.is_empty() {
            cdi::apply::apply(&mut spec, &resolved.edits).map_err(|source| CdiError::Apply {
                names: resolved.names.join(","),
                source,
            })?;
        }
        let summary = summarise(
            &edits,
            request
                .as_ref()
                .map(|r| r.capabilities.as_slice())
                .unwrap_or_default(),
            &resolved.names,
            ld_cache.mount().is_some(),
        );
        apply::mark(&mut spec, &summary);
        write_config(bundle, &serialise(&spec))?;
        timings.write_spec_us = clock.lap();
        spec_written();

        let changes = RootfsChanges::find(
            &rootfs,
            &edits.mounts[..rootfs_mounts],
            &edits.symlinks,
            &cdi_mounts,
            wants_ld_cache,
        )?;
        undo.new_paths = changes.new_paths;
        undo.created_links = changes.created_links;
        undo.written_files = changes.replaced_links;
        let image_links_kept = changes.image_links_kept;
        bundle::record_progress(bundle, &undo)?;
        if let Some(copy) = &driver_proc {
            copy.write()?;
        }
        let links: Vec<(&Path, &str)> = edits
            .symlinks
            .iter()
            .filter(|l| !image_links_kept.contains(&l.link))
            .map(|l| (l.link.as_path(), l.target.as_str()))
            .collect();
        let outcomes = rootfs.symlinks(&links)?;
        for (&(link, _), outcome) in links.iter().zip(outcomes) {
            if outcome == rootfs::LinkOutcome::KeptImageFile {
                tracing::debug!(link = %link.display(), "image has its own file there; kept")
            }
        }
        // The missing mount points too: libcontainer would make them in the container's init,
        // on the container's critical path; here they are made beside the runtime's re-exec.
        // (A host path that cannot be inspected is left to libcontainer, which says why.)
        let cdi_binds = resolved.edits.mounts.iter().filter(|m| {
            m.kind.as_deref() == Some("bind")
                || m.options.iter().any(|o| o == "bind" || o == "rbind")
        });
        let mount_points: Vec<(&Path, bool)> = edits
            .mounts
            .iter()
            .map(|m| (m.host.as_path(), m.container.as_path()))
            .chain(cdi_binds.map(|m| (Path::new(&m.host_path), Path::new(&m.container_path))))
            .filter(|(host, container)| {
                host.is_absolute() && undo.new_paths.iter().any(|p| p == container)
            })
            .filter_map(|(host, container)| {
                let is_dir = std::fs::metadata(host).ok()?.is_dir();
                Some((container, is_dir))
            })
            .collect();
        rootfs.mount_points(&mount_points)?;
        timings.rootfs_links_us = clock.lap();
        write_ld_cache(bundle, &rootfs, &edits, &ld_cache, &mut undo)?;
        timings.ld_cache_us = clock.lap();
        Ok(summary)
    };
    let summary = match rewrite() {
        Ok(summary) => summary,
        Err(err) => {
            bundle::restore(bundle, &undo, true);
            return Err(err);
        }
    };
    timings.total_us = started.elapsed().as_micros() as u64;
    Ok(Outcome::Rewritten {
        summary,
        timings,
        undo: Box::new(undo),
    })
}

/// What the rootfs work of an injection changes, known before anything is made, so that the
/// record covers a create killed half-way.
struct RootfsChanges {
    /// What does not exist yet where links and mounts go, shallowest first: we make the links'
    /// directories and the mount points; a failed create takes away those still empty.
    new_paths: Vec<PathBuf>,
    /// The links we make: those whose path did not exist.
    created_links: Vec<PathBuf>,
    /// The image's symlinks we point elsewhere, with their old targets, to be put back.
    replaced_links: Vec<WrittenFile>,
    /// The image's symlinks left as they are: the record (JSON) could not hold their target.
    image_links_kept: Vec<PathBuf>,
}

impl RootfsChanges {
    fn find(
        rootfs: &Rootfs,
        mounts: &[BindMount],
        symlinks: &[Symlink],
        cdi_mounts: &[PathBuf],
        wants_ld_cache: bool,
    ) -> Result<Self, InjectError> {
        let mut new_paths: Vec<PathBuf> = Vec::new();
        let destinations = mounts
            .iter()
            .map(|m| m.container.as_path())
            .chain(symlinks.iter().map(|l| l.link.as_path()))
            .chain(cdi_mounts.iter().map(PathBuf::as_path))
            .chain(wants_ld_cache.then_some(Path::new(LD_SO_CACHE)));
        for destination in destinations {
            // In a directory already found missing, nothing exists yet: no need to look (a
            // driver's dozen libraries go into one such directory of a minimal image).
            let in_missing_dir = destination
                .parent()
                .is_some_and(|parent| new_paths.iter().any(|p| p == parent));
            let missing = if in_missing_dir {
                vec![destination.to_path_buf()]
            } else {
                rootfs.missing(destination)
            };
            for path in missing {
                // each list is shallowest first, so every directory stays before what is in it
                if !new_paths.contains(&path) {
                    new_paths.push(path);
                }
            }
        }
        let created_links: Vec<PathBuf> = symlinks
            .iter()
            .filter(|l| new_paths.contains(&l.link))
            .map(|l| l.link.clone())
            .collect();
        let mut replaced_links = Vec::new();
        let mut image_links_kept: Vec<PathBuf> = Vec::new();
        for link in symlinks.iter().filter(|l| !new_paths.contains(&l.link)) {
            let Some(target) = rootfs.link_target(&link.link)? else {
                continue;
            };
            if target == link.target.as_str() {
                continue;
            }
            match target.into_string() {
                Ok(target) => replaced_links.push(WrittenFile {
                    path: link.link.clone(),
                    replaced: None,
                    link_target: Some(target),
                }),
                Err(_) => image_links_kept.push(link.link.clone()),
            }
        }
        Ok(Self {
            new_paths,
            created_links,
            replaced_links,
            image_links_kept,
        })
    }
}

/// The host's inventory, through the cache where configured (and how the cache served).
fn discover(
    config: &Config,
    options: &inventory::Options,
) -> Result<(inventory::Inventory, Option<inventory::CacheUse>), inventory::Error> {
    match &config.inventory_cache {
        Some(dir) => inventory::discover_cached(&config.roots(), options, dir)
            .map(|(inventory, how)| (inventory, Some(how))),
        None => inventory::discover_with(&config.roots(), options).map(|inv| (inv, None)),
    }
}

fn rootfs_path(bundle: &Path, spec: &Value) -> Result<PathBuf, InjectError> {
    let root = spec
        .pointer("/root/path")
        .and_then(Value::as_str)
        .ok_or(InjectError::NoRoot)?;
    Ok(bundle.join(root))
}

/// How the container gets its `/etc/ld.so.cache`: the image's own cache plus the injected
/// libraries, so that both the loader and `ldconfig -p` see them — without running ldconfig in
/// the container. Decided before `config.json` is written (a mount must be in it); the cache
/// is read, built and written into the rootfs after (see [`inject_bundle_then`]).
enum LdCachePlan {
    /// Written into the rootfs as a regular file, with an `ld.so.conf.d` entry naming the
    /// libraries' dirs, so that the container may run `ldconfig` itself (it replaces the cache
    /// by rename, which a mount point refuses with EBUSY) and still find them. What the image
    /// has there: [`FileKind::File`] (read then) or [`FileKind::Absent`].
    Write(FileKind),
    /// Where the host may not write the rootfs there (a read-only mount), or the image has a
    /// FIFO or a device node there: bind-mounted from this file, already written into the
    /// bundle.
    Mount(PathBuf),
    /// Where the image has a symlink, a directory or a file too big to copy whole there, or an
    /// `/etc` that leads nowhere inside the rootfs: nothing is written or mounted (a mount
    /// cannot go over those — libcontainer refuses to follow the link — and a write would
    /// have to go through them). Said in a warning.
    Nothing,
}

impl LdCachePlan {
    fn mount(&self) -> Option<&Path> {
        match self {
            LdCachePlan::Mount(path) => Some(path),
            _ => None,
        }
    }
}

fn warn_without_ld_cache(why: &dyn std::fmt::Display) {
    tracing::warn!(
        "the container gets no /etc/ld.so.cache from nvidia-runtime ({why}): the loader still \
         finds the injected libraries in the image's library dir, but `ldconfig -p` does not \
         list them"
    );
}

/// Decides how the container gets its cache ([`LdCachePlan`]) from what the image has at
/// `/etc/ld.so.cache` and whether the host may write there; where it is to be mounted, builds
/// it and writes the bundle's copy now. Errors: the cache cannot be built or the bundle
/// written.
fn plan_ld_cache(
    bundle: &Path,
    rootfs: &Rootfs,
    edits: &Edits,
) -> Result<LdCachePlan, InjectError> {
    let cache_path = Path::new(LD_SO_CACHE);
    let kind = match rootfs.kind(cache_path) {
        Ok(kind) => kind,
        Err(err) => {
            warn_without_ld_cache(&err);
            return Ok(LdCachePlan::Nothing);
        }
    };
    match kind {
        FileKind::Directory => {
            warn_without_ld_cache(&"the image has a directory there");
            return Ok(LdCachePlan::Nothing);
        }
        FileKind::Symlink => {
            warn_without_ld_cache(&"the image has a symbolic link there");
            return Ok(LdCachePlan::Nothing);
        }
        FileKind::Special(what) => {
            // A mount goes over a FIFO or a device node without opening it, and keeps the
            // container's loader from opening it (a FIFO would hang every program); never
            // replaced.
            tracing::warn!(
                "the image has {what} at /etc/ld.so.cache: never opened; the container's \
                 cache, listing the injected libraries only, is mounted over it"
            );
            let bytes = ld_cache_bytes(bundle, None, edits)?;
            return cache_to_mount(bundle, &bytes).map(LdCachePlan::Mount);
        }
        FileKind::Absent | FileKind::File => {}
    }
    // Only a regular file, or nothing, is there: libcontainer's mount can go over it (or make
    // its mount point) without following anything of the image's.
    if rootfs.may_write(cache_path) {
        return Ok(LdCachePlan::Write(kind));
    }
    tracing::debug!(
        "the container's ld.so.cache is mounted, not written: the host may not write it in the \
         rootfs (a read-only mount)"
    );
    let image_file = match read_image_ld_cache(rootfs, kind) {
        Ok(file) => file,
        Err(err) => {
            warn_without_ld_cache(&err);
            return Ok(LdCachePlan::Nothing);
        }
    };
    let bytes = ld_cache_bytes(bundle, image_file.as_ref(), edits)?;
    cache_to_mount(bundle, &bytes).map(LdCachePlan::Mount)
}

/// The image's `/etc/ld.so.cache` (`None`: there is none), of `kind`.
fn read_image_ld_cache(
    rootfs: &Rootfs,
    kind: FileKind,
) -> Result<Option<rootfs::FileContent>, RootfsError> {
    match kind {
        FileKind::File => rootfs.read(Path::new(LD_SO_CACHE)),
        _ => Ok(None),
    }
}

/// The container's cache: the image's (`image_file`) with the injected libraries, serialised.
fn ld_cache_bytes(
    bundle: &Path,
    image_file: Option<&rootfs::FileContent>,
    edits: &Edits,
) -> Result<Vec<u8>, InjectError> {
    let cache = image_ld_cache(image_file.map(|f| f.bytes.as_slice()));
    with_entries(cache, &edits.ld_cache).map_err(|err| InjectError::Write {
        path: bundle.join(ARTIFACTS_DIR).join("ld.so.cache"),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, err),
    })
}

/// Where the plan says so, reads the image's cache, adds the injected libraries and writes the
/// result into the rootfs, then the `ld.so.conf.d` entry. Where the image's cache cannot be
/// read whole (over 64 MiB), or the rootfs refuses the write after all (a file system that
/// refuses root, or whatever came in the way since the plan), the container gets no cache of
/// ours, with a warning: `config.json`, already written, has no mount for it.
fn write_ld_cache(
    bundle: &Path,
    rootfs: &Rootfs,
    edits: &Edits,
    plan: &LdCachePlan,
    undo: &mut Undo,
) -> Result<(), InjectError> {
    let LdCachePlan::Write(kind) = *plan else {
        return Ok(());
    };
    let cache_path = Path::new(LD_SO_CACHE);
    let image_file = match read_image_ld_cache(rootfs, kind) {
        Ok(file) => file,
        Err(err) => {
            warn_without_ld_cache(&err);
            return Ok(());
        }
    };
    let bytes = ld_cache_bytes(bundle, image_file.as_ref(), edits)?;
    match write_into_rootfs(
        bundle,
        rootfs,
        cache_path,
        &bytes,
        image_file.as_ref(),
        undo,
    ) {
        Ok(()) => write_ld_so_conf_entry(bundle, rootfs, edits, undo),
        Err(WriteIn::Bundle(err)) => return Err(err),
        // Something in the way on the path (an `/etc` that is a symlink out of the rootfs, or
        // a file), or a rootfs that refuses the write.
        Err(WriteIn::Rootfs(err)) => warn_without_ld_cache(&err),
    }
    Ok(())
}

/// The image's `/etc/ld.so.cache` as read (`None`: it has none); an unreadable one is
/// ignored, with a warning, as the loader ignores it.
pub(crate) fn image_ld_cache(bytes: Option<&[u8]>) -> ldcache::Cache {
    match bytes {
        // The empty mount point libcontainer left for our cache when an earlier version
        // started this rootfs (a restarted container): the image had no cache of its own.
        Some([]) | None => ldcache::Cache::new(),
        Some(bytes) => ldcache::Cache::parse(bytes).unwrap_or_else(|err| {
            tracing::warn!("ignoring the image's unreadable /etc/ld.so.cache: {err}");
            ldcache::Cache::new()
        }),
    }
}

/// `cache` with `entries` (name, path in the container) added as x86-64 libc6 libraries,
/// serialised.
pub(crate) fn with_entries(
    mut cache: ldcache::Cache,
    entries: &[(String, PathBuf)],
) -> Result<Vec<u8>, ldcache::Error> {
    for (name, path) in entries {
        cache.insert(ldcache::Entry::new(
            name.clone(),
            path.clone(),
            ldcache::FLAG_X86_64_LIBC6,
        ));
    }
    cache.try_to_bytes()
}

/// The text of our `ld.so.conf.d` entry naming `dirs`.
pub(crate) fn ld_so_conf_text<'a>(dirs: impl IntoIterator<Item = &'a Path>) -> String {
    let mut text =
        String::from("# The NVIDIA driver libraries nvidia-runtime put in this container\n");
    for dir in dirs {
        text.push_str(&dir.to_string_lossy());
        text.push('\n');
    }
    text
}

/// Writes the container's cache into the bundle, to be bind-mounted over its
/// `/etc/ld.so.cache`: returns that file.
fn cache_to_mount(bundle: &Path, bytes: &[u8]) -> Result<PathBuf, InjectError> {
    let dir = create_artifacts_dir(bundle)?;
    let path = dir.join("ld.so.cache");
    std::fs::write(&path, bytes).map_err(|source| InjectError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

enum WriteIn {
    Bundle(InjectError),
    Rootfs(RootfsError),
}

/// Our directory in the bundle: a real one of ours (never followed elsewhere), not listable
/// by others; the copies of the image's files in it are 0600, whatever their mode was.
fn create_artifacts_dir(bundle: &Path) -> Result<PathBuf, InjectError> {
    bundle::create_artifacts_dir(bundle)
}

/// Writes `bytes` at `path` in the rootfs; the image's file it replaces is first copied to
/// the bundle, and both are recorded in `undo`.
fn write_into_rootfs(
    bundle: &Path,
    rootfs: &Rootfs,
    path: &Path,
    bytes: &[u8],
    replaced: Option<&rootfs::FileContent>,
    undo: &mut Undo,
) -> Result<(), WriteIn> {
    let saved = match replaced {
        None => None,
        Some(file) => {
            let dir = create_artifacts_dir(bundle).map_err(WriteIn::Bundle)?;
            let saved_as = format!(
                "image-{}",
                path.file_name().unwrap_or_default().to_string_lossy()
            );
            let copy = dir.join(&saved_as);
            // Readable by root only: the image's file may be one only root may read, and the
            // bundle is often readable by all. Made anew, so an older copy's mode is not kept.
            let _ = std::fs::remove_file(&copy);
            let written = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&copy)
                .and_then(|mut out| std::io::Write::write_all(&mut out, &file.bytes));
            written.map_err(|source| {
                WriteIn::Bundle(InjectError::Write {
                    path: copy.clone(),
                    source,
                })
            })?;
            Some(SavedFile {
                saved_as,
                mode: file.mode,
                uid: file.uid,
                gid: file.gid,
            })
        }
    };
    for missing in rootfs.missing(path) {
        if !undo.new_paths.contains(&missing) {
            undo.new_paths.push(missing);
        }
    }
    let (mode, owner) = match &saved {
        Some(saved) => (saved.mode, Some((saved.uid, saved.gid))),
        None => (0o644, None),
    };
    // Recorded before the write, so a create killed in between is undone by the next one:
    // putting back the saved copy over an unchanged file, or removing an absent one, is harmless.
    undo.written_files.push(WrittenFile {
        path: path.to_owned(),
        replaced: saved.clone(),
        link_target: None,
    });
    bundle::record_progress(bundle, undo).map_err(WriteIn::Bundle)?;
    if let Err(err) = rootfs.write_file(path, bytes, mode, owner) {
        undo.written_files.pop();
        // Nothing was written: a later undo must not put anything there either.
        let _ = bundle::record_progress(bundle, undo);
        if let Some(saved) = &saved {
            let _ = std::fs::remove_file(bundle.join(ARTIFACTS_DIR).join(&saved.saved_as));
        }
        return Err(WriteIn::Rootfs(err));
    }
    Ok(())
}

/// The `ld.so.conf.d` entry naming the injected libraries' dirs, where the image has an
/// `ld.so.conf` to read it; best effort: without it only a later `ldconfig` misses them.
fn write_ld_so_conf_entry(bundle: &Path, rootfs: &Rootfs, edits: &Edits, undo: &mut Undo) {
    let mut dirs: Vec<&Path> = Vec::new();
    for (_, path) in &edits.ld_cache {
        if let Some(dir) = path.parent() {
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    if dirs.is_empty() || rootfs.kind(Path::new(LD_SO_CONF)).ok() != Some(FileKind::File) {
        return;
    }
    let text = ld_so_conf_text(dirs);
    let entry = Path::new(LD_SO_CONF_ENTRY);
    let existing = match rootfs.read(entry) {
        Ok(existing) => existing,
        Err(err) => {
            tracing::debug!("no ld.so.conf.d entry: {err}");
            return;
        }
    };
    if existing
        .as_ref()
        .is_some_and(|file| file.bytes == text.as_bytes())
    {
        return;
    }
    match write_into_rootfs(
        bundle,
        rootfs,
        entry,
        text.as_bytes(),
        existing.as_ref(),
        undo,
    ) {
        Ok(()) => {}
        Err(WriteIn::Bundle(err)) => tracing::debug!("no ld.so.conf.d entry: {err}"),
        Err(WriteIn::Rootfs(err)) => tracing::debug!("no ld.so.conf.d entry: {err}"),
    }
}

/// `cache_mounted`: the container's ld.so.cache is mounted from the bundle (the rootfs could
/// not take it), one more mount than the edits list.
fn summarise(
    edits: &Edits,
    capabilities: &[inventory::Capability],
    cdi: &[String],
    cache_mounted: bool,
) -> String {
    let gpus: Vec<String> = edits.gpu_indices.iter().map(u32::to_string).collect();
    let caps: Vec<&str> = capabilities.iter().map(|c| c.as_str()).collect();
    let mut summary = format!(
        "gpus={} capabilities={} devices={} mounts={}",
        if gpus.is_empty() {
            "none".into()
        } else {
            gpus.join(",")
        },
        caps.join(","),
        edits.devices.len(),
        edits.mounts.len() + usize::from(cache_mounted)
    );
    if !cdi.is_empty() {
        summary.push_str(" cdi=");
        summary.push_str(&cdi.join(","));
    }
    summary
}

/// Both lists of GPUs (a native list and `nvidia.com/gpu` names without a spec).
fn merge_devices(a: Devices, b: Devices) -> Devices {
    match (a, b) {
        (Devices::All, _) | (_, Devices::All) => Devices::All,
        (Devices::NoGpus, other) | (other, Devices::NoGpus) => other,
        (Devices::List(mut a), Devices::List(b)) => {
            a.extend(b);
            Devices::List(a)
        }
    }
}

fn serialise(spec: &Value) -> Vec<u8> {
    serde_json::to_vec(spec).expect("a serde_json::Value always serialises")
}
