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
    Condition,
    Constraint,
    LogicalConstraint,
    Policy,
    PolicyError,
    Rule,
    serialise_policy,
)
from fairtrain.consent.odrl import parse_policy as parse_odrl
from fairtrain.consent.receipts import (
    ConsentStatus,
    ReceiptEvent,
    build_receipt,
    receipt_sha256,
    sign_receipt,
)
from fairtrain.consent.templates import DEFAULT_TEMPLATE, build_template
from fairtrain.consent.terms import MainTerms, build_terms
from fairtrain.errors import Conflict, InvalidInput, NotFound
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
    "expire_policies",
    "issue_receipt",
    "minor_units",
    "policy_iri",
    "policy_of",
    "policy_versions",
    "receipts_of",
    "receipts_of_asset",
    "renew_policy",
    "set_policies",
    "set_policy",
    "termable_assets",
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
    terms: MainTerms | None = None,
) -> AssetPolicy:
    """A new version of the asset's terms: from a template, from the main terms a form
    edits (:class:`~fairtrain.consent.terms.MainTerms`), or from an ODRL document.

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
    if sum(x is not None for x in (document, template, terms)) != 1:
        raise InvalidInput(
            "Give one of: a template, the main terms, or a policy document.",
            code="invalid_policy",
        )
    if terms is not None:
        policy = build_terms(terms, uid=uid, target=target)
    elif template is not None:
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
    return _store_version(
        session, settings, asset, policy_id, policy, actor=actor, template=template,
        attestations=attestations, now=now,
    )  # fmt: skip


def _store_version(
    session: Session,
    settings: Settings,
    asset: Asset,
    policy_id: str,
    policy: Policy,
    *,
    actor: str,
    template: str | None,
    attestations: frozenset[str],
    now: datetime,
    renewal: bool = False,
) -> AssetPolicy:
    """Validate, compile and store ``policy`` as the asset's next version, superseding
    the current one; audited, with a signed receipt (grant, change or renewal)."""
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
    status = ConsentStatus.RENEWED if renewal else ConsentStatus.GIVEN
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
        status=status.value,
    )
    session.add(record)
    session.flush()
    event = (
        ReceiptEvent.RENEWAL if renewal else ReceiptEvent.CHANGE if previous else ReceiptEvent.GRANT
    )
    append_event(
        session,
        actor=actor,
        action="consent.policy_renewed" if renewal else "consent.policy_set",
        subject=f"asset:{asset.id}",
        payload={
            "policy": record.id,
            "version": record.version,
            "sha256": record.sha256,
            "template": template,
            "supersedes": previous.id if previous else None,
            "jurisdiction_steps": steps,
            **({"not_after": _iso(record.not_after)} if renewal else {}),
        },
    )
    issue_receipt(
        session,
        settings,
        record,
        policy,
        status=status,
        event=event,
        actor=actor,
        explicit_biometric=bool(steps),
    )
    if AssetState(asset.state) == AssetState.LISTED:
        catalog.sync_entry(session, asset)  # the catalogue offers the new terms at once
    return record


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _with_end(condition: Condition, until: datetime) -> Condition:
    if isinstance(condition, LogicalConstraint):
        return replace(condition, items=tuple(_with_end(c, until) for c in condition.items))
    if condition.left == "dateTime" and condition.operator in ("lt", "lteq"):
        return replace(condition, values=(until,))
    return condition


def _renewed_rule(rule: Rule, until: datetime) -> Rule:
    return replace(rule, constraints=tuple(_with_end(c, until) for c in rule.constraints))


def renew_policy(
    session: Session,
    settings: Settings,
    asset: Asset,
    *,
    actor: str,
    until: datetime,
    attestations: frozenset[str] = frozenset(),
) -> AssetPolicy:
    """Extend the asset's current terms to ``until``, before or after they expired.

    The same terms as a new version whose end date is ``until``, status
    ``RenewedConsentGiven``, with a renewal receipt. Licences already granted keep the
    version they were granted under (and so their own end); only future licences see the
    new end. Terms without an end date have nothing to renew.
    """
    if AssetState(asset.state) in (AssetState.ERASED, AssetState.REJECTED):
        raise Conflict(
            "An erased or rejected asset cannot be given terms.", code="asset_not_licensable"
        )
    current = current_policy(session, asset.id)
    if current is None:
        raise NotFound("This asset has no terms to renew.", code="policy_not_found")
    if current.not_after is None:
        raise Conflict(
            "These terms have no end date, so there is nothing to renew.",
            code="policy_open_ended",
        )
    if until.tzinfo is None:
        raise InvalidInput("The new end needs a time zone (UTC).", code="invalid_until")
    until = until.replace(microsecond=0)  # as the ODRL document writes it
    now = utcnow()
    if until <= now or until <= current.not_after:
        raise InvalidInput(
            "A renewal must end later than both now and the current end "
            f"({current.not_after:%Y-%m-%d}).",
            code="renewal_not_later",
            pointer="until",
        )
    old = policy_of(current)
    policy_id = new_id("pol")
    policy = replace(
        old,
        uid=policy_iri(settings, policy_id),
        permissions=tuple(_renewed_rule(r, until) for r in old.permissions),
        prohibitions=tuple(_renewed_rule(r, until) for r in old.prohibitions),
        obligations=tuple(_renewed_rule(r, until) for r in old.obligations),
    )
    return _store_version(
        session, settings, asset, policy_id, policy, actor=actor, template=current.template,
        attestations=attestations, now=now, renewal=True,
    )  # fmt: skip


def expire_policies(
    session: Session, settings: Settings, *, actor: str, now: datetime | None = None
) -> list[AssetPolicy]:
    """Current terms whose end date has passed become ``ConsentExpired`` (idempotent).

    Each gets an expiry receipt and an audit event in this transaction, and its asset
    leaves the catalogue, so no new licence can be built or quoted on it; licences already
    granted keep their own end. A renewal or new terms list it again.
    """
    now = now or utcnow()
    due = list(
        session.scalars(
            select(AssetPolicy)
            .where(
                AssetPolicy.superseded_at.is_(None),
                AssetPolicy.not_after.is_not(None),
                AssetPolicy.not_after <= now,
                AssetPolicy.status != ConsentStatus.EXPIRED.value,
            )
            .order_by(AssetPolicy.not_after, AssetPolicy.id)
            .with_for_update(skip_locked=True)
        )
    )
    for record in due:
        record.status = ConsentStatus.EXPIRED.value
        record.expired_at = now
        session.flush()
        append_event(
            session,
            actor=actor,
            action="consent.policy_expired",
            subject=f"asset:{record.asset_id}",
            payload={"policy": record.id, "version": record.version,
                     "not_after": _iso(record.not_after)},
        )  # fmt: skip
        issue_receipt(
            session,
            settings,
            record,
            None,  # the stored version's own IRI: no need to parse its document again
            status=ConsentStatus.EXPIRED,
            event=ReceiptEvent.EXPIRY,
            actor=actor,
            ends=False,
        )
        asset = session.get(Asset, record.asset_id)
        if asset is not None:
            catalog.sync_entry(session, asset)  # no longer offered for new licences
    return due


def _top_purposes(mask: int) -> list[str]:
    keys = {p.key for p in purposes.PURPOSES.values() if mask >> p.bit & 1}
    return [
        purposes.PURPOSES[k].iri for k in sorted(keys) if purposes.PURPOSES[k].parent not in keys
    ]


def issue_receipt(
    session: Session,
    settings: Settings,
    record: AssetPolicy,
    policy: Policy | None,
    *,
    status: ConsentStatus,
    event: str,
    actor: str,
    explicit_biometric: bool = False,
    ends: bool = True,
    purpose_keys: Sequence[str] | None = None,
) -> ConsentReceiptRecord:
    """Sign a consent receipt for this policy version; its hash goes to the audit log.

    ``ends=False`` is for an expiry receipt: ``validUntil`` stays empty (the end has
    already passed; the policy it names holds it) and it is indicated by ``system``.
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
        policy_uid=policy.uid if policy is not None else policy_iri(settings, record.id),
        policy_version=record.version,
        policy_sha256=record.sha256,
        purposes=(
            _top_purposes(record.permit_mask)
            if purpose_keys is None
            else [purposes.PURPOSES[key].iri for key in purpose_keys]
        ),
        prohibited=_top_purposes(record.ban_mask),
        status=status,
        event=str(event),
        issued_at=now,
        expires_at=(record.not_after or (now + timedelta(days=term) if term else None))
        if ends
        else None,
        # Explicit consent to biometric uses, given as a separate step (GDPR Art. 9 …).
        special_categories=[BIOMETRIC_DATA] if explicit_biometric else [],
    )
    if not ends:
        # An end date passing is noticed by the platform, not indicated by the person.
        receipt["dpv:isIndicatedBy"] = "system"
    jws = sign_receipt(receipt, key)
    stored = ConsentReceiptRecord(
        id=str(receipt["id"]),
        owner_id=owner.id,
        asset_id=record.asset_id,
        policy_id=record.id,
        status=status.value,
        event=str(event),
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
        payload={"sha256": stored.sha256, "status": status.value, "event": str(event),
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


def receipts_of_asset(
    session: Session, asset_id: str, limit: int = 100
) -> list[ConsentReceiptRecord]:
    """One asset's consent receipts, newest first (its owner's page lists them)."""
    return list(
        session.scalars(
            select(ConsentReceiptRecord)
            .where(ConsentReceiptRecord.asset_id == asset_id)
            .order_by(ConsentReceiptRecord.issued_at.desc(), ConsentReceiptRecord.id)
            .limit(limit)
        )
    )


def termable_assets(
    session: Session, owner_id: str, asset_ids: Sequence[str] | None = None
) -> list[Asset]:
    """The owner's assets that can take terms (not erased or rejected), oldest first;
    only those named when ``asset_ids`` is given (a caller compares the counts)."""
    query = select(Asset).where(
        Asset.owner_id == owner_id,
        Asset.state.not_in([AssetState.ERASED.value, AssetState.REJECTED.value]),
    )
    if asset_ids is not None:
        query = query.where(Asset.id.in_(list(asset_ids)))
    return list(session.scalars(query.order_by(Asset.created_at, Asset.id)))


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
    terms: MainTerms | None = None,
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
            terms=terms,
        )
        for asset in assets
    ]
