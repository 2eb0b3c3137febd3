"""The dataset card, ``README.md``: Hugging Face's layout (YAML front matter, then
sections) generated from the ``ExportDescription`` alone, never from contributors' text.

The front matter is what the Hub and ``huggingface_hub.DatasetCard`` read: ``license:
other`` with ``license_name``/``license_link`` pointing at the licence, task categories
derived from the declared purpose and the modalities, languages, size category, pretty
name and a ``configs`` entry pointing at the Parquet shards. Every string is written
double-quoted with YAML's escapes, so no value can break the YAML or read back changed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from fairtrain.delivery.items import ExportDescription, Modality
from fairtrain.delivery.parquet import PARQUET_DIR

__all__ = ["CARD_FILE", "render_card", "size_category", "task_categories"]

CARD_FILE = "README.md"

# The Hub's task categories for what a purpose trains; narrower purposes first.
_PURPOSE_TASKS: dict[str, dict[Modality | None, str]] = {
    "speech_recognition": {None: "automatic-speech-recognition"},
    "speech_synthesis": {None: "text-to-speech"},
    "voice_cloning": {None: "text-to-speech"},
    "face_recognition": {None: "image-classification"},
    "biometric_identification": {
        Modality.AUDIO: "audio-classification",
        None: "image-classification",
    },
    "emotion_recognition": {
        Modality.AUDIO: "audio-classification",
        Modality.IMAGE: "image-classification",
        Modality.VIDEO: "video-classification",
        None: "text-classification",
    },
    "content_generation": {
        Modality.AUDIO: "text-to-audio",
        Modality.IMAGE: "text-to-image",
        Modality.VIDEO: "text-to-video",
        None: "text-generation",
    },
    "synthetic_likeness": {Modality.VIDEO: "text-to-video", None: "text-to-image"},
}
# Broad purposes (model training, research, evaluation): what each modality is most
# commonly trained for.
_MODALITY_TASKS: dict[Modality, str] = {
    Modality.AUDIO: "automatic-speech-recognition",
    Modality.IMAGE: "image-classification",
    Modality.VIDEO: "video-classification",
    Modality.TEXT: "text-generation",
    Modality.CHAT: "text-generation",
    Modality.DOCUMENT: "image-to-text",
}


def task_categories(purpose_key: str, modalities: Sequence[Modality]) -> list[str]:
    found: list[str] = []
    for modality in modalities:
        by_modality = _PURPOSE_TASKS.get(purpose_key)
        if by_modality is None:
            task = _MODALITY_TASKS[modality]
        else:
            task = by_modality.get(modality) or by_modality[None]
        if task not in found:
            found.append(task)
    return found


def size_category(count: int) -> str:
    """The Hub's size category for a number of items."""
    bounds = [
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
        (100_000_000, "10M<n<100M"),
        (1_000_000_000, "100M<n<1B"),
    ]
    for bound, label in bounds:
        if count < bound:
            return label
    return "n>1T" if count > 10**12 else "1B<n<10B"


def licence_name(licence_id: str) -> str:
    return "fairtrain-licence-" + re.sub(r"[^a-z0-9-]", "-", licence_id.lower())


def _yaml(value: Any, indent: int = 0) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, Mapping):
        for key, inner in value.items():
            if isinstance(inner, Mapping | list) and inner:
                lines.append(f"{pad}{key}:")
                lines += _yaml(inner, indent + 2)
            else:
                lines.append(f"{pad}{key}: {_scalar(inner)}")
    else:
        for inner in value:
            if isinstance(inner, Mapping):
                nested = _yaml(inner, indent + 2)
                lines.append(f"{pad}- {nested[0].lstrip()}")
                lines += nested[1:]
            else:
                lines.append(f"{pad}- {_scalar(inner)}")
    return lines


def _quote(text: str) -> str:
    """A YAML double-quoted scalar that reads back as exactly ``text``: everything YAML
    would not take literally (controls, DEL, NEL, line and paragraph separators, the BOM,
    non-characters) is escaped, the rest is kept as it is."""
    out = []
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD:
            out.append(char if code not in (0x2028, 0x2029, 0xFEFF) else f"\\u{code:04x}")
        elif code >= 0x10000:
            out.append(char)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        else:
            out.append(f"\\u{code:04x}")
    return '"' + "".join(out) + '"'


def _scalar(value: Any) -> str:
    if isinstance(value, list | dict):
        return "[]" if isinstance(value, list) else "{}"
    if isinstance(value, str):
        return _quote(value)
    return json.dumps(value)


def _day(moment: datetime | None) -> str:
    return moment.date().isoformat() if moment else "no end date"


def _percent(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f} %"


def _gap(gap: float | None) -> str:
    return "—" if gap is None else f"{gap * 100:+.1f} points"


