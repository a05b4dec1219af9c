//! `cdi generate`: the host's GPUs as a CDI spec, planned by the same code the runtime injects
//! with ([`crate::plan::plan`]), so that a container given GPUs by CDI and one given them by
//! `NVIDIA_VISIBLE_DEVICES` get the same files at the same paths. Pure: (inventory, options) in,
//! spec out.
//!
//! The shape follows NVIDIA's `nvidia-ctk cdi generate`:
//!
//! ```text
//! cdiVersion: the lowest version the content needs (0.5.0 for hostPath or names like `0`)
//! kind: nvidia.com/gpu
//! devices:
//!   - name: "0" | GPU-<uuid> | gpu0          one per GPU and naming strategy
//!     containerEdits: {deviceNodes: [/dev/nvidia<minor>]}
//!   - name: all                              every GPU's node (unless turned off)
//! containerEdits:                            what any of the devices brings
//!   env: [NVIDIA_VISIBLE_DEVICES=void]       so a runtime of NVIDIA's kind injects nothing more
//!   deviceNodes: control nodes (nvidiactl, nvidia-uvm, nvidia-uvm-tools, nvidia-modeset)
//!   mounts: libraries (in the image's library dir), binaries, firmware, IPC sockets; ro,nosuid,nodev,bind
//!   hooks: createContainer hooks calling our binary: create-symlinks (SONAME and
//!          development links), update-ldcache (the library dir), disable-device-node-modification;
//!          their env: PATH and NVIDIA_RUNTIME_DRIVER_VERSION=<the module's version>
//! ```
//!
//! Device nodes carry `hostPath` where the dev root is not `/` (a simulated host), and their
//! type, major and minor, so an engine need not guess them.

use std::path::PathBuf;

use inventory::{Capability, Gpu, Inventory};

use crate::cdi_hooks::ContainerStep;
use crate::plan::{self, MOUNT_OPTIONS};
use crate::request::{Devices, Request};

/// The library dir of Debian-like images: where the runtime puts the driver's libraries in
/// them, and where a generated spec puts them for every image (an image with another loader
/// path finds them through the `ld.so.cache` the update-ldcache hook writes).
pub const DEFAULT_LIBRARY_DIR: &str = "/usr/lib/x86_64-linux-gnu";
/// The vendor and class of NVIDIA's GPU specs: `nvidia.com/gpu=0`.
pub const DEFAULT_VENDOR: &str = "nvidia.com";
pub const DEFAULT_CLASS: &str = "gpu";
/// The device bringing every GPU (as NVIDIA's spec names it).
pub const ALL_DEVICE: &str = "all";

/// How a GPU device is named in the spec (NVIDIA's `--device-name-strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameStrategy {
    /// `0`, `1`, ...: the GPU's index (nvidia-smi's, PCI bus order).
    Index,
    /// `GPU-xxxxxxxx-...`: the GPU's UUID.
    Uuid,
    /// `gpu0`, `gpu1`, ...: the type and index.
    TypeIndex,
}

impl NameStrategy {
    /// The name of `gpu` under this strategy.
    pub fn name(self, gpu: &Gpu) -> String {
        match self {
            NameStrategy::Index => gpu.index.to_string(),
            NameStrategy::Uuid => gpu.uuid.clone(),
            NameStrategy::TypeIndex => format!("gpu{}", gpu.index),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NameStrategy::Index => "index",
            NameStrategy::Uuid => "uuid",
            NameStrategy::TypeIndex => "type-index",
        }
    }
}

impl std::str::FromStr for NameStrategy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "index" => Ok(NameStrategy::Index),
            "uuid" => Ok(NameStrategy::Uuid),
            "type-index" => Ok(NameStrategy::TypeIndex),
            other => Err(format!(
                "unknown device name strategy {other:?}: expected index, uuid or type-index"
            )),
        }
    }
}

