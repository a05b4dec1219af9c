//! Docker's `daemon.json` (dockerd's `--config-file`, default `/etc/docker/daemon.json`).
//!
//! Keys written, as dockerd reads them (moby `daemon/config`):
//! - `runtimes.nvidia = {"path": <absolute path of nvidia-runtime>}`: `docker run --runtime=nvidia`;
//! - `default-runtime = "nvidia"` (`--set-as-default`): every container goes through it;
//! - `features.cdi = true` (`--cdi`): Docker 25+ resolves `--device nvidia.com/gpu=…` from CDI specs.
//!
//! Every other key keeps its value and its place; the indentation of the file (its first
//! indented line), compact one-line files and the final newline are kept too, so a `remove`
//! after a `configure` gives back the original bytes of a file in Docker's usual layout.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::{Change, Error, RUNTIME_NAME};

/// What `configure docker` asks for.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    /// Absolute path of the nvidia-runtime binary, written as `runtimes.nvidia.path`.
    pub runtime_path: &'a str,
    /// Also `default-runtime = "nvidia"`.
    pub set_as_default: bool,
    /// Also `features.cdi = true` (on `remove`: also take `features.cdi` away).
    pub cdi: bool,
}

/// The new content (or none) and one human line per key changed, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub change: Change,
    pub changes: Vec<String>,
    /// Things left alone on purpose, worth telling the user.
    pub notes: Vec<String>,
}

/// Registers the runtime in `original` (`None`: the file does not exist yet).
///
/// Errors: [`Error::Json`] for a file that does not parse (with its line and column),
/// [`Error::Shape`] when the top level, `runtimes` or `features` is not an object.
pub fn configure(original: Option<&str>, opts: &Options) -> Result<Edit, Error> {
    let (mut root, style) = parse(original)?;
    let mut changes = Vec::new();

    let runtimes = object_at(&mut root, "runtimes")?;
    let wanted = serde_json::json!({ "path": opts.runtime_path });
    match runtimes.get(RUNTIME_NAME) {
        Some(current) if *current == wanted => {}
        Some(current) => {
            changes.push(format!(
                "runtimes.{RUNTIME_NAME}: {} -> {}",
                path_of(current),
                opts.runtime_path
            ));
            runtimes.insert(RUNTIME_NAME.to_string(), wanted);
        }
        None => {
            changes.push(format!(
                "runtimes.{RUNTIME_NAME}: added, path {}",
                opts.runtime_path
            ));
            runtimes.insert(RUNTIME_NAME.to_string(), wanted);
        }
    }

    if opts.set_as_default {
        match root.get("default-runtime").and_then(Value::as_str) {
            Some(RUNTIME_NAME) => {}
            previous => {
                changes.push(match previous {
                    Some(previous) => format!("default-runtime: {previous} -> {RUNTIME_NAME}"),
                    None => format!("default-runtime: set to {RUNTIME_NAME}"),
                });
                root.insert("default-runtime".into(), RUNTIME_NAME.into());
            }
        }
    }

    if opts.cdi {
        let features = object_at(&mut root, "features")?;
        if features.get("cdi") != Some(&Value::Bool(true)) {
            features.insert("cdi".into(), Value::Bool(true));
            changes.push("features.cdi: set to true".into());
        }
    }

    let change = if changes.is_empty() {
        Change::Unchanged
    } else {
        Change::from_texts(original, render(&root, &style))
    };
    Ok(Edit {
        change,
        changes,
        notes: Vec::new(),
    })
}

/// Takes away what [`configure`] wrote: `runtimes.nvidia` when it is this runtime (its path is
/// `opts.runtime_path` or a file named `nvidia-runtime`), `default-runtime` when it is
/// `"nvidia"` and no other `nvidia` runtime stays, `features.cdi` only with `opts.cdi`. Objects
/// left empty go too; a config left empty is [`Change::Delete`] (dockerd reads no file as `{}`).
pub fn remove(original: Option<&str>, opts: &Options) -> Result<Edit, Error> {
    let Some(text) = original else {
        return Ok(Edit {
            change: Change::Unchanged,
            changes: Vec::new(),
            notes: Vec::new(),
        });
    };
    let (mut root, style) = parse(Some(text))?;
    let mut changes = Vec::new();
    let mut notes = Vec::new();

    let mut other_nvidia = false;
    if let Some(runtimes) = root.get_mut("runtimes").and_then(Value::as_object_mut) {
        if let Some(current) = runtimes.get(RUNTIME_NAME) {
            if is_ours(current, opts.runtime_path) {
                runtimes.shift_remove(RUNTIME_NAME);
                changes.push(format!("runtimes.{RUNTIME_NAME}: removed"));
            } else {
                other_nvidia = true;
                notes.push(format!(
                    "runtimes.{RUNTIME_NAME} runs {}, not nvidia-runtime: left as it is",
                    path_of(current)
                ));
            }
        }
        if runtimes.is_empty() {
            root.shift_remove("runtimes");
        }
    }
    if !other_nvidia && root.get("default-runtime").and_then(Value::as_str) == Some(RUNTIME_NAME) {
        root.shift_remove("default-runtime");
        changes.push("default-runtime: removed (dockerd falls back to runc)".into());
    }
    if opts.cdi {
        if let Some(features) = root.get_mut("features").and_then(Value::as_object_mut) {
            if features.shift_remove("cdi").is_some() {
                changes.push("features.cdi: removed".into());
            }
            if features.is_empty() {
                root.shift_remove("features");
            }
        }
    }

    let change = if changes.is_empty() {
        Change::Unchanged
    } else if root.is_empty() {
        Change::Delete
    } else {
        Change::from_texts(original, render(&root, &style))
    };
    Ok(Edit {
        change,
        changes,
        notes,
    })
}

