use std::path::{Path, PathBuf};

use pathrs::error::ErrorKind;
use pathrs::{InodeType, Root};

#[derive(Debug, thiserror::Error)]
pub enum SymlinkError {
    #[error("cannot create the link {path:?} in the container's rootfs")]
    InRootfs {
        path: PathBuf,
        source: pathrs::error::Error,
    },
}

type Result<T> = std::result::Result<T, SymlinkError>;

/// Creates the links a container's rootfs needs.
pub struct Symlink {}

impl Default for Symlink {
    fn default() -> Self {
        Self::new()
    }
}

/// Creates the link `path` (relative to `rootfs`) to `target`. Every component of `path`, an
/// image's own links included, is resolved inside `rootfs`: an image whose `/dev` links to a
/// host directory must not get files created in that directory.
fn symlink_in(rootfs: &Root, target: &str, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    rootfs
        .create(path, &InodeType::Symlink(PathBuf::from(target)))
        .map_err(|source| {
            tracing::error!(?source, ?path, "failed to create a symlink in the rootfs");
            SymlinkError::InRootfs {
                path: Path::new("/").join(path),
                source,
            }
        })
}

fn open_rootfs(rootfs: &Path) -> Result<Root> {
    Root::open(rootfs).map_err(|source| SymlinkError::InRootfs {
        path: PathBuf::from("/"),
        source,
    })
}

impl Symlink {
    pub fn new() -> Symlink {
        Symlink {}
    }

    // Create symlinks for subsystems that have been comounted e.g. cpu -> cpu,cpuacct, cpuacct -> cpu,cpuacct
    // `cgroup_dest` is the cgroup mount's destination in the container.
    #[cfg(feature = "v1")]
    pub fn setup_comount_symlinks(
        &self,
        rootfs: &Path,
        cgroup_dest: &Path,
        subsystem_name: &str,
    ) -> Result<()> {
        if !subsystem_name.contains(',') {
            return Ok(());
        }

        let root = open_rootfs(rootfs)?;
        for comount in subsystem_name.split_terminator(',') {
            symlink_in(&root, subsystem_name, &cgroup_dest.join(comount))?;
        }

        Ok(())
    }

    pub fn setup_ptmx(&self, rootfs: &Path) -> Result<()> {
        let root = open_rootfs(rootfs)?;
        match root.remove_file("dev/ptmx") {
            Ok(()) => {}
            Err(err) if err.kind() == ErrorKind::OsError(Some(libc::ENOENT)) => {}
            Err(source) => {
                tracing::error!(?source, "could not delete /dev/ptmx");
                return Err(SymlinkError::InRootfs {
                    path: PathBuf::from("/dev/ptmx"),
                    source,
                });
            }
        }
        symlink_in(&root, "pts/ptmx", "dev/ptmx")
    }

    // separating kcore symlink out from setup_default_symlinks for a better way to do the unit test,
    // since not every architecture has /proc/kcore file.
    pub fn setup_kcore_symlink(&self, rootfs: &Path) -> Result<()> {
        if Path::new("/proc/kcore").exists() {
            symlink_in(&open_rootfs(rootfs)?, "/proc/kcore", "dev/kcore")?;
        }
        Ok(())
    }

