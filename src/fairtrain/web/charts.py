"""Horizontal bar charts drawn as inline SVG on the server: no JavaScript, readable by a
screen reader (a title and a description), and always followed by the same numbers in a
table, so the chart is never the only way to read them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Bar", "BarChart", "bar_chart"]

# Geometry in SVG user units; the SVG scales to the page width (viewBox). Narrow enough
# that 13-unit text stays readable when a phone shrinks the drawing to ~350 px.
LABEL_WIDTH = 110
BAR_AREA = 200
VALUE_WIDTH = 100
ROW_HEIGHT = 30
BAR_HEIGHT = 18
TOP = 8


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float
    text: str  # the value as the table shows it: "37.5%", "12.00 EUR"
    y: int
    width: float
    target_x: float | None  # where the target marker goes, when there is a target
    target_text: str | None


@dataclass(frozen=True, slots=True)
class BarChart:
    title: str
    description: str
    bars: tuple[Bar, ...]
    width: int
    height: int
    label_width: int
    bar_area: int
    has_target: bool


def bar_chart(
    title: str,
    rows: Sequence[tuple[str, float, str]],
    *,
    targets: Sequence[tuple[float, str] | None] | None = None,
    scale_max: float | None = None,
) -> BarChart:
    """One bar per ``(label, value, text)`` row, scaled to the largest value (or to
    ``scale_max``: 1.0 for shares); ``targets`` puts a marker on each bar's wanted value."""
    if targets is not None and len(targets) != len(rows):
        raise ValueError("one target (or None) per row")
    top_value = max(
        [scale_max or 0.0]
        + [value for _, value, _ in rows]
        + [t[0] for t in (targets or []) if t is not None]
    )

    def scaled(value: float) -> float:
        # value / top first: dividing by a tiny top would overflow to infinity.
        return round(min(max(value, 0.0) / top_value, 1.0) * BAR_AREA, 2) if top_value else 0.0

    bars: list[Bar] = []
    for index, (label, value, text) in enumerate(rows):
        target = targets[index] if targets is not None else None
        bars.append(
            Bar(
                label=label,
                value=value,
                text=text,
                y=TOP + index * ROW_HEIGHT,
                width=scaled(value),
                target_x=round(LABEL_WIDTH + scaled(target[0]), 2) if target else None,
                target_text=target[1] if target else None,
            )
        )
    parts = [f"{b.label}: {b.text}" for b in bars]
    description = "; ".join(parts) + "." if parts else "No data yet."
    return BarChart(
        title=title,
        description=description,
        bars=tuple(bars),
        width=LABEL_WIDTH + BAR_AREA + VALUE_WIDTH,
        height=TOP * 2 + max(len(bars), 1) * ROW_HEIGHT,
        label_width=LABEL_WIDTH,
        bar_area=BAR_AREA,
        has_target=any(b.target_x is not None for b in bars),
    )
