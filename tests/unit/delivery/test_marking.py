"""The delivered copy of each kind of item: marked for its key, otherwise unchanged."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile
from PIL import Image
from tests import media_factory
from tests.unit.delivery.watermark_media import encoded, photo

from fairtrain.delivery.fingerprint import detect_audio
from fairtrain.delivery.marking import AUDIO_BLOCK_SECONDS, delivered_type, mark_copy
from fairtrain.delivery.watermark import detect_image, detect_video
from fairtrain.errors import InvalidInput, UnsupportedMedia

KEY = b"k" * 32
OTHER = b"o" * 32


def test_a_picture_keeps_its_format_and_carries_the_key(tmp_path: Path) -> None:
    source = tmp_path / "cat.jpg"
    source.write_bytes(encoded(photo("chelsea.png"), quality=92))
    target = tmp_path / "out.jpg"
    copy = mark_copy(source, target, modality="image", media_type="image/jpeg", key=KEY)
    assert (copy.method, copy.media_type, copy.extension) == (
        "image_spread_spectrum",
        "image/jpeg",
        "jpg",
    )
    with Image.open(target) as marked:
        assert marked.format == "JPEG"
    assert detect_image(target.read_bytes(), {"ours": KEY, "theirs": OTHER}).licence_id == "ours"


def test_a_picture_type_without_a_mark_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "x.bmp"
    Image.new("RGB", (64, 64)).save(source, format="BMP")
    with pytest.raises(UnsupportedMedia) as refused:
        delivered_type("image/bmp")
    assert refused.value.code == "delivery_unsupported_media"
    with pytest.raises(UnsupportedMedia):
        mark_copy(source, tmp_path / "y", modality="image", media_type="image/bmp", key=KEY)


def _recording(path: Path, seconds: float, rate: int = 16_000, channels: int = 1) -> np.ndarray:
    # Noise shaped like syllables: loud and quiet stretches, never silent.
    rng = np.random.default_rng(5)
    count = int(seconds * rate)
    envelope = 0.05 + 0.25 * (1 + np.sin(np.arange(count) / rate * 2 * np.pi * 3)) / 2
    samples = (rng.normal(0, 1, (count, channels)) * envelope[:, None]).clip(-1, 1)
    soundfile.write(str(path), samples, rate, format="FLAC", subtype="PCM_16")
    return np.asarray(soundfile.read(str(path), dtype="float32", always_2d=True)[0])


def test_a_recording_longer_than_a_block_is_marked_throughout(tmp_path: Path) -> None:
    source = tmp_path / "long.flac"
    original = _recording(source, 2.2 * AUDIO_BLOCK_SECONDS, channels=2)
    target = tmp_path / "out.flac"
    copy = mark_copy(source, target, modality="audio", media_type="audio/flac", key=KEY)
    assert (copy.method, copy.media_type, copy.extension) == (
        "audio_spread_spectrum",
        "audio/flac",
        "flac",
    )
    marked, rate = soundfile.read(str(target), dtype="float32", always_2d=True)
    assert rate == 16_000 and marked.shape == original.shape
    noise = marked - original
    snr = 10 * np.log10(np.sum(original**2) / np.sum(noise**2))
    assert 15 < snr < 30, snr
    # Each block carries the mark on its own (the last, shorter one too).
    block = rate * AUDIO_BLOCK_SECONDS
    for start in (0, block, 2 * block):
        piece = marked[start : start + block].T
        found = detect_audio(np.ascontiguousarray(piece), rate, {"ours": KEY, "theirs": OTHER})
        assert found.licence_id == "ours", (start, found)


def test_an_undecodable_recording_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "bad.flac"
    source.write_bytes(b"fLaC" + b"\x00" * 100)
    with pytest.raises(InvalidInput) as refused:
        mark_copy(source, tmp_path / "o", modality="audio", media_type="audio/flac", key=KEY)
    assert refused.value.code == "corrupt_media"


def test_a_text_keeps_every_word_and_its_line_endings(tmp_path: Path) -> None:
    text = "It's the library's garden.\r\nWe're planting beans, and you're welcome.\r\n" * 20
    source = tmp_path / "letter.txt"
    source.write_bytes(text.encode("utf-8"))
    target = tmp_path / "out.txt"
    copy = mark_copy(source, target, modality="text", media_type="text/plain; charset=utf-8",
                     key=KEY)  # fmt: skip
    assert (copy.method, copy.media_type) == ("text_variants", "text/plain")
    marked = target.read_bytes().decode("utf-8")
    assert marked.count("\r\n") == text.count("\r\n")
    assert marked.replace("\u2019", "'").replace("\u00a0", " ") == text
    assert marked != text
    not_utf8 = tmp_path / "latin1.txt"
    not_utf8.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(InvalidInput):
        mark_copy(not_utf8, tmp_path / "x", modality="text", media_type="text/plain", key=KEY)


def test_a_document_is_delivered_as_it_is(tmp_path: Path) -> None:
    source = media_factory.make("handwriting-pdf", tmp_path)
    target = tmp_path / "out.pdf"
    copy = mark_copy(source, target, modality="document", media_type="application/pdf", key=KEY)
    assert (copy.method, copy.extension) == ("none", "pdf")
    assert target.read_bytes() == source.read_bytes()


def test_a_video_becomes_a_marked_mp4(tmp_path: Path) -> None:
    source = media_factory.make("mp4", tmp_path)
    target = tmp_path / "out.mp4"
    copy = mark_copy(source, target, modality="video", media_type="video/mp4", key=KEY)
    assert (copy.method, copy.media_type, copy.extension) == (
        "video_spread_spectrum",
        "video/mp4",
        "mp4",
    )
    assert detect_video(target, {"ours": KEY, "theirs": OTHER}).licence_id == "ours"
    assert io.BytesIO(target.read_bytes()).read(12)[4:8] == b"ftyp"
