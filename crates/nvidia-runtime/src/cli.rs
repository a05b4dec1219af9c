//! Command line: runc's global flags before the subcommand, runc's subcommands (parsed by
//! liboci-cli, youki's runc-compatible definitions), and our own. The texts of liboci-cli's
//! subcommands are replaced by ours (`help.rs`); parse with [`parse`], so that `--help` shows
//! them.

mod help;

use std::ffi::OsString;
#[cfg(test)]
use std::path::Path;
use std::path::PathBuf;

use clap::{Args, FromArgMatches, Subcommand};

/// Where container state lives when `--root` is not given (runc's is `/run/runc`).
pub const DEFAULT_ROOT: &str = "/run/nvidia-runtime";

/// The command line: what [`parse`] returns.
#[derive(Args, Debug)]
pub struct Cli {
    #[command(flatten)]
    pub options: Options,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The options before the subcommand.
#[derive(Args, Debug)]
pub struct Options {
    #[command(flatten)]
    pub global: liboci_cli::GlobalOpts,

    /// print the version (runc's format, which dockerd parses)
    #[arg(short = 'v', long = "version")]
    pub version: bool,
}

/// The top level's own settings, shared by the whole definition ([`command`]) and the one
/// [`parse`] makes for a runc subcommand.
fn top_level() -> clap::Command {
    clap::Command::new("nvidia-runtime")
        .disable_version_flag(true)
        // runc prints its help when run with no subcommand
        .arg_required_else_help(true)
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
    /// not supported (liboci-cli spells this one `checkpointt`, kept hidden)
    Checkpoint(liboci_cli::Checkpoint),
    #[command(flatten)]
    Common(liboci_cli::CommonCmd),
    /// check this host for GPU containers and say how to fix what is wrong
    Doctor(crate::commands::doctor::Doctor),
    /// generate, list and refresh CDI specs of this host's GPUs
    #[command(after_help = CDI_EXAMPLES)]
    Cdi(crate::commands::cdi::Cdi),
    /// an OCI createContainer hook named by generated CDI specs (not run by hand)
    #[command(after_help = HOOK_EXAMPLES)]
    Hook(crate::commands::hook::Hook),
    /// print a shell completion script (bash, zsh, fish)
    Completion(crate::commands::completion::Args),
    /// write the man pages into a directory (used when packaging)
    #[command(hide = true)]
    Man(crate::commands::man::Args),
    /// register nvidia-runtime with Docker, containerd or CRI-O
    Configure(crate::commands::configure::Configure),
}

const CDI_EXAMPLES: &str = "\
Examples:
  nvidia-runtime cdi refresh                        # /var/run/cdi/nvidia.yaml, atomically
  nvidia-runtime cdi generate --output /etc/cdi/nvidia.yaml --device-name-strategy index,uuid
  nvidia-runtime cdi list                           # devices every engine sees; stale specs on stderr";

const HOOK_EXAMPLES: &str = "\
Examples:
  # as a generated CDI spec names it; the OCI container state comes on stdin
  nvidia-runtime hook create-symlinks --link libcuda.so.1::/usr/lib/x86_64-linux-gnu/libcuda.so
  nvidia-runtime hook update-ldcache --folder /usr/lib/x86_64-linux-gnu
  nvidia-runtime hook disable-device-node-modification";

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

/// The whole command line definition, with our texts: what the completion scripts and the
/// man pages are made from, and what [`parse`] falls back to.
pub fn command() -> clap::Command {
    help::apply(Cli::augment_args(top_level())).mut_subcommand("checkpointt", |sub| sub.hide(true))
}

/// Parses argv (exits with clap's message and status on a usage error, or after `--help`).
pub fn parse() -> Cli {
    try_parse_from(std::env::args_os()).unwrap_or_else(|err| err.exit())
}

/// [`parse`] of `argv` (its first item is the program's name), an error where clap has one:
/// a usage error, or `--help` (`clap::Error::exit` prints either as clap does).
pub fn try_parse_from(
    argv: impl IntoIterator<Item = impl Into<OsString>>,
) -> Result<Cli, clap::Error> {
    let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    if let Some(cli) = parse_runc_subcommand(&argv) {
        return Ok(cli);
    }
    let mut matches = command().try_get_matches_from(argv)?;
    Cli::from_arg_matches_mut(&mut matches)
}

/// The subcommands that engines run, several times per container (containerd's shim: create,
/// start, state, kill, delete, and the rest of runc's), parsed by a definition of the top level
/// and that subcommand only: building every subcommand's arguments for each start of the
/// runtime costs it more than its own work in `start` or `state` (docs/benchmarks.md). Each is
/// built as [`command`] builds it (the unit tests compare the two). `None` for any other
/// command line, or any error, `--help` included: the whole definition then parses it, and
/// says what it says of it.
fn parse_runc_subcommand(argv: &[OsString]) -> Option<Cli> {
    // where the subcommand starts is clap's to say, from the options before it
    let name = Options::augment_args(top_level())
        .allow_external_subcommands(true)
        .try_get_matches_from(argv)
        .ok()?
        .subcommand_name()?
        .to_owned();
    let subcommand = runc_subcommand(&name)?;
    let mut matches = Options::augment_args(top_level())
        .subcommand(subcommand)
        .try_get_matches_from(argv)
        .ok()?;
    Cli::from_arg_matches_mut(&mut matches).ok()
}

/// What a derived `clap::Args` adds to a command: its arguments.
type AddArguments = fn(clap::Command) -> clap::Command;

/// runc's subcommands, by name, and the arguments liboci-cli gives each (see
/// [`parse_runc_subcommand`]). `checkpoint` is left out: it is not supported.
const RUNC_SUBCOMMANDS: [(&str, AddArguments); 15] = {
    use liboci_cli as oci;
    [
        ("create", oci::Create::augment_args),
        ("start", oci::Start::augment_args),
        ("state", oci::State::augment_args),
        ("kill", Kill::augment_args),
        ("delete", oci::Delete::augment_args),
        ("run", oci::Run::augment_args),
        ("exec", oci::Exec::augment_args),
        ("ps", oci::Ps::augment_args),
        ("pause", oci::Pause::augment_args),
        ("resume", oci::Resume::augment_args),
        ("update", oci::Update::augment_args),
        ("events", oci::Events::augment_args),
        ("features", oci::Features::augment_args),
        ("list", oci::List::augment_args),
        ("spec", oci::Spec::augment_args),
    ]
};

/// runc's subcommand `name` alone, with our texts (see [`parse_runc_subcommand`]); `None` for
/// any other name.
fn runc_subcommand(name: &str) -> Option<clap::Command> {
    let (name, arguments) = RUNC_SUBCOMMANDS
        .into_iter()
        .find(|(known, _)| *known == name)?;
    Some(help::apply_to_subcommand(arguments(clap::Command::new(
        name,
    ))))
}

/// `--version`, in runc's shape: dockerd (`docker info`) takes the runtime's name and version
/// from the first line containing "version" and the commit from the line starting `commit:`,
/// so no other line may contain the word "version". The commit and libcontainer's version
/// come from the build (`build.rs`: git, Cargo.lock); the spec version from oci-spec.
pub fn version_text() -> String {
    format!(
        "nvidia-runtime version {}\ncommit: {}\nspec: {}\nlibcontainer: {}\n",
        env!("CARGO_PKG_VERSION"),
        env!("NVIDIA_RUNTIME_COMMIT"),
        oci_spec::runtime::VERSION,
        env!("NVIDIA_RUNTIME_LIBCONTAINER"),
    )
}

#[cfg(test)]
mod tests;
