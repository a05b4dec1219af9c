//! Read and write glibc's `ld.so.cache` without running `ldconfig`.
//!
//! The dynamic loader consults `/etc/ld.so.cache` to turn a SONAME such as
//! `libcuda.so.1` into a path. Two on-disk formats exist (all integers are in
//! the byte order of the machine that wrote the file):
//!
//! * **old** (libc5 / glibc ≤ 2.1): the 11-byte magic `ld.so-1.7.0`, padding to
//!   4 bytes, `nlibs: u32`, then `nlibs` 12-byte entries
//!   (`flags: i32, key: u32, value: u32`). String offsets are relative to the
//!   first byte after the entry table.
//! * **new** (glibc ≥ 2.2): a 48-byte header — `glibc-ld.so.cache` + `1.1`
//!   (20 bytes), `nlibs: u32`, `len_strings: u32`, a `flags` byte whose low two
//!   bits mark the byte order (0 unknown, 1 invalid, 2 little, 3 big; glibc
//!   ≥ 2.33 writes 2 or 3), 3 bytes of padding, `extension_offset: u32`
//!   (absolute file offset of an optional extension directory), 12 unused
//!   bytes — then `nlibs` 24-byte entries
//!   (`flags: i32, key: u32, value: u32, osversion: u32, hwcap: u64`) and the
//!   string table. String offsets are relative to the *new header*, which is
//!   the start of the file when the new format stands alone.
//!
//! The "compat" layout (ldconfig's default before glibc 2.32) is an old-format
//! file whose string area begins, 8-byte aligned, with a complete new-format
//! cache; readers that understand the new format use that embedded section.
//!
//! The entries must be sorted the way ldconfig sorts them because the loader
//! binary-searches them with [`libcmp`], a comparison that treats runs of
//! digits as numbers: names in *descending* order, then flags descending, then
//! `glibc-hwcaps` entries before plain ones.
//!
//! Since glibc 2.33 an entry whose `hwcap` has bit 62 set (see
//! [`is_hwcap_extension`]) lives in a `glibc-hwcaps/<name>/` subdirectory; its
//! low 32 bits index a table of subdirectory names stored in the extension
//! section. [`Cache::to_bytes`] rebuilds that table from the entries' paths, so
//! such entries survive a read–modify–write cycle.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};
use std::ffi::{c_char, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// `FLAG_ELF_LIBC6`: an ELF library linked against glibc.
pub const FLAG_ELF_LIBC6: i32 = 0x0003;
/// What ldconfig stores for x86-64 libraries (`FLAG_ELF_LIBC6 | FLAG_X8664_LIB64`).
pub const FLAG_X86_64_LIBC6: i32 = 0x0303;
/// What ldconfig stores for x32 libraries (`FLAG_ELF_LIBC6 | FLAG_X8664_LIBX32`).
pub const FLAG_X32_LIBC6: i32 = 0x0803;
/// What ldconfig stores for AArch64 libraries (`FLAG_ELF_LIBC6 | FLAG_AARCH64_LIB64`).
pub const FLAG_AARCH64_LIBC6: i32 = 0x0a03;
/// What ldconfig stores for 64-bit PowerPC libraries.
pub const FLAG_POWERPC64_LIBC6: i32 = 0x0503;
/// What ldconfig stores for 64-bit s390 libraries.
pub const FLAG_S390X_LIBC6: i32 = 0x0403;

/// `DL_CACHE_HWCAP_EXTENSION`: marks an entry from a `glibc-hwcaps`
/// subdirectory. Bits 32..42 may additionally carry the required ISA level.
pub const HWCAP_EXTENSION: u64 = 1 << 62;

const OLD_MAGIC: &[u8] = b"ld.so-1.7.0";
const NEW_MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
const OLD_HEADER_LEN: u64 = 16;
const OLD_ENTRY_LEN: u64 = 12;
const NEW_HEADER_LEN: u64 = 48;
const NEW_ENTRY_LEN: u64 = 24;

const ENDIAN_MASK: u8 = 3;
const ENDIAN_UNSET: u8 = 0;
const ENDIAN_LITTLE: u8 = 2;
const ENDIAN_BIG: u8 = 3;

/// `(uint32_t) -358342284` in glibc.
const EXTENSION_MAGIC: u32 = 0xeaa4_2174;
const EXTENSION_TAG_GENERATOR: u32 = 0;
const EXTENSION_TAG_GLIBC_HWCAPS: u32 = 1;
/// The ISA-level bits next to the extension bit in the upper half of `hwcap`.
const HWCAP_ISA_LEVEL_MASK: u64 = 0x3ff;
/// An index no hwcaps table can hold, so the loader skips the entry rather
/// than applying it to the wrong subdirectory.
const HWCAP_INDEX_UNKNOWN: u64 = 0xffff_ffff;

const GENERATOR: &str = concat!("nvidia-runtime ldcache ", env!("CARGO_PKG_VERSION"));

/// One cache record: "the library whose SONAME is `name` is at `path`".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entry {
    /// The lookup key, e.g. `libcuda.so.1`.
    pub name: String,
    /// Where the loader opens it, e.g. `/usr/lib/x86_64-linux-gnu/libcuda.so.1`.
    pub path: PathBuf,
    /// ABI flags; the loader only accepts its own (e.g. [`FLAG_X86_64_LIBC6`]).
    pub flags: i32,
    /// Unused by glibc ≥ 2.33, kept for round-tripping.
    pub os_version: u32,
    /// 0 for ordinary entries; see [`HWCAP_EXTENSION`].
    pub hwcap: u64,
}

