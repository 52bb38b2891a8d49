"""Signing keys held in a PKCS#11 token (an HSM, a smart card, SoftHSM), named by
an RFC 7512 ``pkcs11:`` URI given where a key file would be.

``pkcs11:token=LABEL;object=KEY-LABEL?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234``

* path attributes select the token (``token``, ``manufacturer``, ``serial``,
  ``model``) and the private key (``object``: its label, ``id``: its
  CKA_ID, percent-encoded bytes); ``type``, when given, must be ``private``;
* the module is ``module-path``, else the ``BPFGEN_PKCS11_MODULE``
  environment variable;
* the user PIN is ``pin-value``, else the contents of the file ``pin-source``
  names (a path or a ``file:`` URI, one trailing newline dropped), else the
  ``BPFGEN_PKCS11_PIN`` environment variable (which keeps it out of the
  process list), else none (no login).

The key never leaves the token: the token signs (RSA PKCS#1 v1.5 over SHA-256,
deterministic, so the header is the one a PEM file of the same key gives; ECDSA
P-256 / P-384 over the SHA-256, which tokens make randomised). The key is
checked against the certificate by signing a probe once, when it is loaded.
``python-pkcs11`` (the ``pkcs11`` extra) is imported only here, when a URI is
used.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from typing import Any
from urllib.parse import unquote_to_bytes

from bpfgen_fast.errors import SigningError

MODULE_ENV = "BPFGEN_PKCS11_MODULE"
PIN_ENV = "BPFGEN_PKCS11_PIN"
_PATH_ATTRS = frozenset({"token", "manufacturer", "serial", "model", "object", "id", "type",
                         "library-manufacturer", "library-description", "library-version",
                         "slot-description", "slot-manufacturer", "slot-id"})
_QUERY_ATTRS = frozenset({"pin-value", "pin-source", "module-path", "module-name"})


def is_uri(key: object) -> bool:
    return isinstance(key, str) and key[:7].lower() == "pkcs11:"


def parse_uri(uri: str) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """(path attributes, query attributes), values percent-decoded; unknown or
    repeated attributes are refused (a typo must not select another key)."""
    body = uri[7:]
    path, _, query = body.partition("?")
    parts: list[tuple[dict[str, bytes], str, str, frozenset[str]]] = []
    pattrs: dict[str, bytes] = {}
    qattrs: dict[str, bytes] = {}
    parts.append((pattrs, path, ";", _PATH_ATTRS))
    parts.append((qattrs, query, "&", _QUERY_ATTRS))
    for into, text, sep, known in parts:
        for item in filter(None, text.split(sep)):
            name, eq, value = item.partition("=")
            if not eq or name not in known:
                raise SigningError(f"PKCS#11 URI: unknown attribute {name!r} "
                                   f"(known: {', '.join(sorted(known))})")
            if name in into:
                raise SigningError(f"PKCS#11 URI: {name} given twice")
            into[name] = unquote_to_bytes(value)
    return pattrs, qattrs


def _text(value: bytes) -> str:
    return value.decode("utf-8", "surrogateescape")


def _pin(qattrs: dict[str, bytes]) -> str | None:
    if "pin-value" in qattrs:
        return _text(qattrs["pin-value"])
    if "pin-source" in qattrs:
        src = _text(qattrs["pin-source"])
        path = src[5:] if src.startswith("file:") else src
        try:
            with open(path, encoding="utf-8") as f:
                pin = f.read()
        except OSError as e:
            raise SigningError(f"PKCS#11 pin-source {src}: {e.strerror or e}") from e
        return pin[:-1] if pin.endswith("\n") else pin
    return os.environ.get(PIN_ENV)


class Pkcs11Key:
    """A private key in a token, with an open session (closed by :meth:`close`
    or at exit). ``kind`` is ``"rsa"`` or ``"ecdsa"``; :meth:`sign` returns the
    signature as CMS carries it (ECDSA DER-encoded). Signing is serialised: a
    PKCS#11 session runs one operation at a time."""

    def __init__(self, session: Any, key: Any, kind: str, uri: str) -> None:
        self._session = session
        self._key = key
        self.kind = kind
        self.uri = uri
        self._lock = threading.Lock()

    def sign(self, data: bytes) -> bytes:
        import pkcs11
        from pkcs11.util.ec import encode_ecdsa_signature

        try:
            with self._lock:
                if self.kind == "rsa":
                    sig: bytes = self._key.sign(data, mechanism=pkcs11.Mechanism.SHA256_RSA_PKCS)
                    return sig
                raw = self._key.sign(hashlib.sha256(data).digest(),
                                     mechanism=pkcs11.Mechanism.ECDSA)
        except pkcs11.PKCS11Error as e:
            raise SigningError(f"PKCS#11 key {_redacted(self.uri)}: the token could not sign "
                               f"({type(e).__name__})") from e
        der: bytes = encode_ecdsa_signature(raw)
        return der

    def close(self) -> None:
        with contextlib.suppress(Exception):  # best effort: the token may be gone
            self._session.close()


