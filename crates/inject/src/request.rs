//! What a container asks for, read from its OCI spec with NVIDIA Container Toolkit semantics:
//! `NVIDIA_VISIBLE_DEVICES`, `NVIDIA_DRIVER_CAPABILITIES`, `NVIDIA_REQUIRE_*`, legacy CUDA
//! images, device-list volume mounts, CDI annotations, docker's `--gpus` hook.
//!
//! Devices are named three ways, the first found winning (NVIDIA's order): annotations whose
//! key starts with a configured prefix (`cdi.k8s.io/`; CDI names only, an unqualified id takes
//! the default kind), device-list mounts (`/var/run/nvidia-container-devices/ID` or
//! `.../cdi/VENDOR/CLASS/NAME`), `NVIDIA_VISIBLE_DEVICES`. Each name is either a GPU of this
//! host's inventory, injected natively (plain ids, and NVIDIA's `runtime.nvidia.com/gpu=ID`),
//! or a CDI name (`vendor/class=name`) to resolve from spec files.

use inventory::Capability;
use serde_json::Value;

use crate::config::Config;

/// Where device lists can be passed as volume mounts (one mount per device id).
pub const DEVICE_LIST_MOUNT_DIR: &str = "/var/run/nvidia-container-devices";
/// NVIDIA's kind for "these GPUs of this host's inventory", which needs no spec file.
pub const RUNTIME_KIND: &str = "runtime.nvidia.com/gpu";

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

/// Everything a container asks for: GPUs of this host (native injection) and CDI devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    /// GPUs from this host's inventory; `None` when none are asked for that way.
    pub native: Option<Devices>,
    /// CDI names (`vendor/class=name`) to resolve from spec files, in the order asked, once
    /// each.
    pub cdi: Vec<String>,
    /// Where the names came from, for messages.
    pub source: Source,
    pub capabilities: Vec<Capability>,
    /// One entry per `NVIDIA_REQUIRE_*` variable: (variable name, expression).
    pub requirements: Vec<(String, String)>,
    pub disable_require: bool,
}

impl Asked {
    /// The native request for `devices`.
    pub fn request(&self, devices: Devices) -> Request {
        Request {
            devices,
            capabilities: self.capabilities.clone(),
            requirements: self.requirements.clone(),
            disable_require: self.disable_require,
        }
    }
}

/// Where a container named its devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Annotations,
    Mounts,
    Env,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::Annotations => "the CDI annotations",
            Source::Mounts => "the device-list mounts",
            Source::Env => "NVIDIA_VISIBLE_DEVICES",
        })
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    #[error(
        "{from}: the CDI name {name:?} and the plain device id {id:?} cannot be mixed; name \
         every device one way, e.g. {RUNTIME_KIND}={id} for this host's GPU {id}, or plain ids \
         only"
    )]
    MixedNames {
        from: Source,
        name: String,
        id: String,
    },
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

/// Reads the request; `Ok(None)` when the container asks for no device at all.
pub fn parse(spec: &Value, config: &Config) -> Result<Option<Asked>, RequestError> {
    let env = Env::from_spec(spec);
    let legacy_cuda = env.get("CUDA_VERSION").filter(|v| !v.is_empty());
    let is_legacy = legacy_cuda.is_some() && env.get("NVIDIA_REQUIRE_CUDA").is_none();

    // As NVIDIA's toolkit: annotations win, then a device list mounted by a trusted plugin,
    // then the env.
    let named = if let Some(names) = names_from_annotations(spec, config) {
        Some((Source::Annotations, names))
    } else if let Some(names) = config
        .accept_volume_mounts
        .then(|| names_from_mounts(spec))
        .flatten()
    {
        Some((Source::Mounts, names))
    } else if config.accept_envvar_unprivileged || is_privileged(spec) {
        match env.get("NVIDIA_VISIBLE_DEVICES") {
            Some(value) => names_from_value(value).map(|names| (Source::Env, names)),
            None if is_legacy => Some((Source::Env, Names::Native(Devices::All))),
            None => None,
        }
    } else {
        None
    };
    let Some((source, names)) = named else {
        return Ok(None);
    };
    let (native, cdi) = split_names(names, source)?;

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

    Ok(Some(Asked {
        native,
        cdi,
        source,
        capabilities,
        requirements,
        disable_require,
    }))
}

