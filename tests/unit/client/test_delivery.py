"""The buyer client against a hostile or flaky server (a small in-process HTTP server
written here, since no real fairtrain server misbehaves like this): paths that would
leave the directory, files longer than the manifest says, a manifest that is not the one
the platform recorded, and rate limiting it must wait out."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from fairtrain.audit.chain import canonical_json
from fairtrain.client.delivery import DeliveryFailed, FairtrainClient, FileRefused

LICENCE = "lic_test"


def _server(
    files: dict[str, bytes],
    *,
    manifest_paths: dict[str, bytes] | None = None,
    recorded: str | None = None,
    limited: int = 0,
) -> Callable[[httpx.Request], httpx.Response]:
    """An export of ``files``; the manifest lists ``manifest_paths`` (default: the files)."""
    listed = manifest_paths if manifest_paths is not None else files
    manifest = canonical_json(
        {
            "format": "fairtrain-export/1",
            "licence_id": LICENCE,
            "files": [
                {"path": p, "sha256": hashlib.sha256(b).hexdigest(), "size": len(b)}
                for p, b in sorted(listed.items())
            ],
            "shards": [],
        }
    )
    served = {**files, "manifest.json": manifest}
    status = {
        "id": "exp_1",
        "state": "ready",
        "manifest_sha256": recorded or hashlib.sha256(manifest).hexdigest(),
        "files": [
            {"path": p, "url": f"/dl/{i}", "expires_at": "2999-01-01T00:00:00Z"}
            for i, p in enumerate(served)
        ],
    }
    by_url = {f"/dl/{i}": body for i, body in enumerate(served.values())}
    refusals = {"left": limited}

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/exports") or path.endswith("/exports/exp_1"):
            return httpx.Response(200, json=status)
        if refusals["left"] > 0:
            refusals["left"] -= 1
            return httpx.Response(429, headers={"Retry-After": "0"}, json={"code": "x"})
        return httpx.Response(200, content=by_url[path])

    return handle


def _client(handler: Callable[[httpx.Request], httpx.Response]) -> FairtrainClient:
    http = httpx.Client(base_url="http://fairtrain.test", transport=httpx.MockTransport(handler))
    return FairtrainClient("http://fairtrain.test", http=http, poll_interval=0)


@pytest.mark.parametrize("hostile", ["../escape.txt", "/etc/passwd", "a/../../b", "a\\..\\b", ""])
def test_a_manifest_path_that_leaves_the_directory_is_refused(tmp_path: Path, hostile: str) -> None:
    dest = tmp_path / "dest"
    client = _client(_server({hostile: b"owned"}))
    with pytest.raises(DeliveryFailed) as refused:
        client.pull(LICENCE, dest)
    assert refused.value.code == "unsafe_path"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == []


def test_a_file_longer_than_the_manifest_says_is_refused(tmp_path: Path) -> None:
    client = _client(_server({"data.bin": b"x" * 100}, manifest_paths={"data.bin": b"x" * 10}))
    with pytest.raises(DeliveryFailed) as refused:
        client.pull(LICENCE, tmp_path)
    assert refused.value.code == "file_too_large"


def test_a_file_that_differs_from_the_manifest_is_refused_and_deleted(tmp_path: Path) -> None:
    client = _client(_server({"data.bin": b"y" * 10}, manifest_paths={"data.bin": b"x" * 10}))
    with pytest.raises(FileRefused) as refused:
        client.pull(LICENCE, tmp_path)
    assert refused.value.path == "data.bin"
    assert list(tmp_path.iterdir()) == []


def test_a_manifest_the_platform_did_not_record_is_refused(tmp_path: Path) -> None:
    client = _client(_server({"data.bin": b"x"}, recorded="0" * 64))
    with pytest.raises(FileRefused) as refused:
        client.pull(LICENCE, tmp_path)
    assert refused.value.path == "manifest.json"


def test_the_rate_limit_is_waited_out(tmp_path: Path) -> None:
    files = {"a.bin": b"a" * 50, "b/c.bin": b"c" * 70}
    result = _client(_server(files, limited=3)).pull(LICENCE, tmp_path)
    assert result.files == 3
    assert (tmp_path / "b" / "c.bin").read_bytes() == files["b/c.bin"]
    assert json.loads((tmp_path / "manifest.json").read_bytes())["licence_id"] == LICENCE
