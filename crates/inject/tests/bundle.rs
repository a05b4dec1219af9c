//! inject_bundle end to end on a simulated driver root (tests/fixtures/make-driver-root.sh):
//! what lands in config.json and the rootfs, idempotence, and rollback leaving nothing behind.

use std::path::{Path, PathBuf};
use std::process::Command;

use inject::{inject_bundle, Config, Outcome};

fn simulated_root(dir: &Path) -> Option<PathBuf> {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/make-driver-root.sh");
    let root = dir.join("driver-root");
    let ok = Command::new("bash")
        .arg(&script)
        .arg("2")
        .arg(&root)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("SKIP: cannot build a simulated driver root (needs root, gcc, mknod)");
        return None;
    }
    Some(root)
}

fn bundle(dir: &Path, env: &[&str]) -> PathBuf {
    let bundle = dir.join("bundle");
    std::fs::create_dir_all(bundle.join("rootfs/usr/lib/x86_64-linux-gnu")).unwrap();
    let mut all_env = vec!["PATH=/bin"];
    all_env.extend_from_slice(env);
    let spec = serde_json::json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "process": {"args": ["true"], "cwd": "/", "env": all_env},
        "linux": {"namespaces": [{"type": "mount"}]},
        "unknownField": {"kept": [1, 2, 3]}
    });
    std::fs::write(
        bundle.join("config.json"),
        serde_json::to_vec_pretty(&spec).unwrap(),
    )
    .unwrap();
    bundle
}

fn config(root: &Path) -> Config {
    let text = format!(
        "[nvidia-container-cli]\nroot = {root:?}\n[nvidia-runtime]\nproc-root = {root:?}\n"
    );
    Config::parse(&text, Path::new("test.toml")).unwrap()
}

