"""Per-licence watermarks: recovery, false attribution, invisibility and speed.

    uv run python benchmarks/watermark.py           # 112 pictures, 12 recordings, 1 video
    uv run python benchmarks/watermark.py --quick   # 28 pictures, 4 recordings

Pictures are scikit-image's sample photographs (shipped in its wheel) cropped and
rescaled at random, plus generated textured scenes; each is delivered as a JPEG and
marked for one of four licences. Every detection is asked about all four candidates.
Speeds are compared with the least any delivery must do with the same files in the same
run: decode and re-encode (Pillow JPEG 95; soundfile FLAC; PyAV H.264).
"""

from __future__ import annotations

import argparse
import io
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

import av
import numpy as np
import soundfile
from PIL import Image, ImageEnhance
from skimage.metrics import structural_similarity

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.unit.delivery.watermark_media import reencode_video, write_video  # noqa: E402

from fairtrain.delivery.fingerprint import detect_audio, mark_audio, resample  # noqa: E402
from fairtrain.delivery.watermark import (  # noqa: E402
    detect_image,
    detect_video,
    embed_image,
    embed_video,
)

PHOTOS = [
    "astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "camera.png",
    "motorcycle_left.png", "motorcycle_right.png", "hubble_deep_field.jpg", "retina.jpg",
    "ihc.png", "brick.png", "grass.png", "gravel.png", "moon.png",
]  # fmt: skip
SENTENCES = [
    ("en", "I agree to license my recordings for speech recognition research."),
    ("en-us", "Please pay me fairly every time a new dataset uses my voice."),
    ("de", "Ich möchte wissen, wer meine Daten kauft und wofür sie genutzt werden."),
    ("fr", "Je retire mon consentement pour toute utilisation publicitaire de ma voix."),
    ("es", "Mis grabaciones no pueden usarse para clonar mi voz ni para vigilancia."),
    ("en", "The other side of the call has not consented, so their voice is muted."),
]


def _jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()


