//! containerd: the `nvidia` runtime of the CRI plugin in a drop-in file, and the `imports`
//! entry of the main `config.toml` that loads it.
//!
//! Config versions (containerd's `version` key):
//! - 2 (containerd 1.5 to 1.7, and read by 2.x): CRI plugin `io.containerd.grpc.v1.cri`.
//! - 3 (containerd 2.x): runtimes live in `io.containerd.cri.v1.runtime`.
//!
//! containerd before 2.0 lets an imported file replace a plugin's *whole* section rather
//! than merge into it (containerd issue 5837, fixed in 2.0 by PR 9982): a version 2 drop-in
//! holding only `runtimes.nvidia` would silently drop the main config's CRI settings
//! (`sandbox_image`, the `runc` runtime, `SystemdCgroup`, registries…). So a version 2 drop-in
//! carries a copy of the main config's CRI section with our keys added; a version 3 drop-in
//! only our keys. NVIDIA's `nvidia-ctk` does the same.
//!
//! The runtime entry starts from the main config's default runtime (`default_runtime_name`,
//! else `runc`) when that is a runc-type runtime, as nvidia-ctk does, so settings such as
//! `options.SystemdCgroup` carry over; then `runtime_type = "io.containerd.runc.v2"`,
//! `options.BinaryName` and `container_annotations` gaining `cdi.k8s.io/*` (so CDI device
//! requests of Kubernetes device plugins reach the runtime).

use std::path::{Component, Path, PathBuf};

use toml_edit::{value, Array, DocumentMut, Item, Table, Value};

use crate::{Change, Error, RUNTIME_NAME};

/// The first line of every file we write; a drop-in without it is not ours to overwrite.
pub const HEADER: &str = "# Written by `nvidia-runtime configure containerd`; removed by `nvidia-runtime configure containerd --remove`.";

/// Where containerd 1.7+ and 2.x read CDI specs by default (written explicitly with `--cdi`).
pub const CDI_SPEC_DIRS: [&str; 2] = ["/etc/cdi", "/var/run/cdi"];

/// The annotations passed from the pod to the runtime (CDI device requests by annotation).
pub const CDI_ANNOTATIONS: &str = "cdi.k8s.io/*";

const RUNC_TYPE: &str = "io.containerd.runc.v2";

/// A containerd config format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// containerd 1.5–1.7 (and 2.x, which migrates it when loading).
    V2,
    /// containerd 2.x.
    V3,
}

impl Version {
    pub fn number(self) -> i64 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }

    /// The plugin holding `containerd.runtimes` and `enable_cdi`.
    pub fn cri_plugin(self) -> &'static str {
        match self {
            Version::V2 => "io.containerd.grpc.v1.cri",
            Version::V3 => "io.containerd.cri.v1.runtime",
        }
    }
}

/// The config version to write for: the main config's `version` when it has content; for an
/// absent or empty main config, 3 when `containerd --version` says 2.x, else 2.
///
/// Errors: [`Error::Toml`] (unparsable main config), [`Error::VersionOne`] (content without a
/// `version` key), [`Error::UnsupportedVersion`], [`Error::Shape`] (`version` not an integer).
pub fn detect_version(main: Option<&str>, containerd_major: Option<u64>) -> Result<Version, Error> {
    let by_binary = match containerd_major {
        Some(major) if major >= 2 => Version::V3,
        _ => Version::V2,
    };
    let Some(text) = main else {
        return Ok(by_binary);
    };
    let doc = parse(text)?;
    match doc.get("version") {
        None if doc.is_empty() => Ok(by_binary),
        None => Err(Error::VersionOne),
        Some(item) => match item.as_integer() {
            Some(2) => Ok(Version::V2),
            Some(3) => Ok(Version::V3),
            Some(other) => Err(Error::UnsupportedVersion(other)),
            None => Err(Error::Shape {
                key: "version".into(),
                expected: "an integer",
                found: item.type_name().into(),
            }),
        },
    }
}

/// What `configure containerd` asks for.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    /// Absolute path of nvidia-runtime, written as `options.BinaryName`.
    pub runtime_path: &'a str,
    /// Also `containerd.default_runtime_name = "nvidia"`.
    pub set_as_default: bool,
    /// Also `enable_cdi = true` and `cdi_spec_dirs` (containerd 1.7+; on by default in 2.x).
    pub cdi: bool,
    /// The main config's path, named in the drop-in's comment (version 2 copies its CRI section).
    pub main_path: &'a str,
}

