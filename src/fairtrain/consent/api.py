"""Terms over HTTP: the purpose taxonomy, templates, an asset's policy and its versions,
bulk changes, stateless evaluation of any ODRL policy, and counterparty invites (the
contributor's side under ``/assets/{id}/invites``, the counterparty's under
``/invites/{token}``)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from fairtrain.audit.keys import key_id, platform_signing_key, public_key_pem
from fairtrain.consent import counterparty, purposes, service
from fairtrain.consent.evaluate import Request as EvaluationRequest
from fairtrain.consent.evaluate import evaluate
from fairtrain.consent.models import AssetPolicy, ConsentReceiptRecord, CounterpartyInvite
from fairtrain.consent.odrl import parse_policy
from fairtrain.consent.plain import explain, risk_notes
from fairtrain.consent.policy import authorize_invites
from fairtrain.consent.receipts import receipt_file
from fairtrain.consent.schemas import (
    AnswerIn,
    AssetInvitesOut,
    InviteCreatedOut,
    InviteIn,
    InviteOut,
    InviteTermsOut,
    InviteViewOut,
    PartOut,
)
from fairtrain.consent.templates import TEMPLATES
from fairtrain.consent.terms import MAX_TERM_MONTHS, MainTerms
from fairtrain.deps import PrincipalDep, SessionDep
from fairtrain.errors import AuthenticationRequired, Forbidden, InvalidInput, NotFound
from fairtrain.ingest.models import Asset
from fairtrain.ingest.policy import AssetAction, authorize_asset
from fairtrain.money import CURRENCIES, to_major
from fairtrain.problems import PROBLEM_RESPONSES

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["consent"])

Currency = Annotated[str, Field(pattern=r"^[A-Za-z]{3}$")]


class PurposeOut(BaseModel):
    key: str
    iri: str
    label: str
    parent: str | None
    words: str


class TemplateOut(BaseModel):
    key: str
    title: str
    summary: str


class MainTermsIn(BaseModel):
    """The main terms, as the web form edits them (always non-exclusive, no sublicensing)."""

    model_config = ConfigDict(extra="forbid")

    allowed: list[str] = Field(min_length=1, max_length=64, description="Purpose keys.")
    prohibited: list[str] = Field(default_factory=list, max_length=64)
    territories: list[Annotated[str, Field(pattern=r"^[A-Za-z]{2,3}$")]] = Field(
        default_factory=list,
        max_length=250,
        description="ISO 3166 codes, EU or EEA; none: anywhere.",
    )
    term_months: int = Field(default=12, ge=1, le=MAX_TERM_MONTHS)
    price_minor: int = Field(default=100, ge=0, le=10**12)
    currency: Currency = "EUR"
    attribution: bool = False
    ends_at: datetime | None = Field(default=None, description="Your consent ends then.")

    def main_terms(self) -> MainTerms:
        code = self.currency.upper()
        if code not in CURRENCIES:
            raise InvalidInput(
                f"{code} is not a supported currency.", code="unknown_currency",
                pointer="terms.currency",
            )  # fmt: skip
        return MainTerms(
            allowed=tuple(self.allowed),
            prohibited=tuple(self.prohibited),
            territories=tuple(self.territories),
            term_months=self.term_months,
            price=to_major(self.price_minor, code),
            currency=code,
            attribution=self.attribution,
            ends_at=_utc(self.ends_at),
        )


class PolicyIn(BaseModel):
    """A template (with a price), the main terms, or a whole ODRL policy document."""

    model_config = ConfigDict(extra="forbid")

    template: str | None = Field(default=None, max_length=40)
    price_minor: int | None = Field(default=None, ge=0, le=10**12)
    currency: Currency | None = None
    terms: MainTermsIn | None = None
    policy: dict[str, Any] | None = None
    explicit_biometric_consent: bool = Field(
        default=False,
        description="Your separate, explicit consent to biometric uses, which some "
        "jurisdictions require when the terms allow them (see docs/consent.md).",
    )

    def attestations(self) -> frozenset[str]:
        return frozenset({"explicit_biometric_consent"} if self.explicit_biometric_consent else ())


class BulkPolicyIn(PolicyIn):
    asset_ids: list[str] | None = Field(
        default=None, max_length=10_000, description="Default: every asset of yours."
    )


class CompiledOut(BaseModel):
    permitted: list[str]
    prohibited: list[str]
    territories: list[str] | None
    not_after: datetime | None
    term_days: int | None
    price_minor: int | None
    currency: str | None
    exclusive: bool
    sublicensing: bool


class PolicyOut(BaseModel):
    id: str
    asset_id: str
    version: int
    template: str | None
    sha256: str
    status: str = Field(description="DPV consent state: ConsentGiven, RenewedConsentGiven "
                        "or ConsentExpired.")  # fmt: skip
    created_at: datetime
    superseded_at: datetime | None
    expired_at: datetime | None
    summary: CompiledOut
    explanation: list[str]  # the terms in plain words, generated from the structure
    risk_notes: list[str]  # what to know before agreeing, for this kind of data
    document: dict[str, Any]


class RequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: str = Field(default="use", max_length=40)
    purpose: str | None = Field(default=None, max_length=200)
    territory: str | None = Field(default=None, pattern=r"^[A-Za-z]{2}$")
    at: datetime | None = None
    assignee: str | None = Field(default=None, max_length=500)
    target: str | None = Field(default=None, max_length=500)
    recipient: str | None = Field(default=None, max_length=500)
    count: int = Field(default=1, ge=1)
    pay_amount: Decimal | None = Field(default=None, ge=0)
    currency: Currency | None = None
    licence_start: datetime | None = None
    sublicense: bool = False
    exclusive: bool = False


class EvaluateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policy: dict[str, Any]
    request: RequestIn


class DecisionOut(BaseModel):
    outcome: str
    reason: str
    rule: str | None
    rule_path: str | None
    duties: list[str]


def _keys(mask: int) -> list[str]:
    return [p.key for p in purposes.PURPOSES.values() if mask >> p.bit & 1]


def _top(keys: list[str]) -> list[str]:
    """The broadest purposes of a downward-closed set (what a person would name)."""
    chosen = set(keys)
    return [k for k in keys if purposes.PURPOSES[k].parent not in chosen]


def policy_out(record: AssetPolicy, modality: str | None) -> PolicyOut:
    policy = service.policy_of(record)
    territories = record.territories.strip(",").split(",") if record.territories else None
    return PolicyOut(
        id=record.id,
        asset_id=record.asset_id,
        version=record.version,
        template=record.template,
        sha256=record.sha256,
        status=record.status,
        created_at=record.created_at,
        superseded_at=record.superseded_at,
        expired_at=record.expired_at,
        summary=CompiledOut(
            permitted=_top(_keys(record.permit_mask)),
            prohibited=_top(_keys(record.ban_mask)),
            territories=territories,
            not_after=record.not_after,
            term_days=record.term_days,
            price_minor=record.price_minor,
            currency=record.currency,
            exclusive=record.exclusive,
            sublicensing=record.sublicensing,
        ),
        explanation=explain(policy),
        risk_notes=risk_notes(policy, modality),
        document=record.document,
    )


@router.get("/purposes", response_model=list[PurposeOut])
def list_purposes() -> list[PurposeOut]:
    """The purpose taxonomy (DPV-aligned); a permission covers every narrower purpose."""
    return [
        PurposeOut(key=p.key, iri=p.iri, label=p.label, parent=p.parent, words=p.words)
        for p in purposes.PURPOSES.values()
    ]


@router.get("/policy-templates", response_model=list[TemplateOut])
def list_templates() -> list[TemplateOut]:
    return [TemplateOut(key=t.key, title=t.title, summary=t.summary) for t in TEMPLATES.values()]


@router.get("/assets/{asset_id}/policy", response_model=PolicyOut)
def read_policy(asset_id: str, principal: PrincipalDep, session: SessionDep) -> PolicyOut:
    asset = authorize_asset(principal, AssetAction.READ, session.get(Asset, asset_id))
    record = service.current_policy(session, asset.id)
    if record is None:
        raise NotFound(
            "This asset has no terms yet; they are set when you approve it, or with PUT.",
            code="policy_not_found",
        )
    return policy_out(record, asset.modality)


@router.put("/assets/{asset_id}/policy", response_model=PolicyOut)
def write_policy(
    asset_id: str, body: PolicyIn, request: Request, principal: PrincipalDep, session: SessionDep
) -> PolicyOut:
    """A new version of the asset's terms; licences already granted keep theirs."""
    asset = authorize_asset(principal, AssetAction.MANAGE, session.get(Asset, asset_id))
    record = service.set_policy(
        session,
        request.app.state.settings,
        asset,
        actor=principal.ref,
        document=body.policy,
        template=body.template,
        price_minor=body.price_minor,
        currency=body.currency.upper() if body.currency else None,
        attestations=body.attestations(),
        terms=body.terms.main_terms() if body.terms else None,
    )
    counterparty.terms_changed(
        session, request.app.state.settings, asset, request.app.state.jobs.dispatch,
        actor=principal.ref,
    )  # fmt: skip
    return policy_out(record, asset.modality)


