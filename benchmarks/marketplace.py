"""Marketplace benchmark: faceted catalogue search and dataset builds at scale.

    uv run python benchmarks/marketplace.py --assets 1000000 \
        --database postgresql+psycopg://postgres@127.0.0.1:5432/test
    uv run python benchmarks/marketplace.py --quick          # 50,000 on SQLite
    uv run python benchmarks/marketplace.py --keep m1 --no-build --database ...
        # load once into schema m1 and keep it; later runs reuse it (search only)

It loads N synthetic listed assets (owners with generalised demographics, the four
terms templates at random prices, compiled as the platform compiles them) into a fresh
schema, then measures, in the same run:

* **catalogue search**: ``catalog.service.search`` — the first page *and* the facet
  counts over the whole result — for a mix of queries (kind of data, language,
  demographics, licence compatibility with a purpose and territory), p50 and p95,
  beside the time of ``SELECT count(*)`` over the whole table (the cost of one scan);
* **dataset build**: ``datasets.service.build_version`` over a selection of about 10%
  of the catalogue (100,000 at a million): every asset decided by its terms, excluded
  ones recorded with their reason and rule, the rest sampled to equal age band × gender
  shares, k-anonymised and written; beside the time to merely read those entries.

Loading uses PostgreSQL's COPY (SQLite: executemany), then ``VACUUM ANALYZE`` as an
operator runs after a bulk load. A kept schema is reused as loaded, after bringing the
catalogue's indexes and facet tables to what the running code's models declare, so
two versions of the code can be measured on the same rows. The policy *documents* stored are
placeholders: every generated policy is exact, so searches and builds decide from the
compiled columns and never read a document (the script checks that no inexact policy
was generated).
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import func, insert, inspect, select, text
from sqlalchemy.engine import Engine

from fairtrain.accounts.models import Organisation
from fairtrain.catalog import service as catalog
from fairtrain.catalog.models import CatalogEntry
from fairtrain.config import Mode, Settings
from fairtrain.consent.compile import compile_policy
from fairtrain.consent.fit import LicenceAsk
from fairtrain.consent.templates import TEMPLATES, build_template
from fairtrain.datasets import service as datasets
from fairtrain.db import Base, make_engine, make_session_factory
from fairtrain.ingest.models import Asset
from fairtrain.migrate import upgrade

MODALITIES = [("audio", 0.4), ("image", 0.3), ("video", 0.1), ("chat", 0.1), ("text", 0.05),
              ("document", 0.05)]  # fmt: skip
LANGUAGES = [("en", 0.25), ("de", 0.15), ("fr", 0.12), ("es", 0.12), ("pt-BR", 0.08),
             ("hi", 0.08), ("ja", 0.07), ("sw", 0.05), ("ar", 0.08)]  # fmt: skip
AGE_BANDS = ["18-24", "25-34", "35-44", "45-54", "55-64", "65+", None]
GENDERS = ["woman", "man", "non-binary", None]
REGIONS = ["DE", "FR", "US", "GB", "IN", "BR", "NG", "JP", "KE", "ES", None]
TEMPLATE_MIX = [("default", 0.5), ("commercial_training", 0.25), ("research_only", 0.15),
                ("open_attribution", 0.10)]  # fmt: skip


def _pick(rng: random.Random, weighted: list[tuple[str, float]]) -> str:
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


@contextmanager
def _database(url: str | None, keep: str | None = None) -> Iterator[tuple[Engine, str, bool]]:
    """A fresh schema (dropped at the end), or with ``keep`` a named one that is kept
    and, when it already holds a loaded catalogue, reused: load once, measure often."""
    if url is None:
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
            upgrade(engine)
            yield engine, "sqlite", False
            engine.dispose()
        return
    schema = keep or f"ft_bench_{secrets.token_hex(4)}"
    admin = make_engine(url)
    with admin.begin() as connection:
        existed = bool(
            connection.scalar(
                text("SELECT count(*) FROM pg_namespace WHERE nspname = :s"), {"s": schema}
            )
        )
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    engine = make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        upgrade(engine)
        with engine.connect() as connection:
            loaded = (
                existed and connection.scalar(select(CatalogEntry.asset_id).limit(1)) is not None
            )
        if loaded:
            _match_models(engine)
        yield engine, "postgresql", loaded
    finally:
        engine.dispose()
        if keep is None:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _match_models(engine: Engine) -> None:
    """Bring a kept schema to what the models declare: the catalogue's indexes (missing
    ones created, undeclared ones dropped) and its derived tables recounted, so the same
    loaded entries can be measured with two versions of the code."""
    tables = [CatalogEntry.__table__, *(t for t in Base.metadata.sorted_tables
                                        if t.name.startswith("catalog_facet"))]  # fmt: skip
    with engine.begin() as connection:
        for table in tables[1:]:
            table.drop(connection, checkfirst=True)
            table.create(connection)
        declared = {
            index.name: (
                [column.name for column in index.columns],
                list(index.dialect_options["postgresql"]["include"] or []),
            )
            for index in CatalogEntry.__table__.indexes
        }
        present = {
            found["name"]: (
                found["column_names"],
                list(found.get("dialect_options", {}).get("postgresql_include", [])),
            )
            for found in inspect(connection).get_indexes("catalog_entries")
        }
        for name, shape in present.items():
            if declared.get(name) != shape:
                connection.execute(text(f'DROP INDEX "{name}"'))
        for index in CatalogEntry.__table__.indexes:
            if present.get(str(index.name)) != declared[index.name]:
                print(f"creating index {index.name}")
                index.create(connection)
    with make_session_factory(engine)() as session, session.begin():
        catalog.rebuild_facets(session)
    _vacuum(engine)


def _vacuum(engine: Engine) -> None:
    """VACUUM ANALYZE, as an operator runs after a bulk load: statistics for the planner,
    and the visibility map that lets an index-only scan skip the heap."""
    if engine.dialect.name != "postgresql":
        return
    names = [t.name for t in Base.metadata.sorted_tables]
    tables = ", ".join(n for n in names if n.startswith("catalog_") or n in ("assets", "users"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f"VACUUM ANALYZE {tables}"))


def _copy(engine: Engine, table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    """COPY on PostgreSQL; executemany elsewhere."""
    if engine.dialect.name != "postgresql":
        with engine.begin() as connection:
            placeholders = ", ".join(f":{c}" for c in columns)
            connection.execute(
                text(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"),
                [dict(zip(columns, row, strict=True)) for row in rows],
            )
        return
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:  # type: ignore[attr-defined]
            for row in rows:
                copy.write_row(row)
        raw.commit()
    finally:
        raw.close()


def load(engine: Engine, count: int, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    owners = max(1, count // 20)
    users = []
    for i in range(owners):
        users.append((f"usr_bench{i:08d}", f"bench{i}@example.org", f"Bench {i}", "contributor",
                      "x", date(1990, 1, 1), now, rng.choice(REGIONS[:-1]), now))  # fmt: skip
    demo = {u[0]: (rng.choice(AGE_BANDS), rng.choice(GENDERS), rng.choice(REGIONS)) for u in users}
    compiled = {}
    for key in TEMPLATES:
        policy = build_template(key, uid="u", target="t", price=Decimal("1.00"), currency="EUR")
        compiled[key] = compile_policy(policy)
        assert compiled[key].exact, key
    assets, policies, entries = [], [], []
    for i in range(count):
        asset_id = f"ast_bench{i:09d}"
        policy_id = f"pol_bench{i:09d}"
        owner = users[rng.randrange(owners)][0]
        modality = _pick(rng, MODALITIES)
        duration = rng.uniform(5, 600) if modality in ("audio", "video") else None
        language = _pick(rng, LANGUAGES) if modality in ("audio", "video", "chat", "text") else None
        template = _pick(rng, TEMPLATE_MIX)
        terms = compiled[template]
        price = 0 if template == "open_attribution" else rng.choice([50, 100, 150, 250, 400])
        listed = now - timedelta(seconds=rng.randrange(86400 * 365))
        band, gender, region = demo[owner]
        assets.append((asset_id, owner, "listed", modality, "application/octet-stream",
                       f"{i}.bin", 1000, f"{i:064x}", duration, language, "{}", "{}", "{}",
                       listed, listed, listed))  # fmt: skip
        policies.append((policy_id, asset_id, owner, 1, template, json.dumps({"bench": template}),
                         f"{i:064x}", terms.permit_mask, terms.ban_mask, terms.territories_text(),
                         terms.term_days, price, "EUR", False, False, True,
                         json.dumps([list(r) for r in terms.rules]), listed,
                         "ConsentGiven"))  # fmt: skip
        entries.append((asset_id, owner, modality, language, duration,
                        rng.uniform(0.2, 1) if modality in ("audio", "video") else None,
                        rng.uniform(5, 40) if modality in ("audio", "video") else None,
                        rng.uniform(20, 400) if modality in ("image", "video") else None,
                        rng.random() < 0.8, band, gender, None, region, policy_id,
                        terms.permit_mask, terms.ban_mask, terms.territories_text(),
                        terms.term_days, price, "EUR", False, True,
                        json.dumps([list(r) for r in terms.rules]), listed, now, "[]"))  # fmt: skip
    _copy(engine, "users", ["id", "email", "display_name", "kind", "password_hash",
                            "date_of_birth", "adult_attested_at", "jurisdiction", "created_at"],
          users)  # fmt: skip
    for start in range(0, count, 200_000):
        _copy(engine, "assets", ["id", "owner_id", "state", "modality", "media_type",
                                 "display_name", "size_bytes", "sha256", "duration_seconds",
                                 "language", "media_info", "quality", "privacy_report",
                                 "created_at", "updated_at", "listed_at"],
              assets[start:start + 200_000])  # fmt: skip
        _copy(engine, "asset_policies", ["id", "asset_id", "owner_id", "version", "template",
                                         "document", "sha256", "permit_mask", "ban_mask",
                                         "territories", "term_days", "price_minor", "currency",
                                         "exclusive", "sublicensing", "exact", "rules",
                                         "created_at", "status"],
              policies[start:start + 200_000])  # fmt: skip
        _copy(engine, "catalog_entries", ["asset_id", "owner_id", "modality", "language",
                                          "duration_seconds", "speech_share", "snr_db",
                                          "sharpness", "quality_ok", "age_band", "gender",
                                          "accent", "region", "policy_id", "permit_mask",
                                          "ban_mask", "territories", "term_days", "price_minor",
                                          "currency", "exclusive", "exact", "rules", "listed_at",
                                          "synced_at", "withheld"],
              entries[start:start + 200_000])  # fmt: skip
    # The facet counts the platform keeps in step entry by entry, counted once here
    # (COPY bypasses the service).
    with make_session_factory(engine)() as session, session.begin():
        catalog.rebuild_facets(session)
    with engine.begin() as connection:
        connection.execute(
            insert(Organisation).values(id="org_bench", name="Bench Buyer", created_at=now)
        )
    _vacuum(engine)
    return {"owners": owners}


def _queries(rng: random.Random, now: datetime, n: int) -> list[catalog.CatalogQuery]:
    queries = []
    for _ in range(n):
        kind = rng.randrange(5)
        licence = None
        if kind in (2, 3, 4):
            licence = LicenceAsk(rng.choice(["speech_recognition", "fine_tuning",
                                             "academic_research", "model_evaluation"]),
                                 rng.choice(["DE", "US", "FR"]), 365, "EUR", now)  # fmt: skip
        queries.append(
            catalog.CatalogQuery(
                modalities=(rng.choice(MODALITIES)[0],) if kind != 4 else (),
                languages=(rng.choice(LANGUAGES)[0],) if kind in (1, 3) else (),
                genders=(rng.choice(GENDERS[:-1]),) if kind == 3 else (),
                age_bands=(rng.choice(AGE_BANDS[:-1]),) if kind == 3 else (),
                licence=licence,
                sort=rng.choice(["newest", "cheapest", "longest"]),
            )
        )
    return queries


def _shape(query: catalog.CatalogQuery) -> str:
    named = [name for name, wanted in (("kind", query.modalities), ("language", query.languages),
             ("demographics", query.genders), ("licence", query.licence)) if wanted]  # fmt: skip
    return " + ".join(named)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assets", type=int, default=1_000_000)
    parser.add_argument("--database", default=None, help="PostgreSQL URL (default: SQLite)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--keep",
        metavar="SCHEMA",
        help="load into this PostgreSQL schema and keep it; reuse it when already loaded",
    )
    parser.add_argument("--no-build", action="store_true", help="measure the search only")
    parser.add_argument("--quick", action="store_true", help="50,000 assets on SQLite")
    args = parser.parse_args()
    count = 50_000 if args.quick else args.assets
    settings = Settings(
        mode=Mode.DEV, data_dir=Path(tempfile.mkdtemp()), secret_key=SecretStr("b" * 48)
    )
    url = None if args.quick else args.database
    with _database(url, args.keep) as (engine, name, loaded):
        started = time.perf_counter()
        if loaded:
            print(f"reusing the catalogue loaded in schema {args.keep}")
        else:
            load(engine, count)
            print(
                f"loaded {count:,} listed assets into {name} in "
                f"{time.perf_counter() - started:.1f} s"
            )
        sessions = make_session_factory(engine)
        with sessions() as session:
            scans = []
            for _ in range(5):
                began = time.perf_counter()
                # A sum reads every row (a count may read only a small index).
                session.scalar(select(func.sum(CatalogEntry.duration_seconds)))
                scans.append(time.perf_counter() - began)
            scan = statistics.median(scans)
            rng = random.Random(11)
            now = datetime.now(UTC)
            latencies = []
            shapes: dict[str, list[float]] = {}
            for query in _queries(rng, now, args.queries):
                began = time.perf_counter()
                page = catalog.search(session, settings, query, limit=50)
                latencies.append(time.perf_counter() - began)
                shapes.setdefault(_shape(query), []).append(latencies[-1])
                assert page.evaluated_in_full == 0  # every generated policy is exact
            p50, p95 = _percentile(latencies, 0.5), _percentile(latencies, 0.95)
            print(f"catalogue search ({args.queries} queries, page + facets): "
                  f"p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms "
                  f"(one full scan of the table: {scan * 1000:.1f} ms; "
                  f"p95 = {p95 / scan:.2f}x one scan)")  # fmt: skip
            for shape, times in sorted(shapes.items()):
                print(f"  {shape}: {len(times)} queries, p50 "
                      f"{_percentile(times, 0.5) * 1000:.1f} ms, p95 "
                      f"{_percentile(times, 0.95) * 1000:.1f} ms")  # fmt: skip
        # Keeping the counts in step: re-derive listed assets as a listing or profile
        # change does (most move to another cube cell and margins: the loaded
        # demographics are not the owners' profiles), then roll back.
        with sessions() as session:
            picked = random.Random(5).sample(range(count), 300)
            began = time.perf_counter()
            for i in picked:
                asset = session.get(Asset, f"ast_bench{i:09d}")
                assert asset is not None
                catalog.sync_entry(session, asset)
            took = time.perf_counter() - began
            session.rollback()
            print(f"entry sync ({len(picked)} listed assets re-derived, counts moved, "
                  f"rolled back): {took / len(picked) * 1000:.2f} ms each")  # fmt: skip
        if args.no_build:
            return
        # A build over about a tenth of the catalogue: English audio.
        with sessions() as session:
            query = catalog.CatalogQuery(modalities=("audio",), languages=("en",))
            began = time.perf_counter()
            selected = sum(1 for _ in catalog.candidates(session, query))
            read = time.perf_counter() - began
            groups = [f"{a}|{g}" for a in ("18-24", "25-34", "35-44", "45-54")
                      for g in ("woman", "man")]  # fmt: skip
            dataset = datasets.create_dataset(
                session, settings, org_id="org_bench", actor="system:bench", name="Bench",
                description="", purpose="speech_recognition", territory="DE", term_days=365,
                currency="EUR", query=query,
                targets={"dimensions": ["age_band", "gender"],
                         "shares": dict.fromkeys(groups, 1 / len(groups))},
                size=selected // 4,
            )  # fmt: skip
            began = time.perf_counter()
            built = datasets.build_version(session, settings, dataset, actor="system:bench")
            took = time.perf_counter() - began
            session.commit()
            version = built.version
            print(f"dataset build over {selected:,} selected assets: {took:.2f} s "
                  f"({selected / took:,.0f} assets/s; {version.item_count:,} included, "
                  f"{sum(version.exclusions.values()):,} excluded with reasons; "
                  f"reading the selection alone: {read:.2f} s, build = {took / read:.1f}x "
                  "the read)")  # fmt: skip
    sys.stdout.flush()


if __name__ == "__main__":
    main()
