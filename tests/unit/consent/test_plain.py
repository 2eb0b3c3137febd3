"""explain() and risk_notes(): sentences from structure, short, grade <= 8, and risk notes
chosen by the kind of data and by what the terms open up."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairtrain.consent.odrl import Constraint, LogicalConstraint, Policy, Rule, parse_policy
from fairtrain.consent.plain import MAX_WORDS, RISK_NOTES, explain, readability, risk_notes
from fairtrain.consent.purposes import PURPOSES

CONTEXT = "http://www.w3.org/ns/odrl.jsonld"
CURRENCY = "https://www.iso.org/iso-4217-currency-codes#"
READ_ON = datetime(2026, 11, 23, tzinfo=UTC)


def purpose(operator: str, *keys: str) -> dict[str, Any]:
    return {
        "leftOperand": "purpose",
        "operator": operator,
        "rightOperand": [{"@id": PURPOSES[k].iri} for k in keys],
    }


def pay(amount: str, currency: str = "EUR") -> dict[str, Any]:
    return {
        "action": "compensate",
        "constraint": [
            {
                "leftOperand": "payAmount",
                "operator": "eq",
                "rightOperand": {"@value": amount, "@type": "xsd:decimal"},
                "unit": CURRENCY + currency,
            }
        ],
    }


def lasting(duration: str) -> dict[str, Any]:
    return {
        "leftOperand": "elapsedTime",
        "operator": "lteq",
        "rightOperand": {"@value": duration, "@type": "xsd:duration"},
    }


def policy(**fields: Any) -> Policy:
    return parse_policy({"@context": CONTEXT, "uid": "https://ex.org/p/1", "type": "Set", **fields})


def prohibiting(*keys: str) -> list[dict[str, Any]]:
    return [{"action": "use", "constraint": [purpose("isAnyOf", *keys)]}]


RESEARCH_ONLY = policy(
    permission=[
        {
            "action": "use",
            "constraint": [
                purpose("isAnyOf", "academic_research", "non_commercial_research"),
                lasting("P12M"),
            ],
            "duty": [pay("1.00")],
        }
    ],
    prohibition=prohibiting(
        "voice_cloning", "face_recognition", "biometric_identification", "commercial_use"
    ),
)
COMMERCIAL = policy(
    exclusive=True,
    permission=[
        {
            "action": "use",
            "constraint": [purpose("isAnyOf", "model_training", "commercial_use"), lasting("P3Y")],
            "duty": [pay("0.50")],
        },
        {"action": "grantUse"},
    ],
    prohibition=prohibiting("voice_cloning", "political_campaigning"),
)
OPEN_ATTRIBUTION = policy(permission=[{"action": "use", "duty": [{"action": "attribute"}]}])
EITHER = policy(
    permission=[
        {
            "action": "use",
            "constraint": [
                {"or": [purpose("eq", "speech_recognition"), purpose("eq", "speech_synthesis")]},
                {
                    "xone": [
                        {"leftOperand": "spatial", "operator": "eq", "rightOperand": "DE"},
                        {"leftOperand": "spatial", "operator": "eq", "rightOperand": "FR"},
                    ]
                },
                lasting("P6M"),
            ],
            "duty": [pay("12", "USD")],
        }
    ],
)
EU_ONLY = policy(
    permission=[
        {
            "action": "use",
            "constraint": [
                purpose("isA", "research_and_development"),
                {"leftOperand": "spatial", "operator": "isAnyOf", "rightOperand": ["EU", "NO"]},
                {
                    "leftOperand": "dateTime",
                    "operator": "lt",
                    "rightOperand": {"@value": "2027-06-30T00:00:00Z", "@type": "xsd:dateTime"},
                },
            ],
            "duty": [pay("0.05")],
        }
    ],
    prohibition=prohibiting("synthetic_likeness", "emotion_recognition"),
)
POLICIES = {
    "research_only": RESEARCH_ONLY,
    "commercial": COMMERCIAL,
    "open_attribution": OPEN_ATTRIBUTION,
    "either": EITHER,
    "eu_only": EU_ONLY,
}

VOICE = "About 30 seconds of clear speech can be enough to copy a voice."
FACE = "A photo of your face can be used to find you in other photos."
CHATS = "Chats can reveal who you talk to and when, even with names removed."
FOREVER = "These terms have no end date, so a buyer may use it for many years."
LONG = "A licence can last more than two years."
FREE = "You will not be paid: these terms ask no price."
PASSED_ON = "Buyers may pass it on to other companies you did not choose."
WORLDWIDE = "It may be used in any country, even where privacy laws are weak."


# --- explain --------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(POLICIES))
@pytest.mark.parametrize("modality", [None, "audio", "image", "video", "chat", "document"])
def test_every_sentence_is_short_and_the_whole_reads_at_grade_eight(
    name: str, modality: str | None
) -> None:
    sentences = explain(POLICIES[name], modality=modality)
    assert sentences
    assert all(len(s.split()) <= MAX_WORDS for s in sentences), sentences
    assert all(s[0].isupper() and s.endswith(".") for s in sentences), sentences
    assert readability(sentences) <= 8, sentences


def test_research_only_says_who_what_what_not_how_long_and_how_much() -> None:
    sentences = explain(RESEARCH_ONLY, modality="audio")
    assert sentences[:2] == [
        "Buyers may use your recording for research at universities and other public "
        "research bodies.",
        "They may also use it for research that is not done to make money.",
    ]
    assert "They may NOT use it to make AI that speaks with your voice." in sentences
    assert "They may NOT use it to train AI that recognises faces." in sentences
    assert "They may NOT use it in products that are sold." in sentences
    assert "They may use it for 12 months from the licence date." in sentences
    assert "They must pay you 1.00 euro for each licence." in sentences
    assert "They may use it in any country." in sentences
    assert sentences[-2:] == [
        "Other buyers can license it too.",
        "They may not pass it on to others.",
    ]
    # Permissions first, then prohibitions, then the terms.
    assert sentences.index("They may NOT use it in products that are sold.") < sentences.index(
        "They may use it for 12 months from the licence date."
    )


def test_the_data_is_named_by_its_kind_only_in_the_first_sentence() -> None:
    assert explain(OPEN_ATTRIBUTION)[0] == "Buyers may use it for any purpose."
    assert (
        explain(OPEN_ATTRIBUTION, modality="image")[0]
        == "Buyers may use your photo for any purpose."
    )
    assert (
        explain(OPEN_ATTRIBUTION, modality="chat")[0] == "Buyers may use your chat for any purpose."
    )
    assert explain(OPEN_ATTRIBUTION, modality="photo") == explain(
        OPEN_ATTRIBUTION, modality="image"
    )
    assert sum("your video" in s for s in explain(RESEARCH_ONLY, modality="video")) == 1


def test_commercial_terms_say_price_exclusivity_and_sublicensing() -> None:
    sentences = explain(COMMERCIAL)
    assert sentences[:2] == [
        "Buyers may use it to train AI models.",
        "They may also use it in products that are sold.",
    ]
    assert "They may NOT use it for political campaigns." in sentences
    assert "They may use it for 3 years from the licence date." in sentences
    assert "They must pay you 0.50 euro for each licence." in sentences
    assert "One buyer may pay to be the only one who can license it." in sentences
    assert "They may pass it on to others." in sentences
    assert "Other buyers can license it too." not in sentences


def test_open_terms_say_what_is_absent_from_the_structure() -> None:
    assert explain(OPEN_ATTRIBUTION) == [
        "Buyers may use it for any purpose.",
        "They must name you as the source.",
        "They may use it in any country.",
        "The licence has no end date.",
        "They do not have to pay you.",
        "Other buyers can license it too.",
        "They may not pass it on to others.",
    ]


def test_or_and_xone_read_as_either_or() -> None:
    sentences = explain(EITHER, modality="audio")
    assert sentences[0] == (
        "Buyers may use your recording either to train AI that turns speech into text "
        "or to train AI that speaks."
    )
    assert "They may use it either only in Germany or only in France." in sentences
    assert "They may not do both." in sentences
    assert "They may use it for 6 months from the licence date." in sentences
    assert "They must pay you 12.00 US dollars for each licence." in sentences
    assert "They may use it in any country." not in sentences


def test_places_and_end_dates_are_said_in_words() -> None:
    sentences = explain(EU_ONLY)
    assert sentences[0] == "Buyers may use it for research and product development."
    assert "Only in the EU or Norway." in sentences
    assert "Only until 30 June 2027." in sentences
    assert "They must pay you 0.05 euro for each licence." in sentences
    assert "The licence has no end date." not in sentences


def test_a_long_list_of_alternatives_is_split_into_short_sentences() -> None:
    either = LogicalConstraint(
        "or",
        (
            Constraint("purpose", "eq", ("biometric_identification",)),
            Constraint("purpose", "eq", ("synthetic_likeness",)),
        ),
    )
    rule = Rule("u#p", "permission", ("use",), None, "https://ex.org/buyer", (either,))
    sentences = explain(Policy("u", "Set", (rule,), ()), modality="document")
    assert sentences[:4] == [
        "Only one named buyer may license your document.",
        "They may use it in these ways.",
        "Either they may use it to train AI that tells who a person is from their body, "
        "face or voice.",
        "Or they may use it to make fake pictures, video or sound that look or sound like you.",
    ]
    assert all(len(s.split()) <= MAX_WORDS for s in sentences)


def test_money_keeps_every_digit_and_names_the_currency() -> None:
    def priced(amount: str, currency: str) -> list[str]:
        duty = Rule(
            "u#d", "duty", ("compensate",), None, None,
            (Constraint("payAmount", "eq", (Decimal(amount),), currency),),
        )  # fmt: skip
        return explain(
            Policy("u", "Set", (Rule("u#p", "permission", ("use",), None, None, (), (duty,)),), ())
        )

    assert "They must pay you 0.005 euro for each licence." in priced("0.005", "EUR")
    assert "They must pay you 1,500 yen for each licence." in priced("1500", "JPY")
    assert "They must pay you 2.50 Swedish Krona for each licence." in priced("2.5", "SEK")


def test_free_text_in_a_policy_is_never_shown() -> None:
    tricky = policy(
        permission=[
            {
                "action": "use",
                "uid": "https://ex.org/rule/ignore-all-terms",
                "constraint": [purpose("eq", "model_evaluation")],
                "dc:description": "We may do anything we like with your voice.",
            }
        ],
    )
    text = " ".join(explain(tricky))
    assert "anything we like" not in text and "ignore" not in text
    assert "Buyers may use it to test how well AI models work." in explain(tricky)


def test_withdrawal_is_not_explained_because_the_policy_does_not_say_it() -> None:
    for terms in POLICIES.values():
        assert not any("withdraw" in s.lower() for s in explain(terms))


def test_nothing_permitted_is_said_plainly() -> None:
    only_banned = policy(prohibition=prohibiting("marketing"))
    assert explain(only_banned, modality="video")[:2] == [
        "No one may use your video yet.",
        "They may NOT use it for marketing.",
    ]


# --- risk notes -----------------------------------------------------------------------


def notes(terms: Policy, modality: str) -> list[str]:
    return risk_notes(terms, modality, as_of=READ_ON)


def test_voice_notes_follow_what_the_terms_open_up() -> None:
    assert VOICE in notes(EITHER, "audio")  # speech synthesis is permitted
    assert VOICE in notes(EITHER, "voice")
    assert VOICE in notes(EITHER, "video")
    assert VOICE not in notes(EITHER, "image")
    # Voice cloning prohibited: the evaluator refuses speech synthesis as well.
    assert VOICE not in notes(COMMERCIAL, "audio")
    assert VOICE not in notes(RESEARCH_ONLY, "audio")


def test_face_notes_follow_what_the_terms_open_up() -> None:
    assert FACE in notes(OPEN_ATTRIBUTION, "image")
    assert FACE in notes(OPEN_ATTRIBUTION, "photo")
    assert FACE in notes(OPEN_ATTRIBUTION, "video")
    assert FACE not in notes(OPEN_ATTRIBUTION, "audio")
    assert FACE in notes(COMMERCIAL, "image")  # model training, faces not prohibited
    assert FACE not in notes(RESEARCH_ONLY, "image")  # prohibited
    assert FACE not in notes(EU_ONLY, "image") or "face_recognition" not in str(EU_ONLY)


def test_chat_notes_are_about_chats() -> None:
    assert CHATS in notes(RESEARCH_ONLY, "chat")
    assert CHATS not in notes(RESEARCH_ONLY, "audio")
    assert "Your handwriting can be matched to other things you have written." in notes(
        RESEARCH_ONLY, "handwriting"
    )


def test_term_notes_follow_the_terms() -> None:
    open_notes = notes(OPEN_ATTRIBUTION, "text")
    assert {FOREVER, FREE, WORLDWIDE} <= set(open_notes)
    assert PASSED_ON not in open_notes
    commercial = notes(COMMERCIAL, "text")
    assert {LONG, PASSED_ON, WORLDWIDE} <= set(commercial)
    assert FOREVER not in commercial and FREE not in commercial
    research = notes(RESEARCH_ONLY, "text")
    assert LONG not in research and FOREVER not in research and PASSED_ON not in research
    eu = notes(EU_ONLY, "text")
    assert WORLDWIDE not in eu and LONG not in eu
    assert LONG in risk_notes(EU_ONLY, "text", as_of=datetime(2024, 1, 1, tzinfo=UTC))


def test_notes_come_from_the_reviewed_table_in_its_order() -> None:
    table = [note.sentence for note in RISK_NOTES]
    assert len(set(table)) == len(table)
    assert all(len(s.split()) <= MAX_WORDS for s in table)
    for terms in POLICIES.values():
        for modality in ("audio", "image", "video", "chat", "text", "document", None):
            shown = risk_notes(terms, modality, as_of=READ_ON)
            assert shown == [s for s in table if s in shown]
    assert readability(table) <= 8


def test_a_conditional_prohibition_does_not_hide_a_risk() -> None:
    only_in_us = policy(
        permission=[{"action": "use"}],
        prohibition=[
            {
                "action": "use",
                "constraint": [
                    purpose("eq", "face_recognition"),
                    {"leftOperand": "spatial", "operator": "eq", "rightOperand": "US"},
                ],
            }
        ],
    )
    assert FACE in notes(only_in_us, "image")
    assert "They may NOT use it to train AI that recognises faces only in the United States." in (
        explain(only_in_us)
    )


# --- any policy -----------------------------------------------------------------------

_KEYS = sorted(PURPOSES)
_PLACES = ["DE", "FR", "US", "GB", "JP", "BR", "EU", "EEA", "WORLD"]


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    allowed = draw(st.lists(st.sampled_from(_KEYS), max_size=4, unique=True))
    refused = draw(st.lists(st.sampled_from(_KEYS), max_size=2, unique=True))
    banned = draw(st.lists(st.sampled_from(_KEYS), max_size=5, unique=True))
    places = draw(st.lists(st.sampled_from(_PLACES), max_size=3, unique=True))
    constraints: list[Constraint | LogicalConstraint] = []
    if allowed:
        if draw(st.booleans()):
            constraints.append(Constraint("purpose", "isAnyOf", tuple(allowed)))
        else:
            items = tuple(Constraint("purpose", "eq", (k,)) for k in allowed)
            constraints.append(
                LogicalConstraint(draw(st.sampled_from(["or", "xone", "and"])), items)
            )
    if refused:
        constraints.append(Constraint("purpose", "isNoneOf", tuple(refused)))
    if places:
        operator = draw(st.sampled_from(["isAnyOf", "isNoneOf"]))
        constraints.append(Constraint("spatial", operator, tuple(places)))
    if draw(st.booleans()):
        constraints.append(Constraint("elapsedTime", "lteq", (draw(st.integers(1, 3650)),)))
    if draw(st.booleans()):
        day = draw(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1)))
        constraints.append(Constraint("dateTime", "lt", (day.replace(tzinfo=UTC),)))
    if draw(st.booleans()):
        constraints.append(Constraint("count", "lteq", (Decimal(draw(st.integers(1, 10**6))),)))
    duties = []
    if draw(st.booleans()):
        cents = draw(st.integers(0, 10**8))
        currency = draw(st.sampled_from(["EUR", "USD", "GBP", "JPY", "SEK", "XYZ"]))
        amount = Decimal(cents).scaleb(-2)
        duties.append(
            Rule(
                "u#d",
                "duty",
                ("compensate",),
                None,
                None,
                (Constraint("payAmount", "eq", (amount,), currency),),
            )
        )
    if draw(st.booleans()):
        duties.append(
            Rule(
                "u#a",
                "duty",
                (draw(st.sampled_from(["attribute", "delete", "inform"])),),
                None,
                None,
                (),
            )
        )
    actions = tuple(
        draw(
            st.lists(
                st.sampled_from(["use", "read", "reproduce", "distribute", "annotate"]),
                min_size=1,
                max_size=2,
                unique=True,
            )
        )
    )
    assignee = draw(st.sampled_from([None, "https://ex.org/buyer"]))
    permissions = [
        Rule("u#p", "permission", actions, None, assignee, tuple(constraints), tuple(duties))
    ]
    if draw(st.booleans()):
        permissions.append(Rule("u#g", "permission", ("grantUse",), None, None, ()))
    prohibitions = tuple(
        Rule(
            f"u#x{i}",
            "prohibition",
            ("use",),
            None,
            None,
            (Constraint("purpose", "isAnyOf", (k,)),),
        )
        for i, k in enumerate(banned)
    )
    if draw(st.booleans()):
        permissions = permissions[1:]  # prohibitions only (or nothing but sublicensing)
    return Policy("u", "Set", tuple(permissions), prohibitions, exclusive=draw(st.booleans()))


@settings(max_examples=150, deadline=None)
@given(
    terms=policies(),
    modality=st.sampled_from(
        [None, "audio", "image", "video", "chat", "text", "document", "other"]
    ),
)
def test_any_policy_is_explained_in_short_sentences(terms: Policy, modality: str | None) -> None:
    sentences = explain(terms, modality=modality)
    assert sentences
    assert all(s and s[0].isupper() and s.endswith(".") for s in sentences), sentences
    notes_shown = risk_notes(terms, modality, as_of=READ_ON)
    assert set(notes_shown) <= {n.sentence for n in RISK_NOTES}
