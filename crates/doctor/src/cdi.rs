//! CDI specs in the spec dirs: present, readable, and not stale (every host file a spec names
//! exists, and a spec that records its driver version records the loaded one).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{ids, Finding, Severity};

/// The annotation a spec written by `nvidia-runtime cdi generate` records the module's version
/// in.
pub const ANNOTATION_DRIVER_VERSION: &str = "io.github.nvidia-runtime/driver-version";

/// Spec files of the dirs, in the order the CDI registry reads them (dir order, then name):
/// `*.json`, `*.yaml`, `*.yml`.
pub fn spec_files(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut all = Vec::new();
    for dir in dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && p.extension()
                        .is_some_and(|e| e == "json" || e == "yaml" || e == "yml")
            })
            .collect();
        files.sort();
        all.extend(files);
    }
    all
}

/// Reads a spec as a JSON value (YAML is a superset of JSON; both read through the YAML
/// parser the `cdi` crate uses would be better, see `load`).
pub fn load(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    let value: Value = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| e.to_string())?
    } else {
        yaml_as_json(&text)?
    };
    for key in ["cdiVersion", "kind"] {
        if value.get(key).and_then(Value::as_str).is_none() {
            return Err(format!("no {key:?}"));
        }
    }
    Ok(value)
}

fn yaml_as_json(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|_| "YAML specs are only checked as JSON".to_string())
}

/// Why a spec is stale, one reason per line.
pub fn staleness(spec: &Value, driver_version: Option<&str>) -> Vec<String> {
    let mut why = Vec::new();
    if let (Some(recorded), Some(loaded)) = (
        spec.pointer(&format!(
            "/annotations/{}",
            ANNOTATION_DRIVER_VERSION.replace('/', "~1")
        ))
        .and_then(Value::as_str),
        driver_version,
    ) {
        if recorded != loaded {
            why.push(format!(
                "made for driver {recorded}, the loaded module is {loaded}"
            ));
        }
    }
    let mut edits = vec![spec.get("containerEdits")];
    for device in spec
        .get("devices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        edits.push(device.get("containerEdits"));
    }
    let mut seen: Vec<&str> = Vec::new();
    for e in edits.into_iter().flatten() {
        let list = |key: &str| e.get(key).and_then(Value::as_array).into_iter().flatten();
        let nodes = list("deviceNodes").filter_map(|n| {
            n.get("hostPath")
                .or_else(|| n.get("path"))
                .and_then(Value::as_str)
                .map(|p| ("device node", p))
        });
        let mounts = list("mounts").filter_map(|m| {
            let bind = m
                .get("type")
                .and_then(Value::as_str)
                .is_none_or(|t| t == "bind")
                || m.get("options")
                    .and_then(Value::as_array)
                    .is_some_and(|o| o.iter().any(|o| o == "bind" || o == "rbind"));
            bind.then(|| {
                m.get("hostPath")
                    .and_then(Value::as_str)
                    .map(|p| ("mount source", p))
            })?
        });
        let hooks = list("hooks")
            .filter_map(|h| h.get("path").and_then(Value::as_str).map(|p| ("hook", p)));
        for (what, path) in nodes.chain(mounts).chain(hooks) {
            if seen.contains(&path) {
                continue;
            }
            seen.push(path);
            if Path::new(path).symlink_metadata().is_err() {
                why.push(format!("{what} {path} does not exist"));
            }
        }
    }
    why
}

