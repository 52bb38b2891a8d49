"""Signed light skeletons: ``gen skeleton -L -S -k KEY -i CERT`` as bpftool 7.8.0 /
libbpf 1.8 print them.

* Byte-identity with the 7.8 oracle (scripts/oracle-bpftool-7.8.sh builds it; the
  tests skip, saying so, when it is not built), through the API and the CLI, with a
  PEM and a DER certificate, and with ``name NAME``.
* What the header carries, checked without the oracle: ``opts_excl_hash`` is the
  SHA-256 of ``opts_insn``, the loader embeds the SHA-256 of ``opts_data``,
  ``opts_data`` is the unsigned one, ``opts_sig`` verifies with ``openssl cms``.
* Errors: missing / unreadable / mismatched key and certificate, a certificate without
  Subject Key Identifier, bpftool-7.5 style; the CLI's usage errors with bpftool's
  messages.
* Kernel (root, bpf() permitted): the header compiled against the 7.2 tree's
  ``skel_internal.h`` (libbpf >= 1.7: signature fields) with the signature removed
  loads and its program runs; one flipped data byte makes the loader's hash check
  fail with -EINVAL; with the signature the load fails with -EOPNOTSUPP on a kernel
  without signature verification (CONFIG_SYSTEM_DATA_VERIFICATION) and succeeds
  where the kernel has it.

Keys and certificates are made with openssl at test time (RSA-2048, self-signed)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import bpfgen_fast
import pytest
from bpfgen_fast import BpfgenError, BpfObject, _core
from bpfgen_fast.errors import SigningError
from support import CACHE, FIXDIR, OBJ_NAMES, OBJDIR, obj_path, run_cli

#: fixtures whose (unsigned) header is bpftool's without compat knobs
FIXTURES = ["minimal.bpf", "global_data.bpf", "maps_hash.bpf", "mixed_everything.bpf",
            "kconfig.bpf", "map_in_map.bpf", "subprogs.bpf", "ksym_var.bpf"]

REPO = Path(__file__).resolve().parent.parent
B78_CACHE = Path(os.environ.get("BPFGEN_BPFTOOL78_CACHE") or CACHE / "bpftool-7.8")


def _b78_exe() -> Path | None:
    """The bpftool 7.8 binary: BPFGEN_BPFTOOL78 (scripts/test.sh exports it), else the
    last build in the oracle cache (BPFGEN_BPFTOOL78_CACHE)."""
    env = os.environ.get("BPFGEN_BPFTOOL78")
    if env:
        return Path(env)
    cur = B78_CACHE / "current"
    if not cur.is_file():
        return None
    return B78_CACHE / cur.read_text().strip() / "linux" / "tools" / "bpf" / "bpftool" / "bpftool"


def _b78_tree() -> Path | None:
    """The kernel tree (``.../linux``) the 7.8 oracle was built in, if there is one."""
    exe = _b78_exe()
    tree = None if exe is None else exe.resolve().parents[3]
    ok = tree is not None and (tree / "tools" / "lib" / "bpf" / "skel_internal.h").is_file()
    return tree if ok else None


def _b78() -> str:
    """The bpftool 7.8 binary, or skip (the oracle is built by a script, not here)."""
    exe = _b78_exe()
    if exe is None or not os.access(exe, os.X_OK):
        pytest.skip("bpftool 7.8 oracle not built: run scripts/oracle-bpftool-7.8.sh "
                    f"(cache {B78_CACHE}, or BPFGEN_BPFTOOL78=BINARY)")
    return str(exe)


# -- keys -------------------------------------------------------------------------------

def _openssl(*args: str | Path, cwd: Path) -> None:
    p = subprocess.run(["openssl", *map(str, args)], cwd=cwd, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """k.pem/c.pem (RSA-2048, SKI), c.der, k2.pem (another key), c_noski.pem."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not found: cannot make a test key and certificate")
    d = tmp_path_factory.mktemp("sign")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "k.pem",
             "-out", "c.pem", "-days", "3650", "-subj", "/CN=bpfgen_fast test",
             "-addext", "subjectKeyIdentifier=hash", cwd=d)
    _openssl("x509", "-in", "c.pem", "-outform", "DER", "-out", "c.der", cwd=d)
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
             "-out", "k2.pem", cwd=d)
    (d / "noski.cnf").write_text(
        "[req]\ndistinguished_name = dn\nx509_extensions = v3\nprompt = no\n"
        "[dn]\nCN = no ski\n"
        "[v3]\nsubjectKeyIdentifier = none\nauthorityKeyIdentifier = none\n"
        "basicConstraints = CA:FALSE\n")
    _openssl("req", "-x509", "-new", "-key", "k.pem", "-out", "c_noski.pem", "-days", "3650",
             "-config", "noski.cnf", cwd=d)
    return {p.name: p for p in d.iterdir()}


