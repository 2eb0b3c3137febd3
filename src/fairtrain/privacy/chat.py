"""Decide what of a chat transcript may be shared: the contributor's side, redacted.

A chat holds other people. Their messages are theirs: each is replaced by
:data:`WITHHELD` unless that person consented through their own invite. What stays (the
contributor's messages and consenting people's) goes through text PII redaction, and
every other participant's display name, name parts, phone number and @handle are
replaced wherever they appear, also in lower case ("tell anna i said hi").

Sender labels are pseudonymised too: the contributor becomes ``[CONTRIBUTOR]`` and the
others ``[PARTICIPANT_1]``, ``[PARTICIPANT_2]``... in order of first message, and a
mention of a participant inside a message gets that same label, so a reader can still
follow who is talking to whom. Placeholders are consistent across the whole transcript.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

import phonenumbers

from fairtrain.errors import InvalidInput
from fairtrain.ingest.chats import ChatMessage, ChatTranscript
from fairtrain.privacy.recognizers._lexicon import ENGLISH_STOPWORDS
from fairtrain.privacy.text import Span, assign_placeholders, detect_batch

__all__ = [
    "CONTRIBUTOR_LABEL",
    "SENDER_PART",
    "WITHHELD",
    "chat_parts",
    "only_sender",
    "participant_terms",
    "redact_chat",
]

WITHHELD = "[message from another person withheld]"
CONTRIBUTOR_LABEL = "[CONTRIBUTOR]"
_PARTICIPANT = "PARTICIPANT"
# How a counterparty's part of a chat is named in the privacy report and in invites.
SENDER_PART = "chat_sender"


def _same_sender(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


def redact_chat(
    transcript: ChatTranscript,
    contributor: str,
    consenting: Collection[str] = frozenset(),
) -> ChatTranscript:
    """The transcript as it may be shared.

    ``contributor`` is the contributor's sender name as the export spells it;
    ``consenting`` the sender names of counterparties who consented to their part.
    Raises :class:`InvalidInput` when the contributor never wrote in this chat.
    """
    senders = _senders(transcript)
    if not any(_same_sender(s, contributor) for s in senders):
        raise InvalidInput(
            "the contributor's name does not appear as a sender in this chat",
            code="contributor_not_in_chat",
        )
    others = [s for s in senders if not _same_sender(s, contributor)]
    labels = {s.casefold().strip(): f"[{_PARTICIPANT}_{i}]" for i, s in enumerate(others, 1)}
    labels[contributor.casefold().strip()] = CONTRIBUTOR_LABEL
    consented = {c.casefold().strip() for c in consenting}

    kept: list[int] = []  # indexes of messages whose text is shared (after redaction)
    for index, message in enumerate(transcript.messages):
        key = message.sender.casefold().strip()
        if message.is_system or key == contributor.casefold().strip() or key in consented:
            kept.append(index)

    texts = [transcript.messages[i].text for i in kept]
    detected = detect_batch(texts)
    # One document, so "[PERSON_1]" means the same person in every message.
    document = "\n".join(texts)
    spans: list[Span] = []
    mention_labels: dict[Span, str] = {}
    offset = 0
    for text, found in zip(texts, detected, strict=True):
        mentions = list(_mentions(text, others, labels))
        taken = [(m.start, m.end) for m, _ in mentions]
        for span, label in mentions:
            moved = Span(span.start + offset, span.end + offset, span.entity_type, span.score)
            spans.append(moved)
            mention_labels[moved] = label
        for span in found:
            if not any(span.start < e and s < span.end for s, e in taken):
                spans.append(
                    Span(span.start + offset, span.end + offset, span.entity_type, span.score)
                )
        offset += len(text) + 1
    labels_by_span = assign_placeholders(document, [s for s in spans if s not in mention_labels])
    labels_by_span.update(mention_labels)

    # Messages may hold line breaks themselves: cut back by the known lengths.
    redacted_texts = _split_back(document, texts, sorted(spans), labels_by_span)
    shared = dict(zip(kept, redacted_texts, strict=True))
    messages = [
        ChatMessage(
            sender=message.sender
            if message.is_system
            else labels.get(message.sender.casefold().strip(), message.sender),
            text=shared.get(index, WITHHELD),
            sent_at=message.sent_at,
            is_system=message.is_system,
        )
        for index, message in enumerate(transcript.messages)
    ]
    return ChatTranscript(
        format=transcript.format,
        messages=messages,
        participants=[labels[s.casefold().strip()] for s in senders],
    )


def chat_parts(
    transcript: ChatTranscript, contributor: str, consenting: Collection[str] = frozenset()
) -> list[dict[str, object]]:
    """The other people of a chat as parts that can be asked for consent, for the report.

    One entry per sender other than the contributor, in order of first message: the part
    id (``chat_sender:<name as the export spells it>``), the label the redacted version
    gives them, how many messages they wrote, and whether they are included by consent.
    """
    contributor_key = contributor.casefold().strip()
    consented = {c.casefold().strip() for c in consenting}
    counts: dict[str, int] = {}
    for message in transcript.messages:
        if not message.is_system:
            key = message.sender.casefold().strip()
            counts[key] = counts.get(key, 0) + 1
    others = [s for s in _senders(transcript) if s.casefold().strip() != contributor_key]
    return [
        {
            "part": f"{SENDER_PART}:{sender}",
            "kind": SENDER_PART,
            "ref": sender,
            "label": sender,
            "pseudonym": f"[{_PARTICIPANT}_{index}]",
            "messages": counts.get(sender.casefold().strip(), 0),
            "included": sender.casefold().strip() in consented,
        }
        for index, sender in enumerate(others, 1)
    ]


def only_sender(transcript: ChatTranscript, sender: str) -> ChatTranscript:
    """One person's own part of a chat: the messages they sent, as they wrote them.

    This is what a counterparty is shown before deciding whether to consent. Nothing else
    of the chat is in it: not the contributor's messages, not other participants', and not
    system notices (which name people: "Anna added Bob"). Raises :class:`InvalidInput`
    (``sender_not_in_chat``) when that sender wrote nothing.
    """
    key = sender.casefold().strip()
    mine = [
        message
        for message in transcript.messages
        if not message.is_system and message.sender.casefold().strip() == key
    ]
    if not mine:
        raise InvalidInput("this person wrote no message in the chat", code="sender_not_in_chat")
    return ChatTranscript(format=transcript.format, messages=mine, participants=[mine[0].sender])


def _senders(transcript: ChatTranscript) -> list[str]:
    seen: dict[str, str] = {}
    for name in [
        *transcript.participants,
        *(m.sender for m in transcript.messages if not m.is_system),
    ]:
        seen.setdefault(name.casefold().strip(), name)
    return list(seen.values())


def participant_terms(sender: str) -> list[str]:
    """What identifies a participant inside text: the display name, its parts, digits.

    "Anna Kowalska" gives "Anna Kowalska", "Anna", "Kowalska"; "+44 7700 900123" gives
    its digits (matched with any separators); "@anna_k" gives "@anna_k" and "anna_k".
    """
    name = sender.strip()
    terms = [name]
    digits = re.sub(r"\D", "", name)
    if len(digits) >= 6:
        return [digits, *_national_number(name)]
    parts = re.split(r"[\s,]+", name.lstrip("@"))
    terms += [p for p in parts if len(p) >= 2 and p.casefold() not in ENGLISH_STOPWORDS]
    if name.startswith("@"):
        terms.append(name[1:])
    return sorted(set(terms), key=len, reverse=True)


def _national_number(number: str) -> list[str]:
    """The number as dialled inside its country ("+44 7700 900123" -> "7700900123")."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return []
    national = str(parsed.national_number)
    return [national] if national != re.sub(r"\D", "", number) else []


