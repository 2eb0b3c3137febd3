"""Royalty splits (largest remainder) and contribution units: examples, refusals, and the
properties every split must have over generated pools and weights."""

from __future__ import annotations

import random
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairtrain.config import ContributionUnit, Settings
from fairtrain.errors import InvalidInput
from fairtrain.ledger.royalties import contribution_units, split

keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=8)
int_weights = st.integers(min_value=1, max_value=10**6)
decimal_weights = st.decimals(
    min_value=Decimal("0.001"), max_value=Decimal(10**6), places=3, allow_nan=False
)
weight_maps = st.dictionaries(keys, int_weights | decimal_weights, min_size=1, max_size=25)
pools = st.integers(min_value=0, max_value=10**12)


def exact_quota(pool: int, weights: dict[str, int | Decimal], key: str) -> Fraction:
    total = sum((Fraction(w) for w in weights.values()), Fraction(0))
    return pool * Fraction(weights[key]) / total


# -- examples ------------------------------------------------------------------------------


def test_even_split_gives_the_odd_cent_by_key() -> None:
    assert split(100, {"b": 1, "a": 1, "c": 1}) == {"a": 34, "b": 33, "c": 33}


def test_largest_remainders_get_the_leftover_cents() -> None:
    # Quotas 4.7, 3.2, 2.1 → floors 4, 3, 2 (9); the one cent left goes to the 0.7.
    assert split(10, {"x": 47, "y": 32, "z": 21}) == {"x": 5, "y": 3, "z": 2}


def test_decimal_weights_are_exact() -> None:
    # Minutes of audio: 0.1 + 0.2 must not lose a cent to binary floating point.
    shares = split(300, {"p": Decimal("0.1"), "q": Decimal("0.2")})
    assert shares == {"p": 100, "q": 200}


def test_a_pool_of_zero_pays_nobody() -> None:
    assert split(0, {"a": 3, "b": 5}) == {"a": 0, "b": 0}


def test_a_huge_pool_keeps_every_cent() -> None:
    pool = 10**15 + 7
    shares = split(pool, {f"k{i}": i + 1 for i in range(97)})
    assert sum(shares.values()) == pool


@pytest.mark.parametrize(
    ("weights", "code"),
    [
        ({}, "no_weights"),
        ({"a": 0}, "invalid_weight"),
        ({"a": 2, "b": -1}, "invalid_weight"),
        ({"a": Decimal("-0.5")}, "invalid_weight"),
        ({"a": Decimal("NaN")}, "invalid_weight"),
        ({"a": Decimal("Infinity")}, "invalid_weight"),
        ({"a": 1.5}, "invalid_weight"),
        ({"a": True}, "invalid_weight"),
        ({"a": "3"}, "invalid_weight"),
    ],
)
def test_bad_weights_are_refused(weights: dict[str, object], code: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        split(100, weights)  # type: ignore[arg-type]
    assert refused.value.code == code


@pytest.mark.parametrize("pool", [-1, 1.5, Decimal(3), True, "10"])
def test_bad_pools_are_refused(pool: object) -> None:
    with pytest.raises(InvalidInput) as refused:
        split(pool, {"a": 1})  # type: ignore[arg-type]
    assert refused.value.code == "invalid_pool"


# -- properties ----------------------------------------------------------------------------


@given(pools, weight_maps)
@settings(max_examples=300, deadline=None)
def test_conservation_no_cent_lost_or_invented(
    pool: int, weights: dict[str, int | Decimal]
) -> None:
    shares = split(pool, weights)
    assert set(shares) == set(weights)
    assert sum(shares.values()) == pool
    assert all(share >= 0 for share in shares.values())


@given(pools, weight_maps)
@settings(max_examples=300, deadline=None)
def test_each_share_is_within_one_cent_of_its_exact_quota(
    pool: int, weights: dict[str, int | Decimal]
) -> None:
    shares = split(pool, weights)
    for key, share in shares.items():
        quota = exact_quota(pool, weights, key)
        # Hamilton: the floor of the quota, or one more.
        assert quota - 1 < share < quota + 1
        assert share in (int(quota), int(quota) + 1)


@given(pools, weight_maps)
@settings(max_examples=300, deadline=None)
def test_a_larger_weight_never_gets_less(pool: int, weights: dict[str, int | Decimal]) -> None:
    shares = split(pool, weights)
    for a in weights:
        for b in weights:
            if Fraction(weights[a]) > Fraction(weights[b]):
                assert shares[a] >= shares[b], (a, b)
            if Fraction(weights[a]) == Fraction(weights[b]):
                assert abs(shares[a] - shares[b]) <= 1


@given(pools, weight_maps, st.randoms(use_true_random=False))
@settings(max_examples=200, deadline=None)
def test_the_order_of_the_mapping_does_not_matter(
    pool: int, weights: dict[str, int | Decimal], rng: random.Random
) -> None:
    items = list(weights.items())
    rng.shuffle(items)
    assert split(pool, dict(items)) == split(pool, weights)


@given(pools, weight_maps, st.integers(min_value=2, max_value=50))
@settings(max_examples=100, deadline=None)
def test_scaling_every_weight_changes_nothing(
    pool: int, weights: dict[str, int | Decimal], factor: int
) -> None:
    scaled = {k: w * factor for k, w in weights.items()}
    assert split(pool, scaled) == split(pool, weights)


# -- contribution units --------------------------------------------------------------------


def test_default_units_per_modality() -> None:
    assert contribution_units("audio", duration_seconds=90) == Decimal("1.5")
    assert contribution_units("video", duration_seconds=12.3) == Decimal("12.3") / 60
    assert contribution_units("image") == 1
    assert contribution_units("text") == 1
    assert contribution_units("chat", message_count=42) == 42
    assert contribution_units("document", page_count=7) == 7


def test_units_come_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAIRTRAIN_CONTRIBUTION_UNITS", '{"audio": "items", "image": "pages"}')
    units = Settings().contribution_units
    # Named modalities change; the others keep their default unit.
    assert units["audio"] == ContributionUnit.ITEMS
    assert units["image"] == ContributionUnit.PAGES
    assert units["video"] == ContributionUnit.MINUTES
    assert contribution_units("audio", duration_seconds=600, units=units) == 1
    assert contribution_units("image", page_count=3, units=units) == 3


def test_a_bad_unit_in_the_settings_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAIRTRAIN_CONTRIBUTION_UNITS", '{"audio": "litres"}')
    with pytest.raises(ValueError, match="audio"):
        Settings()


@pytest.mark.parametrize(
    ("modality", "kwargs", "code"),
    [
        ("hologram", {}, "unknown_modality"),
        ("audio", {}, "missing_measure"),
        ("audio", {"duration_seconds": -1}, "invalid_measure"),
        ("audio", {"duration_seconds": float("nan")}, "invalid_measure"),
        ("chat", {}, "missing_measure"),
        ("chat", {"message_count": -2}, "invalid_measure"),
        ("document", {"message_count": 3}, "missing_measure"),
        ("document", {"page_count": True}, "missing_measure"),
    ],
)
def test_contribution_units_refusals(modality: str, kwargs: dict[str, object], code: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        contribution_units(modality, **kwargs)  # type: ignore[arg-type]
    assert refused.value.code == code


def test_units_feed_a_split() -> None:
    weights = {
        "usr_a": contribution_units("audio", duration_seconds=125),
        "usr_b": contribution_units("audio", duration_seconds=60),
        "usr_c": contribution_units("audio", duration_seconds=15),
    }
    shares = split(1000, weights)
    assert shares == {"usr_a": 625, "usr_b": 300, "usr_c": 75}
