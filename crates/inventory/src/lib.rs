//! What the host has for GPU containers: driver version, GPUs, device nodes and the driver's
//! libraries, binaries, firmware and IPC endpoints.
//!
//! Discovery only reads files, under three roots so that a simulated host (see
//! `tests/fixtures/make-driver-root.sh`) and a driver installed in a container or a read-only
//! mount work like `/`: the driver root (driver files, `etc/ld.so.cache`), the dev root
//! (`dev/nvidia*`) and the proc root (`proc/driver/nvidia`). It loads no library, runs nothing,
//! starts no thread (the runtime clones after it) and lists no big directory: the loader cache
//! and fixed paths name every file it looks at, so it costs a few hundred system calls.
//!
//! ```no_run
//! let inv = inventory::discover(&inventory::Roots::host())?;
//! for gpu in &inv.gpus {
//!     println!("{} {} {}", gpu.index, gpu.uuid, gpu.device.container_path.display());
//! }
//! # Ok::<(), inventory::Error>(())
//! ```

#![warn(missing_docs)]

mod cache;
mod capability;
mod cuda;
mod devices;
mod elf;
mod files;
mod fsx;
mod libraries;
mod model;
mod procfs;
mod versions;

use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use cache::{CacheUse, SETTLE};
pub use capability::{Capability, UnknownCapability};
pub use files::BIN_DIRS;
pub use libraries::FALLBACK_LIB_DIRS;

use devices::IfMissing;

/// Where discovery looks. On a normal host all three are `/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roots {
    /// Where the driver's files are: libraries, binaries, firmware, `etc/ld.so.cache`, sockets.
    pub driver: PathBuf,
    /// Where `dev/nvidia*` are.
    pub dev: PathBuf,
    /// Where `proc/driver/nvidia` is read.
    pub proc_: PathBuf,
}

impl Roots {
    /// All three roots at `/`.
    pub fn host() -> Self {
        Self::all("/")
    }

    /// All three roots at one directory, as in a simulated driver root.
    pub fn all(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Self {
            driver: root.clone(),
            dev: root.clone(),
            proc_: root,
        }
    }
}

impl Default for Roots {
    fn default() -> Self {
        Self::host()
    }
}

/// What the caller knows better than discovery.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Options {
    /// The CUDA version (major, minor) to report instead of the one derived from the driver
    /// branch; see [`Inventory::cuda_version`].
    pub cuda_version: Option<(u32, u32)>,
    /// Only look for the libraries, binaries and sockets of these capabilities (`None`: all).
    /// A container asking for `compute,utility` need not pay for probing graphics files.
    pub capabilities: Option<Vec<Capability>>,
}

impl Options {
    fn wants(&self, capability: Capability) -> bool {
        self.capabilities
            .as_ref()
            .is_none_or(|wanted| wanted.contains(&capability))
    }
}

/// Everything discovered, each list in a stable order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// The kernel module's version, e.g. "580.159.04"; driver libraries carry it as a suffix.
    pub driver_version: String,
    /// The CUDA version the driver supports (what `cuDriverGetVersion` says), e.g. (13, 0):
    /// [`Options::cuda_version`] if given, else derived from the driver branch by a table of
    /// NVIDIA's published pairs (a branch newer than the table gets the newest known version, a
    /// lower bound); `None` for branches older than 410 or an unparsable version. Derived rather
    /// than asked of libcuda, because loading libcuda runs driver code and starts threads.
    pub cuda_version: Option<(u32, u32)>,
    /// GPUs by index (PCI bus order). A GPU whose device node is missing is left out (with a
    /// warning), the others keep their index; GPUs the driver excludes are not counted at all.
    pub gpus: Vec<Gpu>,
    /// Those of `/dev/nvidiactl`, `/dev/nvidia-uvm`, `/dev/nvidia-uvm-tools`,
    /// `/dev/nvidia-modeset` that exist, in that order.
    pub control_devices: Vec<DeviceNode>,
    /// The character devices in `/dev/nvidia-caps/` (MIG capabilities), by major and minor.
    pub mig_caps: Vec<DeviceNode>,
    /// Driver libraries for x86-64, by capability then file name; one per file name.
    pub libraries: Vec<Library>,
    /// Driver binaries; container path `/usr/bin/<name>`.
    pub binaries: Vec<HostFile>,
    /// GSP firmware; container path `/lib/firmware/nvidia/<version>/<file>`, no capability.
    pub firmware: Vec<HostFile>,
    /// Persistenced and fabric manager sockets, MPS pipe directory, where present.
    pub ipc: Vec<HostFile>,
    /// Whether any GPU has MIG instances (see [`Gpu::mig_enabled`]).
    pub mig_enabled: bool,
    /// GPU directories under `/proc/driver/nvidia/gpus` whose information cannot be read: GPUs
    /// the driver has but that cannot be handed out (their minor is unknown). They keep their
    /// place in bus order, so the other GPUs keep their indices.
    #[serde(default)]
    pub unreadable_gpus: Vec<UnreadableGpu>,
}

