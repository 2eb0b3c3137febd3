"""The data-subject access and portability export (GDPR Art. 15 and 20): one archive with
everything the platform holds about a person, in JSON plus the files themselves.

What goes in (``README.txt`` in the archive says the same):

- ``account.json`` — the account, the demographic profile (as stored and as buyers see
  it), sessions (when and until when, not their tokens), payout details (in full: they are
  the person's own), API keys of organisations they administer are *not* theirs;
- ``assets/index.json`` and ``assets/<id>/…`` — every asset: metadata, state, quality,
  privacy report, every version of its terms (ODRL), and the files — the original as
  uploaded and the redacted version — decrypted from the vault (erased ones have none);
- ``receipts/<id>.json`` — every consent receipt, as the signed file it was issued as;
- ``licences.json`` — every licence of each asset: buyer, purpose, territory, term, what
  it earned; ``statement.json`` — the ledger statement;
- ``campaign_submissions.json``, ``counterparty_invites.json`` (invites they sent);
- ``audit_events.json`` — every audit event whose actor or subject is them, one of their
  assets or one of their receipts;
- ``manifest.json`` — every file's SHA-256 and size.

Media are stored without compression (they already are compressed), JSON with deflate.
The archive is written to a scratch file, never held in memory.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from fairtrain.accounts.demographics import demographics_of
from fairtrain.accounts.models import ContributorProfile, User, WebSession
from fairtrain.audit.models import AuditEvent
from fairtrain.catalog.models import CampaignSubmission
from fairtrain.consent.models import AssetPolicy, ConsentReceiptRecord, CounterpartyInvite
from fairtrain.consent.receipts import receipt_file
from fairtrain.errors import NotFound
from fairtrain.ids import utcnow
from fairtrain.ingest.models import Asset
from fairtrain.ledger import service as ledger
from fairtrain.ledger.models import PayoutDetails
from fairtrain.licensing import service as licensing

__all__ = ["OpenBlob", "SubjectAccessArchive", "write_subject_access_archive"]

OpenBlob = Callable[[Session, str], Iterable[bytes]]

_EXTENSIONS = {
    "audio/wav": "wav", "audio/x-wav": "wav", "audio/flac": "flac", "audio/mpeg": "mp3",
    "audio/ogg": "ogg", "audio/mp4": "m4a", "image/jpeg": "jpg", "image/png": "png",
    "image/webp": "webp", "image/heic": "heic", "video/mp4": "mp4", "video/webm": "webm",
    "video/quicktime": "mov", "application/pdf": "pdf", "text/plain": "txt",
    "application/json": "json",
}  # fmt: skip


def _extension(media_type: str | None) -> str:
    base = (media_type or "").split(";")[0].strip().lower()
    return _EXTENSIONS.get(base, "bin")


def _json(value: Any) -> bytes:
    def default(item: Any) -> Any:
        if isinstance(item, datetime | date):
            return item.isoformat()
        raise TypeError(f"not JSON: {type(item).__name__}")

    return json.dumps(value, indent=2, ensure_ascii=False, default=default).encode("utf-8")


@dataclass(frozen=True, slots=True)
class SubjectAccessArchive:
    files: int
    bytes_written: int
    assets: int
    events: int


class _Writer:
    def __init__(self, handle: IO[bytes]) -> None:
        self.zip = zipfile.ZipFile(handle, "w")
        self.manifest: list[dict[str, Any]] = []
        self.total = 0

    def json(self, name: str, value: Any) -> None:
        data = _json(value)
        self.zip.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), data,
                          compress_type=zipfile.ZIP_DEFLATED)  # fmt: skip
        self._record(name, hashlib.sha256(data).hexdigest(), len(data))

    def stream(self, name: str, chunks: Iterator[bytes] | Iterable[bytes]) -> None:
        digest = hashlib.sha256()
        size = 0
        info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_STORED
        with self.zip.open(info, "w", force_zip64=True) as out:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        self._record(name, digest.hexdigest(), size)

    def _record(self, name: str, sha256: str, size: int) -> None:
        self.manifest.append({"path": name, "sha256": sha256, "size": size})
        self.total += size

    def close(self) -> None:
        self.json("manifest.json", {"files": self.manifest})
        self.zip.close()


README = """Your data on fairtrain
=====================

