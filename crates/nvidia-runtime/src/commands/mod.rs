//! One file per subcommand, each with one entry function returning the process exit code on
//! success; errors go back to `main`, which logs them where containerd looks and exits 1.

pub mod cdi;
pub mod completion;
pub mod configure;
mod create;
mod delete;
pub mod doctor;
mod exec;
mod executor;
mod features;
mod foreground;
pub mod hook;
mod kill;
mod list;
pub mod man;
mod pause;
mod ps;
mod resume;
mod run;
mod spec;
mod start;
mod state;
mod tty;
mod update;

use std::io::Write;

use anyhow::{bail, Result};
use liboci_cli::{CommonCmd, GlobalOpts};

use crate::cli::Command;
use crate::gpu;

/// What `create` and `run` do before the sealed re-exec (see `protect.rs`): the GPU injection,
/// which the sealed process finds in the bundle. Nothing for `exec`.
/// Whether `command` may inject GPUs before it makes a container: a `create` or `run` whose
/// `config.json` names NVIDIA, CUDA or CDI anywhere (or cannot be read here). Only where it
/// may is the injection forked beside the re-exec (`protect::reexec_sealed`): a fork costs a
/// plain container more than its check for no request saves. Never a correctness question:
/// a create with no child injecting for it does the whole injection itself.
pub fn may_inject(command: &Command) -> bool {
    match command {
        Command::Create(args) => bundle_may_ask_for_gpus(&args.bundle),
        Command::Common(CommonCmd::Run(args)) => bundle_may_ask_for_gpus(&args.bundle),
        _ => false,
    }
}

/// Whether the `config.json` of `bundle` names NVIDIA, CUDA or CDI anywhere, or cannot be
/// read here (see [`may_inject`]).
pub(crate) fn bundle_may_ask_for_gpus(bundle: &std::path::Path) -> bool {
    match inject::textfile::read_text(&bundle.join("config.json"), 64 << 20) {
        Ok(Some(text)) => ["NVIDIA", "nvidia", "CUDA", "cdi"]
            .iter()
            .any(|word| text.contains(word)),
        _ => true,
    }
}

/// `spec_written`: see [`gpu::prepare_bundle`].
pub fn before_sealed_reexec(
    command: &Command,
    global: &GlobalOpts,
    spec_written: &dyn Fn(),
) -> Result<Option<gpu::Injection>> {
    let (id, bundle) = match command {
        Command::Create(args) => (&args.container_id, &args.bundle),
        Command::Common(CommonCmd::Run(args)) => (&args.container_id, &args.bundle),
        _ => return Ok(None),
    };
    create::inject_before_reexec(id, bundle, global, spec_written).map(Some)
}

pub fn run(command: Command, global: &GlobalOpts) -> Result<u8> {
    match command {
        Command::Create(args) => create::create(args, global),
        Command::Start(args) => start::start(args, global),
        Command::State(args) => state::state(args, global),
        Command::Kill(args) => kill::kill(args, global),
        Command::Delete(args) => delete::delete(args, global),
        Command::Doctor(args) => doctor::doctor(args),
        Command::Cdi(args) => cdi::cdi(args),
        Command::Hook(args) => hook::hook(args),
        Command::Checkpoint(_) => bail!("checkpoint is not supported by nvidia-runtime"),
        Command::Completion(args) => completion::completion(args),
        Command::Man(args) => man::man(args),
        Command::Configure(args) => configure::configure(args),
        Command::Common(cmd) => match cmd {
            CommonCmd::Run(args) => run::run(args, global),
            CommonCmd::Exec(args) => exec::exec(args, global),
            CommonCmd::Ps(args) => ps::ps(args, global),
            CommonCmd::Pause(args) => pause::pause(args, global),
            CommonCmd::Resume(args) => resume::resume(args, global),
            CommonCmd::Update(args) => update::update(args, global),
            CommonCmd::Features(_) => features::features(),
            CommonCmd::Spec(args) => spec::spec(args),
            CommonCmd::List(args) => list::list(args, global),
            CommonCmd::Events(_) => bail!("events is not supported by nvidia-runtime"),
            CommonCmd::Checkpointt(_) => bail!("checkpoint is not supported by nvidia-runtime"),
        },
    }
}

/// For the subcommands whose output runc prints as indented JSON.
pub(super) fn print_json(value: &serde_json::Value) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}
