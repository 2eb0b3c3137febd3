"""Payouts as values: payout details checked, masked, and a batch written as a bank file.

Pure functions, no database: the service (``ledger.service``) loads a batch and hands its
transfers here. Two export formats:

- **CSV**, one row per transfer, for a person to read or a bank portal that imports CSV.
  Cells a spreadsheet would run as a formula (a name starting with ``=``, ``+``, ``-``,
  ``@``…) are prefixed with ``'``: account holder names are typed by contributors.
- **ISO 20022 ``pain.001.001.09``** (Customer Credit Transfer Initiation), one payment
  information block with the platform's account as the debtor and one credit transfer
  per contributor. Built with ``xml.etree`` (which escapes ``&``, ``<``, ``>`` and
  quotes); characters XML 1.0 cannot carry at all are dropped first, so a name can
  never make the file unreadable.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from fairtrain.errors import Conflict, InvalidInput
from fairtrain.money import major_text

__all__ = [
    "PAIN001_NAMESPACE",
    "Debtor",
    "ExportFormat",
    "Transfer",
    "csv_cell",
    "debtor_account",
    "mask_iban",
    "normalise_account_holder",
    "normalise_iban",
    "pain001_xml",
    "payouts_csv",
]

PAIN001_NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"
# SEPA's limit for names (the ISO type allows 140); banks truncate beyond it.
MAX_NAME_LENGTH = 70
_IBAN_SHAPE = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")
_SEPARATORS = re.compile(r"[\s-]+")
# Characters XML 1.0 cannot represent, even escaped.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Control, surrogate, private-use and unassigned characters; and the bidirectional
# overrides that make a name display as something else. (Joiners stay: names need them.)
_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Co", "Cn"})
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

ET.register_namespace("", PAIN001_NAMESPACE)


class ExportFormat(StrEnum):
    CSV = "csv"
    PAIN001 = "pain001"


@dataclass(frozen=True, slots=True)
class Transfer:
    """One credit transfer of a batch."""

    end_to_end_id: str  # the payout item's id: at most 35 characters
    user_id: str
    amount_minor: int
    creditor_name: str
    creditor_iban: str


@dataclass(frozen=True, slots=True)
class Debtor:
    """The platform's own bank account, which every payout is sent from."""

    name: str
    iban: str
    bic: str | None


def normalise_iban(text: str) -> str:
    """The IBAN in electronic form (no spaces, upper case), or ``invalid_iban``.

    Checked by ISO 13616's mod-97 and the country's format (``privacy``'s validator,
    the one that finds IBANs in uploaded text).
    """
    # Imported here: the validator lives beside the PII recognisers, whose module loads
    # Presidio (seconds); the app should not pay that at start-up for a rare form.
    from fairtrain.privacy.recognizers.numbers import iban_valid

    compact = _SEPARATORS.sub("", text) if isinstance(text, str) else ""
    # ASCII first: "ß".upper() is "SS", which would turn a typo into another account.
    if not compact.isascii():
        raise _bad_iban()
    compact = compact.upper()
    if not _IBAN_SHAPE.fullmatch(compact) or not iban_valid(compact):
        raise _bad_iban()
    return compact


def _bad_iban() -> InvalidInput:
    return InvalidInput(
        "This is not a valid IBAN: check it against your bank statement "
        "(its two check digits did not match, or the length is wrong for the country).",
        code="invalid_iban",
        pointer="/iban",
    )


def mask_iban(iban: str) -> str:
    """``DE89370400440532013000`` → ``DE** **** **** **** **30 00``: enough to recognise."""
    visible = iban[:2] + "*" * max(len(iban) - 6, 0) + iban[-4:]
    return " ".join(visible[i : i + 4] for i in range(0, len(visible), 4))


def normalise_account_holder(name: str) -> str:
    """The account holder's name, spaces folded, or ``invalid_account_holder``."""
    folded = " ".join(name.split()) if isinstance(name, str) else ""
    if not folded or len(folded) > MAX_NAME_LENGTH:
        raise InvalidInput(
            f"Give the account holder's name as your bank has it (1 to {MAX_NAME_LENGTH} "
            "characters).",
            code="invalid_account_holder",
            pointer="/account_holder",
        )
    if any(unicodedata.category(c) in _REFUSED_CATEGORIES or c in _BIDI_CONTROLS for c in folded):
        raise InvalidInput(
            "The account holder's name contains invisible or control characters.",
            code="invalid_account_holder",
            pointer="/account_holder",
        )
    return folded


def debtor_account(name: str, iban: str | None, bic: str | None) -> Debtor:
    """The platform's account from the settings, checked, or a refusal naming the setting."""
    if not iban:
        raise Conflict(
            "The platform's own bank account is not configured: set "
            "FAIRTRAIN_PAYOUT_DEBTOR_IBAN (and FAIRTRAIN_PAYOUT_DEBTOR_BIC) to export "
            "pain.001 files.",
            code="payout_debtor_not_configured",
        )
    try:
        checked = normalise_iban(iban)
    except InvalidInput as error:
        raise Conflict(
            "FAIRTRAIN_PAYOUT_DEBTOR_IBAN is not a valid IBAN.",
            code="payout_debtor_not_configured",
        ) from error
    return Debtor(name=name, iban=checked, bic=bic)


