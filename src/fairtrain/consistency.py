"""Is the platform whole? The invariants that must hold after any crash, restart or
restore, checked in one place (``fairtrain check``; the crash-safety trials run it after
every kill).

1. the audit chain verifies;
2. the ledger balances in every currency;
3. every stored blob decrypts and matches its hash, and every object in the store has
   a row (orphans older than the grace period are reported: a crash mid-upload leaves
   its partial ciphertext, which ``fairtrain vault orphans --delete`` removes);
4. every job reaches a final state (queued or running ones older than the grace period
   are reported: nothing resumed them);
5. no asset is stuck uploaded or processing without a job that will finish it;
6. the catalogue has exactly one entry per listed asset, under its current terms;
7. every licence has a paid order, and every paid order a licence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fairtrain.audit.service import verify_stored_chain
from fairtrain.catalog.models import CatalogEntry
from fairtrain.consent.models import AssetPolicy
from fairtrain.consent.receipts import ConsentStatus
from fairtrain.ids import utcnow
from fairtrain.ingest.models import Asset, AssetState
from fairtrain.jobs.models import FINAL_STATES, Job
from fairtrain.ledger.service import LedgerOutOfBalance, trial_balance
from fairtrain.licensing.models import Licence, Order, OrderState
from fairtrain.vault.backends import BlobBackend
from fairtrain.vault.keys import KeyRing
from fairtrain.vault.service import find_orphans, verify_blobs

__all__ = ["Finding", "Report", "check_platform"]


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    detail: str


@dataclass
class Report:
    checked: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def add(self, check: str, detail: str) -> None:
        self.findings.append(Finding(check, detail))


def check_platform(
    session: Session,
    backend: BlobBackend,
    keyring: KeyRing,
    *,
    grace: timedelta = timedelta(minutes=10),
) -> Report:
    report = Report()
    ok, first_bad, problem = verify_stored_chain(session)
    report.checked["audit_events"] = 1
    if not ok:
        report.add("audit", f"the audit chain breaks at event {first_bad}: {problem}")
    try:
        balances = trial_balance(session)
        report.checked["ledger_currencies"] = len(balances.currencies)
    except LedgerOutOfBalance as error:
        report.add("ledger", str(error))
    blobs = 0
    for blob in verify_blobs(session, backend, keyring=keyring):
        blobs += 1
        if not blob.ok:
            report.add("vault", f"blob {blob.blob_id}: {blob.detail}")
    report.checked["blobs"] = blobs
    for stored in find_orphans(session, backend, grace=grace):
        report.add("vault_orphan", f"object {stored.key} has no blob row")
    cutoff = utcnow() - grace
    stale = session.scalars(
        select(Job).where(
            Job.state.not_in([s.value for s in FINAL_STATES]), Job.updated_at < cutoff
        )
    )
    for job in stale:
        report.add("jobs", f"job {job.id} ({job.kind}) is still {job.state}")
    report.checked["jobs"] = int(session.scalar(select(func.count()).select_from(Job)) or 0)
    transient = session.scalars(
        select(Asset).where(
            Asset.state.in_([AssetState.UPLOADED, AssetState.PROCESSING]), Asset.updated_at < cutoff
        )
    )
    for asset in transient:
        live = session.scalar(
            select(func.count())
            .select_from(Job)
            .where(
                Job.subject == f"asset:{asset.id}",
                Job.state.not_in([s.value for s in FINAL_STATES]),
            )
        )
        if not live:
            report.add("assets", f"asset {asset.id} is {asset.state} and nothing will finish it")
    # Listed assets whose terms expired are out of the catalogue on purpose.
    lapsed = set(
        session.scalars(
            select(AssetPolicy.asset_id).where(
                AssetPolicy.superseded_at.is_(None),
                AssetPolicy.status == ConsentStatus.EXPIRED.value,
            )
        )
    )
    listed = set(session.scalars(select(Asset.id).where(Asset.state == AssetState.LISTED))) - lapsed
    entries = dict(session.execute(select(CatalogEntry.asset_id, CatalogEntry.policy_id)).all())
    current = dict(
        session.execute(
            select(AssetPolicy.asset_id, AssetPolicy.id).where(AssetPolicy.superseded_at.is_(None))
        ).all()
    )
    report.checked["listed_assets"] = len(listed)
    for asset_id in sorted(listed - set(entries)):
        report.add("catalogue", f"listed asset {asset_id} is missing from the catalogue")
    for asset_id in sorted(set(entries) - listed):
        report.add("catalogue", f"catalogue entry {asset_id} is for an asset no longer listed")
    for asset_id in sorted(set(entries) & listed):
        if entries[asset_id] != current.get(asset_id):
            report.add("catalogue", f"catalogue entry {asset_id} shows old terms")
    paid = set(session.scalars(select(Order.id).where(Order.state == OrderState.PAID)))
    licensed = set(session.scalars(select(Licence.order_id)))
    for order_id in sorted(paid - licensed):
        report.add("licences", f"order {order_id} is paid but has no licence")
    for order_id in sorted(licensed - paid):
        report.add("licences", f"a licence exists for order {order_id}, which is not paid")
    report.checked["licences"] = len(licensed)
    return report
