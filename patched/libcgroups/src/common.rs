use std::fmt::{Debug, Display};
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf, StripPrefixError};
use std::time::Duration;

use nix::sys::statfs::{CGROUP2_SUPER_MAGIC, TMPFS_MAGIC, statfs};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;
#[cfg(any(feature = "cgroupsv2_devices", feature = "v1"))]
use oci_spec::runtime::{
    LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType,
};

use super::stats::Stats;
use super::{systemd, v1, v2};

pub const CGROUP_PROCS: &str = "cgroup.procs";
pub const DEFAULT_CGROUP_ROOT: &str = "/sys/fs/cgroup";

#[cfg(feature = "systemd")]
#[inline]
fn is_true_root() -> Result<bool, WrappedIoError> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(false);
    }
    let uid_map_path = "/proc/self/uid_map";
    let content = std::fs::read_to_string(uid_map_path).map_err(|e| WrappedIoError::Read {
        err: e,
        path: uid_map_path.into(),
    })?;
    Ok(content.contains("4294967295"))
}
pub trait CgroupManager {
    type Error;

    /// Adds a task specified by its pid to the cgroup
    fn add_task(&self, pid: Pid) -> Result<(), Self::Error>;

    /// Moves a task into the cgroup, which must exist already: unlike `add_task`, it never
    /// makes one. Used to put a process into an existing container (`exec`), where a cgroup
    /// made on the way would be unknown to the container, and outlive it.
    fn join(&self, pid: Pid) -> Result<(), Self::Error>;

    /// Applies resource restrictions to the cgroup
    fn apply(&self, controller_opt: &ControllerOpt) -> Result<(), Self::Error>;

    /// Removes the cgroup with every cgroup below it, after killing the processes in any of
    /// them (frozen ones included)
    fn remove(&self) -> Result<(), Self::Error>;

    /// Sets the freezer cgroup to the specified state
    fn freeze(&self, state: FreezerState) -> Result<(), Self::Error>;

    /// The freezer state a process joining the cgroup would get: that of the cgroup or, when it
    /// does not exist yet, of its nearest existing ancestor (a frozen parent freezes its new
    /// children). `Undefined` when there is no freezer.
    fn freezer_state(&self) -> Result<FreezerState, Self::Error>;

    /// Whether the cgroup exists (on cgroup v1: in any hierarchy).
    fn exists(&self) -> bool;

    /// Makes the cgroup as `add_task` would, without moving any process into it, and returns
    /// its directory opened for `clone3(CLONE_INTO_CGROUP)` (cgroup v2, Linux >= 5.7): a
    /// process cloned straight into its cgroup spares the `cgroup.procs` write, whose
    /// `cgroup_threadgroup_rwsem` write lock waits for an RCU grace period. `None` where the
    /// manager cannot (cgroup v1, systemd, rootless): the process then joins with `add_task`.
    fn prepare_clone_into(&self) -> Result<Option<std::os::fd::OwnedFd>, Self::Error> {
        Ok(None)
    }

    /// Retrieve statistics for the cgroup
    fn stats(&self) -> Result<Stats, Self::Error>;

    /// Gets the PIDs inside the cgroup
    fn get_all_pids(&self) -> Result<Vec<Pid>, Self::Error>;
}

