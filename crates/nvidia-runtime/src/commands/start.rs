//! `start`: let a created container's init run the process.

use anyhow::{bail, Context, Result};
use libcontainer::container::ContainerStatus;
use liboci_cli::{GlobalOpts, Start};

use crate::cli::root_dir;
use crate::state;

pub fn start(args: Start, global: &GlobalOpts) -> Result<u8> {
    let mut container = state::load(&root_dir(global), &args.container_id)?;
    match container.status() {
        ContainerStatus::Created => {}
        ContainerStatus::Stopped => bail!("cannot start a container that has stopped"),
        ContainerStatus::Running | ContainerStatus::Paused => {
            bail!("cannot start an already running container")
        }
        ContainerStatus::Creating => bail!("cannot start a container that is still being created"),
    }
    container.start().context("cannot start container")?;
    Ok(0)
}
