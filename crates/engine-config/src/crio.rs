//! CRI-O: a drop-in for `crio.conf.d` with the `nvidia` runtime handler.
//!
//! CRI-O reads its main config (`/etc/crio/crio.conf`) and then every file of
//! `/etc/crio/crio.conf.d` in lexical order, later files overriding earlier keys (crio.conf.d(5)).
//! Our file (`99-nvidia.toml`) holds, as NVIDIA's `nvidia-ctk runtime configure --runtime=crio`
//! writes it:
//! - `[crio.runtime.runtimes.nvidia]` starting from the settings of the runtime CRI-O uses by
//!   default (its `default_runtime`, else `crun`, else `runc`, as the earlier files define
//!   them: `monitor_path`, `monitor_cgroup`, `monitor_env`, `allowed_annotations`, …), with
//!   `runtime_path` = nvidia-runtime and `runtime_type = "oci"` (conmon drives it with runc's
//!   CLI);
//! - `runtime_root` = nvidia-runtime's own state root, never the copied one: nvidia-runtime
//!   and crun/runc must not share a state directory;
//! - with `--set-as-default`, `[crio.runtime] default_runtime = "nvidia"`.
//!
//! CRI-O always reads CDI specs (`/etc/cdi`, `/var/run/cdi`), so there is no CDI switch.

use toml_edit::{value, DocumentMut, Item, Table};

use crate::{Error, RUNTIME_NAME};

/// The first line of the drop-in; a file without it is not ours to overwrite.
pub const HEADER: &str =
    "# Written by `nvidia-runtime configure crio`; removed by `nvidia-runtime configure crio --remove`.";

/// Keys of the copied runtime that must not carry over: ours replace them, or (the VM
/// runtime types' config) they mean nothing to an `oci` runtime.
const NOT_COPIED: [&str; 4] = [
    "runtime_path",
    "runtime_type",
    "runtime_root",
    "runtime_config_path",
];

/// One CRI-O config file, parsed.
#[derive(Debug, Clone)]
pub struct Config(DocumentMut);

impl Config {
    /// Errors: [`Error::Toml`] with the line and column.
    pub fn parse(text: &str) -> Result<Config, Error> {
        text.parse::<DocumentMut>()
            .map(Config)
            .map_err(|err| Error::toml(text, &err))
    }

    fn runtime(&self) -> Option<&Item> {
        self.0.get("crio")?.get("runtime")
    }
}

/// What `configure crio` asks for.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    /// Absolute path of nvidia-runtime (`runtime_path`).
    pub runtime_path: &'a str,
    /// nvidia-runtime's state root (`runtime_root`), its `--root` default.
    pub runtime_root: &'a str,
    /// Also `[crio.runtime] default_runtime = "nvidia"`.
    pub set_as_default: bool,
}

/// The drop-in's content. `earlier`: the configs CRI-O reads before it, in its order (the main
/// config, then the other drop-ins sorted by name).
pub fn drop_in(earlier: &[Config], opts: &Options) -> String {
    let mut entry = Table::new();
    entry.insert("runtime_path", value(opts.runtime_path));
    entry.insert("runtime_type", value("oci"));
    entry.insert("runtime_root", value(opts.runtime_root));
    if let Some(base) = base_runtime(earlier) {
        for (key, item) in base.iter() {
            if !NOT_COPIED.contains(&key) && !item.is_none() {
                entry.insert(key, item.clone());
            }
        }
    }
    entry.fmt();

    let mut runtimes = Table::new();
    runtimes.set_implicit(true);
    runtimes.insert(RUNTIME_NAME, Item::Table(entry));
    let mut runtime = Table::new();
    runtime.set_implicit(true);
    if opts.set_as_default {
        runtime.set_implicit(false);
        runtime.insert("default_runtime", value(RUNTIME_NAME));
    }
    runtime.insert("runtimes", Item::Table(runtimes));
    let mut crio = Table::new();
    crio.set_implicit(true);
    crio.insert("runtime", Item::Table(runtime));

    let mut doc = DocumentMut::new();
    doc.decor_mut().set_prefix(format!("{HEADER}\n"));
    doc.insert("crio", Item::Table(crio));
    doc.to_string()
}

