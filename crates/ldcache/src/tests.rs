use super::*;

/// Hand-assembles a new-format cache so the parser is not only checked
/// against the writer it shares assumptions with.
struct RawNew {
    endian: Endian,
    flags_byte: u8,
    entries: Vec<(i32, u32, u32, u32, u64)>,
    strings: Vec<u8>,
    nlibs_override: Option<u32>,
}

impl RawNew {
    fn new() -> RawNew {
        RawNew {
            endian: Endian::Little,
            flags_byte: ENDIAN_LITTLE,
            entries: Vec::new(),
            strings: Vec::new(),
            nlibs_override: None,
        }
    }

    /// Offset of `s` within the string table once appended.
    fn string(&mut self, s: &str) -> u32 {
        let at = self.strings.len() as u32;
        self.strings.extend_from_slice(s.as_bytes());
        self.strings.push(0);
        at
    }

    fn header_and_entries_len(&self) -> u32 {
        48 + 24 * self.entries.len() as u32
    }

    fn u32(&self, v: u32) -> [u8; 4] {
        match self.endian {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(NEW_MAGIC);
        out.extend_from_slice(&self.u32(self.nlibs_override.unwrap_or(self.entries.len() as u32)));
        out.extend_from_slice(&self.u32(self.strings.len() as u32));
        out.push(self.flags_byte);
        out.extend_from_slice(&[0; 3 + 4 + 12]);
        for &(flags, key, value, osv, hwcap) in &self.entries {
            out.extend_from_slice(&self.u32(flags as u32));
            out.extend_from_slice(&self.u32(key));
            out.extend_from_slice(&self.u32(value));
            out.extend_from_slice(&self.u32(osv));
            out.extend_from_slice(&match self.endian {
                Endian::Little => hwcap.to_le_bytes(),
                Endian::Big => hwcap.to_be_bytes(),
            });
        }
        out.extend_from_slice(&self.strings);
        out
    }
}

/// Two entries whose key/value offsets are absolute, as in a new-only file.
fn two_entry_raw() -> RawNew {
    let mut raw = RawNew::new();
    raw.entries = vec![(0, 0, 0, 0, 0); 2];
    let base = raw.header_and_entries_len();
    let k0 = raw.string("libx.so.10") + base;
    let v0 = raw.string("/opt/x/libx.so.10") + base;
    let k1 = raw.string("libx.so.9") + base;
    let v1 = raw.string("/opt/x/libx.so.9") + base;
    raw.entries = vec![(0x303, k0, v0, 7, 0), (0x303, k1, v1, 0, 0)];
    raw
}

fn e(name: &str, path: &str) -> Entry {
    Entry::new(name, path, FLAG_X86_64_LIBC6)
}

#[test]
fn parses_hand_built_new_format() {
    let cache = Cache::parse(&two_entry_raw().bytes()).unwrap();
    assert_eq!(
        cache.entries,
        vec![
            Entry {
                os_version: 7,
                ..e("libx.so.10", "/opt/x/libx.so.10")
            },
            e("libx.so.9", "/opt/x/libx.so.9"),
        ]
    );
}

#[test]
fn honours_big_endian_marker() {
    let mut raw = two_entry_raw();
    raw.endian = Endian::Big;
    raw.flags_byte = ENDIAN_BIG | 0x10; // Non-endian bits must be ignored.
    let cache = Cache::parse(&raw.bytes()).unwrap();
    assert_eq!(cache.entries[1], e("libx.so.9", "/opt/x/libx.so.9"));
}

#[test]
fn rejects_invalid_endianness_marker() {
    let mut raw = two_entry_raw();
    raw.flags_byte = 1;
    assert!(matches!(
        Cache::parse(&raw.bytes()),
        Err(Error::InvalidEndianness { flags: 1 })
    ));
}

#[test]
fn unset_endianness_means_native() {
    let mut raw = two_entry_raw();
    raw.endian = Endian::NATIVE;
    raw.flags_byte = ENDIAN_UNSET;
    assert_eq!(Cache::parse(&raw.bytes()).unwrap().entries.len(), 2);
}

/// Old-format header followed by `entries` 12-byte records; string offsets
/// are relative to the end of the records.
fn old_bytes(entries: &[(i32, u32, u32)], after_entries: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(OLD_MAGIC);
    out.push(0);
    out.extend_from_slice(&(entries.len() as u32).to_ne_bytes());
    for &(f, k, v) in entries {
        out.extend_from_slice(&f.to_ne_bytes());
        out.extend_from_slice(&k.to_ne_bytes());
        out.extend_from_slice(&v.to_ne_bytes());
    }
    out.extend_from_slice(after_entries);
    out
}

#[test]
fn parses_old_format_with_offsets_after_entry_table() {
    let strings = b"libfoo.so.1\0/lib/libfoo.so.1\0";
    let bytes = old_bytes(&[(3, 0, 12)], strings);
    let cache = Cache::parse(&bytes).unwrap();
    assert_eq!(
        cache.entries,
        vec![Entry::new("libfoo.so.1", "/lib/libfoo.so.1", 3)]
    );
}

#[test]
fn compat_layout_uses_embedded_new_section_with_its_own_offset_base() {
    // One old entry: 16 + 12 = 28 bytes, so the new header sits at 32.
    let new = {
        let mut raw = RawNew::new();
        raw.endian = Endian::NATIVE;
        raw.flags_byte = if cfg!(target_endian = "big") {
            ENDIAN_BIG
        } else {
            ENDIAN_LITTLE
        };
        raw.entries = vec![(0, 0, 0, 0, 0)];
        let base = raw.header_and_entries_len();
        let k = raw.string("libnew.so.1") + base;
        let v = raw.string("/new/libnew.so.1") + base;
        raw.entries = vec![(0x303, k, v, 0, 0)];
        raw.bytes()
    };
    let mut tail = vec![0u8; 4];
    tail.extend_from_slice(&new);
    // The old entry points at strings inside the new section; it must be ignored.
    let bytes = old_bytes(&[(3, 4, 4)], &tail);
    let cache = Cache::parse(&bytes).unwrap();
    assert_eq!(cache.entries, vec![e("libnew.so.1", "/new/libnew.so.1")]);

    // Truncating inside the embedded section is an error, not a fallback.
    assert!(matches!(
        Cache::parse(&bytes[..bytes.len() - 3]),
        Err(Error::Truncated { .. })
    ));
}

#[test]
fn rejects_bad_magic() {
    let err = Cache::parse(b"definitely not a cache file").unwrap_err();
    assert!(matches!(err, Error::BadMagic { .. }), "{err}");
    assert!(err.to_string().contains("definitely"), "{err}");
    assert!(matches!(
        Cache::parse(&[0xff; 64]),
        Err(Error::BadMagic { .. })
    ));
}

#[test]
fn empty_and_magic_prefix_are_truncated() {
    for bytes in [&b""[..], b"glibc-ld.so", b"ld.so-1.7"] {
        assert!(
            matches!(Cache::parse(bytes), Err(Error::Truncated { .. })),
            "{bytes:?}"
        );
    }
}

#[test]
fn every_truncation_of_a_valid_file_is_an_error_until_the_strings_end() {
    let mut cache = Cache::new();
    for i in 0..20 {
        cache.insert(e(
            &format!("lib{i}.so.{i}"),
            &format!("/d{i}/lib{i}.so.{i}"),
        ));
    }
    let bytes = cache.to_bytes();
    let strings_end = 48 + 24 * 20 + u32::from_ne_bytes(bytes[24..28].try_into().unwrap()) as usize;
    for len in 0..bytes.len() {
        let parsed = Cache::parse(&bytes[..len]);
        if len < strings_end {
            assert!(parsed.is_err(), "prefix of {len} bytes parsed");
        } else {
            // Only the extension section is cut; entries are intact.
            assert_eq!(parsed.unwrap().entries.len(), 20);
        }
    }
}

#[test]
fn every_truncation_of_an_old_file_is_an_error() {
    let bytes = old_bytes(
        &[(3, 0, 12), (3, 0, 12)],
        b"libfoo.so.1\0/lib/libfoo.so.1\0",
    );
    for len in 0..bytes.len() {
        assert!(
            Cache::parse(&bytes[..len]).is_err(),
            "prefix of {len} bytes parsed"
        );
    }
}

#[test]
fn huge_nlibs_is_truncated_not_an_allocation() {
    let mut raw = two_entry_raw();
    raw.nlibs_override = Some(u32::MAX);
    assert!(matches!(
        Cache::parse(&raw.bytes()),
        Err(Error::Truncated {
            what: "entry table",
            ..
        })
    ));
    let bytes = old_bytes(&[], &[]);
    let mut bytes = bytes;
    bytes[12..16].copy_from_slice(&u32::MAX.to_ne_bytes());
    assert!(matches!(Cache::parse(&bytes), Err(Error::Truncated { .. })));
}

/// Counts the bytes this thread has allocated and not freed, and their peak, so that a test
/// can see what a parse costs without other tests' threads adding to it.
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static LIVE: Cell<usize> = const { Cell::new(0) };
        static PEAK: Cell<usize> = const { Cell::new(0) };
    }

    struct Counting;

    fn grew(by: usize) {
        let live = LIVE.with(|l| {
            l.set(l.get().saturating_add(by));
            l.get()
        });
        PEAK.with(|p| p.set(p.get().max(live)));
    }

    fn shrank(by: usize) {
        LIVE.with(|l| l.set(l.get().saturating_sub(by)));
    }

    // SAFETY: every call is passed on to the system allocator unchanged.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            grew(layout.size());
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            shrank(layout.size());
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            shrank(layout.size());
            grew(new_size);
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static ALLOCATOR: Counting = Counting;

    /// The most this thread had allocated at once while `f` ran, beyond what it had before.
    pub(super) fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
        let before = LIVE.with(Cell::get);
        PEAK.with(|p| p.set(before));
        let value = f();
        (value, PEAK.with(Cell::get) - before)
    }
}

