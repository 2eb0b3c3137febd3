"""The contributor's own edits of a redaction, made in the preview before approval.

Redaction guesses; the contributor knows. In the preview they can say which voice and
which face are theirs (defaults: the speaker with the most speech, the largest face),
un-redact their own items in a text (a span the detector replaced: their own first name,
their own town) and redact more (a text span the detector missed, a region of a picture:
a face it did not find, a name badge). The edits are stored with the asset and every
redaction run from the original applies them, so they survive a counterparty's consent
changing.

Pure values: no database, no files. :func:`parse_edits` checks a request's body and
raises :class:`~fairtrain.errors.InvalidInput` with a machine code for anything wrong.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fairtrain.errors import InvalidInput

__all__ = ["ADDED_ENTITY", "NO_FACE", "RedactionEdits", "parse_edits"]

# The entity type of a span the contributor asked to redact: placeholders read [REDACTED_1].
ADDED_ENTITY = "REDACTED"
# ``own_face`` when none of the faces is the contributor's: every face is blurred.
NO_FACE = "none"
MAX_ITEMS = 500
Box = tuple[int, int, int, int]
Range = tuple[int, int]


@dataclass(frozen=True, slots=True)
class RedactionEdits:
    own_speaker: int | None = None
    own_face: str | None = None  # a face ref "x1,y1,x2,y2", NO_FACE, or None (the largest)
    keep_spans: tuple[Range, ...] = ()
    redact_spans: tuple[Range, ...] = ()
    blur_boxes: tuple[Box, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "own_speaker": self.own_speaker,
            "own_face": self.own_face,
            "keep_spans": [list(r) for r in self.keep_spans],
            "redact_spans": [list(r) for r in self.redact_spans],
            "blur_boxes": [list(b) for b in self.blur_boxes],
        }

    @property
    def empty(self) -> bool:
        return self == RedactionEdits()

    @classmethod
    def stored(cls, value: object) -> RedactionEdits:
        """The edits kept in an asset's ``media_info`` (none when absent)."""
        return parse_edits(value) if isinstance(value, Mapping) else cls()


def _ints(value: object, size: int, field: str, code: str) -> tuple[int, ...]:
    if (
        not isinstance(value, Sequence)
        or isinstance(value, str)
        or len(value) != size
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
    ):
        raise InvalidInput(
            f"Each item of {field} is a list of {size} whole numbers, 0 or more.",
            code=code,
            pointer=f"/{field}",
        )
    return tuple(int(v) for v in value)


def _ranges(value: object, field: str) -> tuple[Range, ...]:
    items = _list(value, field)
    ranges: list[Range] = []
    for item in items:
        start, end = _ints(item, 2, field, "invalid_span")
        if end <= start:
            raise InvalidInput(
                f"A span in {field} must end after it starts.",
                code="invalid_span",
                pointer=f"/{field}",
            )
        ranges.append((start, end))
    return tuple(sorted(set(ranges)))


def _boxes(value: object, field: str) -> tuple[Box, ...]:
    boxes: list[Box] = []
    for item in _list(value, field):
        x1, y1, x2, y2 = _ints(item, 4, field, "invalid_box")
        if x2 <= x1 or y2 <= y1:
            raise InvalidInput(
                "A box is x1,y1,x2,y2 with a width and a height.",
                code="invalid_box",
                pointer=f"/{field}",
            )
        boxes.append((x1, y1, x2, y2))
    return tuple(sorted(set(boxes)))


def _list(value: object, field: str) -> Sequence[object]:
    if value is None:
        return ()
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise InvalidInput(f"{field} must be a list.", code="invalid_edits", pointer=f"/{field}")
    if len(value) > MAX_ITEMS:
        raise InvalidInput(
            f"At most {MAX_ITEMS} items in {field}.", code="invalid_edits", pointer=f"/{field}"
        )
    return value


def parse_edits(body: Mapping[str, Any]) -> RedactionEdits:
    """Checked edits from a request body or a stored value."""
    unknown = set(body) - {"own_speaker", "own_face", "keep_spans", "redact_spans", "blur_boxes"}
    if unknown:
        raise InvalidInput(f"Unknown field(s): {', '.join(sorted(unknown))}.", code="invalid_edits")
    speaker = body.get("own_speaker")
    if speaker is not None and (
        not isinstance(speaker, int) or isinstance(speaker, bool) or not 1 <= speaker <= 99
    ):
        raise InvalidInput(
            "own_speaker is the number of a speaker the report lists (1, 2, …).",
            code="invalid_speaker",
            pointer="/own_speaker",
        )
    face = body.get("own_face")
    if face is not None:
        if not isinstance(face, str):
            raise InvalidInput(
                'own_face is a face\'s ref (x1,y1,x2,y2) or "none".',
                code="unknown_part",
                pointer="/own_face",
            )
        if face != NO_FACE:
            from fairtrain.privacy.media import parse_face_ref

            parse_face_ref(face)
    return RedactionEdits(
        own_speaker=speaker,
        own_face=face,
        keep_spans=_ranges(body.get("keep_spans"), "keep_spans"),
        redact_spans=_ranges(body.get("redact_spans"), "redact_spans"),
        blur_boxes=_boxes(body.get("blur_boxes"), "blur_boxes"),
    )
