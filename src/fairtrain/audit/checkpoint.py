"""Signed Merkle checkpoints over the audit chain, and inclusion proofs against them.

A checkpoint commits the platform, with its Ed25519 key, to the first ``tree_size``
events: the RFC 6962 root over their hashes, the last event's hash and the time. An
auditor holding one can later demand a consistency proof (the log only grew) and a
contributor can get an inclusion proof (their receipt's event is in the signed log).

Creating a checkpoint appends **no** audit event: the event would itself be a leaf of
the log the checkpoint signs, so the checkpoint could never cover its own creation and
every checkpoint would leave one unsigned event behind. The checkpoints table is its own
record, and every checkpoint is exported and verified beside the events.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fairtrain.audit.chain import format_time
from fairtrain.audit.keys import key_id
from fairtrain.audit.merkle import (
    MerkleFrontier,
    consistency_ranges,
    hash_ranges,
    inclusion_ranges,
)
from fairtrain.audit.models import AuditCheckpoint, AuditEvent
from fairtrain.audit.verify import checkpoint_message
from fairtrain.errors import Conflict, InvalidInput, NotFound
from fairtrain.ids import utcnow

__all__ = [
    "checkpoint_record",
    "consistency_proof",
    "create_checkpoint",
    "event_hashes",
    "inclusion_proof",
    "latest_checkpoint",
    "maybe_checkpoint",
]

# Rows fetched per round trip when streaming hashes: large enough to amortise the
# driver, small enough to keep memory flat over millions of events.
_STREAM_BATCH = 10_000


def event_hashes(session: Session, upto: int) -> Iterator[bytes]:
    """Raw 32-byte hashes of events 1..upto in chain order, streamed (no ORM objects)."""
    rows = session.execute(
        select(AuditEvent.hash).where(AuditEvent.seq <= upto).order_by(AuditEvent.seq),
        execution_options={"yield_per": _STREAM_BATCH},
    ).scalars()
    fromhex = bytes.fromhex
    for value in rows:
        yield fromhex(value)


def latest_checkpoint(session: Session) -> AuditCheckpoint | None:
    return session.scalars(
        select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size.desc()).limit(1)
    ).first()


def checkpoint_record(checkpoint: AuditCheckpoint) -> dict[str, Any]:
    """A checkpoint in its exported spelling (the signed fields plus the signature)."""
    return {
        "tree_size": checkpoint.tree_size,
        "root_hash": checkpoint.root_hash,
        "last_event_hash": checkpoint.last_event_hash,
        "created_at": checkpoint.created_at_text,
        "key_id": checkpoint.key_id,
        "signature": checkpoint.signature,
    }


def create_checkpoint(session: Session, signing_key: Ed25519PrivateKey) -> AuditCheckpoint:
    """Sign the Merkle root over every event so far; return the existing one if current."""
    tree_size: int = session.scalar(select(func.max(AuditEvent.seq))) or 0
    if tree_size == 0:
        raise Conflict("The audit log is empty: there is nothing to sign.", code="audit_empty")
    existing = session.get(AuditCheckpoint, tree_size)
    if existing is not None:
        return existing
    frontier = MerkleFrontier()
    last = b""
    for last in event_hashes(session, tree_size):
        frontier.append_event_hash(last)
    if frontier.size != tree_size:
        # seq is dense by construction; a gap means rows were deleted behind the chain.
        raise Conflict(
            f"The audit log has {frontier.size} events up to position {tree_size}: "
            "events are missing, run `fairtrain audit verify` on an export.",
            code="audit_chain_gap",
        )
    moment = utcnow()
    created_at = format_time(moment)
    root_hash = frontier.root().hex()
    identity = key_id(signing_key.public_key())
    signature = signing_key.sign(
        checkpoint_message(
            tree_size=tree_size,
            root_hash=root_hash,
            last_event_hash=last.hex(),
            created_at=created_at,
            key_id=identity,
        )
    )
    checkpoint = AuditCheckpoint(
        tree_size=tree_size,
        root_hash=root_hash,
        last_event_hash=last.hex(),
        created_at=moment,
        created_at_text=created_at,
        key_id=identity,
        signature=base64.b64encode(signature).decode("ascii"),
    )
    session.add(checkpoint)
    session.flush()
    return checkpoint


def maybe_checkpoint(
    session: Session, signing_key: Ed25519PrivateKey, every: int
) -> AuditCheckpoint | None:
    """Sign a new checkpoint once at least ``every`` events arrived since the last one."""
    if every < 1:
        raise InvalidInput("Checkpoint interval must be at least 1 event.", code="bad_interval")
    latest = latest_checkpoint(session)
    covered = latest.tree_size if latest is not None else 0
    newest = session.scalar(select(func.max(AuditEvent.seq))) or 0
    if newest - covered < every:
        return None
    return create_checkpoint(session, signing_key)


def inclusion_proof(session: Session, event_id: str) -> dict[str, Any]:
    """Proof that event ``event_id`` is in the tree the latest checkpoint signs.

    Verify it offline with ``fairtrain.audit.verify.verify_inclusion_proof`` and the
    platform's public key.
    """
    event = session.scalars(select(AuditEvent).where(AuditEvent.event_id == event_id)).first()
    if event is None:
        raise NotFound("No audit event has this id.", code="audit_event_not_found")
    seq, event_hash = event.seq, event.hash
    checkpoint = latest_checkpoint(session)
    if checkpoint is None or checkpoint.tree_size < seq:
        raise Conflict(
            "This event is newer than the latest checkpoint; it can be proven once the "
            "next checkpoint is signed (`fairtrain audit checkpoint`).",
            code="audit_event_not_checkpointed",
        )
    ranges = inclusion_ranges(seq - 1, checkpoint.tree_size)
    path = hash_ranges(event_hashes(session, checkpoint.tree_size), ranges)
    return {
        "event_id": event_id,
        "seq": seq,
        "leaf_index": seq - 1,
        "event_hash": event_hash,
        # The fields the event hash covers (the payload only by its digest), so a
        # verifier recomputes the hash and the id cannot be swapped for another.
        "event": {
            "seq": event.seq,
            "event_id": event.event_id,
            "occurred_at": event.occurred_at_text,
            "actor": event.actor,
            "action": event.action,
            "subject": event.subject,
            "payload_digest": event.payload_digest,
            "prev_hash": event.prev_hash,
        },
        "audit_path": [node.hex() for node in path],
        "checkpoint": checkpoint_record(checkpoint),
    }


def consistency_proof(session: Session, old_size: int, new_size: int) -> list[str]:
    """Hashes proving the tree of ``old_size`` events is a prefix of the ``new_size`` tree."""
    newest = session.scalar(select(func.max(AuditEvent.seq))) or 0
    if not 0 < old_size <= new_size <= newest:
        raise InvalidInput(
            f"Sizes must satisfy 0 < old ≤ new ≤ {newest} (the log's length).",
            code="bad_tree_sizes",
        )
    ranges = consistency_ranges(old_size, new_size)
    return [node.hex() for node in hash_ranges(event_hashes(session, new_size), ranges)]
