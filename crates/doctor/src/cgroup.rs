//! The cgroup hierarchy the host mounts and the cgroup driver each engine uses.

use std::path::Path;

use crate::{ids, Finding, Severity};

/// How cgroups are mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One cgroup2 hierarchy (`cgroup.controllers` at the root).
    V2,
    /// v1 controllers plus a cgroup2 hierarchy at `unified/` (systemd's hybrid layout).
    Hybrid,
    /// v1 controllers only.
    V1,
    /// Nothing recognisable.
    None,
}

/// Tells the layout by the files each kind of mount has, so that it can be read under any
/// directory (and tested without mounting cgroups).
pub fn mode(root: &Path) -> Mode {
    if root.join("cgroup.controllers").is_file() {
        Mode::V2
    } else if root.join("unified/cgroup.controllers").is_file() {
        Mode::Hybrid
    } else if ["devices", "memory", "cpu", "pids"]
        .iter()
        .any(|c| root.join(c).is_dir())
    {
        Mode::V1
    } else {
        Mode::None
    }
}

/// One engine's cgroup driver, as its config says (or its default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Driver {
    /// "docker", "containerd", "crio".
    pub engine: &'static str,
    /// Whether it is systemd (else cgroupfs).
    pub systemd: bool,
    /// Where that came from, e.g. `exec-opts native.cgroupdriver=systemd in /etc/docker/daemon.json`.
    pub source: String,
}

/// `cgroup.version` (info, or `cgroup.none` warning) and `cgroup.driver` (info) when any engine
/// is configured.
pub fn check(root: &Path, drivers: &[Driver]) -> Vec<Finding> {
    let mut findings = vec![match mode(root) {
        Mode::V2 => Finding::new(
            ids::CGROUP_VERSION,
            Severity::Info,
            format!("cgroup v2 (unified hierarchy at {})", root.display()),
        ),
        Mode::Hybrid => Finding::new(
            ids::CGROUP_VERSION,
            Severity::Info,
            format!(
                "cgroup v1 in systemd's hybrid layout ({}, with cgroup2 at unified/): the device allow-list is enforced by the v1 devices controller",
                root.display()
            ),
        ),
        Mode::V1 => Finding::new(
            ids::CGROUP_VERSION,
            Severity::Info,
            format!("cgroup v1 (legacy hierarchy at {})", root.display()),
        ),
        Mode::None => Finding::new(
            ids::CGROUP_NONE,
            Severity::Warning,
            format!("no cgroup hierarchy found at {}: containers cannot be created", root.display()),
        )
        .fix("mount cgroups (systemd does at boot; otherwise `mount -t cgroup2 none /sys/fs/cgroup`)"),
    }];
    if !drivers.is_empty() {
        let list: Vec<String> = drivers
            .iter()
            .map(|d| {
                format!(
                    "{}: {} ({})",
                    d.engine,
                    if d.systemd { "systemd" } else { "cgroupfs" },
                    d.source
                )
            })
            .collect();
        findings.push(Finding::new(
            ids::CGROUP_DRIVER,
            Severity::Info,
            format!("cgroup driver of {}", list.join("; ")),
        ));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_by_files() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(mode(t.path()), Mode::None);
        std::fs::create_dir(t.path().join("memory")).unwrap();
        assert_eq!(mode(t.path()), Mode::V1);
        std::fs::create_dir(t.path().join("unified")).unwrap();
        std::fs::write(t.path().join("unified/cgroup.controllers"), "").unwrap();
        assert_eq!(mode(t.path()), Mode::Hybrid);
        std::fs::write(t.path().join("cgroup.controllers"), "cpu memory").unwrap();
        assert_eq!(mode(t.path()), Mode::V2);
    }

    #[test]
    fn findings() {
        let t = tempfile::tempdir().unwrap();
        let f = check(t.path(), &[]);
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].id, f[0].severity),
            (ids::CGROUP_NONE, Severity::Warning)
        );
        std::fs::write(t.path().join("cgroup.controllers"), "").unwrap();
        let f = check(
            t.path(),
            &[Driver {
                engine: "docker",
                systemd: true,
                source: "x".into(),
            }],
        );
        assert_eq!(f[0].id, ids::CGROUP_VERSION);
        assert!(f[0].message.contains("v2"));
        assert_eq!(f[1].id, ids::CGROUP_DRIVER);
        assert!(
            f[1].message.contains("docker: systemd (x)"),
            "{}",
            f[1].message
        );
    }
}
