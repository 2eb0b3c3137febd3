"""The evaluator's semantics and its safety properties; parse errors name their path."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairtrain.consent import purposes
from fairtrain.consent.compile import compile_policy, permits_purpose
from fairtrain.consent.evaluate import Request, evaluate
from fairtrain.consent.odrl import (
    Constraint,
    Policy,
    PolicyError,
    Rule,
    parse_policy,
    serialise_policy,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
KEYS = sorted(purposes.PURPOSES)


def permission(*constraints: Constraint, actions: tuple[str, ...] = ("use",)) -> Rule:
    return Rule("https://x/u#p", "permission", actions, None, None, tuple(constraints))


def prohibition(*banned: str) -> Rule:
    return Rule("https://x/u#x", "prohibition", ("use",), None, None,
                (Constraint("purpose", "isAnyOf", tuple(banned)),))  # fmt: skip


def policy(*rules: Rule, exclusive: bool = False) -> Policy:
    return Policy(
        "https://x/u",
        "Set",
        tuple(r for r in rules if r.kind == "permission"),
        tuple(r for r in rules if r.kind == "prohibition"),
        exclusive=exclusive,
    )


def purpose(*keys: str) -> Constraint:
    return Constraint("purpose", "isAnyOf", keys)


def ask(p: Policy, **fields: Any) -> str:
    return evaluate(p, Request(at=NOW, **fields)).outcome


def test_a_broad_permission_covers_narrower_purposes() -> None:
    p = policy(permission(purpose("model_training")))
    assert ask(p, purpose="speech_recognition") == "permit"
    assert ask(p, purpose="voice_cloning") == "permit"
    assert ask(p, purpose="advertising") == "deny"
    assert ask(p, purpose="research_and_development") == "deny"  # broader than allowed


def test_a_prohibition_overrides_and_reaches_down_and_up() -> None:
    p = policy(permission(purpose("any")), prohibition("speech_synthesis"))
    assert ask(p, purpose="voice_cloning") == "deny"  # narrower than the prohibited
    decision = evaluate(p, Request(at=NOW, purpose="model_training"))  # broader
    assert decision.outcome == "deny" and decision.rule == "https://x/u#x"
    assert "narrower purpose" in decision.reason
    assert ask(p, purpose="speech_recognition") == "permit"  # a sibling


def test_territory_term_and_price() -> None:
    p = policy(
        Rule(
            "https://x/u#p",
            "permission",
            ("use",),
            None,
            None,
            (
                purpose("any"),
                Constraint("spatial", "isAnyOf", ("EEA",)),
                Constraint("dateTime", "lt", (NOW + timedelta(days=30),)),
            ),
            (
                Rule(
                    "https://x/u#d",
                    "duty",
                    ("compensate",),
                    None,
                    None,
                    (Constraint("payAmount", "eq", (Decimal("2.00"),), "EUR"),),
                ),
            ),
        )
    )
    paid = {"pay_amount": Decimal("2.00"), "currency": "EUR"}
    assert ask(p, purpose="academic_research", territory="NO", **paid) == "permit"
    assert ask(p, purpose="academic_research", territory="US", **paid) == "deny"
    assert ask(p, purpose="academic_research", territory="DE") == "deny"  # no offer
    cheap = {"pay_amount": Decimal("1.99"), "currency": "EUR"}
    assert ask(p, purpose="academic_research", territory="DE", **cheap) == "deny"
    dollars = {"pay_amount": Decimal("9"), "currency": "USD"}
    assert ask(p, purpose="academic_research", territory="DE", **dollars) == "deny"
    late = Request(at=NOW + timedelta(days=31), purpose="academic_research", territory="DE",
                   pay_amount=Decimal("2.00"), currency="EUR")  # fmt: skip
    assert evaluate(p, late).outcome == "deny"


def test_exclusive_sublicensing_and_not_applicable() -> None:
    p = policy(permission(purpose("any")))
    assert evaluate(p, Request(at=NOW, purpose="academic_research", exclusive=True)).outcome == (
        "deny"
    )
    assert ask(p, purpose="academic_research", sublicense=True) == "deny"
    with_grant = policy(permission(purpose("any"), actions=("use", "grantUse")))
    assert ask(with_grant, purpose="academic_research", sublicense=True) == "permit"
    reading_only = policy(permission(purpose("any"), actions=("read",)))
    assert ask(reading_only, action="distribute", purpose="academic_research") == ("not_applicable")


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    allowed = draw(st.sets(st.sampled_from(KEYS), min_size=1, max_size=3))
    banned = draw(st.sets(st.sampled_from(KEYS), max_size=3))
    places = draw(st.sets(st.sampled_from(["DE", "FR", "US", "EU"]), max_size=2))
    constraints = [purpose(*sorted(allowed))]
    if places:
        constraints.append(Constraint("spatial", "isAnyOf", tuple(sorted(places))))
    rules = [permission(*constraints)]
    if banned:
        rules.append(prohibition(*sorted(banned)))
    return policy(*rules)


requests = st.builds(
    Request,
    purpose=st.sampled_from(KEYS),
    territory=st.sampled_from(["DE", "FR", "US", "JP"]),
    at=st.just(NOW),
)


@settings(max_examples=300, deadline=None)
@given(p=policies(), request=requests, extra=st.sets(st.sampled_from(KEYS), min_size=1))
def test_adding_a_prohibition_never_permits_more(
    p: Policy, request: Request, extra: set[str]
) -> None:
    stricter = replace(p, prohibitions=(*p.prohibitions, prohibition(*sorted(extra))))
    if not evaluate(p, request).permitted:
        assert not evaluate(stricter, request).permitted


@settings(max_examples=300, deadline=None)
@given(p=policies(), request=requests, data=st.data())
def test_narrowing_a_permission_never_permits_more(
    p: Policy, request: Request, data: st.DataObject
) -> None:
    rule = p.permissions[0]
    allowed = rule.constraints[0].values
    narrowed_to = tuple(
        data.draw(st.sampled_from(sorted(purposes.descendants(key)))) for key in allowed
    )
    constraints = (purpose(*narrowed_to), *rule.constraints[1:])
    narrower = replace(p, permissions=(replace(rule, constraints=constraints),))
    if not evaluate(p, request).permitted:
        assert not evaluate(narrower, request).permitted


@settings(max_examples=300, deadline=None)
@given(p=policies(), request=requests)
def test_the_compiled_form_decides_like_the_evaluator(p: Policy, request: Request) -> None:
    compiled = compile_policy(p)
    assert compiled.exact
    assert request.purpose is not None
    expected = evaluate(p, request).permitted
    assert permits_purpose(compiled, request.purpose, request.territory, request.at) == expected


@settings(max_examples=100, deadline=None)
@given(p=policies())
def test_serialising_and_parsing_round_trips(p: Policy) -> None:
    assert parse_policy(serialise_policy(p)) == p


CONTEXT = "http://www.w3.org/ns/odrl.jsonld"


def doc(**fields: Any) -> dict[str, Any]:
    return {"@context": CONTEXT, "uid": "https://ex.org/p", "type": "Set", **fields}


@pytest.mark.parametrize(
    ("document", "code", "path"),
    [
        ("{not json", "invalid_jsonld", ""),
        ({"uid": "x", "type": "Set"}, "invalid_jsonld", "@context"),
        (doc(**{"@context": "https://evil.example/c"}), "invalid_jsonld", "@context"),
        ({"@context": CONTEXT, "type": "Set", "permission": [{"action": "use"}]},
         "invalid_policy", "uid"),
        (doc(permission=[{"action": "teleport"}]), "unknown_action", "permission[0].action[0]"),
        (doc(permission=[{"action": "use", "constraint": [
            {"leftOperand": "purpose", "operator": "isA", "rightOperand": "dpv:Nope"}]}]),
         "unknown_purpose", "permission[0].constraint[0].rightOperand"),
        (doc(permission=[{"action": "use", "constraint": [
            {"leftOperand": "media", "operator": "eq", "rightOperand": "x"}]}]),
         "unsupported_constraint", "permission[0].constraint[0].leftOperand"),
        (doc(permission=[{"action": "use", "constraint": [
            {"leftOperand": "spatial", "operator": "eq", "rightOperand": "Narnia"}]}]),
         "invalid_policy", "permission[0].constraint[0].rightOperand"),
        (doc(permission=[{"action": "use", "constraint": [
            {"leftOperand": "dateTime", "operator": "lt", "rightOperand": "soon"}]}]),
         "invalid_policy", "permission[0].constraint[0].rightOperand"),
        (doc(permission=[{"action": "use", "duty": [{"action": "compensate", "constraint": [
            {"leftOperand": "payAmount", "operator": "eq", "rightOperand": "-1",
             "unit": "EUR"}]}]}]),
         "invalid_policy", "permission[0].duty[0].constraint[0].rightOperand"),
        (doc(permission=[{"action": "use", "duty": [{"action": "compensate", "constraint": [
            {"leftOperand": "payAmount", "operator": "eq", "rightOperand": "1"}]}]}]),
         "invalid_policy", "permission[0].duty[0].constraint[0].unit"),
        (doc(), "invalid_policy", ""),
    ],
)  # fmt: skip
def test_bad_policies_name_the_path(document: Any, code: str, path: str) -> None:
    with pytest.raises(PolicyError) as raised:
        parse_policy(document)
    assert raised.value.code == code, raised.value.detail
    assert raised.value.path == path, raised.value.detail
