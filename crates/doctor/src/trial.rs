//! A trial GPU container: `nvidia-runtime run` of a one-binary bundle (the host's static
//! busybox) with `NVIDIA_VISIBLE_DEVICES=all`, which lists the device nodes it was given.
//!
//! Its bundle and state root live under one temporary directory, removed afterwards; the
//! container (and with it its cgroup) is deleted even when it hangs. Like any container it may
//! fill the runtime's inventory cache.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::{ids, Finding, Severity};

/// Where a busybox is looked for.
pub const BUSYBOX: [&str; 3] = ["/bin/busybox", "/usr/bin/busybox", "/usr/local/bin/busybox"];

/// What the container prints on its last line when it saw the control node.
const OK_MARK: &str = "nvidia-runtime-doctor: gpus=";

/// The first statically linked busybox of [`BUSYBOX`]; a dynamic one would find no libc in
/// the bundle.
pub fn find_busybox() -> Option<PathBuf> {
    BUSYBOX.iter().map(PathBuf::from).find(|p| is_static_elf(p))
}

/// An ELF64 file with no `PT_INTERP` program header.
pub fn is_static_elf(path: &Path) -> bool {
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(bytes[32..40].try_into().unwrap_or_default()) as usize;
    let (phentsize, phnum) = (u16_at(54), u16_at(56));
    (0..phnum).all(|i| {
        let at = phoff + i * phentsize;
        bytes
            .get(at..at + 4)
            .is_some_and(|t| u32::from_le_bytes(t.try_into().unwrap_or_default()) != 3)
    })
}

/// The bundle's config: a read-only rootfs holding only busybox, the usual namespaces, a
/// cgroup of its own, and every GPU asked for.
fn config(cgroup: &str) -> serde_json::Value {
    let script = format!(
        "test -c /dev/nvidiactl || {{ echo 'no /dev/nvidiactl in the container'; exit 3; }}; \
         n=0; for d in /dev/nvidia[0-9]*; do [ -c \"$d\" ] && n=$((n+1)); done; echo \"{OK_MARK}$n\""
    );
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["/bin/busybox", "sh", "-c", script],
            "env": [
                "PATH=/bin:/usr/bin:/sbin:/usr/sbin",
                "NVIDIA_VISIBLE_DEVICES=all",
                "NVIDIA_DRIVER_CAPABILITIES=utility,compute"
            ],
            "cwd": "/",
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "nvidia-runtime-doctor",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}
        ],
        "linux": {
            "cgroupsPath": cgroup,
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]
        }
    })
}

/// Runs the trial with `runtime` (this binary) and `busybox`, `gpus` being how many GPU nodes
/// the container should see; gives up after `timeout`. One finding: `trial.passed`,
/// `trial.failed` (with the runtime's error) or `trial.skipped`.
pub fn run(runtime: &Path, busybox: Option<&Path>, gpus: usize, timeout: Duration) -> Finding {
    let Some(busybox) = busybox else {
        return Finding::new(
            ids::TRIAL_SKIPPED,
            Severity::Info,
            format!("no trial container: no static busybox at {}", BUSYBOX.join(", ")),
        )
        .fix("install one (`apt-get install busybox-static`) and run `nvidia-runtime doctor --trial` again");
    };
    if !busybox.is_file() {
        return Finding::new(
            ids::TRIAL_FAILED,
            Severity::Error,
            format!("no trial container: {} is not a file", busybox.display()),
        )
        .fix("give --busybox a statically linked busybox (`apt-get install busybox-static` puts one at /bin/busybox)");
    }
    match attempt(runtime, busybox, gpus, timeout) {
        Ok(message) => Finding::new(ids::TRIAL_PASSED, Severity::Ok, message),
        Err(why) => Finding::new(
            ids::TRIAL_FAILED,
            Severity::Error,
            format!("the trial GPU container failed: {why}"),
        )
        .fix("fix the errors above first; then see the runtime's log (`nvidia-runtime --debug --log FILE run ...`) for the step that fails"),
    }
}

