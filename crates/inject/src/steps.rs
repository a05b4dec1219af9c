//! Doing a [`ContainerStep`] in a container's rootfs: what `nvidia-runtime hook` does when an
//! engine runs our CDI hooks, and what the runtime may do in-process for a spec naming them.
//! Every path is resolved inside the rootfs ([`Rootfs`]), with the runtime's own code: its
//! links (`Rootfs::symlinks`), its loader cache (the image's plus ours, written as a regular
//! file with an `ld.so.conf.d` entry, no `ldconfig` run) and its `ModifyDeviceFiles: 0`.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::cdi_hooks::ContainerStep;
use crate::rootfs::{FileKind, LinkOutcome, Rootfs, RootfsError};
use crate::{InjectError, LD_SO_CACHE, LD_SO_CONF, LD_SO_CONF_ENTRY};

/// The container's module parameters, in the container.
const PARAMS: &str = "/proc/driver/nvidia/params";
/// Our copy of them with `ModifyDeviceFiles: 0`, in the bundle's artifacts dir.
const PARAMS_COPY: &str = "proc-driver-nvidia-params";
/// ELF `e_machine` of x86-64: the only libraries the cache gets (the runtime's are all x86-64).
const EM_X86_64: u16 = 62;

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Bundle(#[from] InjectError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the container's /etc/ld.so.cache: {0}")]
    Cache(ldcache::Error),
}

/// What a step did, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// Links made (or already right); links where the image has its own file are kept.
    Links {
        made: usize,
        kept_image_files: usize,
    },
    /// The cache was written with these entries added.
    LdCache { added: usize },
    /// Nothing written, and why (a read-only rootfs, an image with a symlink there, ...).
    Skipped(String),
    /// `/proc/driver/nvidia/params` shows `ModifyDeviceFiles: 0`.
    ParamsHidden,
}

impl ContainerStep {
    /// Does the step in `rootfs`. `bundle` holds what cannot live in the rootfs (the params
    /// copy that is bind-mounted in the container's `/proc`).
    pub fn run(&self, rootfs: &Rootfs, bundle: &Path) -> Result<Done, StepError> {
        match self {
            ContainerStep::CreateSymlinks(links) => {
                let links: Vec<(&Path, &str)> = links
                    .iter()
                    .map(|(target, link)| (link.as_path(), target.as_str()))
                    .collect();
                let outcomes = rootfs.symlinks(&links)?;
                let kept = outcomes
                    .iter()
                    .filter(|o| **o == LinkOutcome::KeptImageFile)
                    .count();
                Ok(Done::Links {
                    made: outcomes.len() - kept,
                    kept_image_files: kept,
                })
            }
            ContainerStep::UpdateLdcache { folders } => update_ldcache(rootfs, folders),
            ContainerStep::DisableDeviceNodeModification => {
                disable_device_node_modification(rootfs, bundle)
            }
        }
    }
}

