//! The light-skeleton header (`bpftool gen skeleton -L`, bpftool 7.5.0):
//! a C header that embeds the loader blobs and wraps them in
//! `<obj>__open/load/attach/destroy` helpers built on `<bpf/skel_internal.h>`.
//!
//! The text is bpftool's, byte for byte, with deliberate exceptions only
//! where bpftool's header would not compile or bpftool crashes: objects
//! without programs ([`ctx_size_line`]), bare `SEC("raw_tp")` programs
//! ([`attach_line`]) and arena maps ([`MmapedMap`]).

use std::collections::HashMap;
use std::fmt::{self, Write};
use std::io;

use crate::btf::cdecl::DeclPrinter;
use crate::btf::{Btf, kind, linkage};
use crate::error::{Error, Result};
use crate::generate::{Compat, GenOptions, LoaderBlobs, effective_def};
use crate::host::Host;
use crate::object::{Map, MapOrigin, Object, Program};
use crate::section_defs::{BPF_F_LINK, BPF_F_RDONLY_PROG, SkelAttach, section_target, skel_attach_kind};

/// bpftool formats identifiers into 256-byte buffers.
const IDENT_MAX: usize = 255;

/// `write!` into a `String` cannot fail.
macro_rules! w {
    ($out:expr, $($arg:tt)*) => {{
        let _ = write!($out, $($arg)*);
    }};
}

/// Every character outside `[A-Za-z0-9_]` becomes `_`, at most 255 bytes kept.
fn sanitize(name: &str) -> String {
    let mut s: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'_' {
                b as char
            } else {
                '_'
            }
        })
        .collect();
    s.truncate(IDENT_MAX);
    s
}

/// The name libbpf reports for a map (`bpf_map__name`): the ELF section name
/// for custom `.data.*` / `.rodata.*` maps, else the kernel-visible name.
fn user_map_name(map: &Map) -> &str {
    match map.origin {
        MapOrigin::Data if map.real_name != ".data" => &map.real_name,
        MapOrigin::Rodata if map.real_name != ".rodata" => &map.real_name,
        _ => &map.name,
    }
}

/// The skeleton field name of a map (bpftool's `get_map_ident`); `None` for
/// internal maps bpftool does not recognise.
pub fn map_ident(map: &Map) -> Option<String> {
    map_ident_of(user_map_name(map), map.is_internal())
}

/// [`map_ident`] from a name alone. Only exact with the name bpftool sees
/// (a custom section's full name); a loader without its object has just the
/// kernel's map names, which cut such names at 15 bytes.
pub fn map_ident_of(name: &str, internal: bool) -> Option<String> {
    if !internal {
        return Some(name[..name.floor_char_boundary(IDENT_MAX)].to_string());
    }
    [".data", ".rodata", ".bss", ".kconfig"]
        .iter()
        .find_map(|sfx| name.find(sfx))
        .map(|at| sanitize(&name[at + 1..]))
}

/// The skeleton field name a DATASEC maps to (bpftool's `get_datasec_ident`).
fn datasec_ident(sec_name: &str) -> Option<String> {
    if sec_name == ".addr_space.1" {
        return Some("arena".to_string());
    }
    [".data", ".rodata", ".bss", ".kconfig"]
        .iter()
        .any(|p| sec_name.starts_with(p))
        .then(|| sanitize(&sec_name[1..]))
}

/// The first DATASEC (in type-id order) whose identifier is `ident`.
///
/// Hostile-input bound: indexed once per header instead of a scan of every
/// type per mapped section (thousands of sections × millions of types). A
/// lookup still fails, as the scan did, if a DATASEC with a corrupt name
/// comes before the match.
struct DatasecIndex {
    first: HashMap<String, u32>,
    first_bad: Option<(u32, Error)>,
}

impl DatasecIndex {
    fn new(btf: &Btf) -> Result<Self> {
        let mut idx = DatasecIndex {
            first: HashMap::new(),
            first_bad: None,
        };
        for id in 1..btf.type_cnt() {
            let t = btf.type_by_id(id)?;
            if t.kind() != kind::DATASEC {
                continue;
            }
            match btf.name_of(&t) {
                Ok(name) => {
                    if let Some(ident) = datasec_ident(name) {
                        idx.first.entry(ident).or_insert(id);
                    }
                }
                Err(e) => {
                    if idx.first_bad.is_none() {
                        idx.first_bad = Some((id, e));
                    }
                }
            }
        }
        Ok(idx)
    }

    fn find(&self, ident: &str) -> Result<Option<u32>> {
        let hit = self.first.get(ident).copied();
        match &self.first_bad {
            Some((bad, e)) if hit.is_none_or(|id| id > *bad) => Err(e.clone()),
            _ => Ok(hit),
        }
    }
}

/// `roundup(value_size, 8) * max_entries`, rounded up to the host page size.
fn mmap_size(map: &Map, host: &Host) -> u64 {
    let def = effective_def(&map.def, host);
    let sz = (def.value_size as u64).div_ceil(8) * 8 * def.max_entries as u64;
    let page = host.page_size.max(1) as u64;
    sz.div_ceil(page) * page
}

/// The escape of each byte value: `\xNN`, or `\0` (padded to 4 bytes) for
/// zero.
static ESCAPES: [[u8; 4]; 256] = {
    let digits = b"0123456789abcdef";
    let mut t = [[0u8; 4]; 256];
    let mut i = 1;
    while i < 256 {
        t[i] = [b'\\', b'x', digits[i >> 4], digits[i & 15]];
        i += 1;
    }
    t[0] = *b"\\0\\0";
    t
};

