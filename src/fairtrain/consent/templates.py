"""Ready-made terms a contributor starts from. The default protects: non-exclusive, no
sublicensing, a 12-month licence term, research and model training only, and the uses
people fear most prohibited outright (voice cloning, face recognition, biometric
identification, synthetic likeness, emotion recognition, political campaigning,
surveillance).

Templates build :class:`~fairtrain.consent.odrl.Policy` objects directly; the
contributor can change any of it afterwards (a new policy version).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from fairtrain.consent.odrl import Constraint, Policy, Rule
from fairtrain.errors import InvalidInput

__all__ = ["DEFAULT_TEMPLATE", "TEMPLATES", "Template", "build_template"]

PROTECTED = (
    "voice_cloning",
    "face_recognition",
    "biometric_identification",
    "synthetic_likeness",
    "emotion_recognition",  # biometric inference, restricted by the EU AI Act (Art. 5)
    "political_campaigning",
    "surveillance",
)
TERM_DAYS = 365  # "12 months"


@dataclass(frozen=True, slots=True)
class Template:
    key: str
    title: str
    summary: str
    build: Callable[[str, str | None, Decimal, str], Policy]


def _price_duty(uid: str, price: Decimal, currency: str) -> Rule:
    return Rule(
        uid=f"{uid}#duty-pay",
        kind="duty",
        actions=("compensate",),
        target=None,
        assignee=None,
        constraints=(Constraint("payAmount", "eq", (price,), currency, "duty.constraint[0]"),),
        path="permission[0].duty[0]",
    )


def _permission(
    uid: str, target: str | None, allowed: tuple[str, ...], duties: tuple[Rule, ...]
) -> Rule:
    return Rule(
        uid=f"{uid}#permission-use",
        kind="permission",
        actions=("use",),
        target=target,
        assignee=None,
        constraints=(
            Constraint("purpose", "isAnyOf", allowed, None, "permission[0].constraint[0]"),
            Constraint("elapsedTime", "lteq", (TERM_DAYS,), None, "permission[0].constraint[1]"),
        ),
        duties=duties,
        path="permission[0]",
    )


def _prohibitions(uid: str, target: str | None, banned: tuple[str, ...]) -> tuple[Rule, ...]:
    if not banned:
        return ()
    return (
        Rule(
            uid=f"{uid}#prohibition-purposes",
            kind="prohibition",
            actions=("use",),
            target=target,
            assignee=None,
            constraints=(
                Constraint("purpose", "isAnyOf", banned, None, "prohibition[0].constraint[0]"),
            ),
            path="prohibition[0]",
        ),
    )


def _default(uid: str, target: str | None, price: Decimal, currency: str) -> Policy:
    return Policy(
        uid=uid,
        type="Set",
        permissions=(
            _permission(
                uid, target, ("research_and_development",), (_price_duty(uid, price, currency),)
            ),
        ),
        prohibitions=_prohibitions(uid, target, PROTECTED),
        target=target,
    )


def _research_only(uid: str, target: str | None, price: Decimal, currency: str) -> Policy:
    return Policy(
        uid=uid,
        type="Set",
        permissions=(
            _permission(
                uid,
                target,
                ("academic_research", "non_commercial_research"),
                (_price_duty(uid, price, currency),),
            ),
        ),
        prohibitions=_prohibitions(uid, target, (*PROTECTED, "commercial_use", "marketing")),
        target=target,
    )


def _commercial_training(uid: str, target: str | None, price: Decimal, currency: str) -> Policy:
    return Policy(
        uid=uid,
        type="Set",
        permissions=(
            _permission(
                uid,
                target,
                ("model_training", "model_evaluation", "commercial_research", "commercial_use"),
                (_price_duty(uid, price, currency),),
            ),
        ),
        prohibitions=_prohibitions(uid, target, PROTECTED),
        target=target,
    )


def _open_attribution(uid: str, target: str | None, price: Decimal, currency: str) -> Policy:
    attribute = Rule(
        uid=f"{uid}#duty-attribute",
        kind="duty",
        actions=("attribute",),
        target=None,
        assignee=None,
        constraints=(),
        path="permission[0].duty[0]",
    )
    permission = _permission(uid, target, ("any",), (attribute,))
    return Policy(
        uid=uid,
        type="Set",
        permissions=(permission,),
        prohibitions=_prohibitions(
            uid, target, ("voice_cloning", "synthetic_likeness", "surveillance")
        ),
        target=target,
    )


TEMPLATES: dict[str, Template] = {
    t.key: t
    for t in (
        Template(
            "default",
            "Protective default",
            "Research and AI training only, 12 months, no voice cloning, face recognition, "
            "biometric identification, fake likeness, politics or surveillance.",
            _default,
        ),
        Template(
            "research_only",
            "Research only",
            "Universities and non-commercial research; no commercial use or marketing.",
            _research_only,
        ),
        Template(
            "commercial_training",
            "Commercial AI training",
            "Companies may train and evaluate AI and use it in products, with the protected "
            "uses still prohibited.",
            _commercial_training,
        ),
        Template(
            "open_attribution",
            "Open, with attribution",
            "Anyone, any purpose, free, if they credit you; no voice cloning, fake likeness "
            "or surveillance.",
            _open_attribution,
        ),
    )
}
DEFAULT_TEMPLATE = "default"


def build_template(
    key: str, *, uid: str, target: str | None, price: Decimal, currency: str
) -> Policy:
    template = TEMPLATES.get(key)
    if template is None:
        raise InvalidInput(
            f"There is no template '{key}'; choose one of {', '.join(sorted(TEMPLATES))}.",
            code="unknown_template",
        )
    return template.build(uid, target, price, currency)
