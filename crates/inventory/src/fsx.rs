//! The only place discovery touches the file system, so that tests can count what it touches and
//! so that every path the host names is resolved inside a root, never against the real `/`.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};

/// Linux's own limit on symlinks followed in one lookup.
const MAX_SYMLINKS: u32 = 40;

/// What one thread asked of the file system; kept only in tests, where `note` counts.
#[derive(Debug, Default, Clone)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) struct Stats {
    pub opens: usize,
    pub bytes_read: u64,
    pub dir_reads: usize,
    pub dir_entries: usize,
    pub stats: usize,
    pub paths: Vec<PathBuf>,
}

#[cfg(test)]
pub(crate) mod stats {
    use std::cell::RefCell;

    use super::Stats;

    thread_local! {
        pub(crate) static STATS: RefCell<Stats> = RefCell::new(Stats::default());
    }

    /// Returns the counters since the last call and starts new ones.
    pub(crate) fn take() -> Stats {
        STATS.with(|s| std::mem::take(&mut *s.borrow_mut()))
    }
}

#[cfg(test)]
fn note(path: &Path, f: impl FnOnce(&mut Stats)) {
    stats::STATS.with(|s| {
        let mut s = s.borrow_mut();
        s.paths.push(path.to_path_buf());
        f(&mut s);
    });
}

#[cfg(not(test))]
#[inline(always)]
fn note(_path: &Path, _f: impl FnOnce(&mut Stats)) {}

/// What discovery saw of one path, so that a cached result can be checked against the file
/// system: the path, whether symlinks were followed, and the fingerprint it had (`None`: absent
/// or unreadable).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Witness {
    pub path: PathBuf,
    pub follow: bool,
    pub seen: Option<Fingerprint>,
}

/// Everything that changes when a file is replaced, rewritten, renamed over, re-permissioned or
/// (for a directory) gains or loses an entry. ctime is set by the kernel on every such change
/// and cannot be set back from user space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Fingerprint {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub size: u64,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
}

impl Fingerprint {
    pub(crate) fn of(md: &Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            dev: md.dev(),
            ino: md.ino(),
            mode: md.mode(),
            size: md.size(),
            mtime: (md.mtime(), md.mtime_nsec()),
            ctime: (md.ctime(), md.ctime_nsec()),
        }
    }
}

impl Witness {
    pub(crate) fn look(path: &Path, follow: bool) -> Self {
        let md = if follow {
            fs::metadata(path)
        } else {
            fs::symlink_metadata(path)
        };
        Self {
            path: path.to_owned(),
            follow,
            seen: md.ok().as_ref().map(Fingerprint::of),
        }
    }
}