/// bpftool's `print_hex`: every byte escaped (`\0` or `\xNN`), lines
/// continued with a backslash before they would exceed 78 characters.
///
/// Written through a small reused buffer: every escape is copied as 4 bytes
/// and the cursor advanced by its real width, so the only data-dependent
/// branch is the line break.
fn push_hex(out: &mut HeaderText<'_>, data: &[u8]) {
    const WIDTH: usize = 78;
    const CHUNK: usize = 8192;
    out.reserve(data.len() * 4 + data.len() / 19 * 2 + 2);
    let mut buf = [0u8; CHUNK + 8];
    let (mut at, mut col) = (0, 0);
    for &b in data {
        let w = 2 + 2 * usize::from(b != 0);
        if col + w > WIDTH {
            buf[at..at + 2].copy_from_slice(b"\\\n");
            at += 2;
            col = 0;
        }
        buf[at..at + 4].copy_from_slice(&ESCAPES[b as usize]);
        at += w;
        col += w;
        if at > CHUNK {
            out.push_str(std::str::from_utf8(&buf[..at]).expect("escapes are ASCII"));
            at = 0;
        }
    }
    out.push_str(std::str::from_utf8(&buf[..at]).expect("escapes are ASCII"));
}

/// A map the skeleton memory-maps: an internal map with `BPF_F_MMAPABLE`.
///
/// Divergence: bpftool decides this twice, for the struct before the load
/// phase and for `__open`/`__load` after it. An arena map counts only in the
/// second (its mapping exists only after libbpf created the map, and only if
/// mapping the placeholder fd 0 succeeded), which yields an `__open` that
/// uses a `skel->arena` member the struct lacks and stages a 0-byte mmap.
/// We use the struct's view throughout: no arena blocks. With `__arena`
/// globals (where bpftool crashes) the arena is mapped like the global-data
/// maps, with its own staging and mapping code ([`ArenaMapping`]).
struct MmapedMap<'o> {
    map: &'o Map,
    ident: String,
    arena: Option<ArenaMapping>,
}

/// How the skeleton maps an arena holding `__arena` globals: `__open`
/// stages the globals' image in anonymous memory, `__load` maps the arena at
/// its fixed address (`map_extra`) through `skel_finalize_map_data`, copies
/// the image to its start and drops the staging copy. The map descriptor's
/// `initial_value` (unused by the loader for an arena) records which of the
/// two the pointer holds: 0 while staged, the arena address once mapped.
struct ArenaMapping {
    /// The arena map's own skeleton identifier (`skel->maps.<map_ident>`).
    map_ident: String,
    addr: u64,
    mmap_size: u64,
    stage_size: u64,
}

/// What sets `skel->ctx.sz`, the part of the skeleton the loader program
/// reads and writes: the loader ctx followed by the map and program
/// descriptors. bpftool measures it up to `links`, which it only emits when
/// there are programs. Divergence: without programs we measure up to the end
/// of the last descriptor block (`maps`, or `ctx` alone), so the header
/// compiles and the loader sees the same descriptors.
fn ctx_size_line(has_progs: bool, has_maps: bool, ptr: &str) -> String {
    if has_progs {
        format!("\tskel->ctx.sz = ({ptr} *)&skel->links - ({ptr} *)skel;\n")
    } else if has_maps {
        format!("\tskel->ctx.sz = ({ptr} *)(&skel->maps + 1) - ({ptr} *)skel;\n")
    } else {
        "\tskel->ctx.sz = sizeof(skel->ctx);\n".to_string()
    }
}

/// The attach statement of `<obj>__<prog>__attach`. Divergence: bpftool
/// crashes on a raw tracepoint section without `/name` (bare `raw_tp`);
/// such programs get the auto-attach-not-supported form instead.
fn attach_line(out: &mut HeaderText<'_>, prog: &Program) {
    let attrs = prog.load_attrs();
    match skel_attach_kind(attrs.prog_type, attrs.expected_attach_type) {
        SkelAttach::RawTracepoint => match section_target(&prog.sec_name) {
            Some(tp) => w!(out, "\tint fd = skel_raw_tracepoint_open(\"{tp}\", prog_fd);\n"),
            None => out.push_str("\tint fd = ((void)prog_fd, 0); /* auto-attach not supported */\n"),
        },
        SkelAttach::Iter => out.push_str("\tint fd = skel_link_create(prog_fd, 0, BPF_TRACE_ITER);\n"),
        SkelAttach::TracingRawTp => out.push_str("\tint fd = skel_raw_tracepoint_open(NULL, prog_fd);\n"),
        SkelAttach::Unsupported => out.push_str("\tint fd = ((void)prog_fd, 0); /* auto-attach not supported */\n"),
    }
}

/// For an arena without `map_extra`: before the loader runs, reserve a range
/// for it that does not cross a 4 GiB boundary (the kernel's rule for an
/// arena's user range) and pass its address in the map descriptor's
/// `initial_value`, where the loader takes it as `map_extra`; the mapping in
/// `__load` then replaces the reservation.
fn arena_reservation(out: &mut HeaderText<'_>, a: &ArenaMapping) {
    let (mid, size) = (&a.map_ident, a.mmap_size);
    w!(
        out,
        "\t{{\n\
         \t\t__u64 span = {size}ULL + (1ULL << 32), start;\n\
         \t\tchar *r = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);\n\
         \n\
         \t\tif (r == MAP_FAILED)\n\
         \t\t\treturn -ENOMEM;\n\
         \t\tstart = ((__u64)(long)r + (1ULL << 32) - 1) & ~((1ULL << 32) - 1);\n\
         \t\tif (start > (__u64)(long)r)\n\
         \t\t\tmunmap(r, start - (__u64)(long)r);\n\
         \t\tif ((__u64)(long)r + span > start + {size}ULL)\n\
         \t\t\tmunmap((void *)(long)(start + {size}ULL), (__u64)(long)r + span - start - {size}ULL);\n\
         \t\tskel->maps.{mid}.initial_value = start;\n\
         \t}}\n"
    );
}