/// The table of the runtime CRI-O would use by default, as the last earlier file defining it
/// has it.
fn base_runtime(earlier: &[Config]) -> Option<Table> {
    let default = earlier
        .iter()
        .rev()
        .find_map(|config| config.runtime()?.get("default_runtime")?.as_str())
        .filter(|name| *name != RUNTIME_NAME);
    default
        .into_iter()
        .chain(["crun", "runc"])
        .find_map(|name| {
            earlier.iter().rev().find_map(|config| {
                config
                    .runtime()?
                    .get("runtimes")?
                    .get(name)?
                    .clone()
                    .into_table()
                    .ok()
            })
        })
}

/// Whether a drop-in's content was written by us (its first line is [`HEADER`]).
pub fn is_ours(text: &str) -> bool {
    text.lines().next() == Some(HEADER)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(set_as_default: bool) -> Options<'static> {
        Options {
            runtime_path: "/usr/local/bin/nvidia-runtime",
            runtime_root: "/run/nvidia-runtime",
            set_as_default,
        }
    }

    // what CRI-O's packages ship as crio.conf.d/10-crio.conf
    const PACKAGED: &str = r#"[crio.image]
signature_policy = "/etc/crio/policy.json"

[crio.runtime]
default_runtime = "crun"

[crio.runtime.runtimes.crun]
runtime_path = "/usr/libexec/crio/crun"
runtime_root = "/run/crun"
monitor_path = "/usr/libexec/crio/conmon"
allowed_annotations = [
    "io.containers.trace-syscall",
]

[crio.runtime.runtimes.runc]
runtime_path = "/usr/libexec/crio/runc"
runtime_root = "/run/runc"
monitor_path = "/usr/libexec/crio/conmon"
"#;

    #[test]
    fn bare_drop_in() {
        assert_eq!(
            drop_in(&[], &opts(false)),
            format!(
                "{HEADER}\n[crio.runtime.runtimes.nvidia]\nruntime_path = \"/usr/local/bin/nvidia-runtime\"\nruntime_type = \"oci\"\nruntime_root = \"/run/nvidia-runtime\"\n"
            )
        );
    }

    #[test]
    fn monitor_settings_come_from_the_default_runtime() {
        let earlier = [
            Config::parse("# main, all commented out\n").unwrap(),
            Config::parse(PACKAGED).unwrap(),
        ];
        let text = drop_in(&earlier, &opts(true));
        assert!(is_ours(&text));
        let doc: DocumentMut = text.parse().unwrap();
        let entry = &doc["crio"]["runtime"]["runtimes"]["nvidia"];
        assert_eq!(
            entry["runtime_path"].as_str(),
            Some("/usr/local/bin/nvidia-runtime")
        );
        assert_eq!(entry["runtime_type"].as_str(), Some("oci"));
        assert_eq!(
            entry["runtime_root"].as_str(),
            Some("/run/nvidia-runtime"),
            "never crun's state dir"
        );
        assert_eq!(
            entry["monitor_path"].as_str(),
            Some("/usr/libexec/crio/conmon")
        );
        assert_eq!(
            entry["allowed_annotations"].as_array().map(|a| a.len()),
            Some(1)
        );
        assert_eq!(
            doc["crio"]["runtime"]["default_runtime"].as_str(),
            Some("nvidia")
        );
        // deterministic
        assert_eq!(text, drop_in(&earlier, &opts(true)));
    }

    #[test]
    fn a_later_file_wins_and_runc_is_the_fallback() {
        let later = Config::parse("[crio.runtime.runtimes.runc]\nmonitor_path = \"/opt/conmon\"\nmonitor_cgroup = \"pod\"\n").unwrap();
        let earlier = [
            Config::parse("[crio.runtime.runtimes.runc]\nmonitor_path = \"/usr/bin/conmon\"\n")
                .unwrap(),
            later,
        ];
        let doc: DocumentMut = drop_in(&earlier, &opts(false)).parse().unwrap();
        let entry = &doc["crio"]["runtime"]["runtimes"]["nvidia"];
        assert_eq!(entry["monitor_path"].as_str(), Some("/opt/conmon"));
        assert_eq!(entry["monitor_cgroup"].as_str(), Some("pod"));
        assert!(doc["crio"]["runtime"].get("default_runtime").is_none());
    }

    #[test]
    fn malformed_is_refused_with_line_and_column() {
        match Config::parse("[crio.runtime]\ndefault_runtime = \n") {
            Err(Error::Toml { line, column, .. }) => assert_eq!((line, column), (2, 19)),
            other => panic!("{other:?}"),
        }
    }
}
