"""Payouts: IBAN and name checks, batches (minimum, skip reasons, never twice), marking
paid, statements, and the bank files read back: CSV parsed, pain.001 parsed and validated
against the ISO 20022 schema (``pain.001.001.09.xsd``, shipped in the ``sepaxml`` wheel)."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sepaxml
import xmlschema
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session
from tests.unit.ledger.conftest import Parties, new_contributor, sell

from fairtrain.audit.models import AuditEvent
from fairtrain.audit.service import verify_stored_chain
from fairtrain.errors import Conflict, InvalidInput, NotFound
from fairtrain.ledger import service as ledger
from fairtrain.ledger.models import BatchState, EntryKind
from fairtrain.ledger.payouts import (
    PAIN001_NAMESPACE,
    Debtor,
    Transfer,
    debtor_account,
    mask_iban,
    normalise_account_holder,
    normalise_iban,
    pain001_xml,
    payouts_csv,
)
from fairtrain.ledger.service import BANK, PAYOUT_CLEARING, contributor_payable

ACTOR = "user:usr_operator"
NS = {"p": PAIN001_NAMESPACE}
SCHEMA = xmlschema.XMLSchema(
    Path(sepaxml.__file__).parent / "schemas" / "pain.001.001.09.xsd"
)  # the ISO 20022 message definition, as published
DEBTOR = Debtor(name="fairtrain platform", iban="GB82WEST12345698765432", bic="NWBKGB2L")

# Real-format IBANs with valid check digits (from the registry's examples).
VALID_IBANS = [
    "DE89370400440532013000",
    "GB82WEST12345698765432",
    "FR1420041010050500013M02606",
    "NL91ABNA0417164300",
    "BE68539007547034",
    "ES9121000418450200051332",
    "IT60X0542811101000000123456",
    "CH9300762011623852957",
    "NO9386011117947",
    "MT84MALT011000012345MTLCAST001S",
]


# -- IBANs and names -----------------------------------------------------------------------


@pytest.mark.parametrize("iban", VALID_IBANS)
def test_valid_ibans_are_accepted(iban: str) -> None:
    assert normalise_iban(iban) == iban


def test_ibans_are_accepted_as_people_type_them() -> None:
    assert normalise_iban(" de89 3704 0044 0532 0130 00 ") == "DE89370400440532013000"
    assert normalise_iban("DE89-3704-0044-0532-0130-00") == "DE89370400440532013000"


@pytest.mark.parametrize(
    "iban",
    [
        "DE88370400440532013000",  # check digits off by one
        "DE89370400440532013001",  # account number changed
        "DE8937040044053201300",  # one digit short for Germany
        "DE893704004405320130000",  # one digit too many
        "XX89370400440532013000",  # no such country
        "GB82WEST1234569876543X",  # letter where Britain has digits
        "DE89 3704 0044 0532 0130 0ß",  # non-ASCII ("ß".upper() is "SS")
        "DE89370400440532O13000",  # letter O for zero
        "",
        "12345678901234567890",
    ],
)
def test_invalid_ibans_are_refused(iban: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        normalise_iban(iban)
    assert refused.value.code == "invalid_iban"
    assert refused.value.pointer == "/iban"


@given(st.sampled_from(VALID_IBANS), st.integers(min_value=4), st.sampled_from("0123456789"))
@settings(max_examples=200, deadline=None)
def test_any_single_digit_change_is_caught(iban: str, position: int, digit: str) -> None:
    # Mod-97 catches every single-character substitution.
    index = 4 + position % (len(iban) - 4)
    if not iban[index].isdigit() or iban[index] == digit:
        return
    changed = iban[:index] + digit + iban[index + 1 :]
    with pytest.raises(InvalidInput):
        normalise_iban(changed)


def test_masking_keeps_the_country_and_the_last_four() -> None:
    assert mask_iban("DE89370400440532013000") == "DE** **** **** **** **30 00"
    assert mask_iban("NO9386011117947") == "NO** **** ***7 947"
    assert "0532" not in mask_iban("DE89370400440532013000")


def test_account_holder_names() -> None:
    assert normalise_account_holder("  Zoë   O'Brien & <Sons> ") == "Zoë O'Brien & <Sons>"
    for bad in ("", "   ", "x" * 71, "Eve\x00", "Eve\u202eevil", "Bell\x07"):
        with pytest.raises(InvalidInput) as refused:
            normalise_account_holder(bad)
        assert refused.value.code == "invalid_account_holder"


def test_the_debtor_account_comes_from_the_settings() -> None:
    assert debtor_account("fairtrain", "gb82 west 1234 5698 7654 32", None).iban == (
        "GB82WEST12345698765432"
    )
    for iban in (None, "", "GB00WEST12345698765432"):
        with pytest.raises(Conflict) as refused:
            debtor_account("fairtrain", iban, None)
        assert refused.value.code == "payout_debtor_not_configured"


# -- bank files, read back -----------------------------------------------------------------

TRANSFERS = [
    Transfer("poi_first", "usr_a", 123456, 'Zoë O\'Brien & <Sons> "Ltd"', "DE89370400440532013000"),
    Transfer(
        "poi_second", "usr_b", 1000, '=HYPERLINK("http://evil")', "FR1420041010050500013M02606"
    ),
    Transfer("poi_third", "usr_c", 1, "Nul\x00Byte Person", "NL91ABNA0417164300"),
]
MOMENT = datetime(2026, 5, 4, 10, 30, 15, 123456, tzinfo=UTC)


def _pain(currency: str = "EUR", transfers: list[Transfer] = TRANSFERS, **kw: object) -> bytes:
    arguments: dict[str, object] = {
        "message_id": "pob_test",
        "created_at": MOMENT,
        "execution_date": date(2026, 5, 4),
        "currency": currency,
        "debtor": DEBTOR,
        "transfers": transfers,
        "remittance": "fairtrain royalties, payout pob_test",
    } | kw
    return pain001_xml(**arguments)  # type: ignore[arg-type]


def test_pain001_parses_back_with_counts_and_sums_matching_the_items() -> None:
    root = ET.fromstring(_pain())
    assert root.tag == f"{{{PAIN001_NAMESPACE}}}Document"
    header = root.find("p:CstmrCdtTrfInitn/p:GrpHdr", NS)
    assert header is not None
    assert header.findtext("p:MsgId", namespaces=NS) == "pob_test"
    assert header.findtext("p:CreDtTm", namespaces=NS) == "2026-05-04T10:30:15+00:00"
    assert header.findtext("p:NbOfTxs", namespaces=NS) == "3"
    assert Decimal(header.findtext("p:CtrlSum", namespaces=NS) or "") == Decimal("1244.57")
    payment = root.find("p:CstmrCdtTrfInitn/p:PmtInf", NS)
    assert payment is not None
    assert payment.findtext("p:NbOfTxs", namespaces=NS) == "3"
    assert payment.findtext("p:PmtTpInf/p:SvcLvl/p:Cd", namespaces=NS) == "SEPA"
    assert payment.findtext("p:ChrgBr", namespaces=NS) == "SLEV"
    assert payment.findtext("p:Dbtr/p:Nm", namespaces=NS) == "fairtrain platform"
    assert payment.findtext("p:DbtrAcct/p:Id/p:IBAN", namespaces=NS) == DEBTOR.iban
    assert payment.findtext("p:DbtrAgt/p:FinInstnId/p:BICFI", namespaces=NS) == "NWBKGB2L"
    items = payment.findall("p:CdtTrfTxInf", NS)
    parsed = [
        (
            item.findtext("p:PmtId/p:EndToEndId", namespaces=NS),
            item.find("p:Amt/p:InstdAmt", NS).get("Ccy"),  # type: ignore[union-attr]
            Decimal(item.findtext("p:Amt/p:InstdAmt", namespaces=NS) or ""),
            item.findtext("p:Cdtr/p:Nm", namespaces=NS),
            item.findtext("p:CdtrAcct/p:Id/p:IBAN", namespaces=NS),
            item.findtext("p:RmtInf/p:Ustrd", namespaces=NS),
        )
        for item in items
    ]
    assert parsed == [
        (
            "poi_first",
            "EUR",
            Decimal("1234.56"),
            'Zoë O\'Brien & <Sons> "Ltd"',
            "DE89370400440532013000",
            "fairtrain royalties, payout pob_test",
        ),
        (
            "poi_second",
            "EUR",
            Decimal("10.00"),
            '=HYPERLINK("http://evil")',
            "FR1420041010050500013M02606",
            "fairtrain royalties, payout pob_test",
        ),
        # A NUL cannot exist in XML at all: dropped, so the file stays readable.
        (
            "poi_third",
            "EUR",
            Decimal("0.01"),
            "NulByte Person",
            "NL91ABNA0417164300",
            "fairtrain royalties, payout pob_test",
        ),
    ]
    header_sum = Decimal(header.findtext("p:CtrlSum", namespaces=NS) or "")
    assert header_sum == sum(p[2] for p in parsed)


def test_pain001_is_valid_against_the_iso20022_schema() -> None:
    SCHEMA.validate(_pain().decode())
    SCHEMA.validate(_pain(debtor=Debtor("fairtrain", DEBTOR.iban, None)).decode())
    SCHEMA.validate(_pain(currency="JPY", transfers=[TRANSFERS[0]]).decode())


def test_a_schema_violation_would_be_caught() -> None:
    # The schema check is real: a file without its debtor account is refused.
    broken = _pain().replace(b"<DbtrAcct>", b"<DbtrAcctX>").replace(b"</DbtrAcct>", b"</DbtrAcctX>")
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        SCHEMA.validate(broken.decode())


def test_pain001_names_are_escaped_not_injected() -> None:
    evil = Transfer("poi_x", "usr_x", 500, "</Nm><IBAN>XX</IBAN><Nm>", "DE89370400440532013000")
    document = _pain(transfers=[evil])
    assert b"&lt;/Nm&gt;&lt;IBAN&gt;XX&lt;/IBAN&gt;&lt;Nm&gt;" in document
    root = ET.fromstring(document)
    ibans = [e.text for e in root.iter(f"{{{PAIN001_NAMESPACE}}}IBAN")]
    assert ibans == [DEBTOR.iban, "DE89370400440532013000"]


def test_other_currencies_are_not_declared_sepa() -> None:
    root = ET.fromstring(_pain(currency="JPY", transfers=[TRANSFERS[1]]))
    payment = root.find("p:CstmrCdtTrfInitn/p:PmtInf", NS)
    assert payment is not None
    assert payment.find("p:PmtTpInf", NS) is None
    assert payment.findtext("p:ChrgBr", namespaces=NS) == "SHAR"
    assert payment.findtext("p:CdtTrfTxInf/p:Amt/p:InstdAmt", namespaces=NS) == "1000"


def test_an_empty_payment_file_is_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        _pain(transfers=[])
    assert refused.value.code == "nothing_to_pay"


def test_csv_parses_back_and_formulas_are_defused() -> None:
    rows = list(csv.DictReader(io.StringIO(payouts_csv("pob_test", "EUR", TRANSFERS))))
    assert [r["end_to_end_id"] for r in rows] == ["poi_first", "poi_second", "poi_third"]
    assert [r["amount"] for r in rows] == ["1234.56", "10.00", "0.01"]
    assert sum(int(r["amount_minor"]) for r in rows) == 124457
    assert rows[0]["account_holder"] == 'Zoë O\'Brien & <Sons> "Ltd"'
    # Typed by a contributor; opened in a spreadsheet by an operator: never a formula.
    assert rows[1]["account_holder"] == '\'=HYPERLINK("http://evil")'
    assert {r["batch_id"] for r in rows} == {"pob_test"}
    assert {r["currency"] for r in rows} == {"EUR"}


# -- payout details in the database --------------------------------------------------------


def test_payout_details_are_stored_normalised_and_audited_without_the_iban(
    db: Session, parties: Parties
) -> None:
    user_id = parties.contributors[0]
    details = ledger.set_payout_details(
        db,
        user_id=user_id,
        account_holder=" Ada  Lovelace ",
        iban="de89 3704 0044 0532 0130 00",
        actor=f"user:{user_id}",
    )
    assert (details.account_holder, details.iban) == ("Ada Lovelace", "DE89370400440532013000")
    # The same details again change nothing and log nothing.
    ledger.set_payout_details(
        db,
        user_id=user_id,
        account_holder="Ada Lovelace",
        iban="DE89370400440532013000",
        actor=f"user:{user_id}",
    )
    ledger.set_payout_details(
        db,
        user_id=user_id,
        account_holder="Ada Lovelace",
        iban="GB82WEST12345698765432",
        actor=f"user:{user_id}",
    )
    events = list(
        db.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == "ledger.payout_details_changed")
            .where(AuditEvent.subject == f"user:{user_id}")
            .order_by(AuditEvent.seq)
        )
    )
    assert [e.payload["changed"] for e in events] == [["account_holder", "iban"], ["iban"]]
    assert [e.payload["iban_country"] for e in events] == ["DE", "GB"]
    for event in events:
        flat = repr(event.payload)
        assert "370400440532013000" not in flat and "WEST1234" not in flat
        assert "Lovelace" not in flat
    assert verify_stored_chain(db) == (True, None, None)


def test_only_contributors_have_payout_details(db: Session) -> None:
    with pytest.raises(NotFound) as refused:
        ledger.set_payout_details(
            db, user_id="usr_ghost", account_holder="Ghost", iban=VALID_IBANS[0], actor=ACTOR
        )
    assert refused.value.code == "contributor_not_found"


# -- batches -------------------------------------------------------------------------------


def _details(db: Session, user_id: str, name: str = "Payee Person") -> None:
    ledger.set_payout_details(
        db, user_id=user_id, account_holder=name, iban=VALID_IBANS[0], actor=f"user:{user_id}"
    )


def test_a_batch_pays_everyone_owed_the_minimum_with_details(db: Session, parties: Parties) -> None:
    paid, small, no_details = parties.contributors
    sell(db, parties, shares={paid: 2500, small: 999, no_details: 5000}, fee=500)
    _details(db, paid)
    _details(db, small)
    batch = ledger.create_payout_batch(db, currency="EUR", minimum_minor=1000, actor=ACTOR)
    assert (batch.state, batch.item_count, batch.total_minor) == (BatchState.SENT, 1, 2500)
    assert sorted(batch.skipped, key=lambda s: s["user_id"]) == sorted(
        [
            {"user_id": small, "balance_minor": 999, "reason": "below_minimum"},
            {"user_id": no_details, "balance_minor": 5000, "reason": "no_payout_details"},
        ],
        key=lambda s: s["user_id"],
    )
    items = ledger.batch_items(db, batch.id)
    assert [(i.user_id, i.amount_minor, i.iban) for i in items] == [(paid, 2500, VALID_IBANS[0])]
    # Booked: owed → clearing, in one entry.
    assert ledger.balance(db, contributor_payable(paid), "EUR") == 0
    assert ledger.balance(db, PAYOUT_CLEARING, "EUR") == 2500
    assert ledger.balance(db, contributor_payable(small), "EUR") == 999
    entry_lines = ledger.entry_lines(db, batch.entry_id)
    assert len(entry_lines) == 2


def test_the_same_balances_are_never_batched_twice(db: Session, parties: Parties) -> None:
    a, b, _ = parties.contributors
    sell(db, parties, shares={a: 3000, b: 4000}, fee=0)
    _details(db, a)
    _details(db, b)
    ledger.create_payout_batch(db, currency="EUR", minimum_minor=1000, actor=ACTOR)
    with pytest.raises(Conflict) as refused:
        ledger.create_payout_batch(db, currency="EUR", minimum_minor=1000, actor=ACTOR)
    assert refused.value.code == "nothing_to_pay"
    # New earnings make a new batch, for exactly the new money.
    sell(db, parties, shares={a: 1200}, fee=0)
    second = ledger.create_payout_batch(db, currency="EUR", minimum_minor=1000, actor=ACTOR)
    assert (second.item_count, second.total_minor) == (1, 1200)


def test_a_batch_pays_only_its_currency(db: Session, parties: Parties) -> None:
    a = parties.contributors[0]
    sell(db, parties, shares={a: 5000}, fee=0, currency="GBP")
    _details(db, a)
    with pytest.raises(Conflict) as refused:
        ledger.create_payout_batch(db, currency="EUR", minimum_minor=1, actor=ACTOR)
    assert refused.value.code == "nothing_to_pay"
    batch = ledger.create_payout_batch(db, currency="gbp", minimum_minor=1, actor=ACTOR)
    assert (batch.currency, batch.total_minor) == ("GBP", 5000)


def test_nothing_to_pay_lists_who_was_skipped_and_writes_nothing(
    db: Session, parties: Parties
) -> None:
    a = parties.contributors[0]
    sell(db, parties, shares={a: 400}, fee=0)
    with pytest.raises(Conflict) as refused:
        ledger.create_payout_batch(db, currency="EUR", minimum_minor=1000, actor=ACTOR)
    assert refused.value.extra["skipped"] == [
        {"user_id": a, "balance_minor": 400, "reason": "below_minimum"}
    ]
    assert ledger.list_batches(db) == []
    with pytest.raises(InvalidInput) as currency:
        ledger.create_payout_batch(db, currency="EURO", minimum_minor=1000, actor=ACTOR)
    assert currency.value.code == "unknown_currency"


def test_the_batch_keeps_the_details_it_was_made_with(db: Session, parties: Parties) -> None:
    a = parties.contributors[0]
    sell(db, parties, shares={a: 5000}, fee=0)
    _details(db, a, name="Old Name")
    batch = ledger.create_payout_batch(db, currency="EUR", minimum_minor=1, actor=ACTOR)
    ledger.set_payout_details(
        db, user_id=a, account_holder="New Name", iban=VALID_IBANS[1], actor=f"user:{a}"
    )
    (item,) = ledger.batch_items(db, batch.id)
    assert (item.account_holder, item.iban) == ("Old Name", VALID_IBANS[0])


def test_marking_a_batch_paid_books_it_out_of_the_bank_once(db: Session, parties: Parties) -> None:
    a = parties.contributors[0]
    sell(db, parties, shares={a: 8000}, fee=2000)
    _details(db, a)
    batch = ledger.create_payout_batch(db, currency="EUR", minimum_minor=1000, actor=ACTOR)
    paid = ledger.mark_batch_paid(db, batch.id, actor=ACTOR)
    assert paid.state == BatchState.PAID and paid.paid_entry_id and paid.paid_by == ACTOR
    assert ledger.balance(db, PAYOUT_CLEARING, "EUR") == 0
    assert ledger.balance(db, BANK, "EUR") == 2000  # the platform's fee is what stays
    with pytest.raises(Conflict) as refused:
        ledger.mark_batch_paid(db, batch.id, actor=ACTOR)
    assert refused.value.code == "batch_already_paid"
    with pytest.raises(NotFound) as missing:
        ledger.mark_batch_paid(db, "pob_missing", actor=ACTOR)
    assert missing.value.code == "batch_not_found"
    for entry_id in (batch.entry_id, paid.paid_entry_id):
        with pytest.raises(Conflict) as alone:
            ledger.reverse_entry(db, entry_id, actor=ACTOR, reason="undo a payout")
        assert alone.value.code == "entry_not_reversible"
    statement = ledger.statement(db, a)
    assert [(s.kind, s.amount_minor, s.balance_minor) for s in statement] == [
        (EntryKind.PAYMENT, 8000, 8000),
        (EntryKind.PAYOUT_BATCH, -8000, 0),
    ]
    trial = ledger.trial_balance(db)
    assert all(c.debit_minor == c.credit_minor for c in trial.currencies)


def test_exports_of_a_stored_batch_read_back(db: Session, parties: Parties) -> None:
    a, b, _ = parties.contributors
    sell(db, parties, shares={a: 1234, b: 5678}, fee=88)
    _details(db, a, name="Ana & <Co>")
    _details(db, b, name="Bea Example")
    batch = ledger.create_payout_batch(db, currency="EUR", minimum_minor=1000, actor=ACTOR)
    pain = ledger.export_batch(
        db,
        batch.id,
        export_format="pain001",
        debtor_name="fairtrain",
        debtor_iban="GB82 WEST 1234 5698 7654 32",
        debtor_bic=None,
        actor=ACTOR,
    )
    assert pain.media_type == "application/xml"
    SCHEMA.validate(pain.content.decode())
    root = ET.fromstring(pain.content)
    assert root.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:NbOfTxs", namespaces=NS) == "2"
    assert root.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:CtrlSum", namespaces=NS) == "69.12"
    assert root.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:MsgId", namespaces=NS) == batch.id
    ids = [e.text for e in root.iter(f"{{{PAIN001_NAMESPACE}}}EndToEndId")]
    assert ids == [i.id for i in ledger.batch_items(db, batch.id)]
    table = ledger.export_batch(
        db,
        batch.id,
        export_format="csv",
        debtor_name="fairtrain",
        debtor_iban=None,
        debtor_bic=None,
        actor=ACTOR,
    )
    rows = list(csv.DictReader(io.StringIO(table.content.decode())))
    assert sum(int(r["amount_minor"]) for r in rows) == batch.total_minor == 6912
    exports = db.scalars(
        select(AuditEvent.payload).where(AuditEvent.action == "ledger.payout_batch_exported")
    ).all()
    assert [e["format"] for e in exports] == ["pain001", "csv"]


def test_export_refusals(db: Session, parties: Parties) -> None:
    a = parties.contributors[0]
    sell(db, parties, shares={a: 1500}, fee=0)
    _details(db, a)
    batch = ledger.create_payout_batch(db, currency="EUR", minimum_minor=1000, actor=ACTOR)

    def export(batch_id: str, export_format: str) -> object:
        return ledger.export_batch(
            db,
            batch_id,
            export_format=export_format,
            debtor_name="fairtrain",
            debtor_iban=None,
            debtor_bic=None,
            actor=ACTOR,
        )

    with pytest.raises(InvalidInput) as unknown:
        export(batch.id, "xlsx")
    assert unknown.value.code == "unknown_export_format"
    with pytest.raises(Conflict) as debtor:
        export(batch.id, "pain001")
    assert debtor.value.code == "payout_debtor_not_configured"
    with pytest.raises(NotFound):
        export("pob_nope", "csv")


def test_statement_of_someone_never_paid_is_empty(db: Session) -> None:
    assert ledger.statement(db, new_contributor(db)) == []
