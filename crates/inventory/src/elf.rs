//! Just enough ELF64 to read a shared library's machine and `DT_SONAME` with a handful of small
//! positioned reads: the real libcuda is ~100 MB and must not be read whole.

use std::io;
use std::path::Path;

use crate::fsx::Reader;

/// `e_machine` of x86-64.
pub(crate) const EM_X86_64: u16 = 62;

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const DT_NULL: u64 = 0;
const DT_STRTAB: u64 = 5;
const DT_SONAME: u64 = 14;
/// Real libraries have a few dozen dynamic entries; a bound keeps a corrupt file from costing more.
const MAX_DYNAMIC_BYTES: u64 = 64 * 1024;
const MAX_PHNUM: u16 = 256;
/// Linkers write 56-byte program headers; a little room for a future, larger one.
const MAX_PHENTSIZE: u16 = 128;
const MAX_SONAME: usize = 256;

/// What discovery needs to know of a library file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ElfInfo {
    pub machine: u16,
    pub soname: Option<String>,
}

/// The first read: ELF header and program headers are at its start in every linker's output, and
/// a small library's dynamic section and strings too, so most files cost one read.
const HEAD: usize = 4096;

/// The file's first [`HEAD`] bytes, and positioned reads for what lies beyond them.
struct Image {
    f: Reader,
    head: Vec<u8>,
    /// The file's size: no read is larger, so no header field can make us allocate more.
    size: u64,
}

impl Image {
    fn get(&self, offset: u64, len: usize) -> Option<Vec<u8>> {
        let end = offset.checked_add(len as u64)?;
        if end <= self.head.len() as u64 {
            return Some(self.head[offset as usize..end as usize].to_vec());
        }
        if end > self.size {
            return None;
        }
        let mut buf = vec![0u8; len];
        self.f.read_at(&mut buf, offset).ok()?;
        Some(buf)
    }
}

/// Reads the machine and soname of a little-endian ELF64 file. `Ok(None)`: not such a file.
pub(crate) fn read(path: &Path) -> io::Result<Option<ElfInfo>> {
    read_from(Reader::open(path)?)
}

/// [`read`] of a file already open (one found inside a container's rootfs, say).
pub(crate) fn read_file(file: std::fs::File) -> io::Result<Option<ElfInfo>> {
    read_from(Reader::from_file(file))
}

fn read_from(f: Reader) -> io::Result<Option<ElfInfo>> {
    let size = f.size()?;
    let mut head = vec![0u8; HEAD];
    let got = f.read_up_to(&mut head, 0);
    head.truncate(got);
    let img = Image { f, head, size };
    let Some(eh) = img.get(0, 64) else {
        return Ok(None);
    };
    // 64-bit, little-endian, version 1.
    if &eh[..4] != b"\x7fELF" || eh[4] != 2 || eh[5] != 1 || eh[6] != 1 {
        return Ok(None);
    }
    let machine = u16le(&eh, 18);
    let phoff = u64le(&eh, 32);
    let phentsize = u16le(&eh, 54);
    let phnum = u16le(&eh, 56);
    let info = |soname| Ok(Some(ElfInfo { machine, soname }));
    if !(56..=MAX_PHENTSIZE).contains(&phentsize) || phnum == 0 || phnum > MAX_PHNUM {
        return info(None);
    }

    let Some(ph) = img.get(phoff, usize::from(phentsize) * usize::from(phnum)) else {
        return info(None);
    };
    let mut loads = Vec::new();
    let mut dynamic = None;
    for h in ph.chunks_exact(usize::from(phentsize)) {
        let (offset, vaddr, filesz) = (u64le(h, 8), u64le(h, 16), u64le(h, 32));
        match u32le(h, 0) {
            PT_LOAD => loads.push((vaddr, offset, filesz)),
            PT_DYNAMIC => dynamic = Some((offset, filesz.min(MAX_DYNAMIC_BYTES))),
            _ => {}
        }
    }
    let Some((dyn_off, dyn_size)) = dynamic else {
        return info(None);
    };

    let Some(dynbuf) = img.get(dyn_off, dyn_size as usize) else {
        return info(None);
    };
    let (mut strtab, mut soname) = (None, None);
    for d in dynbuf.chunks_exact(16) {
        match u64le(d, 0) {
            DT_NULL => break,
            DT_STRTAB => strtab = Some(u64le(d, 8)),
            DT_SONAME => soname = Some(u64le(d, 8)),
            _ => {}
        }
    }
    let (Some(strtab), Some(soname)) = (strtab, soname) else {
        return info(None);
    };
    // DT_STRTAB is an address; the segment that maps it says where it lies in the file.
    let Some(str_off) = loads
        .iter()
        .find(|(vaddr, _, filesz)| strtab >= *vaddr && strtab - vaddr < *filesz)
        .map(|(vaddr, offset, _)| strtab - vaddr + offset)
    else {
        return info(None);
    };

    let at = str_off.saturating_add(soname);
    // The string may sit near the end of the file: take what there is.
    let mut name = match img.get(at, MAX_SONAME) {
        Some(n) => n,
        None => {
            let mut n = vec![0u8; MAX_SONAME];
            let got = img.f.read_up_to(&mut n, at);
            n.truncate(got);
            n
        }
    };
    let Some(end) = name.iter().position(|&b| b == 0) else {
        return info(None);
    };
    name.truncate(end);
    info(String::from_utf8(name).ok())
}