@router.get("/assets/{asset_id}/policy/versions", response_model=list[PolicyOut])
def read_policy_versions(
    asset_id: str, principal: PrincipalDep, session: SessionDep
) -> list[PolicyOut]:
    asset = authorize_asset(principal, AssetAction.READ, session.get(Asset, asset_id))
    return [policy_out(r, asset.modality) for r in service.policy_versions(session, asset.id)]


class RenewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    until: datetime = Field(description="The new end of your consent (UTC).")
    explicit_biometric_consent: bool = False


@router.post("/assets/{asset_id}/policy/renew", response_model=PolicyOut)
def renew_policy(
    asset_id: str, body: RenewIn, request: Request, principal: PrincipalDep, session: SessionDep
) -> PolicyOut:
    """Extend your terms to a later end, before or after they expired: the same terms as a
    new version (RenewedConsentGiven) with a renewal receipt; the asset is offered again.
    Licences already granted keep the terms and end they were granted under."""
    asset = authorize_asset(principal, AssetAction.MANAGE, session.get(Asset, asset_id))
    until = _utc(body.until)
    assert until is not None
    record = service.renew_policy(
        session,
        request.app.state.settings,
        asset,
        actor=principal.ref,
        until=until,
        attestations=frozenset(
            {"explicit_biometric_consent"} if body.explicit_biometric_consent else ()
        ),
    )
    counterparty.terms_changed(
        session, request.app.state.settings, asset, request.app.state.jobs.dispatch,
        actor=principal.ref,
    )  # fmt: skip
    return policy_out(record, asset.modality)