/// `cdi.*` findings for the spec dirs.
pub fn check(dirs: &[PathBuf], driver_version: Option<&str>) -> Vec<Finding> {
    let files = spec_files(dirs);
    let shown: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    if files.is_empty() {
        return vec![Finding::new(
            ids::CDI_NO_SPECS,
            Severity::Info,
            format!("no CDI spec in {}: engines that inject through CDI (Podman, containerd or CRI-O with CDI on, Kubernetes device plugins in CDI mode) see no GPU", shown.join(", ")),
        )
        .fix("only if such an engine is used: `nvidia-runtime cdi generate --output /var/run/cdi/nvidia.yaml`")];
    }
    let mut findings = Vec::new();
    let mut good = Vec::new();
    for file in &files {
        let spec = match load(file) {
            Ok(s) => s,
            Err(why) => {
                findings.push(
                    Finding::new(
                        ids::CDI_SPEC_MALFORMED,
                        Severity::Error,
                        format!("CDI spec {} cannot be used: {why}", file.display()),
                    )
                    .fix("fix or remove the file; engines refuse every device of a broken spec dir or skip it"),
                );
                continue;
            }
        };
        let stale = staleness(&spec, driver_version);
        if stale.is_empty() {
            good.push(format!(
                "{} ({})",
                file.display(),
                spec.get("kind").and_then(Value::as_str).unwrap_or("?")
            ));
        } else {
            findings.push(
                Finding::new(
                    ids::CDI_SPEC_STALE,
                    Severity::Error,
                    format!(
                        "CDI spec {} is stale: {}; containers given its devices fail to start",
                        file.display(),
                        stale.join("; ")
                    ),
                )
                .fix(format!(
                    "generate it again for the installed driver: `nvidia-runtime cdi generate --output {}` (and after every driver upgrade)",
                    file.display()
                )),
            );
        }
    }
    if !good.is_empty() {
        findings.push(Finding::new(
            ids::CDI_SPECS_OK,
            Severity::Ok,
            format!("CDI specs up to date: {}", good.join(", ")),
        ));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(host_file: &Path, version: &str) -> String {
        format!(
            r#"{{"cdiVersion": "0.6.0", "kind": "nvidia.com/gpu",
               "annotations": {{"{ANNOTATION_DRIVER_VERSION}": "{version}"}},
               "devices": [{{"name": "0", "containerEdits": {{"deviceNodes": [{{"path": "/dev/null"}}]}}}}],
               "containerEdits": {{"mounts": [{{"hostPath": "{}", "containerPath": "/x", "options": ["ro", "bind"]}},
                                              {{"hostPath": "tmpfs", "containerPath": "/t", "type": "tmpfs"}}]}}}}"#,
            host_file.display()
        )
    }

    #[test]
    fn specs() {
        let t = tempfile::tempdir().unwrap();
        let (etc, run) = (t.path().join("etc"), t.path().join("run"));
        let dirs = vec![etc.clone(), run.clone()];
        let f = check(&dirs, Some("580.159.04"));
        assert_eq!(
            (f[0].id, f[0].severity),
            (ids::CDI_NO_SPECS, Severity::Info)
        );

        std::fs::create_dir_all(&etc).unwrap();
        std::fs::create_dir_all(&run).unwrap();
        let lib = t.path().join("libcuda.so.580.159.04");
        std::fs::write(&lib, "").unwrap();
        std::fs::write(run.join("nvidia.json"), spec(&lib, "580.159.04")).unwrap();
        let f = check(&dirs, Some("580.159.04"));
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].id, f[0].severity), (ids::CDI_SPECS_OK, Severity::Ok));

        // Another driver's spec: version recorded and its libraries gone.
        let old = t.path().join("libcuda.so.570.1");
        std::fs::write(etc.join("old.json"), spec(&old, "570.1")).unwrap();
        std::fs::write(etc.join("junk.json"), "{not json").unwrap();
        std::fs::write(etc.join("notes.txt"), "ignored").unwrap();
        let f = check(&dirs, Some("580.159.04"));
        let got: Vec<_> = f.iter().map(|f| (f.id, f.severity)).collect();
        assert_eq!(
            got,
            vec![
                (ids::CDI_SPEC_MALFORMED, Severity::Error),
                (ids::CDI_SPEC_STALE, Severity::Error),
                (ids::CDI_SPECS_OK, Severity::Ok),
            ]
        );
        assert!(
            f[1].message
                .contains("made for driver 570.1, the loaded module is 580.159.04"),
            "{}",
            f[1].message
        );
        assert!(
            f[1].message.contains("libcuda.so.570.1 does not exist"),
            "{}",
            f[1].message
        );
        assert!(
            !f[1].message.contains("tmpfs"),
            "a tmpfs mount names no host file"
        );
    }
}
