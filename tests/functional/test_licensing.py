"""The marketplace end to end: contributors list recordings under different terms and
prices, a buyer builds a balanced dataset for speech recognition, quotes, orders (once,
however often the request is retried), an operator confirms the transfer; the licence is
a signed ODRL Agreement, the ledger balances, and each contributor earns exactly their
share, to the cent. Then renewal, staleness and expiry."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session
from tests.factories import STRONG_PASSWORD, Actor, login, sign_up_staff, unique_email
from tests.functional.marketplace_world import BALANCED, Market

from fairtrain.audit.keys import platform_signing_key, public_key_pem
from fairtrain.audit.service import verify_stored_chain
from fairtrain.consent.evaluate import Request as Ask
from fairtrain.consent.evaluate import evaluate
from fairtrain.consent.odrl import parse_policy
from fairtrain.ids import utcnow
from fairtrain.licensing import service as licensing
from fairtrain.licensing.agreement import verify_agreement_document
from fairtrain.licensing.service import fee_for


@pytest.fixture
def operator(make_client: Any, db: Session, app: Any) -> Actor:
    return sign_up_staff(make_client(), db, app.state.passwords, "operator")


def _ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def _order(buyer: Actor, quote_id: str, key: str) -> Any:
    return buyer.client.post(
        f"/api/v1/quotes/{quote_id}/orders",
        headers=buyer.headers() | {"Idempotency-Key": key},
    )


def _buy(buyer: Actor, operator: Actor, version_id: str, key: str) -> dict[str, Any]:
    quote = _ok(buyer.client.post(f"/api/v1/dataset-versions/{version_id}/quotes",
                                  headers=buyer.headers()), 201)  # fmt: skip
    order = _ok(_order(buyer, quote["id"], key), 201)
    return _ok(
        operator.client.post(
            f"/api/v1/orders/{order['id']}/confirm-payment",
            json={"reference": order["invoice_number"]},
            headers=operator.headers(),
        )
    )


def test_from_listing_to_licence_every_cent_accounted_for(
    market: Market, operator: Actor, make_client: Any, db: Session, app: Any, tmp_path: Path
) -> None:
    buyer = market.buyer
    dataset = _ok(buyer.client.post("/api/v1/datasets", json=BALANCED, headers=buyer.headers()),
                  201)  # fmt: skip
    version = dataset["latest_version"]
    assert version["exclusions"]["purpose_not_permitted"] == 1  # research-only terms
    items = _ok(buyer.client.get(f"/api/v1/dataset-versions/{version['id']}/items"))

    quote = _ok(buyer.client.post(f"/api/v1/dataset-versions/{version['id']}/quotes",
                                  headers=buyer.headers()), 201)  # fmt: skip
    subtotal = sum(i["price_minor"] for i in items)
    assert quote["subtotal_minor"] == subtotal == version["subtotal_minor"]
    assert quote["fee_minor"] == fee_for(subtotal, 2000) and quote["fee_bps"] == 2000
    assert quote["total_minor"] == subtotal + quote["fee_minor"]
    lines = _ok(buyer.client.get(f"/api/v1/quotes/{quote['id']}"))["lines"]
    assert sorted(line["price_minor"] for line in lines) == sorted(i["price_minor"] for i in items)

    # Only an admin commits the organisation's money, and says which request this is.
    member_email = unique_email("member")
    joining = {"email": member_email, "password": STRONG_PASSWORD, "display_name": "Mem Ber"}
    _ok(buyer.client.post(f"/api/v1/orgs/{buyer.org_id}/members", json=joining,
                          headers=buyer.headers()), 201)  # fmt: skip
    member = login(make_client(), member_email)
    refused = _order(member, quote["id"], "member-key-0001")
    assert refused.status_code == 403 and refused.json()["code"] == "not_org_admin"
    keyless = buyer.client.post(f"/api/v1/quotes/{quote['id']}/orders", headers=buyer.headers())
    assert keyless.status_code == 422 and keyless.json()["code"] == "idempotency_key_required"

    order = _ok(_order(buyer, quote["id"], "order-2026-0001"), 201)
    assert order["state"] == "awaiting_payment" and order["invoice_number"].startswith("FT-")
    assert order["payment"]["reference"] == order["invoice_number"]
    retried = _ok(_order(buyer, quote["id"], "order-2026-0001"))  # a network retry
    twice = _ok(_order(buyer, quote["id"], "order-2026-0002"))  # a double click
    assert retried["id"] == twice["id"] == order["id"]

    not_yours = buyer.client.post(f"/api/v1/orders/{order['id']}/confirm-payment",
                                  json={"reference": "x"}, headers=buyer.headers())  # fmt: skip
    assert not_yours.status_code == 403
    licence = _ok(operator.client.post(f"/api/v1/orders/{order['id']}/confirm-payment",
                                       json={"reference": order["invoice_number"]},
                                       headers=operator.headers()))  # fmt: skip
    assert licence["state"] == "active" and licence["purpose"] == "speech_recognition"
    assert (
        operator.client.post(f"/api/v1/orders/{order['id']}/confirm-payment",
                             json={"reference": "again"}, headers=operator.headers()).json()["id"]
        == licence["id"]
    )  # fmt: skip

    # The agreement verifies offline and says what the licence allows.
    document = _ok(buyer.client.get(f"/api/v1/licences/{licence['id']}/agreement"))
    pem = public_key_pem(platform_signing_key(app.state.settings).public_key())
    signed = verify_agreement_document(document, pem)
    agreement = parse_policy(signed)
    assert agreement.type == "Agreement"
    buyer_iri = f"{app.state.settings.base_url}/orgs/{buyer.org_id}"
    target = f"{app.state.settings.base_url}/dataset-versions/{version['id']}"
    now = utcnow()
    paid = Decimal(quote["total_minor"]).scaleb(-2)  # the compensate duty, met
    allowed = evaluate(agreement, Ask(purpose="speech_recognition", territory="DE", at=now,
                                      assignee=buyer_iri, target=target, pay_amount=paid,
                                      currency="EUR"))  # fmt: skip
    assert allowed.permitted, allowed
    for purpose, territory in (("voice_cloning", "DE"), ("speech_recognition", "US")):
        denied = evaluate(agreement, Ask(purpose=purpose, territory=territory, at=now,
                                         assignee=buyer_iri, target=target, pay_amount=paid,
                                         currency="EUR"))  # fmt: skip
        assert not denied.permitted, (purpose, territory)
    tampered = json.loads(json.dumps(document))
    tampered["agreement"]["uid"] = "https://elsewhere/licence"
    with pytest.raises(Exception, match="differs"):
        verify_agreement_document(tampered, pem)

    # Every contributor earns exactly their items' prices; the ledger balances.
    owed: dict[str, int] = defaultdict(int)
    for item in items:
        owed[item["asset_id"]] = item["price_minor"]
    for person in market.contributors:
        earned = _ok(person.client.get("/api/v1/me/earnings"))
        expected = sum(owed[e["asset_id"]] for e in earned["earnings"])
        assert earned["totals"].get("EUR", 0) == expected
        assert all(e["buyer"] == "Balanced Speech" for e in earned["earnings"])
        statement = _ok(person.client.get("/api/v1/me/statement"))
        assert statement_balance(statement) == expected
    balance = _ok(operator.client.get("/api/v1/ledger/trial-balance"))
    assert_balanced(balance)
    assert verify_stored_chain(db) == (True, None, None)


def statement_balance(statement: dict[str, Any]) -> int:
    """What the contributor is owed in euro, by their statement."""
    return sum(b["amount_minor"] for b in statement["balances"] if b["currency"] == "EUR")


def assert_balanced(balance: dict[str, Any]) -> None:
    """Debits equal credits in every currency, and nothing is left receivable."""
    for block in balance["currencies"]:
        assert block["debit_minor"] == block["credit_minor"], json.dumps(block)


def test_changed_terms_mean_a_new_quote_not_a_silent_change(
    market: Market, operator: Actor
) -> None:
    buyer = market.buyer
    dataset = _ok(buyer.client.post("/api/v1/datasets", json=BALANCED, headers=buyer.headers()),
                  201)  # fmt: skip
    version = dataset["latest_version"]
    quote = _ok(buyer.client.post(f"/api/v1/dataset-versions/{version['id']}/quotes",
                                  headers=buyer.headers()), 201)  # fmt: skip
    items = _ok(buyer.client.get(f"/api/v1/dataset-versions/{version['id']}/items"))
    owner = market.contributors[0]
    mine = next(i["asset_id"] for i in items if i["asset_id"] in market.by_group["25-34|woman"])
    _ok(owner.client.put(f"/api/v1/assets/{mine}/policy",
                         json={"template": "default", "price_minor": 5000, "currency": "EUR"},
                         headers=owner.headers()))  # fmt: skip
    stale = _order(buyer, quote["id"], "stale-order-0001")
    assert stale.status_code == 409 and stale.json()["code"] == "quote_stale"
    requote = buyer.client.post(f"/api/v1/dataset-versions/{version['id']}/quotes",
                                headers=buyer.headers())  # fmt: skip
    assert requote.status_code == 409 and requote.json()["code"] == "quote_stale"
    rebuilt = _ok(buyer.client.post(f"/api/v1/datasets/{dataset['id']}/versions",
                                    headers=buyer.headers()))  # fmt: skip
    assert rebuilt["id"] != version["id"]
    old = buyer.client.post(f"/api/v1/dataset-versions/{version['id']}/quotes",
                            headers=buyer.headers())  # fmt: skip
    assert old.status_code == 409 and old.json()["code"] == "version_superseded"
    fresh = _ok(buyer.client.post(f"/api/v1/dataset-versions/{rebuilt['id']}/quotes",
                                  headers=buyer.headers()), 201)  # fmt: skip
    assert fresh["subtotal_minor"] == rebuilt["subtotal_minor"]


def test_renewal_pays_again_and_expiry_ends_the_licence(
    market: Market, operator: Actor, db: Session
) -> None:
    buyer = market.buyer
    dataset = _ok(buyer.client.post("/api/v1/datasets", json=BALANCED | {"term_days": 90},
                                    headers=buyer.headers()), 201)  # fmt: skip
    first = _buy(buyer, operator, dataset["latest_version"]["id"], "first-order-0001")
    quote = _ok(buyer.client.post(f"/api/v1/licences/{first['id']}/renewals",
                                  headers=buyer.headers()), 201)  # fmt: skip
    assert quote["renews_licence_id"] == first["id"]
    order = _ok(_order(buyer, quote["id"], "renewal-0001"), 201)
    renewed = _ok(operator.client.post(f"/api/v1/orders/{order['id']}/confirm-payment",
                                       json={"reference": order["invoice_number"]},
                                       headers=operator.headers()))  # fmt: skip
    assert renewed["starts_at"] == first["ends_at"]  # back to back, no gap, no overlap
    earned = _ok(market.contributors[0].client.get("/api/v1/me/earnings"))
    assert earned["licences"] == 2
    ended = licensing.expire_licences(db, actor="system:test", now=utcnow() + timedelta(days=91))
    assert [x.id for x in ended] == [first["id"]]
    db.commit()
    assert _ok(buyer.client.get(f"/api/v1/licences/{first['id']}"))["state"] == "expired"
    assert _ok(buyer.client.get(f"/api/v1/licences/{renewed['id']}"))["state"] == "active"


def test_unpaid_orders_can_be_cancelled_and_their_invoice_reversed(
    market: Market, operator: Actor
) -> None:
    buyer = market.buyer
    dataset = _ok(buyer.client.post("/api/v1/datasets", json=BALANCED, headers=buyer.headers()),
                  201)  # fmt: skip
    quote = _ok(buyer.client.post(
        f"/api/v1/dataset-versions/{dataset['latest_version']['id']}/quotes",
        headers=buyer.headers()), 201)  # fmt: skip
    order = _ok(_order(buyer, quote["id"], "cancel-me-0001"), 201)
    cancelled = _ok(buyer.client.post(f"/api/v1/orders/{order['id']}/cancel",
                                      headers=buyer.headers()))  # fmt: skip
    assert cancelled["state"] == "cancelled"
    late = operator.client.post(f"/api/v1/orders/{order['id']}/confirm-payment",
                                json={"reference": "late"}, headers=operator.headers())  # fmt: skip
    assert late.status_code == 409 and late.json()["code"] == "order_cancelled"
    assert_balanced(_ok(operator.client.get("/api/v1/ledger/trial-balance")))
