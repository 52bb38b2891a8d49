"""Compile and run light-skeleton headers with gcc against libbpf's skel_internal.h.

``probe_source`` writes a small C program around a header: ``NAME__open_and_load()``,
then one line per map / program descriptor with its fd and what the kernel reports
for it (BPF_OBJ_GET_INFO_BY_FD), optional BPF_PROG_TEST_RUN calls and attach calls.
``type_prelude`` makes headers whose data-section structs name user types compile:
the definitions come from ``bpftool btf dump file OBJ format c unsorted`` (bpftool
7.5.0's sorted dump leaves out some types, e.g. the ``enum libbpf_tristate`` of .kconfig
externs), cut into top-level declarations and filtered to the closure of what the
skeleton struct names, minus what the system headers already define. Used by
test_header_compile.py and test_beyond.py."""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

PRELUDE_INCLUDES = "#include <errno.h>\n#include <stdio.h>\n#include <string.h>\n" \
                   "#include <bpf/skel_internal.h>\n"
GCC_FLAGS = ["-O1", "-g0", "-Wall", "-Wno-unused-function", "-Wno-unused-variable"]

_TAG_RE = re.compile(r"\b(struct|union|enum)\s+(\w+)")
_IDENT_RE = re.compile(r"\b[A-Za-z_]\w*\b")


def tool(name: str) -> str | None:
    return shutil.which(name)


# -- parsing the header ---------------------------------------------------------------------

@dataclass
class Skeleton:
    """What a light-skeleton header declares: its struct name and descriptors."""

    name: str
    maps: list[str]
    progs: list[str]
    body: str  # text of the skeleton struct (for the type references)


def parse_header(text: str) -> Skeleton:
    m = re.search(r"^struct (\w+) \{\n\tstruct bpf_loader_ctx ctx;\n", text, re.M)
    if m is None:
        raise ValueError("no skeleton struct in header")
    name = m.group(1)
    end = text.index("\n};\n", m.start())
    body = text[m.start():end]
    maps = re.findall(r"^\t\tstruct bpf_map_desc (\w+);$", body, re.M)
    progs = re.findall(r"^\t\tstruct bpf_prog_desc (\w+);$", body, re.M)
    return Skeleton(name, maps, progs, body)


# -- user types for the data-section structs -------------------------------------------------

def _block_key(block: str) -> tuple[str, str] | None:
    """(kind, name) a top-level declaration of bpftool's C dump defines, or None."""
    first = block.split("\n", 1)[0]
    if m := re.match(r"^(struct|union|enum) (\w+) \{", first):
        return m.group(1), m.group(2)
    if m := re.match(r"^(struct|union|enum) (\w+);$", first):
        return "fwd " + m.group(1), m.group(2)
    if block.startswith("typedef "):
        last = block.rstrip().rsplit("\n", 1)[-1]
        if m := re.search(r"\(\s*\*\s*(\w+)\s*\)\s*\(", last):
            return "typedef", m.group(1)
        if m := re.search(r"(\w+)\s*(\[[^\]]*\]\s*)*;$", last):
            return "typedef", m.group(1)
    return None


def _refs(text: str, typedefs: set[str]) -> set[tuple[str, str]]:
    out = {(kind, name) for kind, name in _TAG_RE.findall(text)}
    out |= {("typedef", w) for w in _IDENT_RE.findall(text) if w in typedefs}
    return out


@functools.lru_cache(maxsize=1)
def system_names() -> frozenset[tuple[str, str]]:
    """Tags and typedef names the C prelude's system headers define."""
    gcc = tool("gcc")
    if gcc is None:
        return frozenset()
    p = subprocess.run([gcc, "-E", "-P", "-x", "c", "-"], input=PRELUDE_INCLUDES,
                       capture_output=True, text=True, timeout=60)
    text = p.stdout
    names = {(k, n) for k, n in re.findall(r"\b(struct|union|enum)\s+(\w+)\s*\{", text)}
    names |= {("typedef", n) for n in re.findall(r"\btypedef\b[^;{}()]*?\b(\w+)\s*;", text)}
    names |= {("typedef", n) for n in re.findall(r"\btypedef\b[^;{}]*\(\s*\*\s*(\w+)\s*\)", text)}
    return frozenset(names)


