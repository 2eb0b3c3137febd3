"""Media redaction speed: photos per second with face blur, audio × real time, video fps.

    uv run python benchmarks/privacy_media.py           # 40 photos, 12 clips, 2 videos
    uv run python benchmarks/privacy_media.py --quick   # 10 photos, 4 clips

Each is measured in one process against the least any redactor must do with the same
files in the same run: decode and re-encode (Pillow → JPEG; PyAV → FLAC; PyAV → H.264).
Photos are timed with and without the visible-text pass (Tesseract); recordings include
two-voice mono clips (speaker clustering); the face video is timed with faces detected
on every frame and on every fifth frame (tracked between).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import av
import soundfile
from PIL import Image
from skimage import data

ROOT = Path(__file__).resolve().parent.parent
# media_factory: a `tests` package in site-packages would shadow ours as `tests.…`.
sys.path.insert(0, str(ROOT / "tests"))
import media_factory  # noqa: E402
from fairtrain.privacy.media import redact_audio, redact_image, redact_video  # noqa: E402


def _photos(directory: Path, count: int) -> list[Path]:
    face = Image.fromarray(data.astronaut()).resize((256, 256))
    paths = []
    for index in range(count):
        picture = media_factory.picture(size=(1280, 960), seed=index)
        picture.paste(face, (100 + index * 7 % 400, 100))
        path = directory / f"p{index}.jpg"
        picture.save(path, quality=90)
        paths.append(path)
    return paths


def _reencode_video(source: Path, target: Path) -> None:
    with av.open(str(source)) as src, av.open(str(target), "w", format="mp4") as out:
        stream = src.streams.video[0]
        encoder = out.add_stream("libx264", rate=stream.average_rate or 25)
        encoder.width = stream.codec_context.width // 2 * 2
        encoder.height = stream.codec_context.height // 2 * 2
        encoder.pix_fmt = "yuv420p"
        encoder.options = {"crf": "20", "preset": "veryfast"}
        for frame in src.decode(stream):
            frame.pts = None
            out.mux(encoder.encode(frame))
        out.mux(encoder.encode(None))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    photos_n, clips_n = (10, 4) if args.quick else (40, 12)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        photos = _photos(work, photos_n)
        clips = [
            media_factory.speech_wav(work, f"{media_factory.SENTENCE} Take {i}.", "en", f"c{i}.wav")
            for i in range(clips_n)
        ]
        clips += [media_factory.two_speaker_mono(work, f"two-{i}.wav") for i in range(2)]
        seconds = sum(soundfile.info(str(c)).duration for c in clips)
        video = media_factory.make("mp4", work / "video")
        (work / "faces").mkdir()
        face_video = media_factory.moving_face_video(work / "faces")
        redact_image(photos[0], work / "warm.jpg")  # load the model once

        cpu = time.process_time()
        start = time.perf_counter()
        faces = sum(
            redact_image(p, work / "r.jpg", own_face="none", blur_text=False)[1]["faces_blurred"]
            for p in photos
        )
        photo_s = time.perf_counter() - start
        photo_cpu = time.process_time() - cpu
        cpu = time.process_time()
        start = time.perf_counter()
        for p in photos:
            redact_image(p, work / "r.jpg", own_face="none")
        photo_text_s = time.perf_counter() - start
        photo_text_cpu = time.process_time() - cpu
        start = time.perf_counter()
        for p in photos:
            with Image.open(p) as image:
                image.convert("RGB").save(work / "b.jpg", quality=92)
        photo_base = time.perf_counter() - start

        cpu = time.process_time()
        start = time.perf_counter()
        for c in clips:
            redact_audio(c, work / "r.flac")
        audio_s = time.perf_counter() - start
        audio_cpu = time.process_time() - cpu
        start = time.perf_counter()
        for c in clips:
            samples, rate = soundfile.read(str(c))
            soundfile.write(str(work / "b.flac"), samples, rate, format="FLAC")
        audio_base = time.perf_counter() - start

        start = time.perf_counter()
        report = redact_video(video, work / "r.mp4")[1]
        video_s = time.perf_counter() - start
        start = time.perf_counter()
        _reencode_video(video, work / "b.mp4")
        video_base = time.perf_counter() - start
        tracked: dict[int, float] = {}
        tracked_cpu: dict[int, float] = {}
        for stride in (1, 5):
            cpu = time.process_time()
            start = time.perf_counter()
            face_report = redact_video(face_video, work / f"s{stride}.mp4", stride=stride)[1]
            tracked[stride] = time.perf_counter() - start
            tracked_cpu[stride] = time.process_time() - cpu
        start = time.perf_counter()
        _reencode_video(face_video, work / "fb.mp4")
        face_base = time.perf_counter() - start
    print(
        {
            "photos": photos_n,
            "faces_blurred": faces,
            "photos_per_s": round(photos_n / photo_s, 2),
            "baseline_photos_per_s": round(photos_n / photo_base, 2),
            "photo_ratio": round(photo_base / photo_s, 3),
            "photos_per_s_with_text": round(photos_n / photo_text_s, 2),
            # CPU seconds of this process (Tesseract runs in a child: not counted), which
            # hold when other work shares the machine and wall-clock figures do not.
            "cpu_s_per_photo": round(photo_cpu / photos_n, 3),
            "cpu_s_per_photo_with_text": round(photo_text_cpu / photos_n, 3),
            "audio_x_realtime_per_cpu_s": round(seconds / audio_cpu, 1),
            "audio_seconds": round(seconds, 1),
            "audio_x_realtime": round(seconds / audio_s, 1),
            "baseline_audio_x_realtime": round(seconds / audio_base, 1),
            "video_frames": report["frames"],
            "video_fps": round(report["frames"] / video_s, 1),
            "baseline_video_fps": round(report["frames"] / video_base, 1),
            "face_video_frames": face_report["frames"],
            "face_video_fps_every_frame": round(face_report["frames"] / tracked[1], 1),
            "face_video_fps_stride_5": round(face_report["frames"] / tracked[5], 1),
            "face_video_cpu_s_every_frame": round(tracked_cpu[1], 2),
            "face_video_cpu_s_stride_5": round(tracked_cpu[5], 2),
            "face_video_baseline_fps": round(face_report["frames"] / face_base, 1),
        }
    )


if __name__ == "__main__":
    main()
