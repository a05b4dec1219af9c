//! The seam between the runtime and GPU injection: before libcontainer reads
//! `<bundle>/config.json`, rewrite it with what the container asked for.
//!
//! `create` and `run` inject in the first process, before it re-execs from a protected view of
//! the binary (`protect.rs`); where that view is a sealed copy, the injection runs beside the
//! copy on another thread. Only the injecting child's pid and its pipe cross that exec in the
//! environment, where a caller could forge them: the re-exec'd process finds the injection in
//! the bundle's record, and adopts it only when its own process (same pid, same start time)
//! wrote it; otherwise it injects itself.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{anyhow, Context, Result};

use crate::state::Reservation;

/// The configuration, read at most once per process: logging wants its level at start-up
/// and `create` wants the rest.
fn config() -> &'static Result<inject::Config, inject::ConfigError> {
    static CONFIG: OnceLock<Result<inject::Config, inject::ConfigError>> = OnceLock::new();
    CONFIG.get_or_init(inject::Config::load)
}

/// What the first part of a create did: the id it reserved and what it injected, kept or
/// undone together.
pub struct Injection {
    undo: Option<inject::Undo>,
    reservation: Option<Reservation>,
    /// The child injecting for this process still prepares the rootfs.
    rootfs: Option<crate::protect::RootfsInProgress>,
}

impl Injection {
    pub fn reserved(self, reservation: Reservation) -> Self {
        Self {
            reservation: Some(reservation),
            ..self
        }
    }

    /// The descriptor the container's init waits on before it touches the rootfs, while the
    /// injecting child still prepares it (see `protect.rs`).
    pub fn rootfs_gate(&self) -> Option<std::os::fd::RawFd> {
        self.rootfs.as_ref().map(|rootfs| rootfs.gate())
    }

    /// Waits for the child still preparing the rootfs, if any. An error when it failed: it
    /// said why and put the bundle back, so nothing is left here to roll back
    /// ([`crate::protect::Reported`]); or when it was killed (the rollback undoes what it did).
    pub fn wait_for_rootfs(&mut self) -> Result<()> {
        let Some(rootfs) = self.rootfs.take() else {
            return Ok(());
        };
        let finished = rootfs.finish();
        if finished
            .as_ref()
            .is_err_and(|err| err.is::<crate::protect::Reported>())
        {
            self.undo = None;
        }
        finished
    }

    /// The create failed: the bundle goes back as it was and the id is free again.
    pub fn rollback(self) {
        if let Some(undo) = &self.undo {
            undo.rollback();
        }
        drop(self.reservation);
    }

    /// The container exists: the injection stays (and a later create of the bundle knows it
    /// is ours). The reservation goes when `self` does.
    pub fn commit(&self) -> Result<()> {
        if let Some(undo) = &self.undo {
            inject::commit(&undo.bundle).with_context(|| {
                format!(
                    "cannot record the injection into bundle {}",
                    undo.bundle.display()
                )
            })?;
        }
        Ok(())
    }
}

/// `report_config`: whether this process says what the config file says of itself (its
/// warnings): once per create, by the first process that loads it for that create.
/// `rootfs`: the child injecting for this process, which wrote `config.json` and still
/// prepares the rootfs (its injection is adopted). `spec_written` is called once
/// `config.json` is rewritten, before the rootfs work (see [`inject::inject_bundle_then`]).
pub fn prepare_bundle(
    bundle: &Path,
    report_config: bool,
    rootfs: Option<crate::protect::RootfsInProgress>,
    spec_written: &dyn Fn(),
) -> Result<Injection> {
    if let Some(undo) = inject::adopt(bundle)? {
        tracing::debug!("adopting the injection made before the re-exec");
        return Ok(Injection {
            undo: Some(undo),
            reservation: None,
            rootfs,
        });
    }
    // Not adopted (a forged or stale name of a child): its rootfs work is waited for, and
    // this process injects as it finds the bundle then.
    if let Some(rootfs) = rootfs {
        rootfs.finish()?;
    }
    let config = config()
        .as_ref()
        .map_err(|err| anyhow!("{err}"))
        .context("cannot load the runtime configuration")?;
    if report_config {
        self::report_config(config);
    }
    let outcome =
        inject::inject_bundle_then(bundle, config, spec_written).map_err(|err| match err {
            // Where the driver was looked for, and who said so: a runtime started by an engine
            // whose environment lacks the config variable reads the defaults instead.
            inject::InjectError::Inventory(_) => anyhow!(err).context(format!(
                "driver root {}, proc root {} ({})",
                config.driver_root.display(),
                config.proc_root.display(),
                config_source()
            )),
            other => anyhow!(other),
        })?;
    match &outcome {
        inject::Outcome::Rewritten {
            summary, timings, ..
        } => tracing::info!("injected: {summary}; timings: {timings:?}"),
        inject::Outcome::AlreadyInjected => tracing::info!("bundle already injected; unchanged"),
        inject::Outcome::NotRequested => tracing::debug!("no GPU requested"),
    }
    Ok(Injection {
        undo: outcome.undo(),
        reservation: None,
        rootfs: None,
    })
}

/// What the configuration file says of itself, once per create: only the first process
/// reports it, since the sealed one it re-execs reads the same file (`protect.rs`). Warnings
/// go to stderr and the log; notes (keys without effect here) to the debug log.
fn report_config(config: &inject::Config) {
    for note in &config.notes {
        tracing::debug!("{note}");
    }
    for warning in &config.warnings {
        crate::logging::warn_user(warning);
    }
}

/// The log level NVIDIA's config asks for (`[nvidia-container-runtime] log-level`), if any.
pub fn configured_log_level() -> Option<String> {
    config()
        .as_ref()
        .ok()
        .and_then(|config| config.log_level.clone())
}

/// Which config file the runtime read, in words, for errors about what it says.
fn config_source() -> String {
    use inject::config::{DEFAULT_PATH, PATH_ENV};
    match std::env::var_os(PATH_ENV).filter(|path| !path.is_empty()) {
        Some(path) => format!("from {}, named by {PATH_ENV}", Path::new(&path).display()),
        None if Path::new(DEFAULT_PATH).exists() => format!("from {DEFAULT_PATH}"),
        None => format!("defaults: there is no {DEFAULT_PATH} and {PATH_ENV} is not set"),
    }
}
