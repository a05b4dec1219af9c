//! Device checks against a small simulated host: real character nodes (mknod needs root; the
//! tests say so and pass vacuously otherwise, as nothing can be checked without nodes).

use std::os::unix::fs::symlink;

use nix::sys::stat::{makedev, mknod, Mode, SFlag};

use super::*;

const UVM: u32 = 511;
const CAPS: u32 = 510;

fn root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn node(path: &Path, major: u32, minor: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(path);
    mknod(
        path,
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o666),
        makedev(major.into(), minor.into()),
    )
    .unwrap();
}

/// A host with 2 GPUs (minors 1 and 0), all nodes, no /dev/char links.
fn host() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    for (bus, minor) in [("0000:18:00.0", 1), ("0000:2a:00.0", 0)] {
        let d = r.join("proc/driver/nvidia/gpus").join(bus);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("information"),
            format!("Model: \t\t NVIDIA H100\nDevice Minor: \t {minor}\nGPU Excluded:\t No\n"),
        )
        .unwrap();
    }
    let mig = r.join("proc/driver/nvidia/capabilities/mig");
    std::fs::create_dir_all(&mig).unwrap();
    std::fs::write(
        mig.join("config"),
        "DeviceFileMinor: 1\nDeviceFileMode: 256\n",
    )
    .unwrap();
    std::fs::write(
        mig.join("monitor"),
        "DeviceFileMinor: 2\nDeviceFileMode: 292\n",
    )
    .unwrap();
    std::fs::write(
        r.join("proc/devices"),
        format!("Character devices:\n  1 mem\n195 nvidia-frontend\n{CAPS} nvidia-caps\n{UVM} nvidia-uvm\n\nBlock devices:\n  7 loop\n259 blkext\n"),
    )
    .unwrap();
    let dev = r.join("dev");
    node(&dev.join("nvidiactl"), 195, 255);
    node(&dev.join("nvidia0"), 195, 0);
    node(&dev.join("nvidia1"), 195, 1);
    node(&dev.join("nvidia-uvm"), UVM, 0);
    node(&dev.join("nvidia-uvm-tools"), UVM, 1);
    node(&dev.join("nvidia-caps/nvidia-cap1"), CAPS, 1);
    node(&dev.join("nvidia-caps/nvidia-cap2"), CAPS, 2);
    t
}

fn roots(t: &tempfile::TempDir) -> Roots {
    Roots::all(t.path())
}

fn ids_of(f: &[Finding]) -> Vec<(&'static str, Severity)> {
    f.iter().map(|f| (f.id, f.severity)).collect()
}

fn link_all(t: &tempfile::TempDir) {
    let c = t.path().join("dev/char");
    std::fs::create_dir_all(&c).unwrap();
    for (name, ma, mi) in [
        ("nvidiactl", 195, 255),
        ("nvidia0", 195, 0),
        ("nvidia1", 195, 1),
        ("nvidia-uvm", UVM, 0),
        ("nvidia-uvm-tools", UVM, 1),
        ("nvidia-caps/nvidia-cap1", CAPS, 1),
        ("nvidia-caps/nvidia-cap2", CAPS, 2),
    ] {
        symlink(format!("../{name}"), c.join(format!("{ma}:{mi}"))).unwrap();
    }
}