fn is_ours(entry: &Value, runtime_path: &str) -> bool {
    let Some(path) = entry.get("path").and_then(Value::as_str) else {
        return false;
    };
    path == runtime_path
        || std::path::Path::new(path).file_name() == Some("nvidia-runtime".as_ref())
}

fn path_of(entry: &Value) -> String {
    match entry.get("path").and_then(Value::as_str) {
        Some(path) => path.to_string(),
        None => entry.to_string(),
    }
}

/// How the file was laid out, to write it back the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Style {
    /// `None`: one line, no spaces (`{"a":1}`).
    indent: Option<String>,
    trailing_newline: bool,
}

fn parse(original: Option<&str>) -> Result<(Map<String, Value>, Style), Error> {
    let new_file = Style {
        indent: Some("    ".into()),
        trailing_newline: true,
    };
    let Some(text) = original.filter(|text| !text.trim().is_empty()) else {
        return Ok((Map::new(), new_file));
    };
    let value: Value = serde_json::from_str(text).map_err(|err| Error::json(&err))?;
    let Value::Object(root) = value else {
        return Err(Error::Shape {
            key: "(the whole file)".into(),
            expected: "a JSON object",
            found: kind(&value),
        });
    };
    let body = text.trim();
    let indent = if body.contains('\n') {
        Some(
            body.lines()
                .skip(1)
                .find(|line| line.starts_with([' ', '\t']) && !line.trim().is_empty())
                .map(|line| {
                    line[..line.len() - line.trim_start_matches([' ', '\t']).len()].to_string()
                })
                .unwrap_or(new_file.indent.unwrap_or_default()),
        )
    } else {
        None
    };
    Ok((
        root,
        Style {
            indent,
            trailing_newline: text.ends_with('\n'),
        },
    ))
}

/// The object at `root[key]`, created empty (at the end) when absent.
fn object_at<'a>(
    root: &'a mut Map<String, Value>,
    key: &str,
) -> Result<&'a mut Map<String, Value>, Error> {
    let value = root.entry(key).or_insert_with(|| Value::Object(Map::new()));
    let found = kind(value);
    value.as_object_mut().ok_or(Error::Shape {
        key: key.into(),
        expected: "a JSON object",
        found,
    })
}

fn kind(value: &Value) -> String {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
    .into()
}

