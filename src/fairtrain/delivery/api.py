"""Delivery over HTTP: ask for a licence's export, read its status with signed links,
and download each file (with range requests, so a broken download resumes)."""

from __future__ import annotations

import base64
from pathlib import PurePosixPath
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from sqlalchemy.orm import Session

from fairtrain.delivery import service
from fairtrain.delivery.export import ExportFormat
from fairtrain.delivery.models import LicenceExport
from fairtrain.delivery.policy import DeliveryAction, authorize_delivery
from fairtrain.delivery.schemas import (
    ExportFileOut,
    ExportIn,
    ExportOut,
    FailureOut,
    WithheldOut,
)
from fairtrain.deps import PrincipalDep, SessionDep
from fairtrain.ids import utcnow
from fairtrain.licensing import service as licensing
from fairtrain.problems import PROBLEM_RESPONSES, problem_response

__all__ = ["DOWNLOAD_PREFIX", "router"]

router = APIRouter(prefix="/api/v1", tags=["delivery"])
DOWNLOAD_PREFIX = "/api/v1/downloads/"


def _export_out(
    request: Request, session: Session, export: LicenceExport, *, with_links: bool
) -> ExportOut:
    status = service.export_status(session, export)
    files = service.export_files(session, export)
    out_files: list[ExportFileOut]
    if with_links:
        signed = service.signed_links(request.app.state.settings, export, files, now=utcnow())
        out_files = [
            ExportFileOut(
                path=s.file.path,
                sha256=s.file.sha256,
                size=s.file.size,
                media_type=s.file.media_type,
                url=DOWNLOAD_PREFIX + s.token,
                expires_at=s.expires_at,
            )
            for s in signed
        ]
    else:
        out_files = [
            ExportFileOut(
                path=f.path,
                sha256=f.sha256,
                size=f.size,
                media_type=f.media_type,
                url=None,
                expires_at=None,
            )
            for f in files
        ]
    failure = (
        FailureOut(code=status.failure_code, detail=status.failure_detail or "")
        if status.failure_code
        else None
    )
    return ExportOut(
        id=export.id,
        licence_id=export.licence_id,
        version_id=export.version_id,
        state=status.state.value,
        formats=list(export.formats),
        created_at=export.created_at,
        finished_at=export.finished_at,
        manifest_sha256=export.manifest_sha256,
        item_count=export.item_count,
        total_bytes=export.total_bytes,
        withheld=[WithheldOut(**entry) for entry in export.withheld or []],
        failure=failure,
        files=out_files,
    )


@router.post(
    "/licences/{licence_id}/exports",
    response_model=ExportOut,
    status_code=202,
    responses={200: {"model": ExportOut, "description": "The export already asked for."}},
)
def start_export(
    licence_id: str,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    body: ExportIn | None = None,
) -> Response | ExportOut:
    """Ask for the export of an active licence (202), built in the background: both
    formats, or the ``formats`` named. Asking again returns the same export (200) until
    it fails or is shredded; naming other formats than that export's is refused (409
    ``export_formats_differ``)."""
    org_id = authorize_delivery(principal, DeliveryAction.EXPORT)
    assert org_id is not None
    export, created = service.start_export(
        session,
        request.app.state.jobs.dispatch,
        licence_id=licence_id,
        org_id=org_id,
        actor=principal.ref,
        formats=(
            [ExportFormat(f) for f in body.formats] if body is not None and body.formats else None
        ),
    )
    out = _export_out(request, session, export, with_links=True)
    if not created:
        return JSONResponse(out.model_dump(mode="json"), status_code=200)
    return out


@router.get("/licences/{licence_id}/exports/{export_id}", response_model=ExportOut)
def read_export(
    licence_id: str,
    export_id: str,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
) -> ExportOut:
    """The export's state, its manifest digest and, once ready, every file with a fresh
    signed link (valid for ``FAIRTRAIN_DOWNLOAD_LINK_TTL_SECONDS``)."""
    org_id = authorize_delivery(principal, DeliveryAction.READ)
    licence = licensing.get_licence(session, licence_id, org_id)
    export = service.get_export(session, export_id, licence_id=licence.id, org_id=org_id)
    return _export_out(request, session, export, with_links=org_id is not None)


def _repr_digest(sha256: str) -> str:
    return "sha-256=:" + base64.b64encode(bytes.fromhex(sha256)).decode("ascii") + ":"


@router.get(
    "/downloads/{token}",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The whole file."},
        206: {"content": {"application/octet-stream": {}}, "description": "The range asked for."},
        410: PROBLEM_RESPONSES[404] | {"description": "The link expired, or the export is gone."},
        416: PROBLEM_RESPONSES[404] | {"description": "The range lies outside the file."},
    },
)
def download(
    token: str,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    range_header: Annotated[str | None, Header(alias="Range")] = None,
    if_range: Annotated[str | None, Header(alias="If-Range")] = None,
) -> Response:
    """One file of a ready export, for the licence holder: send ``Range: bytes=N-`` to
    resume (206), with ``If-Range: <ETag>`` so a changed file is sent whole."""
    org_id = authorize_delivery(principal, DeliveryAction.DOWNLOAD)
    assert org_id is not None
    served = service.open_download(
        session,
        request.app.state.settings,
        request.app.state.runtime.vault,
        token=token,
        org_id=org_id,
        actor=principal.ref,
        range_header=range_header,
        if_range=if_range,
    )
    file = served.file
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": served.etag,
        "Repr-Digest": _repr_digest(file.sha256),
        "Content-Disposition": f'attachment; filename="{PurePosixPath(file.path).name}"',
        "Cache-Control": "private, no-store",
        # Never rendered as a page of ours, whatever the bytes are.
        "Content-Security-Policy": "sandbox; default-src 'none'",
    }
    if served.unsatisfiable is not None:
        return problem_response(
            request,
            status=416,
            code="range_not_satisfiable",
            detail=f"The range asked for lies outside this file of {file.size} bytes.",
            headers=headers | {"Content-Range": served.unsatisfiable.content_range()},
        )
    if served.byte_range is None:
        headers["Content-Length"] = str(file.size)
        status = 200
    else:
        headers["Content-Length"] = str(served.byte_range.length)
        headers["Content-Range"] = served.byte_range.content_range(file.size)
        status = 206
    return StreamingResponse(
        served.chunks, status_code=status, media_type=file.media_type, headers=headers
    )
