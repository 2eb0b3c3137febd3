"""Setting and reading an asset's terms: validated, compiled, versioned, audited.

A new version supersedes the previous one; licences keep the version they were granted
under (they store its id), so a change applies to future licences only. The policy's
``uid`` and ``target`` are always the platform's IRIs for the version and the asset: a
contributor cannot write terms for someone else's asset.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.orm import Session

from fairtrain.accounts.models import User
from fairtrain.audit.chain import canonical_json
from fairtrain.audit.keys import platform_signing_key
from fairtrain.audit.service import append_event
from fairtrain.catalog import service as catalog
from fairtrain.config import Settings
from fairtrain.consent import purposes
from fairtrain.consent.compile import compile_policy
from fairtrain.consent.jurisdiction import check_terms
from fairtrain.consent.models import AssetPolicy, ConsentReceiptRecord
from fairtrain.consent.odrl import (
    Constraint,
    LogicalConstraint,
    Policy,
    PolicyError,
    Rule,
    serialise_policy,
)
from fairtrain.consent.odrl import parse_policy as parse_odrl
from fairtrain.consent.receipts import ConsentStatus, build_receipt, receipt_sha256, sign_receipt
from fairtrain.consent.templates import DEFAULT_TEMPLATE, build_template
from fairtrain.errors import Conflict, InvalidInput
from fairtrain.ids import new_id, utcnow
from fairtrain.ingest.models import Asset, AssetState
from fairtrain.iris import asset_iri, policy_iri
from fairtrain.money import CURRENCIES, format_money, to_major, to_minor

__all__ = [
    "DEFAULT_CURRENCY",
    "DEFAULT_PRICE_MINOR",
    "asset_iri",
    "current_policy",
    "ensure_policy",
    "issue_receipt",
    "minor_units",
    "policy_iri",
    "policy_of",
    "policy_versions",
    "receipts_of",
    "set_policies",
    "set_policy",
    "validate_for_write",
]

DEFAULT_PRICE_MINOR = 100  # 1.00 in the currency: what the protective default asks
DEFAULT_CURRENCY = "EUR"


def minor_units(amount: Decimal, currency: str, path: str = "payAmount") -> int:
    """An amount in major units as integer minor units; refuses sub-minor precision."""
    if currency not in CURRENCIES:
        raise PolicyError(path, f"{currency} is not a currency this platform pays out in")
    try:
        return to_minor(amount, currency)
    except ValueError as error:
        raise PolicyError(path, str(error)) from None


def _conditions(rule: Rule) -> list[Constraint]:
    flat: list[Constraint] = []
    pending: list[Constraint | LogicalConstraint] = list(rule.constraints)
    for duty in rule.duties:
        pending.extend(duty.constraints)
    while pending:
        item = pending.pop()
        if isinstance(item, LogicalConstraint):
            pending.extend(item.items)
        else:
            flat.append(item)
    return flat


def validate_for_write(policy: Policy, settings: Settings, now: datetime) -> None:
    """What a well-formed policy can still get wrong; each error names its path."""
    permitted: dict[str, str] = {}
    for rule in policy.permissions:
        for condition in _conditions(rule):
            if condition.left == "purpose" and condition.operator in ("eq", "isA", "isAnyOf"):
                for value in condition.values:
                    permitted.setdefault(value, condition.path)
            if condition.left == "payAmount":
                assert condition.unit is not None
                price = minor_units(condition.values[0], condition.unit, condition.path)
                if price < settings.minimum_price_minor:
                    raise PolicyError(
                        condition.path,
                        "the price is below the platform minimum of "
                        + format_money(settings.minimum_price_minor, condition.unit or ""),
                        code="price_below_minimum",
                    )
            if (
                condition.left == "dateTime"
                and condition.operator in ("lt", "lteq", "eq")
                and condition.values[0] <= now
            ):
                raise PolicyError(condition.path, "the term ends in the past", code="term_in_past")
    for rule in policy.prohibitions:
        for condition in _conditions(rule):
            if condition.left != "purpose" or condition.operator not in ("eq", "isA", "isAnyOf"):
                continue
            for value in condition.values:
                if value in permitted:
                    raise PolicyError(
                        condition.path,
                        f"{purposes.PURPOSES[value].label} is both permitted (at "
                        f"{permitted[value]}) and prohibited; say which you mean",
                        code="contradictory_rules",
                    )


def current_policy(session: Session, asset_id: str) -> AssetPolicy | None:
    return session.scalars(
        select(AssetPolicy).where(
            AssetPolicy.asset_id == asset_id, AssetPolicy.superseded_at.is_(None)
        )
    ).first()


def policy_versions(session: Session, asset_id: str) -> list[AssetPolicy]:
    return list(
        session.scalars(
            select(AssetPolicy)
            .where(AssetPolicy.asset_id == asset_id)
            .order_by(AssetPolicy.version.desc())
        )
    )


def policy_of(record: AssetPolicy) -> Policy:
    return parse_odrl(record.document)


def _price_decimal(price_minor: int, currency: str) -> Decimal:
    if currency not in CURRENCIES:
        raise InvalidInput(f"{currency} is not a supported currency.", code="unknown_currency")
    try:
        return to_major(price_minor, currency)
    except InvalidOperation:  # pragma: no cover - ints always convert
        raise InvalidInput("The price is not a number.", code="invalid_price") from None


def set_policy(
    session: Session,
    settings: Settings,
    asset: Asset,
    *,
    actor: str,
    document: dict[str, object] | None = None,
    template: str | None = None,
    price_minor: int | None = None,
    currency: str | None = None,
    attestations: frozenset[str] = frozenset(),
) -> AssetPolicy:
    """A new version of the asset's terms, from a template or an ODRL document.

    ``attestations`` are the extra consents the contributor gave with these terms (e.g.
    ``explicit_biometric_consent``), which jurisdiction rules may require."""
    if AssetState(asset.state) in (AssetState.ERASED, AssetState.REJECTED):
        raise Conflict(
            "An erased or rejected asset cannot be given terms.", code="asset_not_licensable"
        )
    now = utcnow()
    policy_id = new_id("pol")
    uid = policy_iri(settings, policy_id)
    target = asset_iri(settings, asset.id)
    if (document is None) == (template is None):
        raise InvalidInput("Give either a template or a policy document.", code="invalid_policy")
    if template is not None:
        code = (currency or DEFAULT_CURRENCY).upper()
        amount = _price_decimal(DEFAULT_PRICE_MINOR if price_minor is None else price_minor, code)
        policy = build_template(template, uid=uid, target=target, price=amount, currency=code)
    else:
        assert document is not None
        parsed = parse_odrl(dict(document))
        if parsed.target not in (None, target):
            raise PolicyError("target", "a policy here is always about this asset")
        # Re-issued under the platform's identifiers for this version and this asset.
        policy = replace(
            parsed,
            uid=uid,
            target=target,
            permissions=tuple(_retarget(r, target, parsed.target) for r in parsed.permissions),
            prohibitions=tuple(_retarget(r, target, parsed.target) for r in parsed.prohibitions),
            obligations=tuple(_retarget(r, target, parsed.target) for r in parsed.obligations),
        )
    validate_for_write(policy, settings, now)
    compiled = compile_policy(policy)
    owner = session.get(User, asset.owner_id)
    assert owner is not None
    steps = check_terms(owner.jurisdiction, compiled.permit_mask, compiled.ban_mask, attestations)
    serialised = serialise_policy(policy)
    previous = current_policy(session, asset.id)
    if previous is not None:
        previous.superseded_at = now
        session.flush()  # the "current" index row changes before the new one arrives
    record = AssetPolicy(
        id=policy_id,
        asset_id=asset.id,
        owner_id=asset.owner_id,
        version=(previous.version + 1) if previous else 1,
        template=template,
        document=serialised,
        sha256=hashlib.sha256(canonical_json(serialised)).hexdigest(),
        permit_mask=compiled.permit_mask,
        ban_mask=compiled.ban_mask,
        territories=compiled.territories_text(),
        not_after=compiled.not_after,
        term_days=compiled.term_days,
        price_minor=(
            minor_units(compiled.price, compiled.currency)
            if compiled.price is not None and compiled.currency
            else None
        ),
        currency=compiled.currency,
        exclusive=compiled.exclusive,
        sublicensing=compiled.sublicensing,
        exact=compiled.exact,
        rules=[list(rule) for rule in compiled.rules],
        created_at=now,
    )
    session.add(record)
    session.flush()
    append_event(
        session,
        actor=actor,
        action="consent.policy_set",
        subject=f"asset:{asset.id}",
        payload={
            "policy": policy_id,
            "version": record.version,
            "sha256": record.sha256,
            "template": template,
            "supersedes": previous.id if previous else None,
            "jurisdiction_steps": steps,
        },
    )
    issue_receipt(
        session,
        settings,
        record,
        policy,
        status=ConsentStatus.GIVEN,
        event="change" if previous else "grant",
        actor=actor,
        explicit_biometric=bool(steps),
    )
    if AssetState(asset.state) == AssetState.LISTED:
        catalog.sync_entry(session, asset)  # the catalogue offers the new terms at once
    return record


def _top_purposes(mask: int) -> list[str]:
    keys = {p.key for p in purposes.PURPOSES.values() if mask >> p.bit & 1}
    return [
        purposes.PURPOSES[k].iri for k in sorted(keys) if purposes.PURPOSES[k].parent not in keys
    ]


def issue_receipt(
    session: Session,
    settings: Settings,
    record: AssetPolicy,
    policy: Policy,
    *,
    status: ConsentStatus,
    event: str,
    actor: str,
    explicit_biometric: bool = False,
    purpose_keys: Sequence[str] | None = None,
) -> ConsentReceiptRecord:
    """Sign a consent receipt for this policy version; its hash goes to the audit log.

    ``purpose_keys`` names the purposes the receipt is about when they are not all the
    policy's (a withdrawal for one purpose only)."""
    owner = session.get(User, record.owner_id)
    assert owner is not None
    key = platform_signing_key(settings)
    now = utcnow()
    term = record.term_days
    receipt = build_receipt(
        subject_id=f"user:{owner.id}",
        subject_jurisdiction=owner.jurisdiction,
        controller={"name": "fairtrain", "url": settings.base_url},
        asset_ids=[record.asset_id],
        policy_uid=policy.uid,
        policy_version=record.version,
        policy_sha256=record.sha256,
        purposes=(
            _top_purposes(record.permit_mask)
            if purpose_keys is None
            else [purposes.PURPOSES[key].iri for key in purpose_keys]
        ),
        prohibited=_top_purposes(record.ban_mask),
        status=status,
        event=event,
        issued_at=now,
        expires_at=record.not_after or (now + timedelta(days=term) if term else None),
        # Explicit consent to biometric uses, given as a separate step (GDPR Art. 9 …).
        special_categories=[BIOMETRIC_DATA] if explicit_biometric else [],
    )
    jws = sign_receipt(receipt, key)
    stored = ConsentReceiptRecord(
        id=str(receipt["id"]),
        owner_id=owner.id,
        asset_id=record.asset_id,
        policy_id=record.id,
        status=status.value,
        event=event,
        receipt=receipt,
        jws=jws,
        sha256=receipt_sha256(jws),
        issued_at=now,
    )
    session.add(stored)
    session.flush()
    append_event(
        session,
        actor=actor,
        action="consent.receipt_issued",
        subject=f"receipt:{stored.id}",
        payload={"sha256": stored.sha256, "status": status.value, "event": event,
                 "asset": record.asset_id, "policy": record.id},
    )  # fmt: skip
    return stored


