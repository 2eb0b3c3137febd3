"""Properties of detection and placeholder assignment, over generated inputs."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from fairtrain.privacy.text import Span, detect, redact

FIRST = ["Anna", "Bartek", "Chiara", "Dmitri", "Esther", "Farid", "Greta", "Hiro"]
LAST = ["Kowalska", "Nowak", "Rossi", "Ivanov", "Cohen", "Haddad", "Lind", "Sato"]


@st.composite
def documents(draw: st.DrawFn) -> tuple[str, list[Span], list[str]]:
    """A text made of person mentions joined by filler, with the exact spans."""
    people = draw(
        st.lists(st.tuples(st.sampled_from(FIRST), st.sampled_from(LAST)), min_size=1, max_size=6)
    )
    text, spans, surfaces = "", [], []
    for first, last in people:
        text += draw(st.sampled_from(["then ", "and also ", "we saw ", "- "]))
        surface = f"{first} {last}"
        spans.append(Span(len(text), len(text) + len(surface), "PERSON", 1.0))
        surfaces.append(surface)
        text += surface + ". "
    return text, spans, surfaces


@given(documents())
@settings(max_examples=60, deadline=None)
def test_same_person_same_placeholder_and_different_people_differ(
    doc: tuple[str, list[Span], list[str]],
) -> None:
    text, spans, surfaces = doc
    result = redact(text, spans)
    by_surface: dict[str, str] = {}
    for placeholder, replaced in result.placeholders.items():
        assert placeholder.startswith("[PERSON_")
        for span in replaced:
            by_surface.setdefault(text[span.start : span.end], placeholder)
            assert by_surface[text[span.start : span.end]] == placeholder
    assert len(set(by_surface.values())) == len(set(surfaces))
    # Numbered 1..n in order of first mention.
    order = list(dict.fromkeys(by_surface[s] for s in surfaces))
    assert order == [f"[PERSON_{i}]" for i in range(1, len(order) + 1)]
    for surface in surfaces:
        assert surface not in result.text


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=200))
@settings(max_examples=40, deadline=None)
def test_detect_returns_disjoint_in_bounds_spans(text: str) -> None:
    spans = detect(text)
    assert spans == sorted(spans)
    for span in spans:
        assert 0 <= span.start < span.end <= len(text)
    for left, right in itertools.pairwise(spans):
        assert left.end <= right.start
