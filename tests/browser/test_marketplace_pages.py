"""The marketplace journeys in a real browser, every page checked by axe-core:

- a buyer searches the catalogue, builds a dataset (the representation chart), takes a
  quote and places the order; an operator confirms the payment; the buyer opens the
  licence and prepares the download;
- the contributor whose photos were licensed sees who licensed them, for what, and what
  they earned (the chart), and gives payout details;
- the contributor withdraws a photo and sees the buyer notified; when the buyer lets the
  deletion deadline pass, the operator sees the attestation overdue.
"""

from __future__ import annotations

import re
import secrets
import time
from datetime import timedelta

from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session
from tests import media_factory
from tests.browser.a11y import serious_violations
from tests.factories import STRONG_PASSWORD

from fairtrain.accounts import service as accounts
from fairtrain.accounts.models import UserKind
from fairtrain.accounts.passwords import PasswordPolicy
from fairtrain.config import Settings
from fairtrain.db import make_engine
from fairtrain.withdrawal import notices
from fairtrain.withdrawal.models import Notice


def _accessible(page: Page) -> None:
    assert serious_violations(page) == [], page.url


def _operator(settings: Settings) -> str:
    """An operator, made as the CLI makes them."""
    email = f"otto-{secrets.token_hex(3)}@example.org"
    engine = make_engine(settings.effective_database_url)
    try:
        with Session(engine) as session:
            accounts.create_staff_user(
                session,
                PasswordPolicy(
                    time_cost=settings.argon2_time_cost,
                    memory_kib=settings.argon2_memory_kib,
                    parallelism=settings.argon2_parallelism,
                ),
                kind=UserKind.OPERATOR,
                email=email,
                password=STRONG_PASSWORD,
                display_name="Otto Operator",
                actor="system:test",
            )
            session.commit()
    finally:
        engine.dispose()
    return email


def _list_photos(page: Page, live_server: str, count: int) -> list[str]:
    """A contributor signs up and lists photos under the default terms."""
    page.goto(live_server + "/signup")
    page.get_by_label("Your name").fill("Pia Photo")
    page.get_by_label("E-mail address").fill(f"pia-{secrets.token_hex(3)}@example.org")
    page.get_by_label("Password").fill(STRONG_PASSWORD)
    page.get_by_label("Date of birth").fill("1992-04-05")
    page.get_by_label("Where you live").fill("DE")
    page.get_by_label("I confirm that I am 18 or older.").check()
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/account$"))
    csrf = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    assert csrf
    headers = {"X-CSRF-Token": csrf}
    listed = []
    for seed in range(count):
        response = page.request.post(
            f"{live_server}/api/v1/uploads?filename=photo{seed}.png",
            data=media_factory.png_bytes(size=(160, 120), seed=seed + 7),
            headers=headers | {"Content-Type": "application/octet-stream"},
        )
        assert response.status == 201, response.text()
        asset_id = str(response.json()["id"])
        deadline = time.monotonic() + 60
        while page.request.get(f"{live_server}/api/v1/assets/{asset_id}").json()["state"] != (
            "awaiting_review"
        ):
            assert time.monotonic() < deadline, "processing did not finish"
            time.sleep(0.2)
        approved = page.request.post(
            f"{live_server}/api/v1/assets/{asset_id}/approve", headers=headers
        )
        assert approved.status == 200, approved.text()
        listed.append(asset_id)
    return listed


