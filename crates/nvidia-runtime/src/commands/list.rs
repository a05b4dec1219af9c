//! `list`: the containers under `--root`, as runc's table or JSON.

use std::io::Write;

use anyhow::{bail, Result};
use liboci_cli::{GlobalOpts, List};

use crate::cli::root_dir;
use crate::state;

pub fn list(args: List, global: &GlobalOpts) -> Result<u8> {
    let root = root_dir(global);
    let mut ids: Vec<String> = std::fs::read_dir(&root)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok())
                .filter(|entry| entry.path().join("state.json").exists())
                .filter_map(|entry| entry.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    let states: Vec<serde_json::Value> = ids
        .iter()
        .filter_map(|id| state::load(&root, id).ok())
        .map(|container| state::runc_state_json(&container))
        .collect();

    let mut out = std::io::stdout().lock();
    if args.quiet {
        for state in &states {
            writeln!(out, "{}", state["id"].as_str().unwrap_or_default())?;
        }
        return Ok(0);
    }
    match args.format.as_str() {
        "json" if states.is_empty() => writeln!(out, "null")?,
        "json" => {
            serde_json::to_writer(&mut out, &states)?;
            writeln!(out)?;
        }
        "table" => {
            let mut rows =
                vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
            for state in &states {
                let text = |key: &str| state[key].as_str().unwrap_or_default().to_owned();
                rows.push([
                    text("id"),
                    state["pid"].to_string(),
                    text("status"),
                    text("bundle"),
                    text("created"),
                    text("owner"),
                ]);
            }
            write!(out, "{}", align_columns(&rows))?;
        }
        other => bail!("invalid format option {other:?}"),
    }
    Ok(0)
}

/// Go's tabwriter as runc configures it (min width 12, padding 3); the last column is not padded.
fn align_columns<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count() + 3).max(12);
        }
    }
    let mut text = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == N {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}", width = widths[i]));
            }
        }
        text.push('\n');
    }
    text
}
