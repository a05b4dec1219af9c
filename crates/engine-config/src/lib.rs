//! Registering nvidia-runtime with a container engine, as text-in, text-out edits.
//!
//! - [`docker`]: `daemon.json` (`runtimes.nvidia`, `default-runtime`, `features.cdi`), every
//!   other key, its value and its place kept.
//! - [`containerd`]: a drop-in file holding the `nvidia` runtime of the CRI plugin (config
//!   versions 2 and 3), and the `imports` entry of the main `config.toml` that loads it, edited
//!   in place with comments and layout kept.
//! - [`crio`]: a drop-in file for `crio.conf.d` with `[crio.runtime.runtimes.nvidia]`.
//!
//! Nothing here touches the filesystem: callers read the files, call these functions and write
//! what they return (atomically, with a backup). Every function is deterministic, so a second
//! run over its own output is a no-op ([`Change::Unchanged`]).

pub mod containerd;
pub mod crio;
pub mod docker;
mod error;

pub use error::Error;

/// The name the runtime is registered under, in every engine (NVIDIA's name, so
/// `docker run --runtime=nvidia` and Kubernetes `RuntimeClass` handlers `nvidia` keep working).
pub const RUNTIME_NAME: &str = "nvidia";

/// What to do with one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Leave it as it is (absent stays absent).
    Unchanged,
    /// Write this content (creating the file if it is absent).
    Write(String),
    /// Remove the file: what is left would be our own file or an empty config.
    Delete,
}

impl Change {
    /// `Unchanged` when `new` equals `old` byte for byte, else `Write(new)`.
    pub fn from_texts(old: Option<&str>, new: String) -> Change {
        if old == Some(new.as_str()) {
            Change::Unchanged
        } else {
            Change::Write(new)
        }
    }
}

/// Line and column (both from 1, column in characters) of byte `offset` in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one_in_characters() {
        assert_eq!(line_col("abc", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("é\nxé", 4), (2, 2));
        assert_eq!(line_col("é\nxé", 5), (2, 2));
        assert_eq!(line_col("é\nxé", 6), (2, 3));
    }
}
