//! The pty relay of a foreground `exec -t`: runc's behaviour when no `--console-socket` is
//! given. libcontainer sends the pty master over a console socket; we listen on one, take
//! the master, and copy bytes between it and our own stdio until the process exits.

use std::fs::File;
use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use anyhow::{anyhow, Context, Result};
use nix::sys::signal::Signal;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};

/// The console socket to hand libcontainer: ours when we relay, else the caller's.
pub fn console_socket(
    relay: Option<&ConsoleListener>,
    given: Option<&std::path::PathBuf>,
) -> Option<PathBuf> {
    relay
        .map(|listener| listener.path().to_owned())
        .or_else(|| given.cloned())
}

pub struct ConsoleListener {
    listener: UnixListener,
    path: PathBuf,
}

impl ConsoleListener {
    pub fn bind(dir: &Path) -> Result<Self> {
        Self::bind_named(dir, "tty")
    }

    /// Listens on `DIR/NAME-<our pid>.sock`.
    pub fn bind_named(dir: &Path, name: &str) -> Result<Self> {
        let path = dir.join(format!("{name}-{}.sock", std::process::id()));
        let listener = UnixListener::bind(&path)
            .with_context(|| format!("cannot listen on {}", path.display()))?;
        Ok(Self { listener, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the pty master libcontainer sent and starts relaying.
    pub fn accept_and_relay(self) -> Result<Session> {
        let (stream, _) = self
            .listener
            .accept()
            .context("no pty came back from the container")?;
        let master = receive_fd(stream.as_raw_fd())?;
        let _ = std::fs::remove_file(&self.path);

        let saved = make_stdin_raw();
        copy_window_size(0, master.as_raw_fd());
        let mut to_master = File::from(master.try_clone()?);
        // Detached on purpose: it blocks on our stdin and dies with the process.
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut to_master);
        });
        let mut from_master = File::from(master.try_clone()?);
        let output = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            let mut out = std::io::stdout();
            // EIO once every holder of the pty's other side is gone: the relay's end.
            while let Ok(n) = from_master.read(&mut buf) {
                if n == 0 || out.write_all(&buf[..n]).is_err() {
                    break;
                }
                let _ = out.flush();
            }
        });
        Ok(Session {
            master,
            saved,
            output: Some(output),
        })
    }
}

impl Drop for ConsoleListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

pub struct Session {
    master: OwnedFd,
    saved: Option<Termios>,
    output: Option<JoinHandle<()>>,
}

impl Session {
    pub fn on_signal(&self, signal: Signal) {
        if signal == Signal::SIGWINCH {
            copy_window_size(0, self.master.as_raw_fd());
        }
    }

    /// Waits for the last output, then gives the user's terminal back as it was.
    pub fn finish(mut self) {
        if let Some(output) = self.output.take() {
            let _ = output.join();
        }
        if let Some(saved) = self.saved.take() {
            let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, &saved);
        }
    }
}

fn receive_fd(socket: RawFd) -> Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        socket,
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .context("cannot receive the pty master")?;
    for cmsg in msg.cmsgs().context("bad control message")? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed this descriptor for us.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(anyhow!("the container sent no pty master"))
}

fn make_stdin_raw() -> Option<Termios> {
    let saved = tcgetattr(std::io::stdin()).ok()?;
    let mut raw = saved.clone();
    cfmakeraw(&mut raw);
    tcsetattr(std::io::stdin(), SetArg::TCSANOW, &raw).ok()?;
    Some(saved)
}

fn copy_window_size(from: RawFd, to: RawFd) {
    let mut size: nix::libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ read and write exactly one winsize struct.
    unsafe {
        if nix::libc::ioctl(from, nix::libc::TIOCGWINSZ, &mut size) == 0 {
            nix::libc::ioctl(to, nix::libc::TIOCSWINSZ, &size);
        }
    }
}
