//! Writing edits into the OCI spec, kept as `serde_json::Value` so fields we do not model
//! survive byte for byte in meaning.

use std::path::Path;

use serde_json::{json, Map, Value};

use crate::plan::{Edits, MOUNT_OPTIONS};

/// Set on a spec we have injected into; a second `create` on the same bundle sees it and
/// does nothing.
pub const MARKER_ANNOTATION: &str = "io.github.nvidia-runtime.injected";

pub fn already_injected(spec: &Value) -> bool {
    spec.pointer(&format!(
        "/annotations/{}",
        MARKER_ANNOTATION.replace('/', "~1")
    ))
    .is_some()
}

pub fn mark(spec: &mut Value, summary: &str) {
    object_at(spec, "annotations").insert(MARKER_ANNOTATION.into(), json!(summary));
}

fn object_at<'a>(parent: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    let Value::Object(map) = parent else {
        unreachable!("callers pass objects");
    };
    let entry = map.entry(key).or_insert_with(|| json!({}));
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

/// Adds the edits; `ld_cache` is the host file to mount over the image's `/etc/ld.so.cache`.
pub fn apply(spec: &mut Value, edits: &Edits, ld_cache: Option<&Path>) {
    if !spec.is_object() {
        *spec = json!({});
    }
    {
        let linux = object_at(spec, "linux");
        let devices = array_at(linux, "devices");
        for node in &edits.devices {
            let path = node.container_path.to_string_lossy();
            if devices
                .iter()
                .any(|d| d.get("path").and_then(Value::as_str) == Some(&path))
            {
                continue;
            }
            devices.push(json!({
                "path": path,
                "type": "c",
                "major": node.major,
                "minor": node.minor,
                "fileMode": node.mode & 0o7777,
                "uid": node.uid,
                "gid": node.gid,
            }));
        }
        let resources = linux.entry("resources").or_insert_with(|| json!({}));
        if let Value::Object(resources) = resources {
            let rules = array_at(resources, "devices");
            for node in &edits.devices {
                rules.push(json!({
                    "allow": true,
                    "type": "c",
                    "major": node.major,
                    "minor": node.minor,
                    "access": "rwm",
                }));
            }
        }
    }

    let Value::Object(root) = spec else {
        unreachable!("made an object above");
    };
    let mounts = array_at(root, "mounts");
    let mut add_mount = |source: &Path, destination: &Path| {
        let destination = destination.to_string_lossy();
        // A mount the user already asked for at the same place wins.
        if mounts
            .iter()
            .any(|m| m.get("destination").and_then(Value::as_str) == Some(&destination))
        {
            return;
        }
        mounts.push(json!({
            "destination": destination,
            "type": "bind",
            "source": source,
            "options": MOUNT_OPTIONS,
        }));
    };
    for mount in &edits.mounts {
        add_mount(&mount.host, &mount.container);
    }
    if let Some(cache) = ld_cache {
        add_mount(cache, Path::new("/etc/ld.so.cache"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::BindMount;
    use inventory::DeviceNode;

    fn node(path: &str, minor: u32) -> DeviceNode {
        DeviceNode {
            host_path: format!("/sim{path}").into(),
            container_path: path.into(),
            major: 195,
            minor,
            mode: 0o20666,
            uid: 0,
            gid: 44,
        }
    }

    #[test]
    fn devices_rules_and_mounts_are_added_once() {
        let edits = Edits {
            devices: vec![node("/dev/nvidiactl", 255), node("/dev/nvidia1", 1)],
            mounts: vec![BindMount {
                host: "/sim/libcuda.so.1".into(),
                container: "/usr/lib/x86_64-linux-gnu/libcuda.so.1".into(),
            }],
            ..Edits::default()
        };
        let mut spec = json!({
            "process": {"args": ["sh"]},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
            "linux": {"devices": [{"path": "/dev/nvidiactl", "type": "c", "major": 195, "minor": 255}],
                      "resources": {"devices": [{"allow": false, "access": "rwm"}]}},
            "unknownField": {"kept": true}
        });
        apply(&mut spec, &edits, Some(Path::new("/state/ld.so.cache")));
        assert_eq!(spec["linux"]["devices"].as_array().unwrap().len(), 2);
        assert_eq!(spec["linux"]["devices"][1]["fileMode"], 0o666);
        assert_eq!(spec["linux"]["devices"][1]["gid"], 44);
        let rules = spec["linux"]["resources"]["devices"].as_array().unwrap();
        assert_eq!(rules.len(), 3);
        assert_eq!(
            rules[0]["allow"], false,
            "the default deny rule stays first"
        );
        assert_eq!(rules[2]["minor"], 1);
        let mounts = spec["mounts"].as_array().unwrap();
        assert_eq!(mounts.len(), 3);
        assert_eq!(
            mounts[1]["options"],
            json!(["ro", "nosuid", "nodev", "bind"])
        );
        assert_eq!(mounts[2]["destination"], "/etc/ld.so.cache");
        assert_eq!(spec["unknownField"]["kept"], true);
    }

    #[test]
    fn marker_round_trip() {
        let mut spec = json!({});
        assert!(!already_injected(&spec));
        mark(&mut spec, "gpus=0");
        assert!(already_injected(&spec));
    }
}
