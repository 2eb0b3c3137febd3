"""Delivering a licence's data: exports, signed download links, downloads, shredding.

* ``start_export`` asks for the export of an active licence's dataset version (once per
  version: asking again returns the same export) and enqueues the build job
  (``delivery.build``).
* ``export_status`` reports it: ``requested``, ``building`` (its job is running),
  ``ready``, ``failed`` (with a code) or ``shredded``; ``signed_links`` gives one
  expiring link per file of a ready export.
* ``open_download`` serves one file through a link: the licence holder only, while the
  licence is active and the link unexpired, within the licence's rate limit, one range
  at a time, streamed from the vault. The first request through a link is audited.
* ``shred_exports`` destroys the licence's export data key: every cached file of every
  export of that licence becomes unreadable at once.

Services flush; the caller commits. Every state change appends an audit event.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fairtrain.audit.service import append_event
from fairtrain.config import Settings
from fairtrain.delivery.export import ExportFormat
from fairtrain.delivery.links import DownloadLink, link_secret, read_link, sign_link
from fairtrain.delivery.models import (
    OPEN_STATES,
    DownloadBucket,
    DownloadRecord,
    ExportFile,
    ExportState,
    LicenceExport,
)
from fairtrain.delivery.ranges import ByteRange, Unsatisfiable, requested_range
from fairtrain.errors import Conflict, Forbidden, Gone, NotFound, RateLimited
from fairtrain.ids import new_id, utcnow
from fairtrain.jobs.models import Job, JobState
from fairtrain.jobs.service import Dispatcher, enqueue_job
from fairtrain.licensing import service as licensing
from fairtrain.licensing.models import Licence, LicenceState
from fairtrain.vault import service as vault_service
from fairtrain.vault.service import Vault

__all__ = [
    "BUILD_JOB",
    "DEFAULT_FORMATS",
    "Download",
    "ExportStatus",
    "SignedFile",
    "check_active",
    "export_files",
    "export_status",
    "exports_of",
    "get_export",
    "licence_owner",
    "open_download",
    "shred_ended_licences",
    "shred_exports",
    "signed_links",
    "start_export",
]

BUILD_JOB = "delivery.build"
DEFAULT_FORMATS = (ExportFormat.PARQUET, ExportFormat.WEBDATASET)
_BUILD_ERROR = (
    "export_build_error",
    "The export could not be built (the platform's operators have the details); ask for it again.",
)


def licence_owner(licence_id: str) -> str:
    """The vault owner of a licence's exports: one data key per licence, shredded at once."""
    return f"licence:{licence_id}"


def check_active(licence: Licence, now: datetime) -> None:
    """Only an active licence, within its term, may be exported or downloaded."""
    state = LicenceState(licence.state)
    if state != LicenceState.ACTIVE:
        raise Forbidden(
            f"This licence is {state.value}: its data can no longer be downloaded.",
            code="licence_not_active",
        )
    if now >= licence.ends_at:
        raise Forbidden(
            "This licence's term has ended: its data can no longer be downloaded.",
            code="licence_not_active",
        )
    if now < licence.starts_at:
        raise Forbidden(
            f"This licence starts on {licence.starts_at.date().isoformat()}; its data can be "
            "downloaded from then on.",
            code="licence_not_active",
        )


# --- exports ---------------------------------------------------------------------------


def _open_export(session: Session, licence: Licence) -> LicenceExport | None:
    return session.scalars(
        select(LicenceExport).where(
            LicenceExport.licence_id == licence.id,
            LicenceExport.version_id == licence.version_id,
            LicenceExport.state.in_([s.value for s in OPEN_STATES]),
        )
    ).first()


def _job_failed(session: Session, export: LicenceExport) -> bool:
    if ExportState(export.state) != ExportState.REQUESTED or export.job_id is None:
        return False
    job = session.get(Job, export.job_id)
    return job is not None and JobState(job.state) == JobState.FAILED


def mark_failed(
    session: Session, export: LicenceExport, *, code: str, detail: str, actor: str = "system"
) -> None:
    export.state = ExportState.FAILED
    export.failure_code = code
    export.failure_detail = detail
    export.finished_at = utcnow()
    session.flush()
    append_event(
        session,
        actor=actor,
        action="delivery.export_failed",
        subject=f"export:{export.id}",
        payload={"licence": export.licence_id, "version": export.version_id, "code": code},
    )