#[test]
fn inject_then_rollback_leaves_the_bundle_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let Some(root) = simulated_root(dir.path()) else {
        return;
    };
    let bundle = bundle(dir.path(), &["NVIDIA_VISIBLE_DEVICES=0"]);
    let original = std::fs::read(bundle.join("config.json")).unwrap();
    let libdir = bundle.join("rootfs/usr/lib/x86_64-linux-gnu");

    let outcome = inject_bundle(&bundle, &config(&root)).unwrap();
    assert!(matches!(outcome, Outcome::Rewritten { .. }), "{outcome:?}");
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(spec["unknownField"]["kept"], serde_json::json!([1, 2, 3]));
    let devices: Vec<&str> = spec["linux"]["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    // GPU index 0 has minor 1 in the fixture
    assert!(
        devices.contains(&"/dev/nvidia1") && !devices.contains(&"/dev/nvidia0"),
        "{devices:?}"
    );
    assert_eq!(
        std::fs::read_link(libdir.join("libcuda.so.1")).unwrap(),
        PathBuf::from("libcuda.so.580.159.04")
    );
    // the container's cache is a file of its rootfs (ldconfig in the container may replace
    // it), not a mount
    let cache_path = bundle.join("rootfs/etc/ld.so.cache");
    let cache = ldcache::Cache::read(&cache_path).unwrap();
    assert!(cache.entries.iter().any(|e| e.name == "libcuda.so.1"));
    assert!(!spec["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["destination"] == "/etc/ld.so.cache"));

    // A second injection on the same bundle changes nothing.
    let injected = std::fs::read(bundle.join("config.json")).unwrap();
    assert!(matches!(
        inject_bundle(&bundle, &config(&root)).unwrap(),
        Outcome::AlreadyInjected
    ));
    assert_eq!(std::fs::read(bundle.join("config.json")).unwrap(), injected);

    outcome.rollback();
    assert_eq!(std::fs::read(bundle.join("config.json")).unwrap(), original);
    assert!(!bundle.join(".nvidia-runtime").exists());
    assert!(
        libdir.join("libcuda.so.1").symlink_metadata().is_err(),
        "link removed"
    );
    assert_eq!(
        std::fs::read_dir(&libdir).unwrap().count(),
        0,
        "nothing left in the image"
    );
    assert!(
        !bundle.join("rootfs/etc").exists(),
        "no cache, no /etc left"
    );
}

#[test]
fn rollback_puts_the_image_cache_back() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    let Some(root) = simulated_root(dir.path()) else {
        return;
    };
    let bundle = bundle(dir.path(), &["NVIDIA_VISIBLE_DEVICES=all"]);
    let etc = bundle.join("rootfs/etc");
    std::fs::create_dir_all(etc.join("ld.so.conf.d")).unwrap();
    std::fs::write(etc.join("ld.so.conf"), "include /etc/ld.so.conf.d/*.conf\n").unwrap();
    let mut image_cache = ldcache::Cache::new();
    image_cache.insert(ldcache::Entry::new(
        "libc.so.6",
        "/lib/x86_64-linux-gnu/libc.so.6",
        ldcache::FLAG_X86_64_LIBC6,
    ));
    let image_bytes = image_cache.to_bytes();
    std::fs::write(etc.join("ld.so.cache"), &image_bytes).unwrap();
    std::fs::set_permissions(
        etc.join("ld.so.cache"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    std::os::unix::fs::chown(etc.join("ld.so.cache"), Some(12), Some(34)).unwrap();

    let outcome = inject_bundle(&bundle, &config(&root)).unwrap();
    let cache = ldcache::Cache::read(&etc.join("ld.so.cache")).unwrap();
    let names: Vec<&str> = cache.entries.iter().map(|e| e.name.as_str()).collect();
    assert!(
        names.contains(&"libc.so.6") && names.contains(&"libcuda.so.1"),
        "{names:?}"
    );
    assert_eq!(
        std::fs::read_to_string(etc.join("ld.so.conf.d/00-nvidia-runtime.conf"))
            .unwrap()
            .lines()
            .last(),
        Some("/usr/lib/x86_64-linux-gnu")
    );

    outcome.rollback();
    assert_eq!(std::fs::read(etc.join("ld.so.cache")).unwrap(), image_bytes);
    let md = std::fs::metadata(etc.join("ld.so.cache")).unwrap();
    assert_eq!(
        (md.mode() & 0o7777, md.uid(), md.gid()),
        (0o640, 12, 34),
        "mode and owner put back too"
    );
    assert_eq!(
        std::fs::read_dir(etc.join("ld.so.conf.d")).unwrap().count(),
        0,
        "our ld.so.conf.d entry is gone"
    );
    assert!(!bundle.join(".nvidia-runtime").exists());
}

#[test]
fn a_container_that_asks_for_nothing_is_not_touched() {
    let dir = tempfile::tempdir().unwrap();
    let Some(root) = simulated_root(dir.path()) else {
        return;
    };
    for env in [
        &[][..],
        &["NVIDIA_VISIBLE_DEVICES=void"][..],
        &["NVIDIA_VISIBLE_DEVICES="][..],
    ] {
        let bundle = bundle(dir.path(), env);
        let original = std::fs::read(bundle.join("config.json")).unwrap();
        let modified = std::fs::metadata(bundle.join("config.json"))
            .unwrap()
            .modified()
            .unwrap();
        assert!(matches!(
            inject_bundle(&bundle, &config(&root)).unwrap(),
            Outcome::NotRequested
        ));
        assert_eq!(std::fs::read(bundle.join("config.json")).unwrap(), original);
        let after = std::fs::metadata(bundle.join("config.json"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(modified, after, "not even rewritten with the same bytes");
        assert!(!bundle.join(".nvidia-runtime").exists());
        std::fs::remove_dir_all(&bundle).unwrap();
    }
}

#[test]
fn refused_requests_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let Some(root) = simulated_root(dir.path()) else {
        return;
    };
    for env in [
        &["NVIDIA_VISIBLE_DEVICES=GPU-nope"][..],
        &[
            "NVIDIA_VISIBLE_DEVICES=all",
            "NVIDIA_REQUIRE_CUDA=cuda>=99.0",
        ][..],
        &[
            "NVIDIA_VISIBLE_DEVICES=all",
            "NVIDIA_DRIVER_CAPABILITIES=warp",
        ][..],
        &["NVIDIA_VISIBLE_DEVICES=MIG-1234"][..],
    ] {
        let bundle = bundle(dir.path(), env);
        let original = std::fs::read(bundle.join("config.json")).unwrap();
        let err = inject_bundle(&bundle, &config(&root)).unwrap_err();
        assert!(!err.to_string().is_empty());
        assert_eq!(
            std::fs::read(bundle.join("config.json")).unwrap(),
            original,
            "{env:?}"
        );
        assert!(!bundle.join(".nvidia-runtime").exists());
        let libdir = bundle.join("rootfs/usr/lib/x86_64-linux-gnu");
        assert_eq!(
            std::fs::read_dir(&libdir).unwrap().count(),
            0,
            "{env:?}: {err}"
        );
        std::fs::remove_dir_all(&bundle).unwrap();
    }
}

fn spec_of(bundle: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap()
}

fn gpu_minors(bundle: &Path) -> Vec<String> {
    spec_of(bundle)["linux"]["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap().to_owned())
        .filter(|p| p.trim_start_matches("/dev/nvidia").parse::<u32>().is_ok())
        .collect()
}

#[test]
fn a_create_killed_half_way_is_undone_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let Some(root) = simulated_root(dir.path()) else {
        return;
    };
    let bundle = bundle(dir.path(), &["NVIDIA_VISIBLE_DEVICES=0"]);
    let original = std::fs::read(bundle.join("config.json")).unwrap();
    let libdir = bundle.join("rootfs/usr/lib/x86_64-linux-gnu");
    inject_bundle(&bundle, &config(&root)).unwrap();
    // As a create killed before it committed leaves it: pending, its process gone.
    let record_path = bundle.join(".nvidia-runtime/record.json");
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record_path).unwrap()).unwrap();
    assert_eq!(record["committed"], false);
    record["owner"]["pid"] = serde_json::json!(999_999_999);
    std::fs::write(&record_path, serde_json::to_vec(&record).unwrap()).unwrap();
    std::fs::write(bundle.join(".config.json.nvidia-runtime-tmp"), "half").unwrap();

    // The next injection (another GPU) undoes it first, then injects from the original.
    std::fs::write(
        bundle.join("config.json"),
        String::from_utf8(original.clone())
            .unwrap()
            .replace("NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_VISIBLE_DEVICES=1"),
    )
    .unwrap();
    let outcome = inject_bundle(&bundle, &config(&root)).unwrap();
    assert_eq!(gpu_minors(&bundle), vec!["/dev/nvidia0".to_string()]);
    assert!(!bundle.join(".config.json.nvidia-runtime-tmp").exists());
    outcome.rollback();
    assert!(!bundle.join(".nvidia-runtime").exists());
    assert_eq!(std::fs::read_dir(&libdir).unwrap().count(), 0);
}

#[test]
fn an_edited_request_is_injected_again_and_number_text_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let Some(root) = simulated_root(dir.path()) else {
        return;
    };
    let bundle = bundle(dir.path(), &["NVIDIA_VISIBLE_DEVICES=all"]);
    let big = "123456789012345678901234567890";
    let text = std::fs::read_to_string(bundle.join("config.json"))
        .unwrap()
        .replacen('{', &format!("{{\"x-big\": {big}, \"x-float\": 1.10,"), 1);
    std::fs::write(bundle.join("config.json"), &text).unwrap();
    let first = inject_bundle(&bundle, &config(&root)).unwrap();
    assert_eq!(gpu_minors(&bundle).len(), 2);
    let written = std::fs::read_to_string(bundle.join("config.json")).unwrap();
    assert!(written.contains(&format!("\"x-big\":{big}")), "{written}");
    assert!(written.contains("\"x-float\":1.10"), "{written}");
    inject::commit(&bundle).unwrap();
    drop(first);

    // Unchanged but for whitespace: already injected.
    let pretty = serde_json::to_vec_pretty(&spec_of(&bundle)).unwrap();
    std::fs::write(bundle.join("config.json"), pretty).unwrap();
    assert!(matches!(
        inject_bundle(&bundle, &config(&root)).unwrap(),
        Outcome::AlreadyInjected
    ));
    let first_cache = std::fs::read(bundle.join("rootfs/etc/ld.so.cache")).unwrap();
    // Edited to ask for GPU 1: injected again, GPU 1 only (minor 0), every node once.
    let edited = std::fs::read_to_string(bundle.join("config.json"))
        .unwrap()
        .replace("NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_VISIBLE_DEVICES=1");
    std::fs::write(bundle.join("config.json"), &edited).unwrap();
    let outcome = inject_bundle(&bundle, &config(&root)).unwrap();
    assert!(matches!(outcome, Outcome::Rewritten { .. }));
    assert_eq!(gpu_minors(&bundle), vec!["/dev/nvidia0".to_string()]);
    let spec = spec_of(&bundle);
    let ctl = spec["linux"]["devices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["path"] == "/dev/nvidiactl")
        .count();
    assert_eq!(ctl, 1);
    // A failed create of the edited bundle puts back the edited file and the first injection.
    outcome.rollback();
    assert_eq!(
        std::fs::read_to_string(bundle.join("config.json")).unwrap(),
        edited
    );
    assert!(bundle.join(".nvidia-runtime/record.json").is_file());
    // the first injection's cache is the rootfs's again, byte for byte
    assert_eq!(
        std::fs::read(bundle.join("rootfs/etc/ld.so.cache")).unwrap(),
        first_cache
    );
    assert!(!bundle.join(".nvidia-runtime/previous").exists());

    // Our marker in a config.json the bundle has no record of: refused, naming it.
    std::fs::remove_dir_all(bundle.join(".nvidia-runtime")).unwrap();
    let err = inject_bundle(&bundle, &config(&root)).unwrap_err();
    assert!(
        err.to_string()
            .contains("io.github.nvidia-runtime.injected"),
        "{err}"
    );
}

#[test]
fn a_name_too_long_for_our_files_leaves_the_bundle_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let Some(root) = simulated_root(dir.path()) else {
        return;
    };
    // <bundle>/config.json fits in PATH_MAX; <bundle>/.nvidia-runtime/record.json does not
    let mut parent = dir.path().to_path_buf();
    let want = 4075 - "/bundle".len();
    while parent.as_os_str().len() + 201 <= want {
        parent.push("d".repeat(200));
    }
    let rest = want - parent.as_os_str().len() - 1;
    parent.push("e".repeat(rest));
    // the rootfs (root.path absolute) where its paths fit
    let short = bundle(dir.path(), &["NVIDIA_VISIBLE_DEVICES=0"]);
    let bundle = parent.join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    assert_eq!(bundle.as_os_str().len(), 4075);
    let text = std::fs::read_to_string(short.join("config.json"))
        .unwrap()
        .replace("\"rootfs\"", &format!("{:?}", short.join("rootfs")));
    std::fs::write(bundle.join("config.json"), &text).unwrap();
    let original = std::fs::read(bundle.join("config.json")).unwrap();

    let err = inject_bundle(&bundle, &config(&root)).unwrap_err();
    assert!(err.to_string().contains("File name too long"), "{err}");
    assert_eq!(std::fs::read(bundle.join("config.json")).unwrap(), original);
    let mut left: Vec<String> = std::fs::read_dir(&bundle)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, vec!["config.json"]);
    let libdir = short.join("rootfs/usr/lib/x86_64-linux-gnu");
    assert_eq!(std::fs::read_dir(&libdir).unwrap().count(), 0);
}

