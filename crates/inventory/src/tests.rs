//! Discovery against simulated hosts made by `tests/fixtures/make-driver-root.sh`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::*;

const VERSION: &str = "580.159.04";
const LIB64: &str = "usr/local/nvidia/lib64";
const LIBGNU: &str = "usr/lib/x86_64-linux-gnu";

struct Sim {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

/// A simulated host with `n` GPUs, or `None` (test skipped, with a note) where the script cannot
/// run: it needs root for mknod and `ldconfig -r`, and gcc.
fn sim(n: u32) -> Option<Sim> {
    let root_user = fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    let gcc = Command::new("gcc").arg("--version").output().is_ok();
    if !root_user || !gcc {
        eprintln!("skipped: make-driver-root.sh needs root and gcc");
        return None;
    }
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/make-driver-root.sh");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let out = Command::new("bash")
        .arg(&script)
        .arg(n.to_string())
        .arg(&root)
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "{} failed or printed: {:?}\n{}{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(Sim { _dir: dir, root })
}

/// The majors the script chose, from the simulated `proc/devices`.
fn sim_major(root: &Path, driver: &str) -> u32 {
    let text = fs::read_to_string(root.join("proc/devices")).unwrap();
    text.lines()
        .find_map(|l| {
            let (num, name) = l.trim().split_once(' ')?;
            (name == driver).then(|| num.parse().unwrap())
        })
        .unwrap_or_else(|| panic!("{driver} not in proc/devices"))
}

/// file name -> (capability, soname, directory under the root) of every library the script builds.
fn expected_libraries() -> BTreeMap<String, (Capability, String, &'static str)> {
    use Capability::*;
    let v = |name: &str| format!("{name}.{VERSION}");
    [
        (v("libcuda.so"), Compute, "libcuda.so.1", LIB64),
        (
            v("libcudadebugger.so"),
            Compute,
            "libcudadebugger.so.1",
            LIB64,
        ),
        (
            v("libnvidia-ptxjitcompiler.so"),
            Compute,
            "libnvidia-ptxjitcompiler.so.1",
            LIB64,
        ),
        (
            v("libnvidia-nvvm.so"),
            Compute,
            "libnvidia-nvvm.so.4",
            LIB64,
        ),
        (
            v("libnvidia-opencl.so"),
            Compute,
            "libnvidia-opencl.so.1",
            LIB64,
        ),
        (
            v("libnvidia-gpucomp.so"),
            Compute,
            &v("libnvidia-gpucomp.so"),
            LIB64,
        ),
        (
            v("libnvidia-allocator.so"),
            Compute,
            "libnvidia-allocator.so.1",
            LIB64,
        ),
        (v("libnvidia-ml.so"), Utility, "libnvidia-ml.so.1", LIB64),
        (v("libnvidia-cfg.so"), Utility, "libnvidia-cfg.so.1", LIB64),
        (
            v("libnvidia-encode.so"),
            Video,
            "libnvidia-encode.so.1",
            LIB64,
        ),
        (v("libnvcuvid.so"), Video, "libnvcuvid.so.1", LIB64),
        (
            v("libnvidia-opticalflow.so"),
            Video,
            "libnvidia-opticalflow.so.1",
            LIB64,
        ),
        (v("libnvidia-ngx.so"), Ngx, "libnvidia-ngx.so.1", LIB64),
        (
            v("libGLX_nvidia.so"),
            Graphics,
            "libGLX_nvidia.so.0",
            LIBGNU,
        ),
        (
            v("libEGL_nvidia.so"),
            Graphics,
            "libEGL_nvidia.so.0",
            LIBGNU,
        ),
        (
            v("libGLESv2_nvidia.so"),
            Graphics,
            "libGLESv2_nvidia.so.2",
            LIBGNU,
        ),
        (
            v("libGLESv1_CM_nvidia.so"),
            Graphics,
            "libGLESv1_CM_nvidia.so.1",
            LIBGNU,
        ),
        (
            v("libnvidia-glcore.so"),
            Graphics,
            &v("libnvidia-glcore.so"),
            LIBGNU,
        ),
        (
            v("libnvidia-eglcore.so"),
            Graphics,
            &v("libnvidia-eglcore.so"),
            LIBGNU,
        ),
        (
            v("libnvidia-tls.so"),
            Graphics,
            &v("libnvidia-tls.so"),
            LIBGNU,
        ),
        (
            v("libnvidia-glsi.so"),
            Graphics,
            &v("libnvidia-glsi.so"),
            LIBGNU,
        ),
        (
            v("libnvidia-glvkspirv.so"),
            Graphics,
            &v("libnvidia-glvkspirv.so"),
            LIBGNU,
        ),
        (
            "libnvidia-egl-wayland.so.1.1.19".into(),
            Graphics,
            "libnvidia-egl-wayland.so.1",
            LIBGNU,
        ),
        (
            "libnvidia-egl-gbm.so.1.1.2".into(),
            Graphics,
            "libnvidia-egl-gbm.so.1",
            LIBGNU,
        ),
    ]
    .into_iter()
    .map(|(f, c, s, d)| (f, (c, s.to_string(), d)))
    .collect()
}

fn check_libraries(root: &Path, inv: &Inventory) {
    let want = expected_libraries();
    let got: BTreeMap<String, (Capability, String, PathBuf)> = inv
        .libraries
        .iter()
        .map(|l| {
            (
                l.file_name.clone(),
                (
                    l.capability,
                    l.soname.clone().unwrap_or_default(),
                    l.host_path.clone(),
                ),
            )
        })
        .collect();
    assert_eq!(got.len(), inv.libraries.len(), "a file name twice");
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (name, (cap, soname, dir)) in want {
        let (gcap, gsoname, gpath) = &got[&name];
        assert_eq!((gcap, gsoname), (&cap, &soname), "{name}");
        assert_eq!(gpath, &root.join(dir).join(&name), "{name}");
    }
    // Stable order: by capability, then name.
    let order: Vec<_> = inv
        .libraries
        .iter()
        .map(|l| (l.capability, &l.file_name))
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
}

#[test]
fn eight_gpu_host() {
    let Some(s) = sim(8) else { return };
    let r = &s.root;
    let inv = discover(&Roots::all(r)).unwrap();

    assert_eq!(inv.driver_version, VERSION);
    assert_eq!(inv.cuda_version, Some((13, 0)));

    // nvidia-smi order is bus order; the script swaps minors pairwise so index != minor.
    let buses = ["18", "2a", "3a", "5d", "9a", "ab", "ba", "db"];
    assert_eq!(inv.gpus.len(), 8);
    for (i, g) in inv.gpus.iter().enumerate() {
        let minor = i as u32 ^ 1;
        assert_eq!(g.index, i as u32);
        assert_eq!(g.uuid, format!("GPU-4e565349-4d00-4000-8000-{i:012x}"));
        assert_eq!(g.bus_id, format!("0000:{}:00.0", buses[i]));
        assert_eq!(g.minor, minor);
        assert_eq!(g.model, "NVIDIA H100 80GB HBM3");
        assert_eq!(g.brand, "nvidia");
        assert_eq!(g.architecture, "hopper");
        assert_eq!(g.compute_capability, Some((9, 0)));
        assert!(!g.mig_enabled);
        let d = &g.device;
        assert_eq!(
            d.container_path,
            PathBuf::from(format!("/dev/nvidia{minor}"))
        );
        assert_eq!(d.host_path, r.join(format!("dev/nvidia{minor}")));
        assert_eq!(
            (d.major, d.minor, d.mode, d.uid, d.gid),
            (195, minor, 0o666, 0, 0)
        );
    }
    assert_eq!(inv.gpu_by_index(3).unwrap().minor, 2);
    assert_eq!(
        inv.gpu_by_uuid("gpu-4E565349-4d00-4000-8000-000000000005")
            .unwrap()
            .index,
        5
    );

    let uvm = sim_major(r, "nvidia-uvm");
    let caps = sim_major(r, "nvidia-caps");
    assert_ne!(uvm, caps);
    let ctl: Vec<_> = inv
        .control_devices
        .iter()
        .map(|d| (d.container_path.to_str().unwrap(), d.major, d.minor, d.mode))
        .collect();
    assert_eq!(
        ctl,
        [
            ("/dev/nvidiactl", 195, 255, 0o666),
            ("/dev/nvidia-uvm", uvm, 0, 0o666),
            ("/dev/nvidia-uvm-tools", uvm, 1, 0o666),
            ("/dev/nvidia-modeset", 195, 254, 0o666),
        ]
    );
    let mig: Vec<_> = inv
        .mig_caps
        .iter()
        .map(|d| (d.container_path.to_str().unwrap(), d.major, d.minor, d.mode))
        .collect();
    assert_eq!(
        mig,
        [
            ("/dev/nvidia-caps/nvidia-cap1", caps, 1, 0o400),
            ("/dev/nvidia-caps/nvidia-cap2", caps, 2, 0o444),
        ]
    );
    assert!(!inv.mig_enabled);

    check_libraries(r, &inv);
    assert_eq!(inv.libraries_for(Capability::Ngx).count(), 1);

    let bins: Vec<_> = inv
        .binaries
        .iter()
        .map(|b| (b.container_path.to_str().unwrap(), b.capability.unwrap()))
        .collect();
    assert_eq!(
        bins,
        [
            ("/usr/bin/nvidia-smi", Capability::Utility),
            ("/usr/bin/nvidia-debugdump", Capability::Utility),
            ("/usr/bin/nvidia-persistenced", Capability::Utility),
            ("/usr/bin/nvidia-cuda-mps-control", Capability::Compute),
            ("/usr/bin/nvidia-cuda-mps-server", Capability::Compute),
        ]
    );
    for b in &inv.binaries {
        assert_eq!(
            b.host_path,
            r.join("usr/local/nvidia/bin")
                .join(b.container_path.file_name().unwrap())
        );
    }

    let fw: Vec<_> = inv
        .firmware
        .iter()
        .map(|f| (f.container_path.clone(), f.host_path.clone(), f.capability))
        .collect();
    let fwdir = format!("lib/firmware/nvidia/{VERSION}");
    assert_eq!(
        fw,
        ["gsp_ga10x.bin", "gsp_tu10x.bin"].map(|n| (
            Path::new("/").join(&fwdir).join(n),
            r.join(&fwdir).join(n),
            None
        ))
    );

    let ipc: Vec<_> = inv
        .ipc
        .iter()
        .map(|f| {
            (
                f.container_path.to_str().unwrap(),
                f.host_path.clone(),
                f.capability,
            )
        })
        .collect();
    assert_eq!(
        ipc,
        [
            (
                "/run/nvidia-persistenced/socket",
                r.join("run/nvidia-persistenced/socket"),
                Some(Capability::Utility)
            ),
            (
                "/tmp/nvidia-mps",
                r.join("tmp/nvidia-mps"),
                Some(Capability::Compute)
            ),
        ]
    );

    // What discovery returns survives JSON, for `doctor` and `cdi generate`.
    let json = serde_json::to_string(&inv).unwrap();
    assert_eq!(serde_json::from_str::<Inventory>(&json).unwrap(), inv);
}

#[test]
fn without_ld_so_cache_the_fixed_dirs_find_the_same_libraries() {
    let Some(s) = sim(1) else { return };
    fs::remove_file(s.root.join("etc/ld.so.cache")).unwrap();
    let inv = discover(&Roots::all(&s.root)).unwrap();
    check_libraries(&s.root, &inv);
    // A corrupt cache is not fatal either.
    fs::write(
        s.root.join("etc/ld.so.cache"),
        b"glibc-ld.so.cache1.1 garbage",
    )
    .unwrap();
    let inv = discover(&Roots::all(&s.root)).unwrap();
    check_libraries(&s.root, &inv);
}

#[test]
fn fixed_dirs_skip_other_versions_and_other_machines() {
    let Some(s) = sim(1) else { return };
    let r = &s.root;
    // A library the cache does not list (ldconfig ran before it was copied) is found...
    let fbc = format!("libnvidia-fbc.so.{VERSION}");
    fs::create_dir_all(r.join("usr/lib64")).unwrap();
    fs::copy(
        r.join(LIB64).join(format!("libnvidia-cfg.so.{VERSION}")),
        r.join("usr/lib64").join(&fbc),
    )
    .unwrap();
    // ...one for another machine is not (`/usr/lib` holds i386 libraries on some distributions)...
    let nscq = format!("libnvidia-nscq.so.{VERSION}");
    let mut bytes = fs::read(r.join(LIB64).join(format!("libnvidia-cfg.so.{VERSION}"))).unwrap();
    bytes[18] = 3; // EM_386
    fs::write(r.join("usr/lib").join(&nscq), bytes).unwrap();
    // ...nor one left over from another driver version.
    fs::copy(
        r.join(LIB64).join(format!("libcuda.so.{VERSION}")),
        r.join(LIBGNU).join("libcuda.so.575.57.08"),
    )
    .unwrap();

    let inv = discover(&Roots::all(r)).unwrap();
    let names: Vec<_> = inv.libraries.iter().map(|l| l.file_name.as_str()).collect();
    let f = inv
        .libraries
        .iter()
        .find(|l| l.file_name == fbc)
        .expect("fbc found");
    assert_eq!(f.host_path, r.join("usr/lib64").join(&fbc));
    assert_eq!(f.capability, Capability::Graphics);
    assert!(!names.contains(&nscq.as_str()), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("575")), "{names:?}");
}

