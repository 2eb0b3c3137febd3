"""The catalogue: keeping one row per listed asset in step, and searching it.

Buyers see what they may filter and balance on — kind of data, language, duration,
quality, generalised demographics as *aggregate* facet counts — and each item's terms,
never the media, the owner or the owner's demographics per item. A search can ask for
licence compatibility (purpose, territory, term, currency): the compiled terms decide in
SQL for every exact policy; the few others are decided by the full evaluator
(``consent.fit``), so the answer is the same either way.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    and_,
    cast,
    delete,
    func,
    insert,
    not_,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from fairtrain.accounts.demographics import demographics_of
from fairtrain.accounts.models import ContributorProfile, User
from fairtrain.catalog.models import (
    FACET_CELL,
    FACET_MARGIN,
    FACET_MARGIN_DIMENSIONS,
    CatalogEntry,
    CatalogFacet,
    CatalogFacetMargin,
)
from fairtrain.config import Settings
from fairtrain.consent import purposes
from fairtrain.consent.fit import Fit, LicenceAsk, TermsSummary, compiled_fit, policy_fit
from fairtrain.consent.models import AssetPolicy
from fairtrain.consent.odrl import Policy, parse_policy
from fairtrain.consent.receipts import ConsentStatus
from fairtrain.errors import InvalidInput
from fairtrain.ids import utcnow
from fairtrain.ingest.models import Asset, AssetState
from fairtrain.iris import asset_iri, org_iri
from fairtrain.ledger.royalties import contribution_units
from fairtrain.money import to_major
from fairtrain.withdrawal.models import WithdrawnScope

__all__ = [
    "FACETS",
    "SORTS",
    "CatalogQuery",
    "FacetMismatch",
    "SearchPage",
    "candidates",
    "check_facets",
    "decide",
    "entry_terms",
    "licence_filter",
    "policy_for",
    "rebuild_facets",
    "refresh_entries",
    "remove_entry",
    "search",
    "sync_entry",
    "sync_owner",
    "units_of",
    "withheld_scopes",
]

FACETS = ("modality", "language", "age_band", "gender", "region")
EXPIRED = ConsentStatus.EXPIRED.value
NOT_SHARED = "not_shared"  # the facet value for a demographic the contributor keeps private
SORTS = ("newest", "oldest", "longest", "shortest", "cheapest")
MAX_PAGE = 200


# -- keeping the catalogue in step ------------------------------------------------------


def _quality_value(asset: Asset, key: str) -> float | None:
    score = (asset.quality or {}).get(key)
    if isinstance(score, dict) and isinstance(score.get("value"), int | float):
        return float(score["value"])
    return None


def _quality_ok(asset: Asset) -> bool:
    return all(
        bool(score.get("ok", True))
        for score in (asset.quality or {}).values()
        if isinstance(score, dict)
    )


def _count(info: dict[str, Any], key: str) -> int | None:
    value = info.get(key)
    return int(value) if isinstance(value, int) else None


# -- facet counts kept in step (catalog_facets) -----------------------------------------


def _cell_of(values: Sequence[Any]) -> str:
    """The digest naming one combination of :data:`FACET_CELL` values."""
    plain = [
        value.astimezone(UTC).isoformat() if isinstance(value, datetime) else value
        for value in values
    ]
    return hashlib.sha256(json.dumps(plain, separators=(",", ":")).encode()).hexdigest()


def _cell_values(entry: CatalogEntry) -> tuple[Any, ...]:
    return (
        *(getattr(entry, name) for name in FACET_CELL[:-1]),
        entry.price_minor is not None,
    )


def _duration_ms(seconds: float | None) -> int:
    # Truncating x * 1000 + 0.5: the same IEEE arithmetic as :func:`_ms_sql` on both
    # engines (durations are never negative).
    return int((seconds or 0.0) * 1000 + 0.5)


def _margins_of(values: Sequence[Any]) -> list[dict[str, Any]]:
    """The margin cells (one per demographic) an entry of cube cell ``values`` counts in."""
    named = dict(zip(FACET_CELL, values, strict=True))
    rest = {name: named[name] for name in FACET_MARGIN}
    return [
        {"dimension": dimension, "value": named[dimension], **rest}
        for dimension in FACET_MARGIN_DIMENSIONS
    ]


def _margin_cell_of(key: dict[str, Any]) -> str:
    return _cell_of([key["dimension"], key["value"], *(key[name] for name in FACET_MARGIN)])


def _add_count(
    session: Session,
    table: type[CatalogFacet] | type[CatalogFacetMargin],
    cell: str,
    key: dict[str, Any],
    entries: int,
    ms: int,
) -> None:
    dialect = session.get_bind().dialect.name
    upsert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = upsert(table).values(cell=cell, **key, entries=entries, duration_ms=ms)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[table.cell],
            set_={"entries": table.entries + entries, "duration_ms": table.duration_ms + ms},
        )
    )
    if entries < 0:
        session.execute(delete(table).where(table.cell == cell, table.entries == 0))


def _count_in_facets(session: Session, *moves: tuple[tuple[Any, ...], int, int]) -> None:
    """Add (sign 1) or remove (sign -1) entries, each ``(cell values, ms, sign)``, to
    their cells and margins, atomically.

    An upsert with ``entries = entries + 1``: two transactions counting into the same
    cell queue on its row lock instead of losing a count. The moves are netted first (an
    entry whose region changed leaves its age band and gender margins as they were) and
    the rows written in one global order, so two single-entry changes never wait for
    each other's rows in opposite orders (a deadlock).
    """
    deltas: dict[tuple[str, str], tuple[Any, dict[str, Any], int, int]] = {}
    for values, ms, sign in moves:
        counted: list[tuple[Any, str, dict[str, Any]]] = [
            (CatalogFacet, _cell_of(values), dict(zip(FACET_CELL, values, strict=True)))
        ]
        counted += [(CatalogFacetMargin, _margin_cell_of(m), m) for m in _margins_of(values)]
        for table, cell, key in counted:
            name = (table.__tablename__, cell)
            _, _, entries, total_ms = deltas.get(name, (table, key, 0, 0))
            deltas[name] = (table, key, entries + sign, total_ms + sign * ms)
    for (_, cell), (table, key, entries, ms) in sorted(deltas.items(), key=lambda d: d[0]):
        if entries or ms:
            _add_count(session, table, cell, key, entries, ms)


def remove_entry(session: Session, entry: CatalogEntry) -> None:
    """Take an entry out of the catalogue and out of its facet counts."""
    _count_in_facets(session, (_cell_values(entry), _duration_ms(entry.duration_seconds), -1))
    session.delete(entry)
    session.flush()


def _grouped_entries(session: Session) -> dict[str, tuple[tuple[Any, ...], int, int]]:
    """The facet table as it should be, counted from the entries themselves."""
    columns = [getattr(CatalogEntry, name) for name in FACET_CELL[:-1]]
    priced = CatalogEntry.price_minor.is_not(None)
    ms = _ms_sql(session.get_bind().dialect.name)
    rows = session.execute(
        select(*columns, priced, func.count(), func.coalesce(func.sum(ms), 0)).group_by(
            *columns, priced
        )
    )
    expected: dict[str, tuple[tuple[Any, ...], int, int]] = {}
    for row in rows:
        *values, number, ms = row
        key = (*values[:-1], bool(values[-1]))
        cell = _cell_of(key)
        _, before_n, before_ms = expected.get(cell, (key, 0, 0))
        expected[cell] = (key, before_n + int(number), before_ms + int(ms))
    return expected


def _ms_sql(dialect: str) -> ColumnElement[Any]:
    """Each entry's milliseconds as :func:`_duration_ms` computes them (PostgreSQL's cast
    to an integer rounds, SQLite's truncates)."""
    shifted = func.coalesce(CatalogEntry.duration_seconds, 0.0) * 1000 + 0.5
    if dialect == "postgresql":
        return cast(func.floor(shifted), BigInteger)
    return cast(shifted, Integer)


