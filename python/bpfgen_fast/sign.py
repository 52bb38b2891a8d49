"""Signing a light skeleton's loader as ``bpftool gen skeleton -L -S -k KEY -i CERT``
(bpftool 7.8.0) does: a detached CMS ``SignedData`` (DER) over the loader
program's instructions.

bpftool's ``sign.c`` asks OpenSSL for ``CMS_sign`` with ``CMS_NOCERTS |
CMS_BINARY | CMS_DETACHED`` and a signer added with ``CMS_USE_KEYID |
CMS_NOATTR | CMS_NOSMIMECAP``, SHA-256. That yields:

* SignedData version 3, digestAlgorithms ``{sha256}`` with the parameters
  *absent*, encapContentInfo ``id-data`` without content, no certificates, no
  CRLs;
* one SignerInfo, version 3, the signer identified by the certificate's
  subjectKeyIdentifier, digest sha256 (parameters absent), signature algorithm
  ``rsaEncryption`` with NULL parameters, no signed or unsigned attributes:
  the signature is RSASSA-PKCS1-v1_5 over SHA-256 of the instructions.

PKCS#1 v1.5 is deterministic, so with an RSA key the result is bpftool's byte for
byte. With an ECDSA key (P-256 or P-384) the signer's algorithm is
``ecdsa-with-SHA256`` without parameters, as OpenSSL writes it, and the
signature is made deterministically (RFC 6979): the header is reproducible,
where bpftool's (OpenSSL's randomised ECDSA) differs in ``opts_sig`` on every
run. With an ML-DSA key (44, 65, 87; FIPS 204) the signer's algorithm is
id-ml-dsa-* (RFC 9882), the digest algorithm SHA-512, and the signature pure
ML-DSA over the instructions themselves, randomised; Linux 7.2 verifies it when
built with ``CONFIG_CRYPTO_MLDSA``. Signatures up to the kernel's 8 KiB are
taken: ML-DSA-87's exceed bpftool's 4096-byte buffer.
``cryptography`` loads the key and certificate and signs; ``asn1crypto``
builds the DER. (``cryptography``'s own PKCS#7 builder cannot identify the
signer by key identifier.)
"""

from __future__ import annotations

import functools
import os
from typing import Any

from bpfgen_fast.errors import SigningError

#: the largest signature Linux takes for a BPF program (``bpf_prog_verify_signature``
#: refuses more than ``KMALLOC_MAX_CACHE_SIZE``: two pages, 8 KiB with 4 KiB pages)
MAX_SIG_SIZE = 8192
#: bpftool 7.8.0's signature buffer (its ``MAX_SIG_SIZE``): only ML-DSA-87's
#: signatures exceed it (bpftool refuses them; README divergence 16)
BPFTOOL_MAX_SIG_SIZE = 4096
#: the ECDSA curves signing accepts (``cryptography``'s names): NIST P-256 and
#: P-384, which Linux's ecdsa verifies and OpenSSL's ``-keyid`` signers use
_CURVES = frozenset({"secp256r1", "secp384r1"})
#: ML-DSA (FIPS 204) parameter sets -> the signature algorithm OIDs of RFC 9881 /
#: RFC 9882 (id-ml-dsa-44/65/87), which Linux 7.2's PKCS#7 parser knows
_MLDSA_OIDS = {"MLDSA44": "2.16.840.1.101.3.4.3.17", "MLDSA65": "2.16.840.1.101.3.4.3.18",
               "MLDSA87": "2.16.840.1.101.3.4.3.19"}


def _mldsa_level(key: Any) -> str | None:
    """``"MLDSA44"``/``"MLDSA65"``/``"MLDSA87"`` for an ML-DSA key (private or
    public), else None (also when this ``cryptography`` has no ML-DSA)."""
    try:
        from cryptography.hazmat.primitives.asymmetric import mldsa
    except ImportError:
        return None
    for level in _MLDSA_OIDS:
        classes = (getattr(mldsa, f"{level}PrivateKey"), getattr(mldsa, f"{level}PublicKey"))
        if isinstance(key, classes):
            return level
    return None


