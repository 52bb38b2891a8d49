//! What a loader does, step by step: the records [`super::decode`] yields
//! and `explain --json` writes (format [`FORMAT`]). Field names and order are
//! the document's; a field added after the format's first version has a
//! default, so older documents still read.

use serde::{Deserialize, Serialize};

/// The `format` tag of an explanation document.
pub const FORMAT: &str = "bpfgen-explain/1";

/// The run-time BTF lookup of a BTF-attach program's target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachTarget {
    pub first_insn: usize,
    pub name: String,
    pub kind: u32,
    pub kind_name: String,
}

/// What a ksym relocation looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RelocKind {
    /// A kfunc call: BTF id into `imm`, module BTF fd slot into `off`.
    Kfunc,
    /// A typed `ld_imm64` (a BTF VAR or FUNC): BTF id and object fd.
    Ksym,
    /// A typeless `ld_imm64`: the kallsyms address.
    Typeless,
}

impl RelocKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RelocKind::Kfunc => "kfunc",
            RelocKind::Ksym => "ksym",
            RelocKind::Typeless => "typeless",
        }
    }
}

/// One ksym / kfunc relocation: a run-time lookup patching one program
/// instruction. `strong` is `None` where the code does not tell (typeless
/// lookups, repeated uses); `repeat_of` is the program instruction of the
/// first use the values are copied from; `fd_slot` the fd-array slot a
/// kfunc's module BTF fd goes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KsymRelo {
    pub first_insn: usize,
    pub last_insn: usize,
    pub name: String,
    pub kind: RelocKind,
    pub btf_kind: u32,
    pub insn: usize,
    pub patched_insn: String,
    pub strong: Option<bool>,
    pub repeat_of: Option<usize>,
    pub fd_slot: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BtfLoad {
    pub first_insn: usize,
    pub last_insn: usize,
    pub attr: usize,
    pub btf: usize,
    pub size: u32,
}

/// `index` is the map's ctx / fd-array slot, -1 for a map-in-map's inner
/// map (created, used as the template, closed). `vmlinux_value_type`: for a
/// struct_ops map, the kernel value struct whose vmlinux BTF id the loader
/// looks up. `map_extra_from_ctx`: an arena holding `__arena` globals
/// without a `map_extra` of its own takes its address from the skeleton.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapCreate {
    pub first_insn: usize,
    pub last_insn: usize,
    pub attr: usize,
    pub index: i64,
    pub name: String,
    pub kernel_name: String,
    #[serde(rename = "type")]
    pub map_type: u32,
    pub type_name: String,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub flags: u32,
    pub numa_node: u32,
    pub ifindex: u32,
    pub btf_key_type_id: u32,
    pub btf_value_type_id: u32,
    pub map_extra: u64,
    pub uses_btf_fd: bool,
    pub uses_inner_map_fd: bool,
    pub max_entries_from_ctx: bool,
    #[serde(default)]
    pub vmlinux_value_type: Option<String>,
    #[serde(default)]
    pub map_extra_from_ctx: bool,
}

/// The initial image (key 0) of an internal map. Unless the loader is
/// signed, the skeleton's `initial_value` replaces the blob's image when set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapUpdate {
    pub first_insn: usize,
    pub last_insn: usize,
    pub attr: usize,
    pub map_index: usize,
    pub map_name: String,
    pub value: usize,
    pub value_size: u32,
    pub key: usize,
    #[serde(default = "yes")]
    pub value_from_ctx: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapFreeze {
    pub first_insn: usize,
    pub last_insn: usize,
    pub attr: usize,
    pub map_index: usize,
    pub map_name: String,
}

/// A map-in-map's static slot: `outer[slot]` = the fd of map `inner_index`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapPopulate {
    pub first_insn: usize,
    pub last_insn: usize,
    pub attr: usize,
    pub map_index: usize,
    pub map_name: String,
    pub slot: i32,
    pub inner_index: usize,
    pub inner_name: String,
}

