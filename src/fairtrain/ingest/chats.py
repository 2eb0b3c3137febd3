"""Chat exports parsed into one transcript shape (WhatsApp Android/iOS, Telegram JSON, plain).

Parsing is ingestion; deciding what of a transcript may be shared is ``privacy.chat``.

Formats, as the apps write them:

* WhatsApp Android: ``12/31/20, 9:15 PM - Anna: text`` (also ``31.12.20, 21:15 - …``,
  ``2020-12-31, 21:15 - …``); continuation lines belong to the previous message; lines
  without ``Name:`` are system notices.
* WhatsApp iOS: ``[31/12/2020, 21:15:07] Anna: text``, sometimes preceded by U+200E.
* Telegram Desktop "Export chat history" as JSON: ``{"name", "type", "messages": [{"type":
  "message", "date": "2020-12-31T21:15:07", "from": "Anna", "text": "…" | [parts]}]}``.
* Plain text: anything else that is text; one message per line, ``Name: text`` when the
  line has that shape.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fairtrain.errors import InvalidInput

__all__ = ["ChatMessage", "ChatTranscript", "parse_chat"]

MAX_MESSAGES = 2_000_000


@dataclass(frozen=True, slots=True)
class ChatMessage:
    sender: str  # display name or number exactly as the export spells it
    text: str
    sent_at: datetime | None = None  # UTC-aware when the export gives a time
    is_system: bool = False  # "Messages are end-to-end encrypted", joins, leaves…


@dataclass(frozen=True, slots=True)
class ChatTranscript:
    format: str  # "whatsapp-android" | "whatsapp-ios" | "telegram-json" | "plain"
    messages: list[ChatMessage]
    participants: list[str] = field(default_factory=list)  # senders in order of first message


_DATE = r"(?P<date>\d{1,4}[./-]\d{1,2}[./-]\d{1,4})"
_TIME = r"(?P<time>\d{1,2}[:.]\d{2}(?:[:.]\d{2})?(?:\s?[AaPp]\.?\s?[Mm]\.?)?)"
_ANDROID = re.compile(rf"^{_DATE},? {_TIME} - (?P<rest>.*)$")
_IOS = re.compile(rf"^\u200e?\[{_DATE},? {_TIME}\] (?P<rest>.*)$")
_SENDER = re.compile(r"^(?P<sender>[^:]{1,80}?): (?P<text>.*)$", re.DOTALL)
_DIRECTIONAL = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _clean(text: str) -> str:
    """Remove bidi controls (they can disguise names) and other control characters."""
    text = _DIRECTIONAL.sub("", text)
    return "".join(ch for ch in text if ch in "\n\t" or ch.isprintable())


def _when(date_text: str, time_text: str) -> datetime | None:
    """Exports use the phone's locale and no zone: keep the wall time, read as UTC."""
    time_text = time_text.replace(".", ":").replace("\u202f", " ").upper().replace(" ", "")
    time_text = time_text.replace("A:M:", "AM").replace("P:M:", "PM")
    parts = re.split(r"[./-]", date_text)
    if len(parts) != 3:
        return None
    first, second, third = (int(p) for p in parts)
    if len(parts[0]) == 4:
        year, month, day = first, second, third
    elif first > 12:
        day, month, year = first, second, third
    else:  # ambiguous: US month/day when the exporter used a slash, else day/month
        month, day, year = (first, second, third) if "/" in date_text else (second, first, third)
    if year < 100:
        year += 2000
    meridiem = time_text[-2:] if time_text[-2:] in ("AM", "PM") else ""
    clock = time_text[:-2] if meridiem else time_text
    try:
        pieces = [int(p) for p in clock.split(":")]
        hour, minute = pieces[0], pieces[1]
        second_value = pieces[2] if len(pieces) > 2 else 0
        if meridiem == "PM" and hour < 12:
            hour += 12
        if meridiem == "AM" and hour == 12:
            hour = 0
        return datetime(year, month, day, hour, minute, second_value, tzinfo=UTC)
    except (ValueError, IndexError):
        return None


