"""ML-DSA (FIPS 204) signed light skeletons: ``-S -k`` with an ML-DSA-44/65/87 key.

* The CMS is RFC 9882's: signer algorithm id-ml-dsa-* without parameters, digest
  algorithm SHA-512 without parameters, no signed attributes, signer by Subject Key
  Identifier; the signature is pure ML-DSA over the loader instructions (randomised:
  two headers differ only in ``opts_sig``) and ``verify`` checks it.
* Sizes: ML-DSA-87's CMS (about 4.7 KB) is over bpftool 7.8.0's 4096-byte buffer
  (divergence 16) and under the kernel's 8 KiB, so it is taken; more than 8 KiB
  is a ``SigningError`` (the Python entry) or ``UnsupportedError`` (the core).
* Tampering (an instruction byte, another ML-DSA key's certificate) fails ``verify``;
  a signature made elsewhere with an ML-DSA key embeds as the two-step flow's.
* The command line signs with an ML-DSA key.

The VM test (tests/test_vm.py, ``vm_signed``) loads such headers in Debian sid's 7.2
kernel, which is built without CONFIG_CRYPTO_MLDSA, and records its errno."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import bpfgen_fast
import pytest
from bpfgen_fast import BpfObject
from bpfgen_fast.errors import BpfgenError, SigningError
from support import obj_path, run_cli
from test_sign_pipeline import without_sig
from test_signing import _flip_insn_byte, c_blob

try:
    from cryptography.hazmat.primitives.asymmetric import mldsa
    HAVE_MLDSA = True
except ImportError:  # a cryptography without ML-DSA
    HAVE_MLDSA = False

pytestmark = pytest.mark.skipif(not HAVE_MLDSA, reason="this cryptography has no ML-DSA")

LEVELS = ["44", "65", "87"]
OIDS = {"44": "2.16.840.1.101.3.4.3.17", "65": "2.16.840.1.101.3.4.3.18",
        "87": "2.16.840.1.101.3.4.3.19"}
#: AlgorithmIdentifier { id-sha512 } without parameters (RFC 9882 asks for it absent)
SHA512_NO_PARAMS = bytes.fromhex("300b0609608648016503040203")


def make_mldsa(level: str, d: Path, stem: str = "", issuer: Any = None) -> dict[str, Path]:
    """An ML-DSA key (PEM, PKCS#8) and its certificate with a SKI (PEM, and DER as
    ``c.der`` for keyctl): self-signed, or signed by ``issuer`` (an RSA private key,
    SHA-256) when given."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    key = getattr(mldsa, f"MLDSA{level}PrivateKey").generate()
    pub = key.public_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"bpfgen_fast ML-DSA-{level}")])
    ca = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bpfgen_fast RSA CA")])
    start = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(name if issuer is None else ca).public_key(pub)
               .serial_number(x509.random_serial_number()).not_valid_before(start)
               .not_valid_after(start + datetime.timedelta(days=3650))
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False))
    cert = builder.sign(key, None) if issuer is None else builder.sign(issuer, hashes.SHA256())
    k, c = d / f"{stem}k{level}.pem", d / f"{stem}c{level}.pem"
    k.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    der = c.with_suffix(".der")
    der.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    return {"k.pem": k, "c.pem": c, "c.der": der}


@pytest.fixture(scope="module")
def ml_keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    d = tmp_path_factory.mktemp("mldsa")
    return {lvl: make_mldsa(lvl, d) for lvl in LEVELS}


def _sign(name: str, k: dict[str, Path]) -> str:
    return BpfObject.open(obj_path(name)).gen_skeleton(sign_key=k["k.pem"], sign_cert=k["c.pem"])