thread_local! {
    static WITNESSES: std::cell::RefCell<Option<Vec<Witness>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f` and returns, with its result, every path it looked at and what it saw there. For a
/// path that is read (not only stat'ed), the fingerprint is taken before the read, so a change
/// racing with the read shows as a mismatch later, never as a stale match.
pub(crate) fn witnessed<T>(f: impl FnOnce() -> T) -> (T, Vec<Witness>) {
    WITNESSES.with(|w| *w.borrow_mut() = Some(Vec::new()));
    let value = f();
    let seen = WITNESSES
        .with(|w| w.borrow_mut().take())
        .unwrap_or_default();
    (value, seen)
}

fn recording() -> bool {
    WITNESSES.with(|w| w.borrow().is_some())
}

/// Keeps what a look saw, while [`witnessed`] is recording.
fn record(seen: Witness) {
    WITNESSES.with(|w| {
        if let Some(list) = w.borrow_mut().as_mut() {
            list.push(seen);
        }
    });
}

/// A look discovery made anyway (its metadata is at hand).
fn witness(path: &Path, follow: bool, md: Option<&Metadata>) {
    if recording() {
        record(Witness {
            path: path.to_owned(),
            follow,
            seen: md.map(Fingerprint::of),
        });
    }
}

/// Before a read: what the file is now (one extra `stat`, only while recording).
fn witness_before_read(path: &Path) {
    if recording() {
        record(Witness::look(path, true));
    }
}

/// A kernel text file; bytes that are not UTF-8 become U+FFFD so that a damaged file is
/// reported by what is missing from it rather than by an encoding error.
pub(crate) fn read_text(path: &Path) -> io::Result<String> {
    read(path).map(|b| match String::from_utf8(b) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// The most [`read`] takes of one file: a host's `ld.so.cache` is well under a megabyte, the
/// kernel's text files a few kilobytes; whatever is bigger is not what we are looking for.
pub(crate) const MAX_READ: usize = 64 << 20;

/// A whole file, read without asking its size first (std's `read_to_end` stats and seeks the
/// file; proc files say 0 anyway): plain reads until one returns nothing, and no more than
/// [`MAX_READ`] bytes (an error beyond).
pub(crate) fn read(path: &Path) -> io::Result<Vec<u8>> {
    read_at_most(path, MAX_READ)
}

fn read_at_most(path: &Path, max: usize) -> io::Result<Vec<u8>> {
    witness_before_read(path);
    let b = File::open(path).and_then(|mut f| {
        let mut b = vec![0u8; 4096.min(max + 1)];
        let mut len = 0;
        loop {
            if len == b.len() {
                if len > max {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("larger than {max} bytes"),
                    ));
                }
                b.resize((len * 2).min(max + 1), 0);
            }
            match f.read(&mut b[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        b.truncate(len);
        Ok(b)
    });
    note(path, |st| {
        st.opens += 1;
        st.bytes_read += b.as_ref().map_or(0, |b| b.len() as u64);
    });
    b
}

/// Names in a directory; the entries themselves are not stat'ed.
pub(crate) fn read_dir_names(path: &Path) -> io::Result<Vec<OsString>> {
    witness_before_read(path);
    let names: io::Result<Vec<OsString>> = match fs::read_dir(path) {
        Ok(rd) => rd.map(|e| e.map(|e| e.file_name())).collect(),
        Err(e) => Err(e),
    };
    note(path, |st| {
        st.dir_reads += 1;
        st.dir_entries += names.as_ref().map_or(0, Vec::len);
    });
    names
}

pub(crate) fn metadata(path: &Path) -> io::Result<Metadata> {
    note(path, |st| st.stats += 1);
    let md = fs::metadata(path);
    witness(path, true, md.as_ref().ok());
    md
}

/// `lstat`; a symlink's fingerprint also stands for its target text, read after it (a link is
/// never rewritten in place, only replaced).
pub(crate) fn symlink_metadata(path: &Path) -> io::Result<Metadata> {
    note(path, |st| st.stats += 1);
    let md = fs::symlink_metadata(path);
    witness(path, false, md.as_ref().ok());
    md
}

fn read_link(path: &Path) -> io::Result<PathBuf> {
    note(path, |st| st.stats += 1);
    fs::read_link(path)
}

/// A file opened for a few positioned reads (ELF headers), so that a 100 MB library costs a few
/// hundred bytes, not its size.
pub(crate) struct Reader {
    file: File,
    #[cfg(test)]
    path: PathBuf,
}

impl Reader {
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        note(path, |st| st.opens += 1);
        witness_before_read(path);
        Ok(Self {
            file: File::open(path)?,
            #[cfg(test)]
            path: path.to_path_buf(),
        })
    }

    /// A file opened elsewhere.
    pub(crate) fn from_file(file: File) -> Self {
        Self {
            file,
            #[cfg(test)]
            path: PathBuf::new(),
        }
    }

    /// The file's size now.
    pub(crate) fn size(&self) -> io::Result<u64> {
        self.file.metadata().map(|md| md.len())
    }

    pub(crate) fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        #[cfg(test)]
        note(&self.path, |st| st.bytes_read += buf.len() as u64);
        self.file.read_exact_at(buf, offset)
    }

    /// Fills as much of `buf` as the file has from `offset`; returns how much.
    pub(crate) fn read_up_to(&self, buf: &mut [u8], offset: u64) -> usize {
        let mut got = 0;
        while got < buf.len() {
            match self.file.read_at(&mut buf[got..], offset + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        #[cfg(test)]
        note(&self.path, |st| st.bytes_read += got as u64);
        got
    }
}

/// A path resolved under a root, with what `lstat` said of it (no symlink: it is the real file).
#[derive(Debug)]
pub(crate) struct Resolved {
    pub path: PathBuf,
    pub metadata: Metadata,
}

/// Resolves paths as the host sees them (absolute, possibly through symlinks such as `/lib ->
/// usr/lib` or `libcuda.so.1 -> libcuda.so.580.159.04`) to real paths under `root`: absolute
/// link targets restart at `root`, and `..` never climbs above it. Directories are remembered,
/// missing ones too, because every probe in one directory shares them.
pub(crate) struct Resolver<'a> {
    root: &'a Path,
    dirs: HashMap<PathBuf, Result<Vec<OsString>, io::ErrorKind>>,
}

