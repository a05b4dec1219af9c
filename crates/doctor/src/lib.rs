//! What is wrong with a GPU host, and how to fix it: the checks behind `nvidia-runtime doctor`.
//!
//! Every check reads files only: under the runtime's three roots (driver, dev, proc: the same
//! roots the runtime discovers the driver under, so a simulated host is checked like a real
//! one), the container engines' config files and the cgroup mount. None changes the host; the
//! optional trial container ([`trial`]) is the only one that runs anything, and it removes what
//! it made.
//!
//! A check returns [`Finding`]s. Each has a stable id (`driver.module-missing`; every id is in
//! [`ids::ALL`] and documented in docs/doctor.md), a [`Severity`], a
//! message naming what was looked at and what is wrong, and, unless all is well, a fix.
//!
//! ```no_run
//! let host = doctor::Host::new(Some(inventory::Roots::host()), "/usr/local/bin/nvidia-runtime");
//! let report = doctor::Report::new(doctor::check(&host));
//! print!("{}", report.to_text());
//! std::process::exit(report.exit_code().into());
//! ```

pub mod cdi;
pub mod cgroup;
pub mod devices;
pub mod driver;
pub mod engines;
pub mod ids;
pub mod trial;

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

/// How bad a finding is. Ordered from good to bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Checked and fine.
    Ok,
    /// Worth knowing; its fix, if any, applies only in the case the message names.
    Info,
    /// Works today, but something will break or is not set up (e.g. an engine without the
    /// runtime registered).
    Warning,
    /// GPU containers fail, or fail in some cases, on this host.
    Error,
}

impl Severity {
    /// The mark the text report puts before a finding.
    pub fn mark(self) -> &'static str {
        match self {
            Severity::Ok => "[ ok  ]",
            Severity::Info => "[info ]",
            Severity::Warning => "[warn ]",
            Severity::Error => "[ERROR]",
        }
    }
}

/// One thing a check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable id, `<area>.<what>`, e.g. `devices.uvm-missing`; one of [`ids::ALL`].
    pub id: &'static str,
    /// How bad it is.
    pub severity: Severity,
    /// What was looked at and what is wrong (or right), with the paths and numbers involved.
    pub message: String,
    /// What to do about it (commands to run, keys to set); `None` when nothing is to be done.
    pub fix: Option<String>,
}

impl Finding {
    /// A finding with no fix.
    pub fn new(id: &'static str, severity: Severity, message: impl Into<String>) -> Self {
        debug_assert!(ids::ALL.contains(&id), "undocumented finding id {id}");
        Self {
            id,
            severity,
            message: message.into(),
            fix: None,
        }
    }

    /// The same finding with a fix.
    pub fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    /// The area the id names: `devices` of `devices.uvm-missing`.
    pub fn area(&self) -> &'static str {
        self.id.split_once('.').map_or(self.id, |(area, _)| area)
    }
}

/// Default places of the engines' config files and of CDI specs.
pub const DOCKER_CONFIG: &str = "/etc/docker/daemon.json";
/// containerd's main config (drop-ins are the files its `imports` name).
pub const CONTAINERD_CONFIG: &str = "/etc/containerd/config.toml";
/// CRI-O's config dir: `crio.conf` and `crio.conf.d/`.
pub const CRIO_DIR: &str = "/etc/crio";
/// The CDI spec dirs, as the CDI spec names them (static, then dynamic).
pub const CDI_DIRS: [&str; 2] = ["/etc/cdi", "/var/run/cdi"];
/// Where the cgroup hierarchies are mounted.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// What to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The runtime's roots (from its config); `None` when its config cannot be read, which skips
    /// the driver and device checks.
    pub roots: Option<inventory::Roots>,
    /// The nvidia-runtime binary the engines should name.
    pub runtime: PathBuf,
    /// Docker's `daemon.json`.
    pub docker_config: PathBuf,
    /// containerd's main `config.toml`.
    pub containerd_config: PathBuf,
    /// CRI-O's config dir.
    pub crio_dir: PathBuf,
    /// CDI spec dirs.
    pub cdi_dirs: Vec<PathBuf>,
    /// The cgroup mount.
    pub cgroup_root: PathBuf,
}

