"""Uploads and the asset lifecycle.

An upload streams once: every chunk is encrypted into the vault and, at the same time,
written to a private scratch file that the type sniffer and decoder read. If the bytes
are refused (wrong type, truncated, a bomb, over the limit) the blob is deleted and no
asset row is written: nothing half-stored. Accepted uploads become an asset in state
``uploaded`` and a processing job is dispatched after commit.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import unicodedata
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fairtrain.audit.service import append_event
from fairtrain.catalog import service as catalog
from fairtrain.consent.models import AssetPolicy, CounterpartyInvite
from fairtrain.errors import Conflict, NotFound, PayloadTooLarge
from fairtrain.ids import new_id, utcnow
from fairtrain.ingest.models import TRANSITIONS, Asset, AssetState, DuplicateFlag
from fairtrain.jobs.models import Job
from fairtrain.jobs.service import enqueue_job

__all__ = [
    "PROCESS_JOB",
    "REDACT_JOB",
    "Inspection",
    "Inspector",
    "UploadContext",
    "approve_asset",
    "check_reviewable",
    "erase_asset",
    "get_asset",
    "list_assets",
    "receive_upload",
    "safe_display_name",
    "set_state",
]

PROCESS_JOB = "ingest.process_asset"
# Redact a processed asset again from its original, with the parts whose people consent
# now (counterparty consent); the asset's state does not change.
REDACT_JOB = "ingest.redact_asset"


@dataclass(frozen=True, slots=True)
class Inspection:
    """What the bytes turned out to be (sniffed and decoded, never taken from the name)."""

    modality: str
    media_type: str
    max_bytes: int
    duration_seconds: float | None
    language: str | None
    media_info: dict[str, Any]


# Sniffs and decode-checks a scratch file; raises a DomainError when the bytes are refused.
Inspector = Callable[[Path], Inspection]


@dataclass(frozen=True, slots=True)
class UploadContext:
    """What an upload needs besides the session: where bytes go and how they are checked."""

    store_blob: Callable[..., Any]  # vault.service.store_blob bound to a backend
    delete_blob: Callable[[Session, str], None]
    inspect: Inspector
    scratch_dir: Path
    max_upload_bytes: int
    dispatch: Callable[[str], None]


def safe_display_name(name: str | None) -> str:
    """A name fit to show back: no path, no control or bidi-override characters."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(
        ch
        for ch in unicodedata.normalize("NFC", base)
        if unicodedata.category(ch)[0] != "C"  # controls, formats (incl. U+202E), unassigned
    ).strip(" .")
    # Cut, then trim again, so cleaning a cleaned name changes nothing (idempotent).
    return cleaned[:200].strip(" .") or "upload"


@contextmanager
def _scratch_file(directory: Path) -> Iterator[tuple[Path, Any]]:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor, name = tempfile.mkstemp(prefix="upload-", dir=directory)
    path = Path(name)
    handle = os.fdopen(descriptor, "wb")
    try:
        yield path, handle
    finally:
        handle.close()
        with suppress(FileNotFoundError):
            path.unlink()


def _tee(
    chunks: Iterable[bytes], handle: Any, digest: Any, limit: int, counter: list[int]
) -> Iterator[bytes]:
    for chunk in chunks:
        counter[0] += len(chunk)
        if counter[0] > limit:
            raise PayloadTooLarge(
                f"The file is larger than the {limit:,} bytes accepted for uploads.",
                code="upload_too_large",
            )
        digest.update(chunk)
        handle.write(chunk)
        yield chunk


def receive_upload(
    session: Session,
    context: UploadContext,
    *,
    owner_id: str,
    chunks: Iterable[bytes],
    display_name: str | None,
) -> Asset:
    digest = hashlib.sha256()
    counter = [0]
    with _scratch_file(context.scratch_dir) as (scratch, handle):
        blob = context.store_blob(
            session,
            owner=f"user:{owner_id}",
            stream=_tee(chunks, handle, digest, context.max_upload_bytes, counter),
            media_type="application/octet-stream",
            max_bytes=context.max_upload_bytes,
        )
        handle.flush()
        try:
            inspection = context.inspect(scratch)
            if counter[0] > inspection.max_bytes:
                raise PayloadTooLarge(
                    f"{inspection.modality.title()} files are limited to "
                    f"{inspection.max_bytes:,} bytes.",
                    code="upload_too_large",
                )
        except BaseException:
            context.delete_blob(session, blob.id)
            raise
    now = utcnow()
    asset = Asset(
        id=new_id("ast"),
        owner_id=owner_id,
        state=AssetState.UPLOADED,
        modality=inspection.modality,
        media_type=inspection.media_type,
        display_name=safe_display_name(display_name),
        size_bytes=counter[0],
        sha256=digest.hexdigest(),
        blob_id=blob.id,
        duration_seconds=inspection.duration_seconds,
        language=inspection.language,
        media_info=inspection.media_info,
        quality={},
        privacy_report={},
        created_at=now,
        updated_at=now,
    )
    session.add(asset)
    session.flush()
    append_event(
        session,
        actor=f"user:{owner_id}",
        action="asset.uploaded",
        subject=f"asset:{asset.id}",
        payload={"modality": asset.modality, "sha256": asset.sha256, "bytes": asset.size_bytes},
    )
    _flag_exact_duplicates(session, asset)
    enqueue_job(
        session,
        context.dispatch,
        kind=PROCESS_JOB,
        subject=f"asset:{asset.id}",
        payload={"asset_id": asset.id},
        owner=f"user:{owner_id}",
        dedupe_key=asset.id,
    )
    return asset