def start_export(
    session: Session,
    dispatch: Dispatcher,
    *,
    licence_id: str,
    org_id: str,
    actor: str,
    formats: Sequence[ExportFormat] | None = None,
) -> tuple[LicenceExport, bool]:
    """The export of the licence's version, asked for now or before; ``True`` when this
    call asked for it. ``formats`` (both by default) are the formats built; an export
    already asked for with other formats is refused (``export_formats_differ``) rather
    than returned as if it had them. Idempotent per version: retries and concurrent requests get the
    same export until it fails or is shredded."""
    licence = licensing.get_licence(session, licence_id, org_id)
    check_active(licence, utcnow())
    existing = _open_export(session, licence)
    if existing is not None and _job_failed(session, existing):
        # Its build gave up after its retries: say so, and start afresh below.
        mark_failed(session, existing, code=_BUILD_ERROR[0], detail=_BUILD_ERROR[1])
        existing = None
    chosen = [f.value for f in ExportFormat if f in set(formats or DEFAULT_FORMATS)]
    if existing is not None:
        if formats is not None and sorted(existing.formats) != sorted(chosen):
            raise Conflict(
                f"An export of this licence with {' and '.join(existing.formats)} was "
                "already asked for; it is the one delivered until it fails or is shredded.",
                code="export_formats_differ",
                extra={"export_id": existing.id, "formats": list(existing.formats)},
            )
        return existing, False
    now = utcnow()
    export = LicenceExport(
        id=new_id("exp"),
        licence_id=licence.id,
        org_id=licence.org_id,
        version_id=licence.version_id,
        state=ExportState.REQUESTED,
        formats=chosen,
        requested_by=actor,
        created_at=now,
        withheld=[],
    )
    try:
        # Two requests racing: the partial unique index lets one insert, the other
        # returns the winner's export.
        with session.begin_nested():
            session.add(export)
            session.flush()
    except IntegrityError:
        winner = _open_export(session, licence)
        if winner is None:
            raise
        return winner, False
    job = enqueue_job(
        session,
        dispatch,
        kind=BUILD_JOB,
        subject=f"export:{export.id}",
        payload={"export_id": export.id},
        dedupe_key=export.id,
    )
    export.job_id = job.id
    session.flush()
    append_event(
        session,
        actor=actor,
        action="delivery.export_requested",
        subject=f"export:{export.id}",
        payload={
            "licence": licence.id,
            "version": licence.version_id,
            "formats": list(export.formats),
            "job": job.id,
        },
    )
    return export, True


def get_export(
    session: Session, export_id: str, *, licence_id: str, org_id: str | None
) -> LicenceExport:
    export = session.get(LicenceExport, export_id)
    if (
        export is None
        or export.licence_id != licence_id
        or (org_id is not None and export.org_id != org_id)
    ):
        raise NotFound("No such export of this licence.", code="export_not_found")
    return export


def exports_of(session: Session, licence_id: str) -> list[LicenceExport]:
    return list(
        session.scalars(
            select(LicenceExport)
            .where(LicenceExport.licence_id == licence_id)
            .order_by(LicenceExport.created_at.desc())
        )
    )


@dataclass(frozen=True, slots=True)
class ExportStatus:
    """An export as the buyer sees it: its reported state and, if it failed, why."""

    state: ExportState
    failure_code: str | None
    failure_detail: str | None


def export_status(session: Session, export: LicenceExport) -> ExportStatus:
    state = ExportState(export.state)
    if state == ExportState.REQUESTED and export.job_id is not None:
        # The build runs in one transaction (all of it becomes visible, or none), so the
        # row says "requested" until it ends; the job row says whether it is running.
        job = session.get(Job, export.job_id)
        if job is not None and JobState(job.state) == JobState.RUNNING:
            return ExportStatus(ExportState.BUILDING, None, None)
        if job is not None and JobState(job.state) == JobState.FAILED:
            return ExportStatus(ExportState.FAILED, *_BUILD_ERROR)
    return ExportStatus(state, export.failure_code, export.failure_detail)