def csv_cell(value: str) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def payouts_csv(batch_id: str, currency: str, transfers: Sequence[Transfer]) -> str:
    """One header row, then one row per transfer; amounts in major and minor units."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        [
            "batch_id",
            "end_to_end_id",
            "user_id",
            "account_holder",
            "iban",
            "currency",
            "amount",
            "amount_minor",
        ]
    )
    for transfer in transfers:
        writer.writerow(
            [
                batch_id,
                transfer.end_to_end_id,
                transfer.user_id,
                csv_cell(transfer.creditor_name),
                transfer.creditor_iban,
                currency,
                major_text(transfer.amount_minor, currency),
                str(transfer.amount_minor),
            ]
        )
    return out.getvalue()


def _xml_text(value: str, limit: int) -> str:
    return _NOT_XML.sub("", value)[:limit]


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{PAIN001_NAMESPACE}}}{tag}", attrib)
    if text is not None:
        element.text = text
    return element


def _path(parent: ET.Element, *tags: str) -> ET.Element:
    for tag in tags:
        parent = _sub(parent, tag)
    return parent


def pain001_xml(
    *,
    message_id: str,
    created_at: datetime,
    execution_date: date,
    currency: str,
    debtor: Debtor,
    transfers: Sequence[Transfer],
    remittance: str,
) -> bytes:
    """A ``pain.001.001.09`` document (UTF-8) paying every transfer from ``debtor``.

    ``message_id`` is the batch id (a bank refuses a second file with the same MsgId, so
    re-sending an export cannot pay twice). SEPA service level and shared-charges rule
    ``SLEV`` are declared for euro batches; other currencies share charges (``SHAR``).
    """
    if not transfers:
        raise InvalidInput("A payment file needs at least one transfer.", code="nothing_to_pay")
    count = str(len(transfers))
    control_sum = major_text(sum(t.amount_minor for t in transfers), currency)
    document = ET.Element(f"{{{PAIN001_NAMESPACE}}}Document")
    initiation = _sub(document, "CstmrCdtTrfInitn")

    header = _sub(initiation, "GrpHdr")
    _sub(header, "MsgId", message_id[:35])
    _sub(header, "CreDtTm", created_at.replace(microsecond=0).isoformat())
    _sub(header, "NbOfTxs", count)
    _sub(header, "CtrlSum", control_sum)
    _sub(_sub(header, "InitgPty"), "Nm", _xml_text(debtor.name, MAX_NAME_LENGTH))

    payment = _sub(initiation, "PmtInf")
    _sub(payment, "PmtInfId", message_id[:35])
    _sub(payment, "PmtMtd", "TRF")
    _sub(payment, "BtchBookg", "true")
    _sub(payment, "NbOfTxs", count)
    _sub(payment, "CtrlSum", control_sum)
    sepa = currency == "EUR"
    if sepa:
        _sub(_path(payment, "PmtTpInf", "SvcLvl"), "Cd", "SEPA")
    _sub(_sub(payment, "ReqdExctnDt"), "Dt", execution_date.isoformat())
    _sub(_sub(payment, "Dbtr"), "Nm", _xml_text(debtor.name, MAX_NAME_LENGTH))
    _sub(_path(payment, "DbtrAcct", "Id"), "IBAN", debtor.iban)
    institution = _path(payment, "DbtrAgt", "FinInstnId")
    if debtor.bic:
        _sub(institution, "BICFI", debtor.bic)
    else:
        # IBAN-only: the bank finds its own BIC; the schema still wants an agent.
        _sub(_sub(institution, "Othr"), "Id", "NOTPROVIDED")
    _sub(payment, "ChrgBr", "SLEV" if sepa else "SHAR")

    for transfer in transfers:
        item = _sub(payment, "CdtTrfTxInf")
        _sub(_sub(item, "PmtId"), "EndToEndId", transfer.end_to_end_id[:35])
        amount = major_text(transfer.amount_minor, currency)
        _sub(_sub(item, "Amt"), "InstdAmt", amount, Ccy=currency)
        _sub(_sub(item, "Cdtr"), "Nm", _xml_text(transfer.creditor_name, MAX_NAME_LENGTH))
        _sub(_path(item, "CdtrAcct", "Id"), "IBAN", transfer.creditor_iban)
        _sub(_sub(item, "RmtInf"), "Ustrd", _xml_text(remittance, 140))

    ET.indent(document)
    written: bytes = ET.tostring(document, encoding="utf-8", xml_declaration=True)
    return written + b"\n"
