"""The counterparty invite service: tokens, expiry, one answer, withdrawal, receipts.

Assets come from the real upload service (the processing job runs after commit), terms
from the real policy service; no HTTP."""

from __future__ import annotations

import hashlib
import secrets
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from tests import media_factory
from tests.factories import STRONG_PASSWORD, unique_email

from fairtrain.accounts import service as accounts
from fairtrain.accounts.models import User
from fairtrain.audit.models import AuditEvent
from fairtrain.audit.service import verify_stored_chain
from fairtrain.consent import counterparty
from fairtrain.consent import service as consent_service
from fairtrain.consent.models import CounterpartyInvite, CounterpartyReceipt, InviteStatus
from fairtrain.errors import Conflict, Gone, InvalidInput, NotFound
from fairtrain.ingest import service as ingest
from fairtrain.ingest.models import Asset
from fairtrain.jobs.models import Job
from fairtrain.privacy import media
from fairtrain.privacy.chat import SENDER_PART


class Dispatched(list[str]):
    """A dispatcher that only remembers: jobs here are looked at, not run."""

    def __call__(self, job_id: str) -> None:
        self.append(job_id)


@pytest.fixture
def owner(app: Any, db: Session) -> User:
    user = accounts.register_contributor(
        db,
        app.state.passwords,
        email=unique_email("cp"),
        password=STRONG_PASSWORD,
        display_name="Ada Okafor",
        date_of_birth=date(1990, 1, 2),
        adult_attestation=True,
        jurisdiction="FR",
    )
    db.commit()
    return user


def _chat(app: Any, db: Session, owner: User, text: str = media_factory.WHATSAPP_ANDROID) -> Asset:
    asset = ingest.receive_upload(
        db,
        app.state.upload_context,
        owner_id=owner.id,
        chunks=[text.encode()],
        display_name="chat.txt",
    )
    db.commit()  # the processing job runs now (immediate queue)
    db.expire_all()
    processed = db.get(Asset, asset.id)
    assert processed is not None and processed.state == "awaiting_review"
    consent_service.set_policy(
        db, app.state.settings, processed, actor=f"user:{owner.id}", template="default"
    )
    db.commit()
    return processed


@pytest.fixture
def chat(app: Any, db: Session, owner: User) -> Asset:
    return _chat(app, db, owner)


def _invite(app: Any, db: Session, asset: Asset, **extra: Any) -> tuple[CounterpartyInvite, str]:
    invite, token = counterparty.create_invite(
        db,
        app.state.settings,
        asset,
        actor=f"user:{asset.owner_id}",
        part="chat_sender:Ben Stone",
        **extra,
    )
    db.commit()
    return invite, token


def test_only_the_hash_of_the_token_is_kept(app: Any, db: Session, chat: Asset) -> None:
    invite, token = _invite(app, db, chat, name="Ben", email="ben@example.org")
    assert len(token) >= 43  # 32 random bytes, base64url
    assert invite.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    row = db.execute(
        select(CounterpartyInvite.__table__).where(CounterpartyInvite.id == invite.id)
    ).one()
    assert token not in str(tuple(row))
    assert counterparty.invite_link(app.state.settings, token).endswith(f"/invites/{token}")
    assert counterparty.invite_by_token(db, app.state.settings, token).id == invite.id


def test_the_audit_log_holds_no_name_email_sender_or_token(
    app: Any, db: Session, chat: Asset
) -> None:
    invite, token = _invite(app, db, chat, name="Ben Secretname", email="ben@example.org")
    events = db.scalars(select(AuditEvent).where(AuditEvent.subject == f"invite:{invite.id}"))
    [created] = list(events)
    assert created.action == "counterparty.invited"
    text = str(created.payload)
    for secret in ("Ben", "example.org", token, invite.token_sha256):
        assert secret not in text
    assert created.payload["part_kind"] == "chat_sender"


@pytest.mark.parametrize("token", ["", "x", "A" * 43, "A" * 101])
def test_a_token_that_opens_nothing_is_not_found(app: Any, db: Session, token: str) -> None:
    with pytest.raises(NotFound) as missing:
        counterparty.invite_by_token(db, app.state.settings, token)
    assert missing.value.code == "invite_not_found"


def test_an_invite_is_answered_once(app: Any, db: Session, chat: Asset) -> None:
    invite, _ = _invite(app, db, chat)
    dispatch = Dispatched()
    counterparty.answer_invite(db, app.state.settings, invite, dispatch, consent=False)
    db.commit()
    assert invite.status == InviteStatus.REFUSED and invite.answered_at is not None
    assert dispatch == []  # a refusal changes nothing that is shared
    for consent in (True, False):
        with pytest.raises(Conflict) as refused:
            counterparty.answer_invite(db, app.state.settings, invite, dispatch, consent=consent)
        assert refused.value.code == "invite_answered"


