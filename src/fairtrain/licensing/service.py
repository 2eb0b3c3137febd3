"""Quote, order, pay, license, renew, expire.

Every step re-checks the terms: a quote is refused when any item's terms changed or it
was withdrawn since the version was built (the buyer rebuilds and re-quotes; nothing
changes silently), and an order re-checks its quote. The licence term runs from the
order; the licence is granted when the payment is confirmed, in the same transaction as
the ledger entry that pays each contributor their share. A retried order (same
idempotency key) or a second order for the same quote returns the first.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fairtrain.accounts.models import Organisation
from fairtrain.audit.chain import canonical_json
from fairtrain.audit.keys import platform_signing_key
from fairtrain.audit.service import append_event
from fairtrain.catalog import service as catalog
from fairtrain.catalog.models import CatalogEntry
from fairtrain.config import Settings
from fairtrain.consent.fit import LicenceAsk
from fairtrain.consent.models import AssetPolicy
from fairtrain.consent.purposes import PURPOSES
from fairtrain.datasets.models import Dataset, DatasetItem, DatasetVersion
from fairtrain.errors import Conflict, InvalidInput, NotFound
from fairtrain.ids import new_id, utcnow
from fairtrain.iris import dataset_version_iri, licence_iri, org_iri
from fairtrain.ledger import service as ledger
from fairtrain.licensing.agreement import AgreementTerms, build_agreement, sign_agreement
from fairtrain.licensing.models import (
    InvoiceCounter,
    Licence,
    LicenceItem,
    LicenceState,
    Order,
    OrderState,
    Quote,
)
from fairtrain.licensing.payments import method
from fairtrain.money import to_major
from fairtrain.signing import jws_sha256

__all__ = [
    "Earning",
    "cancel_order",
    "confirm_payment",
    "earnings_of",
    "expire_licences",
    "fee_for",
    "get_licence",
    "get_order",
    "get_quote",
    "licences_of",
    "orders_of",
    "place_order",
    "quote_items",
    "quote_version",
    "renewal_quote",
    "suspend_licence",
]


def fee_for(subtotal_minor: int, fee_bps: int) -> int:
    """The platform's fee on top of the contributors' prices (half a cent rounds up)."""
    return (subtotal_minor * fee_bps + 5000) // 10000


def _items(session: Session, version_id: str) -> list[DatasetItem]:
    return list(
        session.scalars(
            select(DatasetItem)
            .where(DatasetItem.version_id == version_id)
            .order_by(DatasetItem.asset_id)
        )
    )


def _lines_sha256(items: Sequence[DatasetItem]) -> str:
    lines = [[i.asset_id, i.policy_id, i.price_minor] for i in items]
    return hashlib.sha256(canonical_json(lines)).hexdigest()


def _licence_start(session: Session, renews: Licence | None, now: datetime) -> datetime:
    if renews is not None and renews.ends_at > now:
        return renews.ends_at
    return now


def _check_items(
    session: Session,
    settings: Settings,
    dataset: Dataset,
    items: Sequence[DatasetItem],
    start: datetime,
) -> None:
    """Every item still listed, under the same terms, and allowing this licence now."""
    ask = LicenceAsk(
        purpose=dataset.purpose,
        territory=dataset.territory,
        term_days=dataset.term_days,
        currency=dataset.currency,
        start=start,
        assignee=org_iri(settings, dataset.org_id),
    )
    changed: list[str] = []
    entries = {
        e.asset_id: e
        for start_at in range(0, len(items), 900)
        for e in session.scalars(
            select(CatalogEntry).where(
                CatalogEntry.asset_id.in_([i.asset_id for i in items[start_at : start_at + 900]])
            )
        )
    }
    for item in items:
        entry = entries.get(item.asset_id)
        if entry is None or entry.policy_id != item.policy_id:
            changed.append(item.asset_id)
            continue
        if not catalog.decide(session, settings, entry, ask, offered_minor=item.price_minor).ok:
            changed.append(item.asset_id)
    if changed:
        raise Conflict(
            f"{len(changed)} asset(s) of this version changed terms, were withdrawn or no "
            "longer allow this licence since it was built. Build the dataset again (a new "
            "version) and quote that.",
            code="quote_stale",
            extra={"assets": changed[:100]},
        )


def quote_version(
    session: Session,
    settings: Settings,
    *,
    org_id: str,
    version_id: str,
    actor: str,
    renews: Licence | None = None,
    now: datetime | None = None,
) -> Quote:
    """Price a dataset version for its dataset's licence, item by item."""
    now = now or utcnow()
    version = session.get(DatasetVersion, version_id)
    dataset = session.get(Dataset, version.dataset_id) if version else None
    if version is None or dataset is None or dataset.org_id != org_id:
        raise NotFound("No such dataset version.", code="dataset_version_not_found")
    if dataset.latest_version_id != version.id:
        raise Conflict(
            "A newer version of this dataset exists; quote the newest one.",
            code="version_superseded",
        )
    items = _items(session, version.id)
    if not items:
        raise InvalidInput("This version has no items: nothing to license.", code="empty_dataset")
    start = _licence_start(session, renews, now)
    _check_items(session, settings, dataset, items, start)
    subtotal = sum(i.price_minor for i in items)
    fee = fee_for(subtotal, settings.platform_fee_bps)
    quote = Quote(
        id=new_id("quo"),
        org_id=org_id,
        dataset_id=dataset.id,
        version_id=version.id,
        purpose=dataset.purpose,
        territory=dataset.territory,
        term_days=dataset.term_days,
        currency=dataset.currency,
        item_count=len(items),
        subtotal_minor=subtotal,
        fee_bps=settings.platform_fee_bps,
        fee_minor=fee,
        total_minor=subtotal + fee,
        lines_sha256=_lines_sha256(items),
        renews_licence_id=renews.id if renews else None,
        created_by=actor,
        created_at=now,
        expires_at=now + timedelta(seconds=settings.quote_ttl_seconds),
    )
    session.add(quote)
    session.flush()
    append_event(
        session,
        actor=actor,
        action="licence.quoted",
        subject=f"quote:{quote.id}",
        payload={"version": version.id, "items": len(items), "subtotal_minor": subtotal,
                 "fee_minor": fee, "currency": quote.currency, "renews": quote.renews_licence_id},
    )  # fmt: skip
    return quote


