"""A marketplace of real recordings for the dataset and licensing tests: contributors in
four age band × gender groups, under terms with different prices, and three who the
build must leave out for different reasons."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.factories import Actor, list_asset, share_profile, sign_up_buyer, sign_up_contributor
from tests.media_factory import speech_wav

__all__ = ["BALANCED", "GROUPS", "Market", "market"]

SENTENCES = [
    "Please call me back about the garden fence tomorrow morning.",
    "The train to the coast leaves from platform seven at noon.",
    "I would like two loaves of rye bread and a small cake.",
    "Our meeting moved to Thursday because the room was booked.",
    "The library closes early on Sundays during the summer.",
    "Turn left after the bakery and walk until the blue gate.",
    "She painted the kitchen yellow and the hallway green.",
    "We counted forty three boats in the harbour last night.",
    "The soup needs more salt and a little black pepper.",
    "My brother fixed the bicycle chain with an old spoon.",
    "Rain is expected all weekend so bring an umbrella.",
    "The museum opens a new exhibition about ancient maps.",
    "He forgot his keys again and waited on the steps.",
    "Grandmother keeps her letters in a wooden box.",
    "The concert was moved indoors because of the wind.",
    "Fresh strawberries are cheaper at the Saturday market.",
]
BORN = {"25-34": "1996-05-05", "35-44": "1986-05-05"}
GROUPS = ["25-34|woman", "25-34|man", "35-44|woman", "35-44|man"]
PRICES = (100, 137, 250, 99)  # per licence, in cents, for each group's contributor


@dataclass
class Market:
    buyer: Actor
    contributors: list[Actor] = field(default_factory=list)
    by_group: dict[str, list[str]] = field(default_factory=dict)
    research_only: str = ""
    in_dollars: str = ""
    private: str = ""


@pytest.fixture
def market(make_client: Any, tmp_path: Path) -> Market:
    buyer = sign_up_buyer(make_client(), org_name="Balanced Speech")
    world = Market(buyer=buyer)
    spoken = iter(SENTENCES)

    def recording(owner: Actor, **terms: Any) -> str:
        path = speech_wav(tmp_path, next(spoken), name=f"{len(world.contributors)}.wav")
        return list_asset(owner, path.read_bytes(), "voice.wav", terms=terms or None)

    # Pool per group: 3, 2, 2, 4 recordings under the protective default terms, each
    # contributor asking a different price (so shares are not all alike).
    for index, (group, count) in enumerate(zip(GROUPS, (3, 2, 2, 4), strict=True)):
        band, gender = group.split("|")
        person = sign_up_contributor(make_client(), name=f"Voice {group}", born=BORN[band])
        share_profile(person, share_age_band=True, gender=gender)
        world.contributors.append(person)
        price = {"template": "default", "price_minor": PRICES[index], "currency": "EUR"}
        world.by_group[group] = [recording(person, **price) for _ in range(count)]
    academic = sign_up_contributor(make_client(), name="Only Research", born=BORN["25-34"])
    share_profile(academic, share_age_band=True, gender="woman")
    world.research_only = recording(academic, template="research_only")
    dollars = sign_up_contributor(make_client(), name="In Dollars", born=BORN["35-44"])
    share_profile(dollars, share_age_band=True, gender="man")
    world.in_dollars = recording(
        dollars, template="commercial_training", price_minor=150, currency="USD"
    )
    quiet = sign_up_contributor(make_client(), name="Keeps Private")
    world.private = recording(quiet)
    world.contributors += [academic, dollars, quiet]
    return world


BALANCED = {
    "name": "Read English speech, balanced",
    "purpose": "speech_recognition",
    "territory": "DE",
    "term_days": 365,
    "currency": "EUR",
    "selection": {"modality": ["audio"]},
    "targets": {"dimensions": ["age_band", "gender"], "shares": dict.fromkeys(GROUPS, 0.25)},
    "size": 8,
}
