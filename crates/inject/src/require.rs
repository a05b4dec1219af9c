//! `NVIDIA_REQUIRE_*` constraints: `cuda`, `driver`, `arch`, `brand` compared with
//! `= == != < <= > >=`. Within one variable a space means "or" and a comma "and";
//! separate variables must all hold. `arch` and `brand` must hold for every GPU given.

use std::cmp::Ordering;
use std::path::PathBuf;

use inventory::{Gpu, Inventory};

use crate::request::Devices;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequireError {
    #[error("unsatisfied requirement {variable}={expression:?}: {detail} (host: {host}); update the driver or use an image built for this one, or set NVIDIA_DISABLE_REQUIRE=true")]
    Unsatisfied {
        variable: String,
        expression: String,
        detail: String,
        host: String,
    },
    #[error("invalid requirement {variable}={expression:?}: {reason}")]
    Invalid {
        variable: String,
        expression: String,
        reason: String,
    },
    #[error(transparent)]
    UnreadableGpu(#[from] UnreadableGpuError),
}

/// Why the GPUs asked for cannot be told apart from a GPU whose information cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UnreadableGpuError {
    #[error("NVIDIA GPU {id:?} cannot be given: the driver's information about it cannot be read ({}: {reason}). Check that GPU on the host (dmesg, nvidia-smi -q), then reload the nvidia kernel module or reboot; meanwhile ask for other GPUs by UUID", dir.display())]
    Unreadable {
        id: String,
        dir: PathBuf,
        reason: String,
    },
    #[error("NVIDIA GPU {id:?} is not among the GPUs whose information can be read, and it may be one whose information cannot: {dirs}. Check that GPU on the host (dmesg, nvidia-smi -q), then reload the nvidia kernel module or reboot")]
    MaybeUnreadable { id: String, dirs: String },
    #[error("GPU index {id:?} is ambiguous on this host: {} is no PCI bus id and its information cannot be read ({reason}), so the GPUs cannot be numbered in bus order as nvidia-smi does. Ask for GPUs by UUID, or reload the nvidia kernel module or reboot", dir.display())]
    AmbiguousIndex {
        id: String,
        dir: PathBuf,
        reason: String,
    },
    #[error("all GPUs requested, but the driver's information about some cannot be read, so they cannot be given: {dirs}. Ask for the GPUs you need by UUID or index, or check those GPUs on the host (dmesg, nvidia-smi -q), then reload the nvidia kernel module or reboot")]
    All { dirs: String },
}

/// Refuses a request that touches a GPU whose `/proc/driver/nvidia/gpus/<bus id>/information`
/// cannot be read, or an index such a GPU makes uncertain, rather than hand out another GPU
/// than the one asked for. `all` is refused too: the container would silently get fewer GPUs
/// than the host has (NVIDIA's toolkit, which enumerates with NVML, would give the GPU whose
/// minor we cannot know).
///
/// Unlike `check`, this is no requirement of the image: `NVIDIA_DISABLE_REQUIRE` does not skip it.
pub fn check_gpus_readable(inventory: &Inventory, devices: &Devices) -> Result<(), RequireError> {
    Ok(unreadable_gpus_touched(inventory, devices)?)
}

