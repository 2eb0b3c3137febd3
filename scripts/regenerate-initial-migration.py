"""Regenerate migration 0001 from the models (only before the first release: no deployed
database exists yet, so one initial migration is clearer than a chain of early edits)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from alembic import command

from fairtrain.migrate import MIGRATIONS_DIR, alembic_config

for old in (MIGRATIONS_DIR / "versions").glob("0001_*.py"):
    old.unlink()
with tempfile.TemporaryDirectory() as tmp:
    config = alembic_config(f"sqlite:///{Path(tmp) / 'empty.db'}")
    command.revision(config, message="initial schema", autogenerate=True, rev_id="0001")
