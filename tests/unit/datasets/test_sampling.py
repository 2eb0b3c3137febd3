"""Stratified sampling: shares add up, targets are met within rounding, shortfalls are
reported (not hidden), and the same pool gives the same sample in any order."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairtrain.datasets.sampling import (
    Candidate,
    Targets,
    allocate,
    jensen_shannon,
    representation,
    sample,
    total_variation,
)

GROUPS = ["18-24|woman", "18-24|man", "25-34|woman", "25-34|man"]
EQUAL = Targets(("age_band", "gender"), dict.fromkeys(GROUPS, 0.25))
SEED = b"seed-for-tests"


def pool(counts: dict[str, int], units: float = 1.0) -> list[Candidate]:
    return [
        Candidate(f"ast_{label}_{i}", label, units) for label, n in counts.items() for i in range(n)
    ]


@given(
    total=st.integers(min_value=0, max_value=10_000),
    shares=st.dictionaries(
        st.text(min_size=1, max_size=3), st.floats(min_value=0.01, max_value=10), min_size=1
    ),
)
def test_allocation_adds_up_and_stays_within_one_of_the_exact_quota(
    total: int, shares: dict[str, float]
) -> None:
    allocated = allocate(total, shares)
    assert sum(allocated.values()) == total
    weight = sum(shares.values())
    for key, value in allocated.items():
        assert abs(value - total * shares[key] / weight) < 1


def test_equal_targets_are_met_exactly_when_the_pool_allows() -> None:
    candidates = pool({"18-24|woman": 40, "18-24|man": 90, "25-34|woman": 30, "25-34|man": 70,
                       "35-44|man": 50})  # fmt: skip
    drawn = sample(candidates, EQUAL, size=100, seed=SEED)
    report = representation(drawn.selected, candidates, EQUAL, dimensions=EQUAL.dimensions)
    assert len(drawn.selected) == 100
    assert {g.label: g.count for g in report.groups if g.target_share} == dict.fromkeys(GROUPS, 25)
    assert report.total_variation == 0.0 and report.jensen_shannon == 0.0
    assert report.over_represented == () and report.under_represented == ()
    assert len(drawn.left_out["not_in_targets"]) == 50  # the 35-44s were not asked for
    assert len(drawn.left_out["over_quota"]) == 230 - 100


def test_a_short_group_is_reported_not_hidden() -> None:
    candidates = pool({"18-24|woman": 10, "18-24|man": 90, "25-34|woman": 90, "25-34|man": 90})
    drawn = sample(candidates, EQUAL, size=100, seed=SEED)
    assert drawn.shortfall == {"18-24|woman": 15}
    report = representation(
        drawn.selected, candidates, EQUAL, dimensions=EQUAL.dimensions, shortfall=drawn.shortfall
    )
    assert report.under_represented == ("18-24|woman",)
    assert report.total_variation is not None and report.total_variation > 0.05
    assert "18-24|woman" in report.notes[0]
    filled = sample(candidates, EQUAL, size=100, seed=SEED, fill_shortfall=True)
    assert len(filled.selected) == 100 and filled.shortfall == {"18-24|woman": 15}


def test_the_same_pool_gives_the_same_sample_in_any_order() -> None:
    candidates = pool(dict.fromkeys(GROUPS, 50))
    first = sample(candidates, EQUAL, size=40, seed=SEED)
    shuffled = candidates[:]
    random.Random(7).shuffle(shuffled)
    again = sample(shuffled, EQUAL, size=40, seed=SEED)
    assert {c.key for c in first.selected} == {c.key for c in again.selected}
    other_seed = sample(candidates, EQUAL, size=40, seed=b"another")
    assert {c.key for c in first.selected} != {c.key for c in other_seed.selected}


def test_sampling_by_units_balances_minutes_not_items() -> None:
    short = [Candidate(f"s{i}", "18-24|woman", 0.5) for i in range(100)]
    long = [Candidate(f"l{i}", "18-24|man", 5.0) for i in range(100)]
    targets = Targets(("age_band", "gender"), {"18-24|woman": 0.5, "18-24|man": 0.5})
    drawn = sample(short + long, targets, size=50.0, seed=SEED, measure="units")
    minutes = {label: sum(c.units for c in drawn.selected if c.stratum == label)
               for label in targets.shares}  # fmt: skip
    assert minutes == {"18-24|woman": 25.0, "18-24|man": 25.0}


@settings(max_examples=150, deadline=None)
@given(
    counts=st.lists(st.integers(min_value=0, max_value=60), min_size=4, max_size=4),
    size=st.integers(min_value=0, max_value=200),
)
def test_never_more_than_asked_and_never_an_asset_twice(counts: list[int], size: int) -> None:
    candidates = pool(dict(zip(GROUPS, counts, strict=True)))
    drawn = sample(candidates, EQUAL, size=size, seed=SEED)
    keys = [c.key for c in drawn.selected]
    assert len(keys) == len(set(keys)) <= size
    left = {k for keys_ in drawn.left_out.values() for k in keys_}
    assert left | set(keys) == {c.key for c in candidates} and not left & set(keys)
    report = representation(drawn.selected, candidates, EQUAL, dimensions=EQUAL.dimensions)
    if not drawn.shortfall and keys:
        assert all(abs(g.gap or 0) <= 1 / len(keys) + 1e-9 for g in report.groups)


def test_divergences() -> None:
    assert total_variation({"a": 1.0}, {"b": 1.0}) == 1.0
    assert jensen_shannon({"a": 1.0}, {"b": 1.0}) == pytest.approx(1.0)
    assert jensen_shannon({"a": 0.5, "b": 0.5}, {"a": 0.5, "b": 0.5}) == 0.0


@pytest.mark.parametrize(
    "shares", [{}, {"18-24|woman": 0.7}, {"18-24": 1.0}, {"18-24|woman": -0.5, "x|y": 1.5}]
)
def test_bad_targets_are_refused(shares: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        Targets(("age_band", "gender"), shares)
