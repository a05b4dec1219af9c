//! Command line: runc's global flags before the subcommand, runc's subcommands (parsed by
//! liboci-cli, youki's runc-compatible definitions), and our own.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Where container state lives when `--root` is not given (runc's is `/run/runc`).
pub const DEFAULT_ROOT: &str = "/run/nvidia-runtime";

#[derive(Parser, Debug)]
#[command(
    name = "nvidia-runtime",
    about = "OCI runtime that injects NVIDIA GPUs (runc-compatible CLI)",
    disable_version_flag = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: liboci_cli::GlobalOpts,

    /// print the version (runc's format, which dockerd parses)
    #[arg(short = 'v', long = "version", global = true)]
    pub version: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

// Parsed once per process; boxing the larger variants would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// create a container
    Create(liboci_cli::Create),
    /// start a created container
    Start(liboci_cli::Start),
    /// output the state of a container
    State(liboci_cli::State),
    /// send a signal to the container's init process (default: SIGTERM)
    Kill(Kill),
    /// delete a container
    Delete(liboci_cli::Delete),
    #[command(flatten)]
    Common(liboci_cli::CommonCmd),
    /// check this host for GPU containers and say how to fix what is wrong
    Doctor(crate::commands::doctor::Doctor),
    /// generate, list and refresh CDI specs of this host's GPUs
    Cdi(crate::commands::cdi::Cdi),
    /// an OCI createContainer hook named by generated CDI specs (not run by hand)
    Hook(crate::commands::hook::Hook),
}

/// runc's `kill`: the signal is optional and defaults to SIGTERM (liboci-cli requires it).
#[derive(clap::Args, Debug)]
pub struct Kill {
    #[arg(value_parser = clap::builder::NonEmptyStringValueParser::new(), required = true)]
    pub container_id: String,
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
    /// send the signal to all processes in the container
    #[arg(short, long)]
    pub all: bool,
}

impl Command {
    /// runc exits 255 when `exec` fails, so that callers can tell it from the process's status.
    pub fn failure_code(&self) -> u8 {
        match self {
            Command::Common(liboci_cli::CommonCmd::Exec(_)) => 255,
            _ => 1,
        }
    }
}

pub fn root_dir(global: &liboci_cli::GlobalOpts) -> PathBuf {
    global
        .root
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT))
}

pub fn version_text() -> String {
    format!(
        "nvidia-runtime version {}\ncommit: {}\nspec: {}\nlibcontainer: 0.7\n",
        env!("CARGO_PKG_VERSION"),
        option_env!("NVIDIA_RUNTIME_COMMIT").unwrap_or("unknown"),
        oci_spec_version(),
    )
}

fn oci_spec_version() -> &'static str {
    "1.2.0"
}
