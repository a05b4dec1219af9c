//! The runtime's configuration: NVIDIA's `config.toml`, read unchanged, plus our own
//! `[nvidia-runtime]` table. Every key is documented in `docs/configuration.md`.
//!
//! The file is deserialised into [`File`], which has a field for every key NVIDIA's toolkit
//! reads (its `api/config/v1` structs, and the keys its older releases wrote) and for ours.
//! `serde_ignored` collects the keys it has no field for, which are warned about by name: a
//! typo must not pass for a setting. Each NVIDIA key is then honoured, or accepted with a note
//! saying why it has no effect here, or, where its value asks for something this runtime does
//! not do, warned about, saying what happens instead.

use std::fmt;
use std::path::{Path, PathBuf};

use inventory::Capability;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

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
    /// Not TOML. `at` is where the parser stopped (`line L, column C`), when it knows.
    #[error("malformed config file {path}{at}: {message}")]
    Parse {
        path: PathBuf,
        at: Location,
        message: String,
    },
    /// TOML, but a key's value is not of the type NVIDIA's toolkit (or this runtime) reads.
    #[error("config file {path}{at}: key {key}: {message}")]
    Invalid {
        path: PathBuf,
        at: Location,
        key: String,
        message: String,
    },
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

/// Where in a file an error is, as `, line 3, column 7` (1-based), or nothing when unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Location(pub Option<(usize, usize)>);

impl Location {
    /// The line and column of byte `offset` of `text`; columns count characters.
    fn of(text: &str, offset: Option<usize>) -> Self {
        Self(offset.map(|offset| {
            let before = text.get(..offset).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            (line, column)
        }))
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some((line, column)) => write!(f, ", line {line}, column {column}"),
            None => Ok(()),
        }
    }
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
    /// `[nvidia-container-runtime] log-level` (or `debug` implies debug), as a `tracing` level
    /// name: NVIDIA's logrus names `warning`, `fatal` and `panic` become `warn`, `error`, `error`.
    pub log_level: Option<String>,
    /// `[nvidia-runtime] cuda-version`: the CUDA version the driver supports, as "13.0";
    /// when unset it is derived from the driver version.
    pub cuda_version: Option<(u32, u32)>,
    /// `[nvidia-runtime] inventory-cache`: where the driver's files, once found, are kept for
    /// the next container (checked against the file system each time; see the inventory
    /// crate's `cache.rs`), and parsed CDI spec files in its `cdi-specs/` (the cdi crate's
    /// `cache.rs`). `""` turns it off.
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
    /// For the user to see (stderr and the log, once per `create`): keys nobody knows, and
    /// NVIDIA keys whose value asks for something this runtime does not do. Each names the
    /// file and the key.
    pub warnings: Vec<String>,
    /// For the debug log: NVIDIA keys accepted without effect here, and why.
    pub notes: Vec<String>,
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
            notes: Vec::new(),
        }
    }
}

// The file as written. Field names are the keys (kebab-case); `None` is "not in the file".
// Types are NVIDIA's, so a file its toolkit accepts is accepted here and one it refuses is
// refused, except where a list was always accepted as a lone string too.

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "kebab-case")]
struct File {
    disable_require: Option<bool>,
    swarm_resource: Option<String>,
    accept_nvidia_visible_devices_envvar_when_unprivileged: Option<bool>,
    accept_nvidia_visible_devices_as_volume_mounts: Option<bool>,
    /// Not NVIDIA's (no release of its toolkit reads it), but documented here before: warned
    /// about with what it would have meant, rather than as a bare unknown key.
    accept_nvidia_visible_devices_as_volume_mounts_when_unprivileged: Option<toml::Value>,
    supported_driver_capabilities: Option<Strings>,
    nvidia_container_cli: ContainerCli,
    nvidia_ctk: Ctk,
    nvidia_container_runtime: Runtime,
    nvidia_container_runtime_hook: RuntimeHook,
    features: Features,
    nvidia_runtime: Ours,
}

/// `[nvidia-container-cli]`: how NVIDIA's hook runs `nvidia-container-cli`.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "kebab-case")]
struct ContainerCli {
    root: Option<String>,
    path: Option<String>,
    environment: Option<Vec<String>>,
    debug: Option<String>,
    ldcache: Option<String>,
    load_kmods: Option<bool>,
    no_pivot: Option<bool>,
    no_cgroups: Option<bool>,
    user: Option<String>,
    ldconfig: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "kebab-case")]
struct Ctk {
    path: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "kebab-case")]
struct Runtime {
    debug: Option<String>,
    log_level: Option<String>,
    runtimes: Option<Vec<String>>,
    mode: Option<String>,
    modes: Modes,
    /// Written by older releases of NVIDIA's toolkit; current ones ignore them.
    experimental: Option<bool>,
    discover_mode: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "kebab-case")]
struct Modes {
    csv: CsvMode,
    cdi: CdiMode,
    jit_cdi: JitCdiMode,
    legacy: LegacyMode,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "kebab-case")]
struct CsvMode {
    mount_spec_path: Option<String>,
    compat_container_root: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "kebab-case")]
struct CdiMode {
    spec_dirs: Option<Strings>,
    default_kind: Option<String>,
    annotation_prefixes: Option<Strings>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "kebab-case")]
struct JitCdiMode {
    nvcdi_feature_flags: Option<Vec<String>>,
    nvcdi_disable_hooks: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "kebab-case")]
struct LegacyMode {
    cuda_compat_mode: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "kebab-case")]
struct RuntimeHook {
    path: Option<String>,
    skip_mode_detection: Option<bool>,
}

/// `[features]`: NVIDIA's feature gates, each unset (its default), `true` or `false`.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "kebab-case")]
struct Features {
    allow_cuda_compat_libs_from_container: Option<bool>,
    allow_ldconfig_from_container: Option<bool>,
    allow_unknown_oci_spec_fields: Option<bool>,
    disable_cuda_compat_lib_hook: Option<bool>,
    disable_imex_channel_creation: Option<bool>,
    ignore_imex_channel_requests: Option<bool>,
    no_additional_gids_for_device_nodes: Option<bool>,
    // Gates of older releases of NVIDIA's toolkit, gone since.
    gds: Option<bool>,
    mofed: Option<bool>,
    nvswitch: Option<bool>,
    gdrcopy: Option<bool>,
    include_persistenced_socket: Option<bool>,
}