/// A GPU directory whose `information` file is missing, unreadable or not what the driver writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnreadableGpu {
    /// The directory, e.g. `/proc/driver/nvidia/gpus/0000:2a:00.0` under the proc root.
    pub dir: PathBuf,
    /// The index it takes in bus order; `None` when its name is no PCI bus id, so that its
    /// place, and with it every index on this host, is unknown.
    pub index: Option<u32>,
    /// What is wrong with it.
    pub reason: String,
}

impl Inventory {
    /// The GPU with this index (nvidia-smi's number), if present.
    pub fn gpu_by_index(&self, index: u32) -> Option<&Gpu> {
        self.gpus.iter().find(|g| g.index == index)
    }

    /// The GPU with this UUID (`GPU-…`, any case), if present.
    pub fn gpu_by_uuid(&self, uuid: &str) -> Option<&Gpu> {
        self.gpus.iter().find(|g| g.uuid.eq_ignore_ascii_case(uuid))
    }

    /// The libraries of one capability.
    pub fn libraries_for(&self, capability: Capability) -> impl Iterator<Item = &Library> {
        self.libraries
            .iter()
            .filter(move |l| l.capability == capability)
    }
}

/// One GPU, from `/proc/driver/nvidia/gpus/<bus id>/information`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gpu {
    /// Position in PCI bus order among the driver's GPUs: nvidia-smi's and CUDA's default index,
    /// which `NVIDIA_VISIBLE_DEVICES=0,1` means. Not the device minor.
    pub index: u32,
    /// `GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, as the driver writes it.
    pub uuid: String,
    /// PCI address, lowercase, e.g. "0000:18:00.0".
    pub bus_id: String,
    /// Device minor: the node is `/dev/nvidia<minor>`.
    pub minor: u32,
    /// Marketing name, e.g. "NVIDIA H100 80GB HBM3".
    pub model: String,
    /// NVML brand as `NVIDIA_REQUIRE_*` names it, derived from the model: "nvidia" (A100, H100,
    /// L40, ...), "tesla", "nvidiartx", "quadro", "quadrortx", "geforce", "titan", "nvs",
    /// "grid" or "unknown".
    pub brand: String,
    /// Architecture, lowercase, derived from the model: "hopper", "ampere", "ada", "blackwell",
    /// "turing", "volta", "pascal", "maxwell", "kepler"; "unknown" for names not known.
    pub architecture: String,
    /// CUDA compute capability derived from the model (what `arch` means in
    /// `NVIDIA_REQUIRE_*`), e.g. (9, 0) for H100; `None` for names not known.
    pub compute_capability: Option<(u32, u32)>,
    /// Whether the driver shows MIG GPU instances on this GPU
    /// (`/proc/driver/nvidia/capabilities/gpu<minor>/mig/gi*`). Best effort: MIG mode switched
    /// on with no instance created yet is not visible without NVML.
    pub mig_enabled: bool,
    /// `/dev/nvidia<minor>`.
    pub device: DeviceNode,
    /// Its directory under the proc root's `proc/driver/nvidia/gpus` (named by its bus id).
    #[serde(default)]
    pub proc_dir: PathBuf,
}

