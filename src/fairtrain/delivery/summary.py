"""``training-content-summary.json`` and ``consent-receipts.json``.

The summary carries the fields of the European Commission's template for the public
summary of training content that GPAI providers must publish (AI Act Art. 53(1)(d)) which
a licensed dataset can answer: modalities, size, languages, collection period, the data
source (private data licensed directly from the data subjects through fairtrain, no
crawling, no synthetic data) and the measures on personal data and opt-outs. A provider
copies these into its own summary for the part of its training data this export is.

``consent-receipts.json`` lists, for every item, its consent receipt's SHA-256 and the
policy version it was licensed under. It is written one entry per line as items stream
past, so removing withdrawn items rewrites it line by line, never holding it whole.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from fairtrain.delivery.items import ExportDescription, ExportItem, Modality

__all__ = [
    "RECEIPTS_FILE",
    "SUMMARY_FILE",
    "ConsentReceiptsWriter",
    "ContentTally",
    "build_training_summary",
    "rewrite_receipts",
]

SUMMARY_FILE = "training-content-summary.json"
RECEIPTS_FILE = "consent-receipts.json"
TEMPLATE = (
    "European Commission, Template for the public summary of training content for "
    "general-purpose AI models (AI Act Art. 53(1)(d)): fields a licensed dataset answers"
)


_TEXTUAL = (Modality.CHAT, Modality.DOCUMENT)


@dataclass
class ContentTally:
    """Counts per modality, gathered while the items stream past."""

    items: dict[str, int] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, item: ExportItem) -> None:
        modality = str(item.modality)
        self.items[modality] = self.items.get(modality, 0) + 1
        self.bytes[modality] = self.bytes.get(modality, 0) + item.size
        duration = item.metadata.get("duration_seconds")
        if isinstance(duration, int | float) and not isinstance(duration, bool):
            self.seconds[modality] = self.seconds.get(modality, 0.0) + float(duration)

    @property
    def total(self) -> int:
        return sum(self.items.values())


def build_training_summary(d: ExportDescription, tally: ContentTally) -> dict[str, Any]:
    per_modality = {
        modality: {
            "items": tally.items.get(modality, 0),
            "bytes": tally.bytes.get(modality, 0),
            **(
                {"hours": round(tally.seconds[modality] / 3600, 3)}
                if modality in tally.seconds
                else {}
            ),
        }
        for modality in map(str, d.modalities)
    }
    period = (
        {"start": d.collection_period[0].isoformat(), "end": d.collection_period[1].isoformat()}
        if d.collection_period
        else None
    )
    return {
        "template": TEMPLATE,
        "dataset": {
            "dataset_id": d.dataset_id,
            "name": d.dataset_name,
            "version_id": d.version_id,
            "version_number": d.version_number,
            "licence_id": d.licence_id,
            "licensee": d.licensee,
        },
        "general_information": {
            # The template knows text, images, audio, video and "other": chats and
            # documents are text to it.
            "modalities": sorted({"text" if m in _TEXTUAL else str(m) for m in d.modalities}),
            "size": {"items": tally.total, "per_modality": per_modality},
            "languages": list(d.languages),
            "collection_period": period,
            "delivered_at": d.created_at.isoformat(),
        },
        "data_sources": {
            "publicly_available_datasets": False,
            "private_datasets_licensed_from_third_parties": {
                "used": True,
                "description": (
                    "Data licensed directly from the data subjects (the contributors), "
                    "through fairtrain, each on terms the contributor set: purpose, term, "
                    "territory and price."
                ),
                "licensor": "the data subjects, through fairtrain",
                "licence": d.licence_link,
                "permitted_purpose": {"key": d.purpose.key, "label": d.purpose.label},
            },
            "crawled_or_scraped_online": False,
            "user_data_of_the_provider": False,
            "synthetic_data": False,
        },
        "data_processing": {
            "rights_reservations_and_opt_outs": (
                "Only items whose machine-readable licence terms (W3C ODRL) permit the "
                "declared purpose are included. Contributors can withdraw at any time: "
                "withdrawn items are left out of later versions and the licensee must "
                "delete them."
            ),
            "opt_outs_honoured": True,
            "consent": (
                "Every item is backed by a signed consent receipt; their SHA-256 are "
                f"listed in {RECEIPTS_FILE}."
            ),
            "personal_data_measures": [
                "Personal data in text and transcripts is redacted; EXIF and GPS are "
                "removed; bystanders' faces are blurred; other people's voices and "
                "messages are removed unless they consented.",
                f"Delivered metadata is {d.k_anonymity.k}-anonymous on "
                f"{', '.join(d.k_anonymity.quasi_identifiers) or 'no quasi-identifiers'}; "
                f"{d.k_anonymity.records_suppressed} records were suppressed.",
                *d.k_anonymity.generalisations,
            ],
            "collection_process": list(d.collection_process),
        },
    }


def _entry_line(key: str, receipt: str, policy_version: int) -> str:
    entry = {"key": key, "consent_receipt_sha256": receipt, "policy_version": policy_version}
    return json.dumps(entry, sort_keys=True, separators=(",", ":"))


class ConsentReceiptsWriter:
    """Writes ``{"dataset_version_id": …, "licence_id": …, "receipts": [ …one per
    line… ]}`` as items come."""

    def __init__(self, path: Path, description: ExportDescription) -> None:
        self._handle: IO[str] = path.open("w", encoding="utf-8")
        head = {"dataset_version_id": description.version_id, "licence_id": description.licence_id}
        self._handle.write(json.dumps(head, sort_keys=True)[:-1] + ', "receipts": [\n')
        self._first = True

    def add(self, item: ExportItem) -> None:
        line = _entry_line(item.key, item.consent_receipt_sha256, item.policy_version)
        self._handle.write(("" if self._first else ",\n") + line)
        self._first = False

    def abort(self) -> None:
        self._handle.close()

    def close(self) -> None:
        self._handle.write("\n]}\n")
        self._handle.close()


def rewrite_receipts(path: Path, keys: frozenset[str]) -> tuple[str, ...]:
    """Rewrite the receipts file without the entries of ``keys``, line by line."""
    partial = path.with_name(path.name + ".partial")
    removed: list[str] = []
    with path.open(encoding="utf-8") as source, partial.open("w", encoding="utf-8") as target:
        target.write(source.readline())
        first = True
        for raw in source:
            line = raw.rstrip("\n").removesuffix(",")
            if not line.startswith("{"):
                continue  # the closing line
            entry = json.loads(line)
            if entry["key"] in keys:
                removed.append(entry["key"])
                continue
            target.write(("" if first else ",\n") + line)
            first = False
        target.write("\n]}\n")
        target.flush()
        os.fsync(target.fileno())
    os.replace(partial, path)
    return tuple(removed)