fn set_env(bundle: &Path, visible: &str) {
    let mut spec = spec_of(bundle);
    let env = spec["process"]["env"].as_array_mut().unwrap();
    env.retain(|e| !e.as_str().unwrap().starts_with("NVIDIA_VISIBLE_DEVICES="));
    env.push(serde_json::json!(format!(
        "NVIDIA_VISIBLE_DEVICES={visible}"
    )));
    std::fs::write(
        bundle.join("config.json"),
        serde_json::to_vec(&spec).unwrap(),
    )
    .unwrap();
}

fn drop_annotations(bundle: &Path) {
    let mut spec = spec_of(bundle);
    spec.as_object_mut().unwrap().remove("annotations");
    std::fs::write(
        bundle.join("config.json"),
        serde_json::to_vec(&spec).unwrap(),
    )
    .unwrap();
}

#[test]
fn a_request_narrows_after_the_marker_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let Some(root) = simulated_root(dir.path()) else {
        return;
    };
    let bundle = bundle(dir.path(), &["NVIDIA_VISIBLE_DEVICES=all"]);
    inject_bundle(&bundle, &config(&root)).unwrap();
    inject::commit(&bundle).unwrap();
    assert_eq!(gpu_minors(&bundle).len(), 2);

    // the marker dropped with the annotations: what we wrote all the same
    drop_annotations(&bundle);
    assert!(matches!(
        inject_bundle(&bundle, &config(&root)).unwrap(),
        Outcome::AlreadyInjected
    ));
    // then narrowed: GPU 1 only (minor 0)
    set_env(&bundle, "1");
    inject_bundle(&bundle, &config(&root)).unwrap();
    inject::commit(&bundle).unwrap();
    assert_eq!(gpu_minors(&bundle), vec!["/dev/nvidia0".to_string()]);
    // the marker dropped again, then no GPU at all
    drop_annotations(&bundle);
    set_env(&bundle, "void");
    inject_bundle(&bundle, &config(&root)).unwrap();
    inject::commit(&bundle).unwrap();
    let spec = spec_of(&bundle);
    let nvidia = spec["linux"]["devices"]
        .as_array()
        .map(|devices| {
            devices
                .iter()
                .filter(|d| d["path"].as_str().unwrap().starts_with("/dev/nvidia"))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(nvidia, 0, "{spec}");
    // and back to all: both GPUs again
    set_env(&bundle, "all");
    inject_bundle(&bundle, &config(&root)).unwrap();
    assert_eq!(gpu_minors(&bundle).len(), 2);
}

#[test]
fn our_dir_is_private_and_never_followed() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let Some(root) = simulated_root(dir.path()) else {
        return;
    };
    let bundle = bundle(dir.path(), &["NVIDIA_VISIBLE_DEVICES=0"]);
    // one an earlier version left world-readable
    std::fs::create_dir(bundle.join(".nvidia-runtime")).unwrap();
    std::fs::set_permissions(
        bundle.join(".nvidia-runtime"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let outcome = inject_bundle(&bundle, &config(&root)).unwrap();
    let mode = std::fs::metadata(bundle.join(".nvidia-runtime"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o711);
    outcome.rollback();

    // a symlink to a host dir: refused, naming it; the host dir and config.json untouched
    let host = dir.path().join("host");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("precious"), "keep").unwrap();
    std::fs::remove_dir_all(bundle.join(".nvidia-runtime")).ok();
    std::os::unix::fs::symlink(&host, bundle.join(".nvidia-runtime")).unwrap();
    let before = std::fs::read(bundle.join("config.json")).unwrap();
    let err = inject_bundle(&bundle, &config(&root)).unwrap_err();
    assert!(err.to_string().contains(".nvidia-runtime"), "{err}");
    assert!(err.to_string().contains("symlink"), "{err}");
    assert_eq!(std::fs::read(bundle.join("config.json")).unwrap(), before);
    assert_eq!(
        std::fs::read_to_string(host.join("precious")).unwrap(),
        "keep"
    );
    assert_eq!(std::fs::read_dir(&host).unwrap().count(), 1);
}

#[test]
fn a_record_that_cannot_be_one_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let Some(root) = simulated_root(dir.path()) else {
        return;
    };
    let bundle = bundle(dir.path(), &["NVIDIA_VISIBLE_DEVICES=0"]);
    let record = bundle.join(".nvidia-runtime/record.json");
    std::fs::create_dir(bundle.join(".nvidia-runtime")).unwrap();
    // a FIFO: reading it would block for ever
    nix::unistd::mkfifo(&record, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let err = inject_bundle(&bundle, &config(&root)).unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&record.display().to_string()), "{text}");
    assert!(
        text.contains("FIFO") && text.contains("remove it"),
        "{text}"
    );
    // far bigger than any record
    std::fs::remove_file(&record).unwrap();
    std::fs::File::create(&record)
        .unwrap()
        .set_len(300 << 20)
        .unwrap();
    let text = inject_bundle(&bundle, &config(&root))
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("bytes") && text.contains("remove it"),
        "{text}"
    );
}

