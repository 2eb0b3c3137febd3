"""The double-entry ledger: posting, the licence lifecycle, balances, statements, payouts.

**Posting.** ``post_entry`` refuses an entry whose lines do not balance per currency (no
silent FX), any line that is not a positive whole number of minor units on exactly one
side, and accounts outside the chart. Every entry carries a unique ``idempotency_key``:
posting the same key again with the same lines returns the entry already posted (a
retried request never pays twice); the same key with other lines is
``idempotency_key_reused``. The key is unique in the database too, and the entry is
written with ``INSERT … ON CONFLICT (idempotency_key) DO NOTHING``: when two transactions
race with one key, the second one's INSERT waits for the first to commit, inserts
nothing, and the committed entry is returned. Each posting appends
``ledger.entry_posted`` to the audit log in the same transaction.

**Chart of accounts** (created on first use)::

    bank                          asset       money the platform holds
    buyer_receivable:{org_id}     asset       invoiced, not yet paid
    unearned_revenue              liability   invoiced licence fees not yet paid
    contributor_payable:{user_id} liability   what the platform owes a contributor
    platform_revenue              revenue     the platform's fee
    payout_clearing               liability   payouts sent to the bank, not yet confirmed

**Lifecycle** (called by licensing): ``record_invoice`` → ``record_payment`` (or
``cancel_invoice`` while unpaid); then payouts: ``create_payout_batch`` →
``mark_batch_paid``. Services flush, never commit: the caller's transaction decides.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, aliased

from fairtrain.accounts.models import Organisation, User, UserKind
from fairtrain.audit.service import append_event
from fairtrain.db import is_postgres
from fairtrain.errors import Conflict, InvalidInput, NotFound
from fairtrain.ids import new_id, utcnow
from fairtrain.ledger.models import (
    AccountKind,
    BatchState,
    EntryKind,
    JournalEntry,
    JournalLine,
    LedgerAccount,
    PayoutBatch,
    PayoutDetails,
    PayoutItem,
)
from fairtrain.ledger.payouts import (
    ExportFormat,
    Transfer,
    debtor_account,
    normalise_account_holder,
    normalise_iban,
    pain001_xml,
    payouts_csv,
)
from fairtrain.ledger.statements import StatementLine
from fairtrain.money import check_currency

__all__ = [
    "BANK",
    "PAYOUT_CLEARING",
    "PLATFORM_REVENUE",
    "UNEARNED_REVENUE",
    "AccountBalance",
    "BatchExport",
    "CurrencyBalances",
    "LedgerOutOfBalance",
    "Line",
    "TrialBalance",
    "account_kind",
    "balance",
    "batch_items",
    "buyer_receivable",
    "cancel_invoice",
    "contributor_payable",
    "create_payout_batch",
    "credit",
    "debit",
    "entry_lines",
    "export_batch",
    "get_batch",
    "list_batches",
    "mark_batch_paid",
    "payable_balances",
    "payout_details_of",
    "post_entry",
    "record_invoice",
    "record_payment",
    "reverse_entry",
    "set_payout_details",
    "statement",
    "trial_balance",
]

BANK = "bank"
UNEARNED_REVENUE = "unearned_revenue"
PLATFORM_REVENUE = "platform_revenue"
PAYOUT_CLEARING = "payout_clearing"
_BUYER_RECEIVABLE = "buyer_receivable"
_CONTRIBUTOR_PAYABLE = "contributor_payable"

# The chart: category → kind. Party accounts are "category:party_id".
_CHART: dict[str, AccountKind] = {
    BANK: AccountKind.ASSET,
    _BUYER_RECEIVABLE: AccountKind.ASSET,
    UNEARNED_REVENUE: AccountKind.LIABILITY,
    _CONTRIBUTOR_PAYABLE: AccountKind.LIABILITY,
    PLATFORM_REVENUE: AccountKind.REVENUE,
    PAYOUT_CLEARING: AccountKind.LIABILITY,
}
_PARTY_CATEGORIES = frozenset({_BUYER_RECEIVABLE, _CONTRIBUTOR_PAYABLE})
# One line's ceiling: far above any sale, far below BIGINT overflow when summed.
MAX_LINE_MINOR = 10**15
_MAX_KEY_LENGTH = 200
_MAX_REFERENCE_LENGTH = 80
_MAX_PARTY_LENGTH = 60  # ledger_accounts.party_id
# Arbitrary constant naming the payout-batch advisory lock on PostgreSQL (plus currency).
_PAYOUT_LOCK_BASE = 0x66745F706179


class LedgerOutOfBalance(RuntimeError):
    """Total debits differ from total credits: the ledger itself is broken (never input)."""


# -- lines and the chart -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Line:
    """One side of an entry: exactly one of ``debit_minor`` and ``credit_minor`` is set."""

    account: str
    currency: str
    debit_minor: int = 0
    credit_minor: int = 0


def debit(account: str, currency: str, amount_minor: int) -> Line:
    return Line(account=account, currency=currency, debit_minor=amount_minor)


def credit(account: str, currency: str, amount_minor: int) -> Line:
    return Line(account=account, currency=currency, credit_minor=amount_minor)


def buyer_receivable(org_id: str) -> str:
    return f"{_BUYER_RECEIVABLE}:{org_id}"


def contributor_payable(user_id: str) -> str:
    return f"{_CONTRIBUTOR_PAYABLE}:{user_id}"


def _split_code(code: str) -> tuple[str, str | None]:
    category, colon, party = code.partition(":") if isinstance(code, str) else ("", "", "")
    well_formed = (
        category in _CHART
        # Party accounts name their party; the others name none.
        and (category in _PARTY_CATEGORIES) == bool(colon and party)
        and ":" not in party
        and len(party) <= _MAX_PARTY_LENGTH
    )
    if not well_formed:
        raise InvalidInput(
            f"{code!r} is not an account of the ledger's chart.",
            code="unknown_account",
            pointer="/account",
        )
    return category, party or None


def account_kind(code: str) -> AccountKind:
    """Asset, liability or revenue; ``unknown_account`` outside the chart."""
    return _CHART[_split_code(code)[0]]


def _is_whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _checked_lines(lines: Sequence[Line]) -> list[Line]:
    if len(lines) < 2:
        raise InvalidInput(
            "An entry needs at least one debit and one credit.", code="unbalanced_entry"
        )
    checked: list[Line] = []
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for index, line in enumerate(lines):
        pointer = f"/lines/{index}"
        _split_code(line.account)
        currency = check_currency(line.currency, pointer=f"{pointer}/currency")
        debit_minor, credit_minor = line.debit_minor, line.credit_minor
        if not (_is_whole(debit_minor) and _is_whole(credit_minor)):
            raise InvalidInput(
                "Amounts are whole numbers of minor units (cents), never fractions.",
                code="invalid_amount",
                pointer=pointer,
            )
        if not ((debit_minor > 0) ^ (credit_minor > 0)) or min(debit_minor, credit_minor) < 0:
            raise InvalidInput(
                "Each line is a positive amount on exactly one side (debit or credit).",
                code="invalid_amount",
                pointer=pointer,
            )
        if max(debit_minor, credit_minor) > MAX_LINE_MINOR:
            raise InvalidInput(
                "That amount is larger than the ledger books on one line.",
                code="amount_too_large",
                pointer=pointer,
            )
        totals[currency][0] += debit_minor
        totals[currency][1] += credit_minor
        checked.append(Line(line.account, currency, debit_minor, credit_minor))
    for currency, (debits, credits) in sorted(totals.items()):
        if debits != credits:
            raise InvalidInput(
                f"The entry does not balance in {currency}: debits {debits}, credits "
                f"{credits}. Each currency must balance on its own (no conversion).",
                code="unbalanced_entry",
                extra={"currency": currency, "debit_minor": debits, "credit_minor": credits},
            )
    return checked


def _lines_sha256(lines: Iterable[Line]) -> str:
    # Order-free: a retry that lists the same lines differently is the same posting.
    canonical = sorted((ln.account, ln.currency, ln.debit_minor, ln.credit_minor) for ln in lines)
    return hashlib.sha256(json.dumps(canonical, separators=(",", ":")).encode()).hexdigest()


def _insert_or_skip(session: Session, model: type[Any]) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` for this session's database (both have it)."""
    dialect_insert = pg_insert if is_postgres(session) else sqlite_insert
    return dialect_insert(model)


