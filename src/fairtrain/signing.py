"""Signed documents: compact JWS (RFC 7515) with EdDSA over RFC 8785 canonical JSON.

What the platform signs — consent receipts, licence agreements, deletion attestations —
is a JSON object; the JWS payload is its JCS canonical form, so one object has exactly
one signed spelling. A downloadable file is ``{<name>: {...}, "jws": "...",
"public_key_id": "..."}``; verifying it checks the signature and that the readable copy
is exactly what was signed, so neither half can be changed on its own.

Each kind of document (:class:`SignedKind`) has its own JWS ``typ``, so a receipt can
never be passed off as an agreement, and its own error codes (``receipt_signature``,
``agreement_signature`` …). Pure functions: no database, no settings.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fairtrain.audit.chain import canonical_json
from fairtrain.audit.keys import key_id, load_public_key_pem
from fairtrain.errors import InvalidInput

__all__ = [
    "JWS_ALGORITHM",
    "SignedKind",
    "jws_sha256",
    "sign_document",
    "strict_json",
    "verify_document",
    "verify_file",
    "verify_jws",
]

JWS_ALGORITHM = "EdDSA"


@dataclass(frozen=True, slots=True)
class SignedKind:
    """One kind of signed document: its JWS type, its name in sentences and codes."""

    typ: str  # e.g. "consent-receipt+jws"
    noun: str  # "receipt", "licence agreement"
    prefix: str  # error codes are f"{prefix}_malformed" …
    field: str  # the readable copy's key in the downloadable file
    error: type[InvalidInput]

    def refuse(self, detail: str, kind: str) -> InvalidInput:
        code = "public_key_invalid" if kind == "public_key_invalid" else f"{self.prefix}_{kind}"
        return self.error(detail, code=code)


# --- encoding ---------------------------------------------------------------------------

_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    """Strict base64url without padding: every byte string has exactly one spelling.

    Python's decoder skips foreign characters and ignores the unused low bits of the last
    character; accepting either would let several JWS strings carry one signature.
    """
    if not _BASE64URL.fullmatch(text):
        raise ValueError("not base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError("not the canonical base64url spelling")
    return data


class _DuplicateKey(ValueError):
    pass


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for name, value in pairs:
        if name in document:
            # Two parsers could each pick a different copy; a verifier must not guess.
            raise _DuplicateKey(f"duplicate key {name!r}")
        document[name] = value
    return document


def strict_json(text: str | bytes) -> Any:
    return json.loads(text, object_pairs_hook=_reject_duplicate_keys)


# --- signing ----------------------------------------------------------------------------


def sign_document(document: dict[str, Any], key: Ed25519PrivateKey, kind: SignedKind) -> str:
    """Compact JWS: ``BASE64URL(header).BASE64URL(JCS(document)).BASE64URL(signature)``."""
    header = {"alg": JWS_ALGORITHM, "typ": kind.typ, "kid": key_id(key.public_key())}
    signing_input = f"{_b64(canonical_json(header))}.{_b64(canonical_json(document))}"
    return f"{signing_input}.{_b64(key.sign(signing_input.encode('ascii')))}"


def jws_sha256(jws: str) -> str:
    """What the audit log records: SHA-256 (hex) of the JWS exactly as issued."""
    return hashlib.sha256(jws.encode("ascii")).hexdigest()


# --- verifying --------------------------------------------------------------------------


def _public_key(public_key_pem: bytes, kind: SignedKind) -> Ed25519PublicKey:
    try:
        return load_public_key_pem(public_key_pem)
    except (ValueError, TypeError) as error:
        raise kind.refuse(
            f"The public key is not a PEM Ed25519 public key ({error}).", "public_key_invalid"
        ) from None


def _split(jws: object, kind: SignedKind) -> tuple[dict[str, Any], bytes, bytes, bytes]:
    """Header, payload, signature and signing input of a well-formed compact JWS."""
    if not isinstance(jws, str) or not jws.isascii():
        raise kind.refuse("The JWS is not an ASCII string.", "malformed")
    parts = jws.split(".")
    if len(parts) != 3:
        raise kind.refuse(
            f"The JWS has {len(parts)} dot-separated part(s); a compact JWS has three.",
            "malformed",
        )
    try:
        header_bytes, payload, signature = (_unb64(part) for part in parts)
        header = strict_json(header_bytes)
    except (ValueError, binascii.Error):
        raise kind.refuse(
            "The JWS parts are not strict base64url, or its header is not JSON.", "malformed"
        ) from None
    if not isinstance(header, dict):
        raise kind.refuse("The JWS header is not a JSON object.", "malformed")
    return header, payload, signature, f"{parts[0]}.{parts[1]}".encode("ascii")


def verify_jws(jws: str, public_key_pem: bytes, kind: SignedKind) -> dict[str, Any]:
    """The signed document, if ``jws`` is one of ``kind`` signed by this key.

    Checks, in order: the JWS is well formed; ``alg`` is EdDSA (``none``, HMAC and the
    rest are refused, so a key cannot be misused as a shared secret); ``typ`` is the
    kind's; ``kid`` is this key's id; the signature verifies; the payload is a JSON
    object in RFC 8785 canonical form (what the platform signs).
    """
    header, payload, signature, signing_input = _split(jws, kind)
    if "crit" in header:
        raise kind.refuse(
            "The JWS header has critical extensions this verifier does not implement.",
            "malformed",
        )
    algorithm = header.get("alg")
    if algorithm != JWS_ALGORITHM:
        raise kind.refuse(
            f"The JWS uses the algorithm {algorithm!r}; only EdDSA (Ed25519) "
            f"{kind.noun}s are accepted.",
            "algorithm",
        )
    if header.get("typ") != kind.typ:
        raise kind.refuse(
            f"The JWS type is {header.get('typ')!r}, not {kind.typ!r}: it is not a {kind.noun}.",
            "malformed",
        )
    public_key = _public_key(public_key_pem, kind)
    expected = key_id(public_key)
    if header.get("kid") != expected:
        raise kind.refuse(
            f"The {kind.noun} names the signing key {header.get('kid')!r}, but the public "
            f"key given is {expected}: it was signed with another key.",
            "wrong_key",
        )
    try:
        public_key.verify(signature, signing_input)
    except InvalidSignature:
        raise kind.refuse(
            f"The signature does not match: the {kind.noun} or its signature was altered.",
            "signature",
        ) from None
    try:
        document = strict_json(payload)
        canonical = isinstance(document, dict) and canonical_json(document) == payload
    except (ValueError, UnicodeDecodeError):  # rfc8785's errors are ValueErrors too
        canonical = False
    if not canonical:
        raise kind.refuse(
            "The signed payload is not a JSON object in RFC 8785 canonical form.",
            "not_canonical",
        )
    assert isinstance(document, dict)
    return document


def verify_document(document: object, public_key_pem: bytes, kind: SignedKind) -> dict[str, Any]:
    """Verify a parsed downloadable file: the JWS, its key id, and the readable copy."""
    if not isinstance(document, dict):
        raise kind.refuse(f"The {kind.noun} file is not a JSON object.", "malformed")
    missing = [name for name in (kind.field, "jws") if name not in document]
    if missing:
        raise kind.refuse(
            f"The {kind.noun} file has no {' or '.join(repr(m) for m in missing)}.", "malformed"
        )
    signed = verify_jws(document["jws"], public_key_pem, kind)
    shown = document[kind.field]
    # Compared as canonical JSON, not as Python values: in Python, true == 1 == 1.0.
    try:
        same = isinstance(shown, dict) and canonical_json(shown) == canonical_json(signed)
    except ValueError:
        same = False
    if not same:
        raise kind.refuse(
            f"The readable {kind.noun} in the file differs from the signed one.", "mismatch"
        )
    stated = document.get("public_key_id")
    if stated is not None and stated != key_id(_public_key(public_key_pem, kind)):
        raise kind.refuse(
            f"The file names the key {stated!r}, not the key that signed the {kind.noun}.",
            "wrong_key",
        )
    return signed


def verify_file(path: Path, public_key_pem: bytes, kind: SignedKind) -> dict[str, Any]:
    """Read and verify a downloaded file; the signed document, or ``kind.error``.

    A file that cannot be read or is not JSON is refused with ``{prefix}_unreadable``.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise kind.refuse(
            f"The {kind.noun} file {path} cannot be read: {error}.", "unreadable"
        ) from None
    try:
        document = strict_json(text)
    except _DuplicateKey as error:
        raise kind.refuse(
            f"The {kind.noun} file {path} has a {error}: it is ambiguous.", "malformed"
        ) from None
    except ValueError as error:
        raise kind.refuse(
            f"The {kind.noun} file {path} is not JSON: {error}.", "unreadable"
        ) from None
    return verify_document(document, public_key_pem, kind)
