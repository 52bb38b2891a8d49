//! ELF section name → BPF program type knowledge, mirroring libbpf 1.5.
//!
//! This covers the built-in `SEC("...")` table that libbpf uses to guess a
//! program's type and expected attach type from its section name, the way
//! those defaults are turned into `BPF_PROG_LOAD` attributes when libbpf runs
//! in loader-generation mode (where every kernel feature is assumed present),
//! the BTF names used to resolve attach targets, libbpf's printable names for
//! the UAPI enums, and the attach strategy bpftool emits in light skeletons.

use crate::btf::kind as btf_kind;

/// `enum bpf_prog_type` (uapi `linux/bpf.h`, kernel 6.12).
pub mod prog_type {
    pub const UNSPEC: u32 = 0;
    pub const SOCKET_FILTER: u32 = 1;
    pub const KPROBE: u32 = 2;
    pub const SCHED_CLS: u32 = 3;
    pub const SCHED_ACT: u32 = 4;
    pub const TRACEPOINT: u32 = 5;
    pub const XDP: u32 = 6;
    pub const PERF_EVENT: u32 = 7;
    pub const CGROUP_SKB: u32 = 8;
    pub const CGROUP_SOCK: u32 = 9;
    pub const LWT_IN: u32 = 10;
    pub const LWT_OUT: u32 = 11;
    pub const LWT_XMIT: u32 = 12;
    pub const SOCK_OPS: u32 = 13;
    pub const SK_SKB: u32 = 14;
    pub const CGROUP_DEVICE: u32 = 15;
    pub const SK_MSG: u32 = 16;
    pub const RAW_TRACEPOINT: u32 = 17;
    pub const CGROUP_SOCK_ADDR: u32 = 18;
    pub const LWT_SEG6LOCAL: u32 = 19;
    pub const LIRC_MODE2: u32 = 20;
    pub const SK_REUSEPORT: u32 = 21;
    pub const FLOW_DISSECTOR: u32 = 22;
    pub const CGROUP_SYSCTL: u32 = 23;
    pub const RAW_TRACEPOINT_WRITABLE: u32 = 24;
    pub const CGROUP_SOCKOPT: u32 = 25;
    pub const TRACING: u32 = 26;
    pub const STRUCT_OPS: u32 = 27;
    pub const EXT: u32 = 28;
    pub const LSM: u32 = 29;
    pub const SK_LOOKUP: u32 = 30;
    pub const SYSCALL: u32 = 31;
    pub const NETFILTER: u32 = 32;
    /// One past the last known value (`__MAX_BPF_PROG_TYPE`).
    pub const MAX: u32 = 33;
}

/// `enum bpf_attach_type` (uapi `linux/bpf.h`, kernel 6.12).
pub mod attach_type {
    pub const CGROUP_INET_INGRESS: u32 = 0;
    pub const CGROUP_INET_EGRESS: u32 = 1;
    pub const CGROUP_INET_SOCK_CREATE: u32 = 2;
    pub const CGROUP_SOCK_OPS: u32 = 3;
    pub const SK_SKB_STREAM_PARSER: u32 = 4;
    pub const SK_SKB_STREAM_VERDICT: u32 = 5;
    pub const CGROUP_DEVICE: u32 = 6;
    pub const SK_MSG_VERDICT: u32 = 7;
    pub const CGROUP_INET4_BIND: u32 = 8;
    pub const CGROUP_INET6_BIND: u32 = 9;
    pub const CGROUP_INET4_CONNECT: u32 = 10;
    pub const CGROUP_INET6_CONNECT: u32 = 11;
    pub const CGROUP_INET4_POST_BIND: u32 = 12;
    pub const CGROUP_INET6_POST_BIND: u32 = 13;
    pub const CGROUP_UDP4_SENDMSG: u32 = 14;
    pub const CGROUP_UDP6_SENDMSG: u32 = 15;
    pub const LIRC_MODE2: u32 = 16;
    pub const FLOW_DISSECTOR: u32 = 17;
    pub const CGROUP_SYSCTL: u32 = 18;
    pub const CGROUP_UDP4_RECVMSG: u32 = 19;
    pub const CGROUP_UDP6_RECVMSG: u32 = 20;
    pub const CGROUP_GETSOCKOPT: u32 = 21;
    pub const CGROUP_SETSOCKOPT: u32 = 22;
    pub const TRACE_RAW_TP: u32 = 23;
    pub const TRACE_FENTRY: u32 = 24;
    pub const TRACE_FEXIT: u32 = 25;
    pub const MODIFY_RETURN: u32 = 26;
    pub const LSM_MAC: u32 = 27;
    pub const TRACE_ITER: u32 = 28;
    pub const CGROUP_INET4_GETPEERNAME: u32 = 29;
    pub const CGROUP_INET6_GETPEERNAME: u32 = 30;
    pub const CGROUP_INET4_GETSOCKNAME: u32 = 31;
    pub const CGROUP_INET6_GETSOCKNAME: u32 = 32;
    pub const XDP_DEVMAP: u32 = 33;
    pub const CGROUP_INET_SOCK_RELEASE: u32 = 34;
    pub const XDP_CPUMAP: u32 = 35;
    pub const SK_LOOKUP: u32 = 36;
    pub const XDP: u32 = 37;
    pub const SK_SKB_VERDICT: u32 = 38;
    pub const SK_REUSEPORT_SELECT: u32 = 39;
    pub const SK_REUSEPORT_SELECT_OR_MIGRATE: u32 = 40;
    pub const PERF_EVENT: u32 = 41;
    pub const TRACE_KPROBE_MULTI: u32 = 42;
    pub const LSM_CGROUP: u32 = 43;
    pub const STRUCT_OPS: u32 = 44;
    pub const NETFILTER: u32 = 45;
    pub const TCX_INGRESS: u32 = 46;
    pub const TCX_EGRESS: u32 = 47;
    pub const TRACE_UPROBE_MULTI: u32 = 48;
    pub const CGROUP_UNIX_CONNECT: u32 = 49;
    pub const CGROUP_UNIX_SENDMSG: u32 = 50;
    pub const CGROUP_UNIX_RECVMSG: u32 = 51;
    pub const CGROUP_UNIX_GETPEERNAME: u32 = 52;
    pub const CGROUP_UNIX_GETSOCKNAME: u32 = 53;
    pub const NETKIT_PRIMARY: u32 = 54;
    pub const NETKIT_PEER: u32 = 55;
    pub const TRACE_KPROBE_SESSION: u32 = 56;
    /// One past the last known value (`__MAX_BPF_ATTACH_TYPE`).
    pub const MAX: u32 = 57;
}

