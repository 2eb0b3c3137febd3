"""A contributor's own media: upload (with a progress bar, resumable), list, and detail.

The form posts a plain multipart body, streamed like the API's; with JavaScript the page
uses tus through the API instead, so a large file shows progress and survives a dropped
connection. Either way the bytes go through ``ingest.service.receive_upload``.
"""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fairtrain.accounts.models import UserKind
from fairtrain.accounts.principal import Principal
from fairtrain.deps import PrincipalDep, SessionDep
from fairtrain.errors import DomainError
from fairtrain.ingest import service
from fairtrain.ingest.models import Asset
from fairtrain.ingest.policy import AssetAction, authorize_asset
from fairtrain.ingest.streaming import MultipartFile, multipart_file_chunks, pull
from fairtrain.web.pages import render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _contributor(principal: Principal) -> bool:
    return (
        principal.via == "session"
        and principal.kind == UserKind.CONTRIBUTOR
        and principal.user_id is not None
    )


def _assets_page(
    request: Request,
    principal: Principal,
    session: SessionDep,
    *,
    status_code: int = 200,
    error: DomainError | None = None,
) -> Response:
    assert principal.user_id is not None
    assets = service.list_assets(session, principal.user_id, limit=100)
    context = request.app.state.upload_context
    return render(
        request,
        "assets.html",
        principal,
        status_code=status_code,
        assets=assets,
        error=error,
        max_upload_bytes=context.max_upload_bytes,
    )


@router.get("/assets", response_class=HTMLResponse)
def assets_page(request: Request, principal: PrincipalDep, session: SessionDep) -> Response:
    if not _contributor(principal):
        return RedirectResponse("/login", status_code=303)
    return _assets_page(request, principal, session)


@router.post("/assets/upload", response_class=HTMLResponse)
async def assets_upload(request: Request, principal: PrincipalDep, session: SessionDep) -> Response:
    # The CSRF token came in the action URL (multipart bodies are not parsed before this).
    if not _contributor(principal):
        return RedirectResponse("/login", status_code=303)
    owner_id = principal.user_id
    assert owner_id is not None
    context: service.UploadContext = request.app.state.upload_context
    part = MultipartFile()
    chunks = multipart_file_chunks(
        request.headers.get("content-type", ""), pull(request.stream()), part
    )

    def work() -> Asset:
        with session.begin_nested():
            asset = service.receive_upload(
                session, context, owner_id=owner_id, chunks=chunks, display_name=None
            )
            asset.display_name = service.safe_display_name(part.filename)
            return asset

    try:
        asset = await anyio.to_thread.run_sync(work)
    except DomainError as error:
        return _assets_page(request, principal, session, status_code=error.status, error=error)
    return RedirectResponse(f"/assets/{asset.id}", status_code=303)


@router.get("/assets/{asset_id}", response_class=HTMLResponse)
def asset_page(
    asset_id: str, request: Request, principal: PrincipalDep, session: SessionDep
) -> Response:
    if principal.via != "session":
        return RedirectResponse("/login", status_code=303)
    asset = authorize_asset(principal, AssetAction.READ, service.get_asset(session, asset_id))
    job = service.latest_job(session, asset.id)
    return render(request, "asset.html", principal, asset=asset, job=job)
