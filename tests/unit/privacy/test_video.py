"""Videos: faces blurred on every frame (detected on a stride, tracked between), container
metadata gone, and the sound through the audio path (the other voice silenced)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from tests.media_factory import moving_face_box, moving_face_video

from fairtrain.media import decode_audio
from fairtrain.privacy import media


def _detail(pixels: np.ndarray) -> float:
    grey = pixels.astype(float).mean(axis=-1)
    return float(np.abs(np.diff(grey, axis=0)).mean() + np.abs(np.diff(grey, axis=1)).mean())


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


@pytest.fixture(scope="module")
def redacted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, object]]:
    folder = tmp_path_factory.mktemp("video")
    source = moving_face_video(folder)
    media_type, report = media.redact_video(source, folder / "shared.mp4")
    assert media_type == "video/mp4"
    return source, folder / "shared.mp4", report


def test_every_frame_has_the_face_blurred_though_only_some_were_searched(
    redacted: tuple[Path, Path, dict[str, object]],
) -> None:
    source, shared, report = redacted
    before, after = _frames(source), _frames(shared)
    assert len(after) == len(before) == report["frames"]
    assert report["frames_detected"] < len(before) / 2  # the stride: not every frame
    assert report["frames_with_faces"] == len(before)
    for index, (original, blurred) in enumerate(zip(before, after, strict=True)):
        x1, y1, x2, y2 = moving_face_box(index)
        face_before = original[y1:y2, x1:x2]
        face_after = blurred[y1:y2, x1:x2]
        assert _detail(face_after) < 0.35 * _detail(face_before), f"frame {index}"


def test_the_container_metadata_is_gone(redacted: tuple[Path, Path, dict[str, object]]) -> None:
    source, shared, report = redacted
    with av.open(str(source)) as container:
        assert container.metadata.get("title") == "Holiday at home"
    with av.open(str(shared)) as container:
        tags = {k.lower(): v for k, v in container.metadata.items()}
        assert "title" not in tags and "location" not in tags
        assert all("Holiday" not in str(v) for v in container.streams.audio[0].metadata.values())
    assert report["metadata_removed"] is True


def test_the_sound_goes_through_the_audio_path(
    redacted: tuple[Path, Path, dict[str, object]],
) -> None:
    source, shared, report = redacted
    assert report["audio_kept"] is True
    audio = report["audio"]
    assert isinstance(audio, dict) and audio["speakers"] == 2
    counterparties = report["counterparties"]
    assert isinstance(counterparties, list)
    assert [p["part"] for p in counterparties] == ["speaker:2"]
    rate = 16_000
    kept, original = decode_audio(shared, rate=rate), decode_audio(source, rate=rate)

    def energy(samples: np.ndarray, start: float, end: float) -> float:
        return float(np.sqrt(np.mean(samples[int(start * rate) : int(end * rate)] ** 2)))

    assert energy(kept, 6.4, 9.7) < 0.01 * energy(original, 6.4, 9.7)  # the other voice
    assert energy(kept, 0.5, 4.5) > 0.5 * energy(original, 0.5, 4.5)  # the contributor's