#[test]
fn a_forged_pending_record_restores_only_into_the_bundles_rootfs() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let Some(root) = simulated_root(dir.path()) else {
        return;
    };
    let host = dir.path().join("host");
    std::fs::create_dir_all(host.join("etc")).unwrap();
    std::fs::write(host.join("etc/victim"), "orig").unwrap();
    let bundle = bundle(dir.path(), &["NVIDIA_VISIBLE_DEVICES=0"]);
    let artifacts = bundle.join(".nvidia-runtime");
    std::fs::create_dir(&artifacts).unwrap();
    std::fs::write(artifacts.join("image-x"), "EVIL").unwrap();
    let forge = |root_path: &Path, path: &str| {
        let mut original = spec_of(&bundle);
        original["root"]["path"] = serde_json::json!(root_path);
        let original = original.to_string();
        let record = serde_json::json!({
            "format": 1, "runtime": "x", "owner": {"pid": 1, "start": 1}, "committed": false,
            "original": original, "written": null,
            "undo": {"original": original, "created_links": [], "new_paths": [],
                     "made_dir": false,
                     "written_files": [{"path": path, "replaced":
                         {"saved_as": "image-x", "mode": 0o4755, "uid": 0, "gid": 0}}]}
        });
        std::fs::write(artifacts.join("record.json"), record.to_string()).unwrap();
    };
    forge(&host, "/etc/victim");
    let outcome = inject_bundle(&bundle, &config(&root)).unwrap();
    assert_eq!(
        std::fs::read_to_string(host.join("etc/victim")).unwrap(),
        "orig"
    );
    outcome.rollback();

    // in the bundle's own rootfs: put back, but never set-id
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::write(artifacts.join("image-x"), "EVIL").unwrap();
    forge(Path::new("rootfs"), "/victim");
    let outcome = inject_bundle(&bundle, &config(&root)).unwrap();
    let restored = bundle.join("rootfs/victim");
    assert_eq!(std::fs::read_to_string(&restored).unwrap(), "EVIL");
    let mode = std::fs::metadata(&restored).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o755);
    outcome.rollback();
}