impl Entry {
    /// An ordinary (non-hwcaps) entry.
    pub fn new(name: impl Into<String>, path: impl Into<PathBuf>, flags: i32) -> Entry {
        Entry {
            name: name.into(),
            path: path.into(),
            flags,
            os_version: 0,
            hwcap: 0,
        }
    }

    /// The `glibc-hwcaps` subdirectory (e.g. `x86-64-v3`) this entry belongs
    /// to, if it is a hwcaps entry whose path has the
    /// `…/glibc-hwcaps/<name>/<file>` shape ldconfig always produces.
    pub fn glibc_hwcaps_subdirectory(&self) -> Option<&OsStr> {
        if !is_hwcap_extension(self.hwcap) {
            return None;
        }
        hwcaps_subdirectory_of(&self.path)
    }
}

/// Whether `hwcap` marks a `glibc-hwcaps` entry, exactly as
/// `dl_cache_hwcap_extension` decides it: the extension bit must be the only
/// bit set in the upper half apart from the ISA level.
pub fn is_hwcap_extension(hwcap: u64) -> bool {
    (hwcap >> 32) & !HWCAP_ISA_LEVEL_MASK == HWCAP_EXTENSION >> 32
}

fn hwcaps_subdirectory_of(path: &Path) -> Option<&OsStr> {
    let dir = path.parent()?;
    let name = dir.file_name()?;
    (dir.parent()?.file_name()? == "glibc-hwcaps").then_some(name)
}

/// The contents of an `ld.so.cache`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cache {
    /// In file order after [`Cache::parse`]; any order before
    /// [`Cache::to_bytes`], which sorts.
    pub entries: Vec<Entry>,
}

/// Everything that can go wrong reading or writing a cache.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("failed to read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("ld.so.cache is truncated: the {what} ends at byte {needed} but the file has {actual} bytes")]
    Truncated {
        what: &'static str,
        needed: u64,
        actual: u64,
    },
    #[error("not an ld.so.cache: unrecognised magic {found:?}")]
    BadMagic { found: String },
    #[error("ld.so.cache header marks the cache as invalid (flags byte {flags:#04x})")]
    InvalidEndianness { flags: u8 },
    #[error("ld.so.cache entry {index}: {field} string at file offset {offset} is outside the {file_len}-byte file")]
    StringOutOfRange {
        index: usize,
        field: &'static str,
        offset: u64,
        file_len: u64,
    },
    #[error(
        "ld.so.cache entry {index}: {field} string at file offset {offset} has no terminating NUL"
    )]
    UnterminatedString {
        index: usize,
        field: &'static str,
        offset: u64,
    },
    #[error("ld.so.cache entry {index}: library name at file offset {offset} is not UTF-8")]
    NonUtf8Name { index: usize, offset: u64 },
    #[error("cannot store entry {name:?}: its {field} contains a NUL byte")]
    InteriorNul { name: String, field: &'static str },
    #[error("cache does not fit the 32-bit offsets of ld.so.cache ({size} bytes)")]
    TooLarge { size: u64 },
    #[error(
        "ld.so.cache entry {index}: its names add up to more than {limit} bytes, too many for \
         a {file_len}-byte file (entries that share one long string?); not a cache ldconfig wrote"
    )]
    TooMuchText {
        index: usize,
        limit: u64,
        file_len: u64,
    },
}

