"""Plain-language terms and risk notes: generated from structure, short, grade <= 8."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairtrain.consent.odrl import Constraint, Policy, Rule
from fairtrain.consent.plain import explain, readability, risk_notes
from fairtrain.consent.purposes import PURPOSES
from fairtrain.consent.templates import TEMPLATES, build_template


def template(key: str) -> Policy:
    return build_template(
        key, uid="https://x/p/1", target="https://x/a/1", price=Decimal("0.50"), currency="EUR"
    )


@pytest.mark.parametrize("key", sorted(TEMPLATES))
def test_every_template_reads_at_grade_eight_or_below(key: str) -> None:
    sentences = explain(template(key))
    assert readability(sentences) <= 8, sentences
    assert all(len(s.split()) <= 25 for s in sentences), sentences


def test_the_default_says_what_is_allowed_forbidden_and_paid() -> None:
    sentences = explain(template("default"))
    assert sentences[0] == "Buyers may use it for research and product development."
    assert "They must pay you 0.50 euro for each licence." in sentences
    assert "No one may use it to make AI that speaks with your voice." in sentences
    assert "Each licence lasts 12 months at most." in sentences
    assert "They may not pass it on to others." in sentences
    assert "Other buyers can use it too." in sentences


def test_territory_and_end_date_are_said_in_words() -> None:
    base = template("research_only")
    permission = base.permissions[0]
    from datetime import UTC, datetime

    extra = (
        Constraint("spatial", "isAnyOf", ("EU", "NO")),
        Constraint("dateTime", "lt", (datetime(2027, 6, 30, tzinfo=UTC),)),
    )
    policy = Policy(
        uid=base.uid,
        type="Set",
        permissions=(
            Rule(
                permission.uid,
                "permission",
                permission.actions,
                permission.target,
                None,
                permission.constraints + extra,
                permission.duties,
            ),
        ),
        prohibitions=base.prohibitions,
    )
    sentences = explain(policy)
    assert "Only in the European Union or Norway." in sentences
    assert "Only until 30 June 2027." in sentences


def test_risk_notes_follow_the_terms_and_the_kind_of_data() -> None:
    default, research, open_terms = (
        template("default"),
        template("research_only"),
        template("open_attribution"),
    )
    face = "A photo of your face can be used to find you in other photos."
    assert face not in risk_notes(default, "image")  # face recognition is prohibited
    assert face in risk_notes(open_terms, "image")
    assert face not in risk_notes(open_terms, "audio")
    voice = "About 30 seconds of clear speech can be enough to copy a voice."
    assert voice in risk_notes(default, "audio")  # speech synthesis is allowed
    assert voice not in risk_notes(research, "audio")
    chats = risk_notes(research, "chat")
    assert chats == ["Chats can show who you talk to and when, even with names taken out."]


@settings(max_examples=60, deadline=None)
@given(
    allowed=st.sets(st.sampled_from(sorted(PURPOSES)), min_size=1, max_size=4),
    banned=st.sets(st.sampled_from(sorted(PURPOSES)), max_size=4),
    places=st.sets(st.sampled_from(["DE", "FR", "US", "EU", "EEA", "JP"]), max_size=3),
    cents=st.integers(min_value=1, max_value=100_000),
)
def test_any_policy_is_explained(
    allowed: set[str], banned: set[str], places: set[str], cents: int
) -> None:
    constraints: tuple[Constraint, ...] = (
        Constraint("purpose", "isAnyOf", tuple(sorted(allowed))),
    )
    if places:
        constraints += (Constraint("spatial", "isAnyOf", tuple(sorted(places))),)
    pay = Rule(
        "u#d",
        "duty",
        ("compensate",),
        None,
        None,
        (Constraint("payAmount", "eq", (Decimal(cents).scaleb(-2),), "EUR"),),
    )
    permission = Rule("u#p", "permission", ("use",), None, None, constraints, (pay,))
    prohibitions = (
        (Rule("u#x", "prohibition", ("use",), None, None,
              (Constraint("purpose", "isAnyOf", tuple(sorted(banned))),)),)
        if banned else ()
    )  # fmt: skip
    policy = Policy("u", "Set", (permission,), prohibitions)
    sentences = explain(policy)
    assert sentences and all(s.endswith(".") for s in sentences)
    assert readability(sentences) <= 12  # free combinations; templates are held to 8
    for modality in ("audio", "image", "video", "chat", "text", "document"):
        risk_notes(policy, modality)
