//! The seam between the runtime and GPU injection: before libcontainer reads
//! `<bundle>/config.json`, rewrite it with what the container asked for.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{anyhow, Context, Result};

/// The configuration, read at most once per invocation: logging wants its level at start-up
/// and `create` wants the rest.
fn config() -> &'static Result<inject::Config, inject::ConfigError> {
    static CONFIG: OnceLock<Result<inject::Config, inject::ConfigError>> = OnceLock::new();
    CONFIG.get_or_init(inject::Config::load)
}

/// What one injection did, so a failed create can undo it.
pub struct Injection(inject::Outcome);

impl Injection {
    pub fn rollback(self) {
        self.0.rollback();
    }
}

pub fn prepare_bundle(bundle: &Path) -> Result<Injection> {
    let config = config()
        .as_ref()
        .map_err(|err| anyhow!("{err}"))
        .context("cannot load the runtime configuration")?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let outcome = inject::inject_bundle(bundle, config)?;
    match &outcome {
        inject::Outcome::Rewritten {
            summary, timings, ..
        } => tracing::info!("injected: {summary}; timings: {timings:?}"),
        inject::Outcome::AlreadyInjected => tracing::info!("bundle already injected; unchanged"),
        inject::Outcome::NotRequested => tracing::debug!("no GPU requested"),
    }
    Ok(Injection(outcome))
}

/// The log level NVIDIA's config asks for (`[nvidia-container-runtime] log-level`), if any.
pub fn configured_log_level() -> Option<String> {
    config()
        .as_ref()
        .ok()
        .and_then(|config| config.log_level.clone())
}