fn render(root: &Map<String, Value>, style: &Style) -> String {
    let mut out = Vec::new();
    match &style.indent {
        Some(indent) => {
            let formatter = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
            let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
            root.serialize(&mut serializer)
        }
        None => root.serialize(&mut serde_json::Serializer::new(&mut out)),
    }
    .expect("a JSON value always serialises into memory");
    if style.trailing_newline {
        out.push(b'\n');
    }
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    const BIN: &str = "/usr/local/bin/nvidia-runtime";

    fn opts(set_as_default: bool, cdi: bool) -> Options<'static> {
        Options {
            runtime_path: BIN,
            set_as_default,
            cdi,
        }
    }

    fn written(edit: &Edit) -> &str {
        match &edit.change {
            Change::Write(text) => text,
            other => panic!("expected a write, got {other:?}"),
        }
    }

    const USER: &str = r#"{
    "log-driver": "journald",
    "storage-driver": "overlay2",
    "registry-mirrors": [
        "https://mirror.example"
    ],
    "default-ulimits": {
        "nofile": {
            "Name": "nofile",
            "Hard": 65536,
            "Soft": 1.50
        }
    },
    "live-restore": true
}
"#;

    #[test]
    fn new_file_gets_the_runtime_only() {
        let edit = configure(None, &opts(false, false)).unwrap();
        assert_eq!(
            written(&edit),
            "{\n    \"runtimes\": {\n        \"nvidia\": {\n            \"path\": \"/usr/local/bin/nvidia-runtime\"\n        }\n    }\n}\n"
        );
        assert_eq!(edit.changes.len(), 1);
    }

    #[test]
    fn every_other_key_keeps_its_value_and_place() {
        let edit = configure(Some(USER), &opts(true, true)).unwrap();
        let out = written(&edit);
        let keys: Vec<String> = serde_json::from_str::<Map<String, Value>>(out)
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(
            keys,
            [
                "log-driver",
                "storage-driver",
                "registry-mirrors",
                "default-ulimits",
                "live-restore",
                "runtimes",
                "default-runtime",
                "features"
            ]
        );
        // the user's part is byte for byte what it was (numbers included)
        let user_part = &USER[..USER.rfind("\n}").unwrap()];
        assert!(out.starts_with(user_part), "{out}");
        assert!(out.contains("\"Soft\": 1.50"));
        assert!(out.contains("\"default-runtime\": \"nvidia\""));
        assert!(out.contains("\"features\": {\n        \"cdi\": true\n    }"));
    }

    #[test]
    fn second_run_changes_nothing() {
        let first = configure(Some(USER), &opts(true, true)).unwrap();
        let again = configure(Some(written(&first)), &opts(true, true)).unwrap();
        assert_eq!(again.change, Change::Unchanged);
        assert!(again.changes.is_empty());
    }

    #[test]
    fn remove_gives_back_the_original_bytes() {
        for original in [
            USER,
            "{\n\t\"debug\": true\n}\n",
            "{\"debug\":true}",
            "{\n  \"features\": {\"buildkit\": true}\n}",
        ] {
            let configured = configure(Some(original), &opts(true, true)).unwrap();
            let removed = remove(Some(written(&configured)), &opts(true, true)).unwrap();
            let text = written(&removed);
            if original.contains("buildkit") {
                // a one-line nested object is re-indented: same keys and values, same order
                assert_eq!(
                    serde_json::from_str::<Value>(text).unwrap(),
                    serde_json::from_str::<Value>(original).unwrap()
                );
            } else {
                assert_eq!(text, original);
            }
        }
    }

    #[test]
    fn remove_of_a_file_we_created_deletes_it() {
        let configured = configure(None, &opts(true, true)).unwrap();
        let removed = remove(Some(written(&configured)), &opts(false, true)).unwrap();
        assert_eq!(removed.change, Change::Delete);
    }

    #[test]
    fn remove_keeps_what_is_not_ours() {
        let text = r#"{"runtimes": {"nvidia": {"path": "/usr/bin/nvidia-container-runtime"}, "crun": {"path": "/usr/bin/crun"}}, "default-runtime": "nvidia", "features": {"cdi": true}}"#;
        let edit = remove(Some(text), &opts(false, false)).unwrap();
        assert_eq!(edit.change, Change::Unchanged);
        assert_eq!(edit.notes.len(), 1, "{:?}", edit.notes);
        assert!(edit.notes[0].contains("/usr/bin/nvidia-container-runtime"));

        // ours goes, the default with it; crun and (without --cdi) features.cdi stay
        let text = text.replace("/usr/bin/nvidia-container-runtime", BIN);
        let edit = remove(Some(&text), &opts(false, false)).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(written(&edit)).unwrap(),
            serde_json::json!({"runtimes": {"crun": {"path": "/usr/bin/crun"}}, "features": {"cdi": true}})
        );
        // default-runtime of another name stays
        let edit = remove(
            Some(r#"{"default-runtime": "crun", "runtimes": {"nvidia": {"path": "/opt/x/nvidia-runtime"}}}"#),
            &opts(false, false),
        )
        .unwrap();
        assert_eq!(written(&edit), r#"{"default-runtime":"crun"}"#);
    }

    #[test]
    fn an_old_nvidia_entry_is_replaced_and_said() {
        let text = r#"{"runtimes": {"nvidia": {"path": "nvidia-container-runtime", "runtimeArgs": []}}, "default-runtime": "runc"}"#;
        let edit = configure(Some(text), &opts(true, false)).unwrap();
        assert_eq!(
            written(&edit),
            r#"{"runtimes":{"nvidia":{"path":"/usr/local/bin/nvidia-runtime"}},"default-runtime":"nvidia"}"#
        );
        assert_eq!(
            edit.changes,
            [
                "runtimes.nvidia: nvidia-container-runtime -> /usr/local/bin/nvidia-runtime",
                "default-runtime: runc -> nvidia"
            ]
        );
    }

    #[test]
    fn malformed_is_refused_with_line_and_column() {
        let err = configure(
            Some("{\n  \"debug\": true,\n  \"x\" 1\n}\n"),
            &opts(false, false),
        )
        .unwrap_err();
        match &err {
            Error::Json { line, column, .. } => assert_eq!((*line, *column), (3, 7)),
            other => panic!("{other:?}"),
        }
        assert!(
            err.to_string()
                .starts_with("not valid JSON at line 3, column 7: expected `:`"),
            "{err}"
        );
        assert!(remove(Some("{,}"), &opts(false, false)).is_err());
    }

    #[test]
    fn wrong_shapes_are_refused() {
        for (text, key) in [
            ("[]", "(the whole file)"),
            (r#"{"runtimes": []}"#, "runtimes"),
            (r#"{"features": "cdi"}"#, "features"),
        ] {
            match configure(Some(text), &opts(false, true)) {
                Err(Error::Shape { key: k, .. }) => assert_eq!(k, key),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn empty_file_is_an_empty_config() {
        let edit = configure(Some("\n"), &opts(false, false)).unwrap();
        assert!(written(&edit).contains("nvidia-runtime"));
        assert_eq!(
            remove(None, &opts(false, false)).unwrap().change,
            Change::Unchanged
        );
    }
}