/// What a parse of `bytes` may cost at most: a few times the input (entries, strings), and
/// never the product of an entry count and a string length.
fn assert_bounded(bytes: &[u8]) -> Result<Cache, Error> {
    let started = std::time::Instant::now();
    let (parsed, peak) = counting::peak_during(|| Cache::parse(bytes));
    let limit = 16 * bytes.len() + (1 << 20);
    assert!(
        peak <= limit,
        "parsing {} bytes took {peak} bytes at once (limit {limit})",
        bytes.len()
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "parsing {} bytes took {:?}",
        bytes.len(),
        started.elapsed()
    );
    parsed
}

/// `n` entries whose name and path are all one `len`-byte string.
fn one_long_string_new(n: u32, len: usize) -> Vec<u8> {
    let mut raw = RawNew::new();
    raw.entries = vec![(0, 0, 0, 0, 0); n as usize];
    let base = raw.header_and_entries_len();
    let at = raw.string(&"a".repeat(len)) + base;
    raw.entries = vec![(FLAG_X86_64_LIBC6, at, at, 0, 0); n as usize];
    raw.bytes()
}

#[test]
fn entries_sharing_one_long_string_cost_what_the_file_holds() {
    // ~2 MB that would decode to 40000 × 2 × 1 MB = 80 GB if every entry were copied
    let hostile = one_long_string_new(40_000, 1 << 20);
    let err = assert_bounded(&hostile).unwrap_err();
    assert!(matches!(err, Error::TooMuchText { .. }), "{err}");
    assert!(
        err.to_string().contains("not a cache ldconfig wrote"),
        "{err}"
    );

    let mut strings = vec![b'/'; 1 << 20];
    strings.push(0);
    let old = old_bytes(&vec![(FLAG_X86_64_LIBC6, 0, 0); 40_000], &strings);
    assert!(matches!(
        assert_bounded(&old),
        Err(Error::TooMuchText { .. })
    ));
    // the same inside a compat file's embedded new section
    let mut embedded = vec![0u8; 4];
    embedded.extend_from_slice(&hostile);
    let compat = old_bytes(&[(3, 0, 0)], &embedded);
    assert!(matches!(
        assert_bounded(&compat),
        Err(Error::TooMuchText { .. })
    ));
    // a long string without its NUL is scanned once, not once per entry
    let mut unterminated = one_long_string_new(40_000, 1 << 20);
    unterminated.pop();
    assert!(assert_bounded(&unterminated).is_err());
}

