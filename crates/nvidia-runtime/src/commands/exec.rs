//! `exec`: a new process in a running container, from `--process FILE` or from inline args laid
//! over the container's own process (as runc does: same user, caps and env unless overridden).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::ContainerStatus;
use libcontainer::syscall::syscall::SyscallType;
use liboci_cli::{Exec, GlobalOpts};
use serde_json::{json, Value};

use super::executor::RuncWordingExecutor;
use super::{foreground, tty};
use crate::cli::root_dir;
use crate::state;

pub fn exec(args: Exec, global: &GlobalOpts) -> Result<u8> {
    let root = root_dir(global);
    let container = state::load(&root, &args.container_id)?;
    match container.status() {
        ContainerStatus::Running => {}
        ContainerStatus::Paused if args.ignore_paused => {}
        ContainerStatus::Paused => {
            bail!("cannot exec in a paused container (use --ignore-paused to override)")
        }
        other => bail!(
            "cannot exec in a container that is {}",
            state::status_name(other)
        ),
    }

    let process = match &args.process {
        Some(path) => read_json(path)?,
        None => {
            if args.command.is_empty() {
                bail!("exec needs a command or --process");
            }
            let config = read_json(&container.bundle().join("config.json"))?;
            process_from_args(config.get("process").cloned().unwrap_or(json!({})), &args)?
        }
    };

    // Written where only we write: the container's state dir; removed once the process runs.
    let process_file = ProcessFile::write(&root.join(&args.container_id), &process)?;

    let wants_tty = process
        .get("terminal")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    // runc's foreground `exec -t` without a console socket: we hold the pty and relay it.
    let relay = if wants_tty && !args.detach && args.console_socket.is_none() {
        Some(tty::ConsoleListener::bind(&root.join(&args.container_id))?)
    } else {
        None
    };
    let console_socket = tty::console_socket(relay.as_ref(), args.console_socket.as_ref());

    let signals = if args.detach {
        None
    } else {
        Some(foreground::block_forwarded_signals()?)
    };

    let pid = ContainerBuilder::new(args.container_id.clone(), SyscallType::default())
        .with_root_path(&root)
        .and_then(|b| b.with_pid_file(args.pid_file.as_ref()))
        .map(|b| {
            b.with_console_socket(console_socket.as_ref())
                .with_preserved_fds(args.preserve_fds)
                .with_executor(RuncWordingExecutor::default())
        })
        .and_then(|b| b.validate_id())
        .and_then(|b| {
            b.as_tenant()
                // libcontainer only takes a console socket from a detached caller
                .with_detach(args.detach || relay.is_some())
                .with_process(Some(&process_file.path))
                .with_ignore_paused(args.ignore_paused)
                .with_sub_cgroup(args.cgroup.clone())
                .build()
        })
        .map_err(|err| anyhow!(err))
        .context("cannot exec in container")?;
    drop(process_file);

    let Some(signals) = signals else {
        return Ok(0);
    };
    foreground::wait_relaying(pid, &signals, relay)
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("cannot parse {}", path.display()))
}

/// The capability sets `exec --cap` adds to.
const EXEC_CAP_SETS: [&str; 3] = ["bounding", "effective", "permitted"];

