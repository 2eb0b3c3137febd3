"""Datasets end to end through HTTP: contributors list recordings under different terms,
a buyer builds a balanced dataset for speech recognition; excluded assets carry the
reason and the deciding rule, the representation report meets the target, delivered
demographics are k-anonymous, and versions are content-addressed."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session
from tests.factories import Actor, sign_up_buyer
from tests.functional.marketplace_world import BALANCED, GROUPS, PRICES, Market

from fairtrain.audit.service import verify_stored_chain
from fairtrain.datasets.kanon import verify


def _all(buyer: Actor, path: str) -> list[dict[str, Any]]:
    response = buyer.client.get(path, params={"limit": 1000})
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


def test_a_balanced_dataset_for_speech_recognition(market: Market, db: Session) -> None:
    buyer = market.buyer
    created = buyer.client.post("/api/v1/datasets", json=BALANCED, headers=buyer.headers())
    assert created.status_code == 201, created.text
    version = created.json()["latest_version"]
    assert version["number"] == 1 and version["item_count"] == 8
    assert version["id"] == "dsv_" + version["content_sha256"][:32]
    assert version["subtotal_minor"] == 2 * sum(PRICES)  # two recordings from each group

    report = version["representation"]
    groups = {g["label"]: g for g in report["groups"]}
    for label in GROUPS:
        assert groups[label]["count"] == 2 and groups[label]["gap"] == 0.0
    assert report["total_variation"] == 0.0 and report["over_represented"] == []
    # The pool is what the terms allow: the one priced in dollars is not in it.
    assert groups["35-44|man"]["pool_count"] == 4

    excluded = {
        x["asset_id"]: x
        for x in _all(buyer, f"/api/v1/dataset-versions/{version['id']}/exclusions")
    }
    research = excluded[market.research_only]
    assert research["code"] == "purpose_not_permitted"
    assert research["rule_path"] == "permission[0]" and research["reason"]
    assert excluded[market.in_dollars]["code"] == "currency_mismatch"
    assert excluded[market.private]["code"] == "not_in_target_groups"
    over = [x for x in excluded.values() if x["code"] == "not_sampled"]
    assert len(over) == (3 - 2) + (4 - 2)
    assert version["exclusions"] == {
        "currency_mismatch": 1,
        "not_in_target_groups": 1,
        "not_sampled": 3,
        "purpose_not_permitted": 1,
    }

    items = _all(buyer, f"/api/v1/dataset-versions/{version['id']}/items")
    assert len(items) == 8 and all(i["receipt_sha256"] for i in items)
    delivered = [{k: i["delivered"][k] for k in ("age_band", "gender", "region", "accent",
                                                 "language")} for i in items]  # fmt: skip
    assert verify(delivered, 5)
    assert version["anonymity"]["k"] == 5
    assert verify_stored_chain(db) == (True, None, None)


def test_rebuilding_an_unchanged_selection_names_the_same_version(market: Market) -> None:
    buyer = market.buyer
    dataset = buyer.client.post("/api/v1/datasets", json=BALANCED, headers=buyer.headers()).json()
    again = buyer.client.post(f"/api/v1/datasets/{dataset['id']}/versions", headers=buyer.headers())
    assert again.status_code == 200, again.text
    assert again.json()["id"] == dataset["latest_version"]["id"]
    # An owner changes their terms: the next build leaves the asset out, in a new version.
    owner = market.contributors[0]
    taken = _all(buyer, f"/api/v1/dataset-versions/{dataset['latest_version']['id']}/items")
    mine = next(a for a in market.by_group["25-34|woman"] if a in {i["asset_id"] for i in taken})
    changed = owner.client.put(
        f"/api/v1/assets/{mine}/policy", json={"template": "research_only"}, headers=owner.headers()
    )
    assert changed.status_code == 200, changed.text
    rebuilt = buyer.client.post(
        f"/api/v1/datasets/{dataset['id']}/versions", headers=buyer.headers()
    ).json()
    assert rebuilt["number"] == 2 and rebuilt["parent_id"] == dataset["latest_version"]["id"]
    assert mine not in {
        i["asset_id"] for i in _all(buyer, f"/api/v1/dataset-versions/{rebuilt['id']}/items")
    }
    versions = buyer.client.get(f"/api/v1/datasets/{dataset['id']}/versions").json()
    assert [v["number"] for v in versions] == [2, 1] and versions[1]["superseded_at"]


def test_a_short_group_is_reported_and_nothing_is_hidden(market: Market) -> None:
    buyer = market.buyer
    body = BALANCED | {"size": 12}  # three per group: two groups have only two
    version = buyer.client.post("/api/v1/datasets", json=body, headers=buyer.headers()).json()[
        "latest_version"
    ]
    report = version["representation"]
    short = {g["label"]: g["shortfall"] for g in report["groups"] if g["shortfall"]}
    assert short == {"25-34|man": 1.0, "35-44|woman": 1.0}
    assert set(report["under_represented"]) == {"25-34|man", "35-44|woman"}
    assert report["notes"] and report["total_variation"] > 0


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"purpose": "telepathy"}, "unknown_purpose"),
        ({"currency": "XXX"}, "unknown_currency"),
        ({"targets": {"dimensions": ["age_band"], "shares": {"25-34": 0.7}}}, "invalid_targets"),
        ({"targets": {"dimensions": ["shoe_size"], "shares": {"42": 1}}}, "invalid_input"),
        ({"selection": {"campaign_id": "cmp_none", "modality": ["audio"]}}, "invalid_selection"),
        ({"size": -1}, "invalid_input"),
        ({"colour": "blue"}, "unknown_field"),
    ],
)
def test_bad_definitions_are_refused_and_nothing_is_written(
    make_client: Any, db: Session, change: dict[str, Any], code: str
) -> None:
    buyer = sign_up_buyer(make_client(), org_name="Careless Labs")
    response = buyer.client.post(
        "/api/v1/datasets", json=BALANCED | change, headers=buyer.headers()
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code
    assert buyer.client.get("/api/v1/datasets").json() == []
    assert verify_stored_chain(db) == (True, None, None)


def test_another_organisation_never_sees_a_dataset(market: Market, make_client: Any) -> None:
    buyer = market.buyer
    dataset = buyer.client.post("/api/v1/datasets", json=BALANCED, headers=buyer.headers()).json()
    rival = sign_up_buyer(make_client(), org_name="Rival Labs")
    version_id = dataset["latest_version"]["id"]
    for path in (
        f"/api/v1/datasets/{dataset['id']}",
        f"/api/v1/dataset-versions/{version_id}",
        f"/api/v1/dataset-versions/{version_id}/items",
        f"/api/v1/dataset-versions/{version_id}/exclusions",
    ):
        refused = rival.client.get(path)
        assert refused.status_code == 404, (path, refused.text)
    owner = market.contributors[0]
    assert owner.client.get(f"/api/v1/datasets/{dataset['id']}").status_code == 403


def test_a_pool_price_is_split_by_minutes_to_the_cent(market: Market) -> None:
    buyer = market.buyer
    rich = BALANCED | {"name": "Pooled", "pool_minor": 5000}
    version = buyer.client.post("/api/v1/datasets", json=rich, headers=buyer.headers()).json()[
        "latest_version"
    ]
    items = _all(buyer, f"/api/v1/dataset-versions/{version['id']}/items")
    assert version["subtotal_minor"] == 5000 == sum(i["price_minor"] for i in items)
    by_length = sorted(items, key=lambda i: i["units"])
    assert by_length[0]["price_minor"] <= by_length[-1]["price_minor"]  # longer earns more
    exact = [5000 * i["units"] / sum(j["units"] for j in items) for i in items]
    assert all(abs(i["price_minor"] - e) < 1 for i, e in zip(items, exact, strict=True))
    # A pool too small for some owners' prices leaves them out, with the reason.
    poor = buyer.client.post(
        "/api/v1/datasets", json=BALANCED | {"name": "Thin", "pool_minor": 900},
        headers=buyer.headers(),
    ).json()["latest_version"]  # fmt: skip
    excluded = _all(buyer, f"/api/v1/dataset-versions/{poor['id']}/exclusions")
    short = [x for x in excluded if x["code"] == "price_too_low"]
    assert short and all("below its owner's" in x["reason"] for x in short)
    kept = _all(buyer, f"/api/v1/dataset-versions/{poor['id']}/items")
    assert sum(i["price_minor"] for i in kept) == 900 == poor["subtotal_minor"]
