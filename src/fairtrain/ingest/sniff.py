"""What an uploaded file really is: read from its bytes, decoded, never taken from its name.

``inspect`` runs on the plaintext scratch copy of an upload, before any row is written.
It recognises the container by its magic numbers, then decodes it with the library that
owns the format (Pillow with a pixel limit, PyAV for audio and video, pypdf for scanned
pages, a strict UTF-8 decoder and the chat parsers for text). Anything it cannot fully
account for is refused with a specific code, so ``receive_upload`` deletes the blob and
writes nothing.

Accepted: audio WAV, FLAC, MP3, OGG (Opus, Vorbis), M4A; images JPEG, PNG, WebP, HEIC;
video MP4, WebM, MOV; PDF scans (handwriting); chat exports (WhatsApp Android and iOS,
Telegram JSON) and plain text.
"""

from __future__ import annotations

import io
import re
import unicodedata
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO, Literal

import av
import av.error
from PIL import Image, UnidentifiedImageError

from fairtrain.config import Settings
from fairtrain.errors import DomainError, InvalidInput, PayloadTooLarge, UnsupportedMedia
from fairtrain.ingest.chats import parse_chat
from fairtrain.ingest.service import Inspection

__all__ = ["Limits", "inspect", "sniff_type"]

AUDIO_CODECS = frozenset(
    {
        "pcm_s16le",
        "pcm_s24le",
        "pcm_s32le",
        "pcm_f32le",
        "pcm_u8",
        "pcm_s16be",
        "flac",
        "mp3",
        "mp3float",
        "opus",
        "vorbis",
        "aac",
        "alac",
    }
)
VIDEO_CODECS = frozenset({"h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "prores", "mjpeg"})
# Decoding every frame of a two-hour video would hold an upload request for minutes: the
# container is demuxed to the end (truncation, corrupt packets) and the first packets of
# each stream are decoded here; the processing job reads everything again.
DECODE_PACKETS = 120
MAX_DIMENSION = 16_384
MAX_PDF_PAGES = 500
TEXT_SAMPLE = 1 << 20


@dataclass(frozen=True, slots=True)
class Limits:
    audio: int
    image: int
    video: int
    document: int
    chat: int
    image_pixels: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            audio=settings.max_audio_bytes,
            image=settings.max_image_bytes,
            video=settings.max_video_bytes,
            document=settings.max_document_bytes,
            chat=settings.max_chat_bytes,
            image_pixels=settings.max_image_pixels,
        )

    def for_modality(self, modality: str) -> int:
        limit: int = getattr(self, modality)
        return limit


def _refuse_type(what: str) -> UnsupportedMedia:
    return UnsupportedMedia(
        f"{what} is not a format fairtrain accepts. Upload audio (WAV, FLAC, MP3, OGG, M4A), "
        "images (JPEG, PNG, WebP, HEIC), video (MP4, WebM, MOV), PDF scans or chat exports.",
        code="unsupported_type",
    )


def _corrupt(what: str, why: str) -> InvalidInput:
    return InvalidInput(f"This {what} file is damaged: {why}.", code="corrupt_media")


def _polyglot(what: str) -> InvalidInput:
    return InvalidInput(
        f"This {what} file carries another file after its end (a polyglot); upload the "
        f"{what} file on its own.",
        code="polyglot_file",
    )


def _hides_a_file(tail: bytes) -> bool:
    """Bytes after a file's own end that are more than padding: a second file riding along.

    Writers pad with a few zero, 0xFF or whitespace bytes and taggers append a 128-byte
    ID3v1 tag; anything else (ZIP, HTML, script, however short) is refused.
    """
    if not tail:
        return False
    if len(tail) == 128 and tail.startswith(b"TAG"):
        return False
    return len(tail) > 64 or bool(tail.strip(b"\x00\xff \t\r\n"))


def _truncated(what: str) -> InvalidInput:
    return InvalidInput(
        f"This {what} file ends early: it was cut off while copying or uploading.",
        code="truncated_media",
    )


_TEXT_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")
_ISO_BRANDS_IMAGE = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}


