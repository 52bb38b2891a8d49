"""Signing with a key that stays in a PKCS#11 token (``-k 'pkcs11:...'``), against
SoftHSM2 (Debian's ``softhsm2``; scripts/setup-system.sh installs it).

A token is made in a temporary directory (``SOFTHSM2_CONF`` points at a config
there); an RSA-2048 and an ECDSA P-256 key, which the test also has as PEM files,
are imported into it sensitive and not extractable, with self-signed certificates
made from the same keys. RSA PKCS#1 v1.5 is deterministic, so the header signed
through the token is the header signed with the PEM file, byte for byte (through
the API, the native command line and ``batch -S``); the ECDSA header verifies.
Errors (a wrong PIN, no such key, the certificate of another key, no module, an
unknown URI attribute) are ``SigningError``s that do not show the PIN."""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
from pathlib import Path

import bpfgen_fast
import pytest
from bpfgen_fast import BpfObject
from bpfgen_fast.errors import SigningError
from support import OBJDIR, obj_path, run_cli

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "4321"
FIXTURES = ["minimal.bpf", "global_data.bpf", "maps_hash.bpf"]


def _cert(key: object, cn: str) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    pub = key.public_key()  # type: ignore[attr-defined]
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    start = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(pub)
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=3650))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
            .sign(key, hashes.SHA256()))  # type: ignore[arg-type]
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A SoftHSM2 token ``bpfgen`` with keys ``rsa`` (id 01) and ``ec`` (id 02), both
    non-extractable; their PEM files and certificates, and another RSA key's cert."""
    if not os.path.exists(MODULE) or shutil.which("softhsm2-util") is None:
        pytest.skip(f"SoftHSM2 not installed ({MODULE}; Debian package softhsm2, which "
                    "scripts/setup-system.sh installs)")
    pkcs11 = pytest.importorskip("pkcs11", reason="python-pkcs11 (the pkcs11 extra) missing")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from pkcs11 import Attribute
    from pkcs11.util.ec import decode_ec_private_key
    from pkcs11.util.rsa import decode_rsa_private_key

    d = tmp_path_factory.mktemp("softhsm")
    (d / "tokens").mkdir()
    conf = d / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {d / 'tokens'}\nobjectstore.backend = file\n"
                    "log.level = ERROR\n")
    # read once, when the module is first initialised in this process: the same
    # config for every test here, and for the command lines they start
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "bpfgen",
                    "--pin", PIN, "--so-pin", "8765"], check=True, capture_output=True)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    files = {"k.pem": rsa_key.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()),
             "c.pem": _cert(rsa_key, "bpfgen_fast pkcs11 rsa"),
             "ec.pem": _cert(ec_key, "bpfgen_fast pkcs11 ec"),
             "other.pem": _cert(other, "another key")}
    for name, data in files.items():
        (d / name).write_bytes(data)
    kept = {Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False, Attribute.SIGN: True}
    lib = pkcs11.lib(MODULE)
    with lib.get_token(token_label="bpfgen").open(user_pin=PIN, rw=True) as session:
        der = rsa_key.private_bytes(serialization.Encoding.DER,
                                    serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption())
        session.create_object({**decode_rsa_private_key(der), **kept,
                               Attribute.LABEL: "rsa", Attribute.ID: b"\x01"})
        der = ec_key.private_bytes(serialization.Encoding.DER,
                                   serialization.PrivateFormat.TraditionalOpenSSL,
                                   serialization.NoEncryption())
        session.create_object({**decode_ec_private_key(der), **kept,
                               Attribute.LABEL: "ec", Attribute.ID: b"\x02"})
    return {p.name: p for p in d.iterdir()}


def _uri(obj: str = "rsa", query: str = f"module-path={MODULE}&pin-value={PIN}") -> str:
    return f"pkcs11:token=bpfgen;object={obj};type=private?{query}"


def test_token_keys_are_not_extractable(token: dict[str, Path]) -> None:
    import pkcs11
    from pkcs11 import Attribute, ObjectClass

    with pkcs11.lib(MODULE).get_token(token_label="bpfgen").open(user_pin=PIN) as s:
        for label in ("rsa", "ec"):
            key = s.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
            assert key[Attribute.SENSITIVE] is True
            assert key[Attribute.EXTRACTABLE] is False
            secret = Attribute.PRIVATE_EXPONENT if label == "rsa" else Attribute.VALUE
            with pytest.raises(pkcs11.exceptions.AttributeSensitive):
                key[secret]


