"""Consent receipts: signed, verifiable offline; every change is caught and named.

The receipt is built, signed and verified with pure functions; the tampering tests alter
one thing each and expect the check that names it (``ReceiptInvalid.code``). The CLI is
driven through typer's CliRunner with ``fairtrain.consent.cli.app``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from fairtrain.audit.chain import canonical_json
from fairtrain.audit.keys import key_id, load_public_key_pem, public_key_pem
from fairtrain.config import reset_settings_cache
from fairtrain.consent.cli import app
from fairtrain.consent.receipts import (
    DPV,
    ConsentStatus,
    ReceiptInvalid,
    build_receipt,
    receipt_file,
    receipt_sha256,
    sign_receipt,
    verify_receipt,
    verify_receipt_file,
)

KEY = Ed25519PrivateKey.generate()
PEM = public_key_pem(KEY.public_key())
KID = key_id(KEY.public_key())
OTHER_KEY = Ed25519PrivateKey.generate()
DPV_DIR = Path(__file__).resolve().parents[4] / "shared" / "data" / "dpv-2.2"
ISSUED = datetime(2026, 11, 23, 9, 0, 0, 123456, tzinfo=UTC)

runner = CliRunner()


def make_receipt(**changes: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "subject_id": "user:usr_1",
        "subject_jurisdiction": "FR",
        "controller": {"name": "fairtrain", "url": "https://fairtrain.example"},
        "asset_ids": ["ast_1", "ast_2"],
        "policy_uid": "https://fairtrain.example/policies/pol_1",
        "policy_version": 2,
        "policy_sha256": "ab" * 32,
        "purposes": ["https://w3id.org/fairtrain/purpose#SpeechRecognition"],
        "prohibited": ["https://w3id.org/fairtrain/purpose#VoiceCloning"],
        "status": ConsentStatus.GIVEN,
        "event": "change",
        "issued_at": ISSUED,
        "expires_at": ISSUED + timedelta(days=365),
    }
    arguments.update(changes)
    return build_receipt(**arguments)


RECEIPT = make_receipt()
JWS = sign_receipt(RECEIPT, KEY)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def header_of(jws: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(unb64(jws.split(".")[0]))
    return decoded


def with_header(jws: str, **fields: Any) -> str:
    header = {**header_of(jws), **fields}
    _, payload, signature = jws.split(".")
    return ".".join([b64(json.dumps(header).encode()), payload, signature])


def signed_raw(payload: bytes, key: Ed25519PrivateKey = KEY, **header: Any) -> str:
    """A JWS over arbitrary payload bytes, correctly signed (for the payload checks)."""
    fields = {"alg": "EdDSA", "typ": "consent-receipt+jws", "kid": key_id(key.public_key())}
    signing_input = f"{b64(canonical_json({**fields, **header}))}.{b64(payload)}"
    return f"{signing_input}.{b64(key.sign(signing_input.encode()))}"


def reason(jws: str, pem: bytes = PEM) -> str:
    with pytest.raises(ReceiptInvalid) as caught:
        verify_receipt(jws, pem)
    assert caught.value.detail.endswith("."), "reasons are whole sentences"
    return caught.value.code


# --- building -------------------------------------------------------------------------


def test_a_receipt_carries_the_dpv_record_and_the_kantara_fields() -> None:
    receipt = RECEIPT
    assert receipt["@type"] == "dpv:ConsentRecord"
    assert receipt["@context"]["dpv"] == DPV
    assert receipt["id"].startswith("rcpt_") and len(receipt["id"]) > 25
    assert receipt["dpv:hasConsentStatus"] == "https://w3id.org/dpv#ConsentGiven"
    assert receipt["dpv:hasDataSubject"] == receipt["piiPrincipalId"] == "user:usr_1"
    assert receipt["dpv:isIndicatedAtTime"] == receipt["validFrom"] == "2026-11-23T09:00:00Z"
    assert receipt["validUntil"] == "2027-11-23T09:00:00Z"
    assert receipt["consentTimestamp"] == int(ISSUED.timestamp())
    assert receipt["consentReceiptID"] == receipt["id"]
    assert receipt["version"] == "KI-CR-v1.1.0"
    assert receipt["jurisdiction"] == receipt["dpv:hasJurisdiction"] == "FR"
    assert receipt["piiControllers"] == [
        {
            "piiController": "fairtrain",
            "onBehalf": False,
            "piiControllerUrl": "https://fairtrain.example",
        }
    ]
    assert receipt["policyUrl"] == receipt["policy"]["uid"]
    assert receipt["policy"] == {
        "uid": "https://fairtrain.example/policies/pol_1",
        "version": 2,
        "sha256": "ab" * 32,
    }
    assert receipt["assets"] == ["ast_1", "ast_2"]
    (service,) = receipt["services"]
    assert [p["purpose"] for p in service["purposes"]] == receipt["dpv:hasPurpose"]
    assert service["purposes"][0]["consentType"] == "EXPLICIT"
    assert receipt["sensitive"] is True and receipt["spiCat"] == []
    assert receipt["counterpartyOf"] is None


def test_every_receipt_has_a_new_id() -> None:
    assert len({make_receipt()["id"] for _ in range(50)}) == 50


def test_times_are_utc_with_z_whatever_the_offset() -> None:
    paris = ISSUED.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris"))
    receipt = make_receipt(issued_at=paris, expires_at=None)
    assert receipt["validFrom"] == "2026-11-23T09:00:00Z" and receipt["validUntil"] is None


def test_the_context_makes_it_json_ld_with_dpv_iris() -> None:
    from pyld import jsonld

    (node,) = jsonld.expand(RECEIPT)
    assert node["@type"] == ["https://w3id.org/dpv#ConsentRecord"]
    assert node["https://w3id.org/dpv#hasConsentStatus"] == [
        {"@id": "https://w3id.org/dpv#ConsentGiven"}
    ]
    assert "https://w3id.org/fairtrain/receipt#consentReceiptID" in node


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"issued_at": datetime(2026, 1, 1)}, "timezone-aware"),
        ({"event": "withdrawal"}, "withdrawal receipt must have the status"),
        ({"event": "pause"}, "pause"),
        ({"expires_at": ISSUED - timedelta(seconds=1)}, "expire before"),
        ({"controller": {"url": "https://x.example"}}, "needs a name"),
    ],
)
def test_inconsistent_receipts_are_not_built(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_receipt(**changes)


@pytest.mark.parametrize(
    ("event", "status"),
    [
        ("grant", ConsentStatus.GIVEN),
        ("renewal", ConsentStatus.RENEWED),
        ("withdrawal", ConsentStatus.WITHDRAWN),
        ("refusal", ConsentStatus.REFUSED),
    ],
)
def test_each_event_issues_a_verifiable_receipt(event: str, status: ConsentStatus) -> None:
    receipt = make_receipt(event=event, status=status, counterparty_of="ast_9")
    signed = verify_receipt(sign_receipt(receipt, KEY), PEM)
    assert signed["event"] == event and signed["dpv:hasConsentStatus"] == status.iri
    assert signed["counterpartyOf"] == "ast_9"


# --- signing and verifying --------------------------------------------------------------


def test_round_trip_returns_exactly_the_receipt() -> None:
    assert verify_receipt(JWS, PEM) == RECEIPT
    assert header_of(JWS) == {"alg": "EdDSA", "typ": "consent-receipt+jws", "kid": KID}
    assert unb64(JWS.split(".")[1]) == canonical_json(RECEIPT)
    assert "=" not in JWS


def test_the_audit_log_records_the_sha256_of_the_jws() -> None:
    assert receipt_sha256(JWS) == hashlib.sha256(JWS.encode()).hexdigest()
    assert len(receipt_sha256(JWS)) == 64


def _change_payload(jws: str) -> str:
    header, _, signature = jws.split(".")
    altered = dict(RECEIPT, **{"dpv:hasPurpose": ["https://w3id.org/dpv#Purpose"]})
    return ".".join([header, b64(canonical_json(altered)), signature])


def _flip_signature_bit(jws: str) -> str:
    header, payload, signature = jws.split(".")
    raw = bytearray(unb64(signature))
    raw[10] ^= 0x01
    return ".".join([header, payload, b64(bytes(raw))])


TAMPERING: dict[str, tuple[Callable[[str], str], str]] = {
    "payload field changed": (_change_payload, "receipt_signature"),
    "signature bit flipped": (_flip_signature_bit, "receipt_signature"),
    "alg none, no signature": (
        lambda j: with_header(j, alg="none").rsplit(".", 1)[0] + ".",
        "receipt_algorithm",
    ),
    "alg none, signature kept": (lambda j: with_header(j, alg="none"), "receipt_algorithm"),
    "alg HS256": (lambda j: with_header(j, alg="HS256"), "receipt_algorithm"),
    "alg missing": (lambda j: with_header(j, alg=None), "receipt_algorithm"),
    "kid swapped": (
        lambda j: with_header(j, kid=key_id(OTHER_KEY.public_key())),
        "receipt_wrong_key",
    ),
    "kid removed": (lambda j: with_header(j, kid=None), "receipt_wrong_key"),
    "typ changed": (lambda j: with_header(j, typ="JWT"), "receipt_malformed"),
    "crit added": (lambda j: with_header(j, crit=["exp"]), "receipt_malformed"),
    "two parts": (lambda j: j.rsplit(".", 1)[0], "receipt_malformed"),
    "four parts": (lambda j: j + ".AAAA", "receipt_malformed"),
    "padding added": (lambda j: j + "==", "receipt_malformed"),
    "not base64url": (lambda j: "!!" + j, "receipt_malformed"),
    "standard base64 alphabet": (
        lambda j: j[: j.rindex(".") + 1] + "+" + j[-85:],
        "receipt_malformed",
    ),
    "header not an object": (lambda j: b64(b"[1]") + j[j.index(".") :], "receipt_malformed"),
    "non-ASCII": (lambda j: j.replace("A", "\u0391", 1), "receipt_malformed"),
}


@pytest.mark.parametrize("name", TAMPERING)
def test_tampering_is_refused_with_the_right_reason(name: str) -> None:
    tamper, code = TAMPERING[name]
    forged = tamper(JWS)
    assert forged != JWS
    assert reason(forged) == code


def test_another_key_is_refused_by_its_id() -> None:
    assert reason(sign_receipt(RECEIPT, OTHER_KEY)) == "receipt_wrong_key"


def test_another_key_claiming_the_platform_kid_fails_the_signature() -> None:
    forged = signed_raw(canonical_json(RECEIPT), OTHER_KEY, kid=KID)
    assert reason(forged) == "receipt_signature"


@pytest.mark.parametrize(
    "payload",
    [
        json.dumps(RECEIPT, indent=2).encode(),  # signed, but not canonical
        b'{"a":1,"a":2}',  # duplicate keys
        b"[1,2]",  # not an object
        b"not json",
        b"\xff\xfe",
        b'{"n":NaN}',
    ],
)
def test_a_signed_payload_must_be_a_canonical_json_object(payload: bytes) -> None:
    assert reason(signed_raw(payload)) == "receipt_not_canonical"


@pytest.mark.parametrize(
    "pem",
    [
        b"not a key",
        generate_private_key(SECP256R1())
        .public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
    ],
)
def test_an_unusable_public_key_is_named(pem: bytes) -> None:
    assert reason(JWS, pem) == "public_key_invalid"


@settings(max_examples=300, deadline=None)
@given(index=st.integers(min_value=0, max_value=len(JWS) - 1), byte=st.integers(0, 255))
def test_any_single_byte_change_fails(index: int, byte: int) -> None:
    raw = bytearray(JWS.encode("ascii"))
    if raw[index] == byte:
        byte = (byte + 1) % 256
    raw[index] = byte
    with pytest.raises(ReceiptInvalid):
        verify_receipt(raw.decode("latin-1"), PEM)


# --- the receipt file -------------------------------------------------------------------


@pytest.fixture
def receipt_path(tmp_path: Path) -> Path:
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt_file(RECEIPT, JWS, KID), indent=2))
    return path


def edit(path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))
    return path


def file_reason(path: Path, pem: bytes = PEM) -> str:
    with pytest.raises(ReceiptInvalid) as caught:
        verify_receipt_file(path, pem)
    return caught.value.code


def test_a_downloaded_file_verifies(receipt_path: Path) -> None:
    assert verify_receipt_file(receipt_path, PEM) == RECEIPT


FILE_TAMPERING: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "receipt object changed": (
        lambda d: d["receipt"].update(event="withdrawal"),
        "receipt_mismatch",
    ),
    "receipt field added": (lambda d: d["receipt"].update(note="x"), "receipt_mismatch"),
    # In Python true == 1, so only a canonical comparison sees this change.
    "true became 1": (lambda d: d["receipt"].update(sensitive=1), "receipt_mismatch"),
    "receipt not an object": (lambda d: d.update(receipt="see jws"), "receipt_mismatch"),
    "jws payload changed": (lambda d: d.update(jws=_change_payload(d["jws"])), "receipt_signature"),
    "jws re-signed by another key": (
        lambda d: d.update(jws=sign_receipt(RECEIPT, OTHER_KEY)),
        "receipt_wrong_key",
    ),
    "public_key_id swapped": (
        lambda d: d.update(public_key_id=key_id(OTHER_KEY.public_key())),
        "receipt_wrong_key",
    ),
    "jws missing": (lambda d: d.pop("jws"), "receipt_malformed"),
    "receipt missing": (lambda d: d.pop("receipt"), "receipt_malformed"),
    "jws not a string": (lambda d: d.update(jws=["x"]), "receipt_malformed"),
}


@pytest.mark.parametrize("name", FILE_TAMPERING)
def test_changing_either_half_of_the_file_fails(receipt_path: Path, name: str) -> None:
    change, code = FILE_TAMPERING[name]
    assert file_reason(edit(receipt_path, change)) == code


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"{not json", "receipt_unreadable"),
        (b"\xff\xfe\x00", "receipt_unreadable"),
        (b"[]", "receipt_malformed"),
        (b'{"receipt": {}, "receipt": {}, "jws": ""}', "receipt_malformed"),
    ],
)
def test_broken_files_are_named(tmp_path: Path, content: bytes, code: str) -> None:
    path = tmp_path / "r.json"
    path.write_bytes(content)
    assert file_reason(path) == code


def test_a_missing_file_is_unreadable(tmp_path: Path) -> None:
    assert file_reason(tmp_path / "absent.json") == "receipt_unreadable"


# --- DPV ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dpv_states() -> dict[str, str]:
    """DPV 2.2's consent states: local name -> the category it is ``skos:broader`` of."""
    source = DPV_DIR / "dpv_modules_consent_status.ttl"
    if not DPV_DIR.is_dir():
        pytest.skip(f"the DPV 2.2 Turtle files are not at {DPV_DIR}; cannot check the IRIs")
    from rdflib import Graph, Namespace
    from rdflib.namespace import RDF, SKOS

    dpv = Namespace(DPV)
    graph = Graph().parse(source, format="turtle")
    categories = {dpv.ConsentStatusValidForProcessing, dpv.ConsentStatusInvalidForProcessing}
    return {
        str(state).removeprefix(DPV): str(broader).removeprefix(DPV)
        for state in graph.subjects(RDF.type, dpv.ConsentStatus)
        for broader in graph.objects(state, SKOS.broader)
        if broader in categories
    }


