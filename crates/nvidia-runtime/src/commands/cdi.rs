//! `nvidia-runtime cdi generate | list | refresh`: this host's GPUs as a CDI spec (from the
//! inventory and plan the runtime injects with, see `inject::cdi_spec`), the CDI devices of the
//! spec dirs, and the regeneration of the spec a driver change made stale.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use inject::cdi_hooks;
use inject::cdi_spec::{self, GenerateOptions, NameStrategy};
use inject::Config;

/// What `cdi refresh` writes: a dir both Podman (4.x reads only `/etc/cdi` and `/var/run/cdi`)
/// and containerd read, and one that a reboot empties, as a spec of the running driver should.
pub const REFRESH_OUTPUT: &str = "/var/run/cdi/nvidia.yaml";

#[derive(clap::Args, Debug)]
pub struct Cdi {
    #[command(subcommand)]
    pub command: CdiCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum CdiCommand {
    /// print (or write) a CDI spec of this host's GPUs
    Generate(Generate),
    /// list the CDI devices in the spec dirs; report stale and broken specs on stderr
    List(List),
    /// regenerate the spec (default /var/run/cdi/nvidia.yaml) atomically, e.g. after a driver
    /// change
    Refresh(Refresh),
}

#[derive(clap::Args, Debug)]
pub struct SpecOptions {
    /// how GPU devices are named: index (`0`), uuid (`GPU-…`), type-index (`gpu0`); repeat or
    /// separate by commas for several names per GPU
    #[arg(
        long = "device-name-strategy",
        value_delimiter = ',',
        default_value = "index",
        value_parser = clap::builder::ValueParser::new(|s: &str| s.parse::<NameStrategy>())
    )]
    pub strategies: Vec<NameStrategy>,
    /// vendor of the device kind (`VENDOR/CLASS=NAME`)
    #[arg(long, default_value = cdi_spec::DEFAULT_VENDOR)]
    pub vendor: String,
    /// class of the device kind (`VENDOR/CLASS=NAME`)
    #[arg(long, default_value = cdi_spec::DEFAULT_CLASS)]
    pub class: String,
    /// leave out the `all` device
    #[arg(long)]
    pub no_all_device: bool,
    /// the nvidia-runtime binary the spec's hooks run (default: this binary)
    #[arg(long)]
    pub hook_path: Option<PathBuf>,
    /// where the driver libraries go in the container
    #[arg(long, default_value = cdi_spec::DEFAULT_LIBRARY_DIR)]
    pub library_dir: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct Generate {
    /// the file to write (atomically); default: standard output
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// json or yaml; default: from the output's extension, else yaml
    #[arg(long, value_parser = ["json", "yaml"])]
    pub format: Option<String>,
    #[command(flatten)]
    pub spec: SpecOptions,
}