#[derive(thiserror::Error, Debug)]
pub enum AnyManagerError {
    #[error(transparent)]
    Systemd(#[from] systemd::manager::SystemdManagerError),
    #[error(transparent)]
    V1(#[from] v1::manager::V1ManagerError),
    #[error(transparent)]
    V2(#[from] v2::manager::V2ManagerError),
}

// systemd is boxed due to size lint https://rust-lang.github.io/rust-clippy/master/index.html#/large_enum_variant
pub enum AnyCgroupManager {
    Systemd(Box<systemd::manager::Manager>),
    V1(v1::manager::Manager),
    V2(v2::manager::Manager),
}

impl CgroupManager for AnyCgroupManager {
    type Error = AnyManagerError;

    fn add_task(&self, pid: Pid) -> Result<(), Self::Error> {
        match self {
            AnyCgroupManager::Systemd(m) => Ok(m.add_task(pid)?),
            AnyCgroupManager::V1(m) => Ok(m.add_task(pid)?),
            AnyCgroupManager::V2(m) => Ok(m.add_task(pid)?),
        }
    }

    fn apply(&self, controller_opt: &ControllerOpt) -> Result<(), Self::Error> {
        match self {
            AnyCgroupManager::Systemd(m) => Ok(m.apply(controller_opt)?),
            AnyCgroupManager::V1(m) => Ok(m.apply(controller_opt)?),
            AnyCgroupManager::V2(m) => Ok(m.apply(controller_opt)?),
        }
    }

    fn prepare_clone_into(&self) -> Result<Option<std::os::fd::OwnedFd>, Self::Error> {
        match self {
            AnyCgroupManager::V2(m) => Ok(m.prepare_clone_into()?),
            AnyCgroupManager::Systemd(_) | AnyCgroupManager::V1(_) => Ok(None),
        }
    }

    fn join(&self, pid: Pid) -> Result<(), Self::Error> {
        match self {
            AnyCgroupManager::Systemd(m) => Ok(m.join(pid)?),
            AnyCgroupManager::V1(m) => Ok(m.join(pid)?),
            AnyCgroupManager::V2(m) => Ok(m.join(pid)?),
        }
    }

    fn remove(&self) -> Result<(), Self::Error> {
        match self {
            AnyCgroupManager::Systemd(m) => Ok(m.remove()?),
            AnyCgroupManager::V1(m) => Ok(m.remove()?),
            AnyCgroupManager::V2(m) => Ok(m.remove()?),
        }
    }

    fn freezer_state(&self) -> Result<FreezerState, Self::Error> {
        match self {
            AnyCgroupManager::Systemd(m) => Ok(m.freezer_state()?),
            AnyCgroupManager::V1(m) => Ok(m.freezer_state()?),
            AnyCgroupManager::V2(m) => Ok(m.freezer_state()?),
        }
    }

    fn exists(&self) -> bool {
        match self {
            AnyCgroupManager::Systemd(m) => m.exists(),
            AnyCgroupManager::V1(m) => m.exists(),
            AnyCgroupManager::V2(m) => m.exists(),
        }
    }

    fn freeze(&self, state: FreezerState) -> Result<(), Self::Error> {
        match self {
            AnyCgroupManager::Systemd(m) => Ok(m.freeze(state)?),
            AnyCgroupManager::V1(m) => Ok(m.freeze(state)?),
            AnyCgroupManager::V2(m) => Ok(m.freeze(state)?),
        }
    }

    fn stats(&self) -> Result<Stats, Self::Error> {
        match self {
            AnyCgroupManager::Systemd(m) => Ok(m.stats()?),
            AnyCgroupManager::V1(m) => Ok(m.stats()?),
            AnyCgroupManager::V2(m) => Ok(m.stats()?),
        }
    }

    fn get_all_pids(&self) -> Result<Vec<Pid>, Self::Error> {
        match self {
            AnyCgroupManager::Systemd(m) => Ok(m.get_all_pids()?),
            AnyCgroupManager::V1(m) => Ok(m.get_all_pids()?),
            AnyCgroupManager::V2(m) => Ok(m.get_all_pids()?),
        }
    }
}

impl AnyCgroupManager {
    /// Marks the cgroup manager as operating in a rootless environment.
    ///
    /// Only affects the v2 manager.
    #[cfg_attr(not(feature = "v2"), allow(unused_variables))]
    pub fn with_rootless(self, rootless: bool) -> Self {
        match self {
            #[cfg(feature = "v2")]
            AnyCgroupManager::V2(m) => AnyCgroupManager::V2(m.with_rootless(rootless)),
            other => other,
        }
    }
}

#[derive(Debug)]
pub enum CgroupSetup {
    Hybrid,
    Legacy,
    Unified,
}

impl Display for CgroupSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let print = match self {
            CgroupSetup::Hybrid => "hybrid",
            CgroupSetup::Legacy => "legacy",
            CgroupSetup::Unified => "unified",
        };

        write!(f, "{print}")
    }
}

/// FreezerState is given freezer controller
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum FreezerState {
    /// Tasks in cgroup are undefined
    Undefined,
    /// Tasks in cgroup are suspended.
    Frozen,
    /// Tasks in cgroup are resuming.
    Thawed,
}

/// ControllerOpt is given all cgroup controller for applying cgroup configuration.
#[derive(Clone, Debug)]
pub struct ControllerOpt<'a> {
    /// Resources contain cgroup information for handling resource constraints for the container.
    pub resources: &'a LinuxResources,
    /// Disables the OOM killer for out of memory conditions.
    pub disable_oom_killer: bool,
    /// Specify an oom_score_adj for container.
    pub oom_score_adj: Option<i32>,
    /// FreezerState is given to freezer controller for suspending process.
    pub freezer_state: Option<FreezerState>,
}

