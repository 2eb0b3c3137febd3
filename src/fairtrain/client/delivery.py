"""The buyer's client: download a licence's export and check every byte of it.

Usable from a training script::

    from fairtrain.client.delivery import FairtrainClient

    with FairtrainClient("https://fairtrain.example", api_key=os.environ["FAIRTRAIN_API_KEY"]) as c:
        result = c.pull("lic_…", Path("data/speech"))

``pull`` asks for the export (or finds the one already asked for), waits until it is
built, downloads the manifest and checks it against the digest the platform recorded,
then downloads every file the manifest lists. Each file goes to ``<path>.part`` first and
is renamed only once its size and SHA-256 match the manifest; a download that breaks
off resumes from where it stopped (an HTTP range request, with ``If-Range`` so a file that
changed is fetched whole), in this run or the next. A file whose bytes do not match is
deleted and refused (``FileRefused`` names it). The manifest is written last, and the
whole directory is checked with ``verify_export``; ``verify(dest)`` checks it again later.

The API key needs the ``downloads:read`` scope. ``client/sync.py`` (``fairtrain data sync``)
applies withdrawals to a pulled copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import httpx

from fairtrain.delivery.manifest import MANIFEST_FILE, ManifestCheck, verify_export

__all__ = [
    "DeliveryFailed",
    "FairtrainClient",
    "FileRefused",
    "Progress",
    "PullResult",
    "verify",
]

PIECE = 1 << 20
PARTIAL_SUFFIX = ".part"
# Called with (bytes just received, bytes of the whole export): first with 0.
Progress = Callable[[int, int], None]


class DeliveryFailed(RuntimeError):
    """The server refused, the export failed, or the copy did not verify: carries a
    machine-readable code and a sentence."""

    def __init__(self, code: str, detail: str, *, status: int | None = None) -> None:
        super().__init__(f"{detail} ({code}{f', HTTP {status}' if status else ''})")
        self.code = code
        self.detail = detail
        self.status = status


class FileRefused(DeliveryFailed):
    """A downloaded file's bytes do not match the manifest: it was deleted."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__("file_refused", f"{path}: {detail}")
        self.path = path


@dataclass
class PullResult:
    directory: Path
    licence_id: str
    export_id: str
    manifest_sha256: str
    files: int
    bytes_downloaded: int = 0
    # Files that were resumed, and the offset each resumed from.
    resumed: dict[str, int] = field(default_factory=dict)
    # Files already present and intact from an earlier pull.
    kept: list[str] = field(default_factory=list)


def _failure(response: httpx.Response) -> DeliveryFailed:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    return DeliveryFailed(
        str(body.get("code", "http_error")),
        str(body.get("detail", response.reason_phrase or "The server refused the request.")),
        status=response.status_code,
    )


def _safe_target(root: Path, relative: str) -> Path:
    """Where a manifest path goes: refused if it would leave the directory (a hostile or
    broken manifest must not write outside it)."""
    parts = PurePosixPath(relative).parts
    if (
        not relative
        or relative.startswith("/")
        or any(part in ("", ".", "..") for part in parts)
        or "\\" in relative
    ):
        raise DeliveryFailed("unsafe_path", f"The manifest names an unsafe path: {relative!r}.")
    return root.joinpath(*parts)


