"""Street addresses, in the shapes people actually type them.

Anchors, each a regex:

* number + name + street type ("12 Timms Drive", "159 Eleftheriou Venizelou str");
* street-type word first, as in Romance and Slavic languages ("Rue de Virton 38",
  "ul. Biskupa Bogedaina 118", "Piazza Rezzonico 35");
* one compound word ending in a street type, then the number, as in Germanic and Nordic
  languages ("Nybyvägen 65", "Villacher Strasse 89", "Koskikatu 25");
* house/postal number + capitalised name + number ("87331 Dunajska 56");
* a capitalised name + number, only right after an address cue ("corner of Dalbraut 99");
* military and box addresses ("PSC 4355, Box 4187 APO AP 28906", "P.O. Box 149").

From each anchor the match grows over what follows an address line: "Apt. 905",
"Suite 824", a postcode, a state code, and capitalised place names across commas and
line breaks ("Ependes\\n\\n Switzerland 82590"). Growth stops at a lower-case word or
sentence punctuation, so "...Australia last night" ends at "Australia".
"""

from __future__ import annotations

import re

from presidio_analyzer import RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from fairtrain.privacy.recognizers._lexicon import CAPWORD, ENGLISH_STOPWORDS, NOT_STOP, words_of
from fairtrain.privacy.recognizers._rules import Rule, RuleRecognizer

__all__ = ["AddressRecognizer"]

_TYPE_AFTER = (
    r"street|streets|st|str|road|rd|avenue|ave|av|drive|dr|lane|ln|boulevard|blvd|way|"
    r"court|ct|place|pl|square|sq|terrace|crescent|close|parkway|pkwy|highway|hwy|route|"
    r"turnpike|mall|union|unions|trail|circle|cir|alley|row|walk|path|plaza|grove|"
    r"gardens?|hill|heights|park|point|pike|coves?|crossing|expressway|freeway|"
    r"junction|loop|manor|mews|passage|ridge|run|spur|station|summit|track|valley|view|"
    r"villages?|vista|wells?|creek|falls|ferry|fields?|forest|fork|harbou?r|haven|island|"
    r"knoll|lakes?|landing|lodge|meadows?|mill|mount|orchard|oval|pass|plains?|ports?|"
    r"prairie|ranch|rapids?|shoals?|shores?|springs?|stream|throughway|trace|tunnel|"
    r"underpass|ville|wall|strasse|straße|gasse|weg|allee|platz|straat|laan|steenweg|"
    r"vej|gade|katu|tie|utca|ulica|cesta|odos|embankment|parade|broadway|esplanade|quay|"
    r"tér|körút|köz|sor|rkp|u|útja|gate|gata|vei|veien|vegen|vej|gasse|straße"
)
# Street types written *before* the name.
_TYPE_BEFORE = (
    r"rue|rua|via|viale|piazza|piazzetta|piazzale|strada|stradella|calle|avenida|av\.|"
    r"ul\.|ulica|trg|plac|aleja|al\.|corso|largo|vicolo|contrada|borgo|quadra|travessa|"
    r"praça|praca|camino|carrer|chemin|allée|boulevard|avenue|impasse|paseo|rambla|"
    r"ulitsa|odos|leoforos|rruga|sokak|caddesi|chaussée|route|quai|cours|passeig|"
    r"strada\s+provinciale|strada\s+statale|via\s+privata|λεωφόρος|οδός|οδος"
)
# Suffixes glued to one compound word ("Wingert|weg", "Nyby|vägen").
_GLUED = (
    r"strasse|straße|str\.|gasse|weg|allee|platz|ring|damm|gade|vej|vägen|gatan|väg|"
    r"gränd|katu|tie|kuja|polku|straat|laan|plein|gracht|braut|gata|vegur|stræti|utca|"
    r"steig|pfad|stieg|ufer|markt|vænget|stien|veien|vegen|gaten|kaari|rinne|kuja|"
    r"straβe|ulica|cesta|ulice|utcája|weg"
)
_CONNECT = (
    r"(?:de|da|do|dos|das|del|della|delle|dei|di|du|la|le|les|des|van|von|der|den|am|an|na|"
    r"nad|pod|u|y|e|i)"
)
_NAMEWORD = rf"(?:{CAPWORD}|\d{{1,4}}\.?|{_CONNECT})"
_NUM = r"\d{1,5}[A-Za-z]?\b"
_LOWERWORD = rf"{NOT_STOP}[^\W\d_][\w'’-]*"
_LEAD = r"(?:\b\d{1,6}[A-Za-z]?[ ](?:\d{1,5}[ ])?)"

