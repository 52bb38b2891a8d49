//! BTF as libbpf hands it to `BPF_BTF_LOAD`: the `.BTF` section bytes, kept
//! verbatim, with libbpf's few in-place edits applied (DATASEC sizes and
//! offsets, variable and function linkage, secinfo order). Types are indexed
//! once; every accessor is bounds-checked so corrupt input yields an error,
//! never a panic.

pub mod byteorder;
pub mod cdecl;
pub mod ext;
mod layout;
mod mutate;

use crate::error::{Error, Result};

pub const BTF_MAGIC: u16 = 0xeb9f;

pub mod kind {
    pub const INT: u32 = 1;
    pub const PTR: u32 = 2;
    pub const ARRAY: u32 = 3;
    pub const STRUCT: u32 = 4;
    pub const UNION: u32 = 5;
    pub const ENUM: u32 = 6;
    pub const FWD: u32 = 7;
    pub const TYPEDEF: u32 = 8;
    pub const VOLATILE: u32 = 9;
    pub const CONST: u32 = 10;
    pub const RESTRICT: u32 = 11;
    pub const FUNC: u32 = 12;
    pub const FUNC_PROTO: u32 = 13;
    pub const VAR: u32 = 14;
    pub const DATASEC: u32 = 15;
    pub const FLOAT: u32 = 16;
    pub const DECL_TAG: u32 = 17;
    pub const TYPE_TAG: u32 = 18;
    pub const ENUM64: u32 = 19;
}

pub mod linkage {
    pub const STATIC: u32 = 0;
    pub const GLOBAL: u32 = 1;
    pub const EXTERN: u32 = 2;
}

/// libbpf gives up following type chains after this many hops.
const MAX_RESOLVE_DEPTH: usize = 32;

