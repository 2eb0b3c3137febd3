"""Helpers shared by the audit tests: a fresh SQLite database and a varied event log."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

import fairtrain.models  # registers every core table (audit among them) on Base.metadata
from fairtrain.audit.service import append_event
from fairtrain.db import Base, make_engine

__all__ = ["make_database", "write_log"]

_REGISTERED = fairtrain.models


def make_database(directory: Path) -> Engine:
    engine = make_engine(f"sqlite:///{directory}/a.db")
    Base.metadata.create_all(engine)
    return engine


def write_log(session: Session, count: int, *, start: int = 1) -> list[str]:
    """Append ``count`` varied events; return their ids."""
    ids = []
    for n in range(start, start + count):
        payload: dict[str, object] = {"asset_id": f"ast_{n}", "n": n, "note": 'Zoë ✓ "q" \\'}
        if n % 3 == 0:
            payload = {}
        event = append_event(
            session,
            actor=f"user:usr_{n % 4}",
            action="asset.approved" if n % 2 else "consent.granted",
            subject=f"asset:ast_{n}",
            payload=payload,
        )
        ids.append(event.event_id)
    return ids
