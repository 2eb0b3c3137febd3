"""Consent that ends: terms with an end date expire (a receipt, an audit event, the asset
out of the catalogue), a contributor renews them before or after, and the main terms are
edited field by field for one asset or many. Licences already granted keep theirs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from tests.factories import Actor, list_asset, sign_up_buyer, sign_up_contributor, sign_up_staff
from tests.functional.marketplace_world import BALANCED, Market
from tests.media_factory import png_bytes

from fairtrain.audit.models import AuditEvent
from fairtrain.audit.service import verify_stored_chain
from fairtrain.catalog.models import CatalogEntry
from fairtrain.consent import service as consent
from fairtrain.consent.models import AssetPolicy
from fairtrain.consent.templates import PROTECTED
from fairtrain.ids import utcnow
from fairtrain.licensing.models import LicenceItem

MAIN = {
    "allowed": ["academic_research", "model_training"],
    "prohibited": list(PROTECTED),
    "territories": ["DE", "fr"],
    "term_months": 6,
    "price_minor": 250,
    "currency": "EUR",
    "attribution": True,
}


@pytest.fixture
def ada(make_client: Any) -> Actor:
    return sign_up_contributor(make_client(), name="Ada Ends")


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _ends(days: float) -> str:
    return (utcnow() + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _listed(actor: Actor, seed: int = 1, **terms: Any) -> str:
    body = {"terms": MAIN | terms}
    return list_asset(actor, png_bytes(seed=seed), f"p{seed}.png", terms=body)


def _time_passes(db: Session, asset_id: str) -> None:
    """The end date is now behind us (as if the calendar moved on)."""
    past = utcnow() - timedelta(minutes=5)
    db.execute(update(AssetPolicy).where(AssetPolicy.asset_id == asset_id,
                                         AssetPolicy.superseded_at.is_(None))
               .values(not_after=past))  # fmt: skip
    db.commit()


def test_the_main_terms_are_edited_field_by_field(ada: Actor) -> None:
    asset_id = _listed(ada)
    policy = _ok(ada.client.get(f"/api/v1/assets/{asset_id}/policy"))
    assert policy["version"] == 2 and policy["template"] is None
    summary = policy["summary"]
    assert summary["permitted"] == ["academic_research", "model_training"]
    assert set(summary["prohibited"]) == set(PROTECTED)
    assert summary["territories"] == ["DE", "FR"]
    assert summary["term_days"] == 182
    assert summary["price_minor"] == 250 and summary["currency"] == "EUR"
    assert summary["exclusive"] is False and summary["sublicensing"] is False
    assert policy["status"] == "ConsentGiven" and summary["not_after"] is None
    assert "They must name you as the source." in policy["explanation"]


@pytest.mark.parametrize(
    ("terms", "code", "pointer"),
    [
        ({"allowed": ["academic_research"], "prohibited": ["academic_research"]},
         "contradictory_rules", "prohibited"),
        ({"allowed": ["no_such_purpose"]}, "unknown_purpose", "allowed"),
        ({"price_minor": 0, "attribution": False}, "invalid_policy", "price"),
        ({"ends_at": "2020-01-01T00:00:00Z"}, "term_in_past", None),
        ({"territories": ["XYZ"]}, "invalid_policy", "territories"),
        ({"currency": "XXX"}, "unknown_currency", "terms.currency"),
    ],
)  # fmt: skip
def test_bad_main_terms_are_refused_with_the_field(
    ada: Actor, terms: dict[str, Any], code: str, pointer: str | None
) -> None:
    asset_id = _listed(ada)
    response = ada.client.put(f"/api/v1/assets/{asset_id}/policy",
                              json={"terms": MAIN | terms}, headers=ada.headers())  # fmt: skip
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == code and problem["detail"], problem
    if pointer:
        assert problem["pointer"] == pointer
    versions = _ok(ada.client.get(f"/api/v1/assets/{asset_id}/policy/versions"))
    assert len(versions) == 2  # nothing half-written


def test_bulk_main_terms_change_the_chosen_assets_only(ada: Actor) -> None:
    ids = [_listed(ada, seed) for seed in (1, 2, 3)]
    chosen = ids[:2]
    changed = _ok(ada.client.put(
        "/api/v1/me/policy",
        json={"terms": MAIN | {"allowed": ["any"], "price_minor": 0}, "asset_ids": chosen},
        headers=ada.headers(),
    ))  # fmt: skip
    assert sorted(p["asset_id"] for p in changed) == sorted(chosen)
    assert all(p["summary"]["permitted"] == ["any"] for p in changed)
    untouched = _ok(ada.client.get(f"/api/v1/assets/{ids[2]}/policy"))
    assert untouched["version"] == 2 and untouched["summary"]["price_minor"] == 250


def test_ended_consent_expires_with_a_receipt_and_leaves_the_catalogue(
    ada: Actor, make_client: Any, app: Any, db: Session
) -> None:
    buyer = sign_up_buyer(make_client())
    asset_id = _listed(ada, ends_at=_ends(30))
    keep = _listed(ada, 2, ends_at=_ends(300))
    seen = _ok(buyer.client.get("/api/v1/catalog"))
    assert {i["id"] for i in seen["items"]} == {asset_id, keep}
    _time_passes(db, asset_id)

    settings = app.state.settings
    ended = consent.expire_policies(db, settings, actor="system:test")
    assert [r.asset_id for r in ended] == [asset_id]
    assert consent.expire_policies(db, settings, actor="system:test") == []  # idempotent
    db.commit()

    policy = _ok(ada.client.get(f"/api/v1/assets/{asset_id}/policy"))
    assert policy["status"] == "ConsentExpired" and policy["expired_at"] is not None
    assert policy["version"] == 2  # the same version, now expired: no new terms
    assert db.get(CatalogEntry, asset_id) is None
    seen = _ok(buyer.client.get("/api/v1/catalog"))
    assert {i["id"] for i in seen["items"]} == {keep}
    receipts = _ok(ada.client.get("/api/v1/me/receipts"))
    latest = receipts[0]
    assert (latest["event"], latest["status"], latest["asset_id"]) == (
        "expiry", "ConsentExpired", asset_id,
    )  # fmt: skip
    assert latest["valid_until"] is None
    signed = _ok(ada.client.get(f"/api/v1/receipts/{latest['id']}"))
    assert signed["receipt"]["dpv:hasConsentStatus"] == "https://w3id.org/dpv#ConsentExpired"
    assert signed["receipt"]["dpv:isIndicatedBy"] == "system"
    events = db.scalars(select(AuditEvent).where(AuditEvent.action == "consent.policy_expired"))
    assert [e.subject for e in events] == [f"asset:{asset_id}"]
    issued = db.scalars(select(AuditEvent).where(AuditEvent.subject == f"receipt:{latest['id']}"))
    assert [e.payload["sha256"] for e in issued] == [latest["sha256"]]
    assert verify_stored_chain(db) == (True, None, None)


def test_renewal_after_expiry_lists_the_asset_again(
    ada: Actor, make_client: Any, app: Any, db: Session
) -> None:
    buyer = sign_up_buyer(make_client())
    asset_id = _listed(ada, ends_at=_ends(10))
    _time_passes(db, asset_id)
    consent.expire_policies(db, app.state.settings, actor="system:test")
    db.commit()
    page = ada.client.get(f"/assets/{asset_id}").text
    assert "Your consent ended on" in page and "not offered for new licences" in page
    assert "expiry" in page and "ConsentExpired" in page  # the receipts table
    listing = ada.client.get("/assets").text
    assert "version 2, expired" in listing
    until = _ends(400)
    renewed = _ok(ada.client.post(f"/api/v1/assets/{asset_id}/policy/renew",
                                  json={"until": until}, headers=ada.headers()))  # fmt: skip
    assert renewed["version"] == 3 and renewed["status"] == "RenewedConsentGiven"
    assert renewed["summary"]["not_after"].startswith(until[:16])
    # Everything else is as it was.
    before = _ok(ada.client.get(f"/api/v1/assets/{asset_id}/policy/versions"))[1]
    for field in ("permitted", "prohibited", "territories", "term_days", "price_minor"):
        assert renewed["summary"][field] == before["summary"][field], field
    assert before["status"] == "ConsentExpired"
    seen = _ok(buyer.client.get("/api/v1/catalog"))
    assert asset_id in {i["id"] for i in seen["items"]}
    receipt = _ok(ada.client.get("/api/v1/me/receipts"))[0]
    assert (receipt["event"], receipt["status"]) == ("renewal", "RenewedConsentGiven")
    assert receipt["valid_until"] == until
    assert verify_stored_chain(db) == (True, None, None)


def test_renewal_before_expiry_and_what_cannot_be_renewed(ada: Actor) -> None:
    asset_id = _listed(ada, ends_at=_ends(30))
    url = f"/api/v1/assets/{asset_id}/policy/renew"
    early = ada.client.post(url, json={"until": _ends(20)}, headers=ada.headers())
    assert early.status_code == 422 and early.json()["code"] == "renewal_not_later"
    renewed = _ok(ada.client.post(url, json={"until": _ends(90)}, headers=ada.headers()))
    assert renewed["status"] == "RenewedConsentGiven" and renewed["version"] == 3
    open_ended = _listed(ada, 2)
    refused = ada.client.post(f"/api/v1/assets/{open_ended}/policy/renew",
                              json={"until": _ends(90)}, headers=ada.headers())  # fmt: skip
    assert refused.status_code == 409 and refused.json()["code"] == "policy_open_ended"
    naive = ada.client.post(url, json={"until": "not a date"}, headers=ada.headers())
    assert naive.status_code == 422


def test_expiry_by_the_cli_and_the_timer_use_the_same_service(app: Any) -> None:
    from fairtrain.config import Settings
    from fairtrain.consent.expiry import expiry_task

    settings: Settings = app.state.settings
    assert expiry_task(settings.model_copy(update={"consent_expiry_every_seconds": 0}),
                       app.state.sessions) is None  # fmt: skip
    task = expiry_task(settings, app.state.sessions)
    assert task is not None and task.every == settings.consent_expiry_every_seconds
    assert task.run_once() == []


def test_the_expiry_moment_is_utc(ada: Actor, db: Session) -> None:
    ends = datetime.now(UTC) + timedelta(days=3)
    asset_id = _listed(ada, ends_at=ends.replace(tzinfo=None).isoformat())
    record = consent.current_policy(db, asset_id)
    assert record is not None and record.not_after is not None
    assert abs((record.not_after - ends).total_seconds()) < 1


def test_a_licence_keeps_its_terms_when_the_consent_behind_it_expires(
    market: Market, make_client: Any, db: Session, app: Any
) -> None:
    operator = sign_up_staff(make_client(), db, app.state.passwords, "operator")
    buyer = market.buyer
    owner = market.contributors[0]
    group = market.by_group["25-34|woman"]  # all this contributor's recordings
    # Terms that still allow the buyer's year of speech recognition, ending in 400 days.
    _ok(owner.client.put("/api/v1/me/policy", headers=owner.headers(),
                         json={"asset_ids": group,
                               "terms": MAIN | {"allowed": ["model_training"],
                                                "territories": [], "term_months": 12,
                                                "ends_at": _ends(400)}}))  # fmt: skip
    dataset = _ok(buyer.client.post("/api/v1/datasets", json=BALANCED, headers=buyer.headers()),
                  201)  # fmt: skip
    version = dataset["latest_version"]["id"]
    items = _ok(buyer.client.get(f"/api/v1/dataset-versions/{version}/items"))
    mine = next(i["asset_id"] for i in items if i["asset_id"] in group)
    quote = _ok(buyer.client.post(f"/api/v1/dataset-versions/{version}/quotes",
                                  headers=buyer.headers()), 201)  # fmt: skip
    order = _ok(buyer.client.post(f"/api/v1/quotes/{quote['id']}/orders",
                                  headers=buyer.headers() | {"Idempotency-Key": "exp-0001"}),
                201)  # fmt: skip
    licence = _ok(operator.client.post(f"/api/v1/orders/{order['id']}/confirm-payment",
                                       json={"reference": order["invoice_number"]},
                                       headers=operator.headers()))  # fmt: skip
    granted = consent.current_policy(db, mine)
    assert granted is not None
    _time_passes(db, mine)
    consent.expire_policies(db, app.state.settings, actor="system:test")
    db.commit()

    after = _ok(buyer.client.get(f"/api/v1/licences/{licence['id']}"))
    assert after["state"] == "active" and after["ends_at"] == licence["ends_at"]
    assert after["agreement_sha256"] == licence["agreement_sha256"]
    item = db.scalars(
        select(LicenceItem).where(
            LicenceItem.licence_id == licence["id"], LicenceItem.asset_id == mine
        )
    ).one()
    assert item.policy_id == granted.id  # the version it was granted under, unchanged
    # No new licence: a rebuilt dataset leaves the asset out, the old version is stale.
    rebuilt = _ok(buyer.client.post(f"/api/v1/datasets/{dataset['id']}/versions",
                                    headers=buyer.headers()))  # fmt: skip
    fresh = _ok(buyer.client.get(f"/api/v1/dataset-versions/{rebuilt['id']}/items"))
    assert mine not in {i["asset_id"] for i in fresh}
    assert verify_stored_chain(db) == (True, None, None)
