"""Other people's parts: named in the reports, left in by consent, and cut out on their own
(a sender's messages, one channel, one face) for the person's invite page."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import soundfile
from PIL import Image, ImageOps
from skimage import data as skimage_data

from fairtrain.errors import InvalidInput
from fairtrain.ingest.chats import ChatMessage, ChatTranscript
from fairtrain.privacy import media
from fairtrain.privacy.chat import SENDER_PART, chat_parts, only_sender, redact_chat

AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def chat() -> ChatTranscript:
    return ChatTranscript(
        format="whatsapp-android",
        messages=[
            ChatMessage("", "Anna added Bob", AT, is_system=True),
            ChatMessage("Me", "hi anna, my number is 0494 92 82 32", AT),
            ChatMessage("Anna Kowalska", "hello! I live at 12 Baker Street", AT),
            ChatMessage("Bob", "who is this", AT),
            ChatMessage("anna kowalska ", "and I am free on Friday", AT),
            ChatMessage("Me", "great", AT),
        ],
        participants=["Me", "Anna Kowalska", "Bob"],
    )


def test_only_sender_is_their_own_messages_and_nothing_else() -> None:
    theirs = only_sender(chat(), "Anna Kowalska")
    assert [m.text for m in theirs.messages] == [
        "hello! I live at 12 Baker Street",  # as they wrote it: it is theirs
        "and I am free on Friday",  # the export spelled the name differently here
    ]
    assert theirs.participants == ["Anna Kowalska"]
    assert all(not m.is_system for m in theirs.messages)  # "Anna added Bob" names Bob
    assert "0494" not in str(theirs) and "who is this" not in str(theirs)


def test_only_sender_refuses_someone_who_wrote_nothing() -> None:
    with pytest.raises(InvalidInput) as refused:
        only_sender(chat(), "Carol")
    assert refused.value.code == "sender_not_in_chat"


def test_chat_parts_name_each_other_sender_with_the_label_redaction_gives() -> None:
    parts = chat_parts(chat(), "Me", consenting={"anna kowalska"})
    assert [(p["part"], p["messages"], p["included"]) for p in parts] == [
        ("chat_sender:Anna Kowalska", 2, True),
        ("chat_sender:Bob", 1, False),
    ]
    shared = redact_chat(chat(), "Me", consenting={"Anna Kowalska"})
    labels = {m.sender for m in shared.messages if not m.is_system}
    assert {p["pseudonym"] for p in parts} <= labels
    assert all(p["kind"] == SENDER_PART for p in parts)


# --- faces ------------------------------------------------------------------------------


def test_face_refs_round_trip_and_bad_ones_are_refused() -> None:
    face = media.FaceBox(10, 20, 80, 96, 0.9)
    assert media.parse_face_ref(media.face_ref(face)) == (10, 20, 80, 96)
    for bad in ("", "1,2,3", "a,b,c,d", "10,10,5,20", "1,2,3,4,5", "-1,0,4,4", "1234567,0,9,9"):
        with pytest.raises(InvalidInput):
            media.parse_face_ref(bad)
    assert media.same_face((10, 20, 80, 96), (12, 21, 81, 95))
    assert not media.same_face((10, 20, 80, 96), (80, 96, 120, 140))


@pytest.fixture(scope="module")
def astronaut(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("faces") / "astronaut.png"
    Image.fromarray(skimage_data.astronaut()).save(path)
    return path


def _detail(pixels: np.ndarray) -> float:
    grey = pixels.astype(float).mean(axis=-1)
    return float(np.abs(np.diff(grey, axis=0)).mean() + np.abs(np.diff(grey, axis=1)).mean())


def test_a_consenting_face_is_left_unblurred_and_reported(astronaut: Path, tmp_path: Path) -> None:
    _, blurred = media.redact_image(astronaut, tmp_path / "blurred.png", own_face="none")
    assert blurred["faces_blurred"] == 1
    [part] = blurred["counterparties"]
    assert part["kind"] == "face" and part["label"] == "face 1" and part["included"] is False
    box = media.parse_face_ref(part["ref"])
    _, kept = media.redact_image(
        astronaut, tmp_path / "kept.png", keep_faces=[box], own_face="none"
    )
    assert kept["faces_blurred"] == 0 and kept["counterparties"][0]["included"] is True
    x1, y1, x2, y2 = box
    original = np.asarray(Image.open(astronaut).convert("RGB"))[y1:y2, x1:x2]
    with Image.open(tmp_path / "kept.png") as image:
        assert np.array_equal(np.asarray(image)[y1:y2, x1:x2], original)
    with Image.open(tmp_path / "blurred.png") as image:
        assert _detail(np.asarray(image)[y1:y2, x1:x2]) < 0.2 * _detail(original)


def test_a_face_crop_is_that_face_only_without_metadata(tmp_path: Path) -> None:
    pixels = (np.arange(200 * 300 * 3).reshape(200, 300, 3) % 251).astype(np.uint8)
    picture = Image.fromarray(pixels, "RGB")
    exif = picture.getexif()
    exif[0x010F] = "PhoneMaker"
    exif[0x0112] = 6  # stored on its side: shown turned 90° clockwise
    source = tmp_path / "photo.png"  # lossless, so the crop can be compared pixel for pixel
    picture.save(source, exif=exif)
    target = tmp_path / "face.png"
    assert media.face_crop(source, target, (40, 100, 80, 140)) == "image/png"
    with Image.open(source) as opened:
        upright = np.asarray(ImageOps.exif_transpose(opened).convert("RGB"))
    assert upright.shape == (300, 200, 3)  # boxes are in upright pixels, as reports give them
    with Image.open(target) as crop:
        assert crop.size == (60, 60)  # the box grown by a quarter on each side
        assert not crop.getexif() and "exif" not in crop.info
        assert np.array_equal(np.asarray(crop), upright[90:150, 30:90])
    with pytest.raises(InvalidInput):
        media.face_crop(source, target, (5000, 5000, 5100, 5100))


# --- channels ---------------------------------------------------------------------------

RATE = 16_000


def _call(path: Path, seconds: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(int(RATE * seconds)) / RATE
    rng = np.random.default_rng(5)
    left = (0.3 * np.sin(2 * np.pi * 220 * t) * (rng.random(t.size) > 0.1)).astype(np.float32)
    right = (0.3 * rng.standard_normal(t.size)).clip(-0.9, 0.9).astype(np.float32)
    soundfile.write(str(path), np.stack([left, right], axis=1), RATE, subtype="PCM_16")
    return left, right


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    size = min(a.size, b.size)
    return float(np.corrcoef(a[:size], b[:size])[0, 1])


def test_only_channel_is_that_channel(tmp_path: Path) -> None:
    left, right = _call(tmp_path / "call.wav")
    media_type, seconds = media.only_channel(tmp_path / "call.wav", tmp_path / "r.flac", 1)
    assert media_type == "audio/flac" and seconds == pytest.approx(3.0, abs=0.05)
    samples, rate = soundfile.read(tmp_path / "r.flac")
    assert rate == RATE and samples.ndim == 1
    assert _corr(samples, right) > 0.999 and abs(_corr(samples, left)) < 0.1
    with pytest.raises(InvalidInput) as refused:
        media.only_channel(tmp_path / "call.wav", tmp_path / "x.flac", 2)
    assert refused.value.code == "invalid_audio_channel"


def test_a_consenting_channel_is_kept_in_place_and_others_stay_out(tmp_path: Path) -> None:
    left, right = _call(tmp_path / "call.wav")
    _, alone = media.redact_audio(tmp_path / "call.wav", tmp_path / "a.flac", channel=0)
    mono, _ = soundfile.read(tmp_path / "a.flac")
    assert mono.ndim == 1 and _corr(mono, left) > 0.999
    assert alone["included_channels"] == []
    assert alone["counterparties"] == [
        {"part": "audio_channel:1", "kind": "audio_channel", "ref": "1",
         "label": "the right channel", "speech_seconds": alone["counterparties"][0][
             "speech_seconds"], "included": False}
    ]  # fmt: skip
    _, both = media.redact_audio(
        tmp_path / "call.wav", tmp_path / "b.flac", channel=0, consenting_channels={1}
    )
    stereo, _ = soundfile.read(tmp_path / "b.flac")
    assert stereo.shape[1] == 2
    assert _corr(stereo[:, 0], left) > 0.999 and _corr(stereo[:, 1], right) > 0.999
    assert both["included_channels"] == [1] and both["removed_speech"] == []
    assert both["counterparties"][0]["included"] is True
    # Consent for the contributor's own channel changes nothing.
    _, own = media.redact_audio(
        tmp_path / "call.wav", io_path := tmp_path / "c.flac", channel=0, consenting_channels={0}
    )
    assert soundfile.read(io_path)[0].ndim == 1 and own["included_channels"] == []


def test_a_mono_recording_names_no_parts(tmp_path: Path) -> None:
    t = np.arange(RATE) / RATE
    soundfile.write(str(tmp_path / "m.wav"), 0.2 * np.sin(2 * np.pi * 300 * t), RATE)
    _, report = media.redact_audio(tmp_path / "m.wav", tmp_path / "m.flac")
    assert "counterparties" not in report
    buffer = io.BytesIO((tmp_path / "m.flac").read_bytes())
    assert soundfile.read(buffer)[0].ndim == 1