def _flag_exact_duplicates(session: Session, asset: Asset) -> None:
    """Byte-identical uploads are flagged at once (indexed lookup on sha256)."""
    others = session.scalars(
        select(Asset).where(Asset.sha256 == asset.sha256, Asset.id != asset.id).limit(20)
    )
    for other in others:
        flag_duplicate(session, asset, other, kind="exact", similarity=1.0)


def flag_duplicate(
    session: Session, asset: Asset, other: Asset, *, kind: str, similarity: float
) -> DuplicateFlag:
    flag = DuplicateFlag(
        id=new_id("dup"),
        asset_id=asset.id,
        duplicate_of=other.id,
        kind=kind,
        similarity=similarity,
        same_owner=asset.owner_id == other.owner_id,
        created_at=utcnow(),
    )
    session.add(flag)
    session.flush()
    append_event(
        session,
        actor="system",
        action="asset.duplicate_flagged",
        subject=f"asset:{asset.id}",
        payload={"duplicate_of": f"asset:{other.id}", "kind": kind, "same_owner": flag.same_owner},
    )
    return flag


def set_state(
    session: Session,
    asset: Asset,
    state: AssetState,
    *,
    actor: str,
    code: str | None = None,
    reason: str | None = None,
) -> Asset:
    current = AssetState(asset.state)
    if state not in TRANSITIONS[current]:
        raise Conflict(
            f"An asset that is {current.value.replace('_', ' ')} cannot become "
            f"{state.value.replace('_', ' ')}.",
            code="invalid_asset_state",
        )
    asset.state = state
    asset.state_code = code
    asset.state_reason = reason
    asset.updated_at = utcnow()
    if state == AssetState.LISTED:
        asset.listed_at = asset.updated_at
    session.flush()
    if AssetState.LISTED in (state, current):
        catalog.sync_entry(session, asset)  # listed, or no longer: the catalogue follows
    append_event(
        session,
        actor=actor,
        action=f"asset.{state.value}",
        subject=f"asset:{asset.id}",
        payload={"from": current.value, "code": code},
    )
    return asset


def get_asset(session: Session, asset_id: str) -> Asset | None:
    return session.get(Asset, asset_id)


def list_assets(
    session: Session, owner_id: str, *, limit: int = 50, before: str | None = None
) -> list[Asset]:
    query = select(Asset).where(Asset.owner_id == owner_id)
    if before is not None:
        pivot = session.get(Asset, before)
        if pivot is None or pivot.owner_id != owner_id:
            raise NotFound("No such asset to page from.", code="asset_not_found")
        query = query.where(
            (Asset.created_at < pivot.created_at)
            | ((Asset.created_at == pivot.created_at) & (Asset.id < pivot.id))
        )
    return list(
        session.scalars(query.order_by(Asset.created_at.desc(), Asset.id.desc()).limit(limit))
    )


def latest_job(session: Session, asset_id: str) -> Job | None:
    return session.scalars(
        select(Job)
        .where(Job.subject == f"asset:{asset_id}")
        .order_by(Job.created_at.desc(), Job.id.desc())
    ).first()


def latest_job_ids(session: Session, asset_ids: Collection[str]) -> dict[str, str]:
    """The latest job of each asset (by id), in one query: a list page asks for many."""
    subjects = {f"asset:{asset_id}": asset_id for asset_id in asset_ids}
    if not subjects:
        return {}
    rows = session.execute(
        select(Job.subject, Job.id)
        .where(Job.subject.in_(subjects))
        .order_by(Job.created_at, Job.id)
    )
    # Ordered oldest first: the last one seen for a subject is its latest.
    return {subjects[subject]: job_id for subject, job_id in rows}


def check_reviewable(asset: Asset) -> None:
    if AssetState(asset.state) != AssetState.AWAITING_REVIEW or asset.redacted_blob_id is None:
        raise Conflict(
            "Only an asset whose redacted version is ready for review can be approved.",
            code="asset_not_reviewable",
        )


def approve_asset(session: Session, asset: Asset, *, actor: str) -> Asset:
    """The contributor has seen the redacted version and lets it be listed."""
    if AssetState(asset.state) != AssetState.AWAITING_REVIEW:
        raise Conflict(
            "Only an asset whose redacted version is ready for review can be approved.",
            code="asset_not_reviewable",
        )
    if asset.redacted_blob_id is None:
        raise Conflict(
            "This asset has no redacted version to approve.", code="asset_not_reviewable"
        )
    has_terms = session.scalar(
        select(AssetPolicy.id).where(
            AssetPolicy.asset_id == asset.id, AssetPolicy.superseded_at.is_(None)
        )
    )
    if has_terms is None:  # listing without terms would let the catalogue guess them
        raise Conflict("Choose the terms for this asset first.", code="asset_without_terms")
    return set_state(session, asset, AssetState.LISTED, actor=actor)


def erase_asset(
    session: Session, asset: Asset, delete_blob: Callable[[Session, str], None], *, actor: str
) -> Asset:
    """Delete every stored version; the row stays as a tombstone the audit log refers to."""
    if AssetState(asset.state) == AssetState.ERASED:
        return asset
    for blob_id in (asset.blob_id, asset.redacted_blob_id):
        if blob_id is not None:
            delete_blob(session, blob_id)
    asset.blob_id = None
    asset.redacted_blob_id = None
    # What the owner typed to remember whom they invited goes with the asset; the invites
    # themselves stay, as the records their receipts and audit events refer to.
    session.execute(
        update(CounterpartyInvite)
        .where(CounterpartyInvite.asset_id == asset.id)
        .values(invitee_name=None, invitee_email=None)
    )
    return set_state(session, asset, AssetState.ERASED, actor=actor)
