"""Who and where: names by cue, titles, ages, nationalities, places, organisations.

The spaCy model finds most capitalised names in well-formed prose. These rules catch
what a small statistical model misses and what chat text looks like: a name right after
"my name is" or "Mrs.", an age after "turned", a country written in lower case, a
company ending in "Ltd". Place and nationality lists come from ``pycountry`` (shipped
data, no download) plus a hand-kept list of demonyms.
"""

from __future__ import annotations

import re
from functools import cache

import pycountry

from fairtrain.privacy.recognizers._lexicon import (
    CAPWORD,
    ENGLISH_STOPWORDS,
    MONTHS_AND_DAYS,
    NOT_STOP,
    words_of,
)
from fairtrain.privacy.recognizers._rules import Rule, RuleRecognizer

__all__ = [
    "age_recognizer",
    "location_recognizer",
    "nationality_recognizer",
    "organisation_recognizer",
    "person_recognizer",
    "title_recognizer",
]

_HONORIFIC = r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame|Lady|Lord|Rev|Fr|Mme|Mlle|Herr|Frau|Sra?|Srta)"
# A capitalised name of one to four parts, with initials: "Vanessa P. Hertzog".
_NAME = rf"{CAPWORD}(?:[ ](?:[A-Z]\.?|{CAPWORD})){{0,3}}"
_LOWER_NAME = r"[^\W\d_][\w'’-]+(?:[ ][^\W\d_][\w'’-]+)?"


def _is_name(span: str) -> bool:
    words = [w for w in words_of(span) if len(w) > 1]  # initials are not stop words
    return bool(words) and not any(
        w in ENGLISH_STOPWORDS or w in MONTHS_AND_DAYS or w in _place_words() for w in words
    )


def _trim_name(span: str) -> bool:
    return _is_name(span)


_LABELS = frozenset(
    [
        "name",
        "date",
        "time",
        "phone",
        "tel",
        "mobile",
        "fax",
        "email",
        "e-mail",
        "mail",
        "address",
        "website",
        "web",
        "url",
        "when",
        "where",
        "re",
        "subject",
        "from",
        "to",
        "cc",
        "bcc",
        "note",
        "ps",
        "bot",
        "user",
        "customer",
        "agent",
        "system",
        "q",
        "a",
        "question",
        "answer",
        "personal",
        "info",
        "id",
        "ssn",
        "dob",
        "zip",
        "city",
        "country",
        "state",
        "title",
        "company",
        "position",
        "job",
        "status",
        "type",
        "size",
        "price",
        "total",
        "subtotal",
        "tax",
        "order",
        "item",
        "ref",
        "reference",
        "account",
        "card",
        "iban",
        "warning",
        "error",
        "info",
        "debug",
        "http",
        "https",
        "ftp",
    ]
)


def _is_speaker(span: str) -> bool:
    return span.casefold() not in _LABELS and _is_name(span)


