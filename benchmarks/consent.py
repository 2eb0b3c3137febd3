"""Consent benchmark: one purpose evaluated against a million assets' policies.

    uv run python benchmarks/consent.py            # 1,000,000 policies
    uv run python benchmarks/consent.py --quick    # 100,000

Figures (same run, same policies):

* **full evaluator**: :func:`fairtrain.consent.evaluate.evaluate` on parsed policies, one
  at a time (the baseline: what a dataset build would do without compilation), measured
  on a sample and reported per second;
* **compiled, in SQL**: the dataset-build query on ``asset_policies`` in SQLite (purpose
  bit masks, term, territory), rows decided per second;
* **compiled, in memory**: the same test vectorised with NumPy over the compiled columns.

The policies are the four templates with random prices and, for a third of them,
random territory lists and end dates; every compiled decision on the sample is checked
against the full evaluator (the script fails on any disagreement).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, func, insert, or_, select

from fairtrain.consent import purposes
from fairtrain.consent.compile import compile_policy, permits_purpose
from fairtrain.consent.evaluate import Request, evaluate
from fairtrain.consent.odrl import Constraint, Policy, parse_policy, serialise_policy
from fairtrain.consent.templates import TEMPLATES, build_template

PURPOSE = "speech_recognition"
TERRITORY = "DE"
COUNTRIES = ["DE", "FR", "US", "GB", "IN", "BR", "JP", "NG", "ES", "IT"]


def _variant(index: int, rng: random.Random, now: datetime) -> Policy:
    template = list(TEMPLATES)[index % len(TEMPLATES)]
    price = Decimal(rng.randint(1, 500)).scaleb(-2)
    policy = build_template(
        template, uid=f"https://b/p/{index}", target=f"https://b/a/{index}", price=price,
        currency="EUR",
    )  # fmt: skip
    if index % 3 == 0:
        permission = policy.permissions[0]
        extra = (
            Constraint("spatial", "isAnyOf", tuple(rng.sample(COUNTRIES, 3))),
            Constraint("dateTime", "lt", (now + timedelta(days=rng.randint(-100, 400)),)),
        )
        permission = replace(permission, constraints=permission.constraints + extra)
        policy = replace(policy, permissions=(permission,))
    return policy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    count = 100_000 if args.quick else 1_000_000
    rng = random.Random(7)
    now = datetime.now(UTC)
    distinct = [_variant(i, rng, now) for i in range(2_000)]
    compiled = [compile_policy(p) for p in distinct]
    assert all(c.exact for c in compiled)
    choice = np.random.default_rng(7).integers(0, len(distinct), size=count)

    # Baseline: the full evaluator, one policy at a time.
    request = Request(
        purpose=PURPOSE, territory=TERRITORY, at=now, pay_amount=Decimal("5.00"), currency="EUR"
    )
    sample = choice[:20_000]
    start = time.perf_counter()
    full = [evaluate(distinct[i], request).permitted for i in sample]
    full_rate = len(sample) / (time.perf_counter() - start)
    for index, decided in zip(sample, full, strict=True):
        fast = permits_purpose(compiled[index], PURPOSE, TERRITORY, now)
        if fast != decided:
            raise SystemExit(f"compiled and full decisions differ for policy {index}")

    # What a build without compilation does: read each stored JSON-LD document again.
    documents = [serialise_policy(distinct[i]) for i in sample[:500]]
    start = time.perf_counter()
    for document in documents:
        evaluate(parse_policy(document), request)
    parse_rate = len(documents) / (time.perf_counter() - start)

    # Compiled, vectorised in memory.
    permit = np.array([c.permit_mask for c in compiled], dtype=np.int64)[choice]
    ban = np.array([c.ban_mask for c in compiled], dtype=np.int64)[choice]
    ends = np.array([c.not_after.timestamp() if c.not_after else np.inf for c in compiled])[choice]
    in_territory = np.array(
        [c.territories is None or TERRITORY in c.territories for c in compiled]
    )[choice]
    bit = np.int64(1 << purposes.PURPOSES[PURPOSE].bit)
    wanted = np.int64(purposes.mask_of(purposes.descendants(PURPOSE)))
    start = time.perf_counter()
    allowed = (permit & bit != 0) & (ban & wanted == 0) & (ends > now.timestamp()) & in_territory
    permitted_count = int(allowed.sum())
    numpy_rate = count / (time.perf_counter() - start)

    # Compiled, in SQL (SQLite), as a dataset build asks.
    import fairtrain.models  # noqa: F401
    from fairtrain.consent.models import AssetPolicy
    from fairtrain.db import Base

    with tempfile.TemporaryDirectory() as tmp:
        # A bare engine: only this table, no foreign keys to the rest of the schema.
        engine = create_engine(f"sqlite:///{Path(tmp) / 'consent.db'}")
        table = Base.metadata.tables["asset_policies"]
        with engine.begin() as connection:
            table.create(connection)
            rows = []
            for n, index in enumerate(choice):
                c = compiled[index]
                rows.append(
                    {"id": f"pol_{n}", "asset_id": f"ast_{n}", "owner_id": "usr_b", "version": 1,
                     "template": None, "document": {}, "sha256": "0" * 64,
                     "permit_mask": c.permit_mask, "ban_mask": c.ban_mask,
                     "territories": c.territories_text(), "not_after": c.not_after,
                     "term_days": c.term_days, "price_minor": None, "currency": "EUR",
                     "exclusive": False, "sublicensing": False, "exact": True,
                     "created_at": now, "superseded_at": None}
                )  # fmt: skip
                if len(rows) == 50_000:
                    connection.execute(insert(table), rows)
                    rows = []
            if rows:
                connection.execute(insert(table), rows)
        query = (
            select(func.count())
            .select_from(AssetPolicy)
            .where(
                AssetPolicy.superseded_at.is_(None),
                AssetPolicy.permit_mask.op("&")(int(bit)) != 0,
                AssetPolicy.ban_mask.op("&")(int(wanted)) == 0,
                or_(AssetPolicy.not_after.is_(None), AssetPolicy.not_after > now),
                or_(
                    AssetPolicy.territories.is_(None),
                    AssetPolicy.territories.like(f"%,{TERRITORY},%"),
                ),
            )
        )
        with engine.connect() as connection:
            start = time.perf_counter()
            sql_count = connection.execute(query).scalar_one()
            sql_seconds = time.perf_counter() - start
    if sql_count != permitted_count:
        raise SystemExit(f"SQL found {sql_count}, NumPy {permitted_count}")
    print(
        {
            "policies": count,
            "permitted": permitted_count,
            "parse_and_evaluate_per_s": round(parse_rate),
            "full_evaluations_per_s": round(full_rate),
            "sql_seconds": round(sql_seconds, 3),
            "sql_decisions_per_s": round(count / sql_seconds),
            "numpy_decisions_per_s": round(numpy_rate),
            "sql_vs_full": round(count / sql_seconds / full_rate, 1),
            "full_evaluator_for_all_s": round(count / full_rate, 1),
            "parse_and_evaluate_for_all_s": round(count / parse_rate),
            "sql_vs_parse_and_evaluate": round(count / sql_seconds / parse_rate),
        }
    )


if __name__ == "__main__":
    main()
