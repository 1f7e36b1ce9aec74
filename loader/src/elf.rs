//! Is this file a *complete* ELF shared object? Checked before `dlopen`.
//!
//! The dynamic loader trusts the file: it maps every loadable segment at the
//! offset the program headers give, and a segment that runs past the end of
//! the file is mapped anyway. The first touch of such a page kills the
//! process with SIGBUS, and there is nothing to catch. A half-copied plugin
//! (a `cp` caught mid-way, a download cut short) is exactly that. So before
//! a library is opened we check that everything its headers declare lies
//! inside the file: the ELF header, the program header table, every segment
//! with file content, the section header table and every section with file
//! content. The section headers usually sit at the very end of the file, so
//! a copy cut anywhere, even after the last loadable segment (which the
//! loader itself would accept and serve), is caught.
//!
//! Parsing uses the `object` crate's ELF reader (features `read_core` and
//! `elf` only) over a [`ReadCache`], so only the headers are read, never the
//! whole file (debug builds of plugins are tens of MiB).

use std::{fs::File, io};

use object::{
    elf,
    read::elf::{FileHeader, ProgramHeader, SectionHeader},
    Endianness, ReadCache, ReadRef,
};

/// Why a file is not a complete ELF shared object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ElfProblem {
    /// Something the headers declare lies beyond the end of the file.
    #[error("{what} ends at byte {end} but the file has {len} bytes")]
    Truncated {
        /// What is cut off: "segment 3 (PT_LOAD)", "the section header table"...
        what: String,
        /// Where it would end.
        end: u64,
        /// The file's size.
        len: u64,
    },
    /// Not an ELF shared object at all, or a malformed one.
    #[error("{0}")]
    NotShared(String),
    /// The file could not be read.
    #[error("cannot read it: {0}")]
    Io(String),
}

const MAGIC: [u8; 4] = [0x7f, b'E', b'L', b'F'];
/// Bytes of `e_ident`, the part of the header every class shares.
const IDENT_LEN: u64 = 16;

/// Checks that `file` (its size is read from it) is a complete ELF shared
/// object.
pub(crate) fn check_complete(file: &File) -> Result<(), ElfProblem> {
    let len = file
        .metadata()
        .map_err(|e| ElfProblem::Io(e.to_string()))?
        .len();
    let data = ReadCache::new(file);
    let ident = data
        .read_bytes_at(0, len.min(IDENT_LEN))
        .map_err(|_| ElfProblem::Io("cannot read the ELF header".into()))?;
    let magic_len = ident.len().min(MAGIC.len());
    if ident[..magic_len] != MAGIC[..magic_len] {
        return Err(ElfProblem::NotShared(
            "not an ELF file (it does not start with the ELF magic bytes)".into(),
        ));
    }
    if len < IDENT_LEN {
        return Err(truncated("the ELF header", IDENT_LEN, len));
    }
    // e_ident[EI_CLASS]: 1 for 32-bit, 2 for 64-bit.
    match elf::FileClass(ident[4]) {
        elf::ELFCLASS64 => check::<elf::FileHeader64<Endianness>>(&data, len),
        elf::ELFCLASS32 => check::<elf::FileHeader32<Endianness>>(&data, len),
        class => Err(ElfProblem::NotShared(format!(
            "unknown ELF class {} (neither 32- nor 64-bit)",
            class.0
        ))),
    }
}

