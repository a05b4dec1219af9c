//! The runtime's configuration: NVIDIA's `config.toml`, read unchanged, plus our own
//! `[nvidia-runtime]` table. Every key is documented in `docs/configuration.md`.

use std::path::{Path, PathBuf};

use inventory::Capability;
use toml::{Table, Value};

/// The file NVIDIA's toolkit reads; an existing one keeps working here.
pub const DEFAULT_PATH: &str = "/etc/nvidia-container-runtime/config.toml";
/// NVIDIA's variable naming another config file.
pub const PATH_ENV: &str = "NVIDIA_CTK_CONFIG_FILE_PATH";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path} named by {PATH_ENV} does not exist: create it, or unset {PATH_ENV} to use {DEFAULT_PATH}")]
    Missing { path: PathBuf },
    #[error("config file {path}: {key} = {dir:?} is not a directory: fix the path, or remove the key to use the default")]
    NoSuchRoot {
        path: PathBuf,
        key: &'static str,
        dir: PathBuf,
    },
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("malformed config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: key {key} must be {expected}")]
    Type {
        path: PathBuf,
        key: String,
        expected: &'static str,
    },
    #[error("config file {path}: supported-driver-capabilities: unknown capability {name:?}")]
    Capability { path: PathBuf, name: String },
    #[error(
        "config file {path}: [nvidia-container-runtime.modes.cdi] default-kind = {kind:?} is not \
         a CDI kind: write it as vendor/class, like \"nvidia.com/gpu\""
    )]
    CdiKind { path: PathBuf, kind: String },
}

/// NVIDIA's defaults for `[nvidia-container-runtime.modes.cdi]`.
pub const DEFAULT_CDI_KIND: &str = "nvidia.com/gpu";
pub const DEFAULT_CDI_ANNOTATION_PREFIXES: [&str; 1] = ["cdi.k8s.io/"];
/// CDI's own default spec dirs, in order: a spec in a later dir wins over one of the same
/// name in an earlier (the CDI spec; `/var/run/cdi` holds generated, transient specs).
pub const DEFAULT_CDI_SPEC_DIRS: [&str; 2] = cdi::DEFAULT_SPEC_DIRS;

/// A tmpfs on every distribution: emptied at boot, never on a disk another system mounts. Not
/// under the state root (`/run/nvidia-runtime`), whose entries are container ids.
pub const DEFAULT_INVENTORY_CACHE: &str = "/run/nvidia-runtime-cache";

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `[nvidia-container-cli] root`: where the driver's files live.
    pub driver_root: PathBuf,
    /// `[nvidia-runtime] dev-root`: where `dev/nvidia*` are; default: the driver root if it has
    /// `dev/nvidiactl`, else `/`.
    pub dev_root: PathBuf,
    /// `[nvidia-runtime] proc-root`: where `proc/driver/nvidia` is read.
    pub proc_root: PathBuf,
    /// `supported-driver-capabilities`; capabilities outside it are never injected.
    pub supported_capabilities: Vec<Capability>,
    /// `disable-require`: skip every `NVIDIA_REQUIRE_*` check.
    pub disable_require: bool,
    /// `accept-nvidia-visible-devices-envvar-when-unprivileged`.
    pub accept_envvar_unprivileged: bool,
    /// `accept-nvidia-visible-devices-as-volume-mounts`.
    pub accept_volume_mounts: bool,
    /// `[nvidia-container-runtime] log-level` (or `debug` implies debug).
    pub log_level: Option<String>,
    /// `[nvidia-runtime] cuda-version`: the CUDA version the driver supports, as "13.0";
    /// when unset it is derived from the driver version.
    pub cuda_version: Option<(u32, u32)>,
    /// `[nvidia-runtime] inventory-cache`: where the driver's files, once found, are kept for
    /// the next container (checked against the file system each time; see the inventory
    /// crate's `cache.rs`). `""` turns it off.
    pub inventory_cache: Option<PathBuf>,
    /// `[nvidia-container-runtime.modes.cdi] default-kind`: the `vendor/class` an unqualified
    /// device id takes where a CDI name is expected (annotations).
    pub cdi_default_kind: String,
    /// `[nvidia-container-runtime.modes.cdi] annotation-prefixes`: annotations whose key starts
    /// with one of these name CDI devices (value: a comma-separated list of names).
    pub cdi_annotation_prefixes: Vec<String>,
    /// `[nvidia-container-runtime.modes.cdi] spec-dirs`: where CDI spec files are read, later
    /// dirs winning.
    pub cdi_spec_dirs: Vec<PathBuf>,
    /// Keys that mean nothing here, for the caller to log.
    pub warnings: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            driver_root: PathBuf::from("/"),
            dev_root: PathBuf::from("/"),
            proc_root: PathBuf::from("/"),
            supported_capabilities: Capability::ALL.to_vec(),
            disable_require: false,
            accept_envvar_unprivileged: true,
            accept_volume_mounts: false,
            log_level: None,
            cuda_version: None,
            inventory_cache: Some(PathBuf::from(DEFAULT_INVENTORY_CACHE)),
            cdi_default_kind: DEFAULT_CDI_KIND.to_owned(),
            cdi_annotation_prefixes: DEFAULT_CDI_ANNOTATION_PREFIXES.map(str::to_owned).to_vec(),
            cdi_spec_dirs: DEFAULT_CDI_SPEC_DIRS.map(PathBuf::from).to_vec(),
            warnings: Vec::new(),
        }
    }
}