/// How many bytes of names and paths a file of `file_len` bytes may decode to. A cache ldconfig
/// writes decodes to about its own size (each entry's name is the tail of its path and shares
/// its bytes), so a few times the input is room enough; a forged file whose thousands of
/// entries all point at one long string would otherwise cost entries × length bytes and time.
fn text_budget(file_len: u64) -> u64 {
    file_len.saturating_mul(4).saturating_add(64 * 1024)
}

#[derive(Clone, Copy)]
enum Endian {
    Little,
    Big,
}

impl Endian {
    const NATIVE: Endian = if cfg!(target_endian = "big") {
        Endian::Big
    } else {
        Endian::Little
    };
}

/// Bounds-checked integer access; callers validate ranges first, but every
/// read still goes through `get` so a logic slip yields an error, not a panic.
struct Reader<'a> {
    data: &'a [u8],
    endian: Endian,
    /// Bytes of strings still allowed to be scanned and copied; see [`text_budget`].
    text_left: std::cell::Cell<u64>,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8], endian: Endian) -> Reader<'a> {
        Reader {
            data,
            endian,
            text_left: std::cell::Cell::new(text_budget(data.len() as u64)),
        }
    }

    fn bytes<const N: usize>(&self, offset: u64, what: &'static str) -> Result<[u8; N], Error> {
        let truncated = || Error::Truncated {
            what,
            needed: offset.saturating_add(N as u64),
            actual: self.data.len() as u64,
        };
        let start = usize::try_from(offset).map_err(|_| truncated())?;
        let end = start.checked_add(N).ok_or_else(truncated)?;
        let slice = self.data.get(start..end).ok_or_else(truncated)?;
        slice.try_into().map_err(|_| truncated())
    }

    fn u32(&self, offset: u64, what: &'static str) -> Result<u32, Error> {
        let b = self.bytes::<4>(offset, what)?;
        Ok(match self.endian {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
        })
    }

    fn u64(&self, offset: u64, what: &'static str) -> Result<u64, Error> {
        let b = self.bytes::<8>(offset, what)?;
        Ok(match self.endian {
            Endian::Little => u64::from_le_bytes(b),
            Endian::Big => u64::from_be_bytes(b),
        })
    }

    fn need(&self, end: u64, what: &'static str) -> Result<(), Error> {
        if end > self.data.len() as u64 {
            return Err(Error::Truncated {
                what,
                needed: end,
                actual: self.data.len() as u64,
            });
        }
        Ok(())
    }

    fn c_str(
        &self,
        base: u64,
        offset: u32,
        index: usize,
        field: &'static str,
    ) -> Result<&[u8], Error> {
        let file_len = self.data.len() as u64;
        let at = base + u64::from(offset);
        let tail = usize::try_from(at)
            .ok()
            .and_then(|start| self.data.get(start..))
            .filter(|tail| !tail.is_empty())
            .ok_or(Error::StringOutOfRange {
                index,
                field,
                offset: at,
                file_len,
            })?;
        // Never scan further than the budget allows, so that time is bounded like memory.
        let left = self.text_left.get();
        let window = &tail[..tail.len().min(usize::try_from(left).unwrap_or(usize::MAX))];
        let Some(len) = window.iter().position(|&b| b == 0) else {
            if window.len() < tail.len() {
                return Err(Error::TooMuchText {
                    index,
                    limit: text_budget(file_len),
                    file_len,
                });
            }
            return Err(Error::UnterminatedString {
                index,
                field,
                offset: at,
            });
        };
        self.text_left.set(left - len as u64);
        Ok(&tail[..len])
    }
}

impl Cache {
    /// An empty cache.
    pub fn new() -> Cache {
        Cache::default()
    }