/// The image's cache plus the libraries in `folders` that it does not list yet, by SONAME and
/// by the names of the links beside them (what the runtime's plan adds), then the
/// `ld.so.conf.d` entry. Where the rootfs cannot be written, or the image has something other
/// than a regular file at `/etc/ld.so.cache`, nothing is written: the loader still finds the
/// libraries in its default dir.
fn update_ldcache(rootfs: &Rootfs, folders: &[PathBuf]) -> Result<Done, StepError> {
    let cache_path = Path::new(LD_SO_CACHE);
    let image = match rootfs.kind(cache_path)? {
        FileKind::Absent => None,
        FileKind::File => rootfs.read(cache_path)?,
        other => {
            return Ok(Done::Skipped(format!(
                "the image has {} at /etc/ld.so.cache",
                describe(other)
            )))
        }
    };
    let cache = crate::image_ld_cache(image.as_ref().map(|f| f.bytes.as_slice()));
    let known: Vec<PathBuf> = cache.entries.iter().map(|e| e.path.clone()).collect();
    let mut entries: Vec<(String, PathBuf)> = Vec::new();
    for folder in folders {
        entries.extend(libraries_in(rootfs, folder, &known)?);
    }
    if entries.is_empty() {
        return Ok(Done::LdCache { added: 0 });
    }
    let added = entries.len();
    let bytes = crate::with_entries(cache, &entries).map_err(StepError::Cache)?;
    let (mode, owner) = match &image {
        Some(file) => (file.mode, Some((file.uid, file.gid))),
        None => (0o644, None),
    };
    match rootfs.write_file(cache_path, &bytes, mode, owner) {
        Ok(()) => {}
        Err(err) if err.is_not_writable() => {
            return Ok(Done::Skipped(format!(
                "the rootfs cannot be written: {err}"
            )))
        }
        Err(err) => return Err(err.into()),
    }
    if rootfs.kind(Path::new(LD_SO_CONF))? == FileKind::File {
        let text = crate::ld_so_conf_text(folders.iter().map(PathBuf::as_path));
        let entry = Path::new(LD_SO_CONF_ENTRY);
        let same = rootfs
            .read(entry)
            .ok()
            .flatten()
            .is_some_and(|f| f.bytes == text.as_bytes());
        if !same {
            // best effort, as the runtime's: without it only a later `ldconfig` misses them
            if let Err(err) = rootfs.write_file(entry, text.as_bytes(), 0o644, None) {
                tracing::debug!("no ld.so.conf.d entry: {err}");
            }
        }
    }
    Ok(Done::LdCache { added })
}

/// (name, path) cache entries for the x86-64 shared libraries in `folder` (but those the image's
/// cache lists at that very path): each by its SONAME, and by the name of every symlink in `folder` that
/// leads to it there (`libcuda.so -> libcuda.so.1 -> libcuda.so.580.95.05`).
fn libraries_in(
    rootfs: &Rootfs,
    folder: &Path,
    known: &[PathBuf],
) -> Result<Vec<(String, PathBuf)>, StepError> {
    let listing = rootfs.list_dir(folder)?;
    let is_library = |name: &OsStr| {
        let name = name.as_bytes();
        name.starts_with(b"lib") && name.windows(3).any(|w| w == b".so")
    };
    // file name -> its SONAME
    let mut files: BTreeMap<&OsStr, Option<String>> = BTreeMap::new();
    for (name, kind) in &listing {
        if *kind != FileKind::File || !is_library(name) {
            continue;
        }
        let path = folder.join(name);
        if known.contains(&path) {
            continue;
        }
        let Some(file) = rootfs.open_file(&path)? else {
            continue;
        };
        match inventory::elf_soname(file) {
            Ok(Some((EM_X86_64, soname))) => {
                files.insert(name.as_os_str(), soname);
            }
            Ok(_) => {}
            Err(err) => tracing::debug!(path = %path.display(), "not read as ELF: {err}"),
        }
    }
    let mut entries: Vec<(String, PathBuf)> = Vec::new();
    let mut add = |name: String, file: &OsStr| {
        if !entries.iter().any(|(n, _)| *n == name) {
            entries.push((name, folder.join(file)));
        }
    };
    for (file, soname) in &files {
        if let Some(soname) = soname {
            add(soname.clone(), file);
        }
    }
    for (name, kind) in &listing {
        if *kind != FileKind::Symlink || !is_library(name) {
            continue;
        }
        if let Some(file) = link_leads_to(rootfs, folder, name, &files) {
            add(name.to_string_lossy().into_owned(), file);
        }
    }
    Ok(entries)
}

