"""The delivered copy of one item: its redacted bytes with the licence's mark applied.

Pure functions over files (the build decrypts the redacted version to a private scratch
file, marks it into another, and hands that to the exporter). Memory stays bounded:
pictures and texts are read whole (they are small, and a Parquet cell holds them whole
anyway), recordings are marked in blocks of whole seconds, videos frame by frame.

Which mark, by what the item is:

=========  ======================  ==========================================
modality   method                  delivered as
=========  ======================  ==========================================
image      image_spread_spectrum   the same format (PNG losslessly, JPEG/WebP at 95)
video      video_spread_spectrum   MP4, H.264 CRF 18, audio copied when MP4 takes it
audio      audio_spread_spectrum   FLAC, 16-bit, the recording's rate and channels
text/chat  text_variants           UTF-8 text, no word changed
document   none                    the PDF as redacted: no mark survives in a PDF scan
=========  ======================  ==========================================
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from fairtrain.delivery.fingerprint import AUDIO_METHOD, TEXT_METHOD, mark_audio, mark_text
from fairtrain.delivery.watermark import (
    IMAGE_MEDIA_TYPES,
    IMAGE_METHOD,
    VIDEO_METHOD,
    embed_image,
    embed_video,
)
from fairtrain.errors import InvalidInput, UnsupportedMedia

__all__ = ["NO_MARK", "MarkedCopy", "delivered_type", "mark_copy"]

NO_MARK = "none"
# Recordings are marked a block at a time. The mark repeats every second, so blocks that
# start on whole seconds keep its phase; each block is a few MB of float64 work space.
AUDIO_BLOCK_SECONDS = 30

_EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "video/mp4": "mp4",
    "audio/flac": "flac",
    "audio/wav": "wav",
    "text/plain": "txt",
    "application/pdf": "pdf",
}


@dataclass(frozen=True, slots=True)
class MarkedCopy:
    """What was written: the mark's method and the delivered type."""

    method: str
    media_type: str
    extension: str


def delivered_type(media_type: str) -> tuple[str, str]:
    """``(media type, extension)`` of a delivered file, parameters dropped."""
    bare = media_type.split(";", 1)[0].strip().lower()
    if bare not in _EXTENSIONS:
        raise UnsupportedMedia(
            f"Items of type {bare} cannot be delivered.", code="delivery_unsupported_media"
        )
    return bare, _EXTENSIONS[bare]


def _mark_audio_file(source: Path, target: Path, key: bytes) -> None:
    try:
        reader = soundfile.SoundFile(str(source))
    except (soundfile.LibsndfileError, RuntimeError) as error:
        raise InvalidInput("This recording cannot be decoded.", code="corrupt_media") from error
    with (
        reader,
        soundfile.SoundFile(
            str(target),
            "w",
            samplerate=reader.samplerate,
            channels=reader.channels,
            format="FLAC",
            subtype="PCM_16",
        ) as writer,
    ):
        block = reader.samplerate * AUDIO_BLOCK_SECONDS
        while True:
            samples = reader.read(block, dtype="float32", always_2d=True)
            if not len(samples):
                break
            marked = mark_audio(np.ascontiguousarray(samples.T), reader.samplerate, key=key)
            writer.write(marked.T)


def mark_copy(
    source: Path, target: Path, *, modality: str, media_type: str, key: bytes
) -> MarkedCopy:
    """Write the delivered copy of the redacted file ``source`` to ``target``."""
    bare, extension = delivered_type(media_type)
    if modality == "image":
        if bare not in IMAGE_MEDIA_TYPES:
            raise UnsupportedMedia(
                f"Pictures of type {bare} cannot be watermarked.",
                code="watermark_unsupported_media",
            )
        target.write_bytes(embed_image(source.read_bytes(), key=key, media_type=bare))
        return MarkedCopy(IMAGE_METHOD, bare, extension)
    if modality == "video":
        embed_video(source, target, key=key)
        return MarkedCopy(VIDEO_METHOD, "video/mp4", "mp4")
    if modality == "audio":
        _mark_audio_file(source, target, key)
        return MarkedCopy(AUDIO_METHOD, "audio/flac", "flac")
    if modality in ("text", "chat"):
        # Bytes, not read_text: universal newlines would rewrite a CRLF text.
        try:
            text = source.read_bytes().decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidInput("This text is not UTF-8.", code="not_utf8") from error
        target.write_bytes(mark_text(text, key=key).encode("utf-8"))
        return MarkedCopy(TEXT_METHOD, "text/plain", "txt")
    shutil.copyfile(source, target)
    return MarkedCopy(NO_MARK, bare, extension)