def sniff_type(head: bytes) -> str:
    """A coarse kind from the first bytes: image/png, audio/wav, iso-bmff, text, …"""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(_TEXT_BOMS):
        return "text?"  # before MP3: a UTF-16 byte order mark looks like a frame sync
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"
    if head[4:8] == b"ftyp":
        major = head[8:12]
        if major in _ISO_BRANDS_IMAGE:
            return "image/heic"
        return "quicktime" if major == b"qt  " else "iso-bmff"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "quicktime"  # old QuickTime files start without ftyp
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"\x1f\x8b", b"BZh", b"\xfd7zXZ")):
        return "archive"
    if head.startswith((b"MZ", b"\x7fELF", b"\xca\xfe\xba\xbe", b"\xcf\xfa\xed\xfe")):
        return "executable"
    return "text?"


# How a container's own structure ends against the end of the file.
Layout = Literal["ok", "truncated", "trailing"]


def _tail_layout(handle: BinaryIO, position: int) -> Layout:
    handle.seek(position)
    return "trailing" if _hides_a_file(handle.read(4096)) else "ok"


def _iso_boxes(path: Path) -> Layout:
    """Walk the top-level ISO-BMFF / QuickTime / HEIF boxes: a cut file's mdat or moov runs
    past the end (FFmpeg then only reports an unreadable container); bytes that are not a
    box after the last one are a second file riding along."""
    size = path.stat().st_size
    position = 0
    with path.open("rb") as handle:
        while position < size:
            handle.seek(position)
            header = handle.read(16)
            kind = header[4:8]
            if len(kind) < 4 or (position > 0 and not all(0x20 <= c <= 0x7E for c in kind)):
                return _tail_layout(handle, position)  # not a box: padding or another file
            length = int.from_bytes(header[:4], "big")
            if length == 0:  # the last box runs to the end of the file
                return "ok"
            if length == 1:
                if len(header) < 16:
                    return "truncated"
                length = int.from_bytes(header[8:16], "big")
            if length < 8:
                return "ok"  # not a box structure: the decoder decides
            position += length
    return "ok" if position == size else "truncated"


# -- images -------------------------------------------------------------------------------

_IMAGE_FORMATS = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "HEIF": "image/heic",
}
_heif_ready = False


def _enable_heif() -> None:
    global _heif_ready
    if not _heif_ready:
        from pillow_heif import register_heif_opener

        register_heif_opener()
        _heif_ready = True


def _png_end(data: bytes) -> int | None:
    """Where the IEND chunk ends, found by walking the chunks (a backwards search for
    ``IEND`` is fooled by a fake chunk at the end of an appended file)."""
    position = 8
    while position + 12 <= len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        kind = data[position + 4 : position + 8]
        position += 12 + length
        if kind == b"IEND":
            return position
    return None


def _jpeg_end(data: bytes) -> int | None:
    """Where the EOI marker ends, found by walking segments and entropy-coded scans (EXIF
    thumbnails carry their own EOI; an appended file may end in FF D9 too)."""
    position, size = 2, len(data)
    while position + 4 <= size:
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == 0xD9:
            return position + 2
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            position += 2
            continue
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
        if marker != 0xDA:
            continue
        while True:  # entropy-coded data: FF 00 is a stuffed byte, FF D0-D7 a restart
            found = data.find(b"\xff", position)
            if found < 0 or found + 1 >= size:
                return None
            following = data[found + 1]
            if following == 0x00 or 0xD0 <= following <= 0xD7:
                position = found + 2
            elif following == 0xFF:
                position = found + 1
            else:
                position = found
                break
    return None


def _image_layout(path: Path, data: bytes, media_type: str) -> Layout:
    """Where the image's own structure ends against the end of the file."""
    if media_type == "image/heic":
        return _iso_boxes(path)
    if media_type == "image/webp":
        end = int.from_bytes(data[4:8], "little") + 8
        if end > len(data):
            return "truncated"
    elif media_type == "image/png":
        # A cut PNG has no IEND: Pillow reports the truncation.
        end = _png_end(data) or len(data)
    else:
        walked = _jpeg_end(data)
        last_eoi = data.rfind(b"\xff\xd9")
        # Not walkable: Pillow decides, and the last EOI bounds the image.
        end = walked if walked is not None else last_eoi + 2 if last_eoi >= 0 else len(data)
    return "trailing" if _hides_a_file(data[end:]) else "ok"


def _refuse_broken_layout(layout: Layout, what: str) -> None:
    if layout == "truncated":
        raise _truncated(what)
    if layout == "trailing":
        raise _polyglot(what)


