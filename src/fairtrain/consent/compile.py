"""Policies compiled at write time to a few indexable numbers, so a dataset build can ask
"which of a million assets allow this purpose here, now?" in one indexed query.

A compiled policy holds two purpose bit masks (each closed downwards over the purpose
tree: a permitted or prohibited purpose sets its own bit and every narrower one's),
the allowed territories, the end of the term, the asked price and the flags. For the
platform's templates and every policy of the same shape (permissions and prohibitions
whose constraints are a plain AND of purpose, territory, end date, term length and a
price duty) the compiled form decides exactly like :func:`~fairtrain.consent.evaluate`
does; ``exact`` is False for anything else (an ``or``, a named assignee, a count), and
those few policies are evaluated in full after the query.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from fairtrain.consent import purposes
from fairtrain.consent.evaluate import EEA, EU
from fairtrain.consent.odrl import Condition, Constraint, Policy, Rule

__all__ = ["Compiled", "compile_policy", "permits_purpose"]

_SIMPLE = frozenset({"purpose", "spatial", "dateTime", "elapsedTime"})


@dataclass(frozen=True, slots=True)
class Compiled:
    permit_mask: int  # purposes some permission allows (closed downwards)
    ban_mask: int  # purposes some prohibition forbids (closed downwards)
    territories: frozenset[str] | None  # None: anywhere
    not_after: datetime | None  # the permission ends then
    term_days: int | None  # a licence lasts this long
    price: Decimal | None  # asked per licence, in ``currency``
    currency: str | None
    exclusive: bool
    sublicensing: bool
    exact: bool  # the compiled form decides exactly like the evaluator
    # (path, kind, purpose mask) of each simple rule, so a refusal can name the rule
    # that decided it without reading the document again.
    rules: tuple[tuple[str, str, int], ...] = ()

    def territories_text(self) -> str | None:
        """ ",DE,FR," for a LIKE '%,DE,%' match; None means anywhere."""
        return None if self.territories is None else "," + ",".join(sorted(self.territories)) + ","


def _closure(keys: set[str]) -> int:
    closed: set[str] = set()
    for key in keys:
        closed |= purposes.descendants(key)
    return purposes.mask_of(closed)


def _simple_constraints(rule: Rule) -> list[Constraint] | None:
    plain: list[Constraint] = []
    for condition in rule.constraints:
        if not isinstance(condition, Constraint) or condition.left not in _SIMPLE:
            return None
        plain.append(condition)
    return plain


def _purposes_of(constraints: list[Constraint]) -> set[str] | None:
    found = [c for c in constraints if c.left == "purpose"]
    if not found:
        return {"any"}
    if len(found) > 1 or found[0].operator not in ("eq", "isA", "isAnyOf", "isPartOf"):
        return None
    return set(found[0].values)


def _price(rule: Rule) -> tuple[Decimal | None, str | None, bool]:
    price = currency = None
    for duty in rule.duties:
        for condition in duty.constraints:
            if not isinstance(condition, Constraint) or condition.left != "payAmount":
                return None, None, False
            price, currency = condition.values[0], condition.unit
    return price, currency, True


def _territories(constraints: list[Condition]) -> tuple[frozenset[str] | None, bool]:
    allowed: frozenset[str] | None = None
    for condition in constraints:
        if not isinstance(condition, Constraint) or condition.left != "spatial":
            continue
        if condition.operator not in ("eq", "isA", "isAnyOf", "isPartOf"):
            return None, False
        codes: set[str] = set()
        for value in condition.values:
            if value == "WORLD":
                break
            codes |= EU if value == "EU" else EEA if value == "EEA" else {value}
        else:
            allowed = frozenset(codes) if allowed is None else allowed & codes
    return allowed, True


def _end(constraints: list[Constraint]) -> tuple[datetime | None, int | None, bool]:
    not_after: datetime | None = None
    days: int | None = None
    for condition in constraints:
        if condition.left == "dateTime":
            if condition.operator not in ("lt", "lteq"):
                return None, None, False
            not_after = condition.values[0]
        elif condition.left == "elapsedTime":
            if condition.operator not in ("lt", "lteq"):
                return None, None, False
            days = int(condition.values[0])
    return not_after, days, True


def compile_policy(policy: Policy) -> Compiled:
    exact = not policy.obligations
    permitted: set[str] = set()
    territories: frozenset[str] | None = None
    not_after: datetime | None = None
    term_days: int | None = None
    price: Decimal | None = None
    currency: str | None = None
    shapes: set[tuple[object, ...]] = set()
    rules: list[tuple[str, str, int]] = []
    for index, rule in enumerate(policy.permissions):
        if not any(a in ("use", "read", "reproduce", "derive") for a in rule.actions):
            continue  # e.g. a grantUse-only permission (sublicensing): a flag, below
        plain = _simple_constraints(rule)
        named = _purposes_of(plain) if plain is not None else None
        if plain is None or named is None or rule.assignee:
            exact = False
            continue
        rule_territories, ok_t = _territories(list(plain))
        rule_end, rule_days, ok_e = _end(plain)
        rule_price, rule_currency, ok_p = _price(rule)
        exact = exact and ok_t and ok_e and ok_p
        permitted |= named
        rules.append((f"permission[{index}]", "permission", _closure(named)))
        territories, not_after, term_days = rule_territories, rule_end, rule_days
        price, currency = rule_price, rule_currency
        # Several permissions with different conditions cannot share one set of columns.
        shapes.add((rule_territories, rule_end, rule_days, rule_price, rule_currency))
    if len(shapes) > 1:
        exact = False
    banned: set[str] = set()
    for index, rule in enumerate(policy.prohibitions):
        plain = _simple_constraints(rule)
        named = _purposes_of(plain) if plain is not None else None
        only_purpose = plain is not None and all(c.left == "purpose" for c in plain)
        if named is None or not only_purpose or rule.assignee or "use" not in rule.actions:
            exact = False
            continue
        banned |= named
        rules.append((f"prohibition[{index}]", "prohibition", _closure(named)))
    return Compiled(
        permit_mask=_closure(permitted),
        ban_mask=_closure(banned),
        territories=territories,
        not_after=not_after,
        term_days=term_days,
        price=price,
        currency=currency,
        exclusive=policy.exclusive,
        sublicensing=policy.sublicensing,
        exact=exact,
        rules=tuple(rules),
    )


def permits_purpose(compiled: Compiled, purpose: str, territory: str | None, at: datetime) -> bool:
    """The compiled decision (exact when ``compiled.exact``) for a purpose key."""
    node = purposes.PURPOSES[purpose]
    wanted = purposes.mask_of(purposes.descendants(purpose))
    if not compiled.permit_mask >> node.bit & 1 or compiled.ban_mask & wanted:
        return False
    if compiled.not_after is not None and at >= compiled.not_after:
        return False
    return compiled.territories is None or (
        territory is not None and territory.upper() in compiled.territories
    )
