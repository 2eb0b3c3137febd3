"""Compliance reports for operators and auditors: the records of processing activities
(GDPR Art. 30), the licence register, the withdrawal register and how promptly buyers
attest deletion after a withdrawal.

The records describe what the platform does with personal data, written once here (a
reviewed code change, like the purpose tree), with the live figures that make them true
today: how many people, what kinds of data, which buyers in which countries receive it,
which licences reach outside the European Economic Area.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fairtrain.accounts.models import Organisation, User, UserKind
from fairtrain.config import Settings
from fairtrain.consent.evaluate import EEA
from fairtrain.consent.models import CounterpartyInvite
from fairtrain.ingest.models import Asset
from fairtrain.licensing.models import Licence, LicenceItem, LicenceState
from fairtrain.withdrawal.models import Notice, Withdrawal

__all__ = ["LICENCE_REGISTER_COLUMNS", "WITHDRAWAL_REGISTER_COLUMNS", "attestation_compliance",
           "licence_register", "licence_register_csv", "records_of_processing", "register_csv",
           "withdrawal_register"]  # fmt: skip

LICENCE_REGISTER_COLUMNS = (
    "licence_id", "organisation", "organisation_jurisdiction", "dataset_id", "version_id",
    "purpose", "territory", "starts_at", "ends_at", "state", "end_reason", "items",
    "total_minor", "currency", "agreement_sha256",
)  # fmt: skip

SECURITY_MEASURES = [
    "Uploads are stored encrypted (AES-256-GCM, a data key per contributor wrapped by a "
    "key-encryption key); erasure destroys the key (crypto-shredding).",
    "Other people in the data (faces, voices, names, numbers) are redacted before anything "
    "is listed, unless they consent themselves; EXIF/GPS and container metadata are removed.",
    "Buyers receive only approved, redacted versions; delivered demographics are "
    "k-anonymous; every delivery carries a per-licence watermark or fingerprint.",
    "Every route is checked against an authorisation matrix; other tenants' objects are "
    "reported as missing.",
    "Every state change is appended to a hash-chained audit log with signed Merkle "
    "checkpoints, verifiable offline.",
]


def _counts(session: Session, column: Any, *where: Any) -> dict[str, int]:
    rows = session.execute(select(column, func.count()).where(*where).group_by(column))
    return {str(key): int(count) for key, count in rows if key is not None}


def records_of_processing(session: Session, settings: Settings, now: datetime) -> dict[str, Any]:
    """The Art. 30(1) record, with today's figures."""
    people = _counts(session, User.kind)
    modalities = _counts(session, Asset.modality, Asset.state != "erased")
    states = _counts(session, Asset.state)
    active = select(Licence).where(Licence.state == LicenceState.ACTIVE).subquery()
    recipients = [
        {"organisation": name, "jurisdiction": jurisdiction, "active_licences": int(count)}
        for name, jurisdiction, count in session.execute(
            select(Organisation.name, Organisation.jurisdiction, func.count())
            .join(active, active.c.org_id == Organisation.id)
            .group_by(Organisation.name, Organisation.jurisdiction)
            .order_by(Organisation.name)
        )
    ]
    territories = Counter(
        str(t) for t in session.scalars(select(active.c.territory)) if t is not None
    )
    outside = {t: n for t, n in sorted(territories.items()) if t not in EEA}
    counterparties = int(
        session.scalar(
            select(func.count())
            .select_from(CounterpartyInvite)
            .where(CounterpartyInvite.status == "consented")
        )
        or 0
    )
    controller = {
        "name": settings.controller_name,
        "contact": settings.controller_contact
        or "not configured: set FAIRTRAIN_CONTROLLER_CONTACT",
        "data_protection_officer": settings.dpo_contact
        or "not configured: set FAIRTRAIN_DPO_CONTACT",
    }
    return {
        "title": "Records of processing activities (GDPR Art. 30(1))",
        "generated_at": now,
        "controller": controller,
        "activities": [
            {
                "name": "Accounts and sign-in",
                "purposes": ["providing the service to contributors, buyers and staff"],
                "legal_basis": "contract (Art. 6(1)(b))",
                "data_subjects": {k: people.get(k, 0) for k in (k.value for k in UserKind)},
                "personal_data": [
                    "e-mail address",
                    "name",
                    "date of birth (contributors)",
                    "jurisdiction",
                    "password hash (argon2id)",
                    "session times",
                ],
                "recipients": [],
                "retention": "while the account exists; erased with the account",
            },
            {
                "name": "Licensing contributors' data for AI training",
                "purposes": [
                    "licensing each asset only for the purposes, places and terms its "
                    "contributor chose, to the buyers listed below",
                ],
                "legal_basis": "consent (Art. 6(1)(a)); explicit consent for biometric "
                "uses where terms allow them (Art. 9(2)(a)); a signed receipt per consent",
                "data_subjects": {
                    "contributors": people.get("contributor", 0),
                    "counterparties who consented to their part": counterparties,
                },
                "personal_data": {
                    "assets by kind (not erased)": modalities,
                    "assets by state": states,
                    "self-declared demographics": "age band, gender, country, accent "
                    "(optional, generalised; k-anonymised on delivery)",
                },
                "special_categories": "voice and face recordings can identify a person "
                "(biometric data when used for identification); chats may reveal anything",
                "recipients": recipients,
                "transfers_outside_eea": {
                    "active licences by territory": outside,
                    "safeguards": "the licence agreement limits use to the territory, "
                    "purpose and term; buyers attest deletion on withdrawal or expiry",
                },
                "retention": "until the contributor withdraws or erases; licensees delete "
                f"within {settings.deletion_deadline_days} days of a withdrawal notice",
            },
            {
                "name": "Payments and payouts",
                "purposes": ["invoicing buyers, paying contributors their share"],
                "legal_basis": "contract (Art. 6(1)(b)); legal obligation for bookkeeping "
                "(Art. 6(1)(c))",
                "data_subjects": {"contributors": people.get("contributor", 0)},
                "personal_data": ["account holder name", "IBAN", "ledger entries"],
                "recipients": ["the platform's bank (payment files)"],
                "retention": "ledger entries as bookkeeping law requires, without content",
            },
            {
                "name": "Audit log",
                "purposes": ["proving every change to contributors, buyers and auditors"],
                "legal_basis": "legal obligation and legitimate interest (Art. 6(1)(c), (f))",
                "data_subjects": {"everyone who acts on the platform": sum(people.values())},
                "personal_data": [
                    "opaque ids of actors and subjects",
                    "times",
                    "decisions; never content",
                ],
                "recipients": ["auditors (offline exports)"],
                "retention": "permanent (hash-chained); contains no personal content",
            },
        ],
        "security_measures": SECURITY_MEASURES,
    }