/// `enum bpf_map_type` (uapi `linux/bpf.h`, kernel 6.12).
pub mod map_type {
    pub const UNSPEC: u32 = 0;
    pub const HASH: u32 = 1;
    pub const ARRAY: u32 = 2;
    pub const PROG_ARRAY: u32 = 3;
    pub const PERF_EVENT_ARRAY: u32 = 4;
    pub const PERCPU_HASH: u32 = 5;
    pub const PERCPU_ARRAY: u32 = 6;
    pub const STACK_TRACE: u32 = 7;
    pub const CGROUP_ARRAY: u32 = 8;
    pub const LRU_HASH: u32 = 9;
    pub const LRU_PERCPU_HASH: u32 = 10;
    pub const LPM_TRIE: u32 = 11;
    pub const ARRAY_OF_MAPS: u32 = 12;
    pub const HASH_OF_MAPS: u32 = 13;
    pub const DEVMAP: u32 = 14;
    pub const SOCKMAP: u32 = 15;
    pub const CPUMAP: u32 = 16;
    pub const XSKMAP: u32 = 17;
    pub const SOCKHASH: u32 = 18;
    pub const CGROUP_STORAGE_DEPRECATED: u32 = 19;
    pub const CGROUP_STORAGE: u32 = CGROUP_STORAGE_DEPRECATED;
    pub const REUSEPORT_SOCKARRAY: u32 = 20;
    pub const PERCPU_CGROUP_STORAGE_DEPRECATED: u32 = 21;
    pub const PERCPU_CGROUP_STORAGE: u32 = PERCPU_CGROUP_STORAGE_DEPRECATED;
    pub const QUEUE: u32 = 22;
    pub const STACK: u32 = 23;
    pub const SK_STORAGE: u32 = 24;
    pub const DEVMAP_HASH: u32 = 25;
    pub const STRUCT_OPS: u32 = 26;
    pub const RINGBUF: u32 = 27;
    pub const INODE_STORAGE: u32 = 28;
    pub const TASK_STORAGE: u32 = 29;
    pub const BLOOM_FILTER: u32 = 30;
    pub const USER_RINGBUF: u32 = 31;
    pub const CGRP_STORAGE: u32 = 32;
    pub const ARENA: u32 = 33;
    /// One past the last known value (`__MAX_BPF_MAP_TYPE`).
    pub const MAX: u32 = 34;

    /// A map whose values are other maps: it is created from an inner-map
    /// template, and its values are map fds.
    pub fn is_map_in_map(t: u32) -> bool {
        t == ARRAY_OF_MAPS || t == HASH_OF_MAPS
    }

    /// Maps with one value per possible CPU: user space reads and writes
    /// `value_size` rounded up to 8, times the number of possible CPUs.
    pub const PERCPU: &[u32] = &[PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH, PERCPU_CGROUP_STORAGE];
}

/// No special handling.
pub const SEC_NONE: u32 = 0;
/// The expected attach type may be dropped on kernels that cannot take one.
pub const SEC_EXP_ATTACH_OPT: u32 = 1;
/// Legacy marker for programs attachable via `BPF_PROG_ATTACH`; only affects
/// libbpf's name-listing helpers, never loading.
pub const SEC_ATTACHABLE: u32 = 2;
/// [`SEC_ATTACHABLE`] combined with [`SEC_EXP_ATTACH_OPT`].
pub const SEC_ATTACHABLE_OPT: u32 = SEC_ATTACHABLE | SEC_EXP_ATTACH_OPT;
/// The attach target is a BTF ID named by the text after the first `/`.
pub const SEC_ATTACH_BTF: u32 = 4;
/// The program is loaded with `BPF_F_SLEEPABLE`.
pub const SEC_SLEEPABLE: u32 = 8;
/// XDP program that handles multi-buffer packets (`BPF_F_XDP_HAS_FRAGS`).
pub const SEC_XDP_FRAGS: u32 = 16;
/// USDT probe; switches to the uprobe-multi attach type when available.
pub const SEC_USDT: u32 = 32;

/// `BPF_PROG_LOAD` flag: program may sleep.
pub const BPF_F_SLEEPABLE: u32 = 1 << 4;
/// `BPF_PROG_LOAD` flag: XDP program understands fragmented buffers.
pub const BPF_F_XDP_HAS_FRAGS: u32 = 1 << 5;

/// `BPF_MAP_CREATE` flag: programs may only read the map (`.rodata`, `.kconfig`).
pub const BPF_F_RDONLY_PROG: u32 = 1 << 7;
/// `BPF_MAP_CREATE` flag: user space may memory-map the map (global data).
pub const BPF_F_MMAPABLE: u32 = 1 << 10;
/// `BPF_MAP_CREATE` flag: a struct_ops map registered through a link
/// (`SEC(".struct_ops.link")`).
pub const BPF_F_LINK: u32 = 1 << 13;
/// `BPF_MAP_CREATE` flag of an arena: a user-space access to a page not
/// allocated faults (SIGSEGV) rather than allocating it.
pub const BPF_F_SEGV_ON_FAULT: u32 = 1 << 17;

/// The type numbers and flags the Python facade's runtime uses (`run.py`,
/// `_bpf.py`, `explain.py`), as `_core.<name>`; their names are the kernel's.
pub const UAPI_NUMBERS: &[(&str, i64)] = &[
    ("BPF_MAP_TYPE_ARRAY", map_type::ARRAY as i64),
    ("BPF_MAP_TYPE_PROG_ARRAY", map_type::PROG_ARRAY as i64),
    ("BPF_MAP_TYPE_STRUCT_OPS", map_type::STRUCT_OPS as i64),
    ("BPF_MAP_TYPE_ARENA", map_type::ARENA as i64),
    ("BPF_PROG_TYPE_RAW_TRACEPOINT", prog_type::RAW_TRACEPOINT as i64),
    ("BPF_PROG_TYPE_TRACING", prog_type::TRACING as i64),
    ("BPF_PROG_TYPE_STRUCT_OPS", prog_type::STRUCT_OPS as i64),
    ("BPF_PROG_TYPE_LSM", prog_type::LSM as i64),
    ("BPF_PROG_TYPE_SYSCALL", prog_type::SYSCALL as i64),
    ("BPF_TRACE_ITER", attach_type::TRACE_ITER as i64),
    ("BPF_STRUCT_OPS", attach_type::STRUCT_OPS as i64),
    ("BPF_F_SLEEPABLE", BPF_F_SLEEPABLE as i64),
    ("BPF_F_RDONLY_PROG", BPF_F_RDONLY_PROG as i64),
    ("BPF_F_MMAPABLE", BPF_F_MMAPABLE as i64),
    ("BPF_F_LINK", BPF_F_LINK as i64),
    ("BPF_F_SEGV_ON_FAULT", BPF_F_SEGV_ON_FAULT as i64),
];

