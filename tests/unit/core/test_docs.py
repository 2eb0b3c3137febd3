"""Documentation is tested against the code: every setting and every CLI command is
documented, so a new one cannot ship silently."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer.main

from fairtrain.cli import app
from fairtrain.config import Settings

ROOT = Path(__file__).resolve().parents[3]


def _docs_text() -> str:
    parts = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return "\n".join(path.read_text() for path in parts)


def test_every_setting_is_documented() -> None:
    deployment = (ROOT / "docs" / "deployment.md").read_text()
    missing = [
        f"FAIRTRAIN_{name.upper()}"
        for name in Settings.model_fields
        if f"`FAIRTRAIN_{name.upper()}`" not in deployment
    ]
    assert missing == [], f"settings missing from docs/deployment.md: {missing}"


def _commands(group: Any, prefix: str = "fairtrain") -> list[str]:
    found: list[str] = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        if hasattr(command, "commands"):
            found.extend(_commands(command, path))
        else:
            found.append(path)
    return found


def test_every_cli_command_is_documented() -> None:
    root = typer.main.get_command(app)
    text = _docs_text()
    missing = [c for c in _commands(root) if c not in text]
    assert missing == [], f"CLI commands missing from README/docs: {missing}"
