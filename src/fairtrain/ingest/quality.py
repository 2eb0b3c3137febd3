"""Quality scores stored per asset, each with a sentence on how to do better.

Audio: speech share (Silero VAD), a signal-to-noise estimate (speech energy against the
energy of the pauses between speech), clipping and loudness. Images: sharpness (variance
of the Laplacian), exposure (mean brightness and clipped shadows/highlights), resolution.
Video: the image scores on frames sampled across the clip, and the audio scores of its
sound track. Scores are measurements; thresholds come from settings and only decide
which advice is shown.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from fairtrain.config import Settings
from fairtrain.media import VAD_RATE, decode_audio, sample_frames, speech_probabilities

__all__ = ["Thresholds", "audio_quality", "image_quality", "score", "video_quality"]

# Scoring reads at most this much audio: enough for a stable estimate of a long recording.
MAX_AUDIO_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class Thresholds:
    min_speech_share: float
    min_snr_db: float
    max_clipping: float
    min_loudness_dbfs: float
    min_sharpness: float
    min_megapixels: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        return cls(
            min_speech_share=settings.quality_min_speech_share,
            min_snr_db=settings.quality_min_snr_db,
            max_clipping=settings.quality_max_clipping,
            min_loudness_dbfs=settings.quality_min_loudness_dbfs,
            min_sharpness=settings.quality_min_sharpness,
            min_megapixels=settings.quality_min_megapixels,
        )


def _score(value: float, ok: bool, advice: str, unit: str = "") -> dict[str, Any]:
    return {"value": round(value, 4), "unit": unit, "ok": ok, "advice": None if ok else advice}


def _db(value: float) -> float:
    return 10.0 * math.log10(max(value, 1e-12))


def audio_quality(samples: NDArray[np.float32], thresholds: Thresholds) -> dict[str, Any]:
    """Scores of 16 kHz mono samples."""
    if samples.size == 0:
        return {"speech_share": _score(0.0, False, "We heard no sound at all.")}
    probabilities, step = speech_probabilities(samples)
    window = int(step * VAD_RATE)
    frames = (
        samples[: len(probabilities) * window].reshape(-1, window) if len(probabilities) else None
    )
    speech = probabilities >= 0.5
    share = float(speech.mean()) if speech.size else 0.0
    if frames is not None and speech.any() and (~speech).any():
        # Robust to VAD edges: typical speech window against the quieter pauses.
        power = np.mean(frames.astype(np.float64) ** 2, axis=1)
        speech_power = float(np.median(power[speech]))
        noise_power = float(np.percentile(power[~speech], 30))
        snr = _db(speech_power) - _db(noise_power)
    else:
        snr = 60.0 if share > 0 and frames is not None and not (~speech).any() else 0.0
    clipping = float(np.mean(np.abs(samples) >= 0.999))
    loudness = _db(float(np.mean(samples.astype(np.float64) ** 2)))
    return {
        "speech_share": _score(
            share,
            share >= thresholds.min_speech_share,
            "Most of this recording is not speech: trim long silences or background-only parts.",
        ),
        "snr_db": _score(
            snr,
            snr >= thresholds.min_snr_db,
            "Too much background noise: record in a quieter room, closer to the microphone.",
            "dB",
        ),
        "clipping": _score(
            clipping,
            clipping <= thresholds.max_clipping,
            "The sound is distorted (too loud): move back from the microphone or lower the "
            "input volume.",
        ),
        "loudness_dbfs": _score(
            loudness,
            loudness >= thresholds.min_loudness_dbfs,
            "The recording is very quiet: speak closer to the microphone.",
            "dBFS",
        ),
    }


def _frame_scores(frames: Iterable[NDArray[np.uint8]]) -> tuple[float, float, float, int, int]:
    sharpness: list[float] = []
    brightness: list[float] = []
    clipped: list[float] = []
    width = height = 0
    for frame in frames:
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame
        height, width = grey.shape[:2]
        # Compare sharpness at a common scale: large photos are not "sharper" by size alone.
        scale = 1024 / max(width, height)
        if scale < 1:
            grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        sharpness.append(float(cv2.Laplacian(grey, cv2.CV_64F).var()))
        brightness.append(float(grey.mean()) / 255.0)
        clipped.append(float(np.mean((grey <= 3) | (grey >= 252))))
    if not sharpness:
        return 0.0, 0.0, 1.0, 0, 0
    return (
        float(np.median(sharpness)),
        float(np.mean(brightness)),
        float(np.mean(clipped)),
        width,
        height,
    )


def _visual(frames: Iterable[NDArray[np.uint8]], thresholds: Thresholds) -> dict[str, Any]:
    sharpness, brightness, clipped, width, height = _frame_scores(frames)
    megapixels = width * height / 1e6
    exposure_ok = 0.15 <= brightness <= 0.85 and clipped <= 0.25
    advice = (
        "The picture is too dark: add light or face a window."
        if brightness < 0.15
        else "The picture is too bright or washed out: avoid direct sun or flash."
    )
    return {
        "sharpness": _score(
            sharpness,
            sharpness >= thresholds.min_sharpness,
            "The picture is blurry: hold the camera still and tap to focus.",
        ),
        "exposure": _score(brightness, exposure_ok, advice),
        "megapixels": _score(
            megapixels,
            megapixels >= thresholds.min_megapixels,
            "The resolution is low: use the main camera at its full resolution.",
            "MP",
        ),
    }


def image_quality(path: Path, thresholds: Thresholds) -> dict[str, Any]:
    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB"))
    return _visual([rgb], thresholds)


def video_quality(path: Path, thresholds: Thresholds) -> dict[str, Any]:
    scores = _visual(sample_frames(path, count=8), thresholds)
    samples = decode_audio(path, max_seconds=MAX_AUDIO_SECONDS)
    if samples.size:
        scores |= {f"audio_{k}": v for k, v in audio_quality(samples, thresholds).items()}
    return scores


def score(path: Path, modality: str, thresholds: Thresholds) -> dict[str, Any]:
    """Quality scores for a decoded, accepted file of ``modality``."""
    if modality == "audio":
        return audio_quality(decode_audio(path, max_seconds=MAX_AUDIO_SECONDS), thresholds)
    if modality == "image":
        return image_quality(path, thresholds)
    if modality == "video":
        return video_quality(path, thresholds)
    return {}  # text, chats and PDF scans: length and counts live in media_info
