"""A long-running process's memory: glibc's allocator settings, and tracing for soaks.

**Arenas.** glibc's malloc gives each thread that allocates its own arena, up to eight per
core; a server's threads (the request thread pool, job workers, onnxruntime's) each keep
freed memory in their own, so RSS creeps up as work lands on new threads even when nothing
is kept. :func:`limit_malloc_arenas` caps them at the start of ``fairtrain serve`` and
``fairtrain worker`` (``FAIRTRAIN_MALLOC_ARENA_MAX``, 2 by default; 0 keeps glibc's).

**The mmap threshold.** Blocks at or above it get pages of their own, given back to the
system when freed; smaller ones are cut from the heap. glibc raises the threshold to the
size of each large block freed (up to 32 MiB), so after one big picture is decoded, the
next requests' transient buffers of a few MiB land in the heap too and leave holes that
later, smaller blocks only partly fill: RSS creeps up with nothing kept. A fixed
threshold (``FAIRTRAIN_MALLOC_MMAP_THRESHOLD``, 4 MiB by default; 0 keeps glibc's
sliding one) stops that, while the export's 1 MiB pieces still come from the heap (at
256 KiB each would be mapped and zeroed anew: twice the kernel time). docs/reliability.md
"Load" has the soaks that chose it. :func:`configure_malloc` applies both at the start of
``fairtrain serve`` and ``fairtrain worker``, and in :mod:`fairtrain.asgi`, which each
uvicorn worker process (``serve --workers N``, or uvicorn/gunicorn run directly) imports.

**Tracing** (where the memory goes, minute by minute), off by default.
``FAIRTRAIN_MEMORY_TRACE_PATH=/tmp/trace.txt fairtrain serve`` appends to that file, every
``FAIRTRAIN_MEMORY_TRACE_EVERY_SECONDS``: RSS as anonymous and file pages (file pages grow
while libraries and models are first paged in), glibc's account of its heap (``mallinfo2``:
bytes in use, bytes freed but kept), Python's allocated blocks and the live objects by type
(a type whose count keeps rising is what a cache or a list keeps). With
``FAIRTRAIN_MEMORY_TRACE_FRAMES`` > 0 it also starts :mod:`tracemalloc` and lists the
allocation sites that grew, by file and by traceback, since the first and the previous dump.

tracemalloc slows the server many times over (each traced block carries its traceback),
so it is a diagnostic for a soak, never for production traffic.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys
import threading
import time
import tracemalloc
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

__all__ = [
    "MemoryTrace",
    "configure_malloc",
    "fix_mmap_threshold",
    "limit_malloc_arenas",
    "native_heap",
    "resident_bytes",
]

# glibc's mallopt parameters (malloc.h)
M_ARENA_MAX = -8
M_MMAP_THRESHOLD = -3

TOP = 25
_IGNORED = (
    tracemalloc.Filter(False, tracemalloc.__file__),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
    tracemalloc.Filter(False, "<unknown>"),
    # The dumps' own work (linecache keeps the source lines they print).
    tracemalloc.Filter(False, __file__, all_frames=True),
)


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
            "fsmblks", "uordblks", "fordblks", "keepcost",
        )
    ]  # fmt: skip


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def limit_malloc_arenas(arenas: int) -> bool:
    """At most ``arenas`` malloc arenas for the threads started from now on (glibc's
    ``MALLOC_ARENA_MAX``); 0 leaves the default. False off glibc or when refused."""
    libc = _libc()
    if arenas <= 0 or libc is None or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(M_ARENA_MAX, arenas))


def fix_mmap_threshold(threshold: int) -> bool:
    """Blocks of ``threshold`` bytes or more are mapped on their own from now on, and the
    threshold no longer slides up (glibc's ``M_MMAP_THRESHOLD``); 0 leaves glibc's. False
    off glibc or when glibc refuses the value (settings cap it at 32 MiB, glibc's own
    upper bound for the sliding threshold)."""
    libc = _libc()
    if threshold <= 0 or libc is None or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, threshold))


def configure_malloc(arenas: int, mmap_threshold: int) -> None:
    """A long-running process's allocator settings: call before any thread starts."""
    limit_malloc_arenas(arenas)
    fix_mmap_threshold(mmap_threshold)


def native_heap() -> dict[str, int] | None:
    """glibc's heap: ``in_use`` (allocated blocks, all arenas and mmapped chunks),
    ``free_kept`` (freed but not returned to the system), ``arenas`` (their size) and
    ``mapped_blocks`` (blocks mapped on their own); None off glibc."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        return None
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return {
        "in_use": int(info.uordblks + info.hblkhd),
        "free_kept": int(info.fordblks),
        "arenas": int(info.arena),
        "mapped_blocks": int(info.hblks),
    }


def resident_bytes() -> int:
    """This process's resident set size (Linux ``/proc``; 0 elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _status() -> dict[str, int]:
    """The byte counts of ``/proc/self/status`` (RssAnon: heaps and stacks; RssFile:
    pages of mapped libraries and models, which grow as code paths are first used)."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return {}
    found = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if value.strip().endswith("kB"):
            found[name] = int(value.split()[0]) * 1024
    return found


def _mib(value: int) -> str:
    return f"{value / 1024**2:.1f} MiB"


class MemoryTrace:
    """A daemon thread that appends one dump to ``path`` every ``every`` seconds."""

    def __init__(self, path: Path, every: float, frames: int = 0) -> None:
        self.path = path
        self.every = every
        self.frames = frames  # 0: no tracemalloc, only RSS and the native heap
        self._stop = threading.Event()
        self._first: tracemalloc.Snapshot | None = None
        self._previous: tracemalloc.Snapshot | None = None
        self._counts: Counter[str] = Counter()
        self._thread = threading.Thread(target=self._run, name="memory-trace", daemon=True)

    def start(self) -> None:
        if self.frames and not tracemalloc.is_tracing():
            tracemalloc.start(self.frames)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        began = time.monotonic()
        while not self._stop.wait(self.every):
            self.dump(time.monotonic() - began)

    def dump(self, elapsed: float) -> None:
        parts = _status()
        lines = [
            f"=== {datetime.now(UTC).isoformat(timespec='seconds')} t={elapsed:.0f}s "
            f"rss={_mib(resident_bytes())} (anonymous {_mib(parts.get('RssAnon', 0))}, "
            f"files {_mib(parts.get('RssFile', 0))}) threads={threading.active_count()} "
            f"python_blocks={sys.getallocatedblocks()}"
        ]
        heap = native_heap()
        if heap is not None:
            lines.append(
                f"glibc heap in use {_mib(heap['in_use'])}, freed but kept "
                f"{_mib(heap['free_kept'])}, main+thread arenas {_mib(heap['arenas'])}"
            )
        if tracemalloc.is_tracing():
            lines.extend(self._python_heap())
        lines.extend(self._objects())
        with self.path.open("a") as out:
            out.write("\n".join(lines) + "\n\n")

    def _python_heap(self) -> list[str]:
        snapshot = tracemalloc.take_snapshot().filter_traces(_IGNORED)
        traced, peak = tracemalloc.get_traced_memory()
        lines = [
            f"python heap traced {_mib(traced)} (peak {_mib(peak)}), tracemalloc's own "
            f"{_mib(tracemalloc.get_tracemalloc_memory())}"
        ]
        if self._first is None:
            self._first = snapshot
        else:
            assert self._previous is not None
            by_file = snapshot.compare_to(self._previous, "filename")
            lines.append("growth by file since the previous dump:")
            lines.extend(
                f"{diff.size_diff / 1024:+.1f} KiB, {diff.count_diff:+d} blocks  "
                f"{diff.traceback[0].filename}"
                for diff in by_file[:TOP]
            )
            # Since the first dump (what has accumulated), then since the last one (what
            # is still accumulating: a cache that filled during warm-up drops out here).
            for title, since in (("first", self._first), ("previous", self._previous)):
                diffs = snapshot.compare_to(since, "traceback")
                total = sum(diff.size_diff for diff in diffs)
                lines.append(f"top {TOP} growth since the {title} dump ({total / 1024:+.1f} KiB):")
                for diff in diffs[:TOP]:
                    lines.append(
                        f"{diff.size_diff / 1024:+.1f} KiB, {diff.count_diff:+d} blocks "
                        f"(now {diff.size / 1024:.1f} KiB in {diff.count} blocks)"
                    )
                    lines.extend(f"    {line}" for line in diff.traceback.format(limit=8))
        self._previous = snapshot
        return lines

    def _objects(self) -> list[str]:
        """Live objects tracked by the garbage collector, by type: the types whose count
        keeps rising are what is kept."""
        counts = Counter(type(item).__qualname__ for item in gc.get_objects())
        lines = []
        if self._counts:
            grown = (counts - self._counts).most_common(TOP)
            lines.append("objects by type, growth since the previous dump:")
            lines.extend(f"{number:+d} {name} (now {counts[name]})" for name, number in grown)
        self._counts = counts
        return lines
