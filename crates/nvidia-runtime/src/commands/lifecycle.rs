//! create, start, run, kill, delete, pause, resume.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::error::LibcontainerError;
use libcontainer::signal::Signal;
use libcontainer::syscall::syscall::SyscallType;
use liboci_cli::{Create, Delete, GlobalOpts, Pause, Resume, Run, Start};

use super::executor::RuncWordingExecutor;
use super::{foreground, tty};
use crate::cli::{root_dir, Kill};
use crate::{gpu, logging, state};

/// What `create` and `run` share: inject GPUs into the bundle, then build the container.
struct CreateRequest<'a> {
    id: &'a str,
    bundle: &'a Path,
    pid_file: Option<&'a Path>,
    console_socket: Option<&'a Path>,
    preserve_fds: i32,
    no_pivot: bool,
    detach: bool,
}

/// The checks of a create, the reservation of its id, then the GPU injection. Runs in the
/// unsealed process, beside the copy of the binary (`protect.rs`), and again in the sealed
/// process, which finds the id reserved and the bundle injected by its own first process and
/// goes on with both.
fn check_and_inject(
    id: &str,
    bundle: &Path,
    global: &GlobalOpts,
) -> Result<(PathBuf, gpu::Injection)> {
    let root = root_dir(global);
    state::validate_id(id)?;
    let bundle = std::fs::canonicalize(bundle)
        .with_context(|| format!("cannot use bundle {}", bundle.display()))?;
    // Before the bundle is touched: of two creates of one id, the loser changes nothing.
    let reservation = state::reserve(&root, id)?;
    let injection = gpu::prepare_bundle(&bundle)
        .with_context(|| format!("cannot inject NVIDIA GPUs into bundle {}", bundle.display()))?;
    Ok((bundle, injection.reserved(reservation)))
}

/// For `create` and `run` in the unsealed process: check, reserve and inject. The sealed
/// process finds what this did on disk; nothing is passed in its environment.
pub fn inject_before_reexec(
    id: &str,
    bundle: &Path,
    global: &GlobalOpts,
) -> Result<gpu::Injection> {
    check_and_inject(id, bundle, global).map(|(_, injection)| injection)
}

