//! Staying in the foreground for `run` and `exec` without `--detach`: signals sent to us go to
//! the container process, and our exit code is its exit status (128+N when killed by signal N).

use anyhow::{anyhow, Context, Result};
use nix::errno::Errno;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Signals that stay with us: they are either unblockable or raised by faults in this process.
const NOT_FORWARDED: [Signal; 7] = [
    Signal::SIGKILL,
    Signal::SIGSTOP,
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGILL,
    Signal::SIGFPE,
    Signal::SIGTRAP,
];

pub fn block_forwarded_signals() -> Result<SigSet> {
    let mut set = SigSet::all();
    for signal in NOT_FORWARDED {
        set.remove(signal);
    }
    set.thread_block()
        .context("cannot block signals for forwarding")?;
    Ok(set)
}

/// Reaps children until `pid` exits, forwarding every other signal to it.
pub fn forward_and_wait(pid: Pid, signals: &SigSet) -> Result<u8> {
    forward_and_wait_with(pid, signals, |_| {})
}

/// `forward_and_wait`, relaying the pty that `relay` receives meanwhile (foreground `run` and
/// `exec -t` without a console socket).
pub fn wait_relaying(
    pid: Pid,
    signals: &SigSet,
    relay: Option<super::tty::ConsoleListener>,
) -> Result<u8> {
    let Some(listener) = relay else {
        return forward_and_wait(pid, signals);
    };
    let session = listener.accept_and_relay()?;
    let code = forward_and_wait_with(pid, signals, |signal| session.on_signal(signal));
    session.finish();
    code
}

/// As `forward_and_wait`, also showing each signal to `observe` (the tty relay resizes on
/// SIGWINCH).
fn forward_and_wait_with(
    pid: Pid,
    signals: &SigSet,
    mut observe: impl FnMut(Signal),
) -> Result<u8> {
    loop {
        // Reap first: the process may have exited before we started waiting for SIGCHLD.
        if let Some(code) = reap(pid)? {
            return Ok(code);
        }
        let signal = signals.wait().context("cannot wait for signals")?;
        observe(signal);
        match signal {
            Signal::SIGCHLD => {}
            // SIGWINCH has no meaning without a pty of ours; SIGURG is Go's preemption noise
            // when our parent is a Go program.
            Signal::SIGWINCH | Signal::SIGURG => {}
            other => match kill(pid, other) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(err) => tracing::warn!("cannot forward {other} to {pid}: {err}"),
            },
        }
    }
}

fn reap(pid: Pid) -> Result<Option<u8>> {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(child, code)) if child == pid => return Ok(Some(code as u8)),
            Ok(WaitStatus::Signaled(child, signal, _)) if child == pid => {
                return Ok(Some(128u8.wrapping_add(signal as u8)))
            }
            Ok(WaitStatus::StillAlive) => return Ok(None),
            Ok(_) => continue,
            Err(Errno::EINTR) => continue,
            Err(Errno::ECHILD) => {
                return Err(anyhow!(
                    "container process {pid} is not a child of the runtime"
                ))
            }
            Err(err) => return Err(anyhow!(err)).context("waitpid failed"),
        }
    }
}