/// `[nvidia-runtime]`: ours.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "kebab-case")]
struct Ours {
    dev_root: Option<String>,
    proc_root: Option<String>,
    cuda_version: Option<String>,
    inventory_cache: Option<String>,
}

/// A list of strings, or one string as a list of one (this runtime always took both).
struct Strings(Vec<String>);

impl<'de> Deserialize<'de> for Strings {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StringsVisitor;
        impl<'de> Visitor<'de> for StringsVisitor {
            type Value = Strings;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Strings, E> {
                Ok(Strings(vec![value.to_owned()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strings, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Strings(items))
            }
        }
        deserializer.deserialize_any(StringsVisitor)
    }
}

/// What a file's keys tell the user, each line naming the file and the key.
struct Findings<'a> {
    file: &'a Path,
    warnings: Vec<String>,
    notes: Vec<String>,
}

impl Findings<'_> {
    fn warn(&mut self, key: &str, value: impl fmt::Debug, why: impl fmt::Display) {
        let file = self.file.display();
        self.warnings
            .push(format!("config file {file}: {key} = {value:?}: {why}"));
    }

    fn note(&mut self, key: &str, why: impl fmt::Display) {
        let file = self.file.display();
        self.notes.push(format!("config file {file}: {key}: {why}"));
    }

    /// A note on `key` when the file has it.
    fn note_if<T>(&mut self, key: &str, value: &Option<T>, why: &str) {
        if value.is_some() {
            self.note(key, why);
        }
    }
}

const NO_CLI: &str =
    "no effect: nvidia-runtime injects GPUs itself and runs no nvidia-container-cli";
const NO_HOOK: &str = "no effect: nvidia-runtime injects GPUs itself: it adds no NVIDIA hook, \
                       and removes the one `docker --gpus` adds";
const NO_CUDA_COMPAT: &str = "CUDA forward-compatibility libraries an image ships \
                              (/usr/local/cuda/compat) are not put before the driver's; the \
                              container uses the host driver's libcuda";

/// Where a structured value was when `serde_ignored` found a key it had no field for, as the
/// dotted TOML key (`nvidia-runtime.speed`, `a.b.0.c` inside an array of tables).
fn dotted(path: &serde_ignored::Path) -> String {
    use serde_ignored::Path as P;
    match path {
        P::Root => String::new(),
        P::Seq { parent, index } => join(dotted(parent), &index.to_string()),
        P::Map { parent, key } => join(dotted(parent), key),
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            dotted(parent)
        }
    }
}

fn join(parent: String, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        parent + "." + key
    }
}

/// Every table of the file, by its dotted name, with the keys its struct reads.
fn tables() -> [(&'static str, &'static [&'static str]); 12] {
    [
        ("", fields_of::<File>()),
        ("nvidia-container-cli", fields_of::<ContainerCli>()),
        ("nvidia-ctk", fields_of::<Ctk>()),
        ("nvidia-container-runtime", fields_of::<Runtime>()),
        ("nvidia-container-runtime.modes", fields_of::<Modes>()),
        ("nvidia-container-runtime.modes.csv", fields_of::<CsvMode>()),
        ("nvidia-container-runtime.modes.cdi", fields_of::<CdiMode>()),
        (
            "nvidia-container-runtime.modes.jit-cdi",
            fields_of::<JitCdiMode>(),
        ),
        (
            "nvidia-container-runtime.modes.legacy",
            fields_of::<LegacyMode>(),
        ),
        ("nvidia-container-runtime-hook", fields_of::<RuntimeHook>()),
        ("features", fields_of::<Features>()),
        ("nvidia-runtime", fields_of::<Ours>()),
    ]
}

/// The keys serde's derive gives a struct (the list it checks keys against), read by asking
/// the struct to deserialise itself from a deserializer that only takes note of them.
fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    struct Fields<'a>(&'a mut &'static [&'static str]);
    impl<'de> Deserializer<'de> for Fields<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("fields noted"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Fields(&mut fields));
    fields
}

/// The known key an unknown one (dotted) was probably meant to be: a key of the same table
/// spelt nearly alike (`dev_root`, `devroot`, `dev-rot` for `dev-root`), else the same key in
/// another table (`mode` at the top for `nvidia-container-runtime.mode`).
fn suggest(unknown: &str) -> Option<String> {
    let (table, key) = unknown.rsplit_once('.').unwrap_or(("", unknown));
    let tables = tables();
    let alike = |a: &str, b: &str| {
        a.replace('_', "-") == b || strsim::damerau_levenshtein(a, b) <= (b.len() / 5).max(1)
    };
    let full = |table: &str, key: &str| {
        if table.is_empty() {
            key.to_owned()
        } else {
            format!("{table}.{key}")
        }
    };
    let same_table = tables
        .iter()
        .find(|(name, _)| *name == table)
        .and_then(|(_, keys)| {
            keys.iter()
                .find(|known| alike(key, known))
                .map(|known| full(table, known))
        });
    same_table.or_else(|| {
        tables
            .iter()
            .find(|(name, keys)| *name != table && keys.contains(&key))
            .map(|(name, _)| full(name, key))
    })
}

