//! C declarations from BTF, printed the way libbpf's `btf_dump` prints a
//! single declaration (`btf_dump__emit_type_decl`): the text bpftool puts
//! into a skeleton's data-section structs.
//!
//! The printer walks a declaration from the outside in (array, pointer,
//! qualifier, ... down to a named or anonymous base type), collects that
//! chain, and prints it back from the base type outwards, so that pointers,
//! arrays and function prototypes nest with C's inside-out syntax. Anonymous
//! structs, unions and enums are defined in place; named ones are only
//! referred to. Struct bodies reproduce the original layout with explicit
//! `type: bits;` padding and `__attribute__((packed))` where the natural
//! layout would differ.
//!
//! A [`DeclPrinter`] remembers which names it has handed out: a second,
//! different type with an already used name is printed as `name___2`, and
//! enumerators share that bookkeeping with typedef names. bpftool uses one
//! printer for the whole header, so callers must too.

use std::collections::HashMap;
use std::fmt::Write;

use super::{Btf, TypeRef, kind};
use crate::error::{Error, Result};

/// libbpf's indentation string has 13 tabs; deeper levels reuse all of them.
const MAX_INDENT: usize = 13;

/// Longest qualifier/pointer/array chain we follow before calling the BTF
/// corrupt (libbpf itself would loop forever on a cyclic chain).
const MAX_CHAIN: usize = 1024;

/// How deeply declarations may nest (anonymous types inside anonymous types,
/// function prototypes as parameters ...).
const MAX_NESTING: usize = 256;

/// Most declaration text one printer (one header) may produce
/// (hostile-input bound). Hostile BTF can ask for far more: a struct
/// claiming 4 GiB becomes half a billion `long: 64;` padding lines, and
/// anonymous structs with two members of the next anonymous struct double
/// the text at every level. Real headers need a few KiB (1.2 KiB at most
/// over the kernel selftests).
const MAX_DECL_BYTES: usize = 1 << 20;

/// Integer type names that tell which size `long`, and so a pointer, has.
const LONG_NAMES: &[&str] = &[
    "long",
    "long int",
    "int long",
    "unsigned long",
    "long unsigned",
    "unsigned long int",
    "unsigned int long",
    "long unsigned int",
    "long int unsigned",
    "int unsigned long",
    "int long unsigned",
];

fn push_indent(out: &mut String, lvl: usize) {
    for _ in 0..lvl.min(MAX_INDENT) {
        out.push('\t');
    }
}

fn is_modifier(k: u32) -> bool {
    matches!(k, kind::VOLATILE | kind::CONST | kind::RESTRICT | kind::TYPE_TAG)
}

fn corrupt(what: String) -> Error {
    Error::btf(what).in_section(".BTF")
}

/// The pointer size a BTF blob implies: the size of its `long` integer type,
/// or the host's (8) when it has none.
pub fn pointer_size(btf: &Btf) -> u32 {
    for id in 1..btf.type_cnt() {
        let Ok(t) = btf.type_by_id(id) else { continue };
        if t.kind() != kind::INT || (t.size_or_type != 4 && t.size_or_type != 8) {
            continue;
        }
        if btf.name_of(&t).is_ok_and(|n| LONG_NAMES.contains(&n)) {
            return t.size_or_type;
        }
    }
    8
}

/// Natural alignment of a type in bytes, as `btf__align_of` computes it: a
/// struct or union whose layout betrays packing aligns to 1. Returns 0 for
/// types without an alignment (void, functions, forward declarations).
/// Scans the BTF for `long` first; [`DeclPrinter::align_of`] does not.
pub fn align_of(btf: &Btf, id: u32) -> u32 {
    btf.align_of_with(id, pointer_size(btf), &mut HashMap::new())
        .unwrap_or(0)
}

/// `x` rounded up to a multiple of `to` (`to` > 0).
fn round_up(x: i64, to: i64) -> i64 {
    (x + to - 1).div_euclid(to) * to
}

/// Which namespace a name is deduplicated in: struct/union/enum tags, or
/// ordinary identifiers (typedefs and enumerators).
#[derive(Clone, Copy)]
enum Namespace {
    Tag,
    Ident,
}

#[derive(Clone)]
enum ResolvedName {
    Pending,
    Original,
    Renamed(String),
}

/// Prints C declarations of BTF types; see the module documentation.
pub struct DeclPrinter<'b> {
    btf: &'b Btf,
    ptr_sz: u32,
    strip_mods: bool,
    tag_counts: HashMap<String, usize>,
    ident_counts: HashMap<String, usize>,
    names: Vec<ResolvedName>,
    nesting: usize,
    /// Declaration text produced by earlier `emit_type_decl` calls, and
    /// where the current one started in `out`.
    emitted: usize,
    decl_start: usize,
    /// Alignment of each type seen so far (see [`align_with`]).
    align_memo: std::cell::RefCell<HashMap<u32, u32>>,
}