_CUE = re.compile(
    r"(?i)\b(?:address\w*|lives?|living|lived|located|locate|meet|corner\s+of|stop|enter|"
    r"off|deliver\w*|send\w*|ship\w*|moved|arrived|side\s+of|based|resid\w*|stay\w*|"
    r"visit\w*|office|house|flat|home)\b[^.\n?!]{0,25}$"
)


def _not_prose(span: str) -> bool:
    # Lower-case matches must not be ordinary English ("5 miles down the road").
    return not any(w in ENGLISH_STOPWORDS for w in words_of(span)[:-1])


_RULES = (
    Rule(
        "number-name-type",
        re.compile(rf"{_LEAD}(?:{_NAMEWORD}[ ]){{0,4}}(?:{CAPWORD}[ ])(?i:{_TYPE_AFTER})\b\.?"),
        0.75,
    ),
    Rule(
        "number-name-type-lower",
        re.compile(rf"(?i)\b\d{{1,5}}[a-z]?[ ](?:{_LOWERWORD}[ ]){{1,3}}(?:{_TYPE_AFTER})\b\.?"),
        0.6,
        validate=_not_prose,
    ),
    Rule(
        "name-type-number",
        re.compile(
            rf"\b{CAPWORD}[ ](?:(?:{_NAMEWORD}|{_LOWERWORD})[ ]){{0,3}}"
            rf"(?i:{_TYPE_AFTER})\.?[ ]{_NUM}"
        ),
        0.7,
    ),
    Rule(
        "type-name-number",
        re.compile(
            rf"{_LEAD}?\b(?i:{_TYPE_BEFORE})[ ](?:{_NAMEWORD}[ ]){{0,4}}(?:{CAPWORD}[ ])?{_NUM}"
        ),
        0.75,
    ),
    Rule(
        "type-name-number-lower",
        re.compile(rf"(?i){_LEAD}?\b(?:{_TYPE_BEFORE})[ ](?:{_LOWERWORD}[ ]){{1,3}}{_NUM}"),
        0.6,
        validate=_not_prose,
    ),
    Rule(
        "compound-number",
        re.compile(rf"(?i){_LEAD}?(?:\b{_LOWERWORD}[ ]){{0,2}}\b[^\W\d_]*(?:{_GLUED})[ ]{_NUM}"),
        0.75,
        validate=_not_prose,
    ),
    Rule(
        "number-capitalised-number",
        re.compile(rf"\b\d{{2,6}}[ ](?:{CAPWORD}[ ]){{1,3}}{_NUM}"),
        0.6,
    ),
    Rule(
        "cued-capitalised-number",
        re.compile(rf"(?<![\w.])(?:{CAPWORD}[ ]){{1,3}}{_NUM}(?![.,]\d)"),
        0.6,
        context=_CUE,
        before=40,
        after=0,
    ),
    Rule(
        "cued-number-capitalised",
        re.compile(rf"\b\d{{1,6}}[A-Za-z]?[ ](?:{CAPWORD}[ ]?){{1,3}}"),
        0.6,
        context=_CUE,
        before=40,
        after=0,
    ),
    Rule(
        "number-name-number-unit",
        re.compile(
            rf"(?i)\b\d{{2,6}}[ ](?:{_LOWERWORD}[ ]){{1,3}}\d{{1,5}}[a-z]?,?[ ]"
            r"(?:apt|apartment|suite|unit|flat)\.?[ ]?\#?\d+"
        ),
        0.7,
        validate=_not_prose,
    ),
    Rule(
        "military",
        re.compile(
            r"(?i)\b(?:psc|cmr|unit)[ ]\d{3,5},?[ ]box[ ]\d{3,5}"
            r"(?:\s*[adf]po[ ]a[aep][ ]\d{5})?"
        ),
        0.85,
    ),
    Rule(
        "ship",
        re.compile(
            r"(?i)\b(?:uss|usns|usnv|uscgc)[ ](?:[^\W\d_][\w'’-]*[ ]?){1,3}\s*fpo[ ]a[aep][ ]\d{5}"
        ),
        0.85,
    ),
    Rule(
        "po-box",
        re.compile(r"(?i)\b(?:p\.?[ ]?o\.?[ ]?box|postbox|post[ ]office[ ]box)[ ]?\d{1,6}\b"),
        0.75,
    ),
    Rule(
        "corner-of",
        re.compile(r"(?i)\b(?:the[ ])?corner[ ]of[ ][^\n?!]{2,60}?[ ]and[ ][^\n.?!,]{2,40}"),
        0.7,
    ),
)