def receipts_of(session: Session, owner_id: str, limit: int = 200) -> list[ConsentReceiptRecord]:
    return list(
        session.scalars(
            select(ConsentReceiptRecord)
            .where(ConsentReceiptRecord.owner_id == owner_id)
            .order_by(ConsentReceiptRecord.issued_at.desc(), ConsentReceiptRecord.id)
            .limit(limit)
        )
    )


def _retarget(rule: Rule, target: str, old: str | None) -> Rule:
    if rule.target not in (None, old, target):
        raise PolicyError(f"{rule.path}.target", "a rule here is always about this asset")
    return replace(rule, target=target)


def ensure_policy(session: Session, settings: Settings, asset: Asset, *, actor: str) -> AssetPolicy:
    """The asset's current terms, giving it the protective default if it has none."""
    existing = current_policy(session, asset.id)
    if existing is not None:
        return existing
    return set_policy(session, settings, asset, actor=actor, template=DEFAULT_TEMPLATE)


BIOMETRIC_DATA = "https://w3id.org/dpv/pd#Biometric"


def set_policies(
    session: Session,
    settings: Settings,
    assets: Sequence[Asset],
    *,
    actor: str,
    document: dict[str, object] | None = None,
    template: str | None = None,
    price_minor: int | None = None,
    currency: str | None = None,
    attestations: frozenset[str] = frozenset(),
) -> list[AssetPolicy]:
    """The same terms for many assets at once (all or nothing)."""
    return [
        set_policy(
            session,
            settings,
            asset,
            actor=actor,
            document=document,
            template=template,
            price_minor=price_minor,
            currency=currency,
            attestations=attestations,
        )
        for asset in assets
    ]
