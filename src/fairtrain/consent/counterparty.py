"""Counterparty consent: the people in a contributor's data decide about their own part.

A chat holds other senders, a call the other side, a photo other faces. Redaction
withholds, silences or blurs their parts (``privacy/``). The contributor can invite such a
person through a link (``/invites/{token}``); the person sees only their own part (their
messages, their channel, their face), reads the terms in plain words, and consents or
refuses; later they can withdraw. Each step is audited and gives them a signed consent
receipt (DPV states: requested, given, refused, withdrawn, expired) with
``counterpartyOf`` naming the asset.

A consent is for the terms the person was shown (the asset's policy version then). When
the contributor changes the terms, open and consented invites for the earlier version are
invalidated (:func:`terms_changed`: DPV ``ConsentInvalidated``, and the part is redacted
again); the person can be invited again under the new terms.

A consent takes effect through the redaction job (``ingest.redact_asset``): it redacts
the asset again from the original with the consenting parts left in, stores a new
redacted version and records in the privacy report which parts are included by
consent. A withdrawal runs the same job, and the part is redacted again.

The link's token is the counterparty's only credential (they have no account): 256
random bits, shown to the contributor once, stored as its SHA-256. An unknown token is
``invite_not_found`` whatever the reason, so tokens cannot be probed.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from fairtrain.accounts.models import User
from fairtrain.audit.keys import platform_signing_key
from fairtrain.audit.service import append_event
from fairtrain.config import Settings
from fairtrain.consent import purposes
from fairtrain.consent.models import (
    AssetPolicy,
    CounterpartyInvite,
    CounterpartyReceipt,
    InviteStatus,
)
from fairtrain.consent.plain import explain, risk_notes
from fairtrain.consent.receipts import (
    ConsentStatus,
    ReceiptEvent,
    build_receipt,
    receipt_sha256,
    sign_receipt,
)
from fairtrain.consent.service import asset_iri, current_policy, policy_iri, policy_of
from fairtrain.errors import Conflict, Gone, InvalidInput, NotFound
from fairtrain.ids import new_id, utcnow
from fairtrain.ingest.models import Asset, AssetState
from fairtrain.ingest.service import REDACT_JOB
from fairtrain.jobs.service import Dispatcher, enqueue_job
from fairtrain.privacy import media

if TYPE_CHECKING:
    from fairtrain.ingest.chats import ChatMessage
    from fairtrain.runtime import Runtime

__all__ = [
    "PART_KINDS",
    "IncludedParts",
    "InviteView",
    "Part",
    "RenderedPart",
    "answer_invite",
    "create_invite",
    "describe_part",
    "included_parts",
    "invite_by_token",
    "invite_link",
    "invite_part",
    "invite_view",
    "invites_of",
    "latest_receipt",
    "own_messages",
    "parts_of",
    "render_part",
    "require_open",
    "revoke_invite",
    "terms_changed",
    "withdraw_invite",
]

# The part kinds the redactors name (privacy.chat.SENDER_PART, privacy.media.CHANNEL_PART
# and FACE_PART); spelled here too so the web process need not import the text models.
CHAT_SENDER, AUDIO_CHANNEL, FACE, SPEAKER = "chat_sender", "audio_channel", "face", "speaker"
PART_KINDS = (CHAT_SENDER, AUDIO_CHANNEL, FACE, SPEAKER)
TOKEN_BYTES = 32  # 256 bits: guessing is hopeless, so no rate limit is needed
MAX_TOKEN_LENGTH = 100
# Invites can be made while the owner reviews the redacted version and once it is listed.
INVITABLE_STATES = frozenset({AssetState.AWAITING_REVIEW, AssetState.LISTED})
# Nothing of the asset is shown any more once it is gone or out of the marketplace.
CLOSED_STATES = frozenset({AssetState.ERASED, AssetState.REJECTED, AssetState.WITHDRAWN})
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")
_READ_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Part:
    """One other person's part of an asset, as its privacy report names it."""

    id: str  # "<kind>:<ref>", e.g. "chat_sender:Ben Stone", "audio_channel:1"
    kind: str
    ref: str
    label: str  # what the contributor sees: the sender's name, "the right channel", "face 2"
    included: bool  # in the current redacted version, by this person's consent
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class IncludedParts:
    """The parts of one asset whose people consent now: what redaction leaves in."""

    chat_senders: frozenset[str] = frozenset()
    audio_channels: frozenset[int] = frozenset()
    faces: tuple[tuple[int, int, int, int], ...] = ()
    speakers: frozenset[int] = frozenset()

    @property
    def part_ids(self) -> list[str]:
        """Sorted part ids: what the privacy report records as ``included_by_consent``."""
        return sorted(
            [f"{CHAT_SENDER}:{s}" for s in self.chat_senders]
            + [f"{AUDIO_CHANNEL}:{c}" for c in self.audio_channels]
            + [f"{FACE}:{','.join(str(v) for v in box)}" for box in self.faces]
            + [f"{SPEAKER}:{n}" for n in self.speakers]
        )