impl<'a> Resolver<'a> {
    pub(crate) fn new(root: &'a Path) -> Self {
        Self {
            root,
            dirs: HashMap::new(),
        }
    }

    pub(crate) fn root(&self) -> &Path {
        self.root
    }

    /// The real path under the root of `path` (absolute in the root's view), which must exist.
    pub(crate) fn resolve(&mut self, path: &Path) -> io::Result<Resolved> {
        let mut hops = 0;
        let lexical = lexical_components(path);
        let Some((last, parent)) = lexical.split_last() else {
            let path = self.root.to_path_buf();
            return Ok(Resolved {
                metadata: metadata(&path)?,
                path,
            });
        };
        let dir = self.dir(parent, &mut hops)?;
        let (comps, md) = self.walk(dir, vec![last.clone()], &mut hops)?;
        let path = self.host_path(&comps);
        let metadata = match md {
            Some(md) => md,
            // The path ended in `..`: nothing was stat'ed last.
            None => metadata(&path)?,
        };
        Ok(Resolved { path, metadata })
    }

    /// The target of the symlink at `path` (absolute in the root's view): its directory is
    /// resolved inside the root, its last component is not followed and must be a symlink.
    pub(crate) fn read_link(&mut self, path: &Path) -> io::Result<PathBuf> {
        let lexical = lexical_components(path);
        let not_a_link = || io::Error::new(io::ErrorKind::InvalidInput, "not a symbolic link");
        let Some((last, parent)) = lexical.split_last() else {
            return Err(not_a_link());
        };
        if last == ".." {
            return Err(not_a_link());
        }
        let mut hops = 0;
        let mut comps = self.dir(parent, &mut hops)?;
        comps.push(last.clone());
        let host = self.host_path(&comps);
        if !symlink_metadata(&host)?.file_type().is_symlink() {
            return Err(not_a_link());
        }
        read_link(&host)
    }

