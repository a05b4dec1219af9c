//! Whether Docker, containerd and CRI-O know the runtime: their config files (drop-ins
//! included) name an executable that exists, and which one. Also what cgroup driver each uses.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use toml::{Table, Value as Toml};

use crate::cgroup::{self, Driver};
use crate::{ids, Finding, Host, Severity};

/// What the engine checks found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EngineCheck {
    /// `docker.*`, `containerd.*`, `crio.*`, in that order.
    pub findings: Vec<Finding>,
    /// The cgroup driver of each engine whose config exists.
    pub cgroup_drivers: Vec<Driver>,
}

/// Checks the three engines.
pub fn check(host: &Host) -> EngineCheck {
    let mut out = EngineCheck::default();
    let v2 = cgroup::mode(&host.cgroup_root) == cgroup::Mode::V2;
    for (findings, driver) in [
        docker(&host.docker_config, &host.runtime, v2),
        containerd(&host.containerd_config, &host.runtime),
        crio(&host.crio_dir, &host.runtime),
    ] {
        out.findings.extend(findings);
        out.cgroup_drivers.extend(driver);
    }
    out
}

/// A runtime an engine's config names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The runtime's name in the engine (`nvidia`, `runc`).
    pub name: String,
    /// The executable as written: absolute, or a name the engine looks up in its PATH.
    pub path: String,
    /// The file that says so.
    pub file: PathBuf,
}

impl std::fmt::Display for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "runtime {:?} → {} (in {})",
            self.name,
            self.path,
            self.file.display()
        )
    }
}

/// The ids of one engine's findings.
struct Ids {
    engine: &'static str,
    not_configured: &'static str,
    malformed: &'static str,
    registered: &'static str,
    missing: &'static str,
    path_missing: &'static str,
    other: &'static str,
    default_unknown: &'static str,
    /// Runtimes the engine has without any config entry.
    builtin: &'static [&'static str],
    /// The command that registers us.
    configure: &'static str,
    /// What makes the engine read its config again.
    restart: &'static str,
}

impl Ids {
    /// Both commands, as a fix.
    fn configure_and_restart(&self) -> String {
        format!("`{}`, then `{}`", self.configure, self.restart)
    }
}

const DOCKER: Ids = Ids {
    engine: "docker",
    not_configured: ids::DOCKER_NOT_CONFIGURED,
    malformed: ids::DOCKER_CONFIG_MALFORMED,
    registered: ids::DOCKER_RUNTIME_REGISTERED,
    missing: ids::DOCKER_RUNTIME_MISSING,
    path_missing: ids::DOCKER_RUNTIME_PATH_MISSING,
    other: ids::DOCKER_RUNTIME_OTHER,
    default_unknown: ids::DOCKER_DEFAULT_RUNTIME_UNKNOWN,
    builtin: &["runc"],
    configure: "nvidia-runtime configure docker",
    restart: "systemctl restart docker",
};
const CONTAINERD: Ids = Ids {
    engine: "containerd",
    not_configured: ids::CONTAINERD_NOT_CONFIGURED,
    malformed: ids::CONTAINERD_CONFIG_MALFORMED,
    registered: ids::CONTAINERD_RUNTIME_REGISTERED,
    missing: ids::CONTAINERD_RUNTIME_MISSING,
    path_missing: ids::CONTAINERD_RUNTIME_PATH_MISSING,
    other: ids::CONTAINERD_RUNTIME_OTHER,
    default_unknown: ids::CONTAINERD_DEFAULT_RUNTIME_UNKNOWN,
    builtin: &["runc"],
    configure: "nvidia-runtime configure containerd",
    restart: "systemctl restart containerd",
};
const CRIO: Ids = Ids {
    engine: "CRI-O",
    not_configured: ids::CRIO_NOT_CONFIGURED,
    malformed: ids::CRIO_CONFIG_MALFORMED,
    registered: ids::CRIO_RUNTIME_REGISTERED,
    missing: ids::CRIO_RUNTIME_MISSING,
    path_missing: ids::CRIO_RUNTIME_PATH_MISSING,
    other: ids::CRIO_RUNTIME_OTHER,
    default_unknown: ids::CRIO_DEFAULT_RUNTIME_UNKNOWN,
    builtin: &["runc", "crun"],
    configure: "nvidia-runtime configure crio",
    restart: "systemctl restart crio",
};

