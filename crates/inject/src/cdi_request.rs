//! CDI devices a container names: resolved from the spec dirs, checked against the host, split
//! into what `cdi::apply` writes into `config.json` and the container-side steps of ours that
//! the runtime does itself (see [`crate::cdi_hooks`]).
//!
//! NVIDIA's own kind gets two shortcuts, so that a host without a spec file keeps working as
//! before: `runtime.nvidia.com/gpu=ID` never reaches here (it is this host's GPU `ID`, see
//! [`crate::request`]), and `nvidia.com/gpu=ID` is resolved from the spec dirs when one of them
//! defines that kind (or a spec file there is refused), else injected natively as GPU `ID`.

use std::path::{Path, PathBuf};

use cdi::{ContainerEdits, QualifiedName, Registry, RegistryError};
use serde_json::Value;

use crate::cdi_hooks::{self, ContainerStep};
use crate::config::Config;
use crate::plan::{Edits, Symlink};
use crate::request::Devices;

/// NVIDIA's kind of GPUs in CDI specs (NVIDIA's `nvidia-ctk cdi generate`, ours, the DRA
/// driver's claims use other classes).
pub const NVIDIA_GPU_KIND: &str = "nvidia.com/gpu";

#[derive(Debug, thiserror::Error)]
pub enum CdiError {
    #[error(transparent)]
    Name(#[from] cdi::NameError),
    #[error("{source}{}", refused(broken))]
    Registry {
        source: Box<RegistryError>,
        /// What the registry could not read, each with its cause.
        broken: Vec<String>,
    },
    #[error(
        "CDI spec {spec} is stale: {problems}; {fix}, so that it describes the host again",
        spec = spec.display()
    )]
    Stale {
        spec: PathBuf,
        problems: String,
        fix: String,
    },
    #[error(
        "config.json was edited from a CDI spec generated for NVIDIA driver {spec_version}, but \
         the loaded kernel module is {loaded_version}: the spec is stale; run `nvidia-runtime \
         cdi refresh`, then create the container again"
    )]
    AppliedStale {
        spec_version: String,
        loaded_version: String,
    },
    #[error("cannot apply the CDI devices {names}: {source}")]
    Apply {
        names: String,
        source: cdi::apply::ApplyError,
    },
}

fn refused(broken: &[String]) -> String {
    if broken.is_empty() {
        String::new()
    } else {
        format!("; why spec files were refused: {}", broken.join("; "))
    }
}

/// The CDI part of a request, resolved.
#[derive(Debug, Default)]
pub struct Resolved {
    /// `nvidia.com/gpu` names injected natively (no spec defines that kind).
    pub native: Option<Devices>,
    /// The names resolved from spec files.
    pub names: Vec<String>,
    /// Their edits, without the hooks that are steps of ours.
    pub edits: ContainerEdits,
    /// Steps of ours the specs ask for as hooks, done by the runtime itself.
    pub steps: Vec<ContainerStep>,
    /// The spec files used, and what they hold.
    pub specs: Vec<(PathBuf, cdi::Spec)>,
    /// Whether a spec used comes from an NVIDIA driver (its steps or staleness need the host's
    /// inventory).
    pub needs_inventory: bool,
}

