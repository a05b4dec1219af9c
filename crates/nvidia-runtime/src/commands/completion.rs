//! `completion SHELL`: the shell's completion script for every subcommand and option, made by
//! clap_complete from the same definition that parses argv, so it can never be out of date.

use std::io::Write;

use anyhow::Result;
use clap_complete::Shell;

/// print a shell completion script (bash, zsh, fish, elvish, powershell)
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  # bash, for every user (Debian's bash-completion reads this directory)
  nvidia-runtime completion bash > /usr/share/bash-completion/completions/nvidia-runtime
  # zsh: a directory on $fpath
  nvidia-runtime completion zsh > \"${fpath[1]}/_nvidia-runtime\"
  # fish
  nvidia-runtime completion fish > ~/.config/fish/completions/nvidia-runtime.fish

The Debian package installs all three already.")]
pub struct Args {
    /// the shell to write the script for
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn completion(args: Args) -> Result<u8> {
    // clap_complete offers hidden subcommands too; offer only what --help lists.
    let full = crate::cli::command();
    let mut visible = clap::Command::new("nvidia-runtime")
        .args(full.get_arguments().cloned())
        .subcommands(
            full.get_subcommands()
                .filter(|sub| !sub.is_hide_set())
                .cloned(),
        );
    // into memory first: clap_complete panics when a write fails (`| head`)
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut visible, "nvidia-runtime", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)?;
    out.flush()?;
    Ok(0)
}
