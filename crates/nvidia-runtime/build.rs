//! Build facts for `--version`: the git commit and the version of libcontainer compiled in.
//!
//! - `NVIDIA_RUNTIME_COMMIT`: `$NVIDIA_RUNTIME_COMMIT` if set (builds from a source tarball),
//!   else `git rev-parse HEAD` of the checkout, else "unknown".
//! - `NVIDIA_RUNTIME_LIBCONTAINER`: libcontainer's version in the workspace's Cargo.lock, with
//!   " (patched)" when it is built from the workspace's `patched/` copy (no registry source);
//!   "unknown" without a lock file.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir.join("../..");

    println!("cargo:rerun-if-env-changed=NVIDIA_RUNTIME_COMMIT");
    let commit = std::env::var("NVIDIA_RUNTIME_COMMIT")
        .ok()
        .filter(|commit| !commit.is_empty())
        .or_else(|| git_commit(&workspace))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=NVIDIA_RUNTIME_COMMIT={commit}");

    let lock = workspace.join("Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let libcontainer = std::fs::read_to_string(&lock)
        .ok()
        .and_then(|text| locked_version(&text, "libcontainer"))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=NVIDIA_RUNTIME_LIBCONTAINER={libcontainer}");
}

/// HEAD's commit, and the files whose change moves HEAD (so a new commit rebuilds this).
fn git_commit(workspace: &Path) -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        let output = Command::new("git")
            .arg("-C")
            .arg(workspace)
            .args(args)
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "HEAD"])?;
    for file in ["HEAD", "packed-refs"] {
        if let Some(path) = git(&["rev-parse", "--path-format=absolute", "--git-path", file]) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        if let Some(path) = git(&["rev-parse", "--path-format=absolute", "--git-path", &branch]) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    Some(commit)
}

/// `name`'s version in a Cargo.lock, marked " (patched)" for a path dependency.
fn locked_version(lock: &str, name: &str) -> Option<String> {
    let lock: toml::Table = lock.parse().ok()?;
    let package = lock
        .get("package")?
        .as_array()?
        .iter()
        .filter_map(|package| package.as_table())
        .find(|package| package.get("name").and_then(|n| n.as_str()) == Some(name))?;
    let version = package.get("version")?.as_str()?;
    Some(if package.contains_key("source") {
        version.to_owned()
    } else {
        format!("{version} (patched)")
    })
}
