"""`fairtrain privacy scan-text` and `privacy redact` on real files of each modality."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import soundfile
from PIL import Image
from tests import media_factory
from typer.testing import CliRunner

from fairtrain.cli import app

runner = CliRunner()


def test_scan_text_prints_spans_and_the_redacted_text(tmp_path: Path) -> None:
    path = tmp_path / "note.txt"
    path.write_text("Mail maria.lopez@example.com or call +44 7700 900123 today.")
    result = runner.invoke(app, ["privacy", "scan-text", str(path), "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    kinds = {s["entity_type"] for s in body["spans"]}
    assert {"EMAIL_ADDRESS", "PHONE_NUMBER"} <= kinds
    assert all({"start", "end", "entity_type", "score"} == set(s) for s in body["spans"])
    assert "maria.lopez" not in body["redacted"] and "[EMAIL_ADDRESS_1]" in body["redacted"]
    piped = runner.invoke(app, ["privacy", "scan-text", "-", "--json"], input="I am Anna Berg.")
    assert piped.exit_code == 0 and "[PERSON_1]" in json.loads(piped.output)["redacted"]


@pytest.mark.parametrize("fmt", ["jpeg", "call", "mp4", "whatsapp-android", "handwriting-pdf"])
def test_redact_any_supported_file(fmt: str, tmp_path: Path) -> None:
    source = media_factory.make(fmt, tmp_path / fmt)
    out = tmp_path / "out"
    extra = {"call": ["--channel", "0"], "whatsapp-android": ["--me", "Ada Okafor"]}.get(fmt, [])
    result = runner.invoke(app, ["privacy", "redact", str(source), "-o", str(out), *extra])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)["report"]
    data = out.read_bytes()
    if fmt == "jpeg":
        assert report["kind"] == "image" and not Image.open(io.BytesIO(data)).getexif()
    if fmt == "call":
        samples, _ = soundfile.read(io.BytesIO(data))
        assert samples.ndim == 1 and report["kept_channel"] == 0
    if fmt == "whatsapp-android":
        assert "Ben" not in data.decode() and "[CONTRIBUTOR]" in data.decode()
    if fmt == "handwriting-pdf":
        assert data.startswith(b"%PDF")


def test_redact_says_what_it_needs_and_refuses_bad_files(tmp_path: Path) -> None:
    call = media_factory.make("call", tmp_path / "call")
    needs = runner.invoke(app, ["privacy", "redact", str(call), "-o", str(tmp_path / "o")])
    assert needs.exit_code == 2 and "audio_channel_needed" in needs.output
    chat = media_factory.make("whatsapp-ios", tmp_path / "chat")
    who = runner.invoke(app, ["privacy", "redact", str(chat), "-o", str(tmp_path / "o")])
    assert who.exit_code == 2 and "chat_sender_needed" in who.output and "Ben Stone" in who.output
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"MZ" + b"\x00" * 300)
    refused = runner.invoke(app, ["privacy", "redact", str(junk), "-o", str(tmp_path / "o")])
    assert refused.exit_code == 2 and "unsupported_type" in refused.output
    assert not (tmp_path / "o").exists()


def test_redact_takes_the_contributors_face_and_voice_and_says_the_residual_risk(
    tmp_path: Path,
) -> None:
    photo = tmp_path / "two.png"
    media_factory.two_faces_picture().save(photo)
    out = tmp_path / "out.png"
    default = runner.invoke(app, ["privacy", "redact", str(photo), "-o", str(out)])
    assert default.exit_code == 0, default.output
    body = json.loads(default.output)
    assert body["report"]["faces_blurred"] == 1
    assert "your face is visible" in body["risk"]["summary"]
    none = runner.invoke(
        app, ["privacy", "redact", str(photo), "-o", str(out), "--own-face", "none"]
    )
    assert none.exit_code == 0 and json.loads(none.output)["report"]["faces_blurred"] == 2
    voices = media_factory.two_speaker_mono(tmp_path)
    flac = tmp_path / "out.flac"
    chosen = runner.invoke(
        app, ["privacy", "redact", str(voices), "-o", str(flac), "--speaker", "2"]
    )
    assert chosen.exit_code == 0, chosen.output
    spoken = json.loads(chosen.output)
    assert spoken["report"]["contributor_speaker"] == 2
    assert "voice is identifiable" in spoken["risk"]["summary"]
