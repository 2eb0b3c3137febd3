"""Applying withdrawals to a pulled copy: the buyer client's ``sync``.

``sync`` reads the organisation's notice feed (``GET /api/v1/notices``) from where it
stopped last time, and for every notice about the licence the copy at ``dest`` belongs
to: deletes the withdrawn items from it (``delivery.export.remove_items``: their Parquet
rows, tar members and file copies, receipts; the manifest records them as withdrawn),
acknowledges the notice, and sends a deletion attestation signed with the organisation's
Ed25519 key (registered with ``POST /api/v1/orgs/{org}/attestation-keys``). Notices of
other licences are left for the copies they belong to.

The feed's cursor is kept next to the copy (``.<dest>.fairtrain-sync.json``), never
inside it, so ``fairtrain data verify`` still finds exactly the files the manifest lists.
Running it again does nothing new; a run broken off half-way is finished by the next
(removing items already removed changes nothing, and the server accepts the same
acknowledgement and attestation twice). The API key needs the ``notices:read`` and
``attestations:write`` scopes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fairtrain.client.delivery import DeliveryFailed, FairtrainClient
from fairtrain.delivery.export import remove_items
from fairtrain.delivery.manifest import read_manifest
from fairtrain.withdrawal.notices import attestation_document, sign_attestation

__all__ = ["SyncResult", "state_file", "sync"]


@dataclass
class SyncResult:
    licence_id: str
    notices: list[str] = field(default_factory=list)  # handled in this run
    removed: list[str] = field(default_factory=list)  # item keys deleted from the copy
    attested: list[str] = field(default_factory=list)
    cursor: str | None = None


def state_file(dest: Path) -> Path:
    return dest.parent / f".{dest.name}.fairtrain-sync.json"


def _load_cursor(dest: Path) -> str | None:
    path = state_file(dest)
    if not path.exists():
        return None
    cursor = json.loads(path.read_text()).get("cursor")
    return str(cursor) if cursor else None


def _save_cursor(dest: Path, cursor: str | None) -> None:
    path = state_file(dest)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps({"cursor": cursor}))
    os.replace(partial, path)


def _refused(response: httpx.Response) -> DeliveryFailed:
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    return DeliveryFailed(
        str(body.get("code", "http_error")),
        str(body.get("detail", "The server refused the request.")),
        status=response.status_code,
    )


def _post(client: FairtrainClient, url: str, body: dict[str, Any] | None = None) -> None:
    response = client.http.post(url, json=body)
    if response.status_code != 200:
        raise _refused(response)


def sync(
    client: FairtrainClient, dest: Path, *, key: Ed25519PrivateKey, limit: int = 100
) -> SyncResult:
    """Apply every new withdrawal notice of the copy's licence to the copy at ``dest``."""
    manifest = read_manifest(dest)
    result = SyncResult(licence_id=str(manifest["licence_id"]))
    cursor = _load_cursor(dest)
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = client.http.get("/api/v1/notices", params=params)
        if response.status_code != 200:
            raise _refused(response)
        page = response.json()
        for notice in page["notices"]:
            if notice["licence_id"] != result.licence_id:
                continue
            removal = remove_items(dest, notice["asset_ids"])
            result.removed.extend(removal.removed)
            _post(client, f"/api/v1/notices/{notice['id']}/acknowledge")
            if notice["state"] != "attested":
                document = attestation_document(notice["body"], deleted_at=datetime.now(UTC))
                _post(
                    client,
                    f"/api/v1/notices/{notice['id']}/attestation",
                    {"jws": sign_attestation(document, key)},
                )
                result.attested.append(notice["id"])
            result.notices.append(notice["id"])
        # The place is saved after each page is applied: a crash repeats at most a page.
        if page["next_cursor"] and page["next_cursor"] != cursor:
            cursor = page["next_cursor"]
            _save_cursor(dest, cursor)
        if len(page["notices"]) < limit:
            break
    result.cursor = cursor
    return result
