use std::os::unix::fs::PermissionsExt;

use super::*;

struct Fixture {
    dir: tempfile::TempDir,
    /// Stands in for this binary.
    runtime: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("bin/nvidia-runtime");
    exe(&runtime);
    Fixture { dir, runtime }
}

fn exe(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn ids_of(f: &[Finding]) -> Vec<(&'static str, Severity)> {
    f.iter().map(|f| (f.id, f.severity)).collect()
}

#[test]
fn docker_states() {
    let fx = fixture();
    let p = fx.dir.path().join("daemon.json");
    let (f, driver) = docker(&p, &fx.runtime, false);
    assert_eq!(
        ids_of(&f),
        vec![(ids::DOCKER_NOT_CONFIGURED, Severity::Info)]
    );
    assert!(driver.is_none());

    write(
        &p,
        "{\n  \"runtimes\": {\n    \"nvidia\": {\"path\": 1,}\n  }\n}\n",
    );
    let (f, _) = docker(&p, &fx.runtime, false);
    assert_eq!(
        ids_of(&f),
        vec![(ids::DOCKER_CONFIG_MALFORMED, Severity::Error)]
    );
    assert!(f[0].message.contains("line 3"), "{}", f[0].message);

    write(
        &p,
        r#"{"log-level": "info", "exec-opts": ["native.cgroupdriver=systemd"]}"#,
    );
    let (f, driver) = docker(&p, &fx.runtime, false);
    assert_eq!(
        ids_of(&f),
        vec![(ids::DOCKER_RUNTIME_MISSING, Severity::Warning)]
    );
    assert!(driver.unwrap().systemd);

    write(
        &p,
        r#"{"runtimes": {"nvidia": {"path": "/nonexistent/nvidia-runtime"}}}"#,
    );
    let (f, driver) = docker(&p, &fx.runtime, false);
    assert_eq!(
        ids_of(&f),
        vec![(ids::DOCKER_RUNTIME_PATH_MISSING, Severity::Error)]
    );
    assert!(f[0].message.contains("/nonexistent/nvidia-runtime"));
    assert!(!driver.unwrap().systemd, "cgroupfs is the default on v1");

    let theirs = fx.dir.path().join("usr/bin/nvidia-container-runtime");
    exe(&theirs);
    write(
        &p,
        &format!(
            r#"{{"runtimes": {{"nvidia": {{"path": "{}"}}}}}}"#,
            theirs.display()
        ),
    );
    let (f, _) = docker(&p, &fx.runtime, true);
    assert_eq!(
        ids_of(&f),
        vec![(ids::DOCKER_RUNTIME_OTHER, Severity::Warning)]
    );

    write(
        &p,
        &format!(
            r#"{{"default-runtime": "gpu", "runtimes": {{"gpu": {{"path": "{}", "runtimeArgs": []}}}}}}"#,
            fx.runtime.display()
        ),
    );
    let (f, driver) = docker(&p, &fx.runtime, true);
    assert_eq!(
        ids_of(&f),
        vec![(ids::DOCKER_RUNTIME_REGISTERED, Severity::Ok)]
    );
    let shim = format!(
        r#"{{"runtimes": {{"nvidia": {{"runtimeType": "io.containerd.runc.v2", "options": {{"BinaryName": "{}"}}}}}}}}"#,
        fx.runtime.display()
    );
    write(&fx.dir.path().join("shim.json"), &shim);
    let (f2, _) = docker(&fx.dir.path().join("shim.json"), &fx.runtime, true);
    assert_eq!(
        ids_of(&f2),
        vec![(ids::DOCKER_RUNTIME_REGISTERED, Severity::Ok)]
    );
    assert!(
        f[0].message.contains("default runtime: \"gpu\""),
        "{}",
        f[0].message
    );
    assert!(driver.unwrap().systemd, "systemd is the default on v2");
}

#[test]
fn containerd_with_dropins() {
    let fx = fixture();
    let main = fx.dir.path().join("containerd/config.toml");
    let (f, _) = containerd(&main, &fx.runtime);
    assert_eq!(
        ids_of(&f),
        vec![(ids::CONTAINERD_NOT_CONFIGURED, Severity::Info)]
    );

    write(
        &main,
        "version = 2\nimports = [\"conf.d/*.toml\"]\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\nruntime_type = \"io.containerd.runc.v2\"\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\nSystemdCgroup = true\n",
    );
    let (f, driver) = containerd(&main, &fx.runtime);
    assert_eq!(
        ids_of(&f),
        vec![(ids::CONTAINERD_RUNTIME_MISSING, Severity::Warning)]
    );
    let driver = driver.unwrap();
    assert!(
        driver.systemd && driver.source.contains("\"runc\""),
        "{driver:?}"
    );

    // The drop-in registers us (config version 3 layout), in a file the glob finds.
    write(
        &fx.dir.path().join("containerd/conf.d/99-nvidia.toml"),
        &format!(
            "version = 3\n[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.nvidia]\nruntime_type = \"io.containerd.runc.v2\"\n[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.nvidia.options]\nBinaryName = \"{}\"\n",
            fx.runtime.display()
        ),
    );
    let (f, driver) = containerd(&main, &fx.runtime);
    assert_eq!(
        ids_of(&f),
        vec![(ids::CONTAINERD_RUNTIME_REGISTERED, Severity::Ok)]
    );
    assert!(f[0].message.contains("99-nvidia.toml"), "{}", f[0].message);
    assert!(
        !driver.unwrap().systemd,
        "our runtime's own SystemdCgroup (unset) counts"
    );

    write(
        &fx.dir.path().join("containerd/conf.d/50-broken.toml"),
        "[plugins\n",
    );
    let (f, _) = containerd(&main, &fx.runtime);
    assert_eq!(
        ids_of(&f),
        vec![(ids::CONTAINERD_CONFIG_MALFORMED, Severity::Error)]
    );
    assert!(f[0].message.contains("50-broken.toml"), "{}", f[0].message);
    std::fs::remove_file(fx.dir.path().join("containerd/conf.d/50-broken.toml")).unwrap();

    // A later drop-in pointing the same runtime at a missing file wins.
    write(
        &fx.dir.path().join("containerd/conf.d/999-bad.toml"),
        "[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.nvidia.options]\nBinaryName = \"/gone/nvidia-runtime\"\n",
    );
    let (f, _) = containerd(&main, &fx.runtime);
    assert_eq!(
        ids_of(&f),
        vec![(ids::CONTAINERD_RUNTIME_PATH_MISSING, Severity::Error)]
    );
}

#[test]
fn crio_dropins() {
    let fx = fixture();
    let dir = fx.dir.path().join("crio");
    let (f, _) = crio(&dir, &fx.runtime);
    assert_eq!(ids_of(&f), vec![(ids::CRIO_NOT_CONFIGURED, Severity::Info)]);

    write(
        &dir.join("crio.conf"),
        "[crio.runtime]\ncgroup_manager = \"cgroupfs\"\n",
    );
    let (f, driver) = crio(&dir, &fx.runtime);
    assert_eq!(
        ids_of(&f),
        vec![(ids::CRIO_RUNTIME_MISSING, Severity::Warning)]
    );
    assert!(!driver.unwrap().systemd);

    write(
        &dir.join("crio.conf.d/99-nvidia.toml"),
        &format!(
            "[crio.runtime.runtimes.nvidia]\nruntime_path = \"{}\"\nruntime_type = \"oci\"\n",
            fx.runtime.display()
        ),
    );
    let (f, _) = crio(&dir, &fx.runtime);
    assert_eq!(
        ids_of(&f),
        vec![(ids::CRIO_RUNTIME_REGISTERED, Severity::Ok)]
    );

    write(
        &dir.join("crio.conf.d/99-nvidia.toml"),
        "[crio.runtime.runtimes.nvidia]\nruntime_path = \"/gone/x\"\n",
    );
    let (f, _) = crio(&dir, &fx.runtime);
    assert_eq!(
        ids_of(&f),
        vec![(ids::CRIO_RUNTIME_PATH_MISSING, Severity::Error)]
    );
}

#[test]
fn bare_names_go_through_path() {
    assert!(executable("sh").is_some());
    assert!(executable("surely-no-such-binary-here").is_none());
    assert!(executable("/etc/passwd").is_none(), "not executable");
}

#[test]
fn default_runtime_must_exist() {
    let fx = fixture();
    let p = fx.dir.path().join("daemon.json");
    write(&p, r#"{"default-runtime": "nvidia", "runtimes": {}}"#);
    let (f, _) = docker(&p, &fx.runtime, false);
    assert_eq!(
        ids_of(&f),
        vec![
            (ids::DOCKER_RUNTIME_MISSING, Severity::Warning),
            (ids::DOCKER_DEFAULT_RUNTIME_UNKNOWN, Severity::Error)
        ]
    );
    assert!(
        f[1].message.contains("\"nvidia\" (default-runtime in "),
        "{}",
        f[1].message
    );
    write(&p, r#"{"default-runtime": "runc"}"#);
    let (f, _) = docker(&p, &fx.runtime, false);
    assert_eq!(
        ids_of(&f),
        vec![(ids::DOCKER_RUNTIME_MISSING, Severity::Warning)]
    );

    // containerd: the default named in the main file, the runtime in a drop-in: fine; without
    // the drop-in: not.
    let main = fx.dir.path().join("containerd/config.toml");
    write(
        &main,
        "version = 2\nimports = [\"conf.d/*.toml\"]\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\ndefault_runtime_name = \"nvidia\"\n",
    );
    let dropin = fx.dir.path().join("containerd/conf.d/99-nvidia.toml");
    write(
        &dropin,
        &format!(
            "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.nvidia.options]\nBinaryName = \"{}\"\n",
            fx.runtime.display()
        ),
    );
    let (f, _) = containerd(&main, &fx.runtime);
    assert_eq!(
        ids_of(&f),
        vec![(ids::CONTAINERD_RUNTIME_REGISTERED, Severity::Ok)]
    );
    std::fs::remove_file(&dropin).unwrap();
    let (f, _) = containerd(&main, &fx.runtime);
    assert!(
        ids_of(&f).contains(&(ids::CONTAINERD_DEFAULT_RUNTIME_UNKNOWN, Severity::Error)),
        "{f:#?}"
    );

    // CRI-O: crun is built in, "gpu" is not.
    let dir = fx.dir.path().join("crio");
    write(
        &dir.join("crio.conf"),
        "[crio.runtime]\ndefault_runtime = \"crun\"\n",
    );
    let (f, _) = crio(&dir, &fx.runtime);
    assert_eq!(
        ids_of(&f),
        vec![(ids::CRIO_RUNTIME_MISSING, Severity::Warning)]
    );
    write(
        &dir.join("crio.conf.d/50-x.conf"),
        "[crio.runtime]\ndefault_runtime = \"gpu\"\n",
    );
    let (f, _) = crio(&dir, &fx.runtime);
    assert!(
        ids_of(&f).contains(&(ids::CRIO_DEFAULT_RUNTIME_UNKNOWN, Severity::Error)),
        "{f:#?}"
    );
}
