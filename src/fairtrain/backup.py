"""Backup and restore: the database, the vault's ciphertext, and — kept apart — the keys.

A backup is a directory:

```
BACKUP/manifest.json          what it holds, with the SHA-256 of every file
BACKUP/database.sqlite        (SQLite: an online, consistent copy)
BACKUP/database.pgdump        (PostgreSQL: pg_dump's custom format)
BACKUP/vault/<key>            every stored object, byte for byte (ciphertext)
KEYS/kek.b64                  the vault's key-encryption key
KEYS/platform-ed25519.pem     the platform's signing key
```

The keys go to a **different** place (``--keys``): ciphertext and the key that opens it
must never travel together, or the backup is a plaintext copy with extra steps. The
database is copied first and the vault second, so every object a backed-up row names is
in the backup (objects written after the database copy are harmless orphans).

Restoring writes all three into the locations the current settings name (an empty
database, an empty store) and then runs :func:`fairtrain.consistency.check_platform`:
the audit chain must verify and every blob must decrypt.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from fairtrain.config import Settings
from fairtrain.errors import Conflict, InvalidInput
from fairtrain.ids import utcnow
from fairtrain.vault.backends import backend_from_url

__all__ = ["BackupSummary", "create_backup", "restore_backup", "verify_backup"]

FORMAT = "fairtrain-backup/1"
CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class BackupSummary:
    database: str
    objects: int
    bytes: int
    files: int


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _postgres(url: str) -> tuple[str, str | None]:
    """(libpq URL without the SQLAlchemy driver or options, schema from search_path)."""
    parsed = urlparse(url.replace("postgresql+psycopg://", "postgresql://", 1))
    options = parse_qs(parsed.query).get("options", [""])[0]
    schema = None
    for part in unquote(options).split():
        if part.startswith("-csearch_path="):
            schema = part.split("=", 1)[1]
    return parsed._replace(query="").geturl(), schema


def _sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def _walk(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            yield path


def create_backup(settings: Settings, out: Path, keys_out: Path) -> BackupSummary:
    """Copy the database, then the vault, into ``out``; the keys into ``keys_out``."""
    out, keys_out = out.resolve(), keys_out.resolve()
    if out == keys_out or keys_out.is_relative_to(out) or out.is_relative_to(keys_out):
        raise InvalidInput(
            "Keep the keys apart from the backup: give --keys a directory outside it.",
            code="keys_with_backup",
        )
    for target in (out, keys_out):
        if target.exists() and any(target.iterdir()):
            raise Conflict(f"{target} is not empty.", code="backup_target_not_empty")
        target.mkdir(parents=True, exist_ok=True, mode=0o700)
    url = settings.effective_database_url
    if url.startswith("sqlite"):
        database = out / "database.sqlite"
        source = sqlite3.connect(str(_sqlite_path(url)))
        copy = sqlite3.connect(str(database))
        try:
            source.backup(copy)  # consistent even while the server writes
        finally:
            copy.close()
            source.close()
    else:
        database = out / "database.pgdump"
        libpq, schema = _postgres(url)
        command = ["pg_dump", "--format=custom", "--no-owner", f"--file={database}"]
        if schema:
            command.append(f"--schema={schema}")
        subprocess.run([*command, libpq], check=True, capture_output=True)  # noqa: S603
    backend = backend_from_url(settings.effective_vault_url)
    objects = size = 0
    for stored in backend.iter_objects():
        target = out / "vault" / stored.key
        target.parent.mkdir(parents=True, exist_ok=True)
        with backend.open(stored.key) as reader, target.open("wb") as handle:
            while chunk := reader.read(CHUNK):
                handle.write(chunk)
                size += len(chunk)
        objects += 1
    shutil.copy2(settings.effective_kek_path, keys_out / "kek.b64")
    shutil.copy2(settings.effective_signing_key_path, keys_out / "platform-ed25519.pem")
    files = [
        {"path": str(p.relative_to(out)), "sha256": _sha256(p), "size": p.stat().st_size}
        for p in _walk(out)
    ]
    manifest = {
        "format": FORMAT,
        "created_at": utcnow().isoformat(),
        "database": database.name,
        "objects": objects,
        "bytes": size,
        "files": files,
        "keys": {p.name: _sha256(p) for p in _walk(keys_out)},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return BackupSummary(database.name, objects, size, len(files))


def verify_backup(backup: Path, keys: Path | None = None) -> list[str]:
    """Problems with a backup directory (empty: every file is there and unchanged)."""
    try:
        manifest: dict[str, Any] = json.loads((backup / "manifest.json").read_text())
    except (OSError, ValueError) as error:
        return [f"manifest.json cannot be read: {error}"]
    if manifest.get("format") != FORMAT:
        return [f"not a {FORMAT} backup"]
    problems = []
    listed = set()
    for entry in manifest["files"]:
        path = backup / entry["path"]
        listed.add(entry["path"])
        if not path.is_file():
            problems.append(f"{entry['path']} is missing")
        elif _sha256(path) != entry["sha256"]:
            problems.append(f"{entry['path']} has changed")
    for path in _walk(backup):
        name = str(path.relative_to(backup))
        if name != "manifest.json" and name not in listed:
            problems.append(f"{name} is not in the manifest")
    if keys is not None:
        for name, digest in manifest.get("keys", {}).items():
            if not (keys / name).is_file() or _sha256(keys / name) != digest:
                problems.append(f"key file {name} is missing or not the one backed up")
    return problems


def restore_backup(settings: Settings, backup: Path, keys: Path) -> BackupSummary:
    """Restore into the empty database, store and key paths the settings name."""
    problems = verify_backup(backup, keys)
    if problems:
        raise InvalidInput(
            "The backup does not verify: " + "; ".join(problems[:5]), code="backup_invalid"
        )
    manifest = json.loads((backup / "manifest.json").read_text())
    for name, target in (
        ("kek.b64", settings.effective_kek_path),
        ("platform-ed25519.pem", settings.effective_signing_key_path),
    ):
        if target.exists() and target.read_bytes() != (keys / name).read_bytes():
            raise Conflict(
                f"{target} already holds another key; restore into a fresh deployment.",
                code="restore_target_not_empty",
            )
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.copy2(keys / name, target)
        target.chmod(0o600)
    url = settings.effective_database_url
    if url.startswith("sqlite"):
        path = _sqlite_path(url)
        if path.exists() and path.stat().st_size > 0:
            raise Conflict(f"{path} already exists.", code="restore_target_not_empty")
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(backup / manifest["database"], path)
    else:
        libpq, _ = _postgres(url)
        # The dump holds only the deployment's schema (and creates it): restore it whole.
        command = ["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={libpq}"]
        done = subprocess.run(  # noqa: S603
            [*command, str(backup / manifest["database"])], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise Conflict(
                f"pg_restore refused: {done.stderr.strip()[-500:]}",
                code="restore_target_not_empty"
                if "already exists" in done.stderr
                else "restore_failed",
            )
    backend = backend_from_url(settings.effective_vault_url)
    objects = size = 0
    root = backup / "vault"
    for path in _walk(root) if root.exists() else iter(()):
        key = str(path.relative_to(root))
        if backend.exists(key):
            raise Conflict(f"The store already holds {key}.", code="restore_target_not_empty")
        with path.open("rb") as handle:
            size += backend.put(key, iter(lambda: handle.read(CHUNK), b""))
        objects += 1
    return BackupSummary(manifest["database"], objects, size, len(manifest["files"]))
