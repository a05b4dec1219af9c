//! Logs in the shape runc writes them, because containerd-shim-runc-v2 reads the last
//! `{"level":"error","msg":…}` line of `--log` to tell the user why a container failed.
//!
//! `--log-format json`: `{"level":"error","msg":"…","time":"2026-11-22T16:31:42Z"}` (logrus JSON).
//! `--log-format text` (default): `time="…" level=error msg="…"` (logrus text).

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::{Context as LayerContext, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Text,
    Json,
}

enum Sink {
    Stderr,
    File(File),
}

impl Sink {
    fn write_line(&mut self, line: &str) {
        // A log line that cannot be written must not take the runtime down with it.
        let _ = match self {
            Sink::Stderr => std::io::stderr().lock().write_all(line.as_bytes()),
            Sink::File(file) => file.write_all(line.as_bytes()),
        };
    }
}

struct LogrusLayer {
    format: Format,
    sink: Arc<Mutex<Sink>>,
}

/// An error and its causes on one line, as `{:#}` would give, except that a cause whose text its
/// parent already ends with is not repeated: many errors (ours, libcontainer's, std's wrappers)
/// both show their source in their message and return it from `source()`.
pub fn describe(err: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if msg.ends_with(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
    }
    msg
}

/// Whether the log goes to a file (`--log`, as every engine runs us).
static LOG_TO_FILE: AtomicBool = AtomicBool::new(false);

/// A warning for whoever runs the command (a config key that does not do here what it does
/// in NVIDIA's toolkit): a `warning` line in the log. Without `--log` the log is stderr, so a
/// person running the runtime by hand sees it there (even at a level that hides warnings). With
/// `--log`, stderr is not written: under Docker and containerd the stderr of `create` and `run`
/// is the container's own, and a warning there would end up in the application's output and
/// `docker logs` (runc, too, writes nothing on stderr when it succeeds). `nvidia-runtime doctor`
/// lists the same warnings.
pub fn warn_user(msg: &str) {
    tracing::warn!("{msg}");
    if !LOG_TO_FILE.load(Ordering::Relaxed) && !tracing::enabled!(Level::WARN) {
        eprintln!("nvidia-runtime: warning: {msg}");
    }
}

/// Kept by `main` to report the final error: into the log, and on stderr as runc does.
pub struct LogGuard {
    to_file: bool,
    initialised: bool,
}

impl LogGuard {
    pub fn report_fatal(&self, err: &anyhow::Error) {
        if err
            .chain()
            .any(|cause| cause.is::<crate::protect::Reported>())
        {
            return; // said by the process that failed
        }
        let msg = describe(err);
        if self.initialised {
            tracing::error!("{msg}");
        }
        if self.to_file || !self.initialised {
            eprintln!("{msg}");
        }
    }
}

pub fn init(global: &liboci_cli::GlobalOpts) -> anyhow::Result<LogGuard> {
    let format = match global.log_format.as_deref() {
        None | Some("text") => Format::Text,
        Some("json") => Format::Json,
        Some(other) => bail!("invalid log-format: {other:?} (expected \"text\" or \"json\")"),
    };
    let level = if global.debug {
        LevelFilter::DEBUG
    } else {
        level_from_env()
            .or_else(|| crate::gpu::configured_log_level().and_then(|l| l.parse().ok()))
            .unwrap_or(LevelFilter::WARN)
    };
    // libcontainer warns about every cgroup controller this host lacks; below debug, only its
    // errors are worth a line in the log containerd shows. (They repeat what the final error
    // says, but some name what the error it returns does not, such as a namespace path.)
    let others = if level >= LevelFilter::DEBUG {
        level
    } else {
        LevelFilter::ERROR
    };
    let filter = Targets::new()
        .with_default(others)
        .with_target("nvidia_runtime", level)
        .with_target("inject", level)
        .with_target("inventory", level);

    // The file is created before anything can fail so that containerd always finds it.
    let sink = match &global.log {
        Some(path) if path.as_os_str() != "/dev/stderr" => Sink::File(
            OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o644)
                .custom_flags(nix::libc::O_CLOEXEC)
                .open(path)
                .with_context(|| format!("cannot open log file {}", path.display()))?,
        ),
        _ => Sink::Stderr,
    };
    let to_file = matches!(sink, Sink::File(_));
    LOG_TO_FILE.store(to_file, Ordering::Relaxed);
    let layer = LogrusLayer {
        format,
        sink: Arc::new(Mutex::new(sink)),
    };
    let initialised = tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init()
        .is_ok();
    Ok(LogGuard {
        to_file,
        initialised,
    })
}

/// `NVIDIA_RUNTIME_LOG_LEVEL` (error|warn|info|debug|trace) overrides the default for tests and
/// debugging without touching the command line that containerd builds.
fn level_from_env() -> Option<LevelFilter> {
    std::env::var("NVIDIA_RUNTIME_LOG_LEVEL")
        .ok()
        .and_then(|value| value.parse().ok())
}

#[derive(Default)]
struct MessageVisitor {
    message: String,
    fields: String,
}

impl Visit for MessageVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

impl<S: Subscriber> Layer<S> for LogrusLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: LayerContext<'_, S>) {
        let mut visitor = MessageVisitor::default();
        event.record(&mut visitor);
        let msg = visitor.message + &visitor.fields;
        if msg.contains(crate::protect::REPORTED) {
            return; // libcontainer passing on an error its init got, said already
        }
        let line = format_line(self.format, event.metadata().level(), &msg, &now_rfc3339());
        if let Ok(mut sink) = self.sink.lock() {
            sink.write_line(&line);
        }
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn format_line(format: Format, level: &Level, msg: &str, time: &str) -> String {
    match format {
        Format::Json => {
            let value = serde_json::json!({ "level": level_name(level), "msg": msg, "time": time });
            format!("{value}\n")
        }
        Format::Text => format!(
            "time={:?} level={} msg={:?}\n",
            time,
            level_name(level),
            msg
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_have_the_keys_containerd_reads() {
        let line = format_line(
            Format::Json,
            &Level::ERROR,
            "exec: \"/x\": no such file",
            "2026-01-01T00:00:00Z",
        );
        let value: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(value["level"], "error");
        assert_eq!(value["msg"], "exec: \"/x\": no such file");
        assert_eq!(value["time"], "2026-01-01T00:00:00Z");
        assert!(line.ends_with('\n'));
    }

    #[test]
    fn text_lines_quote_the_message() {
        let line = format_line(Format::Text, &Level::WARN, "a \"b\"", "T");
        assert_eq!(line, "time=\"T\" level=warning msg=\"a \\\"b\\\"\"\n");
    }

    #[test]
    fn a_cause_already_in_its_parents_message_is_not_repeated() {
        /// Shows its source in its message and returns it from `source()`, as a thiserror
        /// `#[error("cannot read /x: {source}")]` does.
        #[derive(Debug)]
        struct Read {
            source: std::io::Error,
        }
        impl std::fmt::Display for Read {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "cannot read /x: {}", self.source)
            }
        }
        impl std::error::Error for Read {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.source)
            }
        }
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = anyhow::Error::new(Read { source: io }).context("cannot inject");
        assert_eq!(
            describe(&err),
            "cannot inject: cannot read /x: no such file"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(describe(&plain), "outer: inner");
    }
}
