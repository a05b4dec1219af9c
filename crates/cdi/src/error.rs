//! Errors of reading, validating and writing one spec.

use std::fmt;
use std::path::PathBuf;

/// The two encodings of a spec file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Json => "JSON",
            Format::Yaml => "YAML",
        })
    }
}

/// One rule a spec breaks, placed as precisely as the spec allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The device entry it is in (its `name`, or `#N` for an entry whose name is unusable);
    /// `None` for the spec's own fields.
    pub device: Option<String>,
    /// Where, relative to the device entry or to the spec, e.g. `containerEdits.env[1]`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(device) = &self.device {
            write!(f, "device {device:?}: ")?;
        }
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Why a spec could not be read, parsed, validated or serialised.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The input is larger than [`crate::MAX_SPEC_BYTES`].
    #[error(
        "CDI spec {}: {size} bytes is more than the {limit} bytes a spec may have; \
         split its devices over several spec files",
        path.display()
    )]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },

    /// Not well-formed JSON or YAML, a missing or unknown field, or a value of the wrong type.
    #[error("{}", ParseDisplay(self))]
    Parse {
        path: PathBuf,
        format: Format,
        /// 1-based, when the parser knows it.
        line: Option<u64>,
        /// 1-based, when the parser knows it.
        column: Option<u64>,
        /// Path of the field being read, e.g. `devices[0].containerEdits`, when known.
        field: Option<String>,
        /// The parser's own words.
        message: String,
    },

    /// Well-formed, but against the CDI spec's rules.
    #[error("{}", InvalidDisplay(self))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },

    /// Could not encode the spec (not expected for a validated spec).
    #[error("cannot encode the CDI spec as {format}: {message}")]
    Encode { format: Format, message: String },
}

struct ParseDisplay<'a>(&'a SpecError);

impl fmt::Display for ParseDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let SpecError::Parse {
            path,
            format,
            line,
            column,
            field,
            message,
        } = self.0
        else {
            return Ok(());
        };
        write!(f, "CDI spec {}", path.display())?;
        if let Some(line) = line {
            write!(f, ", line {line}")?;
            if let Some(column) = column {
                write!(f, ", column {column}")?;
            }
        }
        if let Some(field) = field.as_deref().filter(|p| !p.is_empty() && *p != ".") {
            write!(f, ", at {field}")?;
        }
        write!(f, ": invalid {format}: {message}")
    }
}

struct InvalidDisplay<'a>(&'a SpecError);

impl fmt::Display for InvalidDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let SpecError::Invalid { path, problems } = self.0 else {
            return Ok(());
        };
        write!(f, "CDI spec {}: ", path.display())?;
        for (i, p) in problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl SpecError {
    /// The file the error is about, when it is about one.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            SpecError::TooLarge { path, .. }
            | SpecError::Parse { path, .. }
            | SpecError::Invalid { path, .. } => Some(path),
            SpecError::Encode { .. } => None,
        }
    }
}