@dataclass(frozen=True, slots=True)
class FacetMismatch:
    cell: str
    values: dict[str, Any]
    expected_entries: int
    counted_entries: int
    expected_ms: int
    counted_ms: int
    table: str = CatalogFacet.__tablename__


def _expected_margins(
    cube: dict[str, tuple[tuple[Any, ...], int, int]],
) -> dict[str, tuple[dict[str, Any], int, int]]:
    """The margin table as it should be: the expected cube summed per demographic."""
    expected: dict[str, tuple[dict[str, Any], int, int]] = {}
    for values, entries, ms in cube.values():
        for key in _margins_of(values):
            cell = _margin_cell_of(key)
            _, before_n, before_ms = expected.get(cell, (key, 0, 0))
            expected[cell] = (key, before_n + entries, before_ms + ms)
    return expected


def check_facets(session: Session) -> list[FacetMismatch]:
    """Every cell whose maintained count differs from a count over the entries."""
    expected = _grouped_entries(session)
    kept = {row.cell: row for row in session.scalars(select(CatalogFacet))}
    mismatches = _margin_mismatches(session, _expected_margins(expected))
    for cell in sorted(set(expected) | set(kept)):
        values, entries, ms = expected.get(cell, ((), 0, 0))
        row = kept.get(cell)
        counted, counted_ms = (row.entries, row.duration_ms) if row is not None else (0, 0)
        if (entries, ms) != (counted, counted_ms):
            shown = (
                dict(zip(FACET_CELL, values, strict=True))
                if values
                else {name: getattr(row, name) for name in FACET_CELL}
            )
            mismatches.append(FacetMismatch(cell, shown, entries, counted, ms, counted_ms))
    return mismatches


