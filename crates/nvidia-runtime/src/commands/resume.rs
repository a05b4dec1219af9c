//! `resume`: thaw a paused container.

use anyhow::{bail, Context, Result};
use libcontainer::container::ContainerStatus;
use liboci_cli::{GlobalOpts, Resume};

use crate::cli::root_dir;
use crate::state;

pub fn resume(args: Resume, global: &GlobalOpts) -> Result<u8> {
    let mut container = state::load(&root_dir(global), &args.container_id)?;
    if container.status() != ContainerStatus::Paused {
        bail!("container not paused");
    }
    container.resume().context("cannot resume container")?;
    Ok(0)
}
