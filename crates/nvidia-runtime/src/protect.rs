//! CVE-2019-5736: a container must never get a writable handle on this binary through
//! `/proc/<pid>/exe`. `create`, `run` and `exec` re-exec once from a sealed memfd copy
//! (`pentacle`, as youki does), so that handle is a sealed copy instead.
//!
//! Why even a `create` in a fresh pid namespace needs it: our init process execs the
//! container's entrypoint, and an image whose entrypoint is `#!/proc/self/exe` makes that
//! execve re-run *this* binary inside the container, which can then keep an `O_PATH` handle
//! to it and reopen it for writing once we exit. Only subcommands that never enter a
//! container skip the copy.
//!
//! The copy (the whole binary into a memfd) is the longest step before libcontainer starts,
//! so it runs on a second thread while this one does the work that needs no container:
//! the GPU injection of `create` and `run`. The exec then replaces both threads.

use std::fs::File;

use anyhow::{anyhow, Context, Result};

use crate::cli::Command;

pub fn needs_sealed_binary(command: &Command) -> bool {
    matches!(
        command,
        Command::Create(_)
            | Command::Common(liboci_cli::CommonCmd::Run(_))
            | Command::Common(liboci_cli::CommonCmd::Exec(_))
    )
}

/// Whether this process already runs from the sealed copy.
pub fn is_sealed() -> bool {
    pentacle::is_sealed()
}

/// Re-execs this process's argv from a sealed copy of the binary. `meanwhile` runs while the
/// copy is made, and what it did is found on disk by the sealed process. Returns
/// only on failure: of `meanwhile` (its error), or of the copy or the exec (then `undo` is
/// called with what `meanwhile` returned, since nobody else will act on it).
pub fn reexec_sealed<T>(
    meanwhile: impl FnOnce() -> Result<T>,
    undo: impl FnOnce(T),
) -> anyhow::Error {
    let copier = std::thread::spawn(|| -> Result<pentacle::SealedCommand> {
        let mut exe = File::open("/proc/self/exe").context("cannot open /proc/self/exe")?;
        pentacle::SealedCommand::new(&mut exe).context("cannot make a sealed copy of the binary")
    });
    let done = match meanwhile() {
        Ok(prepared) => prepared,
        Err(err) => return err,
    };
    let mut command = match copier.join() {
        Ok(Ok(command)) => command,
        Ok(Err(err)) => {
            undo(done);
            return err;
        }
        Err(_) => {
            undo(done);
            return anyhow!("the thread copying the binary panicked");
        }
    };
    let mut args = std::env::args_os();
    if let Some(arg0) = args.next() {
        std::os::unix::process::CommandExt::arg0(&mut *command, arg0);
    }
    command.args(args);
    let err = std::os::unix::process::CommandExt::exec(&mut *command);
    undo(done);
    anyhow!(err).context("cannot re-exec from a sealed copy of the binary")
}
