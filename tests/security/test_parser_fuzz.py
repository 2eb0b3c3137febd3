"""Parsers fed arbitrary and adversarial input with hypothesis.

Each parser either returns a well-formed result or refuses with its domain error (a 4xx
with a code once it reaches HTTP) — never another exception — and what it accepts
round-trips where a round trip is defined.
"""

from __future__ import annotations

import base64
import io
import json
import tarfile
import tempfile
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fairtrain.consent.odrl import ODRL_CONTEXT_URL, PolicyError, parse_policy, serialise_policy
from fairtrain.consent.templates import TEMPLATES, build_template
from fairtrain.delivery.leaked import leaked_items
from fairtrain.errors import InvalidInput
from fairtrain.ingest.chats import parse_chat
from fairtrain.ingest.tus import parse_metadata

T = TypeVar("T")


def outcome(call: Callable[[], T]) -> tuple[T | None, InvalidInput | None]:
    """The result, or the domain refusal; any other exception fails the test."""
    try:
        return call(), None
    except InvalidInput as refused:
        return None, refused


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- chat exports ------------------------------------------------------------------------

SENDERS = st.sampled_from(["Ana", "Kofi Mensah", "+44 7700 900123", "‮evil‬", "Zoë 🙂", ""])
LINE_TEXT = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs",), blacklist_characters="\r\n\x85\u2028\u2029"
    ),
    max_size=60,
)


@st.composite
def whatsapp_exports(draw: st.DrawFn) -> str:
    """Android- or iOS-shaped exports with noise: bad dates, continuation lines, junk."""
    ios = draw(st.booleans())
    lines = []
    for _ in range(draw(st.integers(min_value=1, max_value=25))):
        day, month = draw(st.integers(0, 40)), draw(st.integers(0, 14))
        year = draw(st.sampled_from(["24", "2024", "0", "99999"]))
        hour, minute = draw(st.integers(0, 30)), draw(st.integers(0, 70))
        stamp = f"{day}/{month}/{year}, {hour}:{minute:02d}"
        sender, text = draw(SENDERS), draw(LINE_TEXT)
        kind = draw(st.sampled_from(["message", "continuation", "system", "junk"]))
        if kind == "continuation":
            lines.append(text)
        elif kind == "junk":
            lines.append(draw(st.text(max_size=30)).replace("\n", " "))
        elif ios:
            lines.append(
                f"[{stamp}:00] {sender}: {text}" if kind == "message" else f"[{stamp}:00] {text}"
            )
        else:
            lines.append(
                f"{stamp} - {sender}: {text}" if kind == "message" else f"{stamp} - {text}"
            )
    return "\n".join(lines)


def _well_formed_transcript(text: str) -> None:
    transcript, refused = outcome(lambda: parse_chat(text))
    if transcript is None:
        assert refused is not None and refused.code in {"corrupt_media", "unsupported_type"}
        return
    assert transcript.format in {"whatsapp-android", "whatsapp-ios", "telegram-json", "plain"}
    senders = {m.sender for m in transcript.messages if m.sender and not m.is_system}
    assert set(transcript.participants) >= senders
    assert len(transcript.participants) == len(set(transcript.participants))
    for message in transcript.messages:
        assert isinstance(message.text, str)
        if message.sent_at is not None:
            assert message.sent_at.utcoffset() is not None, "times are UTC-aware"


@FUZZ
@given(st.text(max_size=400))
def test_any_text_parses_as_a_chat_or_is_refused(text: str) -> None:
    _well_formed_transcript(text)


@FUZZ
@given(whatsapp_exports())
def test_whatsapp_shaped_noise_never_breaks_the_parser(text: str) -> None:
    _well_formed_transcript(text)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=25,
)


@st.composite
def telegram_exports(draw: st.DrawFn) -> str:
    """Telegram's shape with hostile field values: text as lists of entities, numbers, nulls."""
    messages = [
        {
            "type": draw(st.sampled_from(["message", "service", 7, None])),
            "from": draw(SENDERS | JSON_VALUES),
            "date": draw(st.sampled_from(["2024-05-01T10:00:00", "not a date", "", 3])),
            "text": draw(st.text(max_size=30) | st.lists(JSON_VALUES, max_size=3) | JSON_VALUES),
        }
        for _ in range(draw(st.integers(0, 8)))
    ]
    document: dict[str, Any] = {"name": draw(JSON_VALUES), "messages": messages}
    return json.dumps(document)


