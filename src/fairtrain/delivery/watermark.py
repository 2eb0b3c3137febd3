"""Per-licence invisible watermarks for pictures and videos, and the evidence they give.

Every delivered copy of a picture or video carries a mark keyed by the licence it was
delivered under, so a leaked copy can be traced to its licensee. The mark deters and
attributes; it does not prevent copying (see docs/watermark.md).

How the image mark works (a keyed spread-spectrum watermark in the luminance):

- A licence key seeds a 64×64 noise **tile** whose spectrum is flat in a mid band
  (0.06–0.25 cycles per canonical cell) and empty elsewhere. The tile is repeated over a
  **canonical grid** whose short side is 256 cells, whatever the picture's size, so a
  picture resized to any scale maps onto the same grid.
- The tiled pattern is stretched to the picture, weighted by local texture (busy areas
  hide more than flat sky) and added equally to R, G and B, which changes luminance
  only. Its strength is fixed in grey levels (RMS 2.4), which puts the mark alone at
  about 40 dB PSNR.
- Detection needs no original: the suspect's luminance is resized to the canonical
  grid, high-passed (the picture itself is the noise the mark must beat), folded modulo
  the tile (every repetition adds up coherently) and correlated with each candidate's
  tile at every cyclic shift with a phase-only (whitened) correlation. A crop moves the
  tiles (the shift search finds them); a crop of the short side also rescales the grid,
  so eleven grid scales (100 % down to 80 %) are tried, and the eight 90° rotations and mirror
  images.
- The peak's z-score over all shifts is converted to the probability that a picture
  *not* marked for that candidate scores as high anywhere in the search (Bonferroni
  over every shift, scale and orientation tried). A licence is named only when that
  probability, multiplied by the number of candidates, is below
  :data:`ATTRIBUTION_P_VALUE` (one in a million).

Videos carry a mark on every frame (re-encoded with H.264; the audio packets are copied
untouched). It is the same construction with its own tile, in a lower band
(0.03–0.12) and a little stronger (RMS 3.0), because H.264 wipes out mid-frequency
texture that does not move with the picture. Detection folds a sample of frames into
one accumulator, so the evidence of many frames adds up.

Everything here is a pure function of bytes, arrays and paths: no database, no HTTP.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from fairtrain.errors import InvalidInput, UnsupportedMedia

__all__ = [
    "ATTRIBUTION_P_VALUE",
    "IMAGE_MEDIA_TYPES",
    "MIN_KEY_BYTES",
    "CandidateScore",
    "Detection",
    "VideoMarkReport",
    "check_key",
    "combine_log_p_values",
    "decide",
    "detect_image",
    "detect_image_array",
    "detect_video",
    "embed_image",
    "embed_image_array",
    "embed_video",
    "keyed_seed",
    "z_tail",
]

# A licence is named only when the chance that an unmarked (or differently marked) file
# scores as high for any of the candidates is below this.
ATTRIBUTION_P_VALUE = 1e-6
MIN_KEY_BYTES = 16
IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
IMAGE_METHOD = "image_spread_spectrum"
VIDEO_METHOD = "video_spread_spectrum"

CANONICAL_SIDE = 256
TILE = 64


@dataclass(frozen=True, slots=True)
class _Profile:
    """Where in the spectrum the mark lives and how strong it is."""

    name: bytes
    band: tuple[float, float]  # cycles per canonical cell
    rms: float  # grey levels


# Pictures: a mid band survives JPEG 75 and halving; RMS 2.4 is ~40 dB PSNR.
PICTURE = _Profile(b"fairtrain/image-watermark/v1", (0.06, 0.25), 2.4)
# Video: H.264 smooths mid frequencies away from anything that does not move with the
# picture, so the video mark sits lower and a little stronger (~38 dB).
MOVING = _Profile(b"fairtrain/video-watermark/v1", (0.03, 0.12), 3.0)
JPEG_QUALITY = 95
# Crops of the short side rescale the canonical grid: try grids this much smaller.
GRID_SCALES = tuple(1.0 - 0.02 * step for step in range(11))  # 100 % down to 80 %
ORIENTATIONS = 8  # four 90° rotations, each also mirrored
VIDEO_SAMPLE_FRAMES = 48
VIDEO_CRF = "18"

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
Float32Array = NDArray[np.float32]
UInt8Array = NDArray[np.uint8]


# --- evidence -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CandidateScore:
    """One candidate licence's evidence: the score and the chance of it under no mark."""

    licence_id: str
    z: float
    # Probability that a file not marked for this licence scores at least this high,
    # already corrected for every position/scale/orientation the detector tried.
    p_value: float

    def as_dict(self) -> dict[str, Any]:
        return {"licence_id": self.licence_id, "z": round(self.z, 2), "p_value": self.p_value}


