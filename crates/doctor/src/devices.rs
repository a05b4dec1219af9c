//! The device nodes a GPU container is given, checked against what the kernel module says they
//! must be, and the `/dev/char` links systemd needs to keep them allowed.
//!
//! Numbers: `nvidiactl` is (195, 255) and GPU `N` is (195, N) (the NVIDIA module's fixed major,
//! `NV_MAJOR_DEVICE_NUMBER`); `nvidia-uvm` and `nvidia-caps` get a major from the kernel when
//! their module loads, which `/proc/devices` lists. A node made before a module reload keeps
//! the old major and opens nothing.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use inventory::Roots;

use crate::{ids, Finding, Severity};

/// The NVIDIA module's fixed character major.
pub const NVIDIA_MAJOR: u32 = 195;
/// The minor of `/dev/nvidiactl`.
pub const CTL_MINOR: u32 = 255;

/// `name -> major` of the character devices in `<proc root>/proc/devices`; empty when it
/// cannot be read.
pub fn char_majors(proc_root: &Path) -> BTreeMap<String, u32> {
    let text = std::fs::read_to_string(proc_root.join("proc/devices")).unwrap_or_default();
    let mut majors = BTreeMap::new();
    let mut in_char = false;
    for line in text.lines() {
        match line.trim() {
            "Character devices:" => in_char = true,
            "" | "Block devices:" => in_char = false,
            l if in_char => {
                if let Some((major, name)) = l.split_once(char::is_whitespace) {
                    if let Ok(major) = major.parse() {
                        majors.insert(name.trim().to_string(), major);
                    }
                }
            }
            _ => {}
        }
    }
    majors
}

/// Device minors of the GPUs the module lists (`Device Minor:` of each
/// `gpus/*/information`), excluded GPUs left out; sorted.
pub fn gpu_minors(proc_root: &Path) -> Vec<u32> {
    let dir = proc_root.join("proc/driver/nvidia/gpus");
    let mut minors: Vec<u32> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("information")).ok())
        .filter(|info| {
            !info.lines().any(|l| {
                l.split_once(':').is_some_and(|(k, v)| {
                    k.trim() == "GPU Excluded" && v.trim().eq_ignore_ascii_case("yes")
                })
            })
        })
        .filter_map(|info| {
            info.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == "Device Minor").then(|| v.trim().parse().ok())?
            })
        })
        .collect();
    minors.sort_unstable();
    minors
}

/// Minors of the MIG capability nodes the module publishes
/// (`capabilities/mig/{config,monitor}`: `DeviceFileMinor: N`).
fn mig_cap_minors(proc_root: &Path) -> Vec<u32> {
    ["config", "monitor"]
        .iter()
        .filter_map(|f| {
            std::fs::read_to_string(
                proc_root
                    .join("proc/driver/nvidia/capabilities/mig")
                    .join(f),
            )
            .ok()
        })
        .filter_map(|text| {
            text.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == "DeviceFileMinor").then(|| v.trim().parse().ok())?
            })
        })
        .collect()
}

/// What is at a node's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    /// A character device with these numbers.
    Char(u32, u32),
    /// Nothing.
    Missing,
    /// Something that is no character device.
    NotChar,
}

/// Stats `path` (not following a final symlink: the runtime bind-mounts what is there).
pub fn stat(path: &Path) -> Node {
    match path.symlink_metadata() {
        Ok(md) if md.file_type().is_char_device() => {
            let rdev = md.rdev();
            Node::Char(
                nix::sys::stat::major(rdev) as u32,
                nix::sys::stat::minor(rdev) as u32,
            )
        }
        Ok(_) => Node::NotChar,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Node::Missing,
        Err(_) => Node::NotChar,
    }
}

/// A node to check: its path under the dev root and the numbers it must have (`None` for a
/// major the module has not registered).
struct Want {
    path: PathBuf,
    major: Option<u32>,
    minor: u32,
}

impl Want {
    /// The command that makes this node with `major`, as a fix line.
    fn mknod(&self, major: u32) -> String {
        format!(
            "mknod -m 666 {} c {major} {}",
            self.path.display(),
            self.minor
        )
    }
}

/// The nodes' paths, joined by `separator`, for a message.
fn paths_of(wants: &[Want], separator: &str) -> String {
    let paths: Vec<String> = wants.iter().map(|w| w.path.display().to_string()).collect();
    paths.join(separator)
}

