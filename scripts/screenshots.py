"""Take the screenshots in docs/screenshots/ from a fresh demo marketplace.

Starts ``fairtrain serve --demo`` on a free loopback port with a throw-away data
directory, drives Debian's chromium (never ``playwright install``) through the main pages
as the demo buyer, operator and contributor, and writes one PNG per page. The buyer
builds a second, gender-balanced dataset and orders it on the way, so the operator has a
payment to confirm, and prepares the demo licence's download so its files are listed.

    uv run python scripts/screenshots.py [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, sync_playwright

from fairtrain.demo import DEMO_LOGINS

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOGINS = {login.email.split("@")[0]: login for login in DEMO_LOGINS}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_up(base: str, server: subprocess.Popen[bytes], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the demo server stopped (exit {server.returncode})")
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit("the demo server did not start in time")


def _log_in(browser: Browser, base: str, who: str, width: int = 1100) -> Page:
    login = LOGINS[who]
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.goto(base + "/login")
    page.get_by_label("E-mail address").fill(login.email)
    page.get_by_label("Password").fill(login.password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/account")
    return page


def _shot(page: Page, out: Path, name: str) -> None:
    path = out / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"wrote {path}")


def take(base: str, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            buyer = _log_in(browser, base, "bea")
            buyer.goto(base + "/catalogue?purpose=fine_tuning&territory=NL")
            _shot(buyer, out, "buyer-catalogue")
            buyer.goto(base + "/datasets")
            buyer.get_by_label("Name", exact=True).fill("Photos balanced by gender")
            buyer.get_by_label("Purpose").select_option("fine_tuning")
            buyer.get_by_label("Country where it will be used (2 letters)").fill("NL")
            buyer.get_by_label("image").check()
            buyer.get_by_label("Gender").check()
            buyer.get_by_role("button", name="Build dataset").click()
            buyer.wait_for_selector("h1")
            _shot(buyer, out, "buyer-dataset")
            buyer.get_by_role("button", name="Get a quote").click()
            buyer.wait_for_url("**/quotes/*")
            _shot(buyer, out, "buyer-quote")
            buyer.get_by_role("button", name="Place the order").click()
            buyer.wait_for_url("**/orders/*")
            _shot(buyer, out, "buyer-order")
            buyer.goto(base + "/licences")
            buyer.get_by_role("link", name="Everyday photos").first.click()
            buyer.wait_for_url("**/licences/*")
            buyer.get_by_role("button", name="Prepare the download").click()
            deadline = time.monotonic() + 120
            while buyer.get_by_role("link", name="manifest.json").count() == 0:
                if time.monotonic() > deadline:
                    raise SystemExit("the demo export was not ready in two minutes")
                time.sleep(1)
                buyer.reload()
            _shot(buyer, out, "buyer-licence")

            operator = _log_in(browser, base, "otto")
            operator.goto(base + "/operator/orders")
            _shot(operator, out, "operator-orders")
            operator.goto(base + "/operator/trial-balance")
            _shot(operator, out, "operator-trial-balance")

            ada = _log_in(browser, base, "ada", width=390)  # a phone
            ada.goto(base + "/me/licences")
            _shot(ada, out, "contributor-licences")
            ada.goto(base + "/me/earnings")
            _shot(ada, out, "contributor-earnings")
            ada.goto(base + "/campaigns")
            _shot(ada, out, "contributor-campaigns")
        finally:
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    args = parser.parse_args()
    fairtrain = Path(sys.executable).parent / "fairtrain"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="fairtrain-shots-") as data_dir:
        env = os.environ | {"FAIRTRAIN_DATA_DIR": data_dir}
        server = subprocess.Popen(  # noqa: S603 (our own command, fixed arguments)
            [str(fairtrain), "serve", "--demo", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_until_up(base, server)
            take(base, args.out)
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