impl Host {
    /// The default engine and CDI paths.
    pub fn new(roots: Option<inventory::Roots>, runtime: impl Into<PathBuf>) -> Self {
        Self {
            roots,
            runtime: runtime.into(),
            docker_config: DOCKER_CONFIG.into(),
            containerd_config: CONTAINERD_CONFIG.into(),
            crio_dir: CRIO_DIR.into(),
            cdi_dirs: CDI_DIRS.iter().map(PathBuf::from).collect(),
            cgroup_root: CGROUP_ROOT.into(),
        }
    }
}

/// The runtime's config could not be loaded: the driver and device checks cannot know where to
/// look (`config.invalid`, an error).
pub fn config_invalid(message: &str) -> Finding {
    Finding::new(
        ids::CONFIG_INVALID,
        Severity::Error,
        format!("the runtime's configuration cannot be used: {message}"),
    )
    .fix("fix the file or key named above (see the configuration reference); every GPU container fails until then")
}

/// The runtime's config was read (`config.loaded`, ok): which file (`None`: none, defaults)
/// and where it makes the runtime look, then one `config.ignored-key` warning per key it
/// ignores (`warnings`, the config's own words).
pub fn config_loaded(
    file: Option<&std::path::Path>,
    roots: &inventory::Roots,
    warnings: &[String],
) -> Vec<Finding> {
    let source = file.map_or("no config file, defaults".to_string(), |f| {
        f.display().to_string()
    });
    let mut findings = vec![Finding::new(
        ids::CONFIG_LOADED,
        Severity::Ok,
        format!(
            "runtime config: {source}; driver root {}, dev root {}, proc root {}",
            roots.driver.display(),
            roots.dev.display(),
            roots.proc_.display()
        ),
    )];
    for warning in warnings {
        findings.push(
            Finding::new(
                ids::CONFIG_IGNORED_KEY,
                Severity::Warning,
                // each warning names its file already
                warning.to_string(),
            )
            .fix("a misspelt key: correct its name (a misspelt key keeps its default); a setting not supported here: remove it, or see what happens instead in the configuration reference"),
        );
    }
    findings
}

/// Runs every check but the trial, in the order the report shows them: driver, devices,
/// cgroups, engines, CDI.
pub fn check(host: &Host) -> Vec<Finding> {
    let mut findings = Vec::new();
    let engines = engines::check(host);
    let cgroup = cgroup::check(&host.cgroup_root, &engines.cgroup_drivers);
    let mut inventory = None;
    if let Some(roots) = &host.roots {
        let driver = driver::check(roots);
        findings.extend(driver.findings);
        inventory = driver.inventory;
        if inventory.is_some() {
            let systemd = engines.cgroup_drivers.iter().any(|d| d.systemd);
            findings.extend(devices::check(roots, systemd));
        }
    }
    findings.extend(cgroup);
    findings.extend(engines.findings);
    findings.extend(cdi::check(&host.cdi_dirs, inventory.as_ref()));
    findings
}

/// Counts by severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Findings of severity error.
    pub errors: usize,
    /// Findings of severity warning.
    pub warnings: usize,
    /// Findings of severity info.
    pub info: usize,
    /// Findings of severity ok.
    pub ok: usize,
}

/// Every finding and their counts: what `doctor --json` prints,
/// `{"findings": [{"id", "severity", "message", "fix"}...], "summary": {"errors", "warnings", "info", "ok"}}`
/// with `fix` null where there is none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// In check order.
    pub findings: Vec<Finding>,
    /// Counts by severity.
    pub summary: Summary,
}

impl Report {
    /// Counts the findings.
    pub fn new(findings: Vec<Finding>) -> Self {
        let mut summary = Summary::default();
        for f in &findings {
            *match f.severity {
                Severity::Error => &mut summary.errors,
                Severity::Warning => &mut summary.warnings,
                Severity::Info => &mut summary.info,
                Severity::Ok => &mut summary.ok,
            } += 1;
        }
        Self { findings, summary }
    }

