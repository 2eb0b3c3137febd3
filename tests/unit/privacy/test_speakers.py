"""Mono recordings: voices told apart, the contributor's kept, the other person's muted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
from tests.media_factory import CONTRIBUTOR_LINES, speech_wav, two_speaker_mono

from fairtrain.errors import InvalidInput
from fairtrain.media import decode_audio, speech_segments
from fairtrain.privacy import media
from fairtrain.privacy.speakers import cluster_speakers, mfcc

OTHER = (5.9, 10.2)  # when the other voice speaks in two_speaker_mono


@pytest.fixture(scope="module")
def two_voices(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return two_speaker_mono(tmp_path_factory.mktemp("voices"))


def _energy(samples: np.ndarray, rate: int, start: float, end: float) -> float:
    piece = samples[int(start * rate) : int(end * rate)]
    return float(np.sqrt(np.mean(piece**2))) if piece.size else 0.0


def test_mfcc_has_one_row_per_ten_milliseconds() -> None:
    rows = mfcc(np.zeros(16_000, dtype=np.float32))
    assert rows.shape == (98, 20) and np.isfinite(rows).all()


def test_two_voices_are_two_speakers_in_turn(two_voices: Path) -> None:
    samples = decode_audio(two_voices)
    turns = cluster_speakers(samples, speech_segments(samples))
    assert [t.speaker for t in turns] == [1, 2, 1]
    other = turns[1]
    assert other.start == pytest.approx(OTHER[0], abs=0.4)
    assert other.end == pytest.approx(OTHER[1], abs=0.4)


def test_one_voice_is_one_speaker(tmp_path: Path) -> None:
    path = speech_wav(tmp_path, " ".join(CONTRIBUTOR_LINES))
    samples = decode_audio(path)
    turns = cluster_speakers(samples, speech_segments(samples))
    assert turns and {t.speaker for t in turns} == {1}
    _, report = media.redact_audio(path, tmp_path / "one.flac")
    assert report["speakers"] == 1 and "counterparties" not in report


def test_the_other_voice_is_muted_and_named_as_a_part(two_voices: Path, tmp_path: Path) -> None:
    _, report = media.redact_audio(two_voices, tmp_path / "mine.flac")
    assert report["speakers"] == 2 and report["contributor_speaker"] == 1
    [part] = report["counterparties"]
    assert (part["part"], part["kind"], part["label"], part["included"]) == (
        "speaker:2", "speaker", "speaker 2", False
    )  # fmt: skip
    assert part["speech_seconds"] == pytest.approx(OTHER[1] - OTHER[0], abs=0.8)
    assert [s["start"] for s in report["removed_speech"]] == [part["segments"][0][0]]
    shared, rate = soundfile.read(tmp_path / "mine.flac")
    original = decode_audio(two_voices, rate=rate)
    assert _energy(shared, rate, 6.3, 9.8) == 0.0  # the other person: silent
    assert _energy(shared, rate, 0.5, 4.5) > 0.5 * _energy(original, rate, 0.5, 4.5)
    assert _energy(shared, rate, 11.5, 15.0) > 0.5 * _energy(original, rate, 11.5, 15.0)


def test_a_consenting_speaker_is_kept_and_the_contributor_can_say_which_voice_is_theirs(
    two_voices: Path, tmp_path: Path
) -> None:
    _, kept = media.redact_audio(two_voices, tmp_path / "both.flac", consenting_speakers={2})
    both, rate = soundfile.read(tmp_path / "both.flac")
    assert kept["included_speakers"] == [2] and kept["removed_speech"] == []
    assert kept["counterparties"][0]["included"] is True
    assert _energy(both, rate, 6.3, 9.8) > 0.01
    _, theirs = media.redact_audio(two_voices, tmp_path / "theirs.flac", speaker=2)
    assert theirs["contributor_speaker"] == 2 and theirs["contributor_speaker_chosen"] is True
    assert [p["part"] for p in theirs["counterparties"]] == ["speaker:1"]
    other, _ = soundfile.read(tmp_path / "theirs.flac")
    assert _energy(other, rate, 0.5, 4.5) == 0.0 and _energy(other, rate, 6.3, 9.8) > 0.01
    with pytest.raises(InvalidInput) as refused:
        media.redact_audio(two_voices, tmp_path / "x.flac", speaker=3)
    assert refused.value.code == "invalid_speaker"


def test_only_speaker_is_their_turns_and_silence_elsewhere(
    two_voices: Path, tmp_path: Path
) -> None:
    assert media.only_speaker(two_voices, tmp_path / "p.flac", [[6.0, 10.0]]) == "audio/flac"
    part, rate = soundfile.read(tmp_path / "p.flac")
    assert _energy(part, rate, 0.0, 5.9) == 0.0 and _energy(part, rate, 11.0, 16.0) == 0.0
    assert _energy(part, rate, 6.5, 9.5) > 0.01


def test_long_recordings_are_clustered_on_a_sample_with_the_same_turns(
    two_voices: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fairtrain.privacy import speakers

    samples = decode_audio(two_voices)
    segments = speech_segments(samples)
    whole = cluster_speakers(samples, segments)
    monkeypatch.setattr(speakers, "MAX_CLUSTERED", 12)  # fewer than the windows here
    sampled = cluster_speakers(samples, segments)
    assert [t.speaker for t in sampled] == [1, 2, 1]
    edges = [edge for t in sampled for edge in (t.start, t.end)]
    assert edges == pytest.approx([edge for t in whole for edge in (t.start, t.end)], abs=0.6)