def get_quote(session: Session, quote_id: str, org_id: str | None) -> Quote:
    quote = session.get(Quote, quote_id)
    if quote is None or (org_id is not None and quote.org_id != org_id):
        raise NotFound("No such quote.", code="quote_not_found")
    return quote


def quote_items(session: Session, quote: Quote) -> list[DatasetItem]:
    return _items(session, quote.version_id)


def _next_invoice_number(session: Session, now: datetime) -> str:
    counter = session.get(InvoiceCounter, now.year, with_for_update=True)
    if counter is None:
        try:
            with session.begin_nested():
                counter = InvoiceCounter(year=now.year, last=0)
                session.add(counter)
                session.flush()
        except IntegrityError:  # another process made the year's counter first
            counter = session.get(InvoiceCounter, now.year, with_for_update=True)
            assert counter is not None
    counter.last += 1
    session.flush()
    return f"FT-{now.year}-{counter.last:06d}"


def place_order(
    session: Session,
    settings: Settings,
    *,
    quote_id: str,
    org_id: str,
    idempotency_key: str,
    actor: str,
    payment_method: str = "bank_transfer",
) -> tuple[Order, bool]:
    """Accept a quote: an order and its invoice. (order, created?)."""
    now = utcnow()
    key = idempotency_key.strip()
    if not 8 <= len(key) <= 200:
        raise InvalidInput(
            "Send an Idempotency-Key header of 8 to 200 characters, new for each order.",
            code="idempotency_key_required",
            pointer="Idempotency-Key",
        )
    payment = method(payment_method)
    quote = get_quote(session, quote_id, org_id)
    retried = session.scalars(
        select(Order).where(Order.org_id == org_id, Order.idempotency_key == key)
    ).first()
    if retried is not None:
        if retried.quote_id != quote.id:
            raise Conflict(
                "This Idempotency-Key was used for another order.", code="idempotency_key_reused"
            )
        return retried, False
    existing = session.scalars(select(Order).where(Order.quote_id == quote.id)).first()
    if existing is not None:
        return existing, False
    if now >= quote.expires_at:
        raise Conflict("This quote has expired; ask for a new one.", code="quote_expired")
    dataset = session.get(Dataset, quote.dataset_id)
    assert dataset is not None
    items = _items(session, quote.version_id)
    if _lines_sha256(items) != quote.lines_sha256:  # pragma: no cover - versions are immutable
        raise Conflict("The quoted version changed.", code="quote_stale")
    renews = session.get(Licence, quote.renews_licence_id) if quote.renews_licence_id else None
    _check_items(session, settings, dataset, items, _licence_start(session, renews, now))
    order = Order(
        id=new_id("ord"),
        quote_id=quote.id,
        org_id=org_id,
        idempotency_key=key,
        invoice_number=_next_invoice_number(session, now),
        state=OrderState.AWAITING_PAYMENT,
        currency=quote.currency,
        total_minor=quote.total_minor,
        payment_method=payment.name,
        created_by=actor,
        created_at=now,
        due_at=now + timedelta(days=settings.payment_terms_days),
    )
    try:
        with session.begin_nested():
            session.add(order)
            session.flush()
    except IntegrityError:  # the same request, racing itself: the other one won
        session.expire_all()
        winner = session.scalars(select(Order).where(Order.quote_id == quote.id)).first()
        if winner is None:
            raise
        return winner, False
    append_event(
        session,
        actor=actor,
        action="licence.ordered",
        subject=f"order:{order.id}",
        payload={"quote": quote.id, "invoice": order.invoice_number,
                 "total_minor": order.total_minor, "currency": order.currency},
    )  # fmt: skip
    if order.total_minor == 0:
        # Free terms (e.g. open licences): nothing to invoice; the licence starts now.
        confirm_payment(session, settings, order_id=order.id, reference="free", actor=actor)
    else:
        ledger.record_invoice(
            session,
            order_id=order.id,
            org_id=org_id,
            currency=order.currency,
            total_minor=order.total_minor,
            actor=actor,
        )
    return order, True