    /// 1 when any finding is an error, else 0 (warnings alone do not fail).
    pub fn exit_code(&self) -> u8 {
        u8::from(self.summary.errors > 0)
    }

    /// The human-readable report: findings grouped by area in check order, each with its mark,
    /// its message and an indented `fix:` line, then a one-line summary.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let mut areas: Vec<&str> = Vec::new();
        for f in &self.findings {
            if !areas.contains(&f.area()) {
                areas.push(f.area());
            }
        }
        for area in areas {
            let _ = writeln!(out, "{area}");
            for f in self.findings.iter().filter(|f| f.area() == area) {
                let _ = writeln!(out, "  {} {}  ({})", f.severity.mark(), f.message, f.id);
                if let Some(fix) = &f.fix {
                    for (i, line) in fix.lines().enumerate() {
                        let lead = if i == 0 { "fix:" } else { "    " };
                        let _ = writeln!(out, "          {lead} {line}");
                    }
                }
            }
        }
        let s = self.summary;
        let _ = writeln!(
            out,
            "\n{} error(s), {} warning(s), {} info, {} ok",
            s.errors, s.warnings, s.info, s.ok
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_and_summary() {
        let r = Report::new(vec![
            Finding::new(ids::DRIVER_MODULE_LOADED, Severity::Ok, "a"),
            Finding::new(ids::DOCKER_RUNTIME_MISSING, Severity::Warning, "b").fix("x"),
        ]);
        assert_eq!(r.exit_code(), 0);
        assert_eq!(r.summary.warnings, 1);
        let r = Report::new(vec![Finding::new(
            ids::DRIVER_MODULE_MISSING,
            Severity::Error,
            "c",
        )]);
        assert_eq!(r.exit_code(), 1);
    }

    #[test]
    fn json_shape() {
        let r = Report::new(vec![Finding::new(
            ids::DEVICES_UVM_MISSING,
            Severity::Error,
            "m",
        )
        .fix("f")]);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "findings": [{"id": "devices.uvm-missing", "severity": "error", "message": "m", "fix": "f"}],
                "summary": {"errors": 1, "warnings": 0, "info": 0, "ok": 0}
            })
        );
    }

    #[test]
    fn text_groups_by_area() {
        let r = Report::new(vec![
            Finding::new(ids::DRIVER_MODULE_LOADED, Severity::Ok, "module"),
            Finding::new(ids::DEVICES_OK, Severity::Ok, "nodes"),
            Finding::new(ids::DRIVER_PERSISTENCED_OFF, Severity::Info, "pers").fix("one\ntwo"),
        ]);
        let t = r.to_text();
        let driver = t.find("driver\n").unwrap();
        let devices = t.find("devices\n").unwrap();
        assert!(driver < t.find("pers").unwrap() && t.find("pers").unwrap() < devices);
        assert!(t.contains("fix: one\n"));
        assert!(t.contains("     two\n"));
        assert!(t.ends_with("0 error(s), 0 warning(s), 1 info, 2 ok\n"));
    }

    #[test]
    fn config_findings() {
        let roots = inventory::Roots::all("/sim");
        let f = config_loaded(None, &roots, &["unknown config key \"x\" ignored".into()]);
        assert_eq!((f[0].id, f[0].severity), (ids::CONFIG_LOADED, Severity::Ok));
        assert!(f[0]
            .message
            .contains("defaults; driver root /sim, dev root /sim, proc root /sim"));
        assert_eq!(
            (f[1].id, f[1].severity),
            (ids::CONFIG_IGNORED_KEY, Severity::Warning)
        );
        assert!(f[1].message.contains("\"x\""));
        let f = config_invalid("bad");
        assert_eq!((f.id, f.severity), (ids::CONFIG_INVALID, Severity::Error));
    }

    /// Every id has its entry in the troubleshooting page users read.
    #[test]
    fn every_id_is_documented() {
        let docs = include_str!("../../../docs/doctor.md");
        for id in ids::ALL {
            assert!(
                docs.contains(&format!("`{id}`")),
                "{id} is not in docs/doctor.md"
            );
        }
    }
}