@FUZZ
@given(telegram_exports())
def test_hostile_telegram_exports_parse_or_are_refused(text: str) -> None:
    _well_formed_transcript(text)


# -- tus Upload-Metadata -----------------------------------------------------------------

METADATA_KEYS = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters=","),
    min_size=1,
    max_size=12,
)


@FUZZ
@given(st.dictionaries(METADATA_KEYS, st.text(max_size=40), max_size=6))
def test_tus_metadata_round_trips(pairs: dict[str, str]) -> None:
    header = ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}" if value else key
        for key, value in pairs.items()
    )
    assert parse_metadata(header) == pairs


@FUZZ
@given(st.text(max_size=200))
def test_any_tus_metadata_header_parses_or_is_refused(header: str) -> None:
    parsed, refused = outcome(lambda: parse_metadata(header))
    if parsed is None:
        assert refused is not None and refused.code == "invalid_tus_metadata"
        return
    assert all(isinstance(k, str) and k and isinstance(v, str) for k, v in parsed.items())


# -- ODRL / JSON-LD policies -------------------------------------------------------------


@FUZZ
@given(JSON_VALUES)
def test_arbitrary_json_parses_as_a_policy_or_is_refused_with_a_code(value: Any) -> None:
    document = value if not isinstance(value, dict) else {"@context": ODRL_CONTEXT_URL} | value
    policy, refused = outcome(lambda: parse_policy(json.dumps(document)))
    if policy is None:
        assert isinstance(refused, PolicyError) and refused.code and refused.detail
        return
    assert parse_policy(serialise_policy(policy)) == policy


@st.composite
def mutated_policies(draw: st.DrawFn) -> dict[str, Any]:
    """A real template's JSON-LD with one field replaced by an arbitrary JSON value."""
    policy = build_template(
        draw(st.sampled_from(sorted(TEMPLATES))),
        uid="urn:fairtrain:policy:fuzz",
        target="urn:fairtrain:asset:fuzz",
        price=Decimal(draw(st.integers(1, 10_000))) / 100,
        currency="EUR",
    )
    document = serialise_policy(policy)
    paths: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, child in node.items():
                if key != "@context":
                    paths.append((node, key))
                    walk(child)
        elif isinstance(node, list):
            for index, child in enumerate(node):
                paths.append((node, index))
                walk(child)

    walk(document)
    parent, key = draw(st.sampled_from(paths))
    parent[key] = draw(JSON_VALUES)
    return document


@FUZZ
@given(mutated_policies())
def test_a_mutated_policy_parses_or_is_refused_with_a_path(document: dict[str, Any]) -> None:
    policy, refused = outcome(lambda: parse_policy(json.dumps(document)))
    if policy is None:
        assert isinstance(refused, PolicyError) and refused.code and refused.detail
        return
    # What is accepted is a policy whose serialisation parses back to itself.
    assert parse_policy(serialise_policy(policy)) == policy


@FUZZ
@given(st.sampled_from(sorted(TEMPLATES)), st.integers(1, 1_000_000))
def test_every_template_round_trips(key: str, cents: int) -> None:
    policy = build_template(
        key, uid="urn:fairtrain:policy:t", target=None, price=Decimal(cents) / 100, currency="EUR"
    )
    assert parse_policy(json.dumps(serialise_policy(policy))) == policy


# -- leaked shards given to `fairtrain trace` ---------------------------------------------


def _valid_shard() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, body in (("ast_a.jpg", b"\xff\xd8\xff" * 40), ("ast_a.json", b"{}")):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return out.getvalue()


VALID_SHARD = _valid_shard()


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=2048),
        st.builds(lambda n: VALID_SHARD[:n], st.integers(0, len(VALID_SHARD))),
        st.builds(
            lambda at, value: VALID_SHARD[:at] + bytes([value]) + VALID_SHARD[at + 1 :],
            st.integers(0, len(VALID_SHARD) - 1),
            st.integers(0, 255),
        ),
        st.builds(lambda body: b"PAR1" + body + b"PAR1", st.binary(min_size=4, max_size=512)),
    )
)
def test_any_leaked_file_opens_as_samples_or_says_why_not(data: bytes) -> None:
    """A leak is hostile input: whatever its bytes, opening it yields samples (each with
    a readable scratch file) or unusable ones with a reason, never an exception."""
    with tempfile.TemporaryDirectory() as directory:
        leak = Path(directory) / "leak.bin"
        leak.write_bytes(data)
        for item in leaked_items([leak]):
            assert (item.path is None) == (item.error is not None)
            if item.path is not None:
                assert item.path.is_file()
