//! Driver libraries, by capability: the host's `ld.so.cache` first (it knows unusual directories
//! such as `/usr/local/nvidia/lib64`), then a fixed list of directories probed by exact file name.
//! No directory is listed: a distribution's lib directory holds thousands of files.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use crate::fsx::{self, Resolved, Resolver};
use crate::{elf, Capability, Library, LibraryLink};

/// Where the host's loader cache is, in the driver root's view.
pub(crate) const LD_SO_CACHE: &str = "/etc/ld.so.cache";

/// Searched after the cache, in this order, for libraries the cache does not list.
pub const FALLBACK_LIB_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib64",
    "/usr/local/nvidia/lib64",
    "/usr/lib",
    "/lib64",
    "/lib/x86_64-linux-gnu",
];

/// How a library's real file is named.
#[derive(Clone, Copy)]
enum Naming {
    /// `<name>.<driver version>`, e.g. `libcuda.so.580.159.04`.
    DriverVersion,
    /// A version of its own (`libnvidia-egl-wayland.so.1.1.19`), found through this SONAME link.
    Own { soname: &'static str },
}

struct Spec {
    name: &'static str,
    capability: Capability,
    naming: Naming,
}

const fn v(name: &'static str, capability: Capability) -> Spec {
    Spec {
        name,
        capability,
        naming: Naming::DriverVersion,
    }
}

const fn own(name: &'static str, soname: &'static str, capability: Capability) -> Spec {
    Spec {
        name,
        capability,
        naming: Naming::Own { soname },
    }
}

use Capability::{Compute, Graphics, Ngx, Utility, Video};

/// The libraries NVIDIA's libnvidia-container injects per capability (its `utility_libs`,
/// `compute_libs`, `video_libs`, `graphics_libs`, `graphics_libs_glvnd` and `ngx_libs`), plus the
/// EGL platform libraries with versions of their own that its Go toolkit adds for graphics. The
/// GLVND-less compat names (`libGL.so`, ...) are left out: every current driver is GLVND.
const SPECS: &[Spec] = &[
    v("libnvidia-ml.so", Utility),
    v("libnvidia-cfg.so", Utility),
    v("libnvidia-nscq.so", Utility),
    v("libcuda.so", Compute),
    v("libcudadebugger.so", Compute),
    v("libnvidia-opencl.so", Compute),
    v("libnvidia-gpucomp.so", Compute),
    v("libnvidia-ptxjitcompiler.so", Compute),
    v("libnvidia-fatbinaryloader.so", Compute),
    v("libnvidia-allocator.so", Compute),
    v("libnvidia-compiler.so", Compute),
    v("libnvidia-pkcs11.so", Compute),
    v("libnvidia-pkcs11-openssl3.so", Compute),
    v("libnvidia-nvvm.so", Compute),
    v("libnvidia-tileiras.so", Compute),
    v("libvdpau_nvidia.so", Video),
    v("libnvidia-encode.so", Video),
    v("libnvidia-opticalflow.so", Video),
    v("libnvcuvid.so", Video),
    v("libnvidia-eglcore.so", Graphics),
    v("libnvidia-glcore.so", Graphics),
    v("libnvidia-tls.so", Graphics),
    v("libnvidia-glsi.so", Graphics),
    v("libnvidia-fbc.so", Graphics),
    v("libnvidia-ifr.so", Graphics),
    v("libnvidia-rtcore.so", Graphics),
    v("libnvoptix.so", Graphics),
    v("libGLX_nvidia.so", Graphics),
    v("libEGL_nvidia.so", Graphics),
    v("libGLESv2_nvidia.so", Graphics),
    v("libGLESv1_CM_nvidia.so", Graphics),
    v("libnvidia-glvkspirv.so", Graphics),
    v("libnvidia-cbl.so", Graphics),
    v("libnvidia-vulkan-producer.so", Graphics),
    own(
        "libnvidia-egl-wayland.so",
        "libnvidia-egl-wayland.so.1",
        Graphics,
    ),
    own("libnvidia-egl-gbm.so", "libnvidia-egl-gbm.so.1", Graphics),
    own("libnvidia-egl-xcb.so", "libnvidia-egl-xcb.so.1", Graphics),
    own("libnvidia-egl-xlib.so", "libnvidia-egl-xlib.so.1", Graphics),
    v("libnvidia-ngx.so", Ngx),
];

/// `name` equals `prefix` or continues it with a `.`: "libcuda.so.1" is a "libcuda.so", and
/// "libnvidia-pkcs11-openssl3.so" is no "libnvidia-pkcs11.so".
fn has_prefix(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

impl Spec {
    /// Whether a real file of this library may have this name.
    fn accepts(&self, file_name: &str, driver_version: &str) -> bool {
        let Some(rest) = file_name.strip_prefix(self.name) else {
            return false;
        };
        match self.naming {
            // A leftover of an older driver must not be mixed with this kernel module.
            Naming::DriverVersion => rest.strip_prefix('.') == Some(driver_version),
            Naming::Own { .. } => rest.strip_prefix('.').is_some_and(|ver| {
                !ver.is_empty()
                    && ver
                        .split('.')
                        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            }),
        }
    }

    fn probe_name(&self, driver_version: &str) -> String {
        match self.naming {
            Naming::DriverVersion => format!("{}.{driver_version}", self.name),
            Naming::Own { soname } => soname.to_string(),
        }
    }
}

pub(crate) fn find(
    res: &mut Resolver<'_>,
    driver_version: &str,
    wants: &dyn Fn(Capability) -> bool,
) -> Vec<Library> {
    let driver_root = res.root();
    let mut found = Found::default();

    let cache_path = fsx::under(driver_root, Path::new(LD_SO_CACHE));
    let cache = match fsx::read(&cache_path) {
        Ok(bytes) => ldcache::Cache::parse(&bytes).map_err(|e| e.to_string()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Without a cache the fixed directories still find a normally installed driver.
            tracing::debug!(path = %cache_path.display(), "no ld.so.cache; using the fixed library directories");
            Ok(ldcache::Cache::default())
        }
        Err(e) => Err(e.to_string()),
    };
    let cache = cache.unwrap_or_else(|err| {
        tracing::warn!(path = %cache_path.display(), error = %err, "cannot read ld.so.cache; using the fixed library directories");
        ldcache::Cache::default()
    });
    for e in &cache.entries {
        if e.flags != ldcache::FLAG_X86_64_LIBC6 {
            continue;
        }
        let Some((i, spec)) = SPECS
            .iter()
            .enumerate()
            .find(|(_, s)| has_prefix(&e.name, s.name))
        else {
            continue;
        };
        if !wants(spec.capability) {
            continue;
        }
        // Every link to a library has an entry (libcuda.so, libcuda.so.1): the first that leads
        // to this driver's file settles it, as it would for the loader.
        if found.specs.contains(&i) {
            continue;
        }
        match res.resolve(&e.path) {
            Ok(real) => {
                found.add(i, spec, real, driver_version, false);
            }
            Err(err) => tracing::debug!(entry = %e.path.display(), error = %err,
                "ld.so.cache entry does not resolve under the driver root"),
        }
    }

    // Merged-/usr hosts reach one directory under several names (/lib64 -> usr/lib64): probe it
    // once. Missing directories drop out here too.
    let mut dirs: Vec<(&str, PathBuf)> = Vec::new();
    for dir in FALLBACK_LIB_DIRS {
        if let Ok(real) = res.resolve(Path::new(dir)) {
            if real.metadata.is_dir() && !dirs.iter().any(|(_, r)| *r == real.path) {
                dirs.push((dir, real.path));
            }
        }
    }
    for (i, spec) in SPECS.iter().enumerate() {
        if found.specs.contains(&i) || !wants(spec.capability) {
            continue;
        }
        let file = spec.probe_name(driver_version);
        for (dir, _) in &dirs {
            match res.resolve(&Path::new(dir).join(&file)) {
                Ok(real) => {
                    if found.add(i, spec, real, driver_version, true) {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => tracing::debug!(dir, file, error = %e, "cannot resolve library"),
            }
        }
    }

    let mut libs = found.libs;
    for (lib, &i) in libs.iter_mut().zip(&found.lib_specs) {
        lib.links = links_of(res, lib, &SPECS[i], &cache);
    }
    libs.sort_by(|a, b| (a.capability, &a.file_name).cmp(&(b.capability, &b.file_name)));
    libs
}

/// The symlinks the host has for `lib`, without listing a directory: the loader cache's
/// entries of its name (ldconfig lists every link it saw), and its unversioned name and
/// SONAME beside the file (a link made after the last ldconfig). Each must be a symlink that
/// leads to the library's very file.
fn links_of(
    res: &mut Resolver<'_>,
    lib: &Library,
    spec: &Spec,
    cache: &ldcache::Cache,
) -> Vec<LibraryLink> {
    let mut candidates: Vec<PathBuf> = cache
        .entries
        .iter()
        .filter(|e| e.flags == ldcache::FLAG_X86_64_LIBC6 && has_prefix(&e.name, spec.name))
        .map(|e| e.path.clone())
        .collect();
    if let Ok(in_root) = lib.host_path.strip_prefix(res.root()) {
        if let Some(dir) = Path::new("/").join(in_root).parent() {
            candidates.push(dir.join(spec.name));
            if let Some(soname) = &lib.soname {
                candidates.push(dir.join(soname));
            }
        }
    }
    // (name, the host's target)
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    for candidate in candidates {
        let Some(name) = candidate.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name == lib.file_name
            || Some(name) == lib.soname.as_deref()
            || !has_prefix(name, spec.name)
            || found.iter().any(|(n, _)| n == name)
        {
            continue;
        }
        let Ok(target) = res.read_link(&candidate) else {
            continue;
        };
        match res.resolve(&candidate) {
            Ok(real) if real.path == lib.host_path => found.push((name.to_string(), target)),
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(link = %candidate.display(), error = %e, "cannot resolve link")
            }
        }
    }
    let names: Vec<&str> = found
        .iter()
        .map(|(n, _)| n.as_str())
        .chain(lib.soname.as_deref())
        .collect();
    let mut links: Vec<LibraryLink> = found
        .iter()
        .map(|(name, target)| {
            let target = target
                .to_str()
                .filter(|t| !t.contains('/') && *t != name && names.contains(t))
                .unwrap_or(&lib.file_name);
            LibraryLink {
                name: name.clone(),
                target: target.to_string(),
            }
        })
        .collect();
    links.sort_by(|a, b| a.name.cmp(&b.name));
    links
}

#[derive(Default)]
struct Found {
    libs: Vec<Library>,
    /// The index in [`SPECS`] of each of `libs`.
    lib_specs: Vec<usize>,
    names: HashSet<String>,
    specs: HashSet<usize>,
}

impl Found {
    /// Takes `real` as library `spec` if its name fits, it is a regular file, and (when it does
    /// not come from the loader's cache, which already checked) an x86-64 ELF: `/usr/lib` is
    /// 32-bit on some distributions. Returns whether the library is now known.
    fn add(
        &mut self,
        i: usize,
        spec: &Spec,
        real: Resolved,
        version: &str,
        check_arch: bool,
    ) -> bool {
        let Resolved {
            path: real,
            metadata,
        } = real;
        let Some(file_name) = real
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
        else {
            return false;
        };
        if !spec.accepts(&file_name, version) {
            tracing::debug!(path = %real.display(), "not this driver's version; skipped");
            return false;
        }
        // The first one wins, as it does for the loader.
        if self.names.contains(&file_name) {
            self.specs.insert(i);
            return true;
        }
        if !metadata.is_file() {
            return false;
        }
        let soname = match elf::read(&real) {
            Ok(Some(info)) => {
                if check_arch && info.machine != elf::EM_X86_64 {
                    tracing::debug!(path = %real.display(), machine = info.machine, "not an x86-64 library; skipped");
                    return false;
                }
                info.soname
            }
            Ok(None) => {
                if check_arch {
                    tracing::debug!(path = %real.display(), "not an ELF64 library; skipped");
                    return false;
                }
                None
            }
            Err(e) => {
                tracing::warn!(path = %real.display(), error = %e, "cannot read library");
                return false;
            }
        };
        self.names.insert(file_name.clone());
        self.specs.insert(i);
        self.libs.push(Library {
            host_path: real,
            file_name,
            soname,
            capability: spec.capability,
            links: Vec::new(),
        });
        self.lib_specs.push(i);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_versions() {
        assert!(has_prefix("libcuda.so.1", "libcuda.so"));
        assert!(has_prefix("libcuda.so", "libcuda.so"));
        assert!(!has_prefix("libcudart.so.12", "libcuda.so"));
        assert!(!has_prefix(
            "libnvidia-pkcs11-openssl3.so.580.1",
            "libnvidia-pkcs11.so"
        ));
        let cuda = &SPECS.iter().find(|s| s.name == "libcuda.so").unwrap();
        assert!(cuda.accepts("libcuda.so.580.159.04", "580.159.04"));
        assert!(!cuda.accepts("libcuda.so.575.57.08", "580.159.04"));
        assert!(!cuda.accepts("libcuda.so.1", "580.159.04"));
        let wl = SPECS
            .iter()
            .find(|s| s.name == "libnvidia-egl-wayland.so")
            .unwrap();
        assert!(wl.accepts("libnvidia-egl-wayland.so.1.1.19", "580.159.04"));
        assert!(!wl.accepts("libnvidia-egl-wayland.so.1.x", "580.159.04"));
    }

    /// The simulated driver root of `tests/fixtures/make-driver-root.sh`, or `None` (skipped)
    /// where it cannot be built (it needs root and gcc).
    fn sim(dir: &Path) -> Option<PathBuf> {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/make-driver-root.sh");
        let root = dir.join("root");
        let ok = std::process::Command::new("bash")
            .arg(script)
            .arg("1")
            .arg(&root)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("skipped: make-driver-root.sh needs root and gcc");
        }
        ok.then_some(root)
    }

    fn links(inv: &crate::Inventory, file: &str) -> Vec<(String, String)> {
        let lib = inv.libraries.iter().find(|l| l.file_name == file).unwrap();
        lib.links
            .iter()
            .map(|l| (l.name.clone(), l.target.clone()))
            .collect()
    }

    #[test]
    fn the_hosts_links_are_found_without_listing_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let Some(root) = sim(dir.path()) else { return };
        let lib64 = root.join("usr/local/nvidia/lib64");
        let pair = |a: &str, b: &str| vec![(a.to_string(), b.to_string())];
        for with_cache in [true, false] {
            let inv = crate::discover(&crate::Roots::all(&root)).unwrap();
            assert_eq!(
                links(&inv, "libnvidia-ml.so.580.159.04"),
                pair("libnvidia-ml.so", "libnvidia-ml.so.1")
            );
            assert_eq!(
                links(&inv, "libcuda.so.580.159.04"),
                pair("libcuda.so", "libcuda.so.1")
            );
            // made after ldconfig: not in the cache, found beside the file
            assert_eq!(
                links(&inv, "libnvidia-allocator.so.580.159.04"),
                pair("libnvidia-allocator.so", "libnvidia-allocator.so.1")
            );
            // the SONAME is the file name: nothing more
            assert_eq!(links(&inv, "libnvidia-gpucomp.so.580.159.04"), vec![]);
            if with_cache {
                std::fs::remove_file(root.join("etc/ld.so.cache")).unwrap();
            }
        }

        // a link to another file (an older driver's), and one with an absolute target
        std::fs::copy(
            lib64.join("libnvidia-cfg.so.580.159.04"),
            lib64.join("libnvidia-cfg.so.575.1"),
        )
        .unwrap();
        std::fs::remove_file(lib64.join("libnvidia-cfg.so")).unwrap();
        std::os::unix::fs::symlink("libnvidia-cfg.so.575.1", lib64.join("libnvidia-cfg.so"))
            .unwrap();
        std::fs::remove_file(lib64.join("libnvidia-ml.so")).unwrap();
        std::os::unix::fs::symlink(
            "/usr/local/nvidia/lib64/libnvidia-ml.so.580.159.04",
            lib64.join("libnvidia-ml.so"),
        )
        .unwrap();
        let inv = crate::discover(&crate::Roots::all(&root)).unwrap();
        assert_eq!(links(&inv, "libnvidia-cfg.so.580.159.04"), vec![]);
        assert_eq!(
            links(&inv, "libnvidia-ml.so.580.159.04"),
            pair("libnvidia-ml.so", "libnvidia-ml.so.580.159.04")
        );
    }

    #[test]
    fn no_spec_shadows_another() {
        for a in SPECS {
            for b in SPECS {
                if a.name != b.name {
                    assert!(!has_prefix(a.name, b.name), "{} / {}", a.name, b.name);
                }
            }
        }
    }
}