def _ensure_accounts(session: Session, codes: set[str]) -> None:
    # Nearly always every account exists already: look first (one cached query), then
    # write what is missing in one statement, in code order. A concurrent first use of
    # the same account waits for the other transaction and skips the row it wrote; the
    # order means two transactions opening several accounts cannot deadlock.
    missing = codes - set(
        session.scalars(select(LedgerAccount.code).where(LedgerAccount.code.in_(codes)))
    )
    if not missing:
        return
    now = utcnow()
    rows = []
    for code in sorted(missing):
        category, party = _split_code(code)
        rows.append(
            {
                "code": code,
                "kind": _CHART[category].value,
                "category": category,
                "party_id": party,
                "created_at": now,
            }
        )
    session.execute(
        _insert_or_skip(session, LedgerAccount)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["code"])
    )


# -- posting -------------------------------------------------------------------------------


def _entry_by_key(session: Session, key: str, *, for_update: bool = False) -> JournalEntry | None:
    query = select(JournalEntry).where(JournalEntry.idempotency_key == key)
    if for_update:
        query = query.with_for_update()
    return session.scalars(query).first()


def _retry_of(existing: JournalEntry, kind: EntryKind, digest: str) -> JournalEntry:
    if existing.kind != kind or existing.lines_sha256 != digest:
        raise Conflict(
            f"The idempotency key {existing.idempotency_key!r} was already used for a "
            "different entry; a new posting needs a new key.",
            code="idempotency_key_reused",
            extra={"entry_id": existing.id},
        )
    return existing


