"""The ledger's tables: a chart of accounts, journal entries and their lines, payout
details, payout batches and their items.

Double entry: every entry's lines balance per currency (checked by the service before
anything is written). Entries and lines are never updated or deleted once flushed; a
correction is a reversing entry. That is enforced for every session of the process by a
``before_flush`` hook below (the database itself would accept an UPDATE from outside the
application; the audit log records every posting, so such an edit would still show).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    event,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from fairtrain.db import Base, JSONValue, UTCDateTime

__all__ = [
    "AccountKind",
    "BatchState",
    "EntryKind",
    "ImmutableEntry",
    "JournalEntry",
    "JournalLine",
    "LedgerAccount",
    "PayoutBatch",
    "PayoutDetails",
    "PayoutItem",
]

_BIG = BigInteger().with_variant(Integer, "sqlite")


class AccountKind(StrEnum):
    ASSET = "asset"  # normal balance on the debit side
    LIABILITY = "liability"  # normal balance on the credit side
    REVENUE = "revenue"  # normal balance on the credit side


class EntryKind(StrEnum):
    INVOICE = "invoice"
    PAYMENT = "payment"
    REVERSAL = "reversal"
    PAYOUT_BATCH = "payout_batch"
    PAYOUT_PAID = "payout_paid"


class BatchState(StrEnum):
    SENT = "sent"  # booked to payout_clearing, exported to the bank
    PAID = "paid"  # the bank confirmed the transfers


class LedgerAccount(Base):
    """One account of the chart; its code names it (``contributor_payable:usr_…``)."""

    __tablename__ = "ledger_accounts"
    __table_args__ = (Index("ix_ledger_accounts_category", "category", "party_id"),)

    code: Mapped[str] = mapped_column(String(120), primary_key=True)
    kind: Mapped[AccountKind] = mapped_column(String(20))
    category: Mapped[str] = mapped_column(String(40))  # the code before its ":"
    party_id: Mapped[str | None] = mapped_column(String(60), nullable=True)  # after it
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class JournalEntry(Base):
    """One balanced posting. ``idempotency_key`` is unique: a retry finds the first one."""

    __tablename__ = "journal_entries"
    __table_args__ = (Index("ix_journal_entries_reference", "reference"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[EntryKind] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(String(300))
    # What the entry is about: an order id, a payout batch id.
    reference: Mapped[str | None] = mapped_column(String(80), nullable=True)
    # A reversal names the entry it undoes; unique, so an entry is reversed at most once.
    reverses_id: Mapped[str | None] = mapped_column(
        ForeignKey("journal_entries.id"), nullable=True, unique=True
    )
    # SHA-256 of the entry's lines in canonical order: how a retry is told from a reuse.
    lines_sha256: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(80))
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime())


class JournalLine(Base):
    """One side of an entry: a positive amount in one currency, debit or credit."""

    __tablename__ = "journal_lines"
    __table_args__ = (
        CheckConstraint(
            "(debit_minor > 0 AND credit_minor = 0) OR (debit_minor = 0 AND credit_minor > 0)",
            name="one_positive_side",
        ),
        Index("ix_journal_lines_account", "account_code", "currency"),
    )

    # Insertion order: statements run balances down it.
    id: Mapped[int] = mapped_column(_BIG, primary_key=True, autoincrement=True)
    entry_id: Mapped[str] = mapped_column(ForeignKey("journal_entries.id"), index=True)
    account_code: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.code"))
    currency: Mapped[str] = mapped_column(String(3))
    debit_minor: Mapped[int] = mapped_column(_BIG)
    credit_minor: Mapped[int] = mapped_column(_BIG)


class PayoutDetails(Base):
    """Where a contributor is paid. Shown masked; changes are audited without the IBAN."""

    __tablename__ = "payout_details"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    account_holder: Mapped[str] = mapped_column(String(70))
    iban: Mapped[str] = mapped_column(String(34))  # electronic form: no spaces, upper case
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PayoutBatch(Base):
    """One bank transfer file's worth of payouts in one currency."""

    __tablename__ = "payout_batches"
    __table_args__ = (Index("ix_payout_batches_created", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3))
    state: Mapped[BatchState] = mapped_column(String(20))
    item_count: Mapped[int] = mapped_column(Integer)
    total_minor: Mapped[int] = mapped_column(_BIG)
    # Who had money owed but was not paid, and why: [{user_id, balance_minor, reason}].
    skipped: Mapped[list[dict[str, Any]]] = mapped_column(JSONValue)
    entry_id: Mapped[str] = mapped_column(ForeignKey("journal_entries.id"), unique=True)
    paid_entry_id: Mapped[str | None] = mapped_column(
        ForeignKey("journal_entries.id"), nullable=True, unique=True
    )
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    paid_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class PayoutItem(Base):
    """One credit transfer: the details as they were when the batch was made."""

    __tablename__ = "payout_items"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # also the EndToEndId
    batch_id: Mapped[str] = mapped_column(ForeignKey("payout_batches.id"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(_BIG)
    account_holder: Mapped[str] = mapped_column(String(70))
    iban: Mapped[str] = mapped_column(String(34))


class ImmutableEntry(RuntimeError):
    """Code tried to change or delete a posted entry: a bug, never a user's doing."""


@event.listens_for(Session, "before_flush")
def _refuse_edits_of_posted_entries(session: Session, _context: Any, _instances: Any) -> None:
    for instance in session.deleted:
        if isinstance(instance, JournalEntry | JournalLine):
            raise ImmutableEntry(
                f"journal {type(instance).__name__} cannot be deleted; post a reversal"
            )
    for instance in session.dirty:
        if isinstance(instance, JournalEntry | JournalLine) and session.is_modified(instance):
            raise ImmutableEntry(
                f"journal {type(instance).__name__} cannot be changed; post a reversal"
            )
