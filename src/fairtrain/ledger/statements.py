"""A contributor's statement: every line on their payable account, as values and as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from fairtrain.ledger.models import EntryKind
from fairtrain.ledger.payouts import csv_cell
from fairtrain.money import major_text

__all__ = ["StatementLine", "statement_csv"]


@dataclass(frozen=True, slots=True)
class StatementLine:
    posted_at: datetime
    entry_id: str
    kind: EntryKind
    description: str
    currency: str
    amount_minor: int  # positive: earned; negative: paid out (or reversed)
    balance_minor: int  # what the platform owes after this line, in this currency


def statement_csv(lines: Sequence[StatementLine]) -> str:
    """Date, entry, description, currency, amount and running balance, oldest first."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        [
            "posted_at",
            "entry_id",
            "kind",
            "description",
            "currency",
            "amount",
            "balance",
            "amount_minor",
            "balance_minor",
        ]
    )
    for line in lines:
        writer.writerow(
            [
                line.posted_at.isoformat(),
                line.entry_id,
                line.kind.value,
                csv_cell(line.description),
                line.currency,
                major_text(line.amount_minor, line.currency),
                major_text(line.balance_minor, line.currency),
                str(line.amount_minor),
                str(line.balance_minor),
            ]
        )
    return out.getvalue()