fn check<Elf: FileHeader<Endian = Endianness>>(
    data: &ReadCache<&File>,
    len: u64,
) -> Result<(), ElfProblem> {
    let header_len = std::mem::size_of::<Elf>() as u64;
    if len < header_len {
        return Err(truncated("the ELF header", header_len, len));
    }
    let malformed = |e: object::Error| ElfProblem::NotShared(format!("malformed ELF file: {e}"));
    let header = Elf::parse(data).map_err(malformed)?;
    let endian = header.endian().map_err(malformed)?;
    let kind = header.e_type(endian);
    if kind != elf::ET_DYN {
        return Err(ElfProblem::NotShared(format!(
            "an ELF file of type {} ({}), not a shared object",
            kind.0,
            match kind {
                elf::ET_REL => "an object file",
                elf::ET_EXEC => "an executable",
                elf::ET_CORE => "a core dump",
                _ => "unknown",
            }
        )));
    }

    // Program header table, then every segment with file content.
    let phoff: u64 = header.e_phoff(endian).into();
    if phoff == 0 {
        return Err(ElfProblem::NotShared(
            "no program headers: nothing a loader could map".into(),
        ));
    }
    let phnum = header.phnum(endian, data).map_err(|_| {
        // Only an extended count lives elsewhere (in section 0).
        ElfProblem::NotShared("malformed ELF file: unreadable program header count".into())
    })?;
    let table_end = span_end(phoff, u64::from(phnum), header.e_phentsize(endian).into())?;
    if table_end > len {
        return Err(truncated("the program header table", table_end, len));
    }
    let segments = header.program_headers(endian, data).map_err(malformed)?;
    for (index, segment) in segments.iter().enumerate() {
        let offset: u64 = segment.p_offset(endian).into();
        let size: u64 = segment.p_filesz(endian).into();
        if size == 0 {
            continue;
        }
        let end = span_end(offset, 1, size)?;
        if end > len {
            let kind = segment.p_type(endian);
            let what = if kind == elf::PT_LOAD {
                format!("segment {index} (PT_LOAD)")
            } else {
                format!("segment {index} (type {:#x})", kind.0)
            };
            return Err(truncated(&what, end, len));
        }
    }

    // Section header table (absent only in files stripped of it on
    // purpose), then every section with file content.
    let shoff: u64 = header.e_shoff(endian).into();
    if shoff == 0 {
        return Ok(());
    }
    let entry_len = u64::from(header.e_shentsize(endian));
    let shnum = match header.e_shnum(endian) {
        0 => {
            // An extended count lives in the first entry: it must be there.
            let first_end = span_end(shoff, 1, entry_len)?;
            if first_end > len {
                return Err(truncated("the section header table", first_end, len));
            }
            header.shnum(endian, data).map_err(malformed)?
        }
        n => u32::from(n),
    };
    let table_end = span_end(shoff, u64::from(shnum), entry_len)?;
    if table_end > len {
        return Err(truncated("the section header table", table_end, len));
    }
    let sections = header.section_headers(endian, data).map_err(malformed)?;
    for (index, section) in sections.iter().enumerate() {
        let Some((offset, size)) = section.file_range(endian) else {
            continue; // SHT_NOBITS (.bss): no file content
        };
        if section.sh_type(endian) == elf::SHT_NULL || size == 0 {
            continue;
        }
        let end = span_end(offset, 1, size)?;
        if end > len {
            return Err(truncated(&format!("section {index}"), end, len));
        }
    }
    Ok(())
}

/// The end of `count` entries of `size` bytes at `offset`; a sum that
/// overflows is a malformed file, not a short one.
fn span_end(offset: u64, count: u64, size: u64) -> Result<u64, ElfProblem> {
    count
        .checked_mul(size)
        .and_then(|n| n.checked_add(offset))
        .ok_or_else(|| {
            ElfProblem::NotShared("malformed ELF file: a header points past 2^64".into())
        })
}

fn truncated(what: &str, end: u64, len: u64) -> ElfProblem {
    ElfProblem::Truncated {
        what: what.to_owned(),
        end,
        len,
    }
}

