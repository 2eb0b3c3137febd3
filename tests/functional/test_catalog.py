"""The catalogue through HTTP: what buyers see, what they never see, licence compatibility
decided by each owner's terms, facets, pages, previews, and the catalogue following every
change of an asset, its terms and its owner's profile."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image
from sqlalchemy.orm import Session
from tests.factories import (
    Actor,
    list_asset,
    share_profile,
    sign_up_buyer,
    sign_up_contributor,
)
from tests.media_factory import png_bytes

from fairtrain.audit.service import verify_stored_chain


@pytest.fixture
def buyer(make_client: Any) -> Actor:
    return sign_up_buyer(make_client(), org_name="Catalogue Speech")


@pytest.fixture
def market(make_client: Any) -> dict[str, Any]:
    """Two contributors, four images under four kinds of terms, one chat."""
    ada = sign_up_contributor(make_client(), name="Ada Lister", jurisdiction="DE")
    share_profile(ada, share_age_band=True, gender="woman", share_region=True)
    bob = sign_up_contributor(make_client(), name="Bob Lister", jurisdiction="FR")
    ids = {
        "default": list_asset(ada, png_bytes(size=(200, 150), seed=11), "a.png"),
        "research": list_asset(
            ada, png_bytes(size=(200, 150), seed=12), "b.png", terms={"template": "research_only"}
        ),
        "commercial": list_asset(
            bob,
            png_bytes(size=(200, 150), seed=13),
            "c.png",
            terms={"template": "commercial_training", "price_minor": 250, "currency": "EUR"},
        ),
        "usd": list_asset(
            bob,
            png_bytes(size=(200, 150), seed=14),
            "d.png",
            terms={"template": "commercial_training", "price_minor": 300, "currency": "USD"},
        ),
    }
    chat = (
        "12/01/2024, 10:00 - Bob Lister: are we still meeting tomorrow at the station\n"
        "12/01/2024, 10:01 - Cy Other: yes at nine, bring the tickets please\n"
    )
    ids["chat"] = list_asset(bob, chat.encode(), "chat.txt")
    return {"ada": ada, "bob": bob, "ids": ids}


def _search(buyer: Actor, **params: Any) -> dict[str, Any]:
    response = buyer.client.get("/api/v1/catalog", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_buyers_see_listed_assets_with_facets_and_no_identities(
    buyer: Actor, market: dict[str, Any]
) -> None:
    body = _search(buyer)
    ids = market["ids"]
    assert {item["id"] for item in body["items"]} == set(ids.values())
    assert body["total"] == 5
    assert body["facets"]["modality"] == {"chat": 1, "image": 4}
    # Ada shares a band, gender and country; Bob shares nothing.
    assert body["facets"]["gender"] == {"not_shared": 3, "woman": 2}
    assert body["facets"]["region"] == {"DE": 2, "not_shared": 3}
    text = str(body)
    for secret in ("Ada", "Bob", market["ada"].user_id, market["bob"].user_id, "owner"):
        assert secret not in text
    item = next(i for i in body["items"] if i["id"] == ids["commercial"])
    assert item["terms"]["price_minor"] == 250 and item["terms"]["currency"] == "EUR"


def test_licence_compatibility_follows_each_owners_terms(
    buyer: Actor, market: dict[str, Any]
) -> None:
    ids = market["ids"]
    fits = _search(buyer, purpose="fine_tuning", territory="DE", modality="image")
    assert {i["id"] for i in fits["items"]} == {ids["default"], ids["commercial"], ids["usd"]}
    assert all(i["fit"]["ok"] for i in fits["items"])
    assert fits["total"] == 3 and fits["notes"] == []
    in_euro = _search(buyer, purpose="fine_tuning", territory="DE", currency="EUR")
    assert ids["usd"] not in {i["id"] for i in in_euro["items"]}
    # A broad purpose could cover a prohibited narrower one (voice cloning): refused, and
    # the buyer is told to declare what they mean.
    broad = _search(buyer, purpose="model_training", territory="DE")
    assert broad["total"] == 0 and "narrowest purpose" in broad["notes"][0]
    research = _search(buyer, purpose="academic_research", territory="FR")
    assert ids["research"] in {i["id"] for i in research["items"]}
    # Every template prohibits voice cloning; nobody's data is offered for it.
    assert _search(buyer, purpose="voice_cloning", territory="DE")["total"] == 0
    # The default terms allow licences of at most a year.
    two_years = _search(buyer, purpose="fine_tuning", territory="DE", term_days=730)
    assert ids["default"] not in {i["id"] for i in two_years["items"]}


def test_filters_combine_and_pages_walk_the_whole_result(
    buyer: Actor, market: dict[str, Any]
) -> None:
    women = _search(buyer, gender="woman")
    assert women["total"] == 2
    private = _search(buyer, gender="not_shared", modality="image")
    assert private["total"] == 2
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 2, "sort": "cheapest"}
        if cursor:
            params["cursor"] = cursor
        page = _search(buyer, **params)
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(market["ids"].values()) and len(seen) == len(set(seen))


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"cursor": "not-a-cursor"}, "invalid_cursor"),
        ({"purpose": "telepathy", "territory": "DE"}, "unknown_purpose"),
        ({"purpose": "model_training"}, "invalid_input"),
        ({"currency": "XXX", "purpose": "model_training", "territory": "DE"}, "unknown_currency"),
        ({"colour": "blue"}, "unknown_field"),
        ({"limit": 0}, "invalid_input"),
        # PostgreSQL refuses NUL in text: a control character in a facet is bad input.
        ({"accent": "\x00"}, "invalid_input"),
        ({"gender": "wo\x00man"}, "invalid_input"),
        ({"age_band": "\x1f"}, "invalid_input"),
    ],
)
def test_bad_queries_are_refused_with_a_code(
    buyer: Actor, market: dict[str, Any], params: dict[str, Any], code: str
) -> None:
    response = buyer.client.get("/api/v1/catalog", params=params)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code


def test_contributors_and_strangers_do_not_browse_other_peoples_data(
    make_client: Any, market: dict[str, Any]
) -> None:
    assert make_client().get("/api/v1/catalog").status_code == 401
    refused = market["ada"].client.get("/api/v1/catalog")
    assert refused.status_code == 403 and refused.json()["code"] == "role_forbidden"


def test_the_catalogue_follows_terms_profile_withdrawal_and_erasure(
    buyer: Actor, market: dict[str, Any], db: Session
) -> None:
    ada, ids = market["ada"], market["ids"]
    changed = ada.client.put(
        f"/api/v1/assets/{ids['default']}/policy",
        json={"template": "commercial_training", "price_minor": 990, "currency": "EUR"},
        headers=ada.headers(),
    )
    assert changed.status_code == 200, changed.text
    item = ada_item = buyer.client.get(f"/api/v1/catalog/{ids['default']}").json()
    assert item["terms"]["price_minor"] == 990
    assert any("9.90 euro" in sentence for sentence in ada_item["explanation"])
    share_profile(ada, share_age_band=False, gender=None)
    assert _search(buyer, gender="woman")["total"] == 0
    deleted = ada.client.delete(f"/api/v1/assets/{ids['research']}", headers=ada.headers())
    assert deleted.status_code == 200, deleted.text
    assert buyer.client.get(f"/api/v1/catalog/{ids['research']}").status_code == 404
    assert ids["research"] not in {i["id"] for i in _search(buyer)["items"]}
    assert verify_stored_chain(db) == (True, None, None)


def test_previews_are_small_and_made_from_the_redacted_version(
    buyer: Actor, market: dict[str, Any]
) -> None:
    ids = market["ids"]
    image = buyer.client.get(f"/api/v1/catalog/{ids['default']}/preview")
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(image.content)) as shown:
        assert max(shown.size) <= 320
        assert not shown.getexif()
    chat = buyer.client.get(f"/api/v1/catalog/{ids['chat']}/preview")
    assert chat.status_code == 200
    assert "Cy Other" not in chat.text and "bring the tickets" not in chat.text  # withheld
    missing = buyer.client.get("/api/v1/catalog/ast_nothing/preview")
    assert missing.status_code == 404 and missing.json()["code"] == "catalog_item_not_found"