/// What `cdi generate` is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateOptions {
    /// `vendor` of the kind, e.g. `nvidia.com`.
    pub vendor: String,
    /// `class` of the kind, e.g. `gpu`.
    pub class: String,
    /// One device per GPU and strategy, in this order; at least one.
    pub strategies: Vec<NameStrategy>,
    /// Whether to add the [`ALL_DEVICE`] device.
    pub all_device: bool,
    /// Our binary, as the hooks run it (an absolute path on the host).
    pub hook_binary: PathBuf,
    /// Where the libraries go in the container (absolute).
    pub library_dir: PathBuf,
}

impl GenerateOptions {
    /// NVIDIA's defaults: `nvidia.com/gpu`, index names, an `all` device.
    pub fn new(hook_binary: PathBuf) -> Self {
        Self {
            vendor: DEFAULT_VENDOR.into(),
            class: DEFAULT_CLASS.into(),
            strategies: vec![NameStrategy::Index],
            all_device: true,
            hook_binary,
            library_dir: PathBuf::from(DEFAULT_LIBRARY_DIR),
        }
    }
}

/// The spec of every GPU in `inventory`. The inventory should have been discovered with every
/// capability (a spec serves every container, whatever it asks for).
pub fn generate(inventory: &Inventory, options: &GenerateOptions) -> cdi::Spec {
    let request = Request {
        devices: Devices::NoGpus,
        capabilities: Capability::ALL.to_vec(),
        requirements: Vec::new(),
        disable_require: true,
    };
    let common = plan::plan(inventory, &request, &[], &options.library_dir);

    let mut edits = cdi::ContainerEdits {
        env: vec!["NVIDIA_VISIBLE_DEVICES=void".into()],
        device_nodes: common.devices.iter().map(device_node).collect(),
        mounts: common
            .mounts
            .iter()
            .map(|m| cdi::Mount {
                host_path: m.host.display().to_string(),
                container_path: m.container.display().to_string(),
                kind: None,
                options: MOUNT_OPTIONS.iter().map(|o| (*o).to_owned()).collect(),
            })
            .collect(),
        ..cdi::ContainerEdits::default()
    };
    let mut steps = Vec::new();
    if !common.symlinks.is_empty() {
        steps.push(ContainerStep::CreateSymlinks(
            common
                .symlinks
                .iter()
                .map(|l| (l.target.clone(), l.link.clone()))
                .collect(),
        ));
    }
    let mut folders: Vec<PathBuf> = Vec::new();
    for (_, path) in &common.ld_cache {
        if let Some(dir) = path.parent() {
            if !folders.iter().any(|f| f == dir) {
                folders.push(dir.to_owned());
            }
        }
    }
    if !folders.is_empty() {
        steps.push(ContainerStep::UpdateLdcache { folders });
    }
    steps.push(ContainerStep::DisableDeviceNodeModification);
    edits.hooks = steps
        .iter()
        .map(|s| s.to_hook_for_driver(&options.hook_binary, &inventory.driver_version))
        .collect();

    let mut devices = Vec::new();
    for gpu in &inventory.gpus {
        for strategy in &options.strategies {
            devices.push(cdi::Device {
                name: strategy.name(gpu),
                annotations: Default::default(),
                container_edits: cdi::ContainerEdits {
                    device_nodes: vec![device_node(&gpu.device)],
                    ..Default::default()
                },
            });
        }
    }
    if options.all_device && !inventory.gpus.is_empty() {
        devices.push(cdi::Device {
            name: ALL_DEVICE.into(),
            annotations: Default::default(),
            container_edits: cdi::ContainerEdits {
                device_nodes: inventory
                    .gpus
                    .iter()
                    .map(|g| device_node(&g.device))
                    .collect(),
                ..Default::default()
            },
        });
    }

    let mut spec = cdi::Spec {
        cdi_version: String::new(),
        kind: format!("{}/{}", options.vendor, options.class),
        annotations: Default::default(),
        devices,
        container_edits: edits,
    };
    spec.set_minimum_version();
    spec
}