/// NVIDIA keys that are valid in their file but have no job here (we exec no CLI, no hook,
/// no ldconfig, load no modules). Accepted quietly so an existing file needs no edit.
const NVIDIA_KEYS_WITHOUT_EFFECT: &[&str] = &[
    "nvidia-container-cli.path",
    "nvidia-container-cli.environment",
    "nvidia-container-cli.debug",
    "nvidia-container-cli.ldcache",
    "nvidia-container-cli.load-kmods",
    "nvidia-container-cli.no-cgroups",
    "nvidia-container-cli.user",
    "nvidia-container-cli.ldconfig",
    "nvidia-container-runtime.runtimes",
    "nvidia-container-runtime.mode",
    "nvidia-container-runtime-hook.path",
    "nvidia-container-runtime-hook.skip-mode-detection",
    "nvidia-ctk.path",
    "swarm-resource",
    "accept-nvidia-visible-devices-as-volume-mounts-when-unprivileged",
    "features",
    "nvidia-container-runtime.log-file",
];

impl Config {
    /// `$NVIDIA_CTK_CONFIG_FILE_PATH`, else the default path. A missing default file means
    /// defaults; a missing file the variable names is an error, since defaults would then
    /// fail later with a message about something else (the driver under `/`, typically).
    pub fn load() -> Result<Self, ConfigError> {
        Self::load_from(std::env::var_os(PATH_ENV).filter(|p| !p.is_empty()))
    }