def licence_register(session: Session) -> list[dict[str, Any]]:
    """Every licence ever granted, newest first."""
    items: dict[str, int] = {
        str(licence_id): int(count)
        for licence_id, count in session.execute(
            select(LicenceItem.licence_id, func.count()).group_by(LicenceItem.licence_id)
        )
    }
    rows = session.execute(
        select(Licence, Organisation.name, Organisation.jurisdiction)
        .join(Organisation, Organisation.id == Licence.org_id)
        .order_by(Licence.created_at.desc())
    )
    return [
        {
            "licence_id": licence.id,
            "organisation": name,
            "organisation_jurisdiction": jurisdiction,
            "dataset_id": licence.dataset_id,
            "version_id": licence.version_id,
            "purpose": licence.purpose,
            "territory": licence.territory,
            "starts_at": licence.starts_at.isoformat(),
            "ends_at": licence.ends_at.isoformat(),
            "state": licence.state,
            "end_reason": licence.end_reason,
            "items": int(items.get(licence.id, 0)),
            "total_minor": licence.total_minor,
            "currency": licence.currency,
            "agreement_sha256": licence.agreement_sha256,
        }
        for licence, name, jurisdiction in rows
    ]


def licence_register_csv(rows: list[dict[str, Any]]) -> str:
    return register_csv(rows, LICENCE_REGISTER_COLUMNS)


