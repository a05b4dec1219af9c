//! `nvidia-runtime configure docker|containerd|crio`: registers this binary as the `nvidia`
//! runtime of a container engine. The edits are `engine_config`'s pure functions; this file
//! reads and writes the files: atomically (a temp file in the same directory, fsync, rename),
//! keeping the mode and owner, with a timestamped backup (`NAME.YYYYMMDDTHHMMSSZ.bak`) of an
//! edited main config. Drop-in files are wholly ours (first line names us) and get no backup:
//! CRI-O would read a backup in its drop-in directory as config.
//!
//! `configure docker` also makes dockerd accept `--gpus`: dockerd enables it only when an
//! executable named `nvidia-container-runtime-hook` is on its PATH, so a link of that name to
//! this binary is put there (see `main.rs` for what the link does when run as a hook).

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{symlink, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use engine_config::{containerd, crio, docker, Change};

/// The name dockerd looks for on its PATH to enable `--gpus` (moby `daemon/nvidia_linux.go`).
pub const HOOK_NAME: &str = "nvidia-container-runtime-hook";

/// The PATH of dockerd under systemd (its default for services), where the hook link must be.
const STANDARD_PATH: [&str; 6] = [
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

const DROP_IN_NAME: &str = "99-nvidia.toml";

const AFTER_HELP: &str = "\
Edits the engine's config so that it runs containers through this binary as the runtime named
\"nvidia\", keeping every other setting, then says which daemon to restart. A second run changes
nothing; --remove takes away exactly what was added. An edited main config is first copied to
NAME.YYYYMMDDTHHMMSSZ.bak next to it.

Examples:
  nvidia-runtime configure docker                   # runtimes.nvidia in /etc/docker/daemon.json
  nvidia-runtime configure docker --set-as-default  # every container can ask for GPUs
  nvidia-runtime configure containerd --cdi         # /etc/containerd/conf.d/99-nvidia.toml
  nvidia-runtime configure crio --dry-run           # print /etc/crio/crio.conf.d/99-nvidia.toml
  nvidia-runtime configure docker --remove";

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Docker,
    Containerd,
    Crio,
}

/// `configure`'s arguments; its one-line help is the `Command::Configure` variant's.
#[derive(clap::Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub struct Configure {
    /// the container engine to configure
    #[arg(value_enum)]
    pub engine: Engine,
    /// make `nvidia` the engine's default runtime (docker: default-runtime, containerd:
    /// default_runtime_name, CRI-O: default_runtime)
    #[arg(long)]
    pub set_as_default: bool,
    /// also turn on the engine's CDI support (docker: features.cdi, containerd: enable_cdi and
    /// cdi_spec_dirs); with --remove, docker's features.cdi is taken away too
    #[arg(long)]
    pub cdi: bool,
    /// the engine's main config [default: /etc/docker/daemon.json, /etc/containerd/config.toml,
    /// /etc/crio/crio.conf]
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// where the drop-in file 99-nvidia.toml goes (containerd, CRI-O) [default: conf.d
    /// (containerd) or crio.conf.d (CRI-O) beside the main config: /etc/containerd/conf.d,
    /// /etc/crio/crio.conf.d]
    #[arg(long, value_name = "DIR")]
    pub drop_in_dir: Option<PathBuf>,
    /// print the resulting files on stdout and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// take away what configure added
    #[arg(long)]
    pub remove: bool,
    /// register this path instead of this binary's own (e.g. where a package installs it)
    #[arg(long, value_name = "PATH")]
    pub runtime_path: Option<PathBuf>,
    /// docker: where the nvidia-container-runtime-hook link goes [default: this binary's
    /// directory when it is on the standard PATH, else /usr/local/bin]
    #[arg(long, value_name = "DIR")]
    pub hook_dir: Option<PathBuf>,
    /// docker: do not make the nvidia-container-runtime-hook link (`--gpus` stays off unless
    /// another executable of that name is on dockerd's PATH)
    #[arg(long)]
    pub no_hook: bool,
}

pub fn configure(args: Configure) -> Result<u8> {
    // Errors here are for a person at a terminal, not for containerd's log reader.
    match run(&args) {
        Ok(()) => Ok(0),
        Err(err) => {
            eprintln!(
                "nvidia-runtime configure: {}",
                crate::logging::describe(&err)
            );
            Ok(1)
        }
    }
}

