"""Start-up checks and demo/dev key material.

A production server refuses to start with a missing or default secret and says which.
Demo and dev modes create what is missing under ``data_dir/keys`` (mode 0600) so a fresh
checkout runs with one command.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import SecretStr

from fairtrain.config import Settings

__all__ = ["InsecureConfiguration", "prepare_settings"]


class InsecureConfiguration(RuntimeError):
    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__(
            "fairtrain refuses to start outside demo/dev mode: "
            + "; ".join(reasons)
            + ". Set them (see docs/deployment.md) or run with --demo for a local trial."
        )


def _write_private(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(content)


def prepare_settings(settings: Settings) -> Settings:
    """Return settings that are safe to serve with, or raise ``InsecureConfiguration``."""
    reasons = settings.insecure_reasons()
    if reasons:
        raise InsecureConfiguration(reasons)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.secret_key is None and settings.is_relaxed:
        secret_file = settings.keys_dir / "secret_key"
        if not secret_file.exists():
            _write_private(secret_file, secrets.token_urlsafe(48))
        settings = settings.model_copy(
            update={"secret_key": SecretStr(secret_file.read_text().strip())}
        )
    return settings
