//! Applying [`ContainerEdits`] to an OCI runtime spec (`config.json`), with the semantics of
//! CDI's reference library (`pkg/cdi/container-edits.go` of
//! <https://github.com/cncf-tags/container-device-interface>), so that a container gets the
//! same from us as from containerd, CRI-O or Podman:
//!
//! - `env`: each `NAME=value` replaces the entry of that name where there is one, else is
//!   appended (a later edit wins);
//! - `deviceNodes`: a node lacking `type` or `major` has them read from its host node
//!   (`hostPath`, else `path`; not followed if a symlink); `fileMode` is read from the host
//!   node too where absent; `uid`/`gid` default to the process user's when that is not root;
//!   an entry of `linux.devices` with the same `path` is replaced, and block and character
//!   devices get a cgroup allow rule with the node's `permissions` (`rwm` when absent, none
//!   for `"none"`);
//! - `mounts`: a mount at the same destination is replaced, the new ones appended, then the
//!   whole list is ordered (stably) by the depth of its destinations, so a mount never hides
//!   one below it;
//! - `hooks`: appended to `hooks.<hookName>`;
//! - `additionalGids`: added to `process.user.additionalGids` once each (0 never);
//! - `intelRdt`: replaces `linux.intelRdt`;
//! - `netDevices`: `linux.netDevices[hostInterfaceName] = {name}` (OCI runtime-spec 1.2).
//!
//! The spec is a `serde_json::Value`, so every field we do not model survives.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::spec::{ContainerEdits, DeviceNode, Hook, IntelRdt};
use crate::HOOK_NAMES;

/// Why edits could not be applied; nothing of them is then in the spec.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("the OCI spec is not a JSON object")]
    NotAnObject,
    #[error("device node {path}: cannot read its host node {host_path}: {source}")]
    HostNode {
        path: String,
        host_path: PathBuf,
        source: std::io::Error,
    },
    #[error("device node {path}: {host_path} on the host is not a device node")]
    NotADevice { path: String, host_path: PathBuf },
    #[error("device node {path}: type {given:?}, but {host_path} on the host is {found:?}")]
    TypeMismatch {
        path: String,
        host_path: PathBuf,
        given: String,
        found: String,
    },
    #[error(
        "device node {path}: invalid permissions {permissions:?} (any of r, w, m, or \"none\")"
    )]
    Permissions { path: String, permissions: String },
    #[error("unknown hook name {0:?} (known: prestart, createRuntime, createContainer, startContainer, poststart, poststop)")]
    HookName(String),
    #[error("environment entry {0:?} is not NAME=value")]
    Env(String),
}

/// A host device node as `stat` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostNode {
    /// `c`, `b` or `p`.
    pub kind: char,
    pub major: i64,
    pub minor: i64,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
}

/// `lstat` of a host device node (a symlink is not a device node, as in the reference
/// library).
pub fn stat_host_node(path: &Path) -> std::io::Result<Option<HostNode>> {
    let meta = std::fs::symlink_metadata(path)?;
    let kind = meta.file_type();
    let kind = if kind.is_char_device() {
        'c'
    } else if kind.is_block_device() {
        'b'
    } else if kind.is_fifo() {
        'p'
    } else {
        return Ok(None);
    };
    let rdev = meta.rdev();
    // glibc's gnu_dev_major/minor: 12 bits of major and 20 of minor, split across the word
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    Ok(Some(HostNode {
        kind,
        major: major as i64,
        minor: minor as i64,
        mode: meta.mode() & 0o7777,
    }))
}

/// Applies `edits` to `spec` in place. On error the spec is unchanged.
pub fn apply(spec: &mut Value, edits: &ContainerEdits) -> Result<(), ApplyError> {
    apply_with(spec, edits, &stat_host_node)
}