@dataclass(frozen=True, slots=True)
class InviteView:
    """What a counterparty is shown: what they appear in and the terms, nothing more."""

    invite: CounterpartyInvite
    modality: str
    part: Part | None
    description: str
    invited_by: str  # the contributor's display name: who is asking
    terms: AssetPolicy
    explanation: list[str]
    risk_notes: list[str]


@dataclass(frozen=True, slots=True)
class RenderedPart:
    media_type: str
    chunks: Iterator[bytes]
    filename: str


# --- parts ------------------------------------------------------------------------------


def parts_of(asset: Asset) -> list[Part]:
    """The other people's parts the asset's privacy report names (empty when none can be
    named: text, documents, videos, mono recordings of one voice; see docs/privacy.md)."""
    found: list[Part] = []
    for entry in (asset.privacy_report or {}).get("counterparties", []) or []:
        if not isinstance(entry, dict) or entry.get("kind") not in PART_KINDS:
            continue
        kind, ref = str(entry["kind"]), str(entry.get("ref", ""))
        details = {
            k: v for k, v in entry.items() if k not in ("part", "kind", "ref", "label", "included")
        }
        found.append(
            Part(
                id=f"{kind}:{ref}",
                kind=kind,
                ref=ref,
                label=str(entry.get("label") or ref),
                included=bool(entry.get("included")),
                details=details,
            )
        )
    return found


def _same_ref(kind: str, a: str, b: str) -> bool:
    if kind == FACE:
        try:
            return media.same_face(media.parse_face_ref(a), media.parse_face_ref(b))
        except InvalidInput:
            return False
    if kind == CHAT_SENDER:
        return a.casefold().strip() == b.casefold().strip()
    return a == b


def invite_part(asset: Asset, invite: CounterpartyInvite) -> Part | None:
    """The part of the asset's current report this invite is about (None if gone)."""
    for part in parts_of(asset):
        if part.kind == invite.part_kind and _same_ref(part.kind, part.ref, invite.part_ref):
            return part
    return None


def _find_part(asset: Asset, part_id: str) -> Part:
    kind, _, ref = part_id.partition(":")
    for part in parts_of(asset):
        if part.kind == kind and _same_ref(kind, part.ref, ref):
            return part
    raise InvalidInput(
        "This is not one of the people this asset's redaction found; choose one of the "
        "parts listed for it.",
        code="unknown_part",
        pointer="/part",
    )


def included_parts(session: Session, asset_id: str) -> IncludedParts:
    """The parts of the asset whose people have consented and not withdrawn."""
    invites = session.scalars(
        select(CounterpartyInvite).where(
            CounterpartyInvite.asset_id == asset_id,
            CounterpartyInvite.status == InviteStatus.CONSENTED,
        )
    )
    senders: set[str] = set()
    channels: set[int] = set()
    faces: list[tuple[int, int, int, int]] = []
    speakers: set[int] = set()
    for invite in invites:
        if invite.part_kind == CHAT_SENDER:
            senders.add(invite.part_ref)
        elif invite.part_kind == AUDIO_CHANNEL and invite.part_ref.isdigit():
            channels.add(int(invite.part_ref))
        elif invite.part_kind == FACE:
            faces.append(media.parse_face_ref(invite.part_ref))
        elif invite.part_kind == SPEAKER and invite.part_ref.isdigit():
            speakers.add(int(invite.part_ref))
    return IncludedParts(
        frozenset(senders), frozenset(channels), tuple(sorted(faces)), frozenset(speakers)
    )


