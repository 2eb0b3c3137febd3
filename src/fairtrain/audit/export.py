"""Export the audit log to a directory an auditor can verify offline.

Writes ``events.jsonl`` (one canonical line per event: chained fields, hash, payload),
``checkpoints.jsonl`` (every signed checkpoint), ``public_key.pem`` and ``MANIFEST.json``
(counts and the SHA-256 of each file). Events are streamed from the database in chain
order and written as they arrive, so memory stays flat for millions of events. The layout
is described in ``fairtrain.audit.verify`` and docs/audit.md.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from fairtrain.audit.chain import canonical_json
from fairtrain.audit.checkpoint import checkpoint_record
from fairtrain.audit.keys import key_id, public_key_pem
from fairtrain.audit.models import AuditCheckpoint, AuditEvent
from fairtrain.audit.verify import (
    CHECKPOINTS_FILE,
    EVENTS_FILE,
    EXPORT_FORMAT,
    MANIFEST_FILE,
    PUBLIC_KEY_FILE,
    encode_event_line,
)
from fairtrain.errors import Conflict
from fairtrain.ids import utcnow

__all__ = ["ExportSummary", "export_log"]

_STREAM_BATCH = 5_000
_WRITE_BUFFER = 1 << 20


@dataclass(frozen=True, slots=True)
class ExportSummary:
    directory: Path
    events: int
    checkpoints: int
    key_id: str
    files: dict[str, str]  # file name -> SHA-256 hex


class _HashingWriter:
    """Writes bytes to a file while hashing them, so no file is read twice."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self._handle.write(data)
        self.sha256.update(data)


def _prepare(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    clashing = [
        name
        for name in (EVENTS_FILE, CHECKPOINTS_FILE, PUBLIC_KEY_FILE, MANIFEST_FILE)
        if (out_dir / name).exists()
    ]
    if clashing:
        raise Conflict(
            f"{out_dir} already holds an export ({', '.join(clashing)}); choose an empty "
            "directory so an old export is never mixed with a new one.",
            code="export_dir_not_empty",
        )


def _write_events(session: Session, writer: _HashingWriter) -> int:
    rows = session.execute(
        select(
            AuditEvent.seq,
            AuditEvent.event_id,
            AuditEvent.occurred_at_text,
            AuditEvent.actor,
            AuditEvent.action,
            AuditEvent.subject,
            AuditEvent.payload_digest,
            AuditEvent.prev_hash,
            AuditEvent.hash,
            AuditEvent.payload,
        ).order_by(AuditEvent.seq),
        execution_options={"yield_per": _STREAM_BATCH},
    )
    count = 0
    batch: list[bytes] = []
    for seq, event_id, occurred, actor, action, subject, digest, prev, stored, payload in rows:
        chained: dict[str, Any] = {
            "seq": seq,
            "event_id": event_id,
            "occurred_at": occurred,
            "actor": actor,
            "action": action,
            "subject": subject,
            "payload_digest": digest,
            "prev_hash": prev,
        }
        batch.append(encode_event_line(chained, stored, payload))
        count += 1
        if len(batch) >= _STREAM_BATCH:
            writer.write(b"\n".join(batch) + b"\n")
            batch.clear()
    if batch:
        writer.write(b"\n".join(batch) + b"\n")
    return count


def _write_file(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def export_log(session: Session, out_dir: Path, public_key: Ed25519PublicKey) -> ExportSummary:
    """Write the whole log to ``out_dir`` (which must not already hold an export).

    Reads inside the caller's transaction, so events and checkpoints come from one
    snapshot on PostgreSQL; on SQLite the transaction holds the write lock. The export
    carries only what the log holds: take a checkpoint first (the CLI does) so every
    event is under a signature.
    """
    _prepare(out_dir)
    files: dict[str, str] = {}

    with (out_dir / EVENTS_FILE).open("wb", buffering=_WRITE_BUFFER) as handle:
        writer = _HashingWriter(handle)
        events = _write_events(session, writer)
        handle.flush()
        os.fsync(handle.fileno())
    files[EVENTS_FILE] = writer.sha256.hexdigest()

    # Exported as they are, even when they disagree with the events: the verifier, not
    # the exporter, is where an auditor learns that the log was tampered with.
    checkpoints = list(session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size)))
    lines = b"".join(canonical_json(checkpoint_record(c)) + b"\n" for c in checkpoints)
    files[CHECKPOINTS_FILE] = _write_file(out_dir / CHECKPOINTS_FILE, lines)
    files[PUBLIC_KEY_FILE] = _write_file(out_dir / PUBLIC_KEY_FILE, public_key_pem(public_key))

    identity = key_id(public_key)
    manifest = {
        "format": EXPORT_FORMAT,
        "exported_at": utcnow().isoformat(),
        "events": events,
        "checkpoints": len(checkpoints),
        "key_id": identity,
        "files": {name: {"sha256": digest} for name, digest in files.items()},
    }
    (out_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return ExportSummary(
        directory=out_dir,
        events=events,
        checkpoints=len(checkpoints),
        key_id=identity,
        files=files,
    )
