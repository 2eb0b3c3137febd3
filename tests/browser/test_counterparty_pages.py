"""A contributor invites their chat partner from the asset page; the partner, with no
account and no JavaScript, sees their own messages and the terms, consents, withdraws.
Every page is checked by axe-core."""

from __future__ import annotations

import re
import secrets
import time

from playwright.sync_api import Browser, Page, expect
from tests import media_factory
from tests.browser.a11y import serious_violations
from tests.factories import STRONG_PASSWORD


def _sign_up(page: Page, live_server: str) -> str:
    page.goto(live_server + "/signup")
    page.get_by_label("Your name").fill("Ada Okafor")  # the chat export's sender name
    page.get_by_label("E-mail address").fill(f"ada-{secrets.token_hex(3)}@example.org")
    page.get_by_label("Password").fill(STRONG_PASSWORD)
    page.get_by_label("Date of birth").fill("1990-02-03")
    page.get_by_label("Where you live").fill("DE")
    page.get_by_label("I confirm that I am 18 or older.").check()
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/account$"))
    token = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    assert token
    return token


def _upload_chat(page: Page, live_server: str, csrf: str) -> str:
    response = page.request.post(
        live_server + "/api/v1/uploads?filename=chat.txt",
        data=media_factory.WHATSAPP_ANDROID.encode(),
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


def test_a_chat_partner_is_invited_consents_and_withdraws(
    page: Page, browser: Browser, live_server: str
) -> None:
    csrf = _sign_up(page, live_server)
    asset_id = _upload_chat(page, live_server, csrf)
    page.goto(f"{live_server}/assets/{asset_id}")
    expect(page.get_by_role("heading", name="People in this chat")).to_be_visible()
    page.get_by_role("button", name="Save terms").click()
    page.get_by_label("Their name (optional, only for you)").fill("Ben")
    page.get_by_role("button", name="Create an invite link for Ben Stone").click()
    link = page.locator("#invite-link").inner_text()
    # The link is built on FAIRTRAIN_BASE_URL; the test server listens elsewhere.
    path = link[link.index("/invites/") :]
    assert serious_violations(page) == []

    context = browser.new_context(java_script_enabled=False)
    ben = context.new_page()
    # axe runs as a script, so a second, scripted browser checks each page Ben sees.
    checker = browser.new_context().new_page()

    def accessible() -> None:
        checker.goto(live_server + path)
        assert serious_violations(checker) == []

    ben.goto(live_server + path)
    expect(ben.get_by_role("heading", level=1)).to_have_text("Ada Okafor asks for your consent")
    expect(ben.get_by_label("Your messages")).to_contain_text("call me on")
    assert "are we still on for tomorrow" not in ben.content()
    accessible()
    ben.get_by_role("button", name="I consent: include my part").click()
    expect(ben.locator("#answer-status")).to_contain_text("You consented on")
    accessible()
    ben.get_by_role("button", name="Withdraw my consent").click()
    expect(ben.locator("#answer-status")).to_contain_text("You withdrew your consent")
    accessible()
    context.close()
    checker.context.close()

    page.goto(f"{live_server}/assets/{asset_id}")
    expect(page.get_by_role("cell", name="hidden")).to_be_visible()
    assert serious_violations(page) == []