def describe_part(part: Part | None) -> str:
    """What the counterparty appears in, in plain words (their part only)."""
    if part is None:
        return "Your part of this file can no longer be found in it."
    if part.kind == CHAT_SENDER:
        count = int(part.details.get("messages") or 0)
        noun = "message" if count == 1 else "messages"
        return f"Your {count} {noun} in a chat, as you wrote them."
    if part.kind == AUDIO_CHANNEL:
        seconds = float(part.details.get("speech_seconds") or 0.0)
        return f"Your side of a recorded phone call (about {seconds:.0f} seconds of speech)."
    if part.kind == SPEAKER:
        seconds = float(part.details.get("speech_seconds") or 0.0)
        return f"Your voice in a recording (about {seconds:.0f} seconds of speech)."
    return "Your face in a photo."


# --- invites ----------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def invite_link(settings: Settings, token: str) -> str:
    return f"{settings.base_url.rstrip('/')}/invites/{token}"


def _clean_optional(value: str | None, limit: int, field: str) -> str | None:
    if value is None:
        return None
    cleaned = "".join(ch for ch in value if ch.isprintable()).strip()
    if len(cleaned) > limit:
        raise InvalidInput(
            f"Keep the {field} under {limit} characters.",
            code="invalid_input",
            pointer=f"/{field}",
        )
    return cleaned or None


def _active(invite: CounterpartyInvite) -> bool:
    return InviteStatus(invite.status) in (InviteStatus.PENDING, InviteStatus.CONSENTED)


def create_invite(
    session: Session,
    settings: Settings,
    asset: Asset,
    *,
    actor: str,
    part: str,
    name: str | None = None,
    email: str | None = None,
) -> tuple[CounterpartyInvite, str]:
    """Invite the person of one part of the asset; returns the invite and its token.

    The token is returned once and never stored; the link is ``/invites/{token}``.
    """
    if AssetState(asset.state) not in INVITABLE_STATES or asset.redacted_blob_id is None:
        raise Conflict(
            "People can be invited once the redacted version is ready, and until the "
            "asset is withdrawn or erased.",
            code="asset_not_invitable",
        )
    chosen = _find_part(asset, part)
    invitee_name = _clean_optional(name, 200, "name")
    invitee_email = _clean_optional(email, 320, "email")
    if invitee_email is not None and not _EMAIL.match(invitee_email):
        raise InvalidInput(
            "This does not look like an e-mail address.", code="invalid_email", pointer="/email"
        )
    terms = current_policy(session, asset.id)
    if terms is None:
        raise Conflict(
            "Choose the terms for this asset first: the person you invite consents to them.",
            code="asset_without_terms",
        )
    now = utcnow()
    for earlier in _invites(session, settings, asset.id, now):
        if earlier.part_kind != chosen.kind or not _same_ref(
            chosen.kind, earlier.part_ref, chosen.ref
        ):
            continue
        if _active(earlier):
            raise Conflict(
                "This person already has an invite that is open or answered with consent.",
                code="part_already_invited",
            )
        if InviteStatus(earlier.status) in (InviteStatus.REFUSED, InviteStatus.WITHDRAWN):
            # Asking again after a no would be pressure; they can still be asked by an
            # invite that they did not answer (expired) or that was taken back.
            raise Conflict(
                "This person refused or withdrew their consent; they are not asked again.",
                code="counterparty_declined",
            )
    token = secrets.token_urlsafe(TOKEN_BYTES)
    invite = CounterpartyInvite(
        id=new_id("inv"),
        asset_id=asset.id,
        owner_id=asset.owner_id,
        part_kind=chosen.kind,
        part_ref=chosen.ref,
        invitee_name=invitee_name,
        invitee_email=invitee_email,
        token_sha256=_token_hash(token),
        status=InviteStatus.PENDING,
        policy_id=terms.id,
        created_at=now,
        expires_at=now + timedelta(days=settings.counterparty_invite_days),
        updated_at=now,
    )
    session.add(invite)
    session.flush()
    _audit(session, invite, actor, "counterparty.invited", expires_at=invite.expires_at)
    _issue_receipt(
        session,
        settings,
        invite,
        terms,
        status=ConsentStatus.REQUESTED,
        event=ReceiptEvent.REQUEST,
        actor=actor,
        indicated_by=f"user:{asset.owner_id}",
    )
    return invite, token