def _margin_mismatches(
    session: Session, expected: dict[str, tuple[dict[str, Any], int, int]]
) -> list[FacetMismatch]:
    kept = {row.cell: row for row in session.scalars(select(CatalogFacetMargin))}
    names = ("dimension", "value", *FACET_MARGIN)
    mismatches = []
    for cell in sorted(set(expected) | set(kept)):
        key, entries, ms = expected.get(cell, ({}, 0, 0))
        row = kept.get(cell)
        counted, counted_ms = (row.entries, row.duration_ms) if row is not None else (0, 0)
        if (entries, ms) != (counted, counted_ms):
            shown = key or {name: getattr(row, name) for name in names}
            mismatches.append(
                FacetMismatch(
                    cell, shown, entries, counted, ms, counted_ms,
                    table=CatalogFacetMargin.__tablename__,
                )
            )  # fmt: skip
    return mismatches


def rebuild_facets(session: Session) -> int:
    """Recount the facet cube and its margins from the entries (after a bulk load, or to
    repair them); the number of cells written to both."""
    session.execute(delete(CatalogFacet))
    session.execute(delete(CatalogFacetMargin))
    expected = _grouped_entries(session)
    cells = [
        {**dict(zip(FACET_CELL, values, strict=True)), "cell": cell}
        | {"entries": n, "duration_ms": ms}
        for cell, (values, n, ms) in expected.items()
    ]
    margins = [
        {**key, "cell": cell, "entries": n, "duration_ms": ms}
        for cell, (key, n, ms) in _expected_margins(expected).items()
    ]
    for table, rows in ((CatalogFacet, cells), (CatalogFacetMargin, margins)):
        for start in range(0, len(rows), 1000):
            session.execute(insert(table), rows[start : start + 1000])
    session.flush()
    return len(cells) + len(margins)


def sync_entry(session: Session, asset: Asset, *, today: date | None = None) -> CatalogEntry | None:
    """Make the catalogue say what the asset is now: listed with its current terms, or
    absent (not listed, or its terms expired).

    Called in the same transaction as every change the catalogue mirrors; the entry's
    facet count moves with it.
    """
    existing = session.get(CatalogEntry, asset.id)
    record = session.scalars(
        select(AssetPolicy).where(
            AssetPolicy.asset_id == asset.id, AssetPolicy.superseded_at.is_(None)
        )
    ).first()
    if (
        AssetState(asset.state) != AssetState.LISTED
        or record is None
        or record.status == EXPIRED  # consent ended: offered for no new licence
        or asset.modality is None
    ):
        if existing is not None:
            remove_entry(session, existing)
        return None
    before = (
        (_cell_values(existing), _duration_ms(existing.duration_seconds))
        if existing is not None
        else None
    )
    owner = session.get(User, asset.owner_id)
    assert owner is not None
    shown = demographics_of(
        owner, session.get(ContributorProfile, owner.id), today or utcnow().date()
    )
    entry = existing or CatalogEntry(asset_id=asset.id)
    info = asset.media_info or {}
    entry.owner_id = asset.owner_id
    entry.modality = asset.modality
    entry.media_type = asset.redacted_media_type or asset.media_type
    entry.language = asset.language
    entry.duration_seconds = asset.duration_seconds
    entry.messages = _count(info, "messages")
    entry.pages = _count(info, "pages")
    entry.speech_share = _quality_value(asset, "speech_share")
    entry.snr_db = _quality_value(asset, "snr_db")
    entry.sharpness = _quality_value(asset, "sharpness")
    entry.quality_ok = _quality_ok(asset)
    entry.age_band = shown.age_band
    entry.gender = shown.gender
    entry.accent = shown.accent
    entry.region = shown.region
    entry.policy_id = record.id
    entry.permit_mask = record.permit_mask
    entry.ban_mask = record.ban_mask
    entry.territories = record.territories
    entry.not_after = record.not_after
    entry.term_days = record.term_days
    entry.price_minor = record.price_minor
    entry.currency = record.currency
    entry.exclusive = record.exclusive
    entry.exact = record.exact
    entry.rules = list(record.rules or [])
    withheld = withheld_scopes(session, asset.id)
    entry.withheld = [[org, mask] for org, mask in withheld]
    # Withdrawn from every buyer for some purposes: as if the terms prohibited them, so
    # the compiled search filter leaves the asset out as well.
    for org, mask in withheld:
        if org is None:
            entry.ban_mask |= mask
            entry.rules.append(["withdrawal", "prohibition", mask])
    entry.listed_at = asset.listed_at or utcnow()
    entry.synced_at = utcnow()
    if existing is None:
        session.add(entry)
    after = (_cell_values(entry), _duration_ms(entry.duration_seconds))
    if before != after:
        moves = [] if before is None else [(*before, -1)]
        _count_in_facets(session, *moves, (*after, 1))
    session.flush()
    return entry