/// struct_ops maps in `__attach` (divergence: bpftool 7.5.0 crashes on
/// them), as libbpf's `bpf_map__attach_struct_ops`: write the map's value
/// (the kernel-layout image with each function pointer set to its
/// program's fd), which registers a map without BPF_F_LINK; a
/// `.struct_ops.link` map is then attached through a struct_ops link. Maps
/// the loader did not create (`SEC("?.struct_ops…")`) have no fd and no value.
fn struct_ops_attach(out: &mut HeaderText<'_>, st_ops: &[(&Map, String)], obj: &Object, blobs: &LoaderBlobs) {
    for (m, id) in st_ops {
        let Some(v) = blobs.struct_ops.iter().find(|v| std::ptr::eq(&obj.maps[v.map_idx], *m)) else {
            continue;
        };
        w!(
            out,
            "\tif (ret >= 0 && skel->maps.{id}.map_fd > 0) {{\n\
             \t\tstatic const char image[] __attribute__((__aligned__(8))) = \"\\\n"
        );
        push_hex(out, &v.value);
        out.push_str(
            "\";\n\
             \t\tchar value[sizeof(image) - 1];\n\
             \t\tunsigned long prog_fd;\n\
             \t\t__u32 zero = 0;\n\
             \n\
             \t\tmemcpy(value, image, sizeof(value));\n",
        );
        for (off, prog) in &v.funcs {
            w!(
                out,
                "\t\tprog_fd = skel->progs.{prog}.prog_fd;\n\
                 \t\tmemcpy(value + {off}, &prog_fd, sizeof(prog_fd));\n"
            );
        }
        w!(
            out,
            "\t\tret = skel_map_update_elem(skel->maps.{id}.map_fd, &zero, value, 0);\n"
        );
        if v.link {
            // A link map keeps the value it was first given: attaching it
            // again after a detach finds it set (EBUSY), which libbpf's
            // bpf_map__attach_struct_ops also accepts.
            out.push_str(
                "#ifdef __KERNEL__\n\
                 \t\tif (ret == -EBUSY)\n\
                 #else\n\
                 \t\tif (ret < 0 && errno == EBUSY)\n\
                 #endif\n\
                 \t\t\tret = 0;\n",
            );
            w!(
                out,
                "\t\tif (ret >= 0) {{\n\
                 \t\t\tint fd = skel_link_create(skel->maps.{id}.map_fd, 0, BPF_STRUCT_OPS);\n\
                 \n\
                 \t\t\tif (fd > 0)\n\
                 \t\t\t\tskel->links.{id}_fd = fd;\n\
                 \t\t\tret = fd;\n\
                 \t\t}}\n"
            );
        }
        out.push_str("\t}\n");
    }
}

/// struct_ops maps in `__detach`: closing a struct_ops link unregisters
/// it; a map without BPF_F_LINK is unregistered by deleting its value (what
/// libbpf's struct_ops "link" does on destroy; harmless when not attached).
fn struct_ops_detach(out: &mut HeaderText<'_>, st_ops: &[(&Map, String)]) {
    for (m, id) in st_ops {
        if m.def.map_flags & BPF_F_LINK != 0 {
            w!(out, "\tskel_closenz(skel->links.{id}_fd);\n");
        } else {
            w!(
                out,
                "\tif (skel->maps.{id}.map_fd > 0) {{\n\
                 \t\t__u32 zero = 0;\n\
                 \n\
                 \t\tskel_map_delete_elem(skel->maps.{id}.map_fd, &zero);\n\
                 \t}}\n"
            );
        }
    }
}

/// The `struct <obj>__<ident> { ... } *<ident>;` member for one mmaped map
/// (bpftool's `codegen_datasec_def`): the section's non-static variables at
/// their offsets, with `char __padN[k]` where 4-byte alignment would not
/// place them.
fn datasec_struct(
    out: &mut String,
    printer: &mut DeclPrinter,
    btf: &Btf,
    datasecs: &DatasecIndex,
    obj_name: &str,
    m: &MmapedMap,
) -> Result<()> {
    let Some(sec_id) = datasecs.find(&m.ident)? else {
        // Sections without BTF (compiler-generated constants) get an empty
        // struct; the data is still mapped.
        w!(out, "\tstruct {obj_name}__{} {{\n\t}} *{};\n", m.ident, m.ident);
        return Ok(());
    };
    let sec = btf.type_by_id(sec_id)?;
    let sec_name = btf.name_of(&sec)?;
    let strip_mods = sec_name != ".kconfig";
    w!(out, "\tstruct {obj_name}__{} {{\n", m.ident);
    let mut off: u64 = 0;
    let mut pad_cnt = 0;
    for (i, vsi) in btf.secinfos(&sec).iter().enumerate() {
        let var = btf.type_by_id(vsi.type_id)?;
        if btf.tail_u32(&var) == linkage::STATIC {
            continue;
        }
        let var_name = btf.name_of(&var)?;
        let need = vsi.offset as u64;
        if off > need {
            return Err(Error::btf(format!(
                "something is wrong for {sec_name}'s variable #{i}: need offset {need}, already at {off}"
            ))
            .in_section(".BTF"));
        }
        let align = printer.align_of(var.size_or_type);
        if align == 0 {
            return Err(
                Error::btf(format!("failed to determine alignment of variable '{var_name}'")).in_section(".BTF"),
            );
        }
        // bpftool assumes a 32-bit target: alignment beyond 4 is not relied on.
        let align = align.min(4) as u64;
        if off.div_ceil(align) * align != need {
            w!(out, "\t\tchar __pad{pad_cnt}[{}];\n", need - off);
            pad_cnt += 1;
        }
        out.push_str("\t\t");
        printer.emit_type_decl(out, var.size_or_type, &sanitize(var_name), 2, strip_mods)?;
        out.push_str(";\n");
        off = need + vsi.size as u64;
    }
    w!(out, "\t}} *{};\n", m.ident);
    Ok(())
}

