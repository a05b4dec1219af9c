//! The container-side steps of GPU injection as CDI hooks, and how a generated spec goes stale.
//!
//! Some steps cannot be said as CDI mounts or device nodes: SONAME links in the image's library
//! dir, the container's `ld.so.cache`, `ModifyDeviceFiles: 0` in its `/proc/driver/nvidia/params`.
//! The runtime does them in-process; a CDI spec applied by another engine (Podman, containerd
//! with plain runc) says them as `createContainer` hooks calling our own binary:
//!
//! ```text
//! nvidia-runtime hook create-symlinks --link TARGET::LINK [--link TARGET::LINK]...
//! nvidia-runtime hook update-ldcache --folder DIR [--folder DIR]...
//! nvidia-runtime hook disable-device-node-modification
//! ```
//!
//! Step names and flags are those of NVIDIA's `nvidia-cdi-hook` (and `nvidia-ctk hook`), so a
//! spec of either shape reads the same. [`ContainerStep`] is the one model both ways:
//! [`ContainerStep::to_hook`] for `cdi generate`, [`ContainerStep::parse`] for the runtime (which
//! then does the step itself instead of running a process), [`ContainerStep::from_args`] for the
//! `hook` command.

use std::path::{Path, PathBuf};

use inventory::Inventory;

/// The OCI hook kind of every step: run by the runtime in the container's mount namespace, with
/// its mounts done and before `pivot_root`, so the rootfs is reachable at `root.path`.
pub const HOOK_KIND: &str = "createContainer";
/// `argv[0]` of our hooks (the hook's `path` is wherever the binary is installed).
pub const ARGV0: &str = "nvidia-runtime";
/// The subcommand after `argv[0]`.
pub const HOOK_SUBCOMMAND: &str = "hook";
/// The whole environment a hook of ours is given. Explicit, so that nothing of the runtime's or
/// the image's environment (an `LD_PRELOAD`, say) can ever reach a process running as root on
/// the host; the hook reads no variable anyway.
pub const HOOK_ENV: [&str; 1] =
    ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"];

/// The variable of our hooks' `env` that names the kernel module's driver version the spec was
/// generated for: a spec whose value differs from the loaded module's is stale (see
/// [`staleness`]). In the hooks' env rather than a spec annotation because annotations need
/// `cdiVersion` 0.6.0, which Podman 4.x and containerd 1.7.0 do not read (they ignore such a
/// spec without a word); hook env is CDI 0.3.0. The hook itself reads no variable.
pub const DRIVER_VERSION_ENV: &str = "NVIDIA_RUNTIME_DRIVER_VERSION";
/// Spec annotation with the same meaning as [`DRIVER_VERSION_ENV`], honoured where a spec has
/// it (one edited for CDI 0.6.0 consumers); `cdi generate` does not write it.
pub const ANNOTATION_DRIVER_VERSION: &str = "io.github.nvidia-runtime/driver-version";

/// `create-symlinks`: links inside the container's rootfs.
pub const CREATE_SYMLINKS: &str = "create-symlinks";
/// `update-ldcache`: the container's `/etc/ld.so.cache` lists the libraries of some folders.
pub const UPDATE_LDCACHE: &str = "update-ldcache";
/// `disable-device-node-modification`: `ModifyDeviceFiles: 0` in the container's
/// `/proc/driver/nvidia/params`.
pub const DISABLE_DEVICE_NODE_MODIFICATION: &str = "disable-device-node-modification";

/// One step done inside the container's rootfs after its mounts, before the process starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerStep {
    /// `(target, link)` pairs: `link` (absolute, in the container) becomes a symlink to
    /// `target` (as written, usually relative: `libcuda.so.580.95.05`). An existing symlink is
    /// replaced, any other file of the image's is kept (see [`crate::Rootfs::symlinks`]).
    CreateSymlinks(Vec<(String, PathBuf)>),
    /// The image's `/etc/ld.so.cache` plus the libraries found in `folders` (absolute, in the
    /// container), and an `/etc/ld.so.conf.d` entry naming the folders.
    UpdateLdcache { folders: Vec<PathBuf> },
    /// The container's `/proc/driver/nvidia/params` shows `ModifyDeviceFiles: 0`, so NVML makes
    /// no device nodes for GPUs the container was not given.
    DisableDeviceNodeModification,
}

