"""The marketplace pages over HTTP, against the real services: a buyer searches with
facets, builds a balanced dataset (chart and table, exclusions with reasons), quotes and
orders; an operator confirms the payment; the buyer opens the licence and asks for the
export; each contributor sees who licensed what and what they earned, gives payout
details; the operator runs the payout and reads the trial balance. Bad input gives a 4xx
page and writes nothing."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from tests.factories import Actor, sign_up_staff
from tests.functional.marketplace_world import Market

from fairtrain.datasets.models import Dataset
from fairtrain.ledger import service as ledger
from fairtrain.ledger.models import PayoutDetails
from fairtrain.licensing.models import Order
from fairtrain.money import format_money

HTML = {"Accept": "text/html"}


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "the page carries a CSRF token"
    return match.group(1)


def _form(actor: Actor, path: str) -> str:
    page = actor.client.get(path, headers=HTML)
    assert page.status_code == 200, page.text
    return _csrf(page.text)


@pytest.fixture
def operator(make_client: Any, db: Session, app: Any) -> Actor:
    return sign_up_staff(make_client(), db, app.state.passwords, "operator")


def _count(db: Session, model: type[Any]) -> int:
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


def test_buyer_builds_licenses_and_contributors_see_it(
    market: Market, operator: Actor, db: Session
) -> None:
    buyer = market.buyer
    search = buyer.client.get(
        "/catalogue",
        params={"purpose": "speech_recognition", "territory": "DE", "modality": "audio"},
        headers=HTML,
    )
    assert search.status_code == 200, search.text
    # Facets count over the whole result; the research-only recording does not fit.
    assert "25-34" in search.text and "(5)" in search.text
    assert market.research_only not in search.text
    assert market.by_group["35-44|man"][0] in search.text

    csrf = _form(buyer, "/datasets")
    built = buyer.client.post(
        "/datasets",
        data={
            "name": "Balanced read speech",
            "purpose": "speech_recognition",
            "territory": "DE",
            "term_days": "365",
            "currency": "EUR",
            "modality": ["audio"],
            "size": "8",
            "balance": ["age_band", "gender"],
            "csrf_token": csrf,
        },
        headers=HTML,
        follow_redirects=False,
    )
    assert built.status_code == 303, built.text
    page = buyer.client.get(built.headers["location"], headers=HTML)
    assert page.status_code == 200
    # The representation chart is an SVG with a title and description, and the table
    # says the same numbers: 4 groups, 25% each, the target marked.
    assert '<svg class="bars"' in page.text and 'role="img"' in page.text
    assert page.text.count('<line class="target"') == 4
    assert "25.0% (2)" in page.text and "Target" in page.text
    assert "purpose_not_permitted" in page.text  # every exclusion with its reason

    fit = re.search(r'href="(/catalogue\?[^"]+)">What in the catalogue fits', page.text)
    assert fit and "purpose=speech_recognition" in fit.group(1)
    fitting = buyer.client.get(fit.group(1).replace("&amp;", "&"), headers=HTML)
    assert fitting.status_code == 200 and market.research_only not in fitting.text

    dataset_id = built.headers["location"].rsplit("/", 1)[1]
    quoted = buyer.client.post(
        f"/datasets/{dataset_id}/quote",
        data={"csrf_token": _csrf(page.text)},
        headers=HTML,
        follow_redirects=False,
    )
    assert quoted.status_code == 303, quoted.text
    quote_page = buyer.client.get(quoted.headers["location"], headers=HTML)
    assert "Place the order" in quote_page.text
    key = re.search(r'name="idempotency_key" value="([^"]+)"', quote_page.text)
    assert key
    order_form = {"csrf_token": _csrf(quote_page.text), "idempotency_key": key.group(1)}
    ordered = buyer.client.post(
        quoted.headers["location"] + "/order", data=order_form, follow_redirects=False
    )
    assert ordered.status_code == 303, ordered.text
    again = buyer.client.post(
        quoted.headers["location"] + "/order", data=order_form, follow_redirects=False
    )
    assert again.headers["location"] == ordered.headers["location"]  # a double click
    assert _count(db, Order) == 1
    order_page = buyer.client.get(ordered.headers["location"], headers=HTML)
    assert "How to pay" in order_page.text and "awaiting payment" in order_page.text
    invoice = re.search(r"Order (FT-[\w-]+)", order_page.text)
    assert invoice

    # The operator confirms; a blank reference is refused with the page, nothing booked.
    queue = operator.client.get("/operator/orders", headers=HTML)
    assert invoice.group(1) in queue.text
    order_id = ordered.headers["location"].rsplit("/", 1)[1]
    blank = operator.client.post(
        f"/operator/orders/{order_id}/confirm",
        data={"reference": "   ", "csrf_token": _csrf(queue.text)},
        headers=HTML,
    )
    assert blank.status_code == 422 and 'role="alert"' in blank.text
    done = operator.client.post(
        f"/operator/orders/{order_id}/confirm",
        data={"reference": "BANK-REF-77", "csrf_token": _csrf(queue.text)},
        headers=HTML,
    )
    assert done.status_code == 200 and "confirmed" in done.text

    order_page = buyer.client.get(ordered.headers["location"], headers=HTML)
    licence = re.search(r'href="/licences/(lic_\w+)"', order_page.text)
    assert licence, order_page.text
    licences = buyer.client.get("/licences", headers=HTML)
    assert "Balanced read speech" in licences.text
    licence_page = buyer.client.get(f"/licences/{licence.group(1)}", headers=HTML)
    assert "Prepare the download" in licence_page.text
    exported = buyer.client.post(
        f"/licences/{licence.group(1)}/export",
        data={"csrf_token": _csrf(licence_page.text)},
        follow_redirects=False,
    )
    assert exported.status_code == 303
    ready = buyer.client.get(f"/licences/{licence.group(1)}", headers=HTML)
    assert "/api/v1/downloads/" in ready.text  # jobs run at once in tests: signed links
    link = re.search(r'href="(/api/v1/downloads/[^"]+)"', ready.text)
    assert link and buyer.client.get(link.group(1)).status_code == 200

    # A contributor in the dataset sees the buyer, purpose, version and their share.
    seller = market.contributors[0]
    mine = seller.client.get("/me/licences", headers=HTML)
    assert mine.status_code == 200 and "Balanced Speech" in mine.text
    assert "Speech recognition" in mine.text or "speech" in mine.text.lower()
    earnings = seller.client.get("/me/earnings", headers=HTML)
    totals = seller.client.get("/api/v1/me/earnings").json()["totals"]
    assert totals["EUR"] > 0
    assert '<svg class="bars"' in earnings.text
    assert format_money(totals["EUR"], "EUR") in earnings.text
    bad_iban = seller.client.post(
        "/me/payout-details",
        data={"account_holder": "Voice", "iban": "DE00 1234", "csrf_token": _csrf(earnings.text)},
        headers=HTML,
    )
    assert bad_iban.status_code == 422 and 'role="alert"' in bad_iban.text
    assert _count(db, PayoutDetails) == 0
    saved = seller.client.post(
        "/me/payout-details",
        data={
            "account_holder": "Voice Person",
            "iban": "DE89 3704 0044 0532 0130 00",
            "csrf_token": _csrf(earnings.text),
        },
        headers=HTML,
    )
    assert saved.status_code == 200 and "Saved" in saved.text

    # The operator runs payouts and reads a balanced trial balance.
    payouts = operator.client.get("/operator/payouts", headers=HTML)
    run = operator.client.post(
        "/operator/payouts",
        data={"currency": "EUR", "csrf_token": _csrf(payouts.text)},
        headers=HTML,
    )
    # Each voice earned a euro or two here, under the payout minimum: nothing to pay.
    assert run.status_code == 409 and "nothing_to_pay" in run.text
    # A larger sale (booked as licensing books it) lifts the seller over the minimum.
    assert buyer.org_id and seller.user_id
    ledger.record_invoice(
        db, order_id="ord_big", org_id=buyer.org_id, currency="EUR", total_minor=2500,
        actor="system:test",
    )  # fmt: skip
    ledger.record_payment(
        db, order_id="ord_big", org_id=buyer.org_id, currency="EUR", total_minor=2500,
        contributor_shares={seller.user_id: 2000}, platform_fee_minor=500, actor="system:test",
    )  # fmt: skip
    db.commit()
    run = operator.client.post(
        "/operator/payouts",
        data={"currency": "EUR", "csrf_token": _csrf(payouts.text)},
        follow_redirects=False,
    )
    assert run.status_code == 303, run.text
    payouts = operator.client.get("/operator/payouts", headers=HTML)
    assert "Voice Person" in payouts.text and "DE** ****" in payouts.text
    batch = re.search(r'action="/operator/payouts/(\w+)/mark-paid"', payouts.text)
    assert batch
    paid = operator.client.post(
        f"/operator/payouts/{batch.group(1)}/mark-paid",
        data={"csrf_token": _csrf(payouts.text)},
        follow_redirects=False,
    )
    assert paid.status_code == 303
    assert "state <strong>paid</strong>" in operator.client.get("/operator/payouts").text
    trial = operator.client.get("/operator/trial-balance", headers=HTML)
    assert trial.status_code == 200 and "balanced" in trial.text and "EUR" in trial.text


def test_bad_input_renders_a_page_and_writes_nothing(market: Market, db: Session) -> None:
    buyer = market.buyer
    wrong = buyer.client.get("/catalogue", params={"purpose": "speech_recognition"}, headers=HTML)
    assert wrong.status_code == 422 and "purpose and territory go together" in wrong.text
    unknown = buyer.client.get(
        "/catalogue", params={"purpose": "mind_reading", "territory": "DE"}, headers=HTML
    )
    assert unknown.status_code == 422 and "unknown_purpose" in unknown.text
    before = _count(db, Dataset)
    csrf = _form(buyer, "/datasets")
    refused = buyer.client.post(
        "/datasets",
        data={"name": "x", "purpose": "speech_recognition", "territory": "D1", "csrf_token": csrf},
        headers=HTML,
    )
    assert refused.status_code == 422 and 'role="alert"' in refused.text
    assert 'value="x"' in refused.text  # the form keeps what was typed
    nothing = buyer.client.post(
        "/datasets",
        data={
            "name": "Nothing to balance",
            "purpose": "speech_recognition",
            "territory": "DE",
            "modality": ["video"],
            "balance": ["gender"],
            "csrf_token": csrf,
        },
        headers=HTML,
    )
    assert nothing.status_code == 422 and "nothing_to_balance" in nothing.text
    assert _count(db, Dataset) == before
    missing = buyer.client.get("/datasets/ds_nope", headers=HTML)
    assert missing.status_code == 404 and "<html" in missing.text
    # Contributors never see the catalogue; buyers not a contributor's earnings.
    contributor = market.contributors[0]
    assert contributor.client.get("/catalogue", headers=HTML).status_code == 403
    assert buyer.client.get("/me/earnings", headers=HTML).status_code == 403


def test_contributor_answers_a_campaign_from_the_page(market: Market) -> None:
    buyer = market.buyer
    campaign = buyer.client.post(
        "/api/v1/campaigns",
        json={
            "title": "Read speech, any accent",
            "modality": "audio",
            "purpose": "speech_recognition",
            "territory": "DE",
            "price_per_unit_minor": 50_000,  # a few seconds of speech must reach 1 EUR
            "target_units": 10,
            "deadline": "2099-01-01T00:00:00Z",
        },
        headers=buyer.headers(),
    )
    assert campaign.status_code == 201, campaign.text
    campaign_id = campaign.json()["id"]
    seller = market.contributors[0]
    page = seller.client.get("/campaigns", headers=HTML)
    assert "Read speech, any accent" in page.text, page.text[-3000:]
    assert "Offer it to" in page.text, page.text[-3000:]
    asset_id = market.by_group["25-34|woman"][0]
    answered = seller.client.post(
        f"/campaigns/{campaign_id}/submit",
        data={"asset_id": asset_id, "csrf_token": _csrf(page.text)},
        headers=HTML,
    )
    assert answered.status_code == 201 and "Submitted" in answered.text
    twice = seller.client.post(
        f"/campaigns/{campaign_id}/submit",
        data={"asset_id": asset_id, "csrf_token": _csrf(page.text)},
        headers=HTML,
    )
    assert twice.status_code == 409 and "already_submitted" in twice.text