def sync_owner(session: Session, owner_id: str) -> int:
    """Re-derive every listed asset of one contributor (their profile changed)."""
    assets = session.scalars(
        select(Asset).where(Asset.owner_id == owner_id, Asset.state == AssetState.LISTED)
    )
    return sum(1 for asset in assets if sync_entry(session, asset) is not None)


def refresh_entries(session: Session, *, today: date | None = None, batch: int = 1000) -> int:
    """Re-derive every entry (age bands move with birthdays): run daily, e.g. from cron."""
    done = 0
    after = ""
    while True:
        assets = list(
            session.scalars(
                select(Asset)
                .where(Asset.state == AssetState.LISTED, Asset.id > after)
                .order_by(Asset.id)
                .limit(batch)
            )
        )
        if not assets:
            break
        for asset in assets:
            if sync_entry(session, asset, today=today) is not None:
                done += 1
        after = assets[-1].id
    # Entries whose asset is no longer listed (a missed sync) are dropped.
    stale = session.scalars(
        select(CatalogEntry).where(
            CatalogEntry.asset_id.not_in(select(Asset.id).where(Asset.state == AssetState.LISTED))
        )
    )
    for entry in list(stale):
        remove_entry(session, entry)
    return done


# -- contribution -----------------------------------------------------------------------

# How much of a dataset an asset is, by kind: what royalties are split by and campaigns
# price per — the ledger's contribution units, configured per modality in settings.


def units_of(settings: Settings, entry: CatalogEntry) -> float:
    """The asset's contribution in its modality's unit (``settings.contribution_units``);
    a missing measure counts as nothing (a recording) or one (messages, pages)."""
    return float(
        contribution_units(
            entry.modality,
            entry.duration_seconds or 0.0,
            entry.messages or 1,
            entry.pages or 1,
            units=settings.contribution_units,
        ).quantize(Decimal("0.000001"))
    )


# -- terms ------------------------------------------------------------------------------


def entry_terms(entry: CatalogEntry) -> TermsSummary:
    return TermsSummary(
        permit_mask=entry.permit_mask,
        ban_mask=entry.ban_mask,
        territories=entry.territories,
        not_after=entry.not_after,
        term_days=entry.term_days,
        price_minor=entry.price_minor,
        currency=entry.currency,
        rules=tuple((str(p), str(k), int(m)) for p, k, m in entry.rules or ()),
    )


@lru_cache(maxsize=4096)
def _parsed(document: str) -> Policy:
    return parse_policy(json.loads(document))


def policy_for(session: Session, policy_id: str) -> Policy:
    """A policy version as ODRL (versions never change, so parsing is cached)."""
    record = session.get(AssetPolicy, policy_id)
    assert record is not None, policy_id
    return _parsed(json.dumps(record.document, sort_keys=True))


def withheld_scopes(session: Session, asset_id: str) -> list[tuple[str | None, int]]:
    """What the contributor withdrew from this asset short of the whole of it: (buyer
    organisation or None for every buyer, mask of the purposes, closed downwards)."""
    rows = session.execute(
        select(WithdrawnScope.org_id, WithdrawnScope.purpose).where(
            WithdrawnScope.asset_id == asset_id
        )
    )
    masks: dict[str | None, int] = {}
    for org, purpose in rows:
        mask = purposes.mask_of(purposes.descendants(purpose or "any"))
        masks[org] = masks.get(org, 0) | mask
    return sorted(masks.items(), key=lambda pair: pair[0] or "")