@router.put("/me/policy", response_model=list[PolicyOut])
def write_policies(
    body: BulkPolicyIn, request: Request, principal: PrincipalDep, session: SessionDep
) -> list[PolicyOut]:
    """The same terms for many of your assets at once (all or nothing)."""
    if not principal.is_authenticated:
        raise AuthenticationRequired("Log in first.")
    if principal.kind != "contributor" or principal.user_id is None:
        raise Forbidden("Only contributors set terms for their assets.", code="role_forbidden")
    assets = service.termable_assets(session, principal.user_id, body.asset_ids)
    if body.asset_ids is not None and len(assets) != len(set(body.asset_ids)):
        raise InvalidInput(
            "Some of these assets are not yours, or are erased or rejected.",
            code="asset_not_found",
            pointer="asset_ids",
        )
    records = service.set_policies(
        session,
        request.app.state.settings,
        assets,
        actor=principal.ref,
        document=body.policy,
        template=body.template,
        price_minor=body.price_minor,
        currency=body.currency.upper() if body.currency else None,
        attestations=body.attestations(),
        terms=body.terms.main_terms() if body.terms else None,
    )
    for asset in assets:
        counterparty.terms_changed(
            session, request.app.state.settings, asset, request.app.state.jobs.dispatch,
            actor=principal.ref,
        )  # fmt: skip
    modality = {a.id: a.modality for a in assets}
    return [policy_out(r, modality[r.asset_id]) for r in records]


