//! Looking containers up in the state root, and the error texts containerd matches on.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use libcgroups::common::{create_cgroup_manager, AnyCgroupManager};
use libcontainer::container::{Container, ContainerStatus};

/// Loads a container's state. The "does not exist" wording matters: containerd maps it to
/// NotFound (`delete` of a vanished container is then not an error for it).
pub fn load(root: &Path, id: &str) -> Result<Container> {
    validate_id(id)?;
    let dir = root.join(id);
    if !dir.join("state.json").exists() {
        return Err(anyhow!("container {id:?} does not exist"));
    }
    let mut container =
        Container::load(dir).with_context(|| format!("cannot load state of container {id:?}"))?;
    container
        .refresh_status()
        .with_context(|| format!("cannot refresh status of container {id:?}"))?;
    Ok(container)
}

/// runc's rule: an id is a file name made of `[A-Za-z0-9_+.-]`; anything else (a `/`, `..`)
/// could make the state path escape the root.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(anyhow!("invalid container id format: {id:?}"))
    }
}

/// Ids being created live in `<root>/@creating/<id>`: `@` is never in an id, so this is never
/// taken for a container's state dir.
const CREATING: &str = "@creating";

/// An id taken by one create, from its first process until the container exists (its state
/// dir holds the id then) or the create fails. A symlink whose target names the creating
/// process (pid and start time, which its re-exec keeps): made atomically, so of two creates
/// of one id exactly one gets it, before either touches the bundle; one whose process died
/// (kill -9) is taken over by the next create of the id.
///
/// Released on drop; `exec` runs no destructors, so it survives the re-exec to the sealed copy.
pub struct Reservation {
    path: PathBuf,
    owner: String,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if std::fs::read_link(&self.path).is_ok_and(|held| held.as_os_str() == self.owner.as_str())
        {
            let _ = std::fs::remove_file(&self.path);
            // only when empty: the state root then holds nothing but containers, as runc's
            if let Some(dir) = self.path.parent() {
                if std::fs::remove_dir(dir).is_err() {
                    remove_stale_reservations(dir);
                    let _ = std::fs::remove_dir(dir);
                }
            }
        }
    }
}

/// Reserves `id` under `root` for this process (already reserved by it before its re-exec:
/// kept). Fails when the id exists or another live process is creating it.
pub fn reserve(root: &Path, id: &str) -> Result<Reservation> {
    validate_id(id)?;
    let dir = root.join(CREATING);
    let owner = inject::Owner::this_process();
    let reservation = Reservation {
        path: dir.join(id),
        owner: owner.to_string(),
    };
    let mut attempts = 0;
    loop {
        attempts += 1;
        let err = match std::os::unix::fs::symlink(&reservation.owner, &reservation.path) {
            Ok(()) => break,
            Err(err) => err,
        };
        if err.kind() == std::io::ErrorKind::NotFound && attempts <= 3 {
            // (made afresh when another create's release removed it meanwhile)
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create state dir {}", dir.display()))?;
            continue;
        }
        if err.kind() != std::io::ErrorKind::AlreadyExists || attempts > 3 {
            return Err(anyhow!(err))
                .with_context(|| format!("cannot reserve container id {id:?}"));
        }
        let Ok(held) = std::fs::read_link(&reservation.path) else {
            continue; // released meanwhile
        };
        if held.as_os_str() == reservation.owner.as_str() {
            break; // ours, from before the re-exec
        }
        let holder = held.to_str().and_then(|t| t.parse::<inject::Owner>().ok());
        if let Some(holder) = holder.filter(inject::Owner::is_alive) {
            bail!(
                "container with id {id:?} is being created by another process (pid {})",
                holder.pid
            );
        }
        take_over(&dir, &reservation.path, &held)?;
    }
    if root.join(id).exists() {
        // (the reservation goes with `reservation`)
        bail!("container with id {id:?} already exists");
    }
    Ok(reservation)
}

/// What creates killed before they finished left in `dir`.
fn remove_stale_reservations(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(held) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let holder = held.to_str().and_then(|t| t.parse::<inject::Owner>().ok());
        if !holder.is_some_and(|holder| holder.is_alive()) {
            let _ = take_over(dir, &entry.path(), &held);
        }
    }
}

/// Removes a reservation left by a dead process, under a lock, so that two creates that
/// both found it stale cannot each remove what the other made next.
fn take_over(dir: &Path, path: &Path, stale: &Path) -> Result<()> {
    let handle = std::fs::File::open(dir)
        .with_context(|| format!("cannot open state dir {}", dir.display()))?;
    let _lock = nix::fcntl::Flock::lock(handle, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, errno)| anyhow!(errno))
        .with_context(|| format!("cannot lock state dir {}", dir.display()))?;
    if std::fs::read_link(path).is_ok_and(|held| held == stale) {
        tracing::info!(reservation = %path.display(), "taking over the id of a create that died");
        std::fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display()))?;
    }
    Ok(())
}