def _open(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")


def _scene(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """A generated textured scene: smooth colour fields, fine noise and shapes."""
    width, height = size
    coarse = rng.random((height // 32 + 2, width // 32 + 2, 3)) * 255
    field = np.asarray(
        Image.fromarray(coarse.astype(np.uint8)).resize((width, height), Image.Resampling.BICUBIC),
        dtype=np.float64,
    )
    grain = rng.normal(0, rng.uniform(2, 14), (height, width, 1))
    picture = Image.fromarray(np.clip(field + grain, 0, 255).astype(np.uint8))
    from PIL import ImageDraw

    draw = ImageDraw.Draw(picture)
    for _ in range(12):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        r = int(rng.integers(10, max(11, min(width, height) // 4)))
        draw.ellipse(
            (x - r, y - r, x + r, y + r), fill=tuple(int(c) for c in rng.integers(0, 255, 3))
        )
    return picture


def pictures(count: int, seed: int = 7) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    sources = []
    for name in PHOTOS:
        with Image.open(files("skimage.data") / name) as opened:
            sources.append(opened.convert("RGB"))
    out: list[Image.Image] = []
    while len(out) < count:
        if len(out) % 8 == 7:
            short = int(rng.integers(320, 900))
            out.append(_scene(rng, (int(short * rng.uniform(1.0, 1.6)), short)))
            continue
        source = sources[len(out) % len(sources)]
        fraction = rng.uniform(0.55, 1.0)
        w, h = int(source.width * fraction), int(source.height * fraction)
        left = int(rng.integers(0, source.width - w + 1))
        top = int(rng.integers(0, source.height - h + 1))
        crop = source.crop((left, top, left + w, top + h))
        short = int(rng.integers(320, 900))
        scale = short / min(crop.size)
        out.append(
            crop.resize(
                (max(1, round(crop.width * scale)), max(1, round(crop.height * scale))),
                Image.Resampling.LANCZOS,
            )
        )
    return out


def _half_q75(data: bytes) -> bytes:
    image = _open(data)
    return _jpeg(image.resize((image.width // 2, image.height // 2), Image.Resampling.BICUBIC), 75)


ATTACKS: dict[str, Callable[[bytes], bytes]] = {
    "0.5× resize + JPEG 75 (target)": _half_q75,
    "JPEG 75 then 0.5× resize + PNG": lambda d: (
        lambda i: _png(i.resize((i.width // 2, i.height // 2), Image.Resampling.BICUBIC))
    )(_open(_jpeg(_open(d), 75))),
    "JPEG 50": lambda d: _jpeg(_open(d), 50),
    "0.25× resize + JPEG 85": lambda d: (
        lambda i: _jpeg(i.resize((i.width // 4, i.height // 4), Image.Resampling.BICUBIC), 85)
    )(_open(d)),
    "crop 5 % each side + JPEG 85": lambda d: (
        lambda i: _jpeg(
            i.crop(
                (
                    int(i.width * 0.05),
                    int(i.height * 0.05),
                    int(i.width * 0.95),
                    int(i.height * 0.95),
                )
            ),
            85,
        )
    )(_open(d)),
    "brightness +15 %, contrast −10 % + JPEG 85": lambda d: _jpeg(
        ImageEnhance.Contrast(ImageEnhance.Brightness(_open(d)).enhance(1.15)).enhance(0.9), 85
    ),
    "rotate 90° + mirror + JPEG 85": lambda d: _jpeg(
        _open(d).rotate(90, expand=True).transpose(Image.Transpose.FLIP_LEFT_RIGHT), 85
    ),
    "rotate 2° (not claimed)": lambda d: _jpeg(_open(d).rotate(2, Image.Resampling.BICUBIC), 90),
}


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * math.log10(255**2 / mse)


def _keys(count: int, seed: int) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    return {f"lic_{seed}_{i}": rng.bytes(32) for i in range(count)}


def bench_pictures(count: int) -> None:
    keys = _keys(4, 1)
    (outsider,) = _keys(1, 2).values()
    licences = list(keys)
    images = [_jpeg(p, 90) for p in pictures(count)]
    print(f"\n## Pictures: {len(images)} JPEGs, short side 320–900 px, 4 candidate licences")

    started = time.perf_counter()
    for data in images:
        _jpeg(_open(data), 95)
    baseline = len(images) / (time.perf_counter() - started)

    marked: list[bytes] = []
    started = time.perf_counter()
    for index, data in enumerate(images):
        marked.append(embed_image(data, key=keys[licences[index % 4]], media_type="image/jpeg"))
    embed_rate = len(images) / (time.perf_counter() - started)

    psnrs, ssims = [], []
    for data, mark in zip(images, marked, strict=True):
        a, b = np.asarray(_open(data)), np.asarray(_open(mark))
        psnrs.append(_psnr(a, b))
        ssims.append(structural_similarity(a, b, channel_axis=2, data_range=255))

    rows = []
    detect_time = 0.0
    detections = 0
    for name, attack in ATTACKS.items():
        right = wrong = 0
        for index, mark in enumerate(marked):
            attacked = attack(mark)
            started = time.perf_counter()
            found = detect_image(attacked, keys)
            detect_time += time.perf_counter() - started
            detections += 1
            right += found.licence_id == licences[index % 4]
            wrong += found.licence_id not in (None, licences[index % 4])
        rows.append((name, right, wrong))

    null_z: list[float] = []
    false_unmarked = false_outsider = 0
    for data in images:
        for attacked in (data, _half_q75(data)):
            found = detect_image(attacked, keys)
            false_unmarked += found.licence_id is not None
            null_z.append(found.z)
        other = _half_q75(embed_image(data, key=outsider, media_type="image/jpeg"))
        found = detect_image(other, keys)
        false_outsider += found.licence_id is not None
        null_z.append(found.z)

    n = len(images)
    print("\n| attack | recovered | wrong licence named |")
    print("|---|---|---|")
    for name, right, wrong in rows:
        print(f"| {name} | {right}/{n} ({100 * right / n:.1f} %) | {wrong} |")
    print(
        f"\nfalse attribution: unmarked {false_unmarked}/{2 * n} (as delivered and after the "
        f"target attack); marked for a fifth licence {false_outsider}/{n}; best z among all "
        f"{len(null_z)} no-mark cases {max(null_z):.2f} (attribution needs z ≈ 7.2)"
    )
    print(
        f"PSNR marked vs original: min {min(psnrs):.1f} dB, median {np.median(psnrs):.1f} dB; "
        f"SSIM min {min(ssims):.4f}, median {np.median(ssims):.4f}"
    )
    detect_rate = detections / detect_time
    print(
        f"speed: embed (decode + mark + JPEG 95) {embed_rate:.1f} images/s; "
        f"baseline decode + JPEG 95 {baseline:.1f} images/s → {embed_rate / baseline:.2f}×; "
        f"detect (decode + 4 candidates) {detect_rate:.1f} images/s → "
        f"{detect_rate / baseline:.2f}× baseline"
    )


def _speech(directory: Path, count: int) -> list[tuple[np.ndarray, int]]:
    clips = []
    for index in range(count):
        voice, text = SENTENCES[index % len(SENTENCES)]
        if index >= len(SENTENCES):  # longer clips: two sentences in a row
            text = text + " " + SENTENCES[(index + 1) % len(SENTENCES)][1]
        path = directory / f"s{index}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True)
        samples, rate = soundfile.read(str(path), dtype="float32")
        at_44k = resample(samples, int(rate), 44_100)
        clips.append((at_44k, 44_100))
    return clips


def _codec(samples: np.ndarray, rate: int, codec: str, fmt: str, bitrate: int) -> np.ndarray:
    out = io.BytesIO()
    with av.open(out, "w", format=fmt) as target:
        stream = target.add_stream(codec, rate=48_000 if codec == "libopus" else rate)
        stream.bit_rate = bitrate
        stream.layout = "mono"
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=stream.rate)
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="flt", layout="mono")
        frame.sample_rate = rate
        for converted in resampler.resample(frame):
            for packet in stream.encode(converted):
                target.mux(packet)
        for packet in stream.encode(None):
            target.mux(packet)
    with av.open(io.BytesIO(out.getvalue())) as source:
        back = av.AudioResampler(format="flt", layout="mono", rate=16_000)
        pieces = [
            c.to_ndarray().reshape(-1) for f in source.decode(audio=0) for c in back.resample(f)
        ]
    return np.concatenate(pieces)


AUDIO_ATTACKS: dict[str, Callable[[np.ndarray, int], tuple[np.ndarray, int]]] = {
    "none (FLAC)": lambda x, r: (x, r),
    "MP3 128 kbit/s": lambda x, r: (_codec(x, r, "libmp3lame", "mp3", 128_000), 16_000),
    "MP3 64 kbit/s": lambda x, r: (_codec(x, r, "libmp3lame", "mp3", 64_000), 16_000),
    "Opus 32 kbit/s": lambda x, r: (_codec(x, r, "libopus", "ogg", 32_000), 16_000),
    "Opus 16 kbit/s": lambda x, r: (_codec(x, r, "libopus", "ogg", 16_000), 16_000),
    "resample to 8 kHz": lambda x, r: (resample(x, r, 8_000), 8_000),
    "trim 0.5 s + 22.05 kHz": lambda x, r: (resample(x[int(0.5 * r) :], r, 22_050), 22_050),
    "2 % faster (not claimed)": lambda x, r: (resample(x, int(r * 1.02), r), r),
}


def bench_audio(count: int) -> None:
    keys = _keys(4, 3)
    licences = list(keys)
    with tempfile.TemporaryDirectory() as tmp:
        clips = _speech(Path(tmp), count)
        seconds = sum(x.size / r for x, r in clips)
        print(
            f"\n## Recordings: {len(clips)} espeak-ng clips at 44.1 kHz, "
            f"{min(x.size / r for x, r in clips):.1f}–{max(x.size / r for x, r in clips):.1f} s "
            f"({seconds:.0f} s in all), 4 candidate licences"
        )
        paths = []
        for index, (samples, rate) in enumerate(clips):
            path = Path(tmp) / f"c{index}.flac"
            soundfile.write(str(path), samples, rate)
            paths.append(path)
        started = time.perf_counter()
        for path in paths:
            samples, rate = soundfile.read(str(path), dtype="float32")
            soundfile.write(str(path.with_suffix(".plain.flac")), samples, rate)
        baseline = seconds / (time.perf_counter() - started)
        marked = []
        started = time.perf_counter()
        for index, path in enumerate(paths):
            samples, rate = soundfile.read(str(path), dtype="float32")
            marked_samples = mark_audio(samples, rate, key=keys[licences[index % 4]])
            soundfile.write(str(path.with_suffix(".marked.flac")), marked_samples, rate)
            marked.append(marked_samples)
        mark_speed = seconds / (time.perf_counter() - started)
        snrs = [
            10 * math.log10(np.sum(x.astype(float) ** 2) / np.sum((m - x).astype(float) ** 2))
            for (x, _), m in zip(clips, marked, strict=True)
        ]
        print("\n| attack | recovered | median z | unmarked named | wrong licence named |")
        print("|---|---|---|---|---|")
        detect_time = 0.0
        for name, attack in AUDIO_ATTACKS.items():
            right = wrong = false = 0
            zs = []
            for index, ((original, rate), mark) in enumerate(zip(clips, marked, strict=True)):
                leaked, leaked_rate = attack(mark, rate)
                started = time.perf_counter()
                found = detect_audio(leaked, leaked_rate, keys)
                detect_time += time.perf_counter() - started
                zs.append(found.z)
                right += found.licence_id == licences[index % 4]
                wrong += found.licence_id not in (None, licences[index % 4])
                plain, plain_rate = attack(original, rate)
                false += detect_audio(plain, plain_rate, keys).licence_id is not None
            n = len(clips)
            print(f"| {name} | {right}/{n} | {np.median(zs):.1f} | {false}/{n} | {wrong} |")
        detect_speed = seconds * len(AUDIO_ATTACKS) / detect_time
        print(
            f"\nmark SNR: min {min(snrs):.1f} dB, median {np.median(snrs):.1f} dB. "
            f"speed: read + mark + FLAC {mark_speed:.0f}× real time; baseline read + FLAC "
            f"{baseline:.0f}× → {mark_speed / baseline:.2f}×; detect {detect_speed:.0f}× real time"
        )


def _plain_video(source: Path, target: Path) -> None:
    with av.open(str(source)) as src, av.open(str(target), "w", format="mp4") as out:
        stream = src.streams.video[0]
        encoder = out.add_stream("libx264", rate=stream.average_rate or 25)
        encoder.width, encoder.height = stream.codec_context.width, stream.codec_context.height
        encoder.pix_fmt = "yuv420p"
        encoder.options = {"crf": "18", "preset": "veryfast"}
        for index, frame in enumerate(src.decode(stream)):
            rgb = av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")
            rgb.pts = index
            out.mux(encoder.encode(rgb))
        out.mux(encoder.encode(None))


def bench_video() -> None:
    keys = _keys(4, 5)
    licence = next(iter(keys))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = write_video(folder / "in.mp4", frames=75, size=(640, 360))
        started = time.perf_counter()
        _plain_video(source, folder / "plain.mp4")
        baseline = 75 / (time.perf_counter() - started)
        started = time.perf_counter()
        embed_video(source, folder / "marked.mp4", key=keys[licence])
        speed = 75 / (time.perf_counter() - started)
        with av.open(str(source)) as a, av.open(str(folder / "marked.mp4")) as b:
            psnrs = [
                _psnr(x.to_ndarray(format="rgb24"), y.to_ndarray(format="rgb24"))
                for x, y in zip(a.decode(video=0), b.decode(video=0), strict=False)
            ]
        print("\n## Video: 640×360, 75 frames (3 s), H.264 + AAC, 4 candidate licences")
        print("\n| leaked copy | attributed | z |")
        print("|---|---|---|")
        for label, scale, crf in [
            ("as delivered", None, None),
            ("same size, CRF 28", 1.0, 28),
            ("half size, CRF 23", 0.5, 23),
            ("half size, CRF 28", 0.5, 28),
            ("half size, CRF 32 (not claimed)", 0.5, 32),
        ]:
            path = folder / "marked.mp4"
            if scale is not None:
                path = reencode_video(path, folder / "leak.mp4", scale=scale, crf=int(crf or 0))
            found = detect_video(path, keys)
            print(f"| {label} | {found.licence_id == licence} | {found.z:.1f} |")
        unmarked = detect_video(source, keys)
        print(
            f"\nunmarked source named: {unmarked.licence_id is not None} (z {unmarked.z:.1f}). "
            f"PSNR per frame vs source (includes the H.264 re-encode): min {min(psnrs):.1f} dB, "
            f"mean {np.mean(psnrs):.1f} dB. speed: mark + H.264 {speed:.0f} fps; baseline "
            f"decode + RGB + H.264 {baseline:.0f} fps → {speed / baseline:.2f}×"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=["pictures", "audio", "video"])
    args = parser.parse_args()
    pictures_n, clips_n = (28, 4) if args.quick else (112, 12)
    if args.only in (None, "pictures"):
        bench_pictures(pictures_n)
    if args.only in (None, "audio"):
        bench_audio(clips_n)
    if args.only in (None, "video"):
        bench_video()


if __name__ == "__main__":
    main()
