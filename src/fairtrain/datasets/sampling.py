"""Stratified sampling to demographic targets, and the representation report.

Pure functions. A buyer asks for a balance ("equal shares of age band × gender"); the
pool of eligible assets is split into groups (strata) by those dimensions, each group
gets its share of the dataset's size (largest-remainder rounding, so shares add up
exactly), and within a group assets are taken in a keyed pseudo-random order: the same
pool and seed always give the same sample, whatever order the pool came in.

A group that has fewer assets than its share is taken whole and its **shortfall is
reported**, not silently filled from other groups (unless the buyer asks for
``fill_shortfall``, which is then reported too). The report gives every group's target,
count and share, the gap, the pool it came from, and two divergence figures between the
target and the result: total variation distance (half the sum of absolute gaps: the share
of the dataset that would have to move) and the Jensen–Shannon divergence (base 2, 0 =
identical, 1 = disjoint).
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from fairtrain.ledger.royalties import split

__all__ = [
    "NOT_STATED",
    "Candidate",
    "Group",
    "Representation",
    "Sample",
    "Targets",
    "allocate",
    "jensen_shannon",
    "parse_targets",
    "representation",
    "sample",
    "stratum_label",
    "targets_dict",
    "total_variation",
]

NOT_STATED = "not_stated"  # the group of those who keep a dimension private
MEASURES = ("items", "units")


def stratum_label(values: Sequence[str | None]) -> str:
    """'25-34|woman': the group's values in the dimensions' order."""
    return "|".join(NOT_STATED if v is None else v for v in values)


@dataclass(frozen=True, slots=True)
class Candidate:
    key: str  # the asset id
    stratum: str  # its group's label (stratum_label of its values)
    units: float = 1.0  # its contribution (minutes, items, messages, pages)


@dataclass(frozen=True, slots=True)
class Targets:
    """The balance wanted: each group's share of the dataset (shares sum to 1)."""

    dimensions: tuple[str, ...]
    shares: Mapping[str, float]

    def __post_init__(self) -> None:
        if not self.dimensions:
            raise ValueError("targets need at least one dimension")
        if not self.shares or any(s < 0 for s in self.shares.values()):
            raise ValueError("every target share is zero or more, and there is at least one")
        if not math.isclose(sum(self.shares.values()), 1.0, abs_tol=1e-6):
            raise ValueError(f"target shares add up to {sum(self.shares.values()):.4f}, not 1")
        width = len(self.dimensions)
        for label in self.shares:
            if len(label.split("|")) != width:
                raise ValueError(f"group '{label}' does not name {width} value(s)")


def parse_targets(raw: Mapping[str, object] | None, allowed: Sequence[str]) -> Targets | None:
    """Targets from their stored or posted form ``{"dimensions": [...], "shares": {...}}``;
    ``ValueError`` saying what is wrong."""
    if not raw:
        return None
    dimensions = raw.get("dimensions", ())
    shares = raw.get("shares", {})
    if not isinstance(dimensions, list | tuple) or not isinstance(shares, Mapping):
        raise ValueError("targets have a list of dimensions and a mapping of shares")
    unknown = [str(d) for d in dimensions if d not in allowed]
    if unknown:
        raise ValueError(f"balance by {', '.join(allowed)}, not {', '.join(unknown)}")
    return Targets(tuple(str(d) for d in dimensions), {str(k): float(v) for k, v in shares.items()})


def targets_dict(targets: Targets | None) -> dict[str, object]:
    if targets is None:
        return {}
    return {"dimensions": list(targets.dimensions), "shares": dict(targets.shares)}


@dataclass(frozen=True, slots=True)
class Sample:
    selected: tuple[Candidate, ...]
    # Not taken, by reason: "not_in_targets" (its group is not wanted), "over_quota"
    # (its group was full), "over_size" (no targets: the dataset was full).
    left_out: Mapping[str, tuple[str, ...]]
    quotas: Mapping[str, float]  # what each group was to get, in the sampling measure
    shortfall: Mapping[str, float]  # what each group lacked
    measure: str


def allocate(total: int, shares: Mapping[str, float]) -> dict[str, int]:
    """``total`` whole units split by ``shares`` with largest remainders (sums to total):
    the ledger's royalty split (one rounding rule for money and for sample sizes)."""
    if total < 0 or not shares or any(share <= 0 for share in shares.values()):
        raise ValueError("a total of zero or more split by positive shares")
    return split(total, {key: Decimal(repr(share)) for key, share in shares.items()})


