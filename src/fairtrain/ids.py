"""Identifiers and time.

Ids that appear in URLs are unguessable: 128 random bits, base32, behind a short type
prefix so a log line says what it names (``ast_…`` is an asset). Sequential ids are never
exposed; the IDOR probes in the reliability suite rely on this.

Time is always UTC and timezone-aware.
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime

__all__ = ["new_id", "utcnow"]


def new_id(prefix: str) -> str:
    token = base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=").lower()
    return f"{prefix}_{token}"


def utcnow() -> datetime:
    return datetime.now(UTC)