impl Resolved {
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Resolves `names` over the configured spec dirs. `spec` is the container's `config.json`:
/// devices an engine (containerd, CRI-O, Podman) already applied there are not applied again.
pub fn resolve(names: &[String], config: &Config, spec: &Value) -> Result<Resolved, CdiError> {
    // The inventory cache's dir also keeps the parsed spec files: parsing a generated spec
    // (YAML) costs more than the rest of the injection.
    let registry = match &config.inventory_cache {
        Some(dir) => Registry::load_cached(&config.cdi_spec_dirs, dir),
        None => Registry::load(&config.cdi_spec_dirs),
    };
    let mut resolved = Resolved::default();
    let mut native: Vec<String> = Vec::new();
    // A spec file refused might be of that kind: then the name is resolved (and its failure
    // names that file) rather than quietly given this host's GPU.
    let nvidia_specs = registry
        .specs()
        .any(|(_, spec)| spec.kind == NVIDIA_GPU_KIND)
        || registry
            .errors()
            .iter()
            .any(|e| matches!(e, RegistryError::Spec(_) | RegistryError::Read { .. }));
    for name in names {
        match name
            .strip_prefix(NVIDIA_GPU_KIND)
            .and_then(|n| n.strip_prefix('='))
        {
            Some(id) if !nvidia_specs => native.push(id.to_owned()),
            _ => resolved.names.push(name.clone()),
        }
    }
    if !native.is_empty() {
        tracing::debug!(
            "no CDI spec defines {NVIDIA_GPU_KIND}: its devices are this host's GPUs {native:?}"
        );
        resolved.native = Some(if native.iter().any(|id| id == "all") {
            Devices::All
        } else {
            Devices::List(native)
        });
    }
    if resolved.names.is_empty() {
        return Ok(resolved);
    }
    let qualified = resolved
        .names
        .iter()
        .map(|name| QualifiedName::parse(name))
        .collect::<Result<Vec<_>, _>>()?;
    let (edits, specs) = registry
        .edits_for(&qualified)
        .map_err(|source| CdiError::Registry {
            source: Box::new(source),
            broken: registry
                .errors()
                .iter()
                .filter(|e| matches!(e, RegistryError::Spec(_) | RegistryError::Read { .. }))
                .map(ToString::to_string)
                .collect(),
        })?;
    if already_applied(spec, &edits) {
        tracing::info!(
            "CDI devices {} are applied in config.json already (by the engine): passed through",
            resolved.names.join(",")
        );
        resolved.names.clear();
        return Ok(resolved);
    }
    resolved.specs = registry
        .specs()
        .filter(|(path, _)| specs.iter().any(|used| used == path))
        .map(|(path, doc)| (path.to_owned(), doc.clone()))
        .collect();
    let mut edits = edits;
    let hooks = std::mem::take(&mut edits.hooks);
    for hook in hooks {
        match ContainerStep::parse(&hook) {
            Some(step) => resolved.steps.push(step),
            None => edits.hooks.push(hook),
        }
    }
    resolved.edits = edits;
    // The GPUs whose /proc/driver/nvidia directories to show, and the loaded driver's version,
    // come from the host's inventory; the other steps need none.
    resolved.needs_inventory = resolved
        .steps
        .contains(&ContainerStep::DisableDeviceNodeModification)
        || resolved
            .specs
            .iter()
            .any(|(_, doc)| cdi_hooks::spec_driver_version(doc).is_some());
    Ok(resolved)
}

/// Refuses a spec used that no longer describes the host: a file it mounts or a node it names
/// is gone, or (for specs `cdi generate` wrote) it was generated for another driver than the
/// loaded module. `inventory`: the host's, where known (only a spec with the driver version
/// annotation needs it).
pub fn check_fresh(
    resolved: &Resolved,
    inventory: Option<&inventory::Inventory>,
) -> Result<(), CdiError> {
    let empty = files_only();
    for (path, spec) in &resolved.specs {
        let stale = cdi_hooks::staleness(spec, inventory.unwrap_or(&empty));
        if stale.is_empty() {
            continue;
        }
        let problems: Vec<String> = stale.iter().map(ToString::to_string).collect();
        let ours = spec.kind.starts_with("nvidia.com/");
        return Err(CdiError::Stale {
            spec: path.clone(),
            problems: problems.join(", "),
            fix: if ours {
                format!(
                    "run `nvidia-runtime cdi refresh --output {}` to generate it anew",
                    path.display()
                )
            } else {
                "generate it anew with its vendor's tool, or remove it".to_owned()
            },
        });
    }
    Ok(())
}

/// For a `config.json` an engine already edited from a spec `cdi generate` wrote (our hooks in
/// it name the driver version): refuses it when the loaded module is another driver, whose files
/// the spec's mounts no longer match. `loaded`: the loaded module's version, where known.
pub fn check_applied(spec: &Value, loaded: Option<&str>) -> Result<(), CdiError> {
    let (Some(spec_version), Some(loaded)) = (cdi_hooks::applied_driver_version(spec), loaded)
    else {
        return Ok(());
    };
    if spec_version == loaded {
        return Ok(());
    }
    Err(CdiError::AppliedStale {
        spec_version,
        loaded_version: loaded.to_owned(),
    })
}

/// An inventory that knows no driver: staleness then checks files only.
fn files_only() -> inventory::Inventory {
    inventory::Inventory {
        driver_version: String::new(),
        cuda_version: None,
        gpus: Vec::new(),
        unreadable_gpus: Vec::new(),
        control_devices: Vec::new(),
        mig_caps: Vec::new(),
        libraries: Vec::new(),
        binaries: Vec::new(),
        firmware: Vec::new(),
        ipc: Vec::new(),
        mig_enabled: false,
    }
}

/// Whether `spec` has every env entry, device node and mount of `edits` already: an engine
/// applied these CDI devices before calling us (it also sets `NVIDIA_VISIBLE_DEVICES=void`
/// from NVIDIA's specs), and the annotations that named them are still there.
fn already_applied(spec: &Value, edits: &ContainerEdits) -> bool {
    if edits.env.is_empty() && edits.device_nodes.is_empty() && edits.mounts.is_empty() {
        return false;
    }
    let list = |pointer: &str| {
        spec.pointer(pointer)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
    };
    let env = list("/process/env");
    let devices = list("/linux/devices");
    let mounts = list("/mounts");
    edits
        .env
        .iter()
        .all(|e| env.iter().any(|have| have.as_str() == Some(e)))
        && edits.device_nodes.iter().all(|node| {
            devices
                .iter()
                .any(|d| d.get("path").and_then(Value::as_str) == Some(&node.path))
        })
        && edits.mounts.iter().all(|m| {
            mounts.iter().any(|have| {
                have.get("destination").and_then(Value::as_str) == Some(&m.container_path)
                    && have.get("source").and_then(Value::as_str) == Some(&m.host_path)
            })
        })
}

/// Adds what the specs' steps of ours ask for to `edits`, as native injection plans them: the
/// `create-symlinks` links, the `update-ldcache` entries, and for
/// `disable-device-node-modification` the host's GPUs whose nodes the specs give (to `gpus`,
/// whose `/proc/driver/nvidia` directories the container sees). Returns whether that last step
/// is asked for.
pub fn add_steps<'a>(
    resolved: &Resolved,
    inventory: Option<&'a inventory::Inventory>,
    edits: &mut Edits,
    gpus: &mut Vec<&'a inventory::Gpu>,
) -> bool {
    let links: Vec<(String, PathBuf)> = resolved
        .steps
        .iter()
        .flat_map(|step| match step {
            ContainerStep::CreateSymlinks(links) => links.as_slice(),
            _ => &[],
        })
        .cloned()
        .collect();
    let mut proc_step = false;
    for step in &resolved.steps {
        match step {
            ContainerStep::CreateSymlinks(links) => {
                for (target, link) in links {
                    edits.symlinks.push(Symlink {
                        link: link.clone(),
                        target: target.clone(),
                    });
                }
            }
            ContainerStep::UpdateLdcache { folders } => {
                for entry in ld_cache_entries(folders, &resolved.edits, &links, inventory) {
                    if !edits.ld_cache.iter().any(|(name, _)| *name == entry.0) {
                        edits.ld_cache.push(entry);
                    }
                }
            }
            ContainerStep::DisableDeviceNodeModification => {
                proc_step = true;
                let nodes = &resolved.edits.device_nodes;
                for gpu in inventory.iter().flat_map(|inv| &inv.gpus) {
                    let path = gpu.device.container_path.to_string_lossy();
                    if nodes.iter().any(|n| n.path == path)
                        && !gpus.iter().any(|g| g.index == gpu.index)
                    {
                        gpus.push(gpu);
                    }
                }
            }
        }
    }
    proc_step
}