def _order(seed: bytes, key: str) -> bytes:
    return hashlib.blake2b(key.encode(), key=seed[:64], digest_size=16).digest()


def _take(pool: list[Candidate], quota: float, measure: str) -> tuple[list[Candidate], float]:
    """The first members of ``pool`` until ``quota`` is reached; and what was still missing."""
    if measure == "items":
        count = int(quota)
        return pool[:count], max(0.0, count - len(pool))
    taken: list[Candidate] = []
    units = 0.0
    for candidate in pool:
        if units >= quota - 1e-9:
            break
        taken.append(candidate)
        units += candidate.units
    return taken, max(0.0, quota - units)


def sample(
    pool: Sequence[Candidate],
    targets: Targets | None,
    *,
    size: float | None,
    seed: bytes,
    measure: str = "items",
    fill_shortfall: bool = False,
) -> Sample:
    """The sample of ``pool``: ``size`` items (or units of contribution, by ``measure``)
    balanced by ``targets``; everything when ``size`` is None.

    In "units" a group's last asset may pass its quota (an asset is not split).
    """
    if measure not in MEASURES:
        raise ValueError(f"measure is one of {MEASURES}")
    ordered = sorted(pool, key=lambda c: _order(seed, c.key))
    if size is None:
        size = len(ordered) if measure == "items" else sum(c.units for c in ordered)
    if targets is None:
        everyone, _ = _take(ordered, size, measure)
        chosen = {c.key for c in everyone}
        rest = tuple(c.key for c in ordered if c.key not in chosen)
        return Sample(tuple(everyone), {"over_size": rest} if rest else {}, {}, {}, measure)
    groups: dict[str, list[Candidate]] = defaultdict(list)
    for candidate in ordered:
        groups[candidate.stratum].append(candidate)
    wanted = {label: share for label, share in targets.shares.items() if share > 0}
    quotas: dict[str, float]
    if measure == "items":
        quotas = {k: float(v) for k, v in allocate(int(size), wanted).items()}
    else:
        quotas = {label: size * share for label, share in wanted.items()}
    taken: dict[str, list[Candidate]] = {}
    shortfall: dict[str, float] = {}
    for label, quota in quotas.items():
        taken[label], shortfall[label] = _take(groups.get(label, []), quota, measure)
    if fill_shortfall:
        _fill(groups, taken, shortfall, wanted, measure)  # shortfall keeps what was lacking
    chosen = {c.key for members in taken.values() for c in members}
    left_out: dict[str, list[str]] = defaultdict(list)
    for candidate in ordered:
        if candidate.key in chosen:
            continue
        reason = "over_quota" if candidate.stratum in wanted else "not_in_targets"
        left_out[reason].append(candidate.key)
    selected = tuple(c for label in sorted(taken) for c in taken[label])
    return Sample(
        selected=selected,
        left_out={reason: tuple(keys) for reason, keys in left_out.items()},
        quotas=quotas,
        shortfall={k: v for k, v in shortfall.items() if v > 0},
        measure=measure,
    )


def _fill(
    groups: Mapping[str, list[Candidate]],
    taken: dict[str, list[Candidate]],
    shortfall: Mapping[str, float],
    wanted: Mapping[str, float],
    measure: str,
) -> None:
    """Give what short groups lack to the other wanted groups, by their shares.

    ``shortfall`` stays as it was: the report says which groups were short even when
    others made up the size.
    """
    pending = sum(shortfall.values())
    exhausted = {label for label, lack in shortfall.items() if lack > 0}
    while pending > 1e-9:
        spare = {
            label: share
            for label, share in wanted.items()
            if label not in exhausted and len(groups.get(label, [])) > len(taken[label])
        }
        if not spare:
            return
        extra = (
            {k: float(v) for k, v in allocate(round(pending), spare).items()}
            if measure == "items"
            else {label: pending * share / sum(spare.values()) for label, share in spare.items()}
        )
        pending = 0.0
        for label, amount in extra.items():
            have = len(taken[label]) if measure == "items" else sum(c.units for c in taken[label])
            taken[label], lacking = _take(groups[label], have + amount, measure)
            if lacking > 0:
                exhausted.add(label)
                pending += lacking


@dataclass(frozen=True, slots=True)
class Group:
    label: str
    target_share: float | None  # None: not a target group (no targets, or not wanted)
    count: int
    units: float
    share: float  # of the dataset, in the sampling measure
    gap: float | None  # share - target_share
    pool_count: int  # how many eligible assets the group had
    shortfall: float


