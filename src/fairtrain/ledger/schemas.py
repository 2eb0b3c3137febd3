"""Request and response bodies of the ledger and payouts API. Money is integer minor
units beside an ISO 4217 currency; IBANs leave the server masked."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AccountBalanceOut",
    "CurrencyBalanceOut",
    "CurrencyTotalOut",
    "PayoutBatchIn",
    "PayoutBatchOut",
    "PayoutBatchSummary",
    "PayoutDetailsIn",
    "PayoutDetailsOut",
    "PayoutItemOut",
    "SkippedOut",
    "StatementLineOut",
    "StatementOut",
    "TrialBalanceOut",
]


class PayoutDetailsIn(BaseModel):
    """Where you are paid. The IBAN may be typed with spaces; it is checked (mod-97)."""

    model_config = ConfigDict(extra="forbid")

    # Generous limits here; the service refuses with a specific code and sentence.
    account_holder: str = Field(max_length=200)
    iban: str = Field(max_length=64)


class PayoutDetailsOut(BaseModel):
    account_holder: str
    iban_masked: str  # "DE** **** **** **** **30 00"
    iban_country: str
    updated_at: datetime


class StatementLineOut(BaseModel):
    posted_at: datetime
    entry_id: str
    kind: str
    description: str
    currency: str
    amount_minor: int  # positive: earned; negative: paid out
    balance_minor: int  # owed to you after this line, in its currency


class CurrencyTotalOut(BaseModel):
    currency: str
    amount_minor: int


class StatementOut(BaseModel):
    user_id: str
    lines: list[StatementLineOut]
    balances: list[CurrencyTotalOut]  # what you are owed now, per currency


class AccountBalanceOut(BaseModel):
    account: str
    kind: str
    debit_minor: int
    credit_minor: int
    balance_minor: int  # on the account's normal side


class CurrencyBalanceOut(BaseModel):
    currency: str
    debit_minor: int
    credit_minor: int
    accounts: list[AccountBalanceOut]


class TrialBalanceOut(BaseModel):
    currencies: list[CurrencyBalanceOut]


class PayoutBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    currency: str = Field(max_length=8, examples=["EUR"])


class SkippedOut(BaseModel):
    user_id: str
    balance_minor: int
    reason: str  # "below_minimum" | "no_payout_details"


class PayoutItemOut(BaseModel):
    id: str  # the transfer's EndToEndId
    user_id: str
    amount_minor: int
    account_holder: str
    iban_masked: str


class PayoutBatchSummary(BaseModel):
    id: str
    currency: str
    state: str  # "sent" | "paid"
    item_count: int
    total_minor: int
    entry_id: str
    paid_entry_id: str | None
    created_by: str
    created_at: datetime
    paid_by: str | None
    paid_at: datetime | None


class PayoutBatchOut(PayoutBatchSummary):
    items: list[PayoutItemOut]
    skipped: list[SkippedOut]