/// Entries for the container's `ld.so.cache` from `update-ldcache` steps: the libraries the
/// CDI edits mount into `folders`, and the links the steps make there. A library is listed
/// under its SONAME where the host's inventory knows it, else under its file name.
pub fn ld_cache_entries(
    folders: &[PathBuf],
    edits: &ContainerEdits,
    links: &[(String, PathBuf)],
    inventory: Option<&inventory::Inventory>,
) -> Vec<(String, PathBuf)> {
    let in_folders = |path: &Path| {
        path.parent()
            .is_some_and(|dir| folders.iter().any(|f| f == dir))
    };
    let is_library = |name: &str| name.starts_with("lib") && name.contains(".so");
    let mut entries: Vec<(String, PathBuf)> = Vec::new();
    let mut add = |name: String, path: PathBuf| {
        if !entries.iter().any(|(n, _)| *n == name) {
            entries.push((name, path));
        }
    };
    for mount in &edits.mounts {
        let path = PathBuf::from(&mount.container_path);
        let Some(file) = path.file_name().map(|f| f.to_string_lossy().into_owned()) else {
            continue;
        };
        if !in_folders(&path) || !is_library(&file) {
            continue;
        }
        let library = inventory.and_then(|inv| {
            inv.libraries
                .iter()
                .find(|l| l.host_path == Path::new(&mount.host_path))
        });
        if let Some(soname) = library.and_then(|l| l.soname.clone()) {
            add(soname, path.clone());
        }
        add(file, path);
    }
    for (_, link) in links {
        if let Some(name) = link.file_name().map(|f| f.to_string_lossy().into_owned()) {
            if in_folders(link) && is_library(&name) {
                add(name, link.clone());
            }
        }
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mount(host: &str, container: &str) -> cdi::Mount {
        cdi::Mount {
            host_path: host.into(),
            container_path: container.into(),
            kind: None,
            options: vec!["ro".into(), "bind".into()],
        }
    }

    #[test]
    fn engine_applied_edits_are_recognised() {
        let edits = ContainerEdits {
            env: vec!["NVIDIA_VISIBLE_DEVICES=void".into()],
            device_nodes: vec![cdi::DeviceNode {
                path: "/dev/nvidia0".into(),
                ..Default::default()
            }],
            mounts: vec![mount("/drv/libcuda.so.1", "/usr/lib/libcuda.so.1")],
            ..Default::default()
        };
        let mut spec = json!({
            "process": {"env": ["PATH=/bin", "NVIDIA_VISIBLE_DEVICES=void"]},
            "linux": {"devices": [{"path": "/dev/nvidia0", "type": "c", "major": 195, "minor": 0}]},
            "mounts": [{"destination": "/usr/lib/libcuda.so.1", "source": "/drv/libcuda.so.1"}],
        });
        assert!(already_applied(&spec, &edits));
        spec["process"]["env"] = json!(["NVIDIA_VISIBLE_DEVICES=0"]);
        assert!(!already_applied(&spec, &edits));
        assert!(!already_applied(&spec, &ContainerEdits::default()));
    }

    #[test]
    fn an_engine_applied_spec_for_another_driver_is_refused() {
        let config = json!({"hooks": {"createContainer": [{
            "path": "/usr/bin/nvidia-runtime",
            "args": ["nvidia-runtime", "hook", "disable-device-node-modification"],
            "env": ["NVIDIA_RUNTIME_DRIVER_VERSION=570.86.10"],
        }]}});
        assert!(check_applied(&config, Some("570.86.10")).is_ok());
        assert!(
            check_applied(&config, None).is_ok(),
            "no driver known: nothing to compare"
        );
        assert!(check_applied(&json!({}), Some("580.1")).is_ok());
        let err = check_applied(&config, Some("580.159.04")).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("570.86.10") && message.contains("580.159.04"),
            "{message}"
        );
        assert!(message.contains("nvidia-runtime cdi refresh"), "{message}");
    }

    #[test]
    fn ld_cache_lists_the_libraries_mounted_into_the_folders() {
        let edits = ContainerEdits {
            mounts: vec![
                mount("/drv/libcuda.so.580.1", "/usr/lib64/libcuda.so.580.1"),
                mount("/drv/nvidia-smi", "/usr/bin/nvidia-smi"),
                mount("/drv/libx.so.1", "/opt/libx.so.1"),
            ],
            ..Default::default()
        };
        let links = vec![
            (
                "libcuda.so.580.1".to_owned(),
                PathBuf::from("/usr/lib64/libcuda.so.1"),
            ),
            (
                "libcuda.so.1".to_owned(),
                PathBuf::from("/usr/lib64/libcuda.so"),
            ),
        ];
        let entries = ld_cache_entries(&[PathBuf::from("/usr/lib64")], &edits, &links, None);
        let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["libcuda.so.580.1", "libcuda.so.1", "libcuda.so"]);
        assert_eq!(entries[1].1, PathBuf::from("/usr/lib64/libcuda.so.1"));
    }
}