/// `path` resolved as an engine does: absolute as is, a bare name through `$PATH`; `None`
/// when there is no executable file there.
pub fn executable(path: &str) -> Option<PathBuf> {
    let is_exec = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if path.contains('/') {
        let p = PathBuf::from(path);
        return is_exec(&p).then_some(p);
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join(path))
        .find(|p| is_exec(p))
}

fn is_ours(exe: &Path, runtime: &Path) -> bool {
    match (exe.canonicalize(), runtime.canonicalize()) {
        (Ok(a), Ok(b)) if a == b => true,
        _ => exe.file_name().is_some_and(|n| n == "nvidia-runtime"),
    }
}

/// The findings about an engine's registrations (its config exists and parsed).
fn judge(ids: &Ids, regs: &[Registration], runtime: &Path, files: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    let broken: Vec<&Registration> = regs
        .iter()
        .filter(|r| executable(&r.path).is_none())
        .collect();
    if !broken.is_empty() {
        let list: Vec<String> = broken.iter().map(ToString::to_string).collect();
        findings.push(
            Finding::new(
                ids.path_missing,
                Severity::Error,
                format!(
                    "{} names runtimes that are no executable file: {}; containers asking for them fail to start",
                    ids.engine,
                    list.join("; ")
                ),
            )
            .fix(format!(
                "install the runtime there, or let `{}` write this binary's path ({}) into the entry, then `{}`",
                ids.configure,
                runtime.display(),
                ids.restart
            )),
        );
    }
    let ours: Vec<&Registration> = regs
        .iter()
        .filter(|r| executable(&r.path).is_some_and(|exe| is_ours(&exe, runtime)))
        .collect();
    if !ours.is_empty() {
        let list: Vec<String> = ours.iter().map(ToString::to_string).collect();
        findings.push(Finding::new(
            ids.registered,
            Severity::Ok,
            format!("{} knows nvidia-runtime: {}", ids.engine, list.join("; ")),
        ));
    } else if let Some(other) = regs
        .iter()
        .find(|r| r.name == "nvidia" && executable(&r.path).is_some())
    {
        findings.push(
            Finding::new(
                ids.other,
                Severity::Warning,
                format!(
                    "{}'s runtime \"nvidia\" is {} (in {}), not nvidia-runtime",
                    ids.engine,
                    other.path,
                    other.file.display()
                ),
            )
            .fix(format!(
                "if nvidia-runtime should run GPU containers: {}",
                ids.configure_and_restart()
            )),
        );
    } else if broken.iter().all(|r| r.name != "nvidia") {
        findings.push(
            Finding::new(
                ids.missing,
                Severity::Warning,
                format!(
                    "{} has no runtime that is nvidia-runtime ({files}): it cannot run GPU containers through it",
                    ids.engine
                ),
            )
            .fix(ids.configure_and_restart()),
        );
    }
    findings
}

/// `<engine>.default-runtime-unknown` when the default runtime (`key` in `file`) is neither
/// built in nor defined: the engine refuses to start (Docker, CRI-O) or to run any pod
/// (containerd's CRI plugin).
fn default_runtime(
    ids: &Ids,
    default: Option<(&str, &Path)>,
    key: &str,
    regs: &[Registration],
    all_names: &[&str],
) -> Option<Finding> {
    let (name, file) = default?;
    if ids.builtin.contains(&name)
        || all_names.contains(&name)
        || regs.iter().any(|r| r.name == name)
    {
        return None;
    }
    Some(
        Finding::new(
            ids.default_unknown,
            Severity::Error,
            format!(
                "{}'s default runtime {name:?} ({key} in {}) is not defined there: {} fails to start or to run any container",
                ids.engine,
                file.display(),
                ids.engine
            ),
        )
        .fix(format!(
            "define it (`{} --set-as-default` for nvidia-runtime), or remove {key}; then `{}`",
            ids.configure, ids.restart
        )),
    )
}

