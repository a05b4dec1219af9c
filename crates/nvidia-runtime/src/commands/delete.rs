//! `delete`: remove a stopped container (with `--force`, any container) and everything it
//! left: processes, cgroups, state.

use anyhow::{anyhow, bail, Context, Result};
use libcontainer::container::{Container, ContainerStatus};
use liboci_cli::{Delete, GlobalOpts};

use crate::cli::root_dir;
use crate::{logging, state};

pub fn delete(args: Delete, global: &GlobalOpts) -> Result<u8> {
    let root = root_dir(global);
    state::validate_id(&args.container_id)?;
    let dir = root.join(&args.container_id);
    let container = match state::load(&root, &args.container_id) {
        Ok(container) => container,
        Err(err) if args.force && dir.join("state.json").exists() => {
            // The state is there but unreadable: what it would have said is looked up in what
            // create saved beside it, so that the processes do not outlive their container.
            tracing::warn!(
                "{}; removing the container from its saved config",
                logging::describe(&err)
            );
            Container::delete_unloadable(&dir, &args.container_id, global.systemd_cgroup)
                .with_context(|| {
                    format!(
                        "cannot delete container {:?} whose state is unreadable; its state dir {} \
                         is left: kill the processes of its cgroup, remove the cgroup, then \
                         remove that dir",
                        args.container_id,
                        dir.display()
                    )
                })?;
            return Ok(0);
        }
        Err(err) => {
            // As runc: a dir without a state file is what an aborted create leaves; remove it.
            if dir.exists() && !dir.join("state.json").exists() {
                let _ = std::fs::remove_dir_all(&dir);
            }
            if args.force {
                return Ok(0);
            }
            return Err(err);
        }
    };
    let mut container = container;
    if !args.force
        && matches!(
            container.status(),
            ContainerStatus::Running | ContainerStatus::Paused | ContainerStatus::Creating
        )
    {
        bail!(
            "cannot delete container {} that is not stopped: {}",
            args.container_id,
            state::status_name(container.status())
        );
    }
    container
        .delete_with(args.force, warn_poststop_failure)
        .context("cannot delete container")?;
    Ok(0)
}

/// The OCI runtime spec's rule: a failed poststop hook is a warning, and the delete goes on.
/// (libcontainer's own warnings reach the log only with `--debug`.)
pub(super) fn warn_poststop_failure(
    hook: &oci_spec::runtime::Hook,
    err: libcontainer::hooks::HookError,
) {
    tracing::warn!(
        "poststop hook {} failed: {}",
        hook.path().display(),
        logging::describe(&anyhow!(err))
    );
}