fn unreadable_gpus_touched(
    inventory: &Inventory,
    devices: &Devices,
) -> Result<(), UnreadableGpuError> {
    let unreadable = &inventory.unreadable_gpus;
    if unreadable.is_empty() {
        return Ok(());
    }
    let describe_all = || {
        unreadable
            .iter()
            .map(|u| format!("{} ({})", u.dir.display(), u.reason))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let ids = match devices {
        Devices::NoGpus => return Ok(()),
        Devices::All => {
            return Err(UnreadableGpuError::All {
                dirs: describe_all(),
            })
        }
        Devices::List(ids) => ids,
    };
    for id in ids {
        if let Ok(index) = id.parse::<u32>() {
            if let Some(u) = unreadable.iter().find(|u| u.index.is_none()) {
                return Err(UnreadableGpuError::AmbiguousIndex {
                    id: id.clone(),
                    dir: u.dir.clone(),
                    reason: u.reason.clone(),
                });
            }
            if let Some(u) = unreadable.iter().find(|u| u.index == Some(index)) {
                return Err(UnreadableGpuError::Unreadable {
                    id: id.clone(),
                    dir: u.dir.clone(),
                    reason: u.reason.clone(),
                });
            }
            continue;
        }
        let wanted = id.to_ascii_lowercase();
        let is_bus_id_of = |dir: &std::path::Path| {
            dir.file_name()
                .is_some_and(|name| same_bus_id(&name.to_string_lossy(), &wanted))
        };
        if let Some(u) = unreadable.iter().find(|u| is_bus_id_of(&u.dir)) {
            return Err(UnreadableGpuError::Unreadable {
                id: id.clone(),
                dir: u.dir.clone(),
                reason: u.reason.clone(),
            });
        }
        let readable = inventory
            .gpus
            .iter()
            .any(|g| g.uuid.eq_ignore_ascii_case(id) || same_bus_id(&g.bus_id, &wanted));
        // MIG names and plain typos are left to GPU selection, which names them.
        if !readable && id.starts_with("GPU-") {
            return Err(UnreadableGpuError::MaybeUnreadable {
                id: id.clone(),
                dirs: describe_all(),
            });
        }
    }
    Ok(())
}

/// nvidia-smi prints bus ids with an 8-digit domain, /proc with 4; both name one GPU.
fn same_bus_id(have: &str, wanted: &str) -> bool {
    let normalise = |s: &str| s.to_ascii_lowercase().trim_start_matches('0').to_owned();
    normalise(have) == normalise(wanted)
}

/// What constraints are checked against.
pub struct Host<'a> {
    pub driver_version: &'a str,
    pub cuda_version: Option<(u32, u32)>,
    pub gpus: &'a [&'a Gpu],
}

impl<'a> Host<'a> {
    pub fn new(inventory: &'a Inventory, gpus: &'a [&'a Gpu]) -> Self {
        Self {
            driver_version: &inventory.driver_version,
            cuda_version: inventory.cuda_version,
            gpus,
        }
    }
}

pub fn check(requirements: &[(String, String)], host: &Host) -> Result<(), RequireError> {
    for (variable, expression) in requirements {
        let invalid = |reason: String| RequireError::Invalid {
            variable: variable.clone(),
            expression: expression.clone(),
            reason,
        };
        let mut satisfied = false;
        let mut first_failure = None;
        for alternative in expression.split_whitespace() {
            match check_all(alternative, host).map_err(invalid)? {
                None => {
                    satisfied = true;
                    break;
                }
                Some(failed) => {
                    first_failure.get_or_insert(failed);
                }
            }
        }
        if !satisfied {
            return Err(RequireError::Unsatisfied {
                variable: variable.clone(),
                expression: expression.clone(),
                detail: format!(
                    "{} is not met",
                    first_failure.unwrap_or_else(|| expression.clone())
                ),
                host: format!(
                    "driver {}, CUDA {}{}",
                    host.driver_version,
                    host.cuda_version
                        .map(|(major, minor)| format!("{major}.{minor}"))
                        .unwrap_or_else(|| "unknown".into()),
                    describe_gpus(host.gpus)
                ),
            });
        }
    }
    Ok(())
}

fn describe_gpus(gpus: &[&Gpu]) -> String {
    if gpus.is_empty() {
        return String::new();
    }
    let list: Vec<String> = gpus
        .iter()
        .map(|gpu| {
            let arch = gpu
                .compute_capability
                .map(|(major, minor)| format!("{major}.{minor}"))
                .unwrap_or_else(|| "unknown".into());
            format!("GPU {} brand {} arch {}", gpu.index, gpu.brand, arch)
        })
        .collect();
    format!(", {}", list.join(", "))
}

/// `None` when every comma-separated constraint holds, else the first that does not.
fn check_all(alternative: &str, host: &Host) -> Result<Option<String>, String> {
    for constraint in alternative.split(',').filter(|c| !c.is_empty()) {
        if !check_one(constraint, host)? {
            return Ok(Some(constraint.to_owned()));
        }
    }
    Ok(None)
}

#[derive(Clone, Copy)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Op::Eq => ordering == Ordering::Equal,
            Op::Ne => ordering != Ordering::Equal,
            Op::Lt => ordering == Ordering::Less,
            Op::Le => ordering != Ordering::Greater,
            Op::Gt => ordering == Ordering::Greater,
            Op::Ge => ordering != Ordering::Less,
        }
    }
}