fn create_container(req: &CreateRequest, global: &GlobalOpts) -> Result<Container> {
    let root = root_dir(global);
    let (bundle, injection) = check_and_inject(req.id, req.bundle, global)?;

    let built = ContainerBuilder::new(req.id.to_owned(), SyscallType::default())
        .with_root_path(&root)
        .and_then(|b| b.with_pid_file(req.pid_file))
        .map(|b| {
            b.with_console_socket(req.console_socket)
                .with_preserved_fds(req.preserve_fds)
                .with_executor(RuncWordingExecutor)
        })
        .and_then(|b| b.validate_id())
        .and_then(|b| {
            b.as_init(&bundle)
                .with_systemd(global.systemd_cgroup)
                .with_detach(req.detach)
                .with_no_pivot(req.no_pivot)
                .build()
        });

    match built {
        Ok(mut container) => {
            if let Err(err) = injection.commit() {
                let _ = container.delete_with(true, warn_poststop_failure);
                injection.rollback();
                return Err(err);
            }
            Ok(container)
        }
        Err(err) => {
            if !matches!(err, LibcontainerError::Exist) {
                // libcontainer cleans up after most failures, but not after those between
                // making the state dir and forking; a failed create must leave nothing behind.
                // (The id is reserved by us, so the dir is ours.)
                let dir = root.join(req.id);
                if dir.exists() {
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
            injection.rollback();
            Err(anyhow!(err)).context("cannot create container")
        }
    }
}

pub fn create(args: Create, global: &GlobalOpts) -> Result<u8> {
    create_container(
        &CreateRequest {
            id: &args.container_id,
            bundle: &args.bundle,
            pid_file: args.pid_file.as_deref(),
            console_socket: args.console_socket.as_deref(),
            preserve_fds: args.preserve_fds,
            no_pivot: args.no_pivot,
            detach: true,
        },
        global,
    )?;
    Ok(0)
}

pub fn start(args: Start, global: &GlobalOpts) -> Result<u8> {
    let mut container = state::load(&root_dir(global), &args.container_id)?;
    match container.status() {
        ContainerStatus::Created => {}
        ContainerStatus::Stopped => bail!("cannot start a container that has stopped"),
        ContainerStatus::Running | ContainerStatus::Paused => {
            bail!("cannot start an already running container")
        }
        ContainerStatus::Creating => bail!("cannot start a container that is still being created"),
    }
    container.start().context("cannot start container")?;
    Ok(0)
}

pub fn run(args: Run, global: &GlobalOpts) -> Result<u8> {
    let root = root_dir(global);
    // runc's foreground `run` of a spec asking for a terminal, without a console socket: we
    // hold the pty and relay it (as for `exec -t`).
    let relay =
        if !args.detach && args.console_socket.is_none() && spec_wants_terminal(&args.bundle) {
            std::fs::create_dir_all(&root)
                .with_context(|| format!("cannot create state root {}", root.display()))?;
            Some(tty::ConsoleListener::bind_named(
                &root,
                &format!(".{}-tty", args.container_id),
            )?)
        } else {
            None
        };
    let console_socket = tty::console_socket(relay.as_ref(), args.console_socket.as_ref());

    let mut container = create_container(
        &CreateRequest {
            id: &args.container_id,
            bundle: &args.bundle,
            pid_file: args.pid_file.as_deref(),
            console_socket: console_socket.as_deref(),
            preserve_fds: args.preserve_fds,
            no_pivot: args.no_pivot,
            // libcontainer only takes a console socket from a detached caller
            detach: args.detach || relay.is_some(),
        },
        global,
    )?;

    // Blocked before start, so that no signal meant for the container is lost in between.
    let signals = if args.detach {
        None
    } else {
        Some(foreground::block_forwarded_signals()?)
    };

    if let Err(err) = container.start() {
        let _ = container.delete_with(true, warn_poststop_failure);
        return Err(anyhow!(err)).context("cannot start container");
    }
    let Some(signals) = signals else {
        return Ok(0);
    };

    let pid = container
        .pid()
        .ok_or_else(|| anyhow!("container init pid is unknown"))?;
    let code = foreground::wait_relaying(pid, &signals, relay);
    if !args.keep {
        container
            .delete_with(true, warn_poststop_failure)
            .context("cannot delete container after it exited")?;
    }
    code
}

/// The OCI runtime spec's rule: a failed poststop hook is a warning, and the delete goes on.
/// (libcontainer's own warnings reach the log only with `--debug`.)
fn warn_poststop_failure(hook: &oci_spec::runtime::Hook, err: libcontainer::hooks::HookError) {
    tracing::warn!(
        "poststop hook {} failed: {}",
        hook.path().display(),
        logging::describe(&anyhow!(err))
    );
}

/// `process.terminal` of the bundle's spec; unreadable means no (create reports the error).
fn spec_wants_terminal(bundle: &Path) -> bool {
    std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|text| serde_json::from_slice::<serde_json::Value>(&text).ok())
        .and_then(|spec| spec.pointer("/process/terminal").and_then(|t| t.as_bool()))
        .unwrap_or(false)
}

pub fn kill(args: Kill, global: &GlobalOpts) -> Result<u8> {
    let mut container = state::load(&root_dir(global), &args.container_id)?;
    let signal = Signal::try_from(args.signal.as_str())
        .map_err(|_| anyhow!("unknown signal {:?}", args.signal))?;
    // containerd matches "container not running" to treat the kill as already done.
    if !args.all
        && matches!(
            container.status(),
            ContainerStatus::Stopped | ContainerStatus::Creating
        )
    {
        bail!("container not running");
    }
    container.kill(signal, args.all).map_err(|err| match err {
        LibcontainerError::IncorrectStatus(_) => anyhow!("container not running"),
        other => anyhow!(other),
    })?;
    Ok(0)
}

pub fn delete(args: Delete, global: &GlobalOpts) -> Result<u8> {
    let root = root_dir(global);
    state::validate_id(&args.container_id)?;
    let dir = root.join(&args.container_id);
    let container = match state::load(&root, &args.container_id) {
        Ok(container) => container,
        Err(err) if args.force && dir.join("state.json").exists() => {
            // The state is there but unreadable: what it would have said is looked up in what
            // create saved beside it, so that the processes do not outlive their container.
            tracing::warn!(
                "{}; removing the container from its saved config",
                logging::describe(&err)
            );
            Container::delete_unloadable(&dir, &args.container_id, global.systemd_cgroup)
                .with_context(|| {
                    format!(
                        "cannot delete container {:?} whose state is unreadable; its state dir {} \
                         is left: kill the processes of its cgroup, remove the cgroup, then \
                         remove that dir",
                        args.container_id,
                        dir.display()
                    )
                })?;
            return Ok(0);
        }
        Err(err) => {
            // As runc: a dir without a state file is what an aborted create leaves; remove it.
            if dir.exists() && !dir.join("state.json").exists() {
                let _ = std::fs::remove_dir_all(&dir);
            }
            if args.force {
                return Ok(0);
            }
            return Err(err);
        }
    };
    let mut container = container;
    if !args.force
        && matches!(
            container.status(),
            ContainerStatus::Running | ContainerStatus::Paused | ContainerStatus::Creating
        )
    {
        bail!(
            "cannot delete container {} that is not stopped: {}",
            args.container_id,
            state::status_name(container.status())
        );
    }
    container
        .delete_with(args.force, warn_poststop_failure)
        .context("cannot delete container")?;
    Ok(0)
}

pub fn pause(args: Pause, global: &GlobalOpts) -> Result<u8> {
    let mut container = state::load(&root_dir(global), &args.container_id)?;
    if container.status() != ContainerStatus::Running {
        bail!("container not running");
    }
    container.pause().context("cannot pause container")?;
    Ok(0)
}

pub fn resume(args: Resume, global: &GlobalOpts) -> Result<u8> {
    let mut container = state::load(&root_dir(global), &args.container_id)?;
    if container.status() != ContainerStatus::Paused {
        bail!("container not paused");
    }
    container.resume().context("cannot resume container")?;
    Ok(0)
}
