"""Expiring consent: how fast ended terms are expired, and what an idle round costs.

    uv run python benchmarks/consent_expiry.py                 # 2,000 assets, SQLite
    uv run python benchmarks/consent_expiry.py --assets 500    # quicker

Builds listed assets whose terms end in a day (through ``consent.service.set_policy``,
as the API does), moves the clock past half of their end dates, then times
``expire_policies`` (what ``fairtrain consent expire`` and the workers' timer run): each
expiry is a status change, a signed receipt, two audit events and a catalogue delete, in
one transaction. Then the idle round the timer repeats every
``FAIRTRAIN_CONSENT_EXPIRY_EVERY_SECONDS`` when nothing is due. CPU time is reported
beside wall time because a shared machine's load inflates the latter.
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import update

from fairtrain.accounts import service as accounts
from fairtrain.accounts.passwords import PasswordPolicy
from fairtrain.config import Mode, Settings
from fairtrain.consent import service as consent
from fairtrain.consent.models import AssetPolicy
from fairtrain.consent.templates import PROTECTED
from fairtrain.consent.terms import MainTerms
from fairtrain.db import make_engine, make_session_factory
from fairtrain.ids import new_id, utcnow
from fairtrain.ingest.models import Asset, AssetState
from fairtrain.ingest.service import set_state
from fairtrain.migrate import upgrade


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--assets", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = Settings(
            mode=Mode.DEV, data_dir=root / "data", database_url=f"sqlite:///{root / 'b.db'}",
            secret_key=SecretStr(secrets.token_urlsafe(48)), jobs_url="immediate",
        )  # fmt: skip
        engine = make_engine(settings.effective_database_url)
        upgrade(engine)
        sessions = make_session_factory(engine)
        started = time.perf_counter()
        with sessions() as session, session.begin():
            owner = accounts.register_contributor(
                session, PasswordPolicy(time_cost=1, memory_kib=1024, parallelism=1),
                email="bench@example.org", password="quartz-lantern-orbit-meadow-41",
                display_name="Bench Owner", date_of_birth=date(1990, 1, 1),
                adult_attestation=True, jurisdiction="US",
            )  # fmt: skip
            now = utcnow()
            terms = MainTerms(allowed=("academic_research",), prohibited=PROTECTED,
                              price=Decimal("1.00"), ends_at=now + timedelta(days=1))  # fmt: skip
            for index in range(args.assets):
                asset = Asset(
                    id=new_id("ast"), owner_id=owner.id, state=AssetState.UPLOADED,
                    modality="image", media_type="image/png", display_name=f"{index}.png",
                    size_bytes=10, sha256=f"{index:064x}", media_info={}, quality={},
                    privacy_report={}, created_at=now, updated_at=now,
                )  # fmt: skip
                session.add(asset)
                session.flush()
                set_state(session, asset, AssetState.PROCESSING, actor="system")
                set_state(session, asset, AssetState.AWAITING_REVIEW, actor="system")
                consent.set_policy(session, settings, asset, actor="system", terms=terms)
                set_state(session, asset, AssetState.LISTED, actor="system")
        setup = time.perf_counter() - started
        # Time passes for half of them: their end dates are behind us.
        with sessions() as session, session.begin():
            ids = [r for (r,) in session.query(AssetPolicy.id).order_by(AssetPolicy.id)]
            session.execute(update(AssetPolicy).where(AssetPolicy.id.in_(ids[::2]))
                            .values(not_after=utcnow() - timedelta(minutes=1)))  # fmt: skip
        started, cpu = time.perf_counter(), time.process_time()
        with sessions() as session, session.begin():
            ended = consent.expire_policies(session, settings, actor="system:bench")
        expiry, expiry_cpu = time.perf_counter() - started, time.process_time() - cpu
        rounds = []
        for _ in range(20):
            started = time.perf_counter()
            with sessions() as session, session.begin():
                assert consent.expire_policies(session, settings, actor="system:bench") == []
            rounds.append(time.perf_counter() - started)
        engine.dispose()
    rounds.sort()
    print(f"assets with an end date: {args.assets} (set through set_policy in {setup:.1f} s)")
    print(f"expired in one round:    {len(ended)} in {expiry:.2f} s wall "
          f"= {len(ended) / expiry:,.0f} expiries/s; {expiry_cpu:.2f} s CPU "
          f"= {len(ended) / expiry_cpu:,.0f} expiries per CPU-second")  # fmt: skip
    print(f"idle round (none due):   median {rounds[len(rounds) // 2] * 1000:.2f} ms "
          f"over {args.assets} current terms")  # fmt: skip


if __name__ == "__main__":
    main()