fn attempt(
    runtime: &Path,
    busybox: &Path,
    gpus: usize,
    timeout: Duration,
) -> Result<String, String> {
    let tmp = tempfile::Builder::new()
        .prefix("nvidia-runtime-doctor.")
        .tempdir()
        .map_err(|e| format!("cannot make a temporary directory: {e}"))?;
    let id = format!("nvidia-runtime-doctor-{}", std::process::id());
    let bundle = tmp.path().join("bundle");
    let state = tmp.path().join("state");
    let rootfs = bundle.join("rootfs");
    let setup = || -> std::io::Result<()> {
        for d in ["bin", "dev", "proc", "sys", "tmp", "etc"] {
            std::fs::create_dir_all(rootfs.join(d))?;
        }
        std::fs::copy(busybox, rootfs.join("bin/busybox")).map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot copy {}: {e}", busybox.display()))
        })?;
        std::fs::create_dir_all(&state)?;
        std::fs::write(
            bundle.join("config.json"),
            serde_json::to_vec_pretty(&config(&format!("/{id}"))).map_err(std::io::Error::other)?,
        )
    };
    setup().map_err(|e| format!("cannot make the bundle under {}: {e}", tmp.path().display()))?;

    let out_path = tmp.path().join("out");
    let err_path = tmp.path().join("err");
    let file = |p: &Path| {
        std::fs::File::create(p).map_err(|e| format!("cannot create {}: {e}", p.display()))
    };
    let mut child = Command::new(runtime)
        .arg("--root")
        .arg(&state)
        .args(["run", "--bundle"])
        .arg(&bundle)
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(file(&out_path)?)
        .stderr(file(&err_path)?)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", runtime.display()))?;
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if start.elapsed() < timeout => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    // Whatever happened, no container, state or cgroup stays behind.
    let _ = Command::new(runtime)
        .arg("--root")
        .arg(&state)
        .args(["delete", "--force", &id])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let read = |p: &Path| {
        let mut s = String::new();
        let _ = std::fs::File::open(p).and_then(|mut f| f.read_to_string(&mut s));
        s
    };
    let (out, err) = (read(&out_path), read(&err_path));
    let Some(status) = status else {
        return Err(format!("it did not finish within {}s", timeout.as_secs()));
    };
    let last_err = err
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let seen = out
        .lines()
        .find_map(|l| l.strip_prefix(OK_MARK))
        .and_then(|n| n.trim().parse::<usize>().ok());
    match (status.success(), seen) {
        (true, Some(n)) if n == gpus => Ok(format!(
            "a trial container started with NVIDIA_VISIBLE_DEVICES=all and saw /dev/nvidiactl and {n} GPU node(s)"
        )),
        (true, Some(n)) => Err(format!(
            "it started but saw {n} GPU node(s) where the host has {gpus}"
        )),
        _ => Err(format!(
            "`nvidia-runtime run` exited with {status}: {}",
            [out.trim(), last_err.trim()]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" / ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_elf() {
        // This test binary is dynamic (has PT_INTERP); a text file is no ELF at all.
        let me = std::env::current_exe().unwrap();
        assert!(!is_static_elf(&me));
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("x"), "#!/bin/sh\n").unwrap();
        assert!(!is_static_elf(&t.path().join("x")));
        if let Some(bb) = find_busybox() {
            assert!(is_static_elf(&bb));
        }
    }

    #[test]
    fn skipped_without_busybox() {
        let f = run(Path::new("/nonexistent"), None, 1, Duration::from_secs(1));
        assert_eq!((f.id, f.severity), (ids::TRIAL_SKIPPED, Severity::Info));
    }

    #[test]
    fn failure_names_the_cause() {
        let t = tempfile::tempdir().unwrap();
        let fake = t.path().join("fake-runtime");
        std::fs::write(&fake, "#!/bin/sh\necho 'no GPU for you' >&2\nexit 1\n").unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let f = run(&fake, Some(&fake), 1, Duration::from_secs(10));
        assert_eq!((f.id, f.severity), (ids::TRIAL_FAILED, Severity::Error));
        assert!(f.message.contains("no GPU for you"), "{}", f.message);
    }
}