def _withdrawn_fit(settings: Settings, entry: CatalogEntry, ask: LicenceAsk) -> Fit | None:
    wanted = purposes.mask_of(purposes.descendants(ask.purpose))
    for org, mask in entry.withheld or ():
        if not int(mask) & wanted:
            continue
        if org is None or (ask.assignee is not None and ask.assignee == org_iri(settings, org)):
            whom = "every buyer" if org is None else "this buyer"
            return Fit(
                False,
                "withdrawn",
                f"Its owner withdrew it from {whom} for a use this licence would include.",
                "withdrawal",
            )
    return None


def decide(
    session: Session,
    settings: Settings,
    entry: CatalogEntry,
    ask: LicenceAsk,
    *,
    offered_minor: int | None = None,
) -> Fit:
    """Does this listed asset's current terms allow the licence ``ask``, and if not, why
    (code, sentence, deciding rule)?

    ``offered_minor`` is what the licence would pay for the asset (default: its asking
    price). Exact terms are decided from the compiled columns; the rest by the evaluator.
    """
    withdrawn = _withdrawn_fit(settings, entry, ask)
    if withdrawn is not None:
        return withdrawn
    if entry.exact:
        return compiled_fit(entry_terms(entry), ask, offered_minor)
    price = entry.price_minor if offered_minor is None else offered_minor
    currency = ask.currency or entry.currency
    offered = None if price is None or currency is None else to_major(price, currency)
    return policy_fit(
        policy_for(session, entry.policy_id),
        ask,
        target=asset_iri(settings, entry.asset_id),
        offered=offered,
        currency=currency,
    )


# -- searching --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CatalogQuery:
    """What a buyer filters on. Empty tuples and None mean "any"."""

    modalities: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    min_duration: float | None = None
    max_duration: float | None = None
    min_speech_share: float | None = None
    min_snr_db: float | None = None
    min_sharpness: float | None = None
    quality_ok: bool | None = None
    age_bands: tuple[str, ...] = ()
    genders: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    accents: tuple[str, ...] = ()
    max_price_minor: int | None = None
    licence: LicenceAsk | None = None
    sort: str = "newest"


def _any_of(column: Any, values: Sequence[str]) -> ColumnElement[bool]:
    """``values`` may name NOT_SHARED, meaning the contributor keeps it private."""
    named = [v for v in values if v != NOT_SHARED]
    parts: list[ColumnElement[bool]] = []
    if named:
        parts.append(column.in_(named))
    if NOT_SHARED in values:
        parts.append(column.is_(None))
    return or_(*parts)


def _base_filters(query: CatalogQuery) -> list[ColumnElement[bool]]:
    entry = CatalogEntry
    filters: list[ColumnElement[bool]] = []
    if query.modalities:
        filters.append(entry.modality.in_(query.modalities))
    if query.languages:
        filters.append(entry.language.in_(query.languages))
    if query.min_duration is not None:
        filters.append(entry.duration_seconds >= query.min_duration)
    if query.max_duration is not None:
        filters.append(entry.duration_seconds <= query.max_duration)
    if query.min_speech_share is not None:
        filters.append(entry.speech_share >= query.min_speech_share)
    if query.min_snr_db is not None:
        filters.append(entry.snr_db >= query.min_snr_db)
    if query.min_sharpness is not None:
        filters.append(entry.sharpness >= query.min_sharpness)
    if query.quality_ok is not None:
        filters.append(entry.quality_ok.is_(query.quality_ok))
    for column, values in (
        (entry.age_band, query.age_bands),
        (entry.gender, query.genders),
        (entry.region, query.regions),
        (entry.accent, query.accents),
    ):
        if values:
            filters.append(_any_of(column, values))
    if query.max_price_minor is not None:
        filters.append(or_(entry.price_minor.is_(None), entry.price_minor <= query.max_price_minor))
    return filters


_Counted = type[CatalogFacet] | type[CatalogFacetMargin]