/// The `_Static_assert`s on the size of every exposed variable.
fn size_asserts(out: &mut String, btf: &Btf, datasecs: &DatasecIndex, mmaped: &[MmapedMap]) -> Result<()> {
    for m in mmaped {
        let Some(sec_id) = datasecs.find(&m.ident)? else {
            continue;
        };
        let sec = btf.type_by_id(sec_id)?;
        for vsi in btf.secinfos(&sec) {
            let var = btf.type_by_id(vsi.type_id)?;
            if btf.tail_u32(&var) == linkage::STATIC {
                continue;
            }
            let Ok(size) = btf.resolve_size(var.size_or_type) else {
                continue;
            };
            let v = sanitize(btf.name_of(&var)?);
            w!(
                out,
                "\t_Static_assert(sizeof(s->{}->{v}) == {size}, \"unexpected size of '{v}'\");\n",
                m.ident
            );
        }
    }
    Ok(())
}

/// Generate the light-skeleton header for `obj` embedding `blobs`, as
/// `bpftool gen skeleton -L` would on `host`.
pub fn gen_skeleton(obj: &Object, blobs: &LoaderBlobs, host: &Host) -> Result<String> {
    gen_skeleton_with(obj, blobs, host, GenOptions::default())
}

/// [`gen_skeleton`] in the header style `opts.compat` names.
pub fn gen_skeleton_with(obj: &Object, blobs: &LoaderBlobs, host: &Host, opts: GenOptions) -> Result<String> {
    gen_inner(obj, blobs, host, opts, None).map_err(|e| e.for_object(&obj.name))
}

/// A signed light skeleton, as `bpftool gen skeleton -L -S -k KEY -i CERT`
/// (bpftool 7.8.0) prints it: `signature` is the detached CMS signature
/// over `blobs.insns`, which must come from a loader generated with
/// `gen_hash` (the signature covers the data blob through the hash the
/// loader checks). The header gains a `keyring_id` member and hands the
/// signature, and the SHA-256 of the instructions (the loader map's
/// exclusive-program hash), to `bpf_load_and_run` (libbpf >= 1.7's
/// `skel_internal.h`).
pub fn gen_signed_skeleton(
    obj: &Object,
    blobs: &LoaderBlobs,
    host: &Host,
    opts: GenOptions,
    signature: &[u8],
) -> Result<String> {
    signed_skeleton_checks(&opts, signature)
        .and_then(|()| gen_inner(obj, blobs, host, opts, Some(signature)))
        .map_err(|e| e.for_object(&obj.name))
}

/// The kernel's limit on the signature, and the options a signed header needs.
/// Linux takes a program signature of up to `KMALLOC_MAX_CACHE_SIZE` bytes (two
/// pages: 8 KiB with 4 KiB pages); bpftool 7.8.0's buffer holds 4096, which only
/// ML-DSA-87 signatures exceed (README divergence 16).
fn signed_skeleton_checks(opts: &GenOptions, signature: &[u8]) -> Result<()> {
    const MAX_SIG_SIZE: usize = 8192;
    if opts.compat != Compat::Bpftool78 {
        return Err(Error::unsupported(
            "signed light skeletons need the bpftool-7.8 header style (bpftool 7.5.0 has no -S)",
        ));
    }
    if !opts.gen_hash {
        return Err(Error::unsupported(
            "signed light skeletons need a loader generated with gen_hash",
        ));
    }
    if signature.is_empty() || signature.len() > MAX_SIG_SIZE {
        return Err(Error::unsupported(format!(
            "signature of {} bytes: must be 1 to {MAX_SIG_SIZE} bytes",
            signature.len()
        )));
    }
    Ok(())
}

/// The signed header's additions after the `opts_insn` literal: the
/// signature, the instructions' SHA-256 and the `opts` fields that pass
/// them (and the skeleton's keyring) on.
fn push_signature(out: &mut HeaderText<'_>, insns: &[u8], signature: &[u8]) {
    use sha2::Digest;
    out.push_str("\tstatic const char opts_sig[] __attribute__((__aligned__(8))) = \"\\\n");
    push_hex(out, signature);
    out.push_str("\";\n\tstatic const char opts_excl_hash[] __attribute__((__aligned__(8))) = \"\\\n");
    push_hex(out, &sha2::Sha256::digest(insns));
    out.push_str(
        "\";\n\
         \topts.signature = (void *)opts_sig;\n\
         \topts.signature_sz = sizeof(opts_sig) - 1;\n\
         \topts.excl_prog_hash = (void *)opts_excl_hash;\n\
         \topts.excl_prog_hash_sz = sizeof(opts_excl_hash) - 1;\n\
         \topts.keyring_id = skel->keyring_id;\n",
    );
}

/// The spellings that differ between bpftool 7.5.0's header and 7.8.0's
/// (which casts `void *` results so the header is also valid C++).
struct Style {
    /// `(struct NAME *)` before `skel_alloc`.
    alloc_cast: String,
    /// `char` or `void` in the `ctx.sz` pointer difference.
    ptr: &'static str,
    /// Cast `skel_prep_map_data` / `skel_finalize_map_data` to the member's type.
    typeof_casts: bool,
    /// An empty line between the instruction literal and `opts.ctx = ...`.
    blank_after_insns: bool,
}

impl Style {
    fn new(compat: Compat, name: &str) -> Style {
        let cxx = compat == Compat::Bpftool78;
        Style {
            alloc_cast: if cxx {
                format!("(struct {name} *)")
            } else {
                String::new()
            },
            ptr: if cxx { "char" } else { "void" },
            typeof_casts: cxx,
            blank_after_insns: !cxx,
        }
    }

    fn cast_to(&self, member: &str) -> String {
        if self.typeof_casts {
            format!("(__typeof__(skel->{member}))")
        } else {
            String::new()
        }
    }
}