/// Why hook arguments are not a step of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookArgsError {
    #[error(
        "no hook step given: expected one of {CREATE_SYMLINKS}, {UPDATE_LDCACHE}, \
         {DISABLE_DEVICE_NODE_MODIFICATION}"
    )]
    NoStep,
    #[error(
        "unknown hook step {0:?}: expected one of {CREATE_SYMLINKS}, {UPDATE_LDCACHE}, \
         {DISABLE_DEVICE_NODE_MODIFICATION}"
    )]
    UnknownStep(String),
    #[error("{step}: unknown argument {arg:?}")]
    UnknownArgument { step: &'static str, arg: String },
    #[error("{step}: {flag} needs a value")]
    MissingValue {
        step: &'static str,
        flag: &'static str,
    },
    #[error("create-symlinks: --link {0:?} is not TARGET::LINK with an absolute LINK")]
    BadLink(String),
    #[error("update-ldcache: --folder {0:?} is not an absolute path")]
    BadFolder(String),
    #[error("{0}: nothing to do (give at least one {flag})", flag = if *.0 == CREATE_SYMLINKS { "--link" } else { "--folder" })]
    Empty(&'static str),
}

impl ContainerStep {
    /// The step's name, as on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            ContainerStep::CreateSymlinks(_) => CREATE_SYMLINKS,
            ContainerStep::UpdateLdcache { .. } => UPDATE_LDCACHE,
            ContainerStep::DisableDeviceNodeModification => DISABLE_DEVICE_NODE_MODIFICATION,
        }
    }

    /// The arguments after `hook`: the step name, then its flags.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![self.name().to_owned()];
        match self {
            ContainerStep::CreateSymlinks(links) => {
                for (target, link) in links {
                    args.push("--link".into());
                    args.push(format!("{target}::{}", link.display()));
                }
            }
            ContainerStep::UpdateLdcache { folders } => {
                for folder in folders {
                    args.push("--folder".into());
                    args.push(folder.display().to_string());
                }
            }
            ContainerStep::DisableDeviceNodeModification => {}
        }
        args
    }

    /// The CDI hook running this step with our binary at `binary`:
    /// `{hookName: createContainer, path: binary, args: [nvidia-runtime, hook, STEP, FLAGS...],
    /// env: HOOK_ENV}`.
    pub fn to_hook(&self, binary: &Path) -> cdi::Hook {
        let mut args = vec![ARGV0.to_owned(), HOOK_SUBCOMMAND.to_owned()];
        args.extend(self.to_args());
        cdi::Hook {
            hook_name: HOOK_KIND.to_owned(),
            path: binary.display().to_string(),
            args,
            env: HOOK_ENV.iter().map(|s| (*s).to_owned()).collect(),
            timeout: None,
        }
    }

    /// [`ContainerStep::to_hook`] whose env also names the driver version the spec is for
    /// ([`DRIVER_VERSION_ENV`]), so that [`staleness`] can tell a spec of another driver.
    pub fn to_hook_for_driver(&self, binary: &Path, driver_version: &str) -> cdi::Hook {
        let mut hook = self.to_hook(binary);
        hook.env
            .push(format!("{DRIVER_VERSION_ENV}={driver_version}"));
        hook
    }

    /// The step a CDI hook of ours runs: `argv[0]` is `nvidia-runtime` and `argv[1]` is `hook`
    /// (whatever the binary's path), the hook kind is `createContainer`, and the rest parses
    /// (see [`ContainerStep::from_args`]). `None` for any other hook.
    pub fn parse(hook: &cdi::Hook) -> Option<ContainerStep> {
        if hook.hook_name != HOOK_KIND {
            return None;
        }
        match hook.args.as_slice() {
            [argv0, sub, rest @ ..] if argv0 == ARGV0 && sub == HOOK_SUBCOMMAND => {
                Self::from_args(rest).ok()
            }
            _ => None,
        }
    }

    /// Like [`ContainerStep::parse`], and also NVIDIA's hooks of the same steps
    /// (`nvidia-cdi-hook STEP ...`, `nvidia-ctk hook STEP ...`), whose flags mean the same;
    /// their `--ldconfig-path` is ignored (the cache is written without running ldconfig).
    pub fn parse_compatible(hook: &cdi::Hook) -> Option<ContainerStep> {
        if let Some(step) = Self::parse(hook) {
            return Some(step);
        }
        if hook.hook_name != HOOK_KIND {
            return None;
        }
        let program = |arg: &String| {
            Path::new(arg)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let rest = match hook.args.as_slice() {
            [argv0, rest @ ..] if program(argv0) == "nvidia-cdi-hook" => rest,
            [argv0, sub, rest @ ..] if program(argv0) == "nvidia-ctk" && sub == "hook" => rest,
            _ => return None,
        };
        let mut args: Vec<String> = Vec::with_capacity(rest.len());
        let mut i = 0;
        while i < rest.len() {
            let arg = &rest[i];
            if arg == "--ldconfig-path" {
                i += 2;
                continue;
            }
            if arg.starts_with("--ldconfig-path=") {
                i += 1;
                continue;
            }
            args.push(arg.clone());
            i += 1;
        }
        Self::from_args(&args).ok()
    }

    /// Parses `STEP [FLAGS...]` (the arguments after `hook`). Flags take their value as the
    /// next argument or after `=` (`--link=T::L`), as NVIDIA's hooks accept them.
    pub fn from_args<S: AsRef<str>>(args: &[S]) -> Result<ContainerStep, HookArgsError> {
        let (step, rest) = args.split_first().ok_or(HookArgsError::NoStep)?;
        let (name, flag): (&'static str, Option<&'static str>) = match step.as_ref() {
            CREATE_SYMLINKS => (CREATE_SYMLINKS, Some("--link")),
            UPDATE_LDCACHE => (UPDATE_LDCACHE, Some("--folder")),
            DISABLE_DEVICE_NODE_MODIFICATION => (DISABLE_DEVICE_NODE_MODIFICATION, None),
            other => return Err(HookArgsError::UnknownStep(other.to_owned())),
        };
        let mut values: Vec<String> = Vec::new();
        let mut iter = rest.iter().map(AsRef::as_ref);
        while let Some(arg) = iter.next() {
            let Some(flag) = flag else {
                return Err(HookArgsError::UnknownArgument {
                    step: name,
                    arg: arg.to_owned(),
                });
            };
            if arg == flag {
                let value = iter
                    .next()
                    .ok_or(HookArgsError::MissingValue { step: name, flag })?;
                values.push(value.to_owned());
            } else if let Some(value) = arg.strip_prefix(flag).and_then(|v| v.strip_prefix('=')) {
                values.push(value.to_owned());
            } else {
                return Err(HookArgsError::UnknownArgument {
                    step: name,
                    arg: arg.to_owned(),
                });
            }
        }
        match name {
            CREATE_SYMLINKS => {
                if values.is_empty() {
                    return Err(HookArgsError::Empty(CREATE_SYMLINKS));
                }
                let links = values
                    .into_iter()
                    .map(|value| match value.split_once("::") {
                        Some((target, link))
                            if !target.is_empty()
                                && is_plain_absolute(link)
                                && !link.contains("::") =>
                        {
                            Ok((target.to_owned(), PathBuf::from(link)))
                        }
                        _ => Err(HookArgsError::BadLink(value)),
                    })
                    .collect::<Result<_, _>>()?;
                Ok(ContainerStep::CreateSymlinks(links))
            }
            UPDATE_LDCACHE => {
                if values.is_empty() {
                    return Err(HookArgsError::Empty(UPDATE_LDCACHE));
                }
                let folders = values
                    .into_iter()
                    .map(|value| {
                        if is_plain_absolute(&value) {
                            Ok(PathBuf::from(value))
                        } else {
                            Err(HookArgsError::BadFolder(value))
                        }
                    })
                    .collect::<Result<_, _>>()?;
                Ok(ContainerStep::UpdateLdcache { folders })
            }
            _ => Ok(ContainerStep::DisableDeviceNodeModification),
        }
    }
}

