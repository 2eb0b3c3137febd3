"""``croissant.json``: Croissant 1.1 JSON-LD with the Responsible-AI vocabulary.

The ``@context`` is the one Croissant 1.1 documents (as ``mlcroissant`` writes it) plus
``rai:`` (``http://mlcommons.org/croissant/RAI/``) and ``prov:`` (PROV-O, which Croissant
1.1 uses for provenance). The RAI properties are those of the RAI vocabulary
(``rai:dataCollection``, ``rai:dataCollectionType``, ``rai:personalSensitiveInformation``,
``rai:dataBiases``, ``rai:dataUseCases``, ``rai:dataLimitations``,
``rai:dataSocialImpact``, ``rai:dataReleaseMaintenancePlan``…) and
``rai:hasSyntheticData``, which review checklists ask for and the RAI 1.0 vocabulary file
does not define yet. Every value is generated from the ``ExportDescription``.

``distribution`` lists each Parquet shard as a ``cr:FileObject`` with its SHA-256 and a
``cr:FileSet`` that gathers them; the ``items`` record set maps one field to each Parquet
column, so ``mlcroissant.Dataset(jsonld=…).records("items")`` reads the rows back. Media
fields extract the ``bytes`` of the media struct. Tar shards are listed as file objects
for their checksums; without Parquet shards there is no record set.
"""

from __future__ import annotations

from typing import Any

from fairtrain.delivery.card import citation, licence_name
from fairtrain.delivery.items import ExportDescription, Modality
from fairtrain.delivery.parquet import MEDIA_COLUMNS, PARQUET_DIR, TYPED_METADATA
from fairtrain.ids import utcnow

__all__ = ["CROISSANT_FILE", "RECORD_SET", "build_croissant", "refresh_distribution"]

CROISSANT_FILE = "croissant.json"
RECORD_SET = "items"
CROISSANT_1_1 = "http://mlcommons.org/croissant/1.1"
RAI_1_0 = "http://mlcommons.org/croissant/RAI/1.0"
_PARQUET_FILE_SET = "parquet-shards"

CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "arrayShape": "cr:arrayShape",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "containedIn": "cr:containedIn",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "prov": "http://www.w3.org/ns/prov#",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "description": {"@container": "@language"},
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isArray": "cr:isArray",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "name": {"@container": "@language"},
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}

# What mlcroissant hands back for each media column: raw bytes for audio, video and
# documents, a decoded picture for images.
_MEDIA_TYPES: dict[Modality, str] = {
    Modality.AUDIO: "sc:AudioObject",
    Modality.IMAGE: "sc:ImageObject",
    Modality.VIDEO: "sc:VideoObject",
    Modality.DOCUMENT: "sc:Text",  # mlcroissant has no document type; bytes as-is
}
_SCALAR_TYPES = {"string": "sc:Text", "int64": "sc:Integer", "double": "sc:Float"}


def _field(name: str, data_type: str, description: str, **source: Any) -> dict[str, Any]:
    return {
        "@type": "cr:Field",
        "@id": f"{RECORD_SET}/{name}",
        "name": name,
        "description": description,
        "dataType": data_type,
        "source": {
            "fileSet": {"@id": _PARQUET_FILE_SET},
            "extract": {"column": name},
            **source,
        },
    }


def _fields(modalities: tuple[Modality, ...]) -> list[dict[str, Any]]:
    fields = [
        _field("key", "sc:Text", "Stable id of the item (the asset id)."),
        _field("modality", "sc:Text", "audio, image, video, chat, text or document."),
        _field("media_type", "sc:Text", "Media type of the delivered bytes."),
        _field("extension", "sc:Text", "File extension of the delivered bytes."),
        _field("size", "sc:Integer", "Size of the delivered bytes."),
        _field("sha256", "sc:Text", "SHA-256 (hex) of the delivered bytes."),
    ]
    for modality, (column, _) in MEDIA_COLUMNS.items():
        if modality in modalities:
            fields.append(
                _field(
                    column,
                    _MEDIA_TYPES[modality],
                    f"The {modality} bytes (null when stored under media/).",
                    transform={"jsonPath": "bytes"},
                )
            )
    if Modality.TEXT in modalities or Modality.CHAT in modalities:
        fields.append(_field("text", "sc:Text", "Content of text and chat items."))
    fields.append(_field("media_file", "sc:Text", "Path of the item's file when not embedded."))
    for name, kind in TYPED_METADATA.items():
        fields.append(_field(name, _SCALAR_TYPES[str(kind)], f"Delivered metadata: {name}."))
    fields.append(_field("metadata", "sc:Text", "All delivered metadata, RFC 8785 JSON."))
    return fields