impl<'b> DeclPrinter<'b> {
    pub fn new(btf: &'b Btf) -> Self {
        DeclPrinter {
            btf,
            ptr_sz: pointer_size(btf),
            strip_mods: false,
            tag_counts: HashMap::new(),
            ident_counts: HashMap::new(),
            names: vec![ResolvedName::Pending; btf.type_cnt() as usize],
            nesting: 0,
            emitted: 0,
            decl_start: 0,
            align_memo: Default::default(),
        }
    }

    /// Append the declaration of `field_name` with type `id` to `out`.
    /// `indent` is the level nested definitions are indented from (their
    /// members get one more); `strip_mods` drops every const, volatile,
    /// restrict and type tag, also inside nested definitions.
    pub fn emit_type_decl(
        &mut self,
        out: &mut String,
        id: u32,
        field_name: &str,
        indent: usize,
        strip_mods: bool,
    ) -> Result<()> {
        self.strip_mods = strip_mods;
        self.nesting = 0;
        self.decl_start = out.len();
        let res = self.decl(out, id, field_name, indent);
        self.emitted += out.len().saturating_sub(self.decl_start);
        self.strip_mods = false;
        res
    }

    /// [`align_of`] with this printer's pointer size (no BTF scan).
    pub fn align_of(&self, id: u32) -> u32 {
        self.btf
            .align_of_with(id, self.ptr_sz, &mut self.align_memo.borrow_mut())
            .unwrap_or(0)
    }

    fn kind_of(&self, id: u32) -> Result<u32> {
        if id == 0 {
            return Ok(0);
        }
        Ok(self.btf.type_by_id(id)?.kind())
    }

