//! `create`: inject GPUs into the bundle, then build the container (its init waits for
//! `start`). `run` shares [`create_container`].

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::error::LibcontainerError;
use libcontainer::syscall::syscall::SyscallType;
use liboci_cli::{Create, GlobalOpts};

use super::delete::warn_poststop_failure;
use super::executor::RuncWordingExecutor;
use crate::cli::root_dir;
use crate::{gpu, state};

/// What `create` and `run` share: inject GPUs into the bundle, then build the container.
pub(super) struct CreateRequest<'a> {
    pub(super) id: &'a str,
    pub(super) bundle: &'a Path,
    pub(super) pid_file: Option<&'a Path>,
    pub(super) console_socket: Option<&'a Path>,
    pub(super) preserve_fds: i32,
    pub(super) no_pivot: bool,
    pub(super) detach: bool,
}

/// The checks of a create, the reservation of its id, then the GPU injection. Runs for the
/// first process while it re-execs (`protect.rs`), and again in the re-exec'd process, which
/// finds the id reserved and the bundle injected for it and goes on with both.
/// `spec_written`: see [`gpu::prepare_bundle`].
fn check_and_inject(
    id: &str,
    bundle: &Path,
    global: &GlobalOpts,
    spec_written: &dyn Fn(),
) -> Result<(PathBuf, gpu::Injection)> {
    let root = root_dir(global);
    // (in the re-exec'd process: the config.json of the injecting child must be on disk
    // first; if it failed it said why, having made the same checks as below)
    let rootfs = match crate::protect::wait_for_injector() {
        Ok(rootfs) => rootfs,
        Err(err) if err.is::<crate::protect::Reported>() => return Err(err),
        Err(err) => return Err(undo_killed_injector(err, &root, id, bundle)),
    };
    state::validate_id(id)?;
    let bundle = std::fs::canonicalize(bundle)
        .with_context(|| format!("cannot use bundle {}", bundle.display()))?;
    // Before the bundle is touched: of two creates of one id, the loser changes nothing.
    let reservation = state::reserve(&root, id)?;
    // The config's warnings are said by the first process that loads it for this create: the
    // one before the re-exec (or its child) where it may inject, else this one.
    let first = !crate::protect::is_sealed() || !super::bundle_may_ask_for_gpus(&bundle);
    let published = std::cell::Cell::new(false);
    let note_published = || {
        published.set(true);
        spec_written();
    };
    let injection = match gpu::prepare_bundle(&bundle, first, rootfs, &note_published) {
        Ok(injection) => injection,
        Err(err) => {
            // (the child injecting for the re-exec'd process: once config.json is out, that
            // process holds the id's reservation too, the same one, and frees it itself when
            // its create fails at the init's gate)
            if published.get() {
                std::mem::forget(reservation);
            }
            return Err(err.context(format!(
                "cannot inject NVIDIA GPUs into bundle {}",
                bundle.display()
            )));
        }
    };
    Ok((bundle, injection.reserved(reservation)))
}

/// The child injecting for this process was killed (`err`): it acted for this process, so its
/// reservation of `id` and its pending injection into `bundle` are this process's to undo.
fn undo_killed_injector(err: anyhow::Error, root: &Path, id: &str, bundle: &Path) -> anyhow::Error {
    if let Ok(reservation) = state::reserve(root, id) {
        let adopted = std::fs::canonicalize(bundle)
            .ok()
            .and_then(|bundle| inject::adopt(&bundle).ok().flatten());
        if let Some(undo) = adopted {
            undo.rollback();
        }
        drop(reservation);
    }
    err
}

/// For `create` and `run`, for the unsealed process while it re-execs: check, reserve and
/// inject. The re-exec'd process finds what this did on disk; it is only told which child to
/// wait for.
pub fn inject_before_reexec(
    id: &str,
    bundle: &Path,
    global: &GlobalOpts,
    spec_written: &dyn Fn(),
) -> Result<gpu::Injection> {
    check_and_inject(id, bundle, global, spec_written).map(|(_, injection)| injection)
}

pub(super) fn create_container(req: &CreateRequest, global: &GlobalOpts) -> Result<Container> {
    let root = root_dir(global);
    let (bundle, mut injection) = check_and_inject(req.id, req.bundle, global, &|| {})?;
    let executor = RuncWordingExecutor {
        rootfs_gate: injection.rootfs_gate(),
    };

    let built = ContainerBuilder::new(req.id.to_owned(), SyscallType::default())
        .with_root_path(&root)
        .and_then(|b| b.with_pid_file(req.pid_file))
        .map(|b| {
            b.with_console_socket(req.console_socket)
                .with_preserved_fds(req.preserve_fds)
                .with_executor(executor)
        })
        .and_then(|b| b.validate_id())
        .and_then(|b| {
            b.as_init(&bundle)
                .with_systemd(global.systemd_cgroup)
                .with_detach(req.detach)
                .with_no_pivot(req.no_pivot)
                .build()
        });

    // (the child still preparing the rootfs is done once the init passed its gate; where the
    // build failed before, it is waited for before anything is undone)
    let rootfs_ready = injection.wait_for_rootfs();
    match built {
        Ok(mut container) => {
            if let Err(err) = rootfs_ready.and_then(|()| injection.commit()) {
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
            // The child that failed to prepare the rootfs said why: the init stopped at its
            // gate for that.
            rootfs_ready?;
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