/// What parsing tells [`Config::load`] beyond the config: checks that need the host.
struct Parsed {
    config: Config,
    load_kmods: bool,
}

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
        // A FIFO or a device named here would hang or flood every create.
        match crate::textfile::read_text(&path, crate::textfile::MAX_CONFIG_BYTES) {
            Ok(Some(text)) => {
                let Parsed {
                    mut config,
                    load_kmods,
                } = Self::parse_file(&text, &path)?;
                config.check_roots(&path)?;
                config.check_modules(&path, load_kmods);
                Ok(config)
            }
            Ok(None) if explicit => Err(ConfigError::Missing { path }),
            Ok(None) => Ok(Self::default().with_default_dev_root(None)),
            Err(source) => Err(ConfigError::Read { path, source }),
        }
    }

    /// The configuration `text` (read from `path`, named in errors and warnings) describes.
    /// Errors: not TOML ([`ConfigError::Parse`], with the line), a value of the wrong type
    /// ([`ConfigError::Invalid`], with the key and line), or a value this runtime cannot use
    /// (the other variants). Unknown keys and unsupported NVIDIA settings are no error: they
    /// are in [`Config::warnings`].
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        Self::parse_file(text, path).map(|parsed| parsed.config)
    }

    fn parse_file(text: &str, path: &Path) -> Result<Parsed, ConfigError> {
        let mut unknown = Vec::new();
        let mut collect = |key: serde_ignored::Path| unknown.push(dotted(&key));
        let file: File = serde_path_to_error::deserialize(serde_ignored::Deserializer::new(
            toml::Deserializer::new(text),
            &mut collect,
        ))
        .map_err(|err| {
            let key = err.path().to_string();
            let err = err.into_inner();
            let at = Location::of(text, err.span().map(|span| span.start));
            let message = err.message().trim().replace('\n', "; ");
            // Syntax is checked before any key is visited: no path means no TOML.
            if key.is_empty() || key == "." {
                ConfigError::Parse {
                    path: path.to_owned(),
                    at,
                    message,
                }
            } else {
                ConfigError::Invalid {
                    path: path.to_owned(),
                    at,
                    key,
                    message,
                }
            }
        })?;

        unknown.sort();
        let mut findings = Findings {
            file: path,
            warnings: Vec::new(),
            notes: Vec::new(),
        };
        for key in unknown {
            let file = path.display();
            let guess = match suggest(&key) {
                Some(known) => format!("did you mean {known:?}?"),
                None => "neither NVIDIA's nor nvidia-runtime's: a typo?".to_owned(),
            };
            findings.warnings.push(format!(
                "config file {file}: unknown key {key:?} ignored ({guess})"
            ));
        }
        let mut parsed = Self::from_file(file, path, &mut findings)?;
        parsed.config.warnings = findings.warnings;
        parsed.config.notes = findings.notes;
        Ok(parsed)
    }

    /// The config a deserialised file sets, the keys it honours read, the others judged.
    fn from_file(file: File, path: &Path, findings: &mut Findings) -> Result<Parsed, ConfigError> {
        let mut config = Self::default();
        let File {
            disable_require,
            swarm_resource,
            accept_nvidia_visible_devices_envvar_when_unprivileged,
            accept_nvidia_visible_devices_as_volume_mounts,
            accept_nvidia_visible_devices_as_volume_mounts_when_unprivileged,
            supported_driver_capabilities,
            nvidia_container_cli: cli,
            nvidia_ctk,
            nvidia_container_runtime: runtime,
            nvidia_container_runtime_hook: hook,
            features,
            nvidia_runtime: ours,
        } = file;

        // Honoured.
        if let Some(value) = disable_require {
            config.disable_require = value;
        }
        if let Some(value) = accept_nvidia_visible_devices_envvar_when_unprivileged {
            config.accept_envvar_unprivileged = value;
        }
        if let Some(value) = accept_nvidia_visible_devices_as_volume_mounts {
            config.accept_volume_mounts = value;
        }
        if let Some(Strings(list)) = supported_driver_capabilities {
            config.supported_capabilities = parse_capabilities(&list, path)?;
        }
        if let Some(root) = &cli.root {
            config.driver_root = PathBuf::from(root);
        }
        config.log_level = match &runtime.log_level {
            Some(level) => logrus_level(level).map(str::to_owned).or_else(|| {
                findings.warn(
                    "nvidia-container-runtime.log-level",
                    level,
                    "not a log level (error, warning, info, debug, trace): the default, \
                     warning, is used",
                );
                None
            }),
            None => None,
        };
        // NVIDIA's `debug` is a log file path ("/dev/null": none); here logs go where --log
        // says, so a real one only raises the level.
        if let Some(debug) = &runtime.debug {
            if !debug.is_empty() && debug != "/dev/null" && config.log_level.is_none() {
                config.log_level = Some("debug".into());
            }
        }
        let cdi_mode = &runtime.modes.cdi;
        if let Some(kind) = cdi_mode.default_kind.clone() {
            if !is_cdi_kind(&kind) {
                return Err(ConfigError::CdiKind {
                    path: path.to_owned(),
                    kind,
                });
            }
            config.cdi_default_kind = kind;
        }
        if let Some(Strings(prefixes)) = &cdi_mode.annotation_prefixes {
            config.cdi_annotation_prefixes =
                prefixes.iter().filter(|p| !p.is_empty()).cloned().collect();
        }
        if let Some(Strings(dirs)) = &cdi_mode.spec_dirs {
            config.cdi_spec_dirs = dirs
                .iter()
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
                .collect();
        }
        if let Some(proc_root) = ours.proc_root {
            config.proc_root = PathBuf::from(proc_root);
        }
        if let Some(cuda) = ours.cuda_version {
            config.cuda_version =
                Some(parse_major_minor(&cuda).ok_or_else(|| ConfigError::Type {
                    path: path.to_owned(),
                    key: "nvidia-runtime.cuda-version".into(),
                    expected: "a version like \"13.0\"",
                })?);
        }
        if let Some(dir) = ours.inventory_cache {
            config.inventory_cache = (!dir.is_empty()).then(|| PathBuf::from(dir));
        }

        // Top-level keys of NVIDIA's that are not honoured.
        if let Some(name) = swarm_resource.filter(|name| !name.trim().is_empty()) {
            findings.warn(
                "swarm-resource",
                &name,
                format_args!(
                    "not supported: the device list is read from NVIDIA_VISIBLE_DEVICES (and \
                     CDI annotations and device-list mounts), never from {name}: a container \
                     given GPUs only through {name} (Docker Swarm's generic resources) gets none"
                ),
            );
        }
        if let Some(value) = accept_nvidia_visible_devices_as_volume_mounts_when_unprivileged {
            findings.warn(
                "accept-nvidia-visible-devices-as-volume-mounts-when-unprivileged",
                DisplayValue(&value),
                "ignored: no release of NVIDIA's toolkit reads this key; device-list mounts are \
                 read from privileged and unprivileged containers alike when \
                 accept-nvidia-visible-devices-as-volume-mounts = true",
            );
        }

        judge_cli(&cli, findings);
        let load_kmods = cli.load_kmods == Some(true);
        judge_runtime(&runtime, findings);
        findings.note_if("nvidia-container-runtime-hook.path", &hook.path, NO_HOOK);
        findings.note_if(
            "nvidia-container-runtime-hook.skip-mode-detection",
            &hook.skip_mode_detection,
            NO_HOOK,
        );
        findings.note_if(
            "nvidia-ctk.path",
            &nvidia_ctk.path,
            "no effect: nvidia-runtime runs no nvidia-ctk: the hooks of the CDI specs it \
             generates call nvidia-runtime itself",
        );
        judge_features(&features, findings);

        Ok(Parsed {
            config: config.with_default_dev_root(ours.dev_root.map(PathBuf::from)),
            load_kmods,
        })
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

    /// `load-kmods = true` (NVIDIA's default) makes NVIDIA's CLI load the nvidia modules when
    /// they are not loaded. Nothing here loads modules, which matters only then: say so when
    /// the module is missing, and only then (on a working host it changes nothing).
    fn check_modules(&mut self, path: &Path, load_kmods: bool) {
        let version = self.proc_root.join("proc/driver/nvidia/version");
        if load_kmods && !version.exists() {
            self.warnings.push(format!(
                "config file {}: nvidia-container-cli.load-kmods = true: not supported: \
                 nvidia-runtime loads no kernel module, and the nvidia module is not loaded \
                 ({} is missing), so no GPU can be injected: load it (modprobe nvidia \
                 nvidia-uvm) or have it loaded at boot",
                path.display(),
                version.display()
            ));
        }
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

/// A TOML value as the file wrote it (`true`, `"x"`, `[1, 2]`), for messages.
struct DisplayValue<'a>(&'a toml::Value);

impl fmt::Debug for DisplayValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use toml::Value;
        match self.0 {
            Value::String(s) => write!(f, "{s:?}"),
            Value::Integer(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Boolean(b) => write!(f, "{b}"),
            Value::Datetime(d) => write!(f, "{d}"),
            Value::Array(items) => f
                .debug_list()
                .entries(items.iter().map(DisplayValue))
                .finish(),
            Value::Table(_) => f.write_str("{…}"),
        }
    }
}

