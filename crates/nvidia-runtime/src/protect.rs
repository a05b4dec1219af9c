//! CVE-2019-5736: a container must never get a writable handle on this binary through
//! `/proc/<pid>/exe`. `create`, `run` and `exec` re-exec once from a protected view of the
//! binary, so that handle is on that view instead:
//!
//! - preferably the binary as seen through a private, detached, read-only overlayfs mount of
//!   its directory (as runc >= 1.2 does): an overlay without an upper layer has a read-only
//!   superblock, so no remount of any clone of that mount makes it writable, and nothing is
//!   copied (Linux >= 6.5 for the data-only second layer it needs);
//! - else a sealed memfd copy (`pentacle`, as youki does), made while this process does the
//!   work that needs no container (the GPU injection of `create` and `run`).
//!
//! Why even a `create` in a fresh pid namespace needs it: our init process execs the
//! container's entrypoint, and an image whose entrypoint is `#!/proc/self/exe` makes that
//! execve re-run *this* binary inside the container, which can then keep an `O_PATH` handle
//! to it and reopen it for writing once we exit. Only subcommands that never enter a
//! container skip the re-exec.

use std::ffi::{CStr, CString, OsStr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use crate::cli::Command;

pub fn needs_sealed_binary(command: &Command) -> bool {
    matches!(
        command,
        Command::Create(_)
            | Command::Common(liboci_cli::CommonCmd::Run(_))
            | Command::Common(liboci_cli::CommonCmd::Exec(_))
    )
}

/// Whether this process already runs from a protected view of the binary: a sealed memfd, or
/// a file on a read-only overlayfs (`fstatfs` magic and `ST_RDONLY` of `/proc/self/exe`), which
/// cannot be written through that link.
pub fn is_sealed() -> bool {
    pentacle::is_sealed() || runs_from_read_only_overlay()
}

const OVERLAYFS_SUPER_MAGIC: libc::c_long = 0x794c_7630;

fn runs_from_read_only_overlay() -> bool {
    let path = c"/proc/self/exe";
    // SAFETY: both structs are plain data filled in by the kernel; path is NUL-terminated
    unsafe {
        let mut fs: libc::statfs = std::mem::zeroed();
        let mut vfs: libc::statvfs = std::mem::zeroed();
        libc::statfs(path.as_ptr(), &mut fs) == 0
            && fs.f_type as libc::c_long == OVERLAYFS_SUPER_MAGIC
            && libc::statvfs(path.as_ptr(), &mut vfs) == 0
            && vfs.f_flag & libc::ST_RDONLY != 0
    }
}

fn last_os_error(what: &str) -> anyhow::Error {
    anyhow!(std::io::Error::last_os_error()).context(what.to_owned())
}

/// Opens this binary through a new private, detached, read-only overlayfs whose only visible
/// layer is the binary's directory (`fsopen`/`fsconfig`/`fsmount`, Linux >= 5.2; the second,
/// data-only layer that an overlay without an upper layer requires, `::`, Linux >= 6.5).
/// The mount is in no namespace and disappears with the last process running from it.
/// Errors (an older kernel, no overlayfs, a path overlayfs cannot name, a binary replaced
/// since it started) mean: use the memfd copy.
fn open_on_read_only_overlay() -> Result<OwnedFd> {
    const FSOPEN_CLOEXEC: libc::c_uint = 1;
    const FSCONFIG_SET_STRING: libc::c_uint = 1;
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    const MOUNT_ATTR_RDONLY: libc::c_uint = 1;
    const MOUNT_ATTR_NOSUID: libc::c_uint = 2;
    const MOUNT_ATTR_NODEV: libc::c_uint = 4;

    let exe = std::fs::read_link("/proc/self/exe").context("cannot read /proc/self/exe")?;
    let running = std::fs::metadata("/proc/self/exe").context("cannot stat /proc/self/exe")?;
    let (Some(dir), Some(name)) = (exe.parent(), exe.file_name()) else {
        bail!("{} has no directory", exe.display());
    };
    // the data-only layer only has to exist and not overlap the binary's directory
    let data = ["/run", "/dev", "/tmp"]
        .into_iter()
        .map(Path::new)
        .find(|d| d.is_dir() && !dir.starts_with(d) && !d.starts_with(dir))
        .context("no directory for overlayfs's second layer")?;
    let mut lowerdir = dir.as_os_str().to_owned();
    lowerdir.push("::");
    lowerdir.push(data);
    if lowerdir
        .as_bytes()
        .iter()
        .any(|b| matches!(b, b',' | b'\\'))
        || dir.as_os_str().as_bytes().contains(&b':')
    {
        bail!("overlayfs cannot name {}", dir.display());
    }
    let lowerdir = CString::new(lowerdir.as_bytes()).context("a NUL in the binary's path")?;

    let fd = |ret: libc::c_long, what: &str| -> Result<OwnedFd> {
        if ret < 0 {
            return Err(last_os_error(what));
        }
        // SAFETY: the kernel just returned this new fd, owned by nobody else
        Ok(unsafe { OwnedFd::from_raw_fd(ret as i32) })
    };
    // SAFETY (every syscall below): NUL-terminated strings and fds that live across the call
    let fs = fd(
        unsafe { libc::syscall(libc::SYS_fsopen, c"overlay".as_ptr(), FSOPEN_CLOEXEC) },
        "fsopen(overlay)",
    )?;
    let set = |key: &CStr, value: &CStr| unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_STRING,
            key.as_ptr(),
            value.as_ptr(),
            0,
        )
    };
    if set(c"lowerdir", &lowerdir) < 0 {
        return Err(last_os_error("fsconfig(lowerdir)"));
    }
    // features that would only cost: inode numbers as the lower layer has them, no index
    for (key, value) in [(c"xino", c"off"), (c"index", c"off"), (c"metacopy", c"off")] {
        set(key, value);
    }
    let create = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    if create < 0 {
        return Err(last_os_error("fsconfig(create)"));
    }
    let mnt = fd(
        unsafe {
            libc::syscall(
                libc::SYS_fsmount,
                fs.as_raw_fd(),
                FSMOUNT_CLOEXEC,
                MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
            )
        },
        "fsmount",
    )?;
    let name = CString::new(name.as_bytes()).context("a NUL in the binary's name")?;
    let file = fd(
        unsafe {
            libc::openat(
                mnt.as_raw_fd(),
                name.as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            )
        } as libc::c_long,
        "open the binary on the overlay",
    )?;
    let file = std::fs::File::from(file);
    let seen = file
        .metadata()
        .context("cannot stat the binary on the overlay")?;
    if (seen.ino(), seen.size(), seen.mtime(), seen.mtime_nsec())
        != (
            running.ino(),
            running.size(),
            running.mtime(),
            running.mtime_nsec(),
        )
    {
        bail!("{} is not the running binary any more", exe.display());
    }
    Ok(file.into())
}

