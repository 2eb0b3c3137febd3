"""Chat redaction: counterparties withheld unless consenting, and named nowhere."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fairtrain.errors import InvalidInput
from fairtrain.ingest.chats import ChatMessage, ChatTranscript
from fairtrain.privacy.chat import CONTRIBUTOR_LABEL, WITHHELD, participant_terms, redact_chat

AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def chat() -> ChatTranscript:
    return ChatTranscript(
        format="whatsapp-android",
        messages=[
            ChatMessage("", "Messages are end-to-end encrypted", AT, is_system=True),
            ChatMessage("Me", "hey anna did you get the keys from Bob Stone", AT),
            ChatMessage("Anna Kowalska", "yes my address is 12 Baker Street, London", AT),
            ChatMessage("Me", "thanks Anna\nmy email is me@example.org", AT),
            ChatMessage("+44 7700 900123", "who is this", AT),
            ChatMessage("Me", "sorry wrong number, was trying 07700 900 123", AT),
            ChatMessage("@jkl_99", "lol", AT),
            ChatMessage("Me", "tell @jkl_99 i said hi", AT),
        ],
        participants=["Me", "Anna Kowalska", "+44 7700 900123", "@jkl_99"],
    )


def test_counterparty_messages_are_withheld_without_consent() -> None:
    out = redact_chat(chat(), "Me")
    by_sender = [(m.sender, m.text) for m in out.messages]
    assert by_sender[2] == ("[PARTICIPANT_1]", WITHHELD)
    assert by_sender[4] == ("[PARTICIPANT_2]", WITHHELD)
    assert by_sender[6] == ("[PARTICIPANT_3]", WITHHELD)
    assert out.participants == [
        CONTRIBUTOR_LABEL,
        "[PARTICIPANT_1]",
        "[PARTICIPANT_2]",
        "[PARTICIPANT_3]",
    ]
    assert all(m.sent_at == AT for m in out.messages)
    assert out.format == "whatsapp-android"


def test_counterparties_are_redacted_inside_the_contributors_messages() -> None:
    out = redact_chat(chat(), "Me")
    mine = [m.text for m in out.messages if m.sender == CONTRIBUTOR_LABEL]
    joined = "\n".join(mine)
    assert "anna" not in joined.casefold()
    assert "7700" not in joined and "900 123" not in joined
    assert "jkl_99" not in joined
    assert "Bob Stone" not in joined and "me@example.org" not in joined
    assert mine[0] == "hey [PARTICIPANT_1] did you get the keys from [PERSON_1]"
    assert mine[1] == "thanks [PARTICIPANT_1]\nmy email is [EMAIL_ADDRESS_1]"
    assert "[PARTICIPANT_2]" in mine[2]
    assert mine[3] == "tell [PARTICIPANT_3] i said hi"


def test_consenting_counterparty_is_kept_but_redacted() -> None:
    out = redact_chat(chat(), "me", consenting={"Anna Kowalska"})
    anna = out.messages[2]
    assert anna.sender == "[PARTICIPANT_1]"
    assert anna.text.startswith("yes my address is [STREET_ADDRESS_1]")
    assert "Baker" not in anna.text
    assert out.messages[4].text == WITHHELD


def test_system_messages_are_kept() -> None:
    out = redact_chat(chat(), "Me")
    assert out.messages[0].is_system
    assert out.messages[0].text == "Messages are end-to-end encrypted"


def test_unknown_contributor_is_refused() -> None:
    with pytest.raises(InvalidInput):
        redact_chat(chat(), "Someone Else")


def test_participant_terms() -> None:
    assert participant_terms("Anna Kowalska") == ["Anna Kowalska", "Kowalska", "Anna"]
    assert participant_terms("+44 7700 900123") == ["447700900123", "7700900123"]
    assert participant_terms("0612 345 678") == ["0612345678"]
    assert participant_terms("@jkl_99") == ["@jkl_99", "jkl_99"]
