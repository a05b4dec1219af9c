//! The CDI spec's rules for a parsed spec (SPEC.md, and the reference implementation's checks
//! in `pkg/cdi` where the prose is silent, so that a spec other runtimes accept is accepted
//! here and the other way round).
//!
//! Stricter than the reference implementation, where it would only fail later and less
//! clearly: hook paths must be absolute (SPEC.md says MUST; the reference only checks they are
//! not empty), as must a mount's `containerPath`, a bind mount's `hostPath` and a device
//! node's paths; no path or env entry may hold a NUL byte; device `major`/`minor` must not be
//! negative; net device names must be valid Linux interface names; `enableCMT`/`enableMBM`
//! are refused in a 1.1.0 spec (the reference refuses them in every version, having dropped
//! the fields).

use std::collections::HashSet;
use std::path::Path;

use crate::error::Problem;
use crate::name::{parse_kind, validate_device_name};
use crate::spec::{ContainerEdits, DeviceNode, Hook, IntelRdt, Mount, NetDevice, Spec};
use crate::version::{features, minimum_version, Version};

/// The OCI hook kinds a CDI hook may name (OCI runtime spec, "POSIX-platform Hooks").
pub const HOOK_NAMES: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// Largest total size of a spec's (or a device's) annotation keys and values, in bytes, as
/// Kubernetes and the CDI reference implementation limit it.
pub const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

/// Linux refuses longer interface names (`IFNAMSIZ` - 1).
const MAX_IFNAME_LEN: usize = 15;

struct Sink {
    device: Option<String>,
    problems: Vec<Problem>,
}

impl Sink {
    fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            device: self.device.clone(),
            field: field.into(),
            message: message.into(),
        });
    }
}

/// Every rule `spec` breaks, in document order; empty when it is valid.
pub fn problems(spec: &Spec) -> Vec<Problem> {
    let mut sink = Sink {
        device: None,
        problems: Vec::new(),
    };

    let version = match Version::parse(&spec.cdi_version) {
        Ok(v) => Some(v),
        Err(e) => {
            sink.push("cdiVersion", e.to_string());
            None
        }
    };
    if let Err(e) = parse_kind(&spec.kind) {
        sink.push("kind", e.to_string());
    }
    annotations(&mut sink, "annotations", &spec.annotations);
    edits(&mut sink, "containerEdits", &spec.container_edits);

    if spec.devices.is_empty() {
        sink.push("devices", "a spec must define at least one device");
    }
    let mut seen = HashSet::new();
    for (i, device) in spec.devices.iter().enumerate() {
        sink.device = Some(device_label(i, &device.name));
        if let Err(e) = validate_device_name(&device.name) {
            sink.push("name", e.to_string());
        } else if !seen.insert(device.name.as_str()) {
            sink.push(
                "name",
                "defined twice in this spec; give each device its own name",
            );
        }
        annotations(&mut sink, "annotations", &device.annotations);
        if device.container_edits.is_empty() {
            sink.push(
                "containerEdits",
                "a device must change something (env, deviceNodes, mounts, hooks, \
                 intelRdt, additionalGids or netDevices)",
            );
        }
        edits(&mut sink, "containerEdits", &device.container_edits);
    }

    if let Some(version) = version {
        let needed = minimum_version(spec);
        for f in features(spec) {
            sink.device = f.device.clone();
            if version < f.since {
                sink.push(
                    &f.field,
                    format!(
                        "needs cdiVersion {} or later, but the spec says {}; set cdiVersion to \
                         {needed} or drop the field",
                        f.since, spec.cdi_version
                    ),
                );
            } else if let Some(until) = f.until.filter(|u| version > *u) {
                sink.push(
                    &f.field,
                    format!(
                        "was dropped after cdiVersion {until} (the spec says {}); remove it \
                         (enableMonitoring replaces enableCMT and enableMBM since 1.1.0) or set \
                         cdiVersion between {} and {until}",
                        spec.cdi_version, f.since
                    ),
                );
            }
        }
    }
    sink.problems
}

