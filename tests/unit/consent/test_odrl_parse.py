"""Parsing ODRL: every refusal names the path and the code; what parses serialises back to
itself; Turtle with rules as nodes of their own reads like the nested JSON-LD."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from fairtrain.consent.odrl import (
    Constraint,
    LogicalConstraint,
    Policy,
    PolicyError,
    parse_policy,
    parse_turtle_policy,
    serialise_policy,
)

CONTEXT = "http://www.w3.org/ns/odrl.jsonld"
UID = "https://ex.org/policy/1"


def doc(**fields: Any) -> dict[str, Any]:
    return {"@context": CONTEXT, "uid": UID, "type": "Set", **fields}


def constrained(constraint: dict[str, Any]) -> dict[str, Any]:
    return doc(permission=[{"action": "use", "constraint": [constraint]}])


def priced(constraint: dict[str, Any]) -> dict[str, Any]:
    return doc(permission=[{"action": "use", "duty": [{"action": "compensate",
                                                        "constraint": [constraint]}]}])  # fmt: skip


BAD: list[tuple[str, Any, str, str]] = [
    ("malformed JSON", '{"@context": ', "invalid_jsonld", ""),
    ("not an object", "[1, 2]", "invalid_jsonld", ""),
    ("no @context", {"uid": UID, "type": "Set", "permission": [{"action": "use"}]},
     "invalid_jsonld", "@context"),
    ("a remote context", doc(**{"@context": "https://evil.example/context.jsonld"}),
     "invalid_jsonld", "@context"),
    ("a remote context in a list", doc(**{"@context": [CONTEXT, "https://evil.example/c"]}),
     "invalid_jsonld", "@context"),
    ("no uid", {"@context": CONTEXT, "type": "Set", "permission": [{"action": "use"}]},
     "invalid_policy", "uid"),
    ("no policy type", {"@context": CONTEXT, "uid": UID, "permission": [{"action": "use"}]},
     "invalid_policy", "type"),
    ("an unknown action", doc(permission=[{"action": "use"}, {"action": "teleport"}]),
     "unknown_action", "permission[1].action[0]"),
    ("a prohibition without an action", doc(prohibition=[{"target": "https://ex.org/a"}]),
     "invalid_policy", "prohibition[0].action"),
    ("an unknown purpose IRI",
     constrained({"leftOperand": "purpose", "operator": "isA",
                  "rightOperand": {"@id": "https://w3id.org/dpv#Nope"}}),
     "unknown_purpose", "permission[0].constraint[0].rightOperand"),
    ("an unknown leftOperand",
     constrained({"leftOperand": "media", "operator": "eq", "rightOperand": "x"}),
     "unsupported_constraint", "permission[0].constraint[0].leftOperand"),
    ("no leftOperand", constrained({"operator": "eq", "rightOperand": "x"}),
     "invalid_policy", "permission[0].constraint[0].leftOperand"),
    ("a bad operator",
     constrained({"leftOperand": "spatial", "operator": "near", "rightOperand": "DE"}),
     "invalid_policy", "permission[0].constraint[0].operator"),
    ("no rightOperand", constrained({"leftOperand": "spatial", "operator": "eq"}),
     "invalid_policy", "permission[0].constraint[0].rightOperand"),
    ("a non-ISO territory",
     constrained({"leftOperand": "spatial", "operator": "eq", "rightOperand": "Narnia"}),
     "invalid_policy", "permission[0].constraint[0].rightOperand"),
    ("a bad dateTime",
     constrained({"leftOperand": "dateTime", "operator": "lt", "rightOperand": "next week"}),
     "invalid_policy", "permission[0].constraint[0].rightOperand"),
    ("a bad duration",
     constrained({"leftOperand": "elapsedTime", "operator": "lteq", "rightOperand": "P1H"}),
     "invalid_policy", "permission[0].constraint[0].rightOperand"),
    ("a negative price",
     priced({"leftOperand": "payAmount", "operator": "eq", "rightOperand": "-1",
             "unit": "EUR"}),
     "invalid_policy", "permission[0].duty[0].constraint[0].rightOperand"),
    ("a price that is not a number",
     priced({"leftOperand": "payAmount", "operator": "eq", "rightOperand": "cheap",
             "unit": "EUR"}),
     "invalid_policy", "permission[0].duty[0].constraint[0].rightOperand"),
    ("payAmount without a currency",
     priced({"leftOperand": "payAmount", "operator": "eq", "rightOperand": "1"}),
     "invalid_policy", "permission[0].duty[0].constraint[0].unit"),
    ("a bad operand inside a logical constraint",
     constrained({"or": [{"leftOperand": "spatial", "operator": "eq", "rightOperand": "DE"},
                         {"leftOperand": "spatial", "operator": "eq", "rightOperand": "XYZ"}]}),
     "invalid_policy", "permission[0].constraint[0].or[1].rightOperand"),
    ("exclusive that is not a boolean", doc(exclusive="yes", permission=[{"action": "use"}]),
     "invalid_policy", "exclusive"),
    ("an empty policy", doc(), "invalid_policy", ""),
]  # fmt: skip


@pytest.mark.parametrize(
    ("document", "code", "path"), [pytest.param(*case[1:], id=case[0]) for case in BAD]
)
def test_a_bad_policy_is_refused_with_its_path_and_code(
    document: Any, code: str, path: str
) -> None:
    with pytest.raises(PolicyError) as refused:
        parse_policy(document)
    assert (refused.value.code, refused.value.path) == (code, path), refused.value.detail
    if path:
        assert str(refused.value.detail).startswith(f"{path}: ")


FULL = doc(
    assigner="https://ex.org/people/ana",
    target="https://ex.org/asset/1",
    exclusive=True,
    permission=[
        {
            "uid": f"{UID}#train",
            "action": ["use", "grantUse"],
            "assignee": "https://ex.org/org/acme",
            "constraint": [
                {"leftOperand": "purpose", "operator": "isAnyOf",
                 "rightOperand": [{"@id": "https://w3id.org/dpv#AcademicResearch"},
                                  {"@id": "ftp:ModelTraining"}]},
                {"leftOperand": "spatial", "operator": "isAnyOf", "rightOperand": ["EEA", "CH"]},
                {"leftOperand": "dateTime", "operator": "lt",
                 "rightOperand": {"@value": "2027-01-01T00:00:00Z", "@type": "xsd:dateTime"}},
                {"leftOperand": "elapsedTime", "operator": "lteq", "rightOperand": "P1Y"},
                {"or": [{"leftOperand": "count", "operator": "lteq", "rightOperand": "10"},
                        {"leftOperand": "recipient", "operator": "eq",
                         "rightOperand": "https://ex.org/org/acme"}]},
            ],
            "duty": [{"action": "compensate", "constraint": [
                {"leftOperand": "payAmount", "operator": "eq",
                 "rightOperand": {"@value": "2.50", "@type": "xsd:decimal"},
                 "unit": "https://www.iso.org/iso-4217-currency-codes#EUR"}]}],
        }
    ],
    prohibition=[
        {"action": "use", "constraint": [
            {"leftOperand": "purpose", "operator": "isAnyOf",
             "rightOperand": {"@id": "ftp:VoiceCloning"}}]},
    ],
)  # fmt: skip


def test_a_full_policy_reads_into_the_model() -> None:
    p = parse_policy(FULL)
    assert (p.uid, p.type, p.exclusive, p.target) == (UID, "Set", True, "https://ex.org/asset/1")
    assert p.assigner == "https://ex.org/people/ana"
    [permission] = p.permissions
    assert permission.uid == f"{UID}#train"
    assert permission.actions == ("use", "grantUse")
    assert permission.target == "https://ex.org/asset/1"  # inherited from the policy
    purpose, spatial, until, term, either = permission.constraints
    assert purpose == Constraint("purpose", "isAnyOf", ("academic_research", "model_training"))
    assert spatial.values == ("EEA", "CH")
    assert until == Constraint("dateTime", "lt", (datetime(2027, 1, 1, tzinfo=UTC),))
    assert term.values == (365,)
    assert isinstance(either, LogicalConstraint) and either.operator == "or"
    assert [c.path for c in either.items] == [
        "permission[0].constraint[4].or[0]",
        "permission[0].constraint[4].or[1]",
    ]
    [duty] = permission.duties
    assert duty.constraints == (Constraint("payAmount", "eq", (Decimal("2.50"),), "EUR"),)
    [prohibition] = p.prohibitions
    assert prohibition.uid == f"{UID}#prohibition-0"  # a rule without uid gets one
    assert prohibition.constraints[0].values == ("voice_cloning",)
    assert p.sublicensing


def test_a_full_policy_round_trips() -> None:
    first = parse_policy(FULL)
    serialised = serialise_policy(first)
    again = parse_policy(serialised)
    assert again == first
    assert serialise_policy(again) == serialised


def test_the_same_policy_in_other_json_ld_spellings_reads_the_same() -> None:
    odrl = "http://www.w3.org/ns/odrl/2/"
    expanded = {
        "@context": {"o": odrl},
        "@id": UID,
        "@type": "o:Set",
        "o:permission": {
            "o:action": {"@id": f"{odrl}use"},
            "o:constraint": {
                "o:leftOperand": {"@id": f"{odrl}spatial"},
                "o:operator": {"@id": f"{odrl}eq"},
                "o:rightOperand": "de",
            },
        },
    }
    compact = doc(permission=[{"action": "use", "constraint": [
        {"leftOperand": "spatial", "operator": "eq", "rightOperand": "DE"}]}])  # fmt: skip
    assert parse_policy(expanded) == parse_policy(compact)
    assert parse_policy(expanded).permissions[0].constraints[0].values == ("DE",)


# --- Turtle --------------------------------------------------------------------------------

PREFIXES = """
@prefix odrl: <http://www.w3.org/ns/odrl/2/> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix ex: <http://example.org/> .
@prefix ft: <https://w3id.org/fairtrain/odrl#> .
"""


def test_turtle_rules_and_constraints_as_separate_nodes_are_inlined() -> None:
    p = parse_turtle_policy(
        PREFIXES
        + """
        ex:p a odrl:Set ; odrl:uid ex:p ; ft:exclusive true ;
            odrl:permission ex:perm ; odrl:prohibition ex:ban .
        ex:perm a odrl:Permission ; odrl:action odrl:read ; odrl:target ex:x ;
            odrl:constraint ex:window ; odrl:duty ex:pay .
        ex:window a odrl:LogicalConstraint ; odrl:and ex:after, ex:before .
        ex:after odrl:leftOperand odrl:dateTime ; odrl:operator odrl:gt ;
            odrl:rightOperand "2024-01-01T00:00:00Z"^^xsd:dateTime .
        ex:before odrl:leftOperand odrl:dateTime ; odrl:operator odrl:lt ;
            odrl:rightOperand "2025-01-01T00:00:00Z"^^xsd:dateTime .
        ex:pay a odrl:Duty ; odrl:action odrl:compensate .
        ex:ban a odrl:Prohibition .
        """
    )
    assert (p.uid, p.exclusive) == ("http://example.org/p", True)
    [permission] = p.permissions
    assert (permission.uid, permission.actions, permission.target) == (
        "http://example.org/perm",
        ("read",),
        "http://example.org/x",
    )
    [window] = permission.constraints
    assert isinstance(window, LogicalConstraint) and window.operator == "and"
    assert sorted(c.operator for c in window.items if isinstance(c, Constraint)) == ["gt", "lt"]
    assert permission.duties[0].uid == "http://example.org/pay"
    # A rule without an action is about every action; the broadest the platform has is use.
    assert p.prohibitions[0].actions == ("use",)


def test_turtle_logical_constraints_may_be_rdf_lists() -> None:
    p = parse_turtle_policy(
        PREFIXES
        + """
        ex:p a odrl:Offer ; odrl:permission [ odrl:action odrl:use ;
            odrl:constraint [ odrl:xone (
                [ odrl:leftOperand odrl:spatial ; odrl:operator odrl:eq ; odrl:rightOperand "DE" ]
                [ odrl:leftOperand odrl:spatial ; odrl:operator odrl:eq ; odrl:rightOperand "FR" ]
            ) ] ] .
        """
    )
    [permission] = p.permissions
    assert permission.uid == "http://example.org/p#permission-0"  # a blank node
    [either] = permission.constraints
    assert isinstance(either, LogicalConstraint) and either.operator == "xone"
    assert [c.values for c in either.items if isinstance(c, Constraint)] == [("DE",), ("FR",)]


def test_turtle_reads_like_the_same_policy_in_json_ld() -> None:
    turtle = parse_turtle_policy(
        PREFIXES
        + f"""
        <{UID}> a odrl:Set ; odrl:permission <{UID}#p> .
        <{UID}#p> odrl:action odrl:use ; odrl:constraint [
            odrl:leftOperand odrl:purpose ; odrl:operator odrl:isA ;
            odrl:rightOperand <https://w3id.org/dpv#AcademicResearch> ] .
        """
    )
    json_ld = parse_policy(doc(permission=[{"uid": f"{UID}#p", "action": "use", "constraint": [
        {"leftOperand": "purpose", "operator": "isA",
         "rightOperand": {"@id": "https://w3id.org/dpv#AcademicResearch"}}]}]))  # fmt: skip
    assert turtle == json_ld
    assert isinstance(turtle, Policy)


@pytest.mark.parametrize(
    ("text", "iri", "code", "message"),
    [
        ("ex:p a odrl:Set ; odrl:permission", None, "invalid_turtle", "not valid Turtle"),
        ("ex:p a ex:Thing .", None, "invalid_turtle", "exactly one policy"),
        ("ex:p a odrl:Set . ex:q a odrl:Set .", None, "invalid_turtle", "exactly one policy"),
        ("ex:p a odrl:Set .", "http://example.org/q", "invalid_turtle", "not found"),
        ("ex:p a odrl:Set .", None, "invalid_policy", "at least one permission"),
        ("ex:p a odrl:Set ; odrl:permission [ odrl:action odrl:fly ] .", None,
         "unknown_action", "unknown action"),
    ],
)  # fmt: skip
def test_bad_turtle_is_refused(text: str, iri: str | None, code: str, message: str) -> None:
    with pytest.raises(PolicyError) as refused:
        parse_turtle_policy(PREFIXES + text, iri)
    assert refused.value.code == code
    assert message in str(refused.value.detail)


def test_turtle_with_several_policies_reads_the_one_named() -> None:
    text = (
        PREFIXES
        + """
        ex:p a odrl:Set ; odrl:permission [ odrl:action odrl:read ] .
        ex:q a odrl:Set ; odrl:prohibition [ odrl:action odrl:distribute ] .
    """
    )
    assert parse_turtle_policy(text, "http://example.org/q").prohibitions[0].actions == (
        "distribute",
    )


def test_a_flattened_json_ld_policy_reads_like_the_nested_one() -> None:
    nested = parse_policy(FULL)
    flat = {
        "@context": CONTEXT,
        "@graph": [
            {"uid": UID, "type": "Set", "permission": [f"{UID}#p"]},
            {"uid": f"{UID}#p", "action": "use", "constraint": ["_:c"]},
            {"uid": "_:c", "and": ["_:de"]},
            {"uid": "_:de", "leftOperand": "spatial", "operator": "eq", "rightOperand": "DE"},
        ],
    }
    p = parse_policy(flat)
    [permission] = p.permissions
    [both] = permission.constraints
    assert isinstance(both, LogicalConstraint)
    assert both.items == (Constraint("spatial", "eq", ("DE",)),)
    assert nested.uid == p.uid


def test_logical_operands_given_as_a_set_are_read() -> None:
    odrl = "http://www.w3.org/ns/odrl/2/"
    spatial = {"o:leftOperand": {"@id": f"{odrl}spatial"}, "o:operator": {"@id": f"{odrl}eq"}}
    p = parse_policy(
        {
            "@context": {"o": odrl},
            "@id": UID,
            "@type": "o:Set",
            "o:permission": {
                "o:action": {"@id": f"{odrl}use"},
                "o:constraint": {"o:or": [{**spatial, "o:rightOperand": c} for c in ("DE", "FR")]},
            },
        }
    )
    [either] = p.permissions[0].constraints
    assert isinstance(either, LogicalConstraint) and either.operator == "or"
    assert len(either.items) == 2
