"""Ingest benchmark: a large upload's memory, the full pipeline's speed, dedup at 1M.

    uv run python benchmarks/ingest.py                 # 2 GiB video, 40 images, 12 clips, 1M hashes
    uv run python benchmarks/ingest.py --quick         # 256 MiB, 10 images, 4 clips, 100k hashes
    uv run python benchmarks/ingest.py --only dedup    # one part: upload | pipeline | dedup

Figures (each against a baseline measured in the same run):

* **upload**: a real ``fairtrain serve`` process receives a valid MP4 of the given size
  through ``fairtrain upload`` (tus, 8 MiB pieces). Peak RSS of the server process
  (``VmHWM`` from /proc) against the target of 200 MB, and the upload's wall time
  against a raw file copy of the same file.
* **pipeline**: the server (jobs not in-process) plus two ``fairtrain worker`` processes
  (one thread each) take a batch of photos, then a batch of speech clips, from the
  first upload to the last asset awaiting review: images/s and audio seconds per
  wall-clock second (× real time). Baseline: decoding and re-encoding the same files in
  one process (Pillow → PNG; PyAV → FLAC), the least any pipeline must do.
* **dedup**: ``find_similar`` (indexed band keys) for a perceptual hash among N stored
  hashes in SQLite: p50/p99 latency, against a vectorised NumPy full scan of the same
  N hashes (the "no index" alternative).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(
    0, str(ROOT / "tests")
)  # media_factory (a `tests` package in site-packages shadows ours)
import media_factory  # noqa: E402

MiB = 1 << 20
PASSWORD = "correct horse battery staple 42!"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(workdir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        FAIRTRAIN_MODE="dev",
        FAIRTRAIN_DATA_DIR=str(workdir),
        FAIRTRAIN_JOBS_IN_PROCESS="false",
        FAIRTRAIN_ARGON2_MEMORY_KIB="8192",
        FAIRTRAIN_ARGON2_TIME_COST="1",
        **extra,
    )
    return env


@contextmanager
def _server(workdir: Path, **extra: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "fairtrain.cli", "serve", "--port", str(port)],
        env=_env(workdir, **extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise RuntimeError("the server did not start")
        yield base, process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def _contributor(base: str, name: str = "Bench Mark") -> tuple[httpx.Client, str]:
    http = httpx.Client(base_url=base, timeout=600)
    email = f"bench-{secrets.token_hex(4)}@example.org"
    response = http.post(
        "/api/v1/accounts/contributors",
        json={
            "email": email,
            "password": PASSWORD,
            "display_name": name,
            "date_of_birth": "1990-01-01",
            "adult_attestation": True,
            "jurisdiction": "DE",
        },
    )
    response.raise_for_status()
    return http, email


# --- upload ---------------------------------------------------------------------------


def _big_video(workdir: Path, size: int) -> Path:
    clip = workdir / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
         "testsrc2=size=1280x720:rate=25:duration=10", "-c:v", "libx264", "-preset",
         "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p", str(clip)],
        check=True,
    )  # fmt: skip
    big = workdir / "big.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-stream_loop", "-1", "-i",
         str(clip), "-c", "copy", "-fs", str(size), str(big)],
        check=True,
    )  # fmt: skip
    return big


def bench_upload(workdir: Path, size: int) -> dict[str, Any]:
    video = _big_video(workdir, size)
    actual = video.stat().st_size
    start = time.perf_counter()
    shutil.copyfile(video, workdir / "copy.mp4")
    copy_seconds = time.perf_counter() - start
    (workdir / "copy.mp4").unlink()
    with _server(workdir / "upload") as (base, process):
        _, email = _contributor(base)
        baseline_rss = _peak_rss_mib(process.pid)
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "fairtrain.cli", "upload", str(video), "--server", base,
             "--email", email, "--json", "--state-file", str(workdir / "state.json")],
            env=_env(workdir, FAIRTRAIN_PASSWORD=PASSWORD),
            capture_output=True,
            check=False,
        )  # fmt: skip
        upload_seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"upload failed: {done.stdout!r} {done.stderr!r}")
        peak = _peak_rss_mib(process.pid)
    return {
        "file_mib": round(actual / MiB),
        "server_rss_before_mib": round(baseline_rss),
        "server_peak_rss_mib": round(peak),
        "upload_mib_s": round(actual / MiB / upload_seconds, 1),
        "copy_mib_s": round(actual / MiB / copy_seconds, 1),
        "upload_vs_copy": round(copy_seconds / upload_seconds, 3),
    }


# --- pipeline -------------------------------------------------------------------------


def _photos(directory: Path, count: int) -> list[Path]:
    from PIL import Image
    from skimage import data

    directory.mkdir(parents=True, exist_ok=True)
    face = Image.fromarray(data.astronaut()).resize((256, 256))
    paths = []
    for index in range(count):
        picture = media_factory.picture(size=(1280, 960), seed=index)
        picture.paste(face, (100 + index * 7 % 400, 100))  # one face per photo
        path = directory / f"photo{index}.jpg"
        picture.save(path, quality=90)
        paths.append(path)
    return paths


def _clips(directory: Path, count: int) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    sentence = media_factory.SENTENCE
    return [
        media_factory.speech_wav(directory, f"{sentence} Take {i}. {sentence}", "en", f"c{i}.wav")
        for i in range(count)
    ]


def _seconds_of_audio(paths: list[Path]) -> float:
    import soundfile

    return sum(soundfile.info(str(p)).duration for p in paths)


def _baseline(paths: list[Path], kind: str, workdir: Path) -> float:
    import av
    from PIL import Image

    start = time.perf_counter()
    for path in paths:
        if kind == "image":
            with Image.open(path) as image:
                image.convert("RGB").save(workdir / "b.png")
        else:
            with av.open(str(path)) as source, av.open(str(workdir / "b.flac"), "w") as out:
                stream = out.add_stream("flac", rate=source.streams.audio[0].rate)
                for frame in source.decode(audio=0):
                    frame.pts = None
                    out.mux(stream.encode(frame))
                out.mux(stream.encode(None))
    return time.perf_counter() - start


def _wait_processed(http: httpx.Client, ids: set[str], timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assets = http.get("/api/v1/assets", params={"limit": 200}).json()
        waiting = [a for a in assets if a["id"] in ids and a["state"] in ("uploaded", "processing")]
        if not waiting:
            bad = [a for a in assets if a["id"] in ids and a["state"] != "awaiting_review"]
            if bad:
                raise RuntimeError(f"not processed: {bad[0]}")
            return
        time.sleep(0.2)
    raise RuntimeError("processing did not finish in time")


def _batch(base: str, paths: list[Path]) -> float:
    http, email = _contributor(base)
    me = http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD}).json()
    headers = {"X-CSRF-Token": me["csrf_token"]}
    start = time.perf_counter()
    ids = set()
    for path in paths:
        response = http.post(
            "/api/v1/uploads",
            content=path.read_bytes(),
            params={"filename": path.name},
            headers=headers,
        )
        response.raise_for_status()
        ids.add(response.json()["id"])
    _wait_processed(http, ids)
    return time.perf_counter() - start


def bench_pipeline(workdir: Path, images: int, clips: int) -> dict[str, Any]:
    photos = _photos(workdir / "photos", images)
    speech = _clips(workdir / "speech", clips)
    audio_seconds = _seconds_of_audio(speech)
    image_baseline = _baseline(photos, "image", workdir)
    audio_baseline = _baseline(speech, "audio", workdir)
    data = workdir / "pipeline"
    with _server(data) as (base, _):
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "fairtrain.cli", "worker", "--workers", "1"],
                env=_env(data),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(2)
        ]
        try:
            _batch(base, photos[:2])  # warm-up: models loaded in both workers
            image_seconds = _batch(base, photos)
            clip_seconds = _batch(base, speech)
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGINT)
            for worker in workers:
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    worker.kill()
    return {
        "images": images,
        "images_per_s": round(images / image_seconds, 2),
        "baseline_images_per_s": round(images / image_baseline, 2),
        "image_ratio": round(image_baseline / image_seconds, 3),
        "audio_seconds": round(audio_seconds, 1),
        "audio_x_realtime": round(audio_seconds / clip_seconds, 2),
        "baseline_audio_x_realtime": round(audio_seconds / audio_baseline, 1),
        "audio_ratio": round(audio_baseline / clip_seconds, 3),
    }


# --- dedup ----------------------------------------------------------------------------


def bench_dedup(workdir: Path, count: int, queries: int = 500) -> dict[str, Any]:
    import numpy as np
    from sqlalchemy import insert

    import fairtrain.models  # noqa: F401
    from fairtrain.db import Base, make_engine, make_session_factory
    from fairtrain.ingest import fingerprints
    from fairtrain.ingest.models import Asset, AssetFingerprint

    engine = make_engine(f"sqlite:///{workdir / 'dedup.db'}")
    Base.metadata.create_all(engine)
    rng = np.random.default_rng(7)
    hashes = rng.integers(0, 2**63, size=count, dtype=np.int64).astype(np.uint64)
    hashes |= rng.integers(0, 2, size=count, dtype=np.uint64) << np.uint64(63)
    from fairtrain.ids import utcnow

    now = utcnow()
    start = time.perf_counter()
    with engine.begin() as connection:
        users = Base.metadata.tables["users"]
        connection.execute(
            insert(users),
            [{"id": "usr_bench", "kind": "contributor", "email": "b@example.org",
              "display_name": "B", "password_hash": "x", "created_at": now}],
        )  # fmt: skip
        step = 20_000
        for first in range(0, count, step):
            rows, keys = [], []
            for index in range(first, min(count, first + step)):
                value = f"{int(hashes[index]):016x}"
                asset_id = f"ast_{index}"
                rows.append(
                    {"id": asset_id, "owner_id": "usr_bench", "state": "listed",
                     "modality": "image", "display_name": "x", "size_bytes": 1,
                     "sha256": value, "media_info": {"fingerprint": {"kind": "image",
                     "value": value}}, "quality": {}, "privacy_report": {},
                     "created_at": now, "updated_at": now}
                )  # fmt: skip
                keys.extend(
                    {"asset_id": asset_id, "kind": "image", "band_key": key, "digest": value}
                    for key in fingerprints.image_fingerprint(value).band_keys
                )
            connection.execute(insert(Asset), rows)
            connection.execute(insert(AssetFingerprint), keys)
    fill_seconds = time.perf_counter() - start
    sessions = make_session_factory(engine)
    latencies, scans = [], []
    picks = rng.integers(0, count, size=queries)
    with sessions() as session:
        for pick in picks:
            # A near-duplicate of a stored hash: 7 bits flipped, two in every band but one
            # (the worst case the index must still find).
            flipped = int(hashes[pick])
            for bit in (1, 9, 17, 25, 33, 41, 50):
                flipped ^= 1 << bit
            probe = fingerprints.image_fingerprint(f"{flipped:016x}")
            start = time.perf_counter()
            found = fingerprints.find_similar(session, "ast_probe", probe)
            latencies.append(time.perf_counter() - start)
            if f"ast_{pick}" not in {a.id for a, _ in found}:
                raise RuntimeError("the indexed lookup missed a near-duplicate")
            start = time.perf_counter()
            xor = np.bitwise_xor(hashes, np.uint64(flipped))
            distance = np.unpackbits(xor.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)
            np.flatnonzero(distance <= fingerprints.IMAGE_MAX_DISTANCE)
            scans.append(time.perf_counter() - start)
    latencies.sort()
    scans.sort()
    p50 = statistics.median(latencies)
    return {
        "hashes": count,
        "band_rows": count * fingerprints.IMAGE_BANDS,
        "fill_seconds": round(fill_seconds, 1),
        "lookup_p50_ms": round(p50 * 1000, 2),
        "lookup_p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
        "numpy_scan_p50_ms": round(statistics.median(scans) * 1000, 2),
        "scan_over_lookup": round(statistics.median(scans) / p50, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=["upload", "pipeline", "dedup"])
    args = parser.parse_args()
    size = (256 if args.quick else 2048) * MiB
    images, clips = (10, 4) if args.quick else (40, 12)
    hashes = 100_000 if args.quick else 1_000_000
    with tempfile.TemporaryDirectory(prefix="fairtrain-bench-") as tmp:
        workdir = Path(tmp)
        if args.only in (None, "dedup"):
            print("dedup", bench_dedup(workdir, hashes), flush=True)
        if args.only in (None, "pipeline"):
            print("pipeline", bench_pipeline(workdir, images, clips), flush=True)
        if args.only in (None, "upload"):
            print("upload", bench_upload(workdir, size), flush=True)


if __name__ == "__main__":
    main()