    fn load_from(named: Option<std::ffi::OsString>) -> Result<Self, ConfigError> {
        let explicit = named.is_some();
        let path = named
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_PATH));
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let config = Self::parse(&text, &path)?;
                config.check_roots(&path)?;
                Ok(config)
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && explicit => {
                Err(ConfigError::Missing { path })
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                Ok(Self::default().with_default_dev_root(None))
            }
            Err(source) => Err(ConfigError::Read { path, source }),
        }
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let table: Table = text
            .parse()
            .map_err(|err: toml::de::Error| ConfigError::Parse {
                path: path.to_owned(),
                message: err.message().to_owned(),
            })?;
        let reader = Reader {
            path,
            table: &table,
        };
        let mut config = Self::default();

        if let Some(root) = reader.string("nvidia-container-cli", "root")? {
            config.driver_root = PathBuf::from(root);
        }
        if let Some(list) = reader.string_or_list("", "supported-driver-capabilities")? {
            config.supported_capabilities = parse_capabilities(&list, path)?;
        }
        if let Some(value) = reader.bool("", "disable-require")? {
            config.disable_require = value;
        }
        if let Some(value) =
            reader.bool("", "accept-nvidia-visible-devices-envvar-when-unprivileged")?
        {
            config.accept_envvar_unprivileged = value;
        }
        if let Some(value) = reader.bool("", "accept-nvidia-visible-devices-as-volume-mounts")? {
            config.accept_volume_mounts = value;
        }
        config.log_level = reader.string("nvidia-container-runtime", "log-level")?;
        if let Some(debug) = reader.string("nvidia-container-runtime", "debug")? {
            // NVIDIA's `debug` is a log file path; here logs go where --log says, so its
            // presence only raises the level.
            if !debug.is_empty() && config.log_level.is_none() {
                config.log_level = Some("debug".into());
            }
        }
        if let Some(proc_root) = reader.string("nvidia-runtime", "proc-root")? {
            config.proc_root = PathBuf::from(proc_root);
        }
        if let Some(cuda) = reader.string("nvidia-runtime", "cuda-version")? {
            config.cuda_version =
                Some(parse_major_minor(&cuda).ok_or_else(|| ConfigError::Type {
                    path: path.to_owned(),
                    key: "nvidia-runtime.cuda-version".into(),
                    expected: "a version like \"13.0\"",
                })?);
        }
        if let Some(dir) = reader.string("nvidia-runtime", "inventory-cache")? {
            config.inventory_cache = (!dir.is_empty()).then(|| PathBuf::from(dir));
        }
        const CDI: &str = "nvidia-container-runtime.modes.cdi";
        if let Some(kind) = reader.string(CDI, "default-kind")? {
            if !is_cdi_kind(&kind) {
                return Err(ConfigError::CdiKind {
                    path: path.to_owned(),
                    kind,
                });
            }
            config.cdi_default_kind = kind;
        }
        if let Some(prefixes) = reader.string_or_list(CDI, "annotation-prefixes")? {
            config.cdi_annotation_prefixes =
                prefixes.into_iter().filter(|p| !p.is_empty()).collect();
        }
        if let Some(dirs) = reader.string_or_list(CDI, "spec-dirs")? {
            config.cdi_spec_dirs = dirs
                .into_iter()
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
                .collect();
        }
        let dev_root = reader.string("nvidia-runtime", "dev-root")?;
        config.warnings = unknown_keys(&table);
        Ok(config.with_default_dev_root(dev_root.map(PathBuf::from)))
    }

    /// The roots must exist: a driver root that is not there yet (a driver container still
    /// starting) would give containers GPUs without the driver's files, and the error of a
    /// missing proc root would blame the driver instead of the file. (Unset, each is `/` or the
    /// driver root.)
    fn check_roots(&self, path: &Path) -> Result<(), ConfigError> {
        for (key, dir) in [
            ("[nvidia-container-cli] root", &self.driver_root),
            ("[nvidia-runtime] dev-root", &self.dev_root),
            ("[nvidia-runtime] proc-root", &self.proc_root),
        ] {
            if !dir.is_dir() {
                return Err(ConfigError::NoSuchRoot {
                    path: path.to_owned(),
                    key,
                    dir: dir.clone(),
                });
            }
        }
        Ok(())
    }

    fn with_default_dev_root(mut self, explicit: Option<PathBuf>) -> Self {
        self.dev_root = explicit.unwrap_or_else(|| {
            if self.driver_root.join("dev/nvidiactl").exists() {
                self.driver_root.clone()
            } else {
                PathBuf::from("/")
            }
        });
        self
    }

    pub fn roots(&self) -> inventory::Roots {
        inventory::Roots {
            driver: self.driver_root.clone(),
            dev: self.dev_root.clone(),
            proc_: self.proc_root.clone(),
        }
    }
}

/// `vendor/class` as the CDI spec allows them: a vendor of letters, digits, `-`, `_`, `.`
/// starting and ending with a letter or digit, a class likewise without `.`.
fn is_cdi_kind(kind: &str) -> bool {
    let ok = |part: &str, dots: bool| {
        part.starts_with(|c: char| c.is_ascii_alphanumeric())
            && part.ends_with(|c: char| c.is_ascii_alphanumeric())
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || (dots && c == '.'))
    };
    kind.split_once('/')
        .is_some_and(|(vendor, class)| ok(vendor, true) && ok(class, false))
}

fn parse_major_minor(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.trim().split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |m| m.parse().ok())?;
    Some((major, minor))
}

