"""Royalties: how a sale's contributor pool is shared out, to the cent.

``split`` uses the largest-remainder (Hamilton) method: each contributor first gets the
floor of their exact quota ``pool × weight / total weight``; the cents left over (fewer
than the number of contributors) go one each to the largest remainders, ties broken by
key so the same input always gives the same split. No cent is lost or invented, every
share is within one cent of its exact quota, and a larger weight never gets less.

Quotas are computed with exact fractions: weights may be ``Decimal`` (minutes of audio)
and a float would lose cents on large pools.

``contribution_units`` turns an asset into its weight, by a per-modality unit table
(``settings.contribution_units``, ``FAIRTRAIN_CONTRIBUTION_UNITS``).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction

from fairtrain.config import DEFAULT_CONTRIBUTION_UNITS, ContributionUnit
from fairtrain.errors import InvalidInput

__all__ = ["contribution_units", "split"]

_SECONDS_PER_MINUTE = Decimal(60)


def _exact_weight(key: str, weight: int | Decimal) -> Fraction:
    # bool is an int; a float would carry binary noise into the quota: both refused.
    if isinstance(weight, bool) or not isinstance(weight, int | Decimal):
        raise InvalidInput(
            f"The weight of {key!r} must be an integer or a Decimal, not {type(weight).__name__}.",
            code="invalid_weight",
            pointer=f"/weights/{key}",
        )
    if isinstance(weight, Decimal) and not weight.is_finite():
        raise InvalidInput(
            f"The weight of {key!r} must be a finite number.",
            code="invalid_weight",
            pointer=f"/weights/{key}",
        )
    exact = Fraction(weight)
    if exact <= 0:
        raise InvalidInput(
            f"The weight of {key!r} must be positive; leave out who contributed nothing.",
            code="invalid_weight",
            pointer=f"/weights/{key}",
        )
    return exact


def split(pool_minor: int, weights: Mapping[str, int | Decimal]) -> dict[str, int]:
    """Share ``pool_minor`` between the keys of ``weights`` in proportion to their weights.

    Returns every key with its share in minor units; the shares always sum to the pool.
    """
    if isinstance(pool_minor, bool) or not isinstance(pool_minor, int) or pool_minor < 0:
        raise InvalidInput(
            "The pool must be a whole, non-negative number of minor units.",
            code="invalid_pool",
            pointer="/pool_minor",
        )
    if not weights:
        raise InvalidInput(
            "There is nobody to share the pool between.", code="no_weights", pointer="/weights"
        )
    exact = {key: _exact_weight(key, weight) for key, weight in weights.items()}
    total = sum(exact.values(), Fraction(0))
    shares: dict[str, int] = {}
    remainders: list[tuple[Fraction, str]] = []
    for key, weight in exact.items():
        quota = pool_minor * weight / total
        floor = quota.numerator // quota.denominator
        shares[key] = floor
        remainders.append((quota - floor, key))
    left = pool_minor - sum(shares.values())
    # Largest remainder first; equal remainders in key order (deterministic, input-order free).
    remainders.sort(key=lambda item: (-item[0], item[1]))
    for _, key in remainders[:left]:
        shares[key] += 1
    return {key: shares[key] for key in sorted(shares)}


def contribution_units(
    modality: str,
    duration_seconds: float | Decimal | None = None,
    message_count: int | None = None,
    page_count: int | None = None,
    *,
    units: Mapping[str, ContributionUnit] = DEFAULT_CONTRIBUTION_UNITS,
) -> Decimal:
    """How much one asset weighs in a split: minutes, items, messages or pages.

    ``units`` is the per-modality table (pass ``settings.contribution_units``). The
    measure the unit needs must be given: a recording's duration, a chat's count of the
    contributor's own messages, a document's pages.
    """
    unit = units.get(modality)
    if unit is None:
        raise InvalidInput(
            f"No contribution unit is configured for {modality!r}.",
            code="unknown_modality",
            pointer="/modality",
        )
    if unit == ContributionUnit.ITEMS:
        return Decimal(1)
    if unit == ContributionUnit.MINUTES:
        if duration_seconds is None or isinstance(duration_seconds, bool):
            raise _missing(modality, "duration_seconds")
        # str() keeps a float's shortest repr (12.3, not 12.2999999999999998...).
        seconds = Decimal(str(duration_seconds))
        if not seconds.is_finite() or seconds < 0:
            raise _negative(modality, "duration_seconds")
        return seconds / _SECONDS_PER_MINUTE
    count = message_count if unit == ContributionUnit.MESSAGES else page_count
    name = "message_count" if unit == ContributionUnit.MESSAGES else "page_count"
    if count is None or isinstance(count, bool):
        raise _missing(modality, name)
    if count < 0:
        raise _negative(modality, name)
    return Decimal(count)


def _missing(modality: str, measure: str) -> InvalidInput:
    return InvalidInput(
        f"A {modality} asset is weighed by {measure}, which was not given.",
        code="missing_measure",
        pointer=f"/{measure}",
    )


def _negative(modality: str, measure: str) -> InvalidInput:
    return InvalidInput(
        f"The {measure} of a {modality} asset cannot be negative.",
        code="invalid_measure",
        pointer=f"/{measure}",
    )