@dataclass(frozen=True, slots=True)
class Detection:
    """Which candidate licence a file carries the mark of, if any, and how sure that is.

    ``p_value`` is the probability of a false attribution: that a file not marked for
    any of the candidates (unmarked, or marked for another licence) would score as high
    as the best candidate did, for some candidate (Bonferroni over the candidates).
    ``licence_id`` is set only when it is at most ``ATTRIBUTION_P_VALUE``.
    """

    method: str
    licence_id: str | None
    z: float
    p_value: float
    scores: tuple[CandidateScore, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def confidence(self) -> float:
        return 1.0 - self.p_value

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "licence_id": self.licence_id,
            "z": round(self.z, 2),
            "p_value": self.p_value,
            "confidence": self.confidence,
            "scores": [score.as_dict() for score in self.scores],
            "details": dict(self.details),
        }


def z_tail(z: float, tests: int = 1) -> float:
    """P(max of ``tests`` standard normal scores ≥ z), bounded by Bonferroni; never 0."""
    single = 0.5 * math.erfc(z / math.sqrt(2.0))
    return max(min(1.0, tests * single), 1e-300)


def combine_log_p_values(log_p_values: Sequence[float]) -> float:
    """Fisher's combination of independent p-values, given as natural logs: the combined
    p-value (chi-square with 2k degrees of freedom, in closed form)."""
    half = -sum(log_p_values)  # the chi-square statistic over two
    count = len(log_p_values)
    if count == 0 or half <= 0:
        return 1.0
    # P(chi2_2k >= 2h) = exp(-h) * sum_{i<k} h^i / i!
    log_terms = [i * math.log(half) - math.lgamma(i + 1) for i in range(count)]
    top = max(log_terms)
    log_p = -half + top + math.log(sum(math.exp(t - top) for t in log_terms))
    return max(min(1.0, math.exp(log_p)), 1e-300)


def decide(
    method: str,
    scores: Iterable[CandidateScore],
    *,
    threshold: float = ATTRIBUTION_P_VALUE,
    details: Mapping[str, Any] | None = None,
) -> Detection:
    """Name the best-scoring candidate if its corrected p-value clears ``threshold``."""
    ranked = tuple(sorted(scores, key=lambda s: (s.p_value, -s.z)))
    if not ranked:
        return Detection(method, None, 0.0, 1.0, (), dict(details or {}))
    best = ranked[0]
    p_value = min(1.0, best.p_value * len(ranked))
    licence = best.licence_id if p_value <= threshold else None
    return Detection(method, licence, best.z, max(p_value, 1e-300), ranked, dict(details or {}))


def check_key(key: bytes) -> None:
    if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
        raise InvalidInput(
            f"A watermark key must be at least {MIN_KEY_BYTES} random bytes.",
            code="watermark_key_too_short",
        )


def keyed_seed(key: bytes, purpose: bytes) -> int:
    """A 256-bit seed for one use of a licence key; other uses cannot be derived from it."""
    check_key(key)
    return int.from_bytes(hmac.new(key, purpose, hashlib.sha256).digest(), "big")


# --- the keyed pattern ----------------------------------------------------------------


def _band_mask(band: tuple[float, float]) -> NDArray[np.bool_]:
    fy = np.fft.fftfreq(TILE)[:, None]
    fx = np.fft.rfftfreq(TILE)[None, :]
    radius = np.hypot(fy, fx)
    return np.asarray((radius >= band[0]) & (radius <= band[1]))


@lru_cache(maxsize=256)
def _tile(key: bytes, profile: _Profile) -> tuple[Float32Array, NDArray[np.complex128]]:
    """The licence's 64×64 tile (unit variance) and its unit-magnitude in-band spectrum."""
    mask = _band_mask(profile.band)
    rng = np.random.default_rng(keyed_seed(key, profile.name))
    phases = rng.random(mask.shape)
    spectrum = np.exp(2j * np.pi * phases) * mask
    tile = np.fft.irfft2(spectrum, s=(TILE, TILE))
    tile /= tile.std()
    # The irfft2 symmetrises the spectrum's edge columns: take the real tile's own spectrum.
    own = np.fft.rfft2(tile)
    unit = np.where(mask, own / np.maximum(np.abs(own), 1e-12), 0)
    return tile.astype(np.float32), unit


