//! `.BTF.ext`: per-section func_info, line_info and CO-RE relocation records.
//! Records stay as raw bytes (the loader embeds them verbatim apart from the
//! instruction offset); we only index where each section's records live.

use super::read_u32;
use crate::error::{Error, Result};

/// One `.BTF.ext` sub-section: the records that belong to one ELF section.
#[derive(Debug, Clone)]
pub struct ExtSection {
    /// Offset of the ELF section name in the BTF string table.
    pub sec_name_off: u32,
    /// Byte offset of the first record in `BtfExt::raw`.
    pub data_off: usize,
    pub count: usize,
}

#[derive(Debug, Clone, Default)]
pub struct ExtInfo {
    pub rec_size: usize,
    pub sections: Vec<ExtSection>,
}

impl ExtInfo {
    pub fn is_empty(&self) -> bool {
        self.sections.is_empty()
    }
}

#[derive(Debug, Clone)]
pub struct BtfExt {
    raw: Vec<u8>,
    pub func_info: ExtInfo,
    pub line_info: ExtInfo,
    pub core_relo: ExtInfo,
}

const FUNC_INFO_MIN: usize = 8;
const LINE_INFO_MIN: usize = 16;
const CORE_RELO_MIN: usize = 16;

impl BtfExt {
    pub fn parse(data: &[u8]) -> Result<BtfExt> {
        let err = |msg: String, off: usize| Error::btf(msg).in_section(".BTF.ext").at(off as u64);
        if data.len() < 8 {
            return Err(err("BTF.ext header is truncated".into(), 0));
        }
        let magic = u16::from_le_bytes([data[0], data[1]]);
        if magic != super::BTF_MAGIC {
            return Err(err(format!("bad BTF.ext magic {magic:#06x}"), 0));
        }
        if data[2] != 1 {
            return Err(err(format!("unsupported BTF.ext version {}", data[2]), 2));
        }
        if data[3] != 0 {
            return Err(err(format!("unsupported BTF.ext flags {:#x}", data[3]), 3));
        }
        let hdr_len = read_u32(data, 4).unwrap_or(0) as usize;
        if hdr_len > data.len() || hdr_len < 24 {
            return Err(err(format!("bad BTF.ext header length {hdr_len}"), 4));
        }
        let field = |o: usize| read_u32(data, o).unwrap_or(0) as usize;
        let parse_info = |off_field: usize, min: usize, what: &str| -> Result<ExtInfo> {
            let (off, len) = (field(off_field), field(off_field + 4));
            if len == 0 {
                return Ok(ExtInfo::default());
            }
            let start = hdr_len
                .checked_add(off)
                .filter(|s| s % 4 == 0 && s.checked_add(len).is_some_and(|e| e <= data.len()))
                .ok_or_else(|| err(format!("{what} section is out of bounds"), off_field))?;
            let end = start + len;
            if len < 4 {
                return Err(err(format!("{what} section is truncated"), start));
            }
            let rec_size = field(start);
            if rec_size < min || rec_size % 4 != 0 {
                return Err(err(format!("{what} record size {rec_size} is invalid"), start));
            }
            let mut sections = Vec::new();
            let mut pos = start + 4;
            while pos < end {
                if pos + 8 > end {
                    return Err(err(format!("{what} section header is truncated"), pos));
                }
                let sec_name_off = field(pos) as u32;
                let count = field(pos + 4);
                if count == 0 {
                    return Err(err(format!("{what} section has no records"), pos));
                }
                let bytes = count
                    .checked_mul(rec_size)
                    .filter(|b| pos + 8 + b <= end)
                    .ok_or_else(|| err(format!("{what} records run past the section"), pos))?;
                sections.push(ExtSection {
                    sec_name_off,
                    data_off: pos + 8,
                    count,
                });
                pos += 8 + bytes;
            }
            Ok(ExtInfo { rec_size, sections })
        };
        let func_info = parse_info(8, FUNC_INFO_MIN, "func_info")?;
        let line_info = parse_info(16, LINE_INFO_MIN, "line_info")?;
        let core_relo = if hdr_len >= 32 {
            parse_info(24, CORE_RELO_MIN, "core_relo")?
        } else {
            ExtInfo::default()
        };
        Ok(BtfExt {
            raw: data.to_vec(),
            func_info,
            line_info,
            core_relo,
        })
    }

    /// Raw bytes of record `i` of `sec`.
    pub fn record(&self, info: &ExtInfo, sec: &ExtSection, i: usize) -> &[u8] {
        let o = sec.data_off + i * info.rec_size;
        &self.raw[o..o + info.rec_size]
    }

    /// Records `first..end` of a section, contiguous as the file stores them.
    pub fn records(&self, info: &ExtInfo, sec: &ExtSection, first: usize, end: usize) -> &[u8] {
        &self.raw[sec.data_off + first * info.rec_size..sec.data_off + end * info.rec_size]
    }

    /// First u32 of record `i` (the instruction byte offset for every kind).
    pub fn record_insn_off(&self, info: &ExtInfo, sec: &ExtSection, i: usize) -> u32 {
        read_u32(&self.raw, sec.data_off + i * info.rec_size).unwrap_or(0)
    }
}