    pub fn setup_default_symlinks(&self, rootfs: &Path) -> Result<()> {
        let defaults = [
            ("/proc/self/fd", "dev/fd"),
            ("/proc/self/fd/0", "dev/stdin"),
            ("/proc/self/fd/1", "dev/stdout"),
            ("/proc/self/fd/2", "dev/stderr"),
        ];
        let root = open_rootfs(rootfs)?;
        for (src, dst) in defaults {
            symlink_in(&root, src, dst)?;
        }

        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;

    use anyhow::{Context, Result};

    use super::*;

    fn link_of(path: &Path) -> Result<PathBuf> {
        fs::read_link(path).with_context(|| format!("{path:?} is not a link"))
    }

    #[test]
    fn test_setup_ptmx() -> Result<()> {
        let tmp_dir = tempfile::tempdir()?;
        fs::create_dir(tmp_dir.path().join("dev"))?;
        fs::write(tmp_dir.path().join("dev/ptmx"), "")?;
        Symlink::new().setup_ptmx(tmp_dir.path())?;
        assert_eq!(
            link_of(&tmp_dir.path().join("dev/ptmx"))?,
            Path::new("pts/ptmx")
        );
        Ok(())
    }

    #[test]
    fn test_setup_ptmx_fails_where_it_cannot_delete() -> Result<()> {
        let tmp_dir = tempfile::tempdir()?;
        fs::create_dir_all(tmp_dir.path().join("dev/ptmx"))?;
        assert!(Symlink::new().setup_ptmx(tmp_dir.path()).is_err());
        assert!(tmp_dir.path().join("dev/ptmx").is_dir());
        Ok(())
    }

    #[test]
    fn test_setup_default_symlinks() -> Result<()> {
        let tmp_dir = tempfile::tempdir()?;
        fs::create_dir(tmp_dir.path().join("dev"))?;
        Symlink::new().setup_default_symlinks(tmp_dir.path())?;
        for (target, link) in [
            ("/proc/self/fd", "dev/fd"),
            ("/proc/self/fd/0", "dev/stdin"),
            ("/proc/self/fd/1", "dev/stdout"),
            ("/proc/self/fd/2", "dev/stderr"),
        ] {
            assert_eq!(link_of(&tmp_dir.path().join(link))?, Path::new(target));
        }
        Ok(())
    }

    /// An image whose /dev links out of the rootfs (to a host path, or climbing with ..) gets
    /// the links where the container itself will find them: inside its rootfs.
    #[test]
    fn test_links_stay_inside_a_rootfs_whose_dev_links_out() -> Result<()> {
        let tmp_dir = tempfile::tempdir()?;
        let outside = tmp_dir.path().join("outside");
        fs::create_dir(&outside)?;
        let outside_in_root = outside.strip_prefix("/")?;
        // (link, where it leads when resolved inside the rootfs)
        for (dev_link, inside) in [
            (outside.clone(), outside_in_root.to_owned()),
            (PathBuf::from("../outside"), PathBuf::from("outside")),
        ] {
            let rootfs = tempfile::tempdir_in(tmp_dir.path())?;
            fs::create_dir_all(rootfs.path().join(&inside))?;
            symlink(&dev_link, rootfs.path().join("dev"))?;

            let symlinker = Symlink::new();
            symlinker.setup_default_symlinks(rootfs.path())?;
            symlinker.setup_ptmx(rootfs.path())?;

            assert_eq!(fs::read_dir(&outside)?.count(), 0, "{dev_link:?}: made outside");
            let inside = rootfs.path().join(inside);
            assert_eq!(link_of(&inside.join("stdin"))?, Path::new("/proc/self/fd/0"));
            assert_eq!(link_of(&inside.join("ptmx"))?, Path::new("pts/ptmx"));
        }
        Ok(())
    }

    #[test]
    #[cfg(feature = "v1")]
    fn setup_comounted_symlinks_success() -> Result<()> {
        // arrange
        let tmp = tempfile::tempdir().unwrap();
        let cgroup_root = tmp.path().join("sys/fs/cgroup");
        let cpu = cgroup_root.join("cpu");
        let cpuacct = cgroup_root.join("cpuacct");
        fs::create_dir_all(cgroup_root.join("cpu,cpuacct"))?;

        // act
        Symlink::new()
            .setup_comount_symlinks(tmp.path(), Path::new("/sys/fs/cgroup"), "cpu,cpuacct")
            .context("failed to setup symlinks")?;

        // assert
        assert_eq!(
            link_of(&cpu)?,
            PathBuf::from("cpu,cpuacct"),
            "cpu does not link to cpu,cpuacct"
        );
        assert_eq!(
            link_of(&cpuacct)?,
            PathBuf::from("cpu,cpuacct"),
            "cpuacct does not link to cpu,cpuacct"
        );

        Ok(())
    }

    #[test]
    #[cfg(feature = "v1")]
    fn setup_comounted_symlinks_no_comounts() -> Result<()> {
        // arrange
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("sys/fs/cgroup"))?;

        // act
        let result = Symlink::new()
            .setup_comount_symlinks(tmp.path(), Path::new("/sys/fs/cgroup"), "memory,task")
            .context("failed to setup symlinks");

        // assert
        assert!(result.is_ok());
        Ok(())
    }
}
