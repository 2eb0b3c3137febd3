"""Expiring consent on a timer, in every process that runs job workers.

``fairtrain consent expire`` does the same once (for cron, or when no worker runs).
"""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from fairtrain.config import Settings
from fairtrain.consent import service
from fairtrain.jobs.periodic import PeriodicWork

__all__ = ["EXPIRY_ACTOR", "expiry_task"]

EXPIRY_ACTOR = "system:consent-expiry"  # the audit log's name for the timer


def expiry_task(settings: Settings, sessions: sessionmaker[Session]) -> PeriodicWork | None:
    """The periodic expiry of consent, or None when the settings turn it off."""
    every = settings.consent_expiry_every_seconds
    if every <= 0:
        return None
    return PeriodicWork(
        "consent-expiry",
        every,
        sessions,
        lambda session: service.expire_policies(session, settings, actor=EXPIRY_ACTOR),
    )