fn not_configured(ids: &Ids, path: &Path) -> Finding {
    Finding::new(
        ids.not_configured,
        Severity::Info,
        format!("no {} config at {}", ids.engine, path.display()),
    )
    .fix(format!(
        "only if this host runs {}: {}",
        ids.engine,
        ids.configure_and_restart()
    ))
}

fn malformed(ids: &Ids, path: &Path, why: &str) -> Finding {
    Finding::new(
        ids.malformed,
        Severity::Error,
        format!(
            "{} config {} cannot be parsed: {why}",
            ids.engine,
            path.display()
        ),
    )
    .fix(format!(
        "fix the file at the place named ({} refuses to start with it)",
        ids.engine
    ))
}

/// Reads a config file; `Ok(None)` when it does not exist.
/// A FIFO or a device there is refused, never waited on (see [`inject::textfile`]).
fn read(path: &Path) -> Result<Option<String>, String> {
    inject::textfile::read_text(path, inject::textfile::MAX_CONFIG_BYTES)
        .map_err(|e| format!("cannot read it: {e}"))
}

/// Docker: `runtimes.<name>.path` (or `.options.BinaryName` of a `runtimeType` entry), `exec-opts` `native.cgroupdriver=`; the default cgroup
/// driver is systemd on cgroup v2 (Docker 20.10 and later), cgroupfs on v1.
pub fn docker(path: &Path, runtime: &Path, cgroup_v2: bool) -> (Vec<Finding>, Option<Driver>) {
    let text = match read(path) {
        Ok(Some(text)) => text,
        Ok(None) => return (vec![not_configured(&DOCKER, path)], None),
        Err(why) => return (vec![malformed(&DOCKER, path, &why)], None),
    };
    let json: Json = match serde_json::from_str(&text) {
        Ok(j) => j,
        Err(e) => {
            let why = format!("{e}");
            return (vec![malformed(&DOCKER, path, &why)], None);
        }
    };
    let mut regs = Vec::new();
    if let Some(runtimes) = json.get("runtimes").and_then(Json::as_object) {
        for (name, rt) in runtimes {
            // Docker 23+ also takes a shim with runc options instead of a path.
            let binary = rt
                .get("path")
                .or_else(|| rt.pointer("/options/BinaryName"))
                .and_then(Json::as_str);
            if let Some(p) = binary {
                regs.push(Registration {
                    name: name.clone(),
                    path: p.to_string(),
                    file: path.to_owned(),
                });
            }
        }
    }
    let driver_opt = json
        .get("exec-opts")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(Json::as_str)
        .find_map(|o| o.strip_prefix("native.cgroupdriver="));
    let driver = Driver {
        engine: "docker",
        systemd: driver_opt.map_or(cgroup_v2, |d| d == "systemd"),
        source: match driver_opt {
            Some(d) => format!("exec-opts native.cgroupdriver={d} in {}", path.display()),
            None => format!(
                "Docker's default on cgroup {}",
                if cgroup_v2 { "v2" } else { "v1" }
            ),
        },
    };
    let mut findings = judge(&DOCKER, &regs, runtime, &path.display().to_string());
    let default = json.get("default-runtime").and_then(Json::as_str);
    let names: Vec<&str> = json
        .get("runtimes")
        .and_then(Json::as_object)
        .map(|r| r.keys().map(String::as_str).collect())
        .unwrap_or_default();
    findings.extend(default_runtime(
        &DOCKER,
        default.map(|d| (d, path)),
        "default-runtime",
        &regs,
        &names,
    ));
    if let Some(default) = default {
        if let Some(f) = findings.iter_mut().find(|f| f.id == DOCKER.registered) {
            f.message
                .push_str(&format!("; default runtime: {default:?}"));
        }
    }
    (findings, Some(driver))
}

