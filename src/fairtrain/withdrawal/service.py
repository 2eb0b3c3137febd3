"""Withdrawing consent: one asset, several, or everything; for every use or one purpose;
from every buyer or one.

At once, in the contributor's transaction:

- the asset stops being offered: withdrawn from every use and every buyer it becomes
  ``withdrawn`` (the catalogue drops it); a narrower one is folded into its catalogue entry
  (``catalog.service.sync_entry`` reads the ``WithdrawnScope`` rows), so the catalogue,
  campaigns, dataset builds and quotes all refuse it with the code ``withdrawn``;
- every dataset whose newest version holds it gets a new version without it
  (``datasets.service.build_version`` with the asset excluded, reason ``withdrawal``);
- a consent receipt with the status ``ConsentWithdrawn`` is issued for each asset;
- each licence that holds it gets a **notice** (``ntc_…``) stating what the licence
  requires: no further training runs on the withdrawn items, deletion of every copy by
  the deadline, and removal from trained models at their next retraining (a model cannot
  forget what it already learned, and the notice says so);
- the platform's cached exports of each such licence are shredded (their key destroyed);
- each notice is queued for delivery to the licensee's webhook endpoints (after commit;
  never blocking the withdrawal) and is readable from the pull feed at once.

Asking again for the same withdrawal returns the first one and changes nothing.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fairtrain.accounts.models import Organisation
from fairtrain.audit.chain import canonical_json
from fairtrain.audit.service import append_event
from fairtrain.catalog import service as catalog
from fairtrain.config import Settings
from fairtrain.consent import purposes
from fairtrain.consent import service as consent
from fairtrain.consent.odrl import Constraint, parse_policy
from fairtrain.consent.receipts import ConsentStatus
from fairtrain.datasets import service as datasets
from fairtrain.datasets.models import Dataset, DatasetItem
from fairtrain.delivery import service as delivery
from fairtrain.errors import Conflict, InvalidInput, NotFound
from fairtrain.ids import new_id, utcnow
from fairtrain.ingest import service as ingest
from fairtrain.ingest.models import Asset, AssetState
from fairtrain.licensing.models import Licence, LicenceItem, LicenceState
from fairtrain.withdrawal import webhooks
from fairtrain.withdrawal.models import Notice, NoticeState, Withdrawal, WithdrawnScope

__all__ = [
    "WithdrawalResult",
    "deletion_days_of",
    "notices_of_withdrawal",
    "obligation_text",
    "withdraw",
    "withdraw_before_erasure",
    "withdrawals_of",
]

Dispatcher = Callable[[str], None]
_NOT_WITHDRAWABLE = (AssetState.ERASED, AssetState.REJECTED)
EXCLUDED_SENTENCE = "Its contributor withdrew it."


@dataclass(frozen=True, slots=True)
class WithdrawalResult:
    withdrawal: Withdrawal
    created: bool  # False: the same withdrawal was asked for before; nothing changed


def deletion_days_of(licence: Licence, default: int) -> int:
    """The deadline the licence agreement sets for deleting withdrawn items (its
    ``delete`` duty's ``elapsedTime``), or ``default`` when it states none."""
    try:
        agreement = parse_policy(dict(licence.agreement))
    except (InvalidInput, ValueError, TypeError):
        return default
    for rule in agreement.permissions:
        for duty in rule.duties:
            if "delete" not in duty.actions:
                continue
            for condition in duty.constraints:
                if isinstance(condition, Constraint) and condition.left == "elapsedTime":
                    return int(condition.values[0])
    return default


def obligation_text(days: int) -> str:
    """What the licence obliges the licensee to do, stated as it is, not more."""
    return (
        "Under the licence agreement you must not start any further training run, "
        "fine-tuning or evaluation on the withdrawn items, must delete every copy of them "
        f"(the export, caches, derived files) within {days} days of this notice, and must "
        "attest the deletion. Models already trained on them may stay in use until their "
        "next retraining, which must leave the items out; a trained model cannot be made "
        "to forget what it has already learned."
    )


def _scope_sha256(
    everything: bool, asset_ids: Sequence[str], purpose: str | None, org_id: str | None
) -> str:
    scope = {"everything": everything, "assets": sorted(set(asset_ids)), "purpose": purpose,
             "org": org_id}  # fmt: skip
    return hashlib.sha256(canonical_json(scope)).hexdigest()


def _assets(
    session: Session, owner_id: str, asset_ids: Sequence[str] | None, everything: bool
) -> list[Asset]:
    if everything:
        return list(
            session.scalars(
                select(Asset)
                .where(Asset.owner_id == owner_id, Asset.state.not_in(list(_NOT_WITHDRAWABLE)))
                .order_by(Asset.id)
            )
        )
    assert asset_ids is not None
    found: list[Asset] = []
    for asset_id in sorted(set(asset_ids)):
        asset = session.get(Asset, asset_id)
        if asset is None or asset.owner_id != owner_id:
            raise NotFound(f"No asset {asset_id} of yours.", code="asset_not_found")
        if AssetState(asset.state) in _NOT_WITHDRAWABLE:
            raise Conflict(
                f"The asset {asset_id} is {asset.state}: there is nothing left to withdraw.",
                code="asset_not_withdrawable",
                extra={"asset": asset_id},
            )
        found.append(asset)
    return found


def _check_scope(
    session: Session,
    asset_ids: Sequence[str] | None,
    everything: bool,
    purpose: str | None,
    org_id: str | None,
) -> None:
    if everything == bool(asset_ids):
        raise InvalidInput(
            "Name the assets to withdraw, or withdraw everything, not both.",
            code="invalid_withdrawal",
            pointer="/asset_ids",
        )
    if asset_ids is not None and len(asset_ids) > 10000:
        raise InvalidInput(
            "At most 10000 assets at once; withdraw everything instead.",
            code="too_many_assets",
            pointer="/asset_ids",
        )
    if purpose is not None:
        purposes.purpose(purpose)
        if purpose == "any":
            raise InvalidInput(
                "Leave the purpose out to withdraw from every use.",
                code="invalid_withdrawal",
                pointer="/purpose",
            )
    if org_id is not None and session.get(Organisation, org_id) is None:
        raise NotFound("No such buyer organisation.", code="org_not_found")


def _covers(wanted: str | None, licensed: str) -> bool:
    """A withdrawal for ``wanted`` (None: every purpose) reaches a licence for ``licensed``."""
    return wanted is None or licensed in purposes.descendants(wanted)


def withdraw(
    session: Session,
    settings: Settings,
    dispatch: Dispatcher,
    *,
    owner_id: str,
    actor: str,
    asset_ids: Sequence[str] | None = None,
    everything: bool = False,
    purpose: str | None = None,
    org_id: str | None = None,
    now: datetime | None = None,
) -> WithdrawalResult:
    """Withdraw the named assets (or every asset of the owner) from ``purpose`` (None:
    every purpose) for ``org_id`` (None: every buyer). See the module's description."""
    _check_scope(session, asset_ids, everything, purpose, org_id)
    assets = _assets(session, owner_id, asset_ids, everything)
    full = purpose is None and org_id is None
    if full:
        # Already withdrawn from every use and every buyer: nothing more to do or to tell.
        fresh = [a for a in assets if AssetState(a.state) != AssetState.WITHDRAWN]
        if assets and not fresh:
            earlier = session.scalars(
                select(Withdrawal)
                .join(WithdrawnScope, WithdrawnScope.withdrawal_id == Withdrawal.id)
                .where(
                    WithdrawnScope.asset_id == assets[0].id,
                    WithdrawnScope.purpose.is_(None),
                    WithdrawnScope.org_id.is_(None),
                )
                .order_by(Withdrawal.created_at)
            ).first()
            if earlier is not None:
                return WithdrawalResult(earlier, created=False)
        assets = fresh
    # "Everything" means every asset held now: asked again after new uploads, it is a new
    # withdrawal of those; asked again with nothing new, it is the same one.
    scope = _scope_sha256(everything, [a.id for a in assets], purpose, org_id)
    existing = session.scalars(
        select(Withdrawal).where(Withdrawal.owner_id == owner_id, Withdrawal.scope_sha256 == scope)
    ).first()
    if existing is not None:
        return WithdrawalResult(existing, created=False)
    now = now or utcnow()
    withdrawal = Withdrawal(
        id=new_id("wdr"),
        owner_id=owner_id,
        scope_sha256=scope,
        everything=everything,
        asset_ids=[a.id for a in assets],
        purpose=purpose,
        org_id=org_id,
        receipt_ids=[],
        dataset_versions=[],
        created_by=actor,
        created_at=now,
    )
    session.add(withdrawal)
    session.flush()
    receipts: list[str] = []
    for asset in assets:
        session.add(
            WithdrawnScope(
                withdrawal_id=withdrawal.id,
                asset_id=asset.id,
                purpose=purpose,
                org_id=org_id,
                created_at=now,
            )
        )
        session.flush()
        state = AssetState(asset.state)
        if full and state in (AssetState.LISTED, AssetState.AWAITING_REVIEW):
            ingest.set_state(
                session, asset, AssetState.WITHDRAWN, actor=actor, code="withdrawn_by_owner"
            )
        elif state == AssetState.LISTED:
            catalog.sync_entry(session, asset)  # the narrower withdrawal joins its terms
        record = consent.current_policy(session, asset.id)
        if record is not None:
            receipts.append(
                consent.issue_receipt(
                    session,
                    settings,
                    record,
                    consent.policy_of(record),
                    status=ConsentStatus.WITHDRAWN,
                    event="withdrawal",
                    actor=actor,
                    purpose_keys=None if purpose is None else [purpose],
                ).id
            )
    withdrawn = {a.id for a in assets}
    versions = _new_versions(session, settings, withdrawal, withdrawn, actor, now)
    withdrawal.receipt_ids = receipts
    withdrawal.dataset_versions = sorted(versions.values())
    session.flush()
    notices = _notify(session, settings, withdrawal, withdrawn, versions, now)
    append_event(
        session,
        actor=actor,
        action="withdrawal.created",
        subject=f"withdrawal:{withdrawal.id}",
        payload={"owner": owner_id, "assets": len(assets), "everything": everything,
                 "purpose": purpose, "org": org_id, "receipts": receipts,
                 "dataset_versions": withdrawal.dataset_versions,
                 "notices": [n.id for n in notices]},
    )  # fmt: skip
    for notice in notices:
        webhooks.schedule_deliveries(session, dispatch, notice, now=now)
    return WithdrawalResult(withdrawal, created=True)


def _new_versions(
    session: Session,
    settings: Settings,
    withdrawal: Withdrawal,
    withdrawn: set[str],
    actor: str,
    now: datetime,
) -> dict[str, str]:
    """A new version without the withdrawn assets for every dataset whose newest version
    holds one of them (and whose buyer and purpose the withdrawal reaches)."""
    if not withdrawn:
        return {}
    held: dict[str, set[str]] = defaultdict(set)
    ids = sorted(withdrawn)
    for start in range(0, len(ids), 900):
        rows = session.execute(
            select(Dataset.id, DatasetItem.asset_id)
            .join(DatasetItem, DatasetItem.version_id == Dataset.latest_version_id)
            .where(DatasetItem.asset_id.in_(ids[start : start + 900]))
        )
        for dataset_id, asset_id in rows:
            held[dataset_id].add(asset_id)
    versions: dict[str, str] = {}
    for dataset_id in sorted(held):
        dataset = session.get(Dataset, dataset_id)
        assert dataset is not None
        if withdrawal.org_id is not None and dataset.org_id != withdrawal.org_id:
            continue
        if not _covers(withdrawal.purpose, dataset.purpose):
            continue
        result = datasets.build_version(
            session,
            settings,
            dataset,
            actor=actor,
            reason="withdrawal",
            exclude=dict.fromkeys(held[dataset_id], ("withdrawn", EXCLUDED_SENTENCE)),
            now=now,
        )
        versions[dataset_id] = result.version.id
    return versions


def _notify(
    session: Session,
    settings: Settings,
    withdrawal: Withdrawal,
    withdrawn: set[str],
    versions: dict[str, str],
    now: datetime,
) -> list[Notice]:
    """One notice per licence (active or suspended) that holds a withdrawn asset."""
    if not withdrawn:
        return []
    held: dict[str, set[str]] = defaultdict(set)
    ids = sorted(withdrawn)
    for start in range(0, len(ids), 900):
        rows = session.execute(
            select(LicenceItem.licence_id, LicenceItem.asset_id)
            .join(Licence, Licence.id == LicenceItem.licence_id)
            .where(
                LicenceItem.asset_id.in_(ids[start : start + 900]),
                Licence.state.in_([LicenceState.ACTIVE, LicenceState.SUSPENDED]),
            )
        )
        for licence_id, asset_id in rows:
            held[licence_id].add(asset_id)
    notices: list[Notice] = []
    for licence_id in sorted(held):
        licence = session.get(Licence, licence_id)
        assert licence is not None
        if withdrawal.org_id is not None and licence.org_id != withdrawal.org_id:
            continue
        if not _covers(withdrawal.purpose, licence.purpose):
            continue
        days = deletion_days_of(licence, settings.deletion_deadline_days)
        deadline = now + timedelta(days=days)
        notice_id = new_id("ntc")
        assets = sorted(held[licence_id])
        obligation = obligation_text(days)
        body: dict[str, Any] = {
            "notice_id": notice_id,
            "kind": "withdrawal",
            "licence_id": licence.id,
            "dataset_id": licence.dataset_id,
            "licensed_version_id": licence.version_id,
            "new_version_id": versions.get(licence.dataset_id),
            "asset_ids": assets,
            "purpose": withdrawal.purpose,
            "issued_at": now.isoformat(),
            "deletion_deadline": deadline.isoformat(),
            "obligation": {
                "no_further_training": True,
                "delete_copies_within_days": days,
                "trained_models": "remove at next retraining",
                "statement": obligation,
            },
        }
        notice = Notice(
            id=notice_id,
            withdrawal_id=withdrawal.id,
            licence_id=licence.id,
            org_id=licence.org_id,
            owner_id=withdrawal.owner_id,
            asset_ids=assets,
            purpose=withdrawal.purpose,
            obligation=obligation,
            deletion_days=days,
            deadline_at=deadline,
            body=body,
            state=NoticeState.NOTIFIED,
            created_at=now,
        )
        session.add(notice)
        session.flush()
        append_event(
            session,
            actor="system",
            action="notice.issued",
            subject=f"notice:{notice.id}",
            payload={"withdrawal": withdrawal.id, "licence": licence.id, "org": licence.org_id,
                     "assets": len(assets), "deadline": deadline.isoformat()},
        )  # fmt: skip
        notices.append(notice)
        # The platform's cached exports of this licence hold the items: destroyed now (a
        # new export, which leaves them out, can be asked for while the licence is active).
        delivery.shred_exports(
            session, licence_id=licence.id, actor="system", reason="asset_withdrawn"
        )
    return notices


def withdraw_before_erasure(
    session: Session, settings: Settings, dispatch: Dispatcher, asset: Asset, *, actor: str
) -> WithdrawalResult | None:
    """Erasing an asset that may have been licensed withdraws it first, in the same
    transaction, so its licensees are told and its datasets rebuilt without it."""
    if AssetState(asset.state) not in (AssetState.LISTED, AssetState.AWAITING_REVIEW):
        return None
    return withdraw(
        session, settings, dispatch, owner_id=asset.owner_id, actor=actor, asset_ids=[asset.id]
    )


# -- reading ----------------------------------------------------------------------------


def withdrawals_of(session: Session, owner_id: str, *, limit: int = 200) -> list[Withdrawal]:
    return list(
        session.scalars(
            select(Withdrawal)
            .where(Withdrawal.owner_id == owner_id)
            .order_by(Withdrawal.created_at.desc(), Withdrawal.id.desc())
            .limit(limit)
        )
    )


def notices_of_withdrawal(session: Session, withdrawal_id: str) -> list[Notice]:
    return list(
        session.scalars(
            select(Notice).where(Notice.withdrawal_id == withdrawal_id).order_by(Notice.id)
        )
    )
