//! `nvidia-runtime hook STEP [FLAGS]`: the OCI hook our generated CDI specs name, for engines
//! that apply a spec themselves and run the container with another runtime (Podman or
//! containerd with runc). Run at `createContainer`: runc and youki start it from the container's
//! init process, in the container's namespaces, with the mounts done and before `pivot_root`,
//! so the rootfs (with the spec's library mounts in it) is at the bundle's `root.path` and the
//! container's procfs at `<root>/proc`. The OCI state on stdin names the bundle.
//!
//! The steps are the runtime's own ([`inject::steps`]): every path resolved inside the rootfs,
//! no program run. The environment is cleared first (a hook runs as root on the host, and
//! nothing of the image's or the engine's may steer it), after reading the one variable the spec
//! sets: the driver version it was generated for, which must be the loaded module's.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use inject::cdi_hooks::{ContainerStep, DRIVER_VERSION_ENV};
use inject::Rootfs;

/// An OCI state is a few hundred bytes; annotations may add some.
const MAX_STATE: u64 = 1 << 20;
/// As the runtime reads a bundle's config.json.
const MAX_CONFIG: u64 = 64 << 20;

#[derive(clap::Args, Debug)]
pub struct Hook {
    /// the step and its flags: `create-symlinks --link TARGET::LINK...`,
    /// `update-ldcache --folder DIR...`, `disable-device-node-modification`
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true,
        value_name = "STEP [FLAGS]"
    )]
    pub args: Vec<String>,
}

pub fn hook(args: Hook) -> Result<u8> {
    // The one variable read, before the environment goes: the driver the spec was made for
    // (`cdi generate` writes it into our hooks' env).
    let spec_driver = std::env::var(DRIVER_VERSION_ENV)
        .ok()
        .filter(|v| !v.is_empty());
    let names: Vec<std::ffi::OsString> = std::env::vars_os().map(|(name, _)| name).collect();
    for name in names {
        // One thread (nothing started yet): no other reader of the environment.
        std::env::remove_var(name);
    }
    let step = ContainerStep::from_args(&args.args).context("invalid hook arguments")?;
    let mut state = Vec::new();
    std::io::stdin()
        .take(MAX_STATE + 1)
        .read_to_end(&mut state)
        .context("cannot read the container state from stdin")?;
    let bundle = bundle_of(&state)?;
    if let Some(spec_driver) = &spec_driver {
        check_driver(spec_driver)?;
    }
    let rootfs_path = rootfs_of(&bundle)?;
    let rootfs = Rootfs::open(&rootfs_path)?;
    let done = step
        .run(&rootfs, &bundle)
        .with_context(|| format!("hook {}", step.name()))?;
    tracing::info!(step = step.name(), rootfs = %rootfs_path.display(), "{done:?}");
    Ok(0)
}

/// Refuses a container from a spec made for another driver than the loaded kernel module's
/// (read in the host's `/proc`, which the hook still sees before `pivot_root`): under plain runc
/// this hook is the only code of ours that runs, so a stale spec is never used silently. Nothing
/// to compare where no NVIDIA module is loaded (a simulated host, a spec written elsewhere).
fn check_driver(spec_driver: &str) -> Result<()> {
    let options = inventory::Options {
        cuda_version: None,
        capabilities: Some(Vec::new()),
    };
    match inventory::discover_with(&inventory::Roots::host(), &options) {
        Ok(host) if host.driver_version != spec_driver => bail!(
            "the CDI spec this container was made from is stale: it was generated for NVIDIA \
             driver {spec_driver} but the loaded kernel module is {}; run `nvidia-runtime cdi \
             refresh` (or `cdi generate` again) and start the container again",
            host.driver_version
        ),
        Ok(_) | Err(inventory::Error::NoDriver { .. }) => Ok(()),
        Err(err) => {
            tracing::warn!("cannot compare the spec's driver version with the loaded one: {err}");
            Ok(())
        }
    }
}

