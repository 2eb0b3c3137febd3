"""Buyer previews: a small, low-fidelity sample of an asset's *redacted* version.

Enough to judge what an asset is (a 320-pixel thumbnail, the first seconds of sound at
telephone quality, the opening lines of a text), too little to train on. Made from the
redacted version only, which its owner approved; never from the original. Documents get
no preview: their pages are not scanned for personal data (see docs/privacy.md).

Pure functions over a file on disk, returning ``(bytes, media type)``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile
from PIL import Image

from fairtrain.errors import NotFound
from fairtrain.media import decode_audio, sample_frames

__all__ = ["PREVIEW_AUDIO_RATE", "PREVIEW_AUDIO_SECONDS", "PREVIEW_PIXELS", "PREVIEW_TEXT_CHARS",
           "make_preview"]  # fmt: skip

PREVIEW_PIXELS = 320  # the longer side of an image or video preview
PREVIEW_AUDIO_SECONDS = 15.0
PREVIEW_AUDIO_RATE = 8000  # telephone quality: enough to hear, poor material for a model
PREVIEW_TEXT_CHARS = 600


def _jpeg(image: Image.Image) -> bytes:
    image = image.convert("RGB")
    image.thumbnail((PREVIEW_PIXELS, PREVIEW_PIXELS))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=70)
    return out.getvalue()


def make_preview(path: Path, modality: str) -> tuple[bytes, str]:
    """The preview of the redacted file at ``path``."""
    if modality == "image":
        with Image.open(path) as image:
            image.draft("RGB", (PREVIEW_PIXELS * 2, PREVIEW_PIXELS * 2))
            return _jpeg(image), "image/jpeg"
    if modality == "video":
        for frame in sample_frames(path, count=1):
            return _jpeg(Image.fromarray(frame)), "image/jpeg"
        raise NotFound("This video has no picture to preview.", code="preview_unavailable")
    if modality == "audio":
        samples = decode_audio(path, rate=PREVIEW_AUDIO_RATE, max_seconds=PREVIEW_AUDIO_SECONDS)
        out = io.BytesIO()
        soundfile.write(out, np.clip(samples, -1.0, 1.0), PREVIEW_AUDIO_RATE, format="WAV")
        return out.getvalue(), "audio/wav"
    if modality in ("text", "chat"):
        with path.open(encoding="utf-8", errors="replace") as handle:
            text = handle.read(PREVIEW_TEXT_CHARS + 1)
        if len(text) > PREVIEW_TEXT_CHARS:
            text = text[:PREVIEW_TEXT_CHARS].rsplit(" ", 1)[0] + " …"
        return text.encode("utf-8"), "text/plain; charset=utf-8"
    raise NotFound(
        "Documents have no preview: their pages are not checked for personal data.",
        code="preview_unavailable",
    )
