"""Does a policy allow this request? Pure functions: a decision, the rule that decided it,
and a sentence a person can read.

Order of decision (ODRL 2.2 with the platform's purpose semantics):

1. A **prohibition** that applies to the request denies it, whatever is permitted.
   Purposes are compared by the tree in :mod:`fairtrain.consent.purposes`: a prohibition
   of a purpose applies to every narrower purpose, and also to a request for a broader
   one (a request for "model training" could be used for the prohibited "voice
   cloning", so it is refused with a sentence asking for the narrower purpose).
   A prohibition constraint the request says nothing about (no territory given) is
   taken to hold: unknown never unlocks anything.
2. A **permission** whose action covers the request's, whose target and assignee match,
   whose constraints all hold and whose duties can be met (a ``compensate`` duty is met
   by an offered price at least the asked ``payAmount`` in the same currency) permits.
3. Otherwise: **deny**, naming the closest permission and the first constraint that
   failed, when a permission addressed this action and target; **not applicable** when
   no rule did.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fairtrain.consent import purposes
from fairtrain.consent.odrl import ACTIONS, Condition, Constraint, LogicalConstraint, Policy, Rule

__all__ = [
    "EEA",
    "EU",
    "Decision",
    "Request",
    "RuleReport",
    "action_covers",
    "evaluate",
    "rule_reports",
]

EU = frozenset(
    {
        *("AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "IE", "IT"),
        *("LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "HU"),
    }
)
EEA = EU | {"IS", "LI", "NO"}
PERMIT, DENY, NOT_APPLICABLE = "permit", "deny", "not_applicable"


@dataclass(frozen=True, slots=True)
class Request:
    """What a buyer asks to do (all optional but the action)."""

    action: str = "use"
    purpose: str | None = None  # a purpose key
    territory: str | None = None  # ISO 3166-1 alpha-2
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    assignee: str | None = None  # the buyer organisation's IRI
    target: str | None = None  # the asset's IRI
    recipient: str | None = None
    count: int = 1  # uses including this one
    pay_amount: Decimal | None = None  # offered price per unit
    currency: str | None = None
    licence_start: datetime | None = None  # for elapsedTime (default: now, a new licence)
    sublicense: bool = False
    exclusive: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: str  # permit | deny | not_applicable
    reason: str
    rule: str | None = None  # the deciding rule's uid
    rule_path: str | None = None  # where it is in the policy, e.g. "prohibition[0]"
    duties: tuple[str, ...] = ()  # what the licensee must do, in words

    @property
    def permitted(self) -> bool:
        return self.outcome == PERMIT

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "reason": self.reason,
            "rule": self.rule,
            "rule_path": self.rule_path,
            "duties": list(self.duties),
        }


@dataclass(frozen=True, slots=True)
class RuleReport:
    """Whether one rule is active for a request (ODRL compliance-report style)."""

    rule: str
    kind: str
    active: bool
    failed: str | None  # the first reason it is not active


def action_covers(rule_action: str, requested: str) -> bool:
    """ODRL's includedIn: a rule on ``use`` covers ``read``; a rule on ``read`` not ``use``."""
    current: str | None = requested
    while current is not None:
        if current == rule_action:
            return True
        current = ACTIONS.get(current)
    return False


def _territories(values: Iterable[Any]) -> frozenset[str] | None:
    """None means anywhere."""
    found: set[str] = set()
    for value in values:
        if value == "WORLD":
            return None
        found |= EU if value == "EU" else EEA if value == "EEA" else {value}
    return frozenset(found)


def _compare(operator: str, left: Any, right: Any) -> bool:
    match operator:
        case "eq":
            return bool(left == right)
        case "neq":
            return bool(left != right)
        case "lt":
            return bool(left < right)
        case "lteq":
            return bool(left <= right)
        case "gt":
            return bool(left > right)
        case "gteq":
            return bool(left >= right)
    raise ValueError(operator)


# A constraint's outcome: True/False, or None when the request does not say.
Outcome = bool | None


def _purpose(constraint: Constraint, request: Request, prohibiting: bool) -> Outcome:
    if request.purpose is None:
        return None
    wanted = purposes.descendants(request.purpose)
    named = frozenset().union(*(purposes.descendants(v) for v in constraint.values))
    if constraint.operator in ("isNoneOf", "neq"):
        if prohibiting:
            # "Prohibited for every purpose but these": refused as soon as the request
            # could serve anything outside them (a broader request included).
            return bool(wanted - named)
        return not (wanted & named)
    if prohibiting:
        return bool(wanted & named)  # narrower, equal or broader: all refused
    return request.purpose in named


