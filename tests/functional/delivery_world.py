"""A licence over real media for the delivery tests: a contributor's photos, a recording,
a letter, a handwritten PDF and a short video, listed under the default terms; a buyer
builds a dataset of them for fine-tuning, orders it, an operator confirms the payment.

Also a real HTTP server on loopback serving the test's own app (its savepoint-isolated
database, SQLite or PostgreSQL, the vault local or on moto S3), for the buyer client.
"""

from __future__ import annotations

import io
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from PIL import Image
from sqlalchemy.orm import Session
from tests import media_factory
from tests.conftest import free_port
from tests.factories import Actor, list_asset, sign_up_buyer, sign_up_contributor, sign_up_staff

__all__ = ["LETTER", "Delivery", "buy", "licensed", "loopback", "ok", "ready_export"]

LETTER = (
    "Dear neighbours, I'm writing to tell you about the garden we're planting behind the "
    "library this spring. We've cleared the old beds, and the soil is better than we "
    "expected after years of neglect. Tomatoes, beans and sunflowers will go along the "
    "south wall, where the light stays longest in the evening. The children from the "
    "school have asked for a corner of their own, and they've already painted signs for "
    "it. We'll need help on Saturday mornings, mostly with watering and weeding, and "
    "anyone who can lend a wheelbarrow would make the work much lighter. Nobody needs "
    "experience: the point is to learn together and to share what grows. Last year's "
    "harvest from the small plot fed twelve families for a month, and we think the new "
    "beds could feed three times as many. If you can't come on Saturdays, the gate is "
    "open every evening until dusk, and the watering cans are in the green shed by the "
    "path. Please don't pick anything before it's ripe, and leave a note in the box if "
    "you take a share, so we know what to plant again. We'd love to hear your ideas for "
    "the autumn, too: herbs, perhaps, or a bench under the old pear tree where people "
    "can sit and read. Thank you to everyone who has given seeds, tools and time so far. "
    "It's a small thing, a garden, but it's already brought more of us together than "
    "any meeting ever did. See you among the beds.\n"
)


VOICE = (
    "The library garden opens on Saturday morning at nine. Bring gloves, a hat and some "
    "water, and we will show you where the tomatoes, beans and sunflowers are planted."
)


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def _photo(name: str, fmt: str) -> bytes:
    with Image.open(files("skimage.data") / name) as opened:
        picture = opened.convert("RGB")
    out = io.BytesIO()
    picture.save(out, format=fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    return out.getvalue()


@dataclass
class Delivery:
    buyer: Actor
    operator: Actor
    contributor: Actor
    licence_id: str
    api_key: str
    assets: dict[str, str] = field(default_factory=dict)  # name -> asset id


def buy(buyer: Actor, operator: Actor, body: dict[str, Any]) -> str:
    """Build a dataset, quote, order and pay: the licence id."""
    dataset = ok(buyer.client.post("/api/v1/datasets", json=body, headers=buyer.headers()), 201)
    version = dataset["latest_version"]["id"]
    quote = ok(
        buyer.client.post(f"/api/v1/dataset-versions/{version}/quotes", headers=buyer.headers()),
        201,
    )
    order = ok(
        buyer.client.post(
            f"/api/v1/quotes/{quote['id']}/orders",
            headers=buyer.headers() | {"Idempotency-Key": secrets.token_hex(8)},
        ),
        201,
    )
    licence = ok(
        operator.client.post(
            f"/api/v1/orders/{order['id']}/confirm-payment",
            json={"reference": order["invoice_number"]},
            headers=operator.headers(),
        )
    )
    return str(licence["id"])


DATASET = {
    "name": "Everyday media for fine-tuning",
    "purpose": "fine_tuning",
    "territory": "DE",
    "term_days": 365,
    "currency": "EUR",
    "selection": {"modality": ["image", "audio", "text", "document", "video"]},
}


@pytest.fixture
def licensed(make_client: Any, db: Session, app: Any, tmp_path: Path) -> Delivery:
    contributor = sign_up_contributor(make_client(), name="Mara Lind")
    media = tmp_path / "media"
    media.mkdir()
    assets = {
        "cat": list_asset(contributor, _photo("chelsea.png", "PNG"), "cat.png"),
        "coffee": list_asset(contributor, _photo("coffee.png", "JPEG"), "coffee.jpg"),
        "voice": list_asset(
            contributor,
            # About nine seconds: a recording shorter than five is rarely attributed alone.
            media_factory.speech_wav(media, VOICE).read_bytes(),
            "voice.wav",
        ),
        "letter": list_asset(contributor, LETTER.encode(), "letter.txt"),
        "notes": list_asset(
            contributor, media_factory.make("handwriting-pdf", media).read_bytes(), "notes.pdf"
        ),
        "clip": list_asset(
            contributor, media_factory.make("mp4", media / "clip").read_bytes(), "clip.mp4"
        ),
    }
    buyer = sign_up_buyer(make_client(), org_name="Garden Vision Labs")
    operator = sign_up_staff(make_client(), db, app.state.passwords, "operator")
    licence_id = buy(buyer, operator, DATASET)
    key = ok(
        buyer.client.post(
            f"/api/v1/orgs/{buyer.org_id}/api-keys",
            json={"name": "training cluster", "scopes": ["downloads:read"]},
            headers=buyer.headers(),
        ),
        201,
    )
    return Delivery(buyer, operator, contributor, licence_id, str(key["secret"]), assets)


def ready_export(buyer: Actor, licence_id: str) -> dict[str, Any]:
    """Ask for the export (jobs run at once in tests) and read it back, ready."""
    started = buyer.client.post(f"/api/v1/licences/{licence_id}/exports", headers=buyer.headers())
    assert started.status_code in (200, 202), started.text
    status = ok(buyer.client.get(f"/api/v1/licences/{licence_id}/exports/{started.json()['id']}"))
    assert status["state"] == "ready", status
    return status


@pytest.fixture
def loopback(app: Any) -> Iterator[str]:
    """The test's app behind a real uvicorn server on 127.0.0.1 (for the buyer client)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the loopback server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
