//! The loader's ABI: the numbers a generated loader program shares with the
//! kernel and the light skeleton. Helper ids, `bpf()` commands and their attr
//! sizes, and where the fd array, the skeleton's ctx and the loader's stack
//! slots sit. The emitter (`loader.rs`) writes by these facts, the decoder
//! (`explain/`) and the self-check (`selfcheck/`) read by them, so each is
//! spelt once, here; modules that bound their inputs by the data blob's size
//! use [`MAX_DATA_BLOB`] from here too. A leaf: it depends on nothing.

// Helpers the loader calls (and `bpf_trace_printk`, which libbpf's loaders
// built with debug output call, so `explain` names it too).
pub const FN_TRACE_PRINTK: i32 = 6;
pub const FN_PROBE_READ_KERNEL: i32 = 113;
pub const FN_COPY_FROM_USER: i32 = 148;
pub const FN_SYS_BPF: i32 = 166;
pub const FN_BTF_FIND_BY_NAME_KIND: i32 = 167;
pub const FN_SYS_CLOSE: i32 = 168;
pub const FN_KALLSYMS_LOOKUP_NAME: i32 = 179;

// The bpf() commands the loader issues.
pub const BPF_MAP_CREATE: i32 = 0;
pub const BPF_MAP_UPDATE_ELEM: i32 = 2;
pub const BPF_PROG_LOAD: i32 = 5;
pub const BPF_BTF_LOAD: i32 = 18;
pub const BPF_MAP_FREEZE: i32 = 22;
// The other commands the Python facade issues when it runs a loader and the
// objects it made (`_bpf.py`, [`BPF_COMMANDS`]): the same `enum bpf_cmd`, so
// owned here too.
pub const BPF_MAP_LOOKUP_ELEM: i32 = 1;
pub const BPF_MAP_DELETE_ELEM: i32 = 3;
pub const BPF_PROG_TEST_RUN: i32 = 10;
pub const BPF_OBJ_GET_INFO_BY_FD: i32 = 15;
pub const BPF_RAW_TRACEPOINT_OPEN: i32 = 17;
pub const BPF_LINK_CREATE: i32 = 28;
pub const BPF_ITER_CREATE: i32 = 33;

/// `union bpf_attr` for each command the loader issues: the offset of every
/// field the loader fills (a module per command) and the attr size it
/// passes (`*_ATTR_SIZE`: offsetofend of the last field it uses), for the
/// emitter, the decoder and the self-check.
macro_rules! attr_layouts {
    ($($cmd:ident $prefix:literal $size:ident = $sz:expr, { $($field:ident = $off:expr),* $(,)? })*) => {
        $(
            pub const $size: usize = $sz;
            pub mod $cmd {
                $(pub const $field: usize = $off;)*
            }
        )*
        /// Every attr size and field offset as (`MAP_CREATE_ATTR_SIZE`,
        /// `MAP_CREATE_BTF_FD`, ..., value): the layout test's table.
        #[cfg(test)]
        const ATTR_LAYOUT: &[(&str, usize)] = &[
            $(
                (stringify!($size), $size),
                $((concat!($prefix, "_", stringify!($field)), $cmd::$field),)*
            )*
        ];
    };
}

