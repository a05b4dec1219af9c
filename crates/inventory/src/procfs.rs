//! What the kernel module says under `/proc/driver/nvidia`.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use crate::fsx;
use crate::Error;

pub(crate) const VERSION_FILE: &str = "proc/driver/nvidia/version";
pub(crate) const GPUS_DIR: &str = "proc/driver/nvidia/gpus";
const CAPS_DIR: &str = "proc/driver/nvidia/capabilities";

/// The driver version from the `NVRM version:` line. Both module flavours are understood:
/// `NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build ...` and
/// `NVIDIA UNIX x86_64 Kernel Module  535.129.03  Thu Oct 19 ...`.
pub(crate) fn driver_version(proc_root: &Path) -> Result<String, Error> {
    let path = proc_root.join(VERSION_FILE);
    let text = match fsx::read_text(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Error::NoDriver { path }),
        Err(source) => return Err(Error::Io { path, source }),
    };
    let Some(line) = text.lines().find(|l| l.starts_with("NVRM version:")) else {
        return Err(Error::DriverVersion {
            path,
            reason: "no \"NVRM version:\" line".into(),
        });
    };
    line.split_whitespace()
        .find(|w| is_version(w))
        .map(str::to_string)
        .ok_or_else(|| Error::DriverVersion {
            path,
            reason: format!("no version number in {line:?}"),
        })
}

/// `N.N` or `N.N.N`, all digits.
pub(crate) fn is_version(w: &str) -> bool {
    let parts: Vec<&str> = w.split('.').collect();
    (2..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// One `gpus/<bus>/information` file.
#[derive(Debug, Clone)]
pub(crate) struct GpuInfo {
    pub model: String,
    pub uuid: String,
    pub bus_id: String,
    pub minor: u32,
    pub excluded: bool,
}

/// What `/proc/driver/nvidia/gpus` lists, in nvidia-smi's index order.
#[derive(Debug, Default)]
pub(crate) struct GpuListing {
    /// (index, directory name, information) of each GPU that can be read.
    pub gpus: Vec<(u32, String, GpuInfo)>,
    /// GPU directories whose information cannot be read.
    pub unreadable: Vec<crate::UnreadableGpu>,
}

/// Every GPU the module lists, numbered by PCI bus id as nvidia-smi numbers them, excluded ones
/// (`GPU Excluded: Yes`, which NVML does not enumerate either) left out.
///
/// A directory whose information is missing or garbled is still a GPU the module has (NVML
/// counts it; it enumerates through the driver, not through /proc): it keeps its place in bus
/// order, named by its directory, so that no other GPU takes its index.
pub(crate) fn gpus(proc_root: &Path) -> Result<GpuListing, Error> {
    let dir = proc_root.join(GPUS_DIR);
    let names = match fsx::read_dir_names(&dir) {
        Ok(n) => n,
        // A driver with no GPU bound (all excluded, or none present) has no such directory.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(GpuListing::default()),
        Err(source) => return Err(Error::Io { path: dir, source }),
    };
    // (bus id for ordering, directory name, what was read)
    let mut entries: Vec<(String, String, Result<GpuInfo, String>)> = Vec::new();
    for name in names {
        let name = name.to_string_lossy().into_owned();
        let path = dir.join(&name).join("information");
        let info = match fsx::read_text(&path) {
            Ok(text) => parse_information(&text, &name),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err("it has no information file".into())
            }
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        };
        match info {
            Ok(info) if info.excluded => {
                tracing::info!(uuid = %info.uuid, bus_id = %info.bus_id, "GPU is excluded by the driver; skipped");
            }
            Ok(info) => entries.push((info.bus_id.clone(), name, Ok(info))),
            Err(reason) => {
                tracing::warn!(path = %path.display(), %reason, "GPU information cannot be read");
                entries.push((name.to_ascii_lowercase(), name, Err(reason)));
            }
        }
    }
    // An unreadable directory that is no bus id has no place in bus order: sorted last, no index.
    entries.sort_by(|a, b| {
        let key = |bus: &str| bus_key(bus).map_or((1, (0, 0, 0, 0)), |k| (0, k));
        (key(&a.0), &a.0).cmp(&(key(&b.0), &b.0))
    });
    let mut listing = GpuListing::default();
    for (index, (bus, name, info)) in entries.into_iter().enumerate() {
        let index = index as u32;
        match info {
            Ok(info) => listing.gpus.push((index, name, info)),
            Err(reason) => listing.unreadable.push(crate::UnreadableGpu {
                index: bus_key(&bus).map(|_| index),
                dir: dir.join(&name),
                reason,
            }),
        }
    }
    let infos: Vec<&GpuInfo> = listing.gpus.iter().map(|(_, _, info)| info).collect();
    check_unique(&infos, &dir)?;
    Ok(listing)
}

fn check_unique(gpus: &[&GpuInfo], dir: &Path) -> Result<(), Error> {
    let (mut minors, mut uuids) = (HashSet::new(), HashSet::new());
    for g in gpus {
        let path = dir.join(&g.bus_id).join("information");
        if !minors.insert(g.minor) {
            return Err(Error::GpuInfo {
                path,
                reason: format!("Device Minor {} is also another GPU's", g.minor),
            });
        }
        if !uuids.insert(g.uuid.to_ascii_lowercase()) {
            return Err(Error::GpuInfo {
                path,
                reason: format!("GPU UUID {} is also another GPU's", g.uuid),
            });
        }
    }
    Ok(())
}

/// Parses the `Field: <tabs> value` lines; `dir_name` (the bus id) stands in for a missing
/// `Bus Location`.
pub(crate) fn parse_information(text: &str, dir_name: &str) -> Result<GpuInfo, String> {
    let (mut model, mut uuid, mut bus, mut minor, mut excluded) = (None, None, None, None, false);
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "Model" => model = Some(value.to_string()),
            "GPU UUID" => uuid = Some(value.to_string()),
            "Bus Location" => bus = Some(value.to_ascii_lowercase()),
            "Device Minor" => {
                minor = Some(
                    value
                        .parse::<u32>()
                        .map_err(|_| format!("Device Minor {value:?} is not a number"))?,
                )
            }
            "GPU Excluded" => excluded = value.eq_ignore_ascii_case("yes"),
            _ => {}
        }
    }
    let uuid = uuid.ok_or("no \"GPU UUID:\" line")?;
    if !valid_uuid(&uuid) {
        return Err(format!("GPU UUID {uuid:?} is not GPU-<hex uuid>"));
    }
    let minor = minor.ok_or("no \"Device Minor:\" line")?;
    let bus_id = match bus {
        Some(b) if bus_key(&b).is_some() => b,
        Some(b) => return Err(format!("Bus Location {b:?} is not a PCI address")),
        None if bus_key(dir_name).is_some() => dir_name.to_ascii_lowercase(),
        None => return Err("no \"Bus Location:\" line".into()),
    };
    Ok(GpuInfo {
        model: model
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "Unknown".into()),
        uuid,
        bus_id,
        minor,
        excluded,
    })
}

