//! `nvidia-runtime`: a runc-compatible OCI runtime that injects NVIDIA GPUs into the bundle's
//! `config.json` and then creates the container with youki's libcontainer, in this process.
//!
//! The binary is deliberately thin: argv parsing, logging in the shape containerd reads, exit
//! codes, and dispatch. GPU logic lives in the workspace's library crates.

mod cli;
mod commands;
mod gpu;
mod logging;
#[cfg(target_env = "musl")]
mod musl_compat;
mod protect;
mod state;

use std::process::ExitCode;

/// The static build's allocator instead of musl's, which gives pages back to the kernel at
/// nearly every free (Cargo.toml says more). Its one lock has no fork handler: this process
/// forks (the injecting child, libcontainer's clones) only while it has a single thread, so
/// no child inherits the lock taken.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

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
        // dockerd enables `--gpus` only when a binary of this name is on its PATH, so
        // `configure docker` links this name to nvidia-runtime. Run as nvidia-runtime, the
        // container never runs this hook (we remove it from the spec and inject natively).
        // Reaching here means another runtime (runc) runs the container: it would start
        // without its GPUs, so fail it, saying why and how to switch (runc shows our stderr).
        eprintln!(
            "nvidia-container-runtime-hook: this is a link to nvidia-runtime, which gives \
             containers their GPUs as their OCI runtime, not as a hook; this container was \
             started by another runtime (runc?), so it would have no GPU: run the container with \
             nvidia-runtime as its runtime, `docker run --runtime=nvidia ...`, or make it \
             Docker's default with `nvidia-runtime configure docker --set-as-default` and \
             restart dockerd"
        );
        return ExitCode::from(1);
    }
    let cli = cli::parse();

    if cli.options.version {
        print!("{}", cli::version_text());
        return ExitCode::SUCCESS;
    }
    let Some(command) = cli.command else {
        eprintln!("nvidia-runtime: a subcommand is required (try --help)");
        return ExitCode::from(1);
    };

    let log_guard = match logging::init(&cli.options.global) {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("nvidia-runtime: {}", logging::describe(&err));
            return ExitCode::from(1);
        }
    };

    let failure_code = command.failure_code();
    if protect::needs_sealed_binary(&command) && !protect::is_sealed() {
        // Re-execs once, from a protected view of the binary, injecting GPUs meanwhile: see
        // protect.rs.
        let err = protect::reexec_sealed(
            commands::may_inject(&command).then_some(|spec_written: &dyn Fn()| {
                commands::before_sealed_reexec(&command, &cli.options.global, spec_written)
            }),
            |injection| {
                if let Some(injection) = injection {
                    injection.rollback();
                }
            },
            |err| log_guard.report_fatal(err),
        );
        log_guard.report_fatal(&err);
        return ExitCode::from(failure_code);
    }

    match commands::run(command, &cli.options.global) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            log_guard.report_fatal(&err);
            ExitCode::from(failure_code)
        }
    }
}