/// Device names as one source gives them.
#[derive(Debug)]
enum Names {
    Native(Devices),
    /// Each item: a CDI name (`vendor/class=name`), or a plain id.
    List(Vec<String>),
}

/// Whether `id` is a CDI name: `vendor/class=name`.
pub fn is_qualified(id: &str) -> bool {
    id.split_once('=')
        .is_some_and(|(kind, name)| !name.is_empty() && kind.split_once('/').is_some())
}

/// Native GPUs (plain ids and `runtime.nvidia.com/gpu=ID`) and CDI names. A list naming
/// devices both ways is refused: NVIDIA's toolkit reads such a list in one mode only and
/// silently drops the rest.
fn split_names(
    names: Names,
    source: Source,
) -> Result<(Option<Devices>, Vec<String>), RequestError> {
    let ids = match names {
        Names::Native(devices) => return Ok((Some(devices), Vec::new())),
        Names::List(ids) => ids,
    };
    let plain = ids.iter().find(|id| !is_qualified(id));
    let named = ids.iter().find(|id| is_qualified(id));
    if let (Some(id), Some(name)) = (plain, named) {
        return Err(RequestError::MixedNames {
            from: source,
            name: name.clone(),
            id: id.clone(),
        });
    }
    let mut native: Vec<String> = Vec::new();
    let mut cdi: Vec<String> = Vec::new();
    for id in ids {
        match id
            .strip_prefix(RUNTIME_KIND)
            .and_then(|n| n.strip_prefix('='))
        {
            Some(gpu) => native.push(gpu.to_owned()),
            None if is_qualified(&id) => {
                if !cdi.contains(&id) {
                    cdi.push(id)
                }
            }
            None => native.push(id),
        }
    }
    let native = if native.is_empty() {
        None
    } else if native.iter().any(|id| id == "all") {
        Some(Devices::All)
    } else {
        Some(Devices::List(native))
    };
    Ok((native, cdi))
}

/// CDI names from the annotations whose key starts with a configured prefix (value: a
/// comma-separated list; an unqualified id takes the default kind), in key order.
fn names_from_annotations(spec: &Value, config: &Config) -> Option<Names> {
    let annotations = spec.get("annotations")?.as_object()?;
    let mut names: Vec<String> = Vec::new();
    for (key, value) in annotations {
        if !config
            .cdi_annotation_prefixes
            .iter()
            .any(|prefix| key.starts_with(prefix.as_str()))
        {
            continue;
        }
        let Some(value) = value.as_str() else {
            continue;
        };
        for id in value.split(',').map(str::trim).filter(|id| !id.is_empty()) {
            names.push(if is_qualified(id) {
                id.to_owned()
            } else {
                format!("{}={id}", config.cdi_default_kind)
            });
        }
    }
    (!names.is_empty()).then_some(Names::List(names))
}

/// Go's strconv.ParseBool, which NVIDIA's toolkit uses for NVIDIA_DISABLE_REQUIRE.
fn parse_bool(value: &str) -> bool {
    matches!(value, "1" | "t" | "T" | "true" | "TRUE" | "True")
}

fn names_from_value(value: &str) -> Option<Names> {
    let value = value.trim();
    match value {
        "" | "void" => None,
        "none" => Some(Names::Native(Devices::NoGpus)),
        "all" => Some(Names::Native(Devices::All)),
        list => {
            let ids: Vec<String> = list
                .split(',')
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .collect();
            (!ids.is_empty()).then_some(Names::List(ids))
        }
    }
}

