"""PostgreSQL reads the few inexact entries of a licence search from their partial
index, not by scanning every entry (the predicate must be the index's own)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from fairtrain.catalog import service as catalog


@pytest.mark.postgres
def test_inexact_entries_are_read_from_their_partial_index(postgres_engine: Engine) -> None:
    # A search on its licence alone: no other filter an index could serve.
    statement = catalog._inexact_statement(catalog.CatalogQuery())
    sql = str(statement.compile(postgres_engine, compile_kwargs={"literal_binds": True}))
    with postgres_engine.connect() as connection, connection.begin():
        # On an empty table a scan is cheapest; forbid it to ask whether the index
        # *can* answer (with ``exact IS FALSE`` it cannot, and a scan is the only plan).
        connection.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(row[0] for row in connection.execute(text(f"EXPLAIN {sql}")))
    assert "ix_catalog_entries_inexact" in plan, plan