def get_order(session: Session, order_id: str, org_id: str | None) -> Order:
    order = session.get(Order, order_id)
    if order is None or (org_id is not None and order.org_id != org_id):
        raise NotFound("No such order.", code="order_not_found")
    return order


def orders_of(
    session: Session, *, org_id: str | None, state: OrderState | None = None, limit: int = 200
) -> list[Order]:
    query = select(Order)
    if org_id is not None:
        query = query.where(Order.org_id == org_id)
    if state is not None:
        query = query.where(Order.state == state)
    return list(session.scalars(query.order_by(Order.created_at.desc()).limit(limit)))


def cancel_order(session: Session, *, order_id: str, org_id: str | None, actor: str) -> Order:
    """An unpaid order is cancelled and its invoice reversed; a paid one cannot be."""
    order = get_order(session, order_id, org_id)
    state = OrderState(order.state)
    if state == OrderState.CANCELLED:
        return order
    if state == OrderState.PAID:
        raise Conflict("A paid order cannot be cancelled.", code="order_paid")
    ledger.cancel_invoice(session, order_id=order.id, actor=actor)
    order.state = OrderState.CANCELLED
    order.cancelled_at = utcnow()
    session.flush()
    append_event(
        session,
        actor=actor,
        action="licence.order_cancelled",
        subject=f"order:{order.id}",
        payload={"invoice": order.invoice_number},
    )
    return order


def _banned_and_sublicensing(
    session: Session, items: Sequence[DatasetItem]
) -> tuple[frozenset[str], bool]:
    banned = 0
    sublicensing = True
    policy_ids = sorted({i.policy_id for i in items})
    for start in range(0, len(policy_ids), 900):
        rows = session.execute(
            select(AssetPolicy.ban_mask, AssetPolicy.sublicensing).where(
                AssetPolicy.id.in_(policy_ids[start : start + 900])
            )
        )
        for mask, allows in rows:
            banned |= mask
            sublicensing = sublicensing and bool(allows)
    keys = frozenset(p.key for p in PURPOSES.values() if banned >> p.bit & 1)
    return keys, sublicensing


