//! Checks against the real glibc: caches written by `ldconfig` must parse to
//! what `ldconfig -p` prints, caches we write must list identically under
//! `ldconfig -p`, and the dynamic loader must resolve SONAMEs through them.
//!
//! Each test skips (loudly) when gcc or ldconfig is absent; the loader test
//! also needs the privilege to `chroot`.

use ldcache::{flags_for_elf, Cache, Entry, HWCAP_EXTENSION};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Tools {
    ldconfig: PathBuf,
}

fn tools(test: &str) -> Option<Tools> {
    let gcc = Command::new("gcc").arg("--version").output();
    if !gcc.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED {test}: gcc is not available");
        return None;
    }
    let Some(ldconfig) = ["/sbin/ldconfig", "/usr/sbin/ldconfig"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
    else {
        eprintln!("SKIPPED {test}: ldconfig is not available");
        return None;
    };
    Some(Tools { ldconfig })
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Compiles a shared library whose `ldcache_test_id()` returns `id`.
fn build_lib(dir: &Path, soname: &str, file_name: &str, id: i32, extra: &[&str]) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let src = dir.join(format!(".{file_name}.c"));
    fs::write(
        &src,
        format!("int ldcache_test_id(void) {{ return {id}; }}\n"),
    )
    .unwrap();
    let out = dir.join(file_name);
    run(Command::new("gcc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&out)
        .arg(format!("-Wl,-soname,{soname}"))
        .args(extra)
        .arg(&src));
    fs::remove_file(&src).unwrap();
    out
}

/// One `ldconfig -p` line: `\tNAME (FLAGS[, hwcap: X]) => PATH`.
#[derive(Debug, PartialEq)]
struct Printed {
    name: String,
    flags: String,
    hwcap: Option<String>,
    path: String,
}

struct Listing {
    count: usize,
    entries: Vec<Printed>,
    raw_entry_lines: Vec<String>,
}

fn ldconfig_print(tools: &Tools, cache: &Path) -> Listing {
    let out = run(Command::new(&tools.ldconfig).arg("-p").arg("-C").arg(cache));
    let mut lines = out.lines();
    let header = lines.next().expect("ldconfig -p printed nothing");
    let count = header
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected header {header:?}"));
    let raw_entry_lines: Vec<String> = lines
        .filter(|l| l.starts_with('\t'))
        .map(str::to_owned)
        .collect();
    let entries = raw_entry_lines
        .iter()
        .map(|line| {
            let (left, path) = line[1..].split_once(") => ").expect(line);
            let (name, desc) = left.split_once(" (").expect(line);
            let (flags, hwcap) = match desc.split_once(", hwcap: ") {
                Some((f, h)) => (f, Some(h.trim_matches('"').to_owned())),
                None => (desc, None),
            };
            Printed {
                name: name.to_owned(),
                flags: flags.to_owned(),
                hwcap,
                path: path.to_owned(),
            }
        })
        .collect();
    Listing {
        count,
        entries,
        raw_entry_lines,
    }
}

/// ldconfig's `print_entry` description for the flags we produce.
fn describe_flags(flags: i32) -> String {
    let kind = match flags & 0xff {
        0 => "libc4",
        1 => "ELF",
        2 => "libc5",
        3 => "libc6",
        _ => "unknown",
    };
    let abi = match flags & 0xff00 {
        0 => "",
        0x0300 => ",x86-64",
        0x0800 => ",x32",
        0x0a00 => ",AArch64",
        other => panic!("no description for {other:#x}"),
    };
    format!("{kind}{abi}")
}

/// The glibc-hwcaps subdirectories ldconfig scans on this architecture.
fn hwcaps_subdirs() -> &'static [&'static str] {
    if cfg!(target_arch = "x86_64") {
        &["x86-64-v2", "x86-64-v3"]
    } else {
        &[]
    }
}