@pytest.mark.parametrize("level", LEVELS)
def test_mldsa_cms_shape_and_verify(level: str, ml_keys: dict[str, dict[str, Path]]) -> None:
    from asn1crypto import cms
    from cryptography import x509

    k = ml_keys[level]
    header = _sign("global_data.bpf", k)
    bpfgen_fast.verify_skeleton(header, k["c.pem"])
    der = c_blob(header, "opts_sig")
    info = cms.ContentInfo.load(der)
    assert info.dump() == der  # DER, as parsed
    sd = info["content"]
    assert sd["version"].native == "v3"
    assert [a.dump() for a in sd["digest_algorithms"]] == [SHA512_NO_PARAMS]
    assert sd["encap_content_info"]["content"].native is None
    assert sd["certificates"].native is None
    (si,) = sd["signer_infos"]
    assert si["version"].native == "v3"
    ski = x509.load_pem_x509_certificate(k["c.pem"].read_bytes()).extensions \
        .get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert si["sid"].chosen.native == ski
    assert si["digest_algorithm"].dump() == SHA512_NO_PARAMS
    assert si["signature_algorithm"]["algorithm"].dotted == OIDS[level]
    assert not si["signature_algorithm"]["parameters"].native
    assert si["signature_algorithm"].dump()[1] == 11  # the OID alone: parameters absent
    assert si["signed_attrs"].native is None and si["unsigned_attrs"].native is None
    sig_len = {"44": 2420, "65": 3309, "87": 4627}[level]
    assert len(si["signature"].native) == sig_len
    # randomised: a second header differs in opts_sig only
    again = _sign("global_data.bpf", k)
    assert again != header and without_sig(again) == without_sig(header)


def test_mldsa87_exceeds_bpftools_buffer_not_the_kernels(
        ml_keys: dict[str, dict[str, Path]]) -> None:
    from bpfgen_fast.sign import BPFTOOL_MAX_SIG_SIZE, MAX_SIG_SIZE

    sig = c_blob(_sign("mixed_everything.bpf", ml_keys["87"]), "opts_sig")
    assert BPFTOOL_MAX_SIG_SIZE < len(sig) <= MAX_SIG_SIZE == 8192


def test_signature_over_8k_refused(ml_keys: dict[str, dict[str, Path]]) -> None:
    obj = BpfObject.open(obj_path("minimal.bpf"))
    big = b"\x30" * 8193
    with pytest.raises(SigningError, match="signature of 8193 bytes exceeds 8192 bytes"):
        obj.gen_skeleton(signature=big, sign_cert=ml_keys["87"]["c.pem"])
    # the core refuses it too, whoever hands it over
    from bpfgen_fast.object import host_args

    args = dict(host_args(compat="bpftool-7.8"), gen_hash=True)
    with pytest.raises(BpfgenError, match="must be 1 to 8192 bytes"):
        obj._core.gen_skeleton(dict(args, signature=big))
    assert obj._core.gen_skeleton(dict(args, signature=b"\x30" * 8192))


@pytest.mark.parametrize("level", ["44", "87"])
def test_mldsa_tampering(level: str, ml_keys: dict[str, dict[str, Path]],
                         tmp_path: Path) -> None:
    k = ml_keys[level]
    header = _sign("minimal.bpf", k)
    with pytest.raises(SigningError, match="does not verify over the loader instructions"):
        bpfgen_fast.verify_skeleton(_flip_insn_byte(header), k["c.pem"])
    other = make_mldsa(level, tmp_path, "other")
    with pytest.raises(SigningError, match="is signed by key identifier"):
        bpfgen_fast.verify_skeleton(header, other["c.pem"])
    wrong = ml_keys["65"]["c.pem"]
    with pytest.raises(SigningError, match="is signed by key identifier"):
        bpfgen_fast.verify_skeleton(header, wrong)
    with pytest.raises(SigningError, match="does not match certificate"):
        BpfObject.open(obj_path("minimal.bpf")).gen_skeleton(sign_key=k["k.pem"],
                                                             sign_cert=other["c.pem"])


def test_mldsa_detached_flow(ml_keys: dict[str, dict[str, Path]]) -> None:
    from bpfgen_fast.sign import cms_sign, load_signer

    k = ml_keys["65"]
    obj = BpfObject.open(obj_path("global_data.bpf"))
    key, ski = load_signer(k["k.pem"], k["c.pem"])
    sig = cms_sign(obj.signing_payload(), key, ski)
    header = obj.gen_skeleton(signature=sig, sign_cert=k["c.pem"])
    assert c_blob(header, "opts_sig") == sig
    assert without_sig(header) == without_sig(_sign("global_data.bpf", k))


def test_cli_signs_with_mldsa(ml_keys: dict[str, dict[str, Path]], tmp_path: Path) -> None:
    k = ml_keys["87"]
    out = tmp_path / "m.lskel.h"
    p = run_cli("gen", "skeleton", "-L", "-S", "-k", k["k.pem"], "-i", k["c.pem"],
                obj_path("minimal.bpf"), "-o", out)
    assert p.returncode == 0, p.stderr
    p = run_cli("verify", out, "--cert", k["c.pem"])
    assert p.returncode == 0, p.stderr
    assert without_sig(out.read_text()) == without_sig(_sign("minimal.bpf", k))