/// A character device under the dev root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceNode {
    /// Full path under the dev root.
    pub host_path: PathBuf,
    /// Path in the container, e.g. `/dev/nvidia0`.
    pub container_path: PathBuf,
    /// Major device number.
    pub major: u32,
    /// Minor device number.
    pub minor: u32,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// A driver library.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Library {
    /// The real file under the driver root, every symlink resolved inside the root.
    pub host_path: PathBuf,
    /// Its file name, e.g. "libcuda.so.580.159.04".
    pub file_name: String,
    /// Its `DT_SONAME`, e.g. "libcuda.so.1"; the link a container needs beside the file.
    pub soname: Option<String>,
    /// Which capability brings it.
    pub capability: Capability,
    /// The other names the host gives it in the driver's library dirs (development links such
    /// as `libnvidia-ml.so -> libnvidia-ml.so.1`), not counting the file and its SONAME.
    pub links: Vec<LibraryLink>,
}

/// A symlink the host has for a library, as a container should have it beside the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LibraryLink {
    /// The link's name, e.g. "libnvidia-ml.so".
    pub name: String,
    /// What it points at: the host's own target where that is a name the container also has
    /// (the SONAME, another link), else the library's file name.
    pub target: String,
}

/// A file or directory to bind into the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFile {
    /// The real path under the driver root, symlinks resolved inside the root.
    pub host_path: PathBuf,
    /// Where it goes in the container.
    pub container_path: PathBuf,
    /// Which capability brings it; `None`: every GPU container gets it.
    pub capability: Option<Capability>,
}

