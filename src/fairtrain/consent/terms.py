"""The main terms as a contributor edits them in a form, turned into an ODRL policy.

Templates fix everything but the price; here the contributor chooses the purposes they
allow and prohibit (from the taxonomy), where buyers may be, how long a licence lasts,
the price per licence, whether buyers must credit them, and optionally the date their
consent ends. Licences are always non-exclusive and never sublicensable from this form:
those stay a matter for a hand-written policy. Pure: no database, no settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from fairtrain.consent import purposes
from fairtrain.consent.odrl import Constraint, Policy, PolicyError, Rule, serialise_policy

__all__ = ["MAX_TERM_MONTHS", "MainTerms", "build_terms", "terms_document"]

MAX_TERM_MONTHS = 120  # ten years: longer licences are a hand-written policy's business


@dataclass(frozen=True, slots=True)
class MainTerms:
    allowed: tuple[str, ...]  # purpose keys a licence may be for (and anything narrower)
    prohibited: tuple[str, ...] = ()  # purpose keys never allowed (and anything narrower)
    territories: tuple[str, ...] = ()  # ISO 3166 codes, EU or EEA; empty: anywhere
    term_months: int = 12  # how long one licence lasts
    price: Decimal = Decimal("1.00")  # per licence, in ``currency``; 0 with attribution only
    currency: str = "EUR"
    attribution: bool = False  # buyers must credit the contributor
    ends_at: datetime | None = None  # the consent itself ends then (no new licences after)


def _days(months: int) -> int:
    return (months * 365) // 12  # as ODRL durations read P12M (consent.odrl)


def build_terms(terms: MainTerms, *, uid: str, target: str | None) -> Policy:
    """The policy for these terms; each mistake is a :class:`PolicyError` naming its field."""
    if not terms.allowed:
        raise PolicyError("allowed", "choose at least one purpose buyers may use this for")
    for field, keys in (("allowed", terms.allowed), ("prohibited", terms.prohibited)):
        for key in keys:
            if key not in purposes.PURPOSES:
                raise PolicyError(field, f"'{key}' is not a purpose this platform knows",
                                  code="unknown_purpose")  # fmt: skip
    both = sorted(set(terms.allowed) & set(terms.prohibited))
    if both:
        label = purposes.PURPOSES[both[0]].label
        raise PolicyError(
            "prohibited", f"{label} is both allowed and prohibited; say which you mean",
            code="contradictory_rules",
        )  # fmt: skip
    if not 1 <= terms.term_months <= MAX_TERM_MONTHS:
        raise PolicyError("term_months", f"a licence lasts 1 to {MAX_TERM_MONTHS} months")
    if terms.price < 0:
        raise PolicyError("price", "a price cannot be negative")
    if terms.price == 0 and not terms.attribution:
        raise PolicyError(
            "price", "free terms need attribution (buyers credit you); otherwise set a price"
        )
    codes = tuple(dict.fromkeys(t.strip().upper() for t in terms.territories if t.strip()))
    for code in codes:
        if not (len(code) == 2 and code.isalpha()) and code not in ("EU", "EEA"):
            raise PolicyError("territories", f"{code!r} is not an ISO 3166 country code, EU or EEA")
    base = "permission[0].constraint"
    constraints = [Constraint("purpose", "isAnyOf", tuple(terms.allowed), None, f"{base}[0]")]
    constraints.append(
        Constraint("elapsedTime", "lteq", (_days(terms.term_months),), None, f"{base}[1]")
    )
    if codes:
        constraints.append(Constraint("spatial", "isAnyOf", codes, None, f"{base}[2]"))
    if terms.ends_at is not None:
        # Whole seconds, as the ODRL document writes it, so the compiled end is the same.
        ends = terms.ends_at.replace(microsecond=0)
        constraints.append(
            Constraint("dateTime", "lteq", (ends,), None, f"{base}[{len(constraints)}]")
        )
    duties: list[Rule] = []
    if terms.price > 0:
        duties.append(
            Rule(
                uid=f"{uid}#duty-pay",
                kind="duty",
                actions=("compensate",),
                target=None,
                assignee=None,
                constraints=(
                    Constraint(
                        "payAmount",
                        "eq",
                        (terms.price,),
                        terms.currency.upper(),
                        "permission[0].duty[0].constraint[0]",
                    ),
                ),
                path="permission[0].duty[0]",
            )
        )
    if terms.attribution:
        duties.append(
            Rule(
                uid=f"{uid}#duty-attribute",
                kind="duty",
                actions=("attribute",),
                target=None,
                assignee=None,
                constraints=(),
                path=f"permission[0].duty[{len(duties)}]",
            )
        )
    permission = Rule(
        uid=f"{uid}#permission-use",
        kind="permission",
        actions=("use",),
        target=target,
        assignee=None,
        constraints=tuple(constraints),
        duties=tuple(duties),
        path="permission[0]",
    )
    prohibitions: tuple[Rule, ...] = ()
    if terms.prohibited:
        prohibitions = (
            Rule(
                uid=f"{uid}#prohibition-purposes",
                kind="prohibition",
                actions=("use",),
                target=target,
                assignee=None,
                constraints=(
                    Constraint(
                        "purpose",
                        "isAnyOf",
                        tuple(terms.prohibited),
                        None,
                        "prohibition[0].constraint[0]",
                    ),
                ),
                path="prohibition[0]",
            ),
        )
    return Policy(
        uid=uid,
        type="Set",
        permissions=(permission,),
        prohibitions=prohibitions,
        target=target,
        exclusive=False,
    )


def terms_document(terms: MainTerms, *, uid: str, target: str | None) -> dict[str, object]:
    """The ODRL JSON-LD document of these terms (what ``set_policy`` stores)."""
    return serialise_policy(build_terms(terms, uid=uid, target=target))
