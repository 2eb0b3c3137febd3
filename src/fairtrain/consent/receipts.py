"""Consent receipts: a signed record the contributor keeps, verifiable offline.

A receipt is issued for every grant, change, renewal, withdrawal and refusal of consent.
Its fields follow the consent record of ISO/IEC TS 27560 as profiled by W3C DPV (status
from DPV's consent states) and carry the Kantara Consent Receipt v1.1 field names, so
either kind of tool can read it. It is signed by the platform as a compact JWS
(RFC 7515, ``EdDSA`` with the Ed25519 key that also signs audit checkpoints) over the
RFC 8785 canonical JSON of the receipt; the SHA-256 of the JWS is appended to the audit
log, so its issue can also be proven with an inclusion proof.

The downloadable file is ``{"receipt": {...}, "jws": "...", "public_key_id": "..."}``;
:func:`verify_receipt_file` checks the signature and that the readable ``receipt`` is
exactly what was signed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fairtrain.audit.chain import canonical_json
from fairtrain.audit.keys import key_id, load_public_key_pem
from fairtrain.errors import InvalidInput
from fairtrain.ids import new_id

__all__ = [
    "JWS_TYPE",
    "ConsentStatus",
    "ReceiptInvalid",
    "build_receipt",
    "receipt_file",
    "receipt_sha256",
    "sign_receipt",
    "verify_receipt",
    "verify_receipt_file",
]

DPV = "https://w3id.org/dpv#"
JWS_TYPE = "consent-receipt+jws"
KANTARA_VERSION = "KI-CR-v1.1.0"


class ConsentStatus(StrEnum):
    """DPV 2.2 consent states (``dpv:ConsentStatus``)."""

    REQUESTED = "ConsentRequested"
    GIVEN = "ConsentGiven"
    REFUSED = "ConsentRefused"
    WITHDRAWN = "ConsentWithdrawn"
    EXPIRED = "ConsentExpired"
    INVALIDATED = "ConsentInvalidated"
    REVOKED = "ConsentRevoked"

    @property
    def iri(self) -> str:
        return DPV + self.value


class ReceiptInvalid(InvalidInput):
    default_code = "receipt_invalid"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(padded.encode("ascii"))


def _time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("receipt times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_receipt(
    *,
    subject_id: str,
    subject_jurisdiction: str | None,
    controller: dict[str, str],
    asset_ids: list[str],
    policy_uid: str,
    policy_version: int,
    policy_sha256: str,
    purposes: list[str],
    prohibited: list[str],
    status: ConsentStatus,
    event: str,
    issued_at: datetime,
    expires_at: datetime | None = None,
    counterparty_of: str | None = None,
) -> dict[str, Any]:
    receipt_id = new_id("rcpt")
    return {
        "@context": {"dpv": DPV, "dct": "http://purl.org/dc/terms/"},
        "@type": "dpv:ConsentRecord",
        # ISO/IEC TS 27560 / DPV consent record
        "id": receipt_id,
        "event": event,
        "dpv:hasConsentStatus": status.iri,
        "dpv:hasDataSubject": subject_id,
        "dpv:hasDataController": controller,
        "dpv:hasPurpose": purposes,
        "prohibitedPurposes": prohibited,
        "dpv:hasJurisdiction": subject_jurisdiction,
        "dct:valid": {"from": _time(issued_at), "until": _time(expires_at) if expires_at else None},
        "assets": asset_ids,
        "policy": {"uid": policy_uid, "version": policy_version, "sha256": policy_sha256},
        "counterpartyOf": counterparty_of,
        # Kantara Consent Receipt v1.1 names for the same facts
        "version": KANTARA_VERSION,
        "jurisdiction": subject_jurisdiction,
        "consentTimestamp": int(issued_at.timestamp()),
        "collectionMethod": "fairtrain web or API, by the data subject in person",
        "consentReceiptID": receipt_id,
        "piiPrincipalId": subject_id,
        "piiControllers": [controller],
        "policyUrl": policy_uid,
        "sensitive": True,  # voice, face and chats can be biometric or special-category
    }


def sign_receipt(receipt: dict[str, Any], key: Ed25519PrivateKey) -> str:
    header = {"alg": "EdDSA", "typ": JWS_TYPE, "kid": key_id(key.public_key())}
    signing_input = f"{_b64(canonical_json(header))}.{_b64(canonical_json(receipt))}"
    return f"{signing_input}.{_b64(key.sign(signing_input.encode('ascii')))}"


def receipt_sha256(jws: str) -> str:
    return hashlib.sha256(jws.encode("ascii")).hexdigest()


def verify_receipt(jws: str, public_key_pem: bytes) -> dict[str, Any]:
    """The signed receipt; raises :class:`ReceiptInvalid` saying what is wrong."""
    parts = jws.strip().split(".")
    if len(parts) != 3:
        raise ReceiptInvalid("This is not a compact JWS (three dot-separated parts).")
    try:
        header = json.loads(_unb64(parts[0]))
        payload_bytes = _unb64(parts[1])
        signature = _unb64(parts[2])
        receipt = json.loads(payload_bytes)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ReceiptInvalid("The JWS parts are not base64url-encoded JSON.") from None
    if not isinstance(header, dict) or header.get("alg") != "EdDSA":
        raise ReceiptInvalid("Only EdDSA (Ed25519) receipts are accepted.")
    if header.get("typ") != JWS_TYPE:
        raise ReceiptInvalid("This JWS is not a consent receipt.")
    public_key = load_public_key_pem(public_key_pem)
    if header.get("kid") != key_id(public_key):
        raise ReceiptInvalid("The receipt was signed with another key than the one given.")
    try:
        public_key.verify(signature, f"{parts[0]}.{parts[1]}".encode("ascii"))
    except InvalidSignature:
        raise ReceiptInvalid("The signature does not match: the receipt was altered.") from None
    if not isinstance(receipt, dict) or canonical_json(receipt) != payload_bytes:
        raise ReceiptInvalid("The signed receipt is not in canonical JSON form.")
    return receipt


def receipt_file(receipt: dict[str, Any], jws: str, public_key_id: str) -> dict[str, Any]:
    return {"receipt": receipt, "jws": jws, "public_key_id": public_key_id}


def verify_receipt_file(path: Path, public_key_pem: bytes) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ReceiptInvalid(f"The receipt file cannot be read: {exc}.") from None
    if not isinstance(document, dict) or not isinstance(document.get("jws"), str):
        raise ReceiptInvalid("The file holds no 'jws'.")
    signed = verify_receipt(document["jws"], public_key_pem)
    if document.get("receipt") != signed:
        raise ReceiptInvalid("The readable receipt differs from the signed one.")
    return signed