/// One entry of libbpf's built-in section table.
///
/// `pattern` follows libbpf's conventions: a trailing `+` accepts the bare
/// name or the name followed by `/anything`; a trailing `/` accepts any name
/// with that prefix; otherwise the section name must match exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionDef {
    pub pattern: &'static str,
    pub prog_type: u32,
    pub expected_attach_type: u32,
    pub flags: u32,
}

/// The program-type related fields of `BPF_PROG_LOAD` for a program whose
/// section matched a [`SectionDef`], as libbpf emits them in loader-gen mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadAttrs {
    pub prog_type: u32,
    pub expected_attach_type: u32,
    pub prog_flags: u32,
}

/// How a bpftool light skeleton attaches a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkelAttach {
    /// `skel_raw_tracepoint_open("<section text after first '/'>", prog_fd)`.
    RawTracepoint,
    /// `skel_raw_tracepoint_open(NULL, prog_fd)`.
    TracingRawTp,
    /// `skel_link_create(prog_fd, 0, BPF_TRACE_ITER)`.
    Iter,
    /// No auto-attach code is generated.
    Unsupported,
}

impl SectionDef {
    /// Does `sec_name` select this entry?
    pub fn matches(&self, sec_name: &str) -> bool {
        if self.pattern.ends_with('/') {
            return sec_name.starts_with(self.pattern);
        }
        if let Some(base) = self.pattern.strip_suffix('+') {
            return match sec_name.strip_prefix(base) {
                Some(rest) => rest.is_empty() || rest.starts_with('/'),
                None => false,
            };
        }
        sec_name == self.pattern
    }

    /// Load attributes libbpf derives from this entry when generating a
    /// loader program (all kernel features assumed supported).
    pub fn load_attrs(&self) -> LoadAttrs {
        let mut attrs = LoadAttrs {
            prog_type: self.prog_type,
            expected_attach_type: self.expected_attach_type,
            prog_flags: 0,
        };
        // SEC_EXP_ATTACH_OPT only drops the attach type on kernels lacking
        // support for it; the generated loader always targets a modern kernel.
        if self.flags & SEC_SLEEPABLE != 0 {
            attrs.prog_flags |= BPF_F_SLEEPABLE;
        }
        if self.prog_type == prog_type::XDP && self.flags & SEC_XDP_FRAGS != 0 {
            attrs.prog_flags |= BPF_F_XDP_HAS_FRAGS;
        }
        if self.flags & SEC_USDT != 0 {
            attrs.expected_attach_type = attach_type::TRACE_UPROBE_MULTI;
        }
        attrs
    }

    /// Whether libbpf must resolve a BTF attach target (named by the text
    /// after the first `/` of the section name) before loading.
    pub fn needs_btf_attach_target(&self) -> bool {
        self.flags & SEC_ATTACH_BTF != 0
    }
}

const fn def(pattern: &'static str, prog_type: u32, eat: u32, flags: u32) -> SectionDef {
    SectionDef {
        pattern,
        prog_type,
        expected_attach_type: eat,
        flags,
    }
}

use attach_type as at;
use prog_type as pt;