def _redacted(uri: str) -> str:
    """The URI without its query (which may carry the PIN)."""
    return uri.partition("?")[0]


def open_key(uri: str) -> Pkcs11Key:
    """Open the session and find the one private key ``uri`` names."""
    pattrs, qattrs = parse_uri(uri)
    shown = _redacted(uri)
    if "type" in pattrs and pattrs["type"] != b"private":
        raise SigningError(f"PKCS#11 key {shown}: type={_text(pattrs['type'])}, "
                           "signing needs the private key")
    if "object" not in pattrs and "id" not in pattrs:
        raise SigningError(f"PKCS#11 key {shown}: name the key with object= or id=")
    module = _text(qattrs["module-path"]) if "module-path" in qattrs else \
        os.environ.get(MODULE_ENV)
    if not module:
        raise SigningError(f"PKCS#11 key {shown}: no module: add module-path=... to the URI "
                           f"or set {MODULE_ENV}")
    try:
        import pkcs11
    except ImportError:
        raise SigningError("PKCS#11 keys need python-pkcs11: "
                           "pip install 'bpfgen_fast[pkcs11]'") from None
    try:
        lib = pkcs11.lib(module)
    except Exception as e:  # a bad module fails in many ways
        raise SigningError(f"PKCS#11 module {module}: cannot load it ({e})") from e
    label = _text(pattrs["token"]) if "token" in pattrs else None
    serial = pattrs.get("serial")
    try:
        tokens = [t for t in lib.get_tokens(token_label=label, token_serial=serial)
                  if all(_text(pattrs[a]) == getattr(t, f, None)
                         for a, f in (("manufacturer", "manufacturer_id"), ("model", "model"))
                         if a in pattrs)]
    except pkcs11.PKCS11Error as e:
        raise SigningError(f"PKCS#11 key {shown}: cannot list tokens "
                           f"({type(e).__name__})") from e
    if len(tokens) != 1:
        raise SigningError(f"PKCS#11 key {shown}: {len(tokens) or 'no'} matching tokens"
                           + (" (name one with token=...)" if tokens else ""))
    pin = _pin(qattrs)
    try:
        session = tokens[0].open(user_pin=pin)
    except pkcs11.PKCS11Error as e:
        raise SigningError(f"PKCS#11 key {shown}: cannot log in "
                           f"({type(e).__name__})") from e
    find: dict[str, Any] = {"object_class": pkcs11.ObjectClass.PRIVATE_KEY}
    if "object" in pattrs:
        find["label"] = _text(pattrs["object"])
    if "id" in pattrs:
        find["id"] = pattrs["id"]
    try:
        key = session.get_key(**find)
    except pkcs11.NoSuchKey:
        session.close()
        hint = "" if pin is not None else f" (no PIN given: pin-value=..., or {PIN_ENV})"
        raise SigningError(f"PKCS#11 key {shown}: no such private key on the token"
                           f"{hint}") from None
    except pkcs11.MultipleObjectsReturned:
        session.close()
        raise SigningError(f"PKCS#11 key {shown}: more than one private key matches "
                           "(add id=...)") from None
    if key.key_type == pkcs11.KeyType.RSA:
        kind = "rsa"
    elif key.key_type == pkcs11.KeyType.EC:
        kind = "ecdsa"
    else:
        session.close()
        raise SigningError(f"PKCS#11 key {shown}: a {key.key_type.name} key; only RSA and "
                           "ECDSA keys are supported")
    return Pkcs11Key(session, key, kind, uri)


def check_against(key: Pkcs11Key, cert: Any, cert_name: str, curves: frozenset[str]) -> None:
    """That the token's key is the certificate's: a probe signed on the token
    verifies with the certificate's public key (the public half of a sensitive
    key is not always readable off the token). ``curves``: the ECDSA curves the
    signer accepts (sign.py's policy)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    pub = cert.public_key()
    shown = _redacted(key.uri)
    if key.kind == "ecdsa" and not (isinstance(pub, ec.EllipticCurvePublicKey)
                                    and pub.curve.name in curves):
        raise SigningError(f"PKCS#11 key {shown} does not match certificate {cert_name} "
                           "(or its curve is neither P-256 nor P-384)")
    probe = b"bpfgen_fast: is this the certificate's key?"
    sig = key.sign(probe)
    try:
        if key.kind == "rsa" and isinstance(pub, rsa.RSAPublicKey):
            pub.verify(sig, probe, padding.PKCS1v15(), hashes.SHA256())
        elif key.kind == "ecdsa" and isinstance(pub, ec.EllipticCurvePublicKey):
            pub.verify(sig, probe, ec.ECDSA(hashes.SHA256()))
        else:
            raise InvalidSignature
    except InvalidSignature:
        raise SigningError(f"PKCS#11 key {shown} does not match certificate "
                           f"{cert_name}") from None