/// What every part of the header is written from: the object's maps and
/// programs as the skeleton names them, and the loader's blobs.
struct Skel<'a> {
    obj: &'a Object,
    blobs: &'a LoaderBlobs,
    host: &'a Host,
    signature: Option<&'a [u8]>,
    name: &'a str,
    style: Style,
    guard: String,
    maps: Vec<(&'a Map, String)>,
    progs: Vec<&'a Program>,
    /// struct_ops maps get a link fd like programs (bpftool's attach_map_cnt).
    st_ops: Vec<(&'a Map, String)>,
    has_links: bool,
    mmaped: Vec<MmapedMap<'a>>,
    /// The `__arena` globals' initial image (empty without an arena).
    arena_image: &'a [u8],
}

fn gen_inner(
    obj: &Object,
    blobs: &LoaderBlobs,
    host: &Host,
    opts: GenOptions,
    signature: Option<&[u8]>,
) -> Result<String> {
    let header = Header::prepare(obj, blobs, host, opts, signature)?;
    let mut out = HeaderText::buffer(header.skel.capacity());
    header.write(&mut out);
    Ok(out.text)
}

/// [`gen_skeleton_with`] up to the writing: every generation error comes here, so
/// that [`Header::write_to`] can stream the text to its output as it is made rather
/// than hold it whole (pyperf600's header is 3.4 MB, three times its loader blobs,
/// and would set the native command's peak memory).
pub fn prepare_skeleton<'a>(
    obj: &'a Object,
    blobs: &'a LoaderBlobs,
    host: &'a Host,
    opts: GenOptions,
) -> Result<Header<'a>> {
    Header::prepare(obj, blobs, host, opts, None).map_err(|e| e.for_object(&obj.name))
}

/// Header text on its way out: kept whole (the API's `String`), or handed to a
/// writer whenever [`HeaderText::CHUNK`] bytes have gathered.
struct HeaderText<'w> {
    text: String,
    sink: Option<&'w mut dyn io::Write>,
    /// The writer's first error; what follows is dropped.
    error: Option<io::Error>,
    /// Bytes handed to the writer so far.
    written: u64,
}

impl<'w> HeaderText<'w> {
    const CHUNK: usize = 64 * 1024;

    fn buffer(capacity: usize) -> HeaderText<'w> {
        HeaderText {
            text: String::with_capacity(capacity),
            sink: None,
            error: None,
            written: 0,
        }
    }

    fn streamed(sink: &'w mut dyn io::Write) -> HeaderText<'w> {
        HeaderText {
            text: String::with_capacity(Self::CHUNK + 8192),
            sink: Some(sink),
            error: None,
            written: 0,
        }
    }

    fn push_str(&mut self, s: &str) {
        self.text.push_str(s);
        if self.text.len() >= Self::CHUNK {
            self.drain();
        }
    }

    fn push(&mut self, c: char) {
        self.text.push(c);
    }

    /// Room for `additional` more bytes, when the text is kept whole.
    fn reserve(&mut self, additional: usize) {
        if self.sink.is_none() {
            self.text.reserve(additional);
        }
    }

    fn drain(&mut self) {
        let Some(sink) = self.sink.as_mut() else { return };
        if self.error.is_none() {
            match sink.write_all(self.text.as_bytes()) {
                Ok(()) => self.written += self.text.len() as u64,
                Err(e) => self.error = Some(e),
            }
        }
        self.text.clear();
    }

    /// Everything written out: the header's size, or the writer's first error.
    fn finish(mut self) -> io::Result<u64> {
        self.drain();
        self.error.map_or(Ok(self.written), Err)
    }
}

impl fmt::Write for HeaderText<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_str(s);
        Ok(())
    }
}

/// A header whose fallible parts (the data-section structs and the size
/// assertions, both read from BTF) are already rendered: only its writer can fail.
pub struct Header<'a> {
    skel: Skel<'a>,
    head: String,
    tail: String,
}

impl<'a> Header<'a> {
    fn prepare(
        obj: &'a Object,
        blobs: &'a LoaderBlobs,
        host: &'a Host,
        opts: GenOptions,
        signature: Option<&'a [u8]>,
    ) -> Result<Header<'a>> {
        let skel = Skel::new(obj, blobs, host, opts, signature);
        let mut head = String::new();
        skel.write_struct(&mut head)?;
        let mut tail = String::new();
        skel.write_assertions(&mut tail)?;
        Ok(Header { skel, head, tail })
    }

    /// The header's text, written to `sink` in chunks of [`HeaderText::CHUNK`];
    /// its size in bytes.
    pub fn write_to(&self, sink: &mut dyn io::Write) -> io::Result<u64> {
        let mut out = HeaderText::streamed(sink);
        self.write(&mut out);
        out.finish()
    }

    fn write(&self, out: &mut HeaderText<'_>) {
        out.push_str(&self.head);
        self.skel.write_attach(out);
        self.skel.write_destroy(out);
        self.skel.write_open(out);
        self.skel.write_load(out);
        out.push_str(&self.tail);
    }
}

