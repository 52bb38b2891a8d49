"""Signing in a pipeline (README: "Signing in a pipeline").

* Offline verification of signed light skeletons (``verify HEADER --cert CERT``,
  ``bpfgen_fast.verify_skeleton``), bpftool 7.8.0's and ours, and the exact message
  for each kind of tampering.
* The detached two-step flow: ``gen signing-payload``, a signature made by openssl,
  ``-S --signature SIG -i CERT``: byte-identical to one-step signing with RSA.
* ECDSA P-256 / P-384 keys: reproducible headers (RFC 6979), bpftool 7.8.0's but
  for the signature value (divergence 15), verified both ways."""

from __future__ import annotations

import subprocess
from pathlib import Path

import bpfgen_fast
import pytest
from bpfgen_fast.errors import SigningError
from support import FIXDIR, OBJDIR, cli_argv, run_cli
from test_signing import (  # noqa: F401  (fixtures)
    FIXTURES,
    _b78,
    _b78_signed,
    _flip_blob_byte,
    _flip_data_byte,
    _flip_insn_byte,
    _openssl,
    _signed,
    c_blob,
    keys,
)

#: the messages verify gives, per tampering
DATA_MSG = ("the SHA-256 of opts_data is not the one the loader checks "
            "(the loader would fail with -EINVAL)")
EXCL_MSG = ("opts_excl_hash is not the SHA-256 of opts_insn "
            "(the kernel would not bind the data map to the loader)")


def insn_msg(cert: Path) -> str:
    return f"opts_sig does not verify over the loader instructions with certificate {cert}"


@pytest.fixture(scope="module")
def other_cert(keys: dict[str, Path]) -> Path:  # noqa: F811
    """A certificate (with SKI) for k2.pem, the other key."""
    d = keys["k2.pem"].parent
    _openssl("req", "-x509", "-new", "-key", "k2.pem", "-out", "c2.pem", "-days", "3650",
             "-subj", "/CN=other", "-addext", "subjectKeyIdentifier=hash", cwd=d)
    return d / "c2.pem"


def replace_blob(header: str, var: str, data: bytes) -> str:
    """The header with blob ``var`` replaced by ``data`` (one line, as valid C)."""
    body = "".join("\\0" if b == 0 else f"\\x{b:02x}" for b in data)
    start = header.index(f"{var}[] __attribute__((__aligned__(8))) = \"\\\n")
    start = header.index("\\\n", start) + 2
    end = header.index("\";\n", start)
    return header[:start] + body + header[end:]


def verify_error(header: str, cert: Path) -> str:
    with pytest.raises(SigningError) as ei:
        bpfgen_fast.verify_skeleton(header, cert)
    assert ei.value.object == ""
    return ei.value.reason


# -- bpftool 7.8.0's headers and ours verify --------------------------------------------

@pytest.mark.parametrize("name", FIXTURES)
def test_bpftool_78_headers_verify(name: str, keys: dict[str, Path]) -> None:  # noqa: F811
    skel = bpfgen_fast.verify_skeleton(_b78_signed(name, keys), keys["c.pem"])
    assert len(skel.insns) % 8 == 0 and skel.data and len(skel.excl_hash) == 32


