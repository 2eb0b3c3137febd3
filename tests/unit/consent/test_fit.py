"""Licence fit: the compiled decision and the full policy decision agree on every exact
policy, and a licence is judged over its whole term, not the moment it starts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from fairtrain.consent import purposes
from fairtrain.consent.compile import compile_policy
from fairtrain.consent.fit import LicenceAsk, TermsSummary, compiled_fit, policy_fit
from fairtrain.consent.odrl import Constraint, Policy, Rule, parse_policy, serialise_policy
from fairtrain.consent.templates import TEMPLATES, build_template
from fairtrain.money import to_minor

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TARGET = "https://x/assets/a"


def summary(policy: Policy) -> TermsSummary:
    compiled = compile_policy(policy)
    return TermsSummary(
        permit_mask=compiled.permit_mask,
        ban_mask=compiled.ban_mask,
        territories=compiled.territories_text(),
        not_after=compiled.not_after,
        term_days=compiled.term_days,
        price_minor=(
            to_minor(compiled.price, compiled.currency)
            if compiled.price is not None and compiled.currency
            else None
        ),
        currency=compiled.currency,
    )


def custom(
    allowed: tuple[str, ...],
    banned: tuple[str, ...],
    places: tuple[str, ...],
    days: int | None,
    ends: datetime | None,
    cents: int,
) -> Policy:
    constraints: list[Constraint] = [Constraint("purpose", "isAnyOf", allowed)]
    if places:
        constraints.append(Constraint("spatial", "isAnyOf", places))
    if days is not None:
        constraints.append(Constraint("elapsedTime", "lteq", (Decimal(days),)))
    if ends is not None:
        constraints.append(Constraint("dateTime", "lt", (ends,)))
    pay = Rule("u#d", "duty", ("compensate",), None, None,
               (Constraint("payAmount", "eq", (Decimal(cents).scaleb(-2),), "EUR"),))  # fmt: skip
    permission = Rule("u#p", "permission", ("use",), TARGET, None, tuple(constraints), (pay,))
    prohibitions = (
        (Rule("u#x", "prohibition", ("use",), TARGET, None,
              (Constraint("purpose", "isAnyOf", banned),)),)
        if banned else ()
    )  # fmt: skip
    built = Policy("https://x/p", "Set", (permission,), prohibitions, target=TARGET)
    return parse_policy(serialise_policy(built))  # as stored: every rule knows its path


KEYS = sorted(purposes.PURPOSES)


@settings(max_examples=300, deadline=None)
@given(
    allowed=st.lists(st.sampled_from(KEYS), min_size=1, max_size=3, unique=True),
    banned=st.lists(st.sampled_from(KEYS), max_size=3, unique=True),
    places=st.lists(st.sampled_from(["DE", "FR", "US", "EU", "EEA"]), max_size=2, unique=True),
    days=st.one_of(st.none(), st.integers(min_value=30, max_value=800)),
    ends_in=st.one_of(st.none(), st.integers(min_value=10, max_value=900)),
    cents=st.integers(min_value=1, max_value=5000),
    want=st.sampled_from(KEYS),
    territory=st.sampled_from(["DE", "FR", "US", "NO", "JP"]),
    term=st.integers(min_value=1, max_value=900),
    currency=st.sampled_from(["EUR", "USD"]),
    offered_extra=st.integers(min_value=-100, max_value=100),
)
def test_compiled_and_full_decisions_agree_on_exact_policies(
    allowed: list[str],
    banned: list[str],
    places: list[str],
    days: int | None,
    ends_in: int | None,
    cents: int,
    want: str,
    territory: str,
    term: int,
    currency: str,
    offered_extra: int,
) -> None:
    ends = NOW + timedelta(days=ends_in) if ends_in is not None else None
    policy = custom(tuple(allowed), tuple(banned), tuple(places), days, ends, cents)
    assert compile_policy(policy).exact
    ask = LicenceAsk(want, territory, term, currency, NOW)
    offered = max(0, cents + offered_extra)
    fast = compiled_fit(summary(policy), ask, offered)
    full = policy_fit(
        policy, ask, target=TARGET, offered=Decimal(offered).scaleb(-2), currency=currency
    )
    assert fast.ok == full.ok, (fast, full)


def test_templates_agree_for_every_purpose() -> None:
    for key in TEMPLATES:
        policy = build_template(key, uid="u", target=TARGET, price=Decimal("1.50"), currency="EUR")
        for want in KEYS:
            ask = LicenceAsk(want, "DE", 365, "EUR", NOW)
            fast = compiled_fit(summary(policy), ask)
            full = policy_fit(policy, ask, target=TARGET, offered=Decimal("1.50"), currency="EUR")
            assert fast.ok == full.ok, (key, want, fast, full)


def test_a_licence_must_be_allowed_for_its_whole_term() -> None:
    policy = custom(("model_training",), (), (), 365, NOW + timedelta(days=100), 100)
    short = LicenceAsk("fine_tuning", "DE", 90, "EUR", NOW)
    long = LicenceAsk("fine_tuning", "DE", 120, "EUR", NOW)
    too_long = LicenceAsk("fine_tuning", "DE", 400, "EUR", NOW)
    assert compiled_fit(summary(policy), short).ok
    ends = compiled_fit(summary(policy), long)
    assert ends.code == "terms_end_before_licence" and "11 March 2027" in (ends.reason or "")
    full = policy_fit(policy, long, target=TARGET, offered=Decimal(1), currency="EUR")
    assert not full.ok and full.code == "term_not_covered" and full.rule_path == "permission[0]"
    assert compiled_fit(summary(policy), too_long).code in (
        "term_too_long",
        "terms_end_before_licence",
    )


def test_reasons_name_what_failed() -> None:
    policy = custom(("model_training",), ("voice_cloning",), ("EU",), None, None, 200)
    terms = summary(policy)
    assert compiled_fit(terms, LicenceAsk("voice_cloning", "DE", 30, "EUR", NOW)).code == (
        "purpose_prohibited"
    )
    assert compiled_fit(terms, LicenceAsk("fine_tuning", "US", 30, "EUR", NOW)).code == (
        "territory_not_permitted"
    )
    assert compiled_fit(terms, LicenceAsk("fine_tuning", "DE", 30, "USD", NOW)).code == (
        "currency_mismatch"
    )
    assert compiled_fit(terms, LicenceAsk("fine_tuning", "DE", 30, "EUR", NOW), 150).code == (
        "price_too_low"
    )
    assert compiled_fit(terms, LicenceAsk("marketing", "DE", 30, "EUR", NOW)).code == (
        "purpose_not_permitted"
    )
    full = policy_fit(
        policy,
        LicenceAsk("voice_cloning", "DE", 30, "EUR", NOW),
        target=TARGET,
        offered=Decimal(2),
        currency="EUR",
    )
    assert full.code == "purpose_prohibited" and full.rule_path == "prohibition[0]"
