use thiserror::Error;

/// Why a config could not be edited. The caller names the file; nothing was changed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum Error {
    /// The file is not valid JSON (serde_json's diagnosis, positions from 1).
    #[error("not valid JSON at line {line}, column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    /// The file is not valid TOML (toml_edit's diagnosis, positions from 1).
    #[error("not valid TOML at line {line}, column {column}: {message}")]
    Toml {
        line: usize,
        column: usize,
        message: String,
    },
    /// A key we must edit holds a value of another type than the engine defines.
    #[error("`{key}` must be {expected}, not {found}")]
    Shape {
        key: String,
        expected: &'static str,
        found: String,
    },
    /// A containerd config whose `version` this editor does not write for.
    #[error("containerd config version {0} is not supported (versions 2 and 3 are: containerd 1.6 and later)")]
    UnsupportedVersion(i64),
    /// A containerd config without `version` key: version 1, from containerd before 1.5 or
    /// Docker's `containerd.io` package. Its plugin names and `disabled_plugins` entries mean
    /// other things in version 2, so it is not converted behind the user's back.
    #[error("this is a version 1 containerd config (it has no `version` key, like the one Docker's containerd.io package ships); write a current one first, e.g. `containerd config default > config.toml` (containerd 1.x: keep what you need from the old file), or add `version = 2` after renaming `plugins.cri` to `plugins.\"io.containerd.grpc.v1.cri\"` and `\"cri\"` in disabled_plugins to `\"io.containerd.grpc.v1.cri\"`")]
    VersionOne,
}

impl Error {
    pub(crate) fn json(err: &serde_json::Error) -> Error {
        // serde_json's message ends with " at line L column C": keep the cause only.
        let text = err.to_string();
        let message = match text.rfind(" at line ") {
            Some(at) => text[..at].to_string(),
            None => text,
        };
        Error::Json {
            line: err.line(),
            column: err.column(),
            message,
        }
    }

    pub(crate) fn toml(text: &str, err: &toml_edit::TomlError) -> Error {
        let (line, column) = err
            .span()
            .map(|span| crate::line_col(text, span.start))
            .unwrap_or((1, 1));
        Error::Toml {
            line,
            column,
            message: err.message().trim_end().to_string(),
        }
    }
}
