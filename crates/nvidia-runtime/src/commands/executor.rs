//! libcontainer's default executor, with runc's wording when the program cannot be found.
//! Docker turns an error containing "no such file or directory" or "executable file not
//! found" into exit code 127, and users know runc's sentence; libcontainer says it otherwise.

use std::ffi::CString;

use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use oci_spec::runtime::Spec;

#[derive(Clone, Default)]
pub struct RuncWordingExecutor {
    /// Where the child injecting GPUs still prepares the rootfs: what the container's init
    /// waits on before it touches the rootfs (`protect::wait_for_rootfs`).
    pub rootfs_gate: Option<std::os::fd::RawFd>,
}

impl Executor for RuncWordingExecutor {
    fn before_rootfs(&self) -> Result<(), ExecutorError> {
        match self.rootfs_gate {
            Some(gate) => crate::protect::wait_for_rootfs(gate)
                .map_err(|err| ExecutorError::Other(err.to_string())),
            None => Ok(()),
        }
    }

    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        let args = spec
            .process()
            .as_ref()
            .and_then(|p| p.args().as_ref())
            .filter(|args| !args.is_empty())
            .ok_or(ExecutorError::InvalidArg)?;
        let argv: Vec<CString> = args
            .iter()
            .map(|arg| CString::new(arg.as_bytes()).map_err(|_| ExecutorError::InvalidArg))
            .collect::<Result<_, _>>()?;
        // As libcontainer's default executor (the environment is already the process's), with
        // runc's sentence when it fails: `exec /app: no such file or directory` (its loader is
        // missing), `exec /app: exec format error` (another architecture).
        let err = match nix::unistd::execvp(&argv[0], &argv) {
            Err(err) => err,
            Ok(never) => match never {},
        };
        Err(ExecutorError::Execution(
            runc_exec_failed_message(&args[0], err).into(),
        ))
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        match (DefaultExecutor {}).validate(spec) {
            Err(ExecutorValidationError::ArgValidationError(message))
                if message.contains("not found in $PATH") =>
            {
                let program = spec
                    .process()
                    .as_ref()
                    .and_then(|p| p.args().as_ref())
                    .and_then(|args| args.first())
                    .cloned()
                    .unwrap_or_default();
                Err(ExecutorValidationError::ArgValidationError(
                    runc_not_found_message(&program),
                ))
            }
            other => other,
        }
    }
}

fn runc_exec_failed_message(program: &str, errno: nix::errno::Errno) -> String {
    format!("exec {program}: {}", errno.desc().to_lowercase())
}

fn runc_not_found_message(program: &str) -> String {
    if program.contains('/') {
        format!("exec: {program:?}: stat {program}: no such file or directory")
    } else {
        format!("exec: {program:?}: executable file not found in $PATH")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_runc() {
        assert_eq!(
            runc_not_found_message("/does-not-exist"),
            "exec: \"/does-not-exist\": stat /does-not-exist: no such file or directory"
        );
        assert_eq!(
            runc_not_found_message("nope"),
            "exec: \"nope\": executable file not found in $PATH"
        );
        assert_eq!(
            runc_exec_failed_message("/app", nix::errno::Errno::ENOEXEC),
            "exec /app: exec format error"
        );
    }
}