    /// Parses any of the three layouts. When the old format embeds a new one,
    /// the new section wins, as it does for the loader.
    ///
    /// Unlike the loader, this is strict: every entry's strings must lie in
    /// the file and be NUL-terminated. The extension section is not needed
    /// and not validated.
    pub fn parse(bytes: &[u8]) -> Result<Cache, Error> {
        if bytes.starts_with(NEW_MAGIC) {
            return parse_new(bytes, 0);
        }
        if bytes.starts_with(OLD_MAGIC) {
            return parse_old(bytes);
        }
        if NEW_MAGIC.starts_with(bytes) || OLD_MAGIC.starts_with(bytes) {
            // Even the smaller (old) header is 16 bytes.
            return Err(Error::Truncated {
                what: "header",
                needed: OLD_HEADER_LEN,
                actual: bytes.len() as u64,
            });
        }
        let shown = &bytes[..bytes.len().min(NEW_MAGIC.len())];
        Err(Error::BadMagic {
            found: shown.escape_ascii().to_string(),
        })
    }

    /// Reads and parses the cache at `path`.
    pub fn read(path: &Path) -> Result<Cache, Error> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Cache::parse(&bytes)
    }

    /// Serializes to the new format alone, in the machine's byte order, with
    /// entries in ldconfig's order and an extension section carrying the
    /// `glibc-hwcaps` names and a generator string.
    ///
    /// # Panics
    ///
    /// If [`Cache::try_to_bytes`] fails: a name or path contains a NUL byte,
    /// or the cache exceeds 4 GiB. Use `try_to_bytes` for entries that did
    /// not come from [`Cache::parse`].
    pub fn to_bytes(&self) -> Vec<u8> {
        match self.try_to_bytes() {
            Ok(bytes) => bytes,
            Err(e) => panic!("ld.so.cache serialization failed: {e}"),
        }
    }

    /// [`Cache::to_bytes`] that reports unrepresentable entries.
    pub fn try_to_bytes(&self) -> Result<Vec<u8>, Error> {
        write_new(self)
    }

    /// Adds `entry`, first removing every entry with the same name, flags and
    /// hwcap identity, so an injected library overrides what an image
    /// shipped. For `glibc-hwcaps` entries the identity is the subdirectory
    /// name rather than the raw `hwcap`, whose index part is file-specific.
    pub fn insert(&mut self, entry: Entry) {
        let key = identity(&entry);
        self.entries.retain(|e| identity(e) != key);
        self.entries.push(entry);
    }

    /// The entry the loader would pick for `name` among ordinary (non-hwcaps)
    /// entries with `flags`: the first one in ldconfig order.
    pub fn lookup(&self, name: &str, flags: i32) -> Option<&Entry> {
        // The sort is stable, so among equal keys vector order is file order.
        self.entries
            .iter()
            .find(|e| e.name == name && e.flags == flags && e.hwcap == 0)
    }

    /// Sorts `entries` into the order [`Cache::to_bytes`] writes them.
    pub fn sort(&mut self) {
        self.entries.sort_by(ldconfig_order);
    }
}

#[derive(PartialEq, Eq)]
enum HwcapIdentity<'a> {
    Subdirectory(Option<&'a OsStr>),
    Value(u64),
}

fn identity(e: &Entry) -> (&str, i32, HwcapIdentity<'_>) {
    let hw = if is_hwcap_extension(e.hwcap) {
        HwcapIdentity::Subdirectory(hwcaps_subdirectory_of(&e.path))
    } else {
        HwcapIdentity::Value(e.hwcap)
    };
    (&e.name, e.flags, hw)
}

