//! The seam between the runtime and GPU injection: before libcontainer reads
//! `<bundle>/config.json`, rewrite it with what the container asked for.

use std::path::Path;

use anyhow::{Context, Result};

/// What one injection did, so a failed create can undo it.
pub struct Injection(inject::Outcome);

impl Injection {
    pub fn rollback(self) {
        self.0.rollback();
    }
}

pub fn prepare_bundle(bundle: &Path) -> Result<Injection> {
    let config = inject::Config::load().context("cannot load the runtime configuration")?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let outcome = inject::inject_bundle(bundle, &config)?;
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
    inject::Config::load()
        .ok()
        .and_then(|config| config.log_level)
}