fn split_constraint(constraint: &str) -> Result<(&str, Op, &str), String> {
    // Longest operators first, so ">=" is not read as ">" followed by "=…".
    const OPS: [(&str, Op); 7] = [
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("=", Op::Eq),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];
    let start = constraint
        .find(['=', '!', '<', '>'])
        .ok_or_else(|| format!("{constraint:?} has no comparison operator"))?;
    let (name, rest) = constraint.split_at(start);
    for (text, op) in OPS {
        if let Some(value) = rest.strip_prefix(text) {
            if value.is_empty() {
                return Err(format!("{constraint:?} has no value"));
            }
            return Ok((name, op, value));
        }
    }
    Err(format!("{constraint:?} has an unknown operator"))
}

fn check_one(constraint: &str, host: &Host) -> Result<bool, String> {
    let (name, op, value) = split_constraint(constraint)?;
    match name {
        "cuda" => {
            let Some((major, minor)) = host.cuda_version else {
                return Ok(false);
            };
            Ok(op.holds(compare_versions(&format!("{major}.{minor}"), value)?))
        }
        "driver" => Ok(op.holds(compare_versions(host.driver_version, value)?)),
        "arch" => host.gpus.iter().try_fold(true, |all, gpu| {
            let Some((major, minor)) = gpu.compute_capability else {
                return Ok(false);
            };
            Ok(all && op.holds(compare_versions(&format!("{major}.{minor}"), value)?))
        }),
        "brand" => Ok(host.gpus.iter().all(|gpu| {
            let ordering = gpu
                .brand
                .to_ascii_lowercase()
                .cmp(&value.to_ascii_lowercase());
            match op {
                Op::Eq | Op::Ne => op.holds(ordering),
                // brands have no order; only equality makes sense
                _ => false,
            }
        })),
        other => Err(format!(
            "unknown constraint {other:?} (known: cuda, driver, arch, brand)"
        )),
    }
}

