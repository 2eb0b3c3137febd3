"""Hostile and broken files that fairtrain must refuse with a 4xx and a specific code.

Every entry builds its bytes on demand (most start from a valid file of
``tests.media_factory`` and then break it), so nothing hostile is checked in. Valid files
that only *look* hostile (a wrong extension, a traversal or bidi trick in the filename,
emoji joiners in a chat) are not here: they must be accepted and are tested as controls.

Built media are cached per directory, so a test session generates each valid sample once.
"""

from __future__ import annotations

import gzip
import io
import json
import struct
import subprocess
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from tests.media_factory import make, picture, speech_wav

__all__ = ["CORPUS", "HostileFile", "valid_sample"]

EMPTY = (422, "empty_file")
UNSUPPORTED = (415, "unsupported_type")
TRUNCATED = (422, "truncated_media")
CORRUPT = (422, "corrupt_media")
BOMB = (422, "decompression_bomb")
CODEC = (415, "unsupported_codec")
POLYGLOT = (422, "polyglot_file")
ENCODING = (415, "unsupported_encoding")
ENCRYPTED = (422, "encrypted_document")


@dataclass(frozen=True, slots=True)
class HostileFile:
    """One refused upload: how to build it and what the API must answer."""

    name: str
    build: Callable[[Path], bytes]
    status: int
    code: str
    filename: str = "upload.bin"

    def __str__(self) -> str:
        return self.name


# -- valid samples to break ---------------------------------------------------------------

_cache: dict[tuple[Path, str], bytes] = {}


def valid_sample(kind: str, directory: Path) -> bytes:
    """The bytes of a valid ``media_factory`` file of ``kind``, built once per directory."""
    key = (directory, kind)
    if key not in _cache:
        _cache[key] = make(kind, directory / kind).read_bytes()
    return _cache[key]


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=120)


def _ffmpeg(directory: Path, name: str, *args: str) -> bytes:
    """Speech (and, with ``video``, moving pictures) encoded with explicit ``args``."""
    work = directory / "ffmpeg"
    work.mkdir(parents=True, exist_ok=True)
    source = work / "speech.wav"
    if not source.exists():
        speech_wav(work, name="speech.wav")
    target = work / name
    if not target.exists():
        _run(
            "ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(source), *args, str(target)
        )
    return target.read_bytes()


def _ffmpeg_video(directory: Path, name: str, *args: str) -> bytes:
    work = directory / "ffmpeg-video"
    work.mkdir(parents=True, exist_ok=True)
    target = work / name
    if not target.exists():
        _run(
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x120:rate=6:duration=2",
            *args,
            str(target),
        )
    return target.read_bytes()


# -- byte-level helpers -------------------------------------------------------------------


def _chunk(kind: bytes, body: bytes, *, crc: int | None = None) -> bytes:
    checksum = zlib.crc32(kind + body) if crc is None else crc
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", checksum)


def _png(width: int, height: int, idat: bytes, *, bit_depth: int = 8, colour: int = 0) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def _declares_huge_png(_: Path) -> bytes:
    """100 000 × 100 000 pixels declared, a few bytes of data."""
    return _png(100_000, 100_000, zlib.compress(b"\x00" * 64))