def export_files(session: Session, export: LicenceExport) -> list[ExportFile]:
    return list(
        session.scalars(
            select(ExportFile).where(ExportFile.export_id == export.id).order_by(ExportFile.path)
        )
    )


@dataclass(frozen=True, slots=True)
class SignedFile:
    file: ExportFile
    token: str
    expires_at: datetime


def signed_links(
    settings: Settings, export: LicenceExport, files: list[ExportFile], *, now: datetime
) -> list[SignedFile]:
    """One fresh link per file, each with its own id, valid for the configured time."""
    if ExportState(export.state) != ExportState.READY:
        return []
    secret = link_secret(settings)
    until = now + timedelta(seconds=settings.download_link_ttl_seconds)
    # Whole seconds: the token carries Unix seconds, and the answer must say the same.
    until = until.replace(microsecond=0)
    signed = []
    for file in files:
        link = DownloadLink(export.licence_id, export.id, file.path, until, new_id("dlk"))
        signed.append(SignedFile(file, sign_link(secret, link), until))
    return signed


# --- downloads -------------------------------------------------------------------------


def _take_request_token(
    session: Session, settings: Settings, licence_id: str, now: datetime
) -> None:
    """A token bucket per licence, in the database: ``download_burst`` requests back to
    back, then ``download_requests_per_minute`` on average. Refused requests take
    nothing (their transaction rolls back)."""
    burst = float(settings.download_burst)
    rate = settings.download_requests_per_minute / 60.0  # tokens per second
    bucket = session.get(DownloadBucket, licence_id, with_for_update=True)
    if bucket is None:
        try:
            with session.begin_nested():
                bucket = DownloadBucket(licence_id=licence_id, tokens=burst, updated_at=now)
                session.add(bucket)
                session.flush()
        except IntegrityError:
            bucket = session.get(
                DownloadBucket, licence_id, with_for_update=True, populate_existing=True
            )
            assert bucket is not None
    elapsed = max((now - bucket.updated_at).total_seconds(), 0.0)
    tokens = min(burst, bucket.tokens + elapsed * rate)
    if tokens < 1.0:
        wait = max(1, math.ceil((1.0 - tokens) / rate))
        raise RateLimited(
            f"Too many download requests for this licence; retry in {wait} s.",
            retry_after=wait,
            code="download_rate_limited",
        )
    bucket.tokens = tokens - 1.0
    bucket.updated_at = now
    session.flush()


@dataclass(frozen=True, slots=True)
class Download:
    """What to send: the file, the range (None: all of it) and its bytes, streamed."""

    file: ExportFile
    byte_range: ByteRange | None
    unsatisfiable: Unsatisfiable | None
    chunks: Iterator[bytes]

    @property
    def etag(self) -> str:
        return f'"{self.file.sha256}"'


def _record(
    session: Session,
    link: DownloadLink,
    file: ExportFile,
    *,
    actor: str,
    length: int,
    now: datetime,
) -> None:
    record = session.get(DownloadRecord, link.link_id, with_for_update=True)
    if record is None:
        try:
            with session.begin_nested():
                session.add(
                    DownloadRecord(
                        link_id=link.link_id,
                        export_id=link.export_id,
                        licence_id=link.licence_id,
                        path=file.path,
                        actor=actor,
                        first_at=now,
                        last_at=now,
                        requests=1,
                        bytes_requested=length,
                    )
                )
                session.flush()
        except IntegrityError:
            record = session.get(
                DownloadRecord, link.link_id, with_for_update=True, populate_existing=True
            )
            assert record is not None
        else:
            # One event per link, not per range request: a resumed download is one
            # download, and the chain is not flooded by a client's retries.
            append_event(
                session,
                actor=actor,
                action="delivery.file_downloaded",
                subject=f"export:{link.export_id}",
                payload={
                    "licence": link.licence_id,
                    "path": file.path,
                    "sha256": file.sha256,
                    "size": file.size,
                    "link": link.link_id,
                },
            )
            return
    record.requests += 1
    record.bytes_requested += length
    record.last_at = now
    session.flush()