#[derive(thiserror::Error, Debug)]
pub enum WrappedIoError {
    #[error("failed to open {path}: {err}")]
    Open { err: std::io::Error, path: PathBuf },
    #[error("failed to write {data} to {path}: {err}")]
    Write {
        err: std::io::Error,
        path: PathBuf,
        data: String,
    },
    #[error("failed to read {path}: {err}")]
    Read { err: std::io::Error, path: PathBuf },
    #[error("failed to create dir {path}: {err}")]
    CreateDir { err: std::io::Error, path: PathBuf },
    #[error("at {path}: {err}")]
    Other { err: std::io::Error, path: PathBuf },
}

impl WrappedIoError {
    pub fn inner(&self) -> &std::io::Error {
        match self {
            WrappedIoError::Open { err, .. } => err,
            WrappedIoError::Write { err, .. } => err,
            WrappedIoError::Read { err, .. } => err,
            WrappedIoError::CreateDir { err, .. } => err,
            WrappedIoError::Other { err, .. } => err,
        }
    }
}

#[inline]
pub fn write_cgroup_file_str<P: AsRef<Path>>(path: P, data: &str) -> Result<(), WrappedIoError> {
    let path = path.as_ref();

    fs::OpenOptions::new()
        .create(false)
        .write(true)
        .truncate(false)
        .open(path)
        .map_err(|err| WrappedIoError::Open {
            err,
            path: path.to_path_buf(),
        })?
        .write_all(data.as_bytes())
        .map_err(|err| WrappedIoError::Write {
            err,
            path: path.to_path_buf(),
            data: data.into(),
        })?;

    Ok(())
}

#[inline]
pub fn write_cgroup_file<P: AsRef<Path>, T: ToString>(
    path: P,
    data: T,
) -> Result<(), WrappedIoError> {
    let path = path.as_ref();
    let data = data.to_string();

    fs::OpenOptions::new()
        .create(false)
        .write(true)
        .truncate(false)
        .open(path)
        .map_err(|err| WrappedIoError::Open {
            err,
            path: path.to_path_buf(),
        })?
        .write_all(data.as_bytes())
        .map_err(|err| WrappedIoError::Write {
            err,
            path: path.to_path_buf(),
            data,
        })?;

    Ok(())
}

#[inline]
pub fn read_cgroup_file<P: AsRef<Path>>(path: P) -> Result<String, WrappedIoError> {
    let path = path.as_ref();
    fs::read_to_string(path).map_err(|err| WrappedIoError::Read {
        err,
        path: path.to_path_buf(),
    })
}