fn parse_new(bytes: &[u8], base: u64) -> Result<Cache, Error> {
    let native = Reader::new(bytes, Endian::NATIVE);
    native.need(base + NEW_HEADER_LEN, "new-format header")?;
    let [flags] = native.bytes::<1>(base + 28, "new-format header")?;
    let endian = match flags & ENDIAN_MASK {
        ENDIAN_UNSET => Endian::NATIVE,
        ENDIAN_LITTLE => Endian::Little,
        ENDIAN_BIG => Endian::Big,
        _ => return Err(Error::InvalidEndianness { flags }),
    };
    let r = Reader::new(bytes, endian);
    let nlibs = r.u32(base + 20, "new-format header")?;
    let len_strings = r.u32(base + 24, "new-format header")?;
    let entries_start = base + NEW_HEADER_LEN;
    let entries_end = entries_start + u64::from(nlibs) * NEW_ENTRY_LEN;
    // Checked before allocating so a forged nlibs cannot reserve gigabytes.
    r.need(entries_end, "entry table")?;
    r.need(entries_end + u64::from(len_strings), "string table")?;

    let mut entries = Vec::with_capacity(nlibs as usize);
    for index in 0..nlibs as usize {
        let at = entries_start + index as u64 * NEW_ENTRY_LEN;
        let raw = RawEntry {
            flags: r.u32(at, "entry table")? as i32,
            key: r.u32(at + 4, "entry table")?,
            value: r.u32(at + 8, "entry table")?,
            os_version: r.u32(at + 12, "entry table")?,
            hwcap: r.u64(at + 16, "entry table")?,
        };
        entries.push(raw.resolve(&r, base, index)?);
    }
    Ok(Cache { entries })
}

fn parse_old(bytes: &[u8]) -> Result<Cache, Error> {
    // The old format records no byte order; only native caches are usable.
    let r = Reader::new(bytes, Endian::NATIVE);
    r.need(OLD_HEADER_LEN, "old-format header")?;
    let nlibs = r.u32(12, "old-format header")?;
    let entries_end = OLD_HEADER_LEN + u64::from(nlibs) * OLD_ENTRY_LEN;
    r.need(entries_end, "old-format entry table")?;

    // ldconfig aligns the embedded header to 8 bytes (the loader only looks
    // there); 32-bit writers that predate the alignment fix used 4.
    for candidate in [entries_end.next_multiple_of(8), entries_end] {
        let magic = usize::try_from(candidate)
            .ok()
            .and_then(|start| bytes.get(start..start.checked_add(NEW_MAGIC.len())?));
        if magic == Some(NEW_MAGIC) {
            return parse_new(bytes, candidate);
        }
    }

    let mut entries = Vec::with_capacity(nlibs as usize);
    for index in 0..nlibs as usize {
        let at = OLD_HEADER_LEN + index as u64 * OLD_ENTRY_LEN;
        let raw = RawEntry {
            flags: r.u32(at, "old-format entry table")? as i32,
            key: r.u32(at + 4, "old-format entry table")?,
            value: r.u32(at + 8, "old-format entry table")?,
            os_version: 0,
            hwcap: 0,
        };
        entries.push(raw.resolve(&r, entries_end, index)?);
    }
    Ok(Cache { entries })
}

/// An entry as stored, before its string offsets are resolved.
struct RawEntry {
    flags: i32,
    key: u32,
    value: u32,
    os_version: u32,
    hwcap: u64,
}

impl RawEntry {
    fn resolve(&self, r: &Reader<'_>, base: u64, index: usize) -> Result<Entry, Error> {
        let name = r.c_str(base, self.key, index, "name")?;
        let path = r.c_str(base, self.value, index, "path")?;
        let name = std::str::from_utf8(name).map_err(|_| Error::NonUtf8Name {
            index,
            offset: base + u64::from(self.key),
        })?;
        Ok(Entry {
            name: name.to_owned(),
            path: PathBuf::from(OsStr::from_bytes(path)),
            flags: self.flags,
            os_version: self.os_version,
            hwcap: self.hwcap,
        })
    }
}