fn run(args: &Configure) -> Result<()> {
    let binary = runtime_path(args)?;
    let mut report = Report::new(args.dry_run);
    match args.engine {
        Engine::Docker => docker(args, &binary, &mut report)?,
        Engine::Containerd => containerd(args, &binary, &mut report)?,
        Engine::Crio => crio(args, &binary, &mut report)?,
    }
    report.finish(args.engine);
    Ok(())
}

/// The absolute path to register: `--runtime-path`, else this process's executable.
fn runtime_path(args: &Configure) -> Result<String> {
    let path = match &args.runtime_path {
        Some(path) => {
            if !path.is_absolute() {
                bail!(
                    "--runtime-path {} is not an absolute path (engines run it from their own \
                     working directory)",
                    path.display()
                );
            }
            if !path.is_file() {
                bail!("--runtime-path {}: no such file", path.display());
            }
            path.clone()
        }
        None => {
            let exe = fs::read_link("/proc/self/exe")
                .context("cannot read /proc/self/exe to find this binary")?;
            // A sealed copy reads `/memfd:… (deleted)`, a binary replaced since it started
            // `… (deleted)`: neither is a path an engine can run.
            let text = exe.to_string_lossy();
            if !exe.is_absolute()
                || text.starts_with("/memfd:")
                || text.ends_with(" (deleted)")
                || !exe.is_file()
            {
                bail!(
                    "cannot tell where this binary is installed (/proc/self/exe is {text}); \
                     pass --runtime-path"
                );
            }
            exe
        }
    };
    path.into_os_string()
        .into_string()
        .map_err(|path| anyhow::anyhow!("{path:?} is not UTF-8: engines' configs cannot name it"))
}

// --- Docker ------------------------------------------------------------------------------

fn docker(args: &Configure, binary: &str, report: &mut Report) -> Result<()> {
    let path = args
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("/etc/docker/daemon.json"));
    let original = read_optional(&path)?;
    let opts = docker::Options {
        runtime_path: binary,
        set_as_default: args.set_as_default,
        cdi: args.cdi,
    };
    let edit = if args.remove {
        docker::remove(original.as_deref(), &opts)
    } else {
        docker::configure(original.as_deref(), &opts)
    }
    .with_context(|| refused(&path))?;
    for note in &edit.notes {
        report.note(format!("{}: {note}", path.display()));
    }
    report.apply(
        &path,
        original.as_deref(),
        &edit.change,
        &edit.changes,
        true,
    )?;
    if report.dry_run {
        // stdout is the resulting daemon.json alone, so it can be redirected to a file
        match &edit.change {
            Change::Write(text) => print!("{text}"),
            Change::Unchanged => print!("{}", original.as_deref().unwrap_or("")),
            Change::Delete => {}
        }
    }
    if !args.no_hook {
        if args.remove {
            remove_hook_link(args, binary, report)?;
        } else {
            make_hook_link(args, binary, report)?;
        }
    }
    Ok(())
}

fn refused(path: &Path) -> String {
    format!(
        "{}: nothing was changed (fix the file or move it away, then run again)",
        path.display()
    )
}

/// Where the hook link goes: `--hook-dir`, else this binary's directory when dockerd's PATH
/// has it, else `/usr/local/bin`.
fn hook_dir(args: &Configure, binary: &str) -> PathBuf {
    if let Some(dir) = &args.hook_dir {
        return dir.clone();
    }
    match Path::new(binary).parent() {
        Some(dir) if STANDARD_PATH.iter().any(|p| Path::new(p) == dir) => dir.to_path_buf(),
        _ => PathBuf::from("/usr/local/bin"),
    }
}

/// Whether `path` is a link of ours: a symlink to this binary, or to any file named
/// `nvidia-runtime` (an older install of it, even one gone since).
fn is_our_link(path: &Path, binary: &str) -> bool {
    let Ok(target) = fs::read_link(path) else {
        return false;
    };
    let resolved = path.parent().unwrap_or(Path::new("/")).join(&target);
    target.file_name() == Some("nvidia-runtime".as_ref())
        || fs::canonicalize(&resolved).ok().as_deref() == Some(Path::new(binary))
}

