//! The CDI spec document, field for field. Unknown fields are refused (serde's
//! `deny_unknown_fields`): a spec written for a newer CDI version than we know must not be
//! half-applied.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Format, SpecError};
use crate::version::{minimum_version, Version};

/// Largest spec file read, in bytes. NVIDIA's generated specs for a full 8-GPU host with MIG
/// are a few hundred KiB; anything much larger is not a spec.
pub const MAX_SPEC_BYTES: usize = 4 << 20;

/// Most uses of one YAML anchor (`*name`) in a spec.
pub const MAX_ALIAS_USES: usize = 16;

/// One spec file: a kind (`vendor/class`) and the devices of that kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Spec {
    /// `MAJOR.MINOR.PATCH` of the CDI spec the document follows.
    pub cdi_version: String,
    /// `vendor/class`, e.g. `nvidia.com/gpu`.
    pub kind: String,
    /// Since CDI 0.6.0.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// At least one. (Absent is read as empty, so validation can say so in its own words.)
    #[serde(default)]
    pub devices: Vec<Device>,
    /// Edits every device of this spec brings along.
    #[serde(default, skip_serializing_if = "ContainerEdits::is_empty")]
    pub container_edits: ContainerEdits,
}

/// One device of a spec, requested as `kind=name`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Device {
    /// The part after `=` in `vendor/class=name`.
    pub name: String,
    /// Since CDI 0.6.0.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Optional in the spec's prose, but a device without edits is refused by validation.
    #[serde(default)]
    pub container_edits: ContainerEdits,
}

/// What a device (or a whole spec) changes in a container's OCI spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerEdits {
    /// `NAME=value` entries for `process.env`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_nodes: Vec<DeviceNode>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    /// Since CDI 0.7.0. One per container: when several edits set it, the last one applied
    /// wins, whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intel_rdt: Option<IntelRdt>,
    /// Groups added to `process.user.additionalGids`; 0 is ignored. Since CDI 0.7.0.
    #[serde(
        default,
        rename = "additionalGids",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub additional_gids: Vec<u32>,
    /// Since CDI 1.1.0.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub net_devices: Vec<NetDevice>,
}

impl ContainerEdits {
    /// Whether these edits change nothing.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// Adds `other`'s edits after these, as a runtime applies several devices in order: lists
    /// are concatenated, and `other`'s `intelRdt`, when set, replaces this one (a container has
    /// one; the reference implementation does the same).
    pub fn append(&mut self, other: &ContainerEdits) {
        self.env.extend_from_slice(&other.env);
        self.device_nodes.extend_from_slice(&other.device_nodes);
        self.hooks.extend_from_slice(&other.hooks);
        self.mounts.extend_from_slice(&other.mounts);
        if other.intel_rdt.is_some() {
            self.intel_rdt.clone_from(&other.intel_rdt);
        }
        self.additional_gids
            .extend_from_slice(&other.additional_gids);
        self.net_devices.extend_from_slice(&other.net_devices);
    }
}

/// A device node to create in the container (and allow in its device cgroup).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeviceNode {
    /// Absolute path inside the container.
    pub path: String,
    /// Absolute path of the node on the host, when it differs from `path` (since CDI 0.5.0).
    /// Empty means absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<String>,
    /// `c`, `b`, `u` or `p`; read from the host node when absent or empty.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Read from the host node when absent (and `type` is absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub major: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor: Option<i64>,
    /// Permission bits of the node created in the container; read from the host node when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_mode: Option<u32>,
    /// cgroup access, any of `r`, `w`, `m`; `rwm` when absent or empty; `none` for no access.
    /// See [`DeviceNode::permissions_or_default`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<String>,
    /// Owner in the container's user namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

impl DeviceNode {
    /// The `permissions` value that asks for no cgroup access at all (CDI spec).
    pub const NO_PERMISSIONS: &'static str = "none";

    /// The cgroup access to allow: `rwm` when `permissions` is absent or empty, `""` when it is
    /// `none`, else the value as written (validated to hold only `r`, `w`, `m`).
    pub fn permissions_or_default(&self) -> &str {
        match self.permissions.as_deref() {
            None | Some("") => "rwm",
            Some(Self::NO_PERMISSIONS) => "",
            Some(p) => p,
        }
    }

    /// The host node to read: `hostPath` when set and not empty, else `path`.
    pub fn host_path_or_path(&self) -> &str {
        match self.host_path.as_deref() {
            Some(h) if !h.is_empty() => h,
            _ => &self.path,
        }
    }
}

