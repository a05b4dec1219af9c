//! CDI spec versions and the fields each one brought (SPEC.md's "Released versions" table and
//! the reference implementation's `specs-go/version.go`).
//!
//! A spec must not use a field newer than its `cdiVersion`: a consumer that only knows that
//! version would refuse or, worse, ignore the field. [`features`] lists every versioned field a
//! spec uses; [`minimum_version`] is the lowest `cdiVersion` that allows all of them, which is
//! also the version a producer should write so that older consumers can read its spec.

use std::fmt;
use std::str::FromStr;

use crate::spec::{ContainerEdits, Spec};

/// A released CDI spec version this crate reads and writes. Ordered oldest to newest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// The first tagged release (the earliest one runtimes accept).
    V0_3_0,
    /// Mount `type`.
    V0_4_0,
    /// Device node `hostPath`; device names may start with a digit.
    V0_5_0,
    /// Spec and device `annotations`; dots in the class of `kind`.
    V0_6_0,
    /// `intelRdt` (closID, l3CacheSchema, memBwSchema, enableCMT, enableMBM); `additionalGids`.
    V0_7_0,
    /// No format change (Go API change upstream).
    V0_8_0,
    /// No format change (Go API change upstream).
    V1_0_0,
    /// `netDevices`; `intelRdt.schemata` and `intelRdt.enableMonitoring`; `intelRdt.enableCMT`
    /// and `intelRdt.enableMBM` dropped.
    V1_1_0,
}

impl Version {
    /// Every known version, oldest first.
    pub const ALL: [Version; 8] = [
        Version::V0_3_0,
        Version::V0_4_0,
        Version::V0_5_0,
        Version::V0_6_0,
        Version::V0_7_0,
        Version::V0_8_0,
        Version::V1_0_0,
        Version::V1_1_0,
    ];
    /// The newest version known here.
    pub const LATEST: Version = Version::V1_1_0;
    /// The oldest version accepted.
    pub const EARLIEST: Version = Version::V0_3_0;