#[test]
fn cache_entries_resolve_inside_the_driver_root() {
    let Some(s) = sim(1) else { return };
    let r = &s.root;
    // Merged /usr, as on Debian and Ubuntu: the cache names /lib/... paths that exist only
    // through the root's own /lib -> usr/lib link.
    let conf = "/usr/local/nvidia/lib64\n/lib/gnu\n";
    fs::write(r.join("etc/ld.so.conf"), conf).unwrap();
    std::os::unix::fs::symlink("../usr/lib/x86_64-linux-gnu", r.join("lib/gnu")).unwrap();
    let out = Command::new("ldconfig").arg("-r").arg(r).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let cache = ldcache::Cache::read(&r.join("etc/ld.so.cache")).unwrap();
    assert!(
        cache.entries.iter().any(|e| e.path.starts_with("/lib/gnu")),
        "{:?}",
        cache.entries.iter().map(|e| &e.path).collect::<Vec<_>>()
    );

    let inv = discover(&Roots::all(r)).unwrap();
    check_libraries(r, &inv);
}

#[test]
fn unreadable_information_keeps_every_index() {
    let Some(s) = sim(4) else { return };
    let gpus = s.root.join("proc/driver/nvidia/gpus");
    let info = gpus.join("0000:2a:00.0/information");
    let indices = |inv: &Inventory| -> Vec<(u32, String)> {
        inv.gpus.iter().map(|g| (g.index, g.uuid.clone())).collect()
    };
    let uuid = |i: u32| format!("GPU-4e565349-4d00-4000-8000-{i:012x}");
    let expected = vec![(0, uuid(0)), (2, uuid(2)), (3, uuid(3))];

    for (what, damage) in [
        (
            "garbled",
            Some(&b"\x00\xffModel\nnot: what the driver writes\n"[..]),
        ),
        ("missing", None),
    ] {
        match damage {
            Some(bytes) => fs::write(&info, bytes).unwrap(),
            None => fs::remove_file(&info).unwrap(),
        }
        let inv = discover(&Roots::all(&s.root)).unwrap();
        assert_eq!(indices(&inv), expected, "{what}");
        assert_eq!(inv.unreadable_gpus.len(), 1, "{what}");
        let broken = &inv.unreadable_gpus[0];
        assert_eq!(broken.dir, gpus.join("0000:2a:00.0"), "{what}");
        assert_eq!(broken.index, Some(1), "{what}");
        assert!(!broken.reason.is_empty(), "{what}");
        assert_eq!(inv.gpus[1].proc_dir, gpus.join("0000:3a:00.0"));
    }

    // A directory that is no bus id has no place in bus order.
    fs::create_dir(gpus.join("not-a-bus-id")).unwrap();
    let inv = discover(&Roots::all(&s.root)).unwrap();
    assert_eq!(indices(&inv), expected);
    let unplaced = inv
        .unreadable_gpus
        .iter()
        .find(|u| u.dir.ends_with("not-a-bus-id"))
        .unwrap();
    assert_eq!(unplaced.index, None);
}