/// How a device entry is named in messages: its name, or its index when it has none.
pub(crate) fn device_label(index: usize, name: &str) -> String {
    if name.is_empty() {
        format!("#{index}")
    } else {
        name.to_owned()
    }
}

fn annotations(sink: &mut Sink, field: &str, map: &std::collections::BTreeMap<String, String>) {
    let mut total = 0usize;
    for (key, value) in map {
        total += key.len() + value.len();
        // Kubernetes' annotation key rule, case-insensitive: an optional DNS-subdomain prefix
        // and `/`, then a name of at most 63 characters.
        if let Err(why) = annotation_key(&key.to_ascii_lowercase()) {
            sink.push(format!("{field}.{key}"), why);
        }
    }
    if total > MAX_ANNOTATIONS_BYTES {
        sink.push(
            field,
            format!(
                "{total} bytes of keys and values, more than the {MAX_ANNOTATIONS_BYTES} allowed"
            ),
        );
    }
}

fn annotation_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        None => (None, key),
        Some((p, n)) if !n.contains('/') => (Some(p), n),
        Some(_) => return Err("a key may hold at most one '/' (prefix/name)".into()),
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            return Err("the prefix before '/' is empty".into());
        }
        if prefix.len() > 253 || !prefix.split('.').all(dns_label) {
            return Err(format!(
                "prefix {prefix:?} must be a lowercase DNS subdomain of at most 253 characters, \
                 e.g. example.com"
            ));
        }
    }
    let ok_inner = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty()
        || name.len() > 63
        || !name.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !name.ends_with(|c: char| c.is_ascii_alphanumeric())
        || !name.chars().all(ok_inner)
    {
        return Err(format!(
            "name {name:?} must be 1 to 63 letters, digits, '-', '_' or '.', starting and ending \
             with a letter or digit"
        ));
    }
    Ok(())
}

fn dns_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

fn edits(sink: &mut Sink, at: &str, e: &ContainerEdits) {
    env(sink, &format!("{at}.env"), &e.env);
    for (i, node) in e.device_nodes.iter().enumerate() {
        device_node(sink, &format!("{at}.deviceNodes[{i}]"), node);
    }
    for (i, hook) in e.hooks.iter().enumerate() {
        self::hook(sink, &format!("{at}.hooks[{i}]"), hook);
    }
    for (i, m) in e.mounts.iter().enumerate() {
        mount(sink, &format!("{at}.mounts[{i}]"), m);
    }
    if let Some(rdt) = &e.intel_rdt {
        intel_rdt(sink, &format!("{at}.intelRdt"), rdt);
    }
    net_devices(sink, &format!("{at}.netDevices"), &e.net_devices);
}

fn env(sink: &mut Sink, at: &str, env: &[String]) {
    for (i, entry) in env.iter().enumerate() {
        if entry.find('=').is_none_or(|eq| eq == 0) {
            sink.push(format!("{at}[{i}]"), format!("{entry:?} is not NAME=value"));
        } else if entry.contains('\0') {
            sink.push(format!("{at}[{i}]"), "contains a NUL byte");
        }
    }
}

/// A path the runtime will open or mount: absolute, no NUL byte.
fn abs_path(sink: &mut Sink, at: String, path: &str) {
    if path.is_empty() {
        sink.push(at, "is empty; give an absolute path");
    } else if path.contains('\0') {
        sink.push(at, "contains a NUL byte");
    } else if !Path::new(path).is_absolute() {
        sink.push(at, format!("{path:?} is not an absolute path"));
    }
}

