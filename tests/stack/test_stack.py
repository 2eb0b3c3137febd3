"""The multi-process deployment end to end over HTTP: PostgreSQL (a fresh database),
Redis, moto S3, two API processes and two worker processes (``fairtrain.stack``).

A contributor uploads on one API port and the *worker processes* process it; a buyer on
the other port finds it in the catalogue, builds a dataset and orders it; an operator
confirms payment; the export is built by a worker into S3 and downloaded from the first
port, byte for byte as the export says; the contributor withdraws and the buyer reads
the notice. Also: migrations ran once for two API processes,
and both serve readiness and metrics.
"""

from __future__ import annotations

import hashlib
import io
import secrets
import time
from collections.abc import Iterator
from importlib.resources import files
from typing import Any

import httpx
import pytest
from PIL import Image
from tests.factories import STRONG_PASSWORD, Actor, login, sign_up_buyer, sign_up_contributor
from tests.functional.delivery_world import buy

from fairtrain.stack import Stack

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(300)]

CHEAP = {  # argon2 at its cheapest: the test logs in several people on a busy machine
    "FAIRTRAIN_ARGON2_TIME_COST": "1",
    "FAIRTRAIN_ARGON2_MEMORY_KIB": "1024",
    "FAIRTRAIN_ARGON2_PARALLELISM": "1",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with Stack(tmp_path_factory.mktemp("stack"), extra_env=CHEAP) as running:
        yield running


_OPEN: list[httpx.Client] = []


def _client(url: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=60)
    _OPEN.append(client)
    return client


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def _until(read: Any, done: Any, seconds: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        body: dict[str, Any] = read()
        if done(body) or time.monotonic() > deadline:
            return body
        time.sleep(0.5)


def _photo() -> bytes:
    with Image.open(files("skimage.data") / "chelsea.png") as opened:
        picture = opened.convert("RGB")
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


def test_upload_to_download_across_processes(stack: Stack) -> None:
    began = time.monotonic()
    first, second = stack.api_urls
    contributor = sign_up_contributor(_client(first), name="Stack Contributor")  # type: ignore[arg-type]
    uploaded = contributor.client.post(
        "/api/v1/uploads", content=_photo(), params={"filename": "cat.png"},
        headers=contributor.headers(),
    )  # fmt: skip
    assert uploaded.status_code == 201, uploaded.text
    asset_id = uploaded.json()["id"]
    # Processing happens in a worker process, not in the API process that took the upload.
    asset = _until(
        lambda: contributor.client.get(f"/api/v1/assets/{asset_id}").json(),
        lambda body: body["state"] != "processing" and body["state"] != "uploaded",
    )
    assert asset["state"] == "awaiting_review", asset
    approved = contributor.client.post(
        f"/api/v1/assets/{asset_id}/approve", headers=contributor.headers()
    )
    assert approved.status_code == 200, approved.text

    buyer = sign_up_buyer(_client(second), org_name="Stack Vision")  # type: ignore[arg-type]
    found = buyer.client.get("/api/v1/catalog", params={"modality": "image"}).json()
    assert [item["id"] for item in found["items"]] == [asset_id], found
    assert found["facets"]["modality"] == {"image": 1}

    email = f"operator-{secrets.token_hex(3)}@example.org"
    made = stack.cli("users", "create", "--kind", "operator", "--email", email,
                     "--name", "Stack Operator", "--password", STRONG_PASSWORD)  # fmt: skip
    assert made.returncode == 0, made.stderr + made.stdout
    operator: Actor = login(_client(first), email)  # type: ignore[arg-type]
    licence_id = buy(buyer, operator, {
        "name": "Cats for fine-tuning", "purpose": "fine_tuning", "territory": "DE",
        "term_days": 365, "currency": "EUR", "selection": {"modality": ["image"]},
    })  # fmt: skip

    started = buyer.client.post(f"/api/v1/licences/{licence_id}/exports", headers=buyer.headers())
    assert started.status_code in (200, 202), started.text
    export_id = started.json()["id"]
    status = _until(
        lambda: buyer.client.get(f"/api/v1/licences/{licence_id}/exports/{export_id}").json(),
        lambda body: body["state"] in ("ready", "failed"),
        seconds=120,
    )
    assert status["state"] == "ready", status
    # Downloaded through the *other* API process: the signed link and S3 are shared.
    downloader = _client(first)
    downloader.cookies = buyer.client.cookies  # cookies belong to the host, not the port
    for entry in status["files"]:
        response = downloader.get(entry["url"])
        assert response.status_code == 200, response.text[:300]
        assert hashlib.sha256(response.content).hexdigest() == entry["sha256"]

    # The contributor withdraws (first port): the notice is written with the withdrawal,
    # so the buyer reads it at once from the second port, and the asset left the catalogue.
    withdrawn = contributor.client.post(
        "/api/v1/withdrawals", json={"asset_ids": [asset_id]}, headers=contributor.headers()
    )
    assert withdrawn.status_code == 201, withdrawn.text
    assert [b["licence_id"] for b in withdrawn.json()["buyers"]] == [licence_id]
    feed = buyer.client.get("/api/v1/notices").json()["notices"]
    assert [(n["licence_id"], n["asset_ids"]) for n in feed] == [(licence_id, [asset_id])]
    gone = buyer.client.get("/api/v1/catalog", params={"modality": "image"}).json()
    assert gone["items"] == []
    print(f"end to end in {time.monotonic() - began:.1f} s")


def test_migrations_ran_once_and_each_process_is_observable(stack: Stack) -> None:
    logs = [p.log_path.read_text(errors="replace") for p in stack.processes if "api" in p.name]
    applied = sum(text.count("Running upgrade  -> 0001") for text in logs)
    assert applied <= 1  # the second process waited on the lock and found the schema there
    for url in stack.api_urls:
        ready = httpx.get(f"{url}/readyz", timeout=10)
        assert ready.json() == {"status": "ready", "database": "ok", "store": "ok", "queue": "ok"}
    # The jobs of the first test ran in the worker processes, which count them.
    scraped = [
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        for port in stack.worker_metrics_ports
    ]
    assert all("fairtrain_job_duration_seconds" in text for text in scraped)
    assert any('outcome="succeeded"' in text for text in scraped)