def test_bpftool_78_bpfeb_header_verifies(keys: dict[str, Path]) -> None:  # noqa: F811
    obj = FIXDIR / "eb" / "global_data.bpf.o"
    if not obj.is_file():
        pytest.skip("no bpfeb fixture")
    p = subprocess.run([_b78(), "gen", "skeleton", "-L", "-S", "-k", str(keys["k.pem"]),
                        "-i", str(keys["c.pem"]), obj.name],
                       cwd=obj.parent, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    bpfgen_fast.verify_skeleton(p.stdout, keys["c.der"])


@pytest.mark.parametrize("name", ["minimal.bpf", "global_data.bpf", "no_progs.bpf",
                                  "mixed_everything.bpf"])
def test_our_headers_verify(name: str, keys: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    header = _signed(name, keys)
    skel = bpfgen_fast.verify_skeleton(header, keys["c.pem"])
    assert skel.insns == c_blob(header, "opts_insn")
    assert skel.signature == c_blob(header, "opts_sig")
    path = tmp_path / "s.lskel.h"
    path.write_text(header)
    assert bpfgen_fast.verify_skeleton(path, keys["c.der"]) == skel


def test_our_bpfeb_header_verifies(keys: dict[str, Path]) -> None:  # noqa: F811
    obj = FIXDIR / "eb" / "map_in_map.bpf.o"
    if not obj.is_file():
        pytest.skip("no bpfeb fixture")
    header = bpfgen_fast.BpfObject.open(obj).gen_skeleton(sign_key=keys["k.pem"],
                                                           sign_cert=keys["c.pem"])
    bpfgen_fast.verify_skeleton(header, keys["c.pem"])
    assert verify_error(_flip_data_byte(header), keys["c.pem"]) == DATA_MSG


# -- tampering ---------------------------------------------------------------------------

def test_flipped_data_byte(keys: dict[str, Path]) -> None:  # noqa: F811
    assert verify_error(_flip_data_byte(_signed("global_data.bpf", keys)), keys["c.pem"]) \
        == DATA_MSG


def test_flipped_instruction_byte(keys: dict[str, Path]) -> None:  # noqa: F811
    header = _flip_insn_byte(_signed("global_data.bpf", keys))
    assert verify_error(header, keys["c.pem"]) == insn_msg(keys["c.pem"])


def test_other_certificate(keys: dict[str, Path], other_cert: Path) -> None:  # noqa: F811
    header = _signed("global_data.bpf", keys)
    ski = c_blob(header, "opts_sig")  # the signer's key identifier is in the signature
    reason = verify_error(header, other_cert)
    assert reason.startswith("opts_sig is signed by key identifier ")
    assert reason.endswith(f", not by certificate {other_cert}")
    assert bytes.fromhex(reason.split()[6].rstrip(",")) in ski


def test_truncated_signature(keys: dict[str, Path]) -> None:  # noqa: F811
    header = _signed("global_data.bpf", keys)
    sig = c_blob(header, "opts_sig")
    cut = replace_blob(header, "opts_sig", sig[:-10])
    assert verify_error(cut, keys["c.pem"]) == \
        f"opts_sig ({len(sig) - 10} bytes) is not a DER CMS signature"


def test_excl_hash_mismatch(keys: dict[str, Path]) -> None:  # noqa: F811
    header = _flip_blob_byte(_signed("minimal.bpf", keys), "opts_excl_hash", 0)
    assert verify_error(header, keys["c.pem"]) == EXCL_MSG


def test_signature_not_passed(keys: dict[str, Path]) -> None:  # noqa: F811
    """Blobs that verify are not enough: the header must hand the signature over."""
    from test_signing import _unsigned
    header = _unsigned(_signed("minimal.bpf", keys))
    assert verify_error(header, keys["c.pem"]) == (
        "the header does not pass its blobs to the loader as signed headers do: "
        "`opts.signature = (void *)opts_sig;` is not there once")


def test_unsigned_header(keys: dict[str, Path]) -> None:  # noqa: F811
    header = bpfgen_fast.gen_skeleton(str(OBJDIR / "minimal.bpf.o"), compat="bpftool-7.8")
    assert verify_error(header, keys["c.pem"]) == \
        "no opts_sig / opts_excl_hash: not a signed light skeleton"


# -- the command line --------------------------------------------------------------------

@pytest.mark.usefixtures("cli_entry")
def test_cli_verify(keys: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    good = tmp_path / "good.lskel.h"
    good.write_text(_b78_signed("mixed_everything.bpf", keys))
    p = run_cli("verify", good, "--cert", keys["c.pem"])
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"{good}: verified with {keys['c.pem']} (")
    bad = tmp_path / "bad.lskel.h"
    bad.write_text(_flip_insn_byte(good.read_text()))
    p = run_cli("verify", "--cert", keys["c.pem"], bad)
    assert (p.returncode, p.stdout) == (1, "")
    assert p.stderr == f"error: {bad}: {insn_msg(keys['c.pem'])}\n"
    p = run_cli("verify", tmp_path / "missing.h", "--cert", keys["c.pem"])
    assert (p.returncode, p.stderr) == (1, f"error: {tmp_path / 'missing.h'}: "
                                           "No such file or directory\n")
    p = run_cli("verify", good)
    assert p.returncode == 2 and p.stderr.startswith("error: verify needs --cert CERT\n")


# -- the detached two-step flow ----------------------------------------------------------

def openssl_sign(payload: Path, key: Path, cert: Path, out: Path, *extra: str) -> Path:
    """A detached CMS signature made by openssl, as a signer outside this package would."""
    _openssl("cms", "-sign", "-binary", "-in", payload, "-signer", cert, "-inkey", key,
             "-md", "sha256", "-outform", "DER", "-out", out, *extra, cwd=out.parent)
    return out


BPFTOOL_SHAPE = ("-noattr", "-nocerts", "-keyid")


@pytest.mark.parametrize("name", ["minimal.bpf", "global_data.bpf", "mixed_everything.bpf"])
def test_detached_rsa_is_one_step_signing(name: str, keys: dict[str, Path],  # noqa: F811
                                          tmp_path: Path) -> None:
    obj = bpfgen_fast.BpfObject.open(OBJDIR / f"{name}.o")
    payload = tmp_path / "payload.bin"
    payload.write_bytes(obj.signing_payload())
    sig = openssl_sign(payload, keys["k.pem"], keys["c.pem"], tmp_path / "sig.der",
                       *BPFTOOL_SHAPE)
    want = _signed(name, keys)
    assert c_blob(want, "opts_insn") == payload.read_bytes()
    assert obj.gen_skeleton(signature=sig, sign_cert=keys["c.pem"]) == want
    assert obj.gen_skeleton(signature=sig.read_bytes(), sign_cert=keys["c.der"]) == want


@pytest.mark.usefixtures("cli_entry")
def test_cli_detached_flow(keys: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    payload = tmp_path / "payload.bin"
    p = run_cli("gen", "signing-payload", "mixed_everything.bpf.o", "-o", payload, cwd=OBJDIR)
    assert p.returncode == 0, p.stderr
    p = subprocess.run([*cli_argv(), "gen", "signing-payload",
                        "mixed_everything.bpf.o"], cwd=OBJDIR, capture_output=True, timeout=60)
    assert p.returncode == 0 and p.stdout == payload.read_bytes()
    sig = openssl_sign(payload, keys["k.pem"], keys["c.pem"], tmp_path / "sig.der",
                       *BPFTOOL_SHAPE)
    out = tmp_path / "s.lskel.h"
    p = run_cli("gen", "skeleton", "-L", "-S", "--signature", sig, "-i", keys["c.pem"],
                "mixed_everything.bpf.o", "-o", out, cwd=OBJDIR)
    assert p.returncode == 0, p.stderr
    assert out.read_text() == _b78_signed("mixed_everything.bpf", keys)
    # a signature over another object's payload is refused, naming the file
    p = run_cli("gen", "skeleton", "-S", "--signature", sig, "-i", keys["c.pem"],
                "minimal.bpf.o", cwd=OBJDIR)
    assert (p.returncode, p.stdout) == (1, "")
    assert p.stderr == (f"error: minimal_bpf: signature {sig} does not verify over the loader "
                        f"instructions with certificate {keys['c.pem']}\n")


def test_other_cms_shapes_are_embedded_as_given(keys: dict[str, Path],  # noqa: F811
                                                tmp_path: Path) -> None:
    """Signed attributes (openssl's default) and an embedded certificate: the kernel's
    PKCS#7 verifier takes them, so they are checked and embedded unchanged."""
    obj = bpfgen_fast.BpfObject.open(OBJDIR / "global_data.bpf.o")
    payload = tmp_path / "payload.bin"
    payload.write_bytes(obj.signing_payload())
    sig = openssl_sign(payload, keys["k.pem"], keys["c.pem"], tmp_path / "attrs.der")
    header = obj.gen_skeleton(signature=sig, sign_cert=keys["c.pem"])
    assert c_blob(header, "opts_sig") == sig.read_bytes()
    bpfgen_fast.verify_skeleton(header, keys["c.pem"])
    # the signed attributes carry the digest: a changed payload is caught through them
    bad = tmp_path / "other.bin"
    bad.write_bytes(payload.read_bytes()[:-8] + b"\0" * 8)
    sig2 = openssl_sign(bad, keys["k.pem"], keys["c.pem"], tmp_path / "attrs2.der")
    with pytest.raises(SigningError) as ei:
        obj.gen_skeleton(signature=sig2, sign_cert=keys["c.pem"])
    assert ei.value.reason == (f"signature {sig2}: the signed message digest is not the "
                               "sha256 of the signed bytes")


def test_detached_errors(keys: dict[str, Path], other_cert: Path,  # noqa: F811
                         tmp_path: Path) -> None:
    obj = bpfgen_fast.BpfObject.open(OBJDIR / "minimal.bpf.o")
    payload = tmp_path / "payload.bin"
    payload.write_bytes(obj.signing_payload())
    sig = openssl_sign(payload, keys["k.pem"], keys["c.pem"], tmp_path / "sig.der",
                       *BPFTOOL_SHAPE)
    stale = tmp_path / "stale.bin"  # a payload from other host facts, say
    stale.write_bytes(payload.read_bytes()[:-1] + b"\xff")
    stale_sig = openssl_sign(stale, keys["k.pem"], keys["c.pem"], tmp_path / "stale.der",
                             *BPFTOOL_SHAPE)
    cases: list[tuple[dict[str, object], str]] = [
        (dict(signature=sig, sign_key=keys["k.pem"], sign_cert=keys["c.pem"]),
         "sign_key and signature exclude each other: sign here, or embed a signature "
         "made elsewhere"),
        (dict(signature=sig), "a signature needs sign_cert to check it against"),
        (dict(signature=tmp_path / "none.der", sign_cert=keys["c.pem"]),
         f"signature {tmp_path / 'none.der'}: No such file or directory"),
        (dict(signature=sig.read_bytes()[:-1], sign_cert=keys["c.pem"]),
         f"signature ({sig.stat().st_size - 1} bytes) is not a DER CMS signature"),
        (dict(signature=sig, sign_cert=other_cert),
         f"signature {sig} is signed by key identifier "),
        (dict(signature=stale_sig, sign_cert=keys["c.pem"]),
         f"signature {stale_sig} does not verify over the loader instructions with certificate "
         f"{keys['c.pem']}"),
    ]
    for kw, reason in cases:
        with pytest.raises(SigningError) as ei:
            obj.gen_skeleton(**kw)  # type: ignore[arg-type]
        assert ei.value.reason.startswith(reason), (kw, ei.value.reason)
        assert ei.value.object == obj.name


# -- ECDSA P-256 / P-384 -----------------------------------------------------------------

CURVES = {"p256": "prime256v1", "p384": "secp384r1"}


@pytest.fixture(scope="module")
def ec_keys(keys: dict[str, Path]) -> dict[str, dict[str, Path]]:  # noqa: F811
    """curve -> {"k.pem", "c.pem"}: an ECDSA key and its self-signed certificate (SKI)."""
    d = keys["k.pem"].parent
    out = {}
    for curve, name in CURVES.items():
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", f"ec_paramgen_curve:{name}",
                 "-nodes", "-keyout", f"{curve}.key.pem", "-out", f"{curve}.cert.pem",
                 "-days", "3650", "-subj", f"/CN=bpfgen_fast {curve}",
                 "-addext", "subjectKeyIdentifier=hash", cwd=d)
        out[curve] = {"k.pem": d / f"{curve}.key.pem", "c.pem": d / f"{curve}.cert.pem"}
    return out


def without_sig(header: str) -> str:
    """The header with opts_sig's bytes dropped (the only part ECDSA randomness touches)."""
    return replace_blob(header, "opts_sig", b"")


def blank_signature_value(der: bytes) -> object:
    """The CMS structure with the SignerInfo's signature value blanked, as Python data."""
    from asn1crypto import cms
    info = cms.ContentInfo.load(der).native
    for si in info["content"]["signer_infos"]:
        si["signature"] = b""
    return info


@pytest.mark.parametrize("curve", list(CURVES))
@pytest.mark.parametrize("name", ["minimal.bpf", "global_data.bpf", "mixed_everything.bpf"])
def test_ecdsa_reproducible_and_verifies(curve: str, name: str,
                                         ec_keys: dict[str, dict[str, Path]],
                                         tmp_path: Path) -> None:
    k = ec_keys[curve]
    header = _signed(name, k)
    assert _signed(name, k) == header  # RFC 6979: the same header every run
    skel = bpfgen_fast.verify_skeleton(header, k["c.pem"])
    (tmp_path / "insns.bin").write_bytes(skel.insns)
    (tmp_path / "sig.der").write_bytes(skel.signature)
    p = subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER",
                        "-in", "sig.der", "-content", "insns.bin", "-certfile",
                        str(k["c.pem"]), "-noverify", "-out", "/dev/null"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert verify_error(_flip_insn_byte(header), k["c.pem"]) == insn_msg(k["c.pem"])
    assert verify_error(_flip_blob_byte(header, "opts_excl_hash", 3), k["c.pem"]) == EXCL_MSG
    if name != "minimal.bpf":  # minimal's data is all fd slots (see _flip_data_byte)
        assert verify_error(_flip_data_byte(header), k["c.pem"]) == DATA_MSG


@pytest.mark.parametrize("curve", list(CURVES))
@pytest.mark.parametrize("name", ["global_data.bpf", "mixed_everything.bpf"])
def test_ecdsa_header_is_bpftool_78s_but_the_signature(
        curve: str, name: str, ec_keys: dict[str, dict[str, Path]]) -> None:
    k = ec_keys[curve]
    theirs, ours = _b78_signed(name, k), _signed(name, k)
    assert without_sig(ours) == without_sig(theirs)
    bpfgen_fast.verify_skeleton(theirs, k["c.pem"])
    assert blank_signature_value(c_blob(ours, "opts_sig")) == \
        blank_signature_value(c_blob(theirs, "opts_sig"))


@pytest.mark.parametrize("curve", list(CURVES))
def test_ecdsa_detached_is_one_step(curve: str, ec_keys: dict[str, dict[str, Path]],
                                    tmp_path: Path) -> None:
    """openssl's ECDSA is randomised: its detached signature verifies and is embedded as
    given; the rest of the header is the one-step header."""
    k = ec_keys[curve]
    obj = bpfgen_fast.BpfObject.open(OBJDIR / "global_data.bpf.o")
    payload = tmp_path / "payload.bin"
    payload.write_bytes(obj.signing_payload())
    sig = openssl_sign(payload, k["k.pem"], k["c.pem"], tmp_path / "sig.der", *BPFTOOL_SHAPE)
    header = obj.gen_skeleton(signature=sig, sign_cert=k["c.pem"])
    assert c_blob(header, "opts_sig") == sig.read_bytes()
    assert without_sig(header) == without_sig(_signed("global_data.bpf", k))
    bpfgen_fast.verify_skeleton(header, k["c.pem"])


@pytest.mark.parametrize("algorithm", [["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp521r1"],
                                       ["-newkey", "ed25519"]])
def test_other_key_types_refused(algorithm: list[str], tmp_path: Path) -> None:
    _openssl("req", "-x509", *algorithm, "-nodes", "-keyout", "k.pem", "-out", "c.pem",
             "-days", "30", "-subj", "/CN=x", "-addext", "subjectKeyIdentifier=hash",
             cwd=tmp_path)
    with pytest.raises(SigningError) as ei:
        _signed("minimal.bpf", {"k.pem": tmp_path / "k.pem", "c.pem": tmp_path / "c.pem"})
    assert ei.value.reason == (
        f"private key {tmp_path / 'k.pem'}: only RSA, ECDSA P-256 / P-384 and "
        "ML-DSA-44/65/87 keys are supported (signatures that Linux verifies)")


# -- batch -S ----------------------------------------------------------------------------

BATCH = ["minimal.bpf", "global_data.bpf", "maps_hash.bpf", "mixed_everything.bpf",
         "subprogs.bpf"]


def test_batch_signs_with_the_key_loaded_once(keys: dict[str, Path], tmp_path: Path,  # noqa: F811
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import bpfgen_fast.sign as sign
    calls = []
    real = sign.load_signer

    def counting(*a: object) -> object:
        calls.append(a)
        return real(*a)  # type: ignore[arg-type]

    monkeypatch.setattr(sign, "load_signer", counting)
    out = tmp_path / "out"
    paths = [OBJDIR / f"{n}.o" for n in BATCH] + [tmp_path / "missing.bpf.o"]
    results = bpfgen_fast.gen_batch(paths, out_dir=out, jobs=2, sign_key=keys["k.pem"],
                                    sign_cert=keys["c.pem"])
    assert len(calls) == 1
    assert [r.ok for r in results] == [True] * len(BATCH) + [False]
    assert isinstance(results[-1].error, FileNotFoundError)
    for n, r in zip(BATCH, results):
        assert r.outputs == (str(out / f"{n.replace('.', '_')}.lskel.h"),)
        assert Path(r.outputs[0]).read_text() == _signed(n, keys)
    # atomic writes: nothing but the headers in the directory
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{n.replace('.', '_')}.lskel.h" for n in BATCH)
    # without a directory the headers come back
    r = bpfgen_fast.gen_batch([OBJDIR / "global_data.bpf.o"], sign_key=keys["k.pem"],
                              sign_cert=keys["c.pem"])
    assert r[0].header == _signed("global_data.bpf", keys)


def test_batch_signing_errors(keys: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    with pytest.raises(SigningError) as ei:  # the key is checked before any object
        bpfgen_fast.gen_batch([OBJDIR / "minimal.bpf.o"], out_dir=tmp_path / "o",
                              sign_key=keys["k2.pem"], sign_cert=keys["c.pem"])
    assert ei.value.reason == f"private key {keys['k2.pem']} does not match certificate " \
                              f"{keys['c.pem']}"
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
    with pytest.raises(SigningError, match="fmt='lskel'"):
        bpfgen_fast.gen_batch([OBJDIR / "minimal.bpf.o"], fmt="blobs",
                              sign_key=keys["k.pem"], sign_cert=keys["c.pem"])
    # a name twice in one directory: the later object fails, as unsigned batches do
    r = bpfgen_fast.gen_batch([OBJDIR / "minimal.bpf.o"] * 2, out_dir=tmp_path / "d",
                              sign_key=keys["k.pem"], sign_cert=keys["c.pem"])
    assert r[0].ok and isinstance(r[1].error, ValueError)
    # keep_going=False: after the first failure the rest are skipped
    r = bpfgen_fast.gen_batch([tmp_path / "nope.o", OBJDIR / "minimal.bpf.o"], jobs=1,
                              keep_going=False, sign_key=keys["k.pem"],
                              sign_cert=keys["c.pem"])
    assert r[0].error is not None and r[1].skipped


@pytest.mark.usefixtures("cli_entry")
def test_cli_batch_signed(keys: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "out"
    p = run_cli("batch", "-S", "-k", keys["k.pem"], "-i", keys["c.pem"], "-j", "2",
                *(f"{n}.o" for n in BATCH), "--out-dir", out, cwd=OBJDIR)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"batch: {len(BATCH)} of {len(BATCH)} objects generated")
    got = (out / "mixed_everything_bpf.lskel.h").read_text()
    assert got == _b78_signed("mixed_everything.bpf", keys)
    for n in BATCH:
        bpfgen_fast.verify_skeleton(out / f"{n.replace('.', '_')}.lskel.h", keys["c.pem"])
    p = run_cli("batch", "-S", "-k", keys["k.pem"], "-i", keys["c.pem"], "minimal.bpf.o",
                "--out-dir", out, "--format", "blobs", cwd=OBJDIR)
    assert p.returncode == 2
    assert p.stderr.startswith("error: batch -S writes signed light skeletons: "
                               "not with --format blobs\n")


@pytest.mark.parametrize("argv,first_line", [
    (["gen", "skeleton", "-S", "--signature", "s.der", "-k", "k.pem", "-i", "c.pem",
      "minimal.bpf.o"],
     "error: -k <private_key> and --signature exclude each other: sign here, or embed a "
     "signature made elsewhere\n"),
    (["gen", "skeleton", "-S", "--signature", "s.der", "minimal.bpf.o"],
     "error: -i <identity_x509_cert> must be supplied with --signature (the signature is "
     "checked against it)\n"),
    (["gen", "skeleton", "-L", "--signature", "s.der", "-i", "c.pem", "minimal.bpf.o"],
     "error: --sign (or -S) must be explicitly passed with -i <identity_x509_cert> and "
     "-k <private_key> to sign the programs\n"),
    (["gen", "signing-payload", "minimal.bpf.o", "--compat", "bpftool-7.5"],
     "error: gen signing-payload is the loader of bpftool 7.8.0's -S: not with --compat "
     "bpftool-7.5\n"),
    (["batch", "-S", "--signature", "s.der", "-i", "c.pem", "minimal.bpf.o", "--out-dir", "d"],
     "error: --signature embeds the signature of one object: not with batch (sign with -k)\n"),
    (["inspect", "minimal.bpf.o", "--cert", "c.pem"],
     "error: --cert applies to verify only (signing takes -i CERT)\n"),
])
@pytest.mark.usefixtures("cli_entry")
def test_cli_pipeline_usage_errors(argv: list[str], first_line: str) -> None:
    p = run_cli(*argv, cwd=OBJDIR)
    assert (p.returncode, p.stdout) == (2, "")
    assert p.stderr.startswith(first_line), p.stderr
