//! CDI specs in the spec dirs, read as engines read them (the `cdi` crate's registry: JSON and
//! YAML, validated, devices defined twice refused) and checked for staleness as `cdi list` does
//! (`inject::cdi_hooks::staleness`: every host file a spec names exists, and a spec that records
//! its driver version records the loaded module's).

use std::error::Error as _;
use std::path::PathBuf;

use cdi::{Registry, RegistryError};
use inventory::Inventory;

use crate::{ids, Finding, Severity};

/// An error and its sources, each once: `cannot read CDI spec X: Permission denied`.
fn chain(err: &RegistryError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// `cdi.*` findings for the spec dirs; `inventory`: the loaded driver's, when there is one (a
/// spec's recorded driver version is compared with it; without it only files are checked).
pub fn check(dirs: &[PathBuf], inventory: Option<&Inventory>) -> Vec<Finding> {
    let registry = Registry::load(dirs);
    let shown: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    let mut findings = Vec::new();
    for err in registry.errors() {
        findings.push(match err {
            RegistryError::Conflict { .. } => Finding::new(
                ids::CDI_DEVICE_CONFLICT,
                Severity::Error,
                chain(err),
            )
            .fix("remove the older or duplicate spec (`nvidia-runtime cdi list` shows which file defines what)"),
            _ => Finding::new(ids::CDI_SPEC_MALFORMED, Severity::Error, chain(err)).fix(
                "fix or remove the file; engines refuse the devices of a spec they cannot read",
            ),
        });
    }
    let mut good = Vec::new();
    let mut any = false;
    for (path, spec) in registry.specs() {
        any = true;
        let stale = match inventory {
            Some(inv) => inject::cdi_hooks::staleness(spec, inv),
            None => inject::cdi_hooks::staleness_of_files(spec),
        };
        if stale.is_empty() {
            good.push(format!("{} ({})", path.display(), spec.kind));
            continue;
        }
        let reasons: Vec<String> = stale.iter().map(ToString::to_string).collect();
        findings.push(
            Finding::new(
                ids::CDI_SPEC_STALE,
                Severity::Error,
                format!(
                    "CDI spec {} is stale: {}; containers given its devices fail to start",
                    path.display(),
                    reasons.join("; ")
                ),
            )
            .fix(format!(
                "generate it again for the installed driver: `nvidia-runtime cdi refresh --output {}` (and after every driver upgrade: see the refresh units in the install guide)",
                path.display()
            )),
        );
    }
    if !any && findings.is_empty() {
        return vec![Finding::new(
            ids::CDI_NO_SPECS,
            Severity::Info,
            format!("no CDI spec in {}: engines that inject through CDI (Podman, containerd or CRI-O with CDI on, Kubernetes device plugins in CDI mode) see no GPU", shown.join(", ")),
        )
        .fix("only if such an engine is used: `nvidia-runtime cdi refresh` (writes /var/run/cdi/nvidia.yaml)")];
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
    use std::path::Path;

    use super::*;

    const VERSION_KEY: &str = inject::cdi_hooks::ANNOTATION_DRIVER_VERSION;

    fn spec(host_file: &Path, version: &str, device: &str) -> String {
        format!(
            r#"{{"cdiVersion": "0.6.0", "kind": "nvidia.com/gpu",
               "annotations": {{"{VERSION_KEY}": "{version}"}},
               "devices": [{{"name": "{device}", "containerEdits": {{"deviceNodes": [{{"path": "/dev/null"}}]}}}}],
               "containerEdits": {{"mounts": [{{"hostPath": "{}", "containerPath": "/x", "options": ["ro", "bind"]}},
                                              {{"hostPath": "tmpfs", "containerPath": "/t", "type": "tmpfs"}}]}}}}"#,
            host_file.display()
        )
    }

    /// The inventory of a host with only a loaded module of `version` (discovered, so the test
    /// does not depend on the struct's fields).
    fn inventory(version: &str) -> Inventory {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("proc/driver/nvidia");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(
            p.join("version"),
            format!("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  {version}  Release Build\n"),
        )
        .unwrap();
        let bare = inventory::Options {
            capabilities: Some(Vec::new()),
            ..Default::default()
        };
        inventory::discover_with(&inventory::Roots::all(t.path()), &bare).unwrap()
    }

    fn ids_of(f: &[Finding]) -> Vec<(&'static str, Severity)> {
        f.iter().map(|f| (f.id, f.severity)).collect()
    }

    #[test]
    fn specs() {
        let t = tempfile::tempdir().unwrap();
        let (etc, run) = (t.path().join("etc"), t.path().join("run"));
        let dirs = vec![etc.clone(), run.clone()];
        let inv = inventory("580.159.04");
        let f = check(&dirs, Some(&inv));
        assert_eq!(ids_of(&f), vec![(ids::CDI_NO_SPECS, Severity::Info)]);

        std::fs::create_dir_all(&etc).unwrap();
        std::fs::create_dir_all(&run).unwrap();
        let lib = t.path().join("libcuda.so.580.159.04");
        std::fs::write(&lib, "").unwrap();
        std::fs::write(run.join("nvidia.json"), spec(&lib, "580.159.04", "0")).unwrap();
        let f = check(&dirs, Some(&inv));
        assert_eq!(ids_of(&f), vec![(ids::CDI_SPECS_OK, Severity::Ok)]);

        // Another driver's spec (YAML read too): version recorded and its libraries gone.
        let old = t.path().join("libcuda.so.570.1");
        let yaml = format!(
            "cdiVersion: 0.6.0\nkind: example.com/gpu\nannotations:\n  {VERSION_KEY}: \"570.1\"\ndevices:\n- name: \"0\"\n  containerEdits:\n    mounts:\n    - hostPath: {}\n      containerPath: /x\n      options: [ro, bind]\n",
            old.display()
        );
        std::fs::write(etc.join("old.yaml"), yaml).unwrap();
        std::fs::write(etc.join("junk.json"), "{not json").unwrap();
        std::fs::write(etc.join("notes.txt"), "ignored").unwrap();
        let f = check(&dirs, Some(&inv));
        assert_eq!(
            ids_of(&f),
            vec![
                (ids::CDI_SPEC_MALFORMED, Severity::Error),
                (ids::CDI_SPEC_STALE, Severity::Error),
                (ids::CDI_SPECS_OK, Severity::Ok),
            ],
            "{f:#?}"
        );
        assert!(f[0].message.contains("junk.json"), "{}", f[0].message);
        assert!(f[1].message.contains("old.yaml"), "{}", f[1].message);
        assert!(f[1].message.contains("570.1"), "{}", f[1].message);
        assert!(
            f[1].message.contains("libcuda.so.570.1"),
            "{}",
            f[1].message
        );
        assert!(
            !f[1].message.contains("tmpfs"),
            "a tmpfs mount names no host file"
        );

        // Without a loaded driver only files count.
        std::fs::remove_file(etc.join("junk.json")).unwrap();
        std::fs::write(&old, "").unwrap();
        let f = check(&dirs, None);
        assert_eq!(
            ids_of(&f),
            vec![(ids::CDI_SPECS_OK, Severity::Ok)],
            "{f:#?}"
        );

        // The same device in two specs of one dir (across dirs, the later dir wins).
        std::fs::write(run.join("dup.json"), spec(&lib, "580.159.04", "0")).unwrap();
        let f = check(&dirs, Some(&inv));
        assert!(
            ids_of(&f).contains(&(ids::CDI_DEVICE_CONFLICT, Severity::Error)),
            "{f:#?}"
        );
    }
}