/// `execveat(fd, "", AT_EMPTY_PATH)` of the read-only view `exe` with this process's argv and
/// environment, plus `extra` (`NAME=value`). Returns only on failure.
fn exec_fd(exe: &OwnedFd, extra: Option<String>) -> anyhow::Error {
    let cstrings = |items: Vec<std::ffi::OsString>| -> Vec<CString> {
        items
            .into_iter()
            .filter_map(|s| CString::new(s.as_bytes()).ok())
            .collect()
    };
    let args = cstrings(std::env::args_os().collect());
    let env = cstrings(
        std::env::vars_os()
            .map(|(k, v)| {
                let mut kv = k;
                kv.push(OsStr::new("="));
                kv.push(v);
                kv
            })
            .chain(extra.map(Into::into))
            .collect(),
    );
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|s| s.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|s| s.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: NUL-terminated arrays of NUL-terminated strings that outlive the call
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            exe.as_raw_fd(),
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
    }
    last_os_error("cannot re-exec from a read-only view of the binary")
}

/// Names the process that injects GPUs for a create while it re-execs, for the re-exec'd
/// process to wait for: `PID:FD`, its pid and the read end of the pipe it reports on (see
/// [`wait_for_injector`]). Read once and removed.
const INJECTOR_ENV: &str = "_NVIDIA_RUNTIME_INJECTOR";

/// What the injecting child writes on its pipe: `config.json` is written (the re-exec'd
/// process may build the container from it), then the rootfs is ready (the container's init
/// may prepare it). It exits without the second where it failed.
const SPEC_WRITTEN: u8 = b'C';
const ROOTFS_READY: u8 = b'R';

/// An error the process that made it has already reported (on stderr and in the log): the
/// process that injects GPUs while the first one re-execs. Whoever fails with it says nothing
/// more, so that each message is said once, and the injection's error stays the last error
/// line of the log (the one containerd shows): libcontainer's errors that carry it (the
/// container's init stopped at the rootfs gate) are not logged either ([`REPORTED`]).
#[derive(Debug)]
pub struct Reported;