def _check_text(value: str, *, name: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise InvalidInput(
            f"The {name} must be 1 to {limit} characters.",
            code=f"invalid_{name}",
            pointer=f"/{name}",
        )
    return value


def _post(
    session: Session,
    *,
    idempotency_key: str,
    kind: EntryKind,
    description: str,
    lines: Sequence[Line],
    actor: str,
    reference: str | None = None,
    reverses_id: str | None = None,
) -> tuple[JournalEntry, bool]:
    """The entry, and whether this call posted it (False: an earlier one did)."""
    _check_text(idempotency_key, name="idempotency_key", limit=_MAX_KEY_LENGTH)
    if reference is not None:
        _check_text(reference, name="reference", limit=_MAX_REFERENCE_LENGTH)
    checked = _checked_lines(lines)
    digest = _lines_sha256(checked)
    _ensure_accounts(session, {line.account for line in checked})
    # The key's unique index decides: when a concurrent posting holds the same key, this
    # INSERT waits for it to commit and then inserts nothing; the committed entry is then
    # the answer, provided its lines are these.
    entry = session.scalars(
        _insert_or_skip(session, JournalEntry)
        .values(
            id=new_id("jrn"),
            idempotency_key=idempotency_key,
            kind=kind.value,
            description=description[:300],
            reference=reference,
            reverses_id=reverses_id,
            lines_sha256=digest,
            actor=actor,
            posted_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(JournalEntry)
    ).first()
    if entry is None:
        existing = _entry_by_key(session, idempotency_key)
        # Only the key's index is named in ON CONFLICT: any other violation raises.
        assert existing is not None
        return _retry_of(existing, kind, digest), False
    # One multi-row INSERT for the lines (RETURNING makes SQLAlchemy batch them into one
    # statement instead of one per line): a sale has a line per contributor.
    session.execute(
        insert(JournalLine).returning(JournalLine.id),
        [
            {
                "entry_id": entry.id,
                "account_code": line.account,
                "currency": line.currency,
                "debit_minor": line.debit_minor,
                "credit_minor": line.credit_minor,
            }
            for line in checked
        ],
    )
    totals: dict[str, int] = defaultdict(int)
    for line in checked:
        totals[line.currency] += line.debit_minor
    append_event(
        session,
        actor=actor,
        action="ledger.entry_posted",
        subject=f"journal_entry:{entry.id}",
        payload={
            "entry_id": entry.id,
            "kind": str(kind),
            "reference": reference,
            "reverses_id": reverses_id,
            "lines": len(checked),
            "totals_minor": dict(sorted(totals.items())),
            "lines_sha256": digest,
        },
    )
    return entry, True


def post_entry(
    session: Session,
    *,
    idempotency_key: str,
    kind: EntryKind,
    description: str,
    lines: Sequence[Line],
    actor: str,
    reference: str | None = None,
) -> JournalEntry:
    """Post a balanced entry once; the same key and lines again return the same entry."""
    entry, _ = _post(
        session,
        idempotency_key=idempotency_key,
        kind=kind,
        description=description,
        lines=lines,
        actor=actor,
        reference=reference,
    )
    return entry


def entry_lines(session: Session, entry_id: str) -> list[Line]:
    """The lines of an entry in the order they were posted."""
    rows = session.execute(
        select(
            JournalLine.account_code,
            JournalLine.currency,
            JournalLine.debit_minor,
            JournalLine.credit_minor,
        )
        .where(JournalLine.entry_id == entry_id)
        .order_by(JournalLine.id)
    )
    return [Line(code, currency, d, c) for code, currency, d, c in rows]


def _reversal_of(session: Session, entry_id: str) -> JournalEntry | None:
    return session.scalars(select(JournalEntry).where(JournalEntry.reverses_id == entry_id)).first()


def reverse_entry(session: Session, entry_id: str, *, actor: str, reason: str) -> JournalEntry:
    """Undo an entry with its mirror image (debits become credits); at most once.

    Reversing again returns the reversal already posted.
    """
    original = session.get(JournalEntry, entry_id)
    if original is None:
        raise NotFound("No such journal entry.", code="entry_not_found")
    if original.kind == EntryKind.REVERSAL:
        raise Conflict(
            "A reversal is not reversed; post the original entry again under a new key.",
            code="reversal_not_reversible",
        )
    if original.kind in (EntryKind.PAYOUT_BATCH, EntryKind.PAYOUT_PAID):
        # A payout batch's state lives beside its entries; undoing one alone would leave
        # a batch marked sent or paid whose money was booked back.
        raise Conflict(
            "Payout entries are not reversed on their own; the payout batch owns them.",
            code="entry_not_reversible",
        )
    mirrored = [
        Line(line.account, line.currency, line.credit_minor, line.debit_minor)
        for line in entry_lines(session, original.id)
    ]
    entry, _ = _post(
        session,
        idempotency_key=f"reversal:{original.id}",
        kind=EntryKind.REVERSAL,
        description=f"Reversal ({reason}) of: {original.description}",
        lines=mirrored,
        actor=actor,
        reference=original.reference,
        reverses_id=original.id,
    )
    return entry


# -- the licence lifecycle -----------------------------------------------------------------


def _check_amount(value: object, *, name: str, allow_zero: bool = False) -> int:
    least = 0 if allow_zero else 1
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or not least <= value <= MAX_LINE_MINOR
    ):
        raise InvalidInput(
            f"The {name} must be a whole number of minor units, at least {least}.",
            code="invalid_amount",
            pointer=f"/{name}",
        )
    return value


def _invoice_key(order_id: str) -> str:
    return f"invoice:{order_id}"


def _payment_key(order_id: str) -> str:
    return f"payment:{order_id}"


def record_invoice(
    session: Session,
    *,
    order_id: str,
    org_id: str,
    currency: str,
    total_minor: int,
    actor: str,
) -> JournalEntry:
    """The buyer owes ``total_minor``: Dr buyer_receivable:{org} / Cr unearned_revenue.

    Idempotent per order: recording the same invoice again returns the first entry.
    """
    _check_text(order_id, name="order_id", limit=60)
    currency = check_currency(currency)
    total = _check_amount(total_minor, name="total_minor")
    if session.get(Organisation, org_id) is None:
        raise NotFound("No such organisation.", code="org_not_found")
    entry, posted = _post(
        session,
        idempotency_key=_invoice_key(order_id),
        kind=EntryKind.INVOICE,
        description=f"Invoice for licence order {order_id}",
        lines=_invoice_lines(org_id, currency, total),
        actor=actor,
        reference=order_id,
    )
    if not posted and _reversal_of(session, entry.id) is not None:
        raise Conflict(
            f"The invoice of order {order_id} was cancelled; a new invoice needs a new order.",
            code="invoice_cancelled",
        )
    return entry


def _invoice_lines(org_id: str, currency: str, total: int) -> list[Line]:
    return [
        debit(buyer_receivable(org_id), currency, total),
        credit(UNEARNED_REVENUE, currency, total),
    ]


def _open_invoice(session: Session, order_id: str) -> JournalEntry:
    # FOR UPDATE on PostgreSQL: a payment and a cancellation of one invoice serialise
    # here, so an invoice is never both paid and cancelled. (SQLite's BEGIN IMMEDIATE
    # already serialises writers.) Its reversal, if any, comes in the same query.
    reversal = aliased(JournalEntry)
    found = session.execute(
        select(JournalEntry, reversal.id)
        .outerjoin(reversal, reversal.reverses_id == JournalEntry.id)
        .where(JournalEntry.idempotency_key == _invoice_key(order_id))
        .with_for_update(of=JournalEntry)
    ).first()
    if found is None:
        raise NotFound(f"No invoice was recorded for order {order_id}.", code="invoice_not_found")
    invoice: JournalEntry = found[0]
    reversal_id: str | None = found[1]  # the outer join's side: None when not reversed
    if reversal_id is not None:
        raise Conflict(f"The invoice of order {order_id} was cancelled.", code="invoice_cancelled")
    return invoice


def record_payment(
    session: Session,
    *,
    order_id: str,
    org_id: str,
    currency: str,
    total_minor: int,
    contributor_shares: Mapping[str, int],
    platform_fee_minor: int,
    actor: str,
) -> JournalEntry:
    """The buyer's transfer arrived: one entry with both halves of the settlement.

    Dr bank / Cr buyer_receivable:{org} for the total; Dr unearned_revenue for the total /
    Cr contributor_payable:{user} per share / Cr platform_revenue for the fee. The shares
    and the fee must add up to the total exactly, and to the invoice. A share of zero
    books nothing for that contributor. Idempotent per order.
    """
    _check_text(order_id, name="order_id", limit=60)
    currency = check_currency(currency)
    total = _check_amount(total_minor, name="total_minor")
    fee = _check_amount(platform_fee_minor, name="platform_fee_minor", allow_zero=True)
    shares: dict[str, int] = {}
    for user_id, share in sorted(contributor_shares.items()):
        shares[user_id] = _check_amount(
            share, name=f"contributor_shares/{user_id}", allow_zero=True
        )
    if sum(shares.values()) + fee != total:
        raise InvalidInput(
            f"Contributor shares ({sum(shares.values())}) plus the platform fee ({fee}) must "
            f"equal the total ({total}).",
            code="shares_do_not_add_up",
            pointer="/contributor_shares",
        )
    _check_contributors(session, shares)
    invoice = _open_invoice(session, order_id)
    # The invoice's lines are known from what it must have been: compare their digest.
    if invoice.lines_sha256 != _lines_sha256(_invoice_lines(org_id, currency, total)):
        raise Conflict(
            f"This payment does not match the invoice of order {order_id} (organisation, "
            "currency or total differ).",
            code="payment_does_not_match_invoice",
        )
    lines = [
        debit(BANK, currency, total),
        credit(buyer_receivable(org_id), currency, total),
        debit(UNEARNED_REVENUE, currency, total),
        *(credit(contributor_payable(u), currency, s) for u, s in shares.items() if s > 0),
    ]
    if fee > 0:
        lines.append(credit(PLATFORM_REVENUE, currency, fee))
    return post_entry(
        session,
        idempotency_key=_payment_key(order_id),
        kind=EntryKind.PAYMENT,
        description=f"Payment of licence order {order_id}",
        lines=lines,
        actor=actor,
        reference=order_id,
    )


def _check_contributors(session: Session, shares: Mapping[str, int]) -> None:
    if not shares:
        return
    known = set(
        session.scalars(
            select(User.id).where(User.id.in_(shares), User.kind == UserKind.CONTRIBUTOR)
        )
    )
    for user_id in shares:
        if user_id not in known:
            raise InvalidInput(
                f"{user_id!r} is not a contributor.",
                code="unknown_contributor",
                pointer=f"/contributor_shares/{user_id}",
            )


def cancel_invoice(
    session: Session, *, order_id: str, actor: str, reason: str = "cancelled"
) -> JournalEntry:
    """Reverse an unpaid invoice (the buyer owes nothing more); refused once it is paid."""
    invoice = _entry_by_key(session, _invoice_key(order_id), for_update=True)
    if invoice is None:
        raise NotFound(f"No invoice was recorded for order {order_id}.", code="invoice_not_found")
    if _entry_by_key(session, _payment_key(order_id)) is not None:
        raise Conflict(
            f"Order {order_id} is paid; a paid invoice is refunded, not cancelled.",
            code="invoice_paid",
        )
    return reverse_entry(session, invoice.id, actor=actor, reason=reason)


# -- balances ------------------------------------------------------------------------------


def balance(session: Session, account: str, currency: str) -> int:
    """The account's balance on its normal side (assets: debits − credits; others:
    credits − debits), in minor units of ``currency``. An unused account has 0."""
    kind = account_kind(account)
    currency = check_currency(currency)
    debits, credits = session.execute(
        select(
            func.coalesce(func.sum(JournalLine.debit_minor), 0),
            func.coalesce(func.sum(JournalLine.credit_minor), 0),
        ).where(JournalLine.account_code == account, JournalLine.currency == currency)
    ).one()
    return _normal(kind, int(debits), int(credits))


def _normal(kind: AccountKind, debits: int, credits: int) -> int:
    return debits - credits if kind == AccountKind.ASSET else credits - debits


@dataclass(frozen=True, slots=True)
class AccountBalance:
    account: str
    kind: AccountKind
    debit_minor: int
    credit_minor: int
    balance_minor: int  # on the account's normal side


@dataclass(frozen=True, slots=True)
class CurrencyBalances:
    currency: str
    accounts: list[AccountBalance]
    debit_minor: int
    credit_minor: int


@dataclass(frozen=True, slots=True)
class TrialBalance:
    currencies: list[CurrencyBalances]


def trial_balance(session: Session) -> TrialBalance:
    """Every account's debits, credits and balance, per currency.

    Raises ``LedgerOutOfBalance`` if a currency's debits and credits differ, which only a
    write from outside the ledger's service could cause.
    """
    rows = session.execute(
        select(
            JournalLine.currency,
            JournalLine.account_code,
            LedgerAccount.kind,
            func.sum(JournalLine.debit_minor),
            func.sum(JournalLine.credit_minor),
        )
        .join(LedgerAccount, LedgerAccount.code == JournalLine.account_code)
        .group_by(JournalLine.currency, JournalLine.account_code, LedgerAccount.kind)
        .order_by(JournalLine.currency, JournalLine.account_code)
    )
    per_currency: dict[str, list[AccountBalance]] = defaultdict(list)
    for currency, code, kind, debits, credits in rows:
        account_kind_ = AccountKind(kind)
        per_currency[currency].append(
            AccountBalance(
                account=code,
                kind=account_kind_,
                debit_minor=int(debits),
                credit_minor=int(credits),
                balance_minor=_normal(account_kind_, int(debits), int(credits)),
            )
        )
    result: list[CurrencyBalances] = []
    for currency, accounts in sorted(per_currency.items()):
        debits = sum(a.debit_minor for a in accounts)
        credits = sum(a.credit_minor for a in accounts)
        if debits != credits:
            raise LedgerOutOfBalance(
                f"{currency}: total debits {debits} differ from total credits {credits}"
            )
        result.append(CurrencyBalances(currency, accounts, debits, credits))
    return TrialBalance(currencies=result)


def statement(
    session: Session, user_id: str, *, currency: str | None = None
) -> list[StatementLine]:
    """Every line on a contributor's payable account, oldest first, with running balances."""
    query = (
        select(
            JournalEntry.posted_at,
            JournalEntry.id,
            JournalEntry.kind,
            JournalEntry.description,
            JournalLine.currency,
            JournalLine.debit_minor,
            JournalLine.credit_minor,
        )
        .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
        .where(JournalLine.account_code == contributor_payable(user_id))
        .order_by(JournalLine.id)
    )
    if currency is not None:
        query = query.where(JournalLine.currency == check_currency(currency))
    running: dict[str, int] = defaultdict(int)
    lines: list[StatementLine] = []
    for posted_at, entry_id, kind, description, line_currency, d, c in session.execute(query):
        amount = int(c) - int(d)
        running[line_currency] += amount
        lines.append(
            StatementLine(
                posted_at=posted_at,
                entry_id=entry_id,
                kind=EntryKind(kind),
                description=description,
                currency=line_currency,
                amount_minor=amount,
                balance_minor=running[line_currency],
            )
        )
    return lines


# -- payout details ------------------------------------------------------------------------


def payout_details_of(session: Session, user_id: str) -> PayoutDetails | None:
    return session.get(PayoutDetails, user_id)


def set_payout_details(
    session: Session, *, user_id: str, account_holder: str, iban: str, actor: str
) -> PayoutDetails:
    """Register or change where a contributor is paid; the IBAN is checked (mod-97).

    Audited as ``ledger.payout_details_changed`` with the IBAN's country only: the
    account number itself never reaches the log. Saving the same details is a no-op.
    """
    holder = normalise_account_holder(account_holder)
    electronic = normalise_iban(iban)
    user = session.get(User, user_id)
    if user is None or user.kind != UserKind.CONTRIBUTOR:
        raise NotFound("No such contributor.", code="contributor_not_found")
    now = utcnow()
    details = session.get(PayoutDetails, user_id)
    first = details is None
    if details is None:
        details = PayoutDetails(
            user_id=user_id, account_holder=holder, iban=electronic, created_at=now, updated_at=now
        )
        session.add(details)
    elif details.account_holder == holder and details.iban == electronic:
        return details
    else:
        changed = [
            name
            for name, same in (
                ("account_holder", details.account_holder == holder),
                ("iban", details.iban == electronic),
            )
            if not same
        ]
        details.account_holder, details.iban, details.updated_at = holder, electronic, now
    session.flush()
    append_event(
        session,
        actor=actor,
        action="ledger.payout_details_changed",
        subject=f"user:{user_id}",
        payload={
            "user_id": user_id,
            "first_registration": first,
            "changed": ["account_holder", "iban"] if first else changed,
            "iban_country": electronic[:2],
        },
    )
    return details


# -- payout batches ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Owed:
    user_id: str
    balance_minor: int
    last_line_id: int


def _owed(session: Session, currency: str) -> list[_Owed]:
    rows = session.execute(
        select(
            LedgerAccount.party_id,
            func.sum(JournalLine.credit_minor) - func.sum(JournalLine.debit_minor),
            func.max(JournalLine.id),
        )
        .join(LedgerAccount, LedgerAccount.code == JournalLine.account_code)
        .where(LedgerAccount.category == _CONTRIBUTOR_PAYABLE, JournalLine.currency == currency)
        .group_by(LedgerAccount.party_id)
        .order_by(LedgerAccount.party_id)
    )
    return [_Owed(str(party), int(owed), int(last)) for party, owed, last in rows if owed]


def payable_balances(session: Session, currency: str) -> dict[str, int]:
    """What the platform owes each contributor in ``currency`` (those owed anything)."""
    return {o.user_id: o.balance_minor for o in _owed(session, check_currency(currency))}


def create_payout_batch(
    session: Session, *, currency: str, minimum_minor: int, actor: str
) -> PayoutBatch:
    """Pay everyone owed at least ``minimum_minor`` who has payout details, in one batch.

    Books Dr contributor_payable:{user} per item / Cr payout_clearing in one entry whose
    idempotency key is derived from the balances it pays, so the same balances can never
    be batched twice (a second call right after finds nothing to pay). Contributors owed
    money but skipped are listed with the reason (``below_minimum``,
    ``no_payout_details``). Nothing to pay is refused with ``nothing_to_pay``.
    """
    currency = check_currency(currency)
    minimum = _check_amount(minimum_minor, name="minimum_minor")
    if is_postgres(session):
        # One batch per currency at a time: the second creator reads the balances the
        # first one left (zero). SQLite's BEGIN IMMEDIATE already serialises writers.
        session.execute(
            text("SELECT pg_advisory_xact_lock(:key)"),
            {"key": _PAYOUT_LOCK_BASE + zlib.crc32(currency.encode())},
        )
    owed = _owed(session, currency)
    details = {
        d.user_id: d
        for d in session.scalars(
            select(PayoutDetails).where(PayoutDetails.user_id.in_([o.user_id for o in owed]))
        )
    }
    paid: list[_Owed] = []
    skipped: list[dict[str, Any]] = []
    for item in owed:
        reason = None
        if item.balance_minor < minimum:
            reason = "below_minimum"
        elif item.user_id not in details:
            reason = "no_payout_details"
        if reason is None:
            paid.append(item)
        else:
            skipped.append(
                {"user_id": item.user_id, "balance_minor": item.balance_minor, "reason": reason}
            )
    if not paid:
        raise Conflict(
            f"Nobody is owed at least the payout minimum in {currency} and has payout details.",
            code="nothing_to_pay",
            extra={"skipped": skipped},
        )
    batch_id = new_id("pob")
    total = sum(item.balance_minor for item in paid)
    state_digest = hashlib.sha256(
        json.dumps(
            [[o.user_id, o.balance_minor, o.last_line_id] for o in paid], separators=(",", ":")
        ).encode()
    ).hexdigest()
    entry, posted = _post(
        session,
        idempotency_key=f"payout_batch:{currency}:{state_digest}",
        kind=EntryKind.PAYOUT_BATCH,
        description=f"Payout batch {batch_id}",
        lines=[
            *(debit(contributor_payable(o.user_id), currency, o.balance_minor) for o in paid),
            credit(PAYOUT_CLEARING, currency, total),
        ],
        actor=actor,
        reference=batch_id,
    )
    if not posted:
        raise Conflict(
            f"These balances were already batched ({entry.reference}).",
            code="nothing_to_pay",
            extra={"batch_id": entry.reference},
        )
    now = utcnow()
    batch = PayoutBatch(
        id=batch_id,
        currency=currency,
        state=BatchState.SENT,
        item_count=len(paid),
        total_minor=total,
        skipped=skipped,
        entry_id=entry.id,
        created_by=actor,
        created_at=now,
    )
    session.add(batch)
    session.flush()
    session.add_all(
        PayoutItem(
            id=new_id("poi"),
            batch_id=batch_id,
            user_id=o.user_id,
            amount_minor=o.balance_minor,
            account_holder=details[o.user_id].account_holder,
            iban=details[o.user_id].iban,
        )
        for o in paid
    )
    session.flush()
    append_event(
        session,
        actor=actor,
        action="ledger.payout_batch_created",
        subject=f"payout_batch:{batch_id}",
        payload={
            "batch_id": batch_id,
            "entry_id": entry.id,
            "currency": currency,
            "items": len(paid),
            "total_minor": total,
            "skipped": len(skipped),
        },
    )
    return batch


def get_batch(session: Session, batch_id: str) -> PayoutBatch:
    batch = session.get(PayoutBatch, batch_id)
    if batch is None:
        raise NotFound("No such payout batch.", code="batch_not_found")
    return batch


def list_batches(session: Session, *, limit: int = 100) -> list[PayoutBatch]:
    """Newest first."""
    return list(
        session.scalars(
            select(PayoutBatch).order_by(PayoutBatch.created_at.desc(), PayoutBatch.id).limit(limit)
        )
    )


def batch_items(session: Session, batch_id: str) -> list[PayoutItem]:
    return list(
        session.scalars(
            select(PayoutItem).where(PayoutItem.batch_id == batch_id).order_by(PayoutItem.user_id)
        )
    )


def mark_batch_paid(session: Session, batch_id: str, *, actor: str) -> PayoutBatch:
    """The bank confirmed the transfers: Dr payout_clearing / Cr bank for the batch total."""
    batch = session.scalars(
        select(PayoutBatch).where(PayoutBatch.id == batch_id).with_for_update()
    ).first()
    if batch is None:
        raise NotFound("No such payout batch.", code="batch_not_found")
    if batch.state == BatchState.PAID:
        raise Conflict(
            f"Payout batch {batch_id} is already marked paid.", code="batch_already_paid"
        )
    entry = post_entry(
        session,
        idempotency_key=f"payout_paid:{batch_id}",
        kind=EntryKind.PAYOUT_PAID,
        description=f"Payout batch {batch_id} paid by the bank",
        lines=[
            debit(PAYOUT_CLEARING, batch.currency, batch.total_minor),
            credit(BANK, batch.currency, batch.total_minor),
        ],
        actor=actor,
        reference=batch_id,
    )
    now = utcnow()
    batch.state, batch.paid_entry_id, batch.paid_by, batch.paid_at = (
        BatchState.PAID,
        entry.id,
        actor,
        now,
    )
    session.flush()
    append_event(
        session,
        actor=actor,
        action="ledger.payout_batch_paid",
        subject=f"payout_batch:{batch_id}",
        payload={"batch_id": batch_id, "entry_id": entry.id},
    )
    return batch


@dataclass(frozen=True, slots=True)
class BatchExport:
    content: bytes
    media_type: str
    filename: str


def export_batch(
    session: Session,
    batch_id: str,
    *,
    export_format: str,
    debtor_name: str,
    debtor_iban: str | None,
    debtor_bic: str | None,
    actor: str,
) -> BatchExport:
    """The batch as CSV or as a ``pain.001.001.09`` file for the bank.

    The debtor (the platform's own account, from the settings) is checked for pain.001
    only. Each export is audited: the file holds contributors' bank details.
    """
    try:
        chosen = ExportFormat(export_format)
    except ValueError as error:
        raise InvalidInput(
            f"Export as one of: {', '.join(f.value for f in ExportFormat)}.",
            code="unknown_export_format",
            pointer="query:/format",
        ) from error
    batch = get_batch(session, batch_id)
    transfers = [
        Transfer(
            end_to_end_id=item.id,
            user_id=item.user_id,
            amount_minor=item.amount_minor,
            creditor_name=item.account_holder,
            creditor_iban=item.iban,
        )
        for item in batch_items(session, batch_id)
    ]
    if chosen == ExportFormat.CSV:
        result = BatchExport(
            content=payouts_csv(batch.id, batch.currency, transfers).encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            filename=f"{batch.id}.csv",
        )
    else:
        debtor = debtor_account(debtor_name, debtor_iban, debtor_bic)
        now = utcnow()
        result = BatchExport(
            content=pain001_xml(
                message_id=batch.id,
                created_at=now,
                execution_date=now.date(),
                currency=batch.currency,
                debtor=debtor,
                transfers=transfers,
                remittance=f"fairtrain royalties, payout {batch.id}",
            ),
            media_type="application/xml",
            filename=f"{batch.id}.pain001.xml",
        )
    append_event(
        session,
        actor=actor,
        action="ledger.payout_batch_exported",
        subject=f"payout_batch:{batch.id}",
        payload={"batch_id": batch.id, "format": chosen.value},
    )
    return result
