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
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, func, or_, select, true
from sqlalchemy.orm import Session

from fairtrain.accounts.demographics import demographics_of
from fairtrain.accounts.models import ContributorProfile, User
from fairtrain.catalog.models import CatalogEntry
from fairtrain.config import Settings
from fairtrain.consent import purposes
from fairtrain.consent.fit import Fit, LicenceAsk, TermsSummary, compiled_fit, policy_fit
from fairtrain.consent.models import AssetPolicy
from fairtrain.consent.odrl import Policy, parse_policy
from fairtrain.errors import InvalidInput
from fairtrain.ids import utcnow
from fairtrain.ingest.models import Asset, AssetState
from fairtrain.iris import asset_iri, org_iri
from fairtrain.money import to_major
from fairtrain.withdrawal.models import WithdrawnScope

__all__ = [
    "FACETS",
    "SORTS",
    "UNITS",
    "CatalogQuery",
    "SearchPage",
    "candidates",
    "decide",
    "entry_terms",
    "licence_filter",
    "policy_for",
    "refresh_entries",
    "search",
    "sync_entry",
    "sync_owner",
    "units_of",
    "withheld_scopes",
]

FACETS = ("modality", "language", "age_band", "gender", "region")
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


def sync_entry(session: Session, asset: Asset, *, today: date | None = None) -> CatalogEntry | None:
    """Make the catalogue say what the asset is now: listed with its current terms, or absent.

    Called in the same transaction as every change the catalogue mirrors.
    """
    existing = session.get(CatalogEntry, asset.id)
    record = session.scalars(
        select(AssetPolicy).where(
            AssetPolicy.asset_id == asset.id, AssetPolicy.superseded_at.is_(None)
        )
    ).first()
    if AssetState(asset.state) != AssetState.LISTED or record is None or asset.modality is None:
        if existing is not None:
            session.delete(existing)
            session.flush()
        return None
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
    session.execute(
        delete(CatalogEntry).where(
            CatalogEntry.asset_id.not_in(select(Asset.id).where(Asset.state == AssetState.LISTED))
        )
    )
    return done


# -- contribution -----------------------------------------------------------------------

# How much of a dataset an asset is, by kind: what royalties are split by and campaigns
# price per. Minutes of sound or moving picture; one photo; messages of a chat; pages.
UNITS = {
    "audio": "minutes",
    "video": "minutes",
    "image": "items",
    "text": "items",
    "chat": "messages",
    "document": "pages",
}


def units_of(settings: Settings, entry: CatalogEntry) -> float:
    """The asset's contribution in its modality's unit (see :data:`UNITS`)."""
    unit = UNITS.get(entry.modality, "items")
    if unit == "minutes":
        return round((entry.duration_seconds or 0.0) / 60.0, 6)
    if unit == "messages":
        return float(entry.messages or 1)
    if unit == "pages":
        return float(entry.pages or 1)
    return 1.0


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


def licence_filter(ask: LicenceAsk) -> ColumnElement[bool]:
    """:func:`consent.fit.compiled_fit` as SQL over the catalogue's compiled columns."""
    entry = CatalogEntry
    node = purposes.PURPOSES[ask.purpose]
    wanted = purposes.mask_of(purposes.descendants(ask.purpose))
    clauses = [
        entry.permit_mask.op("&")(1 << node.bit) != 0,
        entry.ban_mask.op("&")(wanted) == 0,
        or_(entry.territories.is_(None), entry.territories.like(f"%,{ask.territory.upper()},%")),
        or_(entry.not_after.is_(None), entry.not_after >= ask.end),
        or_(entry.term_days.is_(None), entry.term_days >= ask.term_days),
    ]
    if ask.currency:
        clauses.append(or_(entry.price_minor.is_(None), entry.currency == ask.currency))
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
    "longest": (func.coalesce(CatalogEntry.duration_seconds, -1.0), True),
    "shortest": (func.coalesce(CatalogEntry.duration_seconds, 1e18), False),
    "cheapest": (func.coalesce(CatalogEntry.price_minor, 0), False),
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


def _facets(
    session: Session,
    settings: Settings,
    query: CatalogQuery,
) -> tuple[int, dict[str, dict[str, int]], float]:
    """Counts per facet value over the whole result, in one grouped scan."""
    columns = [getattr(CatalogEntry, name) for name in FACETS]
    exact_only = query.licence is not None
    where = and_(true(), *_base_filters(query))
    if exact_only:
        assert query.licence is not None
        where = and_(where, CatalogEntry.exact.is_(True), licence_filter(query.licence))
    grouped = session.execute(
        select(*columns, func.count(), func.coalesce(func.sum(CatalogEntry.duration_seconds), 0.0))
        .where(where)
        .group_by(*columns)
    )
    counts: dict[str, Counter[str]] = {name: Counter() for name in FACETS}
    total = 0
    seconds = 0.0
    for row in grouped:
        *values, number, duration = row
        total += number
        seconds += float(duration)
        for name, value in zip(FACETS, values, strict=True):
            counts[name][_facet_key(value)] += number
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
    return total, facets, seconds


def _inexact(session: Session, query: CatalogQuery) -> Iterable[CatalogEntry]:
    return session.scalars(
        select(CatalogEntry).where(
            and_(true(), *_base_filters(query)), CatalogEntry.exact.is_(False)
        )
    )


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
    while len(items) < limit + 1:
        statement = select(CatalogEntry).where(
            matching, _after(query.sort, position) if position else true()
        )
        rows = list(session.scalars(_ordered(statement, query.sort).limit(limit + 1)))
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
    total, facets, seconds = _facets(session, settings, query)
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


def _position_of(entry: CatalogEntry, sort: str) -> Any:
    value = _sort_value(entry, sort)
    return datetime.fromisoformat(value) if sort in ("newest", "oldest") else value
