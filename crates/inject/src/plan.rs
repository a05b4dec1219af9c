//! From (host inventory, request, the image's library dir) to edits. Pure: no I/O.

use std::path::{Path, PathBuf};

use inventory::{Capability, DeviceNode, Gpu, Inventory};

use crate::request::{Devices, Request};

/// Options of every bind mount we add: read-only, no setuid, no device files through it.
pub const MOUNT_OPTIONS: [&str; 4] = ["ro", "nosuid", "nodev", "bind"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    pub host: PathBuf,
    pub container: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symlink {
    /// Absolute path inside the container.
    pub link: PathBuf,
    /// Relative target, as the driver installer writes it.
    pub target: String,
}

/// The edits of one container, CDI-shaped: device nodes (and their cgroup rules), mounts,
/// links to create in the rootfs, entries for the container's `ld.so.cache`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edits {
    pub devices: Vec<DeviceNode>,
    pub mounts: Vec<BindMount>,
    pub symlinks: Vec<Symlink>,
    /// (SONAME or link name, path inside the container) for the container's ld.so.cache.
    pub ld_cache: Vec<(String, PathBuf)>,
    /// The GPUs given, by index, for the log and requirement checks.
    pub gpu_indices: Vec<u32>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("unknown NVIDIA GPU {id:?}: this host has {available}")]
    UnknownDevice { id: String, available: String },
    #[error("MIG device {id:?} requested, but no GPU on this host has MIG mode enabled")]
    MigNotEnabled { id: String },
    #[error("MIG device {id:?} requested: MIG devices are not supported by nvidia-runtime yet")]
    MigUnsupported { id: String },
}

/// The GPUs a request names, in the order given, without duplicates.
pub fn select_gpus<'a>(
    inventory: &'a Inventory,
    devices: &Devices,
) -> Result<Vec<&'a Gpu>, PlanError> {
    let ids = match devices {
        Devices::All => return Ok(inventory.gpus.iter().collect()),
        Devices::NoGpus => return Ok(Vec::new()),
        Devices::List(ids) => ids,
    };
    let mut selected: Vec<&Gpu> = Vec::new();
    for id in ids {
        let gpu = find_gpu(inventory, id)?;
        if !selected.iter().any(|g| g.index == gpu.index) {
            selected.push(gpu);
        }
    }
    Ok(selected)
}

fn find_gpu<'a>(inventory: &'a Inventory, id: &str) -> Result<&'a Gpu, PlanError> {
    if id.starts_with("MIG-")
        || (id.contains(':') && id.split(':').all(|p| p.parse::<u32>().is_ok()))
    {
        return Err(if inventory.mig_enabled {
            PlanError::MigUnsupported { id: id.to_owned() }
        } else {
            PlanError::MigNotEnabled { id: id.to_owned() }
        });
    }
    let found = if let Ok(index) = id.parse::<u32>() {
        inventory.gpus.iter().find(|gpu| gpu.index == index)
    } else {
        let wanted = id.to_ascii_lowercase();
        inventory.gpus.iter().find(|gpu| {
            gpu.uuid.to_ascii_lowercase() == wanted || same_bus_id(&gpu.bus_id, &wanted)
        })
    };
    found.ok_or_else(|| PlanError::UnknownDevice {
        id: id.to_owned(),
        available: describe(inventory),
    })
}

/// nvidia-smi prints bus ids with an 8-digit domain, /proc with 4; accept both.
fn same_bus_id(have: &str, wanted: &str) -> bool {
    let normalise = |s: &str| s.to_ascii_lowercase().trim_start_matches('0').to_owned();
    normalise(have) == normalise(wanted)
}

fn describe(inventory: &Inventory) -> String {
    if inventory.gpus.is_empty() {
        return "no GPUs".into();
    }
    let list: Vec<String> = inventory
        .gpus
        .iter()
        .map(|gpu| format!("{} ({})", gpu.index, gpu.uuid))
        .collect();
    format!("GPUs {}", list.join(", "))
}

