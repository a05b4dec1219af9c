//! What a container asks for, read from its OCI spec with NVIDIA Container Toolkit semantics:
//! `NVIDIA_VISIBLE_DEVICES`, `NVIDIA_DRIVER_CAPABILITIES`, `NVIDIA_REQUIRE_*`, legacy CUDA
//! images, device-list volume mounts, docker's `--gpus` hook.

use inventory::Capability;
use serde_json::Value;

use crate::config::Config;

/// Where device lists can be passed as volume mounts (one mount per device id).
pub const DEVICE_LIST_MOUNT_DIR: &str = "/var/run/nvidia-container-devices";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Devices {
    /// Every GPU of the host.
    All,
    /// Driver files and control nodes, but no GPU (`none`).
    NoGpus,
    /// Indices, UUIDs or PCI bus ids, as given.
    List(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub devices: Devices,
    pub capabilities: Vec<Capability>,
    /// One entry per `NVIDIA_REQUIRE_*` variable: (variable name, expression).
    pub requirements: Vec<(String, String)>,
    pub disable_require: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("NVIDIA_DRIVER_CAPABILITIES: unknown capability {0:?} (known: compute, compat32, graphics, utility, video, display, ngx, all)")]
    UnknownCapability(String),
    #[error("config.json has no process.env list")]
    BadEnv,
}

/// The spec's environment, last value of a name winning (as execve's consumers see it).
pub struct Env<'a>(Vec<(&'a str, &'a str)>);

impl<'a> Env<'a> {
    pub fn from_spec(spec: &'a Value) -> Self {
        let list = spec
            .pointer("/process/env")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .filter_map(|entry| entry.split_once('='))
                    .collect()
            })
            .unwrap_or_default();
        Env(list)
    }

    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.0
            .iter()
            .rev()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| *value)
    }

    fn with_prefix(&self, prefix: &str) -> Vec<(&'a str, &'a str)> {
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for &(key, value) in self.0.iter().rev() {
            if key.starts_with(prefix) && !seen.iter().any(|(k, _)| *k == key) {
                seen.push((key, value));
            }
        }
        seen.sort();
        seen
    }
}

/// Reads the request; `Ok(None)` when the container asks for no GPU support at all.
pub fn parse(spec: &Value, config: &Config) -> Result<Option<Request>, RequestError> {
    let env = Env::from_spec(spec);
    let legacy_cuda = env.get("CUDA_VERSION").filter(|v| !v.is_empty());
    let is_legacy = legacy_cuda.is_some() && env.get("NVIDIA_REQUIRE_CUDA").is_none();

    let from_mounts = if config.accept_volume_mounts {
        devices_from_mounts(spec)
    } else {
        None
    };
    let envvar_allowed = config.accept_envvar_unprivileged || is_privileged(spec);
    let from_env = if envvar_allowed {
        match env.get("NVIDIA_VISIBLE_DEVICES") {
            Some(value) => devices_from_value(value),
            None if is_legacy => Some(Devices::All),
            None => None,
        }
    } else {
        None
    };
    // As NVIDIA's toolkit: a device list mounted by a trusted plugin wins over the env.
    let Some(devices) = from_mounts.or(from_env) else {
        return Ok(None);
    };

    let capabilities = parse_capabilities(env.get("NVIDIA_DRIVER_CAPABILITIES"), config)?;

    let mut requirements: Vec<(String, String)> = env
        .with_prefix("NVIDIA_REQUIRE_")
        .into_iter()
        .filter(|(_, value)| !value.trim().is_empty())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    if let (true, Some(version)) = (is_legacy, legacy_cuda) {
        let major_minor: Vec<&str> = version.split('.').take(2).collect();
        requirements.push((
            "CUDA_VERSION".to_owned(),
            format!("cuda>={}", major_minor.join(".")),
        ));
    }
    let disable_require =
        config.disable_require || env.get("NVIDIA_DISABLE_REQUIRE").is_some_and(parse_bool);

    Ok(Some(Request {
        devices,
        capabilities,
        requirements,
        disable_require,
    }))
}