def _log_in(page: Page, live_server: str, email: str) -> None:
    page.goto(live_server + "/login")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(STRONG_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/account$"))


def test_buyer_licenses_a_dataset_and_the_contributor_sees_it(
    page: Page, browser: Browser, live_server: str, live_settings: Settings
) -> None:
    photos = _list_photos(page, live_server, 2)
    org = f"Pixel Lab {secrets.token_hex(2)}"

    buyer_context = browser.new_context(viewport={"width": 390, "height": 844})
    buyer = buyer_context.new_page()
    buyer.goto(live_server + "/signup/buyer")
    buyer.get_by_label("Organisation name").fill(org)
    buyer.get_by_label("Your name").fill("Bea Buyer")
    buyer.get_by_label("Work e-mail address").fill(f"bea-{secrets.token_hex(3)}@example.org")
    buyer.get_by_label("Password").fill(STRONG_PASSWORD)
    buyer.get_by_label("Where the organisation is established").fill("NL")
    buyer.get_by_role("button", name="Register organisation").click()
    expect(buyer).to_have_url(re.compile(r"/org$"))

    # The catalogue, with the licence the buyer needs: facets count what fits.
    buyer.get_by_role("link", name="Catalogue").click()
    _accessible(buyer)
    buyer.get_by_label("Purpose").select_option("fine_tuning")
    buyer.get_by_label("Country of use (2 letters)").fill("DE")
    buyer.get_by_role("button", name="Search").click()
    for asset_id in photos:
        expect(buyer.get_by_role("cell", name=asset_id)).to_be_visible()
    expect(buyer.get_by_role("checkbox", name=re.compile(r"^image \(\d+\)$"))).to_be_visible()
    _accessible(buyer)

    # The dataset builder and its representation chart (SVG plus the table).
    buyer.get_by_role("link", name="Datasets").first.click()
    _accessible(buyer)
    buyer.get_by_label("Name", exact=True).fill("Street photos")
    buyer.get_by_label("Purpose").select_option("fine_tuning")
    buyer.get_by_label("Country where it will be used (2 letters)").fill("DE")
    buyer.get_by_label("image").check()
    buyer.get_by_role("button", name="Build dataset").click()
    expect(buyer.get_by_role("heading", level=1)).to_have_text("Street photos")
    expect(buyer.get_by_role("img", name=re.compile("Share of the dataset"))).to_be_visible()
    expect(buyer.get_by_role("table", name=re.compile("the numbers"))).to_be_visible()
    _accessible(buyer)

    buyer.get_by_role("button", name="Get a quote").click()
    expect(buyer.get_by_role("heading", level=1)).to_have_text("Quote for Street photos")
    _accessible(buyer)
    buyer.get_by_role("button", name="Place the order").click()
    expect(buyer.get_by_role("heading", name="How to pay")).to_be_visible()
    _accessible(buyer)
    invoice = buyer.get_by_role("heading", level=1).inner_text().removeprefix("Order ")

    # The operator confirms the transfer.
    operator_context = browser.new_context(viewport={"width": 1280, "height": 900})
    operator = operator_context.new_page()
    operator_email = _operator(live_settings)
    _log_in(operator, live_server, operator_email)
    operator.get_by_role("link", name="Payments to confirm").click()
    _accessible(operator)
    operator.get_by_label(f"Bank reference for {invoice}").fill("BANK-2026-0042")
    operator.get_by_role("button", name=f"Confirm payment of {invoice}").click()
    expect(operator.get_by_role("status")).to_contain_text(f"Payment for {invoice} confirmed")
    _accessible(operator)
    operator.get_by_role("link", name="Trial balance").click()
    expect(operator.get_by_role("cell", name="balanced").first).to_be_visible()
    _accessible(operator)
    operator.get_by_role("link", name="Payouts").click()
    _accessible(operator)
    operator_context.close()

    # The buyer's licence, and its download.
    buyer.reload()
    buyer.get_by_role("link", name="Open the licence").click()
    expect(buyer.get_by_role("heading", level=1)).to_have_text("Licence for Street photos")
    _accessible(buyer)
    buyer.get_by_role("button", name="Prepare the download").click()
    deadline = time.monotonic() + 60
    while buyer.get_by_role("link", name="manifest.json").count() == 0:
        assert time.monotonic() < deadline, "the export was not ready in time"
        time.sleep(0.5)
        buyer.reload()
    _accessible(buyer)
    buyer.get_by_role("link", name="Licences", exact=True).click()
    expect(buyer.get_by_role("link", name="Street photos")).to_be_visible()
    _accessible(buyer)
    buyer_context.close()

    # The contributor: who licensed what, and the earnings chart.
    page.get_by_role("link", name="Who licensed it").click()
    expect(page.get_by_role("cell", name=org).first).to_be_visible()
    expect(page.get_by_role("cell", name=photos[0])).to_be_visible()
    _accessible(page)
    page.get_by_role("link", name="Earnings", exact=True).click()
    expect(page.get_by_role("img", name=re.compile("Earnings per month in EUR"))).to_be_visible()
    _accessible(page)
    page.get_by_label("Account holder").fill("Pia Photo")
    page.get_by_label("IBAN").fill("DE89 3704 0044 0532 0130 00")
    page.get_by_role("button", name="Save payout details").click()
    expect(page.get_by_role("status")).to_contain_text("Saved")
    _accessible(page)
    page.get_by_role("link", name="Campaigns", exact=True).click()
    _accessible(page)

    # The contributor takes one photo back; the buyer is told at once.
    page.get_by_role("link", name="Take back").click()
    _accessible(page)
    page.get_by_label(re.compile(photos[0])).check()
    page.get_by_role("button", name="Withdraw").click()
    expect(page.get_by_role("status")).to_contain_text("Withdrawn")
    expect(page.get_by_role("cell", name=org)).to_be_visible()
    expect(page.get_by_role("cell", name="notified")).to_be_visible()
    _accessible(page)

    # The buyer never attests; once the deadline passes (the escalation round, run as
    # `fairtrain notices escalate` runs it) the operator sees the notice overdue.
    engine = make_engine(live_settings.effective_database_url)
    try:
        with Session(engine) as session:
            notice = session.scalars(select(Notice).order_by(Notice.created_at.desc())).first()
            assert notice is not None
            notices.escalate(session, live_settings, now=notice.deadline_at + timedelta(hours=1))
            session.commit()
    finally:
        engine.dispose()
    operator_context = browser.new_context(viewport={"width": 1280, "height": 900})
    operator = operator_context.new_page()
    _log_in(operator, live_server, operator_email)
    operator.get_by_role("link", name="Overdue attestations").click()
    expect(operator.get_by_role("cell", name=org)).to_be_visible()
    expect(operator.get_by_role("cell", name="overdue")).to_be_visible()
    _accessible(operator)
    operator_context.close()
    page.reload()
    expect(page.get_by_role("cell", name="overdue")).to_be_visible()
