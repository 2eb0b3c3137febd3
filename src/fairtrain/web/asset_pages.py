"""A contributor's own media: upload (with a progress bar, resumable), list, and detail.

The form posts a plain multipart body, streamed like the API's; with JavaScript the page
uses tus through the API instead, so a large file shows progress and survives a dropped
connection. Either way the bytes go through ``ingest.service.receive_upload``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from fairtrain.accounts.models import UserKind
from fairtrain.accounts.principal import Principal
from fairtrain.consent import counterparty
from fairtrain.consent import service as consent_service
from fairtrain.consent.models import AssetPolicy, CounterpartyInvite, InviteStatus
from fairtrain.consent.plain import explain, risk_notes
from fairtrain.consent.service import ensure_policy
from fairtrain.consent.templates import TEMPLATES
from fairtrain.deps import PrincipalDep, SessionDep
from fairtrain.errors import DomainError, InvalidInput
from fairtrain.ingest import process, service
from fairtrain.ingest.models import Asset
from fairtrain.ingest.policy import AssetAction, authorize_asset
from fairtrain.ingest.streaming import MultipartFile, multipart_file_chunks, pull
from fairtrain.privacy.edits import RedactionEdits, parse_edits
from fairtrain.privacy.media import parse_face_ref
from fairtrain.privacy.risk import residual_risk
from fairtrain.web.pages import check_form, render
from fairtrain.web.terms_form import (
    PURPOSE_CHOICES,
    PostedTerms,
    Preview,
    TermsForm,
    form_from_policy,
    parse_date,
    preview_of,
)
from fairtrain.withdrawal import service as withdrawal

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
    terms_form: TermsForm | None = None,
    preview: Preview | None = None,
    selected: frozenset[str] = frozenset(),
) -> Response:
    assert principal.user_id is not None
    assets = service.list_assets(session, principal.user_id, limit=100)
    context = request.app.state.upload_context
    current = {
        record.asset_id: record
        for record in session.scalars(
            select(AssetPolicy).where(
                AssetPolicy.asset_id.in_([a.id for a in assets]),
                AssetPolicy.superseded_at.is_(None),
            )
        )
    }
    changed = request.query_params.get("changed", "")
    return render(
        request,
        "assets.html",
        principal,
        status_code=status_code,
        assets=assets,
        error=error,
        max_upload_bytes=context.max_upload_bytes,
        current_terms=current,
        termable=[a for a in assets if a.state not in ("erased", "rejected")],
        terms_form=terms_form or TermsForm(),
        preview=preview,
        selected=selected,
        purpose_choices=PURPOSE_CHOICES,
        changed=int(changed) if changed.isdigit() else None,
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


# The preview shows at most this much text inline (the whole file stays downloadable).
PREVIEW_TEXT_BYTES = 200_000


def _text_of(request: Request, session: SessionDep, blob_id: str | None) -> str | None:
    if blob_id is None:
        return None
    data = bytearray()
    for chunk in request.app.state.open_blob(session, blob_id):
        data += chunk
        if len(data) >= PREVIEW_TEXT_BYTES:
            break
    return bytes(data[:PREVIEW_TEXT_BYTES]).decode("utf-8", errors="replace")


def _marked(original: str, spans: list[list[Any]]) -> list[tuple[str, str | None]]:
    """The original cut into (text, entity type or None) pieces, for highlighting."""
    pieces: list[tuple[str, str | None]] = []
    at = 0
    for start, end, kind in sorted(spans):
        if start < at or end > len(original):
            continue
        pieces.append((original[at:start], None))
        pieces.append((original[start:end], str(kind)))
        at = end
    pieces.append((original[at:], None))
    return pieces


@router.get("/assets/{asset_id}", response_class=HTMLResponse)
def asset_page(
    asset_id: str, request: Request, principal: PrincipalDep, session: SessionDep
) -> Response:
    if principal.via != "session":
        return RedirectResponse("/login", status_code=303)
    return _asset_page(asset_id, request, principal, session)


# What the "People in this …" section calls the asset.
PEOPLE_NOUNS = {"chat": "chat", "audio": "recording", "image": "photo", "video": "video"}


def _people(
    request: Request, session: SessionDep, asset: Asset
) -> list[tuple[counterparty.Part, list[CounterpartyInvite], bool]]:
    """Each part the redaction named, its invites, and whether it can be invited now."""
    invites = counterparty.invites_of(session, request.app.state.settings, asset)
    rows = []
    for part in counterparty.parts_of(asset):
        mine = [
            i
            for i in invites
            if (found := counterparty.invite_part(asset, i)) is not None and found.id == part.id
        ]
        closed = any(
            InviteStatus(i.status)
            in (
                InviteStatus.PENDING,
                InviteStatus.CONSENTED,
                InviteStatus.REFUSED,
                InviteStatus.WITHDRAWN,
            )
            for i in mine
        )
        rows.append((part, mine, not closed))
    return rows


def _asset_page(
    asset_id: str,
    request: Request,
    principal: Principal,
    session: SessionDep,
    *,
    error: DomainError | None = None,
    status_code: int = 200,
    invite_link: str | None = None,
    terms_form: TermsForm | None = None,
    preview: Preview | None = None,
) -> Response:
    asset = authorize_asset(principal, AssetAction.READ, service.get_asset(session, asset_id))
    job = service.latest_job(session, asset.id)
    owner = principal.user_id == asset.owner_id
    report = asset.privacy_report or {}
    redacted_text = original_marked = original = None
    if asset.modality in ("text", "chat") and asset.redacted_blob_id:
        redacted_text = _text_of(request, session, asset.redacted_blob_id)
        if owner and asset.modality == "text":
            original = _text_of(request, session, asset.blob_id) or ""
            original_marked = _marked(original, list(report.get("spans", [])))
    edits = RedactionEdits.stored((asset.media_info or {}).get("redaction_edits"))
    added_phrases = (
        list(dict.fromkeys(original[start:end] for start, end in edits.redact_spans))
        if original
        else []
    )
    terms = consent_service.current_policy(session, asset.id)
    terms_policy = consent_service.policy_of(terms) if terms else None
    people = _people(request, session, asset) if owner else []
    return render(
        request,
        "asset.html",
        principal,
        status_code=status_code,
        asset=asset,
        job=job,
        owner=owner,
        report=report,
        redacted_text=redacted_text,
        original_marked=original_marked,
        original_text=original,
        risk=residual_risk(asset.modality, report),
        edits=edits,
        added_phrases=added_phrases,
        error=error,
        terms=terms,
        explanation=explain(terms_policy) if terms_policy else [],
        risks=risk_notes(terms_policy, asset.modality) if terms_policy else [],
        templates=TEMPLATES.values(),
        people=people,
        people_noun=PEOPLE_NOUNS.get(str(asset.modality)),
        invite_link=invite_link,
        terms_form=terms_form or form_from_policy(terms, terms_policy),
        preview=preview,
        purpose_choices=PURPOSE_CHOICES,
        receipts=consent_service.receipts_of_asset(session, asset.id) if owner else [],
    )


def _act(
    asset_id: str,
    request: Request,
    principal: Principal,
    session: SessionDep,
    csrf_token: str,
    action: Callable[[Asset], object],
) -> Response:
    if not _contributor(principal):
        return RedirectResponse("/login", status_code=303)
    check_form(request, principal, csrf_token)
    asset = authorize_asset(principal, AssetAction.MANAGE, service.get_asset(session, asset_id))
    try:
        with session.begin_nested():
            action(asset)
    except DomainError as error:
        return _asset_page(
            asset_id, request, principal, session, error=error, status_code=error.status
        )
    return RedirectResponse(f"/assets/{asset_id}", status_code=303)


def _approve(request: Request, session: SessionDep, asset: Asset, actor: str) -> Asset:
    service.check_reviewable(asset)
    ensure_policy(session, request.app.state.settings, asset, actor=actor)
    return service.approve_asset(session, asset, actor=actor)


@router.post("/assets/{asset_id}/approve", response_class=HTMLResponse)
def approve_submit(
    asset_id: str,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    return _act(
        asset_id,
        request,
        principal,
        session,
        csrf_token,
        lambda asset: _approve(request, session, asset, principal.ref),
    )


@router.post("/assets/{asset_id}/identify", response_class=HTMLResponse)
def identify_submit(
    asset_id: str,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    chat_sender: Annotated[str | None, Form(max_length=200)] = None,
    audio_channel: Annotated[int | None, Form(ge=0, le=7)] = None,
) -> Response:
    context: service.UploadContext = request.app.state.upload_context
    return _act(
        asset_id,
        request,
        principal,
        session,
        csrf_token,
        lambda asset: process.identify(
            session,
            asset,
            context.dispatch,
            actor=principal.ref,
            chat_sender=chat_sender or None,
            audio_channel=audio_channel,
        ),
    )


def _phrase_spans(original: str, phrases: str) -> list[list[int]]:
    """Where each phrase (one a line) occurs in the text, as spans to redact."""
    spans: list[list[int]] = []
    for phrase in (line.strip() for line in phrases.splitlines()):
        if not phrase:
            continue
        found = [m.start() for m in re.finditer(re.escape(phrase), original)]
        if not found:
            raise InvalidInput(f"“{phrase[:60]}” does not occur in your text.", code="invalid_span")
        spans += [[start, start + len(phrase)] for start in found]
    return spans


def _box_list(value: str) -> list[list[int]]:
    boxes = []
    for line in (part.strip() for part in value.splitlines()):
        if line:
            boxes.append(list(parse_face_ref(line.replace(" ", ""))))
    return boxes


@router.post("/assets/{asset_id}/redaction", response_class=HTMLResponse)
def redaction_submit(
    asset_id: str,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    own_face: Annotated[str | None, Form(max_length=40)] = None,
    own_speaker: Annotated[int | None, Form(ge=1, le=99)] = None,
    keep_span: Annotated[list[str] | None, Form(max_length=500)] = None,
    redact_text: Annotated[str, Form(max_length=10_000)] = "",
    blur_boxes: Annotated[str, Form(max_length=10_000)] = "",
) -> Response:
    """The preview's edit form: your face, your voice, text left in or taken out, areas
    to blur. Spans to leave in come as "start-end"; text to take out as phrases."""
    context: service.UploadContext = request.app.state.upload_context

    def edit(asset: Asset) -> object:
        keep = []
        for value in keep_span or []:
            start, _, end = value.partition("-")
            if not (start.isdigit() and end.isdigit()):
                raise InvalidInput("A span is start-end.", code="invalid_span")
            keep.append([int(start), int(end)])
        added: list[list[int]] = []
        if redact_text.strip():
            if asset.modality != "text":
                raise InvalidInput("Only a text has words to redact.", code="invalid_edits")
            added = _phrase_spans(_text_of(request, session, asset.blob_id) or "", redact_text)
        edits = parse_edits(
            {
                "own_face": own_face or None,
                "own_speaker": own_speaker,
                "keep_spans": keep,
                "redact_spans": added,
                "blur_boxes": _box_list(blur_boxes),
            }
        )
        return process.edit_redaction(
            session, asset, context.dispatch, actor=principal.ref, edits=edits
        )

    return _act(asset_id, request, principal, session, csrf_token, edit)


@router.post("/assets/{asset_id}/terms", response_class=HTMLResponse)
def terms_submit(
    asset_id: str,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    template: Annotated[str, Form(max_length=40)] = "default",
    price: Annotated[str, Form(max_length=20)] = "1.00",
    currency: Annotated[str, Form(pattern=r"^[A-Za-z]{3}$")] = "EUR",
    explicit_biometric_consent: Annotated[str | None, Form(max_length=10)] = None,
) -> Response:
    """Choose a template and a price per licence: a new version of the asset's terms."""
    settings = request.app.state.settings

    def choose(asset: Asset) -> object:
        try:
            amount = Decimal(price.strip().replace(",", "."))
        except InvalidOperation:
            raise InvalidInput(
                "The price must be a number, like 1.50.", code="invalid_price"
            ) from None
        code = currency.upper()
        record = consent_service.set_policy(
            session,
            settings,
            asset,
            actor=principal.ref,
            template=template,
            price_minor=consent_service.minor_units(amount, code, "price"),
            currency=code,
            attestations=frozenset(
                {"explicit_biometric_consent"} if explicit_biometric_consent else ()
            ),
        )
        counterparty.terms_changed(
            session, settings, asset, request.app.state.jobs.dispatch, actor=principal.ref
        )
        return record

    return _act(asset_id, request, principal, session, csrf_token, choose)