/// `[nvidia-container-cli]`: NVIDIA's hook passes these to `nvidia-container-cli`, which
/// nothing here runs.
fn judge_cli(cli: &ContainerCli, findings: &mut Findings) {
    for (key, present) in [
        ("path", cli.path.is_some()),
        ("environment", cli.environment.is_some()),
        ("debug", cli.debug.is_some()),
        ("user", cli.user.is_some()),
        ("no-pivot", cli.no_pivot.is_some()),
    ] {
        if present {
            findings.note(&format!("nvidia-container-cli.{key}"), NO_CLI);
        }
    }
    if let Some(ldconfig) = &cli.ldconfig {
        findings.note(
            "nvidia-container-cli.ldconfig",
            format_args!(
                "no effect: no ldconfig runs ({ldconfig:?} is not used): nvidia-runtime writes the \
                 container's /etc/ld.so.cache itself"
            ),
        );
    }
    match cli.ldcache.as_deref() {
        None => {}
        Some("" | "/etc/ld.so.cache") => findings.note(
            "nvidia-container-cli.ldcache",
            "the same as here: the driver's libraries are found through the driver \
             root's /etc/ld.so.cache",
        ),
        Some(other) => findings.warn(
            "nvidia-container-cli.ldcache",
            other,
            "not supported: the driver's libraries are found through the driver root's \
             /etc/ld.so.cache; this file is not read",
        ),
    }
    match cli.load_kmods {
        // Warned about by `check_modules` where it matters.
        Some(true) => findings.note(
            "nvidia-container-cli.load-kmods",
            "no effect: nvidia-runtime loads no kernel module; the nvidia module is loaded \
             already (a warning says so when it is not)",
        ),
        Some(false) => findings.note(
            "nvidia-container-cli.load-kmods",
            "the same as here: nvidia-runtime never loads kernel modules",
        ),
        None => {}
    }
    match cli.no_cgroups {
        Some(true) => findings.warn(
            "nvidia-container-cli.no-cgroups",
            true,
            "not supported: the GPUs' device cgroup rules are still added to the container's \
             config.json, and the runtime applies them with the rest of its cgroup",
        ),
        Some(false) => findings.note(
            "nvidia-container-cli.no-cgroups",
            "the same as here: the GPUs' device cgroup rules are always added",
        ),
        None => {}
    }
}

