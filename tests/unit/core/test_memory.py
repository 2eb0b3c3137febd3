"""The soak diagnostic: dumps name the allocation site that keeps growing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

from fairtrain.config import Settings
from fairtrain.memory import (
    MemoryTrace,
    fix_mmap_threshold,
    limit_malloc_arenas,
    native_heap,
    resident_bytes,
)

# Run in a fresh interpreter: with tracemalloc on, the dump's walk over every live object
# of a whole test session's heap would take over a minute; here it takes a second.
GROWTH_SCRIPT = """
import sys, tracemalloc
from pathlib import Path
from fairtrain.memory import MemoryTrace

KEPT = []

def grow():
    KEPT.extend(bytes(1024) + bytes([i % 256]) for i in range(2000))

trace = MemoryTrace(Path(sys.argv[1]), every=3600, frames=4)
assert not tracemalloc.is_tracing()
tracemalloc.start(4)
trace.dump(0)
grow()
trace.dump(1)
tracemalloc.stop()
"""


def test_a_dump_names_what_grew_since_the_first(tmp_path: Path) -> None:
    out = tmp_path / "trace.txt"
    script = tmp_path / "grow_memory.py"
    script.write_text(GROWTH_SCRIPT)
    subprocess.run([sys.executable, str(script), str(out)], check=True, timeout=120)
    dumps = out.read_text().split("\n\n")
    assert dumps[0].startswith("=== ") and " rss=" in dumps[0]
    growth = dumps[1].split("growth since the previous dump")[0]
    first_site = growth.split("top 25 growth since the first dump")[1].splitlines()[1:10]
    # ~2 MiB kept by grow(): the biggest growth, and its traceback points at it.
    assert float(first_site[0].split(" KiB")[0]) > 1900
    assert any("grow_memory.py" in line for line in first_site[1:])


def test_without_frames_only_memory_figures_are_written(tmp_path: Path) -> None:
    out = tmp_path / "trace.txt"
    trace = MemoryTrace(out, every=0.01, frames=0)
    trace.start()
    try:
        while not out.exists() or out.read_text().count("===") < 2:
            time.sleep(0.01)
    finally:
        trace.stop()
    assert not tracemalloc.is_tracing()
    assert "python heap" not in out.read_text()
    assert resident_bytes() > 0
    heap = native_heap()
    assert heap is None or heap["in_use"] > 0


def test_the_arena_limit_is_applied_on_glibc_and_zero_keeps_the_default() -> None:
    assert limit_malloc_arenas(0) is False
    assert limit_malloc_arenas(2) is (native_heap() is not None)


def test_a_trace_path_alone_does_not_start_tracemalloc(tmp_path: Path) -> None:
    # tracemalloc slows the server and grows its memory: a soak that only names a trace
    # file must measure the server as it runs, so frames are asked for, never implied.
    settings = Settings(memory_trace_path=tmp_path / "trace.txt")
    assert settings.memory_trace_frames == 0
    assert MemoryTrace(tmp_path / "trace.txt", every=60).frames == 0


# After an 8 MiB block is freed glibc slides its threshold up to 8 MiB, so a 1 MiB block
# then comes from the heap; with the threshold fixed below 1 MiB, it is mapped on its own.
# A fresh interpreter each time: the setting is the process's.
THRESHOLD_SCRIPT = """
import ctypes, ctypes.util, sys
from fairtrain.memory import fix_mmap_threshold, native_heap

if sys.argv[1] != "0":
    assert fix_mmap_threshold(int(sys.argv[1]))
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.free(libc.malloc(8 * 1024 * 1024))
before = native_heap()["mapped_blocks"]
block = libc.malloc(1024 * 1024)
print(native_heap()["mapped_blocks"] - before)
"""


def test_a_fixed_mmap_threshold_does_not_slide_up(tmp_path: Path) -> None:
    if native_heap() is None:
        assert fix_mmap_threshold(256 * 1024) is False
        return
    script = tmp_path / "threshold.py"
    script.write_text(THRESHOLD_SCRIPT)

    def mapped(threshold: int) -> int:
        run = subprocess.run(
            [sys.executable, str(script), str(threshold)],
            check=True,
            timeout=60,
            capture_output=True,
            text=True,
        )
        return int(run.stdout)

    assert mapped(0) == 0  # glibc's sliding threshold: from the heap
    assert mapped(256 * 1024) == 1
    assert mapped(4 * 1024 * 1024) == 0
    assert fix_mmap_threshold(0) is False


def test_the_default_threshold_keeps_the_exports_pieces_in_the_heap() -> None:
    # 1 MiB vault pieces (and tar copies) must not be mapped and zeroed one by one.
    assert Settings().malloc_mmap_threshold > 1024 * 1024 + 4096


ASGI_SCRIPT = """
import ctypes, ctypes.util
import fairtrain.asgi  # what each uvicorn worker and a direct `uvicorn fairtrain.asgi:app` run
from fairtrain.memory import native_heap

libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.free(libc.malloc(30 * 1024 * 1024))
before = native_heap()["mapped_blocks"]
block = libc.malloc(28 * 1024 * 1024)
print(native_heap()["mapped_blocks"] - before)
"""
# The app's start-up leaves some MiB free in the heap, and a request that fits a free chunk
# is served from it whatever the threshold: the probe asks for more than that. glibc's
# sliding threshold rises to the 30 MiB freed, so 28 MiB then comes from the heap.


def test_the_asgi_entry_point_applies_the_allocator_settings(tmp_path: Path) -> None:
    # uvicorn's worker processes import fairtrain.asgi afresh, without `fairtrain serve`'s
    # start-up: the threshold must be fixed there too.
    if native_heap() is None:
        return
    script = tmp_path / "asgi_threshold.py"
    script.write_text(ASGI_SCRIPT)

    def mapped(threshold: int) -> int:
        run = subprocess.run(
            [sys.executable, str(script)],
            check=True,
            timeout=120,
            capture_output=True,
            text=True,
            env=os.environ
            | {
                "FAIRTRAIN_MODE": "dev",
                "FAIRTRAIN_DATA_DIR": str(tmp_path / f"data-{threshold}"),
                "FAIRTRAIN_MALLOC_MMAP_THRESHOLD": str(threshold),
            },
        )
        return int(run.stdout.strip().splitlines()[-1])

    assert mapped(256 * 1024) == 1
    assert mapped(0) == 0  # glibc's sliding threshold: the freed 8 MiB raised it