def open_download(
    session: Session,
    settings: Settings,
    vault: Vault,
    *,
    token: str,
    org_id: str,
    actor: str,
    range_header: str | None = None,
    if_range: str | None = None,
    now: datetime | None = None,
) -> Download:
    """Check a link and everything it depends on, count it, and open the bytes asked for.

    The order of the checks matters: a link of another organisation is "not found"
    whatever else is wrong with it, so nothing can be learnt about other tenants.
    """
    now = now or utcnow()
    link = read_link(link_secret(settings), token)
    licence = session.get(Licence, link.licence_id)
    if licence is None or licence.org_id != org_id:
        raise NotFound("This download link does not open anything.", code="download_link_invalid")
    if now >= link.expires_at:
        raise Gone(
            "This download link has expired; ask for the export's status again for fresh links.",
            code="download_link_expired",
        )
    check_active(licence, now)
    export = session.get(LicenceExport, link.export_id)
    if export is None or export.licence_id != licence.id:
        raise NotFound("This download link does not open anything.", code="download_link_invalid")
    if ExportState(export.state) == ExportState.SHREDDED:
        raise Gone("This export was destroyed; ask for a new one.", code="export_shredded")
    file = session.scalars(
        select(ExportFile).where(ExportFile.export_id == export.id, ExportFile.path == link.path)
    ).first()
    if ExportState(export.state) != ExportState.READY or file is None:
        raise NotFound("This download link does not open anything.", code="download_link_invalid")
    _take_request_token(session, settings, licence.id, now)
    wanted = requested_range(range_header, if_range, size=file.size, etag=f'"{file.sha256}"')
    if isinstance(wanted, Unsatisfiable):
        _record(session, link, file, actor=actor, length=0, now=now)
        return Download(file, None, wanted, iter(()))
    start, stop = (wanted.start, wanted.stop) if wanted else (0, file.size)
    _record(session, link, file, actor=actor, length=stop - start, now=now)
    chunks = vault.open_blob_range(session, file.blob_id, start=start, stop=stop)
    return Download(file, wanted, None, chunks)


# --- shredding -------------------------------------------------------------------------


def shred_exports(session: Session, *, licence_id: str, actor: str, reason: str) -> list[str]:
    """Destroy the data key of the licence's exports: every file of every one of its
    exports is unreadable from now on (storage and backups hold ciphertext only).
    Returns the exports shredded. A new export can be asked for while the licence is
    active; it gets a fresh key."""
    exports = [
        export
        for export in exports_of(session, licence_id)
        if ExportState(export.state) == ExportState.READY
    ]
    report = vault_service.shred_owner(session, licence_owner(licence_id), actor=actor)
    now = utcnow()
    for export in exports:
        export.state = ExportState.SHREDDED
        export.shredded_at = now
    session.flush()
    if exports or report.key_ids:
        append_event(
            session,
            actor=actor,
            action="delivery.exports_shredded",
            subject=f"licence:{licence_id}",
            payload={
                "exports": [export.id for export in exports],
                "key_ids": list(report.key_ids),
                "reason": reason,
            },
        )
    return [export.id for export in exports]


def shred_ended_licences(
    session: Session, *, actor: str, now: datetime | None = None
) -> dict[str, list[str]]:
    """Shred the exports of every licence that is no longer active (expired, suspended,
    or past its end): ``{licence id: [export ids]}``. Run daily, after ``fairtrain
    licences expire``."""
    now = now or utcnow()
    rows = session.execute(
        select(LicenceExport.licence_id)
        .join(Licence, Licence.id == LicenceExport.licence_id)
        .where(
            LicenceExport.state == ExportState.READY,
            (Licence.state != LicenceState.ACTIVE) | (Licence.ends_at <= now),
        )
        .distinct()
    )
    shredded: dict[str, list[str]] = {}
    for licence_id in sorted(row[0] for row in rows):
        licence = session.get(Licence, licence_id)
        assert licence is not None
        reason = "licence_ended" if now >= licence.ends_at else f"licence_{licence.state}"
        shredded[licence_id] = shred_exports(
            session, licence_id=licence_id, actor=actor, reason=reason
        )
    return shredded