This archive holds everything fairtrain keeps about you (GDPR Articles 15 and 20).

account.json              your account, your demographic profile (as stored, and as
                          buyers may see it), your sessions, your payout details
assets/index.json         every asset you uploaded, its state, quality, privacy report
assets/<id>/terms.json    every version of its licence terms (W3C ODRL)
assets/<id>/original.*    the file as you uploaded it
assets/<id>/redacted.*    what buyers receive (others' faces, voices, names removed)
receipts/<id>.json        your signed consent receipts (check them with
                          `fairtrain consent verify-receipt FILE --public-key KEY.pem`)
licences.json             every licence of your assets: who, for what, where, until
                          when, and what each earned you
statement.json            your ledger statement: what you are owed and were paid
campaign_submissions.json the campaigns you answered
counterparty_invites.json the people you invited to consent to their part
audit_events.json         every audit-log event about you, your assets and receipts
manifest.json             the SHA-256 and size of every file here

Assets you erased have no files any more: their keys were destroyed.
"""


def _account(session: Session, user: User) -> dict[str, Any]:
    profile = session.get(ContributorProfile, user.id)
    shown = demographics_of(user, profile, utcnow().date())
    payout = session.get(PayoutDetails, user.id)
    sessions = session.scalars(
        select(WebSession).where(WebSession.user_id == user.id).order_by(WebSession.created_at)
    )
    return {
        "id": user.id,
        "email": user.email,
        "display_name": user.display_name,
        "kind": user.kind,
        "date_of_birth": user.date_of_birth,
        "adult_attested_at": user.adult_attested_at,
        "jurisdiction": user.jurisdiction,
        "created_at": user.created_at,
        "profile": None
        if profile is None
        else {
            "share_age_band": profile.share_age_band,
            "gender": profile.gender,
            "accent": profile.accent,
            "share_region": profile.share_region,
            "languages": profile.languages,
            "updated_at": profile.updated_at,
        },
        "as_buyers_see_it": {
            "age_band": shown.age_band,
            "gender": shown.gender,
            "accent": shown.accent,
            "region": shown.region,
            "languages": list(shown.languages),
        },
        "sessions": [
            {
                "created_at": s.created_at,
                "expires_at": s.expires_at,
                "last_seen_at": s.last_seen_at,
                "revoked_at": s.revoked_at,
            }
            for s in sessions
        ],
        "payout_details": None
        if payout is None
        else {
            "account_holder": payout.account_holder,
            "iban": payout.iban,
            "updated_at": payout.updated_at,
        },
    }


def write_subject_access_archive(
    session: Session, user_id: str, handle: IO[bytes], open_blob: OpenBlob, public_key_id: str
) -> SubjectAccessArchive:
    """Write the person's archive (a zip) to ``handle``."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("No such person.", code="user_not_found")
    out = _Writer(handle)
    out.zip.writestr("README.txt", README)
    out.json("account.json", _account(session, user))
    assets = list(
        session.scalars(select(Asset).where(Asset.owner_id == user.id).order_by(Asset.created_at))
    )
    index = []
    for asset in assets:
        index.append(
            {"id": asset.id, "display_name": asset.display_name, "state": asset.state,
             "modality": asset.modality, "media_type": asset.media_type,
             "size_bytes": asset.size_bytes, "sha256": asset.sha256,
             "duration_seconds": asset.duration_seconds, "language": asset.language,
             "media_info": {k: v for k, v in (asset.media_info or {}).items()
                            if k != "fingerprint"},
             "quality": asset.quality, "privacy_report": asset.privacy_report,
             "created_at": asset.created_at, "listed_at": asset.listed_at}
        )  # fmt: skip
        terms = session.scalars(
            select(AssetPolicy)
            .where(AssetPolicy.asset_id == asset.id)
            .order_by(AssetPolicy.version)
        )
        out.json(
            f"assets/{asset.id}/terms.json",
            [{"version": t.version, "template": t.template, "created_at": t.created_at,
              "superseded_at": t.superseded_at, "document": t.document} for t in terms],
        )  # fmt: skip
        for name, blob_id, media_type in (
            ("original", asset.blob_id, asset.media_type),
            ("redacted", asset.redacted_blob_id, asset.redacted_media_type),
        ):
            if blob_id is not None:
                out.stream(
                    f"assets/{asset.id}/{name}.{_extension(media_type)}",
                    open_blob(session, blob_id),
                )
    out.json("assets/index.json", index)
    receipts = list(
        session.scalars(
            select(ConsentReceiptRecord)
            .where(ConsentReceiptRecord.owner_id == user.id)
            .order_by(ConsentReceiptRecord.issued_at)
        )
    )
    for record in receipts:
        out.json(
            f"receipts/{record.id}.json", receipt_file(record.receipt, record.jws, public_key_id)
        )
    out.json(
        "licences.json",
        [
            {"asset_id": e.asset_id, "licence_id": e.licence_id, "buyer": e.buyer,
             "purpose": e.purpose, "territory": e.territory, "starts_at": e.starts_at,
             "ends_at": e.ends_at, "state": e.state, "amount_minor": e.amount_minor,
             "currency": e.currency, "granted_at": e.granted_at}
            for e in licensing.earnings_of(session, user.id)
        ],
    )  # fmt: skip
    lines = ledger.statement(session, user.id)
    balances: dict[str, int] = {}
    for line in lines:
        balances[line.currency] = line.balance_minor
    out.json(
        "statement.json",
        {
            "lines": [
                {"date": line.posted_at, "description": line.description, "kind": line.kind,
                 "amount_minor": line.amount_minor, "currency": line.currency,
                 "balance_minor": line.balance_minor}
                for line in lines
            ],
            "balances": [{"currency": c, "amount_minor": a} for c, a in sorted(balances.items())],
        },
    )  # fmt: skip
    out.json(
        "campaign_submissions.json",
        [
            {"id": s.id, "campaign_id": s.campaign_id, "asset_id": s.asset_id,
             "units": s.units, "offered_minor": s.offered_minor, "state": s.state,
             "created_at": s.created_at, "decided_at": s.decided_at}
            for s in session.scalars(
                select(CampaignSubmission).where(CampaignSubmission.owner_id == user.id)
            )
        ],
    )  # fmt: skip
    out.json(
        "counterparty_invites.json",
        [
            {"id": i.id, "asset_id": i.asset_id, "part": f"{i.part_kind}:{i.part_ref}",
             "invitee_name": i.invitee_name, "invitee_email": i.invitee_email,
             "status": i.status, "created_at": i.created_at}
            for i in session.scalars(
                select(CounterpartyInvite).where(CounterpartyInvite.owner_id == user.id)
            )
        ],
    )  # fmt: skip
    refs = [f"user:{user.id}", *(f"asset:{a.id}" for a in assets),
            *(f"receipt:{r.id}" for r in receipts)]  # fmt: skip
    events: list[dict[str, Any]] = []
    for start in range(0, len(refs), 500):
        chunk = refs[start : start + 500]
        events.extend(
            {"seq": e.seq, "event_id": e.event_id, "occurred_at": e.occurred_at_text,
             "actor": e.actor, "action": e.action, "subject": e.subject,
             "payload": e.payload, "hash": e.hash}
            for e in session.scalars(
                select(AuditEvent).where(
                    or_(AuditEvent.actor.in_(chunk), AuditEvent.subject.in_(chunk))
                )
            )
        )  # fmt: skip
    unique = {e["seq"]: e for e in events}
    out.json("audit_events.json", [unique[k] for k in sorted(unique)])
    out.close()
    return SubjectAccessArchive(
        files=len(out.manifest) + 2, bytes_written=out.total, assets=len(assets),
        events=len(unique),
    )  # fmt: skip
