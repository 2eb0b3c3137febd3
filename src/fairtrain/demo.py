"""Demo data for ``fairtrain serve --demo``: idempotent, so restarts do not duplicate it.

:func:`seed_demo` creates the demo people; :func:`seed_marketplace` gives them a working
marketplace through the real services: photos, a chat and a note uploaded, processed
(redacted) and listed under different terms, an open campaign, and a dataset licensed
and paid, so the contributor already has earnings to look at.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from PIL import Image, ImageDraw
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fairtrain.accounts import service as accounts
from fairtrain.accounts.models import Membership, User, UserKind
from fairtrain.accounts.passwords import PasswordPolicy
from fairtrain.accounts.profile import update_profile
from fairtrain.catalog import campaigns
from fairtrain.catalog.service import CatalogQuery
from fairtrain.config import Settings
from fairtrain.consent import service as consent
from fairtrain.datasets import service as datasets
from fairtrain.db import session_scope
from fairtrain.ids import utcnow
from fairtrain.ingest.models import Asset, AssetState
from fairtrain.ingest.service import approve_asset, receive_upload
from fairtrain.licensing import service as licensing
from fairtrain.runtime import Runtime

__all__ = ["DEMO_LOGINS", "DemoLogin", "seed_demo", "seed_marketplace"]


@dataclass(frozen=True, slots=True)
class DemoLogin:
    role: str
    email: str
    password: str
    display_name: str


# Public demo credentials: demo mode only ever runs on a local machine with local data.
DEMO_LOGINS = (
    DemoLogin("contributor", "ada@demo.example.org", "demo-violet-harbour-42", "Ada Okafor"),
    DemoLogin("contributor", "kofi@demo.example.org", "demo-amber-canyon-64", "Kofi Mensah"),
    DemoLogin("buyer", "bea@demo.example.org", "demo-copper-lantern-17", "Bea Lindqvist"),
    DemoLogin("operator", "otto@demo.example.org", "demo-granite-meadow-93", "Otto Reyes"),
    DemoLogin("auditor", "aud@demo.example.org", "demo-silver-estuary-58", "Aud Nakamura"),
)


def _exists(session: Session, email: str) -> bool:
    return session.scalar(select(User.id).where(User.email == email)) is not None


def seed_demo(session: Session, passwords: PasswordPolicy) -> list[DemoLogin]:
    """Create the demo accounts that are missing; returns all demo logins."""
    contributor, second, buyer, operator, auditor = DEMO_LOGINS
    for person, born, region in ((contributor, date(1990, 5, 17), "DE"),
                                 (second, date(1984, 11, 2), "GH")):  # fmt: skip
        if not _exists(session, person.email):
            accounts.register_contributor(
                session,
                passwords,
                email=person.email,
                password=person.password,
                display_name=person.display_name,
                date_of_birth=born,
                adult_attestation=True,
                jurisdiction=region,
            )
    if not _exists(session, buyer.email):
        accounts.register_buyer_org(
            session,
            passwords,
            org_name="Northwind Speech Lab",
            email=buyer.email,
            password=buyer.password,
            display_name=buyer.display_name,
            jurisdiction="NL",
        )
    for login, kind in ((operator, UserKind.OPERATOR), (auditor, UserKind.AUDITOR)):
        if not _exists(session, login.email):
            accounts.create_staff_user(
                session,
                passwords,
                kind=kind,
                email=login.email,
                password=login.password,
                display_name=login.display_name,
                actor="system:demo",
            )
    return list(DEMO_LOGINS)


# -- a working marketplace ----------------------------------------------------------------

CHAT = (
    "03/11/2026, 09:12 - Ada Okafor: Morning! Are we still on for the market on Saturday?\n"
    "03/11/2026, 09:14 - Jonas Weber: yes, meet at the fountain at ten, call me on 0151 2345678\n"
    "03/11/2026, 09:15 - Ada Okafor: Great, I will bring the bags and the list.\n"
)
NOTE = (
    "Shopping list for Saturday: tomatoes, bread, two kinds of cheese. Remember to ask "
    "Maria Schulz (maria.schulz@example.com) about the bike, and to pay the plumber."
)


def _photo(seed: int, size: tuple[int, int] = (640, 480)) -> bytes:
    """A photo-like picture: gradients, shapes and grain (no one in it)."""
    rng = random.Random(seed)  # noqa: S311 - pictures, not secrets
    width, height = size
    image = Image.new("RGB", size)
    pixels = image.load()
    assert pixels is not None
    base = [rng.randrange(256) for _ in range(3)]
    for y in range(height):
        for x in range(0, width):
            pixels[x, y] = (
                (base[0] + x // 3) % 256,
                (base[1] + y // 2) % 256,
                (base[2] + (x + y) // 5) % 256,
            )
    draw = ImageDraw.Draw(image)
    for _ in range(8):
        left, top = rng.randrange(width - 120), rng.randrange(height - 120)
        colour = tuple(rng.randrange(256) for _ in range(3))
        draw.rectangle((left, top, left + rng.randrange(30, 120), top + rng.randrange(30, 120)),
                       fill=colour)  # fmt: skip
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=88)
    return out.getvalue()


@dataclass(frozen=True, slots=True)
class _Upload:
    owner: str  # demo login e-mail
    name: str
    data: bytes
    terms: dict[str, Any]


def _uploads() -> list[_Upload]:
    ada, kofi = DEMO_LOGINS[0].email, DEMO_LOGINS[1].email
    commercial = {"template": "commercial_training", "price_minor": 250, "currency": "EUR"}
    return [
        _Upload(ada, "balcony.jpg", _photo(1), {"template": "default"}),
        _Upload(ada, "market-stall.jpg", _photo(2), commercial),
        _Upload(ada, "street-sign.jpg", _photo(3), {"template": "default"}),
        _Upload(ada, "chat-with-jonas.txt", CHAT.encode(), {"template": "research_only"}),
        _Upload(ada, "shopping-note.txt", NOTE.encode(), {"template": "default"}),
        _Upload(kofi, "workshop.jpg", _photo(4), commercial),
        _Upload(
            kofi,
            "harbour.jpg",
            _photo(5),
            {"template": "default", "price_minor": 150, "currency": "EUR"},
        ),
    ]


def _user(session: Session, email: str) -> User:
    return session.scalars(select(User).where(User.email == email)).one()


def seed_marketplace(sessions: sessionmaker[Session], settings: Settings, runtime: Runtime) -> bool:
    """Give the demo people a marketplace, once; False when it was already there."""
    from fairtrain.app import upload_context
    from fairtrain.jobs.service import run_job

    dispatched: list[str] = []
    with session_scope(sessions) as session:
        ada = _user(session, DEMO_LOGINS[0].email)
        if session.scalar(select(Asset.id).where(Asset.owner_id == ada.id).limit(1)):
            return False
        kofi = _user(session, DEMO_LOGINS[1].email)
        update_profile(session, ada.id, share_age_band=True, gender="woman", accent=None,
                       share_region=True, languages=["en", "de"])  # fmt: skip
        update_profile(session, kofi.id, share_age_band=True, gender="man", accent="Ghanaian",
                       share_region=True, languages=["en"])  # fmt: skip
        context = upload_context(settings, runtime, dispatched.append)
        uploaded: list[tuple[str, _Upload]] = []
        for item in _uploads():
            owner = _user(session, item.owner)
            received = receive_upload(
                session, context, owner_id=owner.id, chunks=[item.data], display_name=item.name
            )
            uploaded.append((received.id, item))
    for job_id in dispatched:
        run_job(sessions, job_id, runtime)
    with session_scope(sessions) as session:
        for asset_id, item in uploaded:
            asset = session.get(Asset, asset_id)
            assert asset is not None
            if asset.state != AssetState.AWAITING_REVIEW:
                continue  # processing refused it: the demo goes on without it
            actor = f"user:{asset.owner_id}"
            consent.set_policy(session, settings, asset, actor=actor, **item.terms)
            approve_asset(session, asset, actor=actor)
        _licensed_dataset(session, settings)
    return True


def _licensed_dataset(session: Session, settings: Settings) -> None:
    buyer = _user(session, DEMO_LOGINS[2].email)
    operator = _user(session, DEMO_LOGINS[3].email)
    membership = session.scalars(select(Membership).where(Membership.user_id == buyer.id)).one()
    org_id = membership.org_id
    actor = f"user:{buyer.id}"
    campaigns.create_campaign(
        session, settings, org_id=org_id, created_by=actor, actor=actor,
        title="Photos of shop signs in daylight",
        description="Clear photos of shop signs and street names, any city, for a model "
        "that reads signs aloud to people with low vision.",
        modality="image", language=None, purpose="fine_tuning", territory="NL",
        term_days=365, currency="EUR", price_per_unit_minor=300, target_units=50,
        targets=None, deadline=utcnow() + timedelta(days=60),
    )  # fmt: skip
    dataset = datasets.create_dataset(
        session, settings, org_id=org_id, actor=actor, name="Everyday photos",
        description="Everyday scenes to fine-tune an image captioning model.",
        purpose="fine_tuning", territory="NL", term_days=365, currency="EUR",
        query=CatalogQuery(modalities=("image",)),
    )  # fmt: skip
    version = datasets.build_version(session, settings, dataset, actor=actor).version
    if version.item_count == 0:
        return
    quote = licensing.quote_version(
        session, settings, org_id=org_id, version_id=version.id, actor=actor
    )
    order, _ = licensing.place_order(
        session, settings, quote_id=quote.id, org_id=org_id,
        idempotency_key=f"demo-{quote.id}", actor=actor,
    )  # fmt: skip
    licensing.confirm_payment(
        session, settings, order_id=order.id, reference=order.invoice_number,
        actor=f"user:{operator.id}",
    )  # fmt: skip
