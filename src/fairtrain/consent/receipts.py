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

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fairtrain.audit.chain import canonical_json
from fairtrain.audit.keys import key_id, load_public_key_pem
from fairtrain.errors import InvalidInput
from fairtrain.ids import new_id

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


def _time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("receipt times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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


def _strict_json(text: str | bytes) -> Any:
    return json.loads(text, object_pairs_hook=_reject_duplicate_keys)


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
    header = {"alg": JWS_ALGORITHM, "typ": JWS_TYPE, "kid": key_id(key.public_key())}
    signing_input = f"{_b64(canonical_json(header))}.{_b64(canonical_json(receipt))}"
    return f"{signing_input}.{_b64(key.sign(signing_input.encode('ascii')))}"


def receipt_sha256(jws: str) -> str:
    """What the audit log records: SHA-256 (hex) of the JWS exactly as issued."""
    return hashlib.sha256(jws.encode("ascii")).hexdigest()


def receipt_file(receipt: dict[str, Any], jws: str, public_key_id: str) -> dict[str, Any]:
    """The downloadable document: the readable receipt, its JWS, and the key's id."""
    return {"receipt": receipt, "jws": jws, "public_key_id": public_key_id}


# --- verifying --------------------------------------------------------------------------


def _public_key(public_key_pem: bytes) -> Ed25519PublicKey:
    try:
        return load_public_key_pem(public_key_pem)
    except (ValueError, TypeError) as error:
        raise ReceiptInvalid(
            f"The public key is not a PEM Ed25519 public key ({error}).",
            code="public_key_invalid",
        ) from None


def _split(jws: object) -> tuple[dict[str, Any], bytes, bytes, bytes]:
    """Header, payload, signature and signing input of a well-formed compact JWS."""
    if not isinstance(jws, str) or not jws.isascii():
        raise ReceiptInvalid("The JWS is not an ASCII string.", code="receipt_malformed")
    parts = jws.split(".")
    if len(parts) != 3:
        raise ReceiptInvalid(
            f"The JWS has {len(parts)} dot-separated part(s); a compact JWS has three.",
            code="receipt_malformed",
        )
    try:
        header_bytes, payload, signature = (_unb64(part) for part in parts)
        header = _strict_json(header_bytes)
    except (ValueError, binascii.Error):
        raise ReceiptInvalid(
            "The JWS parts are not strict base64url, or its header is not JSON.",
            code="receipt_malformed",
        ) from None
    if not isinstance(header, dict):
        raise ReceiptInvalid("The JWS header is not a JSON object.", code="receipt_malformed")
    return header, payload, signature, f"{parts[0]}.{parts[1]}".encode("ascii")


def verify_receipt(jws: str, public_key_pem: bytes) -> dict[str, Any]:
    """The signed receipt, if ``jws`` is one signed by this key; else :class:`ReceiptInvalid`.

    Checks, in order: the JWS is well formed; ``alg`` is EdDSA (``none``, HMAC and the
    rest are refused, so a key cannot be misused as a shared secret); ``typ`` says
    consent receipt; ``kid`` is this key's id; the signature verifies; the payload is a
    JSON object in RFC 8785 canonical form (what the platform signs).
    """
    header, payload, signature, signing_input = _split(jws)
    if "crit" in header:
        raise ReceiptInvalid(
            "The JWS header has critical extensions this verifier does not implement.",
            code="receipt_malformed",
        )
    algorithm = header.get("alg")
    if algorithm != JWS_ALGORITHM:
        raise ReceiptInvalid(
            f"The JWS uses the algorithm {algorithm!r}; only EdDSA (Ed25519) receipts "
            "are accepted.",
            code="receipt_algorithm",
        )
    if header.get("typ") != JWS_TYPE:
        raise ReceiptInvalid(
            f"The JWS type is {header.get('typ')!r}, not {JWS_TYPE!r}: it is not a "
            "consent receipt.",
            code="receipt_malformed",
        )
    public_key = _public_key(public_key_pem)
    expected = key_id(public_key)
    if header.get("kid") != expected:
        raise ReceiptInvalid(
            f"The receipt names the signing key {header.get('kid')!r}, but the public key "
            f"given is {expected}: it was signed with another key.",
            code="receipt_wrong_key",
        )
    try:
        public_key.verify(signature, signing_input)
    except InvalidSignature:
        raise ReceiptInvalid(
            "The signature does not match: the receipt or its signature was altered.",
            code="receipt_signature",
        ) from None
    try:
        receipt = _strict_json(payload)
        canonical = isinstance(receipt, dict) and canonical_json(receipt) == payload
    except (ValueError, UnicodeDecodeError):  # rfc8785's errors are ValueErrors too
        canonical = False
    if not canonical:
        raise ReceiptInvalid(
            "The signed payload is not a JSON object in RFC 8785 canonical form.",
            code="receipt_not_canonical",
        )
    assert isinstance(receipt, dict)
    return receipt


def verify_receipt_document(document: object, public_key_pem: bytes) -> dict[str, Any]:
    """Verify a parsed receipt file: the JWS, its key id, and the readable copy."""
    if not isinstance(document, dict):
        raise ReceiptInvalid("The receipt file is not a JSON object.", code="receipt_malformed")
    missing = [name for name in ("receipt", "jws") if name not in document]
    if missing:
        raise ReceiptInvalid(
            f"The receipt file has no {' or '.join(repr(m) for m in missing)}.",
            code="receipt_malformed",
        )
    signed = verify_receipt(document["jws"], public_key_pem)
    shown = document["receipt"]
    # Compared as canonical JSON, not as Python values: in Python, true == 1 == 1.0.
    try:
        same = isinstance(shown, dict) and canonical_json(shown) == canonical_json(signed)
    except ValueError:
        same = False
    if not same:
        raise ReceiptInvalid(
            "The readable receipt in the file differs from the signed one.",
            code="receipt_mismatch",
        )
    stated = document.get("public_key_id")
    if stated is not None and stated != key_id(_public_key(public_key_pem)):
        raise ReceiptInvalid(
            f"The file names the key {stated!r}, not the key that signed the receipt.",
            code="receipt_wrong_key",
        )
    return signed


def verify_receipt_file(path: Path, public_key_pem: bytes) -> dict[str, Any]:
    """Read and verify a downloaded receipt file; the receipt, or :class:`ReceiptInvalid`.

    A file that cannot be read or is not JSON raises with the code ``receipt_unreadable``.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ReceiptInvalid(
            f"The receipt file {path} cannot be read: {error}.", code="receipt_unreadable"
        ) from None
    try:
        document = _strict_json(text)
    except _DuplicateKey as error:
        raise ReceiptInvalid(
            f"The receipt file {path} has a {error}: it is ambiguous.",
            code="receipt_malformed",
        ) from None
    except ValueError as error:
        raise ReceiptInvalid(
            f"The receipt file {path} is not JSON: {error}.", code="receipt_unreadable"
        ) from None
    return verify_receipt_document(document, public_key_pem)