@router.post("/assets/{asset_id}/terms/edit", response_class=HTMLResponse)
def terms_edit_submit(
    asset_id: str,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    form: PostedTerms,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    step: Annotated[str, Form(pattern=r"^(preview|save)$")] = "preview",
) -> Response:
    """Edit the main terms: the first post shows them in plain words with their risk notes;
    only a save of exactly what was previewed writes a new version."""
    if not _contributor(principal):
        return RedirectResponse("/login", status_code=303)
    check_form(request, principal, csrf_token)
    asset = authorize_asset(principal, AssetAction.MANAGE, service.get_asset(session, asset_id))
    settings = request.app.state.settings
    try:
        preview = preview_of(form, [asset.modality])
    except DomainError as error:
        return _asset_page(asset_id, request, principal, session, error=error,
                           status_code=error.status, terms_form=form)  # fmt: skip
    if step != "save" or form.digest != preview.digest:
        form.digest = preview.digest
        return _asset_page(asset_id, request, principal, session, terms_form=form,
                           preview=preview)  # fmt: skip
    try:
        with session.begin_nested():
            consent_service.set_policy(
                session, settings, asset, actor=principal.ref, terms=form.main_terms(),
                attestations=form.attestations(),
            )  # fmt: skip
            counterparty.terms_changed(
                session, settings, asset, request.app.state.jobs.dispatch, actor=principal.ref
            )
    except DomainError as error:
        return _asset_page(asset_id, request, principal, session, error=error,
                           status_code=error.status, terms_form=form, preview=preview)  # fmt: skip
    return RedirectResponse(f"/assets/{asset_id}#terms", status_code=303)


