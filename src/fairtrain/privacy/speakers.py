"""Who speaks when in a mono recording: speech windows clustered by their voice.

A mono recording keeps every voice on one track, so the other people in it cannot be cut
out by channel. Each speech segment (Silero VAD) is cut into windows of about a second;
each window is described by the mean and spread of its MFCCs (the spectral envelope,
which follows the speaker's vocal tract) and its median pitch; the windows are clustered
bottom-up (Ward linkage on standardised features) and the number of speakers is the
cut with the best silhouette, or one speaker when no cut separates the windows clearly.

This is a light, CPU-only method with no model weights at all: it tells apart voices
that differ in pitch and timbre (a man and a woman, two different synthetic voices) and
may merge two similar voices into one. docs/privacy.md says so plainly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.cluster.hierarchy import fcluster, linkage  # type: ignore[import-untyped]
from scipy.fft import dct, rfft  # type: ignore[import-untyped]
from scipy.spatial.distance import pdist, squareform  # type: ignore[import-untyped]

from fairtrain.media import VAD_RATE, Segment

__all__ = ["SpeakerTurn", "cluster_speakers", "mfcc"]

WINDOW_SECONDS = 1.0
HOP_SECONDS = 0.5
MAX_SPEAKERS = 4
# A cut into k speakers is believed only when its silhouette is at least this: windows of
# one voice sit well apart from the others. One voice alone scores lower on any cut.
MIN_SILHOUETTE = 0.3
# A speaker needs this much speech to count; shorter clusters are noise or coughs and
# join the nearest speaker.
MIN_SPEAKER_SECONDS = 1.0
# At most this many windows (about 12 minutes of speech) are clustered directly; longer
# recordings are clustered on an even sample and the rest join the nearest centre, so
# memory stays near 20 MB whatever the length.
MAX_CLUSTERED = 1500

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class SpeakerTurn:
    start: float
    end: float
    speaker: int  # 1, 2, … in order of first appearance


def _mel_filters(bands: int, fft_size: int, rate: int) -> FloatArray:
    def to_mel(hz: FloatArray) -> FloatArray:
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    edges_mel = np.linspace(to_mel(np.array(60.0)), to_mel(np.array(rate / 2 - 200)), bands + 2)
    edges_hz = 700.0 * (10 ** (edges_mel / 2595.0) - 1.0)
    bins = np.floor((fft_size + 1) * edges_hz / rate).astype(int)
    filters = np.zeros((bands, fft_size // 2 + 1))
    for band in range(bands):
        left, centre, right = bins[band], bins[band + 1], bins[band + 2]
        if centre > left:
            filters[band, left:centre] = (np.arange(left, centre) - left) / (centre - left)
        if right > centre:
            filters[band, centre:right] = (right - np.arange(centre, right)) / (right - centre)
    return filters


_FRAME = int(0.025 * VAD_RATE)
_STEP = int(0.010 * VAD_RATE)
_FFT = 512
_FILTERS = _mel_filters(40, _FFT, VAD_RATE)


def _frames(samples: NDArray[np.float32]) -> FloatArray:
    if samples.size < _FRAME:
        samples = np.pad(samples, (0, _FRAME - samples.size))
    count = 1 + (samples.size - _FRAME) // _STEP
    index = np.arange(_FRAME)[None, :] + _STEP * np.arange(count)[:, None]
    emphasised = np.append(samples[0], samples[1:] - 0.97 * samples[:-1]).astype(np.float64)
    framed: FloatArray = emphasised[index] * np.hamming(_FRAME)
    return framed


def mfcc(samples: NDArray[np.float32], coefficients: int = 20) -> FloatArray:
    """MFCCs of 16 kHz mono audio: one row per 10 ms frame (25 ms windows, 40 mel bands)."""
    power = np.abs(rfft(_frames(samples), n=_FFT)) ** 2 / _FFT
    energies = np.log(np.maximum(power @ _FILTERS.T, 1e-10))
    cepstrum: FloatArray = np.asarray(dct(energies, type=2, axis=1, norm="ortho"))
    return cepstrum[:, :coefficients]


def _pitch(samples: NDArray[np.float32]) -> float:
    """Median fundamental frequency (autocorrelation, 60–400 Hz) of voiced frames, in
    log-Hz; 0 when nothing is voiced."""
    frames = _frames(samples)
    spectrum = np.fft.rfft(frames, n=2 * _FFT)
    correlation = np.fft.irfft(np.abs(spectrum) ** 2)[:, :_FFT]
    low, high = VAD_RATE // 400, VAD_RATE // 60
    lags = correlation[:, low:high]
    best = lags.argmax(axis=1)
    strength = lags.max(axis=1) / np.maximum(correlation[:, 0], 1e-10)
    voiced = strength > 0.4
    if not voiced.any():
        return 0.0
    return float(np.log(VAD_RATE / np.median(best[voiced] + low)))


def _windows(segments: list[Segment], total: float) -> list[tuple[float, float]]:
    windows: list[tuple[float, float]] = []
    for segment in segments:
        start, end = max(0.0, segment.start), min(total, segment.end)
        if end - start < 0.3:
            continue
        at = start
        while at + WINDOW_SECONDS <= end:
            windows.append((at, at + WINDOW_SECONDS))
            at += HOP_SECONDS
        if not windows or windows[-1][1] < end - 0.25:
            windows.append((max(start, end - WINDOW_SECONDS), end))
    return windows


def _features(samples: NDArray[np.float32], windows: list[tuple[float, float]]) -> FloatArray:
    rows = []
    for start, end in windows:
        piece = samples[int(start * VAD_RATE) : int(end * VAD_RATE)]
        coefficients = mfcc(piece)[:, 1:]  # c0 is loudness, not voice
        rows.append(
            np.concatenate(
                [coefficients.mean(axis=0), coefficients.std(axis=0), [_pitch(piece) * 4.0]]
            )
        )
    return np.asarray(rows)


def _silhouette(points: FloatArray, labels: NDArray[np.int_]) -> float:
    distances = squareform(pdist(points))
    scores = []
    for index, label in enumerate(labels):
        same = labels == label
        if same.sum() <= 1:
            scores.append(0.0)
            continue
        inside = distances[index, same].sum() / (same.sum() - 1)
        outside = min(distances[index, labels == other].mean() for other in set(labels) - {label})
        scores.append((outside - inside) / max(inside, outside, 1e-10))
    return float(np.mean(scores))


def _cluster(points: FloatArray) -> NDArray[np.int_]:
    """Cluster labels (1…k) of standardised window features. Long recordings are
    clustered on an even sample of :data:`MAX_CLUSTERED` windows (linkage and silhouette
    are quadratic in memory), and every window then joins the nearest cluster centre."""
    sample = (
        np.linspace(0, len(points) - 1, MAX_CLUSTERED).astype(int)
        if len(points) > MAX_CLUSTERED
        else np.arange(len(points))
    )
    chosen = points[sample]
    tree = linkage(chosen, method="ward")
    best, labels = MIN_SILHOUETTE, np.ones(len(chosen), dtype=int)
    for count in range(2, min(MAX_SPEAKERS, len(chosen) - 1) + 1):
        cut = fcluster(tree, count, criterion="maxclust")
        if len(set(cut)) < 2:
            continue
        sizes = np.bincount(cut)[1:]
        if sizes.min() * HOP_SECONDS < MIN_SPEAKER_SECONDS:
            continue
        score = _silhouette(chosen, cut)
        if score > best:
            best, labels = score, cut
    if len(sample) == len(points):
        return np.asarray(labels, dtype=int)
    numbers = sorted({int(v) for v in labels})
    centres = np.stack([chosen[labels == n].mean(axis=0) for n in numbers])
    nearest = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=-1).argmin(axis=1)
    return np.asarray([numbers[i] for i in nearest], dtype=int)


def _relabel(labels: NDArray[np.int_]) -> NDArray[np.int_]:
    order: dict[int, int] = {}
    for label in labels:
        order.setdefault(int(label), len(order) + 1)
    return np.array([order[int(label)] for label in labels])


def cluster_speakers(samples: NDArray[np.float32], segments: list[Segment]) -> list[SpeakerTurn]:
    """Speaker turns of 16 kHz mono audio over its speech ``segments``; speakers are
    numbered from 1 in order of first appearance (one speaker when they cannot be told
    apart)."""
    total = samples.size / VAD_RATE
    windows = _windows(segments, total)
    if not windows:
        return []
    labels = np.ones(len(windows), dtype=int)
    if len(windows) >= 4:
        features = _features(samples, windows)
        spread = features.std(axis=0)
        points = (features - features.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
        labels = _cluster(points)
    labels = _relabel(labels)
    return _turns(windows, labels, segments, total)


def _turns(
    windows: list[tuple[float, float]],
    labels: NDArray[np.int_],
    segments: list[Segment],
    total: float,
) -> list[SpeakerTurn]:
    """Each speech segment cut where the window labels change (at the middle of the
    overlap of two windows), with runs of one odd window smoothed away."""
    smoothed = labels.copy()
    for index in range(1, len(labels) - 1):
        if labels[index - 1] == labels[index + 1] != labels[index]:
            smoothed[index] = labels[index - 1]
    turns: list[SpeakerTurn] = []
    for segment in segments:
        inside = [
            (window, int(label))
            for window, label in zip(windows, smoothed, strict=True)
            if segment.start - 1e-6 <= window[0] and window[1] <= segment.end + 1e-6
        ]
        if not inside:
            continue
        start = max(0.0, segment.start)
        current = inside[0][1]
        for (window, label), (previous, _) in zip(inside[1:], inside[:-1], strict=True):
            if label != current:
                cut = (window[0] + previous[1]) / 2
                turns.append(SpeakerTurn(round(start, 2), round(cut, 2), current))
                start, current = cut, label
        turns.append(SpeakerTurn(round(start, 2), round(min(total, segment.end), 2), current))
    return turns