/// A root with libraries in unusual directories and names that exercise the
/// digit-aware sort, plus the soname found in two directories.
fn populate_root(root: &Path) {
    let nvidia = root.join("usr/local/nvidia/lib64");
    let vendor = root.join("opt/vendor/lib");
    let custom = root.join("usr/lib/custom");
    build_lib(&nvidia, "libcuda.so.1", "libcuda.so.550.54.15", 100, &[]);
    build_lib(
        &nvidia,
        "libnvidia-ml.so.1",
        "libnvidia-ml.so.550.54.15",
        200,
        &[],
    );
    build_lib(&nvidia, "libfoo.so.1", "libfoo.so.1.2.3", 1, &[]);
    build_lib(&vendor, "libx.so.9", "libx.so.9.0.1", 9, &[]);
    build_lib(&vendor, "libx.so.10", "libx.so.10.0.0", 10, &[]);
    build_lib(&vendor, "libx.so.100", "libx.so.100", 100, &[]);
    build_lib(&vendor, "lib2d.so.1", "lib2d.so.1", 2, &[]);
    build_lib(&vendor, "liba.so.2", "liba.so.2", 3, &[]);
    build_lib(&vendor, "libdup.so.1", "libdup.so.1", 4, &[]);
    build_lib(&custom, "libdup.so.1", "libdup.so.1", 5, &[]);
    build_lib(&custom, "libz.so.1", "libz.so.1.2.13", 6, &[]);
    for sub in hwcaps_subdirs() {
        // Marking the v3 build makes ldconfig store an ISA level in `hwcap`.
        let extra: &[&str] = if *sub == "x86-64-v3" {
            &["-Wl,-z,x86-64-v3"]
        } else {
            &[]
        };
        build_lib(
            &nvidia.join("glibc-hwcaps").join(sub),
            "libfoo.so.1",
            "libfoo.so.1",
            7,
            extra,
        );
    }
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(
        root.join("etc/ld.so.conf"),
        "/usr/local/nvidia/lib64\n/opt/vendor/lib\n/usr/lib/custom\n",
    )
    .unwrap();
}

fn ldconfig_generate(tools: &Tools, root: &Path, format: &str) -> PathBuf {
    run(Command::new(&tools.ldconfig)
        .arg("-r")
        .arg(root)
        .args(["-c", format]));
    root.join("etc/ld.so.cache")
}

fn assert_matches_listing(cache: &Cache, listing: &Listing, compare_hwcaps_names: bool) {
    assert_eq!(listing.count, cache.entries.len());
    assert_eq!(listing.entries.len(), cache.entries.len());
    for (entry, printed) in cache.entries.iter().zip(&listing.entries) {
        assert_eq!(entry.name, printed.name);
        assert_eq!(entry.path.as_os_str().as_bytes(), printed.path.as_bytes());
        assert_eq!(describe_flags(entry.flags), printed.flags, "{entry:?}");
        assert_eq!(entry.hwcap != 0, printed.hwcap.is_some(), "{entry:?}");
        if compare_hwcaps_names && entry.hwcap != 0 {
            let derived = entry
                .glibc_hwcaps_subdirectory()
                .map(|s| s.to_str().unwrap());
            assert_eq!(derived, printed.hwcap.as_deref(), "{entry:?}");
        }
    }
}

