"""Terms in plain words, generated from the policy's structure (never stored free text),
and the risk notes a person should read before agreeing.

:func:`explain` walks the policy (who, for what, what not, where, how long, how much,
exclusive or not, sublicensing) and says each part in short second-person sentences:
"Buyers may use your recording to train AI that turns speech into text." Every sentence
is built from a fixed phrase plus words the platform owns (purpose words from
:mod:`~fairtrain.consent.purposes`, country names from pycountry, dates, amounts), so no
text a policy carries is ever shown. Nothing is said that the policy does not say: what
happens on withdrawal is the platform's rule, not the policy's, and is not mentioned.

:func:`risk_notes` picks fixed, reviewed sentences from :data:`RISK_NOTES`, a table of
(kind of data × what the terms open up) rules. "Open" follows the evaluator: a purpose is
open when a permission covers it and no unconditional prohibition forbids it or anything
narrower (the evaluator refuses "speech synthesis" when "voice cloning" is prohibited).

Tests hold every sentence to 20 words and every explanation to a Flesch-Kincaid grade of
8 or less, measured by :func:`readability`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache

import pycountry
import pyphen

from fairtrain.consent import purposes
from fairtrain.consent.evaluate import EEA, EU
from fairtrain.consent.odrl import ACTIONS, Condition, Constraint, LogicalConstraint, Policy, Rule

__all__ = ["MAX_WORDS", "RISK_NOTES", "RiskNote", "explain", "readability", "risk_notes"]

MAX_WORDS = 20  # the longest sentence explain() and the risk notes may produce

_POSITIVE = frozenset({"eq", "isA", "isAnyOf", "isPartOf"})
_NEGATIVE = frozenset({"neq", "isNoneOf"})

# The names a contributor's data goes by in the first sentence; "it" afterwards.
_NOUNS = {
    "audio": "your recording",
    "voice": "your recording",
    "image": "your photo",
    "photo": "your photo",
    "video": "your video",
    "chat": "your chat",
    "text": "your text",
    "document": "your document",
    "handwriting": "your handwriting",
}
# Other spellings of the platform's modalities (audio, image, video, chat, text, document).
_MODALITY_ALIASES = {"voice": "audio", "photo": "image", "handwriting": "document"}

_VERBS = {
    "use": "use",
    "read": "read",
    "reproduce": "copy",
    "derive": "build on",
    "modify": "change",
    "distribute": "share",
    "aggregate": "combine",
    "annotate": "label",
    "index": "index",
}

_CURRENCY_WORDS = {
    "EUR": "euro",
    "USD": "US dollars",
    "GBP": "pounds",
    "CHF": "Swiss francs",
    "JPY": "yen",
}
_NO_MINOR_UNITS = frozenset({"JPY", "KRW", "ISK", "CLP", "VND", "XOF", "XAF", "HUF"})

# Short names people use, where pycountry's is formal or needs "the".
_COUNTRY_NAMES = {
    "GB": "the United Kingdom",
    "US": "the United States",
    "NL": "the Netherlands",
    "PH": "the Philippines",
    "AE": "the United Arab Emirates",
    "CZ": "Czechia",
    "RU": "Russia",
    "CD": "the Democratic Republic of the Congo",
    "CG": "the Republic of the Congo",
}


# --- words ----------------------------------------------------------------------------


def _join(items: Iterable[str], word: str = "and") -> str:
    parts = list(items)
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + f" {word} " + parts[-1]


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def _words(text: str) -> int:
    return len(text.split())


def _place(code: str) -> str:
    if code == "EU":
        return "the EU"
    if code == "EEA":
        return "the European Economic Area"
    if code == "WORLD":
        return "any country"
    if code in _COUNTRY_NAMES:
        return _COUNTRY_NAMES[code]
    country = pycountry.countries.get(alpha_2=code)
    if country is None:
        return code
    name = str(getattr(country, "common_name", None) or country.name)
    return name.split(",")[0]


def _places(values: Iterable[str]) -> str:
    codes: set[str] = set()
    for value in values:
        if value == "WORLD":
            return _place("WORLD")
        codes |= EEA if value == "EEA" else EU if value == "EU" else {value}
    named: list[str] = []
    for group, members in (("EEA", EEA), ("EU", EU)):
        if members <= codes:
            named.append(_place(group))
            codes -= members
    return _join(named + sorted(_place(c) for c in codes), "or")


def _money(amount: Decimal, currency: str | None) -> str:
    code = (currency or "").upper()
    places = 0 if code in _NO_MINOR_UNITS else 2
    exponent = amount.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        places = -exponent  # never round a price away: 0.005 stays 0.005
    found = pycountry.currencies.get(alpha_3=code) if code else None
    words = _CURRENCY_WORDS.get(code) or (str(found.name) if found else code)
    return f"{amount:,.{places}f} {words}".strip()


def _span(days: int) -> str:
    if days > 0 and days % 365 == 0:
        years = days // 365
        return _plural(years * 12, "month") if years <= 2 else _plural(years, "year")
    for months in range(1, 12):
        if months * 365 // 12 == days:
            return _plural(months, "month")
    if days > 0 and days % 7 == 0:
        return _plural(days // 7, "week")
    return _plural(days, "day")


def _day(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return f"{moment.day} {moment:%B %Y}"


def _purpose_words(keys: Iterable[str]) -> str:
    return _join((purposes.PURPOSES[k].words for k in keys), "or")


def _verbs(actions: Iterable[str], word: str) -> str:
    verbs = [_VERBS[a] for a in actions if a in _VERBS]
    return "use" if not verbs or "use" in verbs else _join(dict.fromkeys(verbs), word)


# --- conditions as phrases ------------------------------------------------------------


def _phrase(condition: Condition, *, nested: bool = False) -> str | None:
    """A condition as a phrase that can follow "They may use it …" (no capital, no stop)."""
    if isinstance(condition, LogicalConstraint):
        parts = [p for p in (_phrase(c, nested=True) for c in condition.items) if p]
        if not parts:
            return None
        if condition.operator in ("or", "xone"):
            either = "" if nested or len(parts) == 1 else "either "
            return either + " or ".join(parts)
        return _join(parts)
    values = condition.values
    negated = condition.operator in _NEGATIVE
    match condition.left:
        case "purpose":
            words = _purpose_words(values)
            return f"but not {words}" if negated else words
        case "spatial":
            return f"outside {_places(values)}" if negated else f"only in {_places(values)}"
        case "dateTime":
            day = _day(values[0])
            if condition.operator in ("lt", "lteq"):
                return f"until {day}"
            if condition.operator in ("gt", "gteq"):
                return f"from {day}"
            return f"not on {day}" if negated else f"on {day}"
        case "elapsedTime":
            return f"for up to {_span(int(values[0]))} from the licence date"
        case "count":
            limit = int(values[0]) - (1 if condition.operator == "lt" else 0)
            return f"at most {_plural(limit, 'time')}"
        case "recipient":
            return "only for one named receiver"
        case "payAmount":
            return f"if they pay you {_money(values[0], condition.unit)} for each licence"
    return None  # pragma: no cover - the parser admits no other left operand


def _condition_sentences(condition: Condition, lead: str = "They may use it") -> list[str]:
    """A condition of a permission as sentences of its own; ``lead`` opens an either/or."""
    if isinstance(condition, LogicalConstraint):
        parts = [p for p in (_phrase(c, nested=True) for c in condition.items) if p]
        if not parts:
            return []
        if condition.operator not in ("or", "xone") or len(parts) == 1:
            return [f"{lead} {p}." for p in parts]
        once = []
        if condition.operator == "xone":
            once = ["They may not do both." if len(parts) == 2 else "They may do only one."]
        sentence = f"{lead} either {' or '.join(parts)}."
        if _words(sentence) <= MAX_WORDS:
            return [sentence, *once]
        # Too long for one sentence: one sentence per way.
        first, *rest = parts
        either = [f"Either they may use it {first}.", *(f"Or they may use it {p}." for p in rest)]
        return [f"{lead} in these ways.", *either, *once]
    values = condition.values
    negated = condition.operator in _NEGATIVE
    match condition.left:
        case "spatial":
            where = _places(values)
            return [f"Not in {where}." if negated else f"Only in {where}."]
        case "dateTime":
            day = _day(values[0])
            if condition.operator in ("lt", "lteq"):
                return [f"Only until {day}."]
            if condition.operator in ("gt", "gteq"):
                return [f"Only from {day}."]
            return [f"Not on {day}." if negated else f"Only on {day}."]
        case "elapsedTime":
            return [f"They may use it for {_span(int(values[0]))} from the licence date."]
        case "count":
            limit = int(values[0]) - (1 if condition.operator == "lt" else 0)
            return [f"They may use it at most {_plural(limit, 'time')}."]
        case "recipient":
            return ["They may give it only to one named receiver."]
        case "payAmount":
            return [f"They must pay you {_money(values[0], condition.unit)} for each licence."]
    return []  # purposes are said in the opening sentences


# --- explain --------------------------------------------------------------------------


def _usable(rule: Rule) -> bool:
    """A permission to use the data (not only to sublicense it)."""
    return any(a == "use" or ACTIONS.get(a) == "use" for a in rule.actions)


def _top_purposes(rule: Rule) -> tuple[list[str], list[str]]:
    allowed: list[str] = []
    refused: list[str] = []
    for condition in rule.constraints:
        if isinstance(condition, Constraint) and condition.left == "purpose":
            bucket = refused if condition.operator in _NEGATIVE else allowed
            bucket.extend(v for v in condition.values if v not in bucket)
    return allowed, refused


def _duty_sentences(duty: Rule) -> list[str]:
    sentences: list[str] = []
    if "compensate" in duty.actions:
        amounts = [
            s for c in duty.constraints if isinstance(c, Constraint) and c.left == "payAmount"
            for s in _condition_sentences(c)
        ]  # fmt: skip
        sentences.extend(amounts or ["They must pay you."])
    if "attribute" in duty.actions:
        sentences.append("They must name you as the source.")
    if "delete" in duty.actions:
        sentences.append("They must delete it when the licence ends.")
    if "inform" in duty.actions:
        sentences.append("They must tell you when they use it.")
    return sentences


def _permission_sentences(rule: Rule, noun: str) -> tuple[list[str], list[str]]:
    """(what they may and may not do, the conditions and duties) for one permission."""
    what: list[str] = []
    if rule.assignee:
        # Said on its own so the purpose sentences stay short.
        what.append(f"Only one named buyer may license {noun}.")
        who, noun = "They", "it"
    else:
        who = "Buyers"
    verb = _verbs(rule.actions, "and")
    if verb != "use":
        what.append(f"{who} may only {verb} {noun}.")
        who, noun = "They", "it"
    allowed, refused = _top_purposes(rule)
    # Purposes given as alternatives ("or"/"xone") open the explanation instead.
    alternatives = [
        c
        for c in rule.constraints
        if isinstance(c, LogicalConstraint) and _positive_purposes(c) is not None
    ]
    if alternatives and not allowed:
        what += _condition_sentences(alternatives[0], lead=f"{who} may use {noun}")
    elif not allowed or "any" in allowed:
        what.append(f"{who} may use {noun} for any purpose.")
    else:
        first, *more = allowed
        what.append(f"{who} may use {noun} {purposes.PURPOSES[first].words}.")
        what += [f"They may also use it {purposes.PURPOSES[k].words}." for k in more]
    what += [f"They may NOT use it {purposes.PURPOSES[k].words}." for k in refused]
    conditions: list[str] = []
    order = ("spatial", "dateTime", "elapsedTime", "count", "recipient", "payAmount")
    rest = sorted(
        (
            c
            for c in rule.constraints
            if not (isinstance(c, Constraint) and c.left == "purpose")
            and not (alternatives and not allowed and c is alternatives[0])
        ),
        key=lambda c: order.index(c.left) if isinstance(c, Constraint) else len(order),
    )
    for condition in rest:
        conditions.extend(_condition_sentences(condition))
    for duty in rule.duties:
        conditions.extend(_duty_sentences(duty))
    return what, conditions


def _prohibition_sentences(rule: Rule) -> list[str]:
    who = "The named buyer" if rule.assignee else "They"
    verb = _verbs(rule.actions, "or")
    banned = [
        v
        for c in rule.constraints
        if isinstance(c, Constraint) and c.left == "purpose" and c.operator in _POSITIVE
        for v in c.values
    ]
    others = [
        c
        for c in rule.constraints
        if not (isinstance(c, Constraint) and c.left == "purpose" and c.operator in _POSITIVE)
    ]
    when = _join(p for p in (_phrase(c) for c in others) if p)
    if not banned:
        return [f"{who} may NOT {verb} it {when}." if when else f"{who} may NOT {verb} it."]
    sentences = [f"{who} may NOT {verb} it {purposes.PURPOSES[k].words}." for k in banned]
    if when:
        tail = f" {when}"
        joined = [s[:-1] + tail + "." for s in sentences]
        if all(_words(s) <= MAX_WORDS for s in joined):
            return joined
        sentences.append(f"This applies {when}.")
    return sentences


def _conditions(rules: Iterable[Rule]) -> Iterable[Condition]:
    def walk(condition: Condition) -> Iterable[Condition]:
        yield condition
        if isinstance(condition, LogicalConstraint):
            for item in condition.items:
                yield from walk(item)

    for rule in rules:
        for condition in rule.constraints:
            yield from walk(condition)
        for duty in rule.duties:
            for condition in duty.constraints:
                yield from walk(condition)


def explain(policy: Policy, *, modality: str | None = None) -> list[str]:
    """The policy as short sentences: who may use it for what, what not, where, how long,
    how much, whether others may license it too, and whether it may be passed on.

    ``modality`` (audio, image, video, chat, text, document) names the data in the first
    sentence ("your recording"); without it the data is "it".
    """
    noun = _NOUNS.get((modality or "").lower(), "it")
    usable = [r for r in policy.permissions if _usable(r)]
    blocks = [_permission_sentences(r, noun if i == 0 else "it") for i, r in enumerate(usable)]
    sentences: list[str] = []
    if len(blocks) == 1:
        # One permission, read in the order a person asks: what, what not, then the terms.
        what, terms = blocks[0]
        sentences += what
        for rule in policy.prohibitions:
            sentences += _prohibition_sentences(rule)
        sentences += terms
    else:
        for what, terms in blocks:
            sentences += what + terms
        if not usable:
            sentences.append(f"No one may use {noun} yet.")
        for rule in policy.prohibitions:
            sentences += _prohibition_sentences(rule)
    for rule in policy.obligations:
        sentences += _duty_sentences(rule)
    if usable:
        lefts = {c.left for c in _conditions(usable) if isinstance(c, Constraint)}
        if "spatial" not in lefts:
            sentences.append("They may use it in any country.")
        if not lefts & {"dateTime", "elapsedTime"}:
            sentences.append("The licence has no end date.")
        if "payAmount" not in lefts and not any(
            "compensate" in d.actions for r in usable for d in r.duties
        ):
            sentences.append("They do not have to pay you.")
    sentences.append(
        "One buyer may pay to be the only one who can license it."
        if policy.exclusive
        else "Other buyers can license it too."
    )
    sentences.append(
        "They may pass it on to others."
        if policy.sublicensing
        else "They may not pass it on to others."
    )
    return sentences


# --- risk notes -----------------------------------------------------------------------

# Facts about the terms (besides purposes) that a risk note can be keyed on.
NO_END = "no_end"  # a usable permission with neither an end date nor a licence length
LONG_TERM = "long_term"  # a licence can last more than two years
FREE = "free"  # a usable permission asks no payment
SUBLICENSING = "sublicensing"  # buyers may pass it on (grantUse)
WORLDWIDE = "worldwide"  # a usable permission is not limited to named places
LONG_TERM_DAYS = 730


@dataclass(frozen=True, slots=True)
class RiskNote:
    key: str
    modalities: frozenset[str]  # empty: any kind of data
    purposes: tuple[str, ...]  # shown when the terms open any of these (or a narrower one)
    fact: str | None  # and when this fact about the terms holds (None: no such condition)
    sentence: str


_SOUND = frozenset({"audio", "video"})
_FACES = frozenset({"image", "video"})

RISK_NOTES: tuple[RiskNote, ...] = (
    RiskNote(
        "voice_copy",
        _SOUND,
        ("speech_synthesis", "voice_cloning"),
        None,
        "About 30 seconds of clear speech can be enough to copy a voice.",
    ),
    RiskNote(
        "voice_identity",
        _SOUND,
        ("biometric_identification",),
        None,
        "Your voice can be used to tell who you are, like a fingerprint.",
    ),
    RiskNote(
        "face_recognition",
        _FACES,
        ("face_recognition", "biometric_identification"),
        None,
        "A photo of your face can be used to find you in other photos.",
    ),
    RiskNote(
        "likeness",
        _FACES | _SOUND,
        ("synthetic_likeness",),
        None,
        "AI trained on it may make fake pictures or sound that seem to be you.",
    ),
    RiskNote(
        "emotion",
        _FACES | _SOUND,
        ("emotion_recognition",),
        None,
        "AI trained on it may try to guess how people feel from their face or voice.",
    ),
    RiskNote(
        "chat_metadata",
        frozenset({"chat"}),
        (),
        None,
        "Chats can reveal who you talk to and when, even with names removed.",
    ),
    RiskNote(
        "writing_style",
        frozenset({"text", "chat"}),
        (),
        None,
        "The way you write can be matched to other things you have written.",
    ),
    RiskNote(
        "handwriting",
        frozenset({"document"}),
        (),
        None,
        "Your handwriting can be matched to other things you have written.",
    ),
    RiskNote(
        "no_untraining",
        frozenset(),
        ("model_training",),
        None,
        "An AI model cannot forget what it has learned, even if you withdraw later.",
    ),
    RiskNote(
        "advertising",
        frozenset(),
        ("marketing",),
        None,
        "Your data may help show ads to you or to people like you.",
    ),
    RiskNote(
        "surveillance",
        frozenset(),
        ("surveillance",),
        None,
        "It may help build systems that watch or track people.",
    ),
    RiskNote(
        "no_end",
        frozenset(),
        (),
        NO_END,
        "These terms have no end date, so a buyer may use it for many years.",
    ),
    RiskNote(
        "long_term",
        frozenset(),
        (),
        LONG_TERM,
        "A licence can last more than two years.",
    ),
    RiskNote(
        "free",
        frozenset(),
        (),
        FREE,
        "You will not be paid: these terms ask no price.",
    ),
    RiskNote(
        "sublicensing",
        frozenset(),
        (),
        SUBLICENSING,
        "Buyers may pass it on to other companies you did not choose.",
    ),
    RiskNote(
        "worldwide",
        frozenset(),
        (),
        WORLDWIDE,
        "It may be used in any country, even where privacy laws are weak.",
    ),
)


def _positive_purposes(condition: Condition) -> set[str] | None:
    """Purposes a condition can hold for; None when it can hold for any purpose."""
    if isinstance(condition, LogicalConstraint):
        found = [_positive_purposes(c) for c in condition.items]
        if condition.operator in ("or", "xone"):
            # One branch without a purpose lets every purpose through.
            if any(f is None for f in found):
                return None
            return set().union(*(f for f in found if f is not None))
        known = [f for f in found if f is not None]
        return set().union(*known) if known else None
    if condition.left == "purpose" and condition.operator in _POSITIVE:
        return set(condition.values)
    return None


def _closure(keys: Iterable[str]) -> set[str]:
    closed: set[str] = set()
    for key in keys:
        closed |= purposes.descendants(key)
    return closed


def _open_purposes(policy: Policy) -> frozenset[str]:
    """The purposes a buyer could be licensed for, as the evaluator decides purposes.

    Counted generously, because a missed risk note is worse than an extra one: a purpose
    anywhere in a permission counts, and only an unconditional prohibition closes one.
    """
    permitted: set[str] = set()
    for rule in policy.permissions:
        if not _usable(rule):
            continue
        keys: set[str] | None = None
        for condition in rule.constraints:
            found = _positive_purposes(condition)
            if found is not None:
                keys = found if keys is None else keys | found
        _, refused = _top_purposes(rule)
        permitted |= _closure(keys if keys is not None else {"any"}) - _closure(refused)
    banned: set[str] = set()
    for rule in policy.prohibitions:
        unconditional = not rule.assignee and all(
            isinstance(c, Constraint) and c.left == "purpose" and c.operator in _POSITIVE
            for c in rule.constraints
        )
        if unconditional and "use" in rule.actions:
            keys = {v for c in rule.constraints if isinstance(c, Constraint) for v in c.values}
            banned |= _closure(keys or {"any"})
    # A purpose with a forbidden purpose below it is refused as a whole.
    return frozenset(p for p in permitted if not purposes.descendants(p) & banned)


def _facts(policy: Policy, as_of: datetime) -> set[str]:
    usable = [r for r in policy.permissions if _usable(r)]
    facts = {SUBLICENSING} if policy.sublicensing and usable else set()
    for rule in usable:
        top = [c for c in rule.constraints if isinstance(c, Constraint)]
        ends = [c.values[0] for c in top if c.left == "dateTime" and c.operator in ("lt", "lteq")]
        lengths = [
            int(c.values[0])
            for c in top
            if c.left == "elapsedTime" and c.operator in ("lt", "lteq")
        ]
        if not ends and not lengths:
            facts.add(NO_END)
        if any(d > LONG_TERM_DAYS for d in lengths) or (
            not lengths and any(e > as_of + timedelta(days=LONG_TERM_DAYS) for e in ends)
        ):
            facts.add(LONG_TERM)
        places = [c.values for c in top if c.left == "spatial" and c.operator in _POSITIVE]
        if not places or any("WORLD" in v for v in places):
            facts.add(WORLDWIDE)
        pay = [
            c.values[0]
            for d in rule.duties
            if "compensate" in d.actions
            for c in d.constraints
            if isinstance(c, Constraint) and c.left == "payAmount"
        ]
        if not pay or all(p == 0 for p in pay):
            facts.add(FREE)
    return facts


def risk_notes(policy: Policy, modality: str | None, *, as_of: datetime | None = None) -> list[str]:
    """The notes that apply to this kind of data under these terms, in table order.

    ``as_of`` (default: now) is when the contributor reads them; an end date more than
    two years after it counts as a long licence.
    """
    kind = (modality or "").lower()
    kind = _MODALITY_ALIASES.get(kind, kind)
    opened = _open_purposes(policy)
    facts = _facts(policy, as_of or datetime.now(UTC))
    notes = []
    for note in RISK_NOTES:
        if note.modalities and kind not in note.modalities:
            continue
        if note.purposes and not _closure(note.purposes) & opened:
            continue
        if note.fact is not None and note.fact not in facts:
            continue
        notes.append(note.sentence)
    return notes


# --- readability ----------------------------------------------------------------------

_WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?")


@lru_cache(maxsize=1)
def _hyphenator() -> pyphen.Pyphen:
    # Syllables from hyphenation points, as textstat did before it moved to NLTK's
    # cmudict (downloaded at run time, so not usable offline); pyphen's dictionary
    # ships inside its wheel.
    return pyphen.Pyphen(lang="en_US", left=1, right=1)


def _syllables(word: str) -> int:
    return max(1, len(_hyphenator().positions(word.lower())) + 1)


def readability(sentences: Iterable[str]) -> float:
    """Flesch-Kincaid grade level of the sentences read as one text (one decimal)."""
    items = [s for s in sentences if s.strip()]
    words = [w for s in items for w in _WORD.findall(s)]
    if not words:
        return 0.0
    syllables = sum(_syllables(w) for w in words)
    grade = 0.39 * len(words) / len(items) + 11.8 * syllables / len(words) - 15.59
    return round(grade, 1)