/// Absolute, and no `..` (a path in the container that must name what it says).
fn is_plain_absolute(path: &str) -> bool {
    let path = Path::new(path);
    path.is_absolute()
        && path
            .components()
            .all(|c| !matches!(c, std::path::Component::ParentDir))
}

/// Why a CDI spec no longer describes the host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Stale {
    /// A host file the spec mounts, a device node it names, or a hook binary is gone.
    #[error("{what} {path} no longer exists")]
    MissingFile { what: &'static str, path: PathBuf },
    /// The spec was generated for another driver than the loaded kernel module's.
    #[error(
        "generated for driver {spec_version} but the loaded NVIDIA kernel module is {loaded_version}"
    )]
    DriverVersion {
        spec_version: String,
        loaded_version: String,
    },
}

/// The driver version a spec was generated for: the [`ANNOTATION_DRIVER_VERSION`] annotation,
/// else [`DRIVER_VERSION_ENV`] in the env of a hook of ours (what `cdi generate` writes).
/// `None` for specs of other tools (NVIDIA's own): only their files can be checked.
pub fn spec_driver_version(spec: &cdi::Spec) -> Option<&str> {
    if let Some(version) = spec.annotations.get(ANNOTATION_DRIVER_VERSION) {
        return Some(version);
    }
    let prefix = format!("{DRIVER_VERSION_ENV}=");
    std::iter::once(&spec.container_edits)
        .chain(spec.devices.iter().map(|d| &d.container_edits))
        .flat_map(|edits| &edits.hooks)
        .filter(|hook| ContainerStep::parse(hook).is_some())
        .flat_map(|hook| &hook.env)
        .find_map(|entry| entry.strip_prefix(&prefix))
}