def _invites(
    session: Session, settings: Settings, asset_id: str, now: datetime
) -> list[CounterpartyInvite]:
    invites = list(
        session.scalars(
            select(CounterpartyInvite)
            .where(CounterpartyInvite.asset_id == asset_id)
            .order_by(CounterpartyInvite.created_at, CounterpartyInvite.id)
        )
    )
    for invite in invites:
        _expire_if_due(session, settings, invite, now)
    return invites


def invites_of(session: Session, settings: Settings, asset: Asset) -> list[CounterpartyInvite]:
    """Every invite of the asset, oldest first (pending ones past their time expire now)."""
    return _invites(session, settings, asset.id, utcnow())


def _expire_if_due(
    session: Session, settings: Settings, invite: CounterpartyInvite, now: datetime
) -> None:
    # Expiry is recorded when an invite is next looked at (by either side): the state is
    # right whenever anyone can see it, with no sweeper to run.
    if InviteStatus(invite.status) != InviteStatus.PENDING or now < invite.expires_at:
        return
    invite.status = InviteStatus.EXPIRED
    invite.updated_at = now
    session.flush()
    _audit(session, invite, "system", "counterparty.invite_expired")
    terms = session.get(AssetPolicy, invite.policy_id)
    assert terms is not None
    _issue_receipt(
        session,
        settings,
        invite,
        terms,
        status=ConsentStatus.EXPIRED,
        event=ReceiptEvent.EXPIRY,
        actor="system",
        indicated_by="system",
    )


def revoke_invite(
    session: Session, settings: Settings, asset: Asset, invite_id: str, *, actor: str
) -> CounterpartyInvite:
    """The contributor takes back an invite nobody has answered; its link stops working."""
    invite = session.get(CounterpartyInvite, invite_id)
    if invite is None or invite.asset_id != asset.id:
        # Another asset's invite is missing from this asset's address, never "forbidden".
        raise NotFound("This asset has no such invite.", code="invite_not_found")
    _expire_if_due(session, settings, invite, utcnow())
    if InviteStatus(invite.status) != InviteStatus.PENDING:
        raise Conflict(
            f"Only an open invite can be taken back; this one is {invite.status}.",
            code="invite_answered",
        )
    invite.status = InviteStatus.REVOKED
    invite.updated_at = utcnow()
    session.flush()
    _audit(session, invite, actor, "counterparty.invite_revoked")
    return invite


def invite_by_token(session: Session, settings: Settings, token: str) -> CounterpartyInvite:
    """The invite a link's token opens; ``invite_not_found`` for any token that opens none."""
    invite = None
    if 0 < len(token) <= MAX_TOKEN_LENGTH:
        invite = session.scalar(
            select(CounterpartyInvite).where(CounterpartyInvite.token_sha256 == _token_hash(token))
        )
    if invite is None:
        raise NotFound(
            "This invite link is not valid. Check that you copied all of it.",
            code="invite_not_found",
        )
    _expire_if_due(session, settings, invite, utcnow())
    return invite


def require_open(session: Session, invite: CounterpartyInvite) -> Asset:
    """The invite's asset, if the invite can still be looked at; else why not."""
    status = InviteStatus(invite.status)
    if status == InviteStatus.EXPIRED:
        raise Gone(
            "This invite has expired without an answer, so your part stays hidden. Ask the "
            "person who sent it for a new one if you want to decide.",
            code="invite_expired",
        )
    if status == InviteStatus.REVOKED:
        raise Gone(
            "The person who sent this invite took it back; your part stays hidden.",
            code="invite_revoked",
        )
    if status == InviteStatus.INVALIDATED:
        raise Gone(
            "The terms changed after you were asked, so your answer no longer applies and "
            "your part is hidden. You may get a new invite with the new terms.",
            code="invite_invalidated",
        )
    asset = session.get(Asset, invite.asset_id)
    assert asset is not None
    # An answered invite stays readable (its status, its receipt, a withdrawal to make)
    # whatever became of the file; an open one can no longer be answered.
    if status == InviteStatus.PENDING and AssetState(asset.state) in CLOSED_STATES:
        raise _closed()
    return asset