def _signed(name: str, keys: dict[str, Path], cert: str = "c.pem", **kw: object) -> str:
    return BpfObject.open(obj_path(name)).gen_skeleton(
        sign_key=keys["k.pem"], sign_cert=keys[cert], **kw)


def _b78_signed(name: str, keys: dict[str, Path], cert: str = "c.pem",
                *extra: str) -> str:
    obj = obj_path(name)
    p = subprocess.run([_b78(), "gen", "skeleton", "-L", "-S", "-k", str(keys["k.pem"]),
                        "-i", str(keys[cert]), obj.name, *extra],
                       cwd=obj.parent, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout


def c_blob(header: str, var: str) -> bytes:
    """Bytes of ``static const char VAR[] ... = "..."`` in a header."""
    m = re.search(r"static const char " + re.escape(var)
                  + r"\[\] __attribute__\(\(__aligned__\(8\)\)\) = \"\\\n(.*?)\";", header, re.S)
    assert m is not None, var
    body = m.group(1).replace("\\\n", "")
    return bytes(0 if t == "\\0" else int(t[2:], 16)
                 for t in re.findall(r"\\x[0-9a-f]{2}|\\0", body))


# -- byte-identity with bpftool 7.8.0 ---------------------------------------------------

@pytest.mark.parametrize("name", FIXTURES)
def test_signed_header_is_bpftool_78s(name: str, keys: dict[str, Path]) -> None:
    want = _b78_signed(name, keys)
    assert _signed(name, keys) == want


@pytest.mark.parametrize("name", ["global_data.bpf", "map_in_map.bpf", "mixed_everything.bpf"])
def test_signed_bpfeb_header_is_bpftool_78s(name: str, keys: dict[str, Path]) -> None:
    """Big-endian objects: the data hash dwords are patched in target order, the
    signature and excl hash cover the byte-swapped instructions."""
    obj = FIXDIR / "eb" / f"{name}.o"
    if not obj.is_file():
        pytest.skip(f"no bpfeb fixture {obj.relative_to(FIXDIR)}")
    p = subprocess.run([_b78(), "gen", "skeleton", "-L", "-S", "-k", str(keys["k.pem"]),
                        "-i", str(keys["c.pem"]), obj.name],
                       cwd=obj.parent, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    got = BpfObject.open(obj).gen_skeleton(sign_key=keys["k.pem"], sign_cert=keys["c.pem"])
    assert got == p.stdout


def test_der_certificate_and_name_override(keys: dict[str, Path]) -> None:
    want = _b78_signed("global_data.bpf", keys, "c.der", "name", "signed_skel")
    got = BpfObject.open(obj_path("global_data.bpf"), "signed_skel").gen_skeleton(
        sign_key=keys["k.pem"], sign_cert=keys["c.der"])
    assert got == want


@pytest.mark.usefixtures("cli_entry")
def test_cli_matches_bpftool_78(keys: dict[str, Path], tmp_path: Path) -> None:
    want = _b78_signed("mixed_everything.bpf", keys)
    # -S implies -L (as in bpftool); options anywhere on the line
    p = run_cli("gen", "skeleton", "mixed_everything.bpf.o", "-S", "-k", keys["k.pem"],
                "-i", keys["c.pem"], cwd=OBJDIR)
    assert p.returncode == 0, p.stderr
    assert p.stdout == want
    out = tmp_path / "s.lskel.h"
    p = run_cli("gen", "skeleton", "-L", "-S", "-k", keys["k.pem"], "-i", keys["c.pem"],
                "--compat", "bpftool-7.8", "mixed_everything.bpf.o", "-o", out, cwd=OBJDIR)
    assert p.returncode == 0, p.stderr
    assert out.read_text() == want


# -- what the header carries (no oracle needed) -----------------------------------------

@pytest.mark.parametrize("name", ["minimal.bpf", "global_data.bpf", "no_progs.bpf"])
def test_signed_header_contents(name: str, keys: dict[str, Path], tmp_path: Path) -> None:
    signed = _signed(name, keys)
    unsigned = BpfObject.open(obj_path(name)).gen_skeleton(compat="bpftool-7.8")
    data, insns = c_blob(signed, "opts_data"), c_blob(signed, "opts_insn")
    assert data == c_blob(unsigned, "opts_data")
    assert insns != c_blob(unsigned, "opts_insn")
    assert c_blob(signed, "opts_excl_hash") == hashlib.sha256(insns).digest()
    # the four r3 = ld_imm64 <sha256(data) dword> pairs of the signature check
    digest = hashlib.sha256(data).digest()
    pairs = [insns[i:i + 16] for i in range(0, len(insns) - 8, 8)
             if insns[i] == 0x18 and insns[i + 1] == 0x03]
    assert [p[4:8] + p[12:16] for p in pairs[:4]] == [digest[8 * i:8 * i + 8] for i in range(4)]
    # text: one struct member and the opts lines after the insns literal
    assert signed.count("\t__s32 keyring_id;\n") == 1
    tail = signed[signed.index("opts_sig[]"):]
    assert "\n\topts.signature = (void *)opts_sig;\n\topts.signature_sz = sizeof(opts_sig) - 1;\n" \
           "\topts.excl_prog_hash = (void *)opts_excl_hash;\n" \
           "\topts.excl_prog_hash_sz = sizeof(opts_excl_hash) - 1;\n" \
           "\topts.keyring_id = skel->keyring_id;\n\topts.ctx = (struct bpf_loader_ctx *)skel;\n" \
           in tail
    # deterministic (RSA PKCS#1 v1.5, no signed attributes)
    assert _signed(name, keys) == signed
    # the signature verifies over the instructions
    (tmp_path / "insns.bin").write_bytes(insns)
    (tmp_path / "sig.der").write_bytes(c_blob(signed, "opts_sig"))
    p = subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER",
                        "-in", "sig.der", "-content", "insns.bin", "-certfile",
                        str(keys["c.pem"]), "-noverify", "-out", "/dev/null"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr


def test_gen_hash_loader_shape() -> None:
    """libbpf 1.8's gen_hash loader: 33 signature-check insns after the cleanup block,
    no ctx max_entries override (5 per map), no initial_value copy (10 per update)."""
    obj = BpfObject.open(obj_path("minimal.bpf"))
    plain = obj._core.gen_loader(dict(obj_args(), gen_hash=False))
    hashed = obj._core.gen_loader(dict(obj_args(), gen_hash=True))
    assert plain[0] == hashed[0]
    assert (len(plain[1]) // 8, len(hashed[1]) // 8) == (105, 138)
    g = BpfObject.open(obj_path("global_data.bpf"))
    assert len(g._core.gen_loader(dict(obj_args(), gen_hash=True))[1]) // 8 == 348
    # the check follows the cleanup block's exit; every branch lands on cleanup (insn 7)
    insns = hashed[1]
    codes = insns[::8]
    start = codes.index(0x95) + 1
    branches = [i for i in range(start, start + 33) if codes[i] in (0x55, 0x5D)]
    assert len(branches) == 5
    for i in branches:
        off = int.from_bytes(insns[8 * i + 2:8 * i + 4], "little", signed=True)
        assert i + 1 + off == 7


def obj_args() -> dict[str, object]:
    from bpfgen_fast.object import host_args
    return host_args(compat="bpftool-7.8")


# -- errors -----------------------------------------------------------------------------

def test_signing_errors(keys: dict[str, Path], tmp_path: Path) -> None:
    obj = BpfObject.open(obj_path("minimal.bpf"))
    k, c = keys["k.pem"], keys["c.pem"]
    cases = [
        (dict(sign_key=tmp_path / "nokey.pem", sign_cert=c),
         f"private key {tmp_path / 'nokey.pem'}: No such file or directory"),
        (dict(sign_key=k, sign_cert=tmp_path / "nocert.pem"),
         f"certificate {tmp_path / 'nocert.pem'}: No such file or directory"),
        (dict(sign_key=c, sign_cert=k),
         f"private key {c}: not an unencrypted PEM private key"),
        (dict(sign_key=k, sign_cert=k),
         f"certificate {k}: not an X.509 certificate (PEM or DER)"),
        (dict(sign_key=keys["k2.pem"], sign_cert=c),
         f"private key {keys['k2.pem']} does not match certificate {c}"),
        (dict(sign_key=k, sign_cert=keys["c_noski.pem"]),
         f"certificate {keys['c_noski.pem']}: no Subject Key Identifier "
         "(the CMS signer is identified by it)"),
        (dict(sign_key=k, sign_cert=c, compat="bpftool-7.5"),
         "signed light skeletons need compat='bpftool-7.8', got 'bpftool-7.5'"
         " (bpftool 7.5.0 cannot sign)"),
        (dict(sign_key=k), "signing needs both sign_key and sign_cert"),
        (dict(sign_cert=c), "signing needs both sign_key and sign_cert"),
    ]
    for kw, reason in cases:
        with pytest.raises(SigningError) as ei:
            obj.gen_skeleton(**kw)  # type: ignore[arg-type]
        assert isinstance(ei.value, BpfgenError)
        assert ei.value.reason == reason, kw
        assert str(ei.value) == f"{obj.name}: {reason}"
        assert ei.value.object == obj.name


def test_unreadable_key(keys: dict[str, Path], tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads mode-000 files: use a directory instead")
    bad = tmp_path / "k.pem"
    shutil.copy(keys["k.pem"], bad)
    bad.chmod(0)
    with pytest.raises(SigningError, match="Permission denied"):
        BpfObject.open(obj_path("minimal.bpf")).gen_skeleton(sign_key=bad,
                                                               sign_cert=keys["c.pem"])


def test_key_is_a_directory(keys: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(SigningError) as ei:
        BpfObject.open(obj_path("minimal.bpf")).gen_skeleton(sign_key=tmp_path,
                                                               sign_cert=keys["c.pem"])
    assert ei.value.reason == f"private key {tmp_path}: Is a directory"


def test_core_refuses_signature_in_75_style() -> None:
    obj = BpfObject.open(obj_path("minimal.bpf"))
    from bpfgen_fast.object import host_args
    with pytest.raises(BpfgenError, match=r"need the bpftool-7\.8 header style"):
        obj._core.gen_skeleton(dict(host_args(), signature=b"x"))


SIGN_MISSING = ("error: -i <identity_x509_cert> and -k <private_key> must be supplied "
                "with -S for signing\n")
SIGN_NOT_PASSED = ("error: --sign (or -S) must be explicitly passed with -i "
                   "<identity_x509_cert> and -k <private_key> to sign the programs\n")


@pytest.mark.parametrize("argv,first_line", [
    (["-L", "-S"], SIGN_MISSING),
    (["-L", "-S", "-k", "k.pem"], SIGN_MISSING),
    (["-S", "-i", "c.pem"], SIGN_MISSING),
    (["-L", "-k", "k.pem", "-i", "c.pem"], SIGN_NOT_PASSED),
    (["-L", "-k", "k.pem"], SIGN_NOT_PASSED),
    (["-L", "-i", "c.pem"], SIGN_NOT_PASSED),
    (["-L", "-S", "-k", "k.pem", "-i", "c.pem", "--compat", "bpftool-7.5"],
     "error: -S (signing) needs --compat bpftool-7.8: bpftool 7.5.0 has no -S\n"),
])
@pytest.mark.usefixtures("cli_entry")
def test_cli_usage_errors(argv: list[str], first_line: str) -> None:
    p = run_cli("gen", "skeleton", *argv, "minimal.bpf.o", cwd=OBJDIR)
    assert p.returncode == 2
    assert p.stdout == ""
    assert p.stderr.startswith(first_line), p.stderr


@pytest.mark.usefixtures("cli_entry")
def test_cli_sign_other_command(keys: dict[str, Path], tmp_path: Path) -> None:
    p = run_cli("gen", "loader", "-S", "-k", keys["k.pem"], "-i", keys["c.pem"],
                obj_path("minimal.bpf"), "-o", tmp_path / "x")
    assert p.returncode == 2
    assert p.stderr.startswith("error: -S (signing) applies to gen skeleton and batch only\n")


@pytest.mark.usefixtures("cli_entry")
def test_cli_signing_error(keys: dict[str, Path], tmp_path: Path) -> None:
    p = run_cli("gen", "skeleton", "-S", "-k", keys["k2.pem"], "-i", keys["c.pem"],
                "minimal.bpf.o", cwd=OBJDIR)
    assert p.returncode == 1
    assert p.stdout == ""
    assert p.stderr == (f"error: minimal_bpf: private key {keys['k2.pem']} does not match "
                        f"certificate {keys['c.pem']}\n")


# -- kernel -----------------------------------------------------------------------------

KERNEL_MAIN = r"""
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include "skel.lskel.h"

int main(void)
{
	struct progs_tracepoint_bpf *skel = progs_tracepoint_bpf__open();
	union bpf_attr attr;
	__u64 count = 0;
	__u32 key = 4;
	int err, i;

	if (!skel) {
		printf("open=NULL\n");
		return 2;
	}
	if (getenv("BPFGEN_KEYRING_ID"))
		skel->keyring_id = atoi(getenv("BPFGEN_KEYRING_ID"));
	err = progs_tracepoint_bpf__load(skel);
	printf("load=%d\n", err);
	if (err) {
		progs_tracepoint_bpf__destroy(skel);
		return 0;
	}
	printf("attach=%d\n", progs_tracepoint_bpf__raw_tp_switch__attach(skel) > 0);
	for (i = 0; i < 5; i++)
		usleep(2000);
	memset(&attr, 0, sizeof(attr));
	attr.map_fd = skel->maps.tp_counts.map_fd;
	attr.key = (long)&key;
	attr.value = (long)&count;
	err = skel_sys_bpf(BPF_MAP_LOOKUP_ELEM, &attr, sizeof(attr));
	printf("lookup=%d count=%llu\n", err, (unsigned long long)count);
	progs_tracepoint_bpf__destroy(skel);
	return 0;
}
"""


@pytest.fixture(scope="module")
def signed_build(bpf_permitted: None, keys: dict[str, Path],
                 tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with bpf/skel_internal.h (and what it includes) from the 7.2 tree,
    that tree's uapi linux/bpf.h, and the signed progs_tracepoint header."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not found")
    tree = _b78_tree()
    if tree is None:
        pytest.skip("no libbpf >= 1.7 skel_internal.h: the 7.2 tree of "
                    f"scripts/oracle-bpftool-7.8.sh is not in {B78_CACHE}")
    d = tmp_path_factory.mktemp("kernel")
    (d / "bpf").mkdir()
    (d / "linux").mkdir()
    for h in ("skel_internal.h", "bpf.h", "libbpf_common.h", "libbpf_legacy.h",
              "libbpf_version.h"):
        shutil.copy(tree / "tools" / "lib" / "bpf" / h, d / "bpf" / h)
    for h in ("bpf.h", "bpf_common.h"):
        shutil.copy(tree / "tools" / "include" / "uapi" / "linux" / h, d / "linux" / h)
    (d / "main.c").write_text(KERNEL_MAIN)
    (d / "signed.lskel.h").write_text(_signed("progs_tracepoint.bpf", keys))
    return d


def build_variant(d: Path, name: str, header: str) -> Path:
    """KERNEL_MAIN compiled against ``header`` (in signed_build's directory ``d``)."""
    vd = d / name
    vd.mkdir(exist_ok=True)
    (vd / "skel.lskel.h").write_text(header)
    exe = vd / "main"
    p = subprocess.run(["gcc", "-O1", "-Wall", "-Wno-unused-variable", "-I", str(vd), "-I", str(d),
                        "-o", str(exe), str(d / "main.c")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return exe


def _run_variant(d: Path, name: str, header: str) -> dict[str, str]:
    exe = build_variant(d, name, header)
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (r.stdout, r.stderr)
    return dict(kv.split("=", 1) for kv in r.stdout.split())


def _unsigned(header: str) -> str:
    """The header with opts.signature = NULL and signature_sz = 0."""
    for old, new in (("\topts.signature = (void *)opts_sig;\n", "\topts.signature = NULL;\n"),
                     ("\topts.signature_sz = sizeof(opts_sig) - 1;\n",
                      "\topts.signature_sz = 0;\n")):
        assert header.count(old) == 1
        header = header.replace(old, new)
    return header


def _flip_blob_byte(header: str, var: str, at: int) -> str:
    """The header with byte ``at`` of blob ``var`` inverted."""
    data = bytearray(c_blob(header, var))
    data[at] ^= 0xFF
    body = "".join("\\0" if b == 0 else f"\\x{b:02x}" for b in data)
    start = header.index(f"{var}[] __attribute__((__aligned__(8))) = \"\\\n")
    start = header.index("\\\n", start) + 2
    end = header.index("\";\n", start)
    return header[:start] + body + header[end:]


def _flip_data_byte(header: str) -> str:
    """One byte of opts_data changed: past the fd array (whose slots the loader's
    cleanup closes), in the middle of the blob."""
    at = len(c_blob(header, "opts_data")) // 2
    assert at >= (64 + 256) * 4
    return _flip_blob_byte(header, "opts_data", at)


def _flip_insn_byte(header: str) -> str:
    """One byte of opts_insn changed: the high byte of the middle instruction's
    immediate, so the program stays well formed and only its signature breaks."""
    mid = len(c_blob(header, "opts_insn")) // 16 * 8
    return _flip_blob_byte(header, "opts_insn", mid + 7)


def test_kernel_unsigned_loads_and_runs(signed_build: Path) -> None:
    out = _run_variant(signed_build, "nosig",
                       _unsigned((signed_build / "signed.lskel.h").read_text()))
    assert out["load"] == "0"
    assert out["attach"] == "1"
    assert out["lookup"] == "0"
    assert int(out["count"]) > 0  # raw_tp/sched_switch ran


def test_kernel_flipped_data_fails_hash_check(signed_build: Path) -> None:
    header = _flip_data_byte(_unsigned((signed_build / "signed.lskel.h").read_text()))
    out = _run_variant(signed_build, "flip", header)
    assert out["load"] == str(-22)  # -EINVAL from the loader's SHA-256 check


def test_kernel_signature(signed_build: Path) -> None:
    out = _run_variant(signed_build, "signed", (signed_build / "signed.lskel.h").read_text())
    # Without CONFIG_SYSTEM_DATA_VERIFICATION the kernel cannot verify: -EOPNOTSUPP.
    # With it, the self-signed test certificate is in no kernel keyring: the load fails
    # too, with a key-lookup or verification error, never silently.
    assert out["load"] != "0"
    if not _kernel_has_signature_verification():
        assert out["load"] == str(-95)


def _kernel_has_signature_verification() -> bool:
    import gzip
    for path in (Path(f"/boot/config-{os.uname().release}"), Path("/proc/config.gz")):
        try:
            raw = path.read_bytes()
        except OSError:
            continue
        text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode(errors="replace")
        return "\nCONFIG_SYSTEM_DATA_VERIFICATION=y" in text
    return False


# -- the loader self-check reads signed loaders ------------------------------------------------

def _signed_loader(name: str) -> tuple[bytes, bytes, list[str], list[str], dict[str, object]]:
    obj = BpfObject.open(OBJDIR / f"{name}.o")
    host = dict(bpfgen_fast.host_args(compat="bpftool-7.8"), gen_hash=True)
    data, insns, maps, progs = obj._core.gen_loader(host)
    return data, insns, list(maps), list(progs), host


@pytest.mark.parametrize("name", OBJ_NAMES)
def test_selfcheck_accepts_signed_loaders(name: str) -> None:
    obj = BpfObject.open(OBJDIR / f"{name}.o")
    data, insns, maps, progs, host = _signed_loader(name)
    report = _core.selfcheck(data, insns, maps, progs)
    assert report["insn_cnt"] == len(insns) // 8
    obj._core.selfcheck(data, insns, host)


def test_selfcheck_rejects_a_signature_branch_away_from_cleanup() -> None:
    data, insns, maps, progs, _ = _signed_loader("minimal.bpf")
    raw = bytearray(insns)
    jne = next(i for i in range(0, len(raw), 8) if raw[i] == 0x5D)  # first `jne r2, r3`
    raw[jne + 2:jne + 4] = (int.from_bytes(raw[jne + 2:jne + 4], "little", signed=True) + 1
                            ).to_bytes(2, "little", signed=True)
    with pytest.raises(BpfgenError, match=r"signature check branches to \d+, not to the cleanup"):
        _core.selfcheck(data, bytes(raw), maps, progs)


def test_selfcheck_rejects_raw_constants_outside_the_signature_check() -> None:
    """A 64-bit constant load (src 0) is admitted only inside the signature check."""
    loader = BpfObject.open(OBJDIR / "minimal.bpf.o").gen_loader()
    raw = bytearray(loader.insns)
    at = next(i for i in range(8 * 8, len(raw), 8) if raw[i] == 0x18)
    raw[at + 1] &= 0x0F  # src_reg 6 -> 0
    with pytest.raises(BpfgenError, match="ld_imm64 is not a data-blob address"):
        _core.selfcheck(loader.data, bytes(raw), list(loader.map_names),
                        list(loader.prog_names))


# -- explain reads signed loaders -------------------------------------------------------------

@pytest.mark.parametrize("name", OBJ_NAMES)
def test_explain_reads_signed_loaders(name: str) -> None:
    """A signed loader decodes like any other: its signature check is reported with the
    SHA-256 it compares against (the data blob's), its maps keep their signed sizes and
    images (nothing read from the ctx), and the steps are the unsigned loader's."""
    from bpfgen_fast.explain import MapCreate, MapUpdate, decode

    data, insns, maps, progs, _ = _signed_loader(name)
    e = decode(data, insns, maps, progs)
    assert e.signature_check is not None
    assert e.signature_check.sha256 == hashlib.sha256(data).hexdigest()
    assert all(not s.value_from_ctx for s in e.steps if isinstance(s, MapUpdate))
    assert all(not s.max_entries_from_ctx for s in e.steps if isinstance(s, MapCreate))
    assert "SIGNATURE_CHECK" in e.to_text()
    unsigned = BpfObject.open(OBJDIR / f"{name}.o").gen_loader(compat="bpftool-7.8")
    plain = decode(unsigned.data, unsigned.insns, maps, progs)
    assert plain.signature_check is None
    assert [(type(s).__name__, getattr(s, "name", None)) for s in e.steps] == \
        [(type(s).__name__, getattr(s, "name", None)) for s in plain.steps]


def test_explain_reads_a_signed_bpfeb_loader() -> None:
    """The hash dwords of a big-endian signed loader read back as the digest's bytes."""
    from bpfgen_fast.explain import decode

    obj = BpfObject.open(FIXDIR / "eb" / "global_data.bpf.o")
    host = dict(bpfgen_fast.host_args(compat="bpftool-7.8"), gen_hash=True)
    data, insns, maps, progs = obj._core.gen_loader(host)
    e = decode(data, insns, list(maps), list(progs))
    assert e.big_endian and e.signature_check is not None
    assert e.signature_check.sha256 == hashlib.sha256(data).hexdigest()