pub(crate) fn read_u32(buf: &[u8], off: usize) -> Option<u32> {
    let b = buf.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

pub(crate) fn read_u16(buf: &[u8], off: usize) -> Option<u16> {
    let b = buf.get(off..off.checked_add(2)?)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

fn write_u32(buf: &mut [u8], off: usize, v: u32) {
    buf[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// A name without its CO-RE flavour: `name___flavour` names the type (or
/// kernel symbol) `name`, so lookups by name use the part before the last
/// `___` that has a non-underscore on each side (libbpf's
/// `bpf_core_essential_name_len`).
pub fn essential_name(name: &str) -> &str {
    let b = name.as_bytes();
    let n = b.len();
    if n >= 5 {
        for i in (0..=n - 5).rev() {
            if b[i] != b'_' && &b[i + 1..i + 4] == b"___" && b[i + 4] != b'_' {
                return &name[..i + 1];
            }
        }
    }
    name
}

/// A view of one type record: the 12-byte common header and where its
/// kind-specific tail starts.
#[derive(Debug, Clone, Copy)]
pub struct TypeRef {
    pub id: u32,
    pub offset: usize,
    pub name_off: u32,
    pub info: u32,
    /// `size` or `type`, depending on the kind.
    pub size_or_type: u32,
}

impl TypeRef {
    pub fn kind(&self) -> u32 {
        (self.info >> 24) & 0x1f
    }
    pub fn vlen(&self) -> u32 {
        self.info & 0xffff
    }
    pub fn kflag(&self) -> bool {
        self.info >> 31 == 1
    }
    fn tail(&self) -> usize {
        self.offset + 12
    }
}

/// A DATASEC member: which VAR, where it sits and how big it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VarSecinfo {
    pub type_id: u32,
    pub offset: u32,
    pub size: u32,
}

/// A STRUCT/UNION member.
#[derive(Debug, Clone, Copy)]
pub struct Member {
    pub name_off: u32,
    pub type_id: u32,
    /// Raw offset field (bit offset, or bitfield size and offset with kflag).
    pub offset: u32,
}

#[derive(Debug, Clone)]
pub struct Btf {
    raw: Vec<u8>,
    str_start: usize,
    str_len: usize,
    /// Byte offset of each type record in `raw`; index 0 is the implicit void.
    type_offsets: Vec<usize>,
}

fn tail_size(kind_id: u32, vlen: usize) -> Option<usize> {
    Some(match kind_id {
        kind::INT | kind::VAR | kind::DECL_TAG => 4,
        kind::PTR
        | kind::FWD
        | kind::TYPEDEF
        | kind::VOLATILE
        | kind::CONST
        | kind::RESTRICT
        | kind::FUNC
        | kind::FLOAT
        | kind::TYPE_TAG => 0,
        kind::ARRAY => 12,
        kind::STRUCT | kind::UNION | kind::DATASEC | kind::ENUM64 => vlen * 12,
        kind::ENUM | kind::FUNC_PROTO => vlen * 8,
        _ => return None,
    })
}

impl Btf {
    /// Parse a `.BTF` section. The bytes are copied once; later edits go into
    /// that copy, which is what the loader's BTF_LOAD receives.
    pub fn parse(data: &[u8]) -> Result<Btf> {
        let err = |msg: &str, off: usize| Error::btf(msg.to_string()).in_section(".BTF").at(off as u64);
        if data.len() < 24 {
            return Err(err("BTF header is truncated", 0));
        }
        let magic = read_u16(data, 0).unwrap_or(0);
        if magic != BTF_MAGIC {
            return Err(err(&format!("bad BTF magic {magic:#06x}"), 0));
        }
        if data[2] != 1 {
            return Err(err(&format!("unsupported BTF version {}", data[2]), 2));
        }
        let hdr_len = read_u32(data, 4).unwrap_or(0) as usize;
        if hdr_len < 24 || hdr_len > data.len() {
            return Err(err(&format!("bad BTF header length {hdr_len}"), 4));
        }
        let field = |o: usize| read_u32(data, o).unwrap_or(0) as usize;
        let (type_off, type_len, str_off, str_len) = (field(8), field(12), field(16), field(20));
        let body = data.len() - hdr_len;
        let fits = |off: usize, len: usize| off.checked_add(len).is_some_and(|end| end <= body);
        if !fits(type_off, type_len) {
            return Err(err("BTF type section is out of bounds", 8));
        }
        if !fits(str_off, str_len) {
            return Err(err("BTF string section is out of bounds", 16));
        }
        if type_off % 4 != 0 {
            return Err(err("BTF type section is misaligned", 8));
        }
        let str_start = hdr_len + str_off;
        if str_len == 0 || data[str_start] != 0 || data[str_start + str_len - 1] != 0 {
            return Err(err("BTF string section is malformed", 16));
        }
        let types_start = hdr_len + type_off;
        let types_end = types_start + type_len;
        // every record is at least 12 bytes: room for all of them, never regrown
        let mut type_offsets = Vec::with_capacity(type_len / 12 + 1);
        type_offsets.push(0usize);
        let mut pos = types_start;
        while pos < types_end {
            if pos + 12 > types_end {
                return Err(err("BTF type record is truncated", pos));
            }
            let info = read_u32(data, pos + 4).unwrap_or(0);
            let k = (info >> 24) & 0x1f;
            let vlen = (info & 0xffff) as usize;
            let tail = tail_size(k, vlen)
                .ok_or_else(|| err(&format!("unknown BTF kind {k} for type [{}]", type_offsets.len()), pos))?;
            let next = pos + 12 + tail;
            if next > types_end {
                return Err(err("BTF type record is truncated", pos));
            }
            type_offsets.push(pos);
            pos = next;
        }
        Ok(Btf {
            raw: data.to_vec(),
            str_start,
            str_len,
            type_offsets,
        })
    }

    /// The bytes libbpf passes to BTF_LOAD.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// Number of type ids including the implicit void (libbpf's `btf__type_cnt`).
    pub fn type_cnt(&self) -> u32 {
        self.type_offsets.len() as u32
    }

    pub fn type_by_id(&self, id: u32) -> Result<TypeRef> {
        let off = match self.type_offsets.get(id as usize) {
            Some(&o) if id != 0 => o,
            _ => return Err(Error::btf(format!("BTF type [{id}] does not exist")).in_section(".BTF")),
        };
        Ok(TypeRef {
            id,
            offset: off,
            name_off: read_u32(&self.raw, off).unwrap_or(0),
            info: read_u32(&self.raw, off + 4).unwrap_or(0),
            size_or_type: read_u32(&self.raw, off + 8).unwrap_or(0),
        })
    }

    /// The kind of type `id` (0 for `void` or an id out of range): one read
    /// of its info word, for scans over every type that look at few kinds.
    pub fn kind_of(&self, id: u32) -> u32 {
        match self.type_offsets.get(id as usize) {
            Some(&off) if id != 0 => (read_u32(&self.raw, off + 4).unwrap_or(0) >> 24) & 0x1f,
            _ => 0,
        }
    }

    /// The string at `off`, or an error if it is out of range or unterminated.
    pub fn str_at(&self, off: u32) -> Result<&str> {
        let off = off as usize;
        let strs = &self.raw[self.str_start..self.str_start + self.str_len];
        let bad = || Error::btf(format!("BTF string offset {off:#x} is invalid")).in_section(".BTF");
        let rest = strs.get(off..).ok_or_else(bad)?;
        let end = rest.iter().position(|&b| b == 0).ok_or_else(bad)?;
        crate::elf::utf8_name(&rest[..end]).ok_or_else(bad)
    }

    pub fn name_of(&self, t: &TypeRef) -> Result<&str> {
        self.str_at(t.name_off)
    }

    /// The first byte of a type's name (0 for an empty name), without
    /// validating the string: a cheap filter before [`Btf::name_of`].
    pub fn name_first_byte(&self, t: &TypeRef) -> Option<u8> {
        let off = self.str_start.checked_add(t.name_off as usize)?;
        (off < self.str_start + self.str_len).then(|| self.raw[off])
    }

    /// First type (in id order) with this name, like `btf__find_by_name`.
    pub fn find_by_name(&self, name: &str) -> Option<u32> {
        if name == "void" {
            return Some(0);
        }
        (1..self.type_cnt()).find(|&id| {
            self.type_by_id(id)
                .ok()
                .and_then(|t| self.str_at(t.name_off).ok())
                .is_some_and(|n| n == name)
        })
    }

    pub fn members(&self, t: &TypeRef) -> Vec<Member> {
        (0..t.vlen() as usize)
            .map(|i| {
                let o = t.tail() + 12 * i;
                Member {
                    name_off: read_u32(&self.raw, o).unwrap_or(0),
                    type_id: read_u32(&self.raw, o + 4).unwrap_or(0),
                    offset: read_u32(&self.raw, o + 8).unwrap_or(0),
                }
            })
            .collect()
    }

    /// Bit offset of member `i` (libbpf's `btf_member_bit_offset`).
    pub fn member_bit_offset(t: &TypeRef, m: &Member) -> u32 {
        if t.kflag() { m.offset & 0xff_ffff } else { m.offset }
    }

    /// Bitfield size of a member, 0 when it is not a bitfield.
    pub fn member_bitfield_size(t: &TypeRef, m: &Member) -> u32 {
        if t.kflag() { m.offset >> 24 } else { 0 }
    }

    /// (element type, index type, nelems) of an ARRAY.
    pub fn array(&self, t: &TypeRef) -> (u32, u32, u32) {
        let o = t.tail();
        (
            read_u32(&self.raw, o).unwrap_or(0),
            read_u32(&self.raw, o + 4).unwrap_or(0),
            read_u32(&self.raw, o + 8).unwrap_or(0),
        )
    }

    /// The 4-byte tail of INT / VAR / DECL_TAG.
    pub fn tail_u32(&self, t: &TypeRef) -> u32 {
        read_u32(&self.raw, t.tail()).unwrap_or(0)
    }

    /// (name_off, value) pairs of ENUM (sign-extended per kflag) and ENUM64.
    pub fn enum_values(&self, t: &TypeRef) -> Vec<(u32, u64)> {
        let n = t.vlen() as usize;
        match t.kind() {
            kind::ENUM => (0..n)
                .map(|i| {
                    let o = t.tail() + 8 * i;
                    let v = read_u32(&self.raw, o + 4).unwrap_or(0);
                    (read_u32(&self.raw, o).unwrap_or(0), v as u64)
                })
                .collect(),
            kind::ENUM64 => (0..n)
                .map(|i| {
                    let o = t.tail() + 12 * i;
                    let lo = read_u32(&self.raw, o + 4).unwrap_or(0) as u64;
                    let hi = read_u32(&self.raw, o + 8).unwrap_or(0) as u64;
                    (read_u32(&self.raw, o).unwrap_or(0), hi << 32 | lo)
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// (name_off, type) pairs of a FUNC_PROTO's parameters.
    pub fn params(&self, t: &TypeRef) -> Vec<(u32, u32)> {
        (0..t.vlen() as usize)
            .map(|i| {
                let o = t.tail() + 8 * i;
                (
                    read_u32(&self.raw, o).unwrap_or(0),
                    read_u32(&self.raw, o + 4).unwrap_or(0),
                )
            })
            .collect()
    }

    pub fn secinfos(&self, t: &TypeRef) -> Vec<VarSecinfo> {
        self.secinfo_iter(t).collect()
    }

    /// A DATASEC's entries read in place (`secinfos` without the `Vec`: a
    /// small allocation per DATASEC looked at, for the callers that only read).
    pub fn secinfo_iter<'a>(&'a self, t: &TypeRef) -> impl ExactSizeIterator<Item = VarSecinfo> + use<'a> {
        let tail = t.tail();
        (0..t.vlen() as usize).map(move |i| {
            let o = tail + 12 * i;
            VarSecinfo {
                type_id: read_u32(&self.raw, o).unwrap_or(0),
                offset: read_u32(&self.raw, o + 4).unwrap_or(0),
                size: read_u32(&self.raw, o + 8).unwrap_or(0),
            }
        })
    }

    /// Skip const/volatile/restrict/typedef/type_tag to the underlying type.
    pub fn skip_mods_and_typedefs(&self, mut id: u32) -> Result<(u32, Option<TypeRef>)> {
        for _ in 0..MAX_RESOLVE_DEPTH {
            if id == 0 {
                return Ok((0, None));
            }
            let t = self.type_by_id(id)?;
            match t.kind() {
                kind::CONST | kind::VOLATILE | kind::RESTRICT | kind::TYPEDEF | kind::TYPE_TAG => id = t.size_or_type,
                _ => return Ok((id, Some(t))),
            }
        }
        Err(Error::btf(format!("BTF type chain from [{id}] is too deep")).in_section(".BTF"))
    }

    /// Size in bytes of a type, as `btf__resolve_size` computes it.
    pub fn resolve_size(&self, type_id: u32) -> Result<u32> {
        let mut nelems: u64 = 1;
        let mut id = type_id;
        let bad = |why: &str| Error::btf(format!("cannot size BTF type [{type_id}]: {why}")).in_section(".BTF");
        for _ in 0..MAX_RESOLVE_DEPTH {
            if id == 0 {
                return Err(bad("void"));
            }
            let t = self.type_by_id(id)?;
            let size: u64 = match t.kind() {
                kind::INT | kind::STRUCT | kind::UNION | kind::ENUM | kind::DATASEC | kind::FLOAT | kind::ENUM64 => {
                    t.size_or_type as u64
                }
                kind::PTR => 8,
                kind::TYPEDEF
                | kind::VOLATILE
                | kind::CONST
                | kind::RESTRICT
                | kind::VAR
                | kind::DECL_TAG
                | kind::TYPE_TAG => {
                    id = t.size_or_type;
                    continue;
                }
                kind::ARRAY => {
                    let (elem, _, n) = self.array(&t);
                    if nelems != 0 && n as u64 > u32::MAX as u64 / nelems {
                        return Err(bad("too large"));
                    }
                    nelems *= n as u64;
                    id = elem;
                    continue;
                }
                _ => return Err(bad("kind has no size")),
            };
            if nelems != 0 && size > u32::MAX as u64 / nelems {
                return Err(bad("too large"));
            }
            return Ok((nelems * size) as u32);
        }
        Err(bad("type chain too deep"))
    }

    // ---- in-place edits (libbpf mutates its private copy the same way) ----

    pub fn set_size(&mut self, t: &TypeRef, size: u32) {
        write_u32(&mut self.raw, t.offset + 8, size);
    }

    pub fn set_var_linkage(&mut self, t: &TypeRef, linkage: u32) {
        write_u32(&mut self.raw, t.tail(), linkage);
    }

    pub fn set_info(&mut self, t: &TypeRef, info: u32) {
        write_u32(&mut self.raw, t.offset + 4, info);
    }

    pub fn set_secinfos(&mut self, t: &TypeRef, infos: &[VarSecinfo]) {
        for (i, vsi) in infos.iter().enumerate() {
            let o = t.tail() + 12 * i;
            write_u32(&mut self.raw, o, vsi.type_id);
            write_u32(&mut self.raw, o + 4, vsi.offset);
            write_u32(&mut self.raw, o + 8, vsi.size);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::essential_name;

    #[test]
    fn flavour_suffixes() {
        assert_eq!(essential_name("bpf_task_acquire___flav"), "bpf_task_acquire");
        assert_eq!(essential_name("a___b___c"), "a___b");
        assert_eq!(essential_name("plain"), "plain");
        assert_eq!(essential_name("x____y"), "x____y");
        assert_eq!(essential_name("___abc"), "___abc");
    }
}