#[test]
fn reads_every_format_ldconfig_writes() {
    let Some(tools) = tools("reads_every_format_ldconfig_writes") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    populate_root(root);
    let native = flags_for_elf(&fs::read(root.join("usr/lib/custom/libz.so.1.2.13")).unwrap())
        .expect("flags for a library gcc just built");

    for format in ["new", "compat", "old"] {
        let path = ldconfig_generate(&tools, root, format);
        let cache = Cache::read(&path).unwrap_or_else(|e| panic!("{format}: {e}"));
        let listing = ldconfig_print(&tools, &path);
        // In the compat layout ldconfig writes hwcaps name offsets relative
        // to the embedded header but reads them relative to the file, so it
        // prints empty names there; only the new format can be compared.
        assert_matches_listing(&cache, &listing, format == "new");

        let expected_entries = 11
            + if format == "old" {
                hwcaps_subdirs().len()
            } else {
                0
            };
        assert_eq!(
            cache.entries.iter().filter(|e| e.hwcap == 0).count(),
            expected_entries,
            "{format}"
        );
        assert!(cache.entries.iter().all(|e| e.flags == native), "{format}");
        let cuda = cache.lookup("libcuda.so.1", native).expect(format);
        assert_eq!(cuda.path, Path::new("/usr/local/nvidia/lib64/libcuda.so.1"));
        let dup = cache.lookup("libdup.so.1", native).expect(format);
        assert_eq!(
            dup.path,
            Path::new("/opt/vendor/lib/libdup.so.1"),
            "first directory wins"
        );
        if format != "old" {
            for sub in hwcaps_subdirs() {
                let e = cache
                    .entries
                    .iter()
                    .find(|e| e.glibc_hwcaps_subdirectory().is_some_and(|s| s == *sub))
                    .unwrap_or_else(|| panic!("{format}: no {sub} entry"));
                assert_eq!(e.hwcap & HWCAP_EXTENSION, HWCAP_EXTENSION);
                // Only the -z x86-64-v3 build carries an ISA level.
                assert_eq!(
                    e.hwcap >> 32 & 0x3ff != 0,
                    *sub == "x86-64-v3",
                    "{format} {e:?}"
                );
            }
        }
    }
}

#[test]
fn rewriting_an_ldconfig_cache_keeps_what_glibc_sees() {
    let Some(tools) = tools("rewriting_an_ldconfig_cache_keeps_what_glibc_sees") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    populate_root(root);
    let theirs_path = ldconfig_generate(&tools, root, "new");
    let theirs = Cache::read(&theirs_path).unwrap();

    let ours_path = root.join("ours.cache");
    fs::write(&ours_path, theirs.to_bytes()).unwrap();
    // Same entries, same order, same hwcaps names: ldconfig cannot tell.
    assert_eq!(
        ldconfig_print(&tools, &ours_path).raw_entry_lines,
        ldconfig_print(&tools, &theirs_path).raw_entry_lines
    );
    // Even the hwcaps indices and ISA bits come out identical.
    assert_eq!(Cache::read(&ours_path).unwrap(), theirs);

    // Our sort, not the input order, decides the file order.
    let mut shuffled = theirs.clone();
    shuffled.entries.reverse();
    shuffled.entries.rotate_left(3);
    let resorted = Cache::parse(&shuffled.to_bytes()).unwrap();
    let key = |c: &Cache| -> Vec<(String, i32, u64)> {
        c.entries
            .iter()
            .map(|e| (e.name.clone(), e.flags, e.hwcap))
            .collect()
    };
    assert_eq!(key(&resorted), key(&theirs));
}

#[test]
fn ldconfig_lists_a_cache_built_from_scratch() {
    let Some(tools) = tools("ldconfig_lists_a_cache_built_from_scratch") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut cache = Cache::new();
    let flags = [0x0303, 0x0003, 0x0a03];
    for i in 0..120 {
        let name = match i % 6 {
            0 => format!("libx.so.{i}"),
            1 => format!("lib{i}x.so.1"),
            2 => format!("libnvidia-{i}.so.{}", i * 37 % 11),
            3 => format!("libcuda.so.{i}"),
            4 => format!("lib-z{}.so", 200 - i),
            _ => format!("libx.so.{i}.{}", i % 4),
        };
        let path = format!("/usr/local/nvidia/lib{}/{name}", i % 3);
        cache.insert(Entry::new(name, path, flags[i % 3]));
    }
    // Stale indices, as if copied from another file: the writer must
    // re-derive them from the paths or ldconfig would print the wrong names.
    for (sub, stale_index) in [("x86-64-v3", 0), ("x86-64-v2", 5), ("x86-64-v4", 1)] {
        cache.insert(Entry {
            hwcap: HWCAP_EXTENSION | stale_index,
            ..Entry::new(
                "libcuda.so.3",
                format!("/usr/local/nvidia/lib0/glibc-hwcaps/{sub}/libcuda.so.3"),
                0x0303,
            )
        });
    }
    let path = dir.path().join("ld.so.cache");
    fs::write(&path, cache.to_bytes()).unwrap();

    let listing = ldconfig_print(&tools, &path);
    cache.sort();
    assert_matches_listing(&cache, &listing, true);
    let hwcaps: Vec<_> = listing
        .entries
        .iter()
        .filter_map(|p| p.hwcap.as_deref())
        .collect();
    assert_eq!(hwcaps, ["x86-64-v2", "x86-64-v3", "x86-64-v4"]);
}