def _closed() -> Gone:
    return Gone(
        "The file this invite was about has been withdrawn or deleted; nothing of your "
        "part is shared.",
        code="invite_closed",
    )


def _require_shown(session: Session, invite: CounterpartyInvite) -> Asset:
    asset = require_open(session, invite)
    if AssetState(asset.state) in CLOSED_STATES:
        raise _closed()
    if InviteStatus(invite.status) not in (InviteStatus.PENDING, InviteStatus.CONSENTED):
        raise Conflict(
            f"You {invite.status} this invite, so your part is no longer shown here.",
            code="invite_answered",
        )
    return asset


def answer_invite(
    session: Session,
    settings: Settings,
    invite: CounterpartyInvite,
    dispatch: Dispatcher,
    *,
    consent: bool,
) -> CounterpartyInvite:
    """The counterparty consents or refuses. Consent redacts the asset again with their
    part left in (a job, after commit)."""
    asset = require_open(session, invite)
    if InviteStatus(invite.status) != InviteStatus.PENDING:
        raise Conflict(
            f"This invite was already answered ({invite.status}). To take back a consent, "
            "withdraw it.",
            code="invite_answered",
        )
    now = utcnow()
    invite.status = InviteStatus.CONSENTED if consent else InviteStatus.REFUSED
    invite.answered_at = invite.updated_at = now
    session.flush()
    actor = f"counterparty:{invite.id}"
    _audit(session, invite, actor, "counterparty.consented" if consent else "counterparty.refused")
    terms = session.get(AssetPolicy, invite.policy_id)
    assert terms is not None
    _issue_receipt(
        session,
        settings,
        invite,
        terms,
        status=ConsentStatus.GIVEN if consent else ConsentStatus.REFUSED,
        event=ReceiptEvent.GRANT if consent else ReceiptEvent.REFUSAL,
        actor=actor,
    )
    if consent:
        _redact_again(session, dispatch, asset)
    return invite


def withdraw_invite(
    session: Session, settings: Settings, invite: CounterpartyInvite, dispatch: Dispatcher
) -> CounterpartyInvite:
    """The counterparty takes back their consent; their part is redacted again (a job).

    Allowed whatever became of the asset since: the withdrawal is theirs to record.
    """
    if InviteStatus(invite.status) != InviteStatus.CONSENTED:
        raise Conflict(
            "Only a consent that was given can be withdrawn"
            + (
                "; you already withdrew it."
                if InviteStatus(invite.status) == InviteStatus.WITHDRAWN
                else f"; this invite is {invite.status}."
            ),
            code="invite_not_consented",
        )
    now = utcnow()
    invite.status = InviteStatus.WITHDRAWN
    invite.withdrawn_at = invite.updated_at = now
    session.flush()
    actor = f"counterparty:{invite.id}"
    _audit(session, invite, actor, "counterparty.withdrawn")
    terms = session.get(AssetPolicy, invite.policy_id)
    assert terms is not None
    _issue_receipt(
        session,
        settings,
        invite,
        terms,
        status=ConsentStatus.WITHDRAWN,
        event=ReceiptEvent.WITHDRAWAL,
        actor=actor,
    )
    asset = session.get(Asset, invite.asset_id)
    assert asset is not None
    if AssetState(asset.state) in INVITABLE_STATES:
        _redact_again(session, dispatch, asset)
    return invite