@functools.lru_cache(maxsize=1)
def _digest_algorithm_class() -> Any:
    """asn1crypto's ``DigestAlgorithm`` forces NULL parameters for sha256; OpenSSL
    leaves them absent in CMS. This subclass lists no algorithm that needs NULL."""
    from asn1crypto import algos

    class _DigestAlgorithm(algos.DigestAlgorithm):  # type: ignore[misc]
        _null_algos: frozenset[str] = frozenset()

    return _DigestAlgorithm


def _digest_algorithm(name: str = "sha256") -> Any:
    """A digest (SHA-256 unless named) as OpenSSL writes it in CMS:
    ``AlgorithmIdentifier`` without parameters."""
    return _digest_algorithm_class()({"algorithm": name})


def _read(path: str | os.PathLike[str], what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise SigningError(f"{what} {os.fspath(path)}: {e.strerror or e}") from e


def load_certificate(cert_path: str | os.PathLike[str]) -> Any:
    """An X.509 certificate, PEM or DER (bpftool takes DER when the file starts
    like a DER SEQUENCE, ``30 81..84``)."""
    from cryptography import x509

    cert_raw = _read(cert_path, "certificate")
    try:
        if len(cert_raw) > 1 and cert_raw[0] == 0x30 and 0x81 <= cert_raw[1] <= 0x84:
            return x509.load_der_x509_certificate(cert_raw)
        return x509.load_pem_x509_certificate(cert_raw)
    except ValueError as e:
        raise SigningError(
            f"certificate {os.fspath(cert_path)}: not an X.509 certificate (PEM or DER)"
        ) from e


def load_signer(
    key_path: str | os.PathLike[str], cert_path: str | os.PathLike[str]
) -> tuple[Any, bytes]:
    """The RSA, ECDSA (P-256, P-384) or ML-DSA private key (PEM, unencrypted; or a
    ``pkcs11:`` URI naming a key in a token, see :mod:`bpfgen_fast._pkcs11`) and
    the certificate's subjectKeyIdentifier. The certificate may be PEM or DER
    (bpftool takes DER when the file starts like a DER SEQUENCE, ``30 81..84``)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    from bpfgen_fast import _pkcs11

    if _pkcs11.is_uri(key_path):
        assert isinstance(key_path, str)
        cert = load_certificate(cert_path)
        token_key = _pkcs11.open_key(key_path)
        try:
            _pkcs11.check_against(token_key, cert, os.fspath(cert_path), _CURVES)
            return token_key, _subject_key_id(cert, os.fspath(cert_path))
        except BaseException:
            token_key.close()
            raise
    kpath, cpath = os.fspath(key_path), os.fspath(cert_path)
    key_pem = _read(key_path, "private key")
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as e:
        raise SigningError(f"private key {kpath}: not an unencrypted PEM private key") from e
    cert = load_certificate(cert_path)
    ecdsa_ok = isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in _CURVES
    if not isinstance(key, rsa.RSAPrivateKey) and not ecdsa_ok and not _mldsa_level(key):
        raise SigningError(
            f"private key {kpath}: only RSA, ECDSA P-256 / P-384 and ML-DSA-44/65/87 keys "
            "are supported (signatures that Linux verifies)"
        )
    if key.public_key() != cert.public_key():
        raise SigningError(f"private key {kpath} does not match certificate {cpath}")
    return key, _subject_key_id(cert, cpath)


def _subject_key_id(cert: Any, cpath: str) -> bytes:
    from cryptography import x509

    try:
        ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound:
        raise SigningError(
            f"certificate {cpath}: no Subject Key Identifier (the CMS signer is identified by it)"
        ) from None
    return bytes(ski.value.digest)


def cms_sign(insns: bytes, key: Any, ski: bytes) -> bytes:
    """bpftool's detached CMS signature (DER) over ``insns``; ECDSA made
    deterministically (RFC 6979); ML-DSA as RFC 9882 has it (pure ML-DSA over
    the content, SHA-512 as the digest algorithm, no parameters)."""
    from asn1crypto import algos, cms
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding

    from bpfgen_fast._pkcs11 import Pkcs11Key

    digest = "sha256"
    if isinstance(key, Pkcs11Key):
        signature = key.sign(insns)
        algorithm = algos.SignedDigestAlgorithm(
            {"algorithm": "rsassa_pkcs1v15" if key.kind == "rsa" else "sha256_ecdsa"})
    elif (level := _mldsa_level(key)) is not None:
        # pure ML-DSA over the instructions, empty context (randomised, as
        # cryptography signs); with no signed attributes the kernel hands the data
        # itself to the verifier, the digest algorithm only has to be one it knows:
        # SHA-512, as RFC 9882 asks of ML-DSA signers
        signature = key.sign(insns)
        algorithm = algos.SignedDigestAlgorithm({"algorithm": _MLDSA_OIDS[level]})
        digest = "sha512"
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(insns, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
        # ecdsa-with-SHA256, parameters absent (asn1crypto forces none here)
        algorithm = algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"})
    else:
        signature = key.sign(insns, padding.PKCS1v15(), hashes.SHA256())
        # rsaEncryption with NULL parameters (forced by asn1crypto, as OpenSSL writes it)
        algorithm = algos.SignedDigestAlgorithm({"algorithm": "rsassa_pkcs1v15"})
    signer = cms.SignerInfo(
        {
            "version": "v3",
            "sid": cms.SignerIdentifier({"subject_key_identifier": ski}),
            "digest_algorithm": _digest_algorithm(digest),
            "signature_algorithm": algorithm,
            "signature": signature,
        }
    )
    signed_data = cms.SignedData(
        {
            "version": "v3",
            "digest_algorithms": [_digest_algorithm(digest)],
            "encap_content_info": {"content_type": "data"},
            "signer_infos": [signer],
        }
    )
    der: bytes = cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()
    if len(der) > MAX_SIG_SIZE:
        raise SigningError(f"signature of {len(der)} bytes exceeds {MAX_SIG_SIZE} bytes")
    return der


def release(key: Any) -> None:
    """Close what a key from :func:`load_signer` holds open (a token session)."""
    close = getattr(key, "close", None)
    if close is not None:
        close()


def sign_insns(
    insns: bytes, key_path: str | os.PathLike[str], cert_path: str | os.PathLike[str]
) -> bytes:
    """Load the signer and sign ``insns`` (the ``gen_hash`` loader's instructions)."""
    key, ski = load_signer(key_path, cert_path)
    try:
        return cms_sign(insns, key, ski)
    finally:
        release(key)


#: CMS digest algorithms (asn1crypto's names) -> ``cryptography`` hash classes' names
_DIGESTS = {"sha1": "SHA1", "sha224": "SHA224", "sha256": "SHA256", "sha384": "SHA384",
            "sha512": "SHA512", "sha3_256": "SHA3_256", "sha3_384": "SHA3_384",
            "sha3_512": "SHA3_512"}
#: the SignerInfo signature algorithms Linux 7.2's PKCS#7 parser accepts that this
#: module verifies: rsaEncryption (PKCS#1 v1.5) and ecdsa-with-SHA* (any of them
#: means "ECDSA"; the hash is the digest algorithm's)
_ECDSA_ALGOS = frozenset({"sha1_ecdsa", "sha224_ecdsa", "sha256_ecdsa", "sha384_ecdsa",
                          "sha512_ecdsa", "sha3_256_ecdsa", "sha3_384_ecdsa",
                          "sha3_512_ecdsa"})


#: the ML-DSA signature algorithms by OID (asn1crypto gives unknown OIDs dotted)
_MLDSA_NAMES = {oid: level for level, oid in _MLDSA_OIDS.items()}


def _signer_id(sid: Any) -> str:
    if sid.name == "subject_key_identifier":
        return f"key identifier {sid.chosen.native.hex()}"
    isn = sid.chosen
    return f"serial {isn['serial_number'].native} of {isn['issuer'].human_friendly}"


def _matches(sid: Any, cert: Any) -> bool:
    """Whether a SignerIdentifier names ``cert`` (as the kernel finds the key: by
    Subject Key Identifier or by issuer and serial number)."""
    from cryptography import x509

    if sid.name == "subject_key_identifier":
        try:
            ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        except x509.ExtensionNotFound:
            return False
        return bool(sid.chosen.native == ski.value.digest)
    isn = sid.chosen
    return bool(isn["serial_number"].native == cert.serial_number
                and isn["issuer"].dump() == cert.issuer.public_bytes())


def verify_cms(der: bytes, content: bytes, cert: Any, cert_name: str,
               what: str = "opts_sig") -> None:
    """Check that ``der``, a detached CMS SignedData, is a signature over
    ``content`` by the key of ``cert``, as Linux's PKCS#7 verifier would
    (signed attributes, when present, carry the content's digest and are what
    is signed). :class:`SigningError` names what does not hold; ``what`` names
    the signature in messages."""
    from asn1crypto import cms
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    try:
        info = cms.ContentInfo.load(der, strict=True)
        kind = info["content_type"].native
        if kind != "signed_data":
            raise SigningError(f"{what} is a CMS {kind}, not a SignedData")
        signed = info["content"]
        signed.native  # noqa: B018  (parse it all now: a truncated DER fails here)
    except (ValueError, TypeError, KeyError):
        raise SigningError(f"{what} ({len(der)} bytes) is not a DER CMS signature") from None
    if signed["encap_content_info"]["content"].native is not None:
        raise SigningError(f"{what} embeds its content: the kernel verifies detached "
                           "signatures only")
    signers = list(signed["signer_infos"])
    mine = [si for si in signers if _matches(si["sid"], cert)]
    if not mine:
        ids = ", ".join(_signer_id(si["sid"]) for si in signers) or "nobody"
        raise SigningError(f"{what} is signed by {ids}, not by certificate {cert_name}")
    si = mine[0]
    digest = si["digest_algorithm"]["algorithm"].native
    if digest not in _DIGESTS:
        raise SigningError(f"{what}: digest algorithm {digest} is not supported")
    hash_alg = getattr(hashes, _DIGESTS[digest])()
    signed_bytes = content
    attrs = si["signed_attrs"]
    if attrs.native:
        h = hashes.Hash(hash_alg)
        h.update(content)
        values = {a["type"].native: a["values"].native for a in attrs}
        if values.get("message_digest") != [h.finalize()]:
            raise SigningError(f"{what}: the signed message digest is not the {digest} "
                               "of the signed bytes")
        # the signature covers the attributes as a SET, not as the [0] of SignerInfo
        raw = attrs.dump()
        signed_bytes = b"\x31" + raw[1:]
    algo = si["signature_algorithm"]["algorithm"].native
    key = cert.public_key()
    try:
        if algo == "rsassa_pkcs1v15":
            if not isinstance(key, rsa.RSAPublicKey):
                raise SigningError(f"{what} is an RSA signature, certificate {cert_name} "
                                   "holds another kind of key")
            key.verify(si["signature"].native, signed_bytes, padding.PKCS1v15(), hash_alg)
        elif algo in _ECDSA_ALGOS:
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise SigningError(f"{what} is an ECDSA signature, certificate {cert_name} "
                                   "holds another kind of key")
            key.verify(si["signature"].native, signed_bytes, ec.ECDSA(hash_alg))
        elif algo in _MLDSA_NAMES:
            level = _MLDSA_NAMES[algo]
            if _mldsa_level(key) != level:
                raise SigningError(f"{what} is an ML-DSA-{level[5:]} signature, certificate "
                                   f"{cert_name} holds another kind of key")
            if attrs.native and digest != "sha512":
                # Linux hands ML-DSA the attributes themselves, and takes that only
                # with a SHA-512 message digest
                raise SigningError(f"{what}: ML-DSA with signed attributes needs the "
                                   f"sha512 digest algorithm, not {digest}")
            # pure ML-DSA over the content (or the attributes), empty context
            key.verify(si["signature"].native, signed_bytes)
        else:
            raise SigningError(f"{what}: signature algorithm {algo} is not supported "
                               "(rsaEncryption, ecdsa-with-SHA*, id-ml-dsa-44/65/87)")
    except InvalidSignature:
        raise SigningError(f"{what} does not verify over the loader instructions with "
                           f"certificate {cert_name}") from None


__all__ = ["BPFTOOL_MAX_SIG_SIZE", "MAX_SIG_SIZE", "cms_sign", "load_certificate",
           "load_signer", "release", "sign_insns", "verify_cms"]