@router.post("/assets/{asset_id}/terms/renew", response_class=HTMLResponse)
def terms_renew_submit(
    asset_id: str,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    until: Annotated[str, Form(max_length=20)] = "",
    explicit_biometric_consent: Annotated[str | None, Form(max_length=10)] = None,
) -> Response:
    """Extend the terms to a later end date, before or after they expired."""
    settings = request.app.state.settings

    def renew(asset: Asset) -> object:
        record = consent_service.renew_policy(
            session, settings, asset, actor=principal.ref, until=parse_date(until, "until"),
            attestations=frozenset(
                {"explicit_biometric_consent"} if explicit_biometric_consent else ()
            ),
        )  # fmt: skip
        counterparty.terms_changed(
            session, settings, asset, request.app.state.jobs.dispatch, actor=principal.ref
        )
        return record

    return _act(asset_id, request, principal, session, csrf_token, renew)


@router.post("/assets/terms/bulk", response_class=HTMLResponse)
def terms_bulk_submit(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    form: PostedTerms,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    step: Annotated[str, Form(pattern=r"^(preview|save)$")] = "preview",
    asset_ids: Annotated[list[str] | None, Form(max_length=60)] = None,
) -> Response:
    """The same main terms for the assets ticked, previewed first like a single edit;
    licences already granted keep their terms."""
    if not _contributor(principal):
        return RedirectResponse("/login", status_code=303)
    check_form(request, principal, csrf_token)
    assert principal.user_id is not None
    settings = request.app.state.settings
    chosen = frozenset(asset_ids or [])

    def page(error: DomainError | None = None, preview: Preview | None = None) -> Response:
        return _assets_page(request, principal, session, error=error,
                            status_code=error.status if error else 200, terms_form=form,
                            preview=preview, selected=chosen)  # fmt: skip

    assets = consent_service.termable_assets(session, principal.user_id, sorted(chosen))
    try:
        if not chosen:
            raise InvalidInput("Tick the media whose terms you want to change.",
                               code="no_assets_chosen", pointer="asset_ids")  # fmt: skip
        if len(assets) != len(chosen):
            raise InvalidInput("Some of these are not yours, or are erased or rejected.",
                               code="asset_not_found", pointer="asset_ids")  # fmt: skip
        preview = preview_of(form, [a.modality for a in assets])
    except DomainError as error:
        return page(error)
    if step != "save" or form.digest != preview.digest:
        form.digest = preview.digest
        return page(preview=preview)
    try:
        with session.begin_nested():
            consent_service.set_policies(
                session, settings, assets, actor=principal.ref, terms=form.main_terms(),
                attestations=form.attestations(),
            )  # fmt: skip
            for asset in assets:
                counterparty.terms_changed(
                    session, settings, asset, request.app.state.jobs.dispatch,
                    actor=principal.ref,
                )  # fmt: skip
    except DomainError as error:
        return page(error, preview)
    return RedirectResponse(f"/assets?changed={len(assets)}#list-heading", status_code=303)