def btf_c_dump(obj: Path) -> str:
    bpftool = tool("bpftool")
    if bpftool is None:
        raise FileNotFoundError("bpftool not found")
    p = subprocess.run([bpftool, "btf", "dump", "file", str(obj), "format", "c", "unsorted"],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError(f"bpftool btf dump {obj}: {p.stderr.strip()}")
    return p.stdout


def type_prelude(obj: Path, header: str) -> str:
    """C definitions of the user types the header's skeleton struct names (and of what
    they need), in the order bpftool's dump prints them (a valid C order)."""
    skel = parse_header(header)
    dump = btf_c_dump(obj)
    blocks = [b.strip("\n") for b in re.split(r"\n\s*\n", dump) if b.strip()]
    keyed = [(b, _block_key(b)) for b in blocks]
    typedefs = {k[1] for _, k in keyed if k is not None and k[0] == "typedef"}
    by_key: dict[tuple[str, str], str] = {k: b for b, k in keyed if k is not None}
    system = system_names()
    want: set[tuple[str, str]] = set()
    todo = list(_refs(skel.body, typedefs))
    while todo:
        key = todo.pop()
        if key in want or key in system or key not in by_key:
            continue
        if key[0] in ("struct", "union", "enum") and key[1].startswith(skel.name + "__"):
            continue  # the header's own data-section structs
        want.add(key)
        todo.extend(_refs(by_key[key], typedefs))
    for kind in ("struct", "union"):  # anything only forward-declared still needs its tag
        for key, _block in list(by_key.items()):
            if key == ("fwd " + kind, key[1]) and (kind, key[1]) in want:
                want.add(key)
    out = [b for b, k in keyed if k is not None and k in want]
    return "\n\n".join(out) + ("\n" if out else "")


# -- the probe program -----------------------------------------------------------------------

@dataclass
class TestRun:
    """A BPF_PROG_TEST_RUN of program ``prog`` after load: ``data`` bytes of packet data
    (socket/xdp/tc programs) and ``ctx`` bytes of context (syscall programs)."""

    prog: str
    data: int = 0
    ctx: int = 0


PROBE_FUNCS = r"""
static int probe_info(int fd, void *info, __u32 len)
{
	union bpf_attr attr;

	memset(info, 0, len);
	memset(&attr, 0, sizeof(attr));
	attr.info.bpf_fd = fd;
	attr.info.info_len = len;
	attr.info.info = (long)info;
	return skel_sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr, sizeof(attr));
}

static void probe_map(const char *ident, int fd)
{
	struct bpf_map_info mi;

	if (fd > 0 && !probe_info(fd, &mi, sizeof(mi)))
		printf("map %s fd=%d type=%u name=%s key=%u value=%u max_entries=%u flags=0x%x "
			"btf_key=%u btf_value=%u\n",
			ident, fd, mi.type, mi.name, mi.key_size, mi.value_size, mi.max_entries,
			mi.map_flags, mi.btf_key_type_id, mi.btf_value_type_id);
	else
		printf("map %s fd=%d\n", ident, fd);
}

static void probe_prog(const char *ident, int fd)
{
	struct bpf_prog_info pi;

	if (fd > 0 && !probe_info(fd, &pi, sizeof(pi)))
		printf("prog %s fd=%d type=%u name=%s\n", ident, fd, pi.type, pi.name);
	else
		printf("prog %s fd=%d\n", ident, fd);
}

static void probe_run(const char *ident, int fd, __u32 data_sz, __u32 ctx_sz)
{
	static char data[256], ctx[256];
	union bpf_attr attr;
	int err;

	memset(&attr, 0, sizeof(attr));
	attr.test.prog_fd = fd;
	if (data_sz) {
		attr.test.data_in = (long)data;
		attr.test.data_size_in = data_sz;
	}
	if (ctx_sz) {
		attr.test.ctx_in = (long)ctx;
		attr.test.ctx_size_in = ctx_sz;
	}
	err = skel_sys_bpf(BPF_PROG_TEST_RUN, &attr, sizeof(attr));
	printf("run %s err=%d errno=%d retval=%u\n", ident, err, err ? errno : 0,
		attr.test.retval);
}
"""


RUN_COUNT_FUNCS = r"""
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* The kernel counts each program's runs (bpf_prog_info.run_cnt) while this fd is open. */
static int enable_run_counts(void)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.enable_stats.type = BPF_STATS_RUN_TIME;
	return skel_sys_bpf(BPF_ENABLE_STATS, &attr, sizeof(attr));
}

/* An iterator program runs when its iterator is read; other links refuse the create. */
static void read_iterator(int link_fd)
{
	union bpf_attr attr;
	char buf[4096];
	int fd;

	if (link_fd <= 0)
		return;
	memset(&attr, 0, sizeof(attr));
	attr.iter_create.link_fd = link_fd;
	fd = skel_sys_bpf(BPF_ITER_CREATE, &attr, sizeof(attr));
	if (fd < 0)
		return;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
}

/* The events the fixtures' auto-attached programs hook: syscalls (raw_tp sys_enter and
 * sys_exit, fentry.s on getpgid, lsm.s on bpf), a file open (lsm file_open), a task
 * rename, a fork waited for (task_newtask, sched_switch), and, for fentry, fexit and
 * fmod_ret on the kernel's test functions, BPF_PROG_TEST_RUN of each tracing program,
 * which calls those functions rather than the program. Each happens once, in order: the
 * counts read afterwards need no waiting. */
static void trigger(const int *prog_fds, int n)
{
	struct bpf_prog_info pi;
	union bpf_attr attr;
	pid_t child;
	int i, fd;

	syscall(SYS_getpgid, 0);
	fd = open("/dev/null", O_RDONLY);
	if (fd >= 0)
		close(fd);
	prctl(PR_SET_NAME, "lskel-trigger");
	child = fork();
	if (child == 0)
		_exit(0);
	if (child > 0)
		waitpid(child, NULL, 0);
	for (i = 0; i < n; i++) {
		if (prog_fds[i] <= 0 || probe_info(prog_fds[i], &pi, sizeof(pi)) ||
			pi.type != BPF_PROG_TYPE_TRACING)
			continue;
		memset(&attr, 0, sizeof(attr));
		attr.test.prog_fd = prog_fds[i];
		skel_sys_bpf(BPF_PROG_TEST_RUN, &attr, sizeof(attr));
	}
}

static void probe_ran(const char *ident, int fd)
{
	struct bpf_prog_info pi;

	if (fd > 0 && !probe_info(fd, &pi, sizeof(pi)))
		printf("ran %s cnt=%llu\n", ident, (unsigned long long)pi.run_cnt);
}
"""


def _run_count_lines(skel: Skeleton) -> list[str]:
    """Attach each program through the header, read iterators, trigger, print counts."""
    lines = [f'\tprintf("attach {p} ret=%d\\n", {skel.name}__{p}__attach(skel));'
             for p in skel.progs]
    lines += [f"\tread_iterator(skel->links.{p}_fd);" for p in skel.progs]
    fds = ", ".join(f"skel->progs.{p}.prog_fd" for p in skel.progs) or "0"
    lines += ["\t{", f"\t\tint fds[] = {{{fds}}};",
              f"\t\ttrigger(fds, {len(skel.progs)});", "\t}"]
    lines += [f'\tprobe_ran("{p}", skel->progs.{p}.prog_fd);' for p in skel.progs]
    return lines


def probe_source(header_name: str, skel: Skeleton, *, required_progs: set[str] | None = None,
                 prelude: str = "", runs: list[TestRun] | None = None,
                 attach: list[str] | None = None, attach_all: bool = False,
                 extra: str = "", count_runs: bool = False) -> str:
    """A C main for the header: prints ``map IDENT fd=...``, ``prog IDENT fd=...``,
    ``run IDENT ... retval=N``, ``attach IDENT ret=N``; exit 0 when every map fd and every
    program in ``required_progs`` (default: all) is > 0, 3 otherwise, 2 when
    ``__open_and_load`` fails (after printing ``open_and_load failed errno=N``).
    ``count_runs``: with the kernel's run counts on, attach every program through its
    ``__attach`` function, trigger the fixtures' hooks and print ``ran IDENT cnt=N``."""
    required = set(skel.progs) if required_progs is None else required_progs
    lines = [PRELUDE_INCLUDES, prelude, f'#include "{header_name}"\n', PROBE_FUNCS,
             RUN_COUNT_FUNCS if count_runs else "",
             "int main(void)\n{", f"\tstruct {skel.name} *skel;", "\tint bad = 0;\n",
             "\tsetvbuf(stdout, NULL, _IOLBF, 0);"]
    if count_runs:
        lines.append('\tprintf("stats fd=%d\\n", enable_run_counts());')
    lines += [f"\tskel = {skel.name}__open_and_load();",
             "\tif (!skel) {", '\t\tprintf("open_and_load failed errno=%d\\n", errno);',
             "\t\treturn 2;", "\t}", '\tprintf("loaded\\n");']
    for m in skel.maps:
        lines.append(f'\tprobe_map("{m}", skel->maps.{m}.map_fd);')
        lines.append(f"\tbad |= skel->maps.{m}.map_fd <= 0;")
    for p in skel.progs:
        lines.append(f'\tprobe_prog("{p}", skel->progs.{p}.prog_fd);')
        if p in required:
            lines.append(f"\tbad |= skel->progs.{p}.prog_fd <= 0;")
    for r in runs or []:
        lines.append(f'\tprobe_run("{r.prog}", skel->progs.{r.prog}.prog_fd, {r.data}, {r.ctx});')
    if extra:
        lines.append(extra)
    for p in attach or []:
        lines.append(f'\tprintf("attach {p} ret=%d\\n", {skel.name}__{p}__attach(skel));')
    if attach_all:
        lines.append(f'\tprintf("attach_all ret=%d\\n", {skel.name}__attach(skel));')
    if count_runs:
        lines += _run_count_lines(skel)
    lines += [f"\t{skel.name}__destroy(skel);", "\treturn bad ? 3 : 0;", "}", ""]
    return "\n".join(lines)


@dataclass
class Probe:
    rc: int
    out: str
    maps: dict[str, dict[str, str]]
    progs: dict[str, dict[str, str]]
    runs: dict[str, dict[str, str]]
    attach: dict[str, int]
    ran: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"exit {self.rc}\n{self.out}"


def _fields(rest: str) -> dict[str, str]:
    return dict(kv.split("=", 1) for kv in rest.split() if "=" in kv)


def parse_probe(rc: int, out: str) -> Probe:
    probe = Probe(rc, out, {}, {}, {}, {})
    for line in out.splitlines():
        kind, _, rest = line.partition(" ")
        ident, _, rest = rest.partition(" ")
        if kind == "map":
            probe.maps[ident] = _fields(rest)
        elif kind == "prog":
            probe.progs[ident] = _fields(rest)
        elif kind == "run":
            probe.runs[ident] = _fields(rest)
        elif kind == "attach":
            probe.attach[ident] = int(_fields(rest)["ret"])
        elif kind == "ran":
            probe.ran[ident] = int(_fields(rest)["cnt"])
    return probe


def compile_c(source: str, header: str, workdir: Path, header_name: str = "skel.lskel.h",
              ) -> tuple[Path | None, str]:
    """(executable or None, gcc's stderr). Cached in ``workdir`` by content hash."""
    gcc = tool("gcc")
    if gcc is None:
        raise FileNotFoundError("gcc not found")
    key = hashlib.sha256("\0".join([source, header, *GCC_FLAGS]).encode()).hexdigest()[:16]
    d = workdir / key
    exe = d / "probe"
    if os.access(exe, os.X_OK):
        return exe, ""
    d.mkdir(parents=True, exist_ok=True)
    # temporaries of its own, renamed into place: the same source may be compiled by two
    # threads at once (our header and bpftool's are often the same bytes), and gcc must
    # never read a file the other is rewriting
    me = f"{os.getpid()}.{threading.get_ident()}"
    for name, text in ((header_name, header), ("probe.c", source)):
        (d / f".{name}.{me}").write_text(text)
        os.replace(d / f".{name}.{me}", d / name)
    tmp = d / f".probe.{me}.tmp"
    p = subprocess.run([gcc, *GCC_FLAGS, "-I", str(d), "-o", str(tmp),
                        str(d / "probe.c")], capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        tmp.unlink(missing_ok=True)
        return None, p.stderr
    os.replace(tmp, exe)
    return exe, p.stderr


def run_probe(exe: Path, timeout: int = 120) -> Probe:
    p = subprocess.run([str(exe)], capture_output=True, text=True, timeout=timeout)
    return parse_probe(p.returncode, p.stdout + p.stderr)