/// The cgroup manager of an existing container, from the config libcontainer saved at create.
pub fn cgroup_manager(container: &Container) -> Result<AnyCgroupManager> {
    let config = container
        .cgroup_config()
        .context("cannot read the container's saved config")?;
    create_cgroup_manager(config).context("cannot open the container's cgroup")
}

pub fn status_name(status: ContainerStatus) -> &'static str {
    match status {
        ContainerStatus::Creating => "creating",
        ContainerStatus::Created => "created",
        ContainerStatus::Running => "running",
        ContainerStatus::Paused => "paused",
        ContainerStatus::Stopped => "stopped",
    }
}

/// The JSON `runc state` prints (containerd's go-runc decodes it).
pub fn runc_state_json(container: &Container) -> serde_json::Value {
    let status = container.status();
    let pid = match status {
        ContainerStatus::Stopped => 0,
        _ => container.pid().map(|pid| pid.as_raw()).unwrap_or(0),
    };
    let rootfs = rootfs_of(container.bundle()).unwrap_or_default();
    let created = container
        .created()
        .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
        .unwrap_or_default();
    let owner = container
        .creator()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut state = serde_json::json!({
        "ociVersion": "1.2.0",
        "id": container.id(),
        "pid": pid,
        "status": status_name(status),
        "bundle": container.bundle(),
        "rootfs": rootfs,
        "created": created,
        "owner": owner,
    });
    if let Some(annotations) = &container.state.annotations {
        if !annotations.is_empty() {
            state["annotations"] = serde_json::json!(annotations);
        }
    }
    state
}

/// The rootfs as runc reports it: the bundle's `root.path`, made absolute against the bundle.
fn rootfs_of(bundle: &Path) -> Option<String> {
    let text = std::fs::read(bundle.join("config.json")).ok()?;
    let config: serde_json::Value = serde_json::from_slice(&text).ok()?;
    let root = Path::new(config.get("root")?.get("path")?.as_str()?);
    Some(bundle.join(root).to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_reserved_once_and_a_dead_creator_s_is_taken_over() {
        struct TempRoot(PathBuf);
        impl TempRoot {
            fn path(&self) -> &Path {
                &self.0
            }
        }
        impl Drop for TempRoot {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let root = TempRoot(
            std::env::temp_dir().join(format!("nvidia-runtime-reserve-{}", std::process::id())),
        );
        std::fs::create_dir_all(root.path()).unwrap();
        let first = reserve(root.path(), "a").unwrap();
        // the same process again (as after its re-exec): kept
        let again = reserve(root.path(), "a").unwrap();
        std::mem::forget(again);
        // a live other process (pid 1) holds "b": refused, naming it
        let init = inject::Owner {
            pid: 1,
            start: std::fs::read_to_string("/proc/1/stat")
                .unwrap()
                .rsplit(')')
                .next()
                .unwrap()
                .split_whitespace()
                .nth(19)
                .unwrap()
                .parse()
                .unwrap(),
        };
        let b = root.path().join(CREATING).join("b");
        std::os::unix::fs::symlink(init.to_string(), &b).unwrap();
        let err = reserve(root.path(), "b").err().unwrap().to_string();
        assert!(
            err.contains("being created by another process (pid 1)"),
            "{err}"
        );
        // a dead one's: taken over
        std::fs::remove_file(&b).unwrap();
        std::os::unix::fs::symlink("999999999:1", &b).unwrap();
        let taken = reserve(root.path(), "b").unwrap();
        assert_eq!(
            std::fs::read_link(&b).unwrap().to_str().unwrap(),
            inject::Owner::this_process().to_string()
        );
        drop(taken);
        assert!(b.symlink_metadata().is_err(), "released on drop");
        // an existing container's id: refused, and nothing left reserved
        drop(first);
        std::fs::create_dir(root.path().join("c")).unwrap();
        assert!(reserve(root.path(), "c").is_err());
        assert!(root
            .path()
            .join(CREATING)
            .join("c")
            .symlink_metadata()
            .is_err());
    }

    #[test]
    fn ids_that_could_escape_the_root_are_refused() {
        for bad in ["", ".", "..", "a/b", "../x", "a b", "é"] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["abc", "a.b-c_d+e", "0123456789abcdef"] {
            validate_id(good).unwrap();
        }
    }
}