def test_consent_then_withdrawal_each_ask_for_the_asset_to_be_redacted_again(
    app: Any, db: Session, chat: Asset
) -> None:
    invite, _ = _invite(app, db, chat)
    dispatch = Dispatched()
    with pytest.raises(Conflict) as early:
        counterparty.withdraw_invite(db, app.state.settings, invite, dispatch)
    assert early.value.code == "invite_not_consented"
    counterparty.answer_invite(db, app.state.settings, invite, dispatch, consent=True)
    assert counterparty.included_parts(db, chat.id).chat_senders == {"Ben Stone"}
    counterparty.withdraw_invite(db, app.state.settings, invite, dispatch)
    assert counterparty.included_parts(db, chat.id) == counterparty.IncludedParts()
    assert dispatch == []  # jobs are sent only once the answer is committed
    db.commit()
    jobs = [db.get(Job, job_id) for job_id in dispatch]
    assert [(j.kind, j.payload) for j in jobs if j] == [
        ("ingest.redact_asset", {"asset_id": chat.id}),
        ("ingest.redact_asset", {"asset_id": chat.id}),
    ]
    with pytest.raises(Conflict) as twice:
        counterparty.withdraw_invite(db, app.state.settings, invite, dispatch)
    assert "already withdrew" in twice.value.detail
    statuses = [
        (r.event, r.status)
        for r in db.scalars(
            select(CounterpartyReceipt)
            .where(CounterpartyReceipt.invite_id == invite.id)
            .order_by(CounterpartyReceipt.issued_at)
        )
    ]
    assert statuses == [
        ("request", "ConsentRequested"),
        ("grant", "ConsentGiven"),
        ("withdrawal", "ConsentWithdrawn"),
    ]
    assert counterparty.latest_receipt(db, invite).status == "ConsentWithdrawn"
    assert verify_stored_chain(db) == (True, None, None)


def test_an_invite_past_its_time_expires_when_next_looked_at(
    app: Any, db: Session, chat: Asset
) -> None:
    invite, token = _invite(app, db, chat)
    assert invite.expires_at - invite.created_at == timedelta(
        days=app.state.settings.counterparty_invite_days
    )
    invite.expires_at = invite.created_at + timedelta(microseconds=1)
    db.commit()
    found = counterparty.invite_by_token(db, app.state.settings, token)
    assert found.status == InviteStatus.EXPIRED
    with pytest.raises(Gone) as expired:
        counterparty.require_open(db, found)
    assert expired.value.code == "invite_expired"
    with pytest.raises(Gone):
        counterparty.answer_invite(db, app.state.settings, found, Dispatched(), consent=True)
    receipt = counterparty.latest_receipt(db, found)
    assert (receipt.event, receipt.status) == ("expiry", "ConsentExpired")
    assert receipt.receipt["dpv:isIndicatedBy"] == "system"
    # Looking again records nothing more.
    counterparty.invite_by_token(db, app.state.settings, token)
    receipts = db.scalars(
        select(CounterpartyReceipt).where(CounterpartyReceipt.invite_id == found.id)
    )
    assert len(list(receipts)) == 2
    assert verify_stored_chain(db) == (True, None, None)


def test_the_request_receipt_is_indicated_by_the_contributor(
    app: Any, db: Session, chat: Asset
) -> None:
    invite, _ = _invite(app, db, chat)
    receipt = counterparty.latest_receipt(db, invite)
    assert receipt.receipt["dpv:hasDataSubject"] == f"counterparty:{invite.id}"
    assert receipt.receipt["dpv:isIndicatedBy"] == f"user:{chat.owner_id}"
    assert receipt.receipt["validUntil"] is not None  # the invite's expiry
    assert receipt.receipt["counterpartyOf"].endswith(f"/assets/{chat.id}")


def test_invites_refuse_bad_input_and_closed_assets(
    app: Any, db: Session, owner: User, chat: Asset
) -> None:
    settings = app.state.settings
    actor = f"user:{owner.id}"
    for part, code in (
        ("chat_sender:Carol", "unknown_part"),
        ("chat_sender:Ada Okafor", "unknown_part"),  # the contributor is not a counterparty
        ("face:1,2,3,4", "unknown_part"),
        ("nonsense", "unknown_part"),
    ):
        with pytest.raises(InvalidInput) as refused:
            counterparty.create_invite(db, settings, chat, actor=actor, part=part)
        assert refused.value.code == code, part
    with pytest.raises(InvalidInput) as bad_email:
        counterparty.create_invite(
            db, settings, chat, actor=actor, part="chat_sender:Ben Stone", email="not-an-address"
        )
    assert bad_email.value.code == "invalid_email"
    ingest.erase_asset(db, chat, app.state.upload_context.delete_blob, actor=actor)
    with pytest.raises(Conflict) as erased:
        counterparty.create_invite(db, settings, chat, actor=actor, part="chat_sender:Ben Stone")
    assert erased.value.code == "asset_not_invitable"


