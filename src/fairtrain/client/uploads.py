"""Uploading files to a fairtrain server: what ``fairtrain upload`` runs.

Small files go in one streamed request; large ones through tus 1.0 in fixed-size PATCH
requests, so a broken connection costs one chunk, not the file. The tus location of an
unfinished upload is remembered in a small state file keyed by the file's path, size and
modification time; running the command again resumes where the server says it stopped.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import httpx

__all__ = ["UploadClient", "UploadFailed", "UploadState"]

TUS_VERSION = "1.0.0"
DEFAULT_CHUNK = 8 * 1024 * 1024
STREAM_PIECE = 256 * 1024

Progress = Callable[[int], None]  # called with the number of bytes just sent


class UploadFailed(RuntimeError):
    """The server refused: carries its machine-readable code and sentence."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{detail} ({code}, HTTP {status})")
        self.status = status
        self.code = code
        self.detail = detail


def _failure(response: httpx.Response) -> UploadFailed:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    return UploadFailed(
        response.status_code,
        str(body.get("code", "http_error")),
        str(body.get("detail", response.reason_phrase or "The server refused the request.")),
    )


@dataclass(frozen=True, slots=True)
class UploadState:
    """Where unfinished tus uploads are remembered between runs (one JSON file)."""

    path: Path

    @staticmethod
    def key(file: Path) -> str:
        stat = file.stat()
        return f"{file.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def get(self, file: Path) -> str | None:
        return self._read().get(self.key(file))

    def put(self, file: Path, location: str | None) -> None:
        data = self._read()
        if location is None:
            data.pop(self.key(file), None)
        else:
            data[self.key(file)] = location
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(data, indent=1))
        os.replace(temporary, self.path)


def _pieces(handle: BinaryIO, length: int, progress: Progress | None) -> Iterator[bytes]:
    remaining = length
    while remaining > 0:
        piece = handle.read(min(STREAM_PIECE, remaining))
        if not piece:
            return
        remaining -= len(piece)
        if progress is not None:
            progress(len(piece))
        yield piece


class UploadClient:
    """A logged-in contributor's connection to a server (cookie session + CSRF header)."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        state: UploadState,
        chunk_size: int = DEFAULT_CHUNK,
        resumable_from: int = DEFAULT_CHUNK,
    ) -> None:
        self.http = http
        self.state = state
        self.chunk_size = chunk_size
        self.resumable_from = resumable_from
        self.csrf: str | None = None

    def log_in(self, email: str, password: str) -> dict[str, Any]:
        response = self.http.post("/api/v1/auth/login", json={"email": email, "password": password})
        if response.status_code != 200:
            raise _failure(response)
        me: dict[str, Any] = response.json()
        self.csrf = me.get("csrf_token")
        return me

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"X-CSRF-Token": self.csrf or ""}
        headers.update(extra or {})
        return headers

    def upload(self, file: Path, progress: Progress | None = None) -> dict[str, Any]:
        """Upload one file; returns the asset the server created."""
        size = file.stat().st_size
        if size < self.resumable_from:
            return self._upload_whole(file, size, progress)
        return self._upload_resumable(file, size, progress)

    def _upload_whole(self, file: Path, size: int, progress: Progress | None) -> dict[str, Any]:
        with file.open("rb") as handle:
            response = self.http.post(
                "/api/v1/uploads",
                params={"filename": file.name},
                content=_pieces(handle, size, progress),
                headers=self._headers(
                    {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
                ),
            )
        if response.status_code != 201:
            raise _failure(response)
        asset: dict[str, Any] = response.json()
        return asset

    def _tus_headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return self._headers({"Tus-Resumable": TUS_VERSION, **(extra or {})})

    def _create(self, file: Path, size: int) -> str:
        name = base64.b64encode(file.name.encode()).decode()
        response = self.http.post(
            "/api/v1/uploads/tus",
            headers=self._tus_headers(
                {"Upload-Length": str(size), "Upload-Metadata": f"filename {name}"}
            ),
        )
        if response.status_code != 201:
            raise _failure(response)
        location = response.headers["location"]
        self.state.put(file, location)
        return location

    def _server_offset(self, location: str) -> tuple[int, str | None] | None:
        response = self.http.head(location, headers=self._tus_headers())
        if response.status_code in (404, 410):
            return None  # expired or never finished on this server: start again
        if response.status_code != 200:
            raise _failure(response)
        return int(response.headers["upload-offset"]), response.headers.get("fairtrain-asset")

    def _upload_resumable(self, file: Path, size: int, progress: Progress | None) -> dict[str, Any]:
        location = self.state.get(file)
        known = self._server_offset(location) if location else None
        if location is None or known is None:
            location, offset, asset_id = self._create(file, size), 0, None
        else:
            offset, asset_id = known
        if progress is not None and offset:
            progress(offset)
        with file.open("rb") as handle:
            handle.seek(offset)
            while asset_id is None and offset < size:
                length = min(self.chunk_size, size - offset)
                response = self.http.patch(
                    location,
                    content=_pieces(handle, length, progress),
                    headers=self._tus_headers(
                        {
                            "Content-Type": "application/offset+octet-stream",
                            "Upload-Offset": str(offset),
                            "Content-Length": str(length),
                        }
                    ),
                )
                if response.status_code != 204:
                    if response.status_code >= 400 and response.status_code < 500:
                        self.state.put(file, None)
                    raise _failure(response)
                offset = int(response.headers["upload-offset"])
                asset_id = response.headers.get("fairtrain-asset")
        self.state.put(file, None)
        if asset_id is None:
            raise UploadFailed(500, "upload_incomplete", "The server did not finish the upload.")
        response = self.http.get(f"/api/v1/assets/{asset_id}")
        if response.status_code != 200:
            raise _failure(response)
        asset: dict[str, Any] = response.json()
        return asset