/// The drop-in file's content, from the main config (`None`: absent).
pub fn drop_in(main: Option<&str>, version: Version, opts: &Options) -> Result<String, Error> {
    let main_doc = match main {
        Some(text) => parse(text)?,
        None => DocumentMut::new(),
    };
    let plugin = version.cri_plugin();
    let main_cri = main_doc
        .get("plugins")
        .and_then(|plugins| plugins.get(plugin))
        .and_then(|item| item.clone().into_table().ok());

    let mut doc = DocumentMut::new();
    let mut header = format!("{HEADER}\n");
    if version == Version::V2 {
        header.push_str(&format!(
            "# containerd before 2.0 lets an imported file replace a plugin's whole section, so this file\n\
             # holds a copy of the CRI section of {}: after editing that section\n\
             # there, run `nvidia-runtime configure containerd` again.\n",
            opts.main_path
        ));
    }
    doc.decor_mut().set_prefix(header);
    doc.insert("version", value(version.number()));

    let mut cri = match (version, &main_cri) {
        (Version::V2, Some(table)) => table.clone(),
        _ => {
            let mut table = Table::new();
            table.set_implicit(true);
            table
        }
    };
    if opts.cdi {
        cri.insert("enable_cdi", value(true));
        cri.insert("cdi_spec_dirs", value(Array::from_iter(CDI_SPEC_DIRS)));
    }
    let base = base_runtime(main_cri.as_ref());
    let containerd = table_at(&mut cri, "containerd")?;
    if opts.set_as_default {
        containerd.insert("default_runtime_name", value(RUNTIME_NAME));
    }
    let runtimes = table_at(containerd, "runtimes")?;
    runtimes.insert(
        RUNTIME_NAME,
        Item::Table(runtime_entry(base, opts.runtime_path)),
    );

    let mut plugins = Table::new();
    plugins.set_implicit(true);
    plugins.insert(plugin, Item::Table(cri));
    doc.insert("plugins", Item::Table(plugins));
    let mut next = 1;
    normalize(doc.as_table_mut(), &mut next);
    Ok(format!("{}\n", doc.to_string().trim_end()))
}

/// The main config's default runtime entry when it is a runc-type one (its settings carry
/// over to ours), else none.
fn base_runtime(main_cri: Option<&Table>) -> Option<Table> {
    let cri = main_cri?;
    let containerd = cri.get("containerd")?.as_table_like()?;
    let name = containerd
        .get("default_runtime_name")
        .and_then(Item::as_str)
        .filter(|name| *name != RUNTIME_NAME)
        .unwrap_or("runc");
    let entry = containerd
        .get("runtimes")?
        .as_table_like()?
        .get(name)?
        .clone()
        .into_table()
        .ok()?;
    match entry.get("runtime_type").and_then(Item::as_str) {
        None | Some(RUNC_TYPE) => Some(entry),
        Some(_) => None,
    }
}

fn runtime_entry(base: Option<Table>, runtime_path: &str) -> Table {
    let mut entry = base.unwrap_or_default();
    entry.set_implicit(false);
    entry.set_dotted(false);

    entry.insert("runtime_type", value(RUNC_TYPE));
    let mut annotations = entry
        .get("container_annotations")
        .and_then(Item::as_array)
        .cloned()
        .unwrap_or_default();
    if !annotations
        .iter()
        .any(|a| a.as_str() == Some(CDI_ANNOTATIONS))
    {
        annotations.push(CDI_ANNOTATIONS);
    }
    entry.insert("container_annotations", value(annotations));
    let mut options = entry
        .get("options")
        .and_then(|item| item.clone().into_table().ok())
        .unwrap_or_default();
    options.set_implicit(false);
    options.set_dotted(false);
    options.insert("BinaryName", value(runtime_path));
    entry.insert("options", Item::Table(options));
    entry
}

/// `table[key]` as a table, created (implicit) when absent.
fn table_at<'a>(table: &'a mut Table, key: &str) -> Result<&'a mut Table, Error> {
    let item = table.entry(key).or_insert_with(|| {
        let mut t = Table::new();
        t.set_implicit(true);
        Item::Table(t)
    });
    if let Item::Value(Value::InlineTable(_)) = item {
        let inline = std::mem::take(item);
        *item = Item::Table(inline.into_table().unwrap_or_default());
    }
    let found = item.type_name();
    item.as_table_mut().ok_or(Error::Shape {
        key: key.into(),
        expected: "a table",
        found: found.into(),
    })
}

