//! `spec`: write runc's template `config.json` into a bundle dir.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use liboci_cli::Spec;

pub fn spec(args: Spec) -> Result<u8> {
    let dir = args.bundle.unwrap_or_else(|| PathBuf::from("."));
    let path = dir.join("config.json");
    if path.exists() {
        bail!("File {} exists. Remove it first", display(&path));
    }
    let spec = if args.rootless {
        let uid = nix::unistd::getuid().as_raw();
        let gid = nix::unistd::getgid().as_raw();
        oci_spec::runtime::Spec::rootless(uid, gid)
    } else {
        oci_spec::runtime::Spec::default()
    };
    // runc's template asks for a terminal; keep the same default.
    let mut spec = spec;
    if let Some(mut process) = spec.process().clone() {
        process.set_terminal(Some(true));
        spec.set_process(Some(process));
    }
    let text = serde_json::to_vec_pretty(&spec)?;
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", display(&path)))?;
    Ok(0)
}

fn display(path: &Path) -> String {
    path.display().to_string()
}