fn make_hook_link(args: &Configure, binary: &str, report: &mut Report) -> Result<()> {
    let dir = hook_dir(args, binary);
    let link = dir.join(HOOK_NAME);
    // NVIDIA's own hook on dockerd's PATH already enables --gpus, and containers run by runc
    // need it: a link of ours found first would shadow it.
    let searched: Vec<PathBuf> = if args.hook_dir.is_some() {
        vec![link.clone()]
    } else {
        STANDARD_PATH
            .iter()
            .map(|d| Path::new(d).join(HOOK_NAME))
            .collect()
    };
    if let Some(foreign) = searched
        .iter()
        .find(|p| p.symlink_metadata().is_ok() && !is_our_link(p, binary))
    {
        report.note(format!(
            "{} exists and is not ours (NVIDIA's hook?): no link made. dockerd already enables \
             --gpus through it; containers get GPUs from nvidia-runtime when they run with \
             --runtime=nvidia",
            foreign.display()
        ));
        if is_our_link(&link, binary) {
            report.note(format!(
                "{} (ours) is on the PATH too: if it comes first it shadows that hook; \
                 `configure docker --remove` takes it away",
                link.display()
            ));
        }
        return Ok(());
    }
    // Any link that leads to this binary will do, the package's relative one included.
    let leads_to_us = fs::read_link(&link)
        .ok()
        .and_then(|target| fs::canonicalize(dir.join(target)).ok())
        .is_some_and(|resolved| resolved == Path::new(binary));
    if leads_to_us {
        report.unchanged(format!("{} -> {binary}", link.display()));
        return Ok(());
    }
    report.changed(format!(
        "{}: link to {binary} (dockerd enables --gpus when it finds this name on its PATH)",
        link.display()
    ));
    if report.dry_run {
        return Ok(());
    }
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = temp_name(&link);
    symlink(binary, &tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    fs::rename(&tmp, &link).map_err(|err| {
        let _ = fs::remove_file(&tmp);
        anyhow::Error::new(err).context(format!("cannot create {}", link.display()))
    })
}

fn remove_hook_link(args: &Configure, binary: &str, report: &mut Report) -> Result<()> {
    let mut dirs = vec![hook_dir(args, binary)];
    if args.hook_dir.is_none() && dirs[0] != Path::new("/usr/local/bin") {
        dirs.push(PathBuf::from("/usr/local/bin"));
    }
    for dir in dirs {
        let link = dir.join(HOOK_NAME);
        if link.symlink_metadata().is_err() {
            continue;
        }
        if !is_our_link(&link, binary) {
            report.note(format!(
                "{} is not a link to nvidia-runtime: left as it is",
                link.display()
            ));
            continue;
        }
        report.changed(format!("{}: link removed", link.display()));
        if !report.dry_run {
            fs::remove_file(&link).with_context(|| format!("cannot remove {}", link.display()))?;
        }
    }
    Ok(())
}

// --- containerd --------------------------------------------------------------------------

/// The drop-in dir that belongs with a main config: `name` in the same dir, so that a
/// `--config` elsewhere keeps its drop-in (and `--remove` finds it) there too.
fn beside(main_path: &Path, name: &str) -> PathBuf {
    main_path.parent().unwrap_or(Path::new("/")).join(name)
}

fn containerd(args: &Configure, binary: &str, report: &mut Report) -> Result<()> {
    let main_path = absolute(
        args.config
            .clone()
            .unwrap_or_else(|| PathBuf::from("/etc/containerd/config.toml")),
    )?;
    let drop_dir = absolute(
        args.drop_in_dir
            .clone()
            .unwrap_or_else(|| beside(&main_path, "conf.d")),
    )?;
    let drop_path = drop_dir.join(DROP_IN_NAME);
    let main_text = read_optional(&main_path)?;
    let installed = containerd_version();
    let version = containerd::detect_version(main_text.as_deref(), installed.map(|v| v.0))
        .with_context(|| refused(&main_path))?;
    let main_str = utf8(&main_path)?;
    let drop_str = utf8(&drop_path)?;
    let existing_drop = read_optional(&drop_path)?;
    let drop_is_ours = existing_drop.as_deref().is_none_or(containerd::is_ours);

    if args.remove {
        if !drop_is_ours {
            // its import may be what loads it: both stay
            report.note(format!(
                "{drop_str} was not written by nvidia-runtime: it and its import are left as they are"
            ));
            return Ok(());
        }
        let change = containerd::remove_import(main_text.as_deref(), version, drop_str)
            .with_context(|| refused(&main_path))?;
        let what = match change {
            Change::Delete => "removed (it held only the import)".to_string(),
            _ => format!("import of {drop_str} removed"),
        };
        report.apply(&main_path, main_text.as_deref(), &change, &[what], true)?;
        if existing_drop.is_some() {
            report.apply(
                &drop_path,
                existing_drop.as_deref(),
                &Change::Delete,
                &["removed".into()],
                false,
            )?;
        }
        return Ok(());
    }

    if !drop_is_ours {
        bail!(
            "{drop_str} exists and was not written by nvidia-runtime (NVIDIA's toolkit writes \
             a file of this name): move it away, or pass another --drop-in-dir"
        );
    }
    let opts = containerd::Options {
        runtime_path: binary,
        set_as_default: args.set_as_default,
        cdi: args.cdi,
        main_path: main_str,
    };
    let drop_text = containerd::drop_in(main_text.as_deref(), version, &opts)
        .with_context(|| refused(&main_path))?;
    let import = containerd::add_import(main_text.as_deref(), main_str, version, drop_str)
        .with_context(|| refused(&main_path))?;
    for warning in containerd::warnings(main_text.as_deref(), version) {
        report.note(format!("{main_str}: {warning}"));
    }
    if args.cdi {
        if let Some((1, minor)) = installed {
            if minor < 7 {
                report.note(format!(
                    "containerd 1.{minor} has no CDI support (1.7 and later): enable_cdi is \
                     ignored until containerd is upgraded"
                ));
            }
        }
    }
    let mut what = vec![format!(
        "runtime \"nvidia\" (config version {}, plugin {}), BinaryName {binary}",
        version.number(),
        version.cri_plugin()
    )];
    if args.set_as_default {
        what.push("default_runtime_name = \"nvidia\"".into());
    }
    if args.cdi {
        what.push("enable_cdi = true".into());
    }
    // the drop-in first: containerd refuses to start when an import is missing
    let drop_change = Change::from_texts(existing_drop.as_deref(), drop_text);
    report.apply(
        &drop_path,
        existing_drop.as_deref(),
        &drop_change,
        &what,
        false,
    )?;
    report.apply(
        &main_path,
        main_text.as_deref(),
        &import,
        &[format!("imports {drop_str}")],
        true,
    )?;
    Ok(())
}

/// `containerd --version`'s major and minor, or none when containerd is not installed.
fn containerd_version() -> Option<(u64, u64)> {
    let output = std::process::Command::new("containerd")
        .arg("--version")
        .output()
        .ok()?;
    parse_containerd_version(&String::from_utf8_lossy(&output.stdout))
}

/// Major and minor from `containerd github.com/containerd/containerd/v2 v2.0.0 <commit>`, or
/// Debian's `containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3`.
fn parse_containerd_version(text: &str) -> Option<(u64, u64)> {
    let word = text.split_whitespace().nth(2)?;
    let mut parts = word.trim_start_matches('v').split('.');
    let number = |part: Option<&str>| -> Option<u64> {
        let digits: String = part?.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    Some((number(parts.next())?, number(parts.next())?))
}

// --- CRI-O -------------------------------------------------------------------------------

fn crio(args: &Configure, binary: &str, report: &mut Report) -> Result<()> {
    let main_path = args
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("/etc/crio/crio.conf"));
    let drop_dir = args
        .drop_in_dir
        .clone()
        .unwrap_or_else(|| beside(&main_path, "crio.conf.d"));
    let drop_path = drop_dir.join(DROP_IN_NAME);
    let existing = read_optional(&drop_path)?;
    let ours = existing.as_deref().is_none_or(crio::is_ours);

    if args.remove {
        match &existing {
            Some(_) if !ours => report.note(format!(
                "{} was not written by nvidia-runtime: left as it is",
                drop_path.display()
            )),
            Some(_) => report.apply(
                &drop_path,
                existing.as_deref(),
                &Change::Delete,
                &["removed".into()],
                false,
            )?,
            None => {}
        }
        return Ok(());
    }
    if !ours {
        bail!(
            "{} exists and was not written by nvidia-runtime: move it away, or pass another \
             --drop-in-dir",
            drop_path.display()
        );
    }
    if args.cdi {
        report.note("CRI-O always reads CDI specs (/etc/cdi, /var/run/cdi): --cdi changes nothing");
    }

    // What CRI-O reads before our file: the main config, then the drop-ins sorted by name.
    let mut earlier_paths = Vec::new();
    if main_path.exists() {
        earlier_paths.push(main_path.clone());
    }
    if let Ok(entries) = fs::read_dir(&drop_dir) {
        let mut names: Vec<OsString> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.file_name())
            .filter(|name| name.as_os_str() < std::ffi::OsStr::new(DROP_IN_NAME))
            .collect();
        names.sort();
        earlier_paths.extend(names.into_iter().map(|n| drop_dir.join(n)));
    }
    let mut earlier = Vec::new();
    for path in &earlier_paths {
        let text = read_optional(path)?.unwrap_or_default();
        earlier.push(crio::Config::parse(&text).with_context(|| {
            format!(
                "{}: CRI-O's config does not parse, nothing was changed; fix it and run again",
                path.display()
            )
        })?);
    }
    let opts = crio::Options {
        runtime_path: binary,
        runtime_root: crate::cli::DEFAULT_ROOT,
        set_as_default: args.set_as_default,
    };
    let text = crio::drop_in(&earlier, &opts);
    let mut what = vec![format!("runtime \"nvidia\", runtime_path {binary}")];
    if args.set_as_default {
        what.push("default_runtime = \"nvidia\"".into());
    }
    let change = Change::from_texts(existing.as_deref(), text);
    report.apply(&drop_path, existing.as_deref(), &change, &what, false)
}