fn parse_capabilities(list: &[String], path: &Path) -> Result<Vec<Capability>, ConfigError> {
    let mut caps = Vec::new();
    for name in list
        .iter()
        .flat_map(|item| item.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if name == "all" {
            return Ok(Capability::ALL.to_vec());
        }
        let cap: Capability = name.parse().map_err(|_| ConfigError::Capability {
            path: path.to_owned(),
            name: name.to_owned(),
        })?;
        if !caps.contains(&cap) {
            caps.push(cap);
        }
    }
    Ok(caps)
}

const OUR_KEYS: &[&str] = &[
    "nvidia-container-cli.root",
    "supported-driver-capabilities",
    "disable-require",
    "accept-nvidia-visible-devices-envvar-when-unprivileged",
    "accept-nvidia-visible-devices-as-volume-mounts",
    "nvidia-container-runtime.log-level",
    "nvidia-container-runtime.debug",
    "nvidia-runtime.dev-root",
    "nvidia-runtime.proc-root",
    "nvidia-runtime.cuda-version",
    "nvidia-runtime.inventory-cache",
    "nvidia-container-runtime.modes.cdi.default-kind",
    "nvidia-container-runtime.modes.cdi.annotation-prefixes",
    "nvidia-container-runtime.modes.cdi.spec-dirs",
];

/// NVIDIA's modes other than `cdi` (`csv`, `legacy`, `jit-cdi`, ...): no job here, accepted.
const NVIDIA_MODES_WITHOUT_EFFECT: &str = "nvidia-container-runtime.modes";

fn unknown_keys(table: &Table) -> Vec<String> {
    let mut warnings = Vec::new();
    for (key, value) in table {
        match value {
            Value::Table(inner) => {
                for (inner_key, inner_value) in inner {
                    let full = format!("{key}.{inner_key}");
                    if full == NVIDIA_MODES_WITHOUT_EFFECT {
                        if let Some(cdi) = inner_value.get("cdi").and_then(Value::as_table) {
                            for cdi_key in cdi.keys() {
                                let full = format!("{full}.cdi.{cdi_key}");
                                if !known(&full) {
                                    warnings.push(format!("unknown config key {full:?} ignored"));
                                }
                            }
                        }
                    } else if !known(&full) {
                        warnings.push(format!("unknown config key {full:?} ignored"));
                    }
                }
            }
            _ if known(key) => {}
            _ => warnings.push(format!("unknown config key {key:?} ignored")),
        }
    }
    warnings
}

fn known(key: &str) -> bool {
    OUR_KEYS.contains(&key) || NVIDIA_KEYS_WITHOUT_EFFECT.contains(&key)
}

struct Reader<'a> {
    path: &'a Path,
    table: &'a Table,
}