# Line breaks may carry quoting marks ("> ") from forwarded mail.
_SEP = r"[ \t]*,?[ \t]*(?:\n[ \t>?]*,?[ \t]*){0,3}"
_POSTCODE = (
    r"\d{5}(?:-\d{3,4})?\b|\d{4}\b|\d{3}[ ]\d{2}\b|\d{2}-\d{3}\b|"
    r"[A-Z]\d[A-Z][ ]?\d[A-Z]\d\b|\d{4}[ ]?[A-Z]{2}\b|[A-Z]{1,2}\d[A-Z\d]?[ ]?\d[A-Z]{2}\b"
)
_TAIL = re.compile(
    rf"{_SEP}(?:"
    r"(?i:apt\.?|apartment|suite|ste\.?|unit|box|floor|fl\.|room|flat|no\.?|\#)"
    r"[ ]?\#?\d+[A-Za-z]?\b"
    rf"|{_POSTCODE}|\d{{1,4}}[A-Za-z]?\b\.?"
    rf"|[A-Z]{{2}}\b"
    rf"|{CAPWORD}(?:[ ](?:{_CONNECT}[ ])?{CAPWORD}){{0,3}}"
    r")"
)
# Capitalised words that start a new sentence or clause rather than name a place.
_NOT_PLACE = frozenset(
    [
        "i",
        "i'm",
        "i'll",
        "it",
        "we",
        "you",
        "he",
        "she",
        "they",
        "the",
        "this",
        "that",
        "there",
        "please",
        "thanks",
        "thank",
        "and",
        "but",
        "or",
        "so",
        "if",
        "then",
        "my",
        "our",
        "your",
        "his",
        "her",
        "their",
        "when",
        "where",
        "what",
        "who",
        "why",
        "how",
        "can",
        "could",
        "would",
        "should",
        "will",
        "may",
        "might",
        "is",
        "are",
        "was",
        "were",
        "do",
        "does",
        "did",
        "meet",
        "call",
        "text",
        "email",
        "phone",
    ]
)
_MAX_TAIL = 8


class AddressRecognizer(RuleRecognizer):
    """Anchor on a street line, then grow over unit, city, region, postcode and country."""

    def __init__(self) -> None:
        super().__init__("STREET_ADDRESS", _RULES, name="FairtrainAddressRecognizer")

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
    ) -> list[RecognizerResult]:
        """Anchors from the rules, each extended over the address's trailing lines."""
        results = super().analyze(text, entities, nlp_artifacts)
        for result in results:
            result.end = _grow(text, result.end)
        return results


def _grow(text: str, end: int) -> int:
    for _ in range(_MAX_TAIL):
        match = _TAIL.match(text, end)
        if match is None:
            break
        item = match.group(0).strip(" \t\n,")
        if item.split(" ")[0].casefold().rstrip(".") in _NOT_PLACE:
            break
        end = match.end()
    return end
