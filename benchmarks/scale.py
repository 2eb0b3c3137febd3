"""Scale-out benchmark: ingest throughput with 1, 2 and 4 worker processes.

    uv run python benchmarks/scale.py                  # 24 photos per run, 1/2/4 workers
    uv run python benchmarks/scale.py --photos 60 --workers 1 2 4 8

It starts the multi-process deployment of ``fairtrain.stack`` (the machine's PostgreSQL
in a fresh database, Redis, moto S3 on loopback, two API processes) with *no* workers,
uploads N photos of 1280x960 with a face through the API (each stored encrypted in S3,
its processing job queued in Redis), then starts W ``fairtrain worker`` processes (one
thread each) and times until every photo has been processed (sniffed, measured, face
detected and blurred, redacted copy written back to S3: state ``awaiting_review``).
Workers are stopped between runs; each run uploads its own photos.

The dataset build over 100,000 assets is measured by ``benchmarks/marketplace.py`` at a
million (its selection is about a tenth of the catalogue).
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from importlib.resources import files
from pathlib import Path

import httpx
from PIL import Image
from sqlalchemy import create_engine, func, select

from fairtrain.ingest.models import Asset, AssetState
from fairtrain.stack import Stack

PASSWORD = "quartz-lantern-orbit-meadow-41"


def _photo(index: int) -> bytes:
    """A 1280x960 photo with a face (skimage's astronaut), made distinct by one pixel."""
    with Image.open(files("skimage.data") / "astronaut.png") as opened:
        picture = opened.convert("RGB").resize((1280, 960))
    picture.putpixel((index % 1280, index // 1280), (index % 256, 0, 0))
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=90)
    return out.getvalue()


def _contributor(url: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=120)
    email = f"scale-{os.urandom(4).hex()}@example.org"
    made = client.post("/api/v1/accounts/contributors", json={
        "email": email, "password": PASSWORD, "display_name": "Scale Bench",
        "date_of_birth": "1990-01-01", "adult_attestation": True, "jurisdiction": "DE",
    })  # fmt: skip
    made.raise_for_status()
    logged = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    logged.raise_for_status()
    client.headers["X-CSRF-Token"] = logged.json()["csrf_token"]
    return client


def _processed(stack: Stack, ids: list[str]) -> int:
    engine = create_engine(stack.database_url)
    try:
        with engine.connect() as connection:
            done = connection.execute(
                select(func.count())
                .select_from(Asset)
                .where(
                    Asset.id.in_(ids),
                    Asset.state.not_in([AssetState.PROCESSING, AssetState.UPLOADED]),
                )
            ).scalar()
        return int(done or 0)
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=24, help="photos per run")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    photos = [_photo(i) for i in range(args.photos * len(args.workers))]
    cheap = {"FAIRTRAIN_ARGON2_TIME_COST": "1", "FAIRTRAIN_ARGON2_MEMORY_KIB": "1024",
             "FAIRTRAIN_ARGON2_PARALLELISM": "1"}  # fmt: skip
    with (
        tempfile.TemporaryDirectory() as tmp,
        Stack(Path(tmp), workers=0, worker_threads=1, extra_env=cheap) as stack,
    ):
        print(f"stack up: {len(stack.api_urls)} API processes, PostgreSQL {stack.database}, "
              f"Redis, moto S3 on :{stack.s3_port}; {os.cpu_count()} CPUs")  # fmt: skip
        client = _contributor(stack.api_urls[0])
        baseline = None
        for run, workers in enumerate(args.workers):
            batch = photos[run * args.photos : (run + 1) * args.photos]
            began = time.perf_counter()
            ids = []
            for index, content in enumerate(batch):
                uploaded = client.post("/api/v1/uploads", content=content,
                                       params={"filename": f"{run}-{index}.jpg"})  # fmt: skip
                uploaded.raise_for_status()
                ids.append(uploaded.json()["id"])
            upload_s = time.perf_counter() - began
            began = time.perf_counter()
            started = stack.add_workers(workers)
            ready = time.perf_counter() - began
            while _processed(stack, ids) < len(ids):
                time.sleep(0.25)
            took = time.perf_counter() - began - ready
            stack.stop_processes(started)
            rate = len(ids) / took
            baseline = baseline or rate
            print(f"{workers} worker(s): {len(ids)} photos processed in {took:.1f} s = "
                  f"{rate:.2f} photos/s ({rate / baseline:.2f}x one worker; uploads took "
                  f"{upload_s:.1f} s, workers started in {ready:.1f} s)")  # fmt: skip
        client.close()


if __name__ == "__main__":
    main()