/// For a `config.json` an engine already edited from a CDI spec (Podman, containerd with CDI on):
/// the driver version that spec was generated for, read from the env of a `createContainer`
/// hook of ours there (`hooks.createContainer[].env`, see [`DRIVER_VERSION_ENV`]). `None`: no
/// hook of ours, or one without the variable. A runtime can compare it with the loaded module's
/// and refuse a container built from a stale spec, naming the cause.
pub fn applied_driver_version(config: &serde_json::Value) -> Option<String> {
    let hooks = config.pointer("/hooks/createContainer")?.as_array()?;
    let prefix = format!("{DRIVER_VERSION_ENV}=");
    hooks.iter().find_map(|hook| {
        let hook = cdi::Hook {
            hook_name: HOOK_KIND.to_owned(),
            path: hook.get("path")?.as_str()?.to_owned(),
            args: strings(hook.get("args"))?,
            env: strings(hook.get("env"))?,
            timeout: None,
        };
        ContainerStep::parse(&hook)?;
        hook.env
            .iter()
            .find_map(|entry| entry.strip_prefix(&prefix).map(str::to_owned))
    })
}

fn strings(value: Option<&serde_json::Value>) -> Option<Vec<String>> {
    match value {
        None => Some(Vec::new()),
        Some(value) => value
            .as_array()?
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect(),
    }
}

/// What makes `spec` stale on the host `inventory` describes: a driver version
/// ([`spec_driver_version`]) that is not the loaded module's, then [`staleness_of_files`].
/// Empty: the spec is current. Specs of other tools (NVIDIA's own), and an inventory with an
/// empty `driver_version` (no driver known), are checked for their files only.
pub fn staleness(spec: &cdi::Spec, inventory: &Inventory) -> Vec<Stale> {
    let mut stale = Vec::new();
    if let Some(version) = spec_driver_version(spec) {
        if !inventory.driver_version.is_empty() && version != inventory.driver_version {
            stale.push(Stale::DriverVersion {
                spec_version: version.to_owned(),
                loaded_version: inventory.driver_version.clone(),
            });
        }
    }
    stale.extend(staleness_of_files(spec));
    stale
}

/// Every host file `spec` names that no longer exists: bind mount sources, device nodes (by
/// `hostPath`, else `path`), hook binaries; each once, in the spec's order.
pub fn staleness_of_files(spec: &cdi::Spec) -> Vec<Stale> {
    let mut stale = Vec::new();
    let edits = std::iter::once(&spec.container_edits)
        .chain(spec.devices.iter().map(|d| &d.container_edits));
    let mut seen: Vec<&str> = Vec::new();
    for edits in edits {
        let files = edits
            .mounts
            .iter()
            .filter(|m| is_bind(m))
            .map(|m| ("mount source", m.host_path.as_str()))
            .chain(
                edits
                    .device_nodes
                    .iter()
                    .map(|d| ("device node", d.host_path_or_path())),
            )
            .chain(edits.hooks.iter().map(|h| ("hook binary", h.path.as_str())));
        for (what, path) in files {
            if seen.contains(&path) {
                continue;
            }
            seen.push(path);
            if std::fs::symlink_metadata(path).is_err() {
                stale.push(Stale::MissingFile {
                    what,
                    path: PathBuf::from(path),
                });
            }
        }
    }
    stale
}

