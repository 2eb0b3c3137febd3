"""Campaigns through HTTP: a buyer asks, contributors see what they may answer with, their
own terms decide, the quota is never overfilled, deadlines hold, and a dataset is built
from what was accepted at the campaign's price."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session
from tests.factories import Actor, list_asset, share_profile, sign_up_buyer, sign_up_contributor
from tests.media_factory import png_bytes

from fairtrain.audit.service import verify_stored_chain


def _deadline(days: int = 30) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


SIGNS = {
    "title": "Photos of street signs",
    "description": "Street signs in daylight, any city.",
    "modality": "image",
    "purpose": "fine_tuning",
    "territory": "DE",
    "term_days": 365,
    "currency": "EUR",
    "price_per_unit_minor": 250,
    "target_units": 2,
}


@pytest.fixture
def buyer(make_client: Any) -> Actor:
    return sign_up_buyer(make_client(), org_name="Sign Readers")


def _post(buyer: Actor, **changes: Any) -> dict[str, Any]:
    response = buyer.client.post(
        "/api/v1/campaigns",
        json=SIGNS | {"deadline": _deadline()} | changes,
        headers=buyer.headers(),
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _submit(owner: Actor, campaign_id: str, asset_id: str) -> Any:
    return owner.client.post(
        f"/api/v1/campaigns/{campaign_id}/submissions",
        json={"asset_id": asset_id},
        headers=owner.headers(),
    )


def test_a_campaign_from_request_to_dataset(buyer: Actor, make_client: Any, db: Session) -> None:
    campaign = _post(buyer)
    assert campaign["unit"] == "items" and campaign["open"]
    ada = sign_up_contributor(make_client(), name="Ada Signs")
    photos = [list_asset(ada, png_bytes(size=(160, 120), seed=s), f"{s}.png") for s in (31, 32, 33)]
    academic = list_asset(
        ada, png_bytes(size=(160, 120), seed=34), "r.png", terms={"template": "research_only"}
    )
    seen = ada.client.get("/api/v1/campaigns").json()
    mine = next(c for c in seen if c["id"] == campaign["id"])
    assert mine["eligible"] and set(mine["qualifying_assets"]) == set(photos)
    assert mine["purpose_words"] == "to adjust an existing AI model"

    first = _submit(ada, campaign["id"], photos[0])
    assert first.status_code == 201, first.text
    assert first.json()["offered_minor"] == 250 and first.json()["units"] == 1
    again = _submit(ada, campaign["id"], photos[0])
    assert again.status_code == 409 and again.json()["code"] == "already_submitted"
    refused = _submit(ada, campaign["id"], academic)
    assert refused.status_code == 422 and refused.json()["code"] == "terms_do_not_allow"
    second = _submit(ada, campaign["id"], photos[1]).json()
    third = _submit(ada, campaign["id"], photos[2]).json()

    def decide(submission: dict[str, Any], verb: str) -> Any:
        return buyer.client.post(
            f"/api/v1/campaigns/{campaign['id']}/submissions/{submission['id']}/{verb}",
            headers=buyer.headers(),
        )

    assert decide(first.json(), "accept").status_code == 200
    assert decide(second, "accept").status_code == 200
    state = buyer.client.get(f"/api/v1/campaigns/{campaign['id']}").json()
    assert state["accepted_units"] == 2 and not state["open"]
    assert state["closed_reason"] == "quota_filled"
    late = decide(third, "accept")
    assert late.status_code == 409 and late.json()["code"] == "campaign_closed"
    assert decide(third, "reject").status_code == 200

    listed = buyer.client.get(f"/api/v1/campaigns/{campaign['id']}/submissions").json()
    assert {s["state"] for s in listed} == {"accepted", "rejected"}
    assert ada.user_id not in str(listed)

    dataset = buyer.client.post(
        "/api/v1/datasets",
        json={"name": "Signs", "purpose": "fine_tuning", "territory": "DE",
              "selection": {"campaign_id": campaign["id"]}},
        headers=buyer.headers(),
    )  # fmt: skip
    assert dataset.status_code == 201, dataset.text
    version = dataset.json()["latest_version"]
    assert version["item_count"] == 2 and version["subtotal_minor"] == 500
    assert verify_stored_chain(db) == (True, None, None)


def test_the_quota_is_never_overfilled(buyer: Actor, make_client: Any) -> None:
    campaign = _post(buyer, target_units=1)
    ada = sign_up_contributor(make_client(), name="Ada Quota")
    bob = sign_up_contributor(make_client(), name="Bob Quota", jurisdiction="FR")
    a = _submit(ada, campaign["id"], list_asset(ada, png_bytes(seed=41), "a.png")).json()
    b = _submit(bob, campaign["id"], list_asset(bob, png_bytes(seed=42), "b.png")).json()
    path = f"/api/v1/campaigns/{campaign['id']}/submissions"
    assert buyer.client.post(f"{path}/{a['id']}/accept", headers=buyer.headers()).status_code == 200
    second = buyer.client.post(f"{path}/{b['id']}/accept", headers=buyer.headers())
    assert second.status_code == 409 and second.json()["code"] == "campaign_closed"
    # Ada takes hers back: the units are free again, but the campaign stays closed.
    gone = ada.client.delete(f"{path}/{a['id']}", headers=ada.headers())
    assert gone.status_code == 200 and gone.json()["state"] == "withdrawn"
    assert buyer.client.get(f"/api/v1/campaigns/{campaign['id']}").json()["accepted_units"] == 0


def test_nobody_is_talked_below_their_own_price(buyer: Actor, make_client: Any) -> None:
    cheap = _post(buyer, price_per_unit_minor=50)  # the default terms ask 1.00 EUR
    ada = sign_up_contributor(make_client(), name="Ada Price")
    photo = list_asset(ada, png_bytes(seed=51), "p.png")
    view = next(c for c in ada.client.get("/api/v1/campaigns").json() if c["id"] == cheap["id"])
    assert view["qualifying_assets"] == []
    refused = _submit(ada, cheap["id"], photo)
    assert refused.status_code == 422 and "below" in refused.json()["detail"]


def test_demographic_targets_decide_who_may_answer(buyer: Actor, make_client: Any) -> None:
    women = _post(buyer, targets={"dimensions": ["gender"], "shares": {"woman": 1.0}})
    ben = sign_up_contributor(make_client(), name="Ben Target")
    share_profile(ben, gender="man")
    photo = list_asset(ben, png_bytes(seed=61), "m.png")
    view = next(c for c in ben.client.get("/api/v1/campaigns").json() if c["id"] == women["id"])
    assert not view["eligible"] and "gender" in view["reason"]
    refused = _submit(ben, women["id"], photo)
    assert refused.status_code == 422 and refused.json()["code"] == "not_eligible"


def test_other_peoples_assets_and_organisations_stay_out_of_reach(
    buyer: Actor, make_client: Any
) -> None:
    campaign = _post(buyer)
    ada = sign_up_contributor(make_client(), name="Ada Mine")
    eve = sign_up_contributor(make_client(), name="Eve Other")
    photo = list_asset(ada, png_bytes(seed=71), "a.png")
    stolen = _submit(eve, campaign["id"], photo)
    assert stolen.status_code == 404 and stolen.json()["code"] == "asset_not_found"
    rival = sign_up_buyer(make_client(), org_name="Rival Signs")
    assert rival.client.get(f"/api/v1/campaigns/{campaign['id']}").status_code == 404
    closed = rival.client.post(f"/api/v1/campaigns/{campaign['id']}/close", headers=rival.headers())
    assert closed.status_code == 404


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"deadline": "2020-01-01T00:00:00Z"}, "deadline_in_past"),
        ({"price_per_unit_minor": 0}, "price_below_minimum"),
        ({"purpose": "telepathy"}, "unknown_purpose"),
        ({"currency": "XYZ"}, "unknown_currency"),
        ({"target_units": 0}, "invalid_input"),
        ({"modality": "smell"}, "invalid_input"),
        ({"targets": {"dimensions": ["gender"], "shares": {"woman": 0.4}}}, "invalid_targets"),
    ],
)
def test_bad_campaigns_are_refused(buyer: Actor, change: dict[str, Any], code: str) -> None:
    response = buyer.client.post(
        "/api/v1/campaigns",
        json=SIGNS | {"deadline": _deadline()} | change,
        headers=buyer.headers(),
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code
    assert buyer.client.get("/api/v1/campaigns").json() == []
