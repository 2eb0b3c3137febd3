"""Appending to the audit log, inside the caller's transaction.

Every state-changing service calls ``append_event`` before its transaction commits, so the
event and the change it records are written together or not at all.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import Session

from fairtrain.audit.chain import (
    GENESIS_HASH,
    ChainedEvent,
    event_hash,
    format_time,
    payload_digest,
)
from fairtrain.audit.models import AuditEvent
from fairtrain.db import is_postgres
from fairtrain.ids import new_id, utcnow

__all__ = [
    "SYSTEM_ACTOR",
    "append_event",
    "count_events",
    "events_page",
    "latest_event",
    "verify_stored_chain",
]

SYSTEM_ACTOR = "system"
# Arbitrary constant naming the audit chain's advisory lock on PostgreSQL.
_CHAIN_LOCK_KEY = 0x6661697274726169


def latest_event(session: Session) -> AuditEvent | None:
    return session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).first()


def append_event(
    session: Session,
    *,
    actor: str,
    action: str,
    subject: str,
    payload: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the chain and flush it in the current transaction.

    ``actor`` and ``subject`` are typed references (``user:usr_…``, ``asset:ast_…``,
    ``system``); ``payload`` holds ids and decisions, never raw personal content.
    """
    if is_postgres(session):
        # Serialise appenders across processes until this transaction ends; the unique
        # constraints on seq/prev_hash would reject a fork anyway, this avoids the retry.
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHAIN_LOCK_KEY})
    previous = latest_event(session)
    seq = 1 if previous is None else previous.seq + 1
    prev_hash = GENESIS_HASH if previous is None else previous.hash
    body = payload or {}
    moment = utcnow()
    chained = ChainedEvent(
        seq=seq,
        event_id=new_id("evt"),
        occurred_at=format_time(moment),
        actor=actor,
        action=action,
        subject=subject,
        payload_digest=payload_digest(body),
        prev_hash=prev_hash,
    )
    event = AuditEvent(
        seq=seq,
        event_id=chained.event_id,
        occurred_at=moment,
        occurred_at_text=chained.occurred_at,
        actor=actor,
        action=action,
        subject=subject,
        payload=body,
        payload_digest=chained.payload_digest,
        prev_hash=prev_hash,
        hash=event_hash(chained),
    )
    session.add(event)
    session.flush()
    return event


def verify_stored_chain(session: Session) -> tuple[bool, int | None, str | None]:
    """Recompute the chain from the database: (ok, first bad seq, why).

    The offline verifier (``audit.verify``) checks exports; this checks the live table,
    for readiness reports and tests ("the audit log still verifies").
    """
    expected_prev = GENESIS_HASH
    expected_seq = 1
    rows = session.execute(
        select(
            AuditEvent.seq,
            AuditEvent.event_id,
            AuditEvent.occurred_at_text,
            AuditEvent.actor,
            AuditEvent.action,
            AuditEvent.subject,
            AuditEvent.payload,
            AuditEvent.payload_digest,
            AuditEvent.prev_hash,
            AuditEvent.hash,
        ).order_by(AuditEvent.seq)
    )
    for seq, event_id, occurred, actor, action, subject, payload, digest, prev, stored in rows:
        if seq != expected_seq:
            return False, expected_seq, "event missing (sequence gap)"
        if prev != expected_prev:
            return False, seq, "previous-hash link broken"
        if payload is not None and payload_digest(payload) != digest:
            return False, seq, "payload does not match its digest"
        recomputed = event_hash(
            ChainedEvent(
                seq=seq,
                event_id=event_id,
                occurred_at=occurred,
                actor=actor,
                action=action,
                subject=subject,
                payload_digest=digest,
                prev_hash=prev,
            )
        )
        if recomputed != stored:
            return False, seq, "event hash does not match its fields"
        expected_prev = stored
        expected_seq += 1
    return True, None, None


def count_events(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def events_page(
    session: Session, *, after_seq: int, limit: int, about_ref: str | None = None
) -> list[AuditEvent]:
    """Keyset page of events in chain order; ``about_ref`` keeps those a person is party to."""
    query = select(AuditEvent).where(AuditEvent.seq > after_seq)
    if about_ref is not None:
        query = query.where(or_(AuditEvent.actor == about_ref, AuditEvent.subject == about_ref))
    return list(session.scalars(query.order_by(AuditEvent.seq).limit(limit)))