#[derive(clap::Args, Debug)]
pub struct List {
    /// a spec dir, lowest priority first (repeatable); default: the config's
    /// `[nvidia-container-runtime.modes.cdi] spec-dirs` (/etc/cdi then /var/run/cdi)
    #[arg(long = "spec-dir")]
    pub spec_dirs: Vec<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct Refresh {
    /// the spec file to replace (json when it ends in .json, else yaml)
    #[arg(long, short, default_value = REFRESH_OUTPUT)]
    pub output: PathBuf,
    #[command(flatten)]
    pub spec: SpecOptions,
}

pub fn cdi(args: Cdi) -> Result<u8> {
    match args.command {
        CdiCommand::Generate(args) => generate(args),
        CdiCommand::List(args) => list(args),
        CdiCommand::Refresh(args) => refresh(args),
    }
}

fn generate(args: Generate) -> Result<u8> {
    let json = match args.format.as_deref() {
        Some(format) => format == "json",
        None => args
            .output
            .as_deref()
            .is_some_and(|p| p.extension().is_some_and(|e| e == "json")),
    };
    let text = spec_text(&args.spec, json, args.output.as_deref())?;
    match &args.output {
        Some(path) => write_atomically(path, text.as_bytes())?,
        None => std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .context("cannot write the spec to standard output")?,
    }
    Ok(0)
}

fn refresh(args: Refresh) -> Result<u8> {
    let json = args.output.extension().is_some_and(|e| e == "json");
    let text = spec_text(&args.spec, json, Some(&args.output))?;
    write_atomically(&args.output, text.as_bytes())?;
    tracing::info!(path = %args.output.display(), "CDI spec refreshed");
    Ok(0)
}

/// The host's spec, checked against CDI's rules, as text.
fn spec_text(options: &SpecOptions, json: bool, output: Option<&Path>) -> Result<String> {
    let config = Config::load()?;
    // Every capability: a spec serves every container, whatever it asks for.
    let discovery = inventory::Options {
        cuda_version: config.cuda_version,
        capabilities: None,
    };
    let inventory = inventory::discover_with(&config.roots(), &discovery)
        .context("cannot generate a CDI spec")?;
    if inventory.gpus.is_empty() {
        bail!(
            "cannot generate a CDI spec: the NVIDIA driver {} shows no GPU that can be handed \
             out (a CDI spec needs at least one device)",
            inventory.driver_version
        );
    }
    let hook_binary = match &options.hook_path {
        Some(path) if path.is_absolute() => path.clone(),
        Some(path) => bail!("--hook-path {} is not an absolute path", path.display()),
        None => std::env::current_exe().context("cannot tell where this binary is")?,
    };
    let mut generate = GenerateOptions::new(hook_binary);
    generate.vendor = options.vendor.clone();
    generate.class = options.class.clone();
    generate.strategies = options.strategies.clone();
    generate.all_device = !options.no_all_device;
    generate.library_dir = options.library_dir.clone();
    let spec = cdi_spec::generate(&inventory, &generate);
    let name = output.unwrap_or(Path::new("<standard output>"));
    spec.validate(name)
        .context("the generated spec breaks CDI's rules (check --vendor, --class)")?;
    Ok(if json {
        spec.to_json()?
    } else {
        spec.to_yaml()?
    })
}

/// Replaces `path` with `bytes` so that a reader sees the old file or the new one, never a
/// part: a temp file in the same dir, synced, renamed over it, the dir synced.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // A dot name: engines read only *.json/*.yaml/*.yml, so a half-written temp is never read.
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = (|| -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)?;
        // engines that read it without root (rootless Podman) need it readable, whatever the
        // caller's umask took from the mode above
        file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if let Err(err) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(err).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

fn list(args: List) -> Result<u8> {
    // Where the runtime itself looks: the config's spec-dirs (CDI's defaults when unset).
    let dirs: Vec<PathBuf> = if args.spec_dirs.is_empty() {
        Config::load()?.cdi_spec_dirs
    } else {
        args.spec_dirs
    };
    let registry = cdi::Registry::load(&dirs);
    let mut out = std::io::stdout().lock();
    for (name, _) in registry.devices() {
        writeln!(out, "{name}")?;
    }
    drop(out);
    for error in registry.errors() {
        eprintln!("warning: {error}");
    }
    // The host's driver, only where a spec says which driver it was made for.
    let needs_driver = registry
        .specs()
        .any(|(_, spec)| cdi_hooks::spec_driver_version(spec).is_some());
    let inventory = if needs_driver {
        let found = Config::load()
            .map_err(anyhow::Error::from)
            .and_then(|config| {
                inventory::discover_with(
                    &config.roots(),
                    &inventory::Options {
                        cuda_version: config.cuda_version,
                        capabilities: Some(Vec::new()),
                    },
                )
                .map_err(anyhow::Error::from)
            });
        match found {
            Ok(inventory) => Some(inventory),
            Err(err) => {
                eprintln!("warning: cannot check the specs' driver version: {err:#}");
                None
            }
        }
    } else {
        None
    };
    for (path, spec) in registry.specs() {
        let stale = match &inventory {
            Some(inventory) => cdi_hooks::staleness(spec, inventory),
            None => cdi_hooks::staleness_of_files(spec),
        };
        if stale.is_empty() {
            continue;
        }
        let reasons: Vec<String> = stale.iter().map(ToString::to_string).collect();
        let fix = if cdi_hooks::spec_driver_version(spec).is_some() {
            "run `nvidia-runtime cdi refresh`"
        } else {
            "generate it anew with the tool that wrote it, or remove it"
        };
        eprintln!(
            "warning: stale CDI spec {}: {}; {fix}",
            path.display(),
            reasons.join(", ")
        );
    }
    Ok(0)
}