/// The library file of `files` that the symlink `folder/name` leads to through links in the
/// same folder (plain names, as the driver installer and our create-symlinks write them).
fn link_leads_to<'a>(
    rootfs: &Rootfs,
    folder: &Path,
    name: &OsStr,
    files: &BTreeMap<&'a OsStr, Option<String>>,
) -> Option<&'a OsStr> {
    let mut current = name.to_owned();
    // the installer's chains are two links long; a bound keeps a loop from costing more
    for _ in 0..8 {
        let target = rootfs.link_target(&folder.join(&current)).ok()??;
        let target = Path::new(&target);
        let plain = target.file_name()?;
        if target.parent().is_some_and(|p| !p.as_os_str().is_empty())
            && target.parent() != Some(folder)
        {
            return None;
        }
        if let Some((file, _)) = files.get_key_value(plain) {
            return Some(file);
        }
        current = plain.to_owned();
    }
    None
}

fn describe(kind: FileKind) -> &'static str {
    match kind {
        FileKind::Absent => "nothing",
        FileKind::File => "a regular file",
        FileKind::Directory => "a directory",
        FileKind::Symlink => "a symbolic link",
        FileKind::Special(what) => what,
    }
}

/// Binds a copy of the container's `/proc/driver/nvidia/params` with `ModifyDeviceFiles: 0`
/// over it (as the runtime's `driver_proc` does for the whole directory). Nothing where the
/// container's procfs has no NVIDIA driver.
fn disable_device_node_modification(rootfs: &Rootfs, bundle: &Path) -> Result<Done, StepError> {
    let params = Path::new(PARAMS);
    let text = match rootfs.read(params)? {
        Some(file) => String::from_utf8_lossy(&file.bytes).into_owned(),
        None => {
            return Ok(Done::Skipped(
                "the container's /proc shows no NVIDIA driver".into(),
            ))
        }
    };
    let dir = crate::bundle::create_artifacts_dir(bundle)?;
    let copy = dir.join(PARAMS_COPY);
    let write_err = |source| StepError::Write {
        path: copy.clone(),
        source,
    };
    // A restarted container runs the hook again: a fresh copy, never one written through.
    match std::fs::remove_file(&copy) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(write_err(err)),
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(&copy)
        .and_then(|mut f| {
            std::io::Write::write_all(
                &mut f,
                crate::driver_proc::without_device_file_changes(&text).as_bytes(),
            )
        })
        .map_err(write_err)?;
    if rootfs.bind_over_proc_file(params, &copy)? {
        Ok(Done::ParamsHidden)
    } else {
        Ok(Done::Skipped(format!(
            "{PARAMS} in the rootfs is not the container's procfs (not run as a createContainer hook?)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A minimal x86-64 ELF64 shared object whose DT_SONAME is `soname`.
    fn elf_with_soname(soname: &str) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
        b[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&2u16.to_le_bytes());
        let dyn_at = 64 + 2 * 56;
        let str_at = dyn_at + 3 * 16;
        let end = str_at + soname.len() + 2;
        let ph = |kind: u32, offset: u64, size: u64| {
            let mut h = vec![0u8; 56];
            h[..4].copy_from_slice(&kind.to_le_bytes());
            h[8..16].copy_from_slice(&offset.to_le_bytes());
            h[16..24].copy_from_slice(&offset.to_le_bytes());
            h[32..40].copy_from_slice(&size.to_le_bytes());
            h
        };
        b.extend(ph(1, 0, end as u64));
        b.extend(ph(2, dyn_at as u64, 48));
        for (tag, val) in [(5u64, str_at as u64), (14, 1), (0, 0)] {
            b.extend(tag.to_le_bytes());
            b.extend(val.to_le_bytes());
        }
        b.push(0);
        b.extend(soname.as_bytes());
        b.push(0);
        b
    }

    const LIB: &str = "/usr/lib/x86_64-linux-gnu";

    fn image() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        let lib = root.join(LIB.trim_start_matches('/'));
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(
            root.join("etc/ld.so.conf"),
            "include /etc/ld.so.conf.d/*.conf\n",
        )
        .unwrap();
        std::fs::write(
            lib.join("libcuda.so.580.95.05"),
            elf_with_soname("libcuda.so.1"),
        )
        .unwrap();
        std::fs::write(lib.join("libnotes.so.txt"), "not ELF").unwrap();
        (dir, root)
    }

    #[test]
    fn links_then_cache_list_the_libraries_by_soname_and_link_name() {
        let (dir, root) = image();
        let rootfs = Rootfs::open(&root).unwrap();
        let lib = Path::new(LIB);
        let links = ContainerStep::CreateSymlinks(vec![
            ("libcuda.so.580.95.05".into(), lib.join("libcuda.so.1")),
            ("libcuda.so.1".into(), lib.join("libcuda.so")),
        ]);
        assert_eq!(
            links.run(&rootfs, dir.path()).unwrap(),
            Done::Links {
                made: 2,
                kept_image_files: 0
            }
        );
        let step = ContainerStep::UpdateLdcache {
            folders: vec![lib.to_owned()],
        };
        assert_eq!(
            step.run(&rootfs, dir.path()).unwrap(),
            Done::LdCache { added: 2 }
        );
        let cache = ldcache::Cache::read(&root.join("etc/ld.so.cache")).unwrap();
        let file = lib.join("libcuda.so.580.95.05");
        for name in ["libcuda.so.1", "libcuda.so"] {
            let entry = cache.lookup(name, ldcache::FLAG_X86_64_LIBC6).expect(name);
            assert_eq!(entry.path, file);
        }
        assert_eq!(cache.entries.len(), 2, "the text file is no library");
        let conf =
            std::fs::read_to_string(root.join("etc/ld.so.conf.d/00-nvidia-runtime.conf")).unwrap();
        assert!(conf.lines().any(|l| l == LIB), "{conf}");

        // run again (a restarted container): the same cache, the image's entries kept
        let mut image_cache = cache.clone();
        image_cache.insert(ldcache::Entry::new(
            "libz.so.1",
            "/lib/libz.so.1",
            ldcache::FLAG_X86_64_LIBC6,
        ));
        std::fs::write(root.join("etc/ld.so.cache"), image_cache.to_bytes()).unwrap();
        step.run(&rootfs, dir.path()).unwrap();
        let again = ldcache::Cache::read(&root.join("etc/ld.so.cache")).unwrap();
        assert!(again
            .lookup("libz.so.1", ldcache::FLAG_X86_64_LIBC6)
            .is_some());
        assert_eq!(again.entries.len(), 3);
    }

    #[test]
    fn an_etc_leading_out_of_the_rootfs_is_never_written_through() {
        let (dir, root) = image();
        let outside = dir.path().join("host-etc");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::remove_dir_all(root.join("etc")).unwrap();
        symlink(&outside, root.join("etc")).unwrap();
        let rootfs = Rootfs::open(&root).unwrap();
        let step = ContainerStep::UpdateLdcache {
            folders: vec![PathBuf::from(LIB)],
        };
        let _ = step.run(&rootfs, dir.path());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }

    #[test]
    fn an_images_own_params_file_is_never_mounted_over() {
        let (dir, root) = image();
        let nv = root.join("proc/driver/nvidia");
        std::fs::create_dir_all(&nv).unwrap();
        std::fs::write(nv.join("params"), "ModifyDeviceFiles: 1\n").unwrap();
        let rootfs = Rootfs::open(&root).unwrap();
        let done = ContainerStep::DisableDeviceNodeModification
            .run(&rootfs, dir.path())
            .unwrap();
        assert!(matches!(done, Done::Skipped(_)), "{done:?}");
        std::fs::remove_dir_all(root.join("proc")).unwrap();
        let done = ContainerStep::DisableDeviceNodeModification
            .run(&rootfs, dir.path())
            .unwrap();
        assert!(matches!(done, Done::Skipped(_)), "{done:?}");
    }
}
