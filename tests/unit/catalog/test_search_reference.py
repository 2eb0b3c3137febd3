"""``catalog.search`` — facet margins, the facet cube or the entries for the counts, the
page's ids from an index-only subquery — answers exactly what a straightforward
reference computes over every entry in Python: the same items in the same order on
every page, the same totals and facet counts (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from tests.unit.catalog.test_facets import _listed, _owner

from fairtrain.catalog import service as catalog
from fairtrain.catalog.models import CatalogEntry, CatalogFacetMargin
from fairtrain.config import Settings
from fairtrain.consent.fit import LicenceAsk
from fairtrain.ids import utcnow

SORT_KEYS: dict[str, tuple[Any, bool]] = {
    "newest": (lambda e: e.listed_at, True),
    "oldest": (lambda e: e.listed_at, False),
    "longest": (lambda e: -1.0 if e.duration_seconds is None else e.duration_seconds, True),
    "shortest": (lambda e: 1e18 if e.duration_seconds is None else e.duration_seconds, False),
    "cheapest": (lambda e: e.price_minor or 0, False),
}


def _shown(value: str | None) -> str:
    return catalog.NOT_SHARED if value is None else value


def _matches(
    db: Session, settings: Settings, entry: CatalogEntry, query: catalog.CatalogQuery
) -> bool:
    if query.modalities and entry.modality not in query.modalities:
        return False
    if query.languages and entry.language not in query.languages:
        return False
    for wanted, value in (
        (query.age_bands, entry.age_band),
        (query.genders, entry.gender),
        (query.regions, entry.region),
    ):
        if wanted and _shown(value) not in wanted:
            return False
    if query.quality_ok is not None and entry.quality_ok is not query.quality_ok:
        return False
    if query.min_duration is not None and not (
        entry.duration_seconds is not None and entry.duration_seconds >= query.min_duration
    ):
        return False
    return query.licence is None or catalog.decide(db, settings, entry, query.licence).ok


def _reference(
    db: Session, settings: Settings, entries: list[CatalogEntry], query: catalog.CatalogQuery
) -> tuple[list[str], int, dict[str, dict[str, int]], float]:
    found = [e for e in entries if _matches(db, settings, e, query)]
    key, descending = SORT_KEYS[query.sort]
    found.sort(key=lambda e: (key(e), e.asset_id), reverse=descending)
    counts: dict[str, Counter[str]] = {name: Counter() for name in catalog.FACETS}
    for entry in found:
        for name in catalog.FACETS:
            counts[name][_shown(getattr(entry, name))] += 1
    seconds = round(sum(e.duration_seconds or 0.0 for e in found), 3)
    facets = {name: dict(sorted(c.items())) for name, c in counts.items()}
    return [e.asset_id for e in found], len(found), facets, seconds


def _every_page(
    db: Session, settings: Settings, query: catalog.CatalogQuery, limit: int
) -> tuple[list[str], list[catalog.SearchPage]]:
    ids: list[str] = []
    pages = [catalog.search(db, settings, query, limit=limit)]
    ids += [entry.asset_id for entry, _ in pages[-1].items]
    while pages[-1].next_cursor is not None:
        cursor = pages[-1].next_cursor
        pages.append(catalog.search(db, settings, query, limit=limit, cursor=cursor))
        ids += [entry.asset_id for entry, _ in pages[-1].items]
    return ids, pages


def test_search_answers_what_a_reference_over_every_entry_answers(
    db: Session, settings: Settings
) -> None:
    rng = random.Random(20261202)
    owners = [_owner(db, index) for index in range(5)]
    for _ in range(70):
        _listed(db, settings, rng, rng.choice(owners))
    # Ties in every sort order, broken by the asset id.
    ids = list(db.scalars(select(CatalogEntry.asset_id)))
    moment = utcnow() - timedelta(days=3)
    db.execute(
        update(CatalogEntry)
        .where(CatalogEntry.asset_id.in_(rng.sample(ids, 15)))
        .values(listed_at=moment)
    )
    db.flush()
    db.expire_all()
    assert catalog.check_facets(db) == []
    entries = list(db.scalars(select(CatalogEntry)))
    now = utcnow()
    shapes = Counter[str]()
    for _ in range(60):
        demographic = rng.random() < 0.4
        query = catalog.CatalogQuery(
            modalities=tuple(rng.sample(["audio", "image", "chat", "video"], rng.randint(0, 2))),
            languages=tuple(rng.sample(["en", "de", "fr"], rng.randint(0, 1))),
            age_bands=tuple(rng.sample(["18-24", "25-34", "35-44", "45-54", "55-64", "65+",
                                        catalog.NOT_SHARED], rng.randint(1, 3)))
            if demographic else (),
            genders=tuple(rng.sample(["woman", "man", catalog.NOT_SHARED], rng.randint(1, 2)))
            if demographic and rng.random() < 0.5 else (),
            quality_ok=rng.choice([None, None, True, False]),
            min_duration=rng.choice([None, None, None, 30.0]),
            licence=rng.choice([None, LicenceAsk(rng.choice(["fine_tuning", "speech_recognition",
                                "academic_research"]), rng.choice(["DE", "US"]),
                                rng.choice([30, 365]), rng.choice(["EUR", None]), now)]),
            sort=rng.choice(catalog.SORTS),
        )  # fmt: skip
        shapes[
            "entries" if query.min_duration is not None else "cube" if demographic else "margins"
        ] += 1
        expected_ids, total, facets, seconds = _reference(db, settings, entries, query)
        got_ids, pages = _every_page(db, settings, query, limit=rng.choice([3, 7, 50]))
        assert got_ids == expected_ids, query
        for page in pages:
            assert (page.total, page.facets) == (total, facets), query
            assert abs(page.total_duration_seconds - seconds) < 0.0015, query
    # Every way of counting was exercised.
    assert min(shapes.values()) >= 5 and len(shapes) == 3, shapes


def test_a_broken_margin_is_reported_and_rebuilt(db: Session, settings: Settings) -> None:
    rng = random.Random(9)
    owner = _owner(db, 2)
    for _ in range(6):
        _listed(db, settings, rng, owner)
    margin = db.scalars(select(CatalogFacetMargin)).first()
    assert margin is not None
    margin.duration_ms += 250
    db.flush()
    [mismatch] = catalog.check_facets(db)
    assert mismatch.table == "catalog_facet_margins"
    assert mismatch.counted_ms == mismatch.expected_ms + 250
    assert mismatch.values["dimension"] == margin.dimension
    catalog.rebuild_facets(db)
    assert catalog.check_facets(db) == []