/// What [`Reported`] says: a log line that holds it repeats an error already logged.
pub const REPORTED: &str = "the GPU injection failed (reported above)";

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(REPORTED)
    }
}

impl std::error::Error for Reported {}

/// Re-execs this process's argv from a protected view of the binary: the read-only overlay,
/// or else a sealed copy. `meanwhile` (the GPU injection of `create` and `run`) runs while the
/// exec happens: with the overlay, in a child forked for it, which acts for this process
/// (`inject::Owner::act_for`: the reservation and the bundle's record name this process) and
/// reports its own error with `report`; with a copy, beside the copy on a thread. What it did
/// is found on disk by the re-executed process, which first waits for the child to say that
/// `config.json` is written (`meanwhile` calls the function it is given then), and lets the
/// container's init wait for the rest ([`wait_for_injector`], [`RootfsInProgress`]). Returns
/// only on failure: of `meanwhile` (its error), or of the copy or the exec (then `undo` is
/// called with what `meanwhile` did, since nobody else will act on it).
pub fn reexec_sealed<T>(
    meanwhile: Option<impl Fn(&dyn Fn()) -> Result<T>>,
    undo: impl FnOnce(T),
    report: impl FnOnce(&anyhow::Error),
) -> anyhow::Error {
    // Only the name this process gives its child may reach the re-exec'd process, whichever
    // way it re-execs.
    std::env::remove_var(INJECTOR_ENV);
    // A caller that ignores SIGCHLD (the disposition survives exec) would have the kernel reap
    // the child as it exits, and the re-exec'd process could not learn how it ended (nor, in
    // `run`, wait for the container's init). runc's Go runtime catches SIGCHLD; here it goes
    // back to the default, which this process and the re-exec'd one keep.
    // SAFETY: setting a signal's disposition to its default
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
    match open_on_read_only_overlay() {
        Ok(exe) => {
            let Some(meanwhile) = meanwhile else {
                return exec_fd(&exe, None);
            };
            let owner = inject::Owner::this_process();
            // SAFETY: plain syscall
            let parent = unsafe { libc::getpid() };
            let Ok((report_read, report_write)) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            else {
                tracing::debug!("no pipe for the injection: injecting before the re-exec");
                return meanwhile_then_exec(|| meanwhile(&|| {}), || exec_fd(&exe, None), undo);
            };
            // SAFETY: this process has one thread here (the copy's thread is only made on
            // the other path), so the child may run any code
            let child = unsafe { libc::fork() };
            if child == 0 {
                drop(report_read);
                // If the runtime is killed (a shim that gives up kills its pid only), its
                // injection must not go on and change the bundle behind everyone's back.
                // SAFETY: plain syscalls
                unsafe {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    if libc::getppid() != parent {
                        libc::_exit(1);
                    }
                }
                inject::Owner::act_for(owner);
                let said_written = std::cell::Cell::new(false);
                // (a re-exec'd process gone: the write fails, and this child dies with it)
                let say = |byte: u8| {
                    let _ = nix::unistd::write(&report_write, &[byte]);
                };
                let spec_written = || {
                    say(SPEC_WRITTEN);
                    said_written.set(true);
                };
                let code = match meanwhile(&spec_written) {
                    Ok(done) => {
                        // what it did is the re-exec'd process's now: nothing here undoes it
                        std::mem::forget(done);
                        if !said_written.get() {
                            say(SPEC_WRITTEN);
                        }
                        say(ROOTFS_READY);
                        0
                    }
                    Err(err) => {
                        report(&err);
                        1
                    }
                };
                // SAFETY: leaves without running the parent's exit handlers twice
                unsafe { libc::_exit(code) };
            }
            drop(report_write);
            if child < 0 {
                tracing::debug!("cannot fork the injection: injecting before the re-exec");
                return meanwhile_then_exec(|| meanwhile(&|| {}), || exec_fd(&exe, None), undo);
            }
            // the read end, and only it, crosses the exec
            let _ = nix::fcntl::fcntl(
                report_read.as_raw_fd(),
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
            );
            let fd = report_read.as_raw_fd();
            let err = exec_fd(&exe, Some(format!("{INJECTOR_ENV}={child}:{fd}")));
            drop(report_read);
            // The exec failed: once the child is done, its work is adopted (it acted for this
            // process) and undone.
            std::env::remove_var(INJECTOR_ENV);
            if reap(child) == Some(0) {
                if let Ok(done) = meanwhile(&|| {}) {
                    undo(done);
                }
            }
            return err;
        }
        Err(err) => {
            tracing::debug!("no read-only overlay view of the binary ({err:#}): copying it");
        }
    }
    let Some(meanwhile) = meanwhile else {
        return copy_and_exec(|| Ok(()), |()| ());
    };
    copy_and_exec(|| meanwhile(&|| {}), undo)
}