#[test]
fn shared_strings_within_the_budget_still_parse() {
    // the tail merging ldconfig does (a name is the end of its path) and a few entries per
    // path (one library under several flags) stay far below the budget
    let mut cache = Cache::new();
    for i in 0..2000 {
        let path = format!("/usr/lib/x86_64-linux-gnu/libwith-a-long-name-{i}.so.1");
        cache.insert(e(&format!("libwith-a-long-name-{i}.so.1"), &path));
        cache.insert(Entry::new(
            format!("libwith-a-long-name-{i}.so.1"),
            &path,
            FLAG_X32_LIBC6,
        ));
    }
    let bytes = cache.to_bytes();
    assert_eq!(assert_bounded(&bytes).unwrap().entries.len(), 4000);
    // one string shared by entries, up to about four times the file's size, is accepted
    let fine = one_long_string_new(8, 2048);
    assert_eq!(assert_bounded(&fine).unwrap().entries.len(), 8);
}

#[test]
fn random_and_truncated_bytes_never_panic_and_cost_what_they_are() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let seeds = [
        one_long_string_new(64, 512),
        two_entry_raw().bytes(),
        old_bytes(&[(3, 0, 4), (3, 4, 0)], b"abc\0def\0"),
    ];
    for _ in 0..3000 {
        let seed = &seeds[(rng.next() % seeds.len() as u64) as usize];
        let mut bytes = seed.clone();
        match rng.next() % 3 {
            // point entry fields anywhere: at the strings, past the end, at each other
            0 => {
                for _ in 0..1 + rng.next() % 32 {
                    let at = (rng.next() % bytes.len() as u64) as usize & !3;
                    let v = (rng.next() % (bytes.len() as u64 + 8)) as u32;
                    if at + 4 <= bytes.len() {
                        bytes[at..at + 4].copy_from_slice(&v.to_ne_bytes());
                    }
                }
            }
            1 => bytes.truncate((rng.next() % bytes.len() as u64) as usize),
            _ => {
                let len = (rng.next() % 4096) as usize;
                let magic: &[u8] = if rng.next().is_multiple_of(2) {
                    NEW_MAGIC
                } else {
                    OLD_MAGIC
                };
                bytes = magic.to_vec();
                bytes.extend((0..len).map(|_| rng.next() as u8));
            }
        }
        let _ = assert_bounded(&bytes);
    }
}