/// A prog array's static slot: `map[slot]` = the fd of the program loaded
/// `prog_index`-th, copied into the 4-byte `value` first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgArrayUpdate {
    pub first_insn: usize,
    pub last_insn: usize,
    pub attr: usize,
    pub map_index: usize,
    pub map_name: String,
    pub slot: u32,
    pub prog_index: usize,
    pub prog_name: String,
    pub value: usize,
}

/// A map of the object the loader does not create (`SEC("?.struct_ops")`):
/// its fd-array slot and skeleton fd stay 0. `name` is "" when unknown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedMap {
    pub index: usize,
    pub name: String,
}

/// `index` is the load order (the loader's prog fd slot), `ctx_slot` the
/// skeleton prog descriptor the epilogue hands the fd to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgLoad {
    pub first_insn: usize,
    pub last_insn: usize,
    pub attr: usize,
    pub index: usize,
    pub ctx_slot: i64,
    pub name: String,
    pub kernel_name: String,
    #[serde(rename = "type")]
    pub prog_type: u32,
    pub type_name: String,
    pub expected_attach_type: u32,
    pub attach_type_name: String,
    pub prog_flags: u32,
    pub ifindex: u32,
    pub license: String,
    pub insns: usize,
    pub insn_cnt: u32,
    pub func_info_cnt: u32,
    pub func_info_rec_size: u32,
    pub line_info_cnt: u32,
    pub line_info_rec_size: u32,
    pub core_relo_cnt: u32,
    pub attach_btf_id: u32,
    pub attach_target: Option<AttachTarget>,
    pub relocations: Vec<KsymRelo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finish {
    pub first_insn: usize,
    pub last_insn: usize,
    pub prog_fds: usize,
    pub map_fds: usize,
}

/// One step of the loader, in execution order; `op` names it in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op")]
pub enum Step {
    #[serde(rename = "BTF_LOAD")]
    BtfLoad(BtfLoad),
    #[serde(rename = "MAP_CREATE")]
    MapCreate(MapCreate),
    #[serde(rename = "MAP_UPDATE")]
    MapUpdate(MapUpdate),
    #[serde(rename = "MAP_FREEZE")]
    MapFreeze(MapFreeze),
    #[serde(rename = "MAP_POPULATE")]
    MapPopulate(MapPopulate),
    #[serde(rename = "PROG_LOAD")]
    ProgLoad(ProgLoad),
    #[serde(rename = "PROG_ARRAY_UPDATE")]
    ProgArrayUpdate(ProgArrayUpdate),
    #[serde(rename = "FINISH")]
    Finish(Finish),
}

impl Step {
    /// The `op` of the step in JSON and in the listing.
    pub fn op(&self) -> &'static str {
        match self {
            Step::BtfLoad(_) => "BTF_LOAD",
            Step::MapCreate(_) => "MAP_CREATE",
            Step::MapUpdate(_) => "MAP_UPDATE",
            Step::MapFreeze(_) => "MAP_FREEZE",
            Step::MapPopulate(_) => "MAP_POPULATE",
            Step::ProgLoad(_) => "PROG_LOAD",
            Step::ProgArrayUpdate(_) => "PROG_ARRAY_UPDATE",
            Step::Finish(_) => "FINISH",
        }
    }

    /// The instructions the step spans, first and last.
    pub fn span(&self) -> (usize, usize) {
        match self {
            Step::BtfLoad(s) => (s.first_insn, s.last_insn),
            Step::MapCreate(s) => (s.first_insn, s.last_insn),
            Step::MapUpdate(s) => (s.first_insn, s.last_insn),
            Step::MapFreeze(s) => (s.first_insn, s.last_insn),
            Step::MapPopulate(s) => (s.first_insn, s.last_insn),
            Step::ProgLoad(s) => (s.first_insn, s.last_insn),
            Step::ProgArrayUpdate(s) => (s.first_insn, s.last_insn),
            Step::Finish(s) => (s.first_insn, s.last_insn),
        }
    }
}