def _whatsapp(lines: list[str], pattern: re.Pattern[str], name: str) -> ChatTranscript:
    messages: list[ChatMessage] = []
    for line in lines:
        found = pattern.match(line)
        if found is None:
            if messages:  # a continuation line of a multi-line message
                last = messages[-1]
                messages[-1] = ChatMessage(
                    last.sender, f"{last.text}\n{line}", last.sent_at, last.is_system
                )
            continue
        when = _when(found["date"], found["time"])
        said = _SENDER.match(found["rest"])
        if said is None:
            messages.append(ChatMessage("", _clean(found["rest"]), when, is_system=True))
        else:
            messages.append(ChatMessage(_clean(said["sender"]).strip(), _clean(said["text"]), when))
        if len(messages) > MAX_MESSAGES:
            raise InvalidInput("This chat has too many messages.", code="chat_too_large")
    return _transcript(name, messages)


def _transcript(name: str, messages: list[ChatMessage]) -> ChatTranscript:
    participants: list[str] = []
    seen: set[str] = set()
    for message in messages:
        key = message.sender.casefold()
        if not message.is_system and message.sender and key not in seen:
            seen.add(key)
            participants.append(message.sender)
    return ChatTranscript(format=name, messages=messages, participants=participants)


def _telegram_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(
            part if isinstance(part, str) else str(part.get("text", ""))
            for part in value
            if isinstance(part, str | dict)
        )
    return ""


def _telegram(document: dict[str, Any]) -> ChatTranscript:
    raw = document.get("messages")
    if not isinstance(raw, list):
        raise InvalidInput("This Telegram export has no message list.", code="corrupt_media")
    if len(raw) > MAX_MESSAGES:
        raise InvalidInput("This chat has too many messages.", code="chat_too_large")
    messages: list[ChatMessage] = []
    for item in raw:
        if not isinstance(item, dict):
            raise InvalidInput("A Telegram message is not an object.", code="corrupt_media")
        when = None
        if isinstance(item.get("date"), str):
            try:
                when = datetime.fromisoformat(item["date"]).replace(tzinfo=UTC)
            except ValueError:
                when = None
        is_system = item.get("type") != "message"
        sender = _clean(str(item.get("from") or item.get("actor") or "")).strip()
        messages.append(
            ChatMessage(sender, _clean(_telegram_text(item.get("text"))), when, is_system)
        )
    return _transcript("telegram-json", messages)


def _plain(lines: list[str]) -> ChatTranscript:
    messages = []
    for line in lines:
        if not line.strip():
            continue
        said = _SENDER.match(line)
        if said is not None and len(said["sender"].split()) <= 4:
            messages.append(ChatMessage(_clean(said["sender"]).strip(), _clean(said["text"])))
        else:
            messages.append(ChatMessage("", _clean(line)))
    return _transcript("plain", messages)


def parse_chat(text: str) -> ChatTranscript:
    """Recognise the export by its shape and parse it; plain text when nothing matches."""
    stripped = text.lstrip("\ufeff")
    if stripped.lstrip().startswith("{"):
        try:
            document = json.loads(stripped)
        except (ValueError, RecursionError) as error:
            raise InvalidInput(
                "This looks like JSON but does not parse.", code="corrupt_media"
            ) from error
        if isinstance(document, dict) and "messages" in document:
            return _telegram(document)
        raise InvalidInput("This JSON file is not a Telegram chat export.", code="unsupported_type")
    lines = stripped.splitlines()
    head = [line for line in lines[:50] if line.strip()]
    for pattern, name in ((_IOS, "whatsapp-ios"), (_ANDROID, "whatsapp-android")):
        if head and sum(1 for line in head if pattern.match(line)) >= max(1, len(head) // 2):
            return _whatsapp(lines, pattern, name)
    return _plain(lines)