def person_recognizer() -> RuleRecognizer:
    """Names introduced by a cue or an honorific."""
    cue = (
        r"(?i:my[ ]name[ ]is|my[ ]name's|name\s*:|i[ ]am|i'm|this[ ]is|call[ ]me|called|"
        r"dear|hi|hello|hey|thanks|thank[ ]you|regards|cheers|signed|sincerely|named|"
        r"named[ ](?:him|her|them)|(?:first|last|full|sur|user)[ ]?name\??|"
        r"met|meet|ask|tell|told|with|from|by|said|says|"
        r"my[ ](?:kid|son|daughter|wife|husband|brother|sister|mom|mum|mother|dad|father|"
        r"friend|boss|partner|boyfriend|girlfriend|colleague|neighbou?r|cousin|aunt|uncle))"
    )
    return RuleRecognizer(
        "PERSON",
        (
            Rule(
                "honorific",
                re.compile(rf"\b{_HONORIFIC}\.?[ ](?P<name>{_NAME})"),
                0.8,
                group="name",
            ),
            Rule(
                "cue",
                re.compile(rf"\b{cue}[,:]?[ \t]+(?P<name>{_NAME})"),
                0.55,
                group="name",
                validate=_is_name,
            ),
            Rule(
                "cue-lower",
                re.compile(
                    rf"(?i)\b(?:my[ ]name[ ]is|my[ ]name's|name\s*:|call[ ]me|i[ ]am[ ]called|"
                    rf"i'm[ ]called|this[ ]is)[ ]+(?P<name>{_LOWER_NAME})"
                ),
                0.5,
                group="name",
                validate=_trim_name,
            ),
            Rule(
                "own-line",
                # A line holding only a name, as in signatures and address blocks.
                re.compile(
                    rf"(?m)^[ \t>?]*(?P<name>{NOT_STOP}{CAPWORD}"
                    rf"(?:[ ](?:[A-Z]\.?|{NOT_STOP}{CAPWORD})){{1,3}})[ \t]*$"
                ),
                0.5,
                group="name",
                validate=_is_name,
            ),
            Rule(
                "list",
                re.compile(rf"(?<=[:,][ ])(?P<name>{NOT_STOP}{CAPWORD})(?=,[ ]{CAPWORD},)"),
                0.5,
                group="name",
                validate=_is_name,
            ),
            Rule(
                "vocative",
                re.compile(
                    rf"(?m)^[ \t]*(?P<name>{NOT_STOP}{CAPWORD}),[ ](?=(?i:can|could|would|will|"
                    rf"please|i|you|we|do|did|are|is|have|thanks|thank|where|what|when|how)\b)"
                ),
                0.5,
                group="name",
                validate=_is_name,
            ),
            Rule(
                "speaker",
                # Chat-style "Name: message" lines; labels such as "Phone:" are excluded.
                re.compile(
                    rf"(?m)^[ \t]*(?P<name>{NOT_STOP}[^\W\d_][\w'’-]{{1,20}})"
                    rf"[ \t]*:(?=[ \t]*[\"'\w])"
                ),
                0.5,
                group="name",
                validate=_is_speaker,
            ),
            Rule(
                "says",
                re.compile(rf"(?P<name>{_NAME}),?[ ](?:says|said|wrote|writes|replied|asked)\b"),
                0.5,
                group="name",
                validate=_is_name,
            ),
        ),
        name="FairtrainPersonRecognizer",
    )


_JOB_HEADS = (
    r"manager|engineer|nurse|clerk|writer|developer|teacher|designer|analyst|officer|"
    r"director|consultant|assistant|technician|accountant|lawyer|doctor|scientist|"
    r"administrator|specialist|coordinator|supervisor|representative|agent|architect|"
    r"editor|producer|operator|therapist|pharmacist|surveyor|librarian|programmer|"
    r"packager|inspector|planner|advisor|adviser|worker|driver|chef|cook|baker|mechanic|"
    r"electrician|plumber|secretary|receptionist|cashier|salesperson|attendant|journalist|"
    r"photographer|artist|musician|pilot|paramedic|counsell?or|psychologist|physicist|"
    r"chemist|biologist|geologist|economist|statistician|translator|interpreter|tutor|"
    r"lecturer|professor|instructor|trainer|buyer|broker|auditor|investigator|detective|"
    r"guard|firefighter|executive|president|founder|owner|intern|nanny|carer|caregiver|"
    r"cleaner|janitor|gardener|farmer|labou?rer|tailor|hairdresser|barber|stylist|dentist|"
    r"surgeon|physician|veterinarian|midwife|curator|archivist|animator|illustrator|"
    r"copywriter|strategist|scheduler|dispatcher|estimator|underwriter|actuary|banker|"
    r"teller|builder|maker|fitter|setter|tender|handler|welder|machinist|assembler|"
    r"officer|researcher|educator|conservator|sorter|grader|repairer|installer|"
    r"player|singer|dancer|actor|actress|model|coach|ceo|cto|cfo|coo|vp"
)