def terms_changed(
    session: Session, settings: Settings, asset: Asset, dispatch: Dispatcher, *, actor: str
) -> list[CounterpartyInvite]:
    """After a new version of the asset's terms: invites open or consented under earlier
    terms no longer hold (the person never saw the new ones). Returns those invalidated.

    Every caller of :func:`fairtrain.consent.service.set_policy` calls this next.
    """
    current = current_policy(session, asset.id)
    now = utcnow()
    invalidated: list[CounterpartyInvite] = []
    for invite in _invites(session, settings, asset.id, now):
        if current is not None and invite.policy_id == current.id:
            continue
        if not _active(invite):
            continue
        invalidated.append(invite)
        invite.status = InviteStatus.INVALIDATED
        invite.updated_at = now
        session.flush()
        _audit(session, invite, actor, "counterparty.invalidated")
        terms = session.get(AssetPolicy, invite.policy_id)
        assert terms is not None
        _issue_receipt(
            session,
            settings,
            invite,
            terms,
            status=ConsentStatus.INVALIDATED,
            event=ReceiptEvent.INVALIDATION,
            actor=actor,
            indicated_by=actor,
        )
    if invalidated and AssetState(asset.state) in INVITABLE_STATES:
        _redact_again(session, dispatch, asset)
    return invalidated


def _redact_again(session: Session, dispatch: Dispatcher, asset: Asset) -> None:
    # No dedupe key: a job already running may have read the consents before this change
    # committed. The handler is idempotent and locks the asset, so extra runs cost nothing.
    enqueue_job(
        session,
        dispatch,
        kind=REDACT_JOB,
        subject=f"asset:{asset.id}",
        payload={"asset_id": asset.id},
        owner=f"user:{asset.owner_id}",
    )


def _audit(
    session: Session,
    invite: CounterpartyInvite,
    actor: str,
    action: str,
    *,
    expires_at: datetime | None = None,
) -> None:
    # Ids and decisions only: never the invitee's name or e-mail, the sender name, or the
    # token.
    payload: dict[str, Any] = {
        "asset": invite.asset_id,
        "part_kind": invite.part_kind,
        "policy": invite.policy_id,
        "status": str(invite.status),
    }
    if expires_at is not None:
        payload["expires_at"] = expires_at.isoformat()
    append_event(
        session, actor=actor, action=action, subject=f"invite:{invite.id}", payload=payload
    )


def invite_view(session: Session, invite: CounterpartyInvite) -> InviteView:
    """The counterparty's view of their invite (refused when expired, revoked or closed)."""
    asset = require_open(session, invite)
    owner = session.get(User, asset.owner_id)
    terms = session.get(AssetPolicy, invite.policy_id)
    assert owner is not None and terms is not None
    policy = policy_of(terms)
    part = invite_part(asset, invite)
    return InviteView(
        invite=invite,
        modality=str(asset.modality),
        part=part,
        description=describe_part(part),
        invited_by=owner.display_name,
        terms=terms,
        explanation=explain(policy),
        risk_notes=risk_notes(policy, asset.modality),
    )


# --- receipts ---------------------------------------------------------------------------


def _top_purposes(mask: int) -> list[str]:
    keys = {p.key for p in purposes.PURPOSES.values() if mask >> p.bit & 1}
    return [
        purposes.PURPOSES[k].iri for k in sorted(keys) if purposes.PURPOSES[k].parent not in keys
    ]


def _issue_receipt(
    session: Session,
    settings: Settings,
    invite: CounterpartyInvite,
    terms: AssetPolicy,
    *,
    status: ConsentStatus,
    event: ReceiptEvent,
    actor: str,
    indicated_by: str | None = None,
) -> CounterpartyReceipt:
    """A signed receipt for the counterparty (no account: identified by the invite)."""
    now = utcnow()
    until = invite.expires_at if event == ReceiptEvent.REQUEST else terms.not_after
    receipt = build_receipt(
        subject_id=f"counterparty:{invite.id}",
        subject_jurisdiction=None,
        controller={"name": "fairtrain", "url": settings.base_url},
        asset_ids=[invite.asset_id],
        policy_uid=policy_iri(settings, terms.id),
        policy_version=terms.version,
        policy_sha256=terms.sha256,
        purposes=_top_purposes(terms.permit_mask),
        prohibited=_top_purposes(terms.ban_mask),
        status=status,
        event=str(event),
        issued_at=now,
        expires_at=until if until is not None and until > now else None,
        counterparty_of=asset_iri(settings, invite.asset_id),
    )
    if indicated_by is not None:
        # A request is made by the contributor, an expiry by the platform: not the person.
        receipt["dpv:isIndicatedBy"] = indicated_by
    jws = sign_receipt(receipt, platform_signing_key(settings))
    stored = CounterpartyReceipt(
        id=str(receipt["id"]),
        invite_id=invite.id,
        asset_id=invite.asset_id,
        policy_id=terms.id,
        status=status.value,
        event=str(event),
        receipt=receipt,
        jws=jws,
        sha256=receipt_sha256(jws),
        issued_at=now,
    )
    session.add(stored)
    session.flush()
    append_event(
        session,
        actor=actor,
        action="consent.receipt_issued",
        subject=f"receipt:{stored.id}",
        payload={"sha256": stored.sha256, "status": status.value, "event": str(event),
                 "asset": invite.asset_id, "policy": terms.id, "invite": invite.id},
    )  # fmt: skip
    return stored


