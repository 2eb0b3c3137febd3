"""kill -9 at random points of uploads, processing, dataset builds, exports, payments, erasure
and withdrawals;
restart; then nothing acknowledged is lost, nothing is half-written, the ledger balances,
every job ends, and the audit log verifies — on SQLite and on PostgreSQL.

`make test` runs one trial per operation and database; `make soak` runs many
(FAIRTRAIN_CRASH_TRIALS). The figure (trials run, failures found) is in
docs/reliability.md.
"""

from __future__ import annotations

import io
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile
from sqlalchemy import select
from tests.factories import STRONG_PASSWORD, unique_email
from tests.media_factory import png_bytes
from tests.reliability.crash import Platform, kill_at_random, platform, quiet, trials

from fairtrain.client.delivery import FairtrainClient
from fairtrain.client.delivery import verify as verify_pulled
from fairtrain.datasets.models import Dataset, DatasetVersion
from fairtrain.db import make_session_factory
from fairtrain.delivery.models import LicenceExport
from fairtrain.ingest.models import Asset, AssetState
from fairtrain.licensing.models import Licence, Order, OrderState
from fairtrain.withdrawal.models import Notice, Withdrawal

DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@dataclass
class Person:
    client: httpx.Client
    csrf: str
    org_id: str | None = None

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-CSRF-Token": self.csrf} | kwargs.pop("headers", {})
        return self.client.post(path, headers=headers, **kwargs)


def _login(target: Platform, email: str) -> Person:
    client = target.client()
    body = client.post("/api/v1/auth/login", json={"email": email, "password": STRONG_PASSWORD})
    assert body.status_code == 200, body.text
    return Person(client, body.json()["csrf_token"], body.json()["org_id"])


def _contributor(target: Platform) -> tuple[str, Person]:
    email = unique_email("crash")
    response = httpx.post(
        f"{target.base_url}/api/v1/accounts/contributors",
        json={
            "email": email,
            "password": STRONG_PASSWORD,
            "display_name": "Crash Test",
            "date_of_birth": "1990-01-01",
            "adult_attestation": True,
            "jurisdiction": "DE",
        },
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return email, _login(target, email)


def _buyer(target: Platform) -> tuple[str, Person]:
    email = unique_email("crashbuyer")
    response = httpx.post(
        f"{target.base_url}/api/v1/accounts/buyers",
        json={
            "org_name": "Crash Buyers",
            "email": email,
            "password": STRONG_PASSWORD,
            "display_name": "Crash Buyer",
            "jurisdiction": "NL",
        },
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return email, _login(target, email)


def _operator(target: Platform) -> str:
    email = unique_email("crashops")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "fairtrain.cli",
            "users",
            "create",
            "--kind",
            "operator",
            "--email",
            email,
            "--name",
            "Crash Operator",
            "--password",
            STRONG_PASSWORD,
        ],
        env=target.env(),
        check=True,
        capture_output=True,
        timeout=120,
    )
    return email


def _listed(person: Person, count: int, seed: int) -> list[str]:
    ids = []
    for index in range(count):
        uploaded = person.post(
            "/api/v1/uploads",
            content=png_bytes(size=(96, 72), seed=seed + index),
            params={"filename": f"{index}.png"},
        )
        assert uploaded.status_code == 201, uploaded.text
        ids.append(uploaded.json()["id"])
    deadline = time.monotonic() + 60
    for asset_id in ids:
        while person.client.get(f"/api/v1/assets/{asset_id}").json()["state"] != "awaiting_review":
            assert time.monotonic() < deadline, "processing did not finish"
            time.sleep(0.1)
        assert person.post(f"/api/v1/assets/{asset_id}/approve").status_code == 200
    return ids


