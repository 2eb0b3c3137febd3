"""Fixtures the functional tests share beyond tests/conftest.py."""

from __future__ import annotations

from tests.functional.marketplace_world import market

__all__ = ["market"]
