//! GPU injection: read what a container asks for from its bundle's `config.json`, discover
//! what the host has, plan the edits and write them back atomically.
//!
//! ```text
//! request::parse(spec, config) ─┐
//! inventory::discover(roots)  ──┼─► require::check ─► plan::plan ─► rootfs (links, ld.so.cache)
//!                               └──────────────────────────────────► apply::apply ─► atomic write
//! ```
//! Everything but `rootfs` and the final write is a pure function of its inputs.

pub mod apply;
pub mod config;
pub mod driver_proc;
pub mod plan;
pub mod request;
pub mod require;
pub mod rootfs;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

pub use config::{Config, ConfigError};
pub use plan::{Edits, PlanError};
pub use request::{Devices, Request, RequestError};
pub use require::RequireError;
pub use rootfs::{Rootfs, RootfsError};

/// Our files for one bundle (the container's generated `ld.so.cache`). Inside the bundle so
/// they live exactly as long as it does, and a re-used bundle still finds them.
pub const ARTIFACTS_DIR: &str = ".nvidia-runtime";

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
    /// What `rollback` would undo, as data: the runtime hands it to its sealed re-exec, which
    /// creates the container (see the binary's `protect.rs`).
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

/// How to put a rewritten bundle back as it was.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Undo {
    pub config_path: PathBuf,
    /// `config.json` as it was, byte for byte.
    pub original: String,
    /// SONAME links that did not exist before.
    pub created_links: Vec<PathBuf>,
    /// Paths in the rootfs that did not exist before, shallowest first: directories and mount
    /// points we or libcontainer may create; a failed create removes those still empty.
    pub new_paths: Vec<PathBuf>,
    pub rootfs: Option<PathBuf>,
}

impl Undo {
    pub fn rollback(&self) {
        let _ = write_atomically(&self.config_path, self.original.as_bytes());
        if let Some(bundle) = self.config_path.parent() {
            let _ = std::fs::remove_dir_all(bundle.join(ARTIFACTS_DIR));
        }
        if let Some(rootfs) = self.rootfs.as_deref().and_then(|p| Rootfs::open(p).ok()) {
            rootfs.take_away(&self.created_links, &self.new_paths);
        }
    }
}

pub fn inject_bundle(bundle: &Path, config: &Config) -> Result<Outcome, InjectError> {
    let started = std::time::Instant::now();
    let mut clock = Stopwatch::start();
    let mut timings = Timings::default();
    let config_path = bundle.join("config.json");
    let original = std::fs::read(&config_path).map_err(|source| InjectError::Read {
        path: config_path.clone(),
        source,
    })?;
    let mut spec: Value =
        serde_json::from_slice(&original).map_err(|source| InjectError::Parse {
            path: config_path.clone(),
            source,
        })?;
    if apply::already_injected(&spec) {
        return Ok(Outcome::AlreadyInjected);
    }

    let hook_removed = request::remove_gpu_hooks(&mut spec);
    let Some(request) = request::parse(&spec, config)? else {
        if !hook_removed {
            return Ok(Outcome::NotRequested);
        }
        // `--gpus` with NVIDIA_VISIBLE_DEVICES=void: the hook must still go.
        write_atomically(&config_path, &serialise(&spec))?;
        timings.total_us = started.elapsed().as_micros() as u64;
        return Ok(Outcome::Rewritten {
            summary: "hook removed, no GPU requested".into(),
            timings,
            undo: Box::new(Undo {
                config_path,
                original: String::from_utf8_lossy(&original).into_owned(),
                created_links: Vec::new(),
                new_paths: Vec::new(),
                rootfs: None,
            }),
        });
    };
    timings.read_spec_us = clock.lap();

    let options = inventory::Options {
        cuda_version: config.cuda_version,
        capabilities: Some(request.capabilities.clone()),
    };
    let inventory = match &config.inventory_cache {
        Some(dir) => {
            let (inventory, how) = inventory::discover_cached(&config.roots(), &options, dir)?;
            timings.inventory_cache = Some(how);
            inventory
        }
        None => inventory::discover_with(&config.roots(), &options)?,
    };
    timings.inventory_us = clock.lap();
    require::check_gpus_readable(&inventory, &request.devices)?;
    let gpus = plan::select_gpus(&inventory, &request.devices)?;
    if !request.disable_require {
        require::check(
            &request.requirements,
            &require::Host::new(&inventory, &gpus),
        )?;
    }

    let rootfs_path = rootfs_path(bundle, &spec)?;
    let rootfs = Rootfs::open(&rootfs_path)?;
    let lib_dir = rootfs.library_dir();
    let mut edits = plan::plan(&inventory, &request, &gpus, &lib_dir);
    timings.plan_us = clock.lap();

    // What does not exist yet where links and mounts go: we make the links' directories,
    // libcontainer the mount points; a failed create takes away those still empty.
    let mut new_paths: Vec<PathBuf> = Vec::new();
    let destinations = edits
        .mounts
        .iter()
        .map(|m| m.container.as_path())
        .chain(edits.symlinks.iter().map(|l| l.link.as_path()))
        .chain([Path::new("/etc/ld.so.cache")]);
    for destination in destinations {
        for path in rootfs.missing(destination) {
            // each list is shallowest first, so every directory stays before what is in it
            if !new_paths.contains(&path) {
                new_paths.push(path);
            }
        }
    }

    let links: Vec<(&Path, &str)> = edits
        .symlinks
        .iter()
        .map(|l| (l.link.as_path(), l.target.as_str()))
        .collect();
    let mut created_links = Vec::new();
    let outcomes = match rootfs.symlinks(&links) {
        Ok(outcomes) => outcomes,
        Err(err) => {
            // the links made before the failing one are not known: take away what is new
            rootfs.take_away(&[], &new_paths);
            return Err(err.into());
        }
    };
    for (&(link, _), outcome) in links.iter().zip(outcomes) {
        match outcome {
            rootfs::LinkOutcome::Created => created_links.push(link.to_owned()),
            rootfs::LinkOutcome::Replaced | rootfs::LinkOutcome::AlreadyRight => {}
            rootfs::LinkOutcome::KeptImageFile => {
                tracing::debug!(link = %link.display(), "image has its own file there; kept")
            }
        }
    }
    timings.rootfs_links_us = clock.lap();
    let cache_path = match write_ld_cache(bundle, &rootfs, &edits) {
        Ok(path) => path,
        Err(err) => {
            rootfs.take_away(&created_links, &new_paths);
            return Err(err);
        }
    };
    timings.ld_cache_us = clock.lap();
    match driver_proc::prepare(bundle, &spec, &config.proc_root, &gpus) {
        Ok(mounts) => edits.mounts.extend(mounts),
        Err(err) => {
            rootfs.take_away(&created_links, &new_paths);
            let _ = std::fs::remove_dir_all(bundle.join(ARTIFACTS_DIR));
            return Err(err);
        }
    }

    apply::apply(&mut spec, &edits, Some(&cache_path));
    let summary = summarise(&edits, &request);
    apply::mark(&mut spec, &summary);
    if let Err(err) = write_atomically(&config_path, &serialise(&spec)) {
        rootfs.take_away(&created_links, &new_paths);
        let _ = std::fs::remove_dir_all(bundle.join(ARTIFACTS_DIR));
        return Err(err);
    }
    timings.write_spec_us = clock.lap();
    timings.total_us = started.elapsed().as_micros() as u64;
    Ok(Outcome::Rewritten {
        summary,
        timings,
        undo: Box::new(Undo {
            config_path,
            // serde_json parsed it, so it is UTF-8; lossy only to keep the type honest
            original: String::from_utf8_lossy(&original).into_owned(),
            created_links,
            new_paths,
            rootfs: Some(rootfs_path),
        }),
    })
}

