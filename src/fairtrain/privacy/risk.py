"""The residual-risk summary of one asset: what redaction did, and what it cannot do.

Shown to the contributor before they approve, and returned by the API with the asset:
``"2 faces blurred, 1 phone number removed, voice is identifiable"``. Built from the
privacy report alone (a pure function), so the page, the API and the CLI say the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["residual_risk"]

# What an entity type is called in the summary (singular, plural).
NOUNS: dict[str, tuple[str, str]] = {
    "PERSON": ("name", "names"),
    "PHONE_NUMBER": ("phone number", "phone numbers"),
    "EMAIL_ADDRESS": ("e-mail address", "e-mail addresses"),
    "LOCATION": ("place", "places"),
    "ADDRESS": ("address", "addresses"),
    "STREET_ADDRESS": ("street address", "street addresses"),
    "POSTCODE": ("postcode", "postcodes"),
    "DATE_TIME": ("date", "dates"),
    "DATE_OF_BIRTH": ("date of birth", "dates of birth"),
    "AGE": ("age", "ages"),
    "CREDIT_CARD": ("card number", "card numbers"),
    "IBAN_CODE": ("IBAN", "IBANs"),
    "US_SSN": ("social security number", "social security numbers"),
    "IP_ADDRESS": ("IP address", "IP addresses"),
    "URL": ("web address", "web addresses"),
    "ORGANIZATION": ("organisation", "organisations"),
    "USERNAME": ("username", "usernames"),
    "LICENCE_PLATE": ("number plate", "number plates"),
    "REDACTED": ("item you marked", "items you marked"),
}
VOICE = "voice is identifiable"


def _count(number: int, singular: str, plural: str | None = None) -> str:
    return f"{number} {singular if number == 1 else (plural or singular + 's')}"


def _entities(entities: Mapping[str, Any]) -> list[str]:
    said = []
    for kind, number in sorted(entities.items(), key=lambda item: (-int(item[1]), item[0])):
        singular, plural = NOUNS.get(kind, (kind.lower().replace("_", " "), ""))
        said.append(f"{_count(int(number), singular, plural or None)} removed")
    return said


def _speech(report: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    done: list[str] = []
    remaining = [
        "Your voice itself identifies you (it is biometric data): anyone who knows it can "
        "recognise it."
    ]
    if report.get("call"):
        removed = sum(1 for p in report.get("counterparties", []) if not p.get("included"))
        if removed:
            done.append(_count(removed, "other channel") + " removed")
    speakers = int(report.get("speakers") or 0)
    others = [p for p in report.get("counterparties", []) if p.get("kind") == "speaker"]
    muted = [p for p in others if not p.get("included")]
    if muted:
        seconds = sum(float(p.get("speech_seconds") or 0) for p in muted)
        done.append(f"{_count(len(muted), 'other voice')} muted ({seconds:.0f} s)")
    if speakers == 1 and not report.get("call"):
        remaining.append(
            "Only one voice was found; voices that sound much alike are not told apart, "
            "so listen for anyone else before you approve."
        )
    return done, remaining


def residual_risk(modality: str | None, report: Mapping[str, Any]) -> dict[str, Any]:
    """``summary`` (one line), ``done`` (what redaction did) and ``remaining`` (what
    still identifies someone, in plain words) for an asset's privacy report."""
    done: list[str] = []
    remaining: list[str] = []
    identifiable: list[str] = []
    if not report or "identity_needed" in report:
        return {"summary": "not redacted yet", "done": [], "remaining": []}
    if modality == "image":
        done.append(_count(int(report.get("faces_blurred") or 0), "face") + " blurred")
        if report.get("text_regions_blurred"):
            done.append(_count(int(report["text_regions_blurred"]), "line") + " of text blurred")
        if report.get("regions_blurred_by_you"):
            done.append(
                _count(len(report["regions_blurred_by_you"]), "area") + " you marked blurred"
            )
        included = sum(1 for p in report.get("counterparties", []) if p.get("included"))
        if included:
            done.append(_count(included, "face") + " shown with that person's consent")
        if report.get("own_face"):
            identifiable.append("your face is visible")
        remaining.append(
            "Faces the detector missed (very small, turned away, covered) are not blurred: "
            "look at the whole picture."
        )
        if not report.get("text_checked"):
            remaining.append("Visible text was not checked.")
    elif modality == "video":
        done.append(
            f"faces blurred on {report.get('frames_with_faces', 0)} of "
            f"{report.get('frames', 0)} frames"
        )
        speech_done, speech_remaining = _speech(report.get("audio") or {})
        done += speech_done
        if report.get("audio_kept"):
            identifiable.append(VOICE)
            remaining += speech_remaining
        remaining.append(
            "Visible text, clothes, places and bodies in a video are not blurred; faces the "
            "detector missed are not either."
        )
    elif modality == "audio":
        speech_done, speech_remaining = _speech(report)
        done += speech_done
        identifiable.append(VOICE)
        remaining += speech_remaining
        remaining.append("What is said (names, places) is not removed from recordings.")
    elif modality == "chat":
        done.append(
            _count(int(report.get("withheld_messages") or 0), "message") + " of others withheld"
        )
        done.append("names, numbers and handles of others replaced")
        remaining.append("What you wrote about yourself stays as you wrote it.")
    elif modality == "document":
        done.append("document metadata removed")
        remaining.append(str(report.get("unchecked") or "Page content is not checked."))
    else:
        done += _entities(report.get("entities") or {})
        if report.get("unredacted_by_you"):
            done.append(_count(int(report["unredacted_by_you"]), "item") + " left in by you")
        remaining.append(
            "Detection misses some personal details (about 1 in 10 in our measurements): "
            "read the text before you approve."
        )
    if report.get("metadata_removed") and modality in ("image", "audio", "video"):
        done.append("file metadata removed")
    summary = ", ".join(done + identifiable) or "nothing found to redact"
    return {"summary": summary, "done": done + identifiable, "remaining": remaining}
