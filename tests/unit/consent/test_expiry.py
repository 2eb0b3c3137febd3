"""Expiry and renewal in the service, the CLI and the timer: only ended terms expire,
once; the catalogue follows; a renewal is a new version and the old one stays as it was."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from fairtrain.accounts import service as accounts
from fairtrain.accounts.models import User
from fairtrain.accounts.passwords import PasswordPolicy
from fairtrain.audit.models import AuditEvent
from fairtrain.audit.service import verify_stored_chain
from fairtrain.catalog.models import CatalogEntry
from fairtrain.cli import app as cli
from fairtrain.config import Settings, get_settings, reset_settings_cache
from fairtrain.consent import service as consent
from fairtrain.consent.models import AssetPolicy, ConsentReceiptRecord
from fairtrain.consent.templates import PROTECTED
from fairtrain.consent.terms import MainTerms
from fairtrain.db import make_engine, make_session_factory
from fairtrain.errors import Conflict, InvalidInput
from fairtrain.ids import new_id, utcnow
from fairtrain.ingest.models import Asset, AssetState
from fairtrain.ingest.service import set_state
from fairtrain.jobs.periodic import PeriodicWork
from fairtrain.migrate import upgrade

CHEAP = PasswordPolicy(time_cost=1, memory_kib=1024, parallelism=1)


def _owner(session: Session) -> User:
    return accounts.register_contributor(
        session, CHEAP, email=f"{new_id('x')}@example.org",
        password="quartz-lantern-orbit-meadow-41", display_name="Ends Owner",
        date_of_birth=date(1990, 1, 1), adult_attestation=True, jurisdiction="US",
    )  # fmt: skip


def _listed(session: Session, settings: Settings, owner: User, days: int | None) -> Asset:
    now = utcnow()
    asset = Asset(
        id=new_id("ast"), owner_id=owner.id, state=AssetState.UPLOADED, modality="image",
        media_type="image/png", display_name="p.png", size_bytes=10,
        sha256=new_id("h").ljust(64, "0")[:64], media_info={}, quality={}, privacy_report={},
        created_at=now, updated_at=now,
    )  # fmt: skip
    session.add(asset)
    session.flush()
    set_state(session, asset, AssetState.PROCESSING, actor="system")
    set_state(session, asset, AssetState.AWAITING_REVIEW, actor="system")
    terms = MainTerms(
        allowed=("academic_research",), prohibited=PROTECTED, price=Decimal("1.00"),
        ends_at=now + timedelta(days=days) if days is not None else None,
    )  # fmt: skip
    consent.set_policy(session, settings, asset, actor="system", terms=terms)
    set_state(session, asset, AssetState.LISTED, actor="system")
    return asset


def test_only_ended_terms_expire_and_only_once(db: Session, settings: Settings) -> None:
    owner = _owner(db)
    soon, later, never = (_listed(db, settings, owner, d) for d in (10, 100, None))
    assert db.get(CatalogEntry, soon.id) is not None
    moment = utcnow() + timedelta(days=11)
    ended = consent.expire_policies(db, settings, actor="system:test", now=moment)
    assert [r.asset_id for r in ended] == [soon.id]
    assert ended[0].status == "ConsentExpired" and ended[0].expired_at == moment
    assert consent.expire_policies(db, settings, actor="system:test", now=moment) == []
    assert db.get(CatalogEntry, soon.id) is None
    assert db.get(CatalogEntry, later.id) is not None and db.get(CatalogEntry, never.id)
    receipts = list(
        db.scalars(
            select(ConsentReceiptRecord).where(
                ConsentReceiptRecord.asset_id == soon.id, ConsentReceiptRecord.event == "expiry"
            )
        )
    )
    assert len(receipts) == 1 and receipts[0].receipt["validUntil"] is None
    expired_events = db.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == "consent.policy_expired")
    )
    assert expired_events == 1  # fmt: skip
    assert verify_stored_chain(db) == (True, None, None)


def test_a_renewal_is_a_new_version_and_the_expired_one_is_kept(
    db: Session, settings: Settings
) -> None:
    owner = _owner(db)
    asset = _listed(db, settings, owner, 5)
    old = consent.current_policy(db, asset.id)
    assert old is not None
    kept = (old.id, old.sha256, old.not_after, old.document)
    consent.expire_policies(db, settings, actor="system:test", now=utcnow() + timedelta(days=6))
    until = utcnow() + timedelta(days=365)
    new = consent.renew_policy(db, settings, asset, actor="system:test", until=until)
    assert new.version == old.version + 1 and new.status == "RenewedConsentGiven"
    assert new.not_after == until.replace(microsecond=0)  # ODRL dateTimes are in seconds
    assert (old.id, old.sha256, old.not_after, old.document) == kept  # a licence's terms
    assert old.superseded_at is not None and old.status == "ConsentExpired"
    assert (new.permit_mask, new.ban_mask, new.price_minor) == (
        old.permit_mask, old.ban_mask, old.price_minor,
    )  # fmt: skip
    entry = db.get(CatalogEntry, asset.id)
    assert entry is not None and entry.policy_id == new.id
    with pytest.raises(InvalidInput) as early:
        consent.renew_policy(db, settings, asset, actor="system:test",
                             until=until - timedelta(days=1))  # fmt: skip
    assert early.value.code == "renewal_not_later"
    with pytest.raises(InvalidInput) as naive:
        consent.renew_policy(db, settings, asset, actor="system:test",
                             until=until.replace(tzinfo=None) + timedelta(days=9))  # fmt: skip
    assert naive.value.code == "invalid_until"
    open_ended = _listed(db, settings, owner, None)
    with pytest.raises(Conflict) as nothing:
        consent.renew_policy(db, settings, open_ended, actor="system:test", until=until)
    assert nothing.value.code == "policy_open_ended"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    data = tmp_path / "data"
    data.mkdir()
    database = f"sqlite:///{data / 'cli.db'}"
    engine = make_engine(database)
    upgrade(engine)
    engine.dispose()
    monkeypatch.setenv("FAIRTRAIN_MODE", "dev")
    monkeypatch.setenv("FAIRTRAIN_DATA_DIR", str(data))
    monkeypatch.setenv("FAIRTRAIN_DATABASE_URL", database)
    monkeypatch.delenv("FAIRTRAIN_SIGNING_KEY_PATH", raising=False)
    reset_settings_cache()
    yield data
    reset_settings_cache()


def test_the_cli_expires_ended_terms_in_the_configured_database(data_dir: Path) -> None:
    settings = get_settings()
    engine = make_engine(settings.effective_database_url)
    with make_session_factory(engine)() as session, session.begin():
        asset = _listed(session, settings, _owner(session), 3)
        # Time passes: the end is now behind us.
        session.execute(update(AssetPolicy).where(AssetPolicy.asset_id == asset.id)
                        .values(not_after=utcnow() - timedelta(minutes=1)))  # fmt: skip
    runner = CliRunner()
    first = runner.invoke(cli, ["consent", "expire", "--json"])
    assert first.exit_code == 0, first.output
    rows = json.loads(first.output)["expired"]
    assert [r["asset_id"] for r in rows] == [asset.id]
    again = runner.invoke(cli, ["consent", "expire"])
    assert again.exit_code == 0 and "0 asset(s)' terms expired." in again.output
    with make_session_factory(engine)() as session:
        record = consent.current_policy(session, asset.id)
        assert record is not None and record.status == "ConsentExpired"
        assert session.get(CatalogEntry, asset.id) is None
    engine.dispose()


def test_periodic_work_repeats_survives_a_failure_and_stops(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(get_settings().effective_database_url)
    rounds: list[int] = []
    third = threading.Event()

    def work(session: Session) -> None:
        rounds.append(len(rounds))
        if len(rounds) == 2:
            raise RuntimeError("the database went away for a moment")
        if len(rounds) >= 3:
            third.set()

    task = PeriodicWork("test-periodic", 0.01, make_session_factory(engine), work)
    with caplog.at_level(logging.WARNING, logger="fairtrain.jobs"):
        task.start()
        assert third.wait(10), "the work ran again after a failed round"
        task.stop()
    assert "periodic work test-periodic failed" in caplog.text
    done = len(rounds)
    third.clear()
    assert not third.wait(0.05) and len(rounds) == done  # stopped means stopped
    with pytest.raises(ValueError):
        PeriodicWork("never", 0, make_session_factory(engine), work)
    engine.dispose()


def test_the_consistency_check_expects_expired_assets_out_of_the_catalogue(
    db: Session, settings: Settings
) -> None:
    from fairtrain.consistency import check_platform
    from fairtrain.vault.backends import backend_from_url
    from fairtrain.vault.keys import KeyRing

    owner = _owner(db)
    asset = _listed(db, settings, owner, 2)
    consent.expire_policies(db, settings, actor="system:test", now=utcnow() + timedelta(days=3))
    report = check_platform(db, backend_from_url(settings.effective_vault_url),
                            KeyRing.from_settings(settings))  # fmt: skip
    assert [f for f in report.findings if f.check == "catalogue"] == [], report.findings
    assert db.get(CatalogEntry, asset.id) is None