fn rootfs_path(bundle: &Path, spec: &Value) -> Result<PathBuf, InjectError> {
    let root = spec
        .pointer("/root/path")
        .and_then(Value::as_str)
        .ok_or(InjectError::NoRoot)?;
    Ok(bundle.join(root))
}

/// The image's own cache, plus the injected libraries, so that both the loader and
/// `ldconfig -p` see them — without running ldconfig in the container.
fn write_ld_cache(bundle: &Path, rootfs: &Rootfs, edits: &Edits) -> Result<PathBuf, InjectError> {
    let image_cache = Path::new("/etc/ld.so.cache");
    let mut cache = match rootfs.read(image_cache)? {
        // The empty mount point libcontainer left for our cache when this rootfs was started
        // before (a restarted container, a re-used bundle): the image had no cache of its own.
        Some(bytes) if bytes.is_empty() => ldcache::Cache::new(),
        Some(bytes) => ldcache::Cache::parse(&bytes).unwrap_or_else(|err| {
            tracing::warn!("ignoring the image's unreadable /etc/ld.so.cache: {err}");
            ldcache::Cache::new()
        }),
        None => ldcache::Cache::new(),
    };
    for (name, path) in &edits.ld_cache {
        cache.insert(ldcache::Entry::new(
            name.clone(),
            path.clone(),
            ldcache::FLAG_X86_64_LIBC6,
        ));
    }
    let dir = bundle.join(ARTIFACTS_DIR);
    std::fs::create_dir_all(&dir).map_err(|source| InjectError::Write {
        path: dir.clone(),
        source,
    })?;
    let path = dir.join("ld.so.cache");
    let bytes = cache.try_to_bytes().map_err(|err| InjectError::Write {
        path: path.clone(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, err),
    })?;
    std::fs::write(&path, bytes).map_err(|source| InjectError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

fn summarise(edits: &Edits, request: &Request) -> String {
    let gpus: Vec<String> = edits.gpu_indices.iter().map(u32::to_string).collect();
    let caps: Vec<&str> = request.capabilities.iter().map(|c| c.as_str()).collect();
    format!(
        "gpus={} capabilities={} devices={} mounts={}",
        if gpus.is_empty() {
            "none".into()
        } else {
            gpus.join(",")
        },
        caps.join(","),
        edits.devices.len(),
        edits.mounts.len() + 1
    )
}

fn serialise(spec: &Value) -> Vec<u8> {
    serde_json::to_vec(spec).expect("a serde_json::Value always serialises")
}

/// Temp file in the same dir, then rename: a reader (libcontainer, `exec` later, a retry) sees
/// the old or the new file, never half of one, whatever happens to us in between.
///
/// No fsync: it would only add durability across a power loss, and a bundle does not outlive
/// one (containerd and dockerd rebuild bundles, and the containers are gone). On a disk-backed
/// bundle dir it cost ~0.3 ms per container (docs/benchmarks.md).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), InjectError> {
    let write_err = |source| InjectError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644);
    let tmp = dir.join(format!(
        ".{}.nvidia-runtime-{}",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(write_err)
}