#[derive(thiserror::Error, Debug)]
pub enum GetCgroupSetupError {
    #[error("io error: {0}")]
    WrappedIo(#[from] WrappedIoError),
    #[error("non default cgroup root not supported")]
    NonDefault,
    #[error("failed to detect cgroup setup")]
    FailedToDetect,
}

/// Determines the cgroup setup of the system. Systems typically have one of
/// three setups:
/// - Unified: Pure cgroup v2 system.
/// - Legacy: Pure cgroup v1 system.
/// - Hybrid: Hybrid is basically a cgroup v1 system, except for
///   an additional unified hierarchy which doesn't have any
///   controllers attached. Resource control can purely be achieved
///   through the cgroup v1 hierarchy, not through the cgroup v2 hierarchy.
pub fn get_cgroup_setup_with_root(root_path: &Path) -> Result<CgroupSetup, GetCgroupSetupError> {
    match root_path.exists() {
        true => {
            // If the filesystem is of type cgroup2, the system is in unified mode.
            // If the filesystem is tmpfs instead the system is either in legacy or
            // hybrid mode. If a cgroup2 filesystem has been mounted under the "unified"
            // folder we are in hybrid mode, otherwise we are in legacy mode.
            let stat = statfs(root_path)
                .map_err(std::io::Error::other)
                .wrap_other(root_path)?;
            if stat.filesystem_type() == CGROUP2_SUPER_MAGIC {
                return Ok(CgroupSetup::Unified);
            }

            if stat.filesystem_type() == TMPFS_MAGIC {
                let unified = &Path::new(root_path).join("unified");
                if Path::new(unified).exists() {
                    let stat = statfs(unified)
                        .map_err(std::io::Error::other)
                        .wrap_other(unified)?;
                    if stat.filesystem_type() == CGROUP2_SUPER_MAGIC {
                        return Ok(CgroupSetup::Hybrid);
                    }
                }

                return Ok(CgroupSetup::Legacy);
            }
        }
        false => return Err(GetCgroupSetupError::NonDefault),
    }

    Err(GetCgroupSetupError::FailedToDetect)
}

pub fn get_cgroup_setup() -> Result<CgroupSetup, GetCgroupSetupError> {
    get_cgroup_setup_with_root(Path::new(DEFAULT_CGROUP_ROOT))
}

#[derive(thiserror::Error, Debug)]
pub enum CreateCgroupSetupError {
    #[error("io error: {0}")]
    WrappedIo(#[from] WrappedIoError),
    #[error("non default cgroup root not supported")]
    NonDefault,
    #[error("failed to detect cgroup setup")]
    FailedToDetect,
    #[error("v1 error: {0}")]
    V1(#[from] v1::manager::V1ManagerError),
    #[error("v2 error: {0}")]
    V2(#[from] v2::manager::V2ManagerError),
    #[error("systemd error: {0}")]
    Systemd(#[from] systemd::manager::SystemdManagerError),
}

#[derive(Clone)]
pub struct CgroupConfig {
    pub cgroup_path: PathBuf,
    pub systemd_cgroup: bool,
    pub container_name: String,
    /// The `/proc/<pid>/cgroup` text of the process a relative `cgroup_path` is resolved
    /// against (its cgroup in each hierarchy), as it was when the container was created;
    /// `None`: the calling process's. Saved at create, it keeps a container's cgroup where it
    /// was made whichever cgroup later commands run in (runc saves the resolved paths).
    pub caller_cgroups: Option<String>,
}

/// The calling process's `/proc/self/cgroup`, to be saved as [`CgroupConfig::caller_cgroups`].
pub fn own_cgroups() -> Result<String, WrappedIoError> {
    let own = Path::new("/proc/self/cgroup");
    fs::read_to_string(own).wrap_read(own)
}

/// `path` without `.` and `..`, lexically, so that a relative cgroup path cannot climb out of
/// the cgroup it is relative to (runc cleans it the same way).
pub(crate) fn clean_relative_cgroup_path(path: &Path) -> PathBuf {
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::Normal(part) => clean.push(part),
            std::path::Component::ParentDir => {
                clean.pop();
            }
            _ => {}
        }
    }
    clean
}

/// Where runc puts a relative cgroup path on cgroup v2: below the parent of the caller's own
/// cgroup, which has no processes of its own, so controllers can be enabled for its children.
fn below_parent_of_own_cgroup(own_cgroup: &Path, relative: &Path) -> PathBuf {
    own_cgroup
        .parent()
        .unwrap_or(Path::new("/"))
        .join(clean_relative_cgroup_path(relative))
}

fn v2_cgroup_path(
    cgroup_path: &Path,
    caller_cgroups: Option<&str>,
) -> Result<PathBuf, CreateCgroupSetupError> {
    if cgroup_path.is_absolute() || cgroup_path.as_os_str().is_empty() {
        return Ok(cgroup_path.to_owned());
    }
    let text = match caller_cgroups {
        Some(text) => text.to_owned(),
        None => own_cgroups()?,
    };
    let own_cgroup = text
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .unwrap_or("/");
    Ok(below_parent_of_own_cgroup(
        Path::new(own_cgroup),
        cgroup_path,
    ))
}

// Create any cgroup manager with customize root path. If root_path provided
// is None, then it defaults to /sys/fs/cgroup.
pub fn create_cgroup_manager_with_root(
    root_path: Option<&Path>,
    config: CgroupConfig,
) -> Result<AnyCgroupManager, CreateCgroupSetupError> {
    let root = match root_path {
        Some(p) => p,
        None => Path::new(DEFAULT_CGROUP_ROOT),
    };

    let cgroup_setup = get_cgroup_setup_with_root(root).map_err(|err| match err {
        GetCgroupSetupError::WrappedIo(err) => CreateCgroupSetupError::WrappedIo(err),
        GetCgroupSetupError::NonDefault => CreateCgroupSetupError::NonDefault,
        GetCgroupSetupError::FailedToDetect => CreateCgroupSetupError::FailedToDetect,
    })?;
    let cgroup_path = config.cgroup_path.as_path();

    match cgroup_setup {
        CgroupSetup::Legacy | CgroupSetup::Hybrid => {
            Ok(create_v1_cgroup_manager(cgroup_path, config.caller_cgroups.as_deref())?.any())
        }
        CgroupSetup::Unified => {
            // ref https://github.com/opencontainers/runtime-spec/blob/main/config-linux.md#cgroups-path
            if cgroup_path.is_absolute() || !config.systemd_cgroup {
                let cgroup_path = v2_cgroup_path(cgroup_path, config.caller_cgroups.as_deref())?;
                return Ok(create_v2_cgroup_manager(root, &cgroup_path)?.any());
            }
            Ok(
                create_systemd_cgroup_manager(root, cgroup_path, config.container_name.as_str())?
                    .any(),
            )
        }
    }
}

pub fn create_cgroup_manager(
    config: CgroupConfig,
) -> Result<AnyCgroupManager, CreateCgroupSetupError> {
    create_cgroup_manager_with_root(Some(Path::new(DEFAULT_CGROUP_ROOT)), config)
}

#[cfg(feature = "v1")]
fn create_v1_cgroup_manager(
    cgroup_path: &Path,
    caller_cgroups: Option<&str>,
) -> Result<v1::manager::Manager, v1::manager::V1ManagerError> {
    tracing::info!("cgroup manager V1 will be used");
    v1::manager::Manager::new_relative_to(cgroup_path, caller_cgroups)
}

#[cfg(not(feature = "v1"))]
fn create_v1_cgroup_manager(
    _cgroup_path: &Path,
    _caller_cgroups: Option<&str>,
) -> Result<v1::manager::Manager, v1::manager::V1ManagerError> {
    Err(v1::manager::V1ManagerError::NotEnabled)
}

#[cfg(feature = "v2")]
fn create_v2_cgroup_manager(
    root_path: &Path,
    cgroup_path: &Path,
) -> Result<v2::manager::Manager, v2::manager::V2ManagerError> {
    tracing::info!("cgroup manager V2 will be used");
    v2::manager::Manager::new(root_path.to_path_buf(), cgroup_path.to_owned())
}

#[cfg(not(feature = "v2"))]
fn create_v2_cgroup_manager(
    _root_path: &Path,
    _cgroup_path: &Path,
) -> Result<v2::manager::Manager, v2::manager::V2ManagerError> {
    Err(v2::manager::V2ManagerError::NotEnabled)
}

#[cfg(feature = "systemd")]
fn create_systemd_cgroup_manager(
    root_path: &Path,
    cgroup_path: &Path,
    container_name: &str,
) -> Result<systemd::manager::Manager, systemd::manager::SystemdManagerError> {
    use crate::systemd::manager::PROCESS_IN_CGROUP_TIMEOUT_DURATION;

    if !systemd::booted() {
        return Err(systemd::manager::SystemdManagerError::SystemdNotAvailable);
    }

    let use_system = is_true_root().map_err(systemd::manager::SystemdManagerError::WrappedIo)?;

    tracing::info!(
        "systemd cgroup manager with system bus {} will be used",
        use_system
    );
    systemd::manager::Manager::new(
        root_path.into(),
        cgroup_path.to_owned(),
        container_name.into(),
        use_system,
        PROCESS_IN_CGROUP_TIMEOUT_DURATION,
    )
}

#[cfg(not(feature = "systemd"))]
fn create_systemd_cgroup_manager(
    _root_path: &Path,
    _cgroup_path: &Path,
    _container_name: &str,
) -> Result<systemd::manager::Manager, systemd::manager::SystemdManagerError> {
    Err(systemd::manager::SystemdManagerError::NotEnabled)
}
/// The calling process's handle on procfs, for every `/proc` access of the container's
/// processes.
///
/// pathrs's `ProcfsHandle::new()` hands out one cached, detached `subset=pid` procfs mount,
/// but re-verifies it on each call (about 20 syscalls, ~6 µs); a container start asked ~110
/// times across its processes. That handle is kept here once pathrs has verified it, and
/// forked processes inherit it. A handle pathrs does not cache (without `fsopen`, the host's
/// `/proc` itself) is never kept: each call gets and verifies a new one, as before.
///
/// Errors: pathrs's, when no procfs handle can be made or verified.
pub fn procfs() -> Result<Procfs, pathrs::error::Error> {
    use pathrs::procfs::ProcfsHandle;
    use std::os::fd::{AsFd, AsRawFd};
    static SHARED: std::sync::OnceLock<ProcfsHandle> = std::sync::OnceLock::new();
    if let Some(shared) = SHARED.get() {
        return Ok(Procfs::Shared(shared));
    }
    // pathrs's cached handle is the same descriptor each time; any other is a new one
    let first = ProcfsHandle::new()?;
    let second = ProcfsHandle::new()?;
    if first.as_fd().as_raw_fd() == second.as_fd().as_raw_fd() {
        Ok(Procfs::Shared(SHARED.get_or_init(|| second)))
    } else {
        Ok(Procfs::Own(first))
    }
}

/// What [`procfs`] returns: the process's shared handle, or one of its own.
#[derive(Debug)]
pub enum Procfs {
    Shared(&'static pathrs::procfs::ProcfsHandle),
    Own(pathrs::procfs::ProcfsHandle),
}

impl std::ops::Deref for Procfs {
    type Target = pathrs::procfs::ProcfsHandle;

    fn deref(&self) -> &Self::Target {
        match self {
            Procfs::Shared(handle) => handle,
            Procfs::Own(handle) => handle,
        }
    }
}


pub fn get_all_pids(path: &Path) -> Result<Vec<Pid>, WrappedIoError> {
    tracing::debug!("scan pids in folder: {:?}", path);
    let mut result = vec![];
    walk_dir(path, &mut |p| {
        let file_path = p.join(CGROUP_PROCS);
        if file_path.exists() {
            let file = match File::open(&file_path) {
                Ok(file) => file,
                // a sub-cgroup removed while we walk has no process left to report
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(err) => {
                    return Err(WrappedIoError::Open {
                        err,
                        path: file_path,
                    });
                }
            };
            for line in BufReader::new(file).lines().map_while(Result::ok) {
                result.push(Pid::from_raw(
                    line.parse::<i32>()
                        .map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidData, err))
                        .wrap_other(&file_path)?,
                ))
            }
        }
        Ok::<(), WrappedIoError>(())
    })?;
    Ok(result)
}

fn walk_dir<F, E>(path: &Path, c: &mut F) -> Result<(), E>
where
    F: FnMut(&Path) -> Result<(), E>,
    E: From<WrappedIoError>,
{
    c(path)?;
    let entries = match fs::read_dir(path) {
        Ok(entries) => entries,
        // removed since its parent was listed
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => {
            return Err(WrappedIoError::Read {
                err,
                path: path.into(),
            }
            .into());
        }
    };
    for entry in entries {
        let entry = entry.wrap_open(path)?;
        let path = entry.path();

        if path.is_dir() {
            walk_dir(&path, c)?;
        }
    }
    Ok(())
}

pub(crate) trait PathBufExt {
    fn join_safely<P: AsRef<Path>>(&self, path: P) -> Result<PathBuf, JoinSafelyError>;
}

#[derive(thiserror::Error, Debug)]
pub enum JoinSafelyError {
    #[error("failed to strip prefix from {path}: {err}")]
    StripPrefix {
        err: StripPrefixError,
        path: PathBuf,
    },
}

impl PathBufExt for PathBuf {
    fn join_safely<P: AsRef<Path>>(&self, path: P) -> Result<PathBuf, JoinSafelyError> {
        let path = path.as_ref();
        if path.is_relative() {
            return Ok(self.join(path));
        }

        let stripped = path
            .strip_prefix("/")
            .map_err(|err| JoinSafelyError::StripPrefix {
                err,
                path: path.to_path_buf(),
            })?;
        Ok(self.join(stripped))
    }
}

#[cfg(any(feature = "cgroupsv2_devices", feature = "v1"))]
pub(crate) fn default_allow_devices() -> Vec<LinuxDeviceCgroup> {
    vec![
        LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .access("m")
            .build()
            .unwrap(),
        LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::B)
            .access("m")
            .build()
            .unwrap(),
        // /dev/console
        LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(5)
            .minor(1)
            .access("rwm")
            .build()
            .unwrap(),
        // /dev/pts
        LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(136)
            .access("rwm")
            .build()
            .unwrap(),
        LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(5)
            .minor(2)
            .access("rwm")
            .build()
            .unwrap(),
        // tun/tap
        LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(10)
            .minor(200)
            .access("rwm")
            .build()
            .unwrap(),
    ]
}

#[cfg(any(feature = "cgroupsv2_devices", feature = "v1"))]
pub(crate) fn default_devices() -> Vec<LinuxDevice> {
    vec![
        LinuxDeviceBuilder::default()
            .path(PathBuf::from("/dev/null"))
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .file_mode(0o066u32)
            .build()
            .unwrap(),
        LinuxDeviceBuilder::default()
            .path(PathBuf::from("/dev/zero"))
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(5)
            .file_mode(0o066u32)
            .build()
            .unwrap(),
        LinuxDeviceBuilder::default()
            .path(PathBuf::from("/dev/full"))
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(7)
            .file_mode(0o066u32)
            .build()
            .unwrap(),
        LinuxDeviceBuilder::default()
            .path(PathBuf::from("/dev/tty"))
            .typ(LinuxDeviceType::C)
            .major(5)
            .minor(0)
            .file_mode(0o066u32)
            .build()
            .unwrap(),
        LinuxDeviceBuilder::default()
            .path(PathBuf::from("/dev/urandom"))
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(9)
            .file_mode(0o066u32)
            .build()
            .unwrap(),
        LinuxDeviceBuilder::default()
            .path(PathBuf::from("/dev/random"))
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(8)
            .file_mode(0o066u32)
            .build()
            .unwrap(),
    ]
}

/// Attempts to delete the path the requested number of times. A path that is already gone
/// counts as deleted; after the last attempt, the error of that attempt is returned.
pub(crate) fn delete_with_retry<P: AsRef<Path>, L: Into<Option<Duration>>>(
    path: P,
    retries: u32,
    limit_backoff: L,
) -> Result<(), WrappedIoError> {
    let mut attempts = 0;
    let mut delay = Duration::from_millis(10);
    let path = path.as_ref();
    let limit = limit_backoff.into().unwrap_or(Duration::MAX);

    loop {
        let err = match fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(err) => err,
        };
        attempts += 1;
        if attempts >= retries {
            return Err(err).wrap_other(path);
        }

        std::thread::sleep(delay);
        delay *= attempts;
        if delay > limit {
            delay = limit;
        }
    }
}