/// The error path (instruction 7): close the BTF fd, the inner-map fd,
/// every prog fd slot and every map fd slot, return the error.
/// `prog_fd_blob` is where the prog fd slots sit in the data blob when they
/// are not on the loader's stack (more than 32 programs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename = "CLEANUP")]
pub struct Cleanup {
    pub first_insn: usize,
    pub last_insn: usize,
    pub prog_fd_slots: usize,
    pub map_fd_slots: usize,
    #[serde(default)]
    pub prog_fd_blob: Option<usize>,
}

/// A signed loader's first act after the prologue (libbpf 1.8): fail with
/// -EINVAL unless its map is exclusive to it and the kernel's SHA-256 of
/// the data blob is `sha256` (hex), which signing patched in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename = "SIGNATURE_CHECK")]
pub struct SignatureCheck {
    pub first_insn: usize,
    pub last_insn: usize,
    pub sha256: String,
}

/// What a loader will do, in execution order, and its error path.
/// `nr_maps` counts every map slot, `skipped_maps` those among them the
/// loader does not create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    pub format: String,
    pub insn_cnt: usize,
    pub data_size: usize,
    pub nr_maps: usize,
    pub nr_prog_slots: usize,
    pub ctx_size: usize,
    #[serde(default)]
    pub big_endian: bool,
    pub steps: Vec<Step>,
    pub cleanup: Cleanup,
    #[serde(default)]
    pub skipped_maps: Vec<SkippedMap>,
    #[serde(default)]
    pub disasm: Vec<String>,
    #[serde(default)]
    pub signature_check: Option<SignatureCheck>,
}

impl Explanation {
    /// The MAP_CREATEs of the object's maps (inner maps left out), in ctx order.
    pub fn maps(&self) -> impl Iterator<Item = &MapCreate> {
        self.steps.iter().filter_map(|s| match s {
            Step::MapCreate(m) if m.index >= 0 => Some(m),
            _ => None,
        })
    }

    /// The PROG_LOADs in load order.
    pub fn programs(&self) -> impl Iterator<Item = &ProgLoad> {
        self.steps.iter().filter_map(|s| match s {
            Step::ProgLoad(p) => Some(p),
            _ => None,
        })
    }

    /// The document as `explain --json` prints it: two-space indents, keys
    /// in field order, non-ASCII escaped (as Python's `json.dumps` writes it).
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(4096);
        let mut ser = serde_json::Serializer::with_formatter(&mut out, AsciiPretty::default());
        // Serialising plain structs of numbers, strings and options cannot fail.
        self.serialize(&mut ser).expect("an explanation serialises");
        String::from_utf8(out).expect("serde_json writes UTF-8")
    }

    /// Read a document back (what [`Self::to_json`] wrote, or an older one).
    pub fn from_json(text: &str) -> Result<Explanation, String> {
        let e: Explanation = serde_json::from_str(text).map_err(|e| format!("bad explanation JSON: {e}"))?;
        if e.format != FORMAT {
            return Err(format!("not a {FORMAT} document"));
        }
        Ok(e)
    }
}

/// serde_json's pretty printer, with every non-ASCII character written as
/// `\uXXXX` (surrogate pairs beyond the BMP), so the text is the same bytes
/// as Python's `json.dumps(..., indent=2)` of the same document.
#[derive(Default)]
struct AsciiPretty<'a> {
    pretty: serde_json::ser::PrettyFormatter<'a>,
}

impl serde_json::ser::Formatter for AsciiPretty<'_> {
    fn write_string_fragment<W: ?Sized + std::io::Write>(&mut self, w: &mut W, fragment: &str) -> std::io::Result<()> {
        for c in fragment.chars() {
            if c.is_ascii() {
                w.write_all(&[c as u8])?;
            } else {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    write!(w, "\\u{u:04x}")?;
                }
            }
        }
        Ok(())
    }
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.pretty.begin_array(w)
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.pretty.end_array(w)
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        self.pretty.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.pretty.end_array_value(w)
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.pretty.begin_object(w)
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.pretty.end_object(w)
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        self.pretty.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.pretty.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.pretty.end_object_value(w)
    }
}