def _spatial(constraint: Constraint, request: Request) -> Outcome:
    if request.territory is None:
        return None
    allowed = _territories(constraint.values)
    inside = allowed is None or request.territory.upper() in allowed
    return not inside if constraint.operator in ("isNoneOf", "neq") else inside


def _scalar(constraint: Constraint, request: Request) -> Outcome:
    left: Any
    match constraint.left:
        case "dateTime":
            left = request.at
        case "elapsedTime":
            start = request.licence_start or request.at
            left = (request.at - start).days
        case "count":
            left = Decimal(request.count)
        case "payAmount":
            if request.pay_amount is None:
                return None
            if (request.currency or "").upper() != (constraint.unit or "").upper():
                return False
            # An offer meets an asked price when it is at least that price.
            operator = "gteq" if constraint.operator == "eq" else constraint.operator
            return _compare(operator, request.pay_amount, constraint.values[0])
        case "recipient":
            who = request.recipient or request.assignee
            if who is None:
                return None
            inside = who in constraint.values
            return not inside if constraint.operator in ("isNoneOf", "neq") else inside
        case _:
            return None
    if constraint.operator in ("isAnyOf", "isA", "isPartOf"):
        return left in constraint.values
    if constraint.operator == "isNoneOf":
        return left not in constraint.values
    return _compare(constraint.operator, left, constraint.values[0])


def _holds(condition: Condition, request: Request, prohibiting: bool) -> Outcome:
    if isinstance(condition, LogicalConstraint):
        outcomes = [_holds(c, request, prohibiting) for c in condition.items]
        if condition.operator in ("and", "andSequence"):
            if any(o is False for o in outcomes):
                return False
            return None if any(o is None for o in outcomes) else True
        if condition.operator == "or":
            if any(o is True for o in outcomes):
                return True
            return None if any(o is None for o in outcomes) else False
        # xone: exactly one holds
        if any(o is None for o in outcomes):
            return None
        return sum(1 for o in outcomes if o) == 1
    if condition.left == "purpose":
        return _purpose(condition, request, prohibiting)
    if condition.left == "spatial":
        return _spatial(condition, request)
    return _scalar(condition, request)


def _describe(condition: Condition) -> str:
    if isinstance(condition, LogicalConstraint):
        joiner = {"or": " or ", "xone": " or (only one) "}.get(condition.operator, " and ")
        return "(" + joiner.join(_describe(c) for c in condition.items) + ")"
    values = ", ".join(
        purposes.PURPOSES[v].label if condition.left == "purpose" else str(v)
        for v in condition.values
    )
    unit = f" {condition.unit}" if condition.unit else ""
    return f"{condition.left} {condition.operator} {values}{unit}"


def _addresses(
    rule: Rule,
    request: Request,
    action: str,
    part_of: dict[str, frozenset[str]] | None = None,
) -> str | None:
    """None when the rule is about this request's action, target and party; else why not.

    ``part_of`` names the collections (ODRL AssetCollection, PartyCollection) each asset
    or party belongs to, so a rule for a collection is about its members too.
    """
    memberships = part_of or {}
    if not any(action_covers(a, action) for a in rule.actions):
        return f"it is about {', '.join(rule.actions)}, not {action}"
    if (
        rule.target
        and request.target
        and rule.target != request.target
        and rule.target not in memberships.get(request.target, frozenset())
    ):
        return "it is about another asset"
    if rule.assignee:
        if request.assignee is None:
            # Unknown never unlocks anything: a prohibition for a named party holds for a
            # request that does not say who asks; a permission for one does not.
            if rule.kind != "prohibition":
                return "it is for a named party and the request does not say who asks"
        elif rule.assignee != request.assignee and rule.assignee not in memberships.get(
            request.assignee, frozenset()
        ):
            return "it is for another party"
    return None


def _first_failure(
    rule: Rule,
    request: Request,
    prohibiting: bool,
    violated: frozenset[str] = frozenset(),
) -> str | None:
    """None when the rule's constraints hold and its duties can be met; else the first miss.

    ``violated`` holds the uids of duties known to be violated (ODRL: a permission with a
    violated duty is not active; a duty not yet performed does not stop it).
    """
    for condition in rule.constraints:
        outcome = _holds(condition, request, prohibiting)
        if outcome is False or (outcome is None and not prohibiting):
            missing = " (the request does not say)" if outcome is None else ""
            return f"the condition {_describe(condition)} is not met{missing}"
    if not prohibiting:
        for duty in rule.duties:
            if duty.uid in violated:
                return f"the duty to {', '.join(duty.actions)} has been violated"
            for condition in duty.constraints:
                outcome = _holds(condition, request, False)
                if outcome is not True:
                    return (
                        f"the duty to {', '.join(duty.actions)} ({_describe(condition)}) is not met"
                    )
    return None