/// Removes a cgroup directory and all the cgroups below it, deepest first: a cgroup with
/// children cannot be removed, and processes may have made sub-cgroups of their own. Each
/// directory gets the retries of `delete_with_retry`, for processes that are still exiting.
pub(crate) fn delete_tree_with_retry(
    path: &Path,
    retries: u32,
    limit_backoff: Duration,
) -> Result<(), WrappedIoError> {
    let entries = match fs::read_dir(path) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err).wrap_read(path),
    };
    for entry in entries {
        let entry = entry.wrap_read(path)?;
        // the files of a cgroup are its settings; its directories are its children
        if entry.file_type().wrap_read(entry.path())?.is_dir() {
            delete_tree_with_retry(&entry.path(), retries, limit_backoff)?;
        }
    }
    delete_with_retry(path, retries, limit_backoff)
}

/// Every directory of the cgroup tree at `path`, parents before children; empty when the cgroup
/// does not exist.
pub(crate) fn cgroup_tree(path: &Path) -> Result<Vec<PathBuf>, WrappedIoError> {
    let mut dirs = Vec::new();
    if !path.exists() {
        return Ok(dirs);
    }
    walk_dir(path, &mut |p| {
        dirs.push(p.to_path_buf());
        Ok::<(), WrappedIoError>(())
    })?;
    Ok(dirs)
}