/// Why discovery failed. Missing optional things (a device node, a library, a socket) are not
/// errors: they are left out and logged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The proc root shows no NVIDIA kernel module.
    #[error("no NVIDIA driver: {path} does not exist (is the nvidia kernel module loaded, and is the proc root right?)")]
    NoDriver {
        /// The version file looked for.
        path: PathBuf,
    },
    /// A file discovery must read could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// The driver's version file holds no version.
    #[error("cannot find the driver version in {path}: {reason}")]
    DriverVersion {
        /// The version file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The kernel module's version is not that of the installed driver libraries.
    #[error("the NVIDIA kernel module is version {module_version} ({version_file}) but the installed driver libraries are version {library_version} ({library}): a driver upgrade is half done. Reboot, or unload and reload the nvidia kernel modules, so that the module matches the libraries (or install the libraries of version {module_version})")]
    VersionMismatch {
        /// The loaded module's version.
        module_version: String,
        /// Where it was read.
        version_file: PathBuf,
        /// The library found at another version.
        library: PathBuf,
        /// Its version.
        library_version: String,
    },
    /// A GPU information file is not what the driver writes.
    #[error("invalid GPU information in {path}: {reason}")]
    GpuInfo {
        /// The information file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// The `e_machine` and `DT_SONAME` of a little-endian ELF64 shared object, read with a few
/// positioned reads (never the whole file); `Ok(None)`: not such a file. For a library found
/// other than by discovery (in a container's rootfs, opened by the caller).
pub fn elf_soname(file: std::fs::File) -> Result<Option<(u16, Option<String>)>, io::Error> {
    elf::read_file(file).map(|info| info.map(|info| (info.machine, info.soname)))
}

/// Discovers the host under `roots` with default [`Options`].
pub fn discover(roots: &Roots) -> Result<Inventory, Error> {
    discover_with(roots, &Options::default())
}

/// Discovers the host under `roots`.
pub fn discover_with(roots: &Roots, options: &Options) -> Result<Inventory, Error> {
    discover_from(roots, options, None).map(|(inventory, _)| inventory)
}

/// Like [`discover_with`], with the driver's installed files (libraries, binaries, firmware)
/// taken from `cache_dir` while every path they were found from is as it was, and stored there
/// when found afresh. GPUs, device nodes, sockets and the driver version are read every time. See
/// `cache.rs` for what makes the reuse exact.
pub fn discover_cached(
    roots: &Roots,
    options: &Options,
    cache_dir: &std::path::Path,
) -> Result<(Inventory, CacheUse), Error> {
    discover_from(roots, options, Some((cache_dir, SETTLE)))
        .map(|(inventory, how)| (inventory, how.unwrap_or(CacheUse::NotStored)))
}

fn discover_from(
    roots: &Roots,
    options: &Options,
    cache: Option<(&std::path::Path, std::time::Duration)>,
) -> Result<(Inventory, Option<CacheUse>), Error> {
    let driver_version = procfs::driver_version(&roots.proc_)?;
    let cuda_version = options
        .cuda_version
        .or_else(|| cuda::for_driver(&driver_version));

    let mig = procfs::mig_minors(&roots.proc_);
    let listing = procfs::gpus(&roots.proc_)?;
    let gpus_dir = roots.proc_.join(procfs::GPUS_DIR);
    let mut gpus = Vec::new();
    for (index, dir_name, info) in listing.gpus {
        let path = format!("/dev/nvidia{}", info.minor);
        let Some(device) = devices::node(&roots.dev, &path, IfMissing::Warn) else {
            tracing::warn!(uuid = %info.uuid, index, "GPU left out: its device node is missing");
            continue;
        };
        let (architecture, compute_capability) = match model::architecture(&info.model) {
            Some((a, cc)) => (a.to_string(), Some(cc)),
            None => ("unknown".to_string(), None),
        };
        gpus.push(Gpu {
            index,
            proc_dir: gpus_dir.join(dir_name),
            brand: model::brand(&info.model).to_string(),
            architecture,
            compute_capability,
            mig_enabled: mig.contains(&info.minor),
            uuid: info.uuid,
            bus_id: info.bus_id,
            minor: info.minor,
            model: info.model,
            device,
        });
    }

    let control_devices = [
        ("/dev/nvidiactl", IfMissing::Warn),
        ("/dev/nvidia-uvm", IfMissing::Warn),
        ("/dev/nvidia-uvm-tools", IfMissing::Warn),
        // Compute-only hosts often do not load nvidia-modeset.
        ("/dev/nvidia-modeset", IfMissing::Debug),
    ]
    .into_iter()
    .filter_map(|(p, m)| devices::node(&roots.dev, p, m))
    .collect();

    // One resolver for the installed driver files: they share directories.
    let find = || {
        let mut res = fsx::Resolver::new(&roots.driver);
        let wants = |capability| options.wants(capability);
        cache::DriverFiles {
            libraries: libraries::find(&mut res, &driver_version, &wants),
            binaries: files::binaries(&mut res, &wants),
            firmware: files::firmware(&mut res, &driver_version),
        }
    };
    let (files, how) = match cache {
        None => (find(), None),
        Some((dir, settle)) => {
            let (files, how) = cache::driver_files(
                dir,
                &cache_key(roots, &driver_version, options),
                settle,
                find,
            );
            (files, Some(how))
        }
    };
    let cache::DriverFiles {
        libraries,
        binaries,
        firmware,
    } = files;
    versions::check(
        &roots.driver,
        &roots.proc_,
        &driver_version,
        &libraries,
        &|capability| options.wants(capability),
    )?;
    // Sockets and the MPS pipe dir are the state of running daemons, under /run and /tmp whose
    // mtimes change with every file anyone makes there: looked up for every container, never
    // cached (a cached lookup would be re-checked, and re-made, every time anyway).
    let mut ipc = files::ipc(&mut fsx::Resolver::new(&roots.driver));
    ipc.retain(|file| file.capability.is_none_or(|c| options.wants(c)));

    Ok((
        Inventory {
            mig_enabled: gpus.iter().any(|g| g.mig_enabled),
            mig_caps: devices::mig_caps(&roots.dev),
            unreadable_gpus: listing.unreadable,
            driver_version,
            cuda_version,
            gpus,
            control_devices,
            libraries,
            binaries,
            firmware,
            ipc,
        },
        how,
    ))
}

/// Everything the driver files depend on besides the file system itself.
fn cache_key(roots: &Roots, driver_version: &str, options: &Options) -> String {
    let capabilities = match &options.capabilities {
        None => "all".to_string(),
        Some(list) => {
            let mut names: Vec<&str> = list.iter().map(|c| c.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            names.join(",")
        }
    };
    format!(
        "driver-root={}\0driver={driver_version}\0capabilities={capabilities}",
        roots.driver.display()
    )
}

#[cfg(test)]
mod tests;
