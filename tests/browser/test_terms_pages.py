"""A contributor edits one photo's main terms field by field, reads them in plain words
with their risk notes before saving, then changes the terms of two photos at once.
Every page state is checked by axe-core."""

from __future__ import annotations

import re
import secrets
import time

from playwright.sync_api import Page, expect
from tests import media_factory
from tests.browser.a11y import serious_violations
from tests.factories import STRONG_PASSWORD


def _sign_up(page: Page, live_server: str) -> str:
    page.goto(live_server + "/signup")
    page.get_by_label("Your name").fill("Tess Terms")
    page.get_by_label("E-mail address").fill(f"tess-{secrets.token_hex(3)}@example.org")
    page.get_by_label("Password").fill(STRONG_PASSWORD)
    page.get_by_label("Date of birth").fill("1991-04-05")
    page.get_by_label("Where you live").fill("DE")
    page.get_by_label("I confirm that I am 18 or older.").check()
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/account$"))
    token = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    assert token
    return token


def _upload_photo(page: Page, live_server: str, csrf: str, name: str, seed: int) -> str:
    response = page.request.post(
        f"{live_server}/api/v1/uploads?filename={name}",
        data=media_factory.png_bytes(size=(160, 120), seed=seed),
        headers={"X-CSRF-Token": csrf, "Content-Type": "application/octet-stream"},
    )
    assert response.status == 201, response.text()
    asset_id = str(response.json()["id"])
    deadline = time.monotonic() + 60
    while page.request.get(f"{live_server}/api/v1/assets/{asset_id}").json()["state"] != (
        "awaiting_review"
    ):
        assert time.monotonic() < deadline, "processing did not finish"
        time.sleep(0.2)
    return asset_id


def test_terms_are_edited_previewed_and_applied_in_bulk(page: Page, live_server: str) -> None:
    csrf = _sign_up(page, live_server)
    first = _upload_photo(page, live_server, csrf, "garden.png", 11)
    second = _upload_photo(page, live_server, csrf, "harbour.png", 12)

    page.goto(f"{live_server}/assets/{first}")
    expect(page.get_by_role("heading", name="Or set each term yourself")).to_be_visible()
    page.locator("#allow-research_and_development").uncheck()
    page.locator("#allow-academic_research").check()
    page.get_by_label("Countries buyers may be in").fill("DE")
    page.get_by_label("Each licence lasts (months)").fill("6")
    page.locator("#edit-price").fill("2.00")
    page.get_by_label("Buyers must name me as the source").check()
    page.get_by_label("My consent ends on (optional)").fill("2099-12-31")
    page.get_by_role("button", name="Preview in plain words").click()
    preview = page.get_by_role("region", name="Your new terms before you save")
    expect(preview).to_contain_text("research at universities")
    expect(preview).to_contain_text("Only in Germany.")
    expect(preview).to_contain_text("They must name you as the source.")
    expect(preview.get_by_role("heading", name="Before you agree")).to_be_visible()
    assert serious_violations(page) == []
    page.get_by_role("button", name="Save these terms", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/assets/{first}#terms$"))
    expect(page.locator("#terms-status")).to_contain_text("ends on 2099-12-31")
    expect(page.get_by_role("table", name=re.compile("Signed records"))).to_contain_text("grant")
    assert serious_violations(page) == []

    page.goto(f"{live_server}/assets")
    bulk = page.locator("#bulk-terms")
    bulk.get_by_label("garden.png").check()
    bulk.get_by_label("harbour.png").check()
    page.locator("#bulk-edit-price").fill("1.50")
    page.get_by_role("button", name="Preview in plain words").click()
    expect(page.locator("#bulk-preview")).to_contain_text("1.50 euro")
    assert serious_violations(page) == []
    page.get_by_role("button", name="Save these terms", exact=True).click()
    expect(page.locator("#bulk-done")).to_contain_text("New terms saved for 2")
    rows = page.locator("tbody tr")
    expect(rows.filter(has_text="garden.png").locator(".terms-cell")).to_have_text("version 2")
    expect(rows.filter(has_text="harbour.png").locator(".terms-cell")).to_have_text("version 1")
    assert serious_violations(page) == []
    policy = page.request.get(f"{live_server}/api/v1/assets/{second}/policy").json()
    assert policy["summary"]["price_minor"] == 150
