"""Uploads and assets over HTTP: stream in, watch processing, read one's own assets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

import anyio.to_thread
from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from fairtrain.consent.service import ensure_policy
from fairtrain.deps import PrincipalDep, SessionDep
from fairtrain.errors import InvalidInput, NotFound, UnsupportedMedia
from fairtrain.ingest import process, service, tus
from fairtrain.ingest.models import Asset, ResumableUpload
from fairtrain.ingest.policy import AssetAction, authorize_asset, authorize_upload
from fairtrain.ingest.schemas import AssetOut, IdentifyIn, JobOut, RedactionEditsIn
from fairtrain.ingest.streaming import MultipartFile, multipart_file_chunks, pull
from fairtrain.jobs.service import get_job
from fairtrain.privacy.edits import parse_edits
from fairtrain.privacy.risk import residual_risk
from fairtrain.withdrawal import service as withdrawal

__all__ = ["asset_out", "router"]

router = APIRouter(prefix="/api/v1", tags=["assets"])

_RAW_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}
_FORM_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            }
        },
    }
}


def asset_out(
    session: SessionDep, asset: Asset, job_ids: Mapping[str, str] | None = None
) -> AssetOut:
    """``job_ids``: the latest job of each asset of a page, read at once (else one query)."""
    if job_ids is None:
        job = service.latest_job(session, asset.id)
        job_id = job.id if job else None
    else:
        job_id = job_ids.get(asset.id)
    return AssetOut(
        id=asset.id,
        state=str(asset.state),
        state_code=asset.state_code,
        state_reason=asset.state_reason,
        modality=asset.modality,
        media_type=asset.media_type,
        display_name=asset.display_name,
        size_bytes=asset.size_bytes,
        sha256=asset.sha256,
        duration_seconds=asset.duration_seconds,
        language=asset.language,
        # The fingerprint is an index entry, not something to show.
        media_info={k: v for k, v in (asset.media_info or {}).items() if k != "fingerprint"},
        quality=asset.quality or {},
        privacy_report=asset.privacy_report or {},
        residual_risk=residual_risk(asset.modality, asset.privacy_report or {}),
        created_at=asset.created_at,
        updated_at=asset.updated_at,
        listed_at=asset.listed_at,
        job_id=job_id,
    )


@router.post(
    "/uploads",
    status_code=status.HTTP_201_CREATED,
    response_model=AssetOut,
    openapi_extra=_RAW_BODY,
    summary="Upload one file as the raw request body (streamed, never buffered).",
)
async def upload_raw(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    filename: Annotated[str | None, Query(max_length=255)] = None,
) -> AssetOut:
    owner_id = authorize_upload(principal)
    context: service.UploadContext = request.app.state.upload_context
    chunks = pull(request.stream())

    def work() -> Asset:
        return service.receive_upload(
            session, context, owner_id=owner_id, chunks=chunks, display_name=filename
        )

    asset = await anyio.to_thread.run_sync(work)
    return asset_out(session, asset)


@router.post(
    "/uploads/form",
    status_code=status.HTTP_201_CREATED,
    response_model=AssetOut,
    openapi_extra=_FORM_BODY,
    summary="Upload one file from an HTML form (multipart, parsed as a stream).",
)
async def upload_form(request: Request, principal: PrincipalDep, session: SessionDep) -> AssetOut:
    owner_id = authorize_upload(principal)
    context: service.UploadContext = request.app.state.upload_context
    part = MultipartFile()
    chunks = multipart_file_chunks(
        request.headers.get("content-type", ""), pull(request.stream()), part
    )

    def work() -> Asset:
        # The filename is known once the part's headers are parsed, before its bytes.
        return service.receive_upload(
            session, context, owner_id=owner_id, chunks=chunks, display_name=None
        )

    asset = await anyio.to_thread.run_sync(work)
    asset.display_name = service.safe_display_name(part.filename)
    return asset_out(session, asset)


@router.get("/assets", response_model=list[AssetOut])
def my_assets(
    principal: PrincipalDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[str | None, Query(max_length=40)] = None,
) -> list[AssetOut]:
    owner_id = authorize_upload(principal)
    assets = service.list_assets(session, owner_id, limit=limit, before=before)
    job_ids = service.latest_job_ids(session, [a.id for a in assets])
    return [asset_out(session, a, job_ids) for a in assets]


@router.get("/assets/{asset_id}", response_model=AssetOut)
def read_asset(asset_id: str, principal: PrincipalDep, session: SessionDep) -> AssetOut:
    asset = authorize_asset(principal, AssetAction.READ, service.get_asset(session, asset_id))
    return asset_out(session, asset)


@router.post("/assets/{asset_id}/approve", response_model=AssetOut)
def approve_asset(
    asset_id: str, request: Request, principal: PrincipalDep, session: SessionDep
) -> AssetOut:
    """List the redacted version (after the contributor has looked at it). An asset
    without terms gets the protective default terms (see GET /api/v1/policy-templates)."""
    asset = authorize_asset(principal, AssetAction.MANAGE, service.get_asset(session, asset_id))
    service.check_reviewable(asset)
    ensure_policy(session, request.app.state.settings, asset, actor=principal.ref)
    return asset_out(session, service.approve_asset(session, asset, actor=principal.ref))


@router.post("/assets/{asset_id}/identify", response_model=AssetOut)
def identify_asset(
    asset_id: str, body: IdentifyIn, request: Request, principal: PrincipalDep, session: SessionDep
) -> AssetOut:
    """Say which chat sender or call channel is yours; processing then runs again."""
    asset = authorize_asset(principal, AssetAction.MANAGE, service.get_asset(session, asset_id))
    context: service.UploadContext = request.app.state.upload_context
    process.identify(
        session,
        asset,
        context.dispatch,
        actor=principal.ref,
        chat_sender=body.chat_sender,
        audio_channel=body.audio_channel,
    )
    return asset_out(session, asset)


@router.put("/assets/{asset_id}/redaction", response_model=AssetOut)
def edit_redaction(
    asset_id: str,
    body: RedactionEditsIn,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
) -> AssetOut:
    """Edit the redaction before approving: which face and voice are yours, text left in
    or redacted as well, areas to blur. The asset is redacted again with the edits."""
    asset = authorize_asset(principal, AssetAction.MANAGE, service.get_asset(session, asset_id))
    context: service.UploadContext = request.app.state.upload_context
    process.edit_redaction(
        session, asset, context.dispatch, actor=principal.ref, edits=parse_edits(body.model_dump())
    )
    return asset_out(session, asset)


@router.delete("/assets/{asset_id}", response_model=AssetOut)
def erase_asset(
    asset_id: str, request: Request, principal: PrincipalDep, session: SessionDep
) -> AssetOut:
    """Erase every stored version of the asset (the row stays as an audit tombstone)."""
    asset = authorize_asset(principal, AssetAction.MANAGE, service.get_asset(session, asset_id))
    context: service.UploadContext = request.app.state.upload_context
    withdrawal.withdraw_before_erasure(
        session, request.app.state.settings, context.dispatch, asset, actor=principal.ref
    )
    erased = service.erase_asset(session, asset, context.delete_blob, actor=principal.ref)
    return asset_out(session, erased)


@router.get(
    "/assets/{asset_id}/content",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
    summary="Download the original (owner only) or the redacted version (owner, operators).",
)
def asset_content(
    asset_id: str,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    version: Annotated[Literal["original", "redacted"], Query()] = "redacted",
) -> StreamingResponse:
    action = AssetAction.READ_ORIGINAL if version == "original" else AssetAction.READ
    asset = authorize_asset(principal, action, service.get_asset(session, asset_id))
    blob_id = asset.blob_id if version == "original" else asset.redacted_blob_id
    media_type = asset.media_type if version == "original" else asset.redacted_media_type
    if blob_id is None:
        raise NotFound(
            f"This asset has no {version} version (yet, or any more).", code="content_not_found"
        )
    chunks = request.app.state.open_blob(session, blob_id)
    filename = service.safe_display_name(asset.display_name).replace('"', "")
    return StreamingResponse(
        chunks,
        media_type=media_type or "application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{version}-{filename}"',
            # Never rendered as a page of ours, whatever the bytes claim to be.
            "Content-Security-Policy": "sandbox; default-src 'none'",
            "Cache-Control": "private, no-store",
        },
    )


@router.get("/jobs/{job_id}", response_model=JobOut)
def read_job(job_id: str, principal: PrincipalDep, session: SessionDep) -> JobOut:
    job = get_job(session, job_id)
    is_operator = principal.kind == "operator"
    if not principal.is_authenticated or (job.owner != principal.ref and not is_operator):
        raise NotFound("No such job.", code="job_not_found")
    return JobOut(
        id=job.id,
        kind=job.kind,
        state=str(job.state),
        attempts=job.attempts,
        last_error=job.last_error,
        created_at=job.created_at,
        updated_at=job.updated_at,
        finished_at=job.finished_at,
    )


# --- tus 1.0 resumable uploads ----------------------------------------------------------------

TUS_HEADERS = {"Tus-Resumable": tus.TUS_VERSION, "Cache-Control": "no-store"}


def _tus_version(request: Request) -> None:
    if request.headers.get("tus-resumable") != tus.TUS_VERSION:
        raise InvalidInput(
            f"Send 'Tus-Resumable: {tus.TUS_VERSION}'.", code="tus_version_unsupported"
        )


def _int_header(request: Request, name: str) -> int:
    value = request.headers.get(name, "")
    if not value.isdigit():
        raise InvalidInput(f"{name} must be a whole number of bytes.", code="invalid_tus_header")
    return int(value)


@router.options("/uploads/tus", status_code=status.HTTP_204_NO_CONTENT)
def tus_capabilities(request: Request) -> Response:
    context: service.UploadContext = request.app.state.upload_context
    return Response(
        status_code=204,
        headers={
            **TUS_HEADERS,
            "Tus-Version": tus.TUS_VERSION,
            "Tus-Extension": "creation,termination",
            "Tus-Max-Size": str(context.max_upload_bytes),
        },
    )


@router.post("/uploads/tus", status_code=status.HTTP_201_CREATED)
def tus_create(request: Request, principal: PrincipalDep, session: SessionDep) -> Response:
    owner_id = authorize_upload(principal)
    _tus_version(request)
    context: service.UploadContext = request.app.state.upload_context
    upload = tus.create_upload(
        session,
        owner_id=owner_id,
        length=_int_header(request, "upload-length"),
        metadata=tus.parse_metadata(request.headers.get("upload-metadata")),
        max_bytes=context.max_upload_bytes,
    )
    return Response(
        status_code=201,
        headers={
            **TUS_HEADERS,
            "Location": f"/api/v1/uploads/tus/{upload.id}",
            "Upload-Offset": "0",
        },
    )


@router.head("/uploads/tus/{upload_id}")
def tus_offset(upload_id: str, principal: PrincipalDep, session: SessionDep) -> Response:
    owner_id = authorize_upload(principal)
    upload = tus.get_upload(session, upload_id, owner_id)
    headers = {
        **TUS_HEADERS,
        "Upload-Offset": str(upload.offset),
        "Upload-Length": str(upload.length),
    }
    if upload.asset_id:
        headers["Fairtrain-Asset"] = upload.asset_id
    return Response(status_code=200, headers=headers)


@router.patch("/uploads/tus/{upload_id}", status_code=status.HTTP_204_NO_CONTENT)
async def tus_patch(
    upload_id: str, request: Request, principal: PrincipalDep, session: SessionDep
) -> Response:
    owner_id = authorize_upload(principal)
    _tus_version(request)
    if request.headers.get("content-type") != "application/offset+octet-stream":
        raise UnsupportedMedia(
            "PATCH bodies must be 'application/offset+octet-stream'.", code="invalid_tus_content"
        )
    offset = _int_header(request, "upload-offset")
    context: service.UploadContext = request.app.state.upload_context
    open_blob = request.app.state.open_blob
    chunks = pull(request.stream())
    # A refused file at completion deletes the upload's segments; keep that deletion.
    request.state.commit_on_error = True

    def work() -> tuple[ResumableUpload, Asset | None]:
        upload = tus.get_upload(session, upload_id, owner_id)
        return tus.append_chunk(
            session, context, open_blob, upload=upload, offset=offset, chunks=chunks
        )

    upload, asset = await anyio.to_thread.run_sync(work)
    headers = {**TUS_HEADERS, "Upload-Offset": str(upload.offset)}
    if asset is not None:
        headers["Fairtrain-Asset"] = asset.id
    return Response(status_code=204, headers=headers)


@router.delete("/uploads/tus/{upload_id}", status_code=status.HTTP_204_NO_CONTENT)
def tus_terminate(
    upload_id: str, request: Request, principal: PrincipalDep, session: SessionDep
) -> Response:
    owner_id = authorize_upload(principal)
    _tus_version(request)
    context: service.UploadContext = request.app.state.upload_context
    tus.terminate_upload(session, context, tus.get_upload(session, upload_id, owner_id))
    return Response(status_code=204, headers=TUS_HEADERS)
