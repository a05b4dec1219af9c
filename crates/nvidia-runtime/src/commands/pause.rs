//! `pause`: freeze every process of a running container.

use anyhow::{bail, Context, Result};
use libcontainer::container::ContainerStatus;
use liboci_cli::{GlobalOpts, Pause};

use crate::cli::root_dir;
use crate::state;

pub fn pause(args: Pause, global: &GlobalOpts) -> Result<u8> {
    let mut container = state::load(&root_dir(global), &args.container_id)?;
    if container.status() != ContainerStatus::Running {
        bail!("container not running");
    }
    container.pause().context("cannot pause container")?;
    Ok(0)
}
