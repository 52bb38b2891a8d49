//! `__ksym` and `__kconfig` externs: libbpf's descriptors, the BTF rewrites
//! it performs at open time (`.ksyms` and `.kconfig` DATASECs, `dummy_ksym`),
//! and the build-host resolution of kconfig values and typeless ksym
//! addresses in gen mode.

use std::collections::HashMap;

use crate::btf::{Btf, kind, linkage};
use crate::elf::Elf;
use crate::error::{Error, Result};
use crate::host::ResolveInputs;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KcfgType {
    Bool,
    Char,
    Int,
    Tristate,
    CharArr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExternKind {
    Kcfg {
        size: u32,
        align: u32,
        ty: KcfgType,
        is_signed: bool,
        data_off: u32,
    },
    /// `type_id` 0 means typeless (address from kallsyms).
    Ksym { type_id: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extern {
    pub name: String,
    pub btf_id: u32,
    pub sym_idx: usize,
    pub is_weak: bool,
    /// True for a FUNC extern (kfunc), false for a VAR.
    pub is_func: bool,
    pub kind: ExternKind,
}

impl Extern {
    pub fn is_kcfg(&self) -> bool {
        matches!(self.kind, ExternKind::Kcfg { .. })
    }
    fn sort_key(&self) -> (u8, std::cmp::Reverse<u32>, u32) {
        match self.kind {
            ExternKind::Kcfg { align, size, .. } => (0, std::cmp::Reverse(align), size),
            ExternKind::Ksym { .. } => (1, std::cmp::Reverse(0), 0),
        }
    }
}

fn kcfg_type(btf: &Btf, id: u32) -> Result<(Option<KcfgType>, bool)> {
    let (_, t) = btf.skip_mods_and_typedefs(id)?;
    let Some(t) = t else { return Ok((None, false)) };
    let name = btf.name_of(&t).unwrap_or("");
    Ok(match t.kind() {
        kind::INT => {
            let enc = (btf.tail_u32(&t) >> 24) & 0xf;
            let size = t.size_or_type;
            if enc & 4 != 0 {
                ((size == 1).then_some(KcfgType::Bool), false)
            } else if size == 1 {
                (Some(KcfgType::Char), enc & 1 != 0)
            } else if !(1..=8).contains(&size) || !size.is_power_of_two() {
                (None, false)
            } else {
                (Some(KcfgType::Int), enc & 1 != 0)
            }
        }
        kind::ENUM if t.size_or_type == 4 && name == "libbpf_tristate" => (Some(KcfgType::Tristate), false),
        // libbpf requires 4 bytes for ENUM64 too; a smaller tristate would
        // make the 4-byte value write run past the .kconfig image.
        kind::ENUM64 if t.size_or_type == 4 && name == "libbpf_tristate" => (Some(KcfgType::Tristate), false),
        kind::ARRAY => {
            let (elem, _, n) = btf.array(&t);
            let elem_ty = kcfg_type(btf, elem)?.0;
            (
                (n != 0 && elem_ty == Some(KcfgType::Char)).then_some(KcfgType::CharArr),
                false,
            )
        }
        _ => (None, false),
    })
}

/// Collect externs and rewrite the extern DATASECs (`bpf_object__collect_externs`).
pub fn collect(elf: &Elf, btf: Option<&mut Btf>) -> Result<Vec<Extern>> {
    let has_externs = elf.symbols.iter().any(|s| s.is_extern() && !s.name.is_empty());
    let Some(btf) = btf else {
        if let Some(s) = elf.symbols.iter().find(|s| s.is_extern() && !s.name.is_empty()) {
            // The extern's symbol, for the error's location.
            let symtab = elf.sections.iter().find(|sec| sec.sh_type == crate::elf::SHT_SYMTAB);
            let e = Error::btf(format!("failed to find BTF for extern '{}'", s.name));
            return Err(match symtab {
                Some(sec) => e.in_section(sec.name).at(s.index as u64 * 24),
                None => e,
            });
        }
        return Ok(Vec::new());
    };
    let dummy_var = add_dummy_ksym_var(btf)?;
    if !has_externs {
        return Ok(Vec::new());
    }
    let err = |msg: String| Error::btf(msg).in_section(".BTF");
    let mut externs = Vec::new();
    let (mut kcfg_sec, mut ksym_sec) = (None, None);
    let lookup = ExternLookup::new(btf);
    for sym in elf.symbols.iter().filter(|s| s.is_extern() && !s.name.is_empty()) {
        let btf_id = lookup
            .btf_id(btf, sym.name)
            .ok_or_else(|| err(format!("failed to find BTF for extern '{}'", sym.name)))?;
        let t = btf.type_by_id(btf_id)?;
        let name = btf.name_of(&t)?.to_string();
        let sec_id = lookup.sec_of.get(&btf_id).copied().ok_or_else(|| {
            err(format!(
                "failed to find BTF for extern '{}' [{btf_id}] section",
                sym.name
            ))
        })?;
        let sec_name = btf.name_of(&btf.type_by_id(sec_id)?)?.to_string();
        let is_func = t.kind() == kind::FUNC;
        let kind = match sec_name.as_str() {
            ".kconfig" => {
                if is_func {
                    return Err(Error::unsupported(format!(
                        "extern function {name} is unsupported under .kconfig section"
                    ))
                    .in_section(".BTF"));
                }
                kcfg_sec = Some(sec_id);
                let size = btf
                    .resolve_size(t.size_or_type)
                    .map_err(|_| err(format!("failed to resolve size of extern (kcfg) '{}'", sym.name)))?;
                let align = btf.align_of(t.size_or_type)?;
                let (ty, is_signed) = kcfg_type(btf, t.size_or_type)?;
                let ty = ty.ok_or_else(|| {
                    Error::unsupported(format!("extern (kcfg) '{}': type is unsupported", sym.name)).in_section(".BTF")
                })?;
                ExternKind::Kcfg {
                    size,
                    align,
                    ty,
                    is_signed,
                    data_off: 0,
                }
            }
            ".ksyms" => {
                ksym_sec = Some(sec_id);
                let (type_id, _) = btf.skip_mods_and_typedefs(t.size_or_type)?;
                ExternKind::Ksym { type_id }
            }
            other => {
                return Err(Error::unsupported(format!("unrecognized extern section '{other}'")).in_section(".BTF"));
            }
        };
        externs.push(Extern {
            name,
            btf_id,
            sym_idx: sym.index,
            is_weak: sym.bind == crate::elf::STB_WEAK,
            is_func,
            kind,
        });
    }
    // Kconfig first (by alignment descending, size ascending), then ksyms; ties by name.
    externs.sort_by(|a, b| {
        a.sort_key()
            .cmp(&b.sort_key())
            .then_with(|| a.name.as_bytes().cmp(b.name.as_bytes()))
    });

    // First extern of each name (hostile-input bound: a lookup per DATASEC
    // entry instead of a scan of every extern).
    let mut first_ext: HashMap<String, usize> = HashMap::new();
    for (i, e) in externs.iter().enumerate() {
        first_ext.entry(e.name.clone()).or_insert(i);
    }
    if let Some(sec_id) = ksym_sec {
        let int_id = find_int_btf_id(btf);
        let dummy_name_off = match dummy_var {
            Some(id) => btf.type_by_id(id)?.name_off,
            None => 0,
        };
        let sec = btf.type_by_id(sec_id)?;
        let mut infos = btf.secinfos(&sec);
        for (i, vs) in infos.iter_mut().enumerate() {
            let vt = btf.type_by_id(vs.type_id)?;
            let vname = btf.name_of(&vt)?.to_string();
            if !first_ext.contains_key(&vname) {
                return Err(err(format!("failed to find extern definition for BTF '{vname}'")));
            }
            if vt.kind() == kind::FUNC {
                let proto = btf.type_by_id(vt.size_or_type)?;
                let params = btf.params(&proto);
                for (j, (name_off, ty)) in params.iter().enumerate() {
                    if *ty != 0 && *name_off == 0 {
                        btf.set_param_name(&proto, j, dummy_name_off);
                    }
                }
                vs.type_id = dummy_var.unwrap_or(0);
                btf.set_info(&vt, (vt.info & !0xffff) | linkage::GLOBAL);
            } else {
                btf.set_var_linkage(&vt, linkage::GLOBAL);
                btf.set_type(&vt, int_id);
            }
            vs.offset = (4 * i) as u32;
            vs.size = 4;
        }
        btf.set_secinfos(&sec, &infos);
        btf.set_size(&sec, (4 * infos.len()) as u32);
    }
    if let Some(sec_id) = kcfg_sec {
        let mut off = 0u32;
        for e in externs.iter_mut() {
            if let ExternKind::Kcfg {
                size, align, data_off, ..
            } = &mut e.kind
            {
                // Hostile-input bound: sizes and alignments come from BTF, so
                // the layout is computed checked (no zero alignment, no
                // wrapped offset) and must fit the loader's data blob.
                *data_off = off
                    .checked_next_multiple_of((*align).max(1))
                    .filter(|o| {
                        o.checked_add(*size)
                            .is_some_and(|end| end as usize <= crate::loader_abi::MAX_DATA_BLOB)
                    })
                    .ok_or_else(|| err(format!("extern (kcfg) '{}': .kconfig data grows too large", e.name)))?;
                off = *data_off + *size;
            }
        }
        let sec = btf.type_by_id(sec_id)?;
        btf.set_size(&sec, off);
        let mut infos = btf.secinfos(&sec);
        for vs in infos.iter_mut() {
            let vt = btf.type_by_id(vs.type_id)?;
            let vname = btf.name_of(&vt)?.to_string();
            let ext = first_ext
                .get(&vname)
                .map(|&i| &externs[i])
                .ok_or_else(|| err(format!("failed to find extern definition for BTF var '{vname}'")))?;
            btf.set_var_linkage(&vt, linkage::GLOBAL);
            if let ExternKind::Kcfg { data_off, .. } = ext.kind {
                vs.offset = data_off;
            }
        }
        btf.set_secinfos(&sec, &infos);
    }
    Ok(externs)
}

/// libbpf's per-extern BTF searches, indexed in one pass over the types
/// (hostile-input bound: a scan of every type per extern symbol is quadratic,
/// seconds for a 1 MB object).
struct ExternLookup {
    /// First VAR or FUNC (in id order) of each name.
    first_by_name: HashMap<String, u32>,
    /// First VAR or FUNC with a corrupt name: the linear search stopped there.
    first_bad: Option<u32>,
    /// First DATASEC (in id order) listing each type.
    sec_of: HashMap<u32, u32>,
}

impl ExternLookup {
    fn new(btf: &Btf) -> Self {
        let mut l = ExternLookup {
            first_by_name: HashMap::new(),
            first_bad: None,
            sec_of: HashMap::new(),
        };
        for id in 1..btf.type_cnt() {
            let Ok(t) = btf.type_by_id(id) else { continue };
            match t.kind() {
                kind::VAR | kind::FUNC => match btf.name_of(&t) {
                    Ok(name) => {
                        l.first_by_name.entry(name.to_string()).or_insert(id);
                    }
                    Err(_) => {
                        l.first_bad.get_or_insert(id);
                    }
                },
                kind::DATASEC => {
                    for v in btf.secinfo_iter(&t) {
                        l.sec_of.entry(v.type_id).or_insert(id);
                    }
                }
                _ => {}
            }
        }
        l
    }

    /// `find_extern_btf_id`: the first VAR/FUNC named `name`, if it is an extern.
    fn btf_id(&self, btf: &Btf, name: &str) -> Option<u32> {
        let id = *self.first_by_name.get(name)?;
        if self.first_bad.is_some_and(|bad| bad < id) {
            return None;
        }
        let t = btf.type_by_id(id).ok()?;
        let ok = if t.kind() == kind::VAR {
            btf.tail_u32(&t) == linkage::EXTERN
        } else {
            t.vlen() == linkage::EXTERN
        };
        ok.then_some(id)
    }
}

fn find_int_btf_id(btf: &Btf) -> u32 {
    (1..btf.type_cnt())
        .find(|&id| btf.kind_of(id) == kind::INT && btf.type_by_id(id).is_ok_and(|t| btf.tail_u32(&t) & 0xff == 32))
        .unwrap_or(0)
}

/// `add_dummy_ksym_var`: only when `.ksyms` holds a FUNC.
fn add_dummy_ksym_var(btf: &mut Btf) -> Result<Option<u32>> {
    let Some(sec_id) = btf.find_by_name_kind(".ksyms", kind::DATASEC) else {
        return Ok(None);
    };
    let sec = btf.type_by_id(sec_id)?;
    let has_func = btf
        .secinfo_iter(&sec)
        .any(|v| btf.type_by_id(v.type_id).is_ok_and(|t| t.kind() == kind::FUNC));
    if !has_func {
        return Ok(None);
    }
    let int_id = find_int_btf_id(btf);
    btf.add_var("dummy_ksym", linkage::GLOBAL, int_id).map(Some)
}

// ---------------------------------------------------------------------------
// Resolution on the build host (or from explicit inputs).

/// What resolution decided for each extern (same order as the descriptors).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    pub is_set: Vec<bool>,
    /// Typeless ksym addresses (0 when unresolved).
    pub addr: Vec<u64>,
}

fn kcfg_err(name: &str, msg: String) -> Error {
    Error::unsupported(format!("extern (kcfg) '{name}': {msg}"))
}

fn set_num(ext: &Extern, buf: &mut [u8], value: u64) -> Result<()> {
    let ExternKind::Kcfg {
        size,
        ty,
        is_signed,
        data_off,
        ..
    } = ext.kind
    else {
        unreachable!("kconfig only")
    };
    if !matches!(ty, KcfgType::Int | KcfgType::Char | KcfgType::Bool) {
        return Err(kcfg_err(
            &ext.name,
            format!("value '{value}' implies integer, char, or boolean type"),
        ));
    }
    if ty == KcfgType::Bool && value > 1 {
        return Err(kcfg_err(&ext.name, format!("value '{value}' isn't boolean compatible")));
    }
    let bits = size * 8;
    let fits = size == 8
        || if is_signed {
            value.wrapping_add(1u64 << (bits - 1)) < (1u64 << bits)
        } else {
            value >> bits == 0
        };
    if !fits {
        return Err(kcfg_err(
            &ext.name,
            format!("value '{value}' doesn't fit in {size} bytes"),
        ));
    }
    let off = data_off as usize;
    let bytes = value.to_le_bytes();
    match size {
        1 | 2 | 4 | 8 => buf[off..off + size as usize].copy_from_slice(&bytes[..size as usize]),
        _ => return Err(kcfg_err(&ext.name, format!("unsupported size {size}"))),
    }
    Ok(())
}

fn set_tristate(ext: &Extern, buf: &mut [u8], value: u8) -> Result<()> {
    let ExternKind::Kcfg { ty, data_off, .. } = ext.kind else {
        unreachable!("kconfig only")
    };
    let off = data_off as usize;
    match ty {
        KcfgType::Bool => {
            if value == b'm' {
                return Err(kcfg_err(&ext.name, "value 'm' implies tristate or char type".into()));
            }
            buf[off] = (value == b'y') as u8;
        }
        KcfgType::Tristate => {
            // enum libbpf_tristate { TRI_NO = 0, TRI_YES = 1, TRI_MODULE = 2 }
            let v: u32 = match value {
                b'y' => 1,
                b'm' => 2,
                _ => 0,
            };
            buf[off..off + 4].copy_from_slice(&v.to_le_bytes());
        }
        KcfgType::Char => buf[off] = value,
        _ => {
            return Err(kcfg_err(
                &ext.name,
                format!("value '{}' implies bool, tristate, or char type", value as char),
            ));
        }
    }
    Ok(())
}

fn set_str(ext: &Extern, buf: &mut [u8], value: &str) -> Result<()> {
    let ExternKind::Kcfg { ty, size, data_off, .. } = ext.kind else {
        unreachable!("kconfig only")
    };
    if ty != KcfgType::CharArr {
        return Err(kcfg_err(&ext.name, format!("value '{value}' implies char array type")));
    }
    let bytes = value.as_bytes();
    if bytes.len() < 2 || bytes[bytes.len() - 1] != b'"' {
        return Err(kcfg_err(&ext.name, format!("invalid string config '{value}'")));
    }
    let mut len = bytes.len() - 2;
    if len >= size as usize {
        len = size as usize - 1;
    }
    let off = data_off as usize;
    buf[off..off + len].copy_from_slice(&bytes[1..1 + len]);
    buf[off + len] = 0;
    Ok(())
}

/// `strtoull(value, &end, 0)` with the whole string consumed.
fn parse_u64_c(value: &str) -> Option<u64> {
    let v = value.trim_start();
    let (neg, v) = match v.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, v.strip_prefix('+').unwrap_or(v)),
    };
    let n = if let Some(h) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()?
    } else if v.len() > 1 && v.starts_with('0') {
        u64::from_str_radix(&v[1..], 8).ok()?
    } else {
        v.parse::<u64>().ok()?
    };
    Some(if neg { n.wrapping_neg() } else { n })
}

