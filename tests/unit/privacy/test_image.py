"""Pictures: the contributor's own face kept (the largest unless they choose), other
faces and visible text blurred, regions they mark blurred as well."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.media_factory import text_picture, two_faces_picture

from fairtrain.errors import InvalidInput
from fairtrain.privacy import media


def _detail(pixels: np.ndarray) -> float:
    grey = pixels.astype(float).mean(axis=-1)
    return float(np.abs(np.diff(grey, axis=0)).mean() + np.abs(np.diff(grey, axis=1)).mean())


def _region(path: Path, box: list[int] | tuple[int, ...]) -> np.ndarray:
    x1, y1, x2, y2 = box
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))[y1:y2, x1:x2]


@pytest.fixture(scope="module")
def two_faces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("faces") / "two.png"
    two_faces_picture().save(path)
    return path


def test_the_largest_face_is_the_contributors_and_the_other_is_blurred(
    two_faces: Path, tmp_path: Path
) -> None:
    _, report = media.redact_image(two_faces, tmp_path / "out.png")
    large, small = report["faces"]
    assert large["own"] is True and small["own"] is False
    assert report["own_face"] == large["ref"] and report["own_face_chosen"] is False
    assert report["faces_blurred"] == 1
    assert [p["ref"] for p in report["counterparties"]] == [small["ref"]]
    assert np.array_equal(
        _region(tmp_path / "out.png", large["box"]), _region(two_faces, large["box"])
    )
    assert _detail(_region(tmp_path / "out.png", small["box"])) < 0.3 * _detail(
        _region(two_faces, small["box"])
    )


def test_the_contributor_picks_their_face_or_none(two_faces: Path, tmp_path: Path) -> None:
    _, first = media.redact_image(two_faces, tmp_path / "a.png")
    large, small = first["faces"]
    _, chosen = media.redact_image(two_faces, tmp_path / "b.png", own_face=small["ref"])
    assert chosen["own_face"] == small["ref"] and chosen["own_face_chosen"] is True
    assert [p["ref"] for p in chosen["counterparties"]] == [large["ref"]]
    assert np.array_equal(
        _region(tmp_path / "b.png", small["box"]), _region(two_faces, small["box"])
    )
    _, none = media.redact_image(two_faces, tmp_path / "c.png", own_face="none")
    assert none["faces_blurred"] == 2 and none["own_face"] is None
    # A face no longer found (the picture changed): every face is blurred.
    _, gone = media.redact_image(two_faces, tmp_path / "d.png", own_face="1,1,20,20")
    assert gone["faces_blurred"] == 2
    with pytest.raises(InvalidInput):
        media.redact_image(two_faces, tmp_path / "e.png", own_face="not a face")


def test_regions_the_contributor_marks_are_blurred(two_faces: Path, tmp_path: Path) -> None:
    badge = (20, 400, 200, 480)
    _, report = media.redact_image(two_faces, tmp_path / "out.png", blur_boxes=[badge])
    assert report["regions_blurred_by_you"] == [list(badge)]
    assert _detail(_region(tmp_path / "out.png", badge)) < 0.3 * _detail(_region(two_faces, badge))


def test_visible_text_is_found_and_blurred(tmp_path: Path) -> None:
    source = tmp_path / "document.png"
    text_picture().save(source)
    _, report = media.redact_image(source, tmp_path / "out.png")
    assert report["text_checked"] is True and report["text_regions_blurred"] == 2
    lines = sorted(report["text_regions"], key=lambda box: box[1])
    for (x1, y1, x2, y2), top in zip(lines, (40, 120), strict=True):
        assert x1 <= 40 and y1 <= top + 12 and x2 >= 280 and y2 >= top + 25
    for box in report["text_regions"]:
        assert _detail(_region(tmp_path / "out.png", box)) < 0.3 * _detail(_region(source, box))
    shape = (420, 220, 600, 340)  # no text there: left as it was
    assert np.array_equal(_region(tmp_path / "out.png", shape), _region(source, shape))
    assert media.detect_text(np.zeros((100, 100, 3), dtype=np.uint8)) == []
    _, plain = media.redact_image(source, tmp_path / "plain.png", blur_text=False)
    assert plain["text_checked"] is False and plain["text_regions_blurred"] == 0