impl<'a> Skel<'a> {
    fn new(
        obj: &'a Object,
        blobs: &'a LoaderBlobs,
        host: &'a Host,
        opts: GenOptions,
        signature: Option<&'a [u8]>,
    ) -> Skel<'a> {
        let name = obj.name.as_str();
        let style = Style::new(opts.compat, name);
        let guard = format!("__{name}_SKEL_H__").to_ascii_uppercase();
        let maps: Vec<(&'a Map, String)> = obj.maps.iter().filter_map(|m| map_ident(m).map(|id| (m, id))).collect();
        let progs: Vec<&'a Program> = obj.programs.iter().filter(|p| !p.is_subprog).collect();
        // struct_ops maps get a link fd like programs (bpftool's attach_map_cnt).
        let st_ops: Vec<(&'a Map, String)> = maps
            .iter()
            .filter(|(m, _)| m.struct_ops.is_some())
            .map(|(m, id)| (*m, id.clone()))
            .collect();
        let has_links = !progs.is_empty() || !st_ops.is_empty();
        let arena_map = obj.arena.as_ref().map(|a| &obj.maps[a.map_idx]);
        let mmaped: Vec<MmapedMap<'a>> = maps
            .iter()
            .filter_map(|(m, id)| {
                if m.is_mmapable() {
                    return Some(MmapedMap {
                        map: m,
                        ident: id.clone(),
                        arena: None,
                    });
                }
                let arena = obj
                    .arena
                    .as_ref()
                    .filter(|_| arena_map.is_some_and(|a| std::ptr::eq(a, *m)))?;
                let page = host.page_size.max(1) as u64;
                Some(MmapedMap {
                    map: m,
                    ident: "arena".to_string(),
                    arena: Some(ArenaMapping {
                        map_ident: id.clone(),
                        addr: m.def.map_extra,
                        mmap_size: crate::generate::arena_mmap_size(&m.def, host),
                        stage_size: (arena.data.len() as u64).div_ceil(page).max(1) * page,
                    }),
                })
            })
            .collect();
        Skel {
            obj,
            blobs,
            host,
            signature,
            name,
            style,
            guard,
            maps,
            progs,
            st_ops,
            has_links,
            mmaped,
            arena_image: obj.arena.as_ref().map(|a| a.data.as_slice()).unwrap_or(&[]),
        }
    }

    /// The header's size, near enough that it never grows: the blobs and map
    /// images as hex escapes, plus the text around them.
    fn capacity(&self) -> usize {
        let Skel {
            obj,
            blobs,
            maps,
            progs,
            mmaped,
            ..
        } = self;
        let arena_image = obj.arena.as_ref().map(|a| a.data.as_slice()).unwrap_or(&[]);
        let image_len: usize = mmaped.iter().map(|m| m.map.initial_value.len()).sum::<usize>() + arena_image.len();
        let hex_len = (blobs.data.len() + blobs.insns.len() + image_len) * 41 / 10;
        hex_len + 4096 + 600 * (progs.len() + maps.len())
    }

    /// The guard, the includes and `struct NAME` with its descriptors, links and mmaped maps.
    fn write_struct(&self, out: &mut String) -> Result<()> {
        let Skel {
            obj,
            signature,
            name,
            guard,
            maps,
            progs,
            st_ops,
            has_links,
            mmaped,
            ..
        } = self;
        let has_links = *has_links;
        w!(
            out,
            "/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */\n\
             /* THIS FILE IS AUTOGENERATED BY BPFTOOL! */\n\
             #ifndef {guard}\n\
             #define {guard}\n\
             \n\
             #include <bpf/skel_internal.h>\n\
             \n\
             struct {name} {{\n\
             \tstruct bpf_loader_ctx ctx;\n"
        );
        if !maps.is_empty() {
            out.push_str("\tstruct {\n");
            for (_, id) in maps.iter() {
                w!(out, "\t\tstruct bpf_map_desc {id};\n");
            }
            out.push_str("\t} maps;\n");
        }
        if !progs.is_empty() {
            out.push_str("\tstruct {\n");
            for p in progs.iter() {
                w!(out, "\t\tstruct bpf_prog_desc {};\n", p.name);
            }
            out.push_str("\t} progs;\n");
        }
        if has_links {
            out.push_str("\tstruct {\n");
            for p in progs.iter() {
                w!(out, "\t\tint {}_fd;\n", p.name);
            }
            // Divergence: bpftool 7.5.0 prints these as "t\tint ..." (a typo
            // that does not compile); it crashes before finishing anyway.
            for (_, id) in st_ops.iter() {
                w!(out, "\t\tint {id}_fd;\n");
            }
            out.push_str("\t} links;\n");
        }
        if signature.is_some() {
            out.push_str("\t__s32 keyring_id;\n");
        }
        if let Some(btf) = &obj.btf {
            let mut printer = DeclPrinter::new(btf);
            let datasecs = DatasecIndex::new(btf)?;
            for m in mmaped.iter() {
                datasec_struct(out, &mut printer, btf, &datasecs, name, m)?;
            }
        }
        out.push_str("};\n");
        Ok(())
    }

    /// `__PROG__attach`, `__attach` and `__detach`.
    fn write_attach(&self, out: &mut HeaderText<'_>) {
        let Skel {
            obj,
            blobs,
            name,
            progs,
            st_ops,
            ..
        } = self;
        // Attach / detach.
        for p in progs.iter() {
            let pn = &p.name;
            w!(
                out,
                "\nstatic inline int\n\
                 {name}__{pn}__attach(struct {name} *skel)\n\
                 {{\n\
                 \tint prog_fd = skel->progs.{pn}.prog_fd;\n"
            );
            attach_line(out, p);
            w!(
                out,
                "\n\
                 \tif (fd > 0)\n\
                 \t\tskel->links.{pn}_fd = fd;\n\
                 \treturn fd;\n\
                 }}\n"
            );
        }
        w!(
            out,
            "\nstatic inline int\n\
             {name}__attach(struct {name} *skel)\n\
             {{\n\
             \tint ret = 0;\n\
             \n"
        );
        for p in progs.iter() {
            w!(out, "\tret = ret < 0 ? ret : {name}__{}__attach(skel);\n", p.name);
        }
        struct_ops_attach(out, st_ops, obj, blobs);
        w!(
            out,
            "\treturn ret < 0 ? ret : 0;\n\
             }}\n\
             \n\
             static inline void\n\
             {name}__detach(struct {name} *skel)\n\
             {{\n"
        );
        for p in progs.iter() {
            w!(out, "\tskel_closenz(skel->links.{}_fd);\n", p.name);
        }
        struct_ops_detach(out, st_ops);
        out.push_str("}\n");
    }

    /// `__destroy`: links, program and map fds, mmaped memory.
    fn write_destroy(&self, out: &mut HeaderText<'_>) {
        let Skel {
            host,
            name,
            maps,
            progs,
            mmaped,
            ..
        } = self;
        // Destroy.
        w!(
            out,
            "static void\n\
             {name}__destroy(struct {name} *skel)\n\
             {{\n\
             \tif (!skel)\n\
             \t\treturn;\n\
             \t{name}__detach(skel);\n"
        );
        for p in progs.iter() {
            w!(out, "\tskel_closenz(skel->progs.{}.prog_fd);\n", p.name);
        }
        for (m, id) in maps.iter() {
            if let Some(a) = mmaped
                .iter()
                .find(|x| std::ptr::eq(x.map, *m))
                .and_then(|x| x.arena.as_ref())
            {
                w!(
                    out,
                    "\tif ((void *)(long)skel->maps.{id}.initial_value == (void *)skel->arena) {{\n\
                     \t\tskel_free_map_data(skel->arena, 0, {mmap});\n\
                     \t}} else {{\n\
                     \t\tskel_free_map_data(skel->arena, 0, {stage});\n\
                     \t\tif (skel->maps.{id}.initial_value) /* an address reserved, never mapped */\n\
                     \t\t\tskel_free_map_data((void *)(long)skel->maps.{id}.initial_value, 0, {mmap});\n\
                     \t}}\n",
                    mmap = a.mmap_size,
                    stage = a.stage_size
                );
            }
            if m.is_mmapable() {
                w!(
                    out,
                    "\tskel_free_map_data(skel->{id}, skel->maps.{id}.initial_value, {});\n",
                    mmap_size(m, host)
                );
            }
            w!(out, "\tskel_closenz(skel->maps.{id}.map_fd);\n");
        }
        out.push_str("\tskel_free(skel);\n}\n");
    }

    /// `__open`, which stages each mmaped map's initial image, and `__load`'s opening lines.
    fn write_open(&self, out: &mut HeaderText<'_>) {
        let Skel {
            blobs,
            host,
            name,
            style,
            maps,
            has_links,
            mmaped,
            arena_image,
            ..
        } = self;
        let has_links = *has_links;
        // Open: allocate and stage each mmaped map's initial image.
        w!(
            out,
            "static inline struct {name} *\n\
             {name}__open(void)\n\
             {{\n\
             \tstruct {name} *skel;\n\
             \n\
             \tskel = {}skel_alloc(sizeof(*skel));\n\
             \tif (!skel)\n\
             \t\tgoto cleanup;\n",
            style.alloc_cast
        );
        out.push_str(&ctx_size_line(has_links, !maps.is_empty(), style.ptr));
        for m in mmaped.iter() {
            out.push_str("\t{\n\t\tstatic const char data[] __attribute__((__aligned__(8))) = \"\\\n");
            if let Some(a) = &m.arena {
                push_hex(out, arena_image);
                w!(
                    out,
                    "\";\n\
                     \n\
                     \t\tskel->arena = {}skel_prep_map_data((void *)data, {},\n\
                     \t\t\t\t\t\tsizeof(data) - 1);\n\
                     \t\tif (!skel->arena)\n\
                     \t\t\tgoto cleanup;\n\
                     \t}}\n",
                    style.cast_to("arena"),
                    a.stage_size
                );
                continue;
            }
            // The image after the load phase: kconfig values are resolved then.
            let image = match (&m.map.origin, &blobs.kconfig_image) {
                (MapOrigin::Kconfig, Some(img)) => img,
                _ => &m.map.initial_value,
            };
            push_hex(out, image);
            let id = &m.ident;
            w!(
                out,
                "\";\n\
                 \n\
                 \t\tskel->{id} = {}skel_prep_map_data((void *)data, {},\n\
                 \t\t\t\t\t\tsizeof(data) - 1);\n\
                 \t\tif (!skel->{id})\n\
                 \t\t\tgoto cleanup;\n\
                 \t\tskel->maps.{id}.initial_value = (__u64) (long) skel->{id};\n\
                 \t}}\n",
                style.cast_to(id),
                mmap_size(m.map, host)
            );
        }
        w!(
            out,
            "\treturn skel;\n\
             cleanup:\n\
             \t{name}__destroy(skel);\n\
             \treturn NULL;\n\
             }}\n\
             \n\
             static inline int\n\
             {name}__load(struct {name} *skel)\n\
             {{\n\
             \tstruct bpf_load_and_run_opts opts = {{}};\n\
             \tint err;\n\
             \tstatic const char opts_data[] __attribute__((__aligned__(8))) = \"\\\n"
        );
    }

    /// `__load`'s blobs and what it does after the loader ran, and `__open_and_load`.
    fn write_load(&self, out: &mut HeaderText<'_>) {
        let Skel {
            blobs,
            host,
            signature,
            name,
            style,
            mmaped,
            arena_image,
            ..
        } = self;
        // Load: the loader blobs, then map the maps' final contents.
        push_hex(out, &blobs.data);
        out.push_str("\";\n\tstatic const char opts_insn[] __attribute__((__aligned__(8))) = \"\\\n");
        push_hex(out, &blobs.insns);
        out.push_str("\";\n");
        if let Some(sig) = signature {
            push_signature(out, &blobs.insns, sig);
        }
        if style.blank_after_insns {
            out.push('\n');
        }
        out.push_str(
            "\topts.ctx = (struct bpf_loader_ctx *)skel;\n\
             \topts.data_sz = sizeof(opts_data) - 1;\n\
             \topts.data = (void *)opts_data;\n\
             \topts.insns_sz = sizeof(opts_insn) - 1;\n\
             \topts.insns = (void *)opts_insn;\n\
             \n",
        );
        for a in mmaped.iter().filter_map(|m| m.arena.as_ref()).filter(|a| a.addr == 0) {
            arena_reservation(out, a);
        }
        out.push_str(
            "\terr = bpf_load_and_run(&opts);\n\
             \tif (err < 0)\n\
             \t\treturn err;\n",
        );
        for m in mmaped.iter() {
            let id = &m.ident;
            if let Some(a) = &m.arena {
                let mid = &a.map_ident;
                w!(
                    out,
                    "\t{{\n\
                     \t\tvoid *staged = skel->arena;\n\
                     \n"
                );
                // With map_extra the address is the object's; without, the
                // reservation made before the loader ran already holds it (and
                // is kept on failure, for __destroy to release).
                if a.addr != 0 {
                    w!(out, "\t\tskel->maps.{mid}.initial_value = {:#x}ULL;\n", a.addr);
                }
                w!(
                    out,
                    "\t\tskel->arena = {}skel_finalize_map_data(&skel->maps.{mid}.initial_value,\n\
                     \t\t\t\t\t{}, PROT_READ | PROT_WRITE, skel->maps.{mid}.map_fd);\n\
                     \t\tif (!skel->arena) {{\n\
                     \t\t\tskel->arena = staged;\n\
                     {}\t\t\treturn -ENOMEM;\n\
                     \t\t}}\n\
                     \t\tmemcpy(skel->arena, staged, {});\n\
                     \t\tskel_free_map_data(staged, 0, {});\n\
                     \t}}\n",
                    style.cast_to("arena"),
                    a.mmap_size,
                    if a.addr != 0 {
                        format!("\t\t\tskel->maps.{mid}.initial_value = 0;\n")
                    } else {
                        String::new()
                    },
                    arena_image.len(),
                    a.stage_size
                );
                continue;
            }
            let prot = if m.map.def.map_flags & BPF_F_RDONLY_PROG != 0 {
                "PROT_READ"
            } else {
                "PROT_READ | PROT_WRITE"
            };
            w!(
                out,
                "\tskel->{id} = {}skel_finalize_map_data(&skel->maps.{id}.initial_value,\n\
                 \t\t\t\t\t{}, {prot}, skel->maps.{id}.map_fd);\n\
                 \tif (!skel->{id})\n\
                 \t\treturn -ENOMEM;\n",
                style.cast_to(id),
                mmap_size(m.map, host)
            );
        }
        w!(
            out,
            "\treturn 0;\n\
             }}\n\
             \n\
             static inline struct {name} *\n\
             {name}__open_and_load(void)\n\
             {{\n\
             \tstruct {name} *skel;\n\
             \n\
             \tskel = {name}__open();\n\
             \tif (!skel)\n\
             \t\treturn NULL;\n\
             \tif ({name}__load(skel)) {{\n\
             \t\t{name}__destroy(skel);\n\
             \t\treturn NULL;\n\
             \t}}\n\
             \treturn skel;\n\
             }}\n\
             \n"
        );
    }

    /// `__assert`'s layout checks of the mmaped maps, and the guard's end.
    fn write_assertions(&self, out: &mut String) -> Result<()> {
        let Skel {
            obj,
            name,
            guard,
            mmaped,
            ..
        } = self;
        if let Some(btf) = &obj.btf {
            w!(
                out,
                "__attribute__((unused)) static void\n\
                 {name}__assert(struct {name} *s __attribute__((unused)))\n\
                 {{\n\
                 #ifdef __cplusplus\n\
                 #define _Static_assert static_assert\n\
                 #endif\n"
            );
            size_asserts(out, btf, &DatasecIndex::new(btf)?, mmaped)?;
            out.push_str(
                "#ifdef __cplusplus\n\
                 #undef _Static_assert\n\
                 #endif\n\
                 }\n",
            );
        }
        w!(out, "\n#endif /* {guard} */\n");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(data: &[u8]) -> String {
        let mut out = HeaderText::buffer(0);
        push_hex(&mut out, data);
        out.text
    }

    /// Counts the writes it takes; fails from the `fail_at`-th on.
    struct Chunks {
        bytes: Vec<u8>,
        writes: usize,
        fail_at: usize,
    }

    impl std::io::Write for Chunks {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.writes += 1;
            if self.writes >= self.fail_at {
                return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
            }
            self.bytes.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn streamed_text_is_the_whole_text_in_chunks() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let whole = hex(&data);
        let mut sink = Chunks {
            bytes: Vec::new(),
            writes: 0,
            fail_at: usize::MAX,
        };
        let mut out = HeaderText::streamed(&mut sink);
        out.push_str("head\n");
        push_hex(&mut out, &data);
        out.push('\n');
        assert!(out.text.len() < HeaderText::CHUNK + 8192);
        let size = out.finish().unwrap();
        assert_eq!(sink.bytes, format!("head\n{whole}\n").into_bytes());
        assert_eq!(size, sink.bytes.len() as u64);
        assert!(
            sink.writes > whole.len() / HeaderText::CHUNK / 2,
            "{} writes",
            sink.writes
        );
    }

    #[test]
    fn streamed_text_reports_the_writers_first_error() {
        let mut sink = Chunks {
            bytes: Vec::new(),
            writes: 0,
            fail_at: 2,
        };
        let mut out = HeaderText::streamed(&mut sink);
        push_hex(&mut out, &[0xab; 100_000]);
        let e = out.finish().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(28));
        assert_eq!(sink.writes, 2, "nothing written after the error");
    }

    #[test]
    fn hex_escapes_and_wrapping() {
        assert_eq!(hex(&[]), "");
        assert_eq!(hex(&[0, 1, 0xab, 0]), "\\0\\x01\\xab\\0");
        // 19 four-character escapes fill 76 columns; a 20th would pass 78.
        let line = "\\xff".repeat(19);
        assert_eq!(hex(&[0xff; 20]), format!("{line}\\\n\\xff"));
        // ... but one more `\0` still fits.
        assert_eq!(
            hex(&[0xff; 19].iter().copied().chain([0, 0]).collect::<Vec<_>>()),
            format!("{line}\\0\\\n\\0")
        );
        assert_eq!(hex(&[0; 39]), "\\0".repeat(39));
        assert_eq!(hex(&[0; 40]), format!("{}\\\n\\0", "\\0".repeat(39)));
    }

    #[test]
    fn identifiers() {
        assert_eq!(datasec_ident(".data.custom"), Some("data_custom".into()));
        assert_eq!(datasec_ident(".rodata.str1.1"), Some("rodata_str1_1".into()));
        assert_eq!(datasec_ident(".maps"), None);
        assert_eq!(datasec_ident(".addr_space.1"), Some("arena".into()));
        assert_eq!(sanitize("func.var"), "func_var");
    }
}