// --- files -------------------------------------------------------------------------------

/// A config's text; a FIFO, device or directory at `path` is refused, never waited on, and never
/// replaced by the write that follows (`daemon.json -> /dev/null` would have made `/dev/null` a
/// regular file).
fn read_optional(path: &Path) -> Result<Option<String>> {
    inject::textfile::read_text(path, inject::textfile::MAX_CONFIG_BYTES)
        .with_context(|| format!("cannot read {} (nothing was changed)", path.display()))
}

fn absolute(path: PathBuf) -> Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path);
    }
    Ok(std::env::current_dir()
        .context("cannot read the current directory")?
        .join(path))
}

fn utf8(path: &Path) -> Result<&str> {
    path.to_str()
        .ok_or_else(|| anyhow::anyhow!("{path:?} is not UTF-8: a TOML config cannot name it"))
}

fn temp_name(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.{}.nvidia-runtime.tmp", std::process::id()))
}

/// Replaces (or creates) `path` with `content`: temp file in the same directory, fsync, rename,
/// fsync of the directory. An existing file's mode and owner carry over; a symlink is followed
/// (its target is rewritten). With `backup`, the previous content is first copied to
/// `NAME.YYYYMMDDTHHMMSSZ.bak` next to it; returns that path.
fn write_atomic(path: &Path, content: &str, backup: bool) -> Result<Option<PathBuf>> {
    let target = match fs::canonicalize(path) {
        Ok(resolved) => resolved,
        Err(_) => path.to_path_buf(),
    };
    let dir = target.parent().unwrap_or(Path::new("/"));
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let previous = fs::metadata(&target).ok();
    if previous.as_ref().is_some_and(|m| !m.is_file()) {
        // rename(2) would replace a device node or FIFO with our file
        bail!(
            "{} is not a regular file: nothing was written",
            target.display()
        );
    }

    let backup_path = match (&previous, backup) {
        (Some(meta), true) => {
            let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
            let name = target.file_name().unwrap_or_default().to_string_lossy();
            let mut candidate = target.with_file_name(format!("{name}.{stamp}.bak"));
            let mut n = 1;
            while candidate.symlink_metadata().is_ok() {
                candidate = target.with_file_name(format!("{name}.{stamp}-{n}.bak"));
                n += 1;
            }
            let old =
                fs::read(&target).with_context(|| format!("cannot read {}", target.display()))?;
            write_new(&candidate, &old, meta)
                .with_context(|| format!("cannot write the backup {}", candidate.display()))?;
            Some(candidate)
        }
        _ => None,
    };

    let tmp = temp_name(&target);
    let result = (|| -> std::io::Result<()> {
        match &previous {
            Some(meta) => write_new(&tmp, content.as_bytes(), meta)?,
            None => {
                let mut file = create_exclusive(&tmp, 0o644)?;
                file.write_all(content.as_bytes())?;
                file.sync_all()?;
            }
        }
        fs::rename(&tmp, &target)?;
        File::open(dir)?.sync_all()
    })();
    if let Err(err) = result {
        let _ = fs::remove_file(&tmp);
        return Err(err).with_context(|| format!("cannot write {}", target.display()));
    }
    Ok(backup_path)
}

