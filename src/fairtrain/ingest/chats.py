"""Chat exports parsed into one transcript shape (WhatsApp Android/iOS, Telegram JSON, plain).

Parsing is ingestion; deciding what of a transcript may be shared is ``privacy.chat``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["ChatMessage", "ChatTranscript"]


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