def _term_pattern(term: str) -> re.Pattern[str]:
    if term.isdigit():
        # The same number written with spaces, dots, dashes or brackets, after an
        # optional "+" (international form) or trunk "0" (national form).
        digits = r"[\s.()-]*".join(term)
        return re.compile(rf"(?<![\d+])[+0]?{digits}(?!\d)")
    return re.compile(r"(?<![\w@])@?" + re.escape(term) + r"(?![\w])", re.IGNORECASE)


def _mentions(
    text: str, others: Iterable[str], labels: dict[str, str]
) -> Iterable[tuple[Span, str]]:
    taken: list[tuple[int, int]] = []
    for sender in others:
        label = labels[sender.casefold().strip()]
        for term in participant_terms(sender):
            for match in _term_pattern(term).finditer(text):
                start, end = match.span()
                if any(start < e and s < end for s, e in taken):
                    continue
                taken.append((start, end))
                kind = "PHONE_NUMBER" if term.isdigit() else "PERSON"
                yield Span(start, end, kind, 1.0), label


def _apply(document: str, spans: list[Span], labels: dict[Span, str]) -> str:
    out: list[str] = []
    cursor = 0
    for span in spans:
        if span.start < cursor:
            continue
        out.append(document[cursor : span.start])
        out.append(labels[span])
        cursor = span.end
    out.append(document[cursor:])
    return "".join(out)


def _split_back(
    document: str, texts: list[str], spans: list[Span], labels: dict[Span, str]
) -> list[str]:
    results: list[str] = []
    offset = 0
    for text in texts:
        end = offset + len(text)
        inside = [
            Span(s.start - offset, s.end - offset, s.entity_type, s.score)
            for s in spans
            if offset <= s.start and s.end <= end
        ]
        local = {
            Span(s.start - offset, s.end - offset, s.entity_type, s.score): labels[s]
            for s in spans
            if offset <= s.start and s.end <= end
        }
        results.append(_apply(text, inside, local))
        offset = end + 1
    return results
