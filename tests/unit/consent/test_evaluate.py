"""``evaluate`` decides by the platform's semantics (the top of evaluate.py), and two safety
properties hold for any policy: a prohibition never permits more, a narrower permission
never permits more."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairtrain.consent import purposes
from fairtrain.consent.evaluate import EEA, EU, Decision, Request, evaluate, rule_reports
from fairtrain.consent.odrl import Constraint, Policy, Rule, parse_policy

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
UID = "https://ex.org/policy/1"
BUYER = "https://ex.org/org/acme"
KEYS = sorted(purposes.PURPOSES)


def policy(
    permission: list[dict[str, Any]] | None = None,
    prohibition: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> Policy:
    """A policy parsed from ODRL JSON-LD, as the API receives it."""
    document: dict[str, Any] = {
        "@context": "http://www.w3.org/ns/odrl.jsonld",
        "uid": UID,
        "type": "Set",
        **fields,
    }
    if permission is not None:
        document["permission"] = permission
    if prohibition is not None:
        document["prohibition"] = prohibition
    return parse_policy(document)


def purpose(*iris: str, operator: str = "isAnyOf") -> dict[str, Any]:
    return {
        "leftOperand": "purpose",
        "operator": operator,
        "rightOperand": [{"@id": iri} for iri in iris],
    }


def spatial(*codes: str, operator: str = "isAnyOf") -> dict[str, Any]:
    return {"leftOperand": "spatial", "operator": operator, "rightOperand": list(codes)}


def rule(*constraints: dict[str, Any], action: Any = "use", **fields: Any) -> dict[str, Any]:
    return {"action": action, "constraint": list(constraints), **fields}


def price(amount: str, currency: str = "EUR") -> dict[str, Any]:
    return {
        "action": "compensate",
        "constraint": [
            {"leftOperand": "payAmount", "operator": "eq", "rightOperand": amount, "unit": currency}
        ],
    }


def decide(p: Policy, **fields: Any) -> Decision:
    return evaluate(p, Request(**{"at": NOW, **fields}))


def outcome(p: Policy, **fields: Any) -> str:
    return decide(p, **fields).outcome


# --- purposes ---------------------------------------------------------------------------


def test_a_permission_for_a_broad_purpose_covers_every_narrower_one() -> None:
    p = policy([rule(purpose("ftp:ModelTraining"))])
    for narrower in purposes.descendants("model_training"):
        assert outcome(p, purpose=narrower) == "permit", narrower


def test_a_permission_for_a_narrow_purpose_does_not_cover_a_broader_or_a_sibling() -> None:
    p = policy([rule(purpose("ai:SpeechRecognition"))])
    assert outcome(p, purpose="speech_recognition") == "permit"
    assert outcome(p, purpose="model_training") == "deny"  # broader
    assert outcome(p, purpose="speech_synthesis") == "deny"  # sibling
    assert outcome(p) == "deny"  # no purpose declared: unknown never unlocks


def test_a_prohibition_of_a_broad_purpose_forbids_every_narrower_one() -> None:
    p = policy([rule(purpose("dpv:Purpose"))], [rule(purpose("ai:SpeechSynthesis"))])
    decision = decide(p, purpose="voice_cloning")
    assert decision.outcome == "deny"
    assert decision.rule_path == "prohibition[0]"
    assert decision.reason == "Denied by prohibition[0]: the owner prohibits speech synthesis."


def test_a_request_for_a_purpose_that_contains_a_prohibited_one_asks_for_a_narrower_one() -> None:
    p = policy([rule(purpose("dpv:Purpose"))], [rule(purpose("ftp:VoiceCloning"))])
    decision = decide(p, purpose="model_training")
    assert decision.outcome == "deny"
    assert decision.rule == f"{UID}#prohibition-0"
    assert decision.reason == (
        "Denied by prohibition[0]: AI model training would include voice cloning, which the "
        "owner prohibits; declare a narrower purpose."
    )
    assert outcome(p, purpose="speech_recognition") == "permit"  # a narrower, allowed one


def test_a_prohibition_overrides_a_permission_for_the_same_purpose() -> None:
    p = policy([rule(purpose("dpv:AcademicResearch"))], [rule(purpose("dpv:AcademicResearch"))])
    assert decide(p, purpose="academic_research").rule_path == "prohibition[0]"
    assert outcome(p, purpose="academic_research") == "deny"


def test_a_prohibition_without_a_purpose_constraint_forbids_its_action_outright() -> None:
    p = policy([rule(purpose("dpv:Purpose"))], [rule(action="distribute")])
    decision = decide(p, action="distribute", purpose="academic_research")
    assert decision.outcome == "deny"
    assert decision.reason == "Denied by prohibition[0]: the owner prohibits distribute here."
    assert outcome(p, action="read", purpose="academic_research") == "permit"


# --- territory ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allowed", "country", "expected"),
    [
        ("EU", "DE", "permit"),
        ("EU", "NO", "deny"),  # in the EEA, not in the EU
        ("EEA", "NO", "permit"),
        ("EEA", "CH", "deny"),
        ("FR", "FR", "permit"),
        ("FR", "fr", "permit"),  # codes compare in capitals
        ("FR", "BE", "deny"),
        ("WORLD", "JP", "permit"),
    ],
)
def test_territories_are_countries_the_eu_the_eea_or_the_world(
    allowed: str, country: str, expected: str
) -> None:
    p = policy([rule(spatial(allowed))])
    assert outcome(p, territory=country) == expected


def test_the_eea_is_the_eu_and_three_more() -> None:
    assert len(EU) == 27
    beyond_the_eu = EEA - EU
    assert beyond_the_eu == {"IS", "LI", "NO"}


def test_a_territory_exclusion_and_an_unknown_territory() -> None:
    outside_us = policy([rule(spatial("US", operator="isNoneOf"))])
    assert outcome(outside_us, territory="DE") == "permit"
    assert outcome(outside_us, territory="US") == "deny"
    eu_only = policy([rule(spatial("EU"))])
    decision = decide(eu_only)
    assert decision.outcome == "deny"
    assert "the request does not say" in decision.reason
    # A prohibition holds where the request does not say where: unknown never unlocks.
    not_in_us = policy([rule()], [rule(spatial("US"))])
    assert outcome(not_in_us) == "deny"
    assert outcome(not_in_us, territory="DE") == "permit"


# --- time ----------------------------------------------------------------------------------


def test_a_date_time_limit() -> None:
    until = {"leftOperand": "dateTime", "operator": "lt", "rightOperand": "2027-01-01T00:00:00Z"}
    p = policy([rule(until)])
    assert outcome(p, at=datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == "permit"
    assert outcome(p, at=datetime(2027, 1, 1, tzinfo=UTC)) == "deny"
    since = {**until, "operator": "gteq"}
    assert outcome(policy([rule(since)]), at=datetime(2027, 1, 1, tzinfo=UTC)) == "permit"


def test_an_elapsed_time_term_counts_from_the_licence_start() -> None:
    term = {"leftOperand": "elapsedTime", "operator": "lteq", "rightOperand": "P30D"}
    p = policy([rule(term)])
    start = NOW - timedelta(days=30)
    assert outcome(p, licence_start=start) == "permit"
    assert outcome(p, licence_start=start - timedelta(days=1)) == "deny"
    assert outcome(p) == "permit"  # a new licence starts now


# --- price -----------------------------------------------------------------------------------


def test_a_pay_amount_duty_is_met_by_an_offer_of_at_least_the_price_in_its_currency() -> None:
    p = policy([rule(purpose("dpv:Purpose"), duty=[price("2.50")])])
    met = decide(p, purpose="academic_research", pay_amount=Decimal("2.50"), currency="EUR")
    assert met.outcome == "permit"
    assert met.duties == ("compensate (payAmount eq 2.50 EUR)",)
    more = {"pay_amount": Decimal("3"), "currency": "EUR"}
    assert outcome(p, purpose="academic_research", **more) == "permit"
    unmet = decide(p, purpose="academic_research", pay_amount=Decimal("2.49"), currency="EUR")
    assert unmet.outcome == "deny"
    assert "the duty to compensate" in unmet.reason
    dollars = {"pay_amount": Decimal("100"), "currency": "USD"}
    assert outcome(p, purpose="academic_research", **dollars) == "deny"
    assert outcome(p, purpose="academic_research") == "deny"  # no offer at all


# --- exclusivity, sublicensing, scope --------------------------------------------------------


def test_an_exclusive_licence_only_where_the_owner_offers_one() -> None:
    shared = policy([rule()])
    decision = decide(shared, exclusive=True)
    assert decision.outcome == "deny"
    assert "exclusive" in decision.reason
    assert outcome(policy([rule()], exclusive=True), exclusive=True) == "permit"
    assert outcome(policy([rule()], exclusive=True)) == "permit"  # a shared one too


def test_sublicensing_needs_grant_use_by_name() -> None:
    plain = policy([rule(purpose("dpv:Purpose"))])
    assert not plain.sublicensing
    decision = decide(plain, purpose="academic_research", sublicense=True)
    assert decision.outcome == "deny"
    assert decision.reason.startswith("Sublicensing is not allowed")
    granted = policy([rule(purpose("dpv:Purpose"), action=["use", "grantUse"])])
    assert granted.sublicensing
    assert outcome(granted, purpose="academic_research", sublicense=True) == "permit"
    assert outcome(plain, purpose="academic_research") == "permit"


def test_use_covers_its_narrower_actions_but_not_the_reverse() -> None:
    assert outcome(policy([rule()]), action="read") == "permit"
    reading = policy([rule(action="read")])
    assert outcome(reading, action="read") == "permit"
    assert outcome(reading, action="use") == "not_applicable"


def test_not_applicable_when_no_rule_is_about_the_request() -> None:
    p = policy([rule(action="read")])
    decision = decide(p, action="distribute")
    assert decision.outcome == "not_applicable"
    assert decision.rule is None and decision.rule_path is None
    for_acme = policy([rule(assignee=BUYER)])
    assert outcome(for_acme, assignee="https://ex.org/org/other") == "not_applicable"
    assert outcome(for_acme, assignee=BUYER) == "permit"
    about_one_asset = policy([rule(target="https://ex.org/asset/1")])
    assert outcome(about_one_asset, target="https://ex.org/asset/2") == "not_applicable"


def test_a_prohibition_for_a_named_party_holds_when_the_request_does_not_say_who_asks() -> None:
    p = policy([rule()], [rule(assignee=BUYER)])
    assert outcome(p) == "deny"
    assert outcome(p, assignee=BUYER) == "deny"
    assert outcome(p, assignee="https://ex.org/org/other") == "permit"


def test_the_decision_names_the_deciding_rule_and_its_path() -> None:
    p = policy(
        [rule(purpose("dpv:AcademicResearch")), rule(purpose("dpv:CommercialResearch"))],
        [rule(purpose("dpv:Marketing"))],
    )
    permitted = decide(p, purpose="commercial_research")
    assert (permitted.rule, permitted.rule_path) == (f"{UID}#permission-1", "permission[1]")
    assert permitted.reason == (
        "Permitted by permission[1]: use for commercial research is allowed under these terms."
    )
    denied = decide(p, purpose="advertising")
    assert (denied.rule, denied.rule_path) == (f"{UID}#prohibition-0", "prohibition[0]")
    closest = decide(p, purpose="surveillance")  # no permission's condition holds
    assert closest.outcome == "deny"
    assert closest.rule_path == "permission[0]"
    assert closest.reason.startswith("Not permitted under permission[0]: the condition purpose")
    assert closest.as_dict()["rule_path"] == "permission[0]"


# --- rule reports (the state of the world beyond the request) --------------------------------


def test_rule_reports_know_collections_and_violated_duties() -> None:
    collection = "https://ex.org/org/research-partners"
    p = policy([rule(assignee=collection, duty=[{"uid": "https://ex.org/d", **price("1")}])])
    request = Request(at=NOW, assignee=BUYER, pay_amount=Decimal("1"), currency="EUR")
    assert [r.active for r in rule_reports(p, request)] == [False]
    member = {BUYER: frozenset({collection})}
    [report] = rule_reports(p, request, part_of=member)
    assert (report.rule, report.kind, report.active, report.failed) == (
        f"{UID}#permission-0",
        "permission",
        True,
        None,
    )
    [violated] = rule_reports(
        p, request, part_of=member, violated_duties=frozenset({"https://ex.org/d"})
    )
    assert not violated.active
    assert violated.failed == "the duty to compensate has been violated"
    assert evaluate(p, request).outcome == "not_applicable"  # evaluate knows no world


# --- known problems (strict: a fix makes these fail until the mark is removed) ---------------


def test_a_prohibition_of_every_purpose_but_one_explains_itself() -> None:
    p = policy([rule()], [rule(purpose("dpv:AcademicResearch", operator="isNoneOf"))])
    decision = decide(p, purpose="commercial_research")
    assert decision.outcome == "deny"
    assert decision.reason.endswith("the owner allows only academic research.")
    assert outcome(p, purpose="academic_research") == "permit"


def test_a_prohibition_of_every_purpose_but_one_refuses_a_broader_request() -> None:
    p = policy([rule()], [rule(purpose("dpv:AcademicResearch", operator="isNoneOf"))])
    assert outcome(p, purpose="research_and_development") == "deny"
    assert outcome(p, purpose="any") == "deny"


# --- properties ----------------------------------------------------------------------------

PLACES = ["DE", "FR", "NO", "US", "EU", "EEA"]
PARTIES = [BUYER, "https://ex.org/org/other"]


def _purpose_constraint(keys: frozenset[str] | set[str]) -> Constraint:
    return Constraint("purpose", "isAnyOf", tuple(sorted(keys)))


@st.composite
def permissions(draw: st.DrawFn, index: int) -> Rule:
    constraints: list[Constraint] = []
    if draw(st.booleans()):
        constraints.append(_purpose_constraint(draw(st.sets(st.sampled_from(KEYS), min_size=1))))
    if draw(st.booleans()):
        places = draw(st.sets(st.sampled_from(PLACES), min_size=1, max_size=3))
        operator = draw(st.sampled_from(["isAnyOf", "isNoneOf"]))
        constraints.append(Constraint("spatial", operator, tuple(sorted(places))))
    if draw(st.booleans()):
        constraints.append(Constraint("dateTime", "lt", (NOW + timedelta(days=1),)))
    return Rule(
        f"{UID}#permission-{index}",
        "permission",
        draw(st.sampled_from([("use",), ("read",), ("use", "grantUse")])),
        None,
        draw(st.sampled_from([None, *PARTIES])),
        tuple(constraints),
        path=f"permission[{index}]",
    )


@st.composite
def prohibitions(draw: st.DrawFn, index: int) -> Rule:
    constraints: list[Constraint] = []
    if draw(st.booleans()):
        keys = draw(st.sets(st.sampled_from(KEYS), min_size=1))
        operator = draw(st.sampled_from(["isAnyOf", "isNoneOf"]))
        constraints.append(Constraint("purpose", operator, tuple(sorted(keys))))
    if draw(st.booleans()):
        places = draw(st.sets(st.sampled_from(PLACES), min_size=1, max_size=2))
        constraints.append(Constraint("spatial", "isAnyOf", tuple(sorted(places))))
    return Rule(
        f"{UID}#prohibition-{index}",
        "prohibition",
        draw(st.sampled_from([("use",), ("read",), ("distribute",)])),
        None,
        draw(st.sampled_from([None, *PARTIES])),
        tuple(constraints),
        path=f"prohibition[{index}]",
    )


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    allowed = draw(st.integers(1, 3))
    banned = draw(st.integers(0, 2))
    return Policy(
        UID,
        "Set",
        tuple(draw(permissions(i)) for i in range(allowed)),
        tuple(draw(prohibitions(i)) for i in range(banned)),
        exclusive=draw(st.booleans()),
    )


requests = st.builds(
    Request,
    action=st.sampled_from(["use", "read", "distribute"]),
    purpose=st.none() | st.sampled_from(KEYS),
    territory=st.none() | st.sampled_from(["DE", "FR", "NO", "US", "JP"]),
    at=st.sampled_from([NOW, NOW + timedelta(days=2)]),
    assignee=st.none() | st.sampled_from(PARTIES),
    sublicense=st.booleans(),
    exclusive=st.booleans(),
)


@settings(max_examples=400, deadline=None)
@given(p=policies(), request=requests, data=st.data())
def test_adding_a_prohibition_never_turns_a_refusal_into_a_permit(
    p: Policy, request: Request, data: st.DataObject
) -> None:
    extra = data.draw(prohibitions(len(p.prohibitions)))
    stricter = replace(p, prohibitions=(*p.prohibitions, extra))
    before, after = evaluate(p, request), evaluate(stricter, request)
    if not before.permitted:
        assert not after.permitted
    else:
        assert after.permitted or after.rule_path == extra.path


@settings(max_examples=400, deadline=None)
@given(p=policies(), request=requests, data=st.data())
def test_narrowing_a_permission_never_permits_a_request_the_original_refused(
    p: Policy, request: Request, data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(p.permissions) - 1))
    rule = p.permissions[index]
    narrowed: list[Constraint] = []
    for condition in rule.constraints:
        assert isinstance(condition, Constraint)
        if condition.left == "purpose":
            # Each purpose replaced by one of its descendants (maybe itself).
            values = tuple(
                data.draw(st.sampled_from(sorted(purposes.descendants(v))))
                for v in condition.values
            )
            condition = replace(condition, values=values)
        elif condition.left == "spatial" and condition.operator == "isAnyOf":
            kept = data.draw(st.sets(st.sampled_from(condition.values)))  # maybe none
            condition = replace(condition, values=tuple(sorted(kept)))
        narrowed.append(condition)
    if not any(c.left == "purpose" for c in narrowed) and data.draw(st.booleans()):
        narrowed.append(_purpose_constraint({data.draw(st.sampled_from(KEYS))}))
    narrower_rule = replace(rule, constraints=tuple(narrowed))
    permissions_ = tuple(narrower_rule if r is rule else r for r in p.permissions)
    narrower = replace(p, permissions=permissions_)
    if not evaluate(p, request).permitted:
        assert not evaluate(narrower, request).permitted