#[rustfmt::skip]
static SECTION_DEFS: &[SectionDef] = &[
    def("socket",                   pt::SOCKET_FILTER,           0,                                  SEC_NONE),
    def("sk_reuseport/migrate",     pt::SK_REUSEPORT,            at::SK_REUSEPORT_SELECT_OR_MIGRATE, SEC_ATTACHABLE),
    def("sk_reuseport",             pt::SK_REUSEPORT,            at::SK_REUSEPORT_SELECT,            SEC_ATTACHABLE),
    def("kprobe+",                  pt::KPROBE,                  0,                                  SEC_NONE),
    def("uprobe+",                  pt::KPROBE,                  0,                                  SEC_NONE),
    def("uprobe.s+",                pt::KPROBE,                  0,                                  SEC_SLEEPABLE),
    def("kretprobe+",               pt::KPROBE,                  0,                                  SEC_NONE),
    def("uretprobe+",               pt::KPROBE,                  0,                                  SEC_NONE),
    def("uretprobe.s+",             pt::KPROBE,                  0,                                  SEC_SLEEPABLE),
    def("kprobe.multi+",            pt::KPROBE,                  at::TRACE_KPROBE_MULTI,             SEC_NONE),
    def("kretprobe.multi+",         pt::KPROBE,                  at::TRACE_KPROBE_MULTI,             SEC_NONE),
    def("kprobe.session+",          pt::KPROBE,                  at::TRACE_KPROBE_SESSION,           SEC_NONE),
    def("uprobe.multi+",            pt::KPROBE,                  at::TRACE_UPROBE_MULTI,             SEC_NONE),
    def("uretprobe.multi+",         pt::KPROBE,                  at::TRACE_UPROBE_MULTI,             SEC_NONE),
    def("uprobe.multi.s+",          pt::KPROBE,                  at::TRACE_UPROBE_MULTI,             SEC_SLEEPABLE),
    def("uretprobe.multi.s+",       pt::KPROBE,                  at::TRACE_UPROBE_MULTI,             SEC_SLEEPABLE),
    def("ksyscall+",                pt::KPROBE,                  0,                                  SEC_NONE),
    def("kretsyscall+",             pt::KPROBE,                  0,                                  SEC_NONE),
    def("usdt+",                    pt::KPROBE,                  0,                                  SEC_USDT),
    def("usdt.s+",                  pt::KPROBE,                  0,                                  SEC_USDT | SEC_SLEEPABLE),
    def("tc/ingress",               pt::SCHED_CLS,               at::TCX_INGRESS,                    SEC_NONE),
    def("tc/egress",                pt::SCHED_CLS,               at::TCX_EGRESS,                     SEC_NONE),
    def("tcx/ingress",              pt::SCHED_CLS,               at::TCX_INGRESS,                    SEC_NONE),
    def("tcx/egress",               pt::SCHED_CLS,               at::TCX_EGRESS,                     SEC_NONE),
    def("tc",                       pt::SCHED_CLS,               0,                                  SEC_NONE),
    def("classifier",               pt::SCHED_CLS,               0,                                  SEC_NONE),
    def("action",                   pt::SCHED_ACT,               0,                                  SEC_NONE),
    def("netkit/primary",           pt::SCHED_CLS,               at::NETKIT_PRIMARY,                 SEC_NONE),
    def("netkit/peer",              pt::SCHED_CLS,               at::NETKIT_PEER,                    SEC_NONE),
    def("tracepoint+",              pt::TRACEPOINT,              0,                                  SEC_NONE),
    def("tp+",                      pt::TRACEPOINT,              0,                                  SEC_NONE),
    def("raw_tracepoint+",          pt::RAW_TRACEPOINT,          0,                                  SEC_NONE),
    def("raw_tp+",                  pt::RAW_TRACEPOINT,          0,                                  SEC_NONE),
    def("raw_tracepoint.w+",        pt::RAW_TRACEPOINT_WRITABLE, 0,                                  SEC_NONE),
    def("raw_tp.w+",                pt::RAW_TRACEPOINT_WRITABLE, 0,                                  SEC_NONE),
    def("tp_btf+",                  pt::TRACING,                 at::TRACE_RAW_TP,                   SEC_ATTACH_BTF),
    def("fentry+",                  pt::TRACING,                 at::TRACE_FENTRY,                   SEC_ATTACH_BTF),
    def("fmod_ret+",                pt::TRACING,                 at::MODIFY_RETURN,                  SEC_ATTACH_BTF),
    def("fexit+",                   pt::TRACING,                 at::TRACE_FEXIT,                    SEC_ATTACH_BTF),
    def("fentry.s+",                pt::TRACING,                 at::TRACE_FENTRY,                   SEC_ATTACH_BTF | SEC_SLEEPABLE),
    def("fmod_ret.s+",              pt::TRACING,                 at::MODIFY_RETURN,                  SEC_ATTACH_BTF | SEC_SLEEPABLE),
    def("fexit.s+",                 pt::TRACING,                 at::TRACE_FEXIT,                    SEC_ATTACH_BTF | SEC_SLEEPABLE),
    def("freplace+",                pt::EXT,                     0,                                  SEC_ATTACH_BTF),
    def("lsm+",                     pt::LSM,                     at::LSM_MAC,                        SEC_ATTACH_BTF),
    def("lsm.s+",                   pt::LSM,                     at::LSM_MAC,                        SEC_ATTACH_BTF | SEC_SLEEPABLE),
    def("lsm_cgroup+",              pt::LSM,                     at::LSM_CGROUP,                     SEC_ATTACH_BTF),
    def("iter+",                    pt::TRACING,                 at::TRACE_ITER,                     SEC_ATTACH_BTF),
    def("iter.s+",                  pt::TRACING,                 at::TRACE_ITER,                     SEC_ATTACH_BTF | SEC_SLEEPABLE),
    def("syscall",                  pt::SYSCALL,                 0,                                  SEC_SLEEPABLE),
    def("xdp.frags/devmap",         pt::XDP,                     at::XDP_DEVMAP,                     SEC_XDP_FRAGS),
    def("xdp/devmap",               pt::XDP,                     at::XDP_DEVMAP,                     SEC_ATTACHABLE),
    def("xdp.frags/cpumap",         pt::XDP,                     at::XDP_CPUMAP,                     SEC_XDP_FRAGS),
    def("xdp/cpumap",               pt::XDP,                     at::XDP_CPUMAP,                     SEC_ATTACHABLE),
    def("xdp.frags",                pt::XDP,                     at::XDP,                            SEC_XDP_FRAGS),
    def("xdp",                      pt::XDP,                     at::XDP,                            SEC_ATTACHABLE_OPT),
    def("perf_event",               pt::PERF_EVENT,              0,                                  SEC_NONE),
    def("lwt_in",                   pt::LWT_IN,                  0,                                  SEC_NONE),
    def("lwt_out",                  pt::LWT_OUT,                 0,                                  SEC_NONE),
    def("lwt_xmit",                 pt::LWT_XMIT,                0,                                  SEC_NONE),
    def("lwt_seg6local",            pt::LWT_SEG6LOCAL,           0,                                  SEC_NONE),
    def("sockops",                  pt::SOCK_OPS,                at::CGROUP_SOCK_OPS,                SEC_ATTACHABLE_OPT),
    def("sk_skb/stream_parser",     pt::SK_SKB,                  at::SK_SKB_STREAM_PARSER,           SEC_ATTACHABLE_OPT),
    def("sk_skb/stream_verdict",    pt::SK_SKB,                  at::SK_SKB_STREAM_VERDICT,          SEC_ATTACHABLE_OPT),
    def("sk_skb/verdict",           pt::SK_SKB,                  at::SK_SKB_VERDICT,                 SEC_ATTACHABLE_OPT),
    def("sk_skb",                   pt::SK_SKB,                  0,                                  SEC_NONE),
    def("sk_msg",                   pt::SK_MSG,                  at::SK_MSG_VERDICT,                 SEC_ATTACHABLE_OPT),
    def("lirc_mode2",               pt::LIRC_MODE2,              at::LIRC_MODE2,                     SEC_ATTACHABLE_OPT),
    def("flow_dissector",           pt::FLOW_DISSECTOR,          at::FLOW_DISSECTOR,                 SEC_ATTACHABLE_OPT),
    def("cgroup_skb/ingress",       pt::CGROUP_SKB,              at::CGROUP_INET_INGRESS,            SEC_ATTACHABLE_OPT),
    def("cgroup_skb/egress",        pt::CGROUP_SKB,              at::CGROUP_INET_EGRESS,             SEC_ATTACHABLE_OPT),
    def("cgroup/skb",               pt::CGROUP_SKB,              0,                                  SEC_NONE),
    def("cgroup/sock_create",       pt::CGROUP_SOCK,             at::CGROUP_INET_SOCK_CREATE,        SEC_ATTACHABLE),
    def("cgroup/sock_release",      pt::CGROUP_SOCK,             at::CGROUP_INET_SOCK_RELEASE,       SEC_ATTACHABLE),
    def("cgroup/sock",              pt::CGROUP_SOCK,             at::CGROUP_INET_SOCK_CREATE,        SEC_ATTACHABLE_OPT),
    def("cgroup/post_bind4",        pt::CGROUP_SOCK,             at::CGROUP_INET4_POST_BIND,         SEC_ATTACHABLE),
    def("cgroup/post_bind6",        pt::CGROUP_SOCK,             at::CGROUP_INET6_POST_BIND,         SEC_ATTACHABLE),
    def("cgroup/bind4",             pt::CGROUP_SOCK_ADDR,        at::CGROUP_INET4_BIND,              SEC_ATTACHABLE),
    def("cgroup/bind6",             pt::CGROUP_SOCK_ADDR,        at::CGROUP_INET6_BIND,              SEC_ATTACHABLE),
    def("cgroup/connect4",          pt::CGROUP_SOCK_ADDR,        at::CGROUP_INET4_CONNECT,           SEC_ATTACHABLE),
    def("cgroup/connect6",          pt::CGROUP_SOCK_ADDR,        at::CGROUP_INET6_CONNECT,           SEC_ATTACHABLE),
    def("cgroup/connect_unix",      pt::CGROUP_SOCK_ADDR,        at::CGROUP_UNIX_CONNECT,            SEC_ATTACHABLE),
    def("cgroup/sendmsg4",          pt::CGROUP_SOCK_ADDR,        at::CGROUP_UDP4_SENDMSG,            SEC_ATTACHABLE),
    def("cgroup/sendmsg6",          pt::CGROUP_SOCK_ADDR,        at::CGROUP_UDP6_SENDMSG,            SEC_ATTACHABLE),
    def("cgroup/sendmsg_unix",      pt::CGROUP_SOCK_ADDR,        at::CGROUP_UNIX_SENDMSG,            SEC_ATTACHABLE),
    def("cgroup/recvmsg4",          pt::CGROUP_SOCK_ADDR,        at::CGROUP_UDP4_RECVMSG,            SEC_ATTACHABLE),
    def("cgroup/recvmsg6",          pt::CGROUP_SOCK_ADDR,        at::CGROUP_UDP6_RECVMSG,            SEC_ATTACHABLE),
    def("cgroup/recvmsg_unix",      pt::CGROUP_SOCK_ADDR,        at::CGROUP_UNIX_RECVMSG,            SEC_ATTACHABLE),
    def("cgroup/getpeername4",      pt::CGROUP_SOCK_ADDR,        at::CGROUP_INET4_GETPEERNAME,       SEC_ATTACHABLE),
    def("cgroup/getpeername6",      pt::CGROUP_SOCK_ADDR,        at::CGROUP_INET6_GETPEERNAME,       SEC_ATTACHABLE),
    def("cgroup/getpeername_unix",  pt::CGROUP_SOCK_ADDR,        at::CGROUP_UNIX_GETPEERNAME,        SEC_ATTACHABLE),
    def("cgroup/getsockname4",      pt::CGROUP_SOCK_ADDR,        at::CGROUP_INET4_GETSOCKNAME,       SEC_ATTACHABLE),
    def("cgroup/getsockname6",      pt::CGROUP_SOCK_ADDR,        at::CGROUP_INET6_GETSOCKNAME,       SEC_ATTACHABLE),
    def("cgroup/getsockname_unix",  pt::CGROUP_SOCK_ADDR,        at::CGROUP_UNIX_GETSOCKNAME,        SEC_ATTACHABLE),
    def("cgroup/sysctl",            pt::CGROUP_SYSCTL,           at::CGROUP_SYSCTL,                  SEC_ATTACHABLE),
    def("cgroup/getsockopt",        pt::CGROUP_SOCKOPT,          at::CGROUP_GETSOCKOPT,              SEC_ATTACHABLE),
    def("cgroup/setsockopt",        pt::CGROUP_SOCKOPT,          at::CGROUP_SETSOCKOPT,              SEC_ATTACHABLE),
    def("cgroup/dev",               pt::CGROUP_DEVICE,           at::CGROUP_DEVICE,                  SEC_ATTACHABLE_OPT),
    def("struct_ops+",              pt::STRUCT_OPS,              0,                                  SEC_NONE),
    def("struct_ops.s+",            pt::STRUCT_OPS,              0,                                  SEC_SLEEPABLE),
    def("sk_lookup",                pt::SK_LOOKUP,               at::SK_LOOKUP,                      SEC_ATTACHABLE),
    def("netfilter",                pt::NETFILTER,               at::NETFILTER,                      SEC_NONE),
];

