"""fairtrain.delivery: training-ready exports of a licensed dataset version.

The format layer is pure: it takes plain values (``ExportItem``, ``ExportDescription``)
and writes files, with no database and no HTTP. See docs/delivery.md.
"""

from fairtrain.delivery.export import (
    ExportFormat,
    ExportLimits,
    Removal,
    export_dataset,
    remove_items,
)
from fairtrain.delivery.items import (
    DeclaredPurpose,
    ExportDescription,
    ExportItem,
    KAnonymityReport,
    Modality,
    RepresentationGroup,
    RepresentationReport,
)
from fairtrain.delivery.manifest import ManifestCheck, manifest_digest, verify_export

__all__ = [
    "DeclaredPurpose",
    "ExportDescription",
    "ExportFormat",
    "ExportItem",
    "ExportLimits",
    "KAnonymityReport",
    "ManifestCheck",
    "Modality",
    "Removal",
    "RepresentationGroup",
    "RepresentationReport",
    "export_dataset",
    "manifest_digest",
    "remove_items",
    "verify_export",
]