#[test]
fn string_offsets_out_of_range_are_errors() {
    let mut raw = two_entry_raw();
    raw.entries[1].2 = u32::MAX;
    let err = Cache::parse(&raw.bytes()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::StringOutOfRange {
                index: 1,
                field: "path",
                ..
            }
        ),
        "{err}"
    );

    let mut raw = two_entry_raw();
    let len = raw.bytes().len() as u32;
    raw.entries[0].1 = len; // Exactly one past the end.
    assert!(matches!(
        Cache::parse(&raw.bytes()),
        Err(Error::StringOutOfRange {
            index: 0,
            field: "name",
            ..
        })
    ));
}

#[test]
fn unterminated_string_is_an_error() {
    let mut raw = two_entry_raw();
    raw.strings.pop(); // The last path loses its NUL.
    assert!(matches!(
        Cache::parse(&raw.bytes()),
        Err(Error::UnterminatedString {
            index: 1,
            field: "path",
            ..
        })
    ));
}

#[test]
fn non_utf8_name_is_an_error_but_path_is_not() {
    let mut raw = RawNew::new();
    raw.entries = vec![(0, 0, 0, 0, 0)];
    let base = raw.header_and_entries_len();
    let k = raw.string("libok.so.1") + base;
    let v = base + raw.strings.len() as u32;
    raw.strings.extend_from_slice(b"/opt/\xff/libok.so.1\0");
    raw.entries = vec![(0x303, k, v, 0, 0)];
    let cache = Cache::parse(&raw.bytes()).unwrap();
    assert_eq!(
        cache.entries[0].path.as_os_str().as_bytes(),
        b"/opt/\xff/libok.so.1"
    );

    raw.entries[0].1 = v + 5; // Name now starts at the 0xff byte.
    assert!(matches!(
        Cache::parse(&raw.bytes()),
        Err(Error::NonUtf8Name { index: 0, .. })
    ));
}