/// One layout for the whole generated file: every table right after its parent, in key order,
/// with default spacing (a copied table would otherwise keep its place and indentation from
/// the main config, and its comments, which stay there).
fn normalize(table: &mut Table, next: &mut usize) {
    table.fmt();
    for (_, item) in table.iter_mut() {
        let children: Vec<&mut Table> = match item {
            Item::Table(child) => vec![child],
            Item::ArrayOfTables(array) => array.iter_mut().collect(),
            _ => Vec::new(),
        };
        for child in children {
            child.decor_mut().clear();
            child.set_position(*next);
            *next += 1;
            normalize(child, next);
        }
    }
}

/// Whether a drop-in file's content was written by us (its first line is [`HEADER`]).
pub fn is_ours(text: &str) -> bool {
    text.lines().next() == Some(HEADER)
}

/// A main config made from nothing: just the version and the import.
fn created_main(version: Version, drop_in_path: &str) -> String {
    let mut doc = DocumentMut::new();
    doc.decor_mut().set_prefix(format!("{HEADER}\n"));
    doc.insert("version", value(version.number()));
    doc.insert("imports", value(Array::from_iter([drop_in_path])));
    doc.to_string()
}

/// The main config with an `imports` entry for `drop_in_path` (unless an entry, possibly a
/// glob such as `/etc/containerd/conf.d/*.toml`, already covers it). An absent main config is
/// created with only `version` and `imports`; an empty one gains `version` too. Everything
/// else — comments, order, layout — is kept byte for byte.
pub fn add_import(
    main: Option<&str>,
    main_path: &str,
    version: Version,
    drop_in_path: &str,
) -> Result<Change, Error> {
    let Some(text) = main else {
        return Ok(Change::Write(created_main(version, drop_in_path)));
    };
    let mut doc = parse(text)?;
    if imports_cover(&doc, main_path, drop_in_path)? {
        return Ok(Change::Unchanged);
    }
    if doc.get("version").is_none() {
        // only an empty config gets here (detect_version refuses version 1); its comments
        // stay above the keys
        let comments = doc.trailing().as_str().unwrap_or("").to_string();
        doc.set_trailing("");
        doc.decor_mut().set_prefix(comments);
        doc.insert("version", value(version.number()));
    }
    match doc.get_mut("imports") {
        Some(item) => {
            let array = item.as_array_mut().expect("checked by imports_cover");
            array.push(drop_in_path);
        }
        None => {
            doc.insert("imports", value(Array::from_iter([drop_in_path])));
        }
    }
    Ok(Change::from_texts(Some(text), doc.to_string()))
}

/// Takes away what [`add_import`] added: the entry naming `drop_in_path` exactly (a glob is the
/// user's), `imports` itself when left empty, the whole file when it is one we created.
pub fn remove_import(
    main: Option<&str>,
    version: Version,
    drop_in_path: &str,
) -> Result<Change, Error> {
    let Some(text) = main else {
        return Ok(Change::Unchanged);
    };
    if text == created_main(version, drop_in_path) {
        return Ok(Change::Delete);
    }
    let mut doc = parse(text)?;
    let Some(array) = doc.get_mut("imports").and_then(Item::as_array_mut) else {
        return Ok(Change::Unchanged);
    };
    let before = array.len();
    array.retain(|entry| entry.as_str() != Some(drop_in_path));
    if array.len() == before {
        return Ok(Change::Unchanged);
    }
    if array.is_empty() {
        doc.remove("imports");
    }
    Ok(Change::from_texts(Some(text), doc.to_string()))
}

/// Things in the main config that keep the runtime from working, for the user.
pub fn warnings(main: Option<&str>, version: Version) -> Vec<String> {
    let Some(doc) = main.and_then(|text| parse(text).ok()) else {
        return Vec::new();
    };
    let Some(disabled) = doc.get("disabled_plugins").and_then(Item::as_array) else {
        return Vec::new();
    };
    let cri_ids = ["cri", "io.containerd.grpc.v1.cri", version.cri_plugin()];
    disabled
        .iter()
        .filter_map(Value::as_str)
        .filter(|id| cri_ids.contains(id))
        .map(|id| {
            format!(
                "the CRI plugin is disabled (disabled_plugins has \"{id}\"): Kubernetes cannot use \
                 any runtime until it is taken out of that list"
            )
        })
        .collect()
}