def _compressed_bomb_png(_: Path) -> bytes:
    """11 000 × 11 000 grey pixels of zeros: 121 MB decoded from ~120 kB."""
    width = height = 11_000
    packer = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    parts = [packer.compress(row * 500) for _ in range(height // 500)]
    parts.append(packer.flush())
    return _png(width, height, b"".join(parts))


def _wide_png(_: Path) -> bytes:
    """A valid 1-bit strip 40 000 pixels wide: over the per-side limit."""
    image = Image.new("1", (40_000, 2))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _png_bad_ihdr_crc(directory: Path) -> bytes:
    data = bytearray(valid_sample("png", directory))
    data[29:33] = bytes(b ^ 0xFF for b in data[29:33])  # IHDR's CRC
    return bytes(data)


def _png_bad_idat(directory: Path) -> bytes:
    """A correct header over scrambled pixel data (the CRC is recomputed to match)."""
    image = picture(size=(64, 48))
    out = io.BytesIO()
    image.save(out, format="PNG")
    data = out.getvalue()
    start = data.index(b"IDAT") - 4
    length = struct.unpack(">I", data[start : start + 4])[0]
    body = bytes(reversed(data[start + 8 : start + 8 + length]))
    return data[:start] + _chunk(b"IDAT", body) + data[start + 12 + length :]


def _jpeg_garbage_after_soi(directory: Path) -> bytes:
    return b"\xff\xd8\xff" + bytes(range(256)) * 40 + b"\xff\xd9"


def _jpeg_huge_sof(directory: Path) -> bytes:
    """A real JPEG whose frame header claims 65 000 × 65 000 pixels."""
    data = bytearray(valid_sample("jpeg", directory))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 65_000, 65_000)
    return bytes(data)


def _wav_riff_larger(directory: Path) -> bytes:
    data = bytearray(valid_sample("wav", directory))
    data[4:8] = struct.pack("<I", len(data) * 4)
    return bytes(data)


def _wav_data_larger(directory: Path) -> bytes:
    data = bytearray(valid_sample("wav", directory))
    at = data.index(b"data")
    data[at + 4 : at + 8] = struct.pack("<I", len(data) * 4)
    return bytes(data)


def _wav_without_data(directory: Path) -> bytes:
    data = valid_sample("wav", directory)
    at = data.index(b"data")
    head = bytearray(data[:at])
    head[4:8] = struct.pack("<I", len(head) - 8)
    return bytes(head)


def _mov_huge_frames(directory: Path) -> bytes:
    """A QuickTime of black MJPEG frames 17 000 pixels wide: over the per-side limit."""
    work = directory / "ffmpeg-video"
    work.mkdir(parents=True, exist_ok=True)
    target = work / "wide.mov"
    if not target.exists():
        _run(
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "color=c=black:size=17000x16:rate=2:duration=1",
            "-c:v",
            "mjpeg",
            str(target),
        )
    return target.read_bytes()


def _zip_bomb(_: Path) -> bytes:
    out = io.BytesIO()
    block = b"\x00" * (1 << 20)
    with (
        zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
        archive.open("zeros.bin", "w", force_zip64=True) as member,
    ):
        for _ in range(64):
            member.write(block)
    inner = out.getvalue()
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w", compression=zipfile.ZIP_STORED) as archive:
        for index in range(4):
            archive.writestr(f"layer{index}.zip", inner)
    return outer.getvalue()


def _gzip_bomb(_: Path) -> bytes:
    return gzip.compress(b"\x00" * (32 << 20), compresslevel=9)


def _nested_json(_: Path) -> bytes:
    depth = 200_000
    return b'{"name": "x", "messages": ' + b"[" * depth + b"]" * depth + b"}"


def _json_not_telegram(_: Path) -> bytes:
    return json.dumps({"users": [{"name": "Ada", "password": "hunter2"}]}).encode()


def _json_messages_not_objects(_: Path) -> bytes:
    return json.dumps({"name": "x", "messages": ["a", 1, None]}).encode()


def _appended(kind: str, payload: bytes) -> Callable[[Path], bytes]:
    return lambda directory: valid_sample(kind, directory) + payload


def _zip_payload() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nMain-Class: Evil\n")
        archive.writestr("Evil.class", b"\xca\xfe\xba\xbe" + b"\x00" * 200)
    return out.getvalue()


_HTML = (
    b"<html><body><script>fetch('/api/v1/me').then(r=>r.text()).then(alert)</script></body></html>"
)


def _png_zip_fake_iend(directory: Path) -> bytes:
    """A ZIP after IEND that ends in a second, fake IEND chunk to fool a backwards search."""
    return valid_sample("png", directory) + _zip_payload() + _chunk(b"IEND", b"")


def _jpeg_html_fake_eoi(directory: Path) -> bytes:
    """HTML after the JPEG that ends in FF D9 to fool a backwards search for EOI."""
    return valid_sample("jpeg", directory) + _HTML * 2 + b"\xff\xd9"


def _wav_zip(directory: Path) -> bytes:
    return valid_sample("wav", directory) + _zip_payload()


def _pdf_encrypted(directory: Path) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(io.BytesIO(valid_sample("handwriting-pdf", directory))).pages:
        writer.add_page(page)
    writer.encrypt(user_password="secret", algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _pdf_no_pages(_: Path) -> bytes:
    from pypdf import PdfWriter

    out = io.BytesIO()
    PdfWriter().write(out)
    return out.getvalue()


def _cut(kind: str, fraction: float) -> Callable[[Path], bytes]:
    def build(directory: Path) -> bytes:
        data = valid_sample(kind, directory)
        return data[: int(len(data) * fraction)]

    return build


def _const(data: bytes) -> Callable[[Path], bytes]:
    return lambda _: data


def _text(text: str, encoding: str) -> Callable[[Path], bytes]:
    return lambda _: text.encode(encoding)


_CHAT = "12/31/20, 9:15 PM - Ada Okafor: bis morgen, café um neun?\n" * 20

_ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + b"\x00" * 200
_PE = (
    b"MZ\x90\x00\x03\x00\x00\x00"
    + b"\x00" * 52
    + b"\x80\x00\x00\x00"
    + b"\x00" * 64
    + b"PE\x00\x00"
)
_MACHO = b"\xcf\xfa\xed\xfe\x07\x00\x00\x01" + b"\x00" * 200
_SVG = (
    b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"<script>alert(document.cookie)</script></svg>"
)

TRUNCATABLE = (
    "wav",
    "flac",
    "mp3",
    "opus",
    "m4a",
    "jpeg",
    "png",
    "webp",
    "heic",
    "mp4",
    "mov",
    "webm",
    "handwriting-pdf",
)


def _corpus() -> list[HostileFile]:
    entries = [
        HostileFile("zero-length", _const(b""), *EMPTY),
        HostileFile("only-whitespace-text", _const(b" \n\n\t \n"), *EMPTY, filename="note.txt"),
    ]
    for kind in TRUNCATABLE:
        for fraction in (0.5, 0.9):
            entries.append(
                HostileFile(
                    f"truncated-{kind}-{int(fraction * 100)}pct", _cut(kind, fraction), *TRUNCATED
                )
            )
    entries += [
        # polyglots: a second file riding after the media's end
        HostileFile("png+zip", _appended("png", _zip_payload()), *POLYGLOT, "photo.png"),
        HostileFile("jpeg+jar-gifar", _appended("jpeg", _zip_payload()), *POLYGLOT, "photo.jpg"),
        HostileFile("jpeg+html", _appended("jpeg", _HTML), *POLYGLOT, "photo.jpg"),
        HostileFile(
            "jpeg+short-script", _appended("jpeg", b"<script>alert(1)</script>"), *POLYGLOT
        ),
        HostileFile("webp+html", _appended("webp", _HTML), *POLYGLOT, "photo.webp"),
        HostileFile("png+zip+fake-iend", _png_zip_fake_iend, *POLYGLOT, "photo.png"),
        HostileFile("jpeg+html+fake-eoi", _jpeg_html_fake_eoi, *POLYGLOT, "photo.jpg"),
        HostileFile("wav+zip", _wav_zip, *POLYGLOT, "speech.wav"),
        HostileFile("heic+zip", _appended("heic", _zip_payload()), *POLYGLOT, "photo.heic"),
        HostileFile("ogg+zip", _appended("opus", _zip_payload()), *POLYGLOT, "voice.ogg"),
        HostileFile("mp4+zip", _appended("mp4", _zip_payload()), *POLYGLOT, "clip.mp4"),
        HostileFile("webm+html", _appended("webm", _HTML), *POLYGLOT, "clip.webm"),
        HostileFile("pdf+zip", _appended("handwriting-pdf", _zip_payload()), *POLYGLOT, "scan.pdf"),
        HostileFile("pdf+html", _appended("handwriting-pdf", _HTML), *POLYGLOT, "scan.pdf"),
        # decompression bombs and huge dimensions
        HostileFile("png-declares-100k-square", _declares_huge_png, *BOMB, "photo.png"),
        HostileFile("png-compressed-121-megapixels", _compressed_bomb_png, *BOMB, "photo.png"),
        HostileFile("png-40000-wide", _wide_png, *BOMB, "strip.png"),
        HostileFile("jpeg-sof-65000-square", _jpeg_huge_sof, *BOMB, "photo.jpg"),
        HostileFile("mov-frames-17000-wide", _mov_huge_frames, *BOMB, "clip.mov"),
        HostileFile("zip-bomb", _zip_bomb, *UNSUPPORTED, "photos.zip"),
        HostileFile("gzip-bomb", _gzip_bomb, *UNSUPPORTED, "chat.txt.gz"),
        HostileFile("telegram-nested-json", _nested_json, *CORRUPT, "result.json"),
        # malformed headers
        HostileFile("wav-riff-size-beyond-file", _wav_riff_larger, *TRUNCATED, "speech.wav"),
        HostileFile("wav-data-size-beyond-file", _wav_data_larger, *TRUNCATED, "speech.wav"),
        HostileFile("wav-without-data-chunk", _wav_without_data, *TRUNCATED, "speech.wav"),
        HostileFile("png-bad-ihdr-crc", _png_bad_ihdr_crc, *CORRUPT, "photo.png"),
        HostileFile("png-scrambled-idat", _png_bad_idat, *CORRUPT, "photo.png"),
        HostileFile("jpeg-garbage-after-soi", _jpeg_garbage_after_soi, *CORRUPT, "photo.jpg"),
        HostileFile(
            "mp4-ftyp-only", _const(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"), *CORRUPT
        ),
        HostileFile("ogg-capture-pattern-only", _const(b"OggS" + b"\x00" * 60), *CORRUPT),
        HostileFile("pdf-header-only", _const(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"), *TRUNCATED),
        HostileFile("pdf-without-pages", _pdf_no_pages, *CORRUPT, "scan.pdf"),
        HostileFile("pdf-encrypted", _pdf_encrypted, *ENCRYPTED, "scan.pdf"),
        HostileFile(
            "json-not-telegram", _json_not_telegram, 422, "unsupported_type", "result.json"
        ),
        HostileFile(
            "telegram-messages-not-objects", _json_messages_not_objects, *CORRUPT, "result.json"
        ),
        # codecs outside the allow-list
        HostileFile(
            "wav-alaw", lambda d: _ffmpeg(d, "alaw.wav", "-c:a", "pcm_alaw"), *CODEC, "call.wav"
        ),
        HostileFile(
            "wav-adpcm", lambda d: _ffmpeg(d, "adpcm.wav", "-c:a", "adpcm_ms"), *CODEC, "call.wav"
        ),
        HostileFile(
            "mp2-audio", lambda d: _ffmpeg(d, "speech.mp2", "-c:a", "mp2"), *CODEC, "a.mp3"
        ),
        HostileFile(
            "m4a-ac3", lambda d: _ffmpeg(d, "ac3.m4a", "-c:a", "ac3", "-f", "mp4"), *CODEC, "a.m4a"
        ),
        HostileFile(
            "mp4-mpeg2video",
            lambda d: _ffmpeg_video(d, "mpeg2.mp4", "-c:v", "mpeg2video"),
            *CODEC,
            "clip.mp4",
        ),
        HostileFile(
            "ogg-theora",
            lambda d: _ffmpeg_video(d, "theora.ogv", "-c:v", "libtheora"),
            *CODEC,
            "clip.ogg",
        ),
        # programs, markup and archives
        HostileFile("elf-executable", _const(_ELF), *UNSUPPORTED, "photo.jpg"),
        HostileFile("pe-executable", _const(_PE), *UNSUPPORTED, "song.mp3"),
        HostileFile("macho-executable", _const(_MACHO), *UNSUPPORTED, "clip.mp4"),
        HostileFile("html-page", _const(b"<!DOCTYPE html>\n" + _HTML), *UNSUPPORTED, "chat.txt"),
        HostileFile("html-leading-space", _const(b"\n  <HTML>" + _HTML), *UNSUPPORTED, "note.txt"),
        HostileFile("svg-with-script", _const(_SVG), *UNSUPPORTED, "drawing.svg"),
        HostileFile("plain-zip", _const(_zip_payload()), *UNSUPPORTED, "chat.txt"),
        # text that is not UTF-8, or not text
        HostileFile("utf16-le-bom", _text("\ufeff" + _CHAT, "utf-16-le"), *ENCODING, "chat.txt"),
        HostileFile("utf16-be-bom", _text("\ufeff" + _CHAT, "utf-16-be"), *ENCODING, "chat.txt"),
        HostileFile("utf16-le-no-bom", _text(_CHAT, "utf-16-le"), *ENCODING, "chat.txt"),
        HostileFile("utf32-bom", _text("\ufeff" + _CHAT, "utf-32"), *ENCODING, "chat.txt"),
        HostileFile("latin1", _text(_CHAT, "latin-1"), *ENCODING, "chat.txt"),
        HostileFile(
            "utf8-overlong-slash",
            _const(_CHAT.encode() + b"\xc0\xaf\xc0\xae"),
            *ENCODING,
            "chat.txt",
        ),
        HostileFile(
            "utf8-encoded-surrogate",
            _const(_CHAT.encode() + b"\xed\xa0\x80"),
            *ENCODING,
            "chat.txt",
        ),
        HostileFile(
            "chat-with-nul-bytes",
            _const(_CHAT.encode().replace(b"Okafor", b"Oka\x00for")),
            *UNSUPPORTED,
        ),
        HostileFile(
            "chat-with-terminal-escapes",
            _const(_CHAT.replace("café", "\x1b[2J\x1b]0;pwned\x07").encode()),
            *UNSUPPORTED,
            "chat.txt",
        ),
    ]
    return entries


CORPUS: list[HostileFile] = _corpus()