/// In the re-exec'd process of a `create` or `run`: waits for the child that injects GPUs
/// while this process re-exec'd (named in its environment by the process before the exec,
/// which is this one) to write `config.json`. `Some` while it still prepares the rootfs: the
/// container's init must wait for that ([`RootfsInProgress`]). `None` when it is done, or when
/// there is no such child (a copy was made instead, or the name is not of a child of this
/// process: it then injects itself, as always). [`Reported`] when it failed and said why,
/// [`InjectorKilled`] when it was killed.
pub fn wait_for_injector() -> Result<Option<RootfsInProgress>> {
    let Some(named) = std::env::var_os(INJECTOR_ENV) else {
        return Ok(None);
    };
    // SAFETY (edition 2021: safe): no other thread reads the environment yet
    std::env::remove_var(INJECTOR_ENV);
    let Some((pid, fd)) = named.to_str().and_then(|named| {
        let (pid, fd) = named.split_once(':')?;
        Some((pid.parse::<libc::pid_t>().ok()?, fd.parse::<i32>().ok()?))
    }) else {
        return Ok(None);
    };
    // (a name the caller put there, where this process did not re-exec itself: a child and a
    // pipe of the caller's at most, never a descriptor of this process's own)
    if !is_child(pid) || fd < 3 || !is_pipe(fd) {
        return Ok(None);
    }
    // SAFETY: the process before the exec (this one) left this descriptor open for us, the
    // read end of its pipe to `pid`, which nothing else owns
    let report = unsafe { OwnedFd::from_raw_fd(fd) };
    let _ = nix::fcntl::fcntl(
        report.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    let asked = std::time::Instant::now();
    if read_byte(&report) == Some(SPEC_WRITTEN) {
        // how long the container's set-up waited for the injection (hack/timeline shows it)
        tracing::debug!(
            waited_us = asked.elapsed().as_micros() as u64,
            "config.json written by the injecting child"
        );
        return Ok(Some(RootfsInProgress {
            injector: pid,
            report: Some(report),
        }));
    }
    injector_outcome(pid).map(|()| None)
}

/// How the injecting child ended: Ok, [`Reported`] (it failed and said why) or
/// [`InjectorKilled`]. Waits for it.
fn injector_outcome(pid: libc::pid_t) -> Result<()> {
    let Some(status) = wait_status(pid) else {
        return Ok(());
    };
    if libc::WIFEXITED(status) {
        return match libc::WEXITSTATUS(status) {
            0 => Ok(()),
            _ => Err(anyhow!(Reported)),
        };
    }
    Err(anyhow!(InjectorKilled(libc::WTERMSIG(status))))
}

/// The injecting child wrote `config.json` and still prepares the container's rootfs (SONAME
/// links, mount points, its `ld.so.cache`) while this process sets the container up. Dropped
/// without [`Self::finish`] (a create that failed before it built anything), it waits for the
/// child, so that no rootfs work is cut short by this process's exit.
pub struct RootfsInProgress {
    injector: libc::pid_t,
    report: Option<OwnedFd>,
}

impl RootfsInProgress {
    /// The read end of the child's pipe, for the container's init to wait on before it
    /// touches the rootfs ([`wait_for_rootfs`]). Stays open until [`Self::finish`].
    pub fn gate(&self) -> std::os::fd::RawFd {
        self.report.as_ref().map_or(-1, |report| report.as_raw_fd())
    }

    /// Waits for the child to end: Ok when it prepared the rootfs, [`Reported`] when it
    /// failed and said why (and put the bundle back as it was), [`InjectorKilled`] when it was
    /// killed (what it did is for this process to undo).
    pub fn finish(mut self) -> Result<()> {
        self.report = None;
        injector_outcome(self.injector)
    }
}

impl Drop for RootfsInProgress {
    fn drop(&mut self) {
        if self.report.take().is_some() {
            let _ = wait_status(self.injector);
        }
    }
}

/// In the container's init: waits for the injecting child's word that the rootfs is ready
/// (`gate` from [`RootfsInProgress::gate`]), then closes `gate`. An error when the child
/// ended without it: the create fails, and the child has said why.
pub fn wait_for_rootfs(gate: std::os::fd::RawFd) -> Result<()> {
    // SAFETY: the init's copy of the descriptor, used here only and closed after
    let gate = unsafe { OwnedFd::from_raw_fd(gate) };
    match read_byte(&gate) {
        Some(ROOTFS_READY) => Ok(()),
        _ => Err(anyhow!(Reported)),
    }
}

/// One byte from `fd` (again when interrupted); `None` at end of file or on an error.
fn read_byte(fd: &OwnedFd) -> Option<u8> {
    let mut byte = [0u8];
    loop {
        match nix::unistd::read(fd.as_raw_fd(), &mut byte) {
            Ok(1) => return Some(byte[0]),
            Err(nix::errno::Errno::EINTR) => continue,
            _ => return None,
        }
    }
}

/// Whether `fd` is open on a pipe.
fn is_pipe(fd: i32) -> bool {
    // SAFETY: a zeroed stat for the kernel to fill in
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: plain syscall on a struct that outlives it
    unsafe { libc::fstat(fd, &mut stat) == 0 && stat.st_mode & libc::S_IFMT == libc::S_IFIFO }
}

/// Whether `pid` is a child of this process that has not been reaped (it is not waited for).
fn is_child(pid: libc::pid_t) -> bool {
    // SAFETY: a zeroed siginfo_t for the kernel to fill in
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: plain syscall on a struct that outlives it
    unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        ) == 0
    }
}