/// Index of the first extern of each name: a lookup per config or kallsyms
/// line rather than a scan of every extern (hostile-input bound).
fn first_by_name(externs: &[Extern]) -> HashMap<&str, usize> {
    let mut first = HashMap::new();
    for (i, e) in externs.iter().enumerate() {
        first.entry(e.name.as_str()).or_insert(i);
    }
    first
}

/// Apply `CONFIG_X=value` lines to the kconfig image (first value wins).
fn apply_kconfig(externs: &[Extern], kcfg_data: &mut [u8], is_set: &mut [bool], text: &str) -> Result<()> {
    let first = first_by_name(externs);
    for line in text.lines() {
        if !line.starts_with("CONFIG_") {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            return Err(Error::unsupported(format!("failed to parse '{line}': no separator")));
        };
        if value.is_empty() {
            return Err(Error::unsupported(format!("failed to parse '{line}': no value")));
        }
        let Some(&i) = first.get(name) else {
            continue;
        };
        if is_set[i] || !externs[i].is_kcfg() {
            continue;
        }
        let ext = &externs[i];
        match value.as_bytes()[0] {
            b'y' | b'n' | b'm' => set_tristate(ext, kcfg_data, value.as_bytes()[0])?,
            b'"' => set_str(ext, kcfg_data, value)?,
            _ => {
                let num = parse_u64_c(value)
                    .ok_or_else(|| kcfg_err(&ext.name, format!("value '{value}' isn't a valid integer")))?;
                let ExternKind::Kcfg { ty, .. } = ext.kind else {
                    unreachable!()
                };
                if ty != KcfgType::Int && ty != KcfgType::Char {
                    return Err(kcfg_err(&ext.name, format!("value '{value}' implies integer type")));
                }
                set_num(ext, kcfg_data, num)?;
            }
        }
        is_set[i] = true;
    }
    Ok(())
}