/// Compares dotted versions numerically, a missing part counting as 0 ("12" == "12.0").
fn compare_versions(have: &str, want: &str) -> Result<Ordering, String> {
    let parse = |text: &str| -> Result<Vec<u64>, String> {
        text.split('.')
            .map(|part| {
                part.parse::<u64>()
                    .map_err(|_| format!("{text:?} is not a version"))
            })
            .collect()
    };
    let have = parse(have)?;
    let want = parse(want)?;
    for i in 0..have.len().max(want.len()) {
        let a = have.get(i).copied().unwrap_or(0);
        let b = want.get(i).copied().unwrap_or(0);
        match a.cmp(&b) {
            Ordering::Equal => continue,
            other => return Ok(other),
        }
    }
    Ok(Ordering::Equal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use inventory::DeviceNode;

    fn gpu(brand: &str, cc: (u32, u32)) -> Gpu {
        Gpu {
            index: 0,
            uuid: "GPU-1".into(),
            bus_id: "0000:00:06.0".into(),
            minor: 0,
            model: "NVIDIA H100 80GB HBM3".into(),
            brand: brand.into(),
            architecture: "hopper".into(),
            compute_capability: Some(cc),
            mig_enabled: false,
            proc_dir: "/proc/driver/nvidia/gpus/0000:00:06.0".into(),
            device: DeviceNode {
                host_path: "/dev/nvidia0".into(),
                container_path: "/dev/nvidia0".into(),
                major: 195,
                minor: 0,
                mode: 0o666,
                uid: 0,
                gid: 0,
            },
        }
    }

    fn run(expr: &str) -> Result<(), RequireError> {
        let g = gpu("nvidia", (9, 0));
        let gpus = [&g];
        let host = Host {
            driver_version: "580.159.04",
            cuda_version: Some((13, 0)),
            gpus: &gpus,
        };
        check(&[("NVIDIA_REQUIRE_CUDA".into(), expr.into())], &host)
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(run("cuda>=12.2").is_ok());
        assert!(run("cuda>=13").is_ok());
        assert!(run("cuda>=13.0").is_ok());
        assert!(run("cuda<13.1").is_ok());
        assert!(run("cuda>=13.1").is_err());
        assert!(run("driver>=580.100").is_ok());
        assert!(run("driver>=580.159.04").is_ok());
        assert!(run("driver<581").is_ok());
        assert!(run("driver==580.159.04").is_ok());
        assert!(run("driver!=580.159.04").is_err());
        assert!(run("arch>=9.0").is_ok());
        assert!(run("arch=8.0").is_err());
    }

    #[test]
    fn space_is_or_and_comma_is_and() {
        // the shape of real CUDA images' NVIDIA_REQUIRE_CUDA
        assert!(run(
            "cuda>=12.2 brand=tesla,driver>=470,driver<471 brand=nvidia,driver>=535,driver<536"
        )
        .is_ok());
        assert!(run("cuda>=99.0 brand=tesla,driver>=470").is_err());
        assert!(run("brand=tesla,driver>=470 brand=nvidia,driver>=580").is_ok());
        assert!(run("brand=NVIDIA").is_ok());
        assert!(run("brand=geforce").is_err());
    }

    #[test]
    fn failure_names_the_constraint_and_the_host() {
        let err = run("cuda>=99.0").unwrap_err().to_string();
        assert!(err.contains("cuda>=99.0 is not met"), "{err}");
        assert!(err.contains("driver 580.159.04"), "{err}");
        assert!(err.contains("CUDA 13.0"), "{err}");
        assert!(err.contains("NVIDIA_REQUIRE_CUDA"), "{err}");
    }

    #[test]
    fn malformed_constraints_are_errors_not_passes() {
        for bad in ["cuda", "cuda>=", "warp>=1", "cuda>=x.y", "cuda~1"] {
            match run(bad) {
                Err(RequireError::Invalid { .. }) => {}
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    fn host_with_unreadable(index: Option<u32>) -> Inventory {
        let mut readable = gpu("nvidia", (9, 0));
        readable.index = 2;
        Inventory {
            driver_version: "580.159.04".into(),
            cuda_version: Some((13, 0)),
            gpus: vec![readable],
            control_devices: Vec::new(),
            mig_caps: Vec::new(),
            libraries: Vec::new(),
            binaries: Vec::new(),
            firmware: Vec::new(),
            ipc: Vec::new(),
            mig_enabled: false,
            unreadable_gpus: vec![inventory::UnreadableGpu {
                dir: "/proc/driver/nvidia/gpus/0000:2a:00.0".into(),
                index,
                reason: "it has no information file".into(),
            }],
        }
    }

    fn list(ids: &[&str]) -> Devices {
        Devices::List(ids.iter().map(|id| id.to_string()).collect())
    }

    #[test]
    fn a_gpu_whose_information_cannot_be_read_is_never_handed_out() {
        let host = host_with_unreadable(Some(1));
        assert!(unreadable_gpus_touched(&host, &list(&["2"])).is_ok());
        assert!(unreadable_gpus_touched(&host, &list(&["GPU-1"])).is_ok());
        assert!(unreadable_gpus_touched(&host, &Devices::NoGpus).is_ok());
        let err = unreadable_gpus_touched(&host, &list(&["2", "1"])).unwrap_err();
        assert!(matches!(&err, UnreadableGpuError::Unreadable { id, .. } if id == "1"));
        assert!(err.to_string().contains("0000:2a:00.0"), "{err}");
        let err = unreadable_gpus_touched(&host, &list(&["00000000:2A:00.0"])).unwrap_err();
        assert!(matches!(err, UnreadableGpuError::Unreadable { .. }));
        let err = unreadable_gpus_touched(&host, &list(&["GPU-unknown"])).unwrap_err();
        assert!(matches!(err, UnreadableGpuError::MaybeUnreadable { .. }));
        let err = unreadable_gpus_touched(&host, &Devices::All).unwrap_err();
        assert!(err.to_string().contains("by UUID"), "{err}");
        // a typo that is no UUID is left to GPU selection
        assert!(unreadable_gpus_touched(&host, &list(&["bogus"])).is_ok());
    }

    #[test]
    fn an_unplaceable_gpu_makes_every_index_ambiguous() {
        let host = host_with_unreadable(None);
        let err = unreadable_gpus_touched(&host, &list(&["0"])).unwrap_err();
        assert!(matches!(err, UnreadableGpuError::AmbiguousIndex { .. }));
        assert!(unreadable_gpus_touched(&host, &list(&["GPU-1"])).is_ok());
    }
}