def licence_filter(
    ask: LicenceAsk, source: type[CatalogEntry] | _Counted = CatalogEntry
) -> ColumnElement[bool]:
    """:func:`consent.fit.compiled_fit` as SQL over the compiled columns of the entries
    (or of the facet cells and margins, which carry the same columns and "has a
    price")."""
    node = purposes.PURPOSES[ask.purpose]
    wanted = purposes.mask_of(purposes.descendants(ask.purpose))
    assert 0 <= node.bit < 63 and 0 < wanted < 1 << 63  # so each ``&`` below is >= 0
    # "> 0" and "< 1" rather than "<> 0" and "= 0" (the same, as ``mask & positive`` is
    # never negative): PostgreSQL has no statistics for the expression and guesses 0.5 %
    # for an equality, so "no banned purpose" made every licence search look ~200 times
    # more selective than it is and the planner sorted a whole kind of data instead of
    # walking a sort index for the first page; for a range it guesses a third.
    clauses = [
        source.permit_mask.op("&")(1 << node.bit) > 0,
        source.ban_mask.op("&")(wanted) < 1,
        or_(source.territories.is_(None), source.territories.like(f"%,{ask.territory.upper()},%")),
        or_(source.not_after.is_(None), source.not_after >= ask.end),
        or_(source.term_days.is_(None), source.term_days >= ask.term_days),
    ]
    if ask.currency:
        unpriced = (
            CatalogEntry.price_minor.is_(None)
            if source is CatalogEntry
            else source.priced.is_(False)  # type: ignore[union-attr]
        )
        clauses.append(or_(unpriced, source.currency == ask.currency))
    return and_(*clauses)


def _matching(query: CatalogQuery) -> ColumnElement[bool]:
    """Rows that match: exact ones decided here; inexact ones kept for the evaluator."""
    filters = _base_filters(query)
    if query.licence is not None:
        filters.append(or_(and_(CatalogEntry.exact.is_(True), licence_filter(query.licence)),
                           CatalogEntry.exact.is_(False)))  # fmt: skip
    return and_(true(), *filters)


def candidates(
    session: Session, query: CatalogQuery, *, batch: int = 5000
) -> Iterator[CatalogEntry]:
    """Every entry matching the query's filters, ignoring its licence (dataset builds
    decide and explain each one themselves), in a stable order, streamed in batches."""
    after = ""
    filters = and_(true(), *_base_filters(query))
    while True:
        rows = list(
            session.scalars(
                select(CatalogEntry)
                .where(filters, CatalogEntry.asset_id > after)
                .order_by(CatalogEntry.asset_id)
                .limit(batch)
            )
        )
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1].asset_id


_SORT_COLUMNS: dict[str, tuple[Any, bool]] = {
    # sort -> (the value ordered by, descending?)
    "newest": (CatalogEntry.listed_at, True),
    "oldest": (CatalogEntry.listed_at, False),
    "longest": (CatalogEntry.longest_key, True),
    "shortest": (CatalogEntry.shortest_key, False),
    "cheapest": (CatalogEntry.cheapest_key, False),
}


def _sort_value(entry: CatalogEntry, sort: str) -> Any:
    if sort in ("newest", "oldest"):
        return entry.listed_at.isoformat()
    if sort == "longest":
        return entry.duration_seconds if entry.duration_seconds is not None else -1.0
    if sort == "shortest":
        return entry.duration_seconds if entry.duration_seconds is not None else 1e18
    return entry.price_minor or 0