/// A mount whose `hostPath` is a file of the host (not `tmpfs`, `proc`, ...).
fn is_bind(mount: &cdi::Mount) -> bool {
    mount.host_path.starts_with('/')
        && (mount
            .kind
            .as_deref()
            .is_none_or(|k| k == "bind" || k == "none")
            || mount.options.iter().any(|o| o == "bind" || o == "rbind"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps() -> Vec<ContainerStep> {
        vec![
            ContainerStep::CreateSymlinks(vec![
                (
                    "libcuda.so.580.95.05".into(),
                    PathBuf::from("/usr/lib/x86_64-linux-gnu/libcuda.so.1"),
                ),
                (
                    "libcuda.so.1".into(),
                    PathBuf::from("/usr/lib/x86_64-linux-gnu/libcuda.so"),
                ),
            ]),
            ContainerStep::UpdateLdcache {
                folders: vec![PathBuf::from("/usr/lib/x86_64-linux-gnu")],
            },
            ContainerStep::DisableDeviceNodeModification,
        ]
    }

    #[test]
    fn hooks_round_trip_with_nvidias_argv_shape() {
        let binary = Path::new("/usr/local/bin/nvidia-runtime");
        for step in steps() {
            let hook = step.to_hook(binary);
            assert_eq!(hook.hook_name, "createContainer");
            assert_eq!(hook.path, "/usr/local/bin/nvidia-runtime");
            assert_eq!(&hook.args[..3], &["nvidia-runtime", "hook", step.name()]);
            assert!(
                !hook.env.is_empty(),
                "an explicit env keeps the runtime's out"
            );
            assert_eq!(ContainerStep::parse(&hook), Some(step.clone()));
        }
        let hook = steps()[0].to_hook(binary);
        assert_eq!(
            hook.args[3..],
            [
                "--link",
                "libcuda.so.580.95.05::/usr/lib/x86_64-linux-gnu/libcuda.so.1",
                "--link",
                "libcuda.so.1::/usr/lib/x86_64-linux-gnu/libcuda.so",
            ]
        );
    }

    #[test]
    fn other_hooks_are_not_ours() {
        let mut hook = steps()[2].to_hook(Path::new("/bin/x"));
        hook.hook_name = "prestart".into();
        assert_eq!(ContainerStep::parse(&hook), None);
        let nvidia = cdi::Hook {
            hook_name: "createContainer".into(),
            path: "/usr/bin/nvidia-cdi-hook".into(),
            args: [
                "nvidia-cdi-hook",
                "update-ldcache",
                "--ldconfig-path",
                "/sbin/ldconfig",
                "--folder",
                "/usr/lib64",
            ]
            .map(String::from)
            .to_vec(),
            ..cdi::Hook::default()
        };
        assert_eq!(ContainerStep::parse(&nvidia), None);
        assert_eq!(
            ContainerStep::parse_compatible(&nvidia),
            Some(ContainerStep::UpdateLdcache {
                folders: vec![PathBuf::from("/usr/lib64")]
            })
        );
        let ctk = cdi::Hook {
            hook_name: "createContainer".into(),
            path: "/usr/bin/nvidia-ctk".into(),
            args: [
                "nvidia-ctk",
                "hook",
                "chmod",
                "--mode",
                "755",
                "--path",
                "/dev/dri",
            ]
            .map(String::from)
            .to_vec(),
            ..cdi::Hook::default()
        };
        assert_eq!(ContainerStep::parse_compatible(&ctk), None);
    }

    #[test]
    fn an_engine_applied_spec_tells_its_driver_version() {
        let hook = ContainerStep::DisableDeviceNodeModification
            .to_hook_for_driver(Path::new("/usr/bin/nvidia-runtime"), "580.95.05");
        let config = serde_json::json!({"hooks": {"createContainer": [
            {"path": "/usr/bin/other", "args": ["other"]},
            serde_json::to_value(&hook).unwrap(),
        ]}});
        assert_eq!(
            applied_driver_version(&config).as_deref(),
            Some("580.95.05")
        );
        let plain = serde_json::json!({"hooks": {"createContainer": [
            serde_json::to_value(steps()[2].to_hook(Path::new("/x"))).unwrap()
        ]}});
        assert_eq!(applied_driver_version(&plain), None);
        assert_eq!(applied_driver_version(&serde_json::json!({})), None);
    }

    #[test]
    fn bad_arguments_are_named() {
        use HookArgsError::*;
        let cases: [(&[&str], HookArgsError); 8] = [
            (&[], NoStep),
            (&["chmod"], UnknownStep("chmod".into())),
            (&["create-symlinks"], Empty(CREATE_SYMLINKS)),
            (
                &["create-symlinks", "--link"],
                MissingValue {
                    step: CREATE_SYMLINKS,
                    flag: "--link",
                },
            ),
            (
                &["create-symlinks", "--link", "a::rel/b"],
                BadLink("a::rel/b".into()),
            ),
            (
                &["create-symlinks", "--link", "::/b"],
                BadLink("::/b".into()),
            ),
            (
                &["update-ldcache", "--folder", "/a/../etc"],
                BadFolder("/a/../etc".into()),
            ),
            (
                &["disable-device-node-modification", "--x"],
                UnknownArgument {
                    step: DISABLE_DEVICE_NODE_MODIFICATION,
                    arg: "--x".into(),
                },
            ),
        ];
        for (args, want) in cases {
            assert_eq!(ContainerStep::from_args(args), Err(want), "{args:?}");
        }
        assert_eq!(
            ContainerStep::from_args(&[
                "update-ldcache",
                "--folder=/usr/lib64",
                "--folder",
                "/lib"
            ]),
            Ok(ContainerStep::UpdateLdcache {
                folders: vec![PathBuf::from("/usr/lib64"), PathBuf::from("/lib")]
            })
        );
    }

    #[test]
    fn a_spec_is_stale_when_its_files_or_driver_version_are_not_the_hosts() {
        let dir = tempfile::tempdir().unwrap();
        let present = dir.path().join("libcuda.so.1");
        std::fs::write(&present, b"").unwrap();
        let gone = dir.path().join("libnvidia-ml.so.1");
        let mount = |p: &Path| cdi::Mount {
            host_path: p.display().to_string(),
            container_path: p.display().to_string(),
            kind: None,
            options: vec!["ro".into(), "bind".into()],
        };
        let mut spec = cdi::Spec {
            cdi_version: "0.6.0".into(),
            kind: "nvidia.com/gpu".into(),
            annotations: [(ANNOTATION_DRIVER_VERSION.to_owned(), "580.95.05".to_owned())].into(),
            devices: Vec::new(),
            container_edits: cdi::ContainerEdits {
                mounts: vec![mount(&present), mount(&gone)],
                ..Default::default()
            },
        };
        spec.container_edits.mounts.push(cdi::Mount {
            host_path: "tmpfs".into(),
            container_path: "/x".into(),
            kind: Some("tmpfs".into()),
            options: Vec::new(),
        });
        let inventory: Inventory = serde_json::from_value(serde_json::json!({
            "driver_version": "580.95.05", "cuda_version": null, "gpus": [],
            "control_devices": [], "mig_caps": [], "libraries": [], "binaries": [],
            "firmware": [], "ipc": [], "mig_enabled": false
        }))
        .unwrap();
        assert_eq!(
            staleness(&spec, &inventory),
            [Stale::MissingFile {
                what: "mount source",
                path: gone.clone()
            }]
        );
        let newer = Inventory {
            driver_version: "590.1".into(),
            ..inventory.clone()
        };
        spec.container_edits.mounts.remove(1);
        assert_eq!(
            staleness(&spec, &newer),
            [Stale::DriverVersion {
                spec_version: "580.95.05".into(),
                loaded_version: "590.1".into()
            }]
        );
        assert!(staleness(&spec, &inventory).is_empty());

        // what cdi generate writes: the version in our hooks' env, no annotation
        spec.annotations.clear();
        assert!(staleness(&spec, &newer).is_empty(), "no version known");
        spec.container_edits.hooks.push(
            ContainerStep::DisableDeviceNodeModification
                .to_hook_for_driver(Path::new("/"), "580.95.05"),
        );
        assert_eq!(spec_driver_version(&spec), Some("580.95.05"));
        assert_eq!(
            staleness(&spec, &newer),
            [Stale::DriverVersion {
                spec_version: "580.95.05".into(),
                loaded_version: "590.1".into()
            }]
        );
        let no_driver = Inventory {
            driver_version: String::new(),
            ..inventory
        };
        assert!(staleness(&spec, &no_driver).is_empty(), "files only");
    }
}