/// A device node as CDI says it: `hostPath` only where it differs (a dev root that is not `/`).
fn device_node(node: &inventory::DeviceNode) -> cdi::DeviceNode {
    let path = node.container_path.display().to_string();
    let host = node.host_path.display().to_string();
    cdi::DeviceNode {
        host_path: (host != path).then_some(host),
        path,
        kind: Some("c".into()),
        major: Some(i64::from(node.major)),
        minor: Some(i64::from(node.minor)),
        file_mode: Some(node.mode & 0o777),
        permissions: None,
        uid: None,
        gid: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inventory::{DeviceNode, HostFile, Library, LibraryLink};
    use std::path::Path;

    fn node(root: &str, name: &str, major: u32, minor: u32) -> DeviceNode {
        DeviceNode {
            host_path: PathBuf::from(format!("{root}/dev/{name}")),
            container_path: PathBuf::from(format!("/dev/{name}")),
            major,
            minor,
            mode: 0o20666,
            uid: 0,
            gid: 0,
        }
    }

    /// `n` GPUs under a dev root `root` ("" for `/`); GPU i has minor i ^ 1, as the simulated
    /// host's do, so index and minor differ.
    fn host(n: u32, root: &str) -> Inventory {
        let gpus = (0..n)
            .map(|i| Gpu {
                index: i,
                uuid: format!("GPU-4e565349-4d00-4000-8000-{i:012x}"),
                bus_id: format!("0000:{:02x}:00.0", 0x18 + i),
                minor: i ^ 1,
                model: "NVIDIA H100 80GB HBM3".into(),
                brand: "nvidia".into(),
                architecture: "hopper".into(),
                compute_capability: Some((9, 0)),
                mig_enabled: false,
                device: node(root, &format!("nvidia{}", i ^ 1), 195, i ^ 1),
                proc_dir: PathBuf::new(),
            })
            .collect();
        let lib = |file: &str, soname: &str, links: &[(&str, &str)], capability| Library {
            host_path: PathBuf::from(format!("{root}/usr/lib/x86_64-linux-gnu/{file}")),
            file_name: file.into(),
            soname: Some(soname.into()),
            capability,
            links: links
                .iter()
                .map(|(name, target)| LibraryLink {
                    name: (*name).into(),
                    target: (*target).into(),
                })
                .collect(),
        };
        Inventory {
            driver_version: "580.159.04".into(),
            cuda_version: Some((13, 0)),
            gpus,
            unreadable_gpus: Vec::new(),
            control_devices: vec![
                node(root, "nvidiactl", 195, 255),
                node(root, "nvidia-uvm", 511, 0),
            ],
            mig_caps: Vec::new(),
            libraries: vec![
                lib(
                    "libcuda.so.580.159.04",
                    "libcuda.so.1",
                    &[("libcuda.so", "libcuda.so.1")],
                    Capability::Compute,
                ),
                lib(
                    "libnvidia-ml.so.580.159.04",
                    "libnvidia-ml.so.1",
                    &[],
                    Capability::Utility,
                ),
            ],
            binaries: vec![HostFile {
                host_path: PathBuf::from(format!("{root}/usr/bin/nvidia-smi")),
                container_path: PathBuf::from("/usr/bin/nvidia-smi"),
                capability: Some(Capability::Utility),
            }],
            firmware: Vec::new(),
            ipc: Vec::new(),
            mig_enabled: false,
        }
    }

    fn options() -> GenerateOptions {
        GenerateOptions::new(PathBuf::from("/usr/bin/nvidia-runtime"))
    }

    fn names(spec: &cdi::Spec) -> Vec<&str> {
        spec.devices.iter().map(|d| d.name.as_str()).collect()
    }

    fn nodes_of<'a>(spec: &'a cdi::Spec, name: &str) -> Vec<&'a str> {
        let device = spec.devices.iter().find(|d| d.name == name).unwrap();
        device
            .container_edits
            .device_nodes
            .iter()
            .map(|n| n.path.as_str())
            .collect()
    }

    #[test]
    fn one_gpu_by_index_with_all() {
        let spec = generate(&host(1, ""), &options());
        assert_eq!(spec.kind, "nvidia.com/gpu");
        assert_eq!(spec.cdi_version, "0.5.0", "names starting with a digit");
        assert_eq!(names(&spec), ["0", "all"]);
        // GPU 0 has minor 1 on this host
        assert_eq!(nodes_of(&spec, "0"), ["/dev/nvidia1"]);
        let gpu = &spec.devices[0].container_edits.device_nodes[0];
        assert_eq!(gpu.host_path, None, "a dev root of / needs no hostPath");
        assert_eq!((gpu.major, gpu.minor), (Some(195), Some(1)));
        assert_eq!(gpu.kind.as_deref(), Some("c"));
        assert_eq!(gpu.file_mode, Some(0o666));
        assert!(
            spec.annotations.is_empty(),
            "annotations would need CDI 0.6.0"
        );
        assert_eq!(
            crate::cdi_hooks::spec_driver_version(&spec),
            Some("580.159.04")
        );
        let common = &spec.container_edits;
        assert_eq!(common.env, ["NVIDIA_VISIBLE_DEVICES=void"]);
        let control: Vec<&str> = common
            .device_nodes
            .iter()
            .map(|n| n.path.as_str())
            .collect();
        assert_eq!(control, ["/dev/nvidiactl", "/dev/nvidia-uvm"]);
        let mounts: Vec<(&str, &str)> = common
            .mounts
            .iter()
            .map(|m| (m.host_path.as_str(), m.container_path.as_str()))
            .collect();
        assert_eq!(
            mounts,
            [
                (
                    "/usr/lib/x86_64-linux-gnu/libcuda.so.580.159.04",
                    "/usr/lib/x86_64-linux-gnu/libcuda.so.580.159.04"
                ),
                (
                    "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.580.159.04",
                    "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.580.159.04"
                ),
                ("/usr/bin/nvidia-smi", "/usr/bin/nvidia-smi"),
            ]
        );
        assert!(common
            .mounts
            .iter()
            .all(|m| m.options == ["ro", "nosuid", "nodev", "bind"]));
    }

    #[test]
    fn hooks_are_the_runtimes_own_steps() {
        let inventory = host(2, "");
        let spec = generate(&inventory, &options());
        let steps: Vec<ContainerStep> = spec
            .container_edits
            .hooks
            .iter()
            .map(|h| ContainerStep::parse(h).expect("a hook of ours"))
            .collect();
        let lib = Path::new(DEFAULT_LIBRARY_DIR);
        assert_eq!(
            steps,
            [
                ContainerStep::CreateSymlinks(vec![
                    ("libcuda.so.580.159.04".into(), lib.join("libcuda.so.1")),
                    ("libcuda.so.1".into(), lib.join("libcuda.so")),
                    (
                        "libnvidia-ml.so.580.159.04".into(),
                        lib.join("libnvidia-ml.so.1")
                    ),
                ]),
                ContainerStep::UpdateLdcache {
                    folders: vec![lib.to_owned()]
                },
                ContainerStep::DisableDeviceNodeModification,
            ]
        );
        // the same links the runtime makes for a glibc image
        let request = Request {
            devices: Devices::All,
            capabilities: Capability::ALL.to_vec(),
            requirements: Vec::new(),
            disable_require: true,
        };
        let gpus: Vec<&Gpu> = inventory.gpus.iter().collect();
        let edits = plan::plan(&inventory, &request, &gpus, lib);
        let ContainerStep::CreateSymlinks(links) = &steps[0] else {
            unreachable!()
        };
        let planned: Vec<(String, PathBuf)> = edits
            .symlinks
            .iter()
            .map(|l| (l.target.clone(), l.link.clone()))
            .collect();
        assert_eq!(*links, planned);
        for hook in &spec.container_edits.hooks {
            assert_eq!(hook.hook_name, "createContainer");
            assert_eq!(hook.path, "/usr/bin/nvidia-runtime");
            assert_eq!(
                hook.env,
                [
                    crate::cdi_hooks::HOOK_ENV[0],
                    "NVIDIA_RUNTIME_DRIVER_VERSION=580.159.04"
                ]
            );
        }
    }

    #[test]
    fn eight_gpus_every_strategy() {
        let mut opts = options();
        opts.strategies = vec![
            NameStrategy::Index,
            NameStrategy::Uuid,
            NameStrategy::TypeIndex,
        ];
        let spec = generate(&host(8, ""), &opts);
        assert_eq!(spec.devices.len(), 8 * 3 + 1);
        assert_eq!(
            names(&spec)[..6],
            [
                "0",
                "GPU-4e565349-4d00-4000-8000-000000000000",
                "gpu0",
                "1",
                "GPU-4e565349-4d00-4000-8000-000000000001",
                "gpu1"
            ]
        );
        for i in 0..8u32 {
            let want = format!("/dev/nvidia{}", i ^ 1);
            assert_eq!(nodes_of(&spec, &i.to_string()), [want.as_str()]);
            assert_eq!(nodes_of(&spec, &format!("gpu{i}")), [want.as_str()]);
        }
        let all = nodes_of(&spec, "all");
        assert_eq!(all.len(), 8);
        assert!(all.contains(&"/dev/nvidia0") && all.contains(&"/dev/nvidia7"));

        opts.strategies = vec![NameStrategy::Uuid];
        opts.all_device = false;
        assert_eq!(generate(&host(8, ""), &opts).cdi_version, "0.3.0");
        opts.vendor = "example.com".into();
        opts.class = "accel".into();
        let spec = generate(&host(8, ""), &opts);
        assert_eq!(spec.kind, "example.com/accel");
        assert_eq!(spec.devices.len(), 8);
        assert!(names(&spec).iter().all(|n| n.starts_with("GPU-")));
    }

    #[test]
    fn a_simulated_dev_root_gives_host_paths() {
        let spec = generate(&host(2, "/tmp/sim"), &options());
        let gpu = &spec.devices[0].container_edits.device_nodes[0];
        assert_eq!(gpu.path, "/dev/nvidia1");
        assert_eq!(gpu.host_path.as_deref(), Some("/tmp/sim/dev/nvidia1"));
        assert!(spec
            .container_edits
            .device_nodes
            .iter()
            .all(|n| n.host_path.as_deref() == Some(&format!("/tmp/sim{}", n.path))));
        assert!(spec
            .container_edits
            .mounts
            .iter()
            .all(|m| m.host_path == format!("/tmp/sim{}", m.container_path)));
    }

    #[test]
    fn specs_round_trip_through_json_and_yaml_and_validate() {
        for n in [1, 8] {
            let mut opts = options();
            opts.strategies = vec![NameStrategy::Uuid, NameStrategy::Index];
            let spec = generate(&host(n, "/tmp/sim"), &opts);
            spec.validate(Path::new("gen.yaml")).unwrap();
            let yaml = spec.to_yaml().unwrap();
            assert_eq!(
                cdi::Spec::parse(yaml.as_bytes(), Path::new("x.yaml")).unwrap(),
                spec
            );
            let json = spec.to_json().unwrap();
            assert_eq!(
                cdi::Spec::parse(json.as_bytes(), Path::new("x.json")).unwrap(),
                spec
            );
            assert_eq!(spec.cdi_version, spec.minimum_version().to_string());
        }
        // hostPath needs 0.5.0: what Podman 4.x and containerd 1.7 read, no more
        let spec = generate(&host(1, "/tmp/sim"), &options());
        assert_eq!(spec.cdi_version, "0.5.0");
    }

    #[test]
    fn no_gpus_no_all_device() {
        let spec = generate(&host(0, ""), &options());
        assert!(spec.devices.is_empty());
        assert!(!spec.container_edits.mounts.is_empty());
    }

    #[test]
    fn strategies_parse_as_nvidia_names_them() {
        assert_eq!("index".parse(), Ok(NameStrategy::Index));
        assert_eq!("uuid".parse(), Ok(NameStrategy::Uuid));
        assert_eq!("type-index".parse(), Ok(NameStrategy::TypeIndex));
        assert!("bus-id"
            .parse::<NameStrategy>()
            .unwrap_err()
            .contains("bus-id"));
    }
}