/// A mount to add to the container (OCI `mounts` entry).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Mount {
    /// The source: an absolute host path for bind mounts, else e.g. `tmpfs`.
    pub host_path: String,
    /// Absolute path inside the container.
    pub container_path: String,
    /// Since CDI 0.4.0.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// OCI mount options, e.g. `ro`, `nosuid`, `bind`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

/// An OCI hook to add to the container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Hook {
    /// An OCI hook kind: `prestart`, `createRuntime`, `createContainer`, `startContainer`,
    /// `poststart`, `poststop`.
    pub hook_name: String,
    /// Absolute path of the program.
    pub path: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Seconds, greater than zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
}

/// Intel RDT (resctrl) settings, copied whole into the OCI spec's `linux.intelRdt`.
///
/// Since CDI 0.7.0 with `closID`, `l3CacheSchema`, `memBwSchema`, `enableCMT`, `enableMBM`;
/// CDI 1.1.0 added `schemata` and `enableMonitoring` and dropped `enableCMT` and `enableMBM`
/// (as the OCI runtime spec did). Validation enforces this against `cdiVersion`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IntelRdt {
    #[serde(default, rename = "closID", skip_serializing_if = "Option::is_none")]
    pub clos_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l3_cache_schema: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_bw_schema: Option<String>,
    /// Since CDI 1.1.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schemata: Option<Vec<String>>,
    /// CDI 0.7.0 to 1.0.0 only.
    #[serde(default, rename = "enableCMT", skip_serializing_if = "Option::is_none")]
    pub enable_cmt: Option<bool>,
    /// CDI 0.7.0 to 1.0.0 only.
    #[serde(default, rename = "enableMBM", skip_serializing_if = "Option::is_none")]
    pub enable_mbm: Option<bool>,
    /// Since CDI 1.1.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_monitoring: Option<bool>,
}

/// A host network interface moved into the container's network namespace (since CDI 1.1.0).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetDevice {
    /// The interface's name on the host.
    pub host_interface_name: String,
    /// The interface's name inside the container.
    pub name: String,
}

impl Spec {
    /// Parses a spec file's bytes and checks it against the CDI spec's rules.
    ///
    /// `path` names the file in errors and picks the format: `.json` is JSON, `.yaml` and
    /// `.yml` are YAML, anything else is JSON when it starts with `{`, YAML otherwise.
    ///
    /// Errors: [`SpecError::TooLarge`] over [`MAX_SPEC_BYTES`]; [`SpecError::Parse`] for
    /// malformed input, a missing required field or an unknown one (with line, column and the
    /// field's path); [`SpecError::Invalid`] listing every rule broken (see [`Spec::validate`]).
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Spec, SpecError> {
        let spec = Self::parse_unvalidated(bytes, path)?;
        spec.validate(path)?;
        Ok(spec)
    }

    /// [`Spec::parse`] without the rule checks: only the shape of the document.
    pub fn parse_unvalidated(bytes: &[u8], path: &Path) -> Result<Spec, SpecError> {
        if bytes.len() > MAX_SPEC_BYTES {
            return Err(SpecError::TooLarge {
                path: path.to_owned(),
                size: bytes.len() as u64,
                limit: MAX_SPEC_BYTES as u64,
            });
        }
        match format_of(bytes, path) {
            Format::Json => parse_json(bytes, path),
            Format::Yaml => parse_yaml(bytes, path),
        }
    }