#[test]
fn the_image_links_we_repoint_are_put_back_also_after_a_kill() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let Some(root) = simulated_root(dir.path()) else {
        return;
    };
    let bundle = bundle(dir.path(), &["NVIDIA_VISIBLE_DEVICES=0"]);
    let libdir = bundle.join("rootfs/usr/lib/x86_64-linux-gnu");
    symlink("/opt/stub/libcuda.so.1", libdir.join("libcuda.so.1")).unwrap();
    symlink(
        "/opt/gone/libnvidia-ml.so.1",
        libdir.join("libnvidia-ml.so.1"),
    )
    .unwrap();
    let links = |libdir: &Path| {
        ["libcuda.so.1", "libnvidia-ml.so.1"].map(|name| std::fs::read_link(libdir.join(name)).ok())
    };
    let before = links(&libdir);

    let outcome = inject_bundle(&bundle, &config(&root)).unwrap();
    let during = links(&libdir);
    assert!(
        during[0]
            .as_ref()
            .is_some_and(|t| t.to_string_lossy().starts_with("libcuda.so.580")),
        "{during:?}"
    );
    outcome.rollback();
    assert_eq!(links(&libdir), before, "a failed create puts them back");

    // A create killed after it re-pointed them: the next create undoes it from the record.
    inject_bundle(&bundle, &config(&root)).unwrap();
    let record_path = bundle.join(".nvidia-runtime/record.json");
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record_path).unwrap()).unwrap();
    record["owner"]["pid"] = serde_json::json!(999_999_999);
    std::fs::write(&record_path, serde_json::to_vec(&record).unwrap()).unwrap();
    let outcome = inject_bundle(&bundle, &config(&root)).unwrap();
    outcome.rollback();
    assert_eq!(links(&libdir), before, "after a kill too");
    assert!(!bundle.join(".nvidia-runtime").exists());
}

