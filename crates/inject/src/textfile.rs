//! Reading a config file an admin names (the runtime's own `config.toml`, Docker's
//! `daemon.json`, containerd's and CRI-O's TOML): whatever is at that path, it must never hang
//! the reader or grow it without bound. A FIFO there (opened for reading, it waits for a
//! writer for ever), a device (`daemon.json -> /dev/null` reads as empty, and an editor that
//! then renames its output over the link's target replaces the device node), or `/dev/zero`
//! (endless) is refused by name instead.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use nix::fcntl::OFlag;

/// Largest config file read, in bytes: the biggest real `daemon.json` or containerd config is a
/// few KiB; 16 MiB leaves room for any generated one and still bounds the read.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// Why a path holds no config text.
#[derive(Debug, thiserror::Error)]
pub enum TextFileError {
    #[error(
        "it is {kind}, not a regular file; a config must be a regular file (or a symlink to one)"
    )]
    NotRegular { kind: &'static str },
    #[error("it is over {limit} bytes, too big for a config file")]
    TooBig { limit: u64 },
    #[error("it is not UTF-8 text")]
    NotUtf8,
}

/// The text of the regular file at `path` (symlinks followed), `Ok(None)` when nothing is there.
///
/// Errors: [`TextFileError`] wrapped in an [`io::Error`] (kind `InvalidData`) for a FIFO, a
/// socket, a device or a directory, a file over `limit` bytes, or bytes that are not UTF-8;
/// the open or read error otherwise. The file is opened `O_NONBLOCK`, so a FIFO or a device
/// is never waited on, and checked with `fstat` before a byte is read.
pub fn read_text(path: &Path, limit: u64) -> io::Result<Option<String>> {
    let refuse = |e: TextFileError| io::Error::new(io::ErrorKind::InvalidData, e);
    let file = match File::options()
        .read(true)
        .custom_flags((OFlag::O_NONBLOCK | OFlag::O_NOCTTY).bits())
        .open(path)
    {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    let meta = file.metadata()?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let kind = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_socket() {
            "a socket"
        } else if kind.is_char_device() {
            "a character device"
        } else if kind.is_block_device() {
            "a block device"
        } else {
            "not a file"
        };
        return Err(refuse(TextFileError::NotRegular { kind }));
    }
    if meta.len() > limit {
        return Err(refuse(TextFileError::TooBig { limit }));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // A file growing meanwhile (or one whose size procfs does not tell) is still bounded.
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(refuse(TextFileError::TooBig { limit }));
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| refuse(TextFileError::NotUtf8))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(path: &Path, limit: u64) -> String {
        read_text(path, limit).unwrap_err().to_string()
    }

    #[test]
    fn only_regular_files_are_read_and_nothing_is_waited_on() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("daemon.json");
        std::fs::write(&file, "{}\n").unwrap();
        assert_eq!(read_text(&file, 100).unwrap().as_deref(), Some("{}\n"));
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(read_text(&link, 100).unwrap().as_deref(), Some("{}\n"));
        assert_eq!(read_text(&dir.path().join("absent"), 100).unwrap(), None);

        // Each of these hung the reader or read without end before.
        let fifo = dir.path().join("fifo.json");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(refusal(&fifo, 100).contains("a FIFO, not a regular file"));
        assert!(refusal(Path::new("/dev/zero"), 100).contains("a character device"));
        assert!(refusal(Path::new("/dev/null"), 100).contains("a character device"));
        assert!(refusal(dir.path(), 100).contains("a directory"));

        std::fs::write(&file, "x".repeat(101)).unwrap();
        assert!(refusal(&file, 100).contains("over 100 bytes"));
        std::fs::write(&file, b"\xff\xfe").unwrap();
        assert!(refusal(&file, 100).contains("not UTF-8"));
    }
}