    /// Checks the spec against the CDI spec's rules: a known `cdiVersion` that has every field
    /// used; `kind` as `vendor/class`; at least one device, each with a valid, unique name and
    /// some edits; annotation keys as Kubernetes has them; `env` entries `NAME=value`; absolute
    /// device node, hook and mount target paths; device type `c`/`b`/`u`/`p`; permissions of
    /// `r`/`w`/`m` or `none`; OCI hook names; a positive hook timeout; Linux interface names.
    ///
    /// Errors: [`SpecError::Invalid`] with every problem found, each naming its device and
    /// field; `path` names the file.
    pub fn validate(&self, path: &Path) -> Result<(), SpecError> {
        let problems = crate::validate::problems(self);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SpecError::Invalid {
                path: path.to_owned(),
                problems,
            })
        }
    }

    /// The lowest `cdiVersion` that has every field this spec uses.
    pub fn minimum_version(&self) -> Version {
        minimum_version(self)
    }

    /// Sets `cdiVersion` to [`Spec::minimum_version`], so that the oldest consumers can read the
    /// spec (what a producer should do before writing it).
    pub fn set_minimum_version(&mut self) {
        self.cdi_version = self.minimum_version().to_string();
    }

    /// `vendor` and `class` of `kind`, when it has a `/`.
    pub fn vendor_class(&self) -> Option<(&str, &str)> {
        self.kind.split_once('/')
    }

    /// Pretty-printed JSON, fields in the spec's order, empty optional fields left out.
    pub fn to_json(&self) -> Result<String, SpecError> {
        serde_json::to_string_pretty(self)
            .map(|mut s| {
                s.push('\n');
                s
            })
            .map_err(|e| SpecError::Encode {
                format: Format::Json,
                message: e.to_string(),
            })
    }

    /// YAML, fields in the spec's order, empty optional fields left out. Strings that YAML
    /// would read as something else (e.g. `"1.0"`, `"yes"`) are quoted.
    pub fn to_yaml(&self) -> Result<String, SpecError> {
        serde_saphyr::to_string(self).map_err(|e| SpecError::Encode {
            format: Format::Yaml,
            message: e.to_string(),
        })
    }
}

/// The format `path`'s extension names; for other names, JSON when the content starts with `{`.
pub fn format_of(bytes: &[u8], path: &Path) -> Format {
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => Format::Json,
        Some("yaml" | "yml") => Format::Yaml,
        _ if bytes.trim_ascii_start().starts_with(b"{") => Format::Json,
        _ => Format::Yaml,
    }
}

fn parse_json(bytes: &[u8], path: &Path) -> Result<Spec, SpecError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let (field, err) = match serde_path_to_error::deserialize::<_, Spec>(&mut de) {
        Ok(spec) => match de.end() {
            Ok(()) => return Ok(spec),
            Err(e) => (None, e),
        },
        Err(e) => (
            Some(e.path().to_string()).filter(|f| f != "?"),
            e.into_inner(),
        ),
    };
    let (line, column) = (err.line() as u64, err.column() as u64);
    // serde_json appends " at line L column C"; the error says that once, in its own place.
    let full = err.to_string();
    let suffix = format!(" at line {line} column {column}");
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
    Err(SpecError::Parse {
        path: path.to_owned(),
        format: Format::Json,
        line: (line > 0).then_some(line),
        column: (line > 0 && column > 0).then_some(column),
        field,
        message,
    })
}