def _file_object(entry: dict[str, Any], encoding: str) -> dict[str, Any]:
    return {
        "@type": "cr:FileObject",
        "@id": entry["path"],
        "name": entry["path"],
        "contentUrl": entry["path"],
        "contentSize": f"{entry['size']} B",
        "encodingFormat": encoding,
        "sha256": entry["sha256"],
    }


def _distribution(files: list[dict[str, Any]]) -> list[dict[str, Any]]:
    parquet = [f for f in files if f["path"].endswith(".parquet")]
    tars = [f for f in files if f["path"].endswith(".tar")]
    distribution = [_file_object(f, "application/x-parquet") for f in parquet]
    if parquet:
        distribution.append(
            {
                "@type": "cr:FileSet",
                "@id": _PARQUET_FILE_SET,
                "name": _PARQUET_FILE_SET,
                "description": "The Parquet shards, one row per item.",
                "encodingFormat": "application/x-parquet",
                "includes": f"{PARQUET_DIR}/*.parquet",
            }
        )
    distribution += [_file_object(f, "application/x-tar") for f in tars]
    return distribution


def _sensitive(d: ExportDescription) -> list[str]:
    found = [
        f"{name}: delivered generalised, {d.k_anonymity.k}-anonymous"
        for name in d.k_anonymity.quasi_identifiers
    ]
    if Modality.AUDIO in d.modalities or Modality.VIDEO in d.modalities:
        found.append("Voice: recordings of the contributors' own voices (biometric data)")
    if Modality.IMAGE in d.modalities or Modality.VIDEO in d.modalities:
        found.append("Faces: pictures of the contributors; bystanders' faces are blurred")
    if Modality.CHAT in d.modalities or Modality.TEXT in d.modalities:
        found.append(
            "Text written by the contributors; detected personal data is redacted and "
            "other people's messages are redacted unless they consented"
        )
    return found


def _biases(d: ExportDescription) -> list[str]:
    lines = []
    for g in d.representation.groups:
        line = f"{g.attribute} {g.group}: {g.count} items ({g.share * 100:.1f} %)"
        if g.target is not None:
            line += f", target {g.target * 100:.1f} %"
        if g.gap is not None:
            line += f", gap {g.gap * 100:+.1f} points"
        lines.append(line)
    lines.append(
        f"Divergence from the targets ({d.representation.divergence_measure}): "
        f"{d.representation.divergence:.3f}. Contributors chose to take part, so the "
        "dataset reflects who licenses data on fairtrain, not a random sample."
    )
    return lines


