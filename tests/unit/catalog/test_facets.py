"""The maintained facet counts (catalog_facets) stay equal to a count over the entries
after random listings, new terms, profile changes, withdrawals and erasures, and
searches answered from them give the same facets as counting the entries themselves
(SQLite and PostgreSQL)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from tests.unit.catalog.test_licence_filter import _terms

from fairtrain.accounts import profile as profiles
from fairtrain.accounts import service as accounts
from fairtrain.accounts.models import User
from fairtrain.accounts.passwords import PasswordPolicy
from fairtrain.catalog import service as catalog
from fairtrain.catalog.models import CatalogEntry, CatalogFacet
from fairtrain.config import Settings
from fairtrain.consent import service as consent
from fairtrain.consent.fit import LicenceAsk, compiled_fit
from fairtrain.ids import new_id, utcnow
from fairtrain.ingest.models import Asset, AssetState
from fairtrain.ingest.service import set_state

KINDS = [("audio", "en"), ("audio", "de"), ("image", None), ("chat", "fr"), ("video", "en")]


def _owner(db: Session, index: int) -> User:
    cheap = PasswordPolicy(time_cost=1, memory_kib=1024, parallelism=1)
    return accounts.register_contributor(
        db, cheap, email=f"{new_id('f')}@example.org", password="quartz-lantern-orbit-meadow-41",
        display_name=f"Facet Owner {index}", date_of_birth=date(1960 + 9 * index, 3, 1),
        adult_attestation=True, jurisdiction="US",
    )  # fmt: skip


def _listed(db: Session, settings: Settings, rng: random.Random, owner: User) -> Asset:
    modality, language = rng.choice(KINDS)
    now = utcnow()
    asset = Asset(
        id=new_id("ast"), owner_id=owner.id, state=AssetState.UPLOADED, modality=modality,
        media_type="application/octet-stream", display_name="x.bin", size_bytes=10,
        sha256=new_id("h").ljust(64, "0")[:64], media_info={}, language=language,
        duration_seconds=round(rng.uniform(1, 90), rng.choice([0, 3, 6]))
        if modality in ("audio", "video") else None,
        quality={"snr_db": {"value": 20.0, "ok": rng.random() < 0.8}}, privacy_report={},
        created_at=now, updated_at=now,
    )  # fmt: skip
    db.add(asset)
    db.flush()
    for state in (AssetState.PROCESSING, AssetState.AWAITING_REVIEW):
        set_state(db, asset, state, actor="system")
    consent.set_policy(db, settings, asset, actor="system", document=_terms(rng))
    set_state(db, asset, AssetState.LISTED, actor="system")
    return asset


def _brute_force(
    entries: list[CatalogEntry], query: catalog.CatalogQuery
) -> tuple[int, dict[str, dict[str, int]]]:
    counts: dict[str, Counter[str]] = {name: Counter() for name in catalog.FACETS}
    total = 0
    for entry in entries:
        if query.modalities and entry.modality not in query.modalities:
            continue
        if query.languages and entry.language not in query.languages:
            continue
        if query.genders and (entry.gender or catalog.NOT_SHARED) not in query.genders:
            continue
        if query.quality_ok is not None and entry.quality_ok is not query.quality_ok:
            continue
        if query.licence is not None and not (
            entry.exact and compiled_fit(catalog.entry_terms(entry), query.licence).ok
        ):
            continue
        total += 1
        for name in catalog.FACETS:
            counts[name][getattr(entry, name) or catalog.NOT_SHARED] += 1
    return total, {name: dict(sorted(c.items())) for name, c in counts.items()}


def test_facet_counts_stay_exact_through_random_changes(db: Session, settings: Settings) -> None:
    rng = random.Random(20261202)
    owners = [_owner(db, index) for index in range(5)]
    assets = [_listed(db, settings, rng, rng.choice(owners)) for _ in range(40)]
    assert catalog.check_facets(db) == []
    for step in range(60):
        action = rng.randrange(5)
        asset = rng.choice(assets)
        state = AssetState(asset.state)
        if action == 0:
            assets.append(_listed(db, settings, rng, rng.choice(owners)))
        elif action == 1 and state == AssetState.LISTED:
            consent.set_policy(db, settings, asset, actor="system", document=_terms(rng))
        elif action == 2:
            owner = rng.choice(owners)
            profiles.update_profile(
                db, owner.id, share_age_band=rng.random() < 0.5,
                gender=rng.choice(["woman", "man", None]), accent=None,
                share_region=rng.random() < 0.5, languages=[],
            )  # fmt: skip
        elif action == 3 and state == AssetState.LISTED:
            set_state(db, asset, AssetState.WITHDRAWN, actor="system")
        elif action == 4 and state in (AssetState.LISTED, AssetState.WITHDRAWN):
            set_state(db, asset, AssetState.ERASED, actor="system")
        if step % 10 == 9:
            assert catalog.check_facets(db) == [], step
    # A missed sync (an asset changed behind the catalogue's back) is dropped by refresh.
    stale = next(a for a in assets if AssetState(a.state) == AssetState.LISTED)
    db.execute(update(Asset).where(Asset.id == stale.id).values(state=AssetState.REJECTED))
    db.expire_all()
    catalog.refresh_entries(db)
    assert db.get(CatalogEntry, stale.id) is None
    assert catalog.check_facets(db) == []

    entries = list(db.scalars(select(CatalogEntry)))
    assert sum(db.scalars(select(CatalogFacet.entries))) == len(entries) > 20
    now = utcnow()
    for _ in range(40):
        query = catalog.CatalogQuery(
            modalities=tuple(rng.sample(["audio", "image", "chat", "video"], rng.randint(0, 2))),
            languages=tuple(rng.sample(["en", "de", "fr"], rng.randint(0, 2))),
            genders=tuple(rng.sample(["woman", "man", catalog.NOT_SHARED], rng.randint(0, 2))),
            quality_ok=rng.choice([None, True, False]),
            licence=rng.choice([None, LicenceAsk(rng.choice(["fine_tuning", "speech_recognition",
                                "academic_research"]), rng.choice(["DE", "US"]),
                                rng.choice([30, 365]), rng.choice(["EUR", None]), now)]),
        )  # fmt: skip
        page = catalog.search(db, settings, query, limit=5)
        assert (page.total, page.facets) == _brute_force(entries, query), query
        seconds = sum(
            e.duration_seconds or 0.0 for e in entries if _brute_force([e], query)[0] == 1
        )
        assert abs(page.total_duration_seconds - seconds) < 0.01


def test_a_broken_count_is_reported_and_rebuilt(db: Session, settings: Settings) -> None:
    rng = random.Random(5)
    owner = _owner(db, 1)
    for _ in range(6):
        _listed(db, settings, rng, owner)
    cell = db.scalars(select(CatalogFacet)).first()
    assert cell is not None
    cell.entries += 3
    db.flush()
    [mismatch] = catalog.check_facets(db)
    assert mismatch.counted_entries == mismatch.expected_entries + 3
    assert catalog.rebuild_facets(db) >= 1
    assert catalog.check_facets(db) == []