def _utc(moment: datetime | None) -> datetime | None:
    """Times without a zone are read as UTC (the platform's only zone)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def evaluation_request(body: RequestIn) -> EvaluationRequest:
    purpose = purposes.resolve(body.purpose).key if body.purpose else None
    extra: dict[str, Any] = {}
    if body.at is not None:
        extra["at"] = _utc(body.at)
    return EvaluationRequest(
        action=body.action,
        purpose=purpose,
        territory=body.territory.upper() if body.territory else None,
        assignee=body.assignee,
        target=body.target,
        recipient=body.recipient,
        count=body.count,
        pay_amount=body.pay_amount,
        currency=body.currency.upper() if body.currency else None,
        licence_start=_utc(body.licence_start),
        sublicense=body.sublicense,
        exclusive=body.exclusive,
        **extra,
    )


class RenderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policy: dict[str, Any]
    modality: str | None = Field(default=None, pattern=r"^(audio|image|video|chat|text|document)$")


class RenderOut(BaseModel):
    explanation: list[str]
    risk_notes: list[str]


class ReceiptOut(BaseModel):
    id: str
    asset_id: str | None
    policy_id: str | None
    status: str
    event: str  # grant, change, renewal, expiry, withdrawal…
    sha256: str
    issued_at: datetime
    valid_until: str | None  # the receipt's validUntil (ISO 8601), when the consent ends


@router.get("/me/receipts", response_model=list[ReceiptOut])
def my_receipts(principal: PrincipalDep, session: SessionDep) -> list[ReceiptOut]:
    """Your consent receipts, newest first."""
    if not principal.is_authenticated or principal.user_id is None:
        raise AuthenticationRequired("Log in first.")
    return [
        ReceiptOut(
            id=r.id,
            asset_id=r.asset_id,
            policy_id=r.policy_id,
            status=r.status,
            event=r.event,
            sha256=r.sha256,
            issued_at=r.issued_at,
            valid_until=r.receipt.get("validUntil"),
        )
        for r in service.receipts_of(session, principal.user_id)
    ]


@router.get(
    "/receipts/{receipt_id}",
    responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}},
)
def download_receipt(
    receipt_id: str, request: Request, principal: PrincipalDep, session: SessionDep
) -> JSONResponse:
    """The receipt file: the readable receipt, its JWS, and the signing key's id.
    Check it offline with `fairtrain consent verify-receipt FILE --public-key KEY`."""
    if not principal.is_authenticated or principal.user_id is None:
        raise AuthenticationRequired("Log in first.")
    record = session.get(ConsentReceiptRecord, receipt_id)
    if record is None or record.owner_id != principal.user_id:
        raise NotFound("No such receipt.", code="receipt_not_found")
    key = platform_signing_key(request.app.state.settings)
    body = receipt_file(record.receipt, record.jws, key_id(key.public_key()))
    return JSONResponse(
        body,
        headers={"Content-Disposition": f'attachment; filename="{record.id}.json"'},
    )


@router.get(
    "/signing-key",
    response_class=PlainTextResponse,
    responses={200: {"content": {"application/x-pem-file": {"schema": {"type": "string"}}}}},
)
def signing_key(request: Request) -> PlainTextResponse:
    """The platform's public key (PEM): verifies receipts and audit checkpoints offline."""
    key = platform_signing_key(request.app.state.settings)
    return PlainTextResponse(
        public_key_pem(key.public_key()).decode(), media_type="application/x-pem-file"
    )


@router.post("/policies/render", response_model=RenderOut)
def render_policy(body: RenderIn) -> RenderOut:
    """Any ODRL policy in plain words, with the risk notes for a kind of data."""
    policy = parse_policy(body.policy)
    return RenderOut(explanation=explain(policy), risk_notes=risk_notes(policy, body.modality))


@router.post("/policies/evaluate", response_model=DecisionOut)
def evaluate_policy(body: EvaluateIn) -> DecisionOut:
    """Would this policy allow this request? Stateless: nothing is stored."""
    decision = evaluate(parse_policy(body.policy), evaluation_request(body.request))
    return DecisionOut(**decision.as_dict())


# --- counterparty invites ---------------------------------------------------------------

_GONE: dict[int | str, dict[str, Any]] = {
    410: PROBLEM_RESPONSES[404]
    | {"description": "The invite expired, was taken back, or its file was removed."}
}


def invite_out(invite: CounterpartyInvite) -> InviteOut:
    return InviteOut(
        id=invite.id,
        asset_id=invite.asset_id,
        part=f"{invite.part_kind}:{invite.part_ref}",
        part_kind=invite.part_kind,
        name=invite.invitee_name,
        email=invite.invitee_email,
        status=str(invite.status),
        policy_id=invite.policy_id,
        created_at=invite.created_at,
        expires_at=invite.expires_at,
        answered_at=invite.answered_at,
        withdrawn_at=invite.withdrawn_at,
    )


@router.post("/assets/{asset_id}/invites", status_code=201, response_model=InviteCreatedOut)
def create_invite(
    asset_id: str, body: InviteIn, request: Request, principal: PrincipalDep, session: SessionDep
) -> InviteCreatedOut:
    """Invite a person who appears in the asset to consent to their own part. The link is
    returned once; send it to them yourself."""
    asset = authorize_invites(principal, session.get(Asset, asset_id))
    settings = request.app.state.settings
    invite, token = counterparty.create_invite(
        session,
        settings,
        asset,
        actor=principal.ref,
        part=body.part,
        name=body.name,
        email=body.email,
    )
    return InviteCreatedOut(
        **invite_out(invite).model_dump(), link=counterparty.invite_link(settings, token)
    )