attr_layouts! {
    btf_load "BTF_LOAD" BTF_LOAD_ATTR_SIZE = 28, {
        BTF = 0,
        BTF_LOG_BUF = 8,
        BTF_SIZE = 16,
        BTF_LOG_SIZE = 20,
        BTF_LOG_LEVEL = 24,
    }
    map_create "MAP_CREATE" MAP_CREATE_ATTR_SIZE = 72, {
        MAP_TYPE = 0,
        KEY_SIZE = 4,
        VALUE_SIZE = 8,
        MAX_ENTRIES = 12,
        MAP_FLAGS = 16,
        INNER_MAP_FD = 20,
        NUMA_NODE = 24,
        MAP_NAME = 28,
        MAP_IFINDEX = 44,
        BTF_FD = 48,
        BTF_KEY_TYPE_ID = 52,
        BTF_VALUE_TYPE_ID = 56,
        BTF_VMLINUX_VALUE_TYPE_ID = 60,
        MAP_EXTRA = 64,
    }
    map_update "MAP_UPDATE" MAP_UPDATE_ATTR_SIZE = 32, {
        MAP_FD = 0,
        KEY = 8,
        VALUE = 16,
        FLAGS = 24,
    }
    map_freeze "MAP_FREEZE" MAP_FREEZE_ATTR_SIZE = 4, {
        MAP_FD = 0,
    }
    prog_load "PROG_LOAD" PROG_LOAD_ATTR_SIZE = 140, {
        PROG_TYPE = 0,
        INSN_CNT = 4,
        INSNS = 8,
        LICENSE = 16,
        LOG_LEVEL = 24,
        LOG_SIZE = 28,
        LOG_BUF = 32,
        PROG_FLAGS = 44,
        PROG_NAME = 48,
        PROG_IFINDEX = 64,
        EXPECTED_ATTACH_TYPE = 68,
        PROG_BTF_FD = 72,
        FUNC_INFO_REC_SIZE = 76,
        FUNC_INFO = 80,
        FUNC_INFO_CNT = 88,
        LINE_INFO_REC_SIZE = 92,
        LINE_INFO = 96,
        LINE_INFO_CNT = 104,
        ATTACH_BTF_ID = 108,
        ATTACH_BTF_OBJ_FD = 112,
        CORE_RELO_CNT = 116,
        FD_ARRAY = 120,
        CORE_RELOS = 128,
        CORE_RELO_REC_SIZE = 136,
    }
}

/// The length of the name fields of MAP_CREATE and PROG_LOAD.
pub const BPF_OBJ_NAME_LEN: usize = 16;

/// The fd array starts the data blob: map slots (libbpf's 64, or one per map
/// for objects with more maps, beyond libbpf 1.5), then kfunc BTF fd slots.
pub const MIN_MAP_SLOTS: usize = 64;
pub const KFUNC_SLOTS: usize = 256;

/// Largest loader data blob we generate (hostile-input bound). libbpf stops
/// at the kernel's INT_MAX value size; a blob that large would make a light
/// skeleton of 4-8 GiB of C source. 256 MiB keeps every offset far inside
/// i32 and memory bounded; no real object comes near it.
pub const MAX_DATA_BLOB: usize = 256 << 20;

/// The most instructions the kernel takes as one program loaded with
/// CAP_BPF (its `BPF_COMPLEXITY_LIMIT_INSNS`, beyond which BPF_PROG_LOAD
/// fails with E2BIG). The verifier also stops after exploring that many
/// instructions, which a straight-line loader stays under (it explores
/// about 0.8 instructions per loader instruction; long loaders: README).
pub const MAX_LOADER_INSNS: usize = 1_000_000;

/// The BPF stack frame every loader runs in.
pub const MAX_BPF_STACK: i32 = 512;
/// `struct loader_stack` sits at the bottom of the frame: btf_fd,
/// inner_map_fd, then one fd slot per program for up to this many programs
/// (more programs keep their fds in the data blob, beyond libbpf 1.5).
pub const STACK_PROGS: usize = 32;
pub const STACK_SIZE: i32 = (8 + 4 * STACK_PROGS) as i32;
pub const STACK_BTF_FD: i16 = -(STACK_SIZE as i16);
pub const STACK_INNER_MAP_FD: i16 = -(STACK_SIZE as i16) + 4;
/// The stack slot of the `j`-th loaded program's fd (`j < STACK_PROGS`).
pub const fn stack_prog_fd(j: usize) -> i16 {
    -(STACK_SIZE as i16) + 8 + 4 * j as i16
}
const _: () = assert!(STACK_SIZE <= MAX_BPF_STACK);

