"""Trace leaked files back to the licence they were delivered under.

``trace_files`` looks at each file's bytes (never its name) to tell a picture, a video,
a recording or a text, runs the matching detector against the candidate licences, and
returns one :class:`TraceResult` per file. :func:`verdict` combines the files: each
candidate's per-file p-values are joined with Fisher's method (independent files under
"not this licence"), so many weak files can add up to a confident attribution, and a
set whose files point at different licences is flagged.

Candidates are passed in explicitly (licence id → key): the caller decides which
licences could have received the files (those that were delivered the assets).
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import av

from fairtrain.delivery.fingerprint import detect_audio, detect_text
from fairtrain.delivery.watermark import (
    ATTRIBUTION_P_VALUE,
    Detection,
    check_key,
    combine_log_p_values,
    detect_image,
    detect_video,
)
from fairtrain.errors import DomainError, InvalidInput

__all__ = [
    "TraceResult",
    "Verdict",
    "classify",
    "file_sha256",
    "trace_file",
    "trace_files",
    "verdict",
]

Kind = Literal["image", "video", "audio", "text", "unsupported"]

_IMAGE_MAGIC = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"GIF8",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
)
# Detection reads at most this much of a recording: minutes of sound are plenty.
MAX_AUDIO_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class TraceResult:
    path: str
    kind: Kind
    detection: Detection | None = None
    error: str | None = None
    duplicate_of: str | None = None

    @property
    def licence_id(self) -> str | None:
        return self.detection.licence_id if self.detection else None

    @property
    def confidence(self) -> float:
        return self.detection.confidence if self.detection else 0.0

    @property
    def method(self) -> str | None:
        return self.detection.method if self.detection else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "licence_id": self.licence_id,
            "confidence": self.confidence,
            "method": self.method,
            "detection": self.detection.as_dict() if self.detection else None,
            "error": self.error,
            "duplicate_of": self.duplicate_of,
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a set of files says together."""

    licence_id: str | None
    p_value: float  # chance of this much combined evidence for a licence that is not it
    files: int
    files_with_evidence: int
    attributed: Mapping[str, int] = field(default_factory=dict)  # per-file attributions
    combined: Mapping[str, float] = field(default_factory=dict)  # candidate -> combined p
    conflicting: bool = False  # files attributed to more than one licence

    def as_dict(self) -> dict[str, Any]:
        return {
            "licence_id": self.licence_id,
            "p_value": self.p_value,
            "confidence": 1.0 - self.p_value,
            "files": self.files,
            "files_with_evidence": self.files_with_evidence,
            "attributed": dict(self.attributed),
            "combined_p_values": dict(self.combined),
            "conflicting": self.conflicting,
        }


def classify(path: Path) -> Kind:
    """What a file is, from its bytes."""
    with path.open("rb") as handle:
        head = handle.read(4096)
    if head.startswith(_IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return "image"
    if head and b"\x00" not in head and _utf8_prefix(head):
        return "text"
    try:
        with av.open(str(path)) as container:
            if container.streams.video:
                return "video"
            if container.streams.audio:
                return "audio"
    except (av.error.FFmpegError, OSError):
        return "unsupported"
    return "unsupported"


def _utf8_prefix(head: bytes) -> bool:
    # The 4 KiB cut may split a character: allow up to three bytes of a partial one.
    for cut in range(4):
        try:
            head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return True
    return False


def _detect(path: Path, kind: Kind, candidates: Mapping[str, bytes]) -> Detection:
    if kind == "image":
        return detect_image(path.read_bytes(), candidates)
    if kind == "video":
        return detect_video(path, candidates)
    if kind == "audio":
        from fairtrain.media import VAD_RATE, decode_audio

        samples = decode_audio(path, rate=VAD_RATE, max_seconds=MAX_AUDIO_SECONDS)
        return detect_audio(samples, VAD_RATE, candidates)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InvalidInput("This text is not UTF-8.", code="not_utf8") from error
    return detect_text(text, candidates)


def trace_file(path: Path, candidates: Mapping[str, bytes]) -> TraceResult:
    """One file's best candidate licence (or none), and the evidence."""
    try:
        kind = classify(path)
    except OSError as error:
        return TraceResult(str(path), "unsupported", error=f"cannot read: {error.strerror}")
    if kind == "unsupported":
        return TraceResult(str(path), kind, error="not a picture, video, recording or text")
    try:
        return TraceResult(str(path), kind, _detect(path, kind, candidates))
    except DomainError as error:
        return TraceResult(str(path), kind, error=error.detail)
    except (av.error.FFmpegError, OSError) as error:
        return TraceResult(str(path), kind, error=f"cannot decode: {error}")


def file_sha256(path: Path) -> str | None:
    """The file's SHA-256 (hex), or None when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def trace_files(
    paths: Iterable[Path],
    candidates: Mapping[str, bytes],
    *,
    progress: Callable[[Path], None] | None = None,
) -> list[TraceResult]:
    """Trace each file; byte-identical copies are reported once (``duplicate_of``),
    since counting the same evidence twice would overstate it."""
    if not candidates:
        raise InvalidInput("Give at least one candidate licence.", code="no_candidates")
    for key in candidates.values():
        check_key(key)
    seen: dict[str, str] = {}
    results: list[TraceResult] = []
    for path in paths:
        path = Path(path)
        digest = file_sha256(path)
        if digest is not None and digest in seen:
            results.append(TraceResult(str(path), classify(path), duplicate_of=seen[digest]))
        else:
            if digest is not None:
                seen[digest] = str(path)
            results.append(trace_file(path, candidates))
        if progress is not None:
            progress(path)
    return results


def verdict(
    results: Sequence[TraceResult],
    *,
    threshold: float = ATTRIBUTION_P_VALUE,
    extra: Sequence[Detection] = (),
) -> Verdict:
    """The licence a set of files points to, with their combined evidence.

    ``extra`` is evidence about the set rather than one file (the order the leak keeps
    its samples in): independent of each file's mark under "not this licence", so it is
    joined to the files' p-values the same way.
    """
    evidence = [r.detection for r in results if r.detection is not None and r.detection.scores]
    per_candidate: dict[str, list[float]] = {}
    for detection in [*evidence, *(d for d in extra if d.scores)]:
        for score in detection.scores:
            per_candidate.setdefault(score.licence_id, []).append(score.p_value)
    combined = {
        licence: combine_log_p_values([math.log(p) for p in ps])
        for licence, ps in per_candidate.items()
    }
    attributed = Counter(r.licence_id for r in results if r.licence_id is not None)
    if not combined:
        return Verdict(None, 1.0, len(results), 0, dict(attributed), {}, False)
    best = min(combined, key=lambda licence: combined[licence])
    p_value = max(min(1.0, combined[best] * len(combined)), 1e-300)
    return Verdict(
        licence_id=best if p_value <= threshold else None,
        p_value=p_value,
        files=len(results),
        files_with_evidence=len(evidence),
        attributed=dict(attributed),
        combined=combined,
        conflicting=len(attributed) > 1,
    )