/// `GPU-` and a hex UUID of 8-4-4-4-12 digits.
fn valid_uuid(u: &str) -> bool {
    let Some(rest) = u.strip_prefix("GPU-") else {
        return false;
    };
    let groups: Vec<&str> = rest.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `domain:bus:device.function` as numbers, so that a 5-digit domain sorts after a 4-digit one.
fn bus_key(b: &str) -> Option<(u32, u32, u32, u32)> {
    let (domain, rest) = b.split_once(':')?;
    let (bus, rest) = rest.split_once(':')?;
    let (dev, func) = rest.split_once('.')?;
    let hex = |s: &str| u32::from_str_radix(s, 16).ok();
    Some((hex(domain)?, hex(bus)?, hex(dev)?, hex(func)?))
}

/// Minors of the GPUs that have MIG instances.
///
/// Best effort: the driver publishes `capabilities/gpu<minor>/mig/gi<N>/` for each GPU instance,
/// so a GPU in MIG mode with instances shows; one switched to MIG mode with no instance yet
/// looks like a non-MIG GPU here (only NVML can tell), and it has nothing to hand out anyway.
pub(crate) fn mig_minors(proc_root: &Path) -> HashSet<u32> {
    let caps = proc_root.join(CAPS_DIR);
    let Ok(names) = fsx::read_dir_names(&caps) else {
        return HashSet::new();
    };
    names
        .iter()
        .filter_map(|n| n.to_str()?.strip_prefix("gpu")?.parse::<u32>().ok())
        .filter(|minor| {
            let dir: PathBuf = caps.join(format!("gpu{minor}")).join("mig");
            fsx::read_dir_names(&dir).is_ok_and(|names| {
                names.iter().any(|n| {
                    n.to_str()
                        .and_then(|n| n.strip_prefix("gi"))
                        .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
                })
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &str = "Model: \t\t NVIDIA H100 80GB HBM3\nIRQ:   \t\t 0\nGPU UUID: \t GPU-2c5b1f7e-3a4d-5b6c-7d8e-9f0a1b2c3d4e\nVideo BIOS: \t 96.00.99.00.01\nBus Type: \t PCIe\nDMA Size: \t 52 bits\nDMA Mask: \t 0xfffffffffffff\nBus Location: \t 0000:00:06.0\nDevice Minor: \t 0\nGPU Firmware: \t 580.159.04\nGPU Excluded:\t No\n";

    #[test]
    fn parses_the_real_layout() {
        let g = parse_information(REAL, "0000:00:06.0").unwrap();
        assert_eq!(g.model, "NVIDIA H100 80GB HBM3");
        assert_eq!(g.uuid, "GPU-2c5b1f7e-3a4d-5b6c-7d8e-9f0a1b2c3d4e");
        assert_eq!(g.bus_id, "0000:00:06.0");
        assert_eq!(g.minor, 0);
        assert!(!g.excluded);
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_information("garbage\n\x00\x01", "x").is_err());
        let bad_minor = REAL.replace("Device Minor: \t 0", "Device Minor: \t zero");
        assert!(parse_information(&bad_minor, "x")
            .unwrap_err()
            .contains("zero"));
        let bad_uuid = REAL.replace("GPU-2c5b1f7e", "GPU-zz");
        assert!(parse_information(&bad_uuid, "x")
            .unwrap_err()
            .contains("GPU UUID"));
    }

    #[test]
    fn version_lines() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join(VERSION_FILE);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        for (text, want) in [
            ("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build  (dvs-builder@U16)  Thu Mar 19 22:55:11 UTC 2026\nGCC version:  gcc version 13.3.0\n", "580.159.04"),
            ("NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.129.03  Thu Oct 19 18:56:32 UTC 2023\nGCC version:  gcc version 12.3.0\n", "535.129.03"),
            ("NVRM version: NVIDIA UNIX x86_64 Kernel Module  470.57  Tue Jul 13 2021\n", "470.57"),
        ] {
            std::fs::write(&p, text).unwrap();
            assert_eq!(driver_version(t.path()).unwrap(), want);
        }
        std::fs::write(&p, "NVRM version: none here\n").unwrap();
        assert!(matches!(
            driver_version(t.path()),
            Err(Error::DriverVersion { .. })
        ));
    }
}
