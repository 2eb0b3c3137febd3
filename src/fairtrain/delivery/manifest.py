"""``manifest.json``: every file of an export with its SHA-256 and size, and which items
each shard holds, in RFC 8785 canonical JSON so the manifest has one hash
(``manifest_digest``) that the platform can sign and record in the audit log.

``verify_export`` checks a directory against its manifest and names every file that is
bad (size or digest differs), missing, or extra (present but not listed). It reads only
the directory: a buyer runs it on a download with nothing but this package.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from fairtrain.audit.chain import canonical_json
from fairtrain.delivery.streams import sha256_file
from fairtrain.errors import InvalidInput

__all__ = [
    "MANIFEST_FILE",
    "MANIFEST_FORMAT",
    "ManifestCheck",
    "manifest_digest",
    "read_manifest",
    "verify_export",
    "write_manifest",
]

MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = "fairtrain-export/1"


def write_manifest(export_dir: Path, manifest: dict[str, Any]) -> None:
    (export_dir / MANIFEST_FILE).write_bytes(canonical_json(manifest))


def read_manifest(export_dir: Path) -> dict[str, Any]:
    path = export_dir / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise InvalidInput(
            f"{export_dir} has no {MANIFEST_FILE}: it is not a fairtrain export.",
            code="export_manifest_missing",
        ) from None
    except ValueError:
        raise InvalidInput(
            f"{path} is not JSON; download the export again.", code="export_manifest_invalid"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise InvalidInput(
            f"{path} is not a {MANIFEST_FORMAT} manifest.", code="export_manifest_invalid"
        )
    return manifest


def manifest_digest(manifest: dict[str, Any]) -> str:
    """SHA-256 (hex) of the manifest's canonical form: equal to the SHA-256 of the
    ``manifest.json`` file as written."""
    return hashlib.sha256(canonical_json(manifest)).hexdigest()


@dataclass(frozen=True, slots=True)
class ManifestCheck:
    """The outcome of checking a directory against its manifest."""

    checked: int
    mismatched: tuple[str, ...]  # listed, present, but size or SHA-256 differs
    missing: tuple[str, ...]  # listed, not present
    extra: tuple[str, ...]  # present, not listed
    unsafe: tuple[str, ...]  # listed paths that would leave the directory

    @property
    def ok(self) -> bool:
        return not (self.mismatched or self.missing or self.extra or self.unsafe)

    def problems(self) -> list[str]:
        return (
            [f"{path}: contents differ from the manifest" for path in self.mismatched]
            + [f"{path}: missing" for path in self.missing]
            + [f"{path}: not in the manifest" for path in self.extra]
            + [f"{path}: unsafe path in the manifest" for path in self.unsafe]
        )


def _safe(relative: str) -> bool:
    path = PurePosixPath(relative)
    return bool(relative) and not path.is_absolute() and ".." not in path.parts


def verify_export(export_dir: Path) -> ManifestCheck:
    manifest = read_manifest(export_dir)
    listed: dict[str, dict[str, Any]] = {}
    unsafe = []
    for entry in manifest.get("files", []):
        relative = str(entry.get("path", ""))
        if _safe(relative):
            listed[relative] = entry
        else:
            unsafe.append(relative)
    mismatched, missing = [], []
    for relative, entry in sorted(listed.items()):
        path = export_dir / relative
        if not path.is_file():
            missing.append(relative)
            continue
        if path.stat().st_size != entry.get("size"):
            mismatched.append(relative)
            continue
        digest, _ = sha256_file(path)
        if digest != entry.get("sha256"):
            mismatched.append(relative)
    present = {p.relative_to(export_dir).as_posix() for p in export_dir.rglob("*") if p.is_file()}
    extra = sorted(present - set(listed) - {MANIFEST_FILE})
    return ManifestCheck(
        checked=len(listed),
        mismatched=tuple(mismatched),
        missing=tuple(missing),
        extra=tuple(extra),
        unsafe=tuple(unsafe),
    )
