"""Text PII detection and redaction on sentences written for these tests.

Each entity type appears in a well-formed sentence and, where people write it that way,
in chat style: lower case, no punctuation.
"""

from __future__ import annotations

import itertools

import pytest

from fairtrain.errors import InvalidInput
from fairtrain.privacy.recognizers.numbers import luhn_valid
from fairtrain.privacy.text import Span, assign_placeholders, detect, detect_batch, redact


def found(text: str, needle: str) -> set[str]:
    """Entity types of the detected spans that cover ``needle``'s characters."""
    start = text.index(needle)
    end = start + len(needle)
    return {s.entity_type for s in detect(text) if s.start <= start and end <= s.end}


def covered(text: str, needle: str) -> bool:
    return bool(found(text, needle))


@pytest.mark.parametrize(
    ("text", "needle", "entity"),
    [
        ("My name is Vanessa Hertzog and I moved here last year.", "Vanessa Hertzog", "PERSON"),
        ("my name is tomasz wilk", "tomasz wilk", "PERSON"),
        ("Please ask Mrs. Okonkwo about the invoice.", "Okonkwo", "PERSON"),
        ("Write to jane.doe@example.com before Friday.", "jane.doe@example.com", "EMAIL_ADDRESS"),
        ("Call me on +44 20 7946 0958 tonight.", "+44 20 7946 0958", "PHONE_NUMBER"),
        ("call me on 0494 92 82 32", "0494 92 82 32", "PHONE_NUMBER"),
        ("text me 0612345678 when ur here", "0612345678", "PHONE_NUMBER"),
        ("I live at 42 Elm Street, Springfield.", "42 Elm Street", "STREET_ADDRESS"),
        ("Send it to ul. Długa 12, Gdańsk please.", "ul. Długa 12", "STREET_ADDRESS"),
        ("i live at 12 baker street now", "12 baker street", "STREET_ADDRESS"),
        ("Meet me at Wingertweg 126 after work.", "Wingertweg 126", "STREET_ADDRESS"),
        ("my zip code is 90210", "90210", "ZIP_CODE"),
        ("I moved to Portugal last year.", "Portugal", "LOCATION"),
        ("im from portugal originally", "portugal", "LOCATION"),
        ("I work at Acme Widgets Ltd in the city.", "Acme Widgets Ltd", "ORGANIZATION"),
        ("I was born on 12/03/1988 in a small town.", "12/03/1988", "DATE_OF_BIRTH"),
        ("The meeting is on 2023-06-05 09:30:00.", "2023-06-05 09:30:00", "DATE_TIME"),
        ("my son just turned 7", "7", "AGE"),
        ("A 34-year-old woman called the clinic.", "34", "AGE"),
        ("My card is 4111 1111 1111 1111, expires soon.", "4111 1111 1111 1111", "CREDIT_CARD"),
        ("card 2131 7682 8496 175 was declined", "2131 7682 8496 175", "CREDIT_CARD"),
        ("Pay to GB82 WEST 1234 5698 7654 32 today.", "GB82 WEST 1234 5698 7654 32", "IBAN_CODE"),
        ("my iban is gb82west12345698765432", "gb82west12345698765432", "IBAN_CODE"),
        ("My social security number is 536-22-8726.", "536-22-8726", "US_SSN"),
        ("my passport number is 533380006", "533380006", "NATIONAL_ID"),
        ("The server at 192.168.10.25 logged it.", "192.168.10.25", "IP_ADDRESS"),
        ("Source 2001:db8:85a3::8a2e:370:7334 again", "2001:db8:85a3::8a2e:370:7334", "IP_ADDRESS"),
        ("My site is https://janedoe.dev/about", "https://janedoe.dev/about", "URL"),
        ("follow me @jane_doe99 for more", "@jane_doe99", "USERNAME"),
        ("my insta is jane.doe.art", "jane.doe.art", "USERNAME"),
        ("Her number plate is AB12 CDE.", "AB12 CDE", "LICENSE_PLATE"),
        ("the reg is ab12 cde i think", "ab12 cde", "LICENSE_PLATE"),
        ("Dr. Amara Singh will see you now.", "Dr", "TITLE"),
        ("I am Polish but I live in Leeds.", "Polish", "NRP"),
        ("My driver's license number is F162823540116.", "F162823540116", "US_DRIVER_LICENSE"),
    ],
)
def test_each_entity_type_is_found(text: str, needle: str, entity: str) -> None:
    assert entity in found(text, needle), (text, detect(text))


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("My card is 4111 1111 1111 1112, expires soon.", "4111 1111 1111 1112"),
        ("card number 4111111111111112 please", "4111111111111112"),
        ("Pay to GB82 WEST 1234 5698 7654 33 today.", "GB82 WEST 1234 5698 7654 33"),
        ("my iban is gb00west12345698765432", "gb00west12345698765432"),
    ],
)
def test_checksum_invalid_numbers_are_not_flagged(text: str, needle: str) -> None:
    assert not covered(text, needle), detect(text)


