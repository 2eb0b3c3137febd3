"""A contributor signs up, lands on their account page, logs out and back in — in a real
browser, on a phone-sized screen, with every page checked by axe-core."""

from __future__ import annotations

import re
import secrets

from playwright.sync_api import Page, expect
from tests.browser.a11y import serious_violations
from tests.factories import STRONG_PASSWORD


def test_contributor_signup_logout_login_journey(page: Page, live_server: str) -> None:
    email = f"browser-{secrets.token_hex(4)}@example.org"
    page.goto(live_server + "/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("License your own data")
    assert serious_violations(page) == []

    page.get_by_role("link", name="Sign up").first.click()
    expect(page).to_have_url(re.compile(r"/signup$"))
    assert serious_violations(page) == []
    page.get_by_label("Your name").fill("Browser Person")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(STRONG_PASSWORD)
    page.get_by_label("Date of birth").fill("1990-02-03")
    page.get_by_label("Where you live").fill("DE")
    page.get_by_label("I confirm that I am 18 or older.").check()
    page.get_by_role("button", name="Create account").click()

    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Browser Person")
    assert serious_violations(page) == []

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/$"))
    page.goto(live_server + "/login")
    assert serious_violations(page) == []
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill("not-the-password-1")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("wrong")
    page.get_by_label("Password").fill(STRONG_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/account$"))


def test_under_age_signup_shows_the_reason_and_keeps_the_form(page: Page, live_server: str) -> None:
    page.goto(live_server + "/signup")
    page.get_by_label("Your name").fill("Too Young")
    page.get_by_label("E-mail address").fill(f"young-{secrets.token_hex(3)}@example.org")
    page.get_by_label("Password").fill(STRONG_PASSWORD)
    page.get_by_label("Date of birth").fill("2015-01-01")
    page.get_by_label("Where you live").fill("GB")
    page.get_by_label("I confirm that I am 18 or older.").check()
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("alert")).to_contain_text("at least 18")
    expect(page.get_by_label("Your name")).to_have_value("Too Young")
    assert serious_violations(page) == []


def test_pages_work_without_javascript(browser, live_server: str) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(live_server + "/signup")
    page.get_by_label("Your name").fill("No Script")
    page.get_by_label("E-mail address").fill(f"nojs-{secrets.token_hex(3)}@example.org")
    page.get_by_label("Password").fill(STRONG_PASSWORD)
    page.get_by_label("Date of birth").fill("1980-12-12")
    page.get_by_label("Where you live").fill("FR")
    page.get_by_label("I confirm that I am 18 or older.").check()
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, No Script")
    context.close()