def _inspect_image(path: Path, media_type: str, limits: Limits) -> Inspection:
    if media_type == "image/heic":
        _enable_heif()
    data = path.read_bytes()
    _refuse_broken_layout(_image_layout(path, data, media_type), "image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width * height > limits.image_pixels or max(width, height) > MAX_DIMENSION:
                    raise InvalidInput(
                        f"This image declares {width}×{height} pixels, more than the "
                        f"{limits.image_pixels:,} fairtrain decodes (a decompression bomb?).",
                        code="decompression_bomb",
                    )
                found = _IMAGE_FORMATS.get(image.format or "")
                if found is None:
                    raise _refuse_type(f"A {image.format} image")
                image.load()  # the full decode: every pixel
                mode = image.mode
                frames = getattr(image, "n_frames", 1)
    except DomainError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise InvalidInput(
            "This image decodes to more pixels than fairtrain accepts.", code="decompression_bomb"
        ) from error
    except UnidentifiedImageError as error:
        raise _corrupt("image", "its header is not readable") from error
    except OSError as error:
        if "truncated" in str(error).lower():
            raise _truncated("image") from error
        raise _corrupt("image", str(error)) from error
    except (ValueError, SyntaxError, EOFError) as error:
        raise _corrupt("image", str(error) or "it does not decode") from error
    return Inspection(
        modality="image",
        media_type=found,
        max_bytes=limits.image,
        duration_seconds=None,
        language=None,
        media_info={"width": width, "height": height, "mode": mode, "frames": frames},
    )


# -- audio and video ----------------------------------------------------------------------


def _rate(value: Fraction | None) -> float | None:
    return round(float(value), 3) if value else None


def _wav_declares_more(path: Path) -> bool:
    """A WAV header states its data size; FFmpeg quietly plays a cut file."""
    with path.open("rb") as handle:
        header = handle.read(12)
        size = path.stat().st_size
        declared = int.from_bytes(header[4:8], "little") + 8
        if declared > size:
            # Streaming writers put 0 or 0xFFFFFFFF here and fix it up later.
            return declared not in (8, 0xFFFFFFFF + 8)
        position = 12
        while position + 8 <= size:
            handle.seek(position)
            chunk = handle.read(8)
            length = int.from_bytes(chunk[4:8], "little")
            if chunk[:4] == b"data":
                return position + 8 + length > size and length != 0xFFFFFFFF
            position += 8 + length + (length & 1)
        return True  # no data chunk


def _wav_layout(path: Path) -> Layout:
    if _wav_declares_more(path):
        return "truncated"
    with path.open("rb") as handle:
        end = int.from_bytes(handle.read(8)[4:8], "little") + 8
        if end in (8, 0xFFFFFFFF + 8):
            return "ok"  # a streaming writer never filled the size in
        return _tail_layout(handle, end)


def _ebml_number(data: bytes, position: int) -> tuple[int, int, bool] | None:
    """An EBML variable-length integer at ``position``: value, next position, all ones."""
    if position >= len(data) or data[position] == 0:
        return None
    first = data[position]
    width = 8 - first.bit_length() + 1
    if position + width > len(data):
        return None
    value = first & (0xFF >> width)
    for byte in data[position + 1 : position + width]:
        value = value << 8 | byte
    return value, position + width, value == (1 << (7 * width)) - 1


def _matroska_segment(path: Path) -> Layout:
    """The Segment's declared size against the file (unknown sizes, as live writers leave
    them, are not checked)."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(4096)
        header_size = _ebml_number(head, 4)
        if header_size is None:
            return "ok"
        segment = header_size[1] + header_size[0]
        if head[segment : segment + 4] != b"\x18\x53\x80\x67":
            return "ok"
        declared = _ebml_number(head, segment + 4)
        if declared is None or declared[2]:
            return "ok"
        end = declared[1] + declared[0]
        return "truncated" if end > size else _tail_layout(handle, end)


def _ogg_pages(path: Path) -> Layout:
    """Walk the Ogg pages: the last page may not run past the end, and what follows the
    last page must be padding, not another file."""
    size = path.stat().st_size
    position = 0
    with path.open("rb") as handle:
        while position < size:
            handle.seek(position)
            header = handle.read(27)
            if header[:4] != b"OggS":
                return _tail_layout(handle, position)
            if len(header) < 27:
                return "truncated"
            table = handle.read(header[26])
            if len(table) < header[26]:
                return "truncated"
            position += 27 + len(table) + sum(table)
    return "ok" if position == size else "truncated"


_MP3_BITRATES = {
    3: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),  # MPEG-1
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),  # MPEG-2
}
_MP3_RATES = {3: (44_100, 48_000, 32_000), 2: (22_050, 24_000, 16_000), 0: (11_025, 12_000, 8_000)}


def _mp3_frame_length(header: bytes) -> int | None:
    """The length of a Layer III frame from its 4-byte header (None when not one)."""
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    version, layer = header[1] >> 3 & 3, header[1] >> 1 & 3
    bitrate_index, rate_index = header[2] >> 4, header[2] >> 2 & 3
    if layer != 1 or version == 1 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    bitrate = _MP3_BITRATES[3 if version == 3 else 2][bitrate_index] * 1000
    rate = _MP3_RATES[version][rate_index]
    factor = 144 if version == 3 else 72
    return factor * bitrate // rate + (header[2] >> 1 & 1)


# What FFmpeg forgives: cut containers it plays up to the cut, files riding after the end.
_AV_LAYOUTS: dict[str, Callable[[Path], Layout]] = {
    "audio/wav": _wav_layout,
    "audio/ogg": _ogg_pages,
    "video/webm": _matroska_segment,
    "iso-bmff": _iso_boxes,
    "quicktime": _iso_boxes,
}


def _inspect_av(path: Path, sniffed: str, limits: Limits) -> Inspection:
    layout = _AV_LAYOUTS.get(sniffed)
    if layout is not None:
        _refuse_broken_layout(layout(path), "media")
    size = path.stat().st_size
    try:
        container = av.open(str(path), mode="r", metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, ValueError) as error:
        # FFmpeg's messages name the scratch file: never shown to the uploader.
        raise _corrupt("media", "its container cannot be read") from error
    with container:
        audio = container.streams.audio[0] if container.streams.audio else None
        # Cover art in audio files is a "video" stream flagged as an attached picture.
        cover = av.stream.Disposition.attached_pic
        video = next((s for s in container.streams.video if not s.disposition & cover), None)
        if audio is None and video is None:
            raise _refuse_type("A container with no audio or video stream")
        for stream, allowed, kind in (
            (audio, AUDIO_CODECS, "audio"),
            (video, VIDEO_CODECS, "video"),
        ):
            if stream is not None and stream.codec_context.name not in allowed:
                raise UnsupportedMedia(
                    f"The {kind} codec {stream.codec_context.name!r} is not supported.",
                    code="unsupported_codec",
                )
        # Declared frame sizes are checked before a frame is decoded, not after.
        if video is not None:
            _refuse_huge_frames(video.codec_context.width, video.codec_context.height, limits)
        streams = [s for s in (audio, video) if s is not None]
        decoded = {s.index: 0 for s in streams}
        packets = 0
        last_pts: dict[int, int] = {}
        last_packet: tuple[int, int, str] | None = None  # position, size, codec
        try:
            for packet in container.demux(*streams):
                if packet.size == 0:
                    continue
                packets += 1
                if packet.pos is not None and packet.pos >= 0:
                    last_packet = (packet.pos, packet.size, packet.stream.codec_context.name)
                if packet.pts is not None:
                    last_pts[packet.stream.index] = max(
                        last_pts.get(packet.stream.index, packet.pts), packet.pts
                    )
                if decoded[packet.stream.index] < DECODE_PACKETS:
                    decoded[packet.stream.index] += len(packet.decode())
        except av.error.EOFError as error:
            raise _truncated("media") from error
        except (av.error.FFmpegError, ValueError) as error:
            # A frame that fails to decode where the file ends was cut off, not damaged.
            if last_packet is not None and sum(last_packet[:2]) >= size:
                raise _truncated("media") from error
            raise _corrupt("media", "a frame does not decode") from error
        if last_packet is not None and last_packet[2] in ("mp3", "mp3float"):
            _refuse_partial_mp3_frame(path, last_packet[0], last_packet[1], size)
        if packets == 0 or not any(decoded.values()):
            raise _corrupt("media", "it holds no decodable frames")
        duration = None
        if container.duration:
            duration = container.duration / av.time_base
        elif streams and streams[0].duration and streams[0].time_base:
            duration = float(streams[0].duration * streams[0].time_base)
        # Demuxing stopped well short of the declared length: bytes are missing.
        for stream in streams:
            end = last_pts.get(stream.index)
            if (
                duration
                and end is not None
                and stream.time_base
                and float(end * stream.time_base) < 0.8 * duration - 1.0
            ):
                raise _truncated("media")
        info: dict[str, Any] = {"container": container.format.name, "packets": packets}
        if audio is not None:
            info |= {
                "audio_codec": audio.codec_context.name,
                "sample_rate": audio.codec_context.sample_rate,
                "channels": audio.codec_context.channels,
            }
        if video is not None:
            info |= {
                "video_codec": video.codec_context.name,
                "width": video.codec_context.width,
                "height": video.codec_context.height,
                "frame_rate": _rate(video.average_rate),
            }
            _refuse_huge_frames(video.codec_context.width, video.codec_context.height, limits)
    modality = "video" if video is not None else "audio"
    media_type = _av_media_type(sniffed, modality)
    return Inspection(
        modality=modality,
        media_type=media_type,
        max_bytes=limits.for_modality(modality),
        duration_seconds=round(duration, 3) if duration else None,
        language=None,
        media_info=info,
    )


def _refuse_huge_frames(width: int, height: int, limits: Limits) -> None:
    if width * height > limits.image_pixels or max(width, height) > MAX_DIMENSION:
        raise InvalidInput(
            f"The video's frames ({width}×{height}) are larger than fairtrain decodes.",
            code="decompression_bomb",
        )


def _refuse_partial_mp3_frame(path: Path, position: int, length: int, size: int) -> None:
    """MP3 has no container: a cut file ends in part of a frame, which FFmpeg plays."""
    if position + length < size - 128:  # an ID3v1 tag or padding follows: not cut
        return
    with path.open("rb") as handle:
        handle.seek(position)
        expected = _mp3_frame_length(handle.read(4))
    if expected is not None and position + expected > size:
        raise _truncated("MP3")


def _av_media_type(sniffed: str, modality: str) -> str:
    if sniffed == "audio/ogg":
        return "audio/ogg"
    if sniffed == "video/webm":
        return "video/webm" if modality == "video" else "audio/webm"
    if sniffed in ("iso-bmff", "quicktime"):
        if modality == "audio":
            return "audio/mp4"
        return "video/quicktime" if sniffed == "quicktime" else "video/mp4"
    return sniffed


# -- documents (scanned handwriting) -----------------------------------------------------


def _inspect_pdf(path: Path, limits: Limits) -> Inspection:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - 65_536))
        ending = handle.read()
    # pypdf reads a document whose last %%EOF is followed by a whole other file.
    last_eof = ending.rfind(b"%%EOF")
    if last_eof >= 0 and _hides_a_file(ending[last_eof + 5 :]):
        raise _polyglot("PDF")
    try:
        reader = PdfReader(str(path), strict=True)
        if reader.is_encrypted:
            raise InvalidInput(
                "This PDF is password-protected; upload it without a password.",
                code="encrypted_document",
            )
        pages = len(reader.pages)
        if pages == 0:
            raise _corrupt("PDF", "it has no pages")
        if pages > MAX_PDF_PAGES:
            raise PayloadTooLarge(
                f"PDF scans are limited to {MAX_PDF_PAGES} pages.", code="too_many_pages"
            )
        images = 0
        for page in reader.pages:
            box = page.mediabox
            if float(box.width) * float(box.height) <= 0:
                raise _corrupt("PDF", "a page has no size")
            images += len(page.images)
    except DomainError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, RecursionError) as error:
        if "EOF" in str(error) or "startxref" in str(error):
            raise _truncated("PDF") from error
        raise _corrupt("PDF", str(error) or "its structure does not parse") from error
    return Inspection(
        modality="document",
        media_type="application/pdf",
        max_bytes=limits.document,
        duration_seconds=None,
        language=None,
        media_info={"pages": pages, "images": images},
    )


# -- text and chat exports ----------------------------------------------------------------

_STOPWORDS = {
    "en": "the and you that was for are with his they this have from not but what all were",
    "de": "der die und das ist nicht ich ein sie mit den auf wir auch sich dem war",
    "fr": "les des est pas une que qui dans pour sur vous nous avec mais être tout",
    "es": "los las que una por con para del pero como más esto está muy también",
    "it": "che non per una sono della con gli del questo anche come più nel",
    "nl": "het een van dat niet ook maar voor met zijn wat naar hij bij",
    "pt": "que não uma para com por mais como mas dos das isso você está",
}
_WORDS = re.compile(r"[^\W\d_]+")


def guess_language(text: str) -> str | None:
    """The language whose most frequent words appear most (None when too little text).

    A stopword count: good enough to route text to the right PII model and to tell a
    buyer what a chat is in; not a language identifier for mixed or very short text.
    """
    words = [w.casefold() for w in _WORDS.findall(text[:TEXT_SAMPLE])]
    if len(words) < 5:
        return None
    scores = {
        language: sum(1 for w in words if w in set(vocabulary.split()))
        for language, vocabulary in _STOPWORDS.items()
    }
    best = max(scores, key=lambda language: scores[language])
    return best if scores[best] >= max(2, len(words) // 50) else None


def _not_utf8(what: str = "This text") -> UnsupportedMedia:
    return UnsupportedMedia(
        f"{what} is not UTF-8; export the chat again as UTF-8 text.",
        code="unsupported_encoding",
    )


def _looks_like_utf16(data: bytes) -> bool:
    """Mostly-ASCII UTF-16 without a byte order mark: NUL in every other byte."""
    sample = data[:4096]
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    return max(even, odd) >= len(sample) // 4 and min(even, odd) <= max(even, odd) // 10


# Markup is refused rather than kept as text: a browser that is ever handed it (a preview,
# a buyer's tool) runs its scripts. The openings are those the WHATWG sniffing rules use.
_MARKUP = re.compile(
    r"\s*<(?:!doctype\s+html|html|head|body|script|iframe|svg|\?xml|!--|style|title|"
    r"object|embed|meta|link|table|div|a|p|br|h1|b|font)[\s>/]",
    re.IGNORECASE,
)


def _inspect_text(path: Path, limits: Limits) -> Inspection:
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")):
        raise _not_utf8("This text is UTF-16 or UTF-32, so it")
    if b"\x00" in data:
        if _looks_like_utf16(data):
            raise _not_utf8("This text looks like UTF-16, so it")
        raise _refuse_type("A binary file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _not_utf8() from error
    if _MARKUP.match(text.lstrip("\ufeff")):
        raise _refuse_type("A web page or markup document (HTML, SVG, XML)")
    # Control characters mark a binary file; format characters (joiners in emoji and
    # Persian words, the bidi marks WhatsApp writes around numbers) and no-break spaces
    # are ordinary text, and the chat parser strips the invisible ones.
    controls = sum(1 for ch in text if ch not in "\r\n\t\f\v" and unicodedata.category(ch) == "Cc")
    if controls > max(8, len(text) // 100):
        raise _refuse_type("A binary file")
    transcript = parse_chat(text)
    if not transcript.messages:
        raise InvalidInput("This text file has no content.", code="empty_file")
    language = guess_language(" ".join(m.text for m in transcript.messages[:2000]))
    is_chat = transcript.format != "plain" or len(transcript.participants) >= 2
    return Inspection(
        modality="chat" if is_chat else "text",
        media_type="application/json" if transcript.format == "telegram-json" else "text/plain",
        max_bytes=limits.chat,
        duration_seconds=None,
        language=language,
        media_info={
            "format": transcript.format,
            "messages": len(transcript.messages),
            "participants": len(transcript.participants),
            "characters": len(text),
        },
    )


# -- the entry point ----------------------------------------------------------------------


def inspect(path: Path, *, limits: Limits) -> Inspection:
    """Sniff, decode and describe ``path``; raise a DomainError when it is refused."""
    size = path.stat().st_size
    if size == 0:
        raise InvalidInput("The file is empty.", code="empty_file")
    with path.open("rb") as handle:
        head = handle.read(64)
    kind = sniff_type(head)
    # Formats read whole into memory are bounded before reading, not after.
    early = {"image": limits.image, "text": limits.chat}
    family = "image" if kind.startswith("image/") else "text" if kind == "text?" else None
    if family is not None and size > early[family]:
        raise PayloadTooLarge(
            f"{family.title()} files are limited to {early[family]:,} bytes.",
            code="upload_too_large",
        )
    if kind.startswith("image/"):
        return _inspect_image(path, kind, limits)
    if kind.startswith(("audio/", "video/")) or kind in ("iso-bmff", "quicktime"):
        return _inspect_av(path, kind, limits)
    if kind == "application/pdf":
        return _inspect_pdf(path, limits)
    if kind == "archive":
        raise _refuse_type("A compressed archive")
    if kind == "executable":
        raise _refuse_type("A program")
    return _inspect_text(path, limits)
