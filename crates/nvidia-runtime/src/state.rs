//! Looking containers up in the state root, and the error texts containerd matches on.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use libcgroups::common::{create_cgroup_manager, AnyCgroupManager, CgroupConfig};
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

/// The cgroup manager of an existing container, from the config libcontainer saved at create.
pub fn cgroup_manager(container: &Container) -> Result<AnyCgroupManager> {
    let config = container
        .spec()
        .context("cannot read the container's saved config")?;
    create_cgroup_manager(CgroupConfig {
        cgroup_path: config.cgroup_path,
        systemd_cgroup: container.systemd(),
        container_name: container.id().to_owned(),
    })
    .context("cannot open the container's cgroup")
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
    fn ids_that_could_escape_the_root_are_refused() {
        for bad in ["", ".", "..", "a/b", "../x", "a b", "é"] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["abc", "a.b-c_d+e", "0123456789abcdef"] {
            validate_id(good).unwrap();
        }
    }
}