def _encode_cursor(value: Any, asset_id: str) -> str:
    raw = json.dumps([value, asset_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str) -> tuple[Any, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value, asset_id = json.loads(raw)
        if not isinstance(asset_id, str):
            raise ValueError("asset id")
        if sort in ("newest", "oldest"):
            value = datetime.fromisoformat(value)
        elif not isinstance(value, int | float):
            raise ValueError("value")
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise InvalidInput(
            "This page cursor is not one the catalogue gave out.",
            code="invalid_cursor",
            pointer="/cursor",
        ) from None
    return value, asset_id


def _after(sort: str, cursor: tuple[Any, str]) -> ColumnElement[bool]:
    column, descending = _SORT_COLUMNS[sort]
    value, asset_id = cursor
    if descending:
        return or_(column < value, and_(column == value, CatalogEntry.asset_id < asset_id))
    return or_(column > value, and_(column == value, CatalogEntry.asset_id > asset_id))


def _ordered(statement: Select[Any], sort: str) -> Select[Any]:
    column, descending = _SORT_COLUMNS[sort]
    if descending:
        return statement.order_by(column.desc(), CatalogEntry.asset_id.desc())
    return statement.order_by(column.asc(), CatalogEntry.asset_id.asc())


@dataclass
class SearchPage:
    items: list[tuple[CatalogEntry, Fit | None]]
    total: int
    facets: dict[str, dict[str, int]]
    total_duration_seconds: float
    next_cursor: str | None
    evaluated_in_full: int = 0  # inexact terms the evaluator decided for this page
    notes: list[str] = field(default_factory=list)


def _facet_key(value: str | None) -> str:
    return NOT_SHARED if value is None else value


def _cell_filters(
    query: CatalogQuery, source: _Counted = CatalogFacet
) -> list[ColumnElement[bool]] | None:
    """The query's filters over the facet cells (or margins), or None when it filters on
    something they do not keep (a threshold, a price ceiling, an accent; margins: any
    demographic)."""
    if (
        query.min_duration is not None
        or query.max_duration is not None
        or query.min_speech_share is not None
        or query.min_snr_db is not None
        or query.min_sharpness is not None
        or query.max_price_minor is not None
        or query.accents
    ):
        return None
    if source is CatalogFacetMargin and (query.age_bands or query.genders or query.regions):
        return None
    filters: list[ColumnElement[bool]] = []
    if query.modalities:
        filters.append(source.modality.in_(query.modalities))
    if query.languages:
        filters.append(source.language.in_(query.languages))
    if query.quality_ok is not None:
        filters.append(source.quality_ok.is_(query.quality_ok))
    if source is CatalogFacet:
        for column, values in (
            (CatalogFacet.age_band, query.age_bands),
            (CatalogFacet.gender, query.genders),
            (CatalogFacet.region, query.regions),
        ):
            if values:
                filters.append(_any_of(column, values))
    if query.licence is not None:
        filters += [source.exact.is_(True), licence_filter(query.licence, source)]
    return filters


def _facets(
    session: Session,
    settings: Settings,
    query: CatalogQuery,
) -> tuple[int, dict[str, dict[str, int]], float]:
    """Counts per facet value over the whole result, in one grouped scan: of the facet
    margins when the query filters on no demographic, of the facet cells when its
    filters are all discrete, else of the matching entries."""
    exact_only = query.licence is not None
    margin_filters = _cell_filters(query, CatalogFacetMargin)
    cell_filters = _cell_filters(query) if margin_filters is None else None
    counts: dict[str, Counter[str]] = {name: Counter() for name in FACETS}
    total = 0
    total_ms = 0  # counted cells carry integer milliseconds: summed exactly
    seconds = 0.0
    if margin_filters is not None:
        # Each demographic's margin gives its own counts; modality, language and the
        # totals are read from one of them (each margin counts every entry once).
        margin = CatalogFacetMargin
        first = FACET_MARGIN_DIMENSIONS[0]
        rows = session.execute(
            select(
                margin.dimension,
                margin.value,
                margin.modality,
                margin.language,
                func.sum(margin.entries),
                func.sum(margin.duration_ms),
            )
            .where(and_(true(), *margin_filters))
            .group_by(margin.dimension, margin.value, margin.modality, margin.language)
        )
        for dimension, value, modality, language, number, ms in rows:
            counts[dimension][_facet_key(value)] += int(number)
            if dimension == first:
                counts["modality"][modality] += int(number)
                counts["language"][_facet_key(language)] += int(number)
                total += int(number)
                total_ms += int(ms)
    elif cell_filters is not None and session.get_bind().dialect.name == "postgresql":
        # One pass over the matching cells, one group per facet (GROUPING SETS), so the
        # answer is a few dozen rows, not every combination of facet values.
        columns = [getattr(CatalogFacet, name) for name in FACETS]
        grouped = session.execute(
            select(
                *columns,
                *(func.grouping(column) for column in columns),
                func.sum(CatalogFacet.entries),
                func.sum(CatalogFacet.duration_ms),
            )
            .where(and_(true(), *cell_filters))
            .group_by(func.grouping_sets(*(tuple_(column) for column in columns)))
        )
        for row in grouped:
            values, rolled = row[: len(FACETS)], row[len(FACETS) : 2 * len(FACETS)]
            number, ms = int(row[-2]), int(row[-1])
            for name, value, other in zip(FACETS, values, rolled, strict=True):
                if not other:
                    counts[name][_facet_key(value)] += number
                    if name == FACETS[0]:
                        total += number
                        total_ms += ms
    elif cell_filters is not None:
        columns = [getattr(CatalogFacet, name) for name in FACETS]
        statement = select(
            *columns, func.sum(CatalogFacet.entries), func.sum(CatalogFacet.duration_ms)
        ).where(and_(true(), *cell_filters))
        for *named, number, ms in session.execute(statement.group_by(*columns)):
            total += int(number)
            total_ms += int(ms)
            for name, value in zip(FACETS, named, strict=True):
                counts[name][_facet_key(value)] += int(number)
    else:
        columns = [getattr(CatalogEntry, name) for name in FACETS]
        where = and_(true(), *_base_filters(query))
        if exact_only:
            assert query.licence is not None
            where = and_(where, CatalogEntry.exact.is_(True), licence_filter(query.licence))
        statement = select(
            *columns,
            func.count(),
            func.coalesce(func.sum(CatalogEntry.duration_seconds), 0.0),
        ).where(where)
        for *named, number, duration in session.execute(statement.group_by(*columns)):
            total += int(number)
            seconds += float(duration)
            for name, value in zip(FACETS, named, strict=True):
                counts[name][_facet_key(value)] += int(number)
    seconds += total_ms / 1000.0
    if exact_only:
        # Inexact terms: decided one by one by the evaluator.
        assert query.licence is not None
        for entry in _inexact(session, query):
            if decide(session, settings, entry, query.licence).ok:
                total += 1
                seconds += entry.duration_seconds or 0.0
                for name in FACETS:
                    counts[name][_facet_key(getattr(entry, name))] += 1
    facets = {name: dict(sorted(counter.items())) for name, counter in counts.items()}
    return total, facets, round(seconds, 3)


def _inexact_statement(query: CatalogQuery) -> Select[CatalogEntry]:
    # ``NOT exact``, the partial index's own predicate: PostgreSQL does not prove that
    # ``exact IS FALSE`` implies it, and scanned every entry (~300 ms at a million) for
    # the handful of inexact ones on every licence search.
    return select(CatalogEntry).where(and_(true(), *_base_filters(query)), not_(CatalogEntry.exact))


def _inexact(session: Session, query: CatalogQuery) -> Iterable[CatalogEntry]:
    return session.scalars(_inexact_statement(query))


def search(
    session: Session,
    settings: Settings,
    query: CatalogQuery,
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> SearchPage:
    """One page of matching entries (keyset pagination), facet counts and totals."""
    if query.sort not in SORTS:
        raise InvalidInput(
            f"Sort by one of: {', '.join(SORTS)}.", code="invalid_sort", pointer="/sort"
        )
    limit = max(1, min(limit, MAX_PAGE))
    position = _decode_cursor(cursor, query.sort) if cursor else None
    items: list[tuple[CatalogEntry, Fit | None]] = []
    evaluated = 0
    matching = _matching(query)
    # The counts come first: when nothing matches, no page is read (walking a sort
    # index for rows that do not exist would read all of it).
    total, facets, seconds = _facets(session, settings, query)
    while total and len(items) < limit + 1:
        rows = list(session.scalars(_page_statement(matching, query.sort, position, limit + 1)))
        for entry in rows:
            fit: Fit | None = None
            if query.licence is not None:
                if entry.exact:
                    fit = Fit(True)
                else:
                    evaluated += 1
                    fit = decide(session, settings, entry, query.licence)
                    if not fit.ok:
                        continue
            items.append((entry, fit))
            if len(items) == limit + 1:
                break
        if len(rows) < limit + 1:
            break
        last = rows[-1]
        position = (_position_of(last, query.sort), last.asset_id)
    more = len(items) > limit
    items = items[:limit]
    next_cursor = None
    if more and items:
        last_entry = items[-1][0]
        next_cursor = _encode_cursor(_sort_value(last_entry, query.sort), last_entry.asset_id)
    notes = []
    if query.licence is not None and len(purposes.descendants(query.licence.purpose)) > 1:
        label = purposes.PURPOSES[query.licence.purpose].label
        notes.append(
            f"'{label}' includes narrower purposes; terms that prohibit any of them (such "
            "as voice cloning) refuse it. Declare the narrowest purpose you mean."
        )
    return SearchPage(
        items=items,
        total=total,
        facets=facets,
        total_duration_seconds=seconds,
        next_cursor=next_cursor,
        evaluated_in_full=evaluated,
        notes=notes,
    )


def _page_statement(
    matching: ColumnElement[bool], sort: str, position: tuple[Any, str] | None, size: int
) -> Select[CatalogEntry]:
    """One page's entries in order: their ids first, from a statement that names only
    indexed columns (an index-only scan of the covering index where the query has the
    common shape), then those rows by key — rather than reading every candidate row
    from the heap to sort it. One statement, so both parts see the same snapshot."""
    ids = (
        _ordered(
            select(CatalogEntry.asset_id).where(
                matching, _after(sort, position) if position else true()
            ),
            sort,
        )
        .limit(size)
        .subquery("page")
    )
    return _ordered(select(CatalogEntry).join(ids, CatalogEntry.asset_id == ids.c.asset_id), sort)


def _position_of(entry: CatalogEntry, sort: str) -> Any:
    value = _sort_value(entry, sort)
    return datetime.fromisoformat(value) if sort in ("newest", "oldest") else value