#[test]
fn proc_devices_and_minors() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("proc-devices"), "").unwrap();
    assert!(char_majors(t.path()).is_empty());
    std::fs::create_dir_all(t.path().join("proc")).unwrap();
    std::fs::write(
        t.path().join("proc/devices"),
        "Character devices:\n195 nvidia-frontend\n508 nvidia-uvm\n\nBlock devices:\n 9 md\n",
    )
    .unwrap();
    let m = char_majors(t.path());
    assert_eq!(m.get("nvidia-uvm"), Some(&508));
    assert_eq!(m.get("nvidia-frontend"), Some(&195));
    assert_eq!(m.get("md"), None, "block devices are not character majors");
    // An H100 host's (driver 580, open module): "nvidia" and "nvidiactl", no "nvidia-frontend".
    std::fs::write(
        t.path().join("proc/devices"),
        "Character devices:\n  1 mem\n195 nvidia\n195 nvidiactl\n203 cpu/cpuid\n238 nvidia-uvm\n239 nvidia-nvswitch\n240 nvidia-nvlink\n241 nvidia-caps\n242 nvidia-caps-imex-channels\n\nBlock devices:\n  7 loop\n259 blkext\n",
    )
    .unwrap();
    let m = char_majors(t.path());
    assert_eq!(
        (
            m.get("nvidia"),
            m.get("nvidia-uvm"),
            m.get("nvidia-caps"),
            m.get("cpu/cpuid")
        ),
        (Some(&195), Some(&238), Some(&241), Some(&203))
    );
    let g = t.path().join("proc/driver/nvidia/gpus");
    for (bus, minor, excluded) in [("a", 3, "No"), ("b", 1, "No"), ("c", 2, "Yes")] {
        std::fs::create_dir_all(g.join(bus)).unwrap();
        std::fs::write(
            g.join(bus).join("information"),
            format!("Device Minor: \t {minor}\nGPU Excluded:\t {excluded}\n"),
        )
        .unwrap();
    }
    assert_eq!(gpu_minors(t.path()), vec![1, 3]);
}

#[test]
fn healthy() {
    if !root() {
        eprintln!("skipped: mknod needs root");
        return;
    }
    let t = host();
    link_all(&t);
    let f = check(&roots(&t), true);
    assert_eq!(
        ids_of(&f),
        vec![
            (ids::DEVICES_OK, Severity::Ok),
            (ids::DEVICES_CHAR_LINKS_OK, Severity::Ok)
        ],
        "{f:#?}"
    );
    assert!(f[0].message.contains("7 device nodes"), "{}", f[0].message);
}

#[test]
fn missing_uvm_nodes() {
    if !root() {
        return;
    }
    let t = host();
    std::fs::remove_file(t.path().join("dev/nvidia-uvm")).unwrap();
    std::fs::remove_file(t.path().join("dev/nvidia-uvm-tools")).unwrap();
    let f = check(&roots(&t), false);
    assert_eq!(f[0].id, ids::DEVICES_UVM_MISSING);
    assert_eq!(f[0].severity, Severity::Error);
    let fix = f[0].fix.as_deref().unwrap();
    assert!(
        fix.contains(&format!(
            "mknod -m 666 {}/dev/nvidia-uvm c {UVM} 0",
            t.path().display()
        )),
        "{fix}"
    );
    assert!(fix.contains("nvidia-uvm-tools c 511 1"), "{fix}");
}

#[test]
fn uvm_module_not_loaded() {
    if !root() {
        return;
    }
    let t = host();
    let devices = t.path().join("proc/devices");
    let text = std::fs::read_to_string(&devices)
        .unwrap()
        .replace("511 nvidia-uvm\n", "");
    std::fs::write(&devices, text).unwrap();
    let f = check(&roots(&t), false);
    assert_eq!(f[0].id, ids::DEVICES_UVM_MODULE_MISSING);
    assert!(f[0].message.contains("lead nowhere"), "{}", f[0].message);
}

#[test]
fn no_proc_devices() {
    if !root() {
        return;
    }
    // Without /proc/devices nothing is known of the uvm module: present nodes pass, missing
    // ones are still missing (with no mknod line, the major being unknown).
    let t = host();
    std::fs::remove_file(t.path().join("proc/devices")).unwrap();
    let f = check(&roots(&t), false);
    assert_eq!(f[0].id, ids::DEVICES_OK, "{f:#?}");
    std::fs::remove_file(t.path().join("dev/nvidia-uvm-tools")).unwrap();
    let f = check(&roots(&t), false);
    assert_eq!(f[0].id, ids::DEVICES_UVM_MISSING, "{f:#?}");
    assert!(!f[0].fix.as_deref().unwrap().contains("mknod"));
}

