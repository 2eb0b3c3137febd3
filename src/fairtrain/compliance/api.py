"""Data-subject rights and compliance reports over HTTP.

A person downloads everything held about them (``GET /api/v1/me/data-export``);
operators and auditors read the records of processing and the licence register, as HTML
or JSON/CSV.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import IO, Annotated, Any, Literal

import anyio.to_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, StreamingResponse

from fairtrain.audit.keys import key_id, platform_signing_key
from fairtrain.audit.policy import authorize_log_read, authorize_own_events
from fairtrain.audit.service import append_event
from fairtrain.compliance import reports
from fairtrain.compliance.subject_access import write_subject_access_archive
from fairtrain.deps import PrincipalDep, SessionDep
from fairtrain.ids import utcnow
from fairtrain.web.pages import render

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["compliance"])

CHUNK = 1 << 20


def _chunks(handle: IO[bytes]) -> Iterator[bytes]:
    try:
        handle.seek(0)
        while chunk := handle.read(CHUNK):
            yield chunk
    finally:
        handle.close()


@router.get(
    "/me/data-export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}}},
)
async def my_data_export(
    request: Request, principal: PrincipalDep, session: SessionDep
) -> StreamingResponse:
    """Everything fairtrain holds about you, as one zip (GDPR Art. 15 and 20): account,
    profile, assets with their files, terms, receipts, licences, earnings, audit events."""
    user_id = authorize_own_events(principal)
    settings = request.app.state.settings
    scratch = settings.data_dir / "scratch"
    scratch.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle = tempfile.TemporaryFile(dir=scratch)  # noqa: SIM115 - closed by the stream
    public_key_id = key_id(platform_signing_key(settings).public_key())

    def build() -> Any:
        return write_subject_access_archive(
            session, user_id, handle, request.app.state.open_blob, public_key_id
        )

    try:
        archive = await anyio.to_thread.run_sync(build)
    except BaseException:
        handle.close()
        raise
    append_event(
        session,
        actor=principal.ref,
        action="subject_access.exported",
        subject=f"user:{user_id}",
        payload={"files": archive.files, "bytes": archive.bytes_written,
                 "assets": archive.assets, "events": archive.events},
    )  # fmt: skip
    stamp = utcnow().strftime("%Y%m%d")
    return StreamingResponse(
        _chunks(handle),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="fairtrain-my-data-{stamp}.zip"',
            "Cache-Control": "private, no-store",
        },
    )


Format = Literal["json", "html"]


@router.get("/compliance/records-of-processing", response_model=None)
def records_of_processing(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    format: Annotated[Format, Query()] = "json",
) -> JSONResponse | HTMLResponse:
    """The records of processing activities (GDPR Art. 30) with today's figures."""
    authorize_log_read(principal)
    record = reports.records_of_processing(session, request.app.state.settings, utcnow())
    if format == "html":
        return render(request, "compliance_records.html", principal, record=record)
    return JSONResponse(_jsonable(record))


@router.get("/compliance/licence-register", response_model=None)
def licence_register(
    principal: PrincipalDep,
    session: SessionDep,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> JSONResponse | PlainTextResponse:
    """Every licence ever granted: who, which dataset version, for what, where, until
    when, its state, what it cost, and its agreement's hash."""
    authorize_log_read(principal)
    rows = reports.licence_register(session)
    if format == "csv":
        return PlainTextResponse(
            reports.licence_register_csv(rows),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="licence-register.csv"'},
        )
    return JSONResponse({"licences": rows})


@router.get("/compliance/withdrawal-register", response_model=None)
def withdrawal_register(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    format: Annotated[Literal["json", "csv", "html"], Query()] = "json",
) -> JSONResponse | PlainTextResponse | HTMLResponse:
    """Every withdrawal notice: licence, buyer, deadline, and whether and when the buyer
    acknowledged and attested deletion; with the attestation compliance rates."""
    authorize_log_read(principal)
    rows = reports.withdrawal_register(session)
    if format == "csv":
        return PlainTextResponse(
            reports.register_csv(rows, reports.WITHDRAWAL_REGISTER_COLUMNS),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="withdrawal-register.csv"'},
        )
    compliance = reports.attestation_compliance(session, utcnow())
    if format == "html":
        return render(
            request, "compliance_withdrawals.html", principal, rows=rows, compliance=compliance
        )
    return JSONResponse({"notices": rows, "attestation_compliance": compliance})


@router.get("/compliance/attestation-compliance", response_model=None)
def attestation_compliance(
    principal: PrincipalDep,
    session: SessionDep,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> JSONResponse | PlainTextResponse:
    """Per buyer organisation: deletion attestations in time, late, overdue and open, and
    the in-time rate over the notices that are due."""
    authorize_log_read(principal)
    report = reports.attestation_compliance(session, utcnow())
    if format == "csv":
        columns = ("org_id", "organisation", "notices", "attested_in_time", "attested_late",
                   "overdue", "open", "suspended", "rate")  # fmt: skip
        return PlainTextResponse(
            reports.register_csv(report["organisations"], columns),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="attestation-compliance.csv"'},
        )
    return JSONResponse(report)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
