"""k-anonymity: the property always holds on what is delivered, generalisation goes no
further than needed, and the loss is reported."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fairtrain.datasets.kanon import SUPPRESSED, anonymise, continent_of, generalise, verify

BANDS = ["18-24", "25-34", "35-44", "45-54", "55-64", "65+", None]
GENDERS = ["woman", "man", "non-binary", None]
REGIONS = ["DE", "FR", "NL", "US", "BR", "JP", "KE", None]
LANGUAGES = ["en-GB", "en-US", "de", "fr", "pt-BR", None]

row = st.fixed_dictionaries(
    {
        "age_band": st.sampled_from(BANDS),
        "gender": st.sampled_from(GENDERS),
        "region": st.sampled_from(REGIONS),
        "accent": st.sampled_from([None, "Scottish", "Bavarian"]),
        "language": st.sampled_from(LANGUAGES),
    }
)


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(row, max_size=200), k=st.integers(min_value=1, max_value=10))
def test_what_is_delivered_is_always_k_anonymous(rows: list[dict[str, str | None]], k: int) -> None:
    result = anonymise(rows, k=k)
    assert len(result.records) == len(rows)
    assert verify(result.records, k)
    assert result.suppressed <= len(rows)
    assert 0.0 <= result.information_loss <= 1.0
    assert result.smallest_class is None or result.smallest_class >= k


def test_a_crowd_needs_no_generalisation() -> None:
    rows = [{"age_band": "25-34", "gender": "woman", "region": "DE", "accent": None,
             "language": "de"}] * 10  # fmt: skip
    result = anonymise(rows, k=5)
    assert result.levels == dict.fromkeys(result.levels, 0)
    assert result.suppressed == 0 and result.information_loss == 0.0
    assert result.records[0]["region"] == "DE"


def test_a_rare_person_is_generalised_then_suppressed() -> None:
    crowd = [{"age_band": "25-34", "gender": "woman", "region": "DE", "accent": None,
              "language": "de"}] * 40  # fmt: skip
    rare = {"age_band": "65+", "gender": "man", "region": "KE", "accent": "Scottish",
            "language": "en-GB"}  # fmt: skip
    result = anonymise([*crowd, rare], k=5)
    assert result.suppressed == 1  # within the 5% budget: only the rare record loses detail
    assert result.records[-1] == dict.fromkeys(result.records[-1], SUPPRESSED)
    assert result.records[0]["region"] == "DE"
    report = result.report()
    assert report["suppressed"] == 1 and report["k"] == 5


def test_ladders() -> None:
    assert generalise("age_band", "45-54", 1) == "35-54"
    assert generalise("age_band", "65+", 2) == "18+"
    assert generalise("region", "FR", 1) == "Europe" == continent_of("fr")
    assert generalise("language", "pt-BR", 1) == "pt"
    assert generalise("gender", "woman", 1) == SUPPRESSED
    assert generalise("accent", None, 0) == SUPPRESSED