    /// `MAJOR.MINOR.PATCH`, as written in `cdiVersion`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V0_3_0 => "0.3.0",
            Version::V0_4_0 => "0.4.0",
            Version::V0_5_0 => "0.5.0",
            Version::V0_6_0 => "0.6.0",
            Version::V0_7_0 => "0.7.0",
            Version::V0_8_0 => "0.8.0",
            Version::V1_0_0 => "1.0.0",
            Version::V1_1_0 => "1.1.0",
        }
    }

    /// Parses a `cdiVersion` value. An optional leading `v` is accepted, as the reference
    /// implementation does. Errors: [`UnknownVersion`] for anything not in [`Version::ALL`]
    /// (including 0.1.0 and 0.2.0, which no runtime accepts any more).
    pub fn parse(s: &str) -> Result<Self, UnknownVersion> {
        let bare = s.strip_prefix('v').unwrap_or(s);
        Version::ALL
            .into_iter()
            .find(|v| v.as_str() == bare)
            .ok_or_else(|| UnknownVersion(s.to_owned()))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Version {
    type Err = UnknownVersion;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A `cdiVersion` that is not one of the known releases.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a known CDI version; use one of 0.3.0, 0.4.0, 0.5.0, 0.6.0, 0.7.0, 0.8.0, 1.0.0, 1.1.0")]
pub struct UnknownVersion(pub String);

/// One use of a versioned field in a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feature {
    /// The device whose entry uses it; `None` for the spec itself.
    pub device: Option<String>,
    /// Where, relative to the device entry (or to the spec), e.g.
    /// `containerEdits.deviceNodes[0].hostPath`.
    pub field: String,
    /// The first version that has it.
    pub since: Version,
    /// The last version that has it, when a later one dropped it.
    pub until: Option<Version>,
}

/// Every versioned field (or name form) the spec uses, in document order.
pub fn features(spec: &Spec) -> Vec<Feature> {
    let mut out = Vec::new();
    let mut push = |device: Option<&str>, field: String, since, until| {
        out.push(Feature {
            device: device.map(str::to_owned),
            field,
            since,
            until,
        })
    };
    if !spec.annotations.is_empty() {
        push(None, "annotations".into(), Version::V0_6_0, None);
    }
    if let Some((_, class)) = spec.kind.split_once('/') {
        if class.contains('.') {
            push(None, "kind".into(), Version::V0_6_0, None);
        }
    }
    edit_features(None, &spec.container_edits, &mut push);
    for device in &spec.devices {
        let name = Some(device.name.as_str());
        if device.name.starts_with(|c: char| c.is_ascii_digit()) {
            push(name, "name".into(), Version::V0_5_0, None);
        }
        if !device.annotations.is_empty() {
            push(name, "annotations".into(), Version::V0_6_0, None);
        }
        edit_features(name, &device.container_edits, &mut push);
    }
    out
}

fn edit_features(
    device: Option<&str>,
    edits: &ContainerEdits,
    push: &mut impl FnMut(Option<&str>, String, Version, Option<Version>),
) {
    for (i, node) in edits.device_nodes.iter().enumerate() {
        if node.host_path.as_deref().is_some_and(|p| !p.is_empty()) {
            push(
                device,
                format!("containerEdits.deviceNodes[{i}].hostPath"),
                Version::V0_5_0,
                None,
            );
        }
    }
    for (i, mount) in edits.mounts.iter().enumerate() {
        if mount.kind.as_deref().is_some_and(|t| !t.is_empty()) {
            push(
                device,
                format!("containerEdits.mounts[{i}].type"),
                Version::V0_4_0,
                None,
            );
        }
    }
    if let Some(rdt) = &edits.intel_rdt {
        push(
            device,
            "containerEdits.intelRdt".into(),
            Version::V0_7_0,
            None,
        );
        if rdt.schemata.is_some() {
            push(
                device,
                "containerEdits.intelRdt.schemata".into(),
                Version::V1_1_0,
                None,
            );
        }
        if rdt.enable_monitoring.is_some() {
            push(
                device,
                "containerEdits.intelRdt.enableMonitoring".into(),
                Version::V1_1_0,
                None,
            );
        }
        if rdt.enable_cmt.is_some() {
            let f = "containerEdits.intelRdt.enableCMT".into();
            push(device, f, Version::V0_7_0, Some(Version::V1_0_0));
        }
        if rdt.enable_mbm.is_some() {
            let f = "containerEdits.intelRdt.enableMBM".into();
            push(device, f, Version::V0_7_0, Some(Version::V1_0_0));
        }
    }
    if !edits.additional_gids.is_empty() {
        push(
            device,
            "containerEdits.additionalGids".into(),
            Version::V0_7_0,
            None,
        );
    }
    if !edits.net_devices.is_empty() {
        push(
            device,
            "containerEdits.netDevices".into(),
            Version::V1_1_0,
            None,
        );
    }
}

/// The lowest `cdiVersion` whose format has every field the spec uses ([`Version::EARLIEST`]
/// when it uses none). A spec that mixes a dropped field (e.g. `enableCMT`) with one newer than
/// its drop fits no version; [`crate::Spec::validate`] reports that.
pub fn minimum_version(spec: &Spec) -> Version {
    features(spec)
        .iter()
        .map(|f| f.since)
        .max()
        .unwrap_or(Version::EARLIEST)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Device, DeviceNode, IntelRdt, Mount, NetDevice};

    #[test]
    fn parse_and_order() {
        assert_eq!(Version::parse("1.1.0").unwrap(), Version::V1_1_0);
        assert_eq!(Version::parse("v0.5.0").unwrap(), Version::V0_5_0);
        for bad in ["0.2.0", "0.1.0", "1.2.0", "", "1.1", "latest"] {
            assert!(Version::parse(bad).is_err(), "{bad}");
        }
        assert!(Version::V0_3_0 < Version::V1_1_0);
        for v in Version::ALL {
            assert_eq!(Version::parse(&v.to_string()).unwrap(), v);
        }
    }

    fn base() -> Spec {
        Spec {
            cdi_version: "0.3.0".into(),
            kind: "vendor.com/gpu".into(),
            devices: vec![Device {
                name: "gpu".into(),
                container_edits: ContainerEdits {
                    env: vec!["A=1".into()],
                    ..Default::default()
                },
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn minimum_versions_per_field() {
        assert_eq!(minimum_version(&base()), Version::V0_3_0);

        let mut s = base();
        s.devices[0].container_edits.mounts.push(Mount {
            host_path: "/a".into(),
            container_path: "/a".into(),
            kind: Some("bind".into()),
            options: vec![],
        });
        assert_eq!(minimum_version(&s), Version::V0_4_0);

        let mut s = base();
        s.devices[0].name = "0".into();
        assert_eq!(minimum_version(&s), Version::V0_5_0);

        let mut s = base();
        s.container_edits.device_nodes.push(DeviceNode {
            path: "/dev/a".into(),
            host_path: Some("/dev/b".into()),
            ..Default::default()
        });
        assert_eq!(minimum_version(&s), Version::V0_5_0);

        let mut s = base();
        s.kind = "vendor.com/mig-1g.5gb".into();
        assert_eq!(minimum_version(&s), Version::V0_6_0);

        let mut s = base();
        s.devices[0].annotations.insert("a".into(), "b".into());
        assert_eq!(minimum_version(&s), Version::V0_6_0);

        let mut s = base();
        s.container_edits.additional_gids.push(44);
        assert_eq!(minimum_version(&s), Version::V0_7_0);

        let mut s = base();
        s.devices[0].container_edits.intel_rdt = Some(IntelRdt {
            enable_cmt: Some(true),
            ..Default::default()
        });
        assert_eq!(minimum_version(&s), Version::V0_7_0);

        let mut s = base();
        s.devices[0].container_edits.intel_rdt = Some(IntelRdt {
            schemata: Some(vec!["L3:0=f".into()]),
            ..Default::default()
        });
        assert_eq!(minimum_version(&s), Version::V1_1_0);

        let mut s = base();
        s.devices[0].container_edits.net_devices.push(NetDevice {
            host_interface_name: "eth1".into(),
            name: "net0".into(),
        });
        let f = features(&s);
        assert_eq!(minimum_version(&s), Version::V1_1_0);
        assert_eq!(f[0].device.as_deref(), Some("gpu"));
        assert_eq!(f[0].field, "containerEdits.netDevices");
    }
}