/// The child injecting GPUs was killed (by this signal) before it finished: what it did is
/// for the re-exec'd process to undo.
#[derive(Debug)]
pub struct InjectorKilled(pub i32);

impl std::fmt::Display for InjectorKilled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the process injecting GPUs was killed by signal {}",
            self.0
        )
    }
}

impl std::error::Error for InjectorKilled {}

/// Waits for `child`; its exit code, `None` if it was killed or is not a child of this process.
fn reap(child: libc::pid_t) -> Option<i32> {
    wait_status(child)
        .filter(|&status| libc::WIFEXITED(status))
        .map(|status| libc::WEXITSTATUS(status))
}

/// Waits for `child` (again when interrupted); its wait status, `None` if it is not a child
/// of this process.
fn wait_status(child: libc::pid_t) -> Option<libc::c_int> {
    let mut status = 0;
    loop {
        // SAFETY: plain syscall on an int
        let ret = unsafe { libc::waitpid(child, &mut status, 0) };
        if ret == child {
            return Some(status);
        }
        if ret < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return None;
        }
    }
}

/// The fallback: re-exec from a sealed memfd copy of the binary, made on a thread while
/// `meanwhile` runs.
fn copy_and_exec<T>(meanwhile: impl FnOnce() -> Result<T>, undo: impl FnOnce(T)) -> anyhow::Error {
    let copier = std::thread::spawn(|| -> Result<pentacle::SealedCommand> {
        let mut exe =
            std::fs::File::open("/proc/self/exe").context("cannot open /proc/self/exe")?;
        pentacle::SealedCommand::new(&mut exe).context("cannot make a sealed copy of the binary")
    });
    meanwhile_then_exec(
        meanwhile,
        || {
            let mut command = match copier.join() {
                Ok(Ok(command)) => command,
                Ok(Err(err)) => return err,
                Err(_) => return anyhow!("the thread copying the binary panicked"),
            };
            let mut args = std::env::args_os();
            if let Some(arg0) = args.next() {
                std::os::unix::process::CommandExt::arg0(&mut *command, arg0);
            }
            command.args(args);
            anyhow!(std::os::unix::process::CommandExt::exec(&mut *command))
                .context("cannot re-exec from a sealed copy of the binary")
        },
        undo,
    )
}

/// Runs `meanwhile` (the injection), then `exec`, which returns only when it failed; what
/// `meanwhile` did is then undone, since no re-exec'd process will adopt it.
fn meanwhile_then_exec<T>(
    meanwhile: impl FnOnce() -> Result<T>,
    exec: impl FnOnce() -> anyhow::Error,
    undo: impl FnOnce(T),
) -> anyhow::Error {
    let done = match meanwhile() {
        Ok(done) => done,
        Err(err) => return err,
    };
    let err = exec();
    undo(done);
    err
}
