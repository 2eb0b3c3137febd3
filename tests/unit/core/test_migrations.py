"""The Alembic migrations and the SQLAlchemy models describe the same schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine

from fairtrain.models import metadata


def test_models_and_migrations_agree(engine: Engine) -> None:
    # `engine` is migrated with `alembic upgrade head` by the session fixtures, on SQLite
    # and on PostgreSQL; any difference from the models is a missing migration.
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    assert differences == [], f"models and migrations differ: {differences}"