/// [`apply`] with the host's device nodes read by `stat` (tests give a fake host).
pub fn apply_with(
    spec: &mut Value,
    edits: &ContainerEdits,
    stat: &dyn Fn(&Path) -> std::io::Result<Option<HostNode>>,
) -> Result<(), ApplyError> {
    if !spec.is_object() {
        return Err(ApplyError::NotAnObject);
    }
    // Everything that can fail is checked first: a failed apply leaves the spec as it was.
    for entry in &edits.env {
        if entry.find('=').is_none_or(|at| at == 0) {
            return Err(ApplyError::Env(entry.clone()));
        }
    }
    for hook in &edits.hooks {
        if !HOOK_NAMES.contains(&hook.hook_name.as_str()) {
            return Err(ApplyError::HookName(hook.hook_name.clone()));
        }
    }
    let user = |key: &str| {
        spec.pointer(&format!("/process/user/{key}"))
            .and_then(Value::as_u64)
            .filter(|id| *id > 0)
    };
    let (uid, gid) = (user("uid"), user("gid"));
    let mut devices = Vec::with_capacity(edits.device_nodes.len());
    for node in &edits.device_nodes {
        devices.push(oci_device(node, uid, gid, stat)?);
    }

    let Value::Object(root) = spec else {
        unreachable!("checked above");
    };
    if !edits.env.is_empty() {
        let env = array_at(object_at(root, "process"), "env");
        for entry in &edits.env {
            let name = &entry[..=entry.find('=').expect("checked above")];
            match env
                .iter()
                .rposition(|e| e.as_str().is_some_and(|e| e.starts_with(name)))
            {
                Some(at) => env[at] = json!(entry),
                None => env.push(json!(entry)),
            }
        }
    }

    if !devices.is_empty() {
        let linux = object_at(root, "linux");
        for (device, rule) in devices {
            let list = array_at(linux, "devices");
            list.retain(|d| d.get("path") != device.get("path"));
            list.push(device);
            if let Some(rule) = rule {
                array_at(object_at(linux, "resources"), "devices").push(rule);
            }
        }
    }

    if !edits.net_devices.is_empty() {
        let net = object_at(object_at(root, "linux"), "netDevices");
        for dev in &edits.net_devices {
            net.insert(dev.host_interface_name.clone(), json!({ "name": dev.name }));
        }
    }

    if !edits.mounts.is_empty() {
        let mounts = array_at(root, "mounts");
        for mount in &edits.mounts {
            mounts.retain(|m| {
                m.get("destination").and_then(Value::as_str) != Some(&mount.container_path)
            });
            let mut entry = Map::new();
            entry.insert("destination".into(), json!(mount.container_path));
            if let Some(kind) = &mount.kind {
                entry.insert("type".into(), json!(kind));
            }
            entry.insert("source".into(), json!(mount.host_path));
            if !mount.options.is_empty() {
                entry.insert("options".into(), json!(mount.options));
            }
            mounts.push(Value::Object(entry));
        }
        // stable: mounts of one depth keep their order
        mounts.sort_by_key(|m| depth(m.get("destination").and_then(Value::as_str)));
    }

    for hook in &edits.hooks {
        array_at(object_at(root, "hooks"), &hook.hook_name).push(oci_hook(hook));
    }

    if let Some(rdt) = &edits.intel_rdt {
        object_at(root, "linux").insert("intelRdt".into(), oci_intel_rdt(rdt));
    }

    let gids: Vec<u32> = edits
        .additional_gids
        .iter()
        .copied()
        .filter(|gid| *gid != 0)
        .collect();
    if !gids.is_empty() {
        let list = array_at(
            object_at(object_at(root, "process"), "user"),
            "additionalGids",
        );
        for gid in gids {
            if !list.iter().any(|g| g.as_u64() == Some(u64::from(gid))) {
                list.push(json!(gid));
            }
        }
    }
    Ok(())
}