/// The whole built-in table, in libbpf's lookup order.
pub fn section_defs() -> &'static [SectionDef] {
    SECTION_DEFS
}

/// First table entry (in libbpf order) that accepts `sec_name`.
///
/// A leading `?` (libbpf's "don't autoload" marker) is not stripped here.
pub fn find_section_def(sec_name: &str) -> Option<&'static SectionDef> {
    // Every pattern matches at its first byte, so only the entries starting
    // with the name's first byte can match; they are kept per byte, in table
    // order, so the first match is still libbpf's. (Performance: scanning all
    // ~170 entries once per program cost 5-7% of open+generate.)
    static BY_FIRST_BYTE: std::sync::OnceLock<Vec<Vec<&'static SectionDef>>> = std::sync::OnceLock::new();
    let index = BY_FIRST_BYTE.get_or_init(|| {
        let mut index = vec![Vec::new(); 256];
        for def in SECTION_DEFS {
            if let Some(&b) = def.pattern.as_bytes().first() {
                index[b as usize].push(def);
            }
        }
        index
    });
    let &first = sec_name.as_bytes().first()?;
    index[first as usize].iter().copied().find(|d| d.matches(sec_name))
}

/// The part of a section name after its first `/`, which libbpf uses both as
/// the raw tracepoint name and as the BTF attach target name.
pub fn section_target(sec_name: &str) -> Option<&str> {
    sec_name.split_once('/').map(|(_, rest)| rest)
}

/// BTF name prefix and BTF kind libbpf searches kernel/module BTF with to
/// resolve a BTF-based attach target. Only the attach type decides this; for
/// `freplace` (EXT) programs the target's own BTF is searched for a plain
/// FUNC, which the default arm also describes.
pub fn btf_attach_lookup(_prog_type: u32, expected_attach_type: u32) -> (&'static str, u32) {
    match expected_attach_type {
        at::TRACE_RAW_TP => ("btf_trace_", btf_kind::TYPEDEF),
        at::LSM_MAC | at::LSM_CGROUP => ("bpf_lsm_", btf_kind::FUNC),
        at::TRACE_ITER => ("bpf_iter_", btf_kind::FUNC),
        _ => ("", btf_kind::FUNC),
    }
}