/// xorshift64*, enough to scramble bytes reproducibly without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn random_corruption_never_panics() {
    let mut cache = Cache::new();
    for i in 0..8 {
        cache.insert(e(&format!("libr{i}.so.{}", i * 7), &format!("/r/{i}")));
    }
    cache.insert(Entry {
        hwcap: HWCAP_EXTENSION,
        ..e("libr0.so.0", "/r/glibc-hwcaps/x86-64-v3/libr0.so.0")
    });
    let good = cache.to_bytes();
    let compat = old_bytes(&[(3, 0, 0)], &{
        let mut t = vec![0u8; 4];
        t.extend_from_slice(&good);
        t
    });
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for original in [&good, &compat] {
        for _ in 0..20_000 {
            let mut bytes = original.clone();
            for _ in 0..1 + rng.next() % 4 {
                let at = (rng.next() % bytes.len() as u64) as usize;
                bytes[at] = rng.next() as u8;
            }
            if rng.next().is_multiple_of(4) {
                let len = (rng.next() % bytes.len() as u64) as usize;
                bytes.truncate(len);
            }
            if let Ok(parsed) = Cache::parse(&bytes) {
                // Anything we accept must be writable and read back the same,
                // except for hwcaps indices, which the writer rebuilds.
                let again = Cache::parse(&parsed.to_bytes()).unwrap();
                let mut sorted = parsed.clone();
                sorted.sort();
                let strip = |c: &Cache| -> Vec<Entry> {
                    c.entries
                        .iter()
                        .map(|e| Entry {
                            hwcap: if is_hwcap_extension(e.hwcap) {
                                e.hwcap >> 32
                            } else {
                                e.hwcap
                            },
                            ..e.clone()
                        })
                        .collect()
                };
                assert_eq!(strip(&again), strip(&sorted));
            }
        }
    }
}

#[test]
fn libcmp_matches_glibc() {
    use Ordering::*;
    let cases: &[(&str, &str, Ordering)] = &[
        ("libx.so.10", "libx.so.9", Greater),
        ("libx.so.9", "libx.so.10", Less),
        ("libx.so.1", "libx.so.1", Equal),
        ("libx.so.01", "libx.so.1", Equal),
        ("libx.so.1", "libx.so", Greater),
        ("libx.so", "libx.so.1", Less),
        ("lib2.so", "liba.so", Greater), // A digit beats any non-digit.
        ("liba.so", "lib2.so", Less),
        ("libx.so.1", "libx.so.1.0", Less),
        ("libx.so.1a", "libx.so.1", Greater),
        ("libcuda.so.1", "libnvidia-ml.so.1", Less),
        ("libx1", "libx", Greater), // Digit against end of string.
        ("libx", "libx1", Less),
        (
            "libz.so.99999999999999999999",
            "libz.so.99999999999999999998",
            Greater,
        ),
        ("", "", Equal),
    ];
    for &(a, b, want) in cases {
        assert_eq!(libcmp(a.as_bytes(), b.as_bytes()), want, "{a:?} vs {b:?}");
    }
}

#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
#[test]
fn libcmp_uses_signed_char_like_the_x86_loader() {
    // 0xc3 is negative as a signed char, so it sorts before ASCII letters and
    // even before the end of the string.
    assert_eq!(libcmp(b"lib\xc3", b"liba"), Ordering::Less);
    assert_eq!(libcmp(b"lib\xc3", b"lib"), Ordering::Less);
}

#[test]
fn sort_order_is_ldconfigs() {
    let hw = |name: &str, dir: &str| Entry {
        hwcap: HWCAP_EXTENSION,
        ..e(name, &format!("/l/glibc-hwcaps/{dir}/{name}"))
    };
    let mut cache = Cache {
        entries: vec![
            e("liba.so.1", "/l/liba.so.1"),
            e("libx.so.9", "/l/libx.so.9"),
            Entry::new("libx.so.10", "/l32/libx.so.10", FLAG_ELF_LIBC6),
            e("libx.so.10", "/l/libx.so.10"),
            hw("libx.so.10", "x86-64-v3"),
            hw("libx.so.10", "x86-64-v2"),
            e("libz.so.1", "/l/libz.so.1"),
        ],
    };
    cache.sort();
    let order: Vec<_> = cache
        .entries
        .iter()
        .map(|e| e.path.to_str().unwrap())
        .collect();
    assert_eq!(
        order,
        [
            "/l/libz.so.1",
            "/l/glibc-hwcaps/x86-64-v2/libx.so.10",
            "/l/glibc-hwcaps/x86-64-v3/libx.so.10",
            "/l/libx.so.10",
            "/l32/libx.so.10",
            "/l/libx.so.9",
            "/l/liba.so.1",
        ]
    );
}

