//! The one structural BTF change libbpf makes in gen mode: appending the
//! `dummy_ksym` VAR. libbpf then re-serialises the BTF as header, types and
//! strings back to back, and so do we.

use super::{Btf, read_u32, tail_size};
use crate::error::{Error, Result};

impl Btf {
    /// Point a reference kind (VAR, PTR, FUNC, ...) at another type.
    pub fn set_type(&mut self, t: &super::TypeRef, type_id: u32) {
        self.raw[t.offset + 8..t.offset + 12].copy_from_slice(&type_id.to_le_bytes());
    }

    /// Rename parameter `i` of a FUNC_PROTO.
    pub fn set_param_name(&mut self, proto: &super::TypeRef, i: usize, name_off: u32) {
        let o = proto.offset + 12 + 8 * i;
        self.raw[o..o + 4].copy_from_slice(&name_off.to_le_bytes());
    }

    /// Offset of `s` among the NUL-separated strings, as libbpf's string set
    /// indexes them (only string starts, never suffixes).
    fn find_string(&self, s: &str) -> Option<u32> {
        let strs = &self.raw[self.str_start..self.str_start + self.str_len];
        let mut off = 0;
        while off < strs.len() {
            let end = strs[off..]
                .iter()
                .position(|&b| b == 0)
                .map(|p| off + p)
                .unwrap_or(strs.len());
            if &strs[off..end] == s.as_bytes() {
                return Some(off as u32);
            }
            off = end + 1;
        }
        None
    }

    /// Append `VAR name` (libbpf's `btf__add_var`) and return its id.
    pub fn add_var(&mut self, name: &str, linkage: u32, type_id: u32) -> Result<u32> {
        let hdr_len = read_u32(&self.raw, 4).unwrap_or(24) as usize;
        let type_off = read_u32(&self.raw, 8).unwrap_or(0) as usize;
        let type_len = read_u32(&self.raw, 12).unwrap_or(0) as usize;
        let str_off = read_u32(&self.raw, 16).unwrap_or(0) as usize;
        let types = &self.raw[hdr_len + type_off..hdr_len + type_off + type_len];
        let mut strings = self.raw[self.str_start..self.str_start + self.str_len].to_vec();
        let name_off = match self.find_string(name) {
            Some(off) => off,
            None => {
                let off = strings.len() as u32;
                strings.extend_from_slice(name.as_bytes());
                strings.push(0);
                off
            }
        };
        let var_size = 12 + tail_size(super::kind::VAR, 0).unwrap_or(4);
        let new_type_len = type_len + var_size;
        let mut raw = Vec::with_capacity(hdr_len + new_type_len + strings.len());
        raw.extend_from_slice(&self.raw[..hdr_len]);
        raw.extend_from_slice(types);
        raw.extend_from_slice(&name_off.to_le_bytes());
        raw.extend_from_slice(&(super::kind::VAR << 24).to_le_bytes());
        raw.extend_from_slice(&type_id.to_le_bytes());
        raw.extend_from_slice(&linkage.to_le_bytes());
        raw.extend_from_slice(&strings);
        let set = |raw: &mut Vec<u8>, off: usize, v: usize| -> Result<()> {
            let v = u32::try_from(v).map_err(|_| Error::btf("BTF grew too large").in_section(".BTF"))?;
            raw[off..off + 4].copy_from_slice(&v.to_le_bytes());
            Ok(())
        };
        set(&mut raw, 12, new_type_len)?;
        set(&mut raw, 16, str_off + var_size)?;
        set(&mut raw, 20, strings.len())?;
        // Re-index: types now sit right after the header, strings after them.
        let shift = |o: usize| o - (hdr_len + type_off) + hdr_len;
        let mut offsets: Vec<usize> = self.type_offsets.iter().skip(1).map(|&o| shift(o)).collect();
        offsets.insert(0, 0);
        offsets.push(hdr_len + type_len);
        self.type_offsets = offsets;
        self.str_start = hdr_len + new_type_len;
        self.str_len = strings.len();
        self.raw = raw;
        Ok(self.type_cnt() - 1)
    }
}