/// glibc's `_dl_cache_libcmp`: like `strcmp`, except that runs of digits
/// compare by numeric value (so `libx.so.10` > `libx.so.9`) and a digit sorts
/// after any non-digit.
///
/// Non-digit bytes compare as C `char`, which is signed on x86 — so this is
/// the order of the loader built for the target this crate is compiled for.
/// Unlike the C code, digit runs of any length compare exactly instead of
/// overflowing `int`, which keeps this a total order (required by Rust's sort)
/// and agrees with glibc for every value below 2³¹.
pub fn libcmp(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0, 0);
    loop {
        let a_digit = a.get(i).is_some_and(u8::is_ascii_digit);
        let b_digit = b.get(j).is_some_and(u8::is_ascii_digit);
        match (a_digit, b_digit) {
            (true, true) => {
                let a_end = digit_run_end(a, i);
                let b_end = digit_run_end(b, j);
                let ord = cmp_decimal(&a[i..a_end], &b[j..b_end]);
                if ord != Ordering::Equal {
                    return ord;
                }
                i = a_end;
                j = b_end;
            }
            (true, false) => return Ordering::Greater,
            (false, true) => return Ordering::Less,
            (false, false) => {
                if i >= a.len() && j >= b.len() {
                    return Ordering::Equal;
                }
                // The end of a C string reads as its NUL terminator.
                let ca = a.get(i).map_or(0, |&c| i32::from(c as c_char));
                let cb = b.get(j).map_or(0, |&c| i32::from(c as c_char));
                if ca != cb {
                    return ca.cmp(&cb);
                }
                i += 1;
                j += 1;
            }
        }
    }
}

fn digit_run_end(s: &[u8], start: usize) -> usize {
    s[start..]
        .iter()
        .position(|c| !c.is_ascii_digit())
        .map_or(s.len(), |n| start + n)
}

fn cmp_decimal(a: &[u8], b: &[u8]) -> Ordering {
    let strip = |s: &[u8]| -> usize { s.iter().take_while(|&&c| c == b'0').count() };
    let (a, b) = (&a[strip(a)..], &b[strip(b)..]);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

enum SortHwcap<'a> {
    /// hwcaps entries, by subdirectory name; unknown names last.
    Extension(Option<&'a OsStr>),
    /// Legacy (glibc ≤ 2.36) hwcap bitmasks; 0 for ordinary entries.
    Legacy(u64),
}

fn sort_hwcap(e: &Entry) -> SortHwcap<'_> {
    if is_hwcap_extension(e.hwcap) {
        SortHwcap::Extension(hwcaps_subdirectory_of(&e.path))
    } else {
        SortHwcap::Legacy(e.hwcap)
    }
}

/// ldconfig's `compare` from `elf/cache.c`, read as "a goes before b".
/// `search_cache` bisects assuming names descend, and stops at the first
/// plain entry once it has a hwcaps candidate, so hwcaps entries come first.
fn ldconfig_order(a: &Entry, b: &Entry) -> Ordering {
    libcmp(b.name.as_bytes(), a.name.as_bytes())
        .then_with(|| b.flags.cmp(&a.flags))
        .then_with(|| match (sort_hwcap(a), sort_hwcap(b)) {
            (SortHwcap::Extension(x), SortHwcap::Extension(y)) => match (x, y) {
                // strcmp order, which is byte order.
                (Some(x), Some(y)) => x.as_bytes().cmp(y.as_bytes()),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            },
            (SortHwcap::Extension(_), SortHwcap::Legacy(_)) => Ordering::Less,
            (SortHwcap::Legacy(_), SortHwcap::Extension(_)) => Ordering::Greater,
            // Most specific first: more bits set, then the larger mask.
            (SortHwcap::Legacy(x), SortHwcap::Legacy(y)) => {
                y.count_ones().cmp(&x.count_ones()).then(y.cmp(&x))
            }
        })
}

/// A string table with ldconfig's tail merging: a string that is a suffix of
/// another (`libfoo.so.1` of `/usr/lib/libfoo.so.1`) shares its bytes.
struct StringTable<'a> {
    bytes: Vec<u8>,
    offsets: HashMap<&'a [u8], u32>,
}

impl<'a> StringTable<'a> {
    fn build(strings: impl IntoIterator<Item = &'a [u8]>) -> Result<StringTable<'a>, Error> {
        let mut unique: Vec<&[u8]> = strings.into_iter().collect();
        // Sorted by reversed bytes, a string that is a suffix of any other is
        // a suffix of its immediate successor.
        unique.sort_by(|a, b| a.iter().rev().cmp(b.iter().rev()));
        unique.dedup();
        let mut bytes = Vec::new();
        let mut offsets = HashMap::with_capacity(unique.len());
        let mut next: Option<(&[u8], u32)> = None;
        for s in unique.into_iter().rev() {
            let offset = match next {
                Some((longer, at)) if longer.ends_with(s) => at + (longer.len() - s.len()) as u32,
                _ => {
                    let at = u32::try_from(bytes.len()).map_err(|_| Error::TooLarge {
                        size: bytes.len() as u64,
                    })?;
                    bytes.extend_from_slice(s);
                    bytes.push(0);
                    at
                }
            };
            offsets.insert(s, offset);
            next = Some((s, offset));
        }
        Ok(StringTable { bytes, offsets })
    }
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_ne_bytes());
}