def test_every_status_is_a_dpv_consent_state_and_every_state_is_covered(
    dpv_states: dict[str, str],
) -> None:
    assert {status.value for status in ConsentStatus} == set(dpv_states)
    for status in ConsentStatus:
        assert status.iri == DPV + status.value
        valid = dpv_states[status.value] == "ConsentStatusValidForProcessing"
        assert status.valid_for_processing is valid, status


# --- the CLI --------------------------------------------------------------------------


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    path = tmp_path / "platform.pem"
    path.write_bytes(PEM)
    return path


def verify_cli(receipt: Path, key: Path, *extra: str) -> Any:
    return runner.invoke(app, ["verify-receipt", str(receipt), "--public-key", str(key), *extra])


def test_cli_verifies_a_receipt(receipt_path: Path, key_path: Path) -> None:
    result = verify_cli(receipt_path, key_path)
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"OK: receipt {RECEIPT['id']} (ConsentGiven) for 2 asset(s), signed by key {KID}\n"
    )


def test_cli_json(receipt_path: Path, key_path: Path) -> None:
    result = verify_cli(receipt_path, key_path, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "ok": True,
        "receipt_id": RECEIPT["id"],
        "status": "ConsentGiven",
        "event": "change",
        "assets": 2,
        "key_id": KID,
    }


