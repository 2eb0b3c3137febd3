"""k-anonymity of delivered metadata: generalise, then suppress, until every combination
of quasi-identifiers is shared by at least k records.

The quasi-identifiers are the demographics a buyer receives with each item (age band,
gender, region, accent, language). Each has a generalisation ladder, from the value as
stored to nothing ("*"). The algorithm is Datafly's (Sweeney, 2002), full-domain: while
more records sit in classes smaller than k than may be suppressed, climb one rung on the
attribute with the most distinct values; then suppress (set every quasi-identifier to
"*") the records still in small classes. A fully suppressed record says nothing about
anyone, so it needs no class. The item itself is still delivered; only its demographic
metadata is generalised or removed, and the report says by how much.

Pure functions; :func:`verify` checks the property on any table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "QUASI_IDENTIFIERS",
    "SUPPRESSED",
    "Anonymised",
    "anonymise",
    "continent_of",
    "generalise",
    "verify",
]

SUPPRESSED = "*"
QUASI_IDENTIFIERS = ("age_band", "gender", "region", "accent", "language")

_CONTINENTS = {
    "Africa": (
        "DZ AO BJ BW BF BI CV CM CF TD KM CG CD CI DJ EG GQ ER SZ ET GA GM GH GN GW KE LS LR LY "
        "MG MW ML MR MU YT MA MZ NA NE NG RE RW SH ST SN SC SL SO ZA SS SD TZ TG TN UG EH ZM ZW"
    ),
    "Americas": (
        "AI AG AR AW BS BB BZ BM BO BQ BR CA KY CL CO CR CU CW DM DO EC SV FK GF GL GD GP GT GY "
        "HT HN JM MQ MX MS NI PA PY PE PR BL KN LC MF PM VC SX SR TT TC US UY VE VG VI"
    ),
    "Asia": (
        "AF AM AZ BH BD BT BN KH CN CY GE HK IN ID IR IQ IL JP JO KZ KW KG LA LB MO MY MV MN MM "
        "NP KP OM PK PS PH QA SA SG KR LK SY TW TJ TH TL TR TM AE UZ VN YE"
    ),
    "Europe": (
        "AX AL AD AT BY BE BA BG HR CZ DK EE FO FI FR DE GI GR GG HU IS IE IM IT JE XK LV LI LT "
        "LU MT MD MC ME NL MK NO PL PT RO RU SM RS SK SI ES SJ SE CH UA GB VA"
    ),
    "Oceania": "AS AU CK FJ PF GU KI MH FM NR NC NZ NU NF MP PW PG PN WS SB TK TO TV VU WF",
}
_CONTINENT_OF = {code: name for name, codes in _CONTINENTS.items() for code in codes.split()}


def continent_of(country: str) -> str:
    return _CONTINENT_OF.get(country.upper(), "Other")


def _age(value: str, level: int) -> str:
    if level == 0:
        return value
    if level == 1:
        wide = {"18-24": "18-34", "25-34": "18-34", "35-44": "35-54", "45-54": "35-54"}
        return wide.get(value, "55+")
    return "18+"


# Each ladder: rung 0 is the value as stored; the last rung before "*" is the coarsest
# value that still says something.
_LADDERS: dict[str, tuple[Callable[[str], str], ...]] = {
    "age_band": (lambda v: _age(v, 0), lambda v: _age(v, 1), lambda v: _age(v, 2)),
    "gender": (lambda v: v,),
    "region": (lambda v: v, continent_of),
    "accent": (lambda v: v,),
    "language": (lambda v: v, lambda v: v.split("-")[0]),
}


def generalise(attribute: str, value: str | None, level: int) -> str:
    """``value`` at rung ``level`` of its ladder ("*" past the top, or when unknown)."""
    ladder = _LADDERS[attribute]
    if value is None or level >= len(ladder):
        return SUPPRESSED
    return ladder[level](value)


def _top(attribute: str) -> int:
    return len(_LADDERS[attribute])  # the rung where everything is "*"


@dataclass(frozen=True, slots=True)
class Anonymised:
    records: tuple[dict[str, str], ...]  # the quasi-identifiers as delivered, in input order
    k: int
    levels: Mapping[str, int]  # rung per attribute
    suppressed: int  # records whose quasi-identifiers were all removed
    information_loss: float  # mean over attributes of rung / top rung (0 = none, 1 = all)
    smallest_class: int | None  # among records not suppressed

    def report(self) -> dict[str, object]:
        return {
            "k": self.k,
            "quasi_identifiers": list(self.levels),
            "generalisation": {
                name: {"level": level, "of": _top(name), "meaning": _meaning(name, level)}
                for name, level in self.levels.items()
            },
            "records": len(self.records),
            "suppressed": self.suppressed,
            "information_loss": round(self.information_loss, 4),
            "smallest_class": self.smallest_class,
        }


def _meaning(attribute: str, level: int) -> str:
    if level >= _top(attribute):
        return "removed"
    return {
        ("age_band", 0): "10-year bands",
        ("age_band", 1): "18-34, 35-54, 55+",
        ("age_band", 2): "adult (18+)",
        ("gender", 0): "as declared",
        ("region", 0): "country",
        ("region", 1): "continent",
        ("accent", 0): "as declared",
        ("language", 0): "language and region",
        ("language", 1): "language",
    }[(attribute, level)]


def _table(
    rows: Sequence[Mapping[str, str | None]], attributes: Sequence[str], levels: Mapping[str, int]
) -> list[tuple[str, ...]]:
    return [tuple(generalise(a, row.get(a), levels[a]) for a in attributes) for row in rows]


def _small(table: list[tuple[str, ...]], k: int) -> list[int]:
    sizes = Counter(table)
    return [
        i for i, key in enumerate(table) if sizes[key] < k and any(v != SUPPRESSED for v in key)
    ]


def anonymise(
    rows: Sequence[Mapping[str, str | None]],
    *,
    k: int,
    attributes: Sequence[str] = QUASI_IDENTIFIERS,
    max_suppression: float = 0.05,
) -> Anonymised:
    """Generalise ``rows`` (each a mapping of quasi-identifier -> value or None) until at
    most ``max_suppression`` of them sit in classes smaller than ``k``, then suppress those.
    """
    if k < 1:
        raise ValueError("k is at least 1")
    levels = dict.fromkeys(attributes, 0)
    budget = int(max_suppression * len(rows))
    while True:
        table = _table(rows, attributes, levels)
        small = _small(table, k)
        if len(small) <= budget:
            break
        climbable = [a for a in attributes if levels[a] < _top(a)]
        if not climbable:
            break
        distinct = {a: len({row[i] for row in table}) for i, a in enumerate(attributes)}
        widest = max(climbable, key=lambda a: (distinct[a], -attributes.index(a)))
        levels[widest] += 1
    suppressed = set(small)
    records = tuple(
        {
            a: (SUPPRESSED if i in suppressed else value)
            for a, value in zip(attributes, row, strict=True)
        }
        for i, row in enumerate(table)
    )
    kept = Counter(tuple(r.values()) for i, r in enumerate(records) if i not in suppressed)
    informative = [size for key, size in kept.items() if any(v != SUPPRESSED for v in key)]
    loss = sum(levels[a] / _top(a) for a in attributes) / len(attributes) if attributes else 0.0
    return Anonymised(
        records=records,
        k=k,
        levels=dict(levels),
        suppressed=len(suppressed),
        information_loss=loss,
        smallest_class=min(informative) if informative else None,
    )


def verify(records: Sequence[Mapping[str, str]], k: int) -> bool:
    """Every record that says anything shares its quasi-identifiers with k-1 others."""
    sizes = Counter(tuple(sorted(r.items())) for r in records)
    return all(size >= k for key, size in sizes.items() if any(v != SUPPRESSED for _, v in key))
