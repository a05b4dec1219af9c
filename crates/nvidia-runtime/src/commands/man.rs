//! `man DIR` (hidden, for packaging): writes the man pages, `nvidia-runtime.8` and one
//! `nvidia-runtime-<command>[-<subcommand>].8` per visible subcommand at any depth, made by clap_mangen from the same
//! definition that parses argv. Section 8, as runc's: these are commands for the administrator.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// write the man pages into a directory (for packaging)
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  nvidia-runtime man target/man && man -l target/man/nvidia-runtime.8")]
pub struct Args {
    /// the directory to write them in (created if missing)
    pub dir: PathBuf,
}

pub fn man(args: Args) -> Result<u8> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    // No `help` pseudo-subcommands: they would be listed under SEE ALSO without a page.
    let mut top = without_help_subcommands(crate::cli::command());
    // Usage lines and the help of subcommands are only complete once the whole tree is built
    // (building names each subcommand "nvidia-runtime-<name>[-<name>]", the name of its page).
    top.build();
    write_pages(&args.dir, &top)?;
    Ok(0)
}

/// The page of `cmd` and of every visible subcommand at any depth (`cdi generate` too).
fn write_pages(dir: &Path, cmd: &clap::Command) -> Result<()> {
    write_page(dir, cmd.clone())?;
    for sub in cmd.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        write_pages(dir, sub)?;
    }
    Ok(())
}

fn without_help_subcommands(cmd: clap::Command) -> clap::Command {
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|sub| sub.get_name().to_owned())
        .collect();
    names
        .iter()
        .fold(cmd.disable_help_subcommand(true), |cmd, name| {
            cmd.mut_subcommand(name, without_help_subcommands)
        })
}

fn write_page(dir: &Path, cmd: clap::Command) -> Result<()> {
    let man = clap_mangen::Man::new(cmd)
        .section("8")
        .source(format!("nvidia-runtime {}", env!("CARGO_PKG_VERSION")))
        .manual("nvidia-runtime");
    let path = dir.join(man.get_filename());
    let mut page = Vec::new();
    man.render(&mut page)?;
    std::fs::write(&path, page).with_context(|| format!("cannot write {}", path.display()))
}