/// Copies the libraries and interpreter `ldd` reports for `program` into
/// `root` at the same paths, returning those paths.
fn install_runtime(program: &Path, root: &Path) -> Vec<PathBuf> {
    let mut copied = Vec::new();
    for line in run(Command::new("ldd").arg(program)).lines() {
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        let Some(path) = path.filter(|p| p.starts_with('/')) else {
            continue;
        };
        let dest = root.join(path.trim_start_matches('/'));
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::copy(path, &dest).unwrap();
        copied.push(PathBuf::from(path));
    }
    copied
}

const DLOPEN_PROGRAM: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        void *h = dlopen(argv[i], RTLD_NOW | RTLD_LOCAL);
        int (*id)(void) = h ? (int (*)(void)) dlsym(h, "ldcache_test_id") : NULL;
        Dl_info info;
        if (id && dladdr((void *) id, &info))
            printf("%s %d %s\n", argv[i], id(), info.dli_fname);
        else
            printf("%s MISSING\n", argv[i]);
    }
    return 0;
}
"#;

#[test]
fn glibc_loader_resolves_sonames_through_a_rust_written_cache() {
    let test = "glibc_loader_resolves_sonames_through_a_rust_written_cache";
    let Some(_tools) = tools(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();

    let src = root.join("prog.c");
    fs::write(&src, DLOPEN_PROGRAM).unwrap();
    let program = root.join("prog");
    run(Command::new("gcc").arg("-o").arg(&program).arg(&src));
    let runtime = install_runtime(&program, root);

    // Nothing in this directory is on the loader's default search path.
    let libdir = Path::new("/opt/unusual/nvidia/lib64");
    let host_libdir = root.join(libdir.strip_prefix("/").unwrap());
    let wanted: &[(&str, i32)] = &[
        ("libfoo.so.1", 1),
        ("libx.so.9", 9),
        ("libx.so.10", 10),
        ("lib2d.so.1", 2),
        ("libcuda.so.1", 100),
        ("libnvidia-ml.so.1", 200),
    ];
    let native = flags_for_elf(&fs::read(&program).unwrap()).expect("flags of a gcc-built program");
    let mut cache = Cache::new();
    // An "image" cache: the real libc plus plenty of unrelated entries, so
    // the loader's binary search has to take several steps.
    for path in &runtime {
        let name = path.file_name().unwrap().to_str().unwrap();
        cache.insert(Entry::new(name, path, native));
    }
    for i in 0..60 {
        let name = match i % 4 {
            0 => format!("liba{i}.so.{i}"),
            1 => format!("libx.so.{}", 11 + i),
            2 => format!("libnvidia-{i}.so.1"),
            _ => format!("libzz{i}.so.{}", i % 7),
        };
        cache.insert(Entry::new(&name, format!("/nonexistent/{name}"), native));
    }
    // The image's stale copy must lose to the injected one.
    cache.insert(Entry::new(
        "libcuda.so.1",
        "/nonexistent/libcuda.so.1",
        native,
    ));
    for &(soname, id) in wanted {
        let file = build_lib(&host_libdir, soname, &format!("{soname}.0.0"), id, &[]);
        cache.insert(Entry::new(
            soname,
            libdir.join(file.file_name().unwrap()),
            native,
        ));
    }
    let mut expected_hw = None;
    if cfg!(target_arch = "x86_64") {
        build_lib(&host_libdir, "libhw.so.1", "libhw.so.1", 1000, &[]);
        let v2 = host_libdir.join("glibc-hwcaps/x86-64-v2");
        build_lib(&v2, "libhw.so.1", "libhw.so.1", 1002, &[]);
        cache.insert(Entry::new("libhw.so.1", libdir.join("libhw.so.1"), native));
        cache.insert(Entry {
            // A stale index: the loader only honours the rebuilt one.
            hwcap: HWCAP_EXTENSION | 7,
            ..Entry::new(
                "libhw.so.1",
                libdir.join("glibc-hwcaps/x86-64-v2/libhw.so.1"),
                native,
            )
        });
        // Which one wins depends on the CPU; ld.so says what it supports.
        let interp = runtime
            .iter()
            .find(|p| p.to_string_lossy().contains("ld-linux"))
            .unwrap();
        let help = run(Command::new(interp).arg("--help"));
        expected_hw = Some(if help.contains("x86-64-v2 (supported, searched)") {
            (1002, libdir.join("glibc-hwcaps/x86-64-v2/libhw.so.1"))
        } else {
            (1000, libdir.join("libhw.so.1"))
        });
    }

    let names: Vec<&str> = wanted
        .iter()
        .map(|w| w.0)
        .chain(expected_hw.as_ref().map(|_| "libhw.so.1"))
        .collect();
    let cache_path = root.join("etc/ld.so.cache");
    fs::create_dir_all(cache_path.parent().unwrap()).unwrap();
    let Some(chroot) = ["/usr/sbin/chroot", "/sbin/chroot", "/usr/bin/chroot"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
    else {
        eprintln!("SKIPPED {test}: chroot is not available");
        return;
    };
    let run_in_root = |names: &[&str]| -> Option<Vec<String>> {
        // env_clear also hides PATH, hence the absolute chroot path.
        let out = Command::new(&chroot)
            .arg(root)
            .arg("/prog")
            .args(names)
            .env_clear()
            .output()
            .unwrap();
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            if stderr.contains("Operation not permitted") {
                return None;
            }
            panic!("chroot run failed: {}\n{stderr}", out.status);
        }
        Some(
            String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect(),
        )
    };

    // Control: without a cache none of them can be found.
    let Some(lines) = run_in_root(&names) else {
        eprintln!("SKIPPED {test}: chroot is not permitted (needs root)");
        return;
    };
    for (line, name) in lines.iter().zip(&names) {
        assert_eq!(line, &format!("{name} MISSING"));
    }

    let bytes = cache.to_bytes();
    fs::write(&cache_path, &bytes).unwrap();
    let lines = run_in_root(&names).unwrap();
    let mut expected: Vec<String> = wanted
        .iter()
        .map(|&(soname, id)| {
            format!(
                "{soname} {id} {}",
                libdir.join(format!("{soname}.0.0")).display()
            )
        })
        .collect();
    if let Some((id, path)) = &expected_hw {
        expected.push(format!("libhw.so.1 {id} {}", path.display()));
    }
    assert_eq!(lines, expected);

    // Control: the same entries in the wrong order defeat the binary search,
    // so the order we write is what makes the lookups above succeed.
    let nlibs = u32::from_ne_bytes(bytes[20..24].try_into().unwrap()) as usize;
    let mut misordered = bytes.clone();
    let records: Vec<[u8; 24]> = (0..nlibs)
        .map(|i| bytes[48 + 24 * i..48 + 24 * (i + 1)].try_into().unwrap())
        .rev()
        .collect();
    for (i, record) in records.iter().enumerate() {
        misordered[48 + 24 * i..48 + 24 * (i + 1)].copy_from_slice(record);
    }
    fs::write(&cache_path, &misordered).unwrap();
    let lines = run_in_root(&names).unwrap();
    eprintln!("with the entries reversed: {lines:?}");
    assert!(
        lines.iter().any(|l| l.ends_with("MISSING")),
        "a reversed cache still resolved everything: {lines:?}"
    );
}