def test_an_open_invite_to_an_erased_asset_is_closed_but_answers_stay_readable(
    app: Any, db: Session, owner: User
) -> None:
    first, second = _chat(app, db, owner), _chat(app, db, owner, media_factory.WHATSAPP_IOS)
    pending, pending_token = _invite(app, db, first, name="Ben", email="ben@example.org")
    answered, _ = _invite(app, db, second)
    counterparty.answer_invite(db, app.state.settings, answered, Dispatched(), consent=True)
    for asset in (first, second):
        ingest.erase_asset(db, asset, app.state.upload_context.delete_blob, actor="system")
    db.commit()
    db.refresh(pending)
    assert (pending.invitee_name, pending.invitee_email) == (None, None)  # erased with it
    with pytest.raises(Gone) as closed:
        counterparty.invite_view(db, pending)
    assert closed.value.code == "invite_closed"
    assert counterparty.invite_view(db, answered).invite.status == InviteStatus.CONSENTED
    with pytest.raises(Gone):
        counterparty.render_part(db, app.state.runtime, answered)
    # Withdrawing is still theirs to record; there is nothing left to redact.
    dispatch = Dispatched()
    counterparty.withdraw_invite(db, app.state.settings, answered, dispatch)
    assert dispatch == [] and answered.status == InviteStatus.WITHDRAWN
    assert pending_token  # the pending link now says "closed", never "not found"


def test_another_assets_invite_cannot_be_revoked_through_this_asset(
    app: Any, db: Session, owner: User
) -> None:
    first, second = _chat(app, db, owner), _chat(app, db, owner, media_factory.WHATSAPP_IOS)
    theirs, _ = _invite(app, db, second)
    with pytest.raises(NotFound) as missing:
        counterparty.revoke_invite(db, app.state.settings, first, theirs.id, actor="system")
    assert missing.value.code == "invite_not_found"
    with pytest.raises(NotFound):
        counterparty.revoke_invite(
            db, app.state.settings, first, f"inv_{secrets.token_hex(8)}", actor="system"
        )
    assert theirs.status == InviteStatus.PENDING


def test_included_parts_name_what_the_report_records() -> None:
    parts = counterparty.IncludedParts(
        chat_senders=frozenset({"Ben"}), audio_channels=frozenset({1}), faces=((1, 2, 30, 40),)
    )
    assert parts.part_ids == ["audio_channel:1", "chat_sender:Ben", "face:1,2,30,40"]
    assert counterparty.IncludedParts().part_ids == []


def test_terms_changed_invalidates_open_and_consented_invites_only(
    app: Any, db: Session, owner: User
) -> None:
    settings = app.state.settings
    chat, other = _chat(app, db, owner), _chat(app, db, owner, media_factory.WHATSAPP_IOS)
    consented, _ = _invite(app, db, chat)
    counterparty.answer_invite(db, settings, consented, Dispatched(), consent=True)
    refused, _ = _invite(app, db, other)
    counterparty.answer_invite(db, settings, refused, Dispatched(), consent=False)
    dispatch = Dispatched()
    assert counterparty.terms_changed(db, settings, chat, dispatch, actor="system") == []
    actor = f"user:{owner.id}"
    for asset in (chat, other):
        consent_service.set_policy(db, settings, asset, actor=actor, template="research_only")
    assert counterparty.terms_changed(db, settings, chat, dispatch, actor=actor) == [consented]
    assert counterparty.terms_changed(db, settings, other, dispatch, actor=actor) == []
    assert refused.status == InviteStatus.REFUSED  # a refusal stands under any terms
    assert consented.status == InviteStatus.INVALIDATED
    assert counterparty.included_parts(db, chat.id) == counterparty.IncludedParts()
    receipt = counterparty.latest_receipt(db, consented)
    assert (receipt.event, receipt.status) == ("invalidation", "ConsentInvalidated")
    db.commit()
    assert len(dispatch) == 1  # one redaction job, for the asset that included a part
    with pytest.raises(Gone) as gone:
        counterparty.require_open(db, consented)
    assert gone.value.code == "invite_invalidated"
    assert verify_stored_chain(db) == (True, None, None)


def test_the_service_spells_the_part_kinds_as_the_redactors_do() -> None:
    assert counterparty.PART_KINDS == (
        SENDER_PART,
        media.CHANNEL_PART,
        media.FACE_PART,
        media.SPEAKER_PART,
    )