/// The bundle the OCI state (what runtimes write on a hook's stdin) names: an absolute path of
/// a directory.
fn bundle_of(state: &[u8]) -> Result<PathBuf> {
    if state.len() as u64 > MAX_STATE {
        bail!("the container state on stdin is over {MAX_STATE} bytes: not an OCI state");
    }
    if state.iter().all(u8::is_ascii_whitespace) {
        bail!(
            "no container state on stdin: this is an OCI hook, run by the container runtime \
             (runc, crun, youki) with the state as JSON on stdin"
        );
    }
    let state: serde_json::Value =
        serde_json::from_slice(state).context("the container state on stdin is not JSON")?;
    let bundle = state
        .get("bundle")
        .and_then(serde_json::Value::as_str)
        .context("the container state on stdin has no \"bundle\"")?;
    let bundle = PathBuf::from(bundle);
    if !bundle.is_absolute() {
        bail!(
            "the container state's bundle {} is not an absolute path",
            bundle.display()
        );
    }
    if !bundle.is_dir() {
        bail!(
            "the container state's bundle {} is not a directory",
            bundle.display()
        );
    }
    Ok(bundle)
}

/// The rootfs `<bundle>/config.json` names (`root.path`, relative to the bundle or absolute).
fn rootfs_of(bundle: &Path) -> Result<PathBuf> {
    let path = bundle.join("config.json");
    let mut bytes = Vec::new();
    std::fs::File::open(&path)
        .and_then(|f| f.take(MAX_CONFIG + 1).read_to_end(&mut bytes))
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() as u64 > MAX_CONFIG {
        bail!("{} is over {MAX_CONFIG} bytes", path.display());
    }
    let config: serde_json::Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("cannot parse {}", path.display()))?;
    let root = config
        .pointer("/root/path")
        .and_then(serde_json::Value::as_str)
        .with_context(|| format!("{} has no root.path", path.display()))?;
    Ok(bundle.join(root))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_arguments_parse_as_the_steps() {
        let cli = crate::cli::try_parse_from([
            "nvidia-runtime",
            "hook",
            "create-symlinks",
            "--link",
            "libcuda.so.1::/usr/lib64/libcuda.so",
        ])
        .unwrap();
        let Some(crate::cli::Command::Hook(hook)) = cli.command else {
            panic!("not the hook command");
        };
        assert_eq!(
            ContainerStep::from_args(&hook.args).unwrap(),
            ContainerStep::CreateSymlinks(vec![(
                "libcuda.so.1".into(),
                PathBuf::from("/usr/lib64/libcuda.so")
            )])
        );
        for args in [
            &[
                "nvidia-runtime",
                "hook",
                "update-ldcache",
                "--folder",
                "/usr/lib64",
            ][..],
            &["nvidia-runtime", "hook", "disable-device-node-modification"],
        ] {
            let cli = crate::cli::try_parse_from(args).unwrap();
            let Some(crate::cli::Command::Hook(hook)) = cli.command else {
                panic!("not the hook command");
            };
            assert!(ContainerStep::from_args(&hook.args).is_ok(), "{args:?}");
        }
        assert!(crate::cli::try_parse_from(["nvidia-runtime", "hook"]).is_err());
    }

    #[test]
    fn a_bad_state_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = |state: &str| bundle_of(state.as_bytes()).unwrap_err().to_string();
        assert!(err("").contains("no container state"));
        assert!(err("{").contains("not JSON"));
        assert!(err("{}").contains("no \"bundle\""));
        assert!(err(r#"{"bundle": "rel"}"#).contains("not an absolute path"));
        assert!(err(r#"{"bundle": "/nonexistent/x"}"#).contains("not a directory"));
        let state = serde_json::json!({"ociVersion": "1.0.2", "id": "c", "status": "creating",
            "pid": 1, "bundle": dir.path()});
        assert_eq!(bundle_of(state.to_string().as_bytes()).unwrap(), dir.path());
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"root": {"path": "rootfs"}}"#,
        )
        .unwrap();
        assert_eq!(rootfs_of(dir.path()).unwrap(), dir.path().join("rootfs"));
        std::fs::write(dir.path().join("config.json"), "{}").unwrap();
        assert!(rootfs_of(dir.path())
            .unwrap_err()
            .to_string()
            .contains("no root.path"));
    }
}