impl Reader<'_> {
    /// `section` is dotted for nested tables (`nvidia-container-runtime.modes.cdi`).
    fn get(&self, section: &str, key: &str) -> Option<&Value> {
        let mut table = self.table;
        for name in section.split('.').filter(|s| !s.is_empty()) {
            table = table.get(name)?.as_table()?;
        }
        table.get(key)
    }

    fn type_error(&self, section: &str, key: &str, expected: &'static str) -> ConfigError {
        let key = if section.is_empty() {
            key.to_owned()
        } else {
            format!("{section}.{key}")
        };
        ConfigError::Type {
            path: self.path.to_owned(),
            key,
            expected,
        }
    }

    fn string(&self, section: &str, key: &str) -> Result<Option<String>, ConfigError> {
        match self.get(section, key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.type_error(section, key, "a string")),
        }
    }

    fn bool(&self, section: &str, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.get(section, key) {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(*b)),
            Some(_) => Err(self.type_error(section, key, "true or false")),
        }
    }

    fn string_or_list(&self, section: &str, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
        match self.get(section, key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str().map(str::to_owned).ok_or_else(|| {
                        self.type_error(section, key, "a string or a list of strings")
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(self.type_error(section, key, "a string or a list of strings")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NVIDIA_STOCK: &str = r#"
#accept-nvidia-visible-devices-as-volume-mounts = false
#accept-nvidia-visible-devices-envvar-when-unprivileged = true
disable-require = false
supported-driver-capabilities = "compat32,compute,display,graphics,ngx,utility,video"
#swarm-resource = "DOCKER_RESOURCE_GPU"

[nvidia-container-cli]
#debug = "/var/log/nvidia-container-toolkit.log"
environment = []
#ldcache = "/etc/ld.so.cache"
ldconfig = "@/sbin/ldconfig.real"
load-kmods = true
#no-cgroups = false
#path = "/usr/bin/nvidia-container-cli"
#root = "/run/nvidia/driver"
#user = "root:video"

[nvidia-container-runtime]
#debug = "/var/log/nvidia-container-runtime.log"
log-level = "info"
mode = "auto"
runtimes = ["docker-runc", "runc", "crun"]

[nvidia-container-runtime.modes]

[nvidia-container-runtime.modes.cdi]
annotation-prefixes = ["cdi.k8s.io/"]
default-kind = "nvidia.com/gpu"
spec-dirs = ["/etc/cdi", "/var/run/cdi"]

[nvidia-container-runtime.modes.csv]
mount-spec-path = "/etc/nvidia-container-runtime/host-files-for-container.d"

[nvidia-container-runtime-hook]
path = "nvidia-container-runtime-hook"
skip-mode-detection = false

[nvidia-ctk]
path = "nvidia-ctk"
"#;

    #[test]
    fn nvidias_stock_file_parses_without_warnings() {
        let config = Config::parse(NVIDIA_STOCK, Path::new("c.toml")).unwrap();
        assert_eq!(config.warnings, Vec::<String>::new());
        assert_eq!(
            config.inventory_cache,
            Some(PathBuf::from(DEFAULT_INVENTORY_CACHE))
        );
        let off = Config::parse(
            "[nvidia-runtime]\ninventory-cache = \"\"\n",
            Path::new("c.toml"),
        );
        assert_eq!(off.unwrap().inventory_cache, None);
        assert_eq!(config.driver_root, PathBuf::from("/"));
        assert_eq!(config.supported_capabilities.len(), 7);
        assert_eq!(config.log_level.as_deref(), Some("info"));
        assert!(config.accept_envvar_unprivileged);
        assert!(!config.accept_volume_mounts);
    }

    #[test]
    fn our_keys_and_nvidia_root_are_read() {
        let text = r#"
disable-require = true
supported-driver-capabilities = "compute,utility"
accept-nvidia-visible-devices-envvar-when-unprivileged = false
[nvidia-container-cli]
root = "/run/nvidia/driver"
[nvidia-runtime]
dev-root = "/devroot"
proc-root = "/procroot"
cuda-version = "12.4"
inventory-cache = "/var/cache/x"
"#;
        let config = Config::parse(text, Path::new("c.toml")).unwrap();
        assert_eq!(config.warnings, Vec::<String>::new());
        assert_eq!(config.inventory_cache, Some(PathBuf::from("/var/cache/x")));
        assert!(config.disable_require);
        assert!(!config.accept_envvar_unprivileged);
        assert_eq!(config.driver_root, PathBuf::from("/run/nvidia/driver"));
        assert_eq!(config.dev_root, PathBuf::from("/devroot"));
        assert_eq!(config.proc_root, PathBuf::from("/procroot"));
        assert_eq!(config.cuda_version, Some((12, 4)));
        assert_eq!(
            config.supported_capabilities,
            vec![Capability::Compute, Capability::Utility]
        );
    }

    #[test]
    fn dev_root_defaults_to_driver_root_when_it_has_nvidiactl() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("dev")).unwrap();
        std::fs::write(dir.path().join("dev/nvidiactl"), "").unwrap();
        let text = format!("[nvidia-container-cli]\nroot = {:?}\n", dir.path());
        let config = Config::parse(&text, Path::new("c.toml")).unwrap();
        assert_eq!(config.dev_root, dir.path());

        let text = "[nvidia-container-cli]\nroot = \"/nonexistent\"\n";
        let config = Config::parse(text, Path::new("c.toml")).unwrap();
        assert_eq!(config.dev_root, PathBuf::from("/"));
    }

    #[test]
    fn a_named_file_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.toml");
        let err = Config::load_from(Some(missing.clone().into())).unwrap_err();
        assert!(matches!(&err, ConfigError::Missing { path } if *path == missing));
        let message = err.to_string();
        assert!(message.contains(&*missing.to_string_lossy()), "{message}");
        assert!(message.contains(PATH_ENV), "{message}");

        let present = dir.path().join("c.toml");
        std::fs::write(&present, "disable-require = true\n").unwrap();
        assert!(
            Config::load_from(Some(present.clone().into()))
                .unwrap()
                .disable_require
        );

        // so must the roots it sets
        let text = format!(
            "[nvidia-container-cli]\nroot = {:?}\n[nvidia-runtime]\nproc-root = \"/no/such/proc\"\n",
            dir.path()
        );
        std::fs::write(&present, text).unwrap();
        let err = Config::load_from(Some(present.into())).unwrap_err();
        assert!(
            matches!(&err, ConfigError::NoSuchRoot { key, .. } if key.contains("proc-root")),
            "{err}"
        );
        assert!(err.to_string().contains("/no/such/proc"), "{err}");
    }

    #[test]
    fn cdi_keys_are_read_with_nvidias_defaults() {
        let config = Config::parse(NVIDIA_STOCK, Path::new("c.toml")).unwrap();
        assert_eq!(config.cdi_default_kind, "nvidia.com/gpu");
        assert_eq!(config.cdi_annotation_prefixes, ["cdi.k8s.io/"]);
        assert_eq!(
            config.cdi_spec_dirs,
            [PathBuf::from("/etc/cdi"), PathBuf::from("/var/run/cdi")]
        );
        assert_eq!(Config::default().cdi_spec_dirs, config.cdi_spec_dirs);

        let text = r#"
[nvidia-container-runtime.modes.cdi]
default-kind = "example.com/dev"
annotation-prefixes = ["nvidia.cdi.k8s.io/", "x.io/"]
spec-dirs = "/tmp/cdi"
colour = "blue"
[nvidia-container-runtime.modes.legacy]
cuda-compat-mode = "ldconfig"
"#;
        let config = Config::parse(text, Path::new("c.toml")).unwrap();
        assert_eq!(config.cdi_default_kind, "example.com/dev");
        assert_eq!(
            config.cdi_annotation_prefixes,
            ["nvidia.cdi.k8s.io/", "x.io/"]
        );
        assert_eq!(config.cdi_spec_dirs, [PathBuf::from("/tmp/cdi")]);
        assert_eq!(
            config.warnings,
            ["unknown config key \"nvidia-container-runtime.modes.cdi.colour\" ignored"]
        );

        for bad in [
            "gpu",
            "nvidia.com/",
            "nvidia.com/gpu=0",
            "-x.com/gpu",
            "a/b.c",
        ] {
            let text = format!("[nvidia-container-runtime.modes.cdi]\ndefault-kind = {bad:?}\n");
            let err = Config::parse(&text, Path::new("/c.toml")).unwrap_err();
            assert!(matches!(err, ConfigError::CdiKind { .. }), "{bad}: {err}");
            assert!(err.to_string().contains("vendor/class"), "{err}");
        }
        let err = Config::parse(
            "[nvidia-container-runtime.modes.cdi]\nspec-dirs = 3\n",
            Path::new("/c.toml"),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("nvidia-container-runtime.modes.cdi.spec-dirs"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_warn_and_bad_files_fail_clearly() {
        let config =
            Config::parse("colour = 1\n[nvidia-runtime]\nspeed = 3\n", Path::new("c")).unwrap();
        assert_eq!(config.warnings.len(), 2, "{:?}", config.warnings);

        let err = Config::parse("disable-require = \"yes\"", Path::new("/x.toml")).unwrap_err();
        assert!(err.to_string().contains("disable-require"), "{err}");
        let err = Config::parse("[[[", Path::new("/x.toml")).unwrap_err();
        assert!(
            err.to_string().contains("malformed config file /x.toml"),
            "{err}"
        );
        let err =
            Config::parse("supported-driver-capabilities = \"warp\"", Path::new("/x")).unwrap_err();
        assert!(err.to_string().contains("\"warp\""), "{err}");
    }
}
