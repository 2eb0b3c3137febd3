"""The purposes a licence can allow or forbid: a tree aligned with W3C DPV 2.2.

Every purpose has a short key (used in the API and in compiled policies), an IRI (DPV's
own where DPV has the concept, its AI extension's capability for AI uses, else this
project's vocabulary) and plain words. The tree decides coverage:

- a permission for a purpose covers every purpose below it ("model training" covers
  "speech recognition training");
- a prohibition of a purpose forbids every purpose below it;
- a request for a broad purpose is refused when anything below it is forbidden: a buyer
  who declares "model training" could train a voice clone, so they must declare the
  narrower purpose they mean.

The tree is small and fixed in code (a change is a reviewed code change, never data),
and each purpose has a bit so a compiled policy is two integers (see ``compile``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

from fairtrain.errors import InvalidInput

__all__ = [
    "DPV",
    "DPV_AI",
    "FT",
    "PURPOSES",
    "Purpose",
    "ancestors",
    "by_iri",
    "descendants",
    "mask_of",
    "purpose",
    "resolve",
]

DPV = "https://w3id.org/dpv#"
DPV_AI = "https://w3id.org/dpv/ai#"
FT = "https://w3id.org/fairtrain/purpose#"


@dataclass(frozen=True, slots=True)
class Purpose:
    key: str
    iri: str
    label: str
    parent: str | None
    words: str  # how a person would say it: "to train AI that recognises speech"
    bit: int


_TREE: list[tuple[str, str, str, str | None, str]] = [
    # key, IRI, label, parent, plain words
    ("any", DPV + "Purpose", "Any purpose", None, "for any purpose"),
    (
        "research_and_development",
        DPV + "ResearchAndDevelopment",
        "Research and development",
        "any",
        "for research and product development",
    ),
    (
        "academic_research",
        DPV + "AcademicResearch",
        "Academic research",
        "research_and_development",
        "for research at universities and other public research bodies",
    ),
    (
        "non_commercial_research",
        DPV + "NonCommercialResearch",
        "Non-commercial research",
        "research_and_development",
        "for research that is not done to make money",
    ),
    (
        "commercial_research",
        DPV + "CommercialResearch",
        "Commercial research",
        "research_and_development",
        "for research by companies",
    ),
    (
        "model_training",
        FT + "ModelTraining",
        "AI model training",
        "research_and_development",
        "to train AI models",
    ),
    (
        "fine_tuning",
        FT + "FineTuning",
        "Fine-tuning",
        "model_training",
        "to adjust an existing AI model",
    ),
    (
        "model_evaluation",
        FT + "ModelEvaluation",
        "Model evaluation",
        "research_and_development",
        "to test how well AI models work",
    ),
    (
        "speech_recognition",
        DPV_AI + "SpeechRecognition",
        "Speech recognition",
        "model_training",
        "to train AI that turns speech into text",
    ),
    (
        "speech_synthesis",
        DPV_AI + "SpeechSynthesis",
        "Speech synthesis",
        "model_training",
        "to train AI that speaks",
    ),
    (
        "voice_cloning",
        FT + "VoiceCloning",
        "Voice cloning",
        "speech_synthesis",
        "to make AI that speaks with your voice",
    ),
    (
        "face_recognition",
        DPV_AI + "FaceRecognition",
        "Face recognition",
        "model_training",
        "to train AI that recognises faces",
    ),
    (
        "biometric_identification",
        DPV_AI + "BiometricIdentification",
        "Biometric identification",
        "model_training",
        "to train AI that tells who a person is from their body, face or voice",
    ),
    (
        "emotion_recognition",
        DPV_AI + "EmotionRecognition",
        "Emotion recognition",
        "model_training",
        "to train AI that guesses how people feel",
    ),
    (
        "content_generation",
        DPV_AI + "ContentGeneration",
        "Content generation",
        "model_training",
        "to train AI that makes new pictures, sound, video or text",
    ),
    (
        "synthetic_likeness",
        FT + "SyntheticLikeness",
        "Synthetic likeness",
        "content_generation",
        "to make fake pictures, video or sound that look or sound like you",
    ),
    (
        "commercial_use",
        DPV + "CommercialPurpose",
        "Commercial use",
        "any",
        "in products that are sold",
    ),
    ("marketing", DPV + "Marketing", "Marketing", "any", "for marketing"),
    (
        "advertising",
        DPV + "Advertising",
        "Advertising",
        "marketing",
        "for advertising",
    ),
    (
        "political_campaigning",
        DPV + "PoliticalCampaign",
        "Political campaigning",
        "any",
        "for political campaigns",
    ),
    (
        "surveillance",
        FT + "Surveillance",
        "Surveillance",
        "any",
        "to watch or track people",
    ),
]

PURPOSES: dict[str, Purpose] = {
    key: Purpose(key, iri, label, parent, words, bit)
    for bit, (key, iri, label, parent, words) in enumerate(_TREE)
}
assert len(PURPOSES) <= 63, "purpose bits must fit a signed 64-bit column"
_BY_IRI = {p.iri: p for p in PURPOSES.values()}


def purpose(key: str) -> Purpose:
    try:
        return PURPOSES[key]
    except KeyError:
        raise InvalidInput(
            f"'{key}' is not a purpose this platform knows; see GET /api/v1/purposes.",
            code="unknown_purpose",
        ) from None


def by_iri(iri: str) -> Purpose | None:
    return _BY_IRI.get(iri)


def resolve(value: str) -> Purpose:
    """A purpose from its key, its full IRI, or a prefixed name (``dpv:AcademicResearch``)."""
    if value in PURPOSES:
        return PURPOSES[value]
    for prefix, base in (("dpv:", DPV), ("ai:", DPV_AI), ("ftp:", FT), ("ft:", FT)):
        if value.startswith(prefix):
            value = base + value[len(prefix) :]
    found = _BY_IRI.get(value)
    if found is None:
        raise InvalidInput(
            f"'{value}' is not a purpose this platform knows; see GET /api/v1/purposes.",
            code="unknown_purpose",
        )
    return found


def ancestors(key: str) -> Iterator[Purpose]:
    """The purpose itself, then each broader one up to ``any``."""
    current: str | None = key
    while current is not None:
        node = PURPOSES[current]
        yield node
        current = node.parent


@cache
def descendants(key: str) -> frozenset[str]:
    """The purpose itself and every narrower one."""
    found = {key}
    for node in PURPOSES.values():
        if node.parent is not None and node.parent in found:
            found.add(node.key)
    # The list is ordered parents-first, so one pass is enough; make sure anyway.
    while True:
        more = {n.key for n in PURPOSES.values() if n.parent in found} - found
        if not more:
            return frozenset(found)
        found |= more


def mask_of(keys: frozenset[str] | set[str]) -> int:
    bits = 0
    for key in keys:
        bits |= 1 << PURPOSES[key].bit
    return bits
