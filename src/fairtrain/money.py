"""Money: integer minor units with an ISO 4217 currency, everywhere.

Amounts cross the API as integers of the currency's minor unit (cents); ``Decimal`` major
units appear only where a person reads or types a price, and in ODRL ``payAmount``.
There is no conversion between currencies anywhere: a sum of two currencies is refused.
"""

from __future__ import annotations

from decimal import Decimal

from fairtrain.errors import InvalidInput

__all__ = [
    "CURRENCIES",
    "ZERO_DECIMAL",
    "check_currency",
    "format_money",
    "major_text",
    "minor_exponent",
    "to_major",
    "to_minor",
]

# ISO 4217 currencies without minor units; every other accepted currency has two.
ZERO_DECIMAL = frozenset({"JPY", "KRW", "ISK", "CLP", "VND", "UGX", "XAF", "XOF", "PYG"})
CURRENCIES = frozenset(
    {"EUR", "USD", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK", "CAD", "AUD", "INR", "BRL"}
    | ZERO_DECIMAL
)


def minor_exponent(currency: str) -> int:
    return 0 if currency in ZERO_DECIMAL else 2


def check_currency(currency: str, pointer: str = "/currency") -> str:
    """The currency code, upper-cased, or a 422 naming the field."""
    code = currency.strip().upper() if isinstance(currency, str) else ""
    if code not in CURRENCIES:
        raise InvalidInput(
            f"{currency!r} is not a currency this platform prices and pays in "
            f"({', '.join(sorted(CURRENCIES))}).",
            code="unknown_currency",
            pointer=pointer,
        )
    return code


def to_minor(amount: Decimal, currency: str) -> int:
    """Major units as minor units; ``ValueError`` when the amount is finer than a cent."""
    scaled = amount.scaleb(minor_exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} {currency} has more decimals than {currency} has")
    return int(scaled)


def to_major(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-minor_exponent(currency))


def major_text(minor: int, currency: str) -> str:
    """``1234, "EUR"`` → ``"12.34"``; ``1234, "JPY"`` → ``"1234"`` (exact; what bank files
    and CSV exports print)."""
    places = minor_exponent(currency)
    return f"{to_major(minor, currency):.{places}f}"


def format_money(minor: int, currency: str) -> str:
    """'12.50 EUR', '1,500 JPY'."""
    places = minor_exponent(currency)
    return f"{to_major(minor, currency):,.{places}f} {currency}"
