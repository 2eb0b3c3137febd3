"""The server-drawn bar charts and the builder's equal balance targets: pure values."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fairtrain.errors import InvalidInput
from fairtrain.licensing.service import Earning
from fairtrain.web.buyer_pages import equal_targets
from fairtrain.web.charts import BAR_AREA, LABEL_WIDTH, bar_chart
from fairtrain.web.contributor_pages import earnings_chart


def test_bars_scale_to_the_largest_value_and_describe_themselves() -> None:
    chart = bar_chart("Shares", [("a", 0.5, "50%"), ("b", 0.25, "25%")], scale_max=1.0)
    assert [b.width for b in chart.bars] == [BAR_AREA / 2, BAR_AREA / 4]
    assert chart.description == "a: 50%; b: 25%."
    assert not chart.has_target


def test_targets_are_marked_where_the_wanted_share_is() -> None:
    chart = bar_chart(
        "Shares", [("a", 0.75, "75%"), ("b", 0.25, "25%")],
        targets=[(0.5, "50%"), None], scale_max=1.0,
    )  # fmt: skip
    assert chart.has_target
    assert chart.bars[0].target_x == LABEL_WIDTH + BAR_AREA / 2
    assert chart.bars[1].target_x is None
    with pytest.raises(ValueError, match="one target"):
        bar_chart("x", [("a", 1.0, "1")], targets=[])


def test_an_empty_chart_says_so() -> None:
    chart = bar_chart("Earnings", [])
    assert chart.bars == () and chart.description == "No data yet." and chart.height > 0


@given(st.lists(st.floats(min_value=0, max_value=1e9, allow_nan=False), max_size=30))
def test_no_bar_leaves_the_drawing(values: list[float]) -> None:
    chart = bar_chart("v", [(str(i), v, str(v)) for i, v in enumerate(values)])
    assert all(0 <= b.width <= BAR_AREA + 1e-6 for b in chart.bars)


def test_equal_targets_cover_every_shared_combination_and_sum_to_one() -> None:
    facets = {
        "age_band": {"25-34": 3, "35-44": 2, "not_shared": 4},
        "gender": {"man": 1, "woman": 4},
    }
    targets = equal_targets(facets, ["age_band", "gender"])
    assert targets is not None
    assert sorted(targets["shares"]) == ["25-34|man", "25-34|woman", "35-44|man", "35-44|woman"]
    assert sum(targets["shares"].values()) == 1.0
    assert equal_targets(facets, []) is None
    with pytest.raises(InvalidInput) as refused:
        equal_targets({"gender": {"not_shared": 3}}, ["gender"])
    assert refused.value.code == "nothing_to_balance"


def _earning(amount: int, currency: str, month: int) -> Earning:
    when = datetime(2026, month, 3, tzinfo=UTC)
    return Earning(
        asset_id="ast_1", licence_id=f"lic_{month}", buyer="B", purpose="fine_tuning",
        territory="DE", starts_at=when, ends_at=when, state="active", amount_minor=amount,
        currency=currency, version_id="dsv_1", granted_at=when,
    )  # fmt: skip


def test_earnings_are_charted_per_month_in_the_main_currency() -> None:
    chart, currency = earnings_chart(
        [_earning(250, "EUR", 3), _earning(100, "EUR", 3), _earning(990, "EUR", 5),
         _earning(50, "USD", 4)]
    )  # fmt: skip
    assert currency == "EUR"
    bars = [(b.label, b.text) for b in chart.bars]
    assert bars == [("2026-03", "3.50 EUR"), ("2026-05", "9.90 EUR")]
    assert earnings_chart([]) == (bar_chart("Earnings per month", []), None)
