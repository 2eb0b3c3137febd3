""" "Nothing half-written": the checks every refusal and crash test ends with."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fairtrain.audit.service import verify_stored_chain
from fairtrain.ingest.models import Asset, UploadSegment
from fairtrain.vault.models import BlobState, VaultBlob
from fairtrain.vault.service import find_orphans

__all__ = ["assert_no_trace", "live_blob_ids"]


def live_blob_ids(db: Session) -> set[str]:
    db.expire_all()
    return set(db.scalars(select(VaultBlob.id).where(VaultBlob.state == BlobState.STORED)))


def assert_no_trace(app: Any, db: Session) -> None:
    """No stored object without a row, no live blob without an owner, the log verifies,
    no plaintext scratch file left behind."""
    db.expire_all()
    backend = app.state.runtime.vault.backend
    orphans = find_orphans(db, backend, grace=timedelta(0))
    assert orphans == [], f"orphan objects in the vault: {[o.key for o in orphans]}"
    referenced = set(db.scalars(select(Asset.blob_id).where(Asset.blob_id.is_not(None))))
    referenced |= set(
        db.scalars(select(Asset.redacted_blob_id).where(Asset.redacted_blob_id.is_not(None)))
    )
    referenced |= set(db.scalars(select(UploadSegment.blob_id)))
    dangling = live_blob_ids(db) - referenced
    assert not dangling, f"live blobs that nothing refers to: {sorted(dangling)}"
    assert verify_stored_chain(db) == (True, None, None)
    scratch = app.state.upload_context.scratch_dir
    leftovers = list(scratch.iterdir()) if scratch.exists() else []
    assert leftovers == [], f"plaintext scratch files left behind: {leftovers}"
