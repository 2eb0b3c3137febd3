"""Currencies the ledger books and how their minor units read as amounts.

Amounts are always integer minor units (cents) beside an ISO 4217 code; this module is
the one place that knows how many minor units a major unit has, which exports (CSV,
pain.001) need to print ``12.34``. The accepted set is the one licence terms may be
priced in (``fairtrain.consent.service``): the platform never books what it cannot pay.
"""

from __future__ import annotations

from decimal import Decimal

from fairtrain.errors import InvalidInput

__all__ = ["CURRENCY_EXPONENTS", "major_units", "require_currency"]

# ISO 4217 minor-unit exponents of every currency the platform prices and pays in.
CURRENCY_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(
        ("EUR", "USD", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK", "CAD", "AUD", "INR"), 2
    ),
    "BRL": 2,
    **dict.fromkeys(("JPY", "KRW", "ISK", "CLP", "VND", "UGX", "XAF", "XOF", "PYG"), 0),
}


def require_currency(code: str, *, pointer: str = "currency") -> str:
    """The ISO 4217 code, upper-cased, or ``unknown_currency``."""
    normalised = code.strip().upper() if isinstance(code, str) else ""
    if normalised not in CURRENCY_EXPONENTS:
        raise InvalidInput(
            f"{code!r} is not a currency this platform books; use one of "
            f"{', '.join(sorted(CURRENCY_EXPONENTS))}.",
            code="unknown_currency",
            pointer=pointer,
        )
    return normalised


def major_units(amount_minor: int, currency: str) -> str:
    """``1234, "EUR"`` → ``"12.34"``; ``1234, "JPY"`` → ``"1234"`` (exact, never a float)."""
    exponent = CURRENCY_EXPONENTS[currency]
    value = Decimal(amount_minor).scaleb(-exponent)
    return f"{value:.{exponent}f}"