def confirm_payment(
    session: Session, settings: Settings, *, order_id: str, reference: str, actor: str
) -> Licence:
    """The payment arrived: book it (each contributor's share, the platform's fee) and
    grant the licence, with its signed agreement. Confirming twice returns the licence."""
    order = get_order(session, order_id, None)
    state = OrderState(order.state)
    if state == OrderState.PAID:
        licence = session.scalars(select(Licence).where(Licence.order_id == order.id)).first()
        assert licence is not None
        return licence
    if state == OrderState.CANCELLED:
        raise Conflict("This order was cancelled.", code="order_cancelled")
    reference = method(order.payment_method).check_confirmation(reference)
    quote = session.get(Quote, order.quote_id)
    dataset = session.get(Dataset, quote.dataset_id) if quote else None
    organisation = session.get(Organisation, order.org_id)
    assert quote is not None and dataset is not None and organisation is not None
    now = utcnow()
    items = _items(session, quote.version_id)
    shares: dict[str, int] = defaultdict(int)
    for item in items:
        if item.price_minor:
            shares[item.owner_id] += item.price_minor
    if order.total_minor:
        ledger.record_payment(
            session,
            order_id=order.id,
            org_id=order.org_id,
            currency=order.currency,
            total_minor=order.total_minor,
            contributor_shares=dict(shares),
            platform_fee_minor=quote.fee_minor,
            actor=actor,
        )
    renews = session.get(Licence, quote.renews_licence_id) if quote.renews_licence_id else None
    starts_at = _licence_start(session, renews, order.created_at)
    ends_at = starts_at + timedelta(days=quote.term_days)
    licence_id = new_id("lic")
    banned, sublicensing = _banned_and_sublicensing(session, items)
    document = build_agreement(
        AgreementTerms(
            licence_iri=licence_iri(settings, licence_id),
            platform_iri=settings.base_url.rstrip("/"),
            buyer_iri=org_iri(settings, order.org_id),
            version_iri=dataset_version_iri(settings, quote.version_id),
            purpose=quote.purpose,
            territory=quote.territory,
            starts_at=starts_at,
            ends_at=ends_at,
            total=to_major(order.total_minor, order.currency),
            currency=order.currency,
            banned=banned,
            sublicensing=sublicensing,
            deletion_days=settings.deletion_deadline_days,
        )
    )
    jws = sign_agreement(document, platform_signing_key(settings))
    licence = Licence(
        id=licence_id,
        order_id=order.id,
        org_id=order.org_id,
        dataset_id=dataset.id,
        version_id=quote.version_id,
        purpose=quote.purpose,
        territory=quote.territory,
        currency=order.currency,
        total_minor=order.total_minor,
        starts_at=starts_at,
        ends_at=ends_at,
        state=LicenceState.ACTIVE,
        agreement=document,
        agreement_jws=jws,
        agreement_sha256=jws_sha256(jws),
        renews_licence_id=renews.id if renews else None,
        created_at=now,
    )
    session.add(licence)
    order.state = OrderState.PAID
    order.paid_at = now
    order.payment_reference = reference
    session.flush()
    rows = [
        {"licence_id": licence.id, "asset_id": i.asset_id, "owner_id": i.owner_id,
         "policy_id": i.policy_id, "units": i.units, "amount_minor": i.price_minor}
        for i in items
    ]  # fmt: skip
    for start in range(0, len(rows), 5000):
        session.execute(insert(LicenceItem), rows[start : start + 5000])
    append_event(
        session,
        actor=actor,
        action="licence.granted",
        subject=f"licence:{licence.id}",
        payload={"order": order.id, "org": order.org_id, "version": quote.version_id,
                 "purpose": quote.purpose, "territory": quote.territory,
                 "starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat(),
                 "agreement_sha256": licence.agreement_sha256, "items": len(items),
                 "renews": licence.renews_licence_id},
    )  # fmt: skip
    return licence


