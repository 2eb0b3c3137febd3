"""How a buyer pays an invoice. The embedded default is a bank transfer that an operator
confirms when it arrives; a card processor or a bank feed is another ``PaymentMethod``.

A method says what the buyer must do (``instructions``) and checks a confirmation
(``check_confirmation``: for a bank transfer, the reference of the transfer as the bank
statement shows it). Confirming is done by the licensing service, which books the
payment and grants the licence in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from fairtrain.config import Settings
from fairtrain.errors import InvalidInput
from fairtrain.money import format_money

__all__ = ["METHODS", "BankTransfer", "PaymentMethod", "method"]


class PaymentMethod(Protocol):
    @property
    def name(self) -> str: ...

    def instructions(
        self, settings: Settings, *, invoice_number: str, total_minor: int, currency: str
    ) -> dict[str, Any]: ...

    def check_confirmation(self, reference: str) -> str: ...


@dataclass(frozen=True, slots=True)
class BankTransfer:
    """Pay by bank transfer with the invoice number as the reference."""

    name: str = "bank_transfer"

    def instructions(
        self, settings: Settings, *, invoice_number: str, total_minor: int, currency: str
    ) -> dict[str, Any]:
        return {
            "method": self.name,
            "pay_to": settings.payout_debtor_name,
            "iban": settings.payout_debtor_iban,
            "bic": settings.payout_debtor_bic,
            "amount": format_money(total_minor, currency),
            "reference": invoice_number,
            "sentence": (
                f"Transfer {format_money(total_minor, currency)} to "
                f"{settings.payout_debtor_name} with the reference {invoice_number}; the "
                "licence starts when the transfer is confirmed."
            ),
        }

    def check_confirmation(self, reference: str) -> str:
        cleaned = " ".join(reference.split())
        if not 1 <= len(cleaned) <= 140:  # ISO 20022's limit for a remittance reference
            raise InvalidInput(
                "Give the transfer's reference as the bank statement shows it (1-140 characters).",
                code="invalid_payment_reference",
                pointer="/reference",
            )
        return cleaned


BANK_TRANSFER: PaymentMethod = BankTransfer()
METHODS: dict[str, PaymentMethod] = {BANK_TRANSFER.name: BANK_TRANSFER}


def method(name: str) -> PaymentMethod:
    found = METHODS.get(name)
    if found is None:
        raise InvalidInput(
            f"Pay by one of: {', '.join(sorted(METHODS))}.",
            code="unknown_payment_method",
            pointer="/payment_method",
        )
    return found