impl From<io::Error> for ElfProblem {
    fn from(e: io::Error) -> Self {
        Self::Io(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// A small but complete ELF64 little-endian shared object, laid out as
    /// linkers do: header, program headers, two loadable segments, section
    /// contents, and the section header table last.
    struct Crafted {
        bytes: Vec<u8>,
        /// Where each segment's content ends.
        segment_ends: [u64; 2],
        /// Where the section header table starts.
        shoff: u64,
    }

    const PH_LEN: usize = 56;
    const SH_LEN: usize = 64;

    fn crafted() -> Crafted {
        let phoff = 64u64;
        let seg0 = (0u64, 0x200u64); // the first segment covers the headers, as usual
        let seg1 = (0x200u64, 0x300u64);
        let shstrtab = b"\0.text\0.shstrtab\0";
        let shstr_off = seg1.0 + seg1.1;
        let shoff = (shstr_off + shstrtab.len() as u64).next_multiple_of(8);

        let mut b = vec![0u8; shoff as usize];
        // e_ident: magic, 64-bit, little-endian, version 1.
        b[..8].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
        let put16 =
            |b: &mut Vec<u8>, at: usize, v: u16| b[at..at + 2].copy_from_slice(&v.to_le_bytes());
        let put32 =
            |b: &mut Vec<u8>, at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        let put64 =
            |b: &mut Vec<u8>, at: usize, v: u64| b[at..at + 8].copy_from_slice(&v.to_le_bytes());
        put16(&mut b, 16, 3); // e_type = ET_DYN
        put16(&mut b, 18, 62); // e_machine = x86-64
        put32(&mut b, 20, 1); // e_version
        put64(&mut b, 32, phoff);
        put64(&mut b, 40, shoff);
        put16(&mut b, 52, 64); // e_ehsize
        put16(&mut b, 54, PH_LEN as u16);
        put16(&mut b, 56, 2); // e_phnum
        put16(&mut b, 58, SH_LEN as u16);
        put16(&mut b, 60, 3); // e_shnum
        put16(&mut b, 62, 2); // e_shstrndx
        for (i, (offset, size)) in [seg0, seg1].into_iter().enumerate() {
            let at = phoff as usize + i * PH_LEN;
            put32(&mut b, at, 1); // PT_LOAD
            put32(&mut b, at + 4, 5); // R+X
            put64(&mut b, at + 8, offset);
            put64(&mut b, at + 16, offset); // vaddr
            put64(&mut b, at + 24, offset); // paddr
            put64(&mut b, at + 32, size); // filesz
            put64(&mut b, at + 40, size); // memsz
            put64(&mut b, at + 48, 0x1000);
        }
        b[shstr_off as usize..][..shstrtab.len()].copy_from_slice(shstrtab);
        // Section headers: null, .text (in segment 1), .shstrtab.
        let mut table = vec![0u8; 3 * SH_LEN];
        let section = |t: &mut Vec<u8>, i: usize, name: u32, kind: u32, offset: u64, size: u64| {
            let at = i * SH_LEN;
            t[at..at + 4].copy_from_slice(&name.to_le_bytes());
            t[at + 4..at + 8].copy_from_slice(&kind.to_le_bytes());
            t[at + 24..at + 32].copy_from_slice(&offset.to_le_bytes());
            t[at + 32..at + 40].copy_from_slice(&size.to_le_bytes());
        };
        section(&mut table, 1, 1, 1, seg1.0, seg1.1); // PROGBITS
        section(&mut table, 2, 7, 3, shstr_off, shstrtab.len() as u64); // STRTAB
        b.extend_from_slice(&table);
        Crafted {
            bytes: b,
            segment_ends: [seg0.0 + seg0.1, seg1.0 + seg1.1],
            shoff,
        }
    }

    fn check_bytes(bytes: &[u8]) -> Result<(), ElfProblem> {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        check_complete(&file)
    }

    fn truncated_at(len: usize) -> ElfProblem {
        check_bytes(&crafted().bytes[..len]).unwrap_err()
    }

    #[test]
    fn a_complete_shared_object_passes() {
        check_bytes(&crafted().bytes).unwrap();
        // Trailing bytes beyond what the headers declare are harmless.
        let mut longer = crafted().bytes;
        longer.extend_from_slice(&[0; 100]);
        check_bytes(&longer).unwrap();
    }

    #[test]
    fn a_section_pointing_past_the_end_is_refused() {
        let mut elf = crafted();
        let size_at = elf.shoff as usize + 2 * SH_LEN + 32; // .shstrtab's sh_size
        elf.bytes[size_at..size_at + 8].copy_from_slice(&0x10_000u64.to_le_bytes());
        let len = elf.bytes.len() as u64;
        assert_eq!(
            check_bytes(&elf.bytes).unwrap_err(),
            truncated("section 2", elf.segment_ends[1] + 0x10_000, len)
        );
    }

    #[test]
    fn a_real_linker_output_passes() {
        // This test executable: a PIE (ET_DYN) as rustc links it by default.
        let exe = File::open(std::env::current_exe().unwrap()).unwrap();
        match check_complete(&exe) {
            Ok(()) => {}
            Err(ElfProblem::NotShared(why)) if why.contains("executable") => {} // not built as PIE
            Err(other) => panic!("{other}"),
        }
    }

    #[test]
    fn every_cut_is_refused_with_what_is_missing() {
        let elf = crafted();
        let full = elf.bytes.len() as u64;
        // Empty, and inside the ELF header.
        for len in [0, 3, 10, 40] {
            assert_eq!(
                truncated_at(len),
                truncated("the ELF header", if len < 16 { 16 } else { 64 }, len as u64),
                "cut at {len}"
            );
        }
        // Inside the program header table.
        assert_eq!(
            truncated_at(100),
            truncated("the program header table", 64 + 2 * PH_LEN as u64, 100)
        );
        // Inside the first, then the second loadable segment.
        assert_eq!(
            truncated_at(300),
            truncated("segment 0 (PT_LOAD)", elf.segment_ends[0], 300)
        );
        assert_eq!(
            truncated_at(0x300),
            truncated("segment 1 (PT_LOAD)", elf.segment_ends[1], 0x300)
        );
        // After the last loadable segment (what a dynamic loader accepts),
        // and at the start of the section header table.
        for len in [elf.segment_ends[1] + 4, elf.shoff] {
            assert_eq!(
                truncated_at(len as usize),
                truncated("the section header table", full, len),
                "cut at {len}"
            );
        }
        // One byte short of complete.
        assert_eq!(
            truncated_at(full as usize - 1),
            truncated("the section header table", full, full - 1)
        );
    }

    #[test]
    fn the_message_names_the_part_and_both_sizes() {
        assert_eq!(
            truncated_at(0x300).to_string(),
            "segment 1 (PT_LOAD) ends at byte 1280 but the file has 768 bytes"
        );
    }

    #[test]
    fn other_files_are_not_shared_objects() {
        let not_elf = check_bytes(b"this is not an ELF file").unwrap_err();
        assert!(
            matches!(&not_elf, ElfProblem::NotShared(w) if w.contains("ELF magic")),
            "{not_elf}"
        );
        let mut executable = crafted().bytes;
        executable[16] = 2; // ET_EXEC
        let err = check_bytes(&executable).unwrap_err();
        assert!(err.to_string().contains("an executable"), "{err}");
        let mut class = crafted().bytes;
        class[4] = 9;
        let err = check_bytes(&class).unwrap_err();
        assert!(err.to_string().contains("unknown ELF class 9"), "{err}");
        let mut no_phdrs = crafted().bytes;
        no_phdrs[32..40].copy_from_slice(&0u64.to_le_bytes());
        let err = check_bytes(&no_phdrs).unwrap_err();
        assert!(err.to_string().contains("no program headers"), "{err}");
        let mut overflow = crafted().bytes;
        let at = 64 + 8; // segment 0's p_offset
        overflow[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        let err = check_bytes(&overflow).unwrap_err();
        assert!(err.to_string().contains("past 2^64"), "{err}");
    }
}
