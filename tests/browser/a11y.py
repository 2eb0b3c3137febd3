"""axe-core (bundled with axe-playwright-python, offline) run inside the page."""

from __future__ import annotations

from typing import Any

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page

__all__ = ["serious_violations"]

_AXE = Axe()


def serious_violations(page: Page) -> list[dict[str, Any]]:
    results = _AXE.run(page)
    violations: list[dict[str, Any]] = results.response["violations"]
    return [v for v in violations if v.get("impact") in ("serious", "critical")]
