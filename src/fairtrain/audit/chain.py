"""The hash chain's encoding: pure functions shared by the writer and the offline verifier.

An event's hash is SHA-256 over the RFC 8785 (JSON Canonicalization Scheme) encoding of
its chained fields, which include the previous event's hash and the event's own id (the
handle receipts and inclusion proofs cite, so it cannot be moved to another event).
Changing, inserting, deleting or reordering any event changes every hash after it.

The payload itself is not chained, only its digest: personal content can later be
removed from a payload (erasure) without breaking the chain, and the verifier still checks
every payload that is present against its digest.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import rfc8785

__all__ = [
    "GENESIS_HASH",
    "ChainedEvent",
    "canonical_json",
    "event_hash",
    "format_time",
    "payload_digest",
]

GENESIS_HASH = "0" * 64


def canonical_json(value: Any) -> bytes:
    return bytes(rfc8785.dumps(value))


def payload_digest(payload: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(payload)).hexdigest()


def format_time(moment: datetime) -> str:
    """UTC, microsecond precision, 'Z' suffix: one spelling of each instant."""
    if moment.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class ChainedEvent:
    """The fields an event's hash covers, in their exported spelling."""

    seq: int
    event_id: str
    occurred_at: str
    actor: str
    action: str
    subject: str
    payload_digest: str
    prev_hash: str

    def chained_fields(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "event_id": self.event_id,
            "occurred_at": self.occurred_at,
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "payload_digest": self.payload_digest,
            "prev_hash": self.prev_hash,
        }


def event_hash(event: ChainedEvent) -> str:
    return hashlib.sha256(canonical_json(event.chained_fields())).hexdigest()