def test_cli_names_the_reason_and_exits_1(receipt_path: Path, key_path: Path) -> None:
    edit(receipt_path, lambda d: d["receipt"].update(assets=["ast_1"]))
    result = verify_cli(receipt_path, key_path)
    assert result.exit_code == 1
    assert result.stderr.startswith("INVALID: The readable receipt in the file differs")
    result = verify_cli(receipt_path, key_path, "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["code"] == "receipt_mismatch"


def test_cli_refuses_another_platforms_key(receipt_path: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.pem"
    other.write_bytes(public_key_pem(OTHER_KEY.public_key()))
    result = verify_cli(receipt_path, other)
    assert result.exit_code == 1 and "another key" in result.stderr


def test_cli_exits_2_for_what_it_cannot_read(
    receipt_path: Path, key_path: Path, tmp_path: Path
) -> None:
    missing = verify_cli(tmp_path / "absent.json", key_path)
    assert missing.exit_code == 2 and missing.stderr.startswith("ERROR: The receipt file")
    no_key = verify_cli(receipt_path, tmp_path / "absent.pem")
    assert no_key.exit_code == 2 and no_key.stderr.startswith("ERROR: Cannot read")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("hello")
    bad_key = verify_cli(receipt_path, garbage)
    assert bad_key.exit_code == 2 and "not a PEM Ed25519 public key" in bad_key.stderr
    not_json = tmp_path / "not.json"
    not_json.write_text("{")
    assert verify_cli(not_json, key_path).exit_code == 2


@pytest.fixture
def dev_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("FAIRTRAIN_MODE", "dev")
    monkeypatch.setenv("FAIRTRAIN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("FAIRTRAIN_SIGNING_KEY_PATH", raising=False)
    reset_settings_cache()
    yield tmp_path / "data"
    reset_settings_cache()


def test_cli_prints_the_platform_public_key(dev_settings: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["public-key"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("-----BEGIN PUBLIC KEY-----")
    printed = load_public_key_pem(result.stdout.encode())
    assert (dev_settings / "keys" / "platform-ed25519.pem").is_file()
    as_json = json.loads(runner.invoke(app, ["public-key", "--json"]).stdout)
    assert as_json == {"key_id": key_id(printed), "public_key_pem": result.stdout}

    # The printed key is the one that verifies the platform's receipts.
    from fairtrain.audit.keys import load_signing_key

    platform = load_signing_key(dev_settings / "keys" / "platform-ed25519.pem")
    (tmp_path / "k.pem").write_text(result.stdout)
    path = tmp_path / "r.json"
    jws = sign_receipt(RECEIPT, platform)
    path.write_text(json.dumps(receipt_file(RECEIPT, jws, key_id(printed))))
    assert verify_cli(path, tmp_path / "k.pem").exit_code == 0


def test_cli_public_key_refuses_without_a_key_in_production(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAIRTRAIN_MODE", "production")
    monkeypatch.setenv("FAIRTRAIN_SIGNING_KEY_PATH", str(tmp_path / "absent.pem"))
    reset_settings_cache()
    try:
        result = runner.invoke(app, ["public-key"])
    finally:
        reset_settings_cache()
    assert result.exit_code == 2
    assert "does not exist" in result.stderr
    assert not (tmp_path / "absent.pem").exists()