/// Go's strconv.ParseBool, which NVIDIA's toolkit uses for NVIDIA_DISABLE_REQUIRE.
fn parse_bool(value: &str) -> bool {
    matches!(value, "1" | "t" | "T" | "true" | "TRUE" | "True")
}

fn devices_from_value(value: &str) -> Option<Devices> {
    let value = value.trim();
    match value {
        "" | "void" => None,
        "none" => Some(Devices::NoGpus),
        "all" => Some(Devices::All),
        list => {
            let ids: Vec<String> = list
                .split(',')
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(strip_cdi_kind)
                .collect();
            if ids.iter().any(|id| id == "all") {
                Some(Devices::All)
            } else if ids.is_empty() {
                None
            } else {
                Some(Devices::List(ids))
            }
        }
    }
}

/// `nvidia.com/gpu=0` names the same GPU as `0`: accept CDI-style names for NVIDIA's kind.
fn strip_cdi_kind(id: &str) -> String {
    id.strip_prefix("nvidia.com/gpu=").unwrap_or(id).to_owned()
}

/// A device list mounted by a trusted component (the Kubernetes device plugin): one mount of
/// `/dev/null` per device id at `DEVICE_LIST_MOUNT_DIR/<id>`. Only `/dev/null` counts, as in
/// NVIDIA's toolkit: whoever writes the pod spec can mount a volume (an `emptyDir`) at that
/// path, but not the host's `/dev/null` where the hardened setup forbids host paths.
fn devices_from_mounts(spec: &Value) -> Option<Devices> {
    let mut seen: Vec<String> = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    for mount in spec.get("mounts").and_then(Value::as_array)? {
        let field = |name| mount.get(name).and_then(Value::as_str).map(clean_path);
        let (Some(source), Some(destination)) = (field("source"), field("destination")) else {
            continue;
        };
        if source != "/dev/null" || seen.contains(&destination) {
            continue;
        }
        let Some(id) = destination
            .strip_prefix(DEVICE_LIST_MOUNT_DIR)
            .and_then(|rest| rest.strip_prefix('/'))
        else {
            continue;
        };
        let id = strip_cdi_kind(id);
        if !id.is_empty() && !id.contains('/') {
            ids.push(id);
        }
        seen.push(destination);
    }
    if ids.is_empty() {
        None
    } else if ids.iter().any(|id| id == "all") {
        Some(Devices::All)
    } else {
        Some(Devices::List(ids))
    }
}

/// Lexically cleaned, as Go's `filepath.Clean` (which NVIDIA's toolkit applies to both ends of
/// a mount): `/dev//null` is `/dev/null`, `/a/b/../c/` is `/a/c`.
fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    if path.starts_with('/') {
        format!("/{}", parts.join("/"))
    } else {
        parts.join("/")
    }
}

/// NVIDIA's definition: a container is privileged when its bounding set has CAP_SYS_ADMIN.
fn is_privileged(spec: &Value) -> bool {
    spec.pointer("/process/capabilities/bounding")
        .and_then(Value::as_array)
        .is_some_and(|caps| caps.iter().any(|cap| cap == "CAP_SYS_ADMIN"))
}

fn parse_capabilities(
    value: Option<&str>,
    config: &Config,
) -> Result<Vec<Capability>, RequestError> {
    let value = value.map(str::trim).unwrap_or_default();
    let requested: Vec<Capability> = if value.is_empty() {
        vec![Capability::Utility, Capability::Compute]
    } else {
        let mut caps = Vec::new();
        for name in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if name == "all" {
                caps = Capability::ALL.to_vec();
                break;
            }
            let cap: Capability = name
                .parse()
                .map_err(|_| RequestError::UnknownCapability(name.to_owned()))?;
            if !caps.contains(&cap) {
                caps.push(cap);
            }
        }
        caps
    };
    // Capabilities the operator did not allow are dropped, as NVIDIA's hook does.
    Ok(requested
        .into_iter()
        .filter(|cap| config.supported_capabilities.contains(cap))
        .collect())
}

/// Docker's `--gpus` is a prestart hook to NVIDIA's hook binary; we inject natively instead,
/// so the hook must go (else it would run, and inject a second time where it exists).
pub fn remove_gpu_hooks(spec: &mut Value) -> bool {
    let Some(prestart) = spec
        .pointer_mut("/hooks/prestart")
        .and_then(Value::as_array_mut)
    else {
        return false;
    };
    let before = prestart.len();
    prestart.retain(|hook| !is_nvidia_hook(hook));
    before != prestart.len()
}