// `struct bpf_loader_ctx`, which the skeleton passes in r1, and the map and
// program descriptors that follow it.
pub const CTX_FLAGS: i16 = 4;
pub const CTX_LOG_LEVEL: i16 = 8;
pub const CTX_LOG_SIZE: i16 = 12;
pub const CTX_LOG_BUF: i16 = 16;
pub const CTX_SIZE: usize = 24;
pub const MAP_DESC_SIZE: usize = 16;
/// `bpf_map_desc` fields the loader reads: a max_entries override, and the
/// initial value's address (for an arena without `map_extra`, its address).
pub const MAP_DESC_MAX_ENTRIES: usize = 4;
pub const MAP_DESC_INITIAL_VALUE: usize = 8;
pub const PROG_DESC_SIZE: usize = 4;
/// `CTX_FLAGS` bit: the skeleton lives in kernel memory, so the loader reads
/// initial values with `probe_read_kernel` rather than `copy_from_user`.
pub const BPF_SKEL_KERNEL: i32 = 1;

/// Size of the skeleton ctx a loader expects: `struct bpf_loader_ctx`, then
/// one `bpf_map_desc` per map and one `bpf_prog_desc` per program.
pub const fn ctx_size(nr_maps: usize, nr_progs: usize) -> usize {
    CTX_SIZE + MAP_DESC_SIZE * nr_maps + PROG_DESC_SIZE * nr_progs
}

/// The instruction every failure branch jumps to: the shared cleanup block
/// right after the 7-instruction prologue.
pub const CLEANUP_LABEL: usize = 7;

/// The `bpf()` commands the Python facade issues when it runs a loader
/// (`_bpf.py`), as `_core.<name>`.
pub const BPF_COMMANDS: &[(&str, i64)] = &[
    ("BPF_MAP_CREATE", BPF_MAP_CREATE as i64),
    ("BPF_MAP_LOOKUP_ELEM", BPF_MAP_LOOKUP_ELEM as i64),
    ("BPF_MAP_UPDATE_ELEM", BPF_MAP_UPDATE_ELEM as i64),
    ("BPF_MAP_DELETE_ELEM", BPF_MAP_DELETE_ELEM as i64),
    ("BPF_PROG_LOAD", BPF_PROG_LOAD as i64),
    ("BPF_PROG_TEST_RUN", BPF_PROG_TEST_RUN as i64),
    ("BPF_OBJ_GET_INFO_BY_FD", BPF_OBJ_GET_INFO_BY_FD as i64),
    ("BPF_RAW_TRACEPOINT_OPEN", BPF_RAW_TRACEPOINT_OPEN as i64),
    ("BPF_BTF_LOAD", BPF_BTF_LOAD as i64),
    ("BPF_MAP_FREEZE", BPF_MAP_FREEZE as i64),
    ("BPF_LINK_CREATE", BPF_LINK_CREATE as i64),
    ("BPF_ITER_CREATE", BPF_ITER_CREATE as i64),
];

/// A signed loader (libbpf 1.8's `gen_hash`) reads its own map: the
/// kernel-computed SHA-256 of the data blob in `SHA256_DWORDS` 8-byte words,
/// then at `SHA256_DIGEST_LENGTH` the 4-byte flag saying that the map is
/// exclusive to the loader.
pub const SHA256_DIGEST_LENGTH: i16 = 32;
pub const SHA256_DWORDS: usize = 4;

#[cfg(test)]
mod tests {
    #[test]
    fn attr_layout_names_are_unique_and_fields_inside_their_attr() {
        let all = super::ATTR_LAYOUT;
        let mut names: Vec<&str> = all.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
        let sizes: Vec<(&str, usize)> = all
            .iter()
            .filter_map(|(n, s)| n.strip_suffix("_ATTR_SIZE").map(|cmd| (cmd, *s)))
            .collect();
        for (name, off) in all.iter().filter(|(n, _)| !n.ends_with("_ATTR_SIZE")) {
            let (_, size) = sizes.iter().find(|(cmd, _)| name.starts_with(cmd)).unwrap();
            assert!(off < size, "{name}");
        }
    }
}
