"""Terms in plain words, generated from the policy's structure (never stored free text),
and the risk notes a person should read before agreeing.

Sentences are short and in the second person ("Buyers may use it to train AI that
recognises speech."). Tests hold every explanation to a Flesch-Kincaid grade of 8 or
less. Risk notes are fixed, reviewed sentences chosen by a table of (modality, what the
terms allow) rules, so each is testable and none is improvised.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

import pycountry
import pyphen

from fairtrain.consent import purposes
from fairtrain.consent.compile import compile_policy
from fairtrain.consent.evaluate import EEA, EU
from fairtrain.consent.odrl import Condition, Constraint, LogicalConstraint, Policy, Rule

__all__ = ["RISK_NOTES", "RiskNote", "explain", "readability", "risk_notes"]

_CURRENCY_WORDS = {"EUR": "euro", "USD": "US dollars", "GBP": "pounds", "CHF": "Swiss francs"}


def _join(items: Iterable[str], word: str = "and") -> str:
    parts = list(items)
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + f" {word} " + parts[-1]


def _place(code: str) -> str:
    if code == "EU":
        return "the European Union"
    if code == "EEA":
        return "the European Economic Area"
    if code == "WORLD":
        return "any country"
    country = pycountry.countries.get(alpha_2=code)
    return str(getattr(country, "common_name", None) or country.name) if country else code


def _places(values: Iterable[str]) -> str:
    codes: set[str] = set()
    for value in values:
        if value == "WORLD":
            return _place("WORLD")
        codes |= EEA if value == "EEA" else EU if value == "EU" else {value}
    named: list[str] = []
    for group, name in (("EEA", EEA), ("EU", EU)):
        if name <= codes:
            named.append(_place(group))
            codes -= name
    return _join(named + sorted(_place(c) for c in codes), "or")


def _money(amount: Decimal, currency: str | None) -> str:
    words = _CURRENCY_WORDS.get(currency or "", currency or "")
    return f"{amount:.2f} {words}".strip()


def _purpose_words(keys: Iterable[str]) -> str:
    return _join((purposes.PURPOSES[k].words for k in keys), "or")


def _condition_sentence(condition: Condition) -> str | None:
    if isinstance(condition, LogicalConstraint):
        parts = [s for s in (_condition_sentence(c) for c in condition.items) if s]
        if not parts:
            return None
        if condition.operator in ("or", "xone"):
            only = " (but not both)" if condition.operator == "xone" else ""
            return "Either " + " or ".join(p.rstrip(".").lower() for p in parts) + only + "."
        return " ".join(parts)
    values = condition.values
    negated = condition.operator in ("isNoneOf", "neq")
    match condition.left:
        case "purpose":
            return None  # said in the opening sentence
        case "spatial":
            where = _places(values)
            return f"Not in {where}." if negated else f"Only in {where}."
        case "dateTime":
            day = values[0].strftime("%-d %B %Y")
            if condition.operator in ("lt", "lteq"):
                return f"Only until {day}."
            if condition.operator in ("gt", "gteq"):
                return f"Only from {day}."
            return f"Only on {day}."
        case "elapsedTime":
            days = int(values[0])
            span = f"{days // 365 * 12} months" if days % 365 == 0 else f"{days} days"
            return f"Each licence lasts {span} at most."
        case "count":
            return f"They may use it at most {int(values[0])} times."
        case "recipient":
            return "Only the named receiver may get it."
        case "payAmount":
            return f"They must pay you {_money(values[0], condition.unit)} for each licence."
    return None


def _permission_sentences(rule: Rule) -> list[str]:
    allowed = [
        v
        for c in rule.constraints
        if isinstance(c, Constraint) and c.left == "purpose" and c.operator not in ("isNoneOf",)
        for v in c.values
    ]
    who = "One named buyer" if rule.assignee else "Buyers"
    if not allowed or allowed == ["any"]:
        sentences = [f"{who} may use it for any purpose."]
    else:
        sentences = [f"{who} may use it {_purpose_words(allowed)}."]
    for condition in rule.constraints:
        sentence = _condition_sentence(condition)
        if sentence:
            sentences.append(sentence)
    for duty in rule.duties:
        if "compensate" in duty.actions:
            for condition in duty.constraints:
                sentence = _condition_sentence(condition)
                if sentence:
                    sentences.append(sentence)
        elif "attribute" in duty.actions:
            sentences.append("They must name you as the source.")
        elif "delete" in duty.actions:
            sentences.append("They must delete it when the licence ends.")
    return sentences


def _prohibition_sentences(rule: Rule) -> list[str]:
    banned = [
        v
        for c in rule.constraints
        if isinstance(c, Constraint) and c.left == "purpose"
        for v in c.values
    ]
    if not banned:
        return ["They may not use it in the way this rule describes."]
    return [f"No one may use it {purposes.PURPOSES[key].words}." for key in banned]


def explain(policy: Policy) -> list[str]:
    """The policy as short sentences, in order: what is allowed, what is not, the rest."""
    sentences: list[str] = []
    for rule in policy.permissions:
        if rule.actions == ("grantUse",):
            continue
        sentences.extend(_permission_sentences(rule))
    for rule in policy.prohibitions:
        sentences.extend(_prohibition_sentences(rule))
    if not policy.permissions:
        sentences.append("No one may use it yet.")
    sentences.append(
        "You may give one buyer sole use." if policy.exclusive else "Other buyers can use it too."
    )
    sentences.append(
        "They may pass it on to others."
        if policy.sublicensing
        else "They may not pass it on to others."
    )
    return sentences


@dataclass(frozen=True, slots=True)
class RiskNote:
    key: str
    modalities: frozenset[str]  # empty: any modality
    purposes: tuple[str, ...]  # shown when any of these is allowed (empty: always)
    sentence: str


RISK_NOTES: tuple[RiskNote, ...] = (
    RiskNote(
        "voice_copy",
        frozenset({"audio", "video"}),
        ("voice_cloning", "speech_synthesis"),
        "About 30 seconds of clear speech can be enough to copy a voice.",
    ),
    RiskNote(
        "voice_identity",
        frozenset({"audio", "video"}),
        ("biometric_identification",),
        "Your voice can be used to tell who you are, like a fingerprint.",
    ),
    RiskNote(
        "face_recognition",
        frozenset({"image", "video"}),
        ("face_recognition", "biometric_identification"),
        "A photo of your face can be used to find you in other photos.",
    ),
    RiskNote(
        "likeness",
        frozenset({"image", "video", "audio"}),
        ("synthetic_likeness", "content_generation"),
        "AI trained on it may make new pictures or sound that look or sound like you.",
    ),
    RiskNote(
        "chat_metadata",
        frozenset({"chat", "text"}),
        (),
        "Chats can show who you talk to and when, even with names taken out.",
    ),
    RiskNote(
        "handwriting",
        frozenset({"document"}),
        (),
        "Your handwriting can be matched to other things you have written.",
    ),
    RiskNote(
        "no_untraining",
        frozenset(),
        ("model_training",),
        "An AI model cannot forget what it learned. If you withdraw, it only stops new training.",
    ),
    RiskNote(
        "advertising",
        frozenset(),
        ("advertising", "marketing"),
        "Your data may help show ads to you or to people like you.",
    ),
)


def _allowed(policy: Policy, key: str) -> bool:
    """Whether the terms allow this purpose or any narrower one."""
    compiled = compile_policy(policy)
    return any(
        compiled.permit_mask >> purposes.PURPOSES[k].bit & 1
        and not compiled.ban_mask >> purposes.PURPOSES[k].bit & 1
        for k in purposes.descendants(key)
    )


def risk_notes(policy: Policy, modality: str | None) -> list[str]:
    """The notes that apply to this kind of data under these terms."""
    notes = []
    for note in RISK_NOTES:
        if note.modalities and (modality is None or modality not in note.modalities):
            continue
        if note.purposes and not any(_allowed(policy, p) for p in note.purposes):
            continue
        notes.append(note.sentence)
    return notes


_WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?")


@lru_cache(maxsize=1)
def _hyphenator() -> pyphen.Pyphen:
    # Syllables from hyphenation points (the dictionary ships inside the pyphen wheel;
    # textstat's current versions download NLTK's cmudict at run time instead).
    return pyphen.Pyphen(lang="en_US", left=1, right=1)


def _syllables(word: str) -> int:
    return max(1, len(_hyphenator().positions(word.lower())) + 1)


def readability(sentences: Iterable[str]) -> float:
    """Flesch-Kincaid grade level of the sentences read as one text."""
    items = [s for s in sentences if s.strip()]
    words = [w for s in items for w in _WORD.findall(s)]
    if not words:
        return 0.0
    syllables = sum(_syllables(w) for w in words)
    return 0.39 * len(words) / len(items) + 11.8 * syllables / len(words) - 15.59