@pytest.mark.parametrize(
    "text",
    [
        "i walked 5 miles down the road and it was fine",
        "we should meet at 5 tomorrow ok",
        "the meeting lasted 2 hours and we left",
        "Windows 10 keeps restarting on me",
    ],
)
def test_ordinary_chat_is_left_alone(text: str) -> None:
    assert detect(text) == []


def test_luhn() -> None:
    assert luhn_valid("4111 1111 1111 1111")
    assert not luhn_valid("4111 1111 1111 1112")
    assert not luhn_valid("")


def test_spans_are_sorted_and_disjoint() -> None:
    text = "Vanessa Hertzog (vanessa@example.com, +44 20 7946 0958) lives at 42 Elm Street."
    spans = detect(text)
    assert spans == sorted(spans)
    assert all(a.end <= b.start for a, b in itertools.pairwise(spans))
    assert all(0 <= s.start < s.end <= len(text) and 0 < s.score <= 1 for s in spans)


def test_batch_matches_one_by_one() -> None:
    texts = ["call me on 0494 92 82 32", "", "I live at 42 Elm Street, Springfield."]
    assert detect_batch(texts) == [detect(t) for t in texts]


def test_long_text_is_cut_at_line_breaks_and_offsets_stay_right() -> None:
    line = "nothing to see here at all\n"
    text = line * 5000 + "write to jane.doe@example.com\n" + line * 10
    spans = detect(text)
    assert [text[s.start : s.end] for s in spans] == ["jane.doe@example.com"]


def test_only_english_is_supported() -> None:
    with pytest.raises(InvalidInput):
        detect("hola", language="es")


def test_redaction_uses_consistent_typed_placeholders() -> None:
    text = (
        "My name is Vanessa P. Hertzog but everyone calls me Vanessa. "
        "Ask Tom Baker, then call Vanessa on +44 20 7946 0958."
    )
    result = redact(text)
    assert result.text.count("[PERSON_1]") == 3
    assert "[PERSON_2]" in result.text
    assert "[PHONE_NUMBER_1]" in result.text
    assert "Vanessa" not in result.text and "7946" not in result.text
    assert set(result.placeholders) >= {"[PERSON_1]", "[PERSON_2]", "[PHONE_NUMBER_1]"}
    assert len(result.placeholders["[PERSON_1]"]) == 3
    for placeholder, spans in result.placeholders.items():
        assert all(isinstance(s, Span) for s in spans), placeholder


def test_redact_with_given_spans_only_touches_those() -> None:
    text = "Alice met Bob."
    spans = [Span(0, 5, "PERSON", 1.0)]
    result = redact(text, spans)
    assert result.text == "[PERSON_1] met Bob."
    assert result.spans == (spans[0],)


def test_same_number_written_differently_is_one_placeholder() -> None:
    text = "x 020-7946-0958 y 020 7946 0958"
    spans = [Span(2, 15, "PHONE_NUMBER", 1.0), Span(18, 31, "PHONE_NUMBER", 1.0)]
    labels = assign_placeholders(text, spans)
    assert set(labels.values()) == {"[PHONE_NUMBER_1]"}
