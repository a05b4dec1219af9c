//! `run`: create and start in one step; in the foreground it waits for the container, relays
//! signals (and the terminal), and deletes it unless `--keep`.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use liboci_cli::{GlobalOpts, Run};

use super::create::{create_container, CreateRequest};
use super::delete::warn_poststop_failure;
use super::{foreground, tty};
use crate::cli::root_dir;

pub fn run(args: Run, global: &GlobalOpts) -> Result<u8> {
    let root = root_dir(global);
    // runc's foreground `run` of a spec asking for a terminal, without a console socket: we
    // hold the pty and relay it (as for `exec -t`).
    let relay =
        if !args.detach && args.console_socket.is_none() && spec_wants_terminal(&args.bundle) {
            std::fs::create_dir_all(&root)
                .with_context(|| format!("cannot create state root {}", root.display()))?;
            Some(tty::ConsoleListener::bind_named(
                &root,
                &format!(".{}-tty", args.container_id),
            )?)
        } else {
            None
        };
    let console_socket = tty::console_socket(relay.as_ref(), args.console_socket.as_ref());

    let mut container = create_container(
        &CreateRequest {
            id: &args.container_id,
            bundle: &args.bundle,
            pid_file: args.pid_file.as_deref(),
            console_socket: console_socket.as_deref(),
            preserve_fds: args.preserve_fds,
            no_pivot: args.no_pivot,
            // libcontainer only takes a console socket from a detached caller
            detach: args.detach || relay.is_some(),
        },
        global,
    )?;

    // Blocked before start, so that no signal meant for the container is lost in between.
    let signals = if args.detach {
        None
    } else {
        Some(foreground::block_forwarded_signals()?)
    };

    if let Err(err) = container.start() {
        let _ = container.delete_with(true, warn_poststop_failure);
        return Err(anyhow!(err)).context("cannot start container");
    }
    let Some(signals) = signals else {
        return Ok(0);
    };

    let pid = container
        .pid()
        .ok_or_else(|| anyhow!("container init pid is unknown"))?;
    let code = foreground::wait_relaying(pid, &signals, relay);
    if !args.keep {
        container
            .delete_with(true, warn_poststop_failure)
            .context("cannot delete container after it exited")?;
    }
    code
}

/// `process.terminal` of the bundle's spec; unreadable means no (create reports the error).
fn spec_wants_terminal(bundle: &Path) -> bool {
    std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|text| serde_json::from_slice::<serde_json::Value>(&text).ok())
        .and_then(|spec| spec.pointer("/process/terminal").and_then(|t| t.as_bool()))
        .unwrap_or(false)
}