/// Checks every node (`devices.*`); `systemd`: whether an engine uses the systemd cgroup
/// driver, which turns missing `/dev/char` links into an error.
pub fn check(roots: &Roots, systemd: bool) -> Vec<Finding> {
    let dev = |p: &str| roots.dev.join("dev").join(p);
    let majors = char_majors(&roots.proc_);
    let nvidia = majors
        .get("nvidia-frontend")
        .or_else(|| majors.get("nvidia"))
        .copied()
        .unwrap_or(NVIDIA_MAJOR);
    let mut findings = Vec::new();
    let mut present: Vec<(PathBuf, u32, u32)> = Vec::new();
    let mut wrong: Vec<String> = Vec::new();
    let mut fixes_wrong: Vec<String> = Vec::new();

    let mut check_nodes = |wants: &[Want], present: &mut Vec<(PathBuf, u32, u32)>| -> Vec<Want> {
        let mut missing = Vec::new();
        for want in wants {
            match stat(&want.path) {
                Node::Char(ma, mi) if want.major.is_none_or(|m| m == ma) && mi == want.minor => {
                    present.push((want.path.clone(), ma, mi))
                }
                Node::Missing => missing.push(Want {
                    path: want.path.clone(),
                    ..*want
                }),
                got => {
                    let is = match got {
                        Node::Char(ma, mi) => format!("({ma}, {mi})"),
                        _ => "not a character device".into(),
                    };
                    let major = want.major.unwrap_or(0);
                    wrong.push(format!(
                        "{} is {is}, must be ({major}, {})",
                        want.path.display(),
                        want.minor
                    ));
                    fixes_wrong.push(format!(
                        "rm {0} && mknod -m 666 {0} c {major} {1}",
                        want.path.display(),
                        want.minor
                    ));
                }
            }
        }
        missing
    };

    // nvidiactl
    let ctl = [Want {
        path: dev("nvidiactl"),
        major: Some(nvidia),
        minor: CTL_MINOR,
    }];
    if !check_nodes(&ctl, &mut present).is_empty() {
        findings.push(
            Finding::new(
                ids::DEVICES_CTL_MISSING,
                Severity::Error,
                format!("{} is missing: no GPU can be used without it", ctl[0].path.display()),
            )
            .fix(format!(
                "`nvidia-modprobe` (as root), or `{}`; install nvidia-modprobe so it is made at every boot",
                ctl[0].mknod(nvidia)
            )),
        );
    }

    // GPUs
    let gpus: Vec<Want> = gpu_minors(&roots.proc_)
        .into_iter()
        .map(|m| Want {
            path: dev(&format!("nvidia{m}")),
            major: Some(nvidia),
            minor: m,
        })
        .collect();
    let missing = check_nodes(&gpus, &mut present);
    if !missing.is_empty() {
        let fix: Vec<String> = missing.iter().map(|w| w.mknod(nvidia)).collect();
        findings.push(
            Finding::new(
                ids::DEVICES_GPU_MISSING,
                Severity::Error,
                format!(
                    "device nodes of GPUs the module lists are missing: {} (containers get only the GPUs whose node exists)",
                    paths_of(&missing, ", ")
                ),
            )
            .fix(format!(
                "`nvidia-modprobe -c <minor>` for each (or run `nvidia-smi` once as root), or:\n{}",
                fix.join("\n")
            )),
        );
    }

    // UVM
    let uvm_nodes = [dev("nvidia-uvm"), dev("nvidia-uvm-tools")];
    // An unreadable /proc/devices (a proc root without it) tells nothing about the module: then
    // only the nodes' presence is checked.
    match majors.get("nvidia-uvm").copied() {
        None if !majors.is_empty() => {
            let stale: Vec<String> = uvm_nodes
                .iter()
                .filter(|p| stat(p) != Node::Missing)
                .map(|p| p.display().to_string())
                .collect();
            findings.push(
                Finding::new(
                    ids::DEVICES_UVM_MODULE_MISSING,
                    Severity::Error,
                    format!(
                        "the nvidia-uvm kernel module is not loaded ({} lists no nvidia-uvm): CUDA cannot start in any container{}",
                        roots.proc_.join("proc/devices").display(),
                        if stale.is_empty() { String::new() } else { format!("; {} exist but lead nowhere", stale.join(", ")) }
                    ),
                )
                .fix("`modprobe nvidia-uvm && nvidia-modprobe -u -c=0` (makes /dev/nvidia-uvm and /dev/nvidia-uvm-tools); add nvidia-uvm to /etc/modules-load.d/ so it loads at boot"),
            );
        }
        uvm => {
            let wants: Vec<Want> = uvm_nodes
                .iter()
                .zip([0, 1])
                .map(|(p, minor)| Want {
                    path: p.clone(),
                    major: uvm,
                    minor,
                })
                .collect();
            let missing = check_nodes(&wants, &mut present);
            if !missing.is_empty() {
                let fix: Vec<String> = match uvm {
                    Some(uvm) => missing.iter().map(|w| w.mknod(uvm)).collect(),
                    None => Vec::new(),
                };
                let major = uvm.map_or(String::new(), |m| format!(" (major {m})"));
                findings.push(
                    Finding::new(
                        ids::DEVICES_UVM_MISSING,
                        Severity::Error,
                        format!(
                            "{} missing although the nvidia-uvm module is loaded{major}: CUDA fails in containers (usual after a boot without nvidia-modprobe, since the module makes no node itself)",
                            paths_of(&missing, " and ")
                        ),
                    )
                    .fix(format!(
                        "`nvidia-modprobe -u -c=0` (as root){}\ninstall nvidia-modprobe (or a udev rule running it) so they are made at every boot",
                        if fix.is_empty() { String::new() } else { format!(", or:\n{}", fix.join("\n")) }
                    )),
                );
            }
        }
    }

    // MIG capability nodes: only MIG containers need them.
    if let Some(caps) = majors.get("nvidia-caps").copied() {
        let wants: Vec<Want> = mig_cap_minors(&roots.proc_)
            .into_iter()
            .map(|m| Want {
                path: dev(&format!("nvidia-caps/nvidia-cap{m}")),
                major: Some(caps),
                minor: m,
            })
            .collect();
        let missing = check_nodes(&wants, &mut present);
        if !missing.is_empty() {
            findings.push(
                Finding::new(
                    ids::DEVICES_CAPS_MISSING,
                    Severity::Warning,
                    format!("MIG capability nodes missing: {} (only MIG devices need them)", paths_of(&missing, ", ")),
                )
                .fix("`nvidia-modprobe -f /proc/driver/nvidia/capabilities/mig/config -f /proc/driver/nvidia/capabilities/mig/monitor`"),
            );
        }
    }

    // modeset is optional (display only) but, when there, must be right and linked too.
    if let Node::Char(..) = stat(&dev("nvidia-modeset")) {
        check_nodes(
            &[Want {
                path: dev("nvidia-modeset"),
                major: Some(nvidia),
                minor: 254,
            }],
            &mut present,
        );
    }

    if !wrong.is_empty() {
        findings.push(
            Finding::new(
                ids::DEVICES_WRONG_NUMBER,
                Severity::Error,
                format!(
                    "device nodes with the wrong numbers (left from before a module reload, or made by hand): {}",
                    wrong.join("; ")
                ),
            )
            .fix(format!("remake them (`nvidia-modprobe` does for the NVIDIA ones):\n{}", fixes_wrong.join("\n"))),
        );
    }
    if findings.is_empty() {
        findings.push(Finding::new(
            ids::DEVICES_OK,
            Severity::Ok,
            format!(
                "{} device nodes under {} with the numbers the module gave ({} GPUs, nvidiactl, nvidia-uvm)",
                present.len(),
                roots.dev.join("dev").display(),
                gpus.len()
            ),
        ));
    }
    findings.push(char_links(&roots.dev, &present, systemd));
    findings
}

