"""Private scratch files: where decrypted bytes may sit while a tool that needs a path
(PyAV, Pillow, pyarrow) reads them, and nowhere else, for as short a time as possible."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

__all__ = ["scratch_path", "spooled"]


@contextmanager
def scratch_path(directory: Path, *, prefix: str = "scratch-", suffix: str = "") -> Iterator[Path]:
    """A new empty file only this process's user can read, deleted on exit."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=directory)
    os.close(descriptor)
    path = Path(name)
    try:
        yield path
    finally:
        with suppress(FileNotFoundError):
            path.unlink()


@contextmanager
def spooled(chunks: Iterable[bytes], directory: Path, *, suffix: str = "") -> Iterator[Path]:
    """``chunks`` (e.g. a vault blob's plaintext) written to a scratch file, streamed.

    The vault checks a blob's hash when its stream ends, so the file is only handed over
    once every chunk has been read and verified.
    """
    with scratch_path(directory, prefix="spool-", suffix=suffix) as path:
        with path.open("wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
        yield path