def _sha256_of(path: Path) -> tuple[Any, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while piece := handle.read(PIECE):
            digest.update(piece)
            size += len(piece)
    return digest, size


def verify(dest: Path) -> ManifestCheck:
    """Check a pulled copy against its manifest: every file present, of the listed size
    and SHA-256, and nothing else."""
    return verify_export(dest)


class FairtrainClient:
    """A licence holder's connection to a fairtrain server (an API key, or any
    ``httpx.Client`` already authenticated)."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        http: httpx.Client | None = None,
        timeout: float = 60.0,
        poll_interval: float = 1.0,
        max_wait: float = 6 * 3600.0,
        retries: int = 5,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = http or httpx.Client(
            base_url=base_url, timeout=httpx.Timeout(timeout, connect=10.0), headers=headers
        )
        self._owns_http = http is None
        self.poll_interval = poll_interval
        self.max_wait = max_wait
        self.retries = retries

    def close(self) -> None:
        if self._owns_http:
            self.http.close()

    def __enter__(self) -> FairtrainClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- the export ---------------------------------------------------------------------

    def request_export(self, licence_id: str) -> dict[str, Any]:
        """Ask for the licence's export (or get the one already asked for)."""
        response = self.http.post(f"/api/v1/licences/{licence_id}/exports")
        if response.status_code not in (200, 202):
            raise _failure(response)
        body: dict[str, Any] = response.json()
        return body

    def export_status(self, licence_id: str, export_id: str) -> dict[str, Any]:
        """The export's state and, once ready, its files with fresh signed links."""
        response = self.http.get(f"/api/v1/licences/{licence_id}/exports/{export_id}")
        if response.status_code != 200:
            raise _failure(response)
        body: dict[str, Any] = response.json()
        return body

    def wait_for_export(self, licence_id: str) -> dict[str, Any]:
        """Ask for the export and wait until it is ready; raise if it failed."""
        status = self.request_export(licence_id)
        deadline = time.monotonic() + self.max_wait
        while status["state"] in ("requested", "building"):
            if time.monotonic() > deadline:
                raise DeliveryFailed(
                    "export_timeout", "The export was not ready in time; pull again later."
                )
            time.sleep(self.poll_interval)
            status = self.export_status(licence_id, status["id"])
        if status["state"] != "ready":
            failure = status.get("failure") or {}
            raise DeliveryFailed(
                str(failure.get("code", f"export_{status['state']}")),
                str(failure.get("detail", f"The export is {status['state']}.")),
            )
        return status

    # --- files --------------------------------------------------------------------------

    def _get(self, url: str, headers: dict[str, str]) -> httpx.Response:
        """A streamed GET of a link, honouring Retry-After once the rate limit is hit."""
        for _ in range(self.retries):
            request = self.http.build_request("GET", url, headers=headers)
            response = self.http.send(request, stream=True)
            if response.status_code != 429:
                return response
            wait = float(response.headers.get("retry-after", "1"))
            response.close()
            time.sleep(min(wait, 60.0))
        return response

    def _fetch(
        self,
        links: Callable[[], dict[str, str]],
        refresh: Callable[[], dict[str, str]],
        entry: dict[str, Any],
        target: Path,
        progress: Progress | None,
        total: int,
        result: PullResult,
    ) -> None:
        """Download one file to ``target`` via its ``.part`` file, resuming it, and refuse
        it unless it matches the manifest entry."""
        path, expected, size = str(entry["path"]), str(entry["sha256"]), int(entry["size"])
        partial = target.with_name(target.name + PARTIAL_SUFFIX)
        partial.parent.mkdir(parents=True, exist_ok=True)
        attempts = 0
        url = links()[path]
        while True:
            digest, have = _sha256_of(partial) if partial.exists() else (hashlib.sha256(), 0)
            if have > size:  # not this file: start again
                partial.unlink()
                digest, have = hashlib.sha256(), 0
            headers = {}
            if 0 < have < size:
                headers = {"Range": f"bytes={have}-", "If-Range": f'"{expected}"'}
            try:
                received = self._stream(url, headers, partial, digest, have, size, progress, total)
            except (httpx.TransportError, _LinkExpired) as error:
                attempts += 1
                if attempts > self.retries:
                    raise DeliveryFailed(
                        "download_interrupted",
                        f"{path} could not be downloaded ({error}); pull again to resume.",
                    ) from error
                url = refresh()[path]  # fresh links: the old one may have expired
                continue
            if received.resumed_from:
                result.resumed[path] = received.resumed_from
            result.bytes_downloaded += received.count
            break
        final_digest, final_size = received.digest.hexdigest(), received.size
        if final_size != size or final_digest != expected:
            partial.unlink(missing_ok=True)
            raise FileRefused(
                path,
                f"its SHA-256 ({final_digest}) or size ({final_size} bytes) does not match the "
                f"manifest ({expected}, {size} bytes); the file was deleted.",
            )
        os.replace(partial, target)

    def _stream(
        self,
        url: str,
        headers: dict[str, str],
        partial: Path,
        digest: Any,
        have: int,
        size: int,
        progress: Progress | None,
        total: int,
    ) -> _Received:
        response = self._get(url, headers)
        try:
            if response.status_code == 410:
                raise _LinkExpired(_failure(_read(response)).detail)
            if response.status_code == 416:
                # The partial copy is not a prefix of this file: start again.
                partial.unlink(missing_ok=True)
                raise _LinkExpired("the partial copy did not fit the file")
            if response.status_code not in (200, 206):
                raise _failure(_read(response))
            resumed_from = have if response.status_code == 206 else 0
            mode = "ab" if resumed_from else "wb"
            if not resumed_from:
                digest, have = hashlib.sha256(), 0
            count = 0
            with partial.open(mode) as handle:
                for piece in response.iter_bytes():
                    if have + len(piece) > size:
                        raise DeliveryFailed(
                            "file_too_large",
                            f"The server sent more than the {size} bytes the manifest lists.",
                        )
                    handle.write(piece)
                    digest.update(piece)
                    have += len(piece)
                    count += len(piece)
                    if progress is not None:
                        progress(len(piece), total)
            return _Received(digest, have, count, resumed_from)
        finally:
            response.close()

    def pull(self, licence_id: str, dest: Path, *, progress: Progress | None = None) -> PullResult:
        """Download the licence's export into ``dest`` and verify it (see the module)."""
        status = self.wait_for_export(licence_id)
        export_id = str(status["id"])
        state = {"status": status}

        def links() -> dict[str, str]:
            current = state["status"]
            expiry = min((f["expires_at"] for f in current["files"]), default=None)
            if expiry is None or _expired(expiry):
                state["status"] = current = self.export_status(licence_id, export_id)
            return {str(f["path"]): str(f["url"]) for f in current["files"]}

        def refreshed() -> dict[str, str]:
            state["status"] = self.export_status(licence_id, export_id)
            return links()

        dest.mkdir(parents=True, exist_ok=True)
        manifest_bytes = self._manifest(links, refreshed, status)
        manifest = json.loads(manifest_bytes)
        if manifest.get("licence_id") != licence_id:
            raise DeliveryFailed(
                "manifest_mismatch", "The manifest is not the manifest of this licence."
            )
        entries = list(manifest.get("files", []))
        targets = {str(e["path"]): _safe_target(dest, str(e["path"])) for e in entries}
        total = sum(int(e["size"]) for e in entries)
        result = PullResult(
            dest, licence_id, export_id, str(status["manifest_sha256"]), files=len(entries) + 1
        )
        if progress is not None:
            progress(0, total)
        for entry in entries:
            target = targets[str(entry["path"])]
            if target.is_file():
                digest, size = _sha256_of(target)
                if size == entry["size"] and digest.hexdigest() == entry["sha256"]:
                    result.kept.append(str(entry["path"]))
                    if progress is not None:
                        progress(size, total)
                    continue
                target.unlink()
            self._fetch(links, refreshed, entry, target, progress, total, result)
        manifest_path = dest / MANIFEST_FILE
        temporary = manifest_path.with_name(MANIFEST_FILE + PARTIAL_SUFFIX)
        temporary.write_bytes(manifest_bytes)
        os.replace(temporary, manifest_path)
        check = verify_export(dest)
        if not check.ok:
            raise DeliveryFailed(
                "export_not_verified", "The copy does not verify: " + "; ".join(check.problems())
            )
        return result

    def _manifest(
        self,
        links: Callable[[], dict[str, str]],
        refresh: Callable[[], dict[str, str]],
        status: dict[str, Any],
    ) -> bytes:
        """The manifest, checked against the digest the platform recorded for the export."""
        expected = str(status["manifest_sha256"])
        current = links
        for _ in range(self.retries):
            response = self._get(current()[MANIFEST_FILE], {})
            try:
                if response.status_code == 410:  # expired (clocks differ): fresh links
                    current = refresh
                    continue
                if response.status_code != 200:
                    raise _failure(_read(response))
                data = response.read()
            finally:
                response.close()
            digest = hashlib.sha256(data).hexdigest()
            if digest != expected:
                raise FileRefused(
                    MANIFEST_FILE,
                    f"its SHA-256 ({digest}) is not the one the platform recorded ({expected}).",
                )
            return data
        raise DeliveryFailed("download_interrupted", "The manifest could not be downloaded.")


@dataclass(frozen=True, slots=True)
class _Received:
    digest: Any
    size: int
    count: int
    resumed_from: int


class _LinkExpired(Exception):
    """The link stopped working (expired, or the range no longer fits): fetch anew."""


def _read(response: httpx.Response) -> httpx.Response:
    response.read()
    return response


def _expired(expires_at: str) -> bool:
    moment = datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
    # A margin, so a link is not used in its last seconds.
    return (moment - datetime.now(UTC)).total_seconds() < 30