def build_croissant(
    description: ExportDescription, files: list[dict[str, Any]], *, item_count: int
) -> dict[str, Any]:
    """The Croissant document for an export whose files (path, sha256, size) are
    ``files``."""
    d = description
    end = d.licence_end.date().isoformat() if d.licence_end else "no end date"
    period = (
        [d.collection_period[0].isoformat(), d.collection_period[1].isoformat()]
        if d.collection_period
        else None
    )
    has_parquet = any(f["path"].endswith(".parquet") for f in files)
    document: dict[str, Any] = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": [CROISSANT_1_1, RAI_1_0],
        "name": d.dataset_name,
        "description": (
            f"Version {d.version_number} of dataset {d.dataset_id}: {item_count} items "
            f"licensed by the people they come from, delivered to {d.licensee} under "
            f"licence {d.licence_id} for {d.purpose.label.lower()}."
        ),
        "version": f"{d.version_number}.0.0",
        "dateCreated": d.created_at.isoformat(),
        "datePublished": d.created_at.isoformat(),
        "url": d.platform_base_url,
        "license": {
            "@type": "sc:CreativeWork",
            "name": licence_name(d.licence_id),
            "url": d.licence_link,
        },
        "citeAs": citation(d),
        "creator": {
            "@type": "sc:Organization",
            "name": "fairtrain contributors",
            "url": d.platform_base_url,
        },
        "publisher": {"@type": "sc:Organization", "name": "fairtrain", "url": d.platform_base_url},
        "inLanguage": list(d.languages),
        "keywords": ["fairtrain", "consented data", d.purpose.label, *map(str, d.modalities)],
        "isLiveDataset": False,
        "rai:dataCollection": " ".join(d.collection_process),
        "rai:dataCollectionType": ["User-generated content data", "Self-reporting"],
        "rai:dataCollectionRawData": (
            "Files the contributors uploaded themselves; the delivered bytes are the "
            "redacted copies they approved."
        ),
        "rai:dataPreprocessingProtocol": [
            "Type sniffed from bytes; malformed and hostile files refused.",
            "Personal data in text and transcripts redacted; EXIF and GPS removed; "
            "bystanders' faces blurred; other parties' voices and messages removed "
            "unless they consented.",
            *d.k_anonymity.generalisations,
        ],
        "rai:personalSensitiveInformation": _sensitive(d),
        "rai:dataBiases": _biases(d),
        "rai:dataUseCases": [
            f"Licensed for {d.purpose.label} ({d.purpose.key}): {d.purpose.words}.",
            f"Only by {d.licensee}, in {', '.join(d.territory) or 'no territory'}, from "
            f"{d.licence_start.date().isoformat()} to {end}.",
        ],
        "rai:dataLimitations": list(d.known_limits),
        "rai:dataSocialImpact": (
            "The contributors are paid for each licence and can see every buyer and "
            "purpose; their terms forbid uses they did not choose (for instance voice "
            "cloning or face recognition unless licensed). Misuse would harm identifiable "
            "people, so the licence binds the buyer to the declared purpose."
        ),
        "rai:hasSyntheticData": False,
        "rai:dataReleaseMaintenancePlan": (
            "Versions are immutable. A withdrawn item is left out of every later version "
            "and licensees are told to delete it; the buyer client applies withdrawals to "
            "the local copy and manifest.json lists what was removed."
        ),
        "prov:wasAttributedTo": {"@id": d.platform_base_url},
        "prov:wasGeneratedBy": [
            {
                "@type": "prov:Activity",
                "prov:label": "Collection",
                "description": "Contributors uploaded their own data and set its licence terms.",
            },
            {
                "@type": "prov:Activity",
                "prov:label": "Dataset build",
                "description": (
                    f"Only items whose terms permit {d.purpose.key} were selected; "
                    f"metadata made {d.k_anonymity.k}-anonymous."
                ),
                "prov:endedAtTime": d.created_at.isoformat(),
            },
        ],
        "distribution": _distribution(files),
    }
    if period:
        document["rai:dataCollectionTimeframe"] = period
    if has_parquet:
        document["recordSet"] = [
            {
                "@type": "cr:RecordSet",
                "@id": RECORD_SET,
                "name": RECORD_SET,
                "description": "One record per delivered item.",
                "key": {"@id": f"{RECORD_SET}/key"},
                "field": _fields(d.modalities),
            }
        ]
    return document


def refresh_distribution(document: dict[str, Any], files: list[dict[str, Any]]) -> dict[str, Any]:
    """The same document with ``distribution`` describing ``files`` (after a removal)."""
    refreshed = dict(document)
    refreshed["distribution"] = _distribution(files)
    refreshed["dateModified"] = utcnow().isoformat()
    return refreshed