def _canonical_size(height: int, width: int, side: float = CANONICAL_SIDE) -> tuple[int, int]:
    scale = side / min(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


class _Marker:
    """The licence's pattern stretched to one picture size (reused for every video frame)."""

    def __init__(self, key: bytes, height: int, width: int, profile: _Profile) -> None:
        tile, _ = _tile(key, profile)
        self.rms = profile.rms
        grid_h, grid_w = _canonical_size(height, width)
        tiled = np.tile(tile, (grid_h // TILE + 1, grid_w // TILE + 1))[:grid_h, :grid_w]
        shrink = width < grid_w
        interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        self.pattern = cv2.resize(tiled, (width, height), interpolation=interpolation)
        # Texture is measured over about four canonical cells.
        self.window = max(3, round(min(height, width) / CANONICAL_SIDE * 4) | 1)

    def delta(self, luma: Float32Array) -> Float32Array:
        mean = cv2.blur(luma, (self.window, self.window))
        square = cv2.blur(luma * luma, (self.window, self.window))
        texture = np.sqrt(np.maximum(square - mean * mean, 0.0))
        # sqrt keeps flat areas marked (not zero) while busy ones carry more of the energy.
        weighted = self.pattern * np.sqrt(texture + 4.0)
        rms = float(np.sqrt(np.mean(weighted * weighted)))
        return (weighted * (self.rms / max(rms, 1e-6))).astype(np.float32)

    def apply(self, pixels: UInt8Array) -> UInt8Array:
        colour = pixels.ndim == 3
        values = pixels.astype(np.float32)
        luma = values @ _LUMA if colour else values
        delta = self.delta(np.ascontiguousarray(luma, dtype=np.float32))
        marked = values + (delta[..., None] if colour else delta)
        return np.asarray(np.clip(np.rint(marked), 0, 255), dtype=np.uint8)


def embed_image_array(pixels: UInt8Array, *, key: bytes) -> UInt8Array:
    """The picture (H×W grey or H×W×3 RGB, uint8) with the licence's mark added."""
    check_key(key)
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3) or min(pixels.shape[:2]) < 8:
        raise InvalidInput(
            "A picture to watermark must be 8-bit grey or RGB and at least 8 pixels wide.",
            code="watermark_bad_picture",
        )
    if pixels.ndim == 3 and pixels.shape[2] != 3:
        raise InvalidInput("Only RGB pictures can be watermarked.", code="watermark_bad_picture")
    return _Marker(key, pixels.shape[0], pixels.shape[1], PICTURE).apply(pixels)


def _decode(data: bytes) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise InvalidInput("This picture cannot be decoded.", code="corrupt_media") from error
    return image


def embed_image(data: bytes, *, key: bytes, media_type: str) -> bytes:
    """Mark an encoded picture and re-encode it in the same format.

    JPEG and lossy WebP are written at quality 95, PNG and lossless WebP losslessly.
    Grey pictures stay grey and an alpha channel is kept as it is; metadata is not
    carried over (delivered pictures have none: redaction removed it). 16-bit pictures
    become 8-bit.
    """
    check_key(key)
    if media_type not in IMAGE_MEDIA_TYPES:
        raise UnsupportedMedia(
            f"Pictures of type {media_type} cannot be watermarked; "
            f"use one of {', '.join(sorted(IMAGE_MEDIA_TYPES))}.",
            code="watermark_unsupported_media",
        )
    image = _decode(data)
    alpha = image.getchannel("A") if image.mode in {"RGBA", "LA", "PA"} else None
    grey = image.mode in {"L", "LA", "I", "I;16", "1"}
    pixels = np.asarray(image.convert("L" if grey else "RGB"), dtype=np.uint8)
    marked = Image.fromarray(embed_image_array(pixels, key=key))
    if alpha is not None:
        marked = marked.convert("LA" if grey else "RGBA")
        marked.putalpha(alpha)
    out = io.BytesIO()
    if media_type == "image/png":
        marked.save(out, format="PNG")
    elif media_type == "image/webp":
        # A lossless WebP (VP8L chunk) stays lossless; a lossy one is written at 95.
        lossless = data[12:16] == b"VP8L"
        marked.save(out, format="WEBP", quality=JPEG_QUALITY, lossless=lossless)
    else:
        marked.convert("L" if grey else "RGB").save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


# --- detection ------------------------------------------------------------------------


def _luma(pixels: UInt8Array) -> Float32Array:
    values = pixels.astype(np.float32)
    return np.ascontiguousarray(values @ _LUMA if values.ndim == 3 else values)


def _residual(grid: Float32Array) -> Float32Array:
    """High-pass the canonical luminance and clip outliers: edges would swamp the mark."""
    residual = grid - cv2.GaussianBlur(grid, (0, 0), 1.5)
    spread = float(np.median(np.abs(residual))) * 1.4826 + 1e-6
    return np.asarray(np.clip(residual, -3 * spread, 3 * spread), dtype=np.float32)


def _fold(residual: Float32Array) -> NDArray[np.float64]:
    height, width = residual.shape
    padded = np.zeros((-(-height // TILE) * TILE, -(-width // TILE) * TILE), dtype=np.float64)
    padded[:height, :width] = residual
    blocks = padded.reshape(padded.shape[0] // TILE, TILE, padded.shape[1] // TILE, TILE)
    return np.asarray(blocks.sum(axis=(0, 2)), dtype=np.float64)


def _oriented(grid: Float32Array) -> Iterator[Float32Array]:
    for turns in range(4):
        turned = np.rot90(grid, turns)
        yield np.ascontiguousarray(turned)
        yield np.ascontiguousarray(turned[:, ::-1])


class _Accumulator:
    """Folded residuals per hypothesis (grid scale × orientation), summed over frames."""

    def __init__(self) -> None:
        self.folds: list[NDArray[np.float64]] = []
        self.frames = 0

    def add(self, luma: Float32Array) -> None:
        height, width = luma.shape
        index = 0
        for scale in GRID_SCALES:
            grid_h, grid_w = _canonical_size(height, width, CANONICAL_SIDE * scale)
            interpolation = cv2.INTER_AREA if grid_w < width else cv2.INTER_LINEAR
            grid = cv2.resize(luma, (grid_w, grid_h), interpolation=interpolation)
            residual = _residual(np.asarray(grid, dtype=np.float32))
            for oriented in _oriented(residual):
                fold = _fold(oriented)
                if index == len(self.folds):
                    self.folds.append(fold)
                else:
                    self.folds[index] += fold
                index += 1
        self.frames += 1

    @property
    def tests(self) -> int:
        return TILE * TILE * len(GRID_SCALES) * ORIENTATIONS

    def scores(self, candidates: Mapping[str, bytes], profile: _Profile) -> list[CandidateScore]:
        whitened = []
        for fold in self.folds:
            spectrum = np.fft.rfft2(fold)
            whitened.append(spectrum / np.maximum(np.abs(spectrum), 1e-12))
        scores: list[CandidateScore] = []
        for licence_id, key in candidates.items():
            _, unit = _tile(key, profile)
            best = -math.inf
            for spectrum in whitened:
                surface = np.fft.irfft2(spectrum * np.conj(unit), s=(TILE, TILE))
                spread = float(surface.std())
                if spread > 0:
                    best = max(best, float((surface.max() - surface.mean()) / spread))
            z = best if math.isfinite(best) else 0.0
            scores.append(CandidateScore(licence_id, z, z_tail(z, self.tests)))
        return scores


def _check_candidates(candidates: Mapping[str, bytes]) -> None:
    for key in candidates.values():
        check_key(key)


def detect_image_array(pixels: UInt8Array, candidates: Mapping[str, bytes]) -> Detection:
    """Which candidate's mark the picture (grey or RGB uint8 array) carries, if any."""
    _check_candidates(candidates)
    if min(pixels.shape[:2]) < 16:
        return decide(IMAGE_METHOD, [], details={"reason": "too_small"})
    accumulator = _Accumulator()
    accumulator.add(_luma(pixels))
    return decide(
        IMAGE_METHOD,
        accumulator.scores(candidates, PICTURE),
        details={"width": int(pixels.shape[1]), "height": int(pixels.shape[0])},
    )


def detect_image(data: bytes, candidates: Mapping[str, bytes]) -> Detection:
    """Which candidate licence a picture (any format Pillow reads) was delivered under."""
    image = _decode(data)
    pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return detect_image_array(pixels, candidates)


# --- video ----------------------------------------------------------------------------

# Codecs the MP4 muxer takes as they are; other audio is re-encoded to AAC.
_MP4_AUDIO = frozenset({"aac", "mp3", "opus", "flac", "alac", "ac3", "eac3"})


@dataclass(frozen=True, slots=True)
class VideoMarkReport:
    frames_marked: int
    width: int
    height: int
    audio: str  # "copied", "re-encoded" or "none"

    def as_dict(self) -> dict[str, Any]:
        return {
            "frames_marked": self.frames_marked,
            "width": self.width,
            "height": self.height,
            "audio": self.audio,
        }


def _open_video(path: Path) -> av.container.InputContainer:
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as error:
        raise InvalidInput("This video cannot be decoded.", code="corrupt_media") from error
    if not container.streams.video:
        container.close()
        raise InvalidInput("The video has no picture.", code="corrupt_media")
    return container


def embed_video(path_in: Path, path_out: Path, *, key: bytes) -> VideoMarkReport:
    """Mark every frame of a video and write it as MP4 (H.264, CRF 18).

    Frames are decoded, marked and encoded one at a time, so memory stays at a frame.
    Audio packets are copied untouched when MP4 can hold their codec (AAC, MP3, Opus,
    FLAC…), otherwise re-encoded to AAC. Odd frame sizes are cut to even ones (H.264's
    4:2:0 needs them). Container metadata is not copied.
    """
    check_key(key)
    frames = 0
    audio_state = "none"
    with _open_video(Path(path_in)) as source, av.open(str(path_out), "w", format="mp4") as out:
        in_video = source.streams.video[0]
        rate = in_video.average_rate or Fraction(25)
        width = in_video.codec_context.width // 2 * 2
        height = in_video.codec_context.height // 2 * 2
        out_video = out.add_stream("libx264", rate=rate)
        out_video.width, out_video.height = width, height
        out_video.pix_fmt = "yuv420p"
        out_video.options = {"crf": VIDEO_CRF, "preset": "veryfast"}
        in_audio = source.streams.audio[0] if source.streams.audio else None
        out_audio: Any = None
        resampler = None
        if in_audio is not None:
            if in_audio.codec_context.name in _MP4_AUDIO:
                out_audio = out.add_stream_from_template(in_audio)
                audio_state = "copied"
            else:
                audio_rate = int(in_audio.codec_context.sample_rate or 48_000)
                out_audio = out.add_stream("aac", rate=audio_rate)
                out_audio.layout = "stereo" if in_audio.codec_context.channels >= 2 else "mono"
                resampler = av.AudioResampler(
                    format="fltp", layout=out_audio.layout, rate=audio_rate
                )
                audio_state = "re-encoded"
        marker = _Marker(key, height, width, MOVING)
        streams = [in_video] + ([in_audio] if in_audio is not None else [])
        for packet in source.demux(*streams):
            if packet.stream is in_audio and audio_state == "copied":
                if packet.dts is None:
                    continue  # the demuxer's end-of-stream marker
                packet.stream = out_audio
                out.mux(packet)
                continue
            for frame in packet.decode():
                if isinstance(frame, av.VideoFrame):
                    rgb = np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
                    rgb = rgb[:height, :width]
                    marked = av.VideoFrame.from_ndarray(marker.apply(rgb), format="rgb24")
                    marked.pts = frames
                    marked.time_base = Fraction(1, 1) / rate
                    frames += 1
                    out.mux(out_video.encode(marked))
                elif isinstance(frame, av.AudioFrame) and resampler is not None:
                    frame.pts = None
                    for converted in resampler.resample(frame):
                        out.mux(out_audio.encode(converted))
        out.mux(out_video.encode(None))
        if resampler is not None:
            out.mux(out_audio.encode(None))
    return VideoMarkReport(frames, width, height, audio_state)


def detect_video(
    path: Path, candidates: Mapping[str, bytes], *, max_frames: int = VIDEO_SAMPLE_FRAMES
) -> Detection:
    """Which candidate's mark a video carries, from up to ``max_frames`` frames spread
    over its length (every frame is decoded, a subset is analysed)."""
    _check_candidates(candidates)
    accumulator = _Accumulator()
    with _open_video(Path(path)) as source:
        stream = source.streams.video[0]
        total = int(stream.frames or 0)
        stride = max(1, total // max_frames) if total else 1
        for index, frame in enumerate(source.decode(stream)):
            if index % stride:
                continue
            accumulator.add(_luma(np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)))
            if accumulator.frames >= max_frames:
                break
    if accumulator.frames == 0:
        return decide(VIDEO_METHOD, [], details={"frames_analysed": 0})
    return decide(
        VIDEO_METHOD,
        accumulator.scores(candidates, MOVING),
        details={"frames_analysed": accumulator.frames},
    )
