//! One function per runc subcommand. Each returns the process exit code on success; errors go
//! back to `main`, which logs them where containerd looks and exits 1.

pub mod cdi;
pub mod doctor;
mod exec;
mod executor;
mod foreground;
pub mod hook;
mod inspect;
mod lifecycle;
mod tty;
mod update;

use anyhow::{bail, Result};
use liboci_cli::{CommonCmd, GlobalOpts};

use crate::cli::Command;
use crate::gpu;

/// What `create` and `run` do before the sealed re-exec (see `protect.rs`): the GPU injection,
/// which the sealed process finds in the bundle. Nothing for `exec`.
pub fn before_sealed_reexec(
    command: &Command,
    global: &GlobalOpts,
) -> Result<Option<gpu::Injection>> {
    let (id, bundle) = match command {
        Command::Create(args) => (&args.container_id, &args.bundle),
        Command::Common(CommonCmd::Run(args)) => (&args.container_id, &args.bundle),
        _ => return Ok(None),
    };
    lifecycle::inject_before_reexec(id, bundle, global).map(Some)
}

pub fn run(command: Command, global: &GlobalOpts) -> Result<u8> {
    match command {
        Command::Create(args) => lifecycle::create(args, global),
        Command::Start(args) => lifecycle::start(args, global),
        Command::State(args) => inspect::state(args, global),
        Command::Kill(args) => lifecycle::kill(args, global),
        Command::Delete(args) => lifecycle::delete(args, global),
        Command::Doctor(args) => doctor::doctor(args),
        Command::Cdi(args) => cdi::cdi(args),
        Command::Hook(args) => hook::hook(args),
        Command::Common(cmd) => match cmd {
            CommonCmd::Run(args) => lifecycle::run(args, global),
            CommonCmd::Exec(args) => exec::exec(args, global),
            CommonCmd::Ps(args) => inspect::ps(args, global),
            CommonCmd::Pause(args) => lifecycle::pause(args, global),
            CommonCmd::Resume(args) => lifecycle::resume(args, global),
            CommonCmd::Update(args) => update::update(args, global),
            CommonCmd::Features(_) => inspect::features(),
            CommonCmd::Spec(args) => inspect::spec(args),
            CommonCmd::List(args) => inspect::list(args, global),
            CommonCmd::Events(_) => bail!("events is not supported by nvidia-runtime"),
            CommonCmd::Checkpointt(_) => bail!("checkpoint is not supported by nvidia-runtime"),
        },
    }
}
