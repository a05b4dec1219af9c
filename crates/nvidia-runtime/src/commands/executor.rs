//! libcontainer's default executor, with runc's wording when the program cannot be found.
//! Docker turns an error containing "no such file or directory" or "executable file not
//! found" into exit code 127, and users know runc's sentence; libcontainer says it otherwise.

use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use oci_spec::runtime::Spec;

#[derive(Clone)]
pub struct RuncWordingExecutor;

impl Executor for RuncWordingExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        DefaultExecutor {}.exec(spec)
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
    }
}