/// `[nvidia-container-runtime]`: which of NVIDIA's modes, and which low-level runtime.
fn judge_runtime(runtime: &Runtime, findings: &mut Findings) {
    const MODE: &str = "nvidia-container-runtime.mode";
    match runtime.mode.as_deref() {
        None | Some("" | "auto") => {}
        Some("legacy") => findings.note(
            MODE,
            "the same as here: GPUs named by NVIDIA_VISIBLE_DEVICES are injected from the \
             driver's files (natively, with no hook), and CDI names are resolved as in \"auto\"",
        ),
        Some("jit-cdi") => findings.note(
            MODE,
            "the same as here: the injection is planned as CDI edits made from the driver's \
             files for each container, and applied without exec'ing any hook",
        ),
        Some("cdi") => findings.warn(
            MODE,
            "cdi",
            "partly supported: CDI names (annotations, NVIDIA_VISIBLE_DEVICES=vendor/class=name, \
             device-list mounts) are resolved from the spec dirs, but plain ids \
             (NVIDIA_VISIBLE_DEVICES=0) are injected from the driver, as in mode \"auto\", not \
             turned into default-kind names",
        ),
        Some("csv") => findings.warn(
            MODE,
            "csv",
            format_args!(
                "not supported: Tegra CSV mount specs{} are not read; GPUs are injected as in \
                 mode \"legacy\", from the driver's files found under the driver root, which a \
                 Tegra (Jetson) board does not have in that form",
                runtime
                    .modes
                    .csv
                    .mount_spec_path
                    .as_deref()
                    .map(|p| format!(" ({p})"))
                    .unwrap_or_default()
            ),
        ),
        Some(other) => findings.warn(
            MODE,
            other,
            "not a mode of NVIDIA's (auto, legacy, cdi, csv, jit-cdi): GPUs are injected as in \
             mode \"auto\"",
        ),
    }
    if let Some(runtimes) = &runtime.runtimes {
        const KEY: &str = "nvidia-container-runtime.runtimes";
        // NVIDIA execs the first of these found on PATH; its defaults over the releases start
        // with runc (or Docker's old name for it), which is what this runtime is compatible with.
        let runc_first = runtimes.first().is_none_or(|first| {
            let name = first.rsplit('/').next().unwrap_or(first);
            name == "runc" || name == "docker-runc"
        });
        if runc_first {
            findings.note(
                KEY,
                "no effect: nvidia-runtime is the low-level runtime itself (runc-compatible, \
                 built on youki's libcontainer) and execs none",
            );
        } else {
            findings.warn(
                KEY,
                runtimes,
                format_args!(
                    "not supported: nvidia-runtime never execs another runtime; containers are \
                     run by its own runc-compatible one, not by {:?}",
                    runtimes[0]
                ),
            );
        }
    }
    let modes = &runtime.modes;
    if runtime.mode.as_deref() != Some("csv") {
        findings.note_if(
            "nvidia-container-runtime.modes.csv.mount-spec-path",
            &modes.csv.mount_spec_path,
            "no effect: read only in mode \"csv\"",
        );
    }
    findings.note_if(
        "nvidia-container-runtime.modes.csv.compat-container-root",
        &modes.csv.compat_container_root,
        "no effect: read only in mode \"csv\"",
    );
    findings.note_if(
        "nvidia-container-runtime.modes.jit-cdi.nvcdi-feature-flags",
        &modes.jit_cdi.nvcdi_feature_flags,
        "no effect: options of NVIDIA's spec generator, which does not run here",
    );
    const DISABLE_HOOKS: &str = "nvidia-container-runtime.modes.jit-cdi.nvcdi-disable-hooks";
    match &modes.jit_cdi.nvcdi_disable_hooks {
        None => {}
        Some(hooks) if hooks.is_empty() => findings.note(
            DISABLE_HOOKS,
            "the same as here: every step NVIDIA's hooks do is done",
        ),
        Some(hooks) => findings.warn(
            DISABLE_HOOKS,
            hooks,
            "not supported: what NVIDIA's hooks do (SONAME links, the container's ld.so.cache, \
             its /proc/driver/nvidia) is always done here",
        ),
    }
    const COMPAT: &str = "nvidia-container-runtime.modes.legacy.cuda-compat-mode";
    match modes.legacy.cuda_compat_mode.as_deref() {
        None => {}
        Some("disabled") => findings.note(
            COMPAT,
            "the same as here: CUDA forward compatibility is never set up here",
        ),
        // NVIDIA's default: noted, not warned, so that its stock file is quiet; the limit is
        // documented.
        Some("ldconfig") => findings.note(COMPAT, format_args!("not done here: {NO_CUDA_COMPAT}")),
        Some(other) => findings.warn(
            COMPAT,
            other,
            format_args!("not supported: {NO_CUDA_COMPAT}"),
        ),
    }
    findings.note_if(
        "nvidia-container-runtime.experimental",
        &runtime.experimental,
        "no effect: NVIDIA's toolkit no longer reads it either",
    );
    findings.note_if(
        "nvidia-container-runtime.discover-mode",
        &runtime.discover_mode,
        "no effect: NVIDIA's toolkit no longer reads it either",
    );
}

