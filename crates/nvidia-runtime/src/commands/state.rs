//! `state`: the container's state in runc's JSON shape (containerd parses it).

use anyhow::Result;
use liboci_cli::{GlobalOpts, State};

use super::print_json;
use crate::cli::root_dir;
use crate::state;

pub fn state(args: State, global: &GlobalOpts) -> Result<u8> {
    let container = state::load(&root_dir(global), &args.container_id)?;
    print_json(&state::runc_state_json(&container))?;
    Ok(0)
}