fn is_nvidia_hook(hook: &Value) -> bool {
    hook.get("path")
        .and_then(Value::as_str)
        .is_some_and(|path| {
            path.ends_with("/nvidia-container-runtime-hook")
                || path == "nvidia-container-runtime-hook"
                || path.ends_with("/nvidia-container-toolkit")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(env: &[&str]) -> Value {
        json!({"process": {"env": env, "capabilities": {"bounding": ["CAP_CHOWN"]}}})
    }

    fn parse_env(env: &[&str]) -> Option<Request> {
        parse(&spec(env), &Config::default()).unwrap()
    }

    #[test]
    fn visible_devices_values() {
        assert_eq!(parse_env(&[]), None);
        assert_eq!(parse_env(&["NVIDIA_VISIBLE_DEVICES="]), None);
        assert_eq!(parse_env(&["NVIDIA_VISIBLE_DEVICES=void"]), None);
        assert_eq!(
            parse_env(&["NVIDIA_VISIBLE_DEVICES=none"]).unwrap().devices,
            Devices::NoGpus
        );
        assert_eq!(
            parse_env(&["NVIDIA_VISIBLE_DEVICES=all"]).unwrap().devices,
            Devices::All
        );
        assert_eq!(
            parse_env(&["NVIDIA_VISIBLE_DEVICES= 1, GPU-abc ,"])
                .unwrap()
                .devices,
            Devices::List(vec!["1".into(), "GPU-abc".into()])
        );
        assert_eq!(
            parse_env(&["NVIDIA_VISIBLE_DEVICES=nvidia.com/gpu=2"])
                .unwrap()
                .devices,
            Devices::List(vec!["2".into()])
        );
        // the last definition wins, as for the process itself
        assert_eq!(
            parse_env(&["NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_VISIBLE_DEVICES=void"]),
            None
        );
    }

    #[test]
    fn capabilities_default_all_and_unknown() {
        let req = parse_env(&["NVIDIA_VISIBLE_DEVICES=all"]).unwrap();
        assert_eq!(
            req.capabilities,
            vec![Capability::Utility, Capability::Compute]
        );
        let req = parse_env(&[
            "NVIDIA_VISIBLE_DEVICES=all",
            "NVIDIA_DRIVER_CAPABILITIES=all",
        ])
        .unwrap();
        assert_eq!(req.capabilities.len(), 7);
        let req = parse_env(&[
            "NVIDIA_VISIBLE_DEVICES=all",
            "NVIDIA_DRIVER_CAPABILITIES=video,graphics,video",
        ])
        .unwrap();
        assert_eq!(
            req.capabilities,
            vec![Capability::Video, Capability::Graphics]
        );
        let err = parse(
            &spec(&[
                "NVIDIA_VISIBLE_DEVICES=all",
                "NVIDIA_DRIVER_CAPABILITIES=compute,warp",
            ]),
            &Config::default(),
        )
        .unwrap_err();
        assert_eq!(err, RequestError::UnknownCapability("warp".into()));
    }

    #[test]
    fn unsupported_capabilities_are_dropped() {
        let config = Config {
            supported_capabilities: vec![Capability::Utility],
            ..Config::default()
        };
        let req = parse(&spec(&["NVIDIA_VISIBLE_DEVICES=0"]), &config)
            .unwrap()
            .unwrap();
        assert_eq!(req.capabilities, vec![Capability::Utility]);
    }

    #[test]
    fn legacy_cuda_images_get_all_gpus_and_a_cuda_requirement() {
        let req = parse_env(&["CUDA_VERSION=11.8.0"]).unwrap();
        assert_eq!(req.devices, Devices::All);
        assert_eq!(
            req.requirements,
            vec![("CUDA_VERSION".into(), "cuda>=11.8".into())]
        );
        // a modern image (with NVIDIA_REQUIRE_CUDA) asks for nothing by default
        assert_eq!(
            parse_env(&["CUDA_VERSION=12.2.0", "NVIDIA_REQUIRE_CUDA=cuda>=12.2"]),
            None
        );
    }

    #[test]
    fn requirements_and_disable() {
        let req = parse_env(&[
            "NVIDIA_VISIBLE_DEVICES=all",
            "NVIDIA_REQUIRE_CUDA=cuda>=12.0 brand=tesla,driver>=470",
            "NVIDIA_REQUIRE_ARCH=arch>=7.0",
            "NVIDIA_DISABLE_REQUIRE=true",
        ])
        .unwrap();
        assert_eq!(req.requirements.len(), 2);
        assert_eq!(req.requirements[0].0, "NVIDIA_REQUIRE_ARCH");
        assert!(req.disable_require);
        let req = parse_env(&["NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DISABLE_REQUIRE=no"]).unwrap();
        assert!(!req.disable_require);
    }

    #[test]
    fn unprivileged_envvar_policy_and_volume_mounts() {
        let config = Config {
            accept_envvar_unprivileged: false,
            accept_volume_mounts: true,
            ..Config::default()
        };
        let mut s = spec(&["NVIDIA_VISIBLE_DEVICES=all"]);
        assert_eq!(parse(&s, &config).unwrap(), None);

        s["process"]["capabilities"]["bounding"] = json!(["CAP_SYS_ADMIN"]);
        assert_eq!(parse(&s, &config).unwrap().unwrap().devices, Devices::All);

        let mut s = spec(&["NVIDIA_VISIBLE_DEVICES=all"]);
        s["mounts"] = json!([
            {"destination": "/var/run/nvidia-container-devices/GPU-1", "source": "/dev/null"},
            {"destination": "/var/run/nvidia-container-devices//3/", "source": "/dev//null"},
            {"destination": "/var/run/nvidia-container-devices/3", "source": "/dev/null"},
            {"destination": "/var/run/nvidia-container-devices/nvidia.com/gpu=4", "source": "/dev/null"},
            {"destination": "/proc", "source": "proc"}
        ]);
        assert_eq!(
            parse(&s, &config).unwrap().unwrap().devices,
            Devices::List(vec!["GPU-1".into(), "3".into(), "4".into()])
        );
    }

    #[test]
    fn device_list_mounts_count_only_from_dev_null() {
        let config = Config {
            accept_envvar_unprivileged: false,
            accept_volume_mounts: true,
            ..Config::default()
        };
        let mut s = spec(&["NVIDIA_VISIBLE_DEVICES=all"]);
        // an emptyDir, a host file, a tmpfs: anyone may mount those at the path
        s["mounts"] = json!([
            {"destination": "/var/run/nvidia-container-devices/all", "source": "/var/lib/kubelet/pods/x/volumes/kubernetes.io~empty-dir/d"},
            {"destination": "/var/run/nvidia-container-devices/0", "source": "/etc/hostname"},
            {"destination": "/var/run/nvidia-container-devices/1", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/var/run/nvidia-container-devices/2"}
        ]);
        assert_eq!(parse(&s, &config).unwrap(), None);
        s["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/var/run/nvidia-container-devices/2", "source": "/dev/null"}),
        );
        assert_eq!(
            parse(&s, &config).unwrap().unwrap().devices,
            Devices::List(vec!["2".into()])
        );
    }

    #[test]
    fn paths_are_cleaned_like_go() {
        for (raw, clean) in [
            ("/dev//null", "/dev/null"),
            ("/a/./b/../c/", "/a/c"),
            ("/../x", "/x"),
            ("/", "/"),
            ("a//b", "a/b"),
        ] {
            assert_eq!(clean_path(raw), clean, "{raw}");
        }
    }

    #[test]
    fn docker_gpus_hook_is_removed() {
        let mut s = json!({"hooks": {"prestart": [
            {"path": "/usr/bin/nvidia-container-runtime-hook", "args": ["nvidia-container-runtime-hook", "prestart"]},
            {"path": "/usr/bin/other-hook"}
        ]}});
        assert!(remove_gpu_hooks(&mut s));
        assert_eq!(s["hooks"]["prestart"].as_array().unwrap().len(), 1);
        assert!(!remove_gpu_hooks(&mut s));
    }
}