@pytest.mark.parametrize("name", FIXTURES)
def test_rsa_through_the_token_is_the_pem_keys_header(name: str,
                                                       token: dict[str, Path]) -> None:
    obj = BpfObject.open(obj_path(name))
    ours = obj.gen_skeleton(sign_key=_uri(), sign_cert=token["c.pem"])
    assert ours == obj.gen_skeleton(sign_key=token["k.pem"], sign_cert=token["c.pem"])
    bpfgen_fast.verify_skeleton(ours, token["c.pem"])


def test_key_by_id_with_pin_and_module_from_the_environment(
        token: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BPFGEN_PKCS11_PIN", PIN)
    monkeypatch.setenv("BPFGEN_PKCS11_MODULE", MODULE)
    obj = BpfObject.open(obj_path("minimal.bpf"))
    assert (obj.gen_skeleton(sign_key="pkcs11:token=bpfgen;id=%01", sign_cert=token["c.pem"])
            == obj.gen_skeleton(sign_key=token["k.pem"], sign_cert=token["c.pem"]))


def test_pin_source_file(token: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "pin").write_text(PIN + "\n")
    obj = BpfObject.open(obj_path("minimal.bpf"))
    uri = _uri(query=f"module-path={MODULE}&pin-source={tmp_path / 'pin'}")
    assert (obj.gen_skeleton(sign_key=uri, sign_cert=token["c.pem"])
            == obj.gen_skeleton(sign_key=token["k.pem"], sign_cert=token["c.pem"]))


def test_ecdsa_through_the_token_verifies(token: dict[str, Path]) -> None:
    header = BpfObject.open(obj_path("global_data.bpf")).gen_skeleton(
        sign_key=_uri("ec"), sign_cert=token["ec.pem"])
    bpfgen_fast.verify_skeleton(header, token["ec.pem"])


def test_native_cli_signs_through_the_token(token: dict[str, Path], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BPFGEN_PKCS11_PIN", PIN)
    uri = f"pkcs11:token=bpfgen;object=rsa?module-path={MODULE}"
    obj = obj_path("maps_hash.bpf")
    p = run_cli("gen", "skeleton", "-L", "-S", "-k", uri, "-i", token["c.pem"], obj)
    assert p.returncode == 0, p.stderr
    assert p.stdout == BpfObject.open(obj).gen_skeleton(sign_key=token["k.pem"],
                                                        sign_cert=token["c.pem"])
    out = tmp_path / "out"
    p = run_cli("batch", "-S", "-k", uri, "-i", token["c.pem"], "-j", "2",
                *(OBJDIR / f"{n}.o" for n in FIXTURES), "--out-dir", out)
    assert p.returncode == 0, p.stderr
    for n in FIXTURES:
        pem = BpfObject.open(obj_path(n)).gen_skeleton(sign_key=token["k.pem"],
                                                       sign_cert=token["c.pem"])
        assert (out / f"{n.replace('.', '_')}.lskel.h").read_text() == pem


def test_batch_api_through_the_token(token: dict[str, Path]) -> None:
    results = bpfgen_fast.gen_batch([OBJDIR / f"{n}.o" for n in FIXTURES], jobs=2,
                                    sign_key=_uri(), sign_cert=token["c.pem"])
    for n, r in zip(FIXTURES, results):
        assert r.ok, r.error
        assert r.header == BpfObject.open(obj_path(n)).gen_skeleton(
            sign_key=token["k.pem"], sign_cert=token["c.pem"])


@pytest.mark.parametrize(("uri", "cert", "message"), [
    (_uri(query=f"module-path={MODULE}&pin-value=0000"), "c.pem", "cannot log in"),
    (_uri("nope"), "c.pem", "no such private key on the token"),
    (_uri(), "other.pem", "does not match certificate"),
    (_uri("ec"), "c.pem", "does not match certificate"),
    (_uri(query=f"pin-value={PIN}"), "c.pem", "no module"),
    (_uri(query=f"module-path=/nonexistent.so&pin-value={PIN}"), "c.pem", "cannot load it"),
    ("pkcs11:token=bpfgen;objet=rsa", "c.pem", "unknown attribute 'objet'"),
    ("pkcs11:token=bpfgen", "c.pem", "name the key with object= or id="),
    ("pkcs11:token=nosuch;object=rsa?module-path=" + MODULE, "c.pem", "no matching tokens"),
])
def test_token_errors(uri: str, cert: str, message: str, token: dict[str, Path],
                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BPFGEN_PKCS11_MODULE", raising=False)
    monkeypatch.delenv("BPFGEN_PKCS11_PIN", raising=False)
    obj = BpfObject.open(obj_path("minimal.bpf"))
    with pytest.raises(SigningError, match=message) as e:
        obj.gen_skeleton(sign_key=uri, sign_cert=token[cert])
    assert "pin-value" not in str(e.value) and PIN not in str(e.value)