def latest_receipt(session: Session, invite: CounterpartyInvite) -> CounterpartyReceipt:
    found = session.scalars(
        select(CounterpartyReceipt)
        .where(CounterpartyReceipt.invite_id == invite.id)
        .order_by(CounterpartyReceipt.issued_at.desc(), CounterpartyReceipt.id.desc())
        .limit(1)
    ).first()
    assert found is not None  # every invite gets its request receipt when it is created
    return found


# --- the counterparty's own part --------------------------------------------------------


def _read_text(session: Session, runtime: Runtime, blob_id: str) -> str:
    data = bytearray()
    for chunk in runtime.vault.open_blob(session, blob_id):
        data += chunk
    return bytes(data).decode("utf-8")


def own_messages(
    session: Session, runtime: Runtime, invite: CounterpartyInvite
) -> list[ChatMessage]:
    """A chat counterparty's own messages (nothing else of the chat), from the vault."""
    from fairtrain.ingest.chats import parse_chat
    from fairtrain.privacy.chat import only_sender

    asset = _require_shown(session, invite)
    if invite.part_kind != CHAT_SENDER or asset.blob_id is None:
        raise InvalidInput("This invite is not about a chat.", code="not_a_chat_part")
    transcript = parse_chat(_read_text(session, runtime, asset.blob_id))
    return only_sender(transcript, invite.part_ref).messages


def _chunks_of(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while block := handle.read(_READ_CHUNK):
            yield block


def _chat_lines(messages: list[ChatMessage]) -> bytes:
    lines = []
    for message in messages:
        when = f"[{message.sent_at:%Y-%m-%d %H:%M}] " if message.sent_at else ""
        lines.append(f"{when}{message.sender}: {message.text}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def render_part(session: Session, runtime: Runtime, invite: CounterpartyInvite) -> RenderedPart:
    """The counterparty's own part as a file: their messages (text), their channel or
    their turns in a mono recording (FLAC) or their face (PNG). Never anything else of the asset."""
    asset = _require_shown(session, invite)
    if asset.blob_id is None:  # pragma: no cover - closed states are refused above
        raise _closed()
    if invite.part_kind == CHAT_SENDER:
        messages = own_messages(session, runtime, invite)
        return RenderedPart(
            "text/plain; charset=utf-8", iter([_chat_lines(messages)]), "your-messages.txt"
        )
    scratch = runtime.settings.data_dir / "scratch"
    scratch.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.TemporaryDirectory(prefix="part-", dir=scratch) as work:
        source = Path(work) / "original"
        with source.open("wb") as out:
            for chunk in runtime.vault.open_blob(session, asset.blob_id):
                out.write(chunk)
        target = Path(work) / "part"
        if invite.part_kind == AUDIO_CHANNEL:
            media_type, _ = media.only_channel(source, target, int(invite.part_ref))
            name = "your-voice.flac"
        elif invite.part_kind == SPEAKER:
            part = invite_part(asset, invite)
            segments = part.details.get("segments", []) if part is not None else []
            media_type = media.only_speaker(source, target, segments)
            name = "your-voice.flac"
        else:
            media_type = media.face_crop(source, target, media.parse_face_ref(invite.part_ref))
            name = "your-face.png"
        handle = target.open("rb")
    # The directory and the plaintext in it are gone from the disk now, even if the client
    # hangs up mid-stream; the open handle keeps the rendered part readable until closed.
    return RenderedPart(media_type, _chunks_of(handle), name)
