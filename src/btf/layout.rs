//! Type layout questions libbpf asks of BTF: alignment (`btf__align_of`).

use std::collections::HashMap;

use super::{Btf, kind};
use crate::error::{Error, Result};

/// BPF targets have 8-byte pointers (libbpf sets this on an object's BTF).
const PTR_SIZE: u32 = 8;
/// libbpf recurses without a limit; this only stops hostile chains.
const MAX_DEPTH: usize = 1024;

impl Btf {
    /// Alignment of a type in bytes; 1 for structs that must be packed.
    pub fn align_of(&self, id: u32) -> Result<u32> {
        self.align_of_with(id, PTR_SIZE, &mut HashMap::new())
    }

    /// [`Btf::align_of`] for a given pointer size, reusing `memo` across calls
    /// (the header's declaration printer asks about many types of one BTF).
    pub fn align_of_with(&self, id: u32, ptr_sz: u32, memo: &mut HashMap<u32, u32>) -> Result<u32> {
        self.align_of_depth(id, ptr_sz, 0, memo)
    }

    /// `memo` holds the alignment of every type already computed: structs
    /// whose members share a type (a DAG) would otherwise be walked once per
    /// path, 2^depth times for hostile BTF.
    fn align_of_depth(&self, id: u32, ptr_sz: u32, depth: usize, memo: &mut HashMap<u32, u32>) -> Result<u32> {
        if depth > MAX_DEPTH {
            return Err(Error::btf(format!("BTF type chain from [{id}] is too deep")).in_section(".BTF"));
        }
        if let Some(&a) = memo.get(&id) {
            return Ok(a);
        }
        let a = self.align_uncached(id, ptr_sz, depth, memo)?;
        memo.insert(id, a);
        Ok(a)
    }

    fn align_uncached(&self, id: u32, ptr_sz: u32, depth: usize, memo: &mut HashMap<u32, u32>) -> Result<u32> {
        let t = self.type_by_id(id)?;
        match t.kind() {
            kind::INT | kind::ENUM | kind::ENUM64 | kind::FLOAT => Ok(ptr_sz.min(t.size_or_type)),
            kind::PTR => Ok(ptr_sz),
            kind::TYPEDEF | kind::VOLATILE | kind::CONST | kind::RESTRICT | kind::TYPE_TAG => {
                self.align_of_depth(t.size_or_type, ptr_sz, depth + 1, memo)
            }
            kind::ARRAY => self.align_of_depth(self.array(&t).0, ptr_sz, depth + 1, memo),
            kind::STRUCT | kind::UNION => {
                let mut max_align = 1;
                for m in self.members(&t) {
                    let align = self.align_of_depth(m.type_id, ptr_sz, depth + 1, memo)?;
                    if align == 0 {
                        return Err(Error::btf(format!("BTF type [{}] has no alignment", m.type_id)));
                    }
                    max_align = max_align.max(align);
                    // A member off its natural alignment means the struct is packed.
                    if Btf::member_bitfield_size(&t, &m) == 0 && !m.offset.is_multiple_of(8 * align) {
                        return Ok(1);
                    }
                }
                if !t.size_or_type.is_multiple_of(max_align) {
                    return Ok(1);
                }
                Ok(max_align)
            }
            k => Err(Error::btf(format!("unsupported BTF kind {k} for alignment of [{id}]")).in_section(".BTF")),
        }
    }

    /// First type of this kind and name (`btf__find_by_name_kind`).
    pub fn find_by_name_kind(&self, name: &str, k: u32) -> Option<u32> {
        // The kind first: one read per type, and a name only for that kind.
        (1..self.type_cnt()).find(|&id| {
            self.kind_of(id) == k
                && self
                    .type_by_id(id)
                    .is_ok_and(|t| self.str_at(t.name_off).is_ok_and(|n| n == name))
        })
    }
}
