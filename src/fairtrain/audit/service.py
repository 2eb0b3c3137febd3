"""Appending to the audit log, inside the caller's transaction.

Every state-changing service calls ``append_event`` before its transaction commits, so the
event and the change it records are written together or not at all.

Checkpoints every N events (``settings.audit_checkpoint_every``): a process that owns the
platform key installs a ``CheckpointPolicy`` on its session factory with
``sign_checkpoints_every``; from then on the append that brings the log to a multiple of
N also signs a checkpoint over it, in the same transaction. Done here rather than by a
periodic job because the appender already holds the chain lock, so the checkpoint covers
exactly the events committed with it, and (when every appending process installs the
policy) no event stays unsigned for longer than the next N-1 appends, however busy or
idle the platform is. The price is paid by the one append in N that signs: it streams
every event hash once (``create_checkpoint``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import Session, sessionmaker

from fairtrain.audit.chain import (
    GENESIS_HASH,
    ChainedEvent,
    event_hash,
    format_time,
    payload_digest,
)
from fairtrain.audit.checkpoint import checkpoint_record, create_checkpoint, latest_checkpoint
from fairtrain.audit.keys import key_id
from fairtrain.audit.models import AuditCheckpoint, AuditEvent
from fairtrain.audit.verify import checkpoint_signature_ok
from fairtrain.db import is_postgres
from fairtrain.errors import Conflict
from fairtrain.ids import new_id, utcnow

__all__ = [
    "SYSTEM_ACTOR",
    "ChainCheck",
    "CheckpointPolicy",
    "append_event",
    "checkpoint_policy",
    "count_events",
    "events_page",
    "latest_event",
    "sign_checkpoints_every",
    "verify_since_checkpoint",
    "verify_stored_chain",
    "verify_whole_chain",
]

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "system"
# Arbitrary constant naming the audit chain's advisory lock on PostgreSQL.
_CHAIN_LOCK_KEY = 0x6661697274726169
# Where a session (or every session of a factory) carries its CheckpointPolicy.
_POLICY_INFO_KEY = "fairtrain.audit.checkpoint_policy"


@dataclass(frozen=True, slots=True)
class CheckpointPolicy:
    """Sign a checkpoint with ``signing_key`` whenever the log reaches a multiple of ``every``."""

    signing_key: Ed25519PrivateKey
    every: int


def sign_checkpoints_every(
    target: Session | sessionmaker[Session], signing_key: Ed25519PrivateKey, every: int
) -> None:
    """Make ``append_event`` sign a checkpoint every ``every`` events in ``target``'s sessions.

    Install it on the process's session factory (``sessionmaker``) once, at start-up, with
    ``settings.audit_checkpoint_every``; or on one ``Session``.
    """
    if every < 1:
        raise ValueError(f"the checkpoint interval must be at least 1 event, not {every}")
    policy = CheckpointPolicy(signing_key=signing_key, every=every)
    if isinstance(target, Session):
        target.info[_POLICY_INFO_KEY] = policy
    else:
        # sessionmaker copies kw["info"] into each new Session's own info dict.
        target.kw.setdefault("info", {})[_POLICY_INFO_KEY] = policy


def checkpoint_policy(session: Session) -> CheckpointPolicy | None:
    policy = session.info.get(_POLICY_INFO_KEY)
    return policy if isinstance(policy, CheckpointPolicy) else None


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
    policy = checkpoint_policy(session)
    if policy is not None and seq % policy.every == 0:
        _sign_checkpoint(session, policy, seq)
    return event


def _sign_checkpoint(session: Session, policy: CheckpointPolicy, seq: int) -> None:
    """Sign the log as it stands, still under the chain lock this append holds."""
    try:
        create_checkpoint(session, policy.signing_key)
    except Conflict as error:
        # Only a log with rows deleted behind the chain refuses to be signed. Failing the
        # caller's unrelated change (a consent withdrawal, an upload) would not repair it;
        # the refusal is logged, and ``verify_stored_chain`` and every export name the gap.
        log.error("audit checkpoint at event %d not signed (%s): %s", seq, error.code, error.detail)


VERIFY_BATCH = 2000  # rows per fetch when the live table is checked


def verify_stored_chain(
    session: Session, *, after: tuple[int, str] | None = None
) -> tuple[bool, int | None, str | None]:
    """Recompute the chain from the database: (ok, first bad seq, why).

    The offline verifier (``audit.verify``) checks exports; this checks the live table,
    for readiness reports and tests ("the audit log still verifies"). ``after`` (a seq
    and the hash the next event must link to) recomputes only the events after it.
    """
    expected_seq, expected_prev = (after[0] + 1, after[1]) if after else (1, GENESIS_HASH)
    # Streamed (a server-side cursor on PostgreSQL): the log only grows, and reading it
    # whole on every status request made each request's memory, and the process's
    # high-water mark, grow with it.
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
        )
        .where(AuditEvent.seq >= expected_seq)
        .order_by(AuditEvent.seq)
        .execution_options(yield_per=VERIFY_BATCH)
    )
    with rows:
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


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """What a status check of the live log found, and how far back it looked."""

    ok: bool
    first_bad_seq: int | None
    problem: str | None
    verified_from_seq: int  # the first event recomputed (1: the whole log)
    checkpoint: AuditCheckpoint | None  # the signed checkpoint the check started at


def verify_whole_chain(session: Session) -> ChainCheck:
    """Every event of the log recomputed, as a ``ChainCheck``."""
    return ChainCheck(*verify_stored_chain(session), verified_from_seq=1, checkpoint=None)


def verify_since_checkpoint(session: Session, public_key: Ed25519PublicKey) -> ChainCheck:
    """The check an operator polls: cost bounded by the checkpoint interval, not the log.

    The latest checkpoint must carry a valid platform signature, and the event it ends at
    must still be the one it signed: that event is recomputed from its fields and its
    hash compared with the signed one, then every event after it is recomputed. Events
    the checkpoint covers are not read (an edit among them that recomputes no hash is
    found by the full check, ``verify_stored_chain``: ``fairtrain check`` and
    ``?scope=full``; one that recomputes hashes changes the signed last hash and is found
    here). Without a checkpoint this platform's key signed, the whole log is checked.
    """
    checkpoint = latest_checkpoint(session)
    if checkpoint is None or checkpoint.key_id != key_id(public_key):
        return verify_whole_chain(session)
    start = checkpoint.tree_size

    def bad(seq: int, problem: str) -> ChainCheck:
        return ChainCheck(False, seq, problem, verified_from_seq=start, checkpoint=checkpoint)

    if not checkpoint_signature_ok(checkpoint_record(checkpoint), public_key):
        return bad(start, "the latest checkpoint's signature does not verify")
    anchor = session.execute(
        select(AuditEvent.prev_hash, AuditEvent.hash).where(AuditEvent.seq == start)
    ).first()
    if anchor is None:
        return bad(start, "event missing (the event the latest checkpoint signed)")
    if anchor.hash != checkpoint.last_event_hash:
        return bad(start, "event hash differs from the one the latest checkpoint signed")
    ok, first_bad, problem = verify_stored_chain(session, after=(start - 1, anchor.prev_hash))
    return ChainCheck(ok, first_bad, problem, verified_from_seq=start, checkpoint=checkpoint)


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
