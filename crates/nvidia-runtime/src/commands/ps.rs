//! `ps`: the container's processes, as JSON pids (containerd) or the host's `ps` table.

use std::io::Write;
use std::process::Command;

use anyhow::{bail, Context, Result};
use libcgroups::common::CgroupManager;
use libcontainer::container::Container;
use liboci_cli::{GlobalOpts, Ps};

use crate::cli::root_dir;
use crate::state;

fn container_pids(container: &Container) -> Result<Vec<i32>> {
    let manager = state::cgroup_manager(container)?;
    let mut pids: Vec<i32> = manager
        .get_all_pids()
        .context("cannot list the container's processes")?
        .into_iter()
        .map(|pid| pid.as_raw())
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

pub fn ps(args: Ps, global: &GlobalOpts) -> Result<u8> {
    let container = state::load(&root_dir(global), &args.container_id)?;
    let pids = container_pids(&container)?;
    match args.format.as_str() {
        "json" => {
            let mut out = std::io::stdout().lock();
            serde_json::to_writer(&mut out, &pids)?;
            writeln!(out)?;
        }
        "table" => print_ps_table(&pids, &args.ps_options)?,
        other => bail!("invalid format option {other:?}"),
    }
    Ok(0)
}

/// As runc: run the host's `ps` and keep the header and the container's lines.
fn print_ps_table(pids: &[i32], options: &[String]) -> Result<()> {
    let options: Vec<String> = if options.is_empty() {
        vec!["-ef".into()]
    } else {
        options.to_vec()
    };
    let output = Command::new("ps")
        .args(&options)
        .output()
        .context("cannot run ps")?;
    if !output.status.success() {
        bail!(
            "ps failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let pid_column = header
        .split_whitespace()
        .position(|field| field == "PID")
        .context("ps output has no PID column")?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{header}")?;
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(pid_column)
            .and_then(|field| field.parse::<i32>().ok());
        if pid.is_some_and(|pid| pids.contains(&pid)) {
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}