#[test]
fn duplicates_keep_their_relative_order() {
    let cache = Cache {
        entries: vec![
            e("libdup.so.1", "/first/libdup.so.1"),
            e("liba.so.1", "/a/liba.so.1"),
            e("libdup.so.1", "/second/libdup.so.1"),
        ],
    };
    let back = Cache::parse(&cache.to_bytes()).unwrap();
    assert_eq!(back.entries[0].path, Path::new("/first/libdup.so.1"));
    assert_eq!(back.entries[1].path, Path::new("/second/libdup.so.1"));
}

#[test]
fn round_trips_and_merges_string_tails() {
    let mut cache = Cache::new();
    cache.insert(e("libfoo.so.1", "/usr/lib/libfoo.so.1"));
    cache.insert(e("libbar.so.2", "/usr/lib/libbar.so.2"));
    let bytes = cache.to_bytes();
    // The names are suffixes of the paths, so only the paths are stored.
    let len_strings = u32::from_ne_bytes(bytes[24..28].try_into().unwrap()) as usize;
    assert_eq!(
        len_strings,
        "/usr/lib/libfoo.so.1\0/usr/lib/libbar.so.2\0".len()
    );
    let mut sorted = cache.clone();
    sorted.sort();
    assert_eq!(Cache::parse(&bytes).unwrap(), sorted);
}

#[test]
fn writes_header_fields_glibc_checks() {
    let cache = Cache {
        entries: vec![e("libfoo.so.1", "/x/libfoo.so.1")],
    };
    let bytes = cache.to_bytes();
    assert_eq!(&bytes[..20], b"glibc-ld.so.cache1.1");
    assert_eq!(u32::from_ne_bytes(bytes[20..24].try_into().unwrap()), 1);
    let native = if cfg!(target_endian = "big") { 3 } else { 2 };
    assert_eq!(bytes[28], native);
    let ext = u32::from_ne_bytes(bytes[32..36].try_into().unwrap()) as usize;
    assert_eq!(ext % 4, 0);
    assert_eq!(
        u32::from_ne_bytes(bytes[ext..ext + 4].try_into().unwrap()),
        0xeaa4_2174
    );
    // Key and value are absolute file offsets.
    let key = u32::from_ne_bytes(bytes[52..56].try_into().unwrap()) as usize;
    assert_eq!(&bytes[key..key + 12], b"libfoo.so.1\0");
}

#[test]
fn hwcaps_indices_are_rebuilt_from_paths() {
    let isa = 3u64 << 32;
    let cache = Cache {
        entries: vec![
            Entry {
                hwcap: HWCAP_EXTENSION | isa | 17, // Stale index from another file.
                ..e("libh.so.1", "/l/glibc-hwcaps/x86-64-v3/libh.so.1")
            },
            Entry {
                hwcap: HWCAP_EXTENSION | 5,
                ..e("libh.so.1", "/l/glibc-hwcaps/x86-64-v2/libh.so.1")
            },
            e("libh.so.1", "/l/libh.so.1"),
        ],
    };
    let back = Cache::parse(&cache.to_bytes()).unwrap();
    let hwcaps: Vec<u64> = back.entries.iter().map(|e| e.hwcap).collect();
    assert_eq!(hwcaps, [HWCAP_EXTENSION, HWCAP_EXTENSION | isa | 1, 0]);
}

#[test]
fn insert_replaces_same_name_flags_and_hwcap() {
    let mut cache = Cache {
        entries: vec![
            e("libcuda.so.1", "/usr/lib/x86_64-linux-gnu/libcuda.so.1"),
            e("libcuda.so.1", "/usr/lib64/libcuda.so.1"),
            Entry::new("libcuda.so.1", "/usr/lib32/libcuda.so.1", FLAG_ELF_LIBC6),
            Entry {
                hwcap: HWCAP_EXTENSION | 4,
                ..e(
                    "libcuda.so.1",
                    "/usr/lib/glibc-hwcaps/x86-64-v3/libcuda.so.1",
                )
            },
            e("libz.so.1", "/usr/lib/libz.so.1"),
        ],
    };
    cache.insert(e("libcuda.so.1", "/usr/local/nvidia/lib64/libcuda.so.1"));
    cache.insert(Entry {
        hwcap: HWCAP_EXTENSION,
        ..e(
            "libcuda.so.1",
            "/usr/local/nvidia/lib64/glibc-hwcaps/x86-64-v3/libcuda.so.1",
        )
    });
    let paths: Vec<_> = cache
        .entries
        .iter()
        .map(|e| e.path.to_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "/usr/lib32/libcuda.so.1",
            "/usr/lib/libz.so.1",
            "/usr/local/nvidia/lib64/libcuda.so.1",
            "/usr/local/nvidia/lib64/glibc-hwcaps/x86-64-v3/libcuda.so.1",
        ]
    );
    assert_eq!(
        cache
            .lookup("libcuda.so.1", FLAG_X86_64_LIBC6)
            .unwrap()
            .path,
        Path::new("/usr/local/nvidia/lib64/libcuda.so.1")
    );
}