/// The `linux.devices` entry for `node`, and its cgroup rule (none for FIFOs and for
/// `permissions: "none"`).
fn oci_device(
    node: &DeviceNode,
    process_uid: Option<u64>,
    process_gid: Option<u64>,
    stat: &dyn Fn(&Path) -> std::io::Result<Option<HostNode>>,
) -> Result<(Value, Option<Value>), ApplyError> {
    let host_path = PathBuf::from(node.host_path_or_path());
    let mut kind = node.kind.clone().filter(|k| !k.is_empty());
    let (mut major, mut minor) = (node.major, node.minor);
    let mut file_mode = node.file_mode;
    let complete = kind
        .as_deref()
        .is_some_and(|k| k == "p" || major.is_some_and(|m| m != 0));
    if !complete || file_mode.is_none() {
        let host = match stat(&host_path) {
            Ok(Some(host)) => Some(host),
            Ok(None) if !complete => {
                return Err(ApplyError::NotADevice {
                    path: node.path.clone(),
                    host_path,
                })
            }
            Err(source) if !complete => {
                return Err(ApplyError::HostNode {
                    path: node.path.clone(),
                    host_path,
                    source,
                })
            }
            // Only the mode was missing: the runtime's default mode serves.
            Ok(None) | Err(_) => None,
        };
        if let (Some(host), true) = (host, complete) {
            file_mode.get_or_insert(host.mode);
        } else if let Some(host) = host {
            match kind.as_deref() {
                None => kind = Some(host.kind.to_string()),
                // `u` is an unbuffered character device: a character node on the host
                Some(k) if k == host.kind.to_string() || (k == "u" && host.kind == 'c') => {}
                Some(k) => {
                    return Err(ApplyError::TypeMismatch {
                        path: node.path.clone(),
                        host_path,
                        given: k.to_owned(),
                        found: host.kind.to_string(),
                    })
                }
            }
            if host.kind != 'p' && major.is_none_or(|m| m == 0) {
                major = Some(host.major);
                minor = Some(host.minor);
            }
            file_mode.get_or_insert(host.mode);
        }
    }
    let access = match node.permissions.as_deref() {
        None | Some("") => "rwm",
        Some("none") => "",
        Some(p) if p.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) => p,
        Some(p) => {
            return Err(ApplyError::Permissions {
                path: node.path.clone(),
                permissions: p.to_owned(),
            })
        }
    };
    let kind = kind.unwrap_or_default();
    let mut device = Map::new();
    device.insert("path".into(), json!(node.path));
    device.insert("type".into(), json!(kind));
    device.insert("major".into(), json!(major.unwrap_or(0)));
    device.insert("minor".into(), json!(minor.unwrap_or(0)));
    if let Some(mode) = file_mode {
        device.insert("fileMode".into(), json!(mode));
    }
    if let Some(uid) = node.uid.map(u64::from).or(process_uid) {
        device.insert("uid".into(), json!(uid));
    }
    if let Some(gid) = node.gid.map(u64::from).or(process_gid) {
        device.insert("gid".into(), json!(gid));
    }
    let rule = matches!(kind.as_str(), "b" | "c").then(|| {
        json!({
            "allow": true,
            "type": kind,
            "major": major.unwrap_or(0),
            "minor": minor.unwrap_or(0),
            "access": access,
        })
    });
    Ok((Value::Object(device), rule))
}

fn oci_hook(hook: &Hook) -> Value {
    let mut entry = Map::new();
    entry.insert("path".into(), json!(hook.path));
    if !hook.args.is_empty() {
        entry.insert("args".into(), json!(hook.args));
    }
    if !hook.env.is_empty() {
        entry.insert("env".into(), json!(hook.env));
    }
    if let Some(timeout) = hook.timeout {
        entry.insert("timeout".into(), json!(timeout));
    }
    Value::Object(entry)
}

fn oci_intel_rdt(rdt: &IntelRdt) -> Value {
    let mut entry = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            entry.insert(key.into(), value);
        }
    };
    put("closID", rdt.clos_id.as_ref().map(|v| json!(v)));
    put(
        "l3CacheSchema",
        rdt.l3_cache_schema.as_ref().map(|v| json!(v)),
    );
    put("memBwSchema", rdt.mem_bw_schema.as_ref().map(|v| json!(v)));
    put("schemata", rdt.schemata.as_ref().map(|v| json!(v)));
    put("enableCMT", rdt.enable_cmt.map(|v| json!(v)));
    put("enableMBM", rdt.enable_mbm.map(|v| json!(v)));
    put("enableMonitoring", rdt.enable_monitoring.map(|v| json!(v)));
    Value::Object(entry)
}

/// Path separators in the lexically cleaned destination, as the reference library counts
/// (Go's `strings.Count(filepath.Clean(d), "/")`): `/` and `/proc` are 1, `/dev/pts` 2.
fn depth(destination: Option<&str>) -> usize {
    let Some(destination) = destination else {
        return 0;
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in destination.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    let absolute = destination.starts_with('/');
    match (absolute, parts.len()) {
        (true, 0) => 1,
        (true, n) => n,
        (false, 0) => 0,
        (false, n) => n - 1,
    }
}

fn object_at<'a>(parent: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let entry = parent.entry(key).or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    entry.as_object_mut().expect("made an object above")
}

