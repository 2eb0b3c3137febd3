"""Consent receipts: a signed record the contributor keeps, verifiable offline.

A receipt is issued for every grant, change, renewal, withdrawal and refusal of consent,
and, for counterparties (people in someone else's recording), for each request for their
consent, its expiry, and its invalidation when the terms they answered change.
Its fields are the consent record of ISO/IEC TS 27560 as expressed in W3C DPV 2.2 (the
status is one of DPV's consent states) plus the Kantara Consent Receipt v1.1 field names,
so a tool written for either can read it; ``@context`` makes the whole object JSON-LD.

It is signed by the platform as a compact JWS (RFC 7515) with ``EdDSA`` and the Ed25519
key that also signs audit checkpoints, over the RFC 8785 (JCS) canonical JSON of the
receipt. The SHA-256 of the JWS (:func:`receipt_sha256`) goes into the audit log, so the
issue of a receipt can also be proven with an audit inclusion proof.

The downloadable file is ``{"receipt": {...}, "jws": "...", "public_key_id": "..."}``:
:func:`verify_receipt_file` checks the signature and that the readable ``receipt`` is
exactly what was signed, so neither half can be changed on its own.

Everything here is a pure function of its arguments: no database, no settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fairtrain.errors import InvalidInput
from fairtrain.ids import new_id
from fairtrain.signing import (
    SignedKind,
    jws_sha256,
    sign_document,
    verify_document,
    verify_file,
    verify_jws,
)

__all__ = [
    "CONTEXT",
    "DPV",
    "JWS_TYPE",
    "KANTARA_VERSION",
    "ConsentStatus",
    "ReceiptEvent",
    "ReceiptInvalid",
    "build_receipt",
    "receipt_file",
    "receipt_sha256",
    "sign_receipt",
    "verify_receipt",
    "verify_receipt_document",
    "verify_receipt_file",
]

DPV = "https://w3id.org/dpv#"
DCT = "http://purl.org/dc/terms/"
# Terms without a prefix (the Kantara names, ``assets``, ``policy``…) live here.
RECEIPT_VOCABULARY = "https://w3id.org/fairtrain/receipt#"
JWS_TYPE = "consent-receipt+jws"
JWS_ALGORITHM = "EdDSA"
KANTARA_VERSION = "KI-CR-v1.1.0"

CONTEXT: dict[str, Any] = {
    "@vocab": RECEIPT_VOCABULARY,
    "dpv": DPV,
    "dct": DCT,
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "dpv:hasConsentStatus": {"@type": "@id"},
    "dpv:hasPurpose": {"@type": "@id"},
    "dpv:hasPersonalData": {"@type": "@id"},
    "dpv:hasPolicy": {"@type": "@id"},
    "dpv:isIndicatedAtTime": {"@type": "xsd:dateTime"},
    "validFrom": {"@type": "xsd:dateTime"},
    "validUntil": {"@type": "xsd:dateTime"},
}


class ConsentStatus(StrEnum):
    """The consent states of DPV 2.2 (``dpv:ConsentStatus``), named exactly as DPV does.

    There is no separate "changed" state: a change of terms is a new ``ConsentGiven``
    for the new policy version (the receipt's ``event`` says ``change``).
    """

    REQUESTED = "ConsentRequested"
    REQUEST_DEFERRED = "ConsentRequestDeferred"
    GIVEN = "ConsentGiven"
    RENEWED = "RenewedConsentGiven"
    REFUSED = "ConsentRefused"
    WITHDRAWN = "ConsentWithdrawn"
    REVOKED = "ConsentRevoked"
    EXPIRED = "ConsentExpired"
    INVALIDATED = "ConsentInvalidated"
    UNKNOWN = "ConsentUnknown"

    @property
    def iri(self) -> str:
        return DPV + self.value

    @property
    def valid_for_processing(self) -> bool:
        """DPV puts only these two under ``dpv:ConsentStatusValidForProcessing``."""
        return self in (ConsentStatus.GIVEN, ConsentStatus.RENEWED)


class ReceiptEvent(StrEnum):
    """What happened to the consent; each event allows only the states that fit it."""

    GRANT = "grant"
    CHANGE = "change"
    RENEWAL = "renewal"
    WITHDRAWAL = "withdrawal"
    REFUSAL = "refusal"
    # A counterparty is asked (an invite link is created), or the request lapses unanswered.
    REQUEST = "request"
    EXPIRY = "expiry"
    # The terms a counterparty answered were replaced: their answer no longer applies.
    INVALIDATION = "invalidation"


_STATES_OF_EVENT: dict[ReceiptEvent, frozenset[ConsentStatus]] = {
    ReceiptEvent.GRANT: frozenset({ConsentStatus.GIVEN}),
    ReceiptEvent.CHANGE: frozenset({ConsentStatus.GIVEN}),
    ReceiptEvent.RENEWAL: frozenset({ConsentStatus.RENEWED, ConsentStatus.GIVEN}),
    ReceiptEvent.WITHDRAWAL: frozenset({ConsentStatus.WITHDRAWN, ConsentStatus.REVOKED}),
    ReceiptEvent.REFUSAL: frozenset({ConsentStatus.REFUSED}),
    ReceiptEvent.REQUEST: frozenset({ConsentStatus.REQUESTED}),
    ReceiptEvent.EXPIRY: frozenset({ConsentStatus.EXPIRED}),
    ReceiptEvent.INVALIDATION: frozenset({ConsentStatus.INVALIDATED}),
}


class ReceiptInvalid(InvalidInput):
    """A receipt (or receipt file) that does not verify; ``code`` says which check failed.

    Codes: ``receipt_unreadable``, ``receipt_malformed``, ``receipt_algorithm``,
    ``receipt_wrong_key``, ``receipt_signature``, ``receipt_not_canonical``,
    ``receipt_mismatch``, ``public_key_invalid``.
    """

    default_code = "receipt_invalid"


RECEIPT = SignedKind(
    typ=JWS_TYPE, noun="receipt", prefix="receipt", field="receipt", error=ReceiptInvalid
)


def _time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("receipt times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- building and signing ---------------------------------------------------------------


def build_receipt(
    *,
    subject_id: str,
    subject_jurisdiction: str | None,
    controller: dict[str, str],
    asset_ids: Sequence[str],
    policy_uid: str,
    policy_version: int,
    policy_sha256: str,
    purposes: Sequence[str],
    status: ConsentStatus,
    event: str,
    issued_at: datetime,
    expires_at: datetime | None = None,
    counterparty_of: str | None = None,
    prohibited: Sequence[str] = (),
    personal_data: Sequence[str] = (),
    special_categories: Sequence[str] = (),
    sensitive: bool = True,
) -> dict[str, Any]:
    """A new consent record with a fresh unguessable id (``rcpt_…``); nothing is stored.

    ``controller`` is the platform as data controller: ``name`` is required; ``contact``,
    ``email``, ``phone``, ``address`` and ``url`` are copied when given. ``purposes`` and
    ``prohibited`` are purpose IRIs, ``personal_data`` DPV personal-data IRIs.
    ``counterparty_of`` is set when this receipt is a counterparty's (someone else in the
    recording) and names the asset or receipt it belongs to. ``sensitive`` defaults to
    true because voice, faces and chats can be biometric or special-category data.
    """
    kind = ReceiptEvent(event)
    if status not in _STATES_OF_EVENT[kind]:
        allowed = ", ".join(sorted(_STATES_OF_EVENT[kind]))
        raise ValueError(f"a {kind} receipt must have the status {allowed}, not {status}")
    if not controller.get("name"):
        raise ValueError("the controller needs a name")
    issued = _time(issued_at)
    until = _time(expires_at) if expires_at is not None else None
    if expires_at is not None and expires_at <= issued_at:
        raise ValueError("a receipt cannot expire before it is issued")
    receipt_id = new_id("rcpt")
    pii_controller = {"piiController": controller["name"], "onBehalf": False}
    for source, target in (
        ("contact", "contact"),
        ("email", "email"),
        ("phone", "phone"),
        ("address", "address"),
        ("url", "piiControllerUrl"),
    ):
        if controller.get(source):
            pii_controller[target] = controller[source]
    termination = (
        "Withdraw at any time in fairtrain; new use stops at once"
        + (f"; this consent ends at {until}" if until else "")
        + "."
    )
    return {
        "@context": CONTEXT,
        "@type": "dpv:ConsentRecord",
        "id": receipt_id,
        "event": str(kind),
        # ISO/IEC TS 27560 consent record, in DPV terms
        "dpv:hasConsentStatus": status.iri,
        "dpv:hasDataSubject": subject_id,
        "dpv:isIndicatedBy": subject_id,
        "dpv:isIndicatedAtTime": issued,
        "dpv:hasDataController": dict(controller),
        "dpv:hasPurpose": list(purposes),
        "dpv:hasPersonalData": list(personal_data),
        "dpv:hasJurisdiction": subject_jurisdiction,
        "dpv:hasPolicy": policy_uid,
        "validFrom": issued,
        "validUntil": until,
        "assets": list(asset_ids),
        "policy": {"uid": policy_uid, "version": policy_version, "sha256": policy_sha256},
        "prohibitedPurposes": list(prohibited),
        "counterpartyOf": counterparty_of,
        # Kantara Consent Receipt v1.1 names for the same facts. Its consentTimestamp is
        # defined as whole seconds since the epoch, so it is a number, not ISO 8601.
        "version": KANTARA_VERSION,
        "jurisdiction": subject_jurisdiction,
        "consentTimestamp": int(issued_at.timestamp()),
        "collectionMethod": "fairtrain web or API, by the data subject in person",
        "consentReceiptID": receipt_id,
        "language": "en",
        "piiPrincipalId": subject_id,
        "piiControllers": [pii_controller],
        "policyUrl": policy_uid,
        "services": [
            {
                "service": "Licensing of the contributor's data to AI developers",
                "purposes": [
                    {
                        "purpose": purpose,
                        "purposeCategory": [purpose],
                        "consentType": "EXPLICIT",
                        "piiCategory": list(personal_data),
                        "primaryPurpose": True,
                        "termination": termination,
                        "thirdPartyDisclosure": True,
                        "thirdPartyName": "AI developers who license the data on these terms",
                    }
                    for purpose in purposes
                ],
            }
        ],
        "sensitive": sensitive,
        "spiCat": list(special_categories),
    }


def sign_receipt(receipt: dict[str, Any], key: Ed25519PrivateKey) -> str:
    """Compact JWS: ``BASE64URL(header).BASE64URL(JCS(receipt)).BASE64URL(signature)``."""
    return sign_document(receipt, key, RECEIPT)


def receipt_sha256(jws: str) -> str:
    """What the audit log records: SHA-256 (hex) of the JWS exactly as issued."""
    return jws_sha256(jws)


def receipt_file(receipt: dict[str, Any], jws: str, public_key_id: str) -> dict[str, Any]:
    """The downloadable document: the readable receipt, its JWS, and the key's id."""
    return {"receipt": receipt, "jws": jws, "public_key_id": public_key_id}


# --- verifying --------------------------------------------------------------------------


def verify_receipt(jws: str, public_key_pem: bytes) -> dict[str, Any]:
    """The signed receipt, if ``jws`` is one signed by this key; else :class:`ReceiptInvalid`
    (see :func:`fairtrain.signing.verify_jws` for the checks)."""
    return verify_jws(jws, public_key_pem, RECEIPT)


def verify_receipt_document(document: object, public_key_pem: bytes) -> dict[str, Any]:
    """Verify a parsed receipt file: the JWS, its key id, and the readable copy."""
    return verify_document(document, public_key_pem, RECEIPT)


def verify_receipt_file(path: Path, public_key_pem: bytes) -> dict[str, Any]:
    """Read and verify a downloaded receipt file; the receipt, or :class:`ReceiptInvalid`.

    A file that cannot be read or is not JSON raises with the code ``receipt_unreadable``.
    """
    return verify_file(path, public_key_pem, RECEIPT)
