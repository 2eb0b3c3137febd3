"""Numbers and handles that identify someone: phones, cards, ids, postcodes, plates.

Presidio already ships checksum-validated recognisers for IBANs (mod-97), US SSNs and
card numbers (Luhn) for the common issuer prefixes; these rules add what it lacks:
phone numbers in national formats from any country, cards from any issuer prefix (still
Luhn-checked), identity numbers named by a nearby word, postcodes and number plates
(only with a cue, because bare they look like any other number), and @handles.
"""

from __future__ import annotations

import re

import phonenumbers
import tldextract
from presidio_analyzer.predefined_recognizers import EmailRecognizer, IbanRecognizer

from fairtrain.privacy.recognizers._lexicon import ENGLISH_STOPWORDS
from fairtrain.privacy.recognizers._rules import Rule, RuleRecognizer

__all__ = [
    "OfflineEmailRecognizer",
    "card_recognizer",
    "date_of_birth_recognizer",
    "datetime_recognizer",
    "driver_licence_recognizer",
    "handle_recognizer",
    "iban_valid",
    "luhn_valid",
    "national_id_recognizer",
    "phone_recognizer",
    "plate_recognizer",
    "postcode_recognizer",
]

# The bundled public-suffix snapshot; an empty URL tuple means "never fetch".
_TLD = tldextract.TLDExtract(suffix_list_urls=())


class OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's e-mail recogniser, validating domains without a network fetch.

    The stock one calls ``tldextract.extract``, which downloads the public suffix list
    on first use and stalls (then logs a traceback) on an offline machine.
    """

    def validate_result(self, pattern_text: str) -> bool:
        """A match is an address when its domain has a known public suffix."""
        return bool(_TLD(pattern_text.rsplit("@", 1)[-1]).fqdn)


def luhn_valid(number: str) -> bool:
    """The Luhn checksum that every payment card number carries."""
    digits = [int(c) for c in number if c.isdigit()]
    if not digits:
        return False
    total = 0
    for i, digit in enumerate(reversed(digits)):
        if i % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


# Anchored (exact_match): the whole string must be the IBAN, as in a payout form.
_IBAN = IbanRecognizer(exact_match=True)


def iban_valid(iban: str) -> bool:
    """An IBAN in electronic form (``DE89370400440532013000``) that passes ISO 13616's
    mod-97 check and its country's BBAN format.

    Presidio's own check, so the detector that redacts IBANs from text and the ledger
    that pays contributors agree on what an IBAN is.
    """
    return _IBAN.validate_result(iban) is True


def _card_shaped(text: str) -> bool:
    digits = re.sub(r"\D", "", text)
    # A run of one repeated digit passes Luhn but is a placeholder, not a card.
    return 12 <= len(digits) <= 19 and len(set(digits)) > 2 and luhn_valid(digits)


def card_recognizer() -> RuleRecognizer:
    """12-19 digit numbers with a valid Luhn check digit, any issuer prefix."""
    return RuleRecognizer(
        "CREDIT_CARD",
        (
            Rule(
                "luhn",
                re.compile(r"(?<![\d-])\d{4}(?:[ -]?\d{2,4}){2,4}(?:[ -]?\d{1,3})?(?![\d-])"),
                0.9,
                context=re.compile(r"(?i)\b(?:card|credit|debit|visa|master\w*|amex|cc|pay\w*)"),
                bare_score=0.6,
                before=60,
                validate=_card_shaped,
            ),
        ),
        name="FairtrainCardRecognizer",
    )


_PHONE_CUE = re.compile(
    r"(?i)\b(?:phone|tel|telephone|call\w*|mobile|cell|number|no\.|reach|text|whatsapp|"
    r"signal|ring|fax|contact|dial\w*|answer\w*|landline|sms|hotline)\b"
)
_DATE_LIKE = re.compile(
    r"^(?:(?:19|20)\d\d[-./](?:19|20)\d\d|\d{4}-\d\d-\d\d|\d\d?[./-]\d\d?[./-]\d{2,4})$"
)


def _phone_shaped(text: str) -> bool:
    digits = re.sub(r"\D", "", text.split("x")[0].split("ext")[0])
    if not 7 <= len(digits) <= 15 or _DATE_LIKE.match(text.strip()):
        return False
    if text.startswith("+"):
        try:
            parsed = phonenumbers.parse(text, None)
        except phonenumbers.NumberParseException:
            return False
        return bool(phonenumbers.is_possible_number(parsed))
    return True


def phone_recognizer() -> RuleRecognizer:
    """Phone numbers in international and national formats from any country.

    Presidio's own phone recogniser asks ``phonenumbers`` about a handful of regions;
    national formats elsewhere ("0494 92 82 32", "99 668472") slip through. Shape plus a
    cue word is a better signal there; a leading "+" is checked with ``phonenumbers``.
    """
    sep = r"[ .-]?"
    grouped = (
        rf"(?<![\w+.-])(?:\+\d{{1,3}}{sep}(?:\(0\){sep})?)?(?:\(\d{{1,5}}\){sep})?"
        rf"\d{{2,5}}(?:[ .-]\d{{2,5}}){{1,4}}(?:[ ]?(?:x|ext\.?)[ ]?\d{{1,5}})?(?![\w-]|\.\d)"
    )
    return RuleRecognizer(
        "PHONE_NUMBER",
        (
            Rule(
                "international",
                re.compile(r"(?<![\w+])\+\d[\d ().-]{6,18}\d(?![\w])"),
                0.75,
                validate=_phone_shaped,
            ),
            Rule(
                "grouped",
                re.compile(grouped),
                0.7,
                context=_PHONE_CUE,
                bare_score=0.45,
                before=40,
                validate=_phone_shaped,
            ),
            Rule(
                "solid",
                re.compile(r"(?<![\w+.-])\(?\d{7,13}(?![\w-]|\.\d)"),
                0.65,
                context=_PHONE_CUE,
                bare_score=None,
                before=40,
                validate=_phone_shaped,
            ),
        ),
        name="FairtrainPhoneRecognizer",
    )


def postcode_recognizer() -> RuleRecognizer:
    """Postcodes, only next to a word that says so ("ZIP: 43015", "postcode B0J 2H0")."""
    code = (
        r"\b(?:\d{5}(?:-\d{3,4})?|\d{4}(?:[ ]?[A-Z]{2})?|\d{3}[ ]\d{2}|\d{2}-\d{3}|\d{3}|"
        r"[A-Z]\d[A-Z][ ]?\d[A-Z]\d|[A-Z]{1,2}\d[A-Z\d]?[ ]?\d[A-Z]{2})\b"
    )
    return RuleRecognizer(
        "ZIP_CODE",
        (
            Rule(
                "cued",
                re.compile(code, re.IGNORECASE),
                0.7,
                context=re.compile(
                    r"(?i)\b(?:zip|postcode|postal|post[ ]code|plz|cep|pin[ ]?code)\b"
                    r"(?:[ ](?:code|is|was|number))*\W*$"
                ),
                before=24,
                after=0,
            ),
        ),
        name="FairtrainPostcodeRecognizer",
    )


def _plate_shaped(text: str) -> bool:
    compact = re.sub(r"[ -]", "", text)
    return (
        4 <= len(compact) <= 10
        and any(c.isdigit() for c in compact)
        and any(c.isalpha() for c in compact)
        and text.casefold() not in ENGLISH_STOPWORDS
    )


def plate_recognizer() -> RuleRecognizer:
    """Vehicle number plates: the current UK format anywhere, any format after a cue."""
    return RuleRecognizer(
        "LICENSE_PLATE",
        (
            Rule("uk", re.compile(r"\b[A-Z]{2}\d{2}[ ]?[A-Z]{3}\b"), 0.5),
            Rule(
                "cued",
                re.compile(r"(?i)\b[A-Z0-9]{1,4}(?:[ -][A-Z0-9]{1,4}){0,2}\b"),
                0.75,
                context=re.compile(
                    r"(?i)\b(?:plates?|registration|reg|licen[cs]e[ ]plate|number[ ]plate|"
                    r"rego|vrn|kennzeichen|matr[ií]cula|targa|immatriculation)\b"
                    r"(?:[ ](?:number|no\.?))?(?:[ ](?:is|was|of))?\W*$"
                ),
                before=32,
                after=0,
                validate=_plate_shaped,
            ),
        ),
        name="FairtrainPlateRecognizer",
    )


def driver_licence_recognizer() -> RuleRecognizer:
    """Driving-licence numbers, recognised by the words in front of them."""
    return RuleRecognizer(
        "US_DRIVER_LICENSE",
        (
            Rule(
                "cued",
                re.compile(r"\b(?=[A-Z0-9-]*\d{4})[A-Z0-9][A-Z0-9-]{4,18}\b", re.IGNORECASE),
                0.75,
                context=re.compile(
                    r"(?i)\b(?:driv\w*'?s?[ ]licen[cs]e|licen[cs]e|DL|permit)\b"
                    r"(?:[ ](?:number|no\.?|#))?(?:[ ](?:is|was))?\W*$"
                ),
                before=40,
                after=0,
            ),
        ),
        name="FairtrainDriverLicenceRecognizer",
    )


def national_id_recognizer() -> RuleRecognizer:
    """Passport, national id, tax and social-security numbers named by a cue word.

    Country-specific checksums (PESEL, personnummer, NHS, Aadhaar…) are Presidio's own
    recognisers, enabled in ``fairtrain.privacy.text``; this catches the rest by cue.
    """
    return RuleRecognizer(
        "NATIONAL_ID",
        (
            Rule(
                "cued",
                re.compile(r"\b(?=[A-Z0-9./-]*\d{5})[A-Z0-9][A-Z0-9./-]{4,20}\b", re.IGNORECASE),
                0.75,
                context=re.compile(
                    r"(?i)\b(?:passport|national[ ]id|id[ ]card|identity|id|ssn|social[ ]security|"
                    r"nin|nino|insurance[ ]number|tax[ ]id|tin|personal[ ](?:id|number|code)|"
                    r"personnummer|pesel|bsn|nif|nie|dni|cpf|aadhaar|pan|sin|codice[ ]fiscale|"
                    r"henkilötunnus|citizen[ ]number|medicare)\b"
                    r"(?:[ ](?:number|no\.?|#|code))?(?:[ ](?:is|was))?\W*$"
                ),
                before=40,
                after=0,
            ),
        ),
        name="FairtrainNationalIdRecognizer",
    )


def handle_recognizer() -> RuleRecognizer:
    """@handles, and user names after "username", "insta", "discord"..."""
    return RuleRecognizer(
        "USERNAME",
        (
            Rule(
                "at-handle",
                re.compile(r"(?<![\w@.])@[A-Za-z0-9_](?:[\w.]{0,28}[\w])?\b(?!@|\.\w)"),
                0.75,
            ),
            Rule(
                "cued",
                re.compile(
                    r"(?i)\b(?:user[ ]?name|handle|login|user[ ]id|gamertag|insta(?:gram)?|ig|"
                    r"twitter|tiktok|snap(?:chat)?|discord|telegram|github|reddit|skype)"
                    r"(?:[ ](?:is|name|handle))?[ ]?[:=]?[ ]?(?P<u>@?[\w.-]{3,30})"
                ),
                0.6,
                group="u",
                validate=lambda s: s.casefold().lstrip("@") not in ENGLISH_STOPWORDS,
            ),
        ),
        name="FairtrainHandleRecognizer",
    )


def date_of_birth_recognizer() -> RuleRecognizer:
    """Dates right after "born", "birthday", "DOB": the date is a date of birth."""
    month = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
    date = (
        rf"(?:\d{{1,2}}[./-]\d{{1,2}}[./-]\d{{2,4}}|\d{{4}}-\d{{2}}-\d{{2}}|"
        rf"\d{{1,2}}(?:st|nd|rd|th)?[ ](?:of[ ])?{month}(?:,?[ ]\d{{4}})?|"
        rf"{month}[ ]\d{{1,2}}(?:st|nd|rd|th)?(?:,?[ ]\d{{4}})?|(?:19|20)\d\d)"
    )
    return RuleRecognizer(
        "DATE_OF_BIRTH",
        (
            Rule(
                "cued",
                re.compile(
                    rf"(?i)\b(?:born|birthday|birth[ ]date|date[ ]of[ ]birth|dob|d\.o\.b\.?)"
                    rf"\W{{0,3}}(?:(?:is|was|on|in)[ ])?(?P<d>{date})"
                ),
                0.85,
                group="d",
            ),
        ),
        name="FairtrainDateOfBirthRecognizer",
    )


def datetime_recognizer() -> RuleRecognizer:
    """Timestamps ("2006-04-07 09:00:27") whole, which Presidio's date patterns cut short."""
    return RuleRecognizer(
        "DATE_TIME",
        (
            Rule(
                "iso",
                re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?\b"),
                0.7,
            ),
            Rule(
                "clock",
                re.compile(r"(?i)\b\d{1,2}:\d{2}(?::\d{2})?(?:[ ]?[ap]\.?m\.?)?(?!\d)"),
                0.45,
            ),
        ),
        name="FairtrainDateTimeRecognizer",
    )