const PROG_TYPE_NAMES: [&str; pt::MAX as usize] = [
    "unspec",
    "socket_filter",
    "kprobe",
    "sched_cls",
    "sched_act",
    "tracepoint",
    "xdp",
    "perf_event",
    "cgroup_skb",
    "cgroup_sock",
    "lwt_in",
    "lwt_out",
    "lwt_xmit",
    "sock_ops",
    "sk_skb",
    "cgroup_device",
    "sk_msg",
    "raw_tracepoint",
    "cgroup_sock_addr",
    "lwt_seg6local",
    "lirc_mode2",
    "sk_reuseport",
    "flow_dissector",
    "cgroup_sysctl",
    "raw_tracepoint_writable",
    "cgroup_sockopt",
    "tracing",
    "struct_ops",
    "ext",
    "lsm",
    "sk_lookup",
    "syscall",
    "netfilter",
];

const ATTACH_TYPE_NAMES: [&str; at::MAX as usize] = [
    "cgroup_inet_ingress",
    "cgroup_inet_egress",
    "cgroup_inet_sock_create",
    "cgroup_sock_ops",
    "sk_skb_stream_parser",
    "sk_skb_stream_verdict",
    "cgroup_device",
    "sk_msg_verdict",
    "cgroup_inet4_bind",
    "cgroup_inet6_bind",
    "cgroup_inet4_connect",
    "cgroup_inet6_connect",
    "cgroup_inet4_post_bind",
    "cgroup_inet6_post_bind",
    "cgroup_udp4_sendmsg",
    "cgroup_udp6_sendmsg",
    "lirc_mode2",
    "flow_dissector",
    "cgroup_sysctl",
    "cgroup_udp4_recvmsg",
    "cgroup_udp6_recvmsg",
    "cgroup_getsockopt",
    "cgroup_setsockopt",
    "trace_raw_tp",
    "trace_fentry",
    "trace_fexit",
    "modify_return",
    "lsm_mac",
    "trace_iter",
    "cgroup_inet4_getpeername",
    "cgroup_inet6_getpeername",
    "cgroup_inet4_getsockname",
    "cgroup_inet6_getsockname",
    "xdp_devmap",
    "cgroup_inet_sock_release",
    "xdp_cpumap",
    "sk_lookup",
    "xdp",
    "sk_skb_verdict",
    "sk_reuseport_select",
    "sk_reuseport_select_or_migrate",
    "perf_event",
    "trace_kprobe_multi",
    "lsm_cgroup",
    "struct_ops",
    "netfilter",
    "tcx_ingress",
    "tcx_egress",
    "trace_uprobe_multi",
    "cgroup_unix_connect",
    "cgroup_unix_sendmsg",
    "cgroup_unix_recvmsg",
    "cgroup_unix_getpeername",
    "cgroup_unix_getsockname",
    "netkit_primary",
    "netkit_peer",
    "trace_kprobe_session",
];

const MAP_TYPE_NAMES: [&str; map_type::MAX as usize] = [
    "unspec",
    "hash",
    "array",
    "prog_array",
    "perf_event_array",
    "percpu_hash",
    "percpu_array",
    "stack_trace",
    "cgroup_array",
    "lru_hash",
    "lru_percpu_hash",
    "lpm_trie",
    "array_of_maps",
    "hash_of_maps",
    "devmap",
    "sockmap",
    "cpumap",
    "xskmap",
    "sockhash",
    "cgroup_storage",
    "reuseport_sockarray",
    "percpu_cgroup_storage",
    "queue",
    "stack",
    "sk_storage",
    "devmap_hash",
    "struct_ops",
    "ringbuf",
    "inode_storage",
    "task_storage",
    "bloom_filter",
    "user_ringbuf",
    "cgrp_storage",
    "arena",
];

fn lookup_name(table: &[&'static str], value: u32) -> Option<&'static str> {
    usize::try_from(value).ok().and_then(|i| table.get(i)).copied()
}

/// libbpf's name for a program type (`libbpf_bpf_prog_type_str`).
pub fn prog_type_name(t: u32) -> Option<&'static str> {
    lookup_name(&PROG_TYPE_NAMES, t)
}

/// libbpf's name for an attach type (`libbpf_bpf_attach_type_str`).
pub fn attach_type_name(t: u32) -> Option<&'static str> {
    lookup_name(&ATTACH_TYPE_NAMES, t)
}

/// libbpf's name for a map type (`libbpf_bpf_map_type_str`).
pub fn map_type_name(t: u32) -> Option<&'static str> {
    lookup_name(&MAP_TYPE_NAMES, t)
}

