//! `features`: what this runtime implements, in the OCI runtime-spec's features shape.

use anyhow::Result;
use oci_spec::runtime::Features;

use super::print_json;

pub fn features() -> Result<u8> {
    print_json(&features_json()?)?;
    Ok(0)
}

/// The features as printed: runc's shape, and the same bytes every time. The annotations are
/// a map, which runc (Go's encoding/json) writes ordered by key; oci-spec's is a `HashMap`,
/// whose order changes from one process to the next.
fn features_json() -> Result<serde_json::Value> {
    let mut value = without_nulls(serde_json::to_value(runtime_features()?)?);
    if let Some(annotations) = value
        .get_mut("annotations")
        .and_then(serde_json::Value::as_object_mut)
    {
        annotations.sort_keys();
    }
    Ok(value)
}

/// What this runtime does, and nothing it does not: libcontainer applies AppArmor profiles but
/// no SELinux process labels, and ignores the `idmap` mount options.
fn runtime_features() -> Result<Features> {
    use oci_spec::runtime::{
        ApparmorBuilder, Arch, CgroupBuilder, FeaturesBuilder, IDMapBuilder, IntelRdtBuilder,
        LinuxFeatureBuilder, LinuxNamespaceType, LinuxSeccompAction, MountExtensionsBuilder,
        SeccompBuilder, SelinuxBuilder,
    };

    let namespaces = vec![
        LinuxNamespaceType::Cgroup,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::User,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Time,
    ];
    let seccomp = SeccompBuilder::default()
        .enabled(true)
        .actions(vec![
            LinuxSeccompAction::ScmpActAllow,
            LinuxSeccompAction::ScmpActErrno,
            LinuxSeccompAction::ScmpActKill,
            LinuxSeccompAction::ScmpActKillProcess,
            LinuxSeccompAction::ScmpActKillThread,
            LinuxSeccompAction::ScmpActLog,
            LinuxSeccompAction::ScmpActNotify,
            LinuxSeccompAction::ScmpActTrace,
            LinuxSeccompAction::ScmpActTrap,
        ])
        .operators(
            [
                "SCMP_CMP_EQ",
                "SCMP_CMP_GE",
                "SCMP_CMP_GT",
                "SCMP_CMP_LE",
                "SCMP_CMP_LT",
                "SCMP_CMP_MASKED_EQ",
                "SCMP_CMP_NE",
            ]
            .map(String::from)
            .to_vec(),
        )
        .archs(vec![
            Arch::ScmpArchAarch64,
            Arch::ScmpArchArm,
            Arch::ScmpArchLoongarch64,
            Arch::ScmpArchM68k,
            Arch::ScmpArchMips,
            Arch::ScmpArchMips64,
            Arch::ScmpArchMips64n32,
            Arch::ScmpArchMipsel,
            Arch::ScmpArchMipsel64,
            Arch::ScmpArchMipsel64n32,
            Arch::ScmpArchParisc,
            Arch::ScmpArchParisc64,
            Arch::ScmpArchPpc,
            Arch::ScmpArchPpc64,
            Arch::ScmpArchPpc64le,
            Arch::ScmpArchRiscv64,
            Arch::ScmpArchS390,
            Arch::ScmpArchS390x,
            Arch::ScmpArchSh,
            Arch::ScmpArchSheb,
            Arch::ScmpArchX32,
            Arch::ScmpArchX86,
            Arch::ScmpArchX86_64,
        ])
        .build()?;
    let linux = LinuxFeatureBuilder::default()
        .namespaces(namespaces)
        .capabilities(all_capabilities())
        .cgroup(
            CgroupBuilder::default()
                .v1(true)
                .v2(true)
                .systemd(true)
                .systemd_user(true)
                .build()?,
        )
        .seccomp(seccomp)
        .apparmor(ApparmorBuilder::default().enabled(true).build()?)
        .selinux(SelinuxBuilder::default().enabled(false).build()?)
        .intel_rdt(IntelRdtBuilder::default().enabled(true).build()?)
        .mount_extensions(
            MountExtensionsBuilder::default()
                .idmap(IDMapBuilder::default().enabled(false).build()?)
                .build()?,
        )
        .build()?;
    let annotations = [
        ("io.github.nvidia-runtime.libcontainer.version", "0.7"),
        ("io.github.nvidia-runtime.gpu-injection", "true"),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value.to_owned()))
    .collect::<std::collections::HashMap<_, _>>();
    Ok(FeaturesBuilder::default()
        .oci_version_min("1.0.0")
        .oci_version_max("1.2.0")
        .hooks(
            [
                "prestart",
                "createRuntime",
                "createContainer",
                "startContainer",
                "poststart",
                "poststop",
            ]
            .map(String::from)
            .to_vec(),
        )
        .mount_options(mount_options())
        .linux(linux)
        .annotations(annotations)
        .build()?)
}

/// The mount options libcontainer turns into mount flags or attributes; any other option is
/// passed to the filesystem as data.
fn mount_options() -> Vec<String> {
    let mut options = libcontainer::syscall::linux::MountOption::known_options();
    options.extend(RECURSIVE_MOUNT_OPTIONS.map(String::from));
    options.sort();
    options
}

/// The `mount_setattr(2)` options of the runtime spec that libcontainer applies recursively.
const RECURSIVE_MOUNT_OPTIONS: [&str; 18] = [
    "rro",
    "rrw",
    "rnosuid",
    "rsuid",
    "rnodev",
    "rdev",
    "rnoexec",
    "rexec",
    "rnodiratime",
    "rdiratime",
    "rrelatime",
    "rnorelatime",
    "rnoatime",
    "ratime",
    "rstrictatime",
    "rnostrictatime",
    "rnosymfollow",
    "rsymfollow",
];

/// runc leaves out what it does not know (Go's `omitempty`); oci-spec writes `null` for it.
fn without_nulls(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

fn all_capabilities() -> Vec<String> {
    let mut caps: Vec<String> = caps::all().into_iter().map(|cap| cap.to_string()).collect();
    caps.sort();
    caps
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use libcontainer::syscall::linux::{MountOption, MountRecursive};

    use super::*;

    #[test]
    fn every_mount_option_claimed_is_one_libcontainer_applies() {
        for option in mount_options() {
            assert!(
                MountOption::from_str(&option).is_ok() || MountRecursive::from_str(&option).is_ok(),
                "{option} is claimed but libcontainer would pass it on as filesystem data"
            );
        }
    }

    #[test]
    fn features_are_the_same_bytes_every_time() {
        let first = features_json().unwrap().to_string();
        let keys: Vec<String> = features_json().unwrap()["annotations"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert!(keys.len() > 1 && keys.is_sorted(), "{keys:?}");
        // (each build of the features has a map of its own, in an order of its own)
        for _ in 0..20 {
            assert_eq!(features_json().unwrap().to_string(), first);
        }
    }

    #[test]
    fn features_claim_no_selinux_and_no_idmapped_mounts() {
        let value = features_json().unwrap();
        assert_eq!(value["linux"]["selinux"]["enabled"], false);
        assert_eq!(value["linux"]["mountExtensions"]["idmap"]["enabled"], false);
        assert!(!value.to_string().contains("null"));
        assert_eq!(value["linux"]["seccomp"]["actions"][0], "SCMP_ACT_ALLOW");
        assert_eq!(value["linux"]["namespaces"][0], "cgroup");
    }
}