#[test]
fn wrong_major_and_missing_gpu() {
    if !root() {
        return;
    }
    let t = host();
    node(&t.path().join("dev/nvidia-uvm"), 300, 0);
    std::fs::remove_file(t.path().join("dev/nvidia1")).unwrap();
    let f = check(&roots(&t), false);
    let got = ids_of(&f);
    assert!(
        got.contains(&(ids::DEVICES_GPU_MISSING, Severity::Error)),
        "{got:?}"
    );
    assert!(
        got.contains(&(ids::DEVICES_WRONG_NUMBER, Severity::Error)),
        "{got:?}"
    );
    let wrong = f
        .iter()
        .find(|f| f.id == ids::DEVICES_WRONG_NUMBER)
        .unwrap();
    assert!(
        wrong.message.contains("is (300, 0), must be (511, 0)"),
        "{}",
        wrong.message
    );
    let gpu = f.iter().find(|f| f.id == ids::DEVICES_GPU_MISSING).unwrap();
    assert!(gpu.message.contains("/dev/nvidia1"), "{}", gpu.message);
    assert!(!gpu.message.contains("/dev/nvidia0"), "{}", gpu.message);
}

#[test]
fn ctl_and_caps_missing() {
    if !root() {
        return;
    }
    let t = host();
    std::fs::remove_file(t.path().join("dev/nvidiactl")).unwrap();
    std::fs::remove_dir_all(t.path().join("dev/nvidia-caps")).unwrap();
    let got = ids_of(&check(&roots(&t), false));
    assert!(
        got.contains(&(ids::DEVICES_CTL_MISSING, Severity::Error)),
        "{got:?}"
    );
    assert!(
        got.contains(&(ids::DEVICES_CAPS_MISSING, Severity::Warning)),
        "{got:?}"
    );
}

#[test]
fn char_links_follow_the_cgroup_driver() {
    if !root() {
        return;
    }
    let t = host();
    let f = check(&roots(&t), false);
    let links = f.last().unwrap();
    assert_eq!(
        (links.id, links.severity),
        (ids::DEVICES_CHAR_LINKS_MISSING, Severity::Warning)
    );
    let fix = links.fix.as_deref().unwrap();
    assert!(
        fix.contains(&format!(
            "\nmkdir -p {}/dev/char\nln -sfn ",
            t.path().display()
        )),
        "no /dev/char yet: the fix makes it first: {fix}"
    );
    assert!(
        fix.contains(&format!(
            "ln -sfn ../nvidia0 {}/dev/char/195:0",
            t.path().display()
        )),
        "{fix}"
    );
    assert!(fix.contains("ln -sfn ../nvidia-caps/nvidia-cap1 "), "{fix}");
    let f = check(&roots(&t), true);
    assert_eq!(f.last().unwrap().severity, Severity::Error);

    // The fix, applied, is enough; a link to the wrong node is not.
    for line in fix.lines().filter(|l| l.starts_with("ln -sfn ")) {
        let mut w = line.split_whitespace().skip(2);
        let (target, link) = (w.next().unwrap(), w.next().unwrap());
        std::fs::create_dir_all(Path::new(link).parent().unwrap()).unwrap();
        symlink(target, link).unwrap();
    }
    assert_eq!(
        check(&roots(&t), true).last().unwrap().id,
        ids::DEVICES_CHAR_LINKS_OK
    );
    let l = t.path().join("dev/char/195:0");
    std::fs::remove_file(&l).unwrap();
    symlink("../nvidia1", &l).unwrap();
    let last = check(&roots(&t), true).pop().unwrap();
    assert_eq!(last.id, ids::DEVICES_CHAR_LINKS_MISSING);
    assert!(
        last.message.contains("195:0") && !last.message.contains("195:1"),
        "{}",
        last.message
    );
}