def title_recognizer() -> RuleRecognizer:
    """Honorifics ("Mrs.") and job titles ("Assistant property manager")."""
    job = rf"(?:[A-Za-z][a-z-]+[ ]){{0,5}}(?:{_JOB_HEADS})s?"
    return RuleRecognizer(
        "TITLE",
        (
            Rule("honorific", re.compile(rf"\b{_HONORIFIC}\.?(?=[ ]{CAPWORD})"), 0.7),
            Rule("job-line", re.compile(rf"(?im)^[ \t]*(?-i:[A-Z])(?i:{job})[ \t]*$"), 0.6),
            Rule(
                "job-cue",
                re.compile(
                    rf"(?i)\b(?:work(?:s|ed|ing)?[ ]as|i'?m|i[ ]am|job[ ]title:?|position:?|"
                    rf"role:?|occupation:?)[ ](?:an?[ ]|the[ ])?(?P<t>{job})\b"
                ),
                0.55,
                group="t",
            ),
            Rule("the-job", re.compile(rf",[ ]the[ ](?P<t>{job}),"), 0.6, group="t"),
        ),
        name="FairtrainTitleRecognizer",
    )


_UNITS_AFTER = (
    r"(?!\s*(?:%|[ap]\.?m\b|min|mins|minutes|hours|hrs|h\b|km|miles|m\b|kg|lbs?|dollars|"
    r"euros|pounds|cm|st\b|nd\b|rd\b|th\b|:|\.\d|/|,\d|\d))"
)


def age_recognizer() -> RuleRecognizer:
    """Ages: "65-year-old", "21 y/o", "just turned 30", "aged 41"."""
    return RuleRecognizer(
        "AGE",
        (
            Rule(
                "years-old",
                re.compile(
                    r"(?i)\b(?P<a>\d{1,3})(?:[- ](?:years?|yrs?)[- ]old|[ ]?y/?o\b|"
                    r"[- ]years?[- ]of[- ]age|[ ]?(?:yrs|years)(?=[ ]?(?:old|young)))"
                ),
                0.85,
                group="a",
            ),
            Rule(
                "cue",
                re.compile(
                    rf"(?i)\b(?:aged?|age\s*:|age[ ]is|turn(?:ed|s|ing)?|i'?m|i[ ]am|"
                    rf"he'?s|she'?s|they'?re|am|at[ ]the[ ]age[ ]of)[ ]"
                    rf"(?P<a>\d{{1,3}})\b{_UNITS_AFTER}"
                ),
                0.65,
                group="a",
            ),
        ),
        name="FairtrainAgeRecognizer",
    )


_DEMONYMS = [
    "afghan",
    "albanian",
    "algerian",
    "american",
    "andorran",
    "angolan",
    "argentine",
    "argentinian",
    "armenian",
    "australian",
    "austrian",
    "azerbaijani",
    "bahamian",
    "bahraini",
    "bangladeshi",
    "barbadian",
    "belarusian",
    "belgian",
    "belizean",
    "belizian",
    "beninese",
    "bhutanese",
    "bolivian",
    "bosnian",
    "botswanan",
    "brazilian",
    "british",
    "bruneian",
    "bulgarian",
    "burkinabe",
    "burmese",
    "burundian",
    "cambodian",
    "cameroonian",
    "canadian",
    "chadian",
    "chilean",
    "chinese",
    "colombian",
    "congolese",
    "costa",
    "rican",
    "croatian",
    "cuban",
    "cypriot",
    "czech",
    "danish",
    "dominican",
    "dutch",
    "ecuadorian",
    "egyptian",
    "emirati",
    "english",
    "eritrean",
    "estonian",
    "ethiopian",
    "fijian",
    "filipino",
    "finnish",
    "french",
    "gabonese",
    "gambian",
    "georgian",
    "german",
    "ghanaian",
    "greek",
    "greenlandic",
    "grenadian",
    "guatemalan",
    "guinean",
    "guyanese",
    "haitian",
    "honduran",
    "hungarian",
    "icelandic",
    "indian",
    "indonesian",
    "iranian",
    "iraqi",
    "irish",
    "israeli",
    "italian",
    "ivorian",
    "jamaican",
    "japanese",
    "jordanian",
    "kazakh",
    "kenyan",
    "korean",
    "kosovar",
    "kuwaiti",
    "kyrgyz",
    "lao",
    "latvian",
    "lebanese",
    "liberian",
    "libyan",
    "lithuanian",
    "luxembourgish",
    "macedonian",
    "malagasy",
    "malawian",
    "malaysian",
    "maldivian",
    "malian",
    "maltese",
    "mauritanian",
    "mauritian",
    "mexican",
    "moldovan",
    "monegasque",
    "mongolian",
    "montenegrin",
    "moroccan",
    "mozambican",
    "namibian",
    "nepalese",
    "nepali",
    "nicaraguan",
    "nigerian",
    "nigerien",
    "norwegian",
    "omani",
    "pakistani",
    "palestinian",
    "panamanian",
    "paraguayan",
    "peruvian",
    "polish",
    "portuguese",
    "qatari",
    "romanian",
    "russian",
    "rwandan",
    "salvadoran",
    "samoan",
    "saudi",
    "scottish",
    "senegalese",
    "serbian",
    "singaporean",
    "slovak",
    "slovakian",
    "slovenian",
    "somali",
    "spanish",
    "sri",
    "lankan",
    "sudanese",
    "surinamese",
    "swazi",
    "swedish",
    "swiss",
    "syrian",
    "taiwanese",
    "tajik",
    "tanzanian",
    "thai",
    "togolese",
    "tongan",
    "trinidadian",
    "tunisian",
    "turkish",
    "turkmen",
    "ugandan",
    "ukrainian",
    "uruguayan",
    "uzbek",
    "venezuelan",
    "vietnamese",
    "welsh",
    "yemeni",
    "zambian",
    "zimbabwean",
    "chechen",
    "basque",
    "catalan",
    "kurdish",
    "tibetan",
    "uyghur",
    "tamil",
    "punjabi",
    "bengali",
    "gujarati",
    "sikh",
    "hindu",
    "muslim",
    "christian",
    "catholic",
    "protestant",
    "jewish",
    "buddhist",
    "mormon",
    "orthodox",
    "evangelical",
    "atheist",
    "greenlander",
    "latino",
    "latina",
    "hispanic",
]
_DEMONYM_PHRASES = ("costa rican", "sri lankan", "new zealander", "puerto rican", "south african")


