"""Regenerate migration 0001 from the models (only before the first release: no deployed
database exists yet, so one initial migration is clearer than a chain of early edits)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from alembic import command

from fairtrain.migrate import MIGRATIONS_DIR, alembic_config

for old in (MIGRATIONS_DIR / "versions").glob("0001_*.py"):
    old.unlink()
with tempfile.TemporaryDirectory() as tmp:
    config = alembic_config(f"sqlite:///{Path(tmp) / 'empty.db'}")
    command.revision(config, message="initial schema", autogenerate=True, rev_id="0001")

# Autogenerate writes trailing spaces and unsorted imports; leave it as `make lint` wants.
generated = [str(p) for p in (MIGRATIONS_DIR / "versions").glob("0001_*.py")]
ruff = [sys.executable, "-m", "ruff"]
subprocess.run([*ruff, "check", "--fix", "--unsafe-fixes", "--quiet", *generated], check=False)  # noqa: S603
subprocess.run([*ruff, "format", "--quiet", *generated], check=True)  # noqa: S603