/// A device list mounted by a trusted component (the Kubernetes device plugin): one mount of
/// `/dev/null` per device id at `DEVICE_LIST_MOUNT_DIR/<id>`, or per CDI name at
/// `DEVICE_LIST_MOUNT_DIR/cdi/<vendor>/<class>/<name>`. Only `/dev/null` counts, as in
/// NVIDIA's toolkit: whoever writes the pod spec can mount a volume (an `emptyDir`) at that
/// path, but not the host's `/dev/null` where the hardened setup forbids host paths.
fn names_from_mounts(spec: &Value) -> Option<Names> {
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
        let id = match id
            .strip_prefix("cdi/")
            .map(|n| n.split('/').collect::<Vec<_>>())
        {
            Some(parts) => match parts[..] {
                [vendor, class, name] if !vendor.is_empty() && !class.is_empty() => {
                    format!("{vendor}/{class}={name}")
                }
                _ => String::new(),
            },
            None => id.to_owned(),
        };
        if !id.is_empty() && (is_qualified(&id) || !id.contains('/')) && !ids.contains(&id) {
            ids.push(id);
        }
        seen.push(destination);
    }
    (!ids.is_empty()).then_some(Names::List(ids))
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

    fn parse_env(env: &[&str]) -> Option<Asked> {
        parse(&spec(env), &Config::default()).unwrap()
    }

    #[test]
    fn visible_devices_values() {
        assert_eq!(parse_env(&[]), None);
        assert_eq!(parse_env(&["NVIDIA_VISIBLE_DEVICES="]), None);
        assert_eq!(parse_env(&["NVIDIA_VISIBLE_DEVICES=void"]), None);
        assert_eq!(
            parse_env(&["NVIDIA_VISIBLE_DEVICES=none"]).unwrap().native,
            Some(Devices::NoGpus)
        );
        assert_eq!(
            parse_env(&["NVIDIA_VISIBLE_DEVICES=all"]).unwrap().native,
            Some(Devices::All)
        );
        assert_eq!(
            parse_env(&["NVIDIA_VISIBLE_DEVICES= 1, GPU-abc ,"])
                .unwrap()
                .native,
            Some(Devices::List(vec!["1".into(), "GPU-abc".into()]))
        );
        let asked =
            parse_env(&["NVIDIA_VISIBLE_DEVICES=nvidia.com/gpu=2, example.com/x=a"]).unwrap();
        assert_eq!(asked.native, None);
        assert_eq!(asked.cdi, ["nvidia.com/gpu=2", "example.com/x=a"]);
        assert_eq!(asked.source, Source::Env);
        // NVIDIA's kind for this host's GPUs: native, no spec file
        let asked = parse_env(&[
            "NVIDIA_VISIBLE_DEVICES=runtime.nvidia.com/gpu=1,runtime.nvidia.com/gpu=GPU-x",
        ])
        .unwrap();
        assert_eq!(
            asked.native,
            Some(Devices::List(vec!["1".into(), "GPU-x".into()]))
        );
        assert!(asked.cdi.is_empty());
        assert_eq!(
            parse_env(&["NVIDIA_VISIBLE_DEVICES=runtime.nvidia.com/gpu=all"])
                .unwrap()
                .native,
            Some(Devices::All)
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
        assert_eq!(req.native, Some(Devices::All));
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
        assert_eq!(
            parse(&s, &config).unwrap().unwrap().native,
            Some(Devices::All)
        );

        let mut s = spec(&["NVIDIA_VISIBLE_DEVICES=all"]);
        s["mounts"] = json!([
            {"destination": "/var/run/nvidia-container-devices/GPU-1", "source": "/dev/null"},
            {"destination": "/var/run/nvidia-container-devices//3/", "source": "/dev//null"},
            {"destination": "/var/run/nvidia-container-devices/3", "source": "/dev/null"},
            {"destination": "/proc", "source": "proc"}
        ]);
        assert_eq!(
            parse(&s, &config).unwrap().unwrap().native,
            Some(Devices::List(vec!["GPU-1".into(), "3".into()]))
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
            parse(&s, &config).unwrap().unwrap().native,
            Some(Devices::List(vec!["2".into()]))
        );
    }

    #[test]
    fn cdi_device_list_mounts_name_cdi_devices() {
        let config = Config {
            accept_volume_mounts: true,
            ..Config::default()
        };
        let mut s = spec(&["NVIDIA_VISIBLE_DEVICES=all"]);
        s["mounts"] = json!([
            {"destination": "/var/run/nvidia-container-devices/cdi/nvidia.com/gpu/0", "source": "/dev/null"},
            {"destination": "/var/run/nvidia-container-devices/cdi/example.com/dev/a", "source": "/dev/null"},
            {"destination": "/var/run/nvidia-container-devices/cdi/example.com/dev/a/", "source": "/dev/null"},
            {"destination": "/var/run/nvidia-container-devices/cdi/nvidia.com/gpu", "source": "/dev/null"},
            {"destination": "/var/run/nvidia-container-devices/cdi/x.com/gpu/1", "source": "/tmp/f"},
        ]);
        let asked = parse(&s, &config).unwrap().unwrap();
        assert_eq!(asked.source, Source::Mounts);
        assert_eq!(asked.native, None);
        assert_eq!(asked.cdi, ["nvidia.com/gpu=0", "example.com/dev=a"]);
        s["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/var/run/nvidia-container-devices/GPU-7", "source": "/dev/null"}),
        );
        let err = parse(&s, &config).unwrap_err();
        assert_eq!(
            err,
            RequestError::MixedNames {
                from: Source::Mounts,
                name: "nvidia.com/gpu=0".into(),
                id: "GPU-7".into()
            }
        );
    }

    #[test]
    fn annotations_win_and_take_the_default_kind() {
        let mut s = spec(&["NVIDIA_VISIBLE_DEVICES=all"]);
        s["annotations"] = json!({
            "cdi.k8s.io/b": "example.com/dev=a, 3",
            "cdi.k8s.io/a": "nvidia.com/gpu=1",
            "other.io/x": "nvidia.com/gpu=2",
            "cdi.k8s.io/c": "",
        });
        let asked = parse(&s, &Config::default()).unwrap().unwrap();
        assert_eq!(asked.source, Source::Annotations);
        assert_eq!(asked.native, None);
        // in the annotations' order, as config.json has them
        assert_eq!(
            asked.cdi,
            ["example.com/dev=a", "nvidia.com/gpu=3", "nvidia.com/gpu=1"]
        );
        let config = Config {
            cdi_annotation_prefixes: vec!["other.io/".into()],
            cdi_default_kind: "example.com/dev".into(),
            ..Config::default()
        };
        // the default kind makes every unqualified id a name: nothing mixes
        s["annotations"]["other.io/y"] = json!("b,runtime.nvidia.com/gpu=0");
        let asked = parse(&s, &config).unwrap().unwrap();
        assert_eq!(asked.cdi, ["nvidia.com/gpu=2", "example.com/dev=b"]);
        assert_eq!(asked.native, Some(Devices::List(vec!["0".into()])));
        // annotations that name nothing leave the env in charge
        s["annotations"] = json!({"cdi.k8s.io/x": " , "});
        let asked = parse(&s, &Config::default()).unwrap().unwrap();
        assert_eq!(
            (asked.source, asked.native),
            (Source::Env, Some(Devices::All))
        );
    }

    #[test]
    fn names_and_plain_ids_do_not_mix() {
        let err = parse(
            &spec(&["NVIDIA_VISIBLE_DEVICES=0,nvidia.com/gpu=1"]),
            &Config::default(),
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(message.contains("\"nvidia.com/gpu=1\""), "{message}");
        assert!(message.contains("\"0\""), "{message}");
        assert!(message.contains("runtime.nvidia.com/gpu=0"), "{message}");
        assert!(parse(
            &spec(&["NVIDIA_VISIBLE_DEVICES=runtime.nvidia.com/gpu=0,1"]),
            &Config::default()
        )
        .is_err());
        assert!(is_qualified("a.b/c=d") && !is_qualified("GPU-1") && !is_qualified("a=b"));
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