def _audio(seconds: float = 180.0) -> bytes:
    rate = 16_000
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.2 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 0.5 * t)) / 2
    out = io.BytesIO()
    soundfile.write(out, tone.astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return out.getvalue()


def _slowly(data: bytes, pieces: int = 40) -> Iterator[bytes]:
    step = max(1, len(data) // pieces)
    for start in range(0, len(data), step):
        time.sleep(0.02)
        yield data[start : start + step]


def _in_background(call: Callable[[], httpx.Response | None]) -> tuple[threading.Thread, list[Any]]:
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    thread.start()
    return thread, result


def _assets(target: Platform) -> list[Asset]:
    engine = target.engine()
    try:
        with make_session_factory(engine)() as session:
            return list(session.scalars(select(Asset)))
    finally:
        engine.dispose()


# -- the operations ---------------------------------------------------------------------


def upload(target: Platform, rng: random.Random) -> None:
    _, person = _contributor(target)
    data = _audio()
    thread, result = _in_background(
        lambda: quiet(
            person.post, "/api/v1/uploads", content=_slowly(data), params={"filename": "long.wav"}
        )
    )
    kill_at_random(target, rng, 1.2)
    thread.join(timeout=30)
    acknowledged = result[0] if result and result[0] is not None else None
    target.start()
    target.wait_for_jobs()
    if acknowledged is not None and acknowledged.status_code == 201:
        ids = {a.id for a in _assets(target)}
        assert acknowledged.json()["id"] in ids, "an acknowledged upload was lost"


def processing(target: Platform, rng: random.Random) -> None:
    _, person = _contributor(target)
    ids = []
    for index in range(3):
        response = person.post(
            "/api/v1/uploads",
            content=png_bytes(seed=900 + index),
            params={"filename": f"{index}.png"},
        )
        assert response.status_code == 201
        ids.append(response.json()["id"])
    voice = person.post("/api/v1/uploads", content=_audio(20), params={"filename": "v.wav"})
    ids.append(voice.json()["id"])
    kill_at_random(target, rng, 1.5)
    target.start()
    target.wait_for_jobs()
    states = {a.id: a.state for a in _assets(target)}
    for asset_id in ids:
        assert states[asset_id] in (AssetState.AWAITING_REVIEW, AssetState.REJECTED), states


def dataset_build(target: Platform, rng: random.Random) -> None:
    _, person = _contributor(target)
    _listed(person, 4, seed=rng.randrange(10_000))
    _, buyer = _buyer(target)
    thread, _ = _in_background(
        lambda: quiet(
            buyer.post,
            "/api/v1/datasets",
            json={
                "name": "Crash set",
                "purpose": "fine_tuning",
                "territory": "DE",
                "selection": {"modality": ["image"]},
            },
        )
    )
    kill_at_random(target, rng, 0.4)
    thread.join(timeout=30)
    target.start()
    engine = target.engine()
    try:
        with make_session_factory(engine)() as session:
            for dataset in session.scalars(select(Dataset)):
                assert dataset.latest_version_id is not None, "a dataset without its version"
    finally:
        engine.dispose()


def _ordered(
    target: Platform, rng: random.Random, photos: int
) -> tuple[Person, dict[str, Any], str]:
    """A contributor's listed photos in a dataset a buyer has ordered (not yet paid):
    the contributor, the order and the buyer's e-mail."""
    _, person = _contributor(target)
    _listed(person, photos, seed=rng.randrange(10_000))
    buyer_email, buyer = _buyer(target)
    dataset = buyer.post(
        "/api/v1/datasets",
        json={
            "name": "Paid",
            "purpose": "fine_tuning",
            "territory": "DE",
            "selection": {"modality": ["image"]},
        },
    ).json()
    quote = buyer.post(f"/api/v1/dataset-versions/{dataset['latest_version']['id']}/quotes")
    order = buyer.post(
        f"/api/v1/quotes/{quote.json()['id']}/orders",
        headers={"Idempotency-Key": f"crash-{rng.randrange(10**9)}"},
    ).json()
    return person, order, buyer_email


def payment(target: Platform, rng: random.Random) -> None:
    _, order, _ = _ordered(target, rng, 3)
    operator = _login(target, _operator(target))
    path = f"/api/v1/orders/{order['id']}/confirm-payment"
    thread, _ = _in_background(
        lambda: quiet(operator.post, path, json={"reference": order["invoice_number"]})
    )
    kill_at_random(target, rng, 0.3)
    thread.join(timeout=30)
    target.start()
    operator = _login(target, operator_email := _operator(target))  # a new session
    del operator_email
    again = operator.post(path, json={"reference": order["invoice_number"]})
    assert again.status_code == 200, again.text  # paid once, or paid now: never twice
    engine = target.engine()
    try:
        with make_session_factory(engine)() as session:
            paid = session.get(Order, order["id"])
            assert paid is not None and paid.state == OrderState.PAID
            licences = list(session.scalars(select(Licence).where(Licence.order_id == paid.id)))
            assert len(licences) == 1
    finally:
        engine.dispose()


def erasure(target: Platform, rng: random.Random) -> None:
    _, person = _contributor(target)
    ids = _listed(person, 2, seed=rng.randrange(10_000))
    thread, _ = _in_background(
        lambda: quiet(
            person.client.delete, f"/api/v1/assets/{ids[0]}", headers={"X-CSRF-Token": person.csrf}
        )
    )
    kill_at_random(target, rng, 0.3)
    thread.join(timeout=30)
    target.start()
    states = {a.id: a for a in _assets(target)}
    erased = states[ids[0]]
    if erased.state == AssetState.ERASED:
        assert erased.blob_id is None and erased.redacted_blob_id is None
    # Whatever the kill interrupted, erasing again completes it.
    person = _login(target, person_email(target, ids[0]))
    done = person.client.delete(f"/api/v1/assets/{ids[0]}", headers={"X-CSRF-Token": person.csrf})
    assert done.status_code == 200, done.text


def withdrawal(target: Platform, rng: random.Random) -> None:
    person, order, _ = _ordered(target, rng, 3)
    operator = _login(target, _operator(target))
    paid = operator.post(
        f"/api/v1/orders/{order['id']}/confirm-payment", json={"reference": order["invoice_number"]}
    )
    assert paid.status_code == 200, paid.text
    gone = [a.id for a in _assets(target)][:1]
    body = {"asset_ids": gone}
    headers = {"X-CSRF-Token": person.csrf}
    thread, _ = _in_background(
        lambda: quiet(person.client.post, "/api/v1/withdrawals", json=body, headers=headers)
    )
    kill_at_random(target, rng, 0.4)
    thread.join(timeout=30)
    target.start()
    # Whatever the kill interrupted, asking again ends with one withdrawal, one notice
    # to the licensee and a dataset version without the asset.
    person = _login(target, person_email(target, gone[0]))
    again = person.client.post(
        "/api/v1/withdrawals", json=body, headers={"X-CSRF-Token": person.csrf}
    )
    assert again.status_code in (200, 201), again.text
    engine = target.engine()
    try:
        with make_session_factory(engine)() as session:
            assert len(list(session.scalars(select(Withdrawal)))) == 1
            notices = list(session.scalars(select(Notice)))
            assert len(notices) == 1 and notices[0].asset_ids == gone
            asset = session.get(Asset, gone[0])
            assert asset is not None and asset.state == AssetState.WITHDRAWN
            dataset = session.scalars(select(Dataset)).one()
            latest = session.get(DatasetVersion, dataset.latest_version_id)
            assert latest is not None and latest.reason == "withdrawal"
    finally:
        engine.dispose()


def export(target: Platform, rng: random.Random, scratch: Path) -> None:
    _, order, buyer_email = _ordered(target, rng, 4)
    operator = _login(target, _operator(target))
    paid = operator.post(
        f"/api/v1/orders/{order['id']}/confirm-payment", json={"reference": order["invoice_number"]}
    )
    assert paid.status_code == 200, paid.text
    engine = target.engine()
    try:
        with make_session_factory(engine)() as session:
            licence_id = session.scalars(select(Licence.id)).one()
    finally:
        engine.dispose()
    buyer = _login(target, buyer_email)
    path = f"/api/v1/licences/{licence_id}/exports"
    thread, _ = _in_background(lambda: quiet(buyer.post, path))
    # The build of four photos takes about two seconds here (the export stays
    # "requested" until it commits): most kills land inside it, some in the request.
    delay = kill_at_random(target, rng, 2.5)
    thread.join(timeout=30)
    engine = target.engine()
    try:
        with make_session_factory(engine)() as session:
            states = [str(e.state) for e in session.scalars(select(LicenceExport))]
    finally:
        engine.dispose()
    print(f"killed {delay:.2f} s after the request; exports then: {states or 'none'}")
    target.start()
    target.wait_for_jobs()
    # Whatever the kill interrupted (the request, the build, a shard half stored in the
    # vault), the buyer then pulls an export whose every file matches its manifest.
    buyer = _login(target, buyer_email)
    key = buyer.post(
        f"/api/v1/orgs/{buyer.org_id}/api-keys",
        json={"name": "after the crash", "scopes": ["downloads:read"]},
    )
    assert key.status_code == 201, key.text
    dest = scratch / f"pulled-{rng.randrange(10**9)}"
    with FairtrainClient(
        target.base_url, api_key=key.json()["secret"], poll_interval=0.2, max_wait=120
    ) as client:
        pulled = client.pull(licence_id, dest)
    assert verify_pulled(dest).ok, "the pulled export does not match its manifest"
    assert pulled.files > 0


def person_email(target: Platform, asset_id: str) -> str:
    from fairtrain.accounts.models import User

    engine = target.engine()
    try:
        with make_session_factory(engine)() as session:
            asset = session.get(Asset, asset_id)
            assert asset is not None
            user = session.get(User, asset.owner_id)
            assert user is not None
            return user.email
    finally:
        engine.dispose()


OPERATIONS = {
    "upload": upload,
    "processing": processing,
    "dataset_build": dataset_build,
    "export": lambda target, rng: export(target, rng, target.data_dir.parent),
    "payment": payment,
    "erasure": erasure,
    "withdrawal": withdrawal,
}


@pytest.mark.slow
@pytest.mark.parametrize("database", DATABASES)
@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_a_kill_at_any_moment_loses_and_breaks_nothing(
    operation: str, database: str, tmp_path: Path
) -> None:
    rng = random.Random(f"{operation}-{database}-{time.time_ns()}")
    for trial in range(trials()):
        with platform(tmp_path, database) as target:
            target.start()
            OPERATIONS[operation](target, rng)
            target.wait_for_jobs()
            report, swept = target.recover_and_check()
            assert report.ok, (
                f"trial {trial} of {operation} on {database}: {report.findings} "
                f"(server logs: {[p.name for p in target.log]})"
            )
            assert target.kills >= 1
            print(f"crash trial {operation}/{database}#{trial}: ok, {len(swept)} orphan(s) swept")
