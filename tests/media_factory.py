"""Real media of every accepted format, generated on the fly (never checked in).

Speech comes from Debian's espeak-ng, conversions from ffmpeg, images from Pillow
(HEIC through pillow-heif), PDF pages from Pillow's PDF writer, chats are written in each
app's export format. Every function writes into ``directory`` and returns the path.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

__all__ = [
    "FORMATS",
    "make",
    "moving_face_box",
    "moving_face_video",
    "picture",
    "speech_wav",
    "text_picture",
    "two_faces_picture",
    "two_speaker_mono",
]

SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=60)


def speech_wav(
    directory: Path, text: str = SENTENCE, voice: str = "en", name: str = "speech.wav"
) -> Path:
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is missing: apt-get install espeak-ng")
    path = directory / name
    _run("espeak-ng", "-v", voice, "-w", str(path), text)
    return path


def _convert(source: Path, target: Path, *args: str) -> Path:
    _run("ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(source), *args, str(target))
    return target


def picture(size: tuple[int, int] = (320, 240), seed: int = 1) -> Image.Image:
    """A photo-like picture: gradients, shapes and noise (so hashes and blur scores mean
    something)."""
    rng = np.random.default_rng(seed)
    width, height = size
    x = np.linspace(0, 255, width, dtype=np.float32)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    channels = np.broadcast_arrays(
        (x + y * 0.5) % 256, (y + seed * 40 + x * 0) % 256, (255 - x * 0.7 + y * 0.2) % 256
    )
    base = np.stack(channels, axis=-1)
    noisy = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    image = Image.fromarray(noisy, "RGB")
    draw = ImageDraw.Draw(image)
    for i in range(6):
        left, top = int(rng.integers(0, width - 40)), int(rng.integers(0, height - 40))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        draw.ellipse((left, top, left + 30 + i * 5, top + 30 + i * 3), fill=colour)
    return image


def _image(directory: Path, name: str, fmt: str, **options: object) -> Path:
    path = directory / name
    picture(seed=len(name)).save(path, format=fmt, **options)
    return path


def heic(directory: Path) -> Path:
    from pillow_heif import register_heif_opener

    register_heif_opener()
    return _image(directory, "photo.heic", "HEIF", quality=80)


def handwriting_png(directory: Path) -> Path:
    image = Image.new("L", (600, 300), 250)
    draw = ImageDraw.Draw(image)
    for line in range(5):
        draw.line((30, 50 + line * 45, 570, 52 + line * 45), fill=40, width=2)
        draw.text((40, 30 + line * 45), f"dear diary, line {line} of my notes", fill=20)
    path = directory / "scan.png"
    image.save(path)
    return path


def handwriting_pdf(directory: Path) -> Path:
    page = Image.open(handwriting_png(directory)).convert("RGB")
    path = directory / "scan.pdf"
    page.save(path, format="PDF", resolution=100.0)
    return path


def video(directory: Path, name: str, *args: str) -> Path:
    """Two seconds of moving pictures with the speech track."""
    frames = directory / "frames"
    frames.mkdir(exist_ok=True)
    for index in range(12):
        picture(size=(320, 240), seed=index).save(frames / f"f{index:03d}.png")
    speech = speech_wav(directory)
    path = directory / name
    _run(
        "ffmpeg",
        "-nostdin",
        "-loglevel",
        "error",
        "-y",
        "-framerate",
        "6",
        "-i",
        str(frames / "f%03d.png"),
        "-i",
        str(speech),
        "-shortest",
        *args,
        str(path),
    )
    return path


def two_party_call(directory: Path) -> Path:
    """A stereo phone call: the contributor on the left channel, the other party right."""
    left = speech_wav(directory, "Hello, this is me calling about the order.", "en", "l.wav")
    right = speech_wav(directory, "Hi, yes, I can help you with that today.", "en+f3", "r.wav")
    return _run_merge(directory, left, right)


CONTRIBUTOR_LINES = (
    "Hello, this is my own voice recording for the dataset, I am speaking clearly.",
    "And now I am talking again, for a longer while, about the weather and the news today.",
)
OTHER_LINE = "Hi there, I am the other person on this call, please do not share my voice."


def two_speaker_mono(directory: Path, name: str = "two-voices.wav") -> Path:
    """One mono track, 16 kHz: the contributor (low male voice), another person (a high
    female voice), the contributor again; 0.6 s of silence between turns. The other
    person speaks from about 5.9 s to 10.2 s."""
    first, other, second = (directory / f"turn-{i}.wav" for i in range(3))
    _run("espeak-ng", "-v", "en", "-p", "30", "-s", "150", "-w", str(first), CONTRIBUTOR_LINES[0])
    _run("espeak-ng", "-v", "en+f3", "-p", "80", "-s", "170", "-w", str(other), OTHER_LINE)
    _run("espeak-ng", "-v", "en", "-p", "30", "-s", "150", "-w", str(second), CONTRIBUTOR_LINES[1])
    path = directory / name
    _run(
        "ffmpeg", "-nostdin", "-loglevel", "error", "-y",
        "-i", str(first), "-i", str(other), "-i", str(second),
        "-filter_complex",
        "[0:a]apad=pad_dur=0.6[a];[1:a]apad=pad_dur=0.6[b];[a][b][2:a]concat=n=3:v=0:a=1,"
        "aresample=16000[out]",
        "-map", "[out]", "-ac", "1", str(path),
    )  # fmt: skip
    return path


def two_faces_picture() -> Image.Image:
    """The astronaut (a large face, the contributor's by default) and a smaller copy of
    her face at the right (someone else): CenterFace finds both."""
    from skimage import data as skimage_data

    astronaut = Image.fromarray(skimage_data.astronaut())
    canvas = Image.new("RGB", (800, 512), (90, 110, 130))
    canvas.paste(astronaut, (0, 0))
    canvas.paste(astronaut.crop((140, 30, 320, 230)).resize((126, 140)), (600, 150))
    return canvas


TEXT_LINES = ("Invoice 4471 for Ada Okafor", "Plate: KX19 ABC")


def text_picture() -> Image.Image:
    """A picture with two lines of rendered text (a document, a number plate) and a shape
    without any: the text should be blurred, the shape left."""
    from PIL import ImageFont

    image = Image.new("RGB", (640, 360), (235, 235, 230))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=36)
    for index, line in enumerate(TEXT_LINES):
        draw.text((30, 40 + index * 80), line, fill=(20, 20, 20), font=font)
    draw.ellipse((420, 220, 600, 340), fill=(200, 60, 60), outline=(30, 30, 30), width=6)
    return image


# Where the face is in each frame of :func:`moving_face_video` (x1, y1, x2, y2).
FACE_IN_CROP = (41, 28, 130, 148)  # the astronaut's face inside the crop pasted
FACE_STEP = 8  # pixels the face moves right per frame


def moving_face_box(frame: int) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = FACE_IN_CROP
    return x1 + 20 + frame * FACE_STEP, y1 + 40, x2 + 20 + frame * FACE_STEP, y2 + 40


def moving_face_video(directory: Path, frames: int = 32, name: str = "face.mp4") -> Path:
    """A face moving across the picture at 2 frames/s, with the two-voice mono track as
    sound and a title and location in the container metadata."""
    from skimage import data as skimage_data

    face = Image.fromarray(skimage_data.astronaut()).crop((140, 30, 320, 230))
    folder = directory / "face-frames"
    folder.mkdir(exist_ok=True)
    for index in range(frames):
        frame = picture(size=(480, 320), seed=3)
        frame.paste(face, (20 + index * FACE_STEP, 40))
        frame.save(folder / f"f{index:03d}.png")
    sound = two_speaker_mono(directory)
    path = directory / name
    _run(
        "ffmpeg", "-nostdin", "-loglevel", "error", "-y",
        "-framerate", "2", "-i", str(folder / "f%03d.png"), "-i", str(sound),
        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "12", "-c:a", "aac",
        "-metadata", "title=Holiday at home", "-metadata", "location=+51.5074-000.1278/",
        "-shortest", str(path),
    )  # fmt: skip
    return path


def _run_merge(directory: Path, left: Path, right: Path) -> Path:
    path = directory / "call.wav"
    _run(
        "ffmpeg",
        "-nostdin",
        "-loglevel",
        "error",
        "-y",
        "-i",
        str(left),
        "-i",
        str(right),
        "-filter_complex",
        "[0:a][1:a]join=inputs=2:channel_layout=stereo[a]",
        "-map",
        "[a]",
        str(path),
    )
    return path


WHATSAPP_ANDROID = """12/31/20, 9:15 PM - Messages and calls are end-to-end encrypted.
12/31/20, 9:15 PM - Ada Okafor: are we still on for tomorrow?
12/31/20, 9:16 PM - Ben Stone: yes! call me on +44 7700 900123
12/31/20, 9:17 PM - Ada Okafor: great, see you at the station
then we walk to the market
"""
WHATSAPP_IOS = """\u200e[31/12/2020, 21:15:07] Ada Okafor: are we still on for tomorrow?
[31/12/2020, 21:16:10] Ben Stone: yes, meet me at 221B Baker Street
[31/12/2020, 21:17:44] Ada Okafor: perfect, see you there
"""
TELEGRAM = {
    "name": "Ben Stone",
    "type": "personal_chat",
    "id": 4242,
    "messages": [
        {
            "id": 1,
            "type": "message",
            "date": "2020-12-31T21:15:07",
            "from": "Ada Okafor",
            "from_id": "user1",
            "text": "are we still on for tomorrow?",
        },
        {
            "id": 2,
            "type": "message",
            "date": "2020-12-31T21:16:10",
            "from": "Ben Stone",
            "from_id": "user2",
            "text": ["mail me at ", {"type": "email", "text": "ben@example.com"}],
        },
    ],
}
PLAIN = "I recorded this note to describe my morning walk by the river.\n" * 3


def _text(directory: Path, name: str, content: str) -> Path:
    path = directory / name
    path.write_text(content, encoding="utf-8")
    return path


# name -> (builder, expected modality, expected media type)
FORMATS: dict[str, tuple[Callable[[Path], Path], str, str]] = {
    "wav": (speech_wav, "audio", "audio/wav"),
    "flac": (lambda d: _convert(speech_wav(d), d / "speech.flac"), "audio", "audio/flac"),
    "mp3": (
        lambda d: _convert(speech_wav(d), d / "speech.mp3", "-b:a", "64k"),
        "audio",
        "audio/mpeg",
    ),
    "opus": (
        lambda d: _convert(speech_wav(d), d / "speech.ogg", "-c:a", "libopus"),
        "audio",
        "audio/ogg",
    ),
    "m4a": (
        lambda d: _convert(speech_wav(d), d / "speech.m4a", "-c:a", "aac"),
        "audio",
        "audio/mp4",
    ),
    "call": (two_party_call, "audio", "audio/wav"),
    "jpeg": (lambda d: _image(d, "photo.jpg", "JPEG", quality=90), "image", "image/jpeg"),
    "png": (lambda d: _image(d, "photo.png", "PNG"), "image", "image/png"),
    "webp": (lambda d: _image(d, "photo.webp", "WEBP", quality=85), "image", "image/webp"),
    "heic": (heic, "image", "image/heic"),
    "handwriting-png": (handwriting_png, "image", "image/png"),
    "handwriting-pdf": (handwriting_pdf, "document", "application/pdf"),
    "mp4": (
        lambda d: video(d, "clip.mp4", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac"),
        "video",
        "video/mp4",
    ),
    "webm": (
        lambda d: video(d, "clip.webm", "-c:v", "libvpx-vp9", "-b:v", "200k", "-c:a", "libopus"),
        "video",
        "video/webm",
    ),
    "mov": (
        lambda d: video(d, "clip.mov", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac"),
        "video",
        "video/quicktime",
    ),
    "whatsapp-android": (lambda d: _text(d, "chat.txt", WHATSAPP_ANDROID), "chat", "text/plain"),
    "whatsapp-ios": (lambda d: _text(d, "chat-ios.txt", WHATSAPP_IOS), "chat", "text/plain"),
    "telegram": (
        lambda d: _text(d, "result.json", json.dumps(TELEGRAM)),
        "chat",
        "application/json",
    ),
    "plain-text": (lambda d: _text(d, "note.txt", PLAIN), "text", "text/plain"),
}


def make(name: str, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    return FORMATS[name][0](directory)


def png_bytes(size: tuple[int, int] = (96, 64), seed: int = 1) -> bytes:
    out = io.BytesIO()
    picture(size=size, seed=seed).save(out, format="PNG")
    return out.getvalue()
