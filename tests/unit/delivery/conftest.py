"""Fixtures: a small dataset of real generated media (speech, photos, a video, a PDF, text
and chats) as export items, and the description of its licensed version."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests import media_factory
from tests.unit.delivery.delivery_helpers import SOURCES, item_from_file, make_description

from fairtrain.delivery import ExportDescription, ExportItem


@pytest.fixture(scope="session")
def media_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("delivery-media")
    return {name: media_factory.make(name, root / name) for name in SOURCES}


@pytest.fixture
def items(media_files: dict[str, Path]) -> list[ExportItem]:
    return [
        item_from_file(media_files[name], modality, extension, index)
        for index, (name, (modality, extension)) in enumerate(SOURCES.items())
    ]


@pytest.fixture
def description(items: list[ExportItem]) -> ExportDescription:
    return make_description(items)