@dataclass(frozen=True, slots=True)
class Representation:
    dimensions: tuple[str, ...]
    measure: str
    groups: tuple[Group, ...]
    total_variation: float | None
    jensen_shannon: float | None
    over_represented: tuple[str, ...]
    under_represented: tuple[str, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, object]:
        return {
            "dimensions": list(self.dimensions),
            "measure": self.measure,
            "groups": [
                {
                    "label": g.label,
                    "target_share": g.target_share,
                    "count": g.count,
                    "units": round(g.units, 4),
                    "share": round(g.share, 6),
                    "gap": None if g.gap is None else round(g.gap, 6),
                    "pool_count": g.pool_count,
                    "shortfall": round(g.shortfall, 4),
                }
                for g in self.groups
            ],
            "total_variation": self.total_variation,
            "jensen_shannon": self.jensen_shannon,
            "over_represented": list(self.over_represented),
            "under_represented": list(self.under_represented),
            "notes": list(self.notes),
        }


def total_variation(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    keys = set(p) | set(q)
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in keys)


def jensen_shannon(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    keys = set(p) | set(q)

    def kl(a: Mapping[str, float], b: Mapping[str, float]) -> float:
        return sum(a[k] * math.log2(a[k] / b[k]) for k in keys if a.get(k, 0.0) > 0)

    middle = {k: (p.get(k, 0.0) + q.get(k, 0.0)) / 2 for k in keys}
    return max(0.0, 0.5 * kl(p, middle) + 0.5 * kl(q, middle))


def representation(
    selected: Sequence[Candidate],
    pool: Sequence[Candidate],
    targets: Targets | None,
    *,
    dimensions: tuple[str, ...],
    measure: str = "items",
    shortfall: Mapping[str, float] | None = None,
    quotas: Mapping[str, float] | None = None,
) -> Representation:
    """Who is in the dataset, against the target, group by group.

    A group is under-represented when it fell short of its quota, or its gap is more
    than rounding can explain (one asset's worth of share, 1/n for n items; 1% in
    units); over-represented when it got more than its quota (it made up for a short
    group) or its gap is more than rounding can explain.
    """
    shortfall = shortfall or {}
    quotas = quotas or {}

    def weight(c: Candidate) -> float:
        return 1.0 if measure == "items" else c.units

    total = sum(weight(c) for c in selected)
    counts: dict[str, int] = defaultdict(int)
    amounts: dict[str, float] = defaultdict(float)
    for candidate in selected:
        counts[candidate.stratum] += 1
        amounts[candidate.stratum] += candidate.units
    in_pool: dict[str, int] = defaultdict(int)
    for candidate in pool:
        in_pool[candidate.stratum] += 1
    shares = {
        label: ((amounts[label] if measure == "units" else counts[label]) / total if total else 0.0)
        for label in counts
    }
    target = dict(targets.shares) if targets else {}
    labels = sorted(set(in_pool) | set(target) | set(counts))
    tolerance = (1.0 / len(selected) if selected else 1.0) if measure == "items" else 0.01
    groups: list[Group] = []
    over: list[str] = []
    under: list[str] = []
    for label in labels:
        wanted = target.get(label) if targets else None
        share = shares.get(label, 0.0)
        gap = None if wanted is None else share - wanted
        got = counts.get(label, 0) if measure == "items" else amounts.get(label, 0.0)
        beyond = label in quotas and got > quotas[label] + 1e-9 and measure == "items"
        if gap is not None and (gap > tolerance + 1e-9 or beyond):
            over.append(label)
        elif gap is not None and (gap < -tolerance - 1e-9 or shortfall.get(label, 0) > 0):
            under.append(label)
        groups.append(
            Group(
                label=label,
                target_share=wanted,
                count=counts.get(label, 0),
                units=amounts.get(label, 0.0)
                if measure == "units"
                else float(counts.get(label, 0)),
                share=share,
                gap=gap,
                pool_count=in_pool.get(label, 0),
                shortfall=shortfall.get(label, 0.0),
            )
        )
    notes: list[str] = []
    if shortfall:
        short = ", ".join(sorted(shortfall))
        notes.append(f"Fewer eligible assets than wanted in: {short}.")
    return Representation(
        dimensions=dimensions,
        measure=measure,
        groups=tuple(groups),
        total_variation=round(total_variation(shares, target), 6) if targets else None,
        jensen_shannon=round(jensen_shannon(shares, target), 6) if targets else None,
        over_represented=tuple(over),
        under_represented=tuple(under),
        notes=tuple(notes),
    )
