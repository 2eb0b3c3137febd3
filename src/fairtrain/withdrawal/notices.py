"""What licensees do with a notice: read it (feed), acknowledge it, attest deletion; and
what happens when they do not (reminder, escalation to operators, licence suspension).

A **deletion attestation** is a compact JWS (``deletion-attestation+jws``, EdDSA over the
RFC 8785 canonical JSON, as every signed document here: ``fairtrain.signing``) signed by
an Ed25519 key the buyer organisation registered. It names the notice, the licence and
the deleted items; one signed by any other key, or about other items, is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from fairtrain.accounts.models import Organisation
from fairtrain.audit.keys import key_id, load_public_key_pem, public_key_pem
from fairtrain.audit.service import append_event
from fairtrain.config import Settings
from fairtrain.errors import Conflict, InvalidInput, NotFound
from fairtrain.ids import utcnow
from fairtrain.licensing import service as licensing
from fairtrain.licensing.models import Licence
from fairtrain.signing import SignedKind, jws_sha256, sign_document, verify_jws
from fairtrain.withdrawal.models import BuyerKey, Notice, NoticeState

__all__ = [
    "ATTESTATION",
    "AttestationInvalid",
    "BuyerStatus",
    "EscalationReport",
    "acknowledge",
    "attest",
    "attestation_document",
    "buyer_statuses",
    "escalate",
    "escalated_notices",
    "feed",
    "get_notice",
    "item_statuses",
    "register_key",
    "sign_attestation",
]


class AttestationInvalid(InvalidInput):
    """Codes: ``attestation_malformed``, ``attestation_algorithm``, ``attestation_wrong_key``,
    ``attestation_signature``, ``attestation_not_canonical``, ``attestation_mismatch``."""

    default_code = "attestation_invalid"


ATTESTATION = SignedKind(
    typ="deletion-attestation+jws",
    noun="deletion attestation",
    prefix="attestation",
    field="attestation",
    error=AttestationInvalid,
)


# -- keys -------------------------------------------------------------------------------


def register_key(session: Session, *, org_id: str, pem: str, actor: str) -> BuyerKey:
    """An Ed25519 public key (PEM) the organisation will sign attestations with."""
    try:
        public = load_public_key_pem(pem.encode("ascii"))
    except (ValueError, TypeError, UnicodeEncodeError):
        raise InvalidInput(
            "The key is not a PEM Ed25519 public key.",
            code="public_key_invalid",
            pointer="/public_key_pem",
        ) from None
    kid = key_id(public)
    existing = session.get(BuyerKey, kid)
    if existing is not None:
        if existing.org_id != org_id:
            raise Conflict("This key is registered elsewhere.", code="key_taken")
        return existing
    key = BuyerKey(
        id=kid,
        org_id=org_id,
        public_key_pem=public_key_pem(public).decode("ascii"),
        created_by=actor,
        created_at=utcnow(),
    )
    session.add(key)
    session.flush()
    append_event(
        session,
        actor=actor,
        action="attestation_key.registered",
        subject=f"org:{org_id}",
        payload={"key": kid},
    )
    return key


# -- the feed ---------------------------------------------------------------------------


def _encode_cursor(notice: Notice) -> str:
    raw = json.dumps([notice.created_at.isoformat(), notice.id]).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        moment, notice_id = json.loads(raw)
        return datetime.fromisoformat(moment), str(notice_id)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(
            "This cursor is not one the feed gave out.", code="invalid_cursor", pointer="cursor"
        ) from None


def feed(
    session: Session, org_id: str, *, cursor: str | None = None, limit: int = 100
) -> tuple[list[Notice], str | None]:
    """The organisation's notices, oldest first, after ``cursor``; and the cursor to ask
    with next time (the last notice's, even at the end, so a poller keeps its place)."""
    query = select(Notice).where(Notice.org_id == org_id)
    if cursor:
        moment, after = _decode_cursor(cursor)
        query = query.where(
            or_(Notice.created_at > moment, and_(Notice.created_at == moment, Notice.id > after))
        )
    notices = list(session.scalars(query.order_by(Notice.created_at, Notice.id).limit(limit)))
    return notices, (_encode_cursor(notices[-1]) if notices else cursor)


def get_notice(session: Session, notice_id: str, org_id: str | None) -> Notice:
    notice = session.get(Notice, notice_id)
    if notice is None or (org_id is not None and notice.org_id != org_id):
        raise NotFound("No such notice.", code="notice_not_found")
    return notice


# -- acknowledging and attesting ----------------------------------------------------------


def acknowledge(
    session: Session, *, notice_id: str, org_id: str, actor: str, now: datetime | None = None
) -> Notice:
    notice = get_notice(session, notice_id, org_id)
    if notice.acknowledged_at is not None:
        return notice
    notice.acknowledged_at = now or utcnow()
    if NoticeState(notice.state) == NoticeState.NOTIFIED:
        notice.state = NoticeState.ACKNOWLEDGED
    session.flush()
    append_event(
        session,
        actor=actor,
        action="notice.acknowledged",
        subject=f"notice:{notice.id}",
        payload={"org": org_id, "licence": notice.licence_id},
    )
    return notice


def attestation_document(notice_body: dict[str, Any], *, deleted_at: datetime) -> dict[str, Any]:
    """What a licensee signs to attest deletion of a notice's items."""
    return {
        "type": "DeletionAttestation",
        "notice_id": notice_body["notice_id"],
        "licence_id": notice_body["licence_id"],
        "asset_ids": sorted(notice_body["asset_ids"]),
        "deleted_at": deleted_at.isoformat(),
        "statement": (
            "Every copy of these items held under this licence has been deleted, and no "
            "further training run will use them."
        ),
    }


def sign_attestation(document: dict[str, Any], key: Ed25519PrivateKey) -> str:
    return sign_document(document, key, ATTESTATION)


def attest(
    session: Session, *, notice_id: str, org_id: str, jws: str, actor: str,
    now: datetime | None = None,
) -> Notice:  # fmt: skip
    """Record a deletion attestation signed by one of the organisation's keys."""
    notice = get_notice(session, notice_id, org_id)
    keys = list(
        session.scalars(
            select(BuyerKey).where(BuyerKey.org_id == org_id, BuyerKey.revoked_at.is_(None))
        )
    )
    if not keys:
        raise Conflict(
            "Register an attestation key for your organisation first.", code="no_attestation_key"
        )
    document: dict[str, Any] | None = None
    signer: BuyerKey | None = None
    failure: AttestationInvalid | None = None
    for key in keys:
        try:
            document = verify_jws(jws, key.public_key_pem.encode("ascii"), ATTESTATION)
            signer = key
            break
        except AttestationInvalid as error:
            # "wrong key" only means: try the next one; any other failure is the answer.
            if failure is None or failure.code == "attestation_wrong_key":
                failure = error
    if document is None or signer is None:
        assert failure is not None
        raise failure
    if (
        document.get("notice_id") != notice.id
        or document.get("licence_id") != notice.licence_id
        or sorted(document.get("asset_ids") or []) != sorted(notice.asset_ids)
    ):
        raise AttestationInvalid(
            "The attestation is about another notice, licence or set of items.",
            code="attestation_mismatch",
        )
    if NoticeState(notice.state) == NoticeState.ATTESTED:
        return notice
    moment = now or utcnow()
    notice.attestation = document
    notice.attestation_jws = jws
    notice.attestation_key_id = signer.id
    notice.attested_at = moment
    notice.acknowledged_at = notice.acknowledged_at or moment
    notice.state = NoticeState.ATTESTED
    session.flush()
    append_event(
        session,
        actor=actor,
        action="notice.attested",
        subject=f"notice:{notice.id}",
        payload={"org": org_id, "licence": notice.licence_id, "key": signer.id,
                 "sha256": jws_sha256(jws), "late": moment > notice.deadline_at},
    )  # fmt: skip
    return notice


# -- deadlines --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EscalationReport:
    reminded: list[str]
    escalated: list[str]
    suspended: list[str]  # licence ids


def escalate(
    session: Session, settings: Settings, *, actor: str = "system", now: datetime | None = None
) -> EscalationReport:
    """Remind licensees whose deadline is near, escalate to operators those past it
    (the notice becomes ``overdue``), and suspend the licence of those still silent
    ``deletion_grace_days`` after it. Running it again changes nothing more."""
    now = now or utcnow()
    open_states = [NoticeState.NOTIFIED, NoticeState.ACKNOWLEDGED, NoticeState.OVERDUE]
    soon = now + timedelta(days=settings.deletion_reminder_days)
    reminded: list[str] = []
    escalated: list[str] = []
    suspended: list[str] = []
    pending = session.scalars(
        select(Notice)
        .where(Notice.state.in_(open_states), Notice.deadline_at <= soon)
        .order_by(Notice.deadline_at, Notice.id)
    )
    for notice in list(pending):
        if notice.reminded_at is None:
            notice.reminded_at = now
            reminded.append(notice.id)
            append_event(
                session,
                actor=actor,
                action="notice.reminded",
                subject=f"notice:{notice.id}",
                payload={"org": notice.org_id, "deadline": notice.deadline_at.isoformat()},
            )
        if notice.deadline_at <= now and notice.escalated_at is None:
            notice.state = NoticeState.OVERDUE
            notice.escalated_at = now
            escalated.append(notice.id)
            append_event(
                session,
                actor=actor,
                action="notice.escalated",
                subject=f"notice:{notice.id}",
                payload={"org": notice.org_id, "licence": notice.licence_id},
            )
        grace = notice.deadline_at + timedelta(days=settings.deletion_grace_days)
        if grace <= now and notice.suspended_at is None:
            notice.suspended_at = now
            licence = session.get(Licence, notice.licence_id)
            assert licence is not None
            if licensing.suspend_licence(
                session, licence, reason="deletion_attestation_overdue", actor=actor, now=now
            ):
                suspended.append(licence.id)
        session.flush()
    return EscalationReport(reminded, escalated, suspended)


def escalated_notices(session: Session, *, limit: int = 200) -> list[Notice]:
    return list(
        session.scalars(
            select(Notice)
            .where(Notice.state == NoticeState.OVERDUE)
            .order_by(Notice.deadline_at, Notice.id)
            .limit(limit)
        )
    )


# -- what the contributor sees ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BuyerStatus:
    notice_id: str
    licence_id: str
    org_id: str
    buyer: str
    state: str  # notified | acknowledged | attested | overdue
    deadline_at: datetime
    acknowledged_at: datetime | None
    attested_at: datetime | None
    asset_ids: list[str]


def item_statuses(session: Session, owner_id: str) -> dict[tuple[str, str], str]:
    """(licence id, asset id) → the newest withdrawal notice's status for the owner's items
    (what the earnings dashboard shows next to each licence)."""
    now = utcnow()
    statuses: dict[tuple[str, str], str] = {}
    rows = session.scalars(
        select(Notice).where(Notice.owner_id == owner_id).order_by(Notice.created_at, Notice.id)
    )
    for notice in rows:
        state = NoticeState(notice.state)
        if state != NoticeState.ATTESTED and notice.deadline_at <= now:
            state = NoticeState.OVERDUE
        for asset_id in notice.asset_ids:
            statuses[(notice.licence_id, asset_id)] = state.value
    return statuses


def buyer_statuses(session: Session, notices: list[Notice]) -> list[BuyerStatus]:
    """Each licensee's status; a deadline passed without attestation reads ``overdue``
    even before the periodic escalation has run."""
    now = utcnow()
    out: list[BuyerStatus] = []
    names: dict[str, str] = {}
    for notice in notices:
        if notice.org_id not in names:
            org = session.get(Organisation, notice.org_id)
            names[notice.org_id] = org.name if org is not None else notice.org_id
        state = NoticeState(notice.state)
        if state != NoticeState.ATTESTED and notice.deadline_at <= now:
            state = NoticeState.OVERDUE
        out.append(
            BuyerStatus(
                notice_id=notice.id,
                licence_id=notice.licence_id,
                org_id=notice.org_id,
                buyer=names[notice.org_id],
                state=state.value,
                deadline_at=notice.deadline_at,
                acknowledged_at=notice.acknowledged_at,
                attested_at=notice.attested_at,
                asset_ids=list(notice.asset_ids),
            )
        )
    return out