fn parse_yaml(bytes: &[u8], path: &Path) -> Result<Spec, SpecError> {
    // No CDI producer writes anchors (Go's YAML encoders never do); a hand-written spec may use
    // a few. Bounding each anchor's uses bounds the expansion to that multiple of the input.
    let mut alias_limits = serde_saphyr::options::AliasLimits::default();
    alias_limits.max_total_replayed_events = 100_000;
    alias_limits.max_replay_stack_depth = 16;
    alias_limits.max_alias_expansions_per_anchor = MAX_ALIAS_USES;
    let options = serde_saphyr::options! {
        with_snippet: false,
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
        alias_limits: alias_limits,
    };
    // The field path is kept aside and the error itself handed back, so that serde-saphyr
    // stops at it (an `Ok` would make it look past the half-read document).
    let mut field = None;
    let outcome = serde_saphyr::with_deserializer_from_slice_with_options(bytes, options, |de| {
        serde_path_to_error::deserialize::<_, Spec>(de).map_err(|e| {
            field = Some(e.path().to_string());
            e.into_inner()
        })
    });
    let err = match outcome {
        Ok(spec) => return Ok(spec),
        Err(e) => e,
    };
    let location = err.location().filter(|l| l.line() > 0);
    let full = err.to_string();
    let message = match location {
        Some(l) => {
            let suffix = format!(" at line {}, column {}", l.line(), l.column());
            full.strip_suffix(&suffix).unwrap_or(&full).to_owned()
        }
        None => full,
    };
    // Advice addressed to serde-saphyr's caller, not to the spec's author.
    let message = message.replace(", set DuplicateKeyPolicy in Options if acceptable", "");
    let field = field
        .map(|f| f.trim_end_matches(".?").to_owned())
        .filter(|f| f != "?");
    Err(SpecError::Parse {
        path: path.to_owned(),
        format: Format::Yaml,
        line: location.map(|l| l.line()),
        column: location.map(|l| l.column()),
        field,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Problem;

    const NVIDIA_YAML: &str = r#"---
cdiVersion: 0.5.0
containerEdits:
  deviceNodes:
  - path: /dev/nvidia-modeset
  - path: /dev/nvidiactl
  env:
  - NVIDIA_VISIBLE_DEVICES=void
  hooks:
  - args:
    - nvidia-cdi-hook
    - create-symlinks
    - --link
    - libcuda.so.1::/usr/lib/x86_64-linux-gnu/libcuda.so
    hookName: createContainer
    path: /usr/bin/nvidia-cdi-hook
  mounts:
  - containerPath: /usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15
    hostPath: /usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15
    options:
    - ro
    - nosuid
    - nodev
    - bind
devices:
- containerEdits:
    deviceNodes:
    - path: /dev/nvidia0
  name: "0"
- containerEdits:
    deviceNodes:
    - path: /dev/nvidia0
  name: GPU-4cf8db2d-06c0-7d70-1a51-e59b25b2c16c
kind: nvidia.com/gpu
"#;

    fn p(name: &str) -> &Path {
        Path::new(name)
    }

    fn problems(spec: &str) -> Vec<Problem> {
        match Spec::parse(spec.as_bytes(), p("t.yaml")) {
            Err(SpecError::Invalid { problems, .. }) => problems,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    fn one_device(version: &str, edits: &str) -> String {
        format!("cdiVersion: {version}\nkind: nvidia.com/gpu\ndevices:\n- name: gpu0\n  containerEdits: {edits}\n")
    }

    #[test]
    fn reads_an_nvidia_generated_spec() {
        let spec = Spec::parse(NVIDIA_YAML.as_bytes(), p("/etc/cdi/nvidia.yaml")).unwrap();
        assert_eq!(spec.devices.len(), 2);
        assert_eq!(spec.container_edits.hooks[0].hook_name, "createContainer");
        assert_eq!(spec.minimum_version(), Version::V0_5_0);
        let json = spec.to_json().unwrap();
        assert_eq!(Spec::parse(json.as_bytes(), p("x.json")).unwrap(), spec);
    }

    #[test]
    fn json_and_yaml_errors_have_file_line_column_and_field() {
        let json = r#"{"cdiVersion": "0.3.0", "kind": "a.com/b",
  "devices": [{"name": "x", "containerEdits": {"env": ["A=1"], "devicenodes": []}}]}"#;
        let err = Spec::parse(json.as_bytes(), p("/etc/cdi/a.json")).unwrap_err();
        let SpecError::Parse {
            line,
            field,
            format,
            ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!((*line, *format), (Some(2), Format::Json));
        assert_eq!(
            field.as_deref(),
            Some("devices[0].containerEdits.devicenodes")
        );
        let msg = err.to_string();
        assert!(
            msg.starts_with("CDI spec /etc/cdi/a.json, line 2, column "),
            "{msg}"
        );
        assert!(msg.contains("unknown field `devicenodes`"), "{msg}");
        assert_eq!(msg.matches("line").count(), 1, "location said once: {msg}");

        let yaml = "cdiVersion: 0.3.0\nkind: a.com/b\ndevices:\n- name: x\n  containerEdits:\n    env: [A=1]\n    mounts:\n    - hostPath: /a\n      containerPath: /a\n      readOnly: true\n";
        let err = Spec::parse(yaml.as_bytes(), p("/etc/cdi/a.yaml")).unwrap_err();
        let SpecError::Parse { line, field, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(*line, Some(10));
        assert_eq!(
            field.as_deref(),
            Some("devices[0].containerEdits.mounts[0].readOnly")
        );
        let msg = err.to_string();
        assert!(
            msg.contains("/etc/cdi/a.yaml") && msg.contains("readOnly"),
            "{msg}"
        );
        assert_eq!(msg.matches("line").count(), 1, "location said once: {msg}");

        // Type errors and syntax errors too.
        let err = Spec::parse(
            b"cdiVersion: 0.3.0\nkind: a.com/b\ndevices: {}\n",
            p("a.yaml"),
        )
        .unwrap_err();
        assert!(
            matches!(err, SpecError::Parse { line: Some(3), .. }),
            "{err}"
        );
        let err = Spec::parse(b"{\"cdiVersion\": \"0.3.0\",", p("a.json")).unwrap_err();
        assert!(
            matches!(err, SpecError::Parse { line: Some(1), .. }),
            "{err}"
        );
        let err = Spec::parse(b"kind: a.com/b\ndevices: []\n", p("a.yaml")).unwrap_err();
        assert!(err.to_string().contains("cdiVersion"), "{err}");
        let err = Spec::parse(b"", p("a.yaml")).unwrap_err();
        assert!(matches!(err, SpecError::Parse { .. }), "{err}");
        let err = Spec::parse(b"kind: a\nkind: b\n", p("a.yaml")).unwrap_err();
        assert!(err.to_string().contains("duplicate"), "{err}");
    }

    #[test]
    fn format_follows_extension_then_content() {
        assert_eq!(format_of(b"{}", p("a.yaml")), Format::Yaml);
        assert_eq!(format_of(b"a: b", p("a.json")), Format::Json);
        assert_eq!(format_of(b"a: b", p("a.yml")), Format::Yaml);
        assert_eq!(format_of(b"  {\"a\": 1}", p("-")), Format::Json);
        assert_eq!(format_of(b"a: 1", p("-")), Format::Yaml);
    }

    #[test]
    fn size_is_limited() {
        let mut big = NVIDIA_YAML.to_owned();
        big.push_str(&"#".repeat(MAX_SPEC_BYTES));
        let err = Spec::parse(big.as_bytes(), p("big.yaml")).unwrap_err();
        assert!(matches!(err, SpecError::TooLarge { .. }));
        assert!(err.to_string().contains("big.yaml"), "{err}");
    }

    #[test]
    fn anchor_uses_are_bounded() {
        let uses = |n: usize| {
            let aliases = vec!["*e"; n].join(", ");
            format!("cdiVersion: 0.3.0\nkind: a.com/b\ndevices:\n- name: x\n  containerEdits:\n    env: [&e A=1, {aliases}]\n")
        };
        let spec = Spec::parse(uses(MAX_ALIAS_USES).as_bytes(), p("ok.yaml")).unwrap();
        assert_eq!(
            spec.devices[0].container_edits.env.len(),
            MAX_ALIAS_USES + 1
        );
        let err = Spec::parse(uses(MAX_ALIAS_USES + 1).as_bytes(), p("bomb.yaml")).unwrap_err();
        assert!(
            matches!(err, SpecError::Parse { line: Some(6), .. }),
            "{err}"
        );
    }

    #[test]
    fn version_rules() {
        let ok = |v: &str, edits: &str| {
            Spec::parse(one_device(v, edits).as_bytes(), p("t.yaml"))
                .unwrap_or_else(|e| panic!("{v} {edits}: {e}"))
        };
        let bad = |v: &str, edits: &str, field: &str, want: &str| {
            let probs = problems(&one_device(v, edits));
            assert!(
                probs
                    .iter()
                    .any(|p| p.field == field && p.message.contains(want)),
                "{v} {edits}: {probs:?}"
            );
        };
        let mount_type =
            "{mounts: [{hostPath: /a, containerPath: /a, type: bind, options: [bind]}]}";
        bad(
            "0.3.0",
            mount_type,
            "containerEdits.mounts[0].type",
            "needs cdiVersion 0.4.0",
        );
        ok("0.4.0", mount_type);
        let host_path = "{deviceNodes: [{path: /dev/a, hostPath: /dev/b}]}";
        bad(
            "0.4.0",
            host_path,
            "containerEdits.deviceNodes[0].hostPath",
            "0.5.0",
        );
        ok("0.5.0", host_path);
        let gids = "{additionalGids: [44]}";
        bad("0.6.0", gids, "containerEdits.additionalGids", "0.7.0");
        ok("0.7.0", gids);
        let rdt = "{intelRdt: {closID: gpu}}";
        bad("0.6.0", rdt, "containerEdits.intelRdt", "0.7.0");
        ok("0.7.0", rdt);
        let cmt = "{intelRdt: {enableCMT: true, enableMBM: false}}";
        ok("0.7.0", cmt);
        ok("1.0.0", cmt);
        bad(
            "1.1.0",
            cmt,
            "containerEdits.intelRdt.enableCMT",
            "dropped after cdiVersion 1.0.0",
        );
        bad("1.1.0", cmt, "containerEdits.intelRdt.enableMBM", "dropped");
        let schemata = "{intelRdt: {schemata: [\"L3:0=ff\"], enableMonitoring: true}}";
        bad(
            "1.0.0",
            schemata,
            "containerEdits.intelRdt.schemata",
            "1.1.0",
        );
        bad(
            "1.0.0",
            schemata,
            "containerEdits.intelRdt.enableMonitoring",
            "1.1.0",
        );
        ok("1.1.0", schemata);
        let net = "{netDevices: [{hostInterfaceName: eth1, name: gpu-net0}]}";
        bad("1.0.0", net, "containerEdits.netDevices", "1.1.0");
        ok("1.1.0", net);

        // Digits first in a device name: 0.5.0; dots in the class and annotations: 0.6.0.
        let probs = problems("cdiVersion: 0.4.0\nkind: a.com/b\ndevices:\n- name: \"0\"\n  containerEdits: {env: [A=1]}\n");
        assert_eq!(probs[0].device.as_deref(), Some("0"));
        assert!(probs[0].message.contains("0.5.0"), "{probs:?}");
        let probs = problems("cdiVersion: 0.5.0\nkind: a.com/mig.1g\nannotations: {a: b}\ndevices:\n- name: \"0\"\n  containerEdits: {env: [A=1]}\n");
        assert_eq!(
            probs.iter().filter(|p| p.message.contains("0.6.0")).count(),
            2,
            "{probs:?}"
        );

        bad(
            "0.2.0",
            "{env: [A=1]}",
            "cdiVersion",
            "not a known CDI version",
        );
        bad(
            "2.0.0",
            "{env: [A=1]}",
            "cdiVersion",
            "not a known CDI version",
        );
    }

    #[test]
    fn edit_rules_name_device_and_field() {
        let cases = [
            ("{env: [NOEQUALS]}", "containerEdits.env[0]", "NAME=value"),
            ("{env: [\"=v\"]}", "containerEdits.env[0]", "NAME=value"),
            ("{deviceNodes: [{path: dev/x}]}", "containerEdits.deviceNodes[0].path", "absolute"),
            ("{deviceNodes: [{path: /dev/x, hostPath: x}]}", "containerEdits.deviceNodes[0].hostPath", "absolute"),
            ("{deviceNodes: [{path: /dev/x, type: z}]}", "containerEdits.deviceNodes[0].type", "c (char)"),
            ("{deviceNodes: [{path: /dev/x, permissions: rwx}]}", "containerEdits.deviceNodes[0].permissions", "r, w, m"),
            ("{deviceNodes: [{path: /dev/x, major: -1}]}", "containerEdits.deviceNodes[0].major", "negative"),
            ("{hooks: [{hookName: prestop, path: /bin/x}]}", "containerEdits.hooks[0].hookName", "createContainer"),
            ("{hooks: [{hookName: poststop, path: x}]}", "containerEdits.hooks[0].path", "absolute"),
            ("{hooks: [{hookName: poststop, path: /x, env: [X]}]}", "containerEdits.hooks[0].env[0]", "NAME=value"),
            ("{hooks: [{hookName: poststop, path: /x, timeout: 0}]}", "containerEdits.hooks[0].timeout", "greater than zero"),
            ("{mounts: [{hostPath: lib, containerPath: /lib, options: [rbind]}]}", "containerEdits.mounts[0].hostPath", "absolute"),
            ("{mounts: [{hostPath: /lib, containerPath: lib}]}", "containerEdits.mounts[0].containerPath", "absolute"),
            ("{mounts: [{hostPath: \"\", containerPath: /tmp, type: tmpfs}]}", "containerEdits.mounts[0].hostPath", "empty"),
            ("{intelRdt: {closID: \"..\"}}", "containerEdits.intelRdt.closID", "resctrl"),
            ("{netDevices: [{hostInterfaceName: eth0, name: a-very-long-interface}]}", "containerEdits.netDevices[0].name", "interface name"),
            ("{netDevices: [{hostInterfaceName: eth0, name: a}, {hostInterfaceName: eth0, name: b}]}", "containerEdits.netDevices[1].hostInterfaceName", "twice"),
            ("{}", "containerEdits", "must change something"),
        ];
        for (edits, field, want) in cases {
            let probs = problems(&one_device("1.1.0", edits));
            assert!(
                probs.iter().any(|p| p.device.as_deref() == Some("gpu0")
                    && p.field == field
                    && p.message.contains(want)),
                "{edits}: {probs:?}"
            );
            let msg = Spec::parse(one_device("1.1.0", edits).as_bytes(), p("/etc/cdi/t.yaml"))
                .unwrap_err()
                .to_string();
            assert!(
                msg.starts_with("CDI spec /etc/cdi/t.yaml: device \"gpu0\": "),
                "{msg}"
            );
        }
        // What is fine.
        for edits in [
            "{deviceNodes: [{path: /dev/x, type: c, major: 195, minor: 0, permissions: rw}]}",
            "{deviceNodes: [{path: /dev/x, permissions: none}]}",
            "{deviceNodes: [{path: /dev/x, permissions: \"\", type: \"\"}]}",
            "{mounts: [{hostPath: tmpfs, containerPath: /run/x, type: tmpfs}]}",
            "{hooks: [{hookName: prestart, path: /x, timeout: 5}]}",
            "{intelRdt: {closID: /}}",
            "{env: [\"A=\", \"B=c=d\"]}",
        ] {
            Spec::parse(one_device("1.1.0", edits).as_bytes(), p("t.yaml"))
                .unwrap_or_else(|e| panic!("{edits}: {e}"));
        }
    }

    #[test]
    fn spec_level_rules() {
        let probs = problems("cdiVersion: 1.1.0\nkind: nvidia.com\ndevices: []\n");
        assert!(
            probs
                .iter()
                .any(|p| p.field == "kind" && p.message.contains("vendor/class")),
            "{probs:?}"
        );
        assert!(
            probs
                .iter()
                .any(|p| p.field == "devices" && p.message.contains("at least one")),
            "{probs:?}"
        );

        let probs = problems("cdiVersion: 1.1.0\nkind: a.com/b\ndevices:\n- name: x\n  containerEdits: {env: [A=1]}\n- name: x\n  containerEdits: {env: [A=1]}\n- name: \"bad/name\"\n  containerEdits: {env: [A=1]}\n");
        assert!(
            probs
                .iter()
                .any(|p| p.device.as_deref() == Some("x") && p.message.contains("defined twice")),
            "{probs:?}"
        );
        assert!(
            probs
                .iter()
                .any(|p| p.device.as_deref() == Some("bad/name") && p.field == "name"),
            "{probs:?}"
        );

        let probs = problems("cdiVersion: 1.1.0\nkind: a.com/b\nannotations: {\"Bad Key\": x, \"example.com/ok\": y, \"a/b/c\": z, \"UPPER.com/fine\": v}\ndevices:\n- name: x\n  annotations: {\"-x\": y}\n  containerEdits: {env: [A=1]}\n");
        let fields: Vec<&str> = probs.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            ["annotations.Bad Key", "annotations.a/b/c", "annotations.-x"],
            "{probs:?}"
        );

        let big = "v".repeat(MAX_ANNOTATIONS_BYTES_FOR_TEST);
        let probs = problems(&format!("cdiVersion: 1.1.0\nkind: a.com/b\nannotations: {{k: {big}}}\ndevices:\n- name: x\n  containerEdits: {{env: [A=1]}}\n"));
        assert!(probs[0].message.contains("more than"), "{probs:?}");
    }
    const MAX_ANNOTATIONS_BYTES_FOR_TEST: usize = crate::validate::MAX_ANNOTATIONS_BYTES;

    /// A spec using every field its version allows (and none newer).
    fn full_spec(v: Version) -> Spec {
        let mut edits = ContainerEdits {
            env: vec!["A=1".into(), "YES=yes".into(), "N=1.0".into()],
            device_nodes: vec![DeviceNode {
                path: "/dev/nvidia0".into(),
                kind: Some("c".into()),
                major: Some(195),
                minor: Some(0),
                file_mode: Some(0o666),
                permissions: Some("rw".into()),
                uid: Some(0),
                gid: Some(44),
                ..Default::default()
            }],
            hooks: vec![Hook {
                hook_name: "createContainer".into(),
                path: "/usr/bin/hook".into(),
                args: vec![
                    "hook".into(),
                    "--flag".into(),
                    "null".into(),
                    "~".into(),
                    "".into(),
                ],
                env: vec!["X=: #".into()],
                timeout: Some(10),
            }],
            mounts: vec![Mount {
                host_path: "/usr/lib/libcuda.so.1".into(),
                container_path: "/usr/lib/libcuda.so.1".into(),
                kind: None,
                options: vec!["ro".into(), "bind".into()],
            }],
            ..Default::default()
        };
        if v >= Version::V0_4_0 {
            edits.mounts[0].kind = Some("bind".into());
        }
        if v >= Version::V0_5_0 {
            edits.device_nodes[0].host_path = Some("/dev/nvidia1".into());
        }
        if v >= Version::V0_7_0 {
            edits.additional_gids = vec![44, 0];
            edits.intel_rdt = Some(IntelRdt {
                clos_id: Some("gpu".into()),
                l3_cache_schema: Some("L3:0=ff".into()),
                mem_bw_schema: Some("MB:0=50".into()),
                ..Default::default()
            });
        }
        if (Version::V0_7_0..=Version::V1_0_0).contains(&v) {
            let rdt = edits.intel_rdt.as_mut().unwrap();
            rdt.enable_cmt = Some(true);
            rdt.enable_mbm = Some(false);
        }
        if v >= Version::V1_1_0 {
            let rdt = edits.intel_rdt.as_mut().unwrap();
            rdt.schemata = Some(vec!["L3:0=ff".into()]);
            rdt.enable_monitoring = Some(true);
            edits.net_devices = vec![NetDevice {
                host_interface_name: "eth1".into(),
                name: "net0".into(),
            }];
        }
        let mut spec = Spec {
            cdi_version: v.to_string(),
            kind: if v >= Version::V0_6_0 {
                "nvidia.com/mig.1g".into()
            } else {
                "nvidia.com/gpu".into()
            },
            devices: vec![
                Device {
                    name: "gpu0".into(),
                    container_edits: edits.clone(),
                    ..Default::default()
                },
                Device {
                    name: if v >= Version::V0_5_0 {
                        "0:1".into()
                    } else {
                        "all".into()
                    },
                    container_edits: ContainerEdits {
                        env: vec!["B=2".into()],
                        ..Default::default()
                    },
                    ..Default::default()
                },
            ],
            container_edits: edits,
            ..Default::default()
        };
        if v >= Version::V0_6_0 {
            spec.annotations
                .insert("nvidia.com/generator".into(), "yes".into());
            spec.devices[0]
                .annotations
                .insert("uuid".into(), "GPU-1".into());
        }
        spec
    }

    #[test]
    fn round_trips_every_version() {
        for v in Version::ALL {
            let spec = full_spec(v);
            spec.validate(p("x")).unwrap_or_else(|e| panic!("{v}: {e}"));
            let want = match v {
                Version::V0_8_0 | Version::V1_0_0 => Version::V0_7_0,
                v => v,
            };
            assert_eq!(spec.minimum_version(), want);
            let json = spec.to_json().unwrap();
            assert_eq!(
                Spec::parse(json.as_bytes(), p("x.json")).unwrap(),
                spec,
                "{v} JSON:\n{json}"
            );
            let yaml = spec.to_yaml().unwrap();
            assert_eq!(
                Spec::parse(yaml.as_bytes(), p("x.yaml")).unwrap(),
                spec,
                "{v} YAML:\n{yaml}"
            );
        }
    }

    #[test]
    fn producer_writes_the_lowest_version() {
        let mut spec = full_spec(Version::V0_5_0);
        spec.cdi_version = "1.1.0".into();
        spec.set_minimum_version();
        assert_eq!(spec.cdi_version, "0.5.0");
    }

    #[test]
    fn permissions_default_and_append() {
        let node = |p: Option<&str>| DeviceNode {
            permissions: p.map(Into::into),
            ..Default::default()
        };
        assert_eq!(node(None).permissions_or_default(), "rwm");
        assert_eq!(node(Some("")).permissions_or_default(), "rwm");
        assert_eq!(node(Some("none")).permissions_or_default(), "");
        assert_eq!(node(Some("rw")).permissions_or_default(), "rw");

        let mut a = full_spec(Version::V1_1_0).container_edits;
        let mut b = ContainerEdits {
            env: vec!["Z=1".into()],
            ..Default::default()
        };
        b.intel_rdt = Some(IntelRdt {
            clos_id: Some("other".into()),
            ..Default::default()
        });
        let before = a.env.len();
        a.append(&b);
        assert_eq!(a.env.len(), before + 1);
        assert_eq!(a.env.last().unwrap(), "Z=1");
        assert_eq!(a.intel_rdt, b.intel_rdt);
        let rdt = a.intel_rdt.clone();
        a.append(&ContainerEdits::default());
        assert_eq!(a.intel_rdt, rdt, "an absent intelRdt keeps the earlier one");
    }
}