fn to_u32(v: u64) -> Result<u32, Error> {
    u32::try_from(v).map_err(|_| Error::TooLarge { size: v })
}

fn write_new(cache: &Cache) -> Result<Vec<u8>, Error> {
    for e in &cache.entries {
        let nul = |field| Error::InteriorNul {
            name: e.name.clone(),
            field,
        };
        if e.name.as_bytes().contains(&0) {
            return Err(nul("name"));
        }
        if e.path.as_os_str().as_bytes().contains(&0) {
            return Err(nul("path"));
        }
    }

    let mut entries: Vec<&Entry> = cache.entries.iter().collect();
    entries.sort_by(|a, b| ldconfig_order(a, b));

    // Indices into the hwcaps table follow strcmp order of the names, which
    // is what the loader merges against its own sorted priority list.
    let subdirs: BTreeSet<&[u8]> = entries
        .iter()
        .filter_map(|e| e.glibc_hwcaps_subdirectory())
        .map(OsStrExt::as_bytes)
        .collect();
    let subdir_index: HashMap<&[u8], u64> = subdirs
        .iter()
        .enumerate()
        .map(|(i, s)| (*s, i as u64))
        .collect();

    let strings = StringTable::build(
        entries
            .iter()
            .flat_map(|e| [e.name.as_bytes(), e.path.as_os_str().as_bytes()])
            .chain(subdirs.iter().copied()),
    )?;

    let nlibs = entries.len() as u64;
    let strings_start = NEW_HEADER_LEN + nlibs * NEW_ENTRY_LEN;
    let strings_len = strings.bytes.len() as u64;
    let extension_offset = (strings_start + strings_len).next_multiple_of(4);
    let section_count: u64 = if subdirs.is_empty() { 1 } else { 2 };
    let hwcaps_offset = extension_offset + 8 + 16 * section_count;
    let hwcaps_len = 4 * subdirs.len() as u64;
    let generator_offset = hwcaps_offset + hwcaps_len;
    let total = generator_offset + GENERATOR.len() as u64;
    to_u32(total)?;
    let string_offset = |s: &[u8]| -> u32 {
        // Every string was added above and the total fits in u32.
        strings
            .offsets
            .get(s)
            .map_or(0, |&o| (strings_start as u32) + o)
    };

    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(NEW_MAGIC);
    put_u32(&mut out, to_u32(nlibs)?);
    put_u32(&mut out, to_u32(strings_len)?);
    out.push(match Endian::NATIVE {
        Endian::Little => ENDIAN_LITTLE,
        Endian::Big => ENDIAN_BIG,
    });
    out.extend_from_slice(&[0; 3]);
    put_u32(&mut out, to_u32(extension_offset)?);
    out.extend_from_slice(&[0; 12]);

    for e in &entries {
        let hwcap = match e.glibc_hwcaps_subdirectory() {
            Some(dir) => {
                let index = subdir_index
                    .get(dir.as_bytes())
                    .copied()
                    .unwrap_or(HWCAP_INDEX_UNKNOWN);
                (e.hwcap & !0xffff_ffff) | index
            }
            None if is_hwcap_extension(e.hwcap) => (e.hwcap & !0xffff_ffff) | HWCAP_INDEX_UNKNOWN,
            None => e.hwcap,
        };
        out.extend_from_slice(&e.flags.to_ne_bytes());
        put_u32(&mut out, string_offset(e.name.as_bytes()));
        put_u32(&mut out, string_offset(e.path.as_os_str().as_bytes()));
        put_u32(&mut out, e.os_version);
        out.extend_from_slice(&hwcap.to_ne_bytes());
    }

    out.extend_from_slice(&strings.bytes);
    out.resize(extension_offset as usize, 0);

    put_u32(&mut out, EXTENSION_MAGIC);
    put_u32(&mut out, section_count as u32);
    put_u32(&mut out, EXTENSION_TAG_GENERATOR);
    put_u32(&mut out, 0);
    put_u32(&mut out, generator_offset as u32);
    put_u32(&mut out, GENERATOR.len() as u32);
    if !subdirs.is_empty() {
        put_u32(&mut out, EXTENSION_TAG_GLIBC_HWCAPS);
        put_u32(&mut out, 0);
        put_u32(&mut out, hwcaps_offset as u32);
        put_u32(&mut out, hwcaps_len as u32);
    }
    for s in &subdirs {
        put_u32(&mut out, string_offset(s));
    }
    out.extend_from_slice(GENERATOR.as_bytes());
    debug_assert_eq!(out.len() as u64, total);
    Ok(out)
}

