use std::fs;
use std::path::Path;

use libcgroups::common::CgroupManager;
use libcgroups::{self};
use nix::sys::signal;
use oci_spec::runtime::Hook;

use super::{Container, ContainerStatus};
use crate::config::{ConfigError, YoukiConfig};
use crate::error::LibcontainerError;
use crate::hooks::{self, HookError};
use crate::process::intel_rdt::cleanup_intel_rdt;

impl Container {
    /// Deletes the container
    ///
    /// # Example
    ///
    /// ```no_run
    /// use libcontainer::container::builder::ContainerBuilder;
    /// use libcontainer::syscall::syscall::SyscallType;
    ///
    /// # fn main() -> anyhow::Result<()> {
    /// let mut container = ContainerBuilder::new(
    ///     "74f1a4cb3801".to_owned(),
    ///     SyscallType::default(),
    /// )
    /// .as_init("/var/run/docker/bundle")
    /// .build()?;
    ///
    /// container.delete(true)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn delete(&mut self, force: bool) -> Result<(), LibcontainerError> {
        self.delete_with(force, |hook, err| {
            tracing::warn!(hook = ?hook.path(), "poststop hook failed, continuing to delete: {err:?}");
        })
    }

    /// Deletes the container as [`Container::delete`] does, handing each poststop hook that
    /// fails to `on_poststop_failure`. The OCI runtime spec makes such a failure a warning:
    /// the remaining hooks and the delete go on as if the hook had succeeded. The caller says
    /// where the warning goes.
    pub fn delete_with(
        &mut self,
        force: bool,
        mut on_poststop_failure: impl FnMut(&Hook, HookError),
    ) -> Result<(), LibcontainerError> {
        self.refresh_status()?;

        tracing::debug!("container status: {:?}", self.status());

        // Check if container is allowed to be deleted based on container status.
        match self.status() {
            ContainerStatus::Stopped => {}
            ContainerStatus::Created => {
                // Here, we differ from the OCI spec, but matches the same
                // behavior as `runc` and `crun`. The OCI spec does not allow
                // deletion of status `created` without `force` flag. But both
                // `runc` and `crun` allows deleting `created`. Therefore we
                // decided to follow `runc` and `crun`.
                self.do_kill(signal::Signal::SIGKILL, true)?;
                self.set_status(ContainerStatus::Stopped).save()?;
            }
            ContainerStatus::Creating | ContainerStatus::Running | ContainerStatus::Paused => {
                // Containers can't be deleted while in these status, unless
                // force flag is set. In the force case, we need to clean up any
                // processes associated with containers.
                if force {
                    // Removing the cgroup below kills whatever this could not.
                    if let Err(err) = self.do_kill(signal::Signal::SIGKILL, true) {
                        tracing::warn!(id = ?self.id(), "cannot kill the container's processes, continuing to delete: {err:?}");
                        // without its cgroup, the init at least (its pid namespace dies with it)
                        let _ = self.do_kill(signal::Signal::SIGKILL, false);
                    }
                    self.set_status(ContainerStatus::Stopped).save()?;
                } else {
                    tracing::error!(
                        id = ?self.id(),
                        status = ?self.status(),
                        "delete requires the container state to be stopped or created",
                    );
                    return Err(LibcontainerError::IncorrectStatus(self.status()));
                }
            }
        }

        // Once reached here, the container is verified that it can be deleted.
        debug_assert!(self.status().can_delete());

        if let Err(err) = cleanup_intel_rdt(
            self.intel_rdt_dir().map(|p| p.as_path()),
            self.intel_rdt_monitoring_dir().map(|p| p.as_path()),
            self.clean_up_intel_rdt_subdirectory(),
            self.id(),
        ) {
            tracing::warn!("failed to cleanup intel rdt due to: {err:?}, continue to delete");
        }

        if self.root.exists() {
            match YoukiConfig::load(&self.root) {
                Ok(config) => {
                    tracing::debug!("config: {:?}", config);

                    // remove the cgroup created for the container
                    // check https://man7.org/linux/man-pages/man7/cgroups.7.html
                    // creating and removing cgroups section for more information on cgroups
                    let cmanager = libcgroups::common::create_cgroup_manager(
                        config.cgroup_config(self.id(), self.systemd()),
                    )?;
                    cmanager.remove().map_err(|err| {
                        tracing::error!(cgroup_path = ?config.cgroup_path, "failed to remove cgroup due to: {err:?}");
                        err
                    })?;

                    let poststop = config
                        .hooks
                        .as_ref()
                        .and_then(|hooks| hooks.poststop().as_ref());
                    for hook in poststop.into_iter().flatten() {
                        // one at a time: a failing hook must not keep the next from running
                        if let Err(err) = hooks::run_hooks(
                            Some(&vec![hook.clone()]),
                            Some(&self.state),
                            None,
                            None,
                            None,
                        ) {
                            on_poststop_failure(hook, err);
                        }
                    }
                }
                Err(err) => {
                    // There is a brief window where the container state is
                    // created, but the container config is not yet generated
                    // from the OCI spec. In this case, we assume as if we
                    // successfully deleted the config and moving on.
                    tracing::warn!(
                        "skipping loading youki config due to: {err:?}, continue to delete"
                    );
                }
            }

            // remove the directory storing container state
            tracing::debug!("remove dir {:?}", self.root);
            fs::remove_dir_all(&self.root).map_err(|err| {
                tracing::error!(?err, path = ?self.root, "failed to remove container dir");
                LibcontainerError::OtherIO(err)
            })?;
        }

        Ok(())
    }

    /// Deletes a container whose state cannot be loaded (say, a corrupt state file), from what
    /// its state dir `container_root` still tells: the processes in the container's cgroup, found
    /// from the config saved at create, are killed, the cgroup is removed, then the state dir.
    /// `systemd` says whether the cgroup is managed by systemd (the state that recorded it is lost).
    /// Poststop hooks are not run: they are given the state. Fails, removing nothing, when the
    /// saved config cannot be read either, since the processes could then not be found. Without
    /// a saved config at all, the create was killed before it made any cgroup or process (it
    /// saves the config first): only the state dir is left, and it is removed.
    pub fn delete_unloadable(
        container_root: &Path,
        id: &str,
        systemd: bool,
    ) -> Result<(), LibcontainerError> {
        let config = match YoukiConfig::load(container_root) {
            Ok(config) => config,
            Err(ConfigError::LoadIO { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                tracing::debug!(
                    ?container_root,
                    "no saved config: the create made nothing else"
                );
                return fs::remove_dir_all(container_root).map_err(LibcontainerError::OtherIO);
            }
            Err(err) => return Err(err.into()),
        };
        let cmanager =
            libcgroups::common::create_cgroup_manager(config.cgroup_config(id, systemd))?;
        cmanager.remove().map_err(|err| {
            tracing::error!(cgroup_path = ?config.cgroup_path, "failed to remove cgroup due to: {err:?}");
            err
        })?;
        tracing::debug!("remove dir {:?}", container_root);
        fs::remove_dir_all(container_root).map_err(|err| {
            tracing::error!(?err, path = ?container_root, "failed to remove container dir");
            LibcontainerError::OtherIO(err)
        })
    }
}
