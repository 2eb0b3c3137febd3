"""Audit API: the whole log for auditors and operators, one's own events for a person."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from fairtrain.audit import service
from fairtrain.audit.models import AuditEvent
from fairtrain.audit.policy import authorize_log_read, authorize_own_events
from fairtrain.audit.schemas import AuditEventOut, AuditPage, ChainStatus
from fairtrain.deps import PrincipalDep, SessionDep

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["audit"])

AfterSeq = Annotated[int, Query(ge=0, description="Return events after this position.")]
Limit = Annotated[int, Query(ge=1, le=1000)]


def _page(events: list[AuditEvent], limit: int) -> AuditPage:
    return AuditPage(
        events=[
            AuditEventOut(
                seq=e.seq,
                event_id=e.event_id,
                occurred_at=e.occurred_at_text,
                actor=e.actor,
                action=e.action,
                subject=e.subject,
                payload=e.payload,
                payload_digest=e.payload_digest,
                prev_hash=e.prev_hash,
                hash=e.hash,
            )
            for e in events
        ],
        next_after_seq=events[-1].seq if len(events) == limit else None,
    )


@router.get("/audit/events", response_model=AuditPage)
def read_log(
    principal: PrincipalDep, session: SessionDep, after_seq: AfterSeq = 0, limit: Limit = 100
) -> AuditPage:
    authorize_log_read(principal)
    return _page(service.events_page(session, after_seq=after_seq, limit=limit), limit)


Scope = Annotated[
    Literal["since_checkpoint", "full"],
    Query(
        description=(
            "since_checkpoint (the default): the latest signed checkpoint is checked and "
            "every event from the one it signed on is recomputed, so the cost is bounded "
            "by the checkpoint interval. full: every event of the log is recomputed."
        )
    ),
]


@router.get("/audit/status", response_model=ChainStatus)
def chain_status(
    principal: PrincipalDep,
    session: SessionDep,
    request: Request,
    scope: Scope = "since_checkpoint",
) -> ChainStatus:
    authorize_log_read(principal)
    check = (
        service.verify_whole_chain(session)
        if scope == "full"
        else service.verify_since_checkpoint(session, request.app.state.audit_public_key)
    )
    return ChainStatus(
        ok=check.ok,
        events=service.count_events(session),
        first_bad_seq=check.first_bad_seq,
        problem=check.problem,
        scope="full" if check.checkpoint is None else "since_checkpoint",
        verified_from_seq=check.verified_from_seq,
        checkpoint_tree_size=check.checkpoint.tree_size if check.checkpoint else None,
    )


@router.get("/me/audit-events", response_model=AuditPage)
def my_events(
    principal: PrincipalDep, session: SessionDep, after_seq: AfterSeq = 0, limit: Limit = 100
) -> AuditPage:
    user_id = authorize_own_events(principal)
    events = service.events_page(
        session, after_seq=after_seq, limit=limit, about_ref=f"user:{user_id}"
    )
    return _page(events, limit)
