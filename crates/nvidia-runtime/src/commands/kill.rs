//! `kill`: send a signal to the container's init (or, with `--all`, every process of it).

use anyhow::{anyhow, bail, Result};
use libcontainer::container::ContainerStatus;
use libcontainer::error::LibcontainerError;
use libcontainer::signal::Signal;
use liboci_cli::GlobalOpts;

use crate::cli::{root_dir, Kill};
use crate::state;

pub fn kill(args: Kill, global: &GlobalOpts) -> Result<u8> {
    let mut container = state::load(&root_dir(global), &args.container_id)?;
    let signal = Signal::try_from(args.signal.as_str())
        .map_err(|_| anyhow!("unknown signal {:?}", args.signal))?;
    // containerd matches "container not running" to treat the kill as already done.
    if !args.all
        && matches!(
            container.status(),
            ContainerStatus::Stopped | ContainerStatus::Creating
        )
    {
        bail!("container not running");
    }
    container.kill(signal, args.all).map_err(|err| match err {
        LibcontainerError::IncorrectStatus(_) => anyhow!("container not running"),
        other => anyhow!(other),
    })?;
    Ok(0)
}
