"""A buyer registers an organisation and creates an API key that is shown exactly once."""

from __future__ import annotations

import re
import secrets

from playwright.sync_api import Page, expect
from tests.browser.a11y import serious_violations
from tests.factories import STRONG_PASSWORD


def test_buyer_registers_and_creates_a_key(page: Page, live_server: str) -> None:
    page.goto(live_server + "/")
    page.get_by_role("link", name="For buyers").click()
    assert serious_violations(page) == []
    page.get_by_label("Organisation name").fill("Browser Speech Lab")
    page.get_by_label("Your name").fill("Bea Browser")
    page.get_by_label("Work e-mail address").fill(f"bea-{secrets.token_hex(3)}@example.org")
    page.get_by_label("Password").fill(STRONG_PASSWORD)
    page.get_by_label("Where the organisation is established").fill("NL")
    page.get_by_role("button", name="Register organisation").click()
    expect(page).to_have_url(re.compile(r"/org$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Browser Speech Lab")
    assert serious_violations(page) == []

    page.get_by_label("Name (what will use it)").fill("training cluster")
    page.get_by_label("catalog:read").check()
    page.get_by_label("downloads:read").check()
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("code.secret").inner_text()
    assert secret.startswith("ftk_")
    assert serious_violations(page) == []
    # Shown once: a reload no longer contains it.
    page.goto(live_server + "/org")
    assert secret not in page.content()
    expect(page.get_by_role("cell", name="catalog:read, downloads:read")).to_be_visible()
    page.get_by_role("button", name="Revoke key training cluster").click()
    expect(page.get_by_role("cell", name="revoked")).to_be_visible()