def front_matter(description: ExportDescription, *, item_count: int) -> dict[str, Any]:
    return {
        "pretty_name": description.dataset_name,
        "license": "other",
        "license_name": licence_name(description.licence_id),
        "license_link": description.licence_link,
        "language": [tag.split("-")[0].lower() for tag in description.languages],
        "task_categories": task_categories(description.purpose.key, description.modalities),
        "size_categories": [size_category(item_count)],
        "tags": ["fairtrain", "consented", "licensed", *map(str, description.modalities)],
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": "train", "path": f"{PARQUET_DIR}/train-*.parquet"}],
            }
        ],
    }


def render_card(
    description: ExportDescription, *, item_count: int, with_parquet: bool = True
) -> str:
    matter = front_matter(description, item_count=item_count)
    if not with_parquet:
        del matter["configs"]
    d = description
    base = d.platform_base_url.rstrip("/")
    territory = ", ".join(d.territory) or "no territory"
    title = " ".join(d.dataset_name.split())  # one line, whatever the name holds
    lines = ["---", *_yaml(matter), "---", "", f"# {title}", ""]
    lines += [
        "## Summary",
        "",
        f"Version {d.version_number} (`{d.version_id}`) of dataset `{d.dataset_id}`, "
        f"delivered to {d.licensee} under licence `{d.licence_id}`: {item_count} items "
        f"({', '.join(map(str, d.modalities))}), {d.contribution_units:g} contribution "
        f"units, in {', '.join(d.languages) or 'no declared language'}. Every item was "
        "licensed by the person it comes from, on terms they set. Files: Parquet shards "
        f"in `{PARQUET_DIR}/` and/or WebDataset shards in `webdataset/`; `manifest.json` "
        "lists every file with its SHA-256.",
        "",
        "## Licence and permitted purpose",
        "",
        f"Licence `{d.licence_id}`: {d.licence_link}. The only permitted purpose is "
        f"**{d.purpose.label}** (`{d.purpose.key}`): {d.purpose.words}. Any other use, "
        "and any use by anyone other than the licensee, is not licensed.",
        "",
        "## Territory and term",
        "",
        f"Territory: {territory}. Term: from {_day(d.licence_start)} to "
        f"{_day(d.licence_end)}. When the term ends, the licence ends and the copies must "
        "be deleted unless it is renewed.",
        "",
        "## Collection process",
        "",
        *[f"- {sentence}" for sentence in d.collection_process],
        "",
        "## Consent",
        "",
        "Every item is backed by a consent receipt signed by the platform (a JWS, "
        "Ed25519): `consent-receipts.json` lists each item's receipt SHA-256 and the "
        "version of the contributor's policy it was licensed under. To check one, fetch "
        "the receipt and verify it offline with the platform's public key "
        f"(key id `{d.public_key_id}`, published at {base}/api/v1/signing-key): "
        "`fairtrain consent verify-receipt receipt.json --public-key platform.pem`, then "
        "compare the SHA-256 of the receipt's JWS with the one listed here.",
        "",
        "## Withdrawals",
        "",
        "Contributors can withdraw their items at any time. The licensee is notified "
        "(signed webhook and feed) and must sync this copy: the buyer client removes "
        "withdrawn items from the shards, updates `manifest.json` (its `withdrawn` list "
        "names what was removed) and the licensee attests the deletion.",
        "",
        "## Representation report",
        "",
        "| attribute | group | items | share | target | gap |",
        "|---|---|---|---|---|---|",
        *[
            f"| {g.attribute} | {g.group} | {g.count} | {_percent(g.share)} | "
            f"{_percent(g.target)} | {_gap(g.gap)} |"
            for g in d.representation.groups
        ],
        "",
        f"Divergence from the targets ({d.representation.divergence_measure}): "
        f"{d.representation.divergence:.3f}.",
        "",
        "## k-anonymity report",
        "",
        f"Delivered metadata is {d.k_anonymity.k}-anonymous on the quasi-identifiers "
        f"{', '.join(d.k_anonymity.quasi_identifiers) or '(none)'}: every combination "
        f"of their values is shared by at least {d.k_anonymity.k} items. "
        f"Records suppressed: {d.k_anonymity.records_suppressed}.",
        "",
        *[f"- {sentence}" for sentence in d.k_anonymity.generalisations],
        "",
        "## Known limits",
        "",
        *[f"- {sentence}" for sentence in d.known_limits],
        "",
        "## Citation",
        "",
        "```bibtex",
        citation(d),
        "```",
        "",
    ]
    return "\n".join(lines)


def citation(d: ExportDescription) -> str:
    key = re.sub(r"[^A-Za-z0-9]", "", d.version_id)
    title = d.dataset_name.replace("{", "").replace("}", "")
    return (
        f"@misc{{fairtrain_{key},\n"
        f"  title = {{{title}, version {d.version_number}}},\n"
        f"  howpublished = {{fairtrain, {d.platform_base_url}}},\n"
        f"  note = {{Dataset {d.dataset_id}, version {d.version_id}, "
        f"licence {d.licence_id}}},\n"
        f"  year = {{{d.created_at.year}}}\n"
        "}"
    )