/// Every `runtimes.<name>` table anywhere in a containerd config (v1 `plugins.cri`, v2
/// `plugins."io.containerd.grpc.v1.cri"`, v3 `plugins."io.containerd.cri.v1.runtime"`):
/// (name, `options.BinaryName`, `options.SystemdCgroup`).
fn containerd_runtimes(
    table: &Table,
    out: &mut Vec<(String, Option<String>, Option<bool>)>,
    defaults: &mut Vec<String>,
) {
    if let Some(name) = table.get("default_runtime_name").and_then(Toml::as_str) {
        defaults.push(name.to_string());
    }
    for (key, value) in table {
        let Some(sub) = value.as_table() else {
            continue;
        };
        if key == "runtimes" {
            for (name, rt) in sub {
                let options = rt.get("options").and_then(Toml::as_table);
                out.push((
                    name.clone(),
                    options
                        .and_then(|o| o.get("BinaryName"))
                        .and_then(Toml::as_str)
                        .map(str::to_string),
                    options
                        .and_then(|o| o.get("SystemdCgroup"))
                        .and_then(Toml::as_bool),
                ));
            }
        } else {
            containerd_runtimes(sub, out, defaults);
        }
    }
}

/// containerd: the main config and the files its `imports` name (globs, relative to its dir),
/// later files winning for the same runtime name, as containerd merges them.
pub fn containerd(main: &Path, runtime: &Path) -> (Vec<Finding>, Option<Driver>) {
    let text = match read(main) {
        Ok(Some(text)) => text,
        Ok(None) => return (vec![not_configured(&CONTAINERD, main)], None),
        Err(why) => return (vec![malformed(&CONTAINERD, main, &why)], None),
    };
    let parse = |text: &str, path: &Path| -> Result<Table, Finding> {
        text.parse::<Table>()
            .map_err(|e| malformed(&CONTAINERD, path, e.to_string().trim()))
    };
    let table = match parse(&text, main) {
        Ok(t) => t,
        Err(f) => return (vec![f], None),
    };
    let mut files = vec![(main.to_owned(), table)];
    let dir = main.parent().unwrap_or(Path::new("/"));
    let imports: Vec<String> = files[0]
        .1
        .get("imports")
        .and_then(Toml::as_array)
        .into_iter()
        .flatten()
        .filter_map(Toml::as_str)
        .map(str::to_string)
        .collect();
    for pattern in imports {
        let full = dir.join(&pattern);
        let mut matched: Vec<PathBuf> = glob::glob(&full.to_string_lossy())
            .map(|paths| paths.flatten().collect())
            .unwrap_or_default();
        matched.sort();
        for file in matched {
            match read(&file) {
                Ok(Some(text)) => match parse(&text, &file) {
                    Ok(t) => files.push((file, t)),
                    Err(f) => return (vec![f], None),
                },
                Ok(None) => {}
                Err(why) => return (vec![malformed(&CONTAINERD, &file, &why)], None),
            }
        }
    }
    // name -> (binary, systemd, file), later files winning
    let mut runtimes: Vec<(String, Option<String>, Option<bool>, PathBuf)> = Vec::new();
    let mut default: Option<(String, PathBuf)> = None;
    for (file, table) in &files {
        let mut found = Vec::new();
        let mut defaults = Vec::new();
        containerd_runtimes(table, &mut found, &mut defaults);
        if let Some(name) = defaults.pop() {
            default = Some((name, file.clone()));
        }
        for (name, binary, systemd) in found {
            runtimes.retain(|r| r.0 != name);
            runtimes.push((name, binary, systemd, file.clone()));
        }
    }
    let regs: Vec<Registration> = runtimes
        .iter()
        .filter_map(|(name, binary, _, file)| {
            Some(Registration {
                name: name.clone(),
                path: binary.clone()?,
                file: file.clone(),
            })
        })
        .collect();
    let names: Vec<String> = files.iter().map(|(f, _)| f.display().to_string()).collect();
    let mut findings = judge(&CONTAINERD, &regs, runtime, &names.join(", "));
    let all: Vec<&str> = runtimes.iter().map(|r| r.0.as_str()).collect();
    findings.extend(default_runtime(
        &CONTAINERD,
        default.as_ref().map(|(n, f)| (n.as_str(), f.as_path())),
        "default_runtime_name",
        &regs,
        &all,
    ));
    // The driver of the runtime GPU containers use: ours if registered, else runc's.
    let pick = runtimes
        .iter()
        .find(|(_, b, _, _)| {
            b.as_deref()
                .and_then(executable)
                .is_some_and(|e| is_ours(&e, runtime))
        })
        .or_else(|| runtimes.iter().find(|r| r.0 == "runc"));
    let driver = Driver {
        engine: "containerd",
        systemd: pick.and_then(|r| r.2).unwrap_or(false),
        source: match pick {
            Some((name, _, Some(s), file)) => {
                format!(
                    "SystemdCgroup = {s} of runtime {name:?} in {}",
                    file.display()
                )
            }
            Some((name, _, None, _)) => format!("SystemdCgroup unset for runtime {name:?}"),
            None => "no runtime configured, SystemdCgroup defaults to false".into(),
        },
    };
    (findings, Some(driver))
}

