"""Jurisdiction rules: extra steps and forbidden terms by where the contributor lives."""

from __future__ import annotations

import pytest

from fairtrain.consent import purposes
from fairtrain.consent.jurisdiction import check_terms, minimum_age, required_steps
from fairtrain.consent.odrl import PolicyError


def mask(*keys: str) -> int:
    closed: set[str] = set()
    for key in keys:
        closed |= purposes.descendants(key)
    return purposes.mask_of(closed)


OPEN = mask("any")
SAFE_BAN = mask("face_recognition", "biometric_identification", "voice_cloning",
                "synthetic_likeness", "emotion_recognition")  # fmt: skip


def test_terms_without_biometric_uses_need_nothing_anywhere() -> None:
    for where in ("DE", "US-IL", "US-TX", "JP", None):
        assert check_terms(where, OPEN, SAFE_BAN, frozenset()) == []


def test_gdpr_needs_explicit_consent_for_biometric_uses() -> None:
    with pytest.raises(PolicyError) as raised:
        check_terms("FR", OPEN, 0, frozenset())
    assert raised.value.code == "explicit_consent_required"
    assert raised.value.path == "explicit_biometric_consent"
    assert "face recognition" in raised.value.detail
    met = check_terms("FR", OPEN, 0, frozenset({"explicit_biometric_consent"}))
    assert met == ["gdpr_art9_biometric"]
    assert [r.key for r in required_steps("NO", OPEN, 0)] == ["gdpr_art9_biometric"]  # EEA
    assert required_steps("US", OPEN, 0) == []


def test_illinois_forbids_biometric_terms_whatever_is_attested() -> None:
    with pytest.raises(PolicyError) as raised:
        check_terms("US-IL", OPEN, 0, frozenset({"explicit_biometric_consent"}))
    assert raised.value.code == "forbidden_in_jurisdiction"
    assert "Illinois" in raised.value.detail
    assert check_terms("US-IL", OPEN, SAFE_BAN, frozenset()) == []
    assert check_terms("US-CA", OPEN, 0, frozenset()) == []


def test_minimum_age_follows_the_age_of_majority() -> None:
    assert minimum_age("DE") == 18
    assert minimum_age("US-AL") == 19
    assert minimum_age("US-MS") == 21
    assert minimum_age("US-CA") == 18
    assert minimum_age("KR") == 19