/// runc's `exec ID ARGS…`: the container's process with these args and the flags applied.
fn process_from_args(mut process: Value, args: &Exec) -> Result<Value> {
    let obj = process
        .as_object_mut()
        .ok_or_else(|| anyhow!("config.json process is not an object"))?;
    obj.insert("args".into(), json!(args.command));
    obj.insert("terminal".into(), json!(args.tty));
    if let Some(cwd) = &args.cwd {
        obj.insert("cwd".into(), json!(cwd));
    }
    if !args.env.is_empty() {
        let mut env: Vec<String> = obj
            .get("env")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(Value::as_str)
                    .filter(|entry| {
                        let key = entry.split('=').next().unwrap_or_default();
                        !args.env.iter().any(|(k, _)| k == key)
                    })
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        env.extend(args.env.iter().map(|(k, v)| format!("{k}={v}")));
        obj.insert("env".into(), json!(env));
    }
    let user = obj
        .entry("user")
        .or_insert_with(|| json!({"uid": 0, "gid": 0}));
    if let Some((uid, gid)) = args.user {
        user["uid"] = json!(uid);
        if let Some(gid) = gid {
            user["gid"] = json!(gid);
        }
    }
    if !args.additional_gids.is_empty() {
        user["additionalGids"] = json!(args.additional_gids);
    }
    if args.no_new_privs {
        obj.insert("noNewPrivileges".into(), json!(true));
    }
    if let Some(profile) = &args.apparmor {
        obj.insert("apparmorProfile".into(), json!(profile));
    }
    if let Some(label) = &args.process_label {
        obj.insert("selinuxLabel".into(), json!(label));
    }
    if !args.cap.is_empty() {
        let caps = obj
            .entry("capabilities")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .ok_or_else(|| anyhow!("config.json process.capabilities is not an object"))?;
        // Never the inheritable or ambient sets: there an added capability would survive
        // exec of any program the process runs, even one without file capabilities
        // (CVE-2022-29162, fixed the same way in runc).
        for set in EXEC_CAP_SETS {
            let list = caps.entry(set).or_insert_with(|| json!([]));
            if let Some(list) = list.as_array_mut() {
                for cap in &args.cap {
                    if !list.iter().any(|c| c == cap) {
                        list.push(json!(cap));
                    }
                }
            }
        }
    }
    Ok(process)
}

struct ProcessFile {
    path: PathBuf,
}

impl ProcessFile {
    fn write(dir: &Path, process: &Value) -> Result<Self> {
        let path = dir.join(format!("exec-process-{}.json", std::process::id()));
        std::fs::write(&path, serde_json::to_vec(process)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Self { path })
    }
}

impl Drop for ProcessFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        exec: Exec,
    }

    fn parse(argv: &[&str]) -> Exec {
        Wrapper::parse_from(std::iter::once("exec").chain(argv.iter().copied())).exec
    }

    #[test]
    fn inline_args_keep_the_containers_user_and_override_env() {
        let base = json!({
            "user": {"uid": 1000, "gid": 1000},
            "env": ["PATH=/bin", "A=1"],
            "cwd": "/",
            "terminal": true
        });
        let args = parse(&["--env", "A=2", "--cwd", "/tmp", "ctr", "echo", "hi"]);
        let process = process_from_args(base, &args).unwrap();
        assert_eq!(process["args"], json!(["echo", "hi"]));
        assert_eq!(process["env"], json!(["PATH=/bin", "A=2"]));
        assert_eq!(process["cwd"], "/tmp");
        assert_eq!(process["terminal"], false);
        assert_eq!(process["user"]["uid"], 1000);
    }

    #[test]
    fn added_capabilities_never_reach_inheritable_or_ambient() {
        let base = json!({
            "capabilities": {
                "bounding": ["CAP_KILL"],
                "effective": ["CAP_KILL"],
                "permitted": ["CAP_KILL"],
                "inheritable": ["CAP_KILL"],
                "ambient": ["CAP_KILL"]
            }
        });
        let args = parse(&["--cap", "CAP_NET_RAW", "ctr", "id"]);
        let process = process_from_args(base, &args).unwrap();
        let caps = &process["capabilities"];
        for set in ["bounding", "effective", "permitted"] {
            assert_eq!(caps[set], json!(["CAP_KILL", "CAP_NET_RAW"]), "{set}");
        }
        for set in ["inheritable", "ambient"] {
            assert_eq!(caps[set], json!(["CAP_KILL"]), "{set}");
        }
    }

    #[test]
    fn user_flag_sets_uid_and_gid() {
        let args = parse(&["--user", "5:6", "-t", "ctr", "id"]);
        let process = process_from_args(json!({}), &args).unwrap();
        assert_eq!(process["user"], json!({"uid": 5, "gid": 6}));
        assert_eq!(process["terminal"], true);
    }
}