fn array_at<'a>(parent: &'a mut Map<String, Value>, key: &str) -> &'a mut Vec<Value> {
    let entry = parent.entry(key).or_insert_with(|| json!([]));
    if !entry.is_array() {
        *entry = json!([]);
    }
    entry.as_array_mut().expect("made an array above")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Mount, NetDevice};

    fn fake_host(path: &Path) -> std::io::Result<Option<HostNode>> {
        match path.to_str() {
            Some("/dev/nvidia0") | Some("/host/dev/nvidia0") => Ok(Some(HostNode {
                kind: 'c',
                major: 195,
                minor: 0,
                mode: 0o666,
            })),
            Some("/dev/sdz") => Ok(Some(HostNode {
                kind: 'b',
                major: 8,
                minor: 16,
                mode: 0o660,
            })),
            Some("/dev/fifo") => Ok(Some(HostNode {
                kind: 'p',
                major: 0,
                minor: 0,
                mode: 0o600,
            })),
            Some("/etc/hostname") => Ok(None),
            _ => Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
        }
    }

    fn node(path: &str) -> DeviceNode {
        DeviceNode {
            path: path.into(),
            ..DeviceNode::default()
        }
    }

    fn run(spec: &mut Value, edits: &ContainerEdits) -> Result<(), ApplyError> {
        apply_with(spec, edits, &fake_host)
    }

    #[test]
    fn env_replaces_by_name_and_appends() {
        let mut spec = json!({"process": {"env": ["PATH=/bin", "A=1", "B=2"]}});
        let edits = ContainerEdits {
            env: vec!["A=3".into(), "C=4".into(), "C=5".into(), "AB=6".into()],
            ..ContainerEdits::default()
        };
        run(&mut spec, &edits).unwrap();
        assert_eq!(
            spec["process"]["env"],
            json!(["PATH=/bin", "A=3", "B=2", "C=5", "AB=6"])
        );
        let bad = ContainerEdits {
            env: vec!["=x".into()],
            ..ContainerEdits::default()
        };
        assert!(matches!(run(&mut spec, &bad), Err(ApplyError::Env(_))));
    }

    #[test]
    fn device_nodes_filled_from_the_host_replaced_by_path_with_rules() {
        let mut spec = json!({
            "process": {"user": {"uid": 1000, "gid": 0}},
            "linux": {"devices": [{"path": "/dev/nvidia0", "type": "c", "major": 1, "minor": 1}],
                      "resources": {"devices": [{"allow": false, "access": "rwm"}]}},
        });
        let edits = ContainerEdits {
            device_nodes: vec![
                DeviceNode {
                    host_path: Some("/host/dev/nvidia0".into()),
                    ..node("/dev/nvidia0")
                },
                DeviceNode {
                    permissions: Some("r".into()),
                    gid: Some(6),
                    ..node("/dev/sdz")
                },
                node("/dev/fifo"),
                DeviceNode {
                    kind: Some("c".into()),
                    major: Some(10),
                    minor: Some(200),
                    permissions: Some("none".into()),
                    ..node("/dev/net/tun")
                },
            ],
            ..ContainerEdits::default()
        };
        run(&mut spec, &edits).unwrap();
        let devices = spec["linux"]["devices"].as_array().unwrap();
        assert_eq!(devices.len(), 4, "{devices:?}");
        assert_eq!(
            devices[0],
            json!({"path": "/dev/nvidia0", "type": "c", "major": 195, "minor": 0,
                   "fileMode": 0o666, "uid": 1000})
        );
        assert_eq!(devices[1]["type"], "b");
        assert_eq!(devices[1]["gid"], 6);
        assert_eq!(devices[2]["type"], "p");
        // given in full: no host node needed, and no mode invented
        assert_eq!(
            devices[3],
            json!({"path": "/dev/net/tun", "type": "c", "major": 10, "minor": 200, "uid": 1000})
        );
        let rules = spec["linux"]["resources"]["devices"].as_array().unwrap();
        assert_eq!(rules.len(), 4, "no rule for the FIFO: {rules:?}");
        assert_eq!(rules[0]["allow"], false);
        assert_eq!(
            rules[1],
            json!({"allow": true, "type": "c", "major": 195, "minor": 0, "access": "rwm"})
        );
        assert_eq!(rules[2]["access"], "r");
        assert_eq!(rules[3]["access"], "");
    }

    #[test]
    fn device_node_errors_leave_the_spec_alone() {
        let original = json!({"process": {"env": ["A=1"]}});
        for (bad, what) in [
            (node("/dev/missing"), "cannot read"),
            (node("/etc/hostname"), "not a device node"),
            (
                DeviceNode {
                    kind: Some("b".into()),
                    ..node("/dev/nvidia0")
                },
                "type \"b\"",
            ),
            (
                DeviceNode {
                    permissions: Some("rx".into()),
                    ..node("/dev/nvidia0")
                },
                "invalid permissions",
            ),
        ] {
            let mut spec = original.clone();
            let edits = ContainerEdits {
                env: vec!["B=2".into()],
                device_nodes: vec![bad],
                ..ContainerEdits::default()
            };
            let err = run(&mut spec, &edits).unwrap_err();
            assert!(err.to_string().contains(what), "{err}");
            assert_eq!(spec, original);
        }
    }

    #[test]
    fn mounts_replace_by_destination_and_sort_by_depth() {
        let mut spec = json!({"mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts"},
            {"destination": "/usr/lib/libx.so", "source": "/old", "options": ["bind"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
        ]});
        let mount = |host: &str, container: &str| Mount {
            host_path: host.into(),
            container_path: container.into(),
            kind: None,
            options: vec!["ro".into(), "rbind".into()],
        };
        let edits = ContainerEdits {
            mounts: vec![
                mount("/new", "/usr/lib/libx.so"),
                mount("/drv/bin", "/usr/bin/nvidia-smi"),
                Mount {
                    kind: Some("tmpfs".into()),
                    options: Vec::new(),
                    ..mount("tmpfs", "/scratch")
                },
            ],
            ..ContainerEdits::default()
        };
        run(&mut spec, &edits).unwrap();
        let order: Vec<&str> = spec["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        assert_eq!(
            order,
            [
                "/proc",
                "/dev",
                "/scratch",
                "/dev/pts",
                "/usr/lib/libx.so",
                "/usr/bin/nvidia-smi"
            ]
        );
        let libx = &spec["mounts"][4];
        assert_eq!(
            *libx,
            json!({"destination": "/usr/lib/libx.so", "source": "/new", "options": ["ro", "rbind"]})
        );
        assert_eq!(
            spec["mounts"][2],
            json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs"})
        );
        assert_eq!(depth(Some("/")), 1);
        assert_eq!(depth(Some("/a/../b/")), 1);
    }

    #[test]
    fn hooks_gids_rdt_and_net_devices() {
        let mut spec = json!({
            "process": {"user": {"uid": 0, "gid": 0, "additionalGids": [10]}},
            "hooks": {"prestart": [{"path": "/bin/old"}]},
            "unknown": {"kept": [1, 2]},
        });
        let hook = |name: &str, path: &str| Hook {
            hook_name: name.into(),
            path: path.into(),
            args: vec![path.into(), "x".into()],
            env: vec!["K=V".into()],
            timeout: Some(5),
        };
        let edits = ContainerEdits {
            hooks: vec![
                hook("prestart", "/bin/a"),
                hook("createContainer", "/bin/b"),
            ],
            additional_gids: vec![0, 10, 44, 44, 109],
            intel_rdt: Some(IntelRdt {
                clos_id: Some("gpu".into()),
                l3_cache_schema: Some("L3:0=ff".into()),
                ..IntelRdt::default()
            }),
            net_devices: vec![NetDevice {
                host_interface_name: "eth7".into(),
                name: "net0".into(),
            }],
            ..ContainerEdits::default()
        };
        run(&mut spec, &edits).unwrap();
        assert_eq!(spec["hooks"]["prestart"].as_array().unwrap().len(), 2);
        assert_eq!(
            spec["hooks"]["createContainer"][0],
            json!({"path": "/bin/b", "args": ["/bin/b", "x"], "env": ["K=V"], "timeout": 5})
        );
        assert_eq!(
            spec["process"]["user"]["additionalGids"],
            json!([10, 44, 109])
        );
        assert_eq!(
            spec["linux"]["intelRdt"],
            json!({"closID": "gpu", "l3CacheSchema": "L3:0=ff"})
        );
        assert_eq!(
            spec["linux"]["netDevices"],
            json!({"eth7": {"name": "net0"}})
        );
        assert_eq!(spec["unknown"]["kept"], json!([1, 2]));

        let bad = ContainerEdits {
            hooks: vec![hook("preStart", "/bin/a")],
            ..ContainerEdits::default()
        };
        let err = run(&mut spec, &bad).unwrap_err();
        assert!(err.to_string().contains("\"preStart\""), "{err}");
    }

    #[test]
    fn the_hosts_dev_null_is_read() {
        let null = stat_host_node(Path::new("/dev/null")).unwrap().unwrap();
        assert_eq!((null.kind, null.major, null.minor), ('c', 1, 3));
        assert_eq!(stat_host_node(Path::new("/")).unwrap(), None);
    }
}