/// Resolve externs as libbpf's `bpf_object__resolve_externs` does in gen mode,
/// filling the kconfig map image `kcfg_data`.
pub fn resolve(externs: &[Extern], kcfg_data: &mut [u8], inputs: &dyn ResolveInputs) -> Result<Resolved> {
    let n = externs.len();
    let mut res = Resolved {
        is_set: vec![false; n],
        addr: vec![0; n],
    };
    let (mut need_config, mut need_kallsyms) = (false, false);
    for (i, ext) in externs.iter().enumerate() {
        match ext.kind {
            ExternKind::Ksym { type_id } => {
                if type_id != 0 {
                    // Typed ksyms and kfuncs are looked up by the loader at run time.
                    res.is_set[i] = true;
                } else {
                    need_kallsyms = true;
                }
            }
            ExternKind::Kcfg { .. } => {
                if ext.name.starts_with("CONFIG_") {
                    need_config = true;
                    continue;
                }
                let value = match ext.name.as_str() {
                    "LINUX_KERNEL_VERSION" => inputs.kernel_version()? as u64,
                    // Every feature counts as supported in gen mode.
                    "LINUX_HAS_BPF_COOKIE" | "LINUX_HAS_SYSCALL_WRAPPER" => 1,
                    _ if ext.name.starts_with("LINUX_") && ext.is_weak => 0,
                    _ => return Err(kcfg_err(&ext.name, "unrecognized virtual extern".into())),
                };
                set_num(ext, kcfg_data, value)?;
                res.is_set[i] = true;
            }
        }
    }
    if need_config {
        // Explicit values first; the kernel config only if something is left.
        let extra = inputs.kconfig_extra();
        if let Some(extra) = &extra {
            apply_kconfig(externs, kcfg_data, &mut res.is_set, extra)?;
        }
        let unset = externs.iter().enumerate().any(|(i, e)| e.is_kcfg() && !res.is_set[i]);
        if extra.is_none() || unset {
            apply_kconfig(externs, kcfg_data, &mut res.is_set, &inputs.kconfig()?)?;
        }
    }
    if need_kallsyms {
        // Every VAR ksym takes its kallsyms address (typed ones ignore it
        // later), and a name listed twice with different addresses is an error.
        let text = inputs.kallsyms()?;
        let mut seen = vec![false; n];
        let first = first_by_name(externs);
        for line in text.lines() {
            let mut parts = line.split_whitespace();
            let (Some(addr), Some(ty), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            let Ok(addr) = u64::from_str_radix(addr, 16) else {
                continue;
            };
            let name = match name.find(".llvm.") {
                Some(p) if ty == "d" => &name[..p],
                _ => name,
            };
            let Some(&i) = first.get(name) else {
                continue;
            };
            if externs[i].is_kcfg() || externs[i].is_func {
                continue;
            }
            if seen[i] {
                if res.addr[i] != addr {
                    return Err(Error::unsupported(format!(
                        "extern (ksym) '{name}': resolution is ambiguous: {:#x} or {addr:#x}",
                        res.addr[i]
                    )));
                }
                continue;
            }
            seen[i] = true;
            res.is_set[i] = true;
            res.addr[i] = addr;
        }
    }
    for (i, ext) in externs.iter().enumerate() {
        if !res.is_set[i] && !ext.is_weak {
            return Err(Error::unsupported(format!(
                "extern '{}' (strong): not resolved",
                ext.name
            )));
        }
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::parse_u64_c;

    #[test]
    fn strtoull_forms() {
        assert_eq!(parse_u64_c("42"), Some(42));
        assert_eq!(parse_u64_c("0x10"), Some(16));
        assert_eq!(parse_u64_c("010"), Some(8));
        assert_eq!(parse_u64_c("0"), Some(0));
        assert_eq!(parse_u64_c("-1"), Some(u64::MAX));
        assert_eq!(parse_u64_c("12abc"), None);
    }
}
