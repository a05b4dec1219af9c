//! `nvidia-runtime`: a runc-compatible OCI runtime that injects NVIDIA GPUs into the bundle's
//! `config.json` and then creates the container with youki's libcontainer, in this process.
//!
//! The binary is deliberately thin: argv parsing, logging in the shape containerd reads, exit
//! codes, and dispatch. GPU logic lives in the workspace's library crates.

mod cli;
mod commands;
mod gpu;
mod logging;
mod protect;
mod state;

use std::process::ExitCode;

fn invoked_as_nvidia_hook() -> bool {
    std::env::args_os()
        .next()
        .map(std::path::PathBuf::from)
        .and_then(|argv0| {
            argv0
                .file_name()
                .map(|name| name == "nvidia-container-runtime-hook")
        })
        .unwrap_or(false)
}

fn main() -> ExitCode {
    if invoked_as_nvidia_hook() {
        // dockerd enables `--gpus` only when a binary of this name is on its PATH; installing a
        // link with this name to nvidia-runtime is enough. As a hook it has no job: we remove
        // it from the spec. Reaching here means another runtime ran it: say so, loudly.
        eprintln!(
            "nvidia-container-runtime-hook: this is nvidia-runtime, which injects GPUs itself and \
             removes this hook; run the container with nvidia-runtime as its runtime \
             (docker --runtime=nvidia, or \"default-runtime\": \"nvidia\")"
        );
        return ExitCode::from(1);
    }
    let cli = cli::parse();

    if cli.version {
        print!("{}", cli::version_text());
        return ExitCode::SUCCESS;
    }
    let Some(command) = cli.command else {
        eprintln!("nvidia-runtime: a subcommand is required (try --help)");
        return ExitCode::from(1);
    };

    let log_guard = match logging::init(&cli.global) {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("nvidia-runtime: {}", logging::describe(&err));
            return ExitCode::from(1);
        }
    };

    let failure_code = command.failure_code();
    if protect::needs_sealed_binary(&command) && !protect::is_sealed() {
        // Re-execs once, from a sealed memfd copy, injecting GPUs meanwhile: see protect.rs.
        let err = protect::reexec_sealed(
            || commands::before_sealed_reexec(&command, &cli.global),
            |injection| {
                if let Some(injection) = injection {
                    injection.rollback();
                }
            },
        );
        log_guard.report_fatal(&err);
        return ExitCode::from(failure_code);
    }

    match commands::run(command, &cli.global) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            log_guard.report_fatal(&err);
            ExitCode::from(failure_code)
        }
    }
}
