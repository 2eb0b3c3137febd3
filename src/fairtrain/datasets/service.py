"""Building datasets: select, decide each asset by its owner's terms, balance, anonymise,
freeze.

A build takes the dataset's selection (catalogue filters, or a campaign's accepted
submissions), asks every matching asset's current terms whether they allow the
dataset's licence (``catalog.decide``: purpose, territory, the whole term, currency,
price), records **why each excluded asset was excluded** (code, sentence, and the
deciding rule of its policy), samples the eligible ones to the demographic targets,
k-anonymises what the buyer will receive about each item, and writes an immutable
version named by the hash of its contents. Building the same selection again when
nothing changed returns the same version.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from fairtrain.audit.chain import canonical_json
from fairtrain.audit.service import append_event
from fairtrain.catalog import service as catalog
from fairtrain.catalog.models import (
    Campaign,
    CampaignSubmission,
    CatalogEntry,
    SubmissionState,
)
from fairtrain.config import Settings
from fairtrain.consent import purposes
from fairtrain.consent.fit import LicenceAsk
from fairtrain.consent.models import ConsentReceiptRecord
from fairtrain.datasets.kanon import QUASI_IDENTIFIERS, anonymise
from fairtrain.datasets.models import Dataset, DatasetExclusion, DatasetItem, DatasetVersion
from fairtrain.datasets.sampling import (
    Candidate,
    Targets,
    parse_targets,
    representation,
    sample,
    stratum_label,
    targets_dict,
)
from fairtrain.errors import InvalidInput, NotFound
from fairtrain.ids import new_id, utcnow
from fairtrain.iris import org_iri
from fairtrain.ledger.royalties import contribution_units, split
from fairtrain.money import check_currency, format_money

__all__ = [
    "DIMENSIONS",
    "EXCLUSION_CODES",
    "BuildResult",
    "build_version",
    "create_dataset",
    "get_dataset",
    "get_version",
    "licence_ask_for",
    "list_datasets",
    "query_from_selection",
    "selection_from_query",
    "version_exclusions",
    "version_items",
    "versions_of",
]

# What a buyer may balance a dataset by: the generalised demographics in the catalogue.
DIMENSIONS = ("age_band", "gender", "region", "accent", "language", "modality")
NOT_SAMPLED = {
    "over_quota": ("not_sampled", "Its group already had its share of the dataset."),
    "not_in_targets": ("not_in_target_groups", "Its group is not one the dataset asks for."),
    "over_size": ("not_sampled", "The dataset reached its size without it."),
}
EXCLUSION_CODES = (
    "purpose_prohibited",
    "purpose_not_permitted",
    "territory_not_permitted",
    "terms_end_before_licence",
    "term_too_long",
    "term_not_covered",
    "terms_not_met",
    "currency_mismatch",
    "price_too_low",
    "not_applicable",
    "not_sampled",
    "not_in_target_groups",
    "no_units",
    "withdrawn",
)
_QUERY_FIELDS = {
    "modalities": list,
    "languages": list,
    "min_duration": float,
    "max_duration": float,
    "min_speech_share": float,
    "min_snr_db": float,
    "min_sharpness": float,
    "quality_ok": bool,
    "age_bands": list,
    "genders": list,
    "regions": list,
    "accents": list,
    "max_price_minor": int,
}


def selection_from_query(query: catalog.CatalogQuery) -> dict[str, Any]:
    """The catalogue filters of a query, as stored with a dataset."""
    stored: dict[str, Any] = {}
    for name in _QUERY_FIELDS:
        value = getattr(query, name)
        if value not in (None, ()):
            stored[name] = list(value) if isinstance(value, tuple) else value
    return {"query": stored}


def query_from_selection(selection: Mapping[str, Any]) -> catalog.CatalogQuery:
    stored = selection.get("query", {})
    values: dict[str, Any] = {
        name: tuple(stored[name]) if kind is list else stored[name]
        for name, kind in _QUERY_FIELDS.items()
        if name in stored
    }
    return catalog.CatalogQuery(**values)


def _targets(raw: Mapping[str, Any]) -> Targets | None:
    return parse_targets(raw, DIMENSIONS)


def create_dataset(
    session: Session,
    settings: Settings,
    *,
    org_id: str,
    actor: str,
    name: str,
    description: str,
    purpose: str,
    territory: str,
    term_days: int,
    currency: str,
    query: catalog.CatalogQuery | None = None,
    campaign_id: str | None = None,
    targets: Mapping[str, Any] | None = None,
    size: float | None = None,
    measure: str = "items",
    fill_shortfall: bool = False,
    pool_minor: int | None = None,
) -> Dataset:
    """A new dataset definition (its first version is built by :func:`build_version`).

    ``pool_minor`` prices the dataset as a whole: the buyer's total for the contributors,
    split between the items by contribution; without it each item costs its owner's price
    (or, for a campaign, the campaign's offer)."""
    purposes.purpose(purpose)
    currency = check_currency(currency)
    if (query is None) == (campaign_id is None):
        raise InvalidInput(
            "Select assets either by catalogue filters or by a campaign, not both.",
            code="invalid_selection",
            pointer="/selection",
        )
    if campaign_id is not None:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None or campaign.org_id != org_id:
            raise NotFound("No such campaign.", code="campaign_not_found")
        if campaign.currency != currency:
            raise InvalidInput(
                f"The campaign pays in {campaign.currency}.",
                code="currency_mismatch",
                pointer="/currency",
            )
    if measure not in ("items", "units"):
        raise InvalidInput("Size is measured in items or units.", code="invalid_measure")
    if size is not None and size <= 0:
        raise InvalidInput("A dataset's size is more than zero.", code="invalid_size")
    if pool_minor is not None and (pool_minor < 1 or campaign_id is not None):
        raise InvalidInput(
            "A pool price is a positive amount, and a campaign pays its own offers.",
            code="invalid_pool",
            pointer="/pool_minor",
        )
    stored_targets = _validated_targets(targets)
    dataset = Dataset(
        id=new_id("dst"),
        org_id=org_id,
        created_by=actor,
        name=name,
        description=description,
        purpose=purpose,
        territory=territory.upper(),
        term_days=term_days,
        currency=currency,
        selection=(
            {"campaign_id": campaign_id}
            if campaign_id is not None
            else selection_from_query(query or catalog.CatalogQuery())
        ),
        targets=stored_targets,
        size=size,
        measure=measure,
        fill_shortfall=fill_shortfall,
        pricing="pool" if pool_minor is not None else "asking",
        pool_minor=pool_minor,
        created_at=utcnow(),
    )
    session.add(dataset)
    session.flush()
    append_event(
        session,
        actor=actor,
        action="dataset.created",
        subject=f"dataset:{dataset.id}",
        payload={"org": org_id, "purpose": purpose, "territory": dataset.territory,
                 "term_days": term_days, "campaign": campaign_id},
    )  # fmt: skip
    return dataset


def _validated_targets(targets: Mapping[str, Any] | None) -> dict[str, Any]:
    try:
        return targets_dict(parse_targets(targets, DIMENSIONS))
    except (ValueError, TypeError) as error:
        raise InvalidInput(
            f"These targets cannot be used: {error}.", code="invalid_targets", pointer="/targets"
        ) from None


def licence_ask_for(settings: Settings, dataset: Dataset, start: datetime) -> LicenceAsk:
    return LicenceAsk(
        purpose=dataset.purpose,
        territory=dataset.territory,
        term_days=dataset.term_days,
        currency=dataset.currency,
        start=start,
        assignee=org_iri(settings, dataset.org_id),
    )


@dataclass(frozen=True, slots=True)
class _Excluded:
    asset_id: str
    code: str
    reason: str
    rule_path: str | None


@dataclass(frozen=True, slots=True)
class BuildResult:
    version: DatasetVersion
    created: bool  # False: nothing changed, the existing version is returned


def _entries(session: Session, dataset: Dataset) -> Iterable[tuple[CatalogEntry, int | None]]:
    """The selection's entries and, for a campaign, what it offers for each."""
    campaign_id = dataset.selection.get("campaign_id")
    if campaign_id is None:
        for entry in catalog.candidates(session, query_from_selection(dataset.selection)):
            yield entry, None
        return
    rows = session.execute(
        select(CatalogEntry, CampaignSubmission.offered_minor)
        .join(CampaignSubmission, CampaignSubmission.asset_id == CatalogEntry.asset_id)
        .where(
            CampaignSubmission.campaign_id == campaign_id,
            CampaignSubmission.state == SubmissionState.ACCEPTED,
        )
        .order_by(CatalogEntry.asset_id)
    )
    for entry, offered in rows:
        yield entry, offered


def _stratum(entry: CatalogEntry, dimensions: Sequence[str]) -> str:
    return stratum_label([getattr(entry, d) for d in dimensions])


def _receipts(session: Session, policy_ids: Sequence[str]) -> dict[str, str]:
    """The newest receipt's hash for each policy version (chunked IN lists)."""
    found: dict[str, tuple[datetime, str]] = {}
    for start in range(0, len(policy_ids), 900):
        chunk = policy_ids[start : start + 900]
        rows = session.execute(
            select(
                ConsentReceiptRecord.policy_id,
                ConsentReceiptRecord.issued_at,
                ConsentReceiptRecord.sha256,
            ).where(ConsentReceiptRecord.policy_id.in_(chunk))
        )
        for policy_id, issued_at, sha in rows:
            if policy_id is not None and (
                policy_id not in found or issued_at > found[policy_id][0]
            ):
                found[policy_id] = (issued_at, sha)
    return {policy_id: sha for policy_id, (_, sha) in found.items()}


def _delivered(entry: CatalogEntry, anonymous: Mapping[str, str]) -> dict[str, Any]:
    """What the buyer receives about one item: measurements, and demographics only as
    k-anonymised."""
    return {
        "modality": entry.modality,
        "media_type": entry.media_type,
        "duration_seconds": entry.duration_seconds,
        "messages": entry.messages,
        "pages": entry.pages,
        "quality": {
            "ok": entry.quality_ok,
            "speech_share": entry.speech_share,
            "snr_db": entry.snr_db,
            "sharpness": entry.sharpness,
        },
        **dict(anonymous),
    }


def build_version(
    session: Session,
    settings: Settings,
    dataset: Dataset,
    *,
    actor: str,
    reason: str = "build",
    exclude: Mapping[str, tuple[str, str]] | None = None,
    now: datetime | None = None,
) -> BuildResult:
    """Build the dataset's next version from its selection as the catalogue is now.

    ``exclude`` names assets to leave out whatever their terms say, with (code, reason):
    withdrawals use it.
    """
    now = now or utcnow()
    ask = licence_ask_for(settings, dataset, now)
    targets = _targets(dataset.targets)
    dimensions = targets.dimensions if targets else ()
    excluded: list[_Excluded] = []
    eligible: dict[str, tuple[CatalogEntry, int | None]] = {}
    for entry, offered in _entries(session, dataset):
        if exclude and entry.asset_id in exclude:
            code, why = exclude[entry.asset_id]
            excluded.append(_Excluded(entry.asset_id, code, why, None))
            continue
        fit = catalog.decide(session, settings, entry, ask, offered_minor=offered)
        if not fit.ok:
            excluded.append(
                _Excluded(
                    entry.asset_id, fit.code or "terms_not_met", fit.reason or "", fit.rule_path
                )
            )
            continue
        eligible[entry.asset_id] = (entry, offered)
    units = {key: catalog.units_of(settings, entry) for key, (entry, _) in eligible.items()}
    pool = [
        Candidate(key, _stratum(entry, dimensions), units[key])
        for key, (entry, _) in eligible.items()
    ]
    seed = hashlib.sha256(f"{dataset.id}:{settings.base_url}".encode()).digest()
    drawn = sample(
        pool,
        targets,
        size=dataset.size,
        seed=seed,
        measure=dataset.measure,
        fill_shortfall=dataset.fill_shortfall,
    )
    for why, keys in drawn.left_out.items():
        code, sentence = NOT_SAMPLED[why]
        excluded.extend(_Excluded(key, code, sentence, None) for key in keys)
    chosen = [eligible[c.key][0] for c in drawn.selected]
    if dataset.pricing == "pool":
        prices, short = _pool_prices(settings, chosen, dataset.pool_minor or 0, dataset.currency)
        excluded.extend(short)
        dropped = {x.asset_id for x in short}
        chosen = [e for e in chosen if e.asset_id not in dropped]
    else:
        prices = _prices(chosen, {key: offer for key, (_, offer) in eligible.items()})
    kept = {e.asset_id for e in chosen}
    report = representation(
        [c for c in drawn.selected if c.key in kept],
        pool,
        targets,
        dimensions=dimensions,
        measure=dataset.measure,
        shortfall=drawn.shortfall,
        quotas=drawn.quotas,
    )
    anonymous = anonymise(
        [{q: getattr(e, q) for q in QUASI_IDENTIFIERS} for e in chosen],
        k=settings.k_anonymity,
    )
    items = sorted(zip(chosen, anonymous.records, strict=True), key=lambda pair: pair[0].asset_id)
    content = {
        "dataset": dataset.id,
        "licence": {"purpose": dataset.purpose, "territory": dataset.territory,
                    "term_days": dataset.term_days, "currency": dataset.currency},
        "items": [[e.asset_id, e.policy_id, prices[e.asset_id], units[e.asset_id]]
                  for e, _ in items],
    }  # fmt: skip
    digest = hashlib.sha256(canonical_json(content)).hexdigest()
    existing = session.scalars(
        select(DatasetVersion).where(DatasetVersion.content_sha256 == digest)
    ).first()
    if existing is not None:
        return BuildResult(existing, created=False)
    previous = (
        session.get(DatasetVersion, dataset.latest_version_id)
        if dataset.latest_version_id
        else None
    )
    version = DatasetVersion(
        id=f"dsv_{digest[:32]}",
        dataset_id=dataset.id,
        number=(previous.number + 1) if previous else 1,
        content_sha256=digest,
        parent_id=previous.id if previous else None,
        reason=reason,
        item_count=len(items),
        total_units=round(sum(units[e.asset_id] for e, _ in items), 6),
        subtotal_minor=sum(prices.values()),
        currency=dataset.currency,
        representation=report.as_dict(),
        exclusions=dict(sorted(Counter(x.code for x in excluded).items())),
        anonymity=anonymous.report(),
        created_at=now,
    )
    session.add(version)
    session.flush()
    receipts = _receipts(session, sorted({e.policy_id for e, _ in items}))
    _bulk(
        session,
        DatasetItem,
        [
            {
                "version_id": version.id,
                "asset_id": e.asset_id,
                "owner_id": e.owner_id,
                "policy_id": e.policy_id,
                "receipt_sha256": receipts.get(e.policy_id),
                "modality": e.modality,
                "units": units[e.asset_id],
                "price_minor": prices[e.asset_id],
                "stratum": _stratum(e, dimensions) if dimensions else None,
                "delivered": _delivered(e, record),
            }
            for e, record in items
        ],
    )
    _bulk(
        session,
        DatasetExclusion,
        [
            {"version_id": version.id, "asset_id": x.asset_id, "code": x.code,
             "reason": x.reason, "rule_path": x.rule_path}
            for x in sorted(excluded, key=lambda x: x.asset_id)
        ],
    )  # fmt: skip
    if previous is not None:
        previous.superseded_at = now
    dataset.latest_version_id = version.id
    session.flush()
    append_event(
        session,
        actor=actor,
        action="dataset.version_built",
        subject=f"dataset:{dataset.id}",
        payload={"version": version.id, "number": version.number, "reason": reason,
                 "items": version.item_count, "excluded": version.exclusions,
                 "content_sha256": digest, "parent": version.parent_id},
    )  # fmt: skip
    return BuildResult(version, created=True)


def _prices(chosen: Sequence[CatalogEntry], offers: Mapping[str, int | None]) -> dict[str, int]:
    """What the licence pays for each item: its campaign offer, or its owner's price."""
    prices: dict[str, int] = {}
    for entry in chosen:
        offer = offers.get(entry.asset_id)
        prices[entry.asset_id] = offer if offer is not None else entry.price_minor or 0
    return prices


def _pool_prices(
    settings: Settings, chosen: Sequence[CatalogEntry], pool_minor: int, currency: str
) -> tuple[dict[str, int], list[_Excluded]]:
    """The buyer's pool for the whole dataset split between its items by contribution
    (largest remainder, to the cent); an item whose share would fall below its owner's
    price is left out and the pool split again among the rest."""
    members = list(chosen)
    short: list[_Excluded] = []
    while members:
        weights = {e.asset_id: _weight(settings, e) for e in members}
        zero = [e for e in members if weights[e.asset_id] <= 0]
        for entry in zero:
            short.append(
                _Excluded(entry.asset_id, "no_units", "It has no measurable length.", None)
            )
        members = [e for e in members if weights[e.asset_id] > 0]
        if not members:
            break
        shares = split(pool_minor, {e.asset_id: weights[e.asset_id] for e in members})
        below = [e for e in members if shares[e.asset_id] < (e.price_minor or 0)]
        if not below:
            return shares, short
        for entry in below:
            short.append(
                _Excluded(
                    entry.asset_id,
                    "price_too_low",
                    f"Its share of the dataset's price would be "
                    f"{format_money(shares[entry.asset_id], currency)}, below its owner's "
                    f"{format_money(entry.price_minor or 0, currency)}.",
                    None,
                )
            )
        members = [e for e in members if e not in below]
    return {}, short


def _weight(settings: Settings, entry: CatalogEntry) -> Decimal:
    try:
        return contribution_units(
            entry.modality,
            entry.duration_seconds,
            entry.messages,
            entry.pages,
            units=settings.contribution_units,
        )
    except InvalidInput:  # no duration, messages or pages measured: nothing to weigh
        return Decimal(0)


def _bulk(session: Session, model: type[Any], rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 5000):
        session.execute(insert(model), rows[start : start + 5000])


# -- reading ----------------------------------------------------------------------------


def get_dataset(session: Session, dataset_id: str) -> Dataset:
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise NotFound("No such dataset.", code="dataset_not_found")
    return dataset


def list_datasets(session: Session, org_id: str, *, limit: int = 100) -> list[Dataset]:
    return list(
        session.scalars(
            select(Dataset)
            .where(Dataset.org_id == org_id)
            .order_by(Dataset.created_at.desc())
            .limit(limit)
        )
    )


def versions_of(session: Session, dataset_id: str) -> list[DatasetVersion]:
    return list(
        session.scalars(
            select(DatasetVersion)
            .where(DatasetVersion.dataset_id == dataset_id)
            .order_by(DatasetVersion.number.desc())
        )
    )


def get_version(session: Session, version_id: str) -> tuple[DatasetVersion, Dataset]:
    version = session.get(DatasetVersion, version_id)
    if version is None:
        raise NotFound("No such dataset version.", code="dataset_version_not_found")
    dataset = session.get(Dataset, version.dataset_id)
    assert dataset is not None
    return version, dataset


def version_items(
    session: Session, version_id: str, *, after: str | None = None, limit: int = 500
) -> list[DatasetItem]:
    query = select(DatasetItem).where(DatasetItem.version_id == version_id)
    if after:
        query = query.where(DatasetItem.asset_id > after)
    return list(session.scalars(query.order_by(DatasetItem.asset_id).limit(limit)))


def version_exclusions(
    session: Session,
    version_id: str,
    *,
    code: str | None = None,
    after: str | None = None,
    limit: int = 500,
) -> list[DatasetExclusion]:
    query = select(DatasetExclusion).where(DatasetExclusion.version_id == version_id)
    if code:
        query = query.where(DatasetExclusion.code == code)
    if after:
        query = query.where(DatasetExclusion.asset_id > after)
    return list(session.scalars(query.order_by(DatasetExclusion.asset_id).limit(limit)))
