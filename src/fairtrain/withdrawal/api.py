"""Withdrawal over HTTP: contributors withdraw and follow each buyer's answer; buyers
register webhook endpoints and attestation keys, read the notice feed, acknowledge and
attest; operators see dead-lettered deliveries and escalated notices."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from fairtrain.accounts.models import UserKind
from fairtrain.accounts.policy import authorize_staff
from fairtrain.catalog.policy import (
    BuyerAction,
    authorize_buyer,
    authorize_buyer_admin,
    authorize_contributor,
)
from fairtrain.deps import PrincipalDep, SessionDep, SettingsDep
from fairtrain.withdrawal import notices as notice_service
from fairtrain.withdrawal import service, webhooks
from fairtrain.withdrawal.models import DeliveryState, Notice, WebhookEndpoint, Withdrawal

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["withdrawal"])
_OPERATORS = frozenset({UserKind.OPERATOR})


class WithdrawalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    asset_ids: list[str] | None = Field(default=None, max_length=10000)
    everything: bool = False
    purpose: str | None = Field(default=None, max_length=60)
    org_id: str | None = Field(default=None, max_length=40)


class BuyerStatusOut(BaseModel):
    notice_id: str
    licence_id: str
    org_id: str
    buyer: str
    state: str
    deadline_at: datetime
    acknowledged_at: datetime | None
    attested_at: datetime | None
    asset_ids: list[str]


class WithdrawalOut(BaseModel):
    id: str
    everything: bool
    asset_ids: list[str]
    purpose: str | None
    org_id: str | None
    receipt_ids: list[str]
    dataset_versions: list[str]
    created_at: datetime
    buyers: list[BuyerStatusOut]
    # In plain words, what the withdrawal does and cannot do.
    explanation: str


class NoticeOut(BaseModel):
    id: str
    withdrawal_id: str
    licence_id: str
    state: str
    asset_ids: list[str]
    purpose: str | None
    obligation: str
    deletion_days: int
    deadline_at: datetime
    created_at: datetime
    acknowledged_at: datetime | None
    attested_at: datetime | None
    body: dict[str, object]


class NoticeFeedOut(BaseModel):
    notices: list[NoticeOut]
    next_cursor: str | None


class AttestationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    jws: str = Field(min_length=1, max_length=200_000)


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000)


class WebhookOut(BaseModel):
    id: str
    url: str
    active: bool
    created_at: datetime
    secret: str | None = None  # shown once, when the endpoint is registered


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    public_key_pem: str = Field(min_length=1, max_length=2000)


class KeyOut(BaseModel):
    id: str
    created_at: datetime


class DeliveryOut(BaseModel):
    id: str
    notice_id: str
    endpoint_id: str
    org_id: str
    state: str
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime


EXPLANATION = (
    "No new licence, campaign or dataset can include what you withdrew, from now on. "
    "Datasets that held it got a new version without it. Every buyer who already licensed "
    "it has been told to stop training on it, to delete their copies by the deadline and "
    "to confirm that they did. A model already trained on it cannot forget it: the buyer "
    "must leave it out the next time the model is retrained. We cannot see inside buyers' "
    "computers; a buyer who keeps a copy against the licence breaks the contract, and "
    "the licence is suspended when they do not confirm deletion in time."
)


def _withdrawal_out(session: Session, withdrawal: Withdrawal) -> WithdrawalOut:
    notices = service.notices_of_withdrawal(session, withdrawal.id)
    return WithdrawalOut(
        id=withdrawal.id,
        everything=withdrawal.everything,
        asset_ids=list(withdrawal.asset_ids),
        purpose=withdrawal.purpose,
        org_id=withdrawal.org_id,
        receipt_ids=list(withdrawal.receipt_ids),
        dataset_versions=list(withdrawal.dataset_versions),
        created_at=withdrawal.created_at,
        buyers=[
            BuyerStatusOut(**_fields(status))
            for status in notice_service.buyer_statuses(session, notices)
        ],
        explanation=EXPLANATION,
    )


def _fields(status: notice_service.BuyerStatus) -> dict[str, object]:
    return {name: getattr(status, name) for name in status.__slots__}


def _notice_out(notice: Notice) -> NoticeOut:
    return NoticeOut(
        id=notice.id,
        withdrawal_id=notice.withdrawal_id,
        licence_id=notice.licence_id,
        state=str(notice.state),
        asset_ids=list(notice.asset_ids),
        purpose=notice.purpose,
        obligation=notice.obligation,
        deletion_days=notice.deletion_days,
        deadline_at=notice.deadline_at,
        created_at=notice.created_at,
        acknowledged_at=notice.acknowledged_at,
        attested_at=notice.attested_at,
        body=dict(notice.body),
    )


def _webhook_out(endpoint: WebhookEndpoint, *, secret: str | None = None) -> WebhookOut:
    return WebhookOut(
        id=endpoint.id,
        url=endpoint.url,
        active=endpoint.active,
        created_at=endpoint.created_at,
        secret=secret,
    )


# -- contributors -----------------------------------------------------------------------


@router.post(
    "/withdrawals",
    response_model=WithdrawalOut,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": WithdrawalOut, "description": "The same withdrawal, again."}},
)
def create_withdrawal(
    body: WithdrawalIn,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
) -> Response | WithdrawalOut:
    """Withdraw assets (or everything) from every use or one purpose, from every buyer or
    one. Asking again for the same withdrawal returns the first (200)."""
    owner_id = authorize_contributor(principal)
    result = service.withdraw(
        session,
        settings,
        request.app.state.jobs.dispatch,
        owner_id=owner_id,
        actor=principal.ref,
        asset_ids=body.asset_ids,
        everything=body.everything,
        purpose=body.purpose,
        org_id=body.org_id,
    )
    out = _withdrawal_out(session, result.withdrawal)
    if not result.created:
        return JSONResponse(out.model_dump(mode="json"), status_code=200)
    return out


@router.get("/withdrawals", response_model=list[WithdrawalOut])
def list_withdrawals(principal: PrincipalDep, session: SessionDep) -> list[WithdrawalOut]:
    """The contributor's withdrawals, newest first, with each buyer's status:
    notified → acknowledged → attested, or overdue."""
    owner_id = authorize_contributor(principal)
    return [_withdrawal_out(session, w) for w in service.withdrawals_of(session, owner_id)]


# -- buyers -----------------------------------------------------------------------------


@router.get("/notices", response_model=NoticeFeedOut)
def notice_feed(
    principal: PrincipalDep,
    session: SessionDep,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> NoticeFeedOut:
    """The organisation's notices, oldest first; pass ``next_cursor`` back to get only
    newer ones (for buyers without webhooks, and the buyer client's ``sync``)."""
    org_id = authorize_buyer(principal, BuyerAction.NOTICES_READ)
    found, next_cursor = notice_service.feed(session, org_id, cursor=cursor, limit=limit)
    return NoticeFeedOut(notices=[_notice_out(n) for n in found], next_cursor=next_cursor)


@router.get("/notices/escalated", response_model=list[NoticeOut])
def escalated(principal: PrincipalDep, session: SessionDep) -> list[NoticeOut]:
    """Operators: notices whose deletion deadline passed without an attestation."""
    authorize_staff(principal, allow=_OPERATORS)
    return [_notice_out(n) for n in notice_service.escalated_notices(session)]


@router.post("/notices/{notice_id}/acknowledge", response_model=NoticeOut)
def acknowledge_notice(notice_id: str, principal: PrincipalDep, session: SessionDep) -> NoticeOut:
    org_id = authorize_buyer(principal, BuyerAction.ATTESTATIONS_WRITE)
    return _notice_out(
        notice_service.acknowledge(session, notice_id=notice_id, org_id=org_id, actor=principal.ref)
    )


@router.post("/notices/{notice_id}/attestation", response_model=NoticeOut)
def attest_notice(
    notice_id: str, body: AttestationIn, principal: PrincipalDep, session: SessionDep
) -> NoticeOut:
    """Attest deletion with a ``deletion-attestation+jws`` signed by one of the
    organisation's registered keys; a forged or mismatched one is refused (422)."""
    org_id = authorize_buyer(principal, BuyerAction.ATTESTATIONS_WRITE)
    notice = notice_service.attest(
        session, notice_id=notice_id, org_id=org_id, jws=body.jws, actor=principal.ref
    )
    return _notice_out(notice)


@router.post(
    "/orgs/{org_id}/webhooks", response_model=WebhookOut, status_code=status.HTTP_201_CREATED
)
def register_webhook(
    org_id: str, body: WebhookIn, principal: PrincipalDep, session: SessionDep,
    settings: SettingsDep,
) -> WebhookOut:  # fmt: skip
    """Register an endpoint for notices; the signing secret is shown only now."""
    authorize_buyer_admin(principal, org_id)
    endpoint, secret = webhooks.register_endpoint(
        session, settings, org_id=org_id, url=body.url, actor=principal.ref
    )
    return _webhook_out(endpoint, secret=secret)


@router.get("/orgs/{org_id}/webhooks", response_model=list[WebhookOut])
def list_webhooks(org_id: str, principal: PrincipalDep, session: SessionDep) -> list[WebhookOut]:
    authorize_buyer_admin(principal, org_id)
    return [_webhook_out(e) for e in webhooks.endpoints_of(session, org_id)]


@router.delete("/orgs/{org_id}/webhooks/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT)
def disable_webhook(
    org_id: str, endpoint_id: str, principal: PrincipalDep, session: SessionDep
) -> Response:
    authorize_buyer_admin(principal, org_id)
    webhooks.disable_endpoint(session, org_id=org_id, endpoint_id=endpoint_id, actor=principal.ref)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/orgs/{org_id}/attestation-keys", response_model=KeyOut, status_code=status.HTTP_201_CREATED
)
def register_attestation_key(
    org_id: str, body: KeyIn, principal: PrincipalDep, session: SessionDep
) -> KeyOut:
    """Register an Ed25519 public key (PEM) that signs the organisation's attestations."""
    authorize_buyer_admin(principal, org_id)
    key = notice_service.register_key(
        session, org_id=org_id, pem=body.public_key_pem, actor=principal.ref
    )
    return KeyOut(id=key.id, created_at=key.created_at)


# -- operators --------------------------------------------------------------------------


@router.get("/webhook-deliveries", response_model=list[DeliveryOut])
def webhook_deliveries(
    principal: PrincipalDep,
    session: SessionDep,
    state: Annotated[DeliveryState, Query()] = DeliveryState.DEAD,
) -> list[DeliveryOut]:
    """Operators: webhook deliveries in a state (default: dead-lettered)."""
    authorize_staff(principal, allow=_OPERATORS)
    return [
        DeliveryOut(
            id=d.id,
            notice_id=d.notice_id,
            endpoint_id=d.endpoint_id,
            org_id=d.org_id,
            state=str(d.state),
            attempts=d.attempts,
            last_status=d.last_status,
            last_error=d.last_error,
            next_attempt_at=d.next_attempt_at,
            created_at=d.created_at,
        )
        for d in webhooks.dead_letters(session, state=state)
    ]