def nationality_recognizer() -> RuleRecognizer:
    """Nationalities, religions and similar groups (Presidio's NRP), any case, plurals too."""
    words = sorted(set(_DEMONYMS) | set(_DEMONYM_PHRASES), key=len, reverse=True)
    alternation = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in words)
    return RuleRecognizer(
        "NRP",
        (Rule("demonym", re.compile(rf"(?i)\b(?:{alternation})(?:s|es)?\b"), 0.6),),
        name="FairtrainNationalityRecognizer",
    )


# Country names that are also common words or first names: matched only when written
# with a capital letter.
_AMBIGUOUS_PLACES = frozenset(
    [
        "chad",
        "jordan",
        "georgia",
        "turkey",
        "guinea",
        "niger",
        "china",
        "japan",
        "jersey",
        "mali",
        "peru",
        "cuba",
        "oman",
        "israel",
        "india",
        "panama",
        "victoria",
        "us",
    ]
)


@cache
def _place_names() -> tuple[str, ...]:
    names: set[str] = set()
    for country in pycountry.countries:
        for attr in ("name", "common_name"):
            value = getattr(country, attr, None)
            if value and "," not in value and "(" not in value:
                names.add(value)
    states = pycountry.subdivisions.get(country_code="US")  # type: ignore[no-untyped-call]  # untyped
    for sub in states or ():
        names.add(sub.name)
    names.update(
        (
            *[
                "USA",
                "U.S.A.",
                "US",
                "UK",
                "U.K.",
                "America",
                "England",
                "Scotland",
                "Wales",
                "Britain",
                "Europe",
                "Asia",
            ],
            *[
                "Africa",
                "Korea",
                "Russia",
                "Iran",
                "Syria",
                "Vietnam",
                "Laos",
                "Bolivia",
                "Venezuela",
                "Tanzania",
            ],
            *[
                "Moldova",
                "Czechia",
                "Holland",
                "Macedonia",
                "Palestine",
                "Taiwan",
                "Kosovo",
                "Greenland",
            ],
            "Northern Ireland",
            "Great Britain",
            "South America",
            "North America",
            "South Korea",
            "North Korea",
            "Czech Republic",
        )
    )
    return tuple(sorted(names, key=len, reverse=True))


@cache
def _place_words() -> frozenset[str]:
    return frozenset(n.casefold() for n in _place_names())