/// `/dev/char/<major>:<minor>` must lead to each node: systemd names devices by these links
/// when it (re)writes a unit's device allow-list, and a node without one is dropped from the
/// list at the next `systemctl daemon-reload`: the container then gets "Failed to initialize
/// NVML: Unknown Error". The NVIDIA nodes are made by mknod, not udev, so nobody makes the links.
fn char_links(dev_root: &Path, present: &[(PathBuf, u32, u32)], systemd: bool) -> Finding {
    let char_dir = dev_root.join("dev/char");
    let mut missing = Vec::new();
    for (node, ma, mi) in present {
        let link = char_dir.join(format!("{ma}:{mi}"));
        let ok = std::fs::read_link(&link).is_ok_and(|target| {
            let target = if target.is_absolute() {
                dev_root.join(target.strip_prefix("/").unwrap_or(&target))
            } else {
                char_dir.join(target)
            };
            same_file(&target, node)
        });
        if !ok {
            missing.push((link, node));
        }
    }
    if missing.is_empty() {
        return Finding::new(
            ids::DEVICES_CHAR_LINKS_OK,
            Severity::Ok,
            format!(
                "every NVIDIA node has its {}/<major>:<minor> link",
                char_dir.display()
            ),
        );
    }
    let mut fix = String::from("create them (as root):\n");
    // Hosts without udev (some VMs) have no /dev/char at all.
    if !char_dir.is_dir() {
        let _ = writeln!(fix, "mkdir -p {}", char_dir.display());
    }
    for (link, node) in &missing {
        let name = node.strip_prefix(dev_root.join("dev")).unwrap_or(node);
        let _ = writeln!(fix, "ln -sfn ../{} {}", name.display(), link.display());
    }
    fix.push_str("they are lost at reboot: re-create them after the driver loads, e.g. NVIDIA's udev rule `ACTION==\"add\", DEVPATH==\"/bus/pci/drivers/nvidia\", RUN+=\"/usr/bin/nvidia-ctk system create-dev-char-symlinks --create-all\"`, or a systemd unit running the commands above");
    let list: Vec<String> = missing
        .iter()
        .filter_map(|(l, _)| Some(l.file_name()?.to_string_lossy().into_owned()))
        .collect();
    Finding::new(
        ids::DEVICES_CHAR_LINKS_MISSING,
        if systemd { Severity::Error } else { Severity::Warning },
        format!(
            "{} NVIDIA device node(s) have no link in {} ({}): with the systemd cgroup driver{} a `systemctl daemon-reload` takes these devices away from running containers (\"Failed to initialize NVML: Unknown Error\")",
            missing.len(),
            char_dir.display(),
            list.join(", "),
            if systemd { ", which an engine here uses," } else { " (none found configured here)" },
        ),
    )
    .fix(fix.trim_end())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.metadata(), b.symlink_metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