/// SIGKILLs each pid, the ones that are already gone included.
pub(crate) fn kill_all(pids: &[Pid]) {
    for &pid in pids {
        tracing::debug!("kill signal SIGKILL to {}", pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    }
}

/// `path` if it exists, else its nearest existing ancestor that still has `file` (the root of a
/// hierarchy may lack a cgroup's files). A new cgroup inherits the freezer state found there.
pub(crate) fn nearest_existing_with(path: &Path, file: &str) -> Option<PathBuf> {
    path.ancestors()
        .find(|dir| dir.exists())
        .filter(|dir| dir.join(file).exists())
        .map(Path::to_path_buf)
}

pub(crate) trait WrapIoResult {
    type Target;

    fn wrap_create_dir<P: Into<PathBuf>>(self, path: P) -> Result<Self::Target, WrappedIoError>;
    fn wrap_read<P: Into<PathBuf>>(self, path: P) -> Result<Self::Target, WrappedIoError>;
    fn wrap_open<P: Into<PathBuf>>(self, path: P) -> Result<Self::Target, WrappedIoError>;
    fn wrap_write<P: Into<PathBuf>, D: Into<String>>(
        self,
        path: P,
        data: D,
    ) -> Result<Self::Target, WrappedIoError>;
    fn wrap_other<P: Into<PathBuf>>(self, path: P) -> Result<Self::Target, WrappedIoError>;
}

impl<T> WrapIoResult for Result<T, std::io::Error> {
    type Target = T;

    fn wrap_create_dir<P: Into<PathBuf>>(self, path: P) -> Result<Self::Target, WrappedIoError> {
        self.map_err(|err| WrappedIoError::CreateDir {
            err,
            path: path.into(),
        })
    }

    fn wrap_read<P: Into<PathBuf>>(self, path: P) -> Result<Self::Target, WrappedIoError> {
        self.map_err(|err| WrappedIoError::Read {
            err,
            path: path.into(),
        })
    }

    fn wrap_open<P: Into<PathBuf>>(self, path: P) -> Result<Self::Target, WrappedIoError> {
        self.map_err(|err| WrappedIoError::Open {
            err,
            path: path.into(),
        })
    }

    fn wrap_write<P: Into<PathBuf>, D: Into<String>>(
        self,
        path: P,
        data: D,
    ) -> Result<Self::Target, WrappedIoError> {
        self.map_err(|err| WrappedIoError::Write {
            err,
            path: path.into(),
            data: data.into(),
        })
    }

    fn wrap_other<P: Into<PathBuf>>(self, path: P) -> Result<Self::Target, WrappedIoError> {
        self.map_err(|err| WrappedIoError::Other {
            err,
            path: path.into(),
        })
    }
}

#[derive(Debug)]
pub enum EitherError<L, R> {
    Left(L),
    Right(R),
}

impl<L: Display, R: Display> Display for EitherError<L, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EitherError::Left(left) => <L as Display>::fmt(left, f),
            EitherError::Right(right) => <R as Display>::fmt(right, f),
        }
    }
}