def location_recognizer() -> RuleRecognizer:
    """Countries and US states from pycountry, and places after "live in", "from"..."""
    names = _place_names()
    any_case = "|".join(re.escape(n) for n in names if n.casefold() not in _AMBIGUOUS_PLACES)
    cased = "|".join(re.escape(n) for n in names)
    cue = (
        r"(?i:live[ ]in|living[ ]in|lived[ ]in|lives[ ]in|from|moved[ ]to|moving[ ]to|"
        r"travel\w*[ ]to|flew[ ]to|flying[ ]to|fly[ ]to|grew[ ]up[ ]in|born[ ]in|based[ ]in|"
        r"relocat\w*[ ]to|i'm[ ]in|i[ ]am[ ]in|we're[ ]in|stay\w*[ ]in|visit\w*|near|"
        r"arrived[ ]at|arrived[ ]in|back[ ]to|trip[ ]to|city[ ]of|town[ ]of|to|in|at)"
    )
    return RuleRecognizer(
        "LOCATION",
        (
            Rule("country-any-case", re.compile(rf"(?i)(?<![\w@.])(?:{any_case})(?![\w@])"), 0.6),
            Rule("country-cased", re.compile(rf"(?<![\w@.])(?:{cased})(?![\w@])"), 0.6),
            Rule(
                "cue",
                re.compile(
                    rf"\b{cue}[ ]+(?P<p>{CAPWORD}(?:[ ](?:{CAPWORD}|de|do|da|nad|u|na|am)){{0,3}})"
                ),
                0.5,
                group="p",
                validate=_is_place_candidate,
            ),
        ),
        name="FairtrainLocationRecognizer",
    )


def _is_place_candidate(span: str) -> bool:
    words = words_of(span)
    return bool(words) and not any(
        w in ENGLISH_STOPWORDS or w in MONTHS_AND_DAYS for w in words[:1]
    )


_ORG_SUFFIX = (
    r"Inc|Ltd|LLC|L\.L\.C|PLC|Plc|Corp|Corporation|Group|GmbH|AG|SA|S\.A|BV|NV|Co|Company|"
    r"Limited|Holdings|Partners|Associates|Technologies|Solutions|Bank|Foundation|"
    r"University|Institute|Systems|Labs|Industries|Ventures|Capital|Consulting|Services|"
    r"Trust|Society|Association|Agency|Studios?|Media|Networks?|Software|Pharma|Insurance"
)


def organisation_recognizer() -> RuleRecognizer:
    """Company-shaped names: legal suffixes, "X, Y and Z", "X-Y", and "works at X"."""
    return RuleRecognizer(
        "ORGANIZATION",
        (
            Rule(
                "suffix",
                re.compile(rf"\b(?:{CAPWORD}[ ,&]+){{0,3}}{CAPWORD}[ ,]+(?:{_ORG_SUFFIX})\b\.?"),
                0.7,
                validate=_not_stop_start,
            ),
            Rule(
                "partners",
                re.compile(rf"\b{CAPWORD},[ ]{CAPWORD},?[ ]and[ ]{CAPWORD}"),
                0.6,
                validate=_not_stop_start,
            ),
            Rule("hyphenated", re.compile(r"\b[A-Z][a-z]+-[A-Z][a-z]+\b"), 0.5),
            Rule(
                "cue",
                re.compile(
                    rf"(?i:work(?:s|ed|ing)?[ ](?:at|for)|employed[ ]by|employee[ ]of|"
                    rf"address[ ]of|joined|customer[ ]of|account[ ](?:at|with)|bank[ ]with|"
                    rf"intern(?:ed|ing)?[ ]at|hired[ ]by|ceo[ ]of|founder[ ]of|the)[ ]+"
                    rf"(?P<o>{CAPWORD}(?:[ ]{CAPWORD}){{0,3}})"
                    rf"(?=[ ](?:is|was|are|has|have|had|invested|announced|said|reported|"
                    rf"employs|team|office|headquarters)\b|[ ]?,)"
                ),
                0.5,
                group="o",
                validate=_not_stop_start,
            ),
        ),
        name="FairtrainOrganisationRecognizer",
    )


def _not_stop_start(span: str) -> bool:
    words = words_of(span)
    return bool(words) and words[0] not in ENGLISH_STOPWORDS