fn create_exclusive(path: &Path, mode: u32) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
}

/// A new file with `content` and the mode and owner of `like`, synced.
fn write_new(path: &Path, content: &[u8], like: &fs::Metadata) -> std::io::Result<()> {
    let mut file = create_exclusive(path, 0o600)?;
    let written = (|| {
        file.write_all(content)?;
        std::os::unix::fs::fchown(&file, Some(like.uid()), Some(like.gid()))?;
        file.set_permissions(fs::Permissions::from_mode(like.mode() & 0o7777))?;
        file.sync_all()
    })();
    if written.is_err() {
        let _ = fs::remove_file(path);
    }
    written
}

// --- what the user is told ---------------------------------------------------------------

/// Collects what happened, prints it on stderr as it goes, and the closing advice.
struct Report {
    dry_run: bool,
    changed: bool,
}

impl Report {
    fn new(dry_run: bool) -> Report {
        Report {
            dry_run,
            changed: false,
        }
    }

    fn verb(&self) -> &'static str {
        if self.dry_run {
            "would change"
        } else {
            "changed"
        }
    }

    fn changed(&mut self, line: String) {
        self.changed = true;
        eprintln!("{}: {line}", self.verb());
    }

    fn unchanged(&self, line: String) {
        eprintln!("unchanged: {line}");
    }

    fn note(&self, line: impl std::fmt::Display) {
        eprintln!("note: {line}");
    }

    /// Carries out one file's change (unless dry run) and says so. For a dry run of the
    /// TOML engines, the resulting file is printed on stdout under a `# ==> PATH <==` line.
    fn apply(
        &mut self,
        path: &Path,
        original: Option<&str>,
        change: &Change,
        what: &[String],
        backup: bool,
    ) -> Result<()> {
        let shown = path.display();
        let toml = path.extension().is_some_and(|e| e == "toml");
        match change {
            Change::Unchanged => {
                self.unchanged(format!("{shown} (already as asked)"));
                if self.dry_run && toml {
                    print!("# ==> {shown} (unchanged) <==\n{}", original.unwrap_or(""));
                }
            }
            Change::Write(text) => {
                for line in what {
                    self.changed(format!("{shown}: {line}"));
                }
                if self.dry_run {
                    if toml {
                        print!("# ==> {shown} <==\n{text}");
                    }
                } else if let Some(backup) = write_atomic(path, text, backup)? {
                    eprintln!("  (the previous {shown} is kept as {})", backup.display());
                }
            }
            Change::Delete => {
                for line in what {
                    self.changed(format!("{shown}: {line}"));
                }
                if self.dry_run {
                    if toml {
                        println!("# ==> {shown} (would be removed) <==");
                    }
                } else {
                    fs::remove_file(path).with_context(|| format!("cannot remove {shown}"))?;
                }
            }
        }
        Ok(())
    }

    fn finish(&self, engine: Engine) {
        if !self.changed {
            eprintln!("nothing to change");
            return;
        }
        if self.dry_run {
            eprintln!("dry run: nothing was written");
            return;
        }
        let restart = match engine {
            Engine::Docker => "dockerd (systemctl restart docker)",
            Engine::Containerd => "containerd (systemctl restart containerd)",
            Engine::Crio => "CRI-O (systemctl restart crio)",
        };
        eprintln!("restart {restart} for the change to take effect");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containerd_versions() {
        let cases = [
            ("containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3\n", Some((1, 6))),
            ("containerd containerd.io 1.7.27 05044ec0a9a75232cad458027ca83437aae3f4da\n", Some((1, 7))),
            ("containerd github.com/containerd/containerd/v2 v2.1.4 75cb2b7193e4e490e9fbdc236c0e811ccaba3376\n", Some((2, 1))),
            ("", None),
            ("containerd: unknown flag\n", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_containerd_version(text), expected, "{text:?}");
        }
    }

    fn args(hook_dir: Option<&str>) -> Configure {
        Configure {
            engine: Engine::Docker,
            set_as_default: false,
            cdi: false,
            config: None,
            drop_in_dir: None,
            dry_run: false,
            remove: false,
            runtime_path: None,
            hook_dir: hook_dir.map(PathBuf::from),
            no_hook: false,
        }
    }

    #[test]
    fn the_hook_link_goes_where_dockerd_looks() {
        // the binary's own directory when it is on dockerd's PATH
        assert_eq!(
            hook_dir(&args(None), "/usr/bin/nvidia-runtime"),
            Path::new("/usr/bin")
        );
        // else /usr/local/bin
        assert_eq!(
            hook_dir(&args(None), "/opt/nvidia-runtime/bin/nvidia-runtime"),
            Path::new("/usr/local/bin")
        );
        assert_eq!(
            hook_dir(&args(Some("/x")), "/usr/bin/nvidia-runtime"),
            Path::new("/x")
        );
    }
}