def get_licence(session: Session, licence_id: str, org_id: str | None) -> Licence:
    licence = session.get(Licence, licence_id)
    if licence is None or (org_id is not None and licence.org_id != org_id):
        raise NotFound("No such licence.", code="licence_not_found")
    return licence


def licences_of(session: Session, org_id: str, *, limit: int = 200) -> list[Licence]:
    return list(
        session.scalars(
            select(Licence)
            .where(Licence.org_id == org_id)
            .order_by(Licence.created_at.desc())
            .limit(limit)
        )
    )


def renewal_quote(
    session: Session, settings: Settings, *, licence_id: str, org_id: str, actor: str
) -> Quote:
    """A quote for another term of the same dataset, on its newest version: renewals pay
    again, at the owners' current prices."""
    licence = get_licence(session, licence_id, org_id)
    if LicenceState(licence.state) == LicenceState.SUSPENDED:
        raise Conflict("A suspended licence cannot be renewed.", code="licence_suspended")
    dataset = session.get(Dataset, licence.dataset_id)
    assert dataset is not None and dataset.latest_version_id is not None
    return quote_version(
        session,
        settings,
        org_id=org_id,
        version_id=dataset.latest_version_id,
        actor=actor,
        renews=licence,
    )


def expire_licences(session: Session, *, actor: str, now: datetime | None = None) -> list[Licence]:
    """Every active licence whose term has ended becomes expired (audited); the buyer
    must then delete the data as after a withdrawal."""
    now = now or utcnow()
    ended = list(
        session.scalars(
            select(Licence).where(Licence.state == LicenceState.ACTIVE, Licence.ends_at <= now)
        )
    )
    for licence in ended:
        licence.state = LicenceState.EXPIRED
        licence.ended_at = now
        licence.end_reason = "term_ended"
        session.flush()
        append_event(
            session,
            actor=actor,
            action="licence.expired",
            subject=f"licence:{licence.id}",
            payload={"ends_at": licence.ends_at.isoformat(), "org": licence.org_id},
        )
    return ended


def suspend_licence(
    session: Session, licence: Licence, *, reason: str, actor: str, now: datetime | None = None
) -> bool:
    """An active licence stops (no exports, no renewal); False if it was not active."""
    if LicenceState(licence.state) != LicenceState.ACTIVE:
        return False
    licence.state = LicenceState.SUSPENDED
    licence.ended_at = now or utcnow()
    licence.end_reason = reason
    session.flush()
    append_event(
        session,
        actor=actor,
        action="licence.suspended",
        subject=f"licence:{licence.id}",
        payload={"reason": reason, "org": licence.org_id},
    )
    return True


@dataclass(frozen=True, slots=True)
class Earning:
    asset_id: str
    licence_id: str
    buyer: str
    purpose: str
    territory: str
    starts_at: datetime
    ends_at: datetime
    state: str
    amount_minor: int
    currency: str
    version_id: str
    granted_at: datetime


def earnings_of(session: Session, owner_id: str, *, limit: int = 5000) -> list[Earning]:
    """Every licence of each of the contributor's assets: who, for what, until when, and
    how much they earned from it."""
    rows = session.execute(
        select(LicenceItem, Licence, Organisation.name)
        .join(Licence, Licence.id == LicenceItem.licence_id)
        .join(Organisation, Organisation.id == Licence.org_id)
        .where(LicenceItem.owner_id == owner_id)
        .order_by(Licence.created_at.desc(), LicenceItem.asset_id)
        .limit(limit)
    )
    return [
        Earning(
            asset_id=item.asset_id,
            licence_id=licence.id,
            buyer=name,
            purpose=licence.purpose,
            territory=licence.territory,
            starts_at=licence.starts_at,
            ends_at=licence.ends_at,
            state=licence.state,
            amount_minor=item.amount_minor,
            currency=licence.currency,
            version_id=licence.version_id,
            granted_at=licence.created_at,
        )
        for item, licence, name in rows
    ]
