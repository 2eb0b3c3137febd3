"""The catalogue's SQL licence filter decides exactly like ``consent.fit.compiled_fit``
on every exact policy, on SQLite and PostgreSQL (random terms, random asks)."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from fairtrain.accounts import service as accounts
from fairtrain.accounts.passwords import PasswordPolicy
from fairtrain.catalog.models import CatalogEntry
from fairtrain.catalog.service import entry_terms, licence_filter
from fairtrain.config import Settings
from fairtrain.consent import purposes
from fairtrain.consent import service as consent
from fairtrain.consent.fit import LicenceAsk, compiled_fit
from fairtrain.consent.odrl import Constraint, Policy, Rule, serialise_policy
from fairtrain.ids import new_id, utcnow
from fairtrain.ingest.models import Asset, AssetState
from fairtrain.ingest.service import set_state

KEYS = sorted(purposes.PURPOSES)
PLACES = ["DE", "FR", "US", "EU", "EEA", "JP"]


def _terms(rng: random.Random) -> dict[str, object]:
    allowed = rng.sample(KEYS, rng.randint(1, 3))
    constraints: list[Constraint] = [Constraint("purpose", "isAnyOf", tuple(allowed))]
    if rng.random() < 0.5:
        constraints.append(Constraint("spatial", "isAnyOf", tuple(rng.sample(PLACES, 2))))
    if rng.random() < 0.5:
        constraints.append(
            Constraint("elapsedTime", "lteq", (Decimal(rng.choice([90, 365, 730])),))
        )
    if rng.random() < 0.4:
        ends = utcnow() + timedelta(days=rng.randint(30, 900))
        constraints.append(Constraint("dateTime", "lt", (ends,)))
    currency = rng.choice(["EUR", "USD"])
    pay = Rule("u#d", "duty", ("compensate",), None, None,
               (Constraint("payAmount", "eq", (Decimal(rng.randint(1, 900)).scaleb(-2),),
                           currency),))  # fmt: skip
    permission = Rule("u#p", "permission", ("use",), None, None, tuple(constraints), (pay,))
    # Not the very purposes permitted: contradictory terms are refused at write.
    banned = rng.sample([k for k in KEYS if k not in allowed], rng.randint(0, 2))
    prohibitions = (
        (Rule("u#x", "prohibition", ("use",), None, None,
              (Constraint("purpose", "isAnyOf", tuple(banned)),)),)
        if banned else ()
    )  # fmt: skip
    return serialise_policy(Policy("https://x/p", "Set", (permission,), prohibitions))


def test_sql_and_python_agree(db: Session, settings: Settings) -> None:
    rng = random.Random(20261201)
    cheap = PasswordPolicy(time_cost=1, memory_kib=1024, parallelism=1)
    owner = accounts.register_contributor(
        db, cheap, email=f"{new_id('x')}@example.org", password="quartz-lantern-orbit-meadow-41",
        display_name="Filter Owner", date_of_birth=date(1990, 1, 1), adult_attestation=True,
        jurisdiction="US",
    )  # fmt: skip
    now = utcnow()
    for index in range(60):
        asset = Asset(
            id=new_id("ast"), owner_id=owner.id, state=AssetState.UPLOADED, modality="image",
            media_type="image/png", display_name=f"{index}.png", size_bytes=10,
            sha256=f"{index:064x}", media_info={}, quality={}, privacy_report={},
            created_at=now, updated_at=now,
        )  # fmt: skip
        db.add(asset)
        db.flush()
        set_state(db, asset, AssetState.PROCESSING, actor="system")
        set_state(db, asset, AssetState.AWAITING_REVIEW, actor="system")
        consent.set_policy(db, settings, asset, actor="system", document=_terms(rng))
        set_state(db, asset, AssetState.LISTED, actor="system")
    entries = list(db.scalars(select(CatalogEntry).where(CatalogEntry.exact.is_(True))))
    assert len(entries) == 60
    for _ in range(150):
        ask = LicenceAsk(
            purpose=rng.choice(KEYS),
            territory=rng.choice(["DE", "FR", "US", "NO", "JP"]),
            term_days=rng.choice([30, 200, 365, 500]),
            currency=rng.choice(["EUR", "USD", None]),
            start=now,
        )
        in_sql = set(
            db.scalars(
                select(CatalogEntry.asset_id).where(
                    CatalogEntry.exact.is_(True), licence_filter(ask)
                )
            )
        )
        in_python = {e.asset_id for e in entries if compiled_fit(entry_terms(e), ask).ok}
        assert in_sql == in_python, ask