def _duty_words(rule: Rule) -> tuple[str, ...]:
    words = []
    for duty in rule.duties:
        detail = "; ".join(_describe(c) for c in duty.constraints)
        words.append(f"{', '.join(duty.actions)}" + (f" ({detail})" if detail else ""))
    return tuple(words)


def rule_reports(
    policy: Policy,
    request: Request,
    *,
    part_of: dict[str, frozenset[str]] | None = None,
    violated_duties: frozenset[str] = frozenset(),
) -> list[RuleReport]:
    """Every rule with whether it is active for the request (prohibitions included).

    The state of the world beyond the request can be given: ``part_of`` maps an asset or
    party IRI to the collections it belongs to, ``violated_duties`` names duties known
    to be violated.
    """
    reports = []
    for rule in policy.rules:
        prohibiting = rule.kind == "prohibition"
        why_not = _addresses(rule, request, request.action, part_of) or _first_failure(
            rule, request, prohibiting, violated_duties
        )
        reports.append(RuleReport(rule.uid, rule.kind, why_not is None, why_not))
    return reports


def _decide_action(policy: Policy, request: Request, action: str) -> Decision:
    for rule in policy.prohibitions:
        if (
            _addresses(rule, request, action) is None
            and _first_failure(rule, request, True) is None
        ):
            return Decision(
                DENY,
                _prohibited_sentence(rule, request),
                rule=rule.uid,
                rule_path=rule.path,
            )
    closest: tuple[Rule, str] | None = None
    for rule in policy.permissions:
        if _addresses(rule, request, action) is not None:
            continue
        failure = _first_failure(rule, request, False)
        if failure is None:
            return Decision(
                PERMIT,
                f"Permitted by {rule.path}: {action} "
                + (
                    f"for {_lower(purposes.PURPOSES[request.purpose].label)} "
                    if request.purpose
                    else ""
                )
                + "is allowed under these terms.",
                rule=rule.uid,
                rule_path=rule.path,
                duties=_duty_words(rule),
            )
        closest = closest or (rule, failure)
    if closest is not None:
        rule, failure = closest
        return Decision(
            DENY,
            f"Not permitted under {rule.path}: {failure}.",
            rule=rule.uid,
            rule_path=rule.path,
        )
    return Decision(NOT_APPLICABLE, f"No rule of this policy is about {action} by this party.")


def _prohibited_sentence(rule: Rule, request: Request) -> str:
    purpose_constraints = [
        c for c in rule.constraints if isinstance(c, Constraint) and c.left == "purpose"
    ]
    exempting = [c for c in purpose_constraints if c.operator in ("isNoneOf", "neq")]
    if request.purpose and exempting:
        allowed = _and(_lower(purposes.PURPOSES[v].label) for c in exempting for v in c.values)
        return f"Denied by {rule.path}: the owner allows only {allowed}."
    if request.purpose and purpose_constraints:
        asked = purposes.PURPOSES[request.purpose]
        banned = {v for c in purpose_constraints for v in c.values}
        covering = [b for b in banned if request.purpose in purposes.descendants(b)]
        if covering:
            names = _and(_lower(purposes.PURPOSES[b].label) for b in sorted(covering))
            return f"Denied by {rule.path}: the owner prohibits {names}."
        inside = sorted(b for b in banned if b in purposes.descendants(request.purpose))
        names = _and(_lower(purposes.PURPOSES[b].label) for b in inside)
        return (
            f"Denied by {rule.path}: {_lower(asked.label)} would include {names}, which the "
            "owner prohibits; declare a narrower purpose."
        )
    return f"Denied by {rule.path}: the owner prohibits {', '.join(rule.actions)} here."


def _lower(label: str) -> str:
    """Lower-case a label for mid-sentence use, keeping acronyms ("AI model training")."""
    return label if label[:2].isupper() else label[:1].lower() + label[1:]


def _and(words: Iterable[str]) -> str:
    items = list(words)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def evaluate(policy: Policy, request: Request) -> Decision:
    """The decision for one request, with the deciding rule and a sentence."""
    if request.exclusive and not policy.exclusive:
        return Decision(DENY, "The owner does not offer exclusive licences for this asset.")
    decision = _decide_action(policy, request, request.action)
    if decision.permitted and request.sublicense:
        sub = _decide_action(policy, request, "grantUse")
        if not sub.permitted:
            return Decision(
                DENY,
                "Sublicensing is not allowed: the owner did not grant the right to pass this "
                "licence on.",
                rule=sub.rule,
                rule_path=sub.rule_path,
            )
    return decision