fn device_node(sink: &mut Sink, at: &str, node: &DeviceNode) {
    abs_path(sink, format!("{at}.path"), &node.path);
    if let Some(host) = node.host_path.as_deref().filter(|h| !h.is_empty()) {
        abs_path(sink, format!("{at}.hostPath"), host);
    }
    if let Some(kind) = node.kind.as_deref() {
        if !matches!(kind, "" | "c" | "b" | "u" | "p") {
            sink.push(
                format!("{at}.type"),
                format!("{kind:?} is not a device type; use c (char), b (block), u (unbuffered char) or p (FIFO), or leave it out to read it from the host node"),
            );
        }
    }
    if let Some(perms) = node.permissions.as_deref() {
        if perms != DeviceNode::NO_PERMISSIONS
            && !perms.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
        {
            sink.push(
                format!("{at}.permissions"),
                format!("{perms:?} is not cgroup device access; use any of r, w, m (e.g. rw), or \"none\""),
            );
        }
    }
    for (field, value) in [("major", node.major), ("minor", node.minor)] {
        if value.is_some_and(|v| v < 0) {
            sink.push(format!("{at}.{field}"), "must not be negative");
        }
    }
}

fn hook(sink: &mut Sink, at: &str, hook: &Hook) {
    if !HOOK_NAMES.contains(&hook.hook_name.as_str()) {
        sink.push(
            format!("{at}.hookName"),
            format!(
                "{:?} is not an OCI hook; use one of {}",
                hook.hook_name,
                HOOK_NAMES.join(", ")
            ),
        );
    }
    abs_path(sink, format!("{at}.path"), &hook.path);
    env(sink, &format!("{at}.env"), &hook.env);
    if hook.timeout.is_some_and(|t| t <= 0) {
        sink.push(
            format!("{at}.timeout"),
            "must be a number of seconds greater than zero, or left out",
        );
    }
}

fn mount(sink: &mut Sink, at: &str, m: &Mount) {
    let bind = m.options.iter().any(|o| o == "bind" || o == "rbind")
        || matches!(m.kind.as_deref(), Some("bind" | "rbind"));
    if bind {
        abs_path(sink, format!("{at}.hostPath"), &m.host_path);
    } else if m.host_path.is_empty() {
        // For other mounts the source may be a name such as `tmpfs`.
        sink.push(
            format!("{at}.hostPath"),
            "is empty; give the mount's source",
        );
    }
    abs_path(sink, format!("{at}.containerPath"), &m.container_path);
}

fn intel_rdt(sink: &mut Sink, at: &str, rdt: &IntelRdt) {
    // The CLOS is a directory name under /sys/fs/resctrl; "/" names the root CLOS.
    if let Some(clos) = rdt.clos_id.as_deref() {
        if clos != "/"
            && (clos.len() >= 4096
                || clos == "."
                || clos == ".."
                || clos.contains(['/', '\n', '\0']))
        {
            sink.push(
                format!("{at}.closID"),
                format!("{clos:?} is not a resctrl group name"),
            );
        }
    }
}

fn net_devices(sink: &mut Sink, at: &str, devices: &[NetDevice]) {
    let mut hosts = HashSet::new();
    let mut names = HashSet::new();
    for (i, dev) in devices.iter().enumerate() {
        for (field, name) in [
            ("hostInterfaceName", &dev.host_interface_name),
            ("name", &dev.name),
        ] {
            if let Err(why) = interface_name(name) {
                sink.push(format!("{at}[{i}].{field}"), why);
            }
        }
        if !hosts.insert(dev.host_interface_name.as_str()) {
            sink.push(
                format!("{at}[{i}].hostInterfaceName"),
                "moves the same host interface twice",
            );
        }
        if !names.insert(dev.name.as_str()) {
            sink.push(
                format!("{at}[{i}].name"),
                "gives two interfaces the same name",
            );
        }
    }
}

/// The kernel's `dev_valid_name`.
fn interface_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    if name.len() > MAX_IFNAME_LEN
        || name == "."
        || name == ".."
        || name.contains(|c: char| c == '/' || c == ':' || c.is_whitespace() || c == '\0')
    {
        return Err(format!(
            "{name:?} is not a Linux interface name (at most {MAX_IFNAME_LEN} bytes, no '/', ':' or \
             white space)"
        ));
    }
    Ok(())
}
