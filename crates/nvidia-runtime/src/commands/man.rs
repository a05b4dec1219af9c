//! `man DIR` (hidden, for packaging): writes the man pages, `nvidia-runtime.8` and one
//! `nvidia-runtime-<command>.8` per visible subcommand, made by clap_mangen from the same
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
    let mut top = crate::cli::command();
    // Usage lines and the help of subcommands are only complete once the whole tree is built.
    top.build();
    write_page(&args.dir, top.clone())?;
    // (building named each subcommand "nvidia-runtime-<name>", the name of its page)
    for sub in top
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set() && sub.get_name() != "help")
    {
        write_page(&args.dir, sub.clone())?;
    }
    Ok(0)
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