/// Attach code bpftool 7.5.0 emits in a light skeleton's `<obj>__<prog>__attach`.
///
/// Only the program type and expected attach type are consulted. For
/// [`SkelAttach::RawTracepoint`] bpftool takes the text after the first `/`
/// of the section name unconditionally (see [`section_target`]); a section
/// without `/` (e.g. bare `raw_tp`) crashes bpftool.
pub fn skel_attach_kind(prog_type: u32, expected_attach_type: u32) -> SkelAttach {
    match prog_type {
        pt::RAW_TRACEPOINT => SkelAttach::RawTracepoint,
        pt::TRACING | pt::LSM if expected_attach_type == at::TRACE_ITER => SkelAttach::Iter,
        pt::TRACING | pt::LSM => SkelAttach::TracingRawTp,
        _ => SkelAttach::Unsupported,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> &'static SectionDef {
        find_section_def(name).unwrap_or_else(|| panic!("no section def for {name:?}"))
    }

    fn attrs(name: &str) -> LoadAttrs {
        lookup(name).load_attrs()
    }

    fn load(prog_type: u32, expected_attach_type: u32, prog_flags: u32) -> LoadAttrs {
        LoadAttrs {
            prog_type,
            expected_attach_type,
            prog_flags,
        }
    }

    #[test]
    fn tracepoints() {
        assert_eq!(lookup("tp/sched/sched_switch").pattern, "tp+");
        assert_eq!(lookup("tracepoint/x/y").pattern, "tracepoint+");
        assert_eq!(attrs("tp/sched/sched_switch"), load(pt::TRACEPOINT, 0, 0));
        assert_eq!(lookup("tp").pattern, "tp+");
        assert!(find_section_def("tpx/a").is_none());
    }

    #[test]
    fn raw_tracepoints() {
        assert_eq!(attrs("raw_tp/sys_enter"), load(pt::RAW_TRACEPOINT, 0, 0));
        assert_eq!(lookup("raw_tp").pattern, "raw_tp+");
        assert_eq!(lookup("raw_tracepoint/foo").pattern, "raw_tracepoint+");
        // "raw_tp+" rejects "raw_tp.w/..." because '.' is not a separator.
        let w = lookup("raw_tp.w/foo");
        assert_eq!(w.pattern, "raw_tp.w+");
        assert_eq!(w.prog_type, pt::RAW_TRACEPOINT_WRITABLE);
    }

    #[test]
    fn xdp_variants() {
        let x = lookup("xdp");
        assert_eq!(x.flags, SEC_ATTACHABLE_OPT);
        assert_eq!(x.load_attrs(), load(pt::XDP, at::XDP, 0));
        assert_eq!(attrs("xdp.frags"), load(pt::XDP, at::XDP, BPF_F_XDP_HAS_FRAGS));
        assert_eq!(attrs("xdp/devmap"), load(pt::XDP, at::XDP_DEVMAP, 0));
        assert_eq!(
            attrs("xdp.frags/cpumap"),
            load(pt::XDP, at::XDP_CPUMAP, BPF_F_XDP_HAS_FRAGS)
        );
        // exact-match patterns: no suffixes allowed
        assert!(find_section_def("xdp/foo").is_none());
        assert!(find_section_def("xdp.frags/foo").is_none());
    }

    #[test]
    fn frags_flag_requires_xdp_type() {
        let fake = def("x", pt::SCHED_CLS, 0, SEC_XDP_FRAGS);
        assert_eq!(fake.load_attrs().prog_flags, 0);
    }

    #[test]
    fn networking_exact_names() {
        assert_eq!(attrs("socket"), load(pt::SOCKET_FILTER, 0, 0));
        assert!(find_section_def("socket/foo").is_none());
        assert_eq!(attrs("tc"), load(pt::SCHED_CLS, 0, 0));
        assert!(find_section_def("tc/foo").is_none());
        assert_eq!(attrs("tc/ingress"), load(pt::SCHED_CLS, at::TCX_INGRESS, 0));
        assert_eq!(attrs("tcx/ingress"), load(pt::SCHED_CLS, at::TCX_INGRESS, 0));
        assert_eq!(attrs("netkit/primary"), load(pt::SCHED_CLS, at::NETKIT_PRIMARY, 0));
        assert_eq!(attrs("sk_lookup"), load(pt::SK_LOOKUP, at::SK_LOOKUP, 0));
        assert_eq!(
            attrs("sk_reuseport/migrate"),
            load(pt::SK_REUSEPORT, at::SK_REUSEPORT_SELECT_OR_MIGRATE, 0)
        );
        assert_eq!(attrs("sk_skb"), load(pt::SK_SKB, 0, 0));
        assert_eq!(lookup("netfilter").expected_attach_type, at::NETFILTER);
    }

    #[test]
    fn cgroup_programs() {
        let skb = lookup("cgroup_skb/ingress");
        assert_eq!(skb.flags, SEC_ATTACHABLE_OPT);
        // EXP_ATTACH_OPT never clears the attach type in gen mode.
        assert_eq!(skb.load_attrs(), load(pt::CGROUP_SKB, at::CGROUP_INET_INGRESS, 0));
        assert_eq!(
            attrs("cgroup/connect4"),
            load(pt::CGROUP_SOCK_ADDR, at::CGROUP_INET4_CONNECT, 0)
        );
        assert_eq!(lookup("cgroup/connect4").flags, SEC_ATTACHABLE);
        assert_eq!(
            attrs("cgroup/sock"),
            load(pt::CGROUP_SOCK, at::CGROUP_INET_SOCK_CREATE, 0)
        );
        assert_eq!(
            attrs("cgroup/getsockname_unix"),
            load(pt::CGROUP_SOCK_ADDR, at::CGROUP_UNIX_GETSOCKNAME, 0)
        );
        assert_eq!(attrs("cgroup/skb"), load(pt::CGROUP_SKB, 0, 0));
        assert!(find_section_def("cgroup/unknown").is_none());
    }

    #[test]
    fn btf_tracing() {
        let f = lookup("fentry/foo");
        assert!(f.needs_btf_attach_target());
        assert_eq!(f.load_attrs(), load(pt::TRACING, at::TRACE_FENTRY, 0));
        assert_eq!(
            attrs("fentry.s/foo"),
            load(pt::TRACING, at::TRACE_FENTRY, BPF_F_SLEEPABLE)
        );
        assert_eq!(attrs("fexit/bar"), load(pt::TRACING, at::TRACE_FEXIT, 0));
        assert_eq!(attrs("fmod_ret/bar"), load(pt::TRACING, at::MODIFY_RETURN, 0));
        assert_eq!(lookup("tp_btf/sched_switch").pattern, "tp_btf+");
        assert_eq!(lookup("freplace/x").prog_type, pt::EXT);
        assert!(!lookup("raw_tp/x").needs_btf_attach_target());
    }

    #[test]
    fn lsm_and_iter() {
        let l = lookup("lsm/file_open");
        assert!(l.needs_btf_attach_target());
        assert_eq!(l.load_attrs(), load(pt::LSM, at::LSM_MAC, 0));
        assert_eq!(attrs("lsm.s/x"), load(pt::LSM, at::LSM_MAC, BPF_F_SLEEPABLE));
        assert_eq!(lookup("lsm_cgroup/x").expected_attach_type, at::LSM_CGROUP);
        assert_eq!(attrs("iter/task"), load(pt::TRACING, at::TRACE_ITER, 0));
        assert_eq!(attrs("iter.s/task"), load(pt::TRACING, at::TRACE_ITER, BPF_F_SLEEPABLE));
    }

    #[test]
    fn probes() {
        assert_eq!(attrs("kprobe/do_sys_open"), load(pt::KPROBE, 0, 0));
        assert_eq!(lookup("kprobe").pattern, "kprobe+");
        assert_eq!(attrs("uprobe.s/x"), load(pt::KPROBE, 0, BPF_F_SLEEPABLE));
        assert_eq!(attrs("kprobe.multi/x"), load(pt::KPROBE, at::TRACE_KPROBE_MULTI, 0));
        assert_eq!(attrs("kprobe.session/x"), load(pt::KPROBE, at::TRACE_KPROBE_SESSION, 0));
        assert_eq!(
            attrs("uretprobe.multi.s/x"),
            load(pt::KPROBE, at::TRACE_UPROBE_MULTI, BPF_F_SLEEPABLE)
        );
        assert_eq!(lookup("ksyscall/openat").pattern, "ksyscall+");
        assert!(find_section_def("kprobe.foo/x").is_none());
    }

    #[test]
    fn usdt_becomes_uprobe_multi() {
        let u = lookup("usdt");
        assert_eq!(u.flags, SEC_USDT);
        assert_eq!(u.expected_attach_type, 0);
        assert_eq!(u.load_attrs(), load(pt::KPROBE, at::TRACE_UPROBE_MULTI, 0));
        assert_eq!(
            attrs("usdt.s/lib:prov:name"),
            load(pt::KPROBE, at::TRACE_UPROBE_MULTI, BPF_F_SLEEPABLE)
        );
    }

    #[test]
    fn misc_types() {
        assert_eq!(attrs("struct_ops/foo"), load(pt::STRUCT_OPS, 0, 0));
        assert_eq!(attrs("struct_ops.s/foo"), load(pt::STRUCT_OPS, 0, BPF_F_SLEEPABLE));
        assert_eq!(attrs("syscall"), load(pt::SYSCALL, 0, BPF_F_SLEEPABLE));
        assert_eq!(attrs("sockops"), load(pt::SOCK_OPS, at::CGROUP_SOCK_OPS, 0));
        assert_eq!(attrs("perf_event"), load(pt::PERF_EVENT, 0, 0));
    }

    #[test]
    fn unmatched_names() {
        assert!(find_section_def("?tp/a/b").is_none());
        assert!(find_section_def("unknown_section").is_none());
        assert!(find_section_def("").is_none());
        assert!(find_section_def(".text").is_none());
        assert!(find_section_def("license").is_none());
    }

    #[test]
    fn prefix_slash_pattern_rule() {
        let d = def("foo/", pt::KPROBE, 0, SEC_NONE);
        assert!(d.matches("foo/"));
        assert!(d.matches("foo/bar"));
        assert!(!d.matches("foo"));
        assert!(!d.matches("foobar"));
        let plus = def("foo+", pt::KPROBE, 0, SEC_NONE);
        assert!(plus.matches("foo"));
        assert!(plus.matches("foo/"));
        assert!(plus.matches("foo/a/b"));
        assert!(!plus.matches("foo.s"));
        assert!(!plus.matches("fo"));
    }

    #[test]
    fn every_flag_is_used() {
        for flag in [
            SEC_EXP_ATTACH_OPT,
            SEC_ATTACHABLE,
            SEC_ATTACH_BTF,
            SEC_SLEEPABLE,
            SEC_XDP_FRAGS,
            SEC_USDT,
        ] {
            assert!(section_defs().iter().any(|d| d.flags & flag != 0));
        }
        assert!(section_defs().iter().any(|d| d.flags == SEC_NONE));
        assert_eq!(section_defs().len(), 101);
    }

    #[test]
    fn table_entries_find_themselves_or_earlier() {
        for (i, d) in section_defs().iter().enumerate() {
            let name = d.pattern.trim_end_matches('+');
            let found = find_section_def(name).expect("pattern matches itself");
            let j = section_defs().iter().position(|e| std::ptr::eq(e, found)).unwrap();
            assert_eq!(i, j, "{} shadowed by {}", d.pattern, found.pattern);
        }
    }

    #[test]
    fn btf_lookup_names() {
        assert_eq!(
            btf_attach_lookup(pt::TRACING, at::TRACE_RAW_TP),
            ("btf_trace_", btf_kind::TYPEDEF)
        );
        assert_eq!(btf_attach_lookup(pt::LSM, at::LSM_MAC), ("bpf_lsm_", btf_kind::FUNC));
        assert_eq!(btf_attach_lookup(pt::LSM, at::LSM_CGROUP), ("bpf_lsm_", btf_kind::FUNC));
        assert_eq!(
            btf_attach_lookup(pt::TRACING, at::TRACE_ITER),
            ("bpf_iter_", btf_kind::FUNC)
        );
        assert_eq!(btf_attach_lookup(pt::TRACING, at::TRACE_FENTRY), ("", btf_kind::FUNC));
        assert_eq!(section_target("fentry/foo"), Some("foo"));
        assert_eq!(section_target("tp/a/b"), Some("a/b"));
        assert_eq!(section_target("fentry"), None);
    }

    #[test]
    fn names() {
        assert_eq!(prog_type_name(pt::TRACEPOINT), Some("tracepoint"));
        assert_eq!(prog_type_name(pt::XDP), Some("xdp"));
        assert_eq!(prog_type_name(pt::NETFILTER), Some("netfilter"));
        assert_eq!(prog_type_name(pt::MAX), None);
        assert_eq!(attach_type_name(at::CGROUP_INET_INGRESS), Some("cgroup_inet_ingress"));
        assert_eq!(attach_type_name(at::TRACE_ITER), Some("trace_iter"));
        assert_eq!(attach_type_name(at::TRACE_KPROBE_SESSION), Some("trace_kprobe_session"));
        assert_eq!(attach_type_name(at::MAX), None);
        assert_eq!(attach_type_name(u32::MAX), None);
        assert_eq!(map_type_name(map_type::HASH), Some("hash"));
        assert_eq!(map_type_name(map_type::PERCPU_ARRAY), Some("percpu_array"));
        assert_eq!(map_type_name(map_type::CGROUP_STORAGE), Some("cgroup_storage"));
        assert_eq!(map_type_name(map_type::DEVMAP_HASH), Some("devmap_hash"));
        assert_eq!(map_type_name(map_type::ARENA), Some("arena"));
        assert_eq!(map_type_name(map_type::MAX), None);
    }

    #[test]
    fn skeleton_attach() {
        let kind = |sec: &str| {
            let d = lookup(sec);
            let a = d.load_attrs();
            skel_attach_kind(a.prog_type, a.expected_attach_type)
        };
        assert_eq!(kind("raw_tp/sys_enter"), SkelAttach::RawTracepoint);
        assert_eq!(kind("raw_tracepoint/sys_enter"), SkelAttach::RawTracepoint);
        assert_eq!(kind("raw_tp.w/foo"), SkelAttach::Unsupported);
        assert_eq!(kind("fentry/foo"), SkelAttach::TracingRawTp);
        assert_eq!(kind("tp_btf/foo"), SkelAttach::TracingRawTp);
        assert_eq!(kind("lsm/file_open"), SkelAttach::TracingRawTp);
        assert_eq!(kind("lsm_cgroup/x"), SkelAttach::TracingRawTp);
        assert_eq!(kind("iter/task"), SkelAttach::Iter);
        assert_eq!(kind("iter.s/task"), SkelAttach::Iter);
        assert_eq!(kind("freplace/x"), SkelAttach::Unsupported);
        assert_eq!(kind("tp/a/b"), SkelAttach::Unsupported);
        assert_eq!(kind("xdp"), SkelAttach::Unsupported);
        assert_eq!(kind("kprobe/x"), SkelAttach::Unsupported);
        assert_eq!(kind("syscall"), SkelAttach::Unsupported);
    }
}