/// CRI-O: `crio.conf` then every file of `crio.conf.d/` in name order, later ones winning;
/// `[crio.runtime.runtimes.<name>] runtime_path` (unset: the name, looked up in PATH) and
/// `[crio.runtime] cgroup_manager` (default systemd).
pub fn crio(dir: &Path, runtime: &Path) -> (Vec<Finding>, Option<Driver>) {
    let mut files: Vec<PathBuf> = vec![dir.join("crio.conf")];
    let mut dropins: Vec<PathBuf> = std::fs::read_dir(dir.join("crio.conf.d"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    dropins.sort();
    files.extend(dropins);
    let mut seen = Vec::new();
    let mut runtimes: Vec<Registration> = Vec::new();
    let mut manager: Option<(String, PathBuf)> = None;
    let mut default: Option<(String, PathBuf)> = None;
    for file in &files {
        let text = match read(file) {
            Ok(Some(t)) => t,
            Ok(None) => continue,
            Err(why) => return (vec![malformed(&CRIO, file, &why)], None),
        };
        let table: Table = match text.parse() {
            Ok(t) => t,
            Err(e) => {
                let why = e.to_string();
                return (vec![malformed(&CRIO, file, why.trim())], None);
            }
        };
        seen.push(file.display().to_string());
        let rt = table
            .get("crio")
            .and_then(|c| c.get("runtime"))
            .and_then(Toml::as_table);
        if let Some(d) = rt
            .and_then(|r| r.get("default_runtime"))
            .and_then(Toml::as_str)
        {
            default = Some((d.to_string(), file.clone()));
        }
        if let Some(m) = rt
            .and_then(|r| r.get("cgroup_manager"))
            .and_then(Toml::as_str)
        {
            manager = Some((m.to_string(), file.clone()));
        }
        for (name, entry) in rt
            .and_then(|r| r.get("runtimes"))
            .and_then(Toml::as_table)
            .into_iter()
            .flatten()
        {
            let path = entry
                .get("runtime_path")
                .and_then(Toml::as_str)
                .filter(|p| !p.is_empty())
                .unwrap_or(name)
                .to_string();
            runtimes.retain(|r| &r.name != name);
            runtimes.push(Registration {
                name: name.clone(),
                path,
                file: file.clone(),
            });
        }
    }
    if seen.is_empty() {
        return (vec![not_configured(&CRIO, dir)], None);
    }
    let mut findings = judge(&CRIO, &runtimes, runtime, &seen.join(", "));
    findings.extend(default_runtime(
        &CRIO,
        default.as_ref().map(|(n, f)| (n.as_str(), f.as_path())),
        "default_runtime",
        &runtimes,
        &[],
    ));
    let driver = Driver {
        engine: "crio",
        systemd: manager.as_ref().is_none_or(|(m, _)| m == "systemd"),
        source: match &manager {
            Some((m, file)) => format!("cgroup_manager = {m:?} in {}", file.display()),
            None => "CRI-O's default".into(),
        },
    };
    (findings, Some(driver))
}

#[cfg(test)]
mod tests;
