"""Terms end to end through HTTP: defaults at approval, templates, custom ODRL documents,
versions, bulk changes, evaluation, and bad input refused with the offending path."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy.orm import Session
from tests.factories import Actor, sign_up_contributor
from tests.functional.traces import assert_no_trace
from tests.media_factory import png_bytes

from fairtrain.audit.service import verify_stored_chain

CONTEXT = "http://www.w3.org/ns/odrl.jsonld"


@pytest.fixture
def ada(make_client: Any) -> Actor:
    return sign_up_contributor(make_client(), name="Ada Terms")


def _asset(actor: Actor, seed: int = 1) -> str:
    response = actor.client.post(
        "/api/v1/uploads",
        content=png_bytes(seed=seed),
        params={"filename": "p.png"},
        headers=actor.headers(),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _put(actor: Actor, asset_id: str, body: dict[str, Any]) -> Any:
    return actor.client.put(f"/api/v1/assets/{asset_id}/policy", json=body, headers=actor.headers())


def _policy(*rules: dict[str, Any], **extra: Any) -> dict[str, Any]:
    document: dict[str, Any] = {"@context": CONTEXT, "uid": "https://ex.org/p", "type": "Set"}
    for rule in rules:
        kind = rule.pop("kind")
        document.setdefault(kind, []).append(rule)
    document.update(extra)
    return document


def _purpose(iri: str, operator: str = "isA") -> dict[str, Any]:
    return {"leftOperand": "purpose", "operator": operator, "rightOperand": iri}


def _pay(amount: str, currency: str = "EUR") -> dict[str, Any]:
    return {
        "action": "compensate",
        "constraint": [
            {"leftOperand": "payAmount", "operator": "eq", "rightOperand": amount, "unit": currency}
        ],
    }


def test_approval_gives_the_protective_default_terms(ada: Actor) -> None:
    asset_id = _asset(ada)
    missing = ada.client.get(f"/api/v1/assets/{asset_id}/policy")
    assert missing.status_code == 404 and missing.json()["code"] == "policy_not_found"
    approved = ada.client.post(f"/api/v1/assets/{asset_id}/approve", headers=ada.headers())
    assert approved.status_code == 200, approved.text
    policy = ada.client.get(f"/api/v1/assets/{asset_id}/policy").json()
    assert policy["version"] == 1 and policy["template"] == "default"
    summary = policy["summary"]
    assert summary["permitted"] == ["research_and_development"]
    assert set(summary["prohibited"]) == {
        "voice_cloning",
        "face_recognition",
        "biometric_identification",
        "synthetic_likeness",
        "emotion_recognition",
        "political_campaigning",
        "surveillance",
    }
    assert summary["term_days"] == 365 and summary["exclusive"] is False
    assert summary["sublicensing"] is False
    assert (summary["price_minor"], summary["currency"]) == (100, "EUR")
    document = policy["document"]
    assert document["target"].endswith(f"/assets/{asset_id}")
    assert document["uid"].endswith(f"/policies/{policy['id']}")


def test_a_change_is_a_new_version_and_the_old_one_is_kept(ada: Actor, db: Session) -> None:
    asset_id = _asset(ada)
    first = _put(ada, asset_id, {"template": "default"})
    assert first.status_code == 200, first.text
    second = _put(
        ada, asset_id, {"template": "commercial_training", "price_minor": 250, "currency": "eur"}
    )
    assert second.status_code == 200, second.text
    assert second.json()["version"] == 2
    assert second.json()["summary"]["price_minor"] == 250
    versions = ada.client.get(f"/api/v1/assets/{asset_id}/policy/versions").json()
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[1]["superseded_at"] is not None and versions[0]["superseded_at"] is None
    assert verify_stored_chain(db) == (True, None, None)


def test_a_custom_odrl_policy_is_accepted_and_retargeted(ada: Actor) -> None:
    asset_id = _asset(ada)
    document = _policy(
        {
            "kind": "permission",
            "action": "use",
            "constraint": [
                _purpose("https://w3id.org/dpv/ai#SpeechRecognition"),
                {"leftOperand": "spatial", "operator": "isAnyOf", "rightOperand": ["EU"]},
            ],
            "duty": [_pay("0.75")],
        },
        {"kind": "prohibition", "action": "use", "constraint": [_purpose("dpv:Advertising")]},
    )
    response = _put(ada, asset_id, {"policy": document})
    assert response.status_code == 200, response.text
    summary = response.json()["summary"]
    assert summary["permitted"] == ["speech_recognition"]
    assert summary["prohibited"] == ["advertising"]
    assert "DE" in summary["territories"] and "US" not in summary["territories"]
    assert summary["price_minor"] == 75
    assert response.json()["document"]["uid"] != "https://ex.org/p"


BAD = [
    ("not-json-ld", {"policy": {"@context": "https://evil.example/ctx", "uid": "x"}},
     "invalid_jsonld", "@context"),
    ("unknown-purpose",
     {"policy": _policy({"kind": "permission", "action": "use",
                         "constraint": [_purpose("https://example.org/MindReading")]})},
     "unknown_purpose", None),
    ("contradiction",
     {"policy": _policy({"kind": "permission", "action": "use",
                         "constraint": [_purpose("dpv:AcademicResearch")]},
                        {"kind": "prohibition", "action": "use",
                         "constraint": [_purpose("dpv:AcademicResearch")]})},
     "contradictory_rules", "prohibition[0].constraint[0]"),
    ("price-below-minimum",
     {"policy": _policy({"kind": "permission", "action": "use",
                         "constraint": [_purpose("dpv:AcademicResearch")],
                         "duty": [_pay("0.00")]})},
     "price_below_minimum", "permission[0].duty[0].constraint[0]"),
    ("sub-cent-price",
     {"policy": _policy({"kind": "permission", "action": "use",
                         "constraint": [_purpose("dpv:AcademicResearch")],
                         "duty": [_pay("0.001")]})},
     "invalid_policy", "permission[0].duty[0].constraint[0]"),
    ("term-in-past",
     {"policy": _policy({"kind": "permission", "action": "use",
                         "constraint": [{"leftOperand": "dateTime", "operator": "lt",
                                         "rightOperand": "2001-01-01T00:00:00Z"}]})},
     "term_in_past", "permission[0].constraint[0]"),
    ("unknown-template", {"template": "everything_free"}, "unknown_template", None),
    ("both", {"template": "default", "policy": _policy(
        {"kind": "permission", "action": "use"})}, "invalid_policy", None),
]  # fmt: skip


@pytest.mark.parametrize(("name", "body", "code", "pointer"), BAD, ids=[b[0] for b in BAD])
def test_bad_terms_are_refused_with_the_path_and_change_nothing(
    ada: Actor, app: Any, db: Session, name: str, body: dict[str, Any], code: str, pointer: str
) -> None:
    asset_id = _asset(ada)
    assert _put(ada, asset_id, {"template": "default"}).status_code == 200
    response = _put(ada, asset_id, body)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == code, problem
    assert problem["detail"]
    if pointer:
        assert problem.get("pointer") == pointer, problem
    versions = ada.client.get(f"/api/v1/assets/{asset_id}/policy/versions").json()
    assert [v["version"] for v in versions] == [1]
    assert_no_trace(app, db)


def test_bulk_terms_apply_to_every_asset_or_none(ada: Actor, make_client: Any) -> None:
    ids = [_asset(ada, seed) for seed in (1, 2, 3)]
    response = ada.client.put(
        "/api/v1/me/policy", json={"template": "research_only"}, headers=ada.headers()
    )
    assert response.status_code == 200, response.text
    assert sorted(p["asset_id"] for p in response.json()) == sorted(ids)
    other = sign_up_contributor(make_client(), name="Someone Else")
    foreign = _asset(other)
    refused = ada.client.put(
        "/api/v1/me/policy",
        json={"template": "default", "asset_ids": [ids[0], foreign]},
        headers=ada.headers(),
    )
    assert refused.status_code == 422 and refused.json()["code"] == "asset_not_found"
    policy = ada.client.get(f"/api/v1/assets/{ids[0]}/policy").json()
    assert policy["template"] == "research_only"  # nothing changed


def test_evaluation_names_the_deciding_rule(make_client: Any) -> None:
    client = make_client()
    document = _policy(
        {
            "kind": "permission",
            "action": "use",
            "constraint": [_purpose("ftp:ModelTraining")],
            "duty": [_pay("1.00")],
        },
        {"kind": "prohibition", "action": "use", "constraint": [_purpose("ftp:VoiceCloning")]},
    )

    def ask(**request: Any) -> dict[str, Any]:
        response = client.post(
            "/api/v1/policies/evaluate", json={"policy": document, "request": request}
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    permitted = ask(purpose="speech_recognition", pay_amount="1.00", currency="EUR")
    assert permitted["outcome"] == "permit" and permitted["rule_path"] == "permission[0]"
    cloning = ask(purpose="voice_cloning", pay_amount="5.00", currency="EUR")
    assert cloning["outcome"] == "deny" and cloning["rule_path"] == "prohibition[0]"
    broad = ask(purpose="model_training", pay_amount="1.00", currency="EUR")
    assert broad["outcome"] == "deny" and "narrower purpose" in broad["reason"]
    cheap = ask(purpose="speech_recognition", pay_amount="0.50", currency="EUR")
    assert cheap["outcome"] == "deny" and "compensate" in cheap["reason"]
    other = ask(purpose="advertising", pay_amount="1.00", currency="EUR")
    assert other["outcome"] == "deny"
    unknown = client.post(
        "/api/v1/policies/evaluate",
        json={"policy": document, "request": {"purpose": "mind_reading"}},
    )
    assert unknown.status_code == 422 and unknown.json()["code"] == "unknown_purpose"


def test_every_grant_and_change_gives_a_receipt_that_verifies_offline(
    ada: Actor, make_client: Any, tmp_path: Any, db: Session
) -> None:
    from typer.testing import CliRunner

    from fairtrain.cli import app as cli

    asset_id = _asset(ada)
    assert ada.client.post(f"/api/v1/assets/{asset_id}/approve", headers=ada.headers()).is_success
    assert _put(ada, asset_id, {"template": "research_only"}).status_code == 200
    receipts = ada.client.get("/api/v1/me/receipts").json()
    assert [(r["event"], r["status"]) for r in receipts] == [
        ("change", "ConsentGiven"),
        ("grant", "ConsentGiven"),
    ]
    download = ada.client.get(f"/api/v1/receipts/{receipts[0]['id']}")
    assert download.status_code == 200
    assert download.json()["receipt"]["policy"]["version"] == 2
    key = ada.client.get("/api/v1/signing-key")
    assert key.text.startswith("-----BEGIN PUBLIC KEY-----")
    (tmp_path / "key.pem").write_text(key.text)
    (tmp_path / "r.json").write_bytes(download.content)
    runner = CliRunner()
    ok = runner.invoke(
        cli, ["consent", "verify-receipt", str(tmp_path / "r.json"), "--public-key",
              str(tmp_path / "key.pem")],
    )  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert "OK: receipt" in ok.output and "ConsentGiven" in ok.output
    forged = download.json()
    forged["receipt"]["dpv:hasPurpose"] = ["https://w3id.org/dpv#Purpose"]
    (tmp_path / "forged.json").write_text(__import__("json").dumps(forged))
    bad = runner.invoke(
        cli, ["consent", "verify-receipt", str(tmp_path / "forged.json"), "--public-key",
              str(tmp_path / "key.pem")],
    )  # fmt: skip
    assert bad.exit_code == 1 and "INVALID" in bad.output
    other = sign_up_contributor(make_client(), name="Not Yours")
    assert other.client.get(f"/api/v1/receipts/{receipts[0]['id']}").status_code == 404
    assert verify_stored_chain(db) == (True, None, None)


def test_the_cli_evaluates_and_explains_a_policy_file(tmp_path: Any) -> None:
    import json

    from typer.testing import CliRunner

    from fairtrain.cli import app as cli

    document = _policy(
        {"kind": "permission", "action": "use", "constraint": [_purpose("ftp:ModelTraining")],
         "duty": [_pay("1.00")]},
        {"kind": "prohibition", "action": "use", "constraint": [_purpose("ftp:VoiceCloning")]},
    )  # fmt: skip
    path = tmp_path / "policy.jsonld"
    path.write_text(json.dumps(document))
    runner = CliRunner()
    permit = runner.invoke(
        cli, ["consent", "evaluate", str(path), "--purpose", "speech_recognition",
              "--price", "1.00", "--currency", "EUR"],
    )  # fmt: skip
    assert permit.exit_code == 0 and "PERMIT" in permit.output, permit.output
    deny = runner.invoke(cli, ["consent", "evaluate", str(path), "--purpose", "voice_cloning"])
    assert deny.exit_code == 1 and "prohibition[0]" in deny.output, deny.output
    unknown = runner.invoke(cli, ["consent", "evaluate", str(path), "--purpose", "telepathy"])
    assert unknown.exit_code == 2 and "unknown_purpose" in unknown.output
    explained = runner.invoke(cli, ["consent", "explain", str(path), "--modality", "audio"])
    assert explained.exit_code == 0
    assert "Buyers may use it to train AI models." in explained.output
    # Voice cloning is prohibited, which also closes speech synthesis: no voice-copy note.
    assert "copy a voice" not in explained.output
    assert "cannot forget what it has learned" in explained.output
    (tmp_path / "bad.jsonld").write_text("{not json")
    broken = runner.invoke(cli, ["consent", "evaluate", str(tmp_path / "bad.jsonld"),
                                 "--purpose", "any"])  # fmt: skip
    assert broken.exit_code == 2 and "invalid_jsonld" in broken.output


def test_jurisdiction_rules_add_a_step_or_forbid_terms(make_client: Any) -> None:
    from tests.factories import sign_up_contributor as sign_up

    eu = sign_up(make_client(), name="Eva Terms", jurisdiction="FR")
    asset_id = _asset(eu)
    refused = _put(eu, asset_id, {"template": "open_attribution"})  # allows face recognition
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "explicit_consent_required"
    assert refused.json()["pointer"] == "explicit_biometric_consent"
    given = _put(eu, asset_id, {"template": "open_attribution", "explicit_biometric_consent": True})
    assert given.status_code == 200, given.text
    receipt_id = eu.client.get("/api/v1/me/receipts").json()[0]["id"]
    receipt = eu.client.get(f"/api/v1/receipts/{receipt_id}").json()["receipt"]
    assert "https://w3id.org/dpv/pd#Biometric" in json.dumps(receipt)
    illinois = sign_up(make_client(), name="Ian Terms", jurisdiction="US-IL")
    other = _asset(illinois, seed=4)
    forbidden = _put(
        illinois, other, {"template": "open_attribution", "explicit_biometric_consent": True}
    )
    assert forbidden.status_code == 422 and forbidden.json()["code"] == "forbidden_in_jurisdiction"
    assert _put(illinois, other, {"template": "default"}).status_code == 200


def test_sign_up_age_follows_the_jurisdiction(make_client: Any) -> None:
    client = make_client()
    body = {
        "email": "young-al@example.org",
        "password": "correct horse battery staple 42!",
        "display_name": "Young Al",
        "date_of_birth": "2008-01-01",  # 18 in 2026, not yet 19
        "adult_attestation": True,
        "jurisdiction": "US-AL",
    }
    refused = client.post("/api/v1/accounts/contributors", json=body)
    assert refused.status_code == 422 and refused.json()["code"] == "under_age"
    assert "19" in refused.json()["detail"]
    accepted = client.post("/api/v1/accounts/contributors", json=body | {"jurisdiction": "US-CA"})
    assert accepted.status_code == 201, accepted.text