impl<L: Debug + Display, R: Debug + Display> std::error::Error for EitherError<L, R> {}

#[derive(Debug)]
pub struct MustBePowerOfTwo;

impl Display for MustBePowerOfTwo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("page size must be in the format of 2^(integer)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_tree_removes_nested_cgroups_deepest_first() {
        let tmp = tempfile::tempdir().unwrap();
        let top = tmp.path().join("container");
        fs::create_dir_all(top.join("sub/deeper")).unwrap();
        fs::create_dir_all(top.join("other")).unwrap();

        delete_tree_with_retry(&top, 1, Duration::from_millis(1)).unwrap();

        assert!(!top.exists());
    }

    #[test]
    fn delete_of_a_missing_cgroup_succeeds() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("gone");

        delete_with_retry(&missing, 1, Duration::from_millis(1)).unwrap();
        delete_tree_with_retry(&missing, 1, Duration::from_millis(1)).unwrap();
    }

    #[test]
    fn delete_reports_why_the_cgroup_stays() {
        let tmp = tempfile::tempdir().unwrap();
        let busy = tmp.path().join("busy");
        fs::create_dir_all(&busy).unwrap();
        fs::write(busy.join("cgroup.procs"), "1\n").unwrap();

        let err = delete_with_retry(&busy, 2, Duration::from_millis(1)).unwrap_err();

        // the reason rmdir gave, not a generic timeout
        assert_eq!(err.inner().raw_os_error(), Some(nix::libc::ENOTEMPTY));
        assert!(err.to_string().contains("busy"), "{err}");
    }

    #[test]
    fn cgroup_tree_lists_parents_before_children() {
        let tmp = tempfile::tempdir().unwrap();
        let top = tmp.path().join("c");
        fs::create_dir_all(top.join("a/b")).unwrap();

        let tree = cgroup_tree(&top).unwrap();

        assert_eq!(tree, vec![top.clone(), top.join("a"), top.join("a/b")]);
        assert!(cgroup_tree(&tmp.path().join("none")).unwrap().is_empty());
    }

    #[test]
    fn a_new_cgroup_gets_the_state_of_its_nearest_existing_ancestor() {
        let tmp = tempfile::tempdir().unwrap();
        let parent = tmp.path().join("parent");
        fs::create_dir_all(&parent).unwrap();
        fs::write(parent.join("freezer.state"), "FROZEN\n").unwrap();

        assert_eq!(
            nearest_existing_with(&parent.join("new/child"), "freezer.state"),
            Some(parent.clone())
        );
        // a hierarchy's root has no freezer state of its own
        assert_eq!(
            nearest_existing_with(&tmp.path().join("other"), "freezer.state"),
            None
        );
    }
}

