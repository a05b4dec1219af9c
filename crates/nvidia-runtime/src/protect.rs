//! CVE-2019-5736: a container must never get a writable handle on this binary through
//! `/proc/<pid>/exe`. `create`, `run` and `exec` re-exec once from a sealed memfd copy
//! (`pentacle`, as youki does), so that handle is a sealed copy instead.
//!
//! Why even a `create` in a fresh pid namespace needs it: our init process execs the
//! container's entrypoint, and an image whose entrypoint is `#!/proc/self/exe` makes that
//! execve re-run *this* binary inside the container, which can then keep an `O_PATH` handle
//! to it and reopen it for writing once we exit. Only subcommands that never enter a
//! container skip the copy.

use crate::cli::Command;

pub fn needs_sealed_binary(command: &Command) -> bool {
    matches!(
        command,
        Command::Create(_)
            | Command::Common(liboci_cli::CommonCmd::Run(_))
            | Command::Common(liboci_cli::CommonCmd::Exec(_))
    )
}
