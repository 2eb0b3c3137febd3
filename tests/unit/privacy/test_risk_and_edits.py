"""The residual-risk summary says what was done and what is left; edits are checked."""

from __future__ import annotations

import pytest

from fairtrain.errors import InvalidInput
from fairtrain.privacy.edits import RedactionEdits, parse_edits
from fairtrain.privacy.risk import residual_risk


def test_a_photo_summary_counts_faces_text_and_says_the_face_is_visible() -> None:
    risk = residual_risk(
        "image",
        {
            "faces_blurred": 2,
            "text_regions_blurred": 1,
            "own_face": "1,2,30,40",
            "text_checked": True,
            "metadata_removed": ["exif", "gps"],
            "counterparties": [],
        },
    )
    assert risk["summary"] == (
        "2 faces blurred, 1 line of text blurred, file metadata removed, your face is visible"
    )
    assert any("missed" in note for note in risk["remaining"])


def test_a_text_summary_names_what_was_removed() -> None:
    risk = residual_risk("text", {"entities": {"PHONE_NUMBER": 1, "PERSON": 2, "NEW_KIND": 1}})
    assert risk["summary"] == "2 names removed, 1 new kind removed, 1 phone number removed"


def test_a_recording_always_says_the_voice_is_identifiable() -> None:
    muted = residual_risk(
        "audio",
        {
            "speakers": 2,
            "metadata_removed": True,
            "counterparties": [
                {"kind": "speaker", "speech_seconds": 4.2, "included": False},
            ],
        },
    )
    assert (
        muted["summary"]
        == "1 other voice muted (4 s), file metadata removed, voice is identifiable"
    )
    alone = residual_risk("audio", {"speakers": 1})
    assert alone["summary"] == "voice is identifiable"
    assert any("Only one voice" in note for note in alone["remaining"])
    call = residual_risk(
        "audio", {"call": True, "counterparties": [{"kind": "audio_channel", "included": False}]}
    )
    assert call["summary"].startswith("1 other channel removed")
    video = residual_risk("video", {"frames": 10, "frames_with_faces": 4, "audio_kept": True})
    assert video["summary"] == "faces blurred on 4 of 10 frames, voice is identifiable"
    assert residual_risk("audio", {"identity_needed": {}})["summary"] == "not redacted yet"
    assert "withheld" in residual_risk("chat", {"withheld_messages": 3})["summary"]
    assert "not scanned" in residual_risk("document", {"unchecked": "not scanned"})["remaining"][0]


def test_edits_round_trip_and_bad_ones_are_refused() -> None:
    edits = parse_edits(
        {"own_face": "1,2,30,40", "keep_spans": [[5, 9], [5, 9]], "blur_boxes": [[0, 0, 4, 4]]}
    )
    assert edits.keep_spans == ((5, 9),) and not edits.empty
    assert RedactionEdits.stored(edits.as_dict()) == edits
    assert RedactionEdits.stored(None).empty
    for body, code in [
        ({"own_speaker": 0}, "invalid_speaker"),
        ({"own_speaker": True}, "invalid_speaker"),
        ({"own_face": 3}, "unknown_part"),
        ({"own_face": "1,2"}, "unknown_part"),
        ({"keep_spans": [[3, 3]]}, "invalid_span"),
        ({"keep_spans": [[1, -2]]}, "invalid_span"),
        ({"keep_spans": "0-4"}, "invalid_edits"),
        ({"redact_spans": [[0, 1]] * 501}, "invalid_edits"),
        ({"blur_boxes": [[5, 5, 1, 9]]}, "invalid_box"),
        ({"blur_boxes": [[5, 5, 9]]}, "invalid_box"),
        ({"colour": "red"}, "invalid_edits"),
    ]:
        with pytest.raises(InvalidInput) as refused:
            parse_edits(body)
        assert refused.value.code == code, body
