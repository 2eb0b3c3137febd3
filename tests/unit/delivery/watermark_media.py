"""Pictures, recordings and videos for the watermark tests, made locally.

Photographs are scikit-image's sample images (shipped inside its wheel, nothing is
downloaded), cropped and rescaled for variety; videos and attacks are made with PyAV and
Pillow.
"""

from __future__ import annotations

import io
from fractions import Fraction
from importlib.resources import files
from pathlib import Path

import av
import numpy as np
from PIL import Image

PHOTOS = (
    "astronaut.png",
    "coffee.png",
    "chelsea.png",
    "rocket.jpg",
    "camera.png",
    "motorcycle_left.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "gravel.png",
    "moon.png",
)


def photo(name: str) -> Image.Image:
    with Image.open(files("skimage.data") / name) as opened:
        return opened.convert("RGB")


def encoded(image: Image.Image, fmt: str = "JPEG", **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def decoded(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as opened:
        return opened.convert("RGB")


def halve_then_jpeg75(data: bytes) -> bytes:
    """The benchmark's required attack: a 0.5× resize, then JPEG at quality 75."""
    image = decoded(data)
    small = image.resize((image.width // 2, image.height // 2), Image.Resampling.BICUBIC)
    return encoded(small, quality=75)


def psnr(a: Image.Image, b: Image.Image) -> float:
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    return float(10 * np.log10(255**2 / np.mean((x - y) ** 2)))


def licence_keys(count: int, salt: int = 0) -> dict[str, bytes]:
    rng = np.random.default_rng(1000 + salt)
    return {f"lic_{salt}_{i}": rng.bytes(32) for i in range(count)}


def write_video(path: Path, *, frames: int = 40, size: tuple[int, int] = (320, 240)) -> Path:
    """An H.264 + AAC MP4 of a slow pan over a photograph, with a tone on the sound."""
    width, height = size
    scene = np.asarray(photo("coffee.png").resize((width + frames, height + 20)))
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = container.add_stream("aac", rate=44_100)
        audio.layout = "mono"
        for index in range(frames):
            view = np.ascontiguousarray(
                scene[index % 20 : index % 20 + height, index : index + width]
            )
            frame = av.VideoFrame.from_ndarray(view, format="rgb24")
            frame.pts = index
            for packet in video.encode(frame):
                container.mux(packet)
        seconds = frames / 25
        t = np.arange(int(44_100 * seconds)) / 44_100
        tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for start in range(0, tone.size, 1024):
            chunk = av.AudioFrame.from_ndarray(
                tone[None, start : start + 1024], format="fltp", layout="mono"
            )
            chunk.sample_rate = 44_100
            chunk.pts = start
            chunk.time_base = Fraction(1, 44_100)
            for packet in audio.encode(chunk):
                container.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode(None):
                container.mux(packet)
    return path


def reencode_video(source: Path, target: Path, *, scale: float, crf: int) -> Path:
    """Another H.264 encode at a smaller size, as a leaker's re-upload would be."""
    with av.open(str(source)) as src, av.open(str(target), "w") as out:
        stream = src.streams.video[0]
        width = int(stream.codec_context.width * scale) // 2 * 2
        height = int(stream.codec_context.height * scale) // 2 * 2
        video = out.add_stream("libx264", rate=stream.average_rate or 25)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"crf": str(crf)}
        for index, frame in enumerate(src.decode(stream)):
            small = frame.reformat(width=width, height=height, format="yuv420p")
            small.pts = index
            for packet in video.encode(small):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
    return target


def audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(audio=0) if p.size]
