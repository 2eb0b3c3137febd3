"""Export benchmark: throughput against a raw copy of the same bytes, and peak memory.

    uv run python benchmarks/export.py                    # 2 GiB on disk, 10 GiB streamed
    uv run python benchmarks/export.py --size 256M --rss-size 1G   # a quick run

Figures:

* **throughput**: ``export_dataset`` of a synthetic dataset of mixed items (speech-sized
  audio, photos, videos of which some are above the 64 MiB embedding cap, short texts)
  whose bytes are files on disk, in MiB of items per second, for Parquet alone,
  WebDataset alone and both; against ``shutil.copyfile`` of the same files in the same
  run (page cache warmed for both). Target: >= 0.6x the copy.
* **peak RSS** of a fresh process exporting ``--rss-size`` bytes (default 10 GiB) of items
  streamed from a generator (never on disk as sources, so the disk holds only the
  export), from ``resource.getrusage`` (peak) and a thread sampling /proc/self/statm
  every 50 ms (to see that memory stays flat, not just its maximum).

The media bytes are random (incompressible, like real encoded media). Machines shared with
other work give noisy figures: read the ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from fairtrain.delivery import (
    DeclaredPurpose,
    ExportDescription,
    ExportFormat,
    ExportItem,
    KAnonymityReport,
    Modality,
    RepresentationReport,
    export_dataset,
)

MiB = 1 << 20
GiB = 1 << 30
_BLOCK = os.urandom(8 * MiB)
_TEXT = (b"The quick brown fox jumps over the lazy dog near the river bank. " * 128)[:8192]

# modality, extension, media type, share of the bytes, (smallest, largest) item size
MIX = [
    (Modality.AUDIO, "flac", "audio/flac", 0.30, (512 * 1024, 8 * MiB)),
    (Modality.IMAGE, "jpg", "image/jpeg", 0.10, (100 * 1024, 3 * MiB)),
    (Modality.VIDEO, "mp4", "video/mp4", 0.55, (8 * MiB, 160 * MiB)),
    (Modality.TEXT, "txt", "text/plain", 0.05, (4 * 1024, 64 * 1024)),
]


def parse_size(text: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMG]?)", text.upper().removesuffix("IB"))
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text} (e.g. 512M, 2G)")
    unit = {"": 1, "K": 1024, "M": MiB, "G": GiB}[match.group(2)]
    return int(float(match.group(1)) * unit)


class SyntheticStream:
    """``size`` bytes of a fixed random block read from a per-item offset: different
    bytes per item, generated on the fly, never held."""

    def __init__(self, size: int, seed: int, text: bool) -> None:
        self._left = size
        self._source = _TEXT if text else _BLOCK
        self._offset = (seed * 1_000_003) % len(self._source)

    def read(self, size: int = -1) -> bytes:
        size = self._left if size is None or size < 0 else min(size, self._left)
        pieces = []
        while size > 0:
            piece = self._source[self._offset : self._offset + size]
            self._offset = (self._offset + len(piece)) % len(self._source)
            pieces.append(piece)
            size -= len(piece)
            self._left -= len(piece)
        return b"".join(pieces)

    def close(self) -> None:
        pass

    def __enter__(self) -> SyntheticStream:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def plan(total: int) -> Iterator[tuple[int, Modality, str, str, int]]:
    """(index, modality, extension, media type, size) of items adding up to ``total``."""
    index = 0
    for modality, extension, media_type, share, (low, high) in MIX:
        budget = int(total * share)
        step = 0
        while budget > 0:
            # A deterministic spread between the smallest and largest size.
            size = min(budget, low + (high - low) * ((step * 7919) % 97) // 96)
            yield index, modality, extension, media_type, size
            budget -= size
            index += 1
            step += 1


def _digest(stream: SyntheticStream) -> str:
    digest = hashlib.sha256()
    while piece := stream.read(4 * MiB):
        digest.update(piece)
    return digest.hexdigest()


def _item(
    index: int,
    modality: Modality,
    extension: str,
    media_type: str,
    size: int,
    sha256: str,
    opener: Callable[[], BinaryIO],
) -> ExportItem:
    return ExportItem(
        key=f"ast_bench{index:07d}",
        modality=modality,
        extension=extension,
        media_type=media_type,
        size=size,
        sha256=sha256,
        open=opener,
        metadata={
            "consent_receipt_sha256": hashlib.sha256(str(index).encode()).hexdigest(),
            "policy_version": 1,
            "age_band": ("18-29", "30-44", "45-64")[index % 3],
            "language": "en",
        },
    )


def description(count: int, modalities: tuple[Modality, ...]) -> ExportDescription:
    moment = datetime(2026, 3, 1, tzinfo=UTC)
    return ExportDescription(
        dataset_id="dst_bench",
        dataset_name="Benchmark dataset",
        version_id="dsv_bench",
        version_number=1,
        licence_id="lic_bench",
        licensee="Benchmark Labs",
        purpose=DeclaredPurpose("model_training", "AI model training", "to train AI models"),
        territory=("EU",),
        licence_start=moment,
        licence_end=None,
        languages=("en",),
        modalities=modalities,
        item_count=count,
        contribution_units=float(count),
        representation=RepresentationReport(groups=(), divergence=0.0),
        k_anonymity=KAnonymityReport(5, ("age_band",), (), 0),
        known_limits=("Synthetic bytes.",),
        collection_process=("Generated by benchmarks/export.py.",),
        platform_base_url="https://fairtrain.example",
        public_key_id="00" * 32,
        created_at=moment,
    )


def _files_on_disk(root: Path, total: int) -> list[ExportItem]:
    items = []
    root.mkdir()
    for index, modality, extension, media_type, size in plan(total):
        path = root / f"{index:07d}.{extension}"
        stream = SyntheticStream(size, index, modality is Modality.TEXT)
        digest = hashlib.sha256()
        with path.open("wb") as handle:
            while piece := stream.read(4 * MiB):
                handle.write(piece)
                digest.update(piece)
        items.append(
            _item(
                index,
                modality,
                extension,
                media_type,
                size,
                digest.hexdigest(),
                lambda path=path: path.open("rb"),
            )
        )
    return items


def _timed(label: str, size: int, action: Callable[[], None]) -> float:
    start = time.perf_counter()
    action()
    seconds = time.perf_counter() - start
    rate = size / MiB / seconds
    print(f"  {label:<40} {seconds:7.2f} s  {rate:8.1f} MiB/s")
    return rate


def throughput(total: int, workdir: Path) -> dict[str, float]:
    items = _files_on_disk(workdir / "sources", total)
    size = sum(item.size for item in items)
    large = sum(1 for item in items if item.size > 64 * MiB)
    modalities = tuple(m for m, *_ in MIX)
    print(f"Throughput: {len(items)} items, {size / MiB:.0f} MiB ({large} above the 64 MiB cap)")

    def copy() -> None:
        target = workdir / "copy"
        target.mkdir()
        for path in sorted((workdir / "sources").iterdir()):
            shutil.copyfile(path, target / path.name)

    def export(formats: list[ExportFormat], name: str) -> Callable[[], None]:
        def run() -> None:
            export_dataset(
                items, description(len(items), modalities), workdir / name, formats=formats
            )

        return run

    def copy_fsync() -> None:
        copy()
        for path in sorted((workdir / "copy").iterdir()):
            descriptor = os.open(path, os.O_RDONLY)
            os.fsync(descriptor)
            os.close(descriptor)

    # One-time costs (pyarrow imports pandas, when installed, on its first conversion)
    # belong to the process, not to the export: pay them before timing.
    export_dataset(items[:3], description(3, modalities), workdir / "warm-up")
    shutil.rmtree(workdir / "warm-up")
    copy()  # warm the page cache for both sides
    shutil.rmtree(workdir / "copy")
    # Let the sources' own write-out finish, so it does not slow whichever side runs first.
    os.sync()
    rates = {"copy": _timed("raw copy (shutil.copyfile)", size, copy)}
    shutil.rmtree(workdir / "copy")
    rates["copy_fsync"] = _timed("raw copy + fsync (the export's durability)", size, copy_fsync)
    shutil.rmtree(workdir / "copy")
    for label, formats in (
        ("parquet", [ExportFormat.PARQUET]),
        ("webdataset", [ExportFormat.WEBDATASET]),
        ("both", [ExportFormat.PARQUET, ExportFormat.WEBDATASET]),
    ):
        rates[label] = _timed(f"export: {label}", size, export(formats, f"out-{label}"))
        shutil.rmtree(workdir / f"out-{label}")
        os.sync()
    for label in ("parquet", "webdataset", "both"):
        print(
            f"  {label:<11} / copy = {rates[label] / rates['copy']:.2f}x  (target >= 0.60x);"
            f"  / copy+fsync = {rates[label] / rates['copy_fsync']:.2f}x"
        )
    return rates


def _statm_sampler(peaks: list[int], stop: threading.Event) -> None:
    page = os.sysconf("SC_PAGE_SIZE")
    while not stop.is_set():
        with open("/proc/self/statm") as statm:
            peaks.append(int(statm.read().split()[1]) * page)
        stop.wait(0.05)


def rss_child(total: int, formats: list[str]) -> None:
    """In a fresh process: export ``total`` streamed bytes; print RSS figures in KiB."""
    specs = list(plan(total))
    items = []
    for index, modality, extension, media_type, size in specs:
        text = modality is Modality.TEXT
        digest = _digest(SyntheticStream(size, index, text))
        items.append(
            _item(
                index,
                modality,
                extension,
                media_type,
                size,
                digest,
                lambda s=size, i=index, t=text: SyntheticStream(s, i, t),  # type: ignore[misc]
            )
        )
    modalities = tuple(m for m, *_ in MIX)
    base = os.environ.get("TMPDIR") or tempfile.gettempdir()
    with tempfile.TemporaryDirectory(prefix="export-rss-", dir=base) as d:
        # Current RSS, not ru_maxrss: a child's ru_maxrss starts at its parent's RSS at
        # fork time (Linux keeps it across exec), which says nothing about the export.
        with open("/proc/self/statm") as statm:
            before = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
        samples: list[int] = []
        stop = threading.Event()
        sampler = threading.Thread(target=_statm_sampler, args=(samples, stop), daemon=True)
        sampler.start()
        start = time.perf_counter()
        export_dataset(
            items,
            description(len(items), modalities),
            Path(d) / "out",
            formats=[ExportFormat(f) for f in formats],
        )
        seconds = time.perf_counter() - start
        stop.set()
        sampler.join()
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        written = sum(p.stat().st_size for p in (Path(d) / "out").rglob("*") if p.is_file())
    quarter = len(samples) // 4
    print(
        before,
        after,
        max(samples[:quarter] or [0]) // 1024,
        max(samples[-quarter:] or [0]) // 1024,
        len(items),
        written,
        f"{seconds:.1f}",
    )


def peak_rss(total: int, formats: list[str]) -> float:
    free = shutil.disk_usage(os.environ.get("TMPDIR") or tempfile.gettempdir()).free
    needed = total * (len(formats) + 0.6)
    if free < needed * 1.2:
        raise SystemExit(
            f"Not enough free disk for a {total / GiB:.1f} GiB export: "
            f"{free / GiB:.0f} GiB free, {needed / GiB:.0f} GiB needed."
        )
    output = subprocess.run(
        [sys.executable, __file__, "--rss-child", str(total), "--formats", *formats],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    before, after = (int(value) / 1024 for value in output[:2])  # ru_maxrss is KiB on Linux
    early, late = (int(value) / 1024 for value in output[2:4])
    count, written, seconds = int(output[4]), int(output[5]), float(output[6])
    print(
        f"Peak RSS exporting {total / GiB:.1f} GiB streamed ({count} items, "
        f"{'+'.join(formats)}, {written / GiB:.1f} GiB written, {seconds:.0f} s):"
    )
    print(f"  before the export {before:7.1f} MiB (interpreter, pyarrow, the item list)")
    print(f"  peak              {after:7.1f} MiB  (ru_maxrss)")
    print(f"  growth            {after - before:7.1f} MiB")
    print(f"  max RSS in the first / last quarter of the run: {early:.0f} / {late:.0f} MiB")
    return after


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--size",
        type=parse_size,
        default=2 * GiB,
        help="bytes of items on disk for the throughput run (default 2G)",
    )
    parser.add_argument(
        "--rss-size",
        type=parse_size,
        default=10 * GiB,
        help="bytes of streamed items for the memory run (default 10G)",
    )
    parser.add_argument(
        "--formats", nargs="+", default=["parquet", "webdataset"], help="formats of the memory run"
    )
    parser.add_argument("--only", choices=["throughput", "rss"])
    parser.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_child, args.formats)
        return
    ratio = None
    # The memory run first, while this process is small: a child's peak RSS counts from
    # its parent's size at fork.
    if args.only in (None, "rss"):
        peak_rss(args.rss_size, args.formats)
    if args.only in (None, "throughput"):
        with tempfile.TemporaryDirectory(prefix="export-bench-", dir=os.environ.get("TMPDIR")) as d:
            rates = throughput(args.size, Path(d))
        ratio = rates["both"] / rates["copy"]
    if ratio is not None:
        print(f"export (both formats) / copy = {ratio:.2f}x")


if __name__ == "__main__":
    main()