#[test]
fn an_image_cache_that_is_not_a_plain_file_is_left_alone() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let Some(root) = simulated_root(dir.path()) else {
        return;
    };
    let host = dir.path().join("host-cache");
    std::fs::write(&host, "host's own").unwrap();
    let bundle = bundle(dir.path(), &["NVIDIA_VISIBLE_DEVICES=0"]);
    let etc = bundle.join("rootfs/etc");
    std::fs::create_dir_all(&etc).unwrap();
    let cache = etc.join("ld.so.cache");
    let big = vec![7u8; (inject::rootfs::MAX_READ + 1) as usize];
    type Make<'a> = Box<dyn Fn() + 'a>;
    let cases: [(&str, Make); 4] = [
        (
            "dangling link",
            Box::new(|| symlink("/gone", &cache).unwrap()),
        ),
        ("link out", Box::new(|| symlink(&host, &cache).unwrap())),
        (
            "directory",
            Box::new(|| std::fs::create_dir(&cache).unwrap()),
        ),
        (
            "too big",
            Box::new(|| std::fs::write(&cache, &big).unwrap()),
        ),
    ];
    for (what, make) in cases {
        let _ = std::fs::remove_dir(&cache);
        let _ = std::fs::remove_file(&cache);
        make();
        let before = std::fs::symlink_metadata(&cache).unwrap();
        let outcome = inject_bundle(&bundle, &config(&root)).unwrap();
        let mounts = spec_of(&bundle)["mounts"].to_string();
        assert!(!mounts.contains("ld.so.cache"), "{what}: not mounted over");
        let now = std::fs::symlink_metadata(&cache).unwrap();
        assert_eq!(
            (now.file_type(), now.len(), now.modified().unwrap()),
            (before.file_type(), before.len(), before.modified().unwrap()),
            "{what}: not written"
        );
        assert!(
            !bundle.join(".nvidia-runtime/image-ld.so.cache").exists(),
            "{what}: no copy of it"
        );
        outcome.rollback();
        assert_eq!(
            std::fs::symlink_metadata(&cache).unwrap().len(),
            before.len()
        );
    }
    assert_eq!(std::fs::read_to_string(&host).unwrap(), "host's own");
}

