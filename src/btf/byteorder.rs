//! Big-endian (`bpfeb`) BTF and BTF.ext. Every field after the 4-byte
//! magic/version/flags prefix of both formats is a 32-bit word (type records,
//! member and enum entries, func/line info and CO-RE records alike), and
//! strings are bytes. So converting between byte orders is: swap the magic,
//! swap every word of the header and of the word-structured sections, leave
//! the strings alone. We parse the little-endian form (as libbpf converts to
//! native order on open) and convert back for the loader of a big-endian
//! target (as libbpf's `btf__raw_data` does for a swapped object).

use crate::error::{Error, Result};

/// The magic as it reads in a big-endian blob.
pub const MAGIC_BE: [u8; 2] = [0xeb, 0x9f];

fn swap_words(buf: &mut [u8]) {
    for w in buf.chunks_exact_mut(4) {
        w.reverse();
    }
}

fn word(buf: &[u8], off: usize, big: bool) -> usize {
    let b = [buf[off], buf[off + 1], buf[off + 2], buf[off + 3]];
    (if big {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }) as usize
}

/// `.BTF` from one byte order to the other; `from_big` says which order
/// `data` is in. Bounds are checked against the source's own header.
pub fn swap_btf(data: &[u8], from_big: bool) -> Result<Vec<u8>> {
    let err = |msg: &str, off: u64| Error::btf(msg.to_string()).in_section(".BTF").at(off);
    if data.len() < 24 {
        return Err(err("BTF header is truncated", 0));
    }
    let hdr_len = word(data, 4, from_big);
    if hdr_len < 24 || hdr_len > data.len() || !hdr_len.is_multiple_of(4) {
        return Err(err(&format!("bad BTF header length {hdr_len}"), 4));
    }
    let (type_off, type_len) = (word(data, 8, from_big), word(data, 12, from_big));
    let start = hdr_len.checked_add(type_off).filter(|s| s.is_multiple_of(4));
    let end = start.and_then(|s| s.checked_add(type_len)).filter(|&e| e <= data.len());
    let (Some(start), Some(end)) = (start, end) else {
        return Err(err("BTF type section is out of bounds", 8));
    };
    let mut out = data.to_vec();
    out.swap(0, 1);
    swap_words(&mut out[4..hdr_len]);
    swap_words(&mut out[start..end]);
    Ok(out)
}

/// `.BTF.ext` from one byte order to the other (everything after the prefix
/// is words).
pub fn swap_btf_ext(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    if out.len() >= 4 {
        out.swap(0, 1);
        swap_words(&mut out[4..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        // header (24 bytes) + one INT type (16 bytes) + strings "\0int\0"
        let mut le = vec![
            0x9f, 0xeb, 1, 0, 24, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 16, 0, 0, 0, 5, 0, 0, 0,
        ];
        le.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 1, 4, 0, 0, 0, 32, 0, 0, 0]);
        le.extend_from_slice(b"\0int\0");
        let be = swap_btf(&le, false).unwrap();
        assert_eq!(&be[..8], &[0xeb, 0x9f, 1, 0, 0, 0, 0, 24]);
        assert_eq!(&be[24..28], &[0, 0, 0, 1]);
        assert_eq!(&be[40..], b"\0int\0");
        assert_eq!(swap_btf(&be, true).unwrap(), le);
        assert_eq!(swap_btf_ext(&swap_btf_ext(&le)), le);
    }
}