/// Builds the edits. `lib_dir` is where the image's loader looks (see `Rootfs::library_dir`).
pub fn plan(inventory: &Inventory, request: &Request, gpus: &[&Gpu], lib_dir: &Path) -> Edits {
    let wants = |cap: Capability| request.capabilities.contains(&cap);
    let mut edits = Edits {
        gpu_indices: gpus.iter().map(|gpu| gpu.index).collect(),
        ..Edits::default()
    };

    for node in &inventory.control_devices {
        let name = node.container_path.to_string_lossy();
        let needed = match name.as_ref() {
            "/dev/nvidia-uvm" | "/dev/nvidia-uvm-tools" => wants(Capability::Compute),
            "/dev/nvidia-modeset" => wants(Capability::Display) || wants(Capability::Graphics),
            _ => true,
        };
        if needed {
            edits.devices.push(node.clone());
        }
    }
    edits
        .devices
        .extend(gpus.iter().map(|gpu| gpu.device.clone()));

    for library in &inventory.libraries {
        if !wants(library.capability) {
            continue;
        }
        let file_path = lib_dir.join(&library.file_name);
        edits.mounts.push(BindMount {
            host: library.host_path.clone(),
            container: file_path.clone(),
        });
        if let Some(soname) = &library.soname {
            if soname != &library.file_name {
                edits.symlinks.push(Symlink {
                    link: lib_dir.join(soname),
                    target: library.file_name.clone(),
                });
            }
            edits.ld_cache.push((soname.clone(), file_path.clone()));
        }
        // The host's other names for it (`libnvidia-ml.so`, which `-lnvidia-ml` and some
        // dlopen callers use): the container has what the host has.
        for link in &library.links {
            edits.symlinks.push(Symlink {
                link: lib_dir.join(&link.name),
                target: link.target.clone(),
            });
            edits.ld_cache.push((link.name.clone(), file_path.clone()));
        }
    }

    for binary in &inventory.binaries {
        if binary.capability.is_some_and(wants) {
            edits.mounts.push(BindMount {
                host: binary.host_path.clone(),
                container: binary.container_path.clone(),
            });
        }
    }
    // Firmware and IPC endpoints are per driver, not per capability: any GPU use needs them.
    for file in inventory.firmware.iter().chain(&inventory.ipc) {
        if file.capability.is_none_or(wants) {
            edits.mounts.push(BindMount {
                host: file.host_path.clone(),
                container: file.container_path.clone(),
            });
        }
    }
    edits
}

#[cfg(test)]
mod tests {
    use super::*;
    use inventory::{Library, LibraryLink};

    fn inventory_with(libraries: Vec<Library>) -> Inventory {
        Inventory {
            driver_version: "580.159.04".into(),
            cuda_version: Some((13, 0)),
            gpus: Vec::new(),
            unreadable_gpus: Vec::new(),
            control_devices: Vec::new(),
            mig_caps: Vec::new(),
            libraries,
            binaries: Vec::new(),
            firmware: Vec::new(),
            ipc: Vec::new(),
            mig_enabled: false,
        }
    }

    fn library(file: &str, soname: &str, links: &[(&str, &str)], cap: Capability) -> Library {
        Library {
            host_path: PathBuf::from("/drv").join(file),
            file_name: file.into(),
            soname: Some(soname.into()),
            capability: cap,
            links: links
                .iter()
                .map(|(name, target)| LibraryLink {
                    name: (*name).into(),
                    target: (*target).into(),
                })
                .collect(),
        }
    }

    #[test]
    fn the_hosts_links_and_only_those_are_made() {
        let inv = inventory_with(vec![
            library(
                "libnvidia-ml.so.580.159.04",
                "libnvidia-ml.so.1",
                &[("libnvidia-ml.so", "libnvidia-ml.so.1")],
                Capability::Utility,
            ),
            // a host without a libcuda.so link: the container has none either
            library(
                "libcuda.so.580.159.04",
                "libcuda.so.1",
                &[],
                Capability::Compute,
            ),
        ]);
        let request = Request {
            devices: Devices::NoGpus,
            capabilities: vec![Capability::Utility, Capability::Compute],
            requirements: Vec::new(),
            disable_require: false,
        };
        let lib = Path::new("/usr/lib64");
        let edits = plan(&inv, &request, &[], lib);
        let links: Vec<(String, &str)> = edits
            .symlinks
            .iter()
            .map(|l| (l.link.display().to_string(), l.target.as_str()))
            .collect();
        assert_eq!(
            links,
            vec![
                (
                    "/usr/lib64/libnvidia-ml.so.1".into(),
                    "libnvidia-ml.so.580.159.04"
                ),
                ("/usr/lib64/libnvidia-ml.so".into(), "libnvidia-ml.so.1"),
                ("/usr/lib64/libcuda.so.1".into(), "libcuda.so.580.159.04"),
            ]
        );
        let names: Vec<&str> = edits.ld_cache.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["libnvidia-ml.so.1", "libnvidia-ml.so", "libcuda.so.1"]
        );
        assert!(edits
            .ld_cache
            .iter()
            .all(|(_, path)| path.parent() == Some(lib)));
    }
}
