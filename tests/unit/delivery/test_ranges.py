"""Range requests as RFC 9110 has them: one range served, anything else the whole file."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fairtrain.delivery.ranges import ByteRange, Unsatisfiable, requested_range

ETAG = '"ab12"'


def _range(header: str | None, size: int = 1000, if_range: str | None = None) -> object:
    return requested_range(header, if_range, size=size, etag=ETAG)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", ByteRange(0, 100)),
        ("bytes=900-", ByteRange(900, 1000)),
        ("bytes=900-5000", ByteRange(900, 1000)),
        ("bytes=-10", ByteRange(990, 1000)),
        ("bytes=-5000", ByteRange(0, 1000)),
        ("BYTES = 5 - 9", ByteRange(5, 10)),
        ("bytes=1000-", Unsatisfiable(1000)),
        ("bytes=-0", Unsatisfiable(1000)),
        # Served whole, as the RFC allows: another unit, several ranges, bad syntax.
        ("items=0-1", None),
        ("bytes=0-1,5-9", None),
        ("bytes=9-5", None),
        ("bytes=-", None),
        ("bytes=a-b", None),
        (None, None),
        ("", None),
    ],
)
def test_range_headers(header: str | None, expected: object) -> None:
    assert _range(header) == expected


def test_if_range_must_name_the_current_file() -> None:
    assert _range("bytes=10-", if_range=ETAG) == ByteRange(10, 1000)
    assert _range("bytes=10-", if_range='"other"') is None
    assert _range("bytes=10-", if_range="Wed, 21 Oct 2015 07:28:00 GMT") is None


def test_an_empty_file_has_no_range() -> None:
    assert _range("bytes=0-", size=0) == Unsatisfiable(0)
    assert _range("bytes=-3", size=0) == Unsatisfiable(0)


def test_content_range_headers() -> None:
    assert ByteRange(10, 20).content_range(1000) == "bytes 10-19/1000"
    assert Unsatisfiable(1000).content_range() == "bytes */1000"


@given(size=st.integers(1, 10_000), start=st.integers(0, 20_000), last=st.integers(0, 20_000))
def test_a_served_range_always_lies_within_the_file(size: int, start: int, last: int) -> None:
    found = _range(f"bytes={start}-{last}", size=size)
    if isinstance(found, ByteRange):
        assert 0 <= found.start < found.stop <= size
        assert found.start == start
    elif start <= last:
        assert found == Unsatisfiable(size) and start >= size
    else:
        assert found is None