fn imports_cover(doc: &DocumentMut, main_path: &str, drop_in_path: &str) -> Result<bool, Error> {
    let Some(item) = doc.get("imports") else {
        return Ok(false);
    };
    let Some(array) = item.as_array() else {
        return Err(Error::Shape {
            key: "imports".into(),
            expected: "an array of paths",
            found: item.type_name().into(),
        });
    };
    let base = Path::new(main_path).parent().unwrap_or(Path::new("/"));
    Ok(array.iter().filter_map(Value::as_str).any(|entry| {
        // containerd: a relative entry is relative to the main config's directory
        let resolved = clean(&base.join(entry));
        let resolved = resolved.to_string_lossy();
        if resolved.contains(['*', '?', '[']) {
            glob_match(&resolved, drop_in_path)
        } else {
            resolved == drop_in_path
        }
    }))
}

fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Go's `filepath.Match` for `*` and `?` (neither crossing `/`); a `[` class is not
/// interpreted and never matches.
fn glob_match(pattern: &str, path: &str) -> bool {
    fn matches(p: &[char], s: &[char]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some(('*', rest)) => (0..=s.len())
                .take_while(|&i| i == 0 || s[i - 1] != '/')
                .any(|i| matches(rest, &s[i..])),
            Some(('?', rest)) => s.first().is_some_and(|&c| c != '/') && matches(rest, &s[1..]),
            Some(('[', _)) => false,
            Some((c, rest)) => s.first() == Some(c) && matches(rest, &s[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = path.chars().collect();
    matches(&p, &s)
}

fn parse(text: &str) -> Result<DocumentMut, Error> {
    text.parse::<DocumentMut>()
        .map_err(|err| Error::toml(text, &err))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BIN: &str = "/usr/local/bin/nvidia-runtime";
    const DROP_IN: &str = "/etc/containerd/conf.d/99-nvidia.toml";
    const MAIN_PATH: &str = "/etc/containerd/config.toml";

    fn opts(set_as_default: bool, cdi: bool) -> Options<'static> {
        Options {
            runtime_path: BIN,
            set_as_default,
            cdi,
            main_path: MAIN_PATH,
        }
    }

    const KUBEADM_V2: &str = r#"# managed by hand
version = 2
root = "/var/lib/containerd"

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    # the pause image is mirrored
    sandbox_image = "registry.example/pause:3.9"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = true
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "/etc/containerd/certs.d"
"#;

    fn get<'a>(doc: &'a DocumentMut, path: &[&str]) -> Option<&'a Item> {
        let mut item = doc.as_item();
        for key in path {
            item = item.get(key)?;
        }
        Some(item)
    }

    #[test]
    fn version_from_the_main_config_or_the_binary() {
        assert_eq!(
            detect_version(Some(KUBEADM_V2), Some(2)).unwrap(),
            Version::V2
        );
        assert_eq!(
            detect_version(Some("version = 3\n"), Some(1)).unwrap(),
            Version::V3
        );
        assert_eq!(detect_version(None, Some(2)).unwrap(), Version::V3);
        assert_eq!(detect_version(None, Some(1)).unwrap(), Version::V2);
        assert_eq!(detect_version(None, None).unwrap(), Version::V2);
        assert_eq!(
            detect_version(Some("# nothing\n\n"), Some(2)).unwrap(),
            Version::V3
        );
        assert_eq!(
            detect_version(Some("disabled_plugins = [\"cri\"]\n"), Some(1)),
            Err(Error::VersionOne)
        );
        assert_eq!(
            detect_version(Some("version = 1\n"), None),
            Err(Error::UnsupportedVersion(1))
        );
        assert!(matches!(
            detect_version(Some("version = \"2\"\n"), None),
            Err(Error::Shape { .. })
        ));
    }

    #[test]
    fn malformed_main_config_is_refused_with_line_and_column() {
        let err = detect_version(Some("version = 2\n[plugins\nx = 1\n"), None).unwrap_err();
        match &err {
            Error::Toml { line, column, .. } => assert_eq!((*line, *column), (2, 9)),
            other => panic!("{other:?}"),
        }
        assert!(add_import(Some("a = = 1"), MAIN_PATH, Version::V2, DROP_IN).is_err());
        assert!(drop_in(Some("[x"), Version::V2, &opts(false, false)).is_err());
    }

    #[test]
    fn v2_drop_in_copies_the_cri_section_and_adds_the_runtime() {
        let text = drop_in(Some(KUBEADM_V2), Version::V2, &opts(true, true)).unwrap();
        assert!(is_ours(&text));
        let doc: DocumentMut = text.parse().unwrap();
        let cri = ["plugins", "io.containerd.grpc.v1.cri"];
        let at = |rest: &[&str]| {
            let path: Vec<&str> = cri.iter().chain(rest).copied().collect();
            get(&doc, &path)
                .unwrap_or_else(|| panic!("{path:?} missing in\n{text}"))
                .clone()
        };
        assert_eq!(doc["version"].as_integer(), Some(2));
        // the copy: containerd 1.x would lose these otherwise
        assert_eq!(
            at(&["sandbox_image"]).as_str(),
            Some("registry.example/pause:3.9")
        );
        assert_eq!(
            at(&["registry", "config_path"]).as_str(),
            Some("/etc/containerd/certs.d")
        );
        assert_eq!(
            at(&["containerd", "runtimes", "runc", "options", "SystemdCgroup"]).as_bool(),
            Some(true)
        );
        // ours, starting from runc's settings
        let nvidia = ["containerd", "runtimes", "nvidia"];
        let sub =
            |k: &[&'static str]| -> Vec<&'static str> { nvidia.iter().chain(k).copied().collect() };
        assert_eq!(at(&sub(&["runtime_type"])).as_str(), Some(RUNC_TYPE));
        assert_eq!(at(&sub(&["options", "BinaryName"])).as_str(), Some(BIN));
        assert_eq!(
            at(&sub(&["options", "SystemdCgroup"])).as_bool(),
            Some(true)
        );
        assert_eq!(
            at(&sub(&["container_annotations"]))
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>(),
            [CDI_ANNOTATIONS]
        );
        assert_eq!(
            at(&["containerd", "default_runtime_name"]).as_str(),
            Some("nvidia")
        );
        assert_eq!(at(&["enable_cdi"]).as_bool(), Some(true));
        assert_eq!(at(&["cdi_spec_dirs"]).as_array().unwrap().len(), 2);
        // deterministic: the same input gives the same bytes
        assert_eq!(
            text,
            drop_in(Some(KUBEADM_V2), Version::V2, &opts(true, true)).unwrap()
        );
    }

    #[test]
    fn v3_drop_in_holds_only_our_keys() {
        let main = "version = 3\n[plugins.'io.containerd.cri.v1.images']\n  snapshotter = 'overlayfs'\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\n  SystemdCgroup = true\n";
        let text = drop_in(Some(main), Version::V3, &opts(false, false)).unwrap();
        let expected = format!(
            "{HEADER}\nversion = 3\n\n[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.nvidia]\nruntime_type = \"io.containerd.runc.v2\"\ncontainer_annotations = [\"cdi.k8s.io/*\"]\n\n[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.nvidia.options]\nSystemdCgroup = true\nBinaryName = \"{BIN}\"\n"
        );
        assert_eq!(text, expected);
        // no main config: no copy, nothing else
        let bare = drop_in(None, Version::V3, &opts(false, false)).unwrap();
        assert!(!bare.contains("SystemdCgroup"), "{bare}");
    }

    #[test]
    fn a_non_runc_default_runtime_is_not_copied() {
        let main = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\ndefault_runtime_name = \"kata\"\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.kata]\nruntime_type = \"io.containerd.kata.v2\"\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.kata.options]\nConfigPath = \"/etc/kata.toml\"\n";
        let text = drop_in(Some(main), Version::V2, &opts(false, false)).unwrap();
        let doc: DocumentMut = text.parse().unwrap();
        let options = get(
            &doc,
            &[
                "plugins",
                "io.containerd.grpc.v1.cri",
                "containerd",
                "runtimes",
                "nvidia",
                "options",
            ],
        )
        .unwrap();
        assert!(options.get("ConfigPath").is_none(), "{text}");
        // and kata itself stays (it is in the copy)
        assert!(text.contains("ConfigPath"));
    }

    #[test]
    fn import_added_with_comments_kept_and_removed_to_the_original_bytes() {
        let added = match add_import(Some(KUBEADM_V2), MAIN_PATH, Version::V2, DROP_IN).unwrap() {
            Change::Write(text) => text,
            other => panic!("{other:?}"),
        };
        assert!(added.starts_with("# managed by hand\nversion = 2\nroot = \"/var/lib/containerd\"\nimports = [\"/etc/containerd/conf.d/99-nvidia.toml\"]\n"), "{added}");
        assert!(added.contains("    # the pause image is mirrored\n"));
        // idempotent
        assert_eq!(
            add_import(Some(&added), MAIN_PATH, Version::V2, DROP_IN).unwrap(),
            Change::Unchanged
        );
        // round trip
        assert_eq!(
            remove_import(Some(&added), Version::V2, DROP_IN).unwrap(),
            Change::Write(KUBEADM_V2.to_string())
        );
        assert_eq!(
            remove_import(Some(KUBEADM_V2), Version::V2, DROP_IN).unwrap(),
            Change::Unchanged
        );
    }

    #[test]
    fn existing_imports_are_extended_or_already_cover_us() {
        let main = "version = 2\nimports = [\n  \"/etc/containerd/other.toml\",\n]\n";
        let added = match add_import(Some(main), MAIN_PATH, Version::V2, DROP_IN).unwrap() {
            Change::Write(text) => text,
            other => panic!("{other:?}"),
        };
        let doc: DocumentMut = added.parse().unwrap();
        let entries: Vec<&str> = doc["imports"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(entries, ["/etc/containerd/other.toml", DROP_IN]);
        assert_eq!(
            remove_import(Some(&added), Version::V2, DROP_IN).unwrap(),
            Change::Write(main.into())
        );

        for covering in [
            "/etc/containerd/conf.d/*.toml",
            "conf.d/*.toml",
            "./conf.d/99-nvidia.toml",
            "/etc/containerd/conf.d/99-nvidia.tom?",
        ] {
            let main = format!("version = 2\nimports = [\"{covering}\"]\n");
            assert_eq!(
                add_import(Some(&main), MAIN_PATH, Version::V2, DROP_IN).unwrap(),
                Change::Unchanged,
                "{covering}"
            );
            // a glob is the user's: never removed
            assert_eq!(
                remove_import(Some(&main), Version::V2, DROP_IN).unwrap(),
                Change::Unchanged
            );
        }
        for not_covering in ["/etc/containerd/*.toml", "/etc/containerd/conf.d/*.conf"] {
            let main = format!("version = 2\nimports = [\"{not_covering}\"]\n");
            assert_ne!(
                add_import(Some(&main), MAIN_PATH, Version::V2, DROP_IN).unwrap(),
                Change::Unchanged,
                "{not_covering}"
            );
        }
        assert!(matches!(
            add_import(
                Some("version = 2\nimports = \"x\"\n"),
                MAIN_PATH,
                Version::V2,
                DROP_IN
            ),
            Err(Error::Shape { .. })
        ));
    }

    #[test]
    fn absent_or_empty_main_config() {
        let created = match add_import(None, MAIN_PATH, Version::V3, DROP_IN).unwrap() {
            Change::Write(text) => text,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            created,
            format!("{HEADER}\nversion = 3\nimports = [\"{DROP_IN}\"]\n")
        );
        assert_eq!(
            remove_import(Some(&created), Version::V3, DROP_IN).unwrap(),
            Change::Delete
        );

        let from_empty =
            match add_import(Some("# empty\n"), MAIN_PATH, Version::V2, DROP_IN).unwrap() {
                Change::Write(text) => text,
                other => panic!("{other:?}"),
            };
        assert_eq!(
            from_empty,
            format!("# empty\nversion = 2\nimports = [\"{DROP_IN}\"]\n")
        );
    }

    #[test]
    fn disabled_cri_is_warned_about() {
        assert_eq!(
            warnings(
                Some("version = 2\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n"),
                Version::V2
            )
            .len(),
            1
        );
        assert!(warnings(Some(KUBEADM_V2), Version::V2).is_empty());
    }

    #[test]
    fn globs() {
        assert!(glob_match("/a/*.toml", "/a/b.toml"));
        assert!(!glob_match("/a/*.toml", "/a/b/c.toml"));
        assert!(glob_match("/a/*", "/a/b.toml"));
        assert!(!glob_match("/a/[b].toml", "/a/b.toml"));
    }
}