#[test]
fn interior_nul_is_rejected_by_try_to_bytes() {
    let cache = Cache {
        entries: vec![e("lib\0x.so", "/x")],
    };
    assert!(matches!(
        cache.try_to_bytes(),
        Err(Error::InteriorNul { field: "name", .. })
    ));
}

#[test]
fn empty_cache_round_trips() {
    let bytes = Cache::new().to_bytes();
    // glibc ignores caches not larger than the header; ours has extensions.
    assert!(bytes.len() > 48);
    assert!(Cache::parse(&bytes).unwrap().entries.is_empty());
}

fn elf_header(class: u8, data: u8, machine: u16, e_flags: u32) -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = class;
    h[5] = data;
    let be = data == 2;
    let m = if be {
        machine.to_be_bytes()
    } else {
        machine.to_le_bytes()
    };
    h[18..20].copy_from_slice(&m);
    let f = if be {
        e_flags.to_be_bytes()
    } else {
        e_flags.to_le_bytes()
    };
    let at = if class == 1 { 36 } else { 48 };
    h[at..at + 4].copy_from_slice(&f);
    h
}

#[test]
fn flags_for_elf_headers() {
    assert_eq!(flags_for_elf(&elf_header(2, 1, 62, 0)), Some(0x0303));
    assert_eq!(flags_for_elf(&elf_header(1, 1, 62, 0)), Some(0x0803));
    assert_eq!(flags_for_elf(&elf_header(1, 1, 3, 0)), Some(0x0003));
    assert_eq!(flags_for_elf(&elf_header(2, 1, 183, 0)), Some(0x0a03));
    assert_eq!(flags_for_elf(&elf_header(2, 2, 183, 0)), Some(0x0a03));
    assert_eq!(
        flags_for_elf(&elf_header(1, 1, 40, 0x0500_0400)),
        Some(0x0903)
    );
    assert_eq!(
        flags_for_elf(&elf_header(1, 1, 40, 0x0500_0200)),
        Some(0x0b03)
    );
    assert_eq!(flags_for_elf(&elf_header(2, 2, 21, 0)), Some(0x0503));
    assert_eq!(flags_for_elf(&elf_header(2, 2, 22, 0)), Some(0x0403));
    assert_eq!(flags_for_elf(&elf_header(2, 1, 243, 0x5)), Some(0x1003));
    assert_eq!(flags_for_elf(&elf_header(2, 1, 243, 0x1)), Some(0x0f03));
    assert_eq!(flags_for_elf(&elf_header(2, 1, 243, 0x2)), None);
    assert_eq!(flags_for_elf(&elf_header(2, 1, 9999, 0)), None);
    assert_eq!(flags_for_elf(&elf_header(3, 1, 62, 0)), None);
    assert_eq!(flags_for_elf(b"\x7fELF\x02\x01"), None);
    assert_eq!(flags_for_elf(b"#!/bin/sh\n"), None);
    assert_eq!(flags_for_elf(&[]), None);
}

#[cfg(target_arch = "x86_64")]
#[test]
fn flags_for_elf_on_this_test_binary() {
    let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    assert_eq!(flags_for_elf(&me), Some(FLAG_X86_64_LIBC6));
}

#[test]
fn error_messages_carry_context() {
    let err = Cache::read(Path::new("/nonexistent/ld.so.cache")).unwrap_err();
    assert!(
        matches!(&err, Error::Io { path, .. } if path == Path::new("/nonexistent/ld.so.cache"))
    );
    assert!(
        err.to_string().contains("/nonexistent/ld.so.cache"),
        "{err}"
    );
}