/// The cache flags ldconfig would record for the ELF object starting with
/// `bytes`, judged from the ELF header alone (class, data encoding,
/// `e_machine`, and `e_flags` where the ABI lives there).
///
/// Returns `None` for non-ELF input and for machines not handled here.
/// ldconfig also requires `ET_DYN`, and for generic 32-bit targets it would
/// record `FLAG_ELF` (1) for a library not linked against libc; this helper
/// checks neither and answers [`FLAG_ELF_LIBC6`] there.
pub fn flags_for_elf(bytes: &[u8]) -> Option<i32> {
    const EM_386: u16 = 3;
    const EM_PPC: u16 = 20;
    const EM_PPC64: u16 = 21;
    const EM_S390: u16 = 22;
    const EM_ARM: u16 = 40;
    const EM_X86_64: u16 = 62;
    const EM_AARCH64: u16 = 183;
    const EM_RISCV: u16 = 243;
    const ELFCLASS32: u8 = 1;
    const ELFCLASS64: u8 = 2;

    if bytes.get(..4)? != b"\x7fELF" {
        return None;
    }
    let class = *bytes.get(4)?;
    let big = match *bytes.get(5)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let machine: [u8; 2] = bytes.get(18..20)?.try_into().ok()?;
    let machine = if big {
        u16::from_be_bytes(machine)
    } else {
        u16::from_le_bytes(machine)
    };
    let e_flags_at = match class {
        ELFCLASS32 => 36,
        ELFCLASS64 => 48,
        _ => return None,
    };
    let e_flags: [u8; 4] = bytes.get(e_flags_at..e_flags_at + 4)?.try_into().ok()?;
    let e_flags = if big {
        u32::from_be_bytes(e_flags)
    } else {
        u32::from_le_bytes(e_flags)
    };

    Some(match (machine, class) {
        (EM_X86_64, ELFCLASS64) => FLAG_X86_64_LIBC6,
        (EM_X86_64, ELFCLASS32) => FLAG_X32_LIBC6,
        (EM_386, ELFCLASS32) => FLAG_ELF_LIBC6,
        (EM_AARCH64, ELFCLASS64) => FLAG_AARCH64_LIBC6,
        (EM_ARM, ELFCLASS32) => {
            const EF_ARM_ABI_FLOAT_SOFT: u32 = 0x200;
            const EF_ARM_ABI_FLOAT_HARD: u32 = 0x400;
            // The float ABI bits only mean something in EABI version 5.
            if e_flags >> 24 != 5 {
                FLAG_ELF_LIBC6
            } else if e_flags & EF_ARM_ABI_FLOAT_HARD != 0 {
                0x0903
            } else if e_flags & EF_ARM_ABI_FLOAT_SOFT != 0 {
                0x0b03
            } else {
                FLAG_ELF_LIBC6
            }
        }
        (EM_PPC64, ELFCLASS64) => FLAG_POWERPC64_LIBC6,
        (EM_S390, ELFCLASS64) => FLAG_S390X_LIBC6,
        (EM_PPC | EM_S390, ELFCLASS32) => FLAG_ELF_LIBC6,
        (EM_RISCV, _) => match e_flags & 0x6 {
            0 => 0x0f03,
            4 => 0x1003,
            // ldconfig rejects single- and quad-float objects.
            _ => return None,
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
