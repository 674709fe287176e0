"""Signing the attestation with a key the user holds: a DSSE envelope (in-toto's format).

An unsigned attestation says what was built from what, but not *who* says so: anyone
who can change the firmware can rewrite the documents to agree (see
:mod:`mpforge.firmware.verify`). A signature by a key only the builder holds closes that:
``invoke sign dist/<target> --key KEY`` (or ``invoke build --sign-key KEY``) writes
:data:`ENVELOPE_NAME`, the in-toto Statement of ``provenance.intoto.json`` wrapped in a
DSSE envelope (https://github.com/secure-systems-lab/dsse: ``payloadType``, the base64
payload, and signatures over its *pre-authentication encoding*, :func:`pae`), and
``invoke verify dist/<target> --key PUBLIC`` checks that the signature is the key's and
that the signed Statement is, byte for byte, the one in the folder.

Keys are Ed25519 in PEM files, made with OpenSSL and kept by the user::

    openssl genpkey -algorithm ed25519 -out signing.pem      # private: keep it
    openssl pkey -in signing.pem -pubout -out signing.pub    # public: give it to checkers

Why the ``cryptography`` package (PyCA): it is the one maintained binding of OpenSSL's
Ed25519 for Python, shipped as wheels, and what ``securesystemslib`` (the in-toto
project's own library) itself calls for Ed25519; DSSE is a few lines on top of it, so
the larger library would add an API to learn and nothing to check. It is an optional
dependency (``pip install 'mpforge[sign]'``): without it, signing and ``--key`` say so in
one line.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from pathlib import Path
from typing import Any

from mpforge.core.errors import ConfigError

#: the signed attestation's file in ``dist/<target>/``
ENVELOPE_NAME = "provenance.intoto.dsse.json"
#: DSSE's payload type for an in-toto Statement
PAYLOAD_TYPE = "application/vnd.in-toto+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what is signed (the type and the payload, each
    with its length, so neither can be shifted into the other)."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise ConfigError("signing needs the cryptography package",
                          "pip install 'mpforge[sign]' (or: pip install cryptography)") from None
    return serialization, ed25519


def _read_key(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the key {path}: {exc.strerror}",
                          "give the PEM file of an Ed25519 key") from None


def private_key(path: Path) -> Any:
    """The Ed25519 private key in the PEM file ``path`` (unencrypted PKCS#8, what
    ``openssl genpkey -algorithm ed25519`` writes)."""
    serialization, ed25519 = _crypto()
    try:
        key = serialization.load_pem_private_key(_read_key(path), password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path} is not an unencrypted private key in PEM ({exc})",
                          "make one with: openssl genpkey -algorithm ed25519 -out signing.pem") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ConfigError(f"{path} is not an Ed25519 key", "openssl genpkey -algorithm ed25519")
    return key


def public_key(path: Path) -> Any:
    """The Ed25519 public key in ``path``: a public PEM, or a private one (its public half)."""
    serialization, ed25519 = _crypto()
    data = _read_key(path)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        return private_key(path).public_key()
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise ConfigError(f"{path} is not an Ed25519 key", "openssl pkey -in signing.pem -pubout")
    return key


def key_id(public: Any) -> str:
    """The key's id in the envelope: the sha256 of its raw 32 bytes (hex)."""
    serialization, _ = _crypto()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def sign(statement: bytes, key_path: Path) -> dict[str, Any]:
    """The DSSE envelope of ``statement`` (the attestation's bytes) signed with the key."""
    key = private_key(key_path)
    signature = key.sign(pae(PAYLOAD_TYPE, statement))
    return {"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(statement).decode(),
            "signatures": [{"keyid": key_id(key.public_key()), "sig": base64.b64encode(signature).decode()}]}


def sign_folder(dist_dir: Path, key_path: Path) -> Path:
    """Sign ``dist_dir``'s attestation: writes :data:`ENVELOPE_NAME` there; returns its path."""
    from mpforge.core.state import write_json
    from mpforge.firmware.provenance import PROVENANCE_NAME
    statement_path = dist_dir / PROVENANCE_NAME
    try:
        statement = statement_path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {statement_path}: {exc.strerror}", "build the target first") from None
    envelope = sign(statement, key_path)
    write_json(dist_dir / ENVELOPE_NAME, envelope)
    return dist_dir / ENVELOPE_NAME


def check(dist_dir: Path, key_path: Path) -> tuple[bool, str]:
    """Whether ``dist_dir``'s envelope carries a valid signature by the key in ``key_path``
    over exactly the folder's attestation; and, if not, why (one phrase)."""
    from mpforge.firmware.provenance import PROVENANCE_NAME
    public = public_key(key_path)
    path = dist_dir / ENVELOPE_NAME
    if not path.is_file():
        return False, f"no {ENVELOPE_NAME}: the attestation is not signed"
    try:
        envelope = json.loads(path.read_text())
        payload_type = envelope["payloadType"]
        payload = base64.b64decode(envelope["payload"], validate=True)
        signatures = [base64.b64decode(s["sig"], validate=True) for s in envelope["signatures"]]
        if not isinstance(payload_type, str):
            raise TypeError("payloadType")
    except (OSError, ValueError, KeyError, TypeError, binascii.Error) as exc:
        return False, f"{ENVELOPE_NAME} is not a DSSE envelope ({exc})"
    from cryptography.exceptions import InvalidSignature
    good = False
    for signature in signatures:
        try:
            public.verify(signature, pae(payload_type, payload))
            good = True
        except InvalidSignature:
            continue
    if not good:
        return False, f"no signature by key {key_id(public)[:16]}... verifies"
    if payload_type != PAYLOAD_TYPE:
        return False, f"the signed payload is {payload_type!r}, not an in-toto Statement"
    try:
        statement = (dist_dir / PROVENANCE_NAME).read_bytes()
    except OSError:
        statement = b""
    if payload != statement:
        return False, f"the signed Statement is not the folder's {PROVENANCE_NAME}"
    return True, ""