fn u16le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64le(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_elf() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("x");
        std::fs::write(&p, b"hello").unwrap();
        assert_eq!(read(&p).unwrap(), None);
        std::fs::write(&p, [0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0]).unwrap();
        assert_eq!(read(&p).unwrap(), None);
        assert!(read(&t.path().join("missing")).is_err());
    }

    /// A minimal ELF64 shared object: header, one PT_LOAD covering the file, one PT_DYNAMIC
    /// with DT_STRTAB and DT_SONAME, and the string "libz.so.1".
    fn tiny_elf() -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
        b[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        b[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        b[56..58].copy_from_slice(&2u16.to_le_bytes()); // e_phnum
        let dyn_at = 64 + 2 * 56;
        let str_at = dyn_at + 3 * 16;
        let end = str_at + 16;
        let ph = |kind: u32, offset: u64, size: u64| {
            let mut h = vec![0u8; 56];
            h[..4].copy_from_slice(&kind.to_le_bytes());
            h[8..16].copy_from_slice(&offset.to_le_bytes());
            h[16..24].copy_from_slice(&offset.to_le_bytes()); // vaddr = offset
            h[32..40].copy_from_slice(&size.to_le_bytes());
            h
        };
        b.extend(ph(PT_LOAD, 0, end as u64));
        b.extend(ph(PT_DYNAMIC, dyn_at as u64, 48));
        for (tag, val) in [(DT_STRTAB, str_at as u64), (DT_SONAME, 1), (DT_NULL, 0)] {
            b.extend(tag.to_le_bytes());
            b.extend(val.to_le_bytes());
        }
        b.extend(b"\0libz.so.1\0\0\0\0\0\0");
        b
    }

    #[test]
    fn reads_a_soname() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("libz.so");
        std::fs::write(&p, tiny_elf()).unwrap();
        let info = read(&p).unwrap().unwrap();
        assert_eq!(info.soname.as_deref(), Some("libz.so.1"));
    }

    #[test]
    fn hostile_headers_cost_at_most_the_file() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("x");
        let good = tiny_elf();
        // header fields that would have us read (and allocate) far beyond the file
        let cases: [(usize, &[u8]); 6] = [
            (54, &u16::MAX.to_le_bytes()),                // e_phentsize 65535
            (32, &(u64::MAX - 8).to_le_bytes()),          // e_phoff near the end of u64
            (64 + 56 + 8, &(u64::MAX / 2).to_le_bytes()), // PT_DYNAMIC offset
            (64 + 56 + 32, &u64::MAX.to_le_bytes()),      // PT_DYNAMIC size
            (64 + 2 * 56 + 24, &u64::MAX.to_le_bytes()),  // DT_SONAME offset
            (64 + 32, &0u64.to_le_bytes()),               // PT_LOAD maps nothing
        ];
        for (at, bytes) in cases {
            let mut elf = good.clone();
            elf[at..at + bytes.len()].copy_from_slice(bytes);
            std::fs::write(&p, &elf).unwrap();
            let info = read(&p).unwrap().unwrap();
            assert_eq!(info.soname, None, "field at {at}");
        }
        // every truncation, and random bytes after a valid ELF header, never panic
        for len in 0..good.len() {
            std::fs::write(&p, &good[..len]).unwrap();
            let _ = read(&p).unwrap();
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            let mut elf = good.clone();
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let at = 16 + (x % (elf.len() as u64 - 16)) as usize;
                elf[at] = (x >> 32) as u8;
            }
            std::fs::write(&p, &elf).unwrap();
            let _ = read(&p).unwrap();
        }
    }

    #[test]
    fn this_test_binary_is_an_x86_64_executable_without_soname() {
        let exe = std::env::current_exe().unwrap();
        let info = read(&exe).unwrap().unwrap();
        if cfg!(target_arch = "x86_64") {
            assert_eq!(info.machine, EM_X86_64);
        }
        assert_eq!(info.soname, None);
    }
}
