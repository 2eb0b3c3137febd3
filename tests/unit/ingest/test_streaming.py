"""Streaming multipart extraction, tus metadata and display names, fuzzed with hypothesis."""

from __future__ import annotations

import base64
import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairtrain.errors import DomainError, InvalidInput
from fairtrain.ingest.service import safe_display_name
from fairtrain.ingest.streaming import MultipartFile, multipart_file_chunks
from fairtrain.ingest.tus import parse_metadata

BOUNDARY = "----fairtrainBoundary7MA4YWxkTrZu0gW"


def form(parts: list[tuple[str, str | None, bytes]]) -> bytes:
    body = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        body += (
            (
                f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    return body + f"--{BOUNDARY}--\r\n".encode()


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(max_size=5000), chunk=st.integers(min_value=1, max_value=700))
def test_file_bytes_come_out_exactly_whatever_the_chunking(payload: bytes, chunk: int) -> None:
    body = form(
        [("note", None, b"ignored field"), ("file", "voice.wav", payload), ("after", None, b"x")]
    )
    part = MultipartFile()
    out = b"".join(
        multipart_file_chunks(
            f"multipart/form-data; boundary={BOUNDARY}", iter(split(body, chunk)), part
        )
    )
    assert out == payload
    assert part.filename == "voice.wav"


def test_form_without_file_is_refused() -> None:
    body = form([("note", None, b"hello")])
    with pytest.raises(InvalidInput) as caught:
        list(
            multipart_file_chunks(
                f"multipart/form-data; boundary={BOUNDARY}", iter([body]), MultipartFile()
            )
        )
    assert caught.value.code == "invalid_upload"


def test_wrong_content_type_is_refused() -> None:
    with pytest.raises(InvalidInput):
        list(multipart_file_chunks("application/json", iter([b"{}"]), MultipartFile()))


@settings(max_examples=300, deadline=None)
@given(garbage=st.binary(max_size=2000))
def test_garbage_bodies_never_crash_with_anything_but_a_domain_error(garbage: bytes) -> None:
    with contextlib.suppress(DomainError):
        list(
            multipart_file_chunks(
                f"multipart/form-data; boundary={BOUNDARY}", iter([garbage]), MultipartFile()
            )
        )


def test_tus_metadata() -> None:
    encoded = base64.b64encode(b"Anruf mit Oma.wav").decode()
    assert parse_metadata(f"filename {encoded},is_confidential") == {
        "filename": "Anruf mit Oma.wav",
        "is_confidential": "",
    }
    assert parse_metadata(None) == {}
    for bad in (
        "filename !!!notbase64",
        "a b c",
        " ",
        "filename " + base64.b64encode(b"\xff").decode(),
    ):
        with pytest.raises(InvalidInput) as caught:
            parse_metadata(bad)
        assert caught.value.code == "invalid_tus_metadata"


@given(st.text(max_size=300))
def test_tus_metadata_never_crashes(header: str) -> None:
    with contextlib.suppress(InvalidInput):
        parse_metadata(header)


@pytest.mark.parametrize(
    ("given_name", "shown"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\call.m4a", "call.m4a"),
        ("invoice\u202egnp.exe", "invoicegnp.exe"),  # right-to-left override removed
        ("a\x00b\nc.txt", "abc.txt"),
        ("", "upload"),
        ("...", "upload"),
        ("x" * 500, "x" * 200),
    ],
)
def test_display_names_are_made_safe(given_name: str, shown: str) -> None:
    assert safe_display_name(given_name) == shown


@given(st.text(max_size=400))
def test_display_names_never_contain_separators_or_controls(name: str) -> None:
    shown = safe_display_name(name)
    assert "/" not in shown and "\\" not in shown
    assert 1 <= len(shown) <= 200
    assert all(ord(ch) >= 32 and ch not in "\u202e\u202d\u2066\u2067" for ch in shown)
