"""Consent receipts: signed, verifiable offline; any change is caught and named."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from fairtrain.audit.keys import key_id, public_key_pem
from fairtrain.consent.receipts import (
    ConsentStatus,
    ReceiptInvalid,
    build_receipt,
    receipt_file,
    sign_receipt,
    verify_receipt,
    verify_receipt_file,
)

KEY = Ed25519PrivateKey.generate()
PEM = public_key_pem(KEY.public_key())
DPV_STATES = Path(__file__).parents[4] / "shared" / "data" / "dpv-2.2"


def receipt() -> dict[str, object]:
    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    return build_receipt(
        subject_id="user:usr_1",
        subject_jurisdiction="FR",
        controller={"name": "fairtrain", "url": "https://fairtrain.example"},
        asset_ids=["ast_1"],
        policy_uid="https://fairtrain.example/policies/pol_1",
        policy_version=2,
        policy_sha256="ab" * 32,
        purposes=["https://w3id.org/dpv#ResearchAndDevelopment"],
        prohibited=["https://w3id.org/fairtrain/purpose#VoiceCloning"],
        status=ConsentStatus.GIVEN,
        event="change",
        issued_at=now,
        expires_at=now + timedelta(days=365),
    )


def _parts(jws: str) -> list[str]:
    return jws.split(".")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_signed_receipt_verifies_and_carries_both_vocabularies() -> None:
    original = receipt()
    signed = verify_receipt(sign_receipt(original, KEY), PEM)
    assert signed == original
    assert signed["dpv:hasConsentStatus"] == "https://w3id.org/dpv#ConsentGiven"
    assert signed["consentReceiptID"] == signed["id"] and signed["piiPrincipalId"] == "user:usr_1"


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda p: [p[0], _b64(json.dumps({"event": "grant"}).encode()), p[2]], "altered"),
        (lambda p: [p[0], p[1], p[2][:-2] + ("AA" if p[2][-2:] != "AA" else "BA")], "altered"),
        (lambda p: [_b64(b'{"alg":"none","typ":"consent-receipt+jws"}'), p[1], ""], "EdDSA"),
        (lambda p: [_b64(b'{"alg":"HS256","typ":"consent-receipt+jws"}'), p[1], p[2]], "EdDSA"),
        (lambda p: [p[0], p[1]], "three"),
        (lambda p: ["!!", p[1], p[2]], "base64url"),
    ],
)
def test_tampering_is_caught(tamper: object, message: str) -> None:
    jws = sign_receipt(receipt(), KEY)
    forged = ".".join(tamper(_parts(jws)))  # type: ignore[operator]
    with pytest.raises(ReceiptInvalid, match=message):
        verify_receipt(forged, PEM)


def test_another_key_is_refused_by_key_id() -> None:
    other = Ed25519PrivateKey.generate()
    with pytest.raises(ReceiptInvalid, match="another key"):
        verify_receipt(sign_receipt(receipt(), other), PEM)


def test_the_file_must_show_what_was_signed(tmp_path: Path) -> None:
    original = receipt()
    jws = sign_receipt(original, KEY)
    path = tmp_path / "r.json"
    path.write_text(json.dumps(receipt_file(original, jws, key_id(KEY.public_key()))))
    assert verify_receipt_file(path, PEM) == original
    shown = dict(original, event="withdrawal")
    path.write_text(json.dumps(receipt_file(shown, jws, key_id(KEY.public_key()))))
    with pytest.raises(ReceiptInvalid, match="differs"):
        verify_receipt_file(path, PEM)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_any_single_character_change_fails(data: st.DataObject) -> None:
    jws = sign_receipt(receipt(), KEY)
    index = data.draw(st.integers(min_value=0, max_value=len(jws) - 1))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
    replacement = data.draw(st.sampled_from(alphabet).filter(lambda c: c != jws[index]))
    forged = jws[:index] + replacement + jws[index + 1 :]
    try:
        verify_receipt(forged, PEM)
    except ReceiptInvalid:
        return
    # base64url's last character can carry unused bits: only then may the bytes be equal.
    assert forged.split(".")[:2] == jws.split(".")[:2]
    assert base64.urlsafe_b64decode(forged.split(".")[2] + "==") == base64.urlsafe_b64decode(
        jws.split(".")[2] + "=="
    )


def test_every_status_is_a_dpv_consent_state() -> None:
    source = DPV_STATES / "dpv_modules_consent_status.ttl"
    if not source.exists():
        pytest.skip(f"{DPV_STATES} is absent: DPV 2.2 files not beside the project")
    text = source.read_text()
    for status in ConsentStatus:
        assert f"dpv:{status.value} a" in text, status