#[cfg(test)]
mod cgroup_path_tests {
    use super::*;

    #[test]
    fn relative_cgroup_paths_cannot_climb_out() {
        assert_eq!(
            clean_relative_cgroup_path(Path::new("id")),
            PathBuf::from("id")
        );
        assert_eq!(
            clean_relative_cgroup_path(Path::new("a/./b")),
            PathBuf::from("a/b")
        );
        assert_eq!(
            clean_relative_cgroup_path(Path::new("../../a/b/..")),
            PathBuf::from("a")
        );
    }

    #[test]
    fn v2_relative_paths_go_below_the_parent_of_the_callers_cgroup() {
        assert_eq!(
            below_parent_of_own_cgroup(Path::new("/user.slice/session-1.scope"), Path::new("ctr")),
            PathBuf::from("/user.slice/ctr")
        );
        assert_eq!(
            below_parent_of_own_cgroup(Path::new("/"), Path::new("../ctr")),
            PathBuf::from("/ctr")
        );
    }

    #[test]
    fn v2_relative_paths_follow_the_saved_caller_cgroups() {
        let saved = "0::/user.slice/session-1.scope\n";
        assert_eq!(
            v2_cgroup_path(Path::new("ctr"), Some(saved)).unwrap(),
            PathBuf::from("/user.slice/ctr")
        );
        // an absolute path needs no caller
        assert_eq!(
            v2_cgroup_path(Path::new("/a/ctr"), Some(saved)).unwrap(),
            PathBuf::from("/a/ctr")
        );
    }
}
