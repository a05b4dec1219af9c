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
        Err(e) => (Some(e.path().to_string()), e.into_inner()),
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
        column: (line > 0).then_some(column),
        field,
        message,
    })
}

fn parse_yaml(bytes: &[u8], path: &Path) -> Result<Spec, SpecError> {
    let options = serde_saphyr::options! {
        with_snippet: false,
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
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
    let field = field.map(|f| f.trim_end_matches(".?").to_owned());
    Err(SpecError::Parse {
        path: path.to_owned(),
        format: Format::Yaml,
        line: location.map(|l| l.line()),
        column: location.map(|l| l.column()),
        field,
        message,
    })
}