@router.get("/assets/{asset_id}/invites", response_model=AssetInvitesOut)
def list_invites(
    asset_id: str, request: Request, principal: PrincipalDep, session: SessionDep
) -> AssetInvitesOut:
    """The people the asset's redaction found, and every invite with its status."""
    asset = authorize_invites(principal, session.get(Asset, asset_id))
    invites = counterparty.invites_of(session, request.app.state.settings, asset)
    return AssetInvitesOut(
        parts=[
            PartOut(id=p.id, kind=p.kind, label=p.label, included=p.included)
            for p in counterparty.parts_of(asset)
        ],
        invites=[invite_out(i) for i in invites],
    )


@router.delete("/assets/{asset_id}/invites/{invite_id}", response_model=InviteOut)
def revoke_invite(
    asset_id: str, invite_id: str, request: Request, principal: PrincipalDep, session: SessionDep
) -> InviteOut:
    """Take back an invite nobody has answered yet; its link stops working."""
    asset = authorize_invites(principal, session.get(Asset, asset_id))
    invite = counterparty.revoke_invite(
        session, request.app.state.settings, asset, invite_id, actor=principal.ref
    )
    return invite_out(invite)


def _by_token(request: Request, session: SessionDep, token: str) -> CounterpartyInvite:
    # Expiry found on the way is recorded even when the answer is then an error.
    request.state.commit_on_error = True
    return counterparty.invite_by_token(session, request.app.state.settings, token)


def view_out(view: counterparty.InviteView) -> InviteViewOut:
    invite = view.invite
    return InviteViewOut(
        status=str(invite.status),
        modality=view.modality,
        part_kind=invite.part_kind,
        part=view.description,
        invited_by=view.invited_by,
        expires_at=invite.expires_at,
        answered_at=invite.answered_at,
        withdrawn_at=invite.withdrawn_at,
        terms=InviteTermsOut(
            policy_id=view.terms.id,
            version=view.terms.version,
            sha256=view.terms.sha256,
            explanation=view.explanation,
            risk_notes=view.risk_notes,
        ),
    )


@router.get("/invites/{token}", response_model=InviteViewOut, responses=_GONE)
def read_invite(token: str, request: Request, session: SessionDep) -> InviteViewOut:
    """For the invited person (the token is the credential): what you appear in, your
    part only, and the terms in plain words with their risk notes."""
    invite = _by_token(request, session, token)
    return view_out(counterparty.invite_view(session, invite))


@router.get(
    "/invites/{token}/part",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {
                "text/plain": {},
                "audio/flac": {},
                "image/png": {},
            }
        },
        **_GONE,
    },
    summary="Your own part only: your messages, your side of the call, or your face.",
)
def read_invite_part(token: str, request: Request, session: SessionDep) -> StreamingResponse:
    invite = _by_token(request, session, token)
    part = counterparty.render_part(session, request.app.state.runtime, invite)
    return StreamingResponse(
        part.chunks,
        media_type=part.media_type,
        headers={
            "Content-Disposition": f'inline; filename="{part.filename}"',
            "Content-Security-Policy": "sandbox; default-src 'none'",
            "Cache-Control": "private, no-store",
        },
    )


@router.post("/invites/{token}/answer", response_model=InviteViewOut, responses=_GONE)
def answer_invite(
    token: str, body: AnswerIn, request: Request, session: SessionDep
) -> InviteViewOut:
    """Consent (your part is then included in what is shared) or refuse (it stays hidden)."""
    invite = _by_token(request, session, token)
    counterparty.answer_invite(
        session,
        request.app.state.settings,
        invite,
        request.app.state.jobs.dispatch,
        consent=body.consent,
    )
    return view_out(counterparty.invite_view(session, invite))


@router.post("/invites/{token}/withdraw", response_model=InviteViewOut, responses=_GONE)
def withdraw_invite(token: str, request: Request, session: SessionDep) -> InviteViewOut:
    """Take back your consent: your part is hidden again in what is shared from now on."""
    invite = _by_token(request, session, token)
    counterparty.withdraw_invite(
        session, request.app.state.settings, invite, request.app.state.jobs.dispatch
    )
    return view_out(counterparty.invite_view(session, invite))


@router.get(
    "/invites/{token}/receipt",
    responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}},
)
def download_invite_receipt(token: str, request: Request, session: SessionDep) -> JSONResponse:
    """Your latest consent receipt for this invite (signed; check it offline with
    `fairtrain consent verify-receipt FILE --public-key KEY`)."""
    invite = _by_token(request, session, token)
    record = counterparty.latest_receipt(session, invite)
    key = platform_signing_key(request.app.state.settings)
    return JSONResponse(
        receipt_file(record.receipt, record.jws, key_id(key.public_key())),
        headers={"Content-Disposition": f'attachment; filename="{record.id}.json"'},
    )