/// What a value of a feature gate asks for: what is done here already, or what is not.
enum Effect {
    Same(&'static str),
    Unsupported(&'static str),
}

/// `[features]`: each gate either already has its value's effect here, or, set to the value
/// that asks for what is not done here, is warned about.
fn judge_features(features: &Features, findings: &mut Findings) {
    use Effect::{Same, Unsupported};
    const NO_IMEX: &str = "IMEX channels are never injected here (NVIDIA_IMEX_CHANNELS and IMEX \
                           device-list mounts are ignored), nor their device nodes created";
    const PERSISTENCED: &str = "the nvidia-persistenced socket is always mounted for the \
                                utility capability, where the host has it";
    // (gate, its value, what `true` means here, what `false` means here)
    let gates = [
        (
            "allow-cuda-compat-libs-from-container",
            features.allow_cuda_compat_libs_from_container,
            Unsupported(NO_CUDA_COMPAT),
            Same("CUDA compat libraries of an image are never used here"),
        ),
        (
            "allow-ldconfig-from-container",
            features.allow_ldconfig_from_container,
            Same(
                "no ldconfig runs, the host's or the container's: nvidia-runtime writes the \
                  container's ld.so.cache itself",
            ),
            Same("no ldconfig runs: nvidia-runtime writes the container's ld.so.cache itself"),
        ),
        (
            "allow-unknown-oci-spec-fields",
            features.allow_unknown_oci_spec_fields,
            Same("config.json is edited as JSON: fields unknown to the OCI spec are always kept"),
            Same("config.json is edited as JSON: fields unknown to the OCI spec are always kept"),
        ),
        (
            "disable-cuda-compat-lib-hook",
            features.disable_cuda_compat_lib_hook,
            Same("there is no CUDA compat hook here"),
            Same("there is no CUDA compat hook here"),
        ),
        (
            "disable-imex-channel-creation",
            features.disable_imex_channel_creation,
            Same(NO_IMEX),
            Same(NO_IMEX),
        ),
        (
            "ignore-imex-channel-requests",
            features.ignore_imex_channel_requests,
            Same(NO_IMEX),
            Unsupported(NO_IMEX),
        ),
        (
            "no-additional-gids-for-device-nodes",
            features.no_additional_gids_for_device_nodes,
            Same("no additional gids are added for the driver's device nodes here"),
            Unsupported(
                "no additional gids are added for the driver's device \
                         nodes: a container user outside the nodes' group may not open them",
            ),
        ),
        (
            "gds",
            features.gds,
            Unsupported("GPUDirect Storage devices and libraries are not injected"),
            Same("GPUDirect Storage is never injected here"),
        ),
        (
            "mofed",
            features.mofed,
            Unsupported("MOFED (InfiniBand) devices are not injected"),
            Same("MOFED devices are never injected here"),
        ),
        (
            "nvswitch",
            features.nvswitch,
            Unsupported("NVSwitch devices are not injected"),
            Same("NVSwitch devices are never injected here"),
        ),
        (
            "gdrcopy",
            features.gdrcopy,
            Unsupported("GDRCopy devices are not injected"),
            Same("GDRCopy devices are never injected here"),
        ),
        (
            "include-persistenced-socket",
            features.include_persistenced_socket,
            Same(PERSISTENCED),
            Unsupported(PERSISTENCED),
        ),
    ];
    for (name, value, if_true, if_false) in gates {
        let Some(on) = value else { continue };
        let key = format!("features.{name}");
        match if on { if_true } else { if_false } {
            Same(why) => findings.note(&key, format_args!("the same as here: {why}")),
            Unsupported(why) => findings.warn(&key, on, format_args!("not supported: {why}")),
        }
    }
}

/// NVIDIA's log levels (logrus's) as `tracing` names them; `None` for no level.
fn logrus_level(level: &str) -> Option<&'static str> {
    Some(match level.trim().to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "warn" | "warning" => "warn",
        "error" | "fatal" | "panic" => "error",
        _ => return None,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// NVIDIA's stock file, as `nvidia-ctk config default` writes it (its toml_test.go) with
    /// Ubuntu's ldconfig.
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
runtimes = ["runc", "crun"]

[nvidia-container-runtime.modes]

[nvidia-container-runtime.modes.cdi]
annotation-prefixes = ["cdi.k8s.io/"]
default-kind = "nvidia.com/gpu"
spec-dirs = ["/etc/cdi", "/var/run/cdi"]

[nvidia-container-runtime.modes.csv]
mount-spec-path = "/etc/nvidia-container-runtime/host-files-for-container.d"

[nvidia-container-runtime.modes.legacy]
cuda-compat-mode = "ldconfig"

[nvidia-container-runtime-hook]
path = "nvidia-container-runtime-hook"
skip-mode-detection = false

[nvidia-ctk]
path = "nvidia-ctk"
"#;

    /// Every key of NVIDIA's stock file uncommented, as an admin may have it, and the keys of
    /// its older releases' files (`docker-runc`, `experimental`, the old feature gates).
    const NVIDIA_EVERY_KEY: &str = r#"
accept-nvidia-visible-devices-as-volume-mounts = false
accept-nvidia-visible-devices-envvar-when-unprivileged = true
disable-require = false
supported-driver-capabilities = "compat32,compute,display,graphics,ngx,utility,video"
swarm-resource = ""

[nvidia-container-cli]
debug = "/var/log/nvidia-container-toolkit.log"
environment = []
ldcache = "/etc/ld.so.cache"
ldconfig = "@/sbin/ldconfig"
load-kmods = false
no-cgroups = false
no-pivot = false
path = "/usr/bin/nvidia-container-cli"
root = "/"
user = "root:video"

[nvidia-container-runtime]
debug = "/dev/null"
log-level = "warning"
mode = "legacy"
runtimes = ["docker-runc", "runc", "crun"]
experimental = false
discover-mode = "legacy"

[nvidia-container-runtime.modes.cdi]
annotation-prefixes = ["cdi.k8s.io/"]
default-kind = "nvidia.com/gpu"
spec-dirs = ["/etc/cdi", "/var/run/cdi"]

[nvidia-container-runtime.modes.csv]
mount-spec-path = "/etc/nvidia-container-runtime/host-files-for-container.d"
compat-container-root = "/usr/local/cuda/compat-orin"

[nvidia-container-runtime.modes.jit-cdi]
nvcdi-feature-flags = ["disable-ipc-discoverer"]
nvcdi-disable-hooks = []

[nvidia-container-runtime.modes.legacy]
cuda-compat-mode = "disabled"

[nvidia-container-runtime-hook]
path = "/usr/bin/nvidia-container-runtime-hook"
skip-mode-detection = true

[nvidia-ctk]
path = "/usr/bin/nvidia-ctk"

[features]
allow-cuda-compat-libs-from-container = false
allow-ldconfig-from-container = true
allow-unknown-oci-spec-fields = true
disable-cuda-compat-lib-hook = true
disable-imex-channel-creation = true
ignore-imex-channel-requests = true
no-additional-gids-for-device-nodes = true
gds = false
mofed = false
nvswitch = false
gdrcopy = false
include-persistenced-socket = true
"#;

    fn parse(text: &str) -> Config {
        Config::parse(text, Path::new("/etc/c.toml")).unwrap()
    }

    /// The one warning of `text`, which must name `key` and the file.
    fn warning_of(text: &str, key: &str) -> String {
        let config = parse(text);
        assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
        let warning = config.warnings[0].clone();
        assert!(warning.contains(key), "{warning}");
        assert!(warning.contains("config file /etc/c.toml"), "{warning}");
        warning
    }

    #[test]
    fn nvidias_stock_file_parses_without_warnings() {
        let config = parse(NVIDIA_STOCK);
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
        // Each key without effect is noted, by name, for the debug log.
        for key in [
            "nvidia-container-cli.environment",
            "nvidia-container-cli.ldconfig",
            "nvidia-container-cli.load-kmods",
            "nvidia-container-runtime.runtimes",
            "nvidia-container-runtime.modes.csv.mount-spec-path",
            "nvidia-container-runtime.modes.legacy.cuda-compat-mode",
            "nvidia-container-runtime-hook.path",
            "nvidia-container-runtime-hook.skip-mode-detection",
            "nvidia-ctk.path",
        ] {
            let note = format!("config file /etc/c.toml: {key}: ");
            assert!(
                config.notes.iter().any(|n| n.starts_with(&note)),
                "{key}: {:#?}",
                config.notes
            );
        }
        assert_eq!(config.notes.len(), 9, "{:#?}", config.notes);
    }

    #[test]
    fn every_nvidia_key_is_known_and_defaults_warn_about_nothing() {
        let config = parse(NVIDIA_EVERY_KEY);
        assert_eq!(config.warnings, Vec::<String>::new());
        assert_eq!(config.log_level.as_deref(), Some("warn"));
        // 9 [nvidia-container-cli] keys (not root), 4 [nvidia-container-runtime] ones (not
        // debug and log-level), 5 of its modes (not cdi), 2 of the hook, 1 of nvidia-ctk and
        // 12 features.
        assert_eq!(
            config.notes.len(),
            9 + 4 + 5 + 2 + 1 + 12,
            "{:#?}",
            config.notes
        );
    }

    #[test]
    fn modes_say_what_happens_instead() {
        let csv = warning_of(
            "[nvidia-container-runtime]\nmode = \"csv\"\n\
             [nvidia-container-runtime.modes.csv]\nmount-spec-path = \"/etc/csv.d\"\n",
            "nvidia-container-runtime.mode = \"csv\"",
        );
        assert!(csv.contains("not supported"), "{csv}");
        assert!(csv.contains("/etc/csv.d"), "{csv}");
        assert!(csv.contains("as in mode \"legacy\""), "{csv}");

        let cdi = warning_of(
            "[nvidia-container-runtime]\nmode = \"cdi\"\n",
            "nvidia-container-runtime.mode = \"cdi\"",
        );
        assert!(
            cdi.contains("spec dirs") && cdi.contains("plain ids"),
            "{cdi}"
        );

        let odd = warning_of(
            "[nvidia-container-runtime]\nmode = \"turbo\"\n",
            "nvidia-container-runtime.mode = \"turbo\"",
        );
        assert!(odd.contains("not a mode"), "{odd}");

        for same in ["legacy", "jit-cdi"] {
            let config = parse(&format!("[nvidia-container-runtime]\nmode = {same:?}\n"));
            assert_eq!(config.warnings, Vec::<String>::new(), "{same}");
            assert!(
                config.notes[0].contains("nvidia-container-runtime.mode: the same as here"),
                "{:?}",
                config.notes
            );
        }
        assert_eq!(
            parse("[nvidia-container-runtime]\nmode = \"auto\"\n")
                .notes
                .len(),
            0
        );
    }

    #[test]
    fn another_low_level_runtime_is_warned_about() {
        let warning = warning_of(
            "[nvidia-container-runtime]\nruntimes = [\"crun\", \"runc\"]\n",
            "nvidia-container-runtime.runtimes = [\"crun\", \"runc\"]",
        );
        assert!(warning.contains("never execs another runtime"), "{warning}");
        assert!(warning.contains("not by \"crun\""), "{warning}");
        for quiet in ["[]", "[\"/usr/bin/runc\"]", "[\"docker-runc\", \"runc\"]"] {
            let config = parse(&format!("[nvidia-container-runtime]\nruntimes = {quiet}\n"));
            assert_eq!(config.warnings, Vec::<String>::new(), "{quiet}");
        }
    }

    #[test]
    fn cli_keys_asking_for_what_is_not_done_warn() {
        let warning = warning_of(
            "[nvidia-container-cli]\nno-cgroups = true\n",
            "nvidia-container-cli.no-cgroups = true",
        );
        assert!(warning.contains("not supported"), "{warning}");
        warning_of(
            "[nvidia-container-cli]\nldcache = \"/etc/other.cache\"\n",
            "nvidia-container-cli.ldcache = \"/etc/other.cache\"",
        );
        let config = parse("[nvidia-container-cli]\nldconfig = \"/sbin/ldconfig\"\n");
        assert_eq!(config.warnings, Vec::<String>::new());
        assert!(
            config.notes[0].contains("nvidia-container-cli.ldconfig: no effect"),
            "{:?}",
            config.notes
        );
    }

    #[test]
    fn load_kmods_warns_only_where_the_module_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        let text = format!(
            "[nvidia-container-cli]\nload-kmods = true\n[nvidia-runtime]\nproc-root = {:?}\n",
            dir.path()
        );
        std::fs::write(&file, &text).unwrap();
        let config = Config::load_from(Some(file.clone().into())).unwrap();
        assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
        let warning = &config.warnings[0];
        assert!(
            warning.contains("nvidia-container-cli.load-kmods = true")
                && warning.contains("loads no kernel module")
                && warning.contains(&*file.to_string_lossy()),
            "{warning}"
        );

        std::fs::create_dir_all(dir.path().join("proc/driver/nvidia")).unwrap();
        std::fs::write(dir.path().join("proc/driver/nvidia/version"), "NVRM\n").unwrap();
        let config = Config::load_from(Some(file.clone().into())).unwrap();
        assert_eq!(config.warnings, Vec::<String>::new());

        // false asks for nothing that is not done
        std::fs::remove_dir_all(dir.path().join("proc")).unwrap();
        std::fs::write(&file, text.replace("true", "false")).unwrap();
        let config = Config::load_from(Some(file.into())).unwrap();
        assert_eq!(config.warnings, Vec::<String>::new());
    }

    #[test]
    fn top_level_keys_not_honoured_warn() {
        let warning = warning_of(
            "swarm-resource = \"DOCKER_RESOURCE_GPU\"\n",
            "swarm-resource = \"DOCKER_RESOURCE_GPU\"",
        );
        assert!(warning.contains("NVIDIA_VISIBLE_DEVICES"), "{warning}");
        let warning = warning_of(
            "accept-nvidia-visible-devices-as-volume-mounts-when-unprivileged = true\n",
            "accept-nvidia-visible-devices-as-volume-mounts-when-unprivileged = true",
        );
        assert!(
            warning.contains("no release of NVIDIA's toolkit"),
            "{warning}"
        );
    }

    #[test]
    fn features_warn_only_for_what_is_not_done() {
        for (text, key) in [
            (
                "allow-cuda-compat-libs-from-container = true",
                "features.allow-cuda-compat-libs-from-container = true",
            ),
            (
                "ignore-imex-channel-requests = false",
                "features.ignore-imex-channel-requests = false",
            ),
            (
                "no-additional-gids-for-device-nodes = false",
                "features.no-additional-gids-for-device-nodes = false",
            ),
            ("gds = true", "features.gds = true"),
            (
                "include-persistenced-socket = false",
                "features.include-persistenced-socket = false",
            ),
        ] {
            let warning = warning_of(&format!("[features]\n{text}\n"), key);
            assert!(warning.contains("not supported"), "{warning}");
        }
        let config = parse("[features]\nallow-unknown-oci-spec-fields = false\n");
        assert_eq!(config.warnings, Vec::<String>::new());
        assert_eq!(config.notes.len(), 1);
    }

    #[test]
    fn log_levels_take_nvidias_names() {
        for (nvidia, ours) in [("warning", "warn"), ("panic", "error"), ("DEBUG", "debug")] {
            let config = parse(&format!(
                "[nvidia-container-runtime]\nlog-level = {nvidia:?}\n"
            ));
            assert_eq!(config.log_level.as_deref(), Some(ours), "{nvidia}");
        }
        let config = parse("[nvidia-container-runtime]\nlog-level = \"loud\"\n");
        assert_eq!(config.log_level, None);
        assert!(
            config.warnings[0].contains("log-level = \"loud\""),
            "{:?}",
            config.warnings
        );
        // NVIDIA's debug file raises the level; /dev/null is no file.
        let debug = "[nvidia-container-runtime]\ndebug = \"/var/log/x.log\"\n";
        assert_eq!(parse(debug).log_level.as_deref(), Some("debug"));
        let null = "[nvidia-container-runtime]\ndebug = \"/dev/null\"\n";
        assert_eq!(parse(null).log_level, None);
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
        let err = Config::parse("[nvidia-runtime]\ncuda-version = \"new\"\n", Path::new("c"))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("key nvidia-runtime.cuda-version must be a version"),
            "{err}"
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
        let config = parse(NVIDIA_STOCK);
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
        let config = parse(text);
        assert_eq!(config.cdi_default_kind, "example.com/dev");
        assert_eq!(
            config.cdi_annotation_prefixes,
            ["nvidia.cdi.k8s.io/", "x.io/"]
        );
        assert_eq!(config.cdi_spec_dirs, [PathBuf::from("/tmp/cdi")]);
        assert_eq!(
            config.warnings,
            ["config file /etc/c.toml: unknown key \
              \"nvidia-container-runtime.modes.cdi.colour\" ignored (neither NVIDIA's nor \
              nvidia-runtime's: a typo?)"]
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
        assert_eq!(
            err.to_string(),
            "config file /c.toml, line 2, column 13: key \
             nvidia-container-runtime.modes.cdi.spec-dirs: invalid type: integer `3`, expected \
             a string or a list of strings"
        );
    }

    #[test]
    fn unknown_keys_warn_by_name_and_bad_files_fail_clearly() {
        let config = Config::parse(
            "colour = 1\n[nvidia-runtime]\nspeed = 3\n[nvidia-container-runtime.modes.fast]\nx = 1\n\
             [[nvidia-runtime.list]]\ny = 2\n",
            Path::new("/x.toml"),
        )
        .unwrap();
        let keys: Vec<&str> = config
            .warnings
            .iter()
            .map(|w| {
                assert!(w.starts_with("config file /x.toml: unknown key"), "{w}");
                w.split('"').nth(1).unwrap()
            })
            .collect();
        assert_eq!(
            keys,
            [
                "colour",
                "nvidia-container-runtime.modes.fast",
                "nvidia-runtime.list",
                "nvidia-runtime.speed"
            ]
        );
        // a typo of a known key is unknown, not a silent default, and the key meant is named
        let config = parse("[nvidia-container-cli]\nroots = \"/run/nvidia/driver\"\n");
        assert_eq!(config.driver_root, PathBuf::from("/"));
        assert_eq!(
            config.warnings,
            [
                "config file /etc/c.toml: unknown key \"nvidia-container-cli.roots\" ignored (did \
              you mean \"nvidia-container-cli.root\"?)"
            ]
        );
        for (typo, meant) in [
            (
                "[nvidia-runtime]\ndev_root = \"/\"",
                "nvidia-runtime.dev-root",
            ),
            (
                "[nvidia-runtime]\ndevroot = \"/\"",
                "nvidia-runtime.dev-root",
            ),
            ("disable-requir = true", "disable-require"),
            ("mode = \"cdi\"", "nvidia-container-runtime.mode"),
            (
                "[nvidia-container-runtime]\nroot = \"/\"",
                "nvidia-container-cli.root",
            ),
            ("[nvidia-runtim]\ndev-root = \"/\"", "nvidia-runtime"),
            ("[features]\ngdr-copy = true", "features.gdrcopy"),
        ] {
            let warnings = parse(typo).warnings;
            assert!(
                warnings.len() == 1 && warnings[0].contains(&format!("did you mean {meant:?}?")),
                "{typo}: {warnings:?}"
            );
        }
        assert!(parse("colour = 1").warnings[0].contains("a typo?"));

        let err = Config::parse("\n\ndisable-require = \"yes\"", Path::new("/x.toml")).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "config file /x.toml, line 3, column 19: key disable-require: invalid type: string \
             \"yes\", expected a boolean"
        );
        let err = Config::parse("a = 1\n[[[", Path::new("/x.toml")).unwrap_err();
        assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.starts_with("malformed config file /x.toml, line 2, column "),
            "{message}"
        );
        let err = Config::parse("a = 1\na = 2\n", Path::new("/x.toml")).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        let err =
            Config::parse("supported-driver-capabilities = \"warp\"", Path::new("/x")).unwrap_err();
        assert!(err.to_string().contains("\"warp\""), "{err}");
    }
}
