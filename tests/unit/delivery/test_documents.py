"""The documents that travel with the shards: the dataset card, the AI Act
training-content summary and the consent-receipt list, all generated from the
description and the items."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from huggingface_hub import DatasetCard
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.delivery.delivery_helpers import make_description

from fairtrain.delivery import (
    DeclaredPurpose,
    ExportDescription,
    ExportItem,
    Modality,
    export_dataset,
)
from fairtrain.delivery.card import render_card, size_category, task_categories


@pytest.fixture
def export_dir(tmp_path: Path, items: list[ExportItem], description: ExportDescription) -> Path:
    out = tmp_path / "export"
    export_dataset(items, description, out)
    return out


def test_the_card_is_a_hugging_face_card(
    export_dir: Path, description: ExportDescription, items: list[ExportItem]
) -> None:
    card = DatasetCard.load(export_dir / "README.md")
    data = card.data.to_dict()
    assert data["license"] == "other"
    assert data["license_name"] == f"fairtrain-licence-{description.licence_id.replace('_', '-')}"
    assert data["license_link"] == description.licence_link
    assert data["pretty_name"] == description.dataset_name
    assert data["language"] == ["en"]
    assert data["size_categories"] == ["n<1K"]
    assert data["task_categories"] == ["automatic-speech-recognition"]
    assert data["configs"] == [
        {
            "config_name": "default",
            "data_files": [{"split": "train", "path": "data/train-*.parquet"}],
        }
    ]
    text = card.text
    for heading in (
        "## Summary",
        "## Licence and permitted purpose",
        "## Territory and term",
        "## Collection process",
        "## Consent",
        "## Withdrawals",
        "## Representation report",
        "## k-anonymity report",
        "## Known limits",
        "## Citation",
    ):
        assert heading in text
    assert f"{len(items)} items" in text
    assert "| age_band | 18-29 | 4 | 36.4 % | 33.3 % | +3.0 points |" in text
    assert "DE, FR" in text and "2026-01-01" in text and "2027-01-01" in text
    assert description.public_key_id in text
    for sentence in (*description.known_limits, *description.collection_process):
        assert sentence in text


def test_card_values_cannot_break_the_yaml(items: list[ExportItem]) -> None:
    hostile = make_description(
        items, dataset_name='Voices: "quoted" #not-a-comment\n- injected: true', languages=()
    )
    matter = render_card(hostile, item_count=3).split("---")[1]
    parsed = yaml.safe_load(matter)
    assert parsed["pretty_name"] == hostile.dataset_name
    assert "injected" not in parsed
    assert parsed["language"] == []


@given(name=st.text(min_size=1), limit=st.text())
@settings(max_examples=200, deadline=None)
def test_any_text_survives_the_front_matter(name: str, limit: str) -> None:
    description = make_description([], dataset_name=name, languages=(limit,))
    matter = render_card(description, item_count=0).split("\n---\n")[0].removeprefix("---\n")
    parsed = yaml.safe_load(matter)
    assert parsed["pretty_name"] == name
    assert parsed["language"] == [limit.split("-")[0].lower()]


@pytest.mark.parametrize(
    ("purpose", "modalities", "expected"),
    [
        ("speech_recognition", (Modality.AUDIO,), ["automatic-speech-recognition"]),
        ("speech_synthesis", (Modality.AUDIO, Modality.TEXT), ["text-to-speech"]),
        (
            "emotion_recognition",
            (Modality.AUDIO, Modality.IMAGE, Modality.CHAT),
            ["audio-classification", "image-classification", "text-classification"],
        ),
        (
            "content_generation",
            (Modality.IMAGE, Modality.TEXT),
            ["text-to-image", "text-generation"],
        ),
        (
            "model_training",
            (Modality.VIDEO, Modality.DOCUMENT),
            ["video-classification", "image-to-text"],
        ),
    ],
)
def test_task_categories_follow_purpose_then_modality(
    purpose: str, modalities: tuple[Modality, ...], expected: list[str]
) -> None:
    assert task_categories(purpose, modalities) == expected


@pytest.mark.parametrize(
    ("count", "label"),
    [
        (0, "n<1K"),
        (999, "n<1K"),
        (1000, "1K<n<10K"),
        (250_000, "100K<n<1M"),
        (2 * 10**9, "1B<n<10B"),
    ],
)
def test_size_category(count: int, label: str) -> None:
    assert size_category(count) == label


def test_training_content_summary(
    export_dir: Path, items: list[ExportItem], description: ExportDescription
) -> None:
    summary = json.loads((export_dir / "training-content-summary.json").read_text())
    general = summary["general_information"]
    assert general["modalities"] == ["audio", "image", "text", "video"]
    assert general["size"]["items"] == len(items)
    audio = [item for item in items if item.modality is Modality.AUDIO]
    per_audio = general["size"]["per_modality"]["audio"]
    assert per_audio["items"] == len(audio)
    assert per_audio["bytes"] == sum(item.size for item in audio)
    hours = sum(float(item.metadata["duration_seconds"]) for item in audio) / 3600  # type: ignore[arg-type]
    assert per_audio["hours"] == round(hours, 3)
    assert general["languages"] == ["en"]
    assert general["collection_period"] == {
        "start": "2025-06-01T00:00:00+00:00",
        "end": "2026-02-01T00:00:00+00:00",
    }
    sources = summary["data_sources"]
    assert sources["private_datasets_licensed_from_third_parties"]["used"] is True
    assert sources["private_datasets_licensed_from_third_parties"]["licence"] == (
        description.licence_link
    )
    assert sources["crawled_or_scraped_online"] is False
    assert sources["synthetic_data"] is False
    processing = summary["data_processing"]
    assert processing["opt_outs_honoured"] is True
    assert any("5-anonymous" in line for line in processing["personal_data_measures"])


def test_consent_receipts_list_every_item(export_dir: Path, items: list[ExportItem]) -> None:
    receipts = json.loads((export_dir / "consent-receipts.json").read_text())
    assert receipts["dataset_version_id"]
    assert receipts["receipts"] == [
        {
            "key": item.key,
            "consent_receipt_sha256": item.metadata["consent_receipt_sha256"],
            "policy_version": item.metadata["policy_version"],
        }
        for item in items
    ]


def test_an_empty_version_still_exports(tmp_path: Path, items: list[ExportItem]) -> None:
    description = replace(make_description(items), item_count=0)
    manifest = export_dataset([], description, tmp_path / "empty")
    receipts = json.loads((tmp_path / "empty" / "consent-receipts.json").read_text())
    assert receipts["receipts"] == []
    assert manifest["item_count"] == 0
    assert [s["keys"] for s in manifest["shards"]] == [[], []]


def test_purpose_words_reach_the_card(tmp_path: Path, items: list[ExportItem]) -> None:
    purpose = DeclaredPurpose("speech_synthesis", "Speech synthesis", "to train AI that speaks")
    description = make_description(items, purpose=purpose)
    text = render_card(description, item_count=len(items))
    assert "**Speech synthesis** (`speech_synthesis`): to train AI that speaks" in text
