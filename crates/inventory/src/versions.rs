//! Whether the installed driver libraries belong to the loaded kernel module.
//!
//! Libraries are taken only at the module's version (`libcuda.so.<version>`): a leftover of
//! another driver must not be mixed with this module. When the module's libraries are missing
//! but another version's are installed, a driver upgrade is half done (new files, old module
//! still loaded, or the reverse): a container would get GPUs without the libraries to use them,
//! so discovery says so instead.

use std::path::{Path, PathBuf};

use crate::fsx::{self, Resolver};
use crate::libraries::{FALLBACK_LIB_DIRS, LD_SO_CACHE};
use crate::{procfs, Capability, Error, Library};

/// The library every container of a capability loads first, by the name of its real file
/// without the version (the SONAME is this name and `.1`).
const WITNESSES: [(Capability, &str); 2] = [
    (Capability::Compute, "libcuda.so"),
    (Capability::Utility, "libnvidia-ml.so"),
];

/// `Err(Error::VersionMismatch)` when a witness library of a wanted capability was not found at
/// the module's version but is installed at another.
pub(crate) fn check(
    driver_root: &Path,
    proc_root: &Path,
    driver_version: &str,
    libraries: &[Library],
    wants: &dyn Fn(Capability) -> bool,
) -> Result<(), Error> {
    for (capability, name) in WITNESSES {
        let found = libraries
            .iter()
            .any(|l| l.capability == capability && version_of(&l.file_name, name).is_some());
        if found || !wants(capability) {
            continue;
        }
        if let Some((library, library_version)) = installed(driver_root, name) {
            if library_version != driver_version {
                return Err(Error::VersionMismatch {
                    module_version: driver_version.to_owned(),
                    version_file: proc_root.join(procfs::VERSION_FILE),
                    library,
                    library_version,
                });
            }
        }
    }
    Ok(())
}

/// The real file behind `<name>.1` (through the loader cache, then the fixed directories) and
/// its version, if it has one.
fn installed(driver_root: &Path, name: &str) -> Option<(PathBuf, String)> {
    let soname = format!("{name}.1");
    let mut candidates: Vec<PathBuf> = fsx::read(&fsx::under(driver_root, Path::new(LD_SO_CACHE)))
        .ok()
        .and_then(|bytes| ldcache::Cache::parse(&bytes).ok())
        .map(|cache| {
            cache
                .entries
                .into_iter()
                .filter(|e| e.flags == ldcache::FLAG_X86_64_LIBC6 && e.name == soname)
                .map(|e| e.path)
                .collect()
        })
        .unwrap_or_default();
    candidates.extend(
        FALLBACK_LIB_DIRS
            .iter()
            .map(|dir| Path::new(dir).join(&soname)),
    );
    let mut resolver = Resolver::new(driver_root);
    candidates.iter().find_map(|candidate| {
        let real = resolver.resolve(candidate).ok()?.path;
        let version = version_of(real.file_name()?.to_str()?, name)?;
        Some((real.clone(), version.to_owned()))
    })
}

/// `580.159.04` of `libcuda.so.580.159.04`; `None` for `libcuda.so.1` or other names.
fn version_of<'a>(file_name: &'a str, name: &str) -> Option<&'a str> {
    file_name
        .strip_prefix(name)?
        .strip_prefix('.')
        .filter(|v| procfs::is_version(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_of_file_names() {
        assert_eq!(
            version_of("libcuda.so.580.159.04", "libcuda.so"),
            Some("580.159.04")
        );
        assert_eq!(version_of("libcuda.so.1", "libcuda.so"), None);
        assert_eq!(version_of("libcudart.so.12.4", "libcuda.so"), None);
        assert_eq!(
            version_of("libcuda.so.575.57", "libcuda.so"),
            Some("575.57")
        );
    }
}