    /// The real components of a directory, from the memo or by walking it one component past
    /// its (memoized) parent, so that `/usr` is looked at once however many dirs are under it.
    fn dir(&mut self, comps: &[OsString], hops: &mut u32) -> io::Result<Vec<OsString>> {
        let Some((last, parent)) = comps.split_last() else {
            return Ok(Vec::new());
        };
        let key: PathBuf = comps.iter().collect();
        if let Some(known) = self.dirs.get(&key) {
            return known.clone().map_err(io::Error::from);
        }
        let base = self.dir(parent, hops)?;
        let walked = self.walk(base, vec![last.clone()], hops);
        // Only absence is remembered as such; a loop or a permission error is reported each time.
        match walked {
            Ok((comps, _)) => {
                self.dirs.insert(key, Ok(comps.clone()));
                Ok(comps)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.dirs.insert(key, Err(io::ErrorKind::NotFound));
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    fn host_path(&self, comps: &[OsString]) -> PathBuf {
        let mut p = self.root.to_path_buf();
        p.extend(comps);
        p
    }

    /// Appends the components in `todo` (reversed) to the already real `done`, following links;
    /// returns the result and the `lstat` of its last component, if one was made.
    fn walk(
        &self,
        mut done: Vec<OsString>,
        mut todo: Vec<OsString>,
        hops: &mut u32,
    ) -> io::Result<(Vec<OsString>, Option<Metadata>)> {
        let mut last = None;
        while let Some(c) = todo.pop() {
            if c == ".." {
                done.pop();
                last = None;
                continue;
            }
            let mut candidate = self.host_path(&done);
            candidate.push(&c);
            let md = symlink_metadata(&candidate)?;
            if !md.file_type().is_symlink() {
                done.push(c);
                last = Some(md);
                continue;
            }
            *hops += 1;
            if *hops > MAX_SYMLINKS {
                return Err(io::Error::other(format!(
                    "too many levels of symbolic links at {}",
                    candidate.display()
                )));
            }
            let target = read_link(&candidate)?;
            if target.is_absolute() {
                done.clear();
            }
            todo.extend(lexical_components(&target).into_iter().rev());
            last = None;
        }
        Ok((done, last))
    }
}

/// Normal components and `..` of a path; `/` and `.` say nothing inside a root.
fn lexical_components(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

/// `root` joined with a path that is absolute in the root's view, without resolving anything.
pub(crate) fn under(root: &Path, path: &Path) -> PathBuf {
    let mut p = root.to_path_buf();
    p.extend(lexical_components(path).iter().filter(|c| *c != ".."));
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn resolves_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs::create_dir_all(r.join("usr/lib/x86_64-linux-gnu")).unwrap();
        fs::write(r.join("usr/lib/x86_64-linux-gnu/libx.so.1.2"), b"x").unwrap();
        symlink("usr/lib", r.join("lib")).unwrap();
        symlink("libx.so.1.2", r.join("usr/lib/x86_64-linux-gnu/libx.so.1")).unwrap();
        // An absolute target means the root's /, not the host's.
        symlink("/lib/x86_64-linux-gnu/libx.so.1", r.join("abs")).unwrap();
        // `..` past the top stays at the root.
        symlink(
            "../../../../../usr/lib",
            r.join("usr/lib/x86_64-linux-gnu/up"),
        )
        .unwrap();

        let mut res = Resolver::new(r);
        let mut resolve = |p: &str| res.resolve(Path::new(p)).map(|r| r.path);
        let want = r.join("usr/lib/x86_64-linux-gnu/libx.so.1.2");
        assert_eq!(resolve("/lib/x86_64-linux-gnu/libx.so.1").unwrap(), want);
        assert_eq!(resolve("/abs").unwrap(), want);
        assert_eq!(
            resolve("/usr/lib/x86_64-linux-gnu/up/x86_64-linux-gnu/libx.so.1").unwrap(),
            want
        );
        assert_eq!(
            resolve("/usr/lib/x86_64-linux-gnu/..").unwrap(),
            r.join("usr/lib")
        );
        assert_eq!(resolve("/").unwrap(), r);
        assert!(resolve("/lib/nope").is_err());
        // A missing directory stays missing without asking again.
        assert!(resolve("/nodir/a").is_err());
        fs::create_dir(r.join("nodir")).unwrap();
        fs::write(r.join("nodir/a"), b"").unwrap();
        assert!(resolve("/nodir/a").is_err());
    }

    #[test]
    fn reads_are_bounded() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f");
        fs::write(&p, vec![b'x'; 10_000]).unwrap();
        assert_eq!(read_at_most(&p, 10_000).unwrap().len(), 10_000);
        let err = read_at_most(&p, 9_999).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(read_at_most(&p, 100_000).unwrap().len(), 10_000);
    }

    #[test]
    fn read_link_does_not_follow_the_last_component() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs::create_dir_all(r.join("usr/lib")).unwrap();
        fs::write(r.join("usr/lib/libx.so.1.2"), b"x").unwrap();
        symlink("usr/lib", r.join("lib")).unwrap();
        symlink("libx.so.1.2", r.join("usr/lib/libx.so.1")).unwrap();
        let mut res = Resolver::new(r);
        assert_eq!(
            res.read_link(Path::new("/lib/libx.so.1")).unwrap(),
            PathBuf::from("libx.so.1.2")
        );
        assert!(res.read_link(Path::new("/lib/libx.so.1.2")).is_err());
        assert!(res.read_link(Path::new("/lib/nope")).is_err());
    }

    #[test]
    fn symlink_loops_end() {
        let t = tempfile::tempdir().unwrap();
        symlink("b", t.path().join("a")).unwrap();
        symlink("a", t.path().join("b")).unwrap();
        let err = Resolver::new(t.path())
            .resolve(Path::new("/a"))
            .unwrap_err();
        assert!(err.to_string().contains("too many levels"), "{err}");
    }
}
