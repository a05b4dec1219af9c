//! The read-only subcommands: state, ps, list, features, spec. These (and only these) write to
//! stdout, in runc's formats.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use libcgroups::common::CgroupManager;
use libcontainer::container::Container;
use liboci_cli::{GlobalOpts, List, Ps, Spec, State};
use oci_spec::runtime::Features;

use crate::cli::root_dir;
use crate::state;

pub fn state(args: State, global: &GlobalOpts) -> Result<u8> {
    let container = state::load(&root_dir(global), &args.container_id)?;
    print_json(&state::runc_state_json(&container))?;
    Ok(0)
}

fn print_json(value: &serde_json::Value) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

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

pub fn features() -> Result<u8> {
    print_json(&without_nulls(serde_json::to_value(runtime_features()?)?))?;
    Ok(0)
}

/// What this runtime does, and nothing it does not: libcontainer applies AppArmor profiles but
/// no SELinux process labels, and ignores the `idmap` mount options.
fn runtime_features() -> Result<Features> {
    use oci_spec::runtime::{
        ApparmorBuilder, Arch, CgroupBuilder, FeaturesBuilder, IDMapBuilder, IntelRdtBuilder,
        LinuxFeatureBuilder, LinuxNamespaceType, LinuxSeccompAction, MountExtensionsBuilder,
        SeccompBuilder, SelinuxBuilder,
    };

    let namespaces = vec![
        LinuxNamespaceType::Cgroup,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::User,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Time,
    ];
    let seccomp = SeccompBuilder::default()
        .enabled(true)
        .actions(vec![
            LinuxSeccompAction::ScmpActAllow,
            LinuxSeccompAction::ScmpActErrno,
            LinuxSeccompAction::ScmpActKill,
            LinuxSeccompAction::ScmpActKillProcess,
            LinuxSeccompAction::ScmpActKillThread,
            LinuxSeccompAction::ScmpActLog,
            LinuxSeccompAction::ScmpActNotify,
            LinuxSeccompAction::ScmpActTrace,
            LinuxSeccompAction::ScmpActTrap,
        ])
        .operators(
            [
                "SCMP_CMP_EQ",
                "SCMP_CMP_GE",
                "SCMP_CMP_GT",
                "SCMP_CMP_LE",
                "SCMP_CMP_LT",
                "SCMP_CMP_MASKED_EQ",
                "SCMP_CMP_NE",
            ]
            .map(String::from)
            .to_vec(),
        )
        .archs(vec![
            Arch::ScmpArchAarch64,
            Arch::ScmpArchArm,
            Arch::ScmpArchLoongarch64,
            Arch::ScmpArchM68k,
            Arch::ScmpArchMips,
            Arch::ScmpArchMips64,
            Arch::ScmpArchMips64n32,
            Arch::ScmpArchMipsel,
            Arch::ScmpArchMipsel64,
            Arch::ScmpArchMipsel64n32,
            Arch::ScmpArchParisc,
            Arch::ScmpArchParisc64,
            Arch::ScmpArchPpc,
            Arch::ScmpArchPpc64,
            Arch::ScmpArchPpc64le,
            Arch::ScmpArchRiscv64,
            Arch::ScmpArchS390,
            Arch::ScmpArchS390x,
            Arch::ScmpArchSh,
            Arch::ScmpArchSheb,
            Arch::ScmpArchX32,
            Arch::ScmpArchX86,
            Arch::ScmpArchX86_64,
        ])
        .build()?;
    let linux = LinuxFeatureBuilder::default()
        .namespaces(namespaces)
        .capabilities(all_capabilities())
        .cgroup(
            CgroupBuilder::default()
                .v1(true)
                .v2(true)
                .systemd(true)
                .systemd_user(true)
                .build()?,
        )
        .seccomp(seccomp)
        .apparmor(ApparmorBuilder::default().enabled(true).build()?)
        .selinux(SelinuxBuilder::default().enabled(false).build()?)
        .intel_rdt(IntelRdtBuilder::default().enabled(true).build()?)
        .mount_extensions(
            MountExtensionsBuilder::default()
                .idmap(IDMapBuilder::default().enabled(false).build()?)
                .build()?,
        )
        .build()?;
    let annotations = [
        ("io.github.nvidia-runtime.libcontainer.version", "0.7"),
        ("io.github.nvidia-runtime.gpu-injection", "true"),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value.to_owned()))
    .collect::<std::collections::HashMap<_, _>>();
    Ok(FeaturesBuilder::default()
        .oci_version_min("1.0.0")
        .oci_version_max("1.2.0")
        .hooks(
            [
                "prestart",
                "createRuntime",
                "createContainer",
                "startContainer",
                "poststart",
                "poststop",
            ]
            .map(String::from)
            .to_vec(),
        )
        .mount_options(mount_options())
        .linux(linux)
        .annotations(annotations)
        .build()?)
}

/// The mount options libcontainer turns into mount flags or attributes; any other option is
/// passed to the filesystem as data.
fn mount_options() -> Vec<String> {
    let mut options = libcontainer::syscall::linux::MountOption::known_options();
    options.extend(RECURSIVE_MOUNT_OPTIONS.map(String::from));
    options.sort();
    options
}

/// The `mount_setattr(2)` options of the runtime spec that libcontainer applies recursively.
const RECURSIVE_MOUNT_OPTIONS: [&str; 18] = [
    "rro",
    "rrw",
    "rnosuid",
    "rsuid",
    "rnodev",
    "rdev",
    "rnoexec",
    "rexec",
    "rnodiratime",
    "rdiratime",
    "rrelatime",
    "rnorelatime",
    "rnoatime",
    "ratime",
    "rstrictatime",
    "rnostrictatime",
    "rnosymfollow",
    "rsymfollow",
];

/// runc leaves out what it does not know (Go's `omitempty`); oci-spec writes `null` for it.
fn without_nulls(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

fn all_capabilities() -> Vec<String> {
    let mut caps: Vec<String> = caps::all().into_iter().map(|cap| cap.to_string()).collect();
    caps.sort();
    caps
}

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

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use libcontainer::syscall::linux::{MountOption, MountRecursive};

    use super::*;

    #[test]
    fn every_mount_option_claimed_is_one_libcontainer_applies() {
        for option in mount_options() {
            assert!(
                MountOption::from_str(&option).is_ok() || MountRecursive::from_str(&option).is_ok(),
                "{option} is claimed but libcontainer would pass it on as filesystem data"
            );
        }
    }

    #[test]
    fn features_claim_no_selinux_and_no_idmapped_mounts() {
        let value = without_nulls(serde_json::to_value(runtime_features().unwrap()).unwrap());
        assert_eq!(value["linux"]["selinux"]["enabled"], false);
        assert_eq!(value["linux"]["mountExtensions"]["idmap"]["enabled"], false);
        assert!(!value.to_string().contains("null"));
        assert_eq!(value["linux"]["seccomp"]["actions"][0], "SCMP_ACT_ALLOW");
        assert_eq!(value["linux"]["namespaces"][0], "cgroup");
    }
}