#[test]
fn duplicate_gpus_are_a_clear_error() {
    let Some(s) = sim(2) else { return };
    let info = s
        .root
        .join("proc/driver/nvidia/gpus/0000:2a:00.0/information");
    // Two GPUs claiming one minor is not a host.
    let other = fs::read_to_string(
        s.root
            .join("proc/driver/nvidia/gpus/0000:18:00.0/information"),
    )
    .unwrap();
    fs::write(&info, other.replace("-000000000000", "-000000000009")).unwrap();
    let msg = discover(&Roots::all(&s.root)).unwrap_err().to_string();
    assert!(
        msg.contains("Device Minor 1 is also another GPU's"),
        "{msg}"
    );
}

#[test]
fn module_and_libraries_of_different_versions_are_refused() {
    let Some(s) = sim(1) else { return };
    let version = s.root.join("proc/driver/nvidia/version");
    let text = fs::read_to_string(&version).unwrap();
    fs::write(&version, text.replace(VERSION, "575.57.08")).unwrap();
    let err = discover(&Roots::all(&s.root)).unwrap_err();
    match &err {
        Error::VersionMismatch {
            module_version,
            library_version,
            library,
            ..
        } => {
            assert_eq!(module_version, "575.57.08");
            assert_eq!(library_version, VERSION);
            assert!(library.starts_with(&s.root), "{}", library.display());
        }
        e => panic!("{e:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("575.57.08") && msg.contains(VERSION) && msg.contains("Reboot"),
        "{msg}"
    );

    // Graphics alone loads neither libcuda nor libnvidia-ml: nothing to compare.
    let graphics = Options {
        capabilities: Some(vec![Capability::Graphics]),
        ..Options::default()
    };
    assert!(discover_with(&Roots::all(&s.root), &graphics).is_ok());
    // Another version's leftover beside the module's libraries is no mismatch.
    fs::write(&version, text).unwrap();
    fs::write(s.root.join(LIB64).join("libcuda.so.575.57.08"), b"old").unwrap();
    assert!(discover(&Roots::all(&s.root)).is_ok());
}

#[test]
fn no_driver() {
    let t = tempfile::tempdir().unwrap();
    let err = discover(&Roots::all(t.path())).unwrap_err();
    match &err {
        Error::NoDriver { path } => assert_eq!(path, &t.path().join("proc/driver/nvidia/version")),
        e => panic!("{e:?}"),
    }
    assert!(err.to_string().contains("proc/driver/nvidia/version"));
}

#[test]
fn driver_without_gpus_or_files() {
    // Only the version file: a driver with every GPU excluded, in a root with nothing else.
    let t = tempfile::tempdir().unwrap();
    let v = t.path().join("proc/driver/nvidia/version");
    fs::create_dir_all(v.parent().unwrap()).unwrap();
    fs::write(&v, "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.129.03  Thu Oct 19 18:56:32 UTC 2023\n").unwrap();
    let inv = discover_with(
        &Roots::all(t.path()),
        &Options {
            cuda_version: Some((12, 4)),
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(inv.driver_version, "535.129.03");
    assert_eq!(inv.cuda_version, Some((12, 4)));
    assert!(inv.gpus.is_empty() && inv.libraries.is_empty() && inv.control_devices.is_empty());
    assert!(inv.binaries.is_empty() && inv.firmware.is_empty() && inv.ipc.is_empty());
}

#[test]
fn missing_node_drops_only_that_gpu_and_mig_shows() {
    let Some(s) = sim(4) else { return };
    let r = &s.root;
    // GPU index 2 has minor 3.
    fs::remove_file(r.join("dev/nvidia3")).unwrap();
    fs::create_dir_all(r.join("proc/driver/nvidia/capabilities/gpu1/mig/gi2/ci0")).unwrap();
    let mut roots = Roots::all(r);
    // Separate roots work like one.
    let dev = tempfile::tempdir().unwrap();
    fs::rename(r.join("dev"), dev.path().join("dev")).unwrap();
    roots.dev = dev.path().to_path_buf();

    let inv = discover(&roots).unwrap();
    let got: Vec<_> = inv
        .gpus
        .iter()
        .map(|g| (g.index, g.minor, g.mig_enabled))
        .collect();
    assert_eq!(got, [(0, 1, true), (1, 0, false), (3, 2, false)]);
    assert!(inv.mig_enabled);
    assert_eq!(inv.gpus[0].device.host_path, dev.path().join("dev/nvidia1"));
    assert_eq!(inv.control_devices.len(), 4);
}

#[test]
fn reads_only_what_it_needs() {
    let Some(s) = sim(8) else { return };
    let r = &s.root;
    let roots = Roots::all(r);

    fsx::stats::take();
    let first = discover(&roots).unwrap();
    let before = fsx::stats::take();

    // Thousands of unrelated files in the library dirs and a deep tree elsewhere must cost
    // nothing: discovery lists no library directory and walks no tree.
    for dir in [LIBGNU, LIB64, "usr/lib"] {
        for i in 0..1500 {
            fs::write(r.join(dir).join(format!("libjunk{i}.so.1")), b"").unwrap();
        }
    }
    let mut deep = r.join("usr/share");
    for i in 0..50 {
        deep = deep.join(format!("d{i}"));
    }
    fs::create_dir_all(&deep).unwrap();

    let second = discover(&roots).unwrap();
    let after = fsx::stats::take();
    assert_eq!(first, second);
    assert_eq!(
        (
            before.opens,
            before.bytes_read,
            before.dir_reads,
            before.dir_entries,
            before.stats
        ),
        (
            after.opens,
            after.bytes_read,
            after.dir_reads,
            after.dir_entries,
            after.stats
        )
    );

    // Everything read is under the root; the only directories listed are the GPU list, the
    // capabilities dir, the two firmware dirs and /dev/nvidia-caps.
    assert!(
        after.paths.iter().all(|p| p.starts_with(r)),
        "{:?}",
        after.paths
    );
    assert!(after.dir_reads <= 5, "{after:?}");
    assert!(after.dir_entries <= 8 + 1 + 2 * 2 + 2, "{after:?}");
    // Proc files, the loader cache and one 4 KiB head per library (the simulated libraries are
    // ~14 KiB, the real libcuda ~100 MB): no library is read whole.
    let libs = second.libraries.len() as u64;
    assert!(after.bytes_read <= libs * 4096 + 16 * 1024, "{after:?}");
    assert!(after.opens <= 1 + 8 + 30, "{after:?}");
    // Two or three lookups per library, per binary and per GPU; hundreds, not thousands.
    assert!(after.stats < 400, "{after:?}");
}

#[test]
fn a_capability_filter_discovers_only_those_files() {
    let Some(s) = sim(2) else { return };
    let all = discover(&Roots::all(&s.root)).unwrap();
    let only = |caps: Vec<Capability>| {
        discover_with(
            &Roots::all(&s.root),
            &Options {
                capabilities: Some(caps),
                ..Options::default()
            },
        )
        .unwrap()
    };
    let utility = only(vec![Capability::Utility]);
    assert!(!utility.libraries.is_empty());
    assert!(utility
        .libraries
        .iter()
        .all(|l| l.capability == Capability::Utility));
    assert!(utility
        .binaries
        .iter()
        .all(|b| b.capability == Some(Capability::Utility)));
    assert!(utility
        .binaries
        .iter()
        .any(|b| b.container_path.ends_with("nvidia-smi")));
    let expected: Vec<_> = all
        .libraries
        .iter()
        .filter(|l| l.capability == Capability::Utility)
        .cloned()
        .collect();
    assert_eq!(
        utility.libraries, expected,
        "the filter changes nothing else"
    );
    assert_eq!(utility.gpus, all.gpus);
    assert_eq!(
        utility.firmware, all.firmware,
        "firmware goes with any capability"
    );
    let compute = only(vec![Capability::Compute]);
    assert!(compute
        .binaries
        .iter()
        .all(|b| b.capability == Some(Capability::Compute)));
    assert!(compute
        .libraries
        .iter()
        .any(|l| l.file_name.starts_with("libcuda.so")));
}

#[test]
fn cached_driver_files_are_exact() {
    let Some(s) = sim(2) else { return };
    let r = &s.root;
    let roots = Roots::all(r);
    let cache_dir = s._dir.path().join("cache");
    let options = Options {
        capabilities: Some(vec![Capability::Compute, Capability::Utility]),
        ..Options::default()
    };
    let cached = || {
        let (inv, how) =
            discover_from(&roots, &options, Some((&cache_dir, Duration::ZERO))).unwrap();
        (inv, how.unwrap())
    };
    let fresh = || discover_with(&roots, &options).unwrap();

    let (first, how) = cached();
    assert_eq!((&first, how), (&fresh(), CacheUse::Stored));
    fsx::stats::take();
    let (second, how) = cached();
    let hit = fsx::stats::take();
    assert_eq!((&second, how), (&first, CacheUse::Hit));
    // A hit opens no library and does not read the loader cache.
    assert!(
        hit.paths
            .iter()
            .all(|p| !p.to_string_lossy().contains(".so")),
        "{:?}",
        hit.paths
    );

    // Daemons' sockets are no cached driver file: files made in the root's /run and /tmp (as
    // any process makes them all the time) do not throw the cache away.
    fs::write(r.join("run/x.pid"), b"").unwrap();
    fs::write(r.join("tmp/x"), b"").unwrap();
    assert_eq!(cached().1, CacheUse::Hit);

    // GPUs are never cached: one going away shows at once.
    let gpu_dirs: Vec<_> = fs::read_dir(r.join("proc/driver/nvidia/gpus"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    fs::remove_dir_all(&gpu_dirs[0]).unwrap();
    let (fewer, how) = cached();
    assert_eq!((fewer.gpus.len(), how), (1, CacheUse::Hit));

    // A library replaced by a different file (an upgrade in place): found again.
    std::thread::sleep(Duration::from_millis(30));
    let cuda = r.join(LIB64).join(format!("libcuda.so.{VERSION}"));
    let tmp = r.join(LIB64).join("libcuda.tmp");
    fs::copy(&cuda, &tmp).unwrap();
    fs::rename(&tmp, &cuda).unwrap();
    let (_, how) = cached();
    assert_eq!(how, CacheUse::Stored);

    // A library that appears with a new ld.so.cache (a package installed beside the driver).
    std::thread::sleep(Duration::from_millis(30));
    let nscq = format!("libnvidia-nscq.so.{VERSION}");
    assert!(!first.libraries.iter().any(|l| l.file_name == nscq));
    fs::copy(
        r.join(LIB64).join(format!("libnvidia-cfg.so.{VERSION}")),
        r.join(LIB64).join(&nscq),
    )
    .unwrap();
    let (after, how) = cached();
    assert_eq!(how, CacheUse::Stored);
    assert!(after.libraries.iter().any(|l| l.file_name == nscq));
    assert_eq!(after, fresh());
}