/// Every path under `dir`, relative to it, sorted (symlinks not followed).
fn tree(dir: &Path) -> Vec<PathBuf> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            out.push(path.strip_prefix(base).unwrap().to_owned());
            if path.symlink_metadata().unwrap().is_dir() {
                walk(base, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn the_injection_makes_the_mount_points_and_rollback_takes_them_away() {
    let dir = tempfile::tempdir().unwrap();
    let Some(root) = simulated_root(dir.path()) else {
        return;
    };
    let bundle = bundle(
        dir.path(),
        &[
            "NVIDIA_VISIBLE_DEVICES=all",
            "NVIDIA_DRIVER_CAPABILITIES=all",
        ],
    );
    let rootfs = bundle.join("rootfs");
    let before = tree(&rootfs);

    let outcome = inject_bundle(&bundle, &config(&root)).unwrap();
    let spec = spec_of(&bundle);
    let mut checked = 0;
    for mount in spec["mounts"].as_array().unwrap() {
        let destination = mount["destination"].as_str().unwrap();
        if destination.starts_with("/proc/") {
            continue; // the container's procfs, not its rootfs
        }
        let source = Path::new(mount["source"].as_str().unwrap());
        let point = rootfs.join(destination.trim_start_matches('/'));
        let meta = point
            .symlink_metadata()
            .unwrap_or_else(|err| panic!("no mount point {}: {err}", point.display()));
        if source.is_dir() {
            assert!(meta.is_dir(), "{} is a directory", point.display());
        } else {
            assert!(
                meta.is_file() && meta.len() == 0,
                "{} is an empty file",
                point.display()
            );
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} mount points in {spec}");

    outcome.rollback();
    assert_eq!(tree(&rootfs), before, "the rootfs is as it was");
}

#[test]
fn the_mount_points_of_cdi_bind_mounts_are_made_too() {
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("host");
    std::fs::create_dir_all(host.join("share")).unwrap();
    std::fs::write(host.join("tool"), "bin").unwrap();
    let specs = dir.path().join("cdi");
    std::fs::create_dir(&specs).unwrap();
    let spec = format!(
        "cdiVersion: 0.6.0\nkind: example.com/dev\ndevices:\n- name: a\n  containerEdits:\n    mounts:\n    - {{hostPath: {h}/tool, containerPath: /opt/dev/bin/tool, options: [ro, bind]}}\n    - {{hostPath: {h}/share, containerPath: /opt/dev/share, type: bind}}\n    - {{hostPath: tmpfs, containerPath: /opt/dev/scratch, type: tmpfs}}\n",
        h = host.display()
    );
    std::fs::write(specs.join("dev.yaml"), spec).unwrap();
    let bundle = bundle(dir.path(), &[]);
    let mut config_json: serde_json::Value = spec_of(&bundle);
    config_json["annotations"] = serde_json::json!({"cdi.k8s.io/test": "example.com/dev=a"});
    std::fs::write(bundle.join("config.json"), config_json.to_string()).unwrap();
    let rootfs = bundle.join("rootfs");
    let before = tree(&rootfs);
    let config = Config {
        cdi_spec_dirs: vec![specs],
        ..Config::default()
    };

    let outcome = inject_bundle(&bundle, &config).unwrap();
    let tool = rootfs.join("opt/dev/bin/tool").symlink_metadata().unwrap();
    assert!(
        tool.is_file() && tool.len() == 0,
        "an empty file for a file"
    );
    assert!(rootfs
        .join("opt/dev/share")
        .symlink_metadata()
        .unwrap()
        .is_dir());
    // not a bind mount: its mount point is libcontainer's to make
    assert!(!rootfs.join("opt/dev/scratch").exists());

    outcome.rollback();
    assert_eq!(tree(&rootfs), before, "the rootfs is as it was");
}
