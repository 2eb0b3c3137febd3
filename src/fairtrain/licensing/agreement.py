"""The licence agreement: an ODRL 2.2 ``Agreement`` between the platform (for the
contributors) and the buyer organisation, signed by the platform.

It is built as a :class:`~fairtrain.consent.odrl.Policy` and serialised by the same code
as contributors' terms, so the platform's own parser and evaluator read it back
(``fairtrain consent evaluate agreement.json --purpose …`` answers for the licence as it
does for an asset's terms). What it says:

- permission to **use** the dataset version, for the declared purpose, in the territory,
  from the start to the end of the term, assigned to the buyer; with duties to
  **compensate** (the total paid) and to **delete** withdrawn items (within the deadline,
  counted from each withdrawal notice);
- prohibitions: every purpose any included asset's owner prohibits (so a licence never
  carries more than the narrowest terms in it), and sublicensing (``grantUse``) unless
  every asset allows it.

The signed JWS (``licence-agreement+jws``) is verifiable offline with the platform's
public key, like consent receipts (``fairtrain.signing``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fairtrain.consent import purposes
from fairtrain.consent.odrl import Constraint, Policy, Rule, parse_policy, serialise_policy
from fairtrain.errors import InvalidInput
from fairtrain.signing import SignedKind, sign_document, verify_document

__all__ = [
    "AGREEMENT",
    "AgreementInvalid",
    "AgreementTerms",
    "agreement_file",
    "build_agreement",
    "sign_agreement",
    "verify_agreement_document",
]


class AgreementInvalid(InvalidInput):
    default_code = "agreement_invalid"


AGREEMENT = SignedKind(
    typ="licence-agreement+jws",
    noun="licence agreement",
    prefix="agreement",
    field="agreement",
    error=AgreementInvalid,
)


@dataclass(frozen=True, slots=True)
class AgreementTerms:
    licence_iri: str
    platform_iri: str
    buyer_iri: str
    version_iri: str
    purpose: str  # a purpose key
    territory: str
    starts_at: datetime
    ends_at: datetime
    total: Decimal  # major units of ``currency``
    currency: str
    banned: frozenset[str]  # purpose keys some included asset's owner prohibits
    sublicensing: bool
    deletion_days: int  # after a withdrawal notice


def _top(keys: Iterable[str]) -> tuple[str, ...]:
    chosen = set(keys)
    return tuple(sorted(k for k in chosen if purposes.PURPOSES[k].parent not in chosen))


def build_agreement(terms: AgreementTerms) -> dict[str, Any]:
    """The agreement as ODRL JSON-LD (parseable by :func:`consent.odrl.parse_policy`)."""
    base = terms.licence_iri
    pay = Rule(
        f"{base}#compensate",
        "duty",
        ("compensate",),
        None,
        None,
        (Constraint("payAmount", "eq", (terms.total,), terms.currency),),
    )
    delete = Rule(
        f"{base}#delete-withdrawn",
        "duty",
        ("delete",),
        None,
        None,
        (Constraint("elapsedTime", "lteq", (Decimal(terms.deletion_days),)),),
    )
    permission = Rule(
        f"{base}#use",
        "permission",
        ("use",),
        terms.version_iri,
        terms.buyer_iri,
        (
            Constraint("purpose", "isA", (terms.purpose,)),
            Constraint("spatial", "eq", (terms.territory,)),
            Constraint("dateTime", "gteq", (terms.starts_at,)),
            Constraint("dateTime", "lt", (terms.ends_at,)),
        ),
        (pay, delete),
    )
    prohibitions: list[Rule] = []
    banned = _top(terms.banned)
    if banned:
        prohibitions.append(
            Rule(
                f"{base}#prohibited-purposes",
                "prohibition",
                ("use",),
                terms.version_iri,
                terms.buyer_iri,
                (Constraint("purpose", "isAnyOf", banned),),
            )
        )
    grants: list[Rule] = [permission]
    if terms.sublicensing:
        grants.append(
            Rule(
                f"{base}#sublicense",
                "permission",
                ("grantUse",),
                terms.version_iri,
                terms.buyer_iri,
                (),
            )
        )
    else:
        prohibitions.append(
            Rule(
                f"{base}#no-sublicensing",
                "prohibition",
                ("grantUse",),
                terms.version_iri,
                terms.buyer_iri,
                (),
            )
        )
    policy = Policy(
        uid=base,
        type="Agreement",
        permissions=tuple(grants),
        prohibitions=tuple(prohibitions),
        assigner=terms.platform_iri,
        target=terms.version_iri,
    )
    document = serialise_policy(policy)
    parse_policy(document)  # what the platform signs, its own parser must read
    return document


def sign_agreement(document: dict[str, Any], key: Ed25519PrivateKey) -> str:
    return sign_document(document, key, AGREEMENT)


def agreement_file(document: dict[str, Any], jws: str, public_key_id: str) -> dict[str, Any]:
    """The downloadable agreement: readable JSON-LD, its JWS, and the key's id."""
    return {"agreement": document, "jws": jws, "public_key_id": public_key_id}


def verify_agreement_document(document: object, public_key_pem: bytes) -> dict[str, Any]:
    return verify_document(document, public_key_pem, AGREEMENT)
