"""Resumable uploads, tus 1.0 core protocol plus the creation and termination extensions.

Why not store chunks as files (as tus servers usually do): a partial upload is still the
contributor's raw data, and the vault holds raw data only encrypted. Each PATCH body is
therefore stored as one encrypted vault segment; a PATCH cut off mid-way stores nothing
and the client resumes from the last offset (HEAD). When the last byte arrives the
segments are streamed, in order, through the normal upload path (sniffing, decode
check, one final blob), and then deleted.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fairtrain.audit.service import append_event
from fairtrain.errors import (
    Conflict,
    Gone,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
)
from fairtrain.ids import new_id, utcnow
from fairtrain.ingest.models import Asset, ResumableUpload, UploadSegment
from fairtrain.ingest.service import UploadContext, receive_upload, safe_display_name

__all__ = [
    "TUS_VERSION",
    "append_chunk",
    "create_upload",
    "get_upload",
    "parse_metadata",
    "terminate_upload",
]

TUS_VERSION = "1.0.0"
UPLOAD_TTL = timedelta(days=2)


def parse_metadata(header: str | None) -> dict[str, str]:
    """``Upload-Metadata: key base64value,key2 base64value2`` (values optional)."""
    result: dict[str, str] = {}
    if not header:
        return result
    for pair in header.split(","):
        parts = pair.strip().split(" ")
        if not parts[0] or len(parts) > 2:
            raise InvalidInput("Upload-Metadata is malformed.", code="invalid_tus_metadata")
        value = ""
        if len(parts) == 2:
            try:
                value = base64.b64decode(parts[1], validate=True).decode("utf-8")
            except ValueError as exc:  # binascii.Error, UnicodeDecodeError, non-ASCII input
                raise InvalidInput(
                    f"Upload-Metadata value of '{parts[0]}' is not base64 UTF-8.",
                    code="invalid_tus_metadata",
                ) from exc
        result[parts[0]] = value
    return result


def create_upload(
    session: Session, *, owner_id: str, length: int, metadata: dict[str, str], max_bytes: int
) -> ResumableUpload:
    if length <= 0:
        raise InvalidInput("Upload-Length must be a positive number of bytes.", code="empty_file")
    if length > max_bytes:
        raise PayloadTooLarge(
            f"The file is larger than the {max_bytes:,} bytes accepted for uploads.",
            code="upload_too_large",
        )
    now = utcnow()
    upload = ResumableUpload(
        id=new_id("tus"),
        owner_id=owner_id,
        length=length,
        offset=0,
        # Cleaned as it arrives: the raw name may hold NULs, bidi tricks or 10 kB.
        filename=safe_display_name(metadata.get("filename")) if "filename" in metadata else None,
        created_at=now,
        expires_at=now + UPLOAD_TTL,
    )
    session.add(upload)
    session.flush()
    append_event(
        session,
        actor=f"user:{owner_id}",
        action="upload.started",
        subject=f"upload:{upload.id}",
        payload={"length": length},
    )
    return upload


def get_upload(session: Session, upload_id: str, owner_id: str) -> ResumableUpload:
    upload = session.get(ResumableUpload, upload_id)
    if upload is None or upload.owner_id != owner_id:
        raise NotFound("No such upload.", code="upload_not_found")
    if upload.expires_at <= utcnow() and upload.asset_id is None:
        raise Gone("This upload expired; start again.", code="upload_expired")
    return upload


def _bounded(chunks: Iterable[bytes], limit: int, counter: list[int]) -> Iterator[bytes]:
    for chunk in chunks:
        counter[0] += len(chunk)
        if counter[0] > limit:
            raise PayloadTooLarge(
                "This PATCH carries more bytes than the upload declared.",
                code="upload_exceeds_length",
            )
        yield chunk


def append_chunk(
    session: Session,
    context: UploadContext,
    open_blob: Callable[[Session, str], Iterator[bytes]],
    *,
    upload: ResumableUpload,
    offset: int,
    chunks: Iterable[bytes],
) -> tuple[ResumableUpload, Asset | None]:
    """Store one PATCH body at ``offset``; finish the upload when it is complete."""
    if upload.asset_id is not None:
        raise Conflict("This upload is already complete.", code="upload_complete")
    if offset != upload.offset:
        raise Conflict(
            f"Upload-Offset {offset} does not match the server's offset {upload.offset}.",
            code="upload_offset_mismatch",
            extra={"offset": upload.offset},
        )
    counter = [0]
    blob = context.store_blob(
        session,
        owner=f"user:{upload.owner_id}",
        stream=_bounded(chunks, upload.length - upload.offset, counter),
        media_type="application/octet-stream",
        max_bytes=upload.length - upload.offset,
    )
    if counter[0] == 0:
        context.delete_blob(session, blob.id)
        return upload, None
    session.add(UploadSegment(upload_id=upload.id, start=offset, size=counter[0], blob_id=blob.id))
    upload.offset += counter[0]
    session.flush()
    if upload.offset < upload.length:
        return upload, None
    return upload, _complete(session, context, open_blob, upload)


def _segments(session: Session, upload_id: str) -> list[UploadSegment]:
    return list(
        session.scalars(
            select(UploadSegment)
            .where(UploadSegment.upload_id == upload_id)
            .order_by(UploadSegment.start)
        )
    )


def _complete(
    session: Session,
    context: UploadContext,
    open_blob: Callable[[Session, str], Iterator[bytes]],
    upload: ResumableUpload,
) -> Asset:
    segments = _segments(session, upload.id)
    total = session.scalar(
        select(func.coalesce(func.sum(UploadSegment.size), 0)).where(
            UploadSegment.upload_id == upload.id
        )
    )
    if total != upload.length:
        raise Conflict(
            "The stored segments do not add up to the upload.", code="upload_inconsistent"
        )

    def joined() -> Iterator[bytes]:
        for segment in segments:
            yield from open_blob(session, segment.blob_id)

    asset = receive_upload(
        session,
        context,
        owner_id=upload.owner_id,
        chunks=joined(),
        display_name=upload.filename,
    )
    for segment in segments:
        context.delete_blob(session, segment.blob_id)
        session.delete(segment)
    upload.asset_id = asset.id
    session.flush()
    return asset


def terminate_upload(session: Session, context: UploadContext, upload: ResumableUpload) -> None:
    for segment in _segments(session, upload.id):
        context.delete_blob(session, segment.blob_id)
        session.delete(segment)
    session.flush()  # segments first: no ORM relationship tells the flush their order
    session.delete(upload)
    session.flush()
    append_event(
        session,
        actor=f"user:{upload.owner_id}",
        action="upload.terminated",
        subject=f"upload:{upload.id}",
        payload={},
    )
