//! The seam between the runtime and GPU injection: before libcontainer reads
//! `<bundle>/config.json`, rewrite it with what the container asked for.
//!
//! `create` and `run` inject in the first, unsealed process, while another thread makes the
//! sealed copy of the binary to re-exec from (`protect.rs`): the copy takes longer than the
//! injection, so the injection costs no time of its own. What a failed create must undo is
//! handed to the sealed process in an inherited memfd named by [`HANDOVER_ENV`].

use std::ffi::OsString;
use std::io::{Read, Seek, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{anyhow, Context, Result};

/// Names the inherited fd holding the hand-over; ours alone (the container's environment is the
/// spec's, never this process's).
pub const HANDOVER_ENV: &str = "_NVIDIA_RUNTIME_INJECTED_FD";

/// The configuration, read at most once per process: logging wants its level at start-up
/// and `create` wants the rest.
fn config() -> &'static Result<inject::Config, inject::ConfigError> {
    static CONFIG: OnceLock<Result<inject::Config, inject::ConfigError>> = OnceLock::new();
    CONFIG.get_or_init(inject::Config::load)
}

/// What one injection did, so a failed create can undo it.
pub struct Injection(Option<inject::Undo>);

impl Injection {
    pub fn rollback(self) {
        if let Some(undo) = self.0 {
            undo.rollback();
        }
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
    Ok(Injection(outcome.undo()))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Handover {
    bundle: PathBuf,
    undo: Option<inject::Undo>,
}

/// For the unsealed process: the injection of `bundle`, written where the sealed process will
/// find it; returns the environment entry that names it. The fd stays open across exec.
pub fn hand_over(bundle: &Path, injection: &Injection) -> Result<(OsString, OsString)> {
    let bytes = serde_json::to_vec(&Handover {
        bundle: bundle.to_owned(),
        undo: injection.0.clone(),
    })?;
    let fd = nix::sys::memfd::memfd_create(
        c"nvidia-runtime-handover",
        nix::sys::memfd::MemFdCreateFlag::empty(),
    )
    .context("cannot create the hand-over memfd")?;
    let mut file = std::fs::File::from(fd);
    file.write_all(&bytes)?;
    file.rewind()?;
    let raw = file.as_raw_fd();
    // Kept open (and, without FD_CLOEXEC, inherited) until the exec replaces this process.
    std::mem::forget(file);
    Ok((HANDOVER_ENV.into(), raw.to_string().into()))
}

/// For the sealed process: what the unsealed one injected into `bundle` before re-exec'ing,
/// if it did. The fd is closed and the variable removed either way, so neither reaches a
/// container.
pub fn take_handed_over(bundle: &Path) -> Option<Injection> {
    let raw: i32 = std::env::var(HANDOVER_ENV).ok()?.parse().ok()?;
    std::env::remove_var(HANDOVER_ENV);
    // Only an fd we were handed is named here: the variable is ours and set just before exec.
    let is_memfd = std::fs::read_link(format!("/proc/self/fd/{raw}")).is_ok_and(|target| {
        target
            .to_string_lossy()
            .starts_with("/memfd:nvidia-runtime-handover")
    });
    if !is_memfd {
        tracing::warn!("{HANDOVER_ENV}={raw} does not name our hand-over; ignored");
        return None;
    }
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(raw) });
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    drop(file);
    let handover: Handover = serde_json::from_slice(&bytes).ok()?;
    (handover.bundle == bundle).then_some(Injection(handover.undo))
}

/// The log level NVIDIA's config asks for (`[nvidia-container-runtime] log-level`), if any.
pub fn configured_log_level() -> Option<String> {
    config()
        .as_ref()
        .ok()
        .and_then(|config| config.log_level.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn undo(bundle: &Path) -> inject::Undo {
        inject::Undo {
            config_path: bundle.join("config.json"),
            original: "{\"ociVersion\":\"1.0.2\"}".into(),
            created_links: vec![PathBuf::from("/usr/lib/libcuda.so.1")],
            new_paths: vec![PathBuf::from("/usr/lib64")],
            rootfs: Some(bundle.join("rootfs")),
            written_files: Vec::new(),
        }
    }

    /// One test, because the hand-over lives in this process's environment.
    #[test]
    fn the_sealed_process_takes_exactly_what_was_handed_over() {
        let bundle = Path::new("/run/bundles/a");
        let injection = Injection(Some(undo(bundle)));
        let (key, value) = hand_over(bundle, &injection).unwrap();
        assert_eq!(key, HANDOVER_ENV);
        let fd: i32 = value.to_str().unwrap().parse().unwrap();
        // Not inherited by accident: it must survive exec, so no FD_CLOEXEC.
        let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert_eq!(flags & nix::libc::FD_CLOEXEC, 0);

        std::env::set_var(&key, &value);
        let taken = take_handed_over(bundle).expect("handed over");
        assert_eq!(taken.0, Some(undo(bundle)));
        assert!(
            std::env::var_os(HANDOVER_ENV).is_none(),
            "the variable is gone"
        );
        assert!(
            nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).is_err(),
            "the fd is closed"
        );

        // For another bundle: not taken (and still closed and unset).
        let (key, value) = hand_over(bundle, &injection).unwrap();
        std::env::set_var(&key, &value);
        assert!(take_handed_over(Path::new("/run/bundles/b")).is_none());
        assert!(std::env::var_os(HANDOVER_ENV).is_none());

        // A variable naming an fd that is not our memfd is ignored, and the fd left alone.
        let other = std::fs::File::open("/proc/self/status").unwrap();
        std::env::set_var(HANDOVER_ENV, other.as_raw_fd().to_string());
        assert!(take_handed_over(bundle).is_none());
        assert!(nix::fcntl::fcntl(other.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFD).is_ok());
    }
}