def register_csv(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    """A register as CSV; cells that a spreadsheet would run as a formula are quoted."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns))
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {k: ("'" + v if isinstance(v, str) and v[:1] in "=+-@" else v) for k, v in row.items()}
        )
    return out.getvalue()


# -- withdrawals and deletion attestations ------------------------------------------------

WITHDRAWAL_REGISTER_COLUMNS = (
    "notice_id", "withdrawal_id", "withdrawn_at", "scope", "assets", "purpose", "organisation",
    "licence_id", "state", "deadline_at", "acknowledged_at", "attested_at", "in_time",
    "escalated_at", "suspended_at",
)  # fmt: skip


def withdrawal_register(session: Session) -> list[dict[str, Any]]:
    """Every notice a withdrawal sent, newest first: which licence, what was asked, by
    when, and where the buyer stands (notified, acknowledged, attested, overdue). Holds
    ids and dates only, no personal content."""
    rows = session.execute(
        select(Notice, Withdrawal, Organisation.name)
        .join(Withdrawal, Withdrawal.id == Notice.withdrawal_id)
        .join(Organisation, Organisation.id == Notice.org_id)
        .order_by(Notice.created_at.desc(), Notice.id)
    )
    return [
        {
            "notice_id": notice.id,
            "withdrawal_id": withdrawal.id,
            "withdrawn_at": withdrawal.created_at.isoformat(),
            "scope": "everything" if withdrawal.everything else "assets",
            "assets": len(notice.asset_ids),
            "purpose": notice.purpose or "all",
            "organisation": name,
            "licence_id": notice.licence_id,
            "state": str(notice.state),
            "deadline_at": notice.deadline_at.isoformat(),
            "acknowledged_at": _iso(notice.acknowledged_at),
            "attested_at": _iso(notice.attested_at),
            "in_time": notice.attested_at is not None and notice.attested_at <= notice.deadline_at,
            "escalated_at": _iso(notice.escalated_at),
            "suspended_at": _iso(notice.suspended_at),
        }
        for notice, withdrawal, name in rows
    ]


def attestation_compliance(session: Session, now: datetime) -> dict[str, Any]:
    """Per buyer organisation: notices sent, attested in time, attested late, overdue
    (deadline passed, no attestation) and still open; the rate is attested in time over
    the notices whose deadline has passed or that were attested."""
    organisations: dict[str, dict[str, Any]] = {}
    for notice, name in session.execute(
        select(Notice, Organisation.name).join(Organisation, Organisation.id == Notice.org_id)
    ):
        row = organisations.setdefault(
            notice.org_id,
            {"org_id": notice.org_id, "organisation": name, "notices": 0, "attested_in_time": 0,
             "attested_late": 0, "overdue": 0, "open": 0, "suspended": 0},
        )  # fmt: skip
        row["notices"] += 1
        if notice.suspended_at is not None:
            row["suspended"] += 1
        if notice.attested_at is not None:
            late = notice.attested_at > notice.deadline_at
            row["attested_late" if late else "attested_in_time"] += 1
        elif notice.deadline_at <= now:
            row["overdue"] += 1
        else:
            row["open"] += 1
    rows = sorted(organisations.values(), key=lambda r: (r["organisation"], r["org_id"]))
    for row in rows:
        row["rate"] = _rate(row)
    totals = {
        key: sum(r[key] for r in rows)
        for key in ("notices", "attested_in_time", "attested_late", "overdue", "open", "suspended")
    }
    return {"generated_at": now.isoformat(), "organisations": rows,
            "totals": totals | {"rate": _rate(totals)}}  # fmt: skip


def _rate(row: dict[str, Any]) -> float | None:
    """In-time attestations over notices that are due (None when none is due yet)."""
    due = row["attested_in_time"] + row["attested_late"] + row["overdue"]
    return round(row["attested_in_time"] / due, 4) if due else None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