    fn name(&self, name_off: u32) -> Result<&'b str> {
        self.btf.str_at(name_off)
    }

    /// The printed name of a named type: its own, or `name___N` when an
    /// earlier, different type already used it in the same namespace.
    fn resolved_name(&mut self, t: &TypeRef, ns: Namespace) -> Result<String> {
        if t.name_off == 0 {
            return Ok(String::new());
        }
        let orig = self.name(t.name_off)?;
        let slot = self
            .names
            .get_mut(t.id as usize)
            .ok_or_else(|| corrupt(format!("BTF type [{}] does not exist", t.id)))?;
        match slot {
            ResolvedName::Original => return Ok(orig.to_string()),
            ResolvedName::Renamed(s) => return Ok(s.clone()),
            ResolvedName::Pending => {}
        }
        // Forward declarations and enum forward references never clash.
        if t.kind() == kind::FWD || (t.kind() == kind::ENUM && t.vlen() == 0) {
            *slot = ResolvedName::Original;
            return Ok(orig.to_string());
        }
        let counts = match ns {
            Namespace::Tag => &mut self.tag_counts,
            Namespace::Ident => &mut self.ident_counts,
        };
        let n = counts.entry(orig.to_string()).or_insert(0);
        *n += 1;
        let resolved = if *n > 1 {
            ResolvedName::Renamed(format!("{orig}___{n}"))
        } else {
            ResolvedName::Original
        };
        let text = match &resolved {
            ResolvedName::Renamed(s) => s.clone(),
            _ => orig.to_string(),
        };
        self.names[t.id as usize] = resolved;
        Ok(text)
    }

    /// How many times an enumerator name has now been used.
    fn count_ident(&mut self, name: &str) -> usize {
        let n = self.ident_counts.entry(name.to_string()).or_insert(0);
        *n += 1;
        *n
    }

    /// Collect the declaration chain of `id` (outermost first) and print it.
    fn decl(&mut self, out: &mut String, mut id: u32, fname: &str, lvl: usize) -> Result<()> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(corrupt(format!("BTF type [{id}] nests too deeply")));
        }
        let mut chain = Vec::new();
        let mut complete = false;
        for _ in 0..MAX_CHAIN {
            if id == 0 {
                chain.push(0);
                complete = true;
                break;
            }
            let t = self.btf.type_by_id(id)?;
            if !(self.strip_mods && is_modifier(t.kind())) {
                chain.push(id);
            }
            match t.kind() {
                kind::PTR | kind::VOLATILE | kind::CONST | kind::RESTRICT | kind::FUNC_PROTO | kind::TYPE_TAG => {
                    id = t.size_or_type
                }
                kind::ARRAY => id = self.btf.array(&t).0,
                _ => {
                    complete = true;
                    break;
                }
            }
        }
        if !complete {
            return Err(corrupt(format!("BTF type chain through [{id}] is too long")));
        }
        let res = self.chain(out, &mut chain, fname, lvl);
        self.nesting -= 1;
        res
    }

    /// Qualifiers directly applied to the base type at the top of `chain`
    /// print in front of it (`const int`).
    fn leading_mods(&self, out: &mut String, chain: &mut Vec<u32>) -> Result<()> {
        while let Some(&id) = chain.last() {
            match self.kind_of(id)? {
                kind::VOLATILE => out.push_str("volatile "),
                kind::CONST => out.push_str("const "),
                kind::RESTRICT => out.push_str("restrict "),
                _ => return Ok(()),
            }
            chain.pop();
        }
        Ok(())
    }

    /// Qualifiers on arrays and function prototypes are meaningless in C
    /// (GCC emits some anyway): drop them.
    fn drop_mods(&self, chain: &mut Vec<u32>) -> Result<()> {
        while let Some(&id) = chain.last() {
            if !is_modifier(self.kind_of(id)?) {
                break;
            }
            chain.pop();
        }
        Ok(())
    }

    fn field_name(out: &mut String, fname: &str, last_was_ptr: bool) {
        if !fname.is_empty() && !last_was_ptr {
            out.push(' ');
        }
        out.push_str(fname);
    }

    /// Print a chain from its innermost (last) element outwards.
    fn chain(&mut self, out: &mut String, chain: &mut Vec<u32>, fname: &str, lvl: usize) -> Result<()> {
        // A lone pointer that closes a function-pointer declarator prints as
        // `(*name)`, so start as if a pointer had just been printed.
        let mut last_was_ptr = true;
        while let Some(id) = chain.pop() {
            if id == 0 {
                self.leading_mods(out, chain)?;
                out.push_str("void");
                last_was_ptr = false;
                continue;
            }
            let t = self.btf.type_by_id(id)?;
            let k = t.kind();
            match k {
                kind::INT | kind::FLOAT => {
                    self.leading_mods(out, chain)?;
                    out.push_str(self.name(t.name_off)?);
                }
                kind::STRUCT | kind::UNION => {
                    self.leading_mods(out, chain)?;
                    if t.name_off == 0 {
                        self.struct_def(out, &t, lvl)?;
                    } else {
                        self.struct_ref(out, &t)?;
                    }
                }
                kind::ENUM | kind::ENUM64 => {
                    self.leading_mods(out, chain)?;
                    if t.name_off == 0 {
                        self.enum_def(out, &t, lvl)?;
                    } else {
                        out.push_str("enum ");
                        let name = self.resolved_name(&t, Namespace::Tag)?;
                        out.push_str(&name);
                    }
                }
                kind::FWD => {
                    self.leading_mods(out, chain)?;
                    out.push_str(if t.kflag() { "union " } else { "struct " });
                    let name = self.resolved_name(&t, Namespace::Tag)?;
                    out.push_str(&name);
                }
                kind::TYPEDEF => {
                    self.leading_mods(out, chain)?;
                    let name = self.resolved_name(&t, Namespace::Ident)?;
                    out.push_str(&name);
                }
                kind::PTR => out.push_str(if last_was_ptr { "*" } else { " *" }),
                kind::VOLATILE => out.push_str(" volatile"),
                kind::CONST => out.push_str(" const"),
                kind::RESTRICT => out.push_str(" restrict"),
                kind::TYPE_TAG => {
                    self.leading_mods(out, chain)?;
                    let _ = write!(out, " __attribute__((btf_type_tag(\"{}\")))", self.name(t.name_off)?);
                }
                kind::ARRAY => {
                    let nelems = self.btf.array(&t).2;
                    self.drop_mods(chain)?;
                    let Some(&next) = chain.last() else {
                        Self::field_name(out, fname, last_was_ptr);
                        let _ = write!(out, "[{nelems}]");
                        return Ok(());
                    };
                    // Arrays of arrays need no parentheses: `int a[2][3]`.
                    let nested_array = self.kind_of(next)? == kind::ARRAY;
                    if !fname.is_empty() && !last_was_ptr {
                        out.push(' ');
                    }
                    if !nested_array {
                        out.push('(');
                    }
                    self.chain(out, chain, fname, lvl)?;
                    if !nested_array {
                        out.push(')');
                    }
                    let _ = write!(out, "[{nelems}]");
                    return Ok(());
                }
                kind::FUNC_PROTO => {
                    self.drop_mods(chain)?;
                    if chain.is_empty() {
                        Self::field_name(out, fname, last_was_ptr);
                    } else {
                        out.push_str(" (");
                        self.chain(out, chain, fname, lvl)?;
                        out.push(')');
                    }
                    out.push('(');
                    let params = self.btf.params(&t);
                    // BPF clang writes `f(void)` as one parameter of type void.
                    if params.is_empty() || (params.len() == 1 && params[0].1 == 0) {
                        out.push_str("void)");
                        return Ok(());
                    }
                    for (i, &(name_off, ty)) in params.iter().enumerate() {
                        if i > 0 {
                            out.push_str(", ");
                        }
                        if i == params.len() - 1 && ty == 0 {
                            out.push_str("...");
                            break;
                        }
                        let pname = self.name(name_off)?;
                        self.decl(out, ty, pname, lvl)?;
                    }
                    out.push(')');
                    return Ok(());
                }
                // Not part of a type declaration (VAR, FUNC, DATASEC ...):
                // libbpf warns and prints nothing more.
                _ => return Ok(()),
            }
            last_was_ptr = k == kind::PTR;
        }
        Self::field_name(out, fname, last_was_ptr);
        Ok(())
    }

    fn struct_ref(&mut self, out: &mut String, t: &TypeRef) -> Result<()> {
        out.push_str(if t.kind() == kind::STRUCT { "struct" } else { "union" });
        if t.name_off != 0 {
            out.push(' ');
        }
        let name = self.resolved_name(t, Namespace::Tag)?;
        out.push_str(&name);
        Ok(())
    }

    /// A struct laid out differently from its natural C layout: a member off
    /// its natural alignment, or a size that is not a multiple of it.
    fn looks_packed(&self, t: &TypeRef) -> bool {
        let mut max_align = 1;
        for m in self.btf.members(t) {
            let a = self.align_of(m.type_id);
            if a != 0 && Btf::member_bitfield_size(t, &m) == 0 && !(m.offset as u64).is_multiple_of(8 * a as u64) {
                return true;
            }
            max_align = max_align.max(a);
        }
        !t.size_or_type.is_multiple_of(max_align)
    }

    fn struct_def(&mut self, out: &mut String, t: &TypeRef, lvl: usize) -> Result<()> {
        let is_struct = t.kind() == kind::STRUCT;
        let align = self.align_of(t.id);
        let packed = is_struct && self.looks_packed(t);
        self.struct_ref(out, t)?;
        out.push_str(" {");
        let members = self.btf.members(t);
        let mut off: i64 = 0;
        let mut prev_bitfield = false;
        for m in &members {
            self.check_size(out)?;
            let fname = self.name(m.name_off)?;
            let bits = Btf::member_bitfield_size(t, m) as i64;
            let m_off = Btf::member_bit_offset(t, m) as i64;
            let m_align = if packed { 1 } else { self.align_of(m.type_id) };
            self.bit_padding(out, off, m_off, m_align, prev_bitfield && bits != 0, lvl + 1)?;
            out.push('\n');
            push_indent(out, lvl + 1);
            self.decl(out, m.type_id, fname, lvl + 1)?;
            if bits != 0 {
                let _ = write!(out, ": {bits}");
                off = m_off + bits;
                prev_bitfield = true;
            } else {
                let size = self.btf.resolve_size(m.type_id).map(i64::from).unwrap_or(0);
                off = m_off + size * 8;
                prev_bitfield = false;
            }
            out.push(';');
        }
        if is_struct {
            self.bit_padding(out, off, t.size_or_type as i64 * 8, align, false, lvl + 1)?;
        }
        if !members.is_empty() || t.size_or_type != 0 {
            out.push('\n');
            push_indent(out, lvl);
        }
        out.push('}');
        if packed {
            out.push_str(" __attribute__((packed))");
        }
        Ok(())
    }

    /// Fill the bit gap `[cur, next)` before a member (or the struct end)
    /// with anonymous bitfields: first align to the widest of long, int,
    /// short or char that still fits, then fill with whole units of it, then
    /// with the smallest type that covers the rest.
    fn bit_padding(
        &self,
        out: &mut String,
        mut cur: i64,
        next: i64,
        next_align: u32,
        in_bitfield: bool,
        lvl: usize,
    ) -> Result<()> {
        if cur >= next {
            return Ok(());
        }
        let pads: [(&str, i64); 4] = [
            ("long", self.ptr_sz as i64 * 8),
            ("int", 32),
            ("short", 16),
            ("char", 8),
        ];
        let line = |out: &mut String, ty: &str, bits: i64| {
            out.push('\n');
            push_indent(out, lvl);
            let _ = write!(out, "{ty}: {bits};");
        };
        let (mut pad_ty, mut pad_bits, mut aligned) = ("", 0, 0);
        for &(ty, bits) in &pads {
            (pad_ty, pad_bits) = (ty, bits);
            aligned = round_up(cur, bits);
            if aligned <= next {
                break;
            }
        }
        if aligned > cur && aligned <= next {
            // An explicit `type: 0;` forces the alignment when the compiler
            // would not reach it by itself: inside a bitfield run, when the
            // next member's own alignment is weaker, or when the following
            // `type: N;` would otherwise fit into the hole before it.
            let needs_mark = in_bitfield
                || (aligned == next && {
                    if next_align == 0 {
                        return Err(corrupt("cannot determine the alignment of a struct member".into()));
                    }
                    round_up(cur, next_align as i64 * 8) != aligned
                })
                || (aligned != next && next - aligned <= aligned - cur);
            if needs_mark {
                line(out, pad_ty, if in_bitfield { aligned - cur } else { 0 });
            }
            cur = aligned;
        }
        while cur != next {
            self.check_size(out)?;
            let bits = (next - cur).min(pad_bits);
            if bits == pad_bits {
                line(out, pad_ty, pad_bits);
                cur += bits;
                continue;
            }
            if let Some(&(ty, tb)) = pads.iter().rev().find(|&&(_, tb)| tb >= bits) {
                (pad_ty, pad_bits) = (ty, tb);
                line(out, ty, bits);
                cur += bits;
            }
        }
        Ok(())
    }

    fn check_size(&self, out: &str) -> Result<()> {
        if self.emitted + out.len().saturating_sub(self.decl_start) > MAX_DECL_BYTES {
            return Err(corrupt(format!(
                "C declarations longer than {} MiB in all (BTF sizes or nesting too large)",
                MAX_DECL_BYTES >> 20
            )));
        }
        Ok(())
    }

    fn enum_def(&mut self, out: &mut String, t: &TypeRef, lvl: usize) -> Result<()> {
        out.push_str("enum");
        if t.name_off != 0 {
            out.push(' ');
        }
        let name = self.resolved_name(t, Namespace::Tag)?;
        out.push_str(&name);
        if t.vlen() == 0 {
            return Ok(());
        }
        out.push_str(" {");
        let signed = t.kflag();
        let is_enum64 = t.kind() == kind::ENUM64;
        let values = self.btf.enum_values(t);
        for &(name_off, val) in &values {
            let vname = self.name(name_off)?;
            let dups = self.count_ident(vname);
            out.push('\n');
            push_indent(out, lvl + 1);
            out.push_str(vname);
            if dups > 1 {
                let _ = write!(out, "___{dups}");
            }
            let _ = match (is_enum64, signed) {
                (false, false) => write!(out, " = {},", val as u32),
                (false, true) => write!(out, " = {},", val as u32 as i32),
                (true, false) => write!(out, " = {val}ULL,"),
                (true, true) => write!(out, " = {}LL,", val as i64),
            };
        }
        out.push('\n');
        push_indent(out, lvl);
        out.push('}');
        if t.size_or_type == 1 {
            out.push_str(" __attribute__((mode(byte)))");
        } else if t.size_or_type == 8 && self.ptr_sz == 8 {
            // A 32-bit enum cannot be 8 bytes by itself; an ENUM64 only
            // grows naturally when some value needs the upper half.
            let needs_word = !is_enum64 || values.iter().all(|&(_, v)| v >> 32 == 0);
            if needs_word {
                out.push_str(" __attribute__((mode(word)))");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds raw BTF blobs for tests.
    #[derive(Default)]
    struct Builder {
        types: Vec<u8>,
        strs: Vec<u8>,
        next_id: u32,
    }

    impl Builder {
        fn new() -> Self {
            Builder {
                types: Vec::new(),
                strs: vec![0],
                next_id: 1,
            }
        }
        fn s(&mut self, name: &str) -> u32 {
            if name.is_empty() {
                return 0;
            }
            let off = self.strs.len() as u32;
            self.strs.extend_from_slice(name.as_bytes());
            self.strs.push(0);
            off
        }
        fn u32s(&mut self, vals: &[u32]) {
            for v in vals {
                self.types.extend_from_slice(&v.to_le_bytes());
            }
        }
        fn head(&mut self, name: &str, k: u32, vlen: u32, kflag: bool, size_or_type: u32) -> u32 {
            let n = self.s(name);
            self.u32s(&[n, (kflag as u32) << 31 | k << 24 | vlen, size_or_type]);
            self.next_id += 1;
            self.next_id - 1
        }
        fn int(&mut self, name: &str, size: u32, signed: bool) -> u32 {
            let id = self.head(name, kind::INT, 0, false, size);
            self.u32s(&[((signed as u32) << 24) | (size * 8)]);
            id
        }
        fn reference(&mut self, k: u32, name: &str, to: u32) -> u32 {
            self.head(name, k, 0, false, to)
        }
        fn array(&mut self, elem: u32, index: u32, n: u32) -> u32 {
            let id = self.head("", kind::ARRAY, 0, false, 0);
            self.u32s(&[elem, index, n]);
            id
        }
        /// members: (name, type, bit offset, bitfield size)
        fn composite(&mut self, k: u32, name: &str, size: u32, members: &[(&str, u32, u32, u32)]) -> u32 {
            let kflag = members.iter().any(|m| m.3 != 0);
            let id = self.head(name, k, members.len() as u32, kflag, size);
            for &(n, ty, off, bits) in members {
                let n = self.s(n);
                let off = if kflag { bits << 24 | off } else { off };
                self.u32s(&[n, ty, off]);
            }
            id
        }
        fn enumeration(&mut self, name: &str, size: u32, signed: bool, vals: &[(&str, i64)]) -> u32 {
            let id = self.head(name, kind::ENUM, vals.len() as u32, signed, size);
            for &(n, v) in vals {
                let n = self.s(n);
                self.u32s(&[n, v as u32]);
            }
            id
        }
        fn enum64(&mut self, name: &str, signed: bool, vals: &[(&str, u64)]) -> u32 {
            let id = self.head(name, kind::ENUM64, vals.len() as u32, signed, 8);
            for &(n, v) in vals {
                let n = self.s(n);
                self.u32s(&[n, v as u32, (v >> 32) as u32]);
            }
            id
        }
        fn func_proto(&mut self, ret: u32, params: &[(&str, u32)]) -> u32 {
            let id = self.head("", kind::FUNC_PROTO, params.len() as u32, false, ret);
            for &(n, ty) in params {
                let n = self.s(n);
                self.u32s(&[n, ty]);
            }
            id
        }
        fn build(&self) -> Btf {
            let mut raw = Vec::new();
            raw.extend_from_slice(&0xeb9fu16.to_le_bytes());
            raw.extend_from_slice(&[1, 0]);
            for v in [
                24u32,
                0,
                self.types.len() as u32,
                self.types.len() as u32,
                self.strs.len() as u32,
            ] {
                raw.extend_from_slice(&v.to_le_bytes());
            }
            raw.extend_from_slice(&self.types);
            raw.extend_from_slice(&self.strs);
            Btf::parse(&raw).expect("test BTF parses")
        }
    }

    fn decl(btf: &Btf, id: u32, name: &str, strip: bool) -> String {
        let mut p = DeclPrinter::new(btf);
        let mut out = String::new();
        p.emit_type_decl(&mut out, id, name, 2, strip).unwrap();
        out
    }

    #[test]
    fn qualifiers_pointers_and_strip_mods() {
        let mut b = Builder::new();
        let int = b.int("int", 4, true);
        let cint = b.reference(kind::CONST, "", int);
        let vcint = b.reference(kind::VOLATILE, "", cint);
        let p = b.reference(kind::PTR, "", vcint);
        let cp = b.reference(kind::CONST, "", p);
        let pp = b.reference(kind::PTR, "", cp);
        let voidp = b.reference(kind::PTR, "", 0);
        let cvoid = b.reference(kind::CONST, "", 0);
        let cvoidp = b.reference(kind::PTR, "", cvoid);
        let btf = b.build();
        assert_eq!(decl(&btf, vcint, "x", false), "const volatile int x");
        assert_eq!(decl(&btf, vcint, "x", true), "int x");
        assert_eq!(decl(&btf, p, "x", false), "const volatile int *x");
        assert_eq!(decl(&btf, pp, "x", false), "const volatile int * const *x");
        assert_eq!(decl(&btf, pp, "x", true), "int **x");
        assert_eq!(decl(&btf, voidp, "v", false), "void *v");
        assert_eq!(decl(&btf, cvoidp, "v", false), "const void *v");
        assert_eq!(decl(&btf, int, "", false), "int");
        assert_eq!(decl(&btf, p, "", false), "const volatile int *");
    }

    #[test]
    fn arrays_and_function_pointers() {
        let mut b = Builder::new();
        let int = b.int("int", 4, true);
        let chr = b.int("char", 1, true);
        let a3 = b.array(int, int, 3);
        let a23 = b.array(a3, int, 2);
        let pint = b.reference(kind::PTR, "", int);
        let ap = b.array(pint, int, 4);
        let pa = b.reference(kind::PTR, "", a3);
        let fp = b.func_proto(int, &[("", int), ("name", chr)]);
        let pfp = b.reference(kind::PTR, "", fp);
        let afp = b.array(pfp, int, 5);
        let vfp = b.func_proto(0, &[("", 0)]);
        let pvfp = b.reference(kind::PTR, "", vfp);
        let varfp = b.func_proto(int, &[("fmt", chr), ("", 0)]);
        let pvarfp = b.reference(kind::PTR, "", varfp);
        // a function returning a pointer to a function returning int
        let ret_fp = b.func_proto(pfp, &[("", int)]);
        let pret = b.reference(kind::PTR, "", ret_fp);
        let carr = b.array(chr, int, 16);
        let ccarr = b.reference(kind::CONST, "", carr);
        let btf = b.build();
        assert_eq!(decl(&btf, a23, "m", false), "int m[2][3]");
        assert_eq!(decl(&btf, ap, "m", false), "int *m[4]");
        assert_eq!(decl(&btf, pa, "m", false), "int (*m)[3]");
        assert_eq!(decl(&btf, pfp, "cb", false), "int (*cb)(int, char name)");
        assert_eq!(decl(&btf, afp, "cbs", false), "int (*cbs[5])(int, char name)");
        assert_eq!(decl(&btf, pvfp, "f", false), "void (*f)(void)");
        assert_eq!(decl(&btf, pvarfp, "f", false), "int (*f)(char fmt, ...)");
        assert_eq!(decl(&btf, pret, "f", false), "int (* (*f)(int))(int, char name)");
        assert_eq!(decl(&btf, carr, "s", false), "char s[16]");
        assert_eq!(decl(&btf, ccarr, "s", false), "char s[16]");
        assert_eq!(decl(&btf, a23, "", false), "int[2][3]");
    }

    #[test]
    fn anonymous_structs_bitfields_and_padding() {
        let mut b = Builder::new();
        let int = b.int("int", 4, true);
        let chr = b.int("char", 1, true);
        let u64t = b.int("unsigned long", 8, false);
        let short = b.int("short", 2, true);
        let inner = b.composite(kind::UNION, "", 8, &[("i", int, 0, 0), ("l", u64t, 0, 0)]);
        // struct { char c; <pad>; union {...}; int a: 3; int b: 5; <pad 24>; short s; }
        let outer = b.composite(
            kind::STRUCT,
            "",
            24,
            &[
                ("c", chr, 0, 0),
                ("", inner, 64, 0),
                ("a", int, 128, 3),
                ("b", int, 131, 5),
                ("s", short, 160, 0),
            ],
        );
        let btf = b.build();
        assert_eq!(
            decl(&btf, outer, "v", false),
            "struct {\n\t\t\tchar c;\n\t\t\tunion {\n\t\t\t\tint i;\n\t\t\t\tunsigned long l;\n\t\t\t};\
             \n\t\t\tint a: 3;\n\t\t\tint b: 5;\n\t\t\tint: 0;\n\t\t\tshort s;\n\t\t} v"
        );
    }

    #[test]
    fn explicit_bit_padding() {
        let mut b = Builder::new();
        let int = b.int("int", 4, true);
        let chr = b.int("char", 1, true);
        // Gaps inside a bitfield run are spelled out (`int: 28`); a char that
        // the compiler would place at bit 40 needs a `long: 0` to reach bit
        // 64; trailing gaps the compiler fills itself are left implicit.
        // (Expected texts cross-checked with libbpf 1.5's btf_dump.)
        let s = b.composite(
            kind::STRUCT,
            "",
            12,
            &[("a", int, 0, 4), ("b", int, 32, 4), ("c", chr, 64, 0)],
        );
        let s2 = b.composite(kind::STRUCT, "", 8, &[("a", int, 0, 4), ("b", int, 40, 4)]);
        let btf = b.build();
        assert_eq!(
            decl(&btf, s, "v", false),
            "struct {\n\t\t\tint a: 4;\n\t\t\tint: 28;\n\t\t\tint b: 4;\n\t\t\tlong: 0;\n\t\t\tchar c;\n\t\t} v"
        );
        assert_eq!(
            decl(&btf, s2, "v", false),
            "struct {\n\t\t\tint a: 4;\n\t\t\tint: 28;\n\t\t\tchar: 8;\n\t\t\tint b: 4;\n\t\t} v"
        );
    }

    #[test]
    fn packed_struct() {
        let mut b = Builder::new();
        let int = b.int("int", 4, true);
        let chr = b.int("char", 1, true);
        let s = b.composite(kind::STRUCT, "", 5, &[("c", chr, 0, 0), ("i", int, 8, 0)]);
        let named = b.composite(kind::STRUCT, "pk", 5, &[("c", chr, 0, 0), ("i", int, 8, 0)]);
        let empty = b.composite(kind::STRUCT, "", 0, &[]);
        let btf = b.build();
        assert_eq!(
            decl(&btf, s, "p", false),
            "struct {\n\t\t\tchar c;\n\t\t\tint i;\n\t\t} __attribute__((packed)) p"
        );
        assert_eq!(decl(&btf, named, "p", false), "struct pk p");
        assert_eq!(decl(&btf, empty, "e", false), "struct {} e");
        assert_eq!(align_of(&btf, s), 1);
        assert_eq!(align_of(&btf, int), 4);
    }

    #[test]
    fn enums_and_name_clashes() {
        let mut b = Builder::new();
        let e = b.enumeration("", 4, false, &[("A", 0), ("B", 0xffff_fff0)]);
        let se = b.enumeration("", 4, true, &[("N", -2)]);
        let byte = b.enumeration("", 1, false, &[("X", 1)]);
        let e64 = b.enum64("", false, &[("BIG", 1 << 40)]);
        let e64s = b.enum64("", true, &[("SM", (-5i64) as u64)]);
        let named = b.enumeration("color", 4, false, &[("RED", 0)]);
        let s1 = b.composite(kind::STRUCT, "dup", 4, &[]);
        let s2 = b.composite(kind::STRUCT, "dup", 4, &[]);
        let td1 = b.reference(kind::TYPEDEF, "u_t", named);
        let td2 = b.reference(kind::TYPEDEF, "u_t", named);
        let btf = b.build();
        assert_eq!(
            decl(&btf, e, "v", false),
            "enum {\n\t\t\tA = 0,\n\t\t\tB = 4294967280,\n\t\t} v"
        );
        assert_eq!(decl(&btf, se, "v", false), "enum {\n\t\t\tN = -2,\n\t\t} v");
        assert_eq!(
            decl(&btf, byte, "v", false),
            "enum {\n\t\t\tX = 1,\n\t\t} __attribute__((mode(byte))) v"
        );
        assert_eq!(
            decl(&btf, e64, "v", false),
            "enum {\n\t\t\tBIG = 1099511627776ULL,\n\t\t} v"
        );
        assert_eq!(decl(&btf, e64s, "v", false), "enum {\n\t\t\tSM = -5LL,\n\t\t} v");
        assert_eq!(decl(&btf, named, "c", false), "enum color c");

        // One printer across declarations, as in a skeleton header.
        let mut p = DeclPrinter::new(&btf);
        let mut out = String::new();
        for (id, name) in [
            (s1, "a"),
            (s2, "b"),
            (s1, "c"),
            (td1, "d"),
            (td2, "e"),
            (e, "f"),
            (e, "g"),
        ] {
            p.emit_type_decl(&mut out, id, name, 0, true).unwrap();
            out.push_str(";\n");
        }
        assert_eq!(
            out,
            "struct dup a;\nstruct dup___2 b;\nstruct dup c;\nu_t d;\nu_t___2 e;\n\
             enum {\n\tA = 0,\n\tB = 4294967280,\n} f;\nenum {\n\tA___2 = 0,\n\tB___2 = 4294967280,\n} g;\n"
        );
    }

    #[test]
    fn typedefs_and_type_tags() {
        let mut b = Builder::new();
        let uint = b.int("unsigned int", 4, false);
        let td = b.reference(kind::TYPEDEF, "__u32", uint);
        let ctd = b.reference(kind::CONST, "", td);
        let tag = b.reference(kind::TYPE_TAG, "user", uint);
        let ptag = b.reference(kind::PTR, "", tag);
        let fwd = b.head("opaque", kind::FWD, 0, true, 0);
        let pfwd = b.reference(kind::PTR, "", fwd);
        let btf = b.build();
        assert_eq!(decl(&btf, ctd, "x", false), "const __u32 x");
        assert_eq!(decl(&btf, ctd, "x", true), "__u32 x");
        assert_eq!(
            decl(&btf, ptag, "p", false),
            "unsigned int __attribute__((btf_type_tag(\"user\"))) *p"
        );
        assert_eq!(decl(&btf, ptag, "p", true), "unsigned int *p");
        assert_eq!(decl(&btf, pfwd, "o", false), "union opaque *o");
    }

    #[test]
    fn pointer_size_follows_long() {
        let mut b = Builder::new();
        let l = b.int("long int", 4, true);
        let p = b.reference(kind::PTR, "", l);
        let btf = b.build();
        assert_eq!(pointer_size(&btf), 4);
        assert_eq!(align_of(&btf, p), 4);
        let empty = Builder::new().build();
        assert_eq!(pointer_size(&empty), 8);
    }
}