@router.post("/assets/{asset_id}/erase", response_class=HTMLResponse)
def erase_submit(
    asset_id: str,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    context: service.UploadContext = request.app.state.upload_context
    return _act(
        asset_id,
        request,
        principal,
        session,
        csrf_token,
        lambda asset: _erase(request, session, context, asset, principal.ref),
    )


def _erase(
    request: Request, session: Session, context: service.UploadContext, asset: Asset, actor: str
) -> Asset:
    withdrawal.withdraw_before_erasure(
        session, request.app.state.settings, context.dispatch, asset, actor=actor
    )
    return service.erase_asset(session, asset, context.delete_blob, actor=actor)


@router.post("/assets/{asset_id}/invites", response_class=HTMLResponse)
def invite_submit(
    asset_id: str,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    part: Annotated[str, Form(max_length=240)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
    email: Annotated[str, Form(max_length=320)] = "",
) -> Response:
    """Create an invite link for one person; the page shows it once."""
    if not _contributor(principal):
        return RedirectResponse("/login", status_code=303)
    check_form(request, principal, csrf_token)
    asset = authorize_asset(principal, AssetAction.MANAGE, service.get_asset(session, asset_id))
    settings = request.app.state.settings
    try:
        with session.begin_nested():
            _, token = counterparty.create_invite(
                session,
                settings,
                asset,
                actor=principal.ref,
                part=part,
                name=name or None,
                email=email or None,
            )
    except DomainError as error:
        return _asset_page(
            asset_id, request, principal, session, error=error, status_code=error.status
        )
    return _asset_page(
        asset_id,
        request,
        principal,
        session,
        status_code=201,
        invite_link=counterparty.invite_link(settings, token),
    )


@router.post("/assets/{asset_id}/invites/{invite_id}/revoke", response_class=HTMLResponse)
def revoke_submit(
    asset_id: str,
    invite_id: str,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    settings = request.app.state.settings
    return _act(
        asset_id,
        request,
        principal,
        session,
        csrf_token,
        lambda asset: counterparty.revoke_invite(
            session, settings, asset, invite_id, actor=principal.ref
        ),
    )
