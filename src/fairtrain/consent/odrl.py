"""W3C ODRL 2.2 policies: parse (JSON-LD or Turtle), validate with paths, serialise.

Any JSON-LD spelling of a policy (the ODRL context, full IRIs, other prefixes) is first
normalised by a real JSON-LD processor (pyld: expand, then compact against
:data:`CONTEXT`), and Turtle goes through rdflib to the same form; only then is the
structure walked, so every error can name the path of the offending node
(``permission[0].constraint[1].rightOperand``).

Contexts are never fetched: the ODRL context URL is served from the copy in this module
(the subset of https://www.w3.org/ns/odrl.jsonld this platform understands, with the
same term definitions), and any other remote context is refused.

The platform's profile adds one policy property, ``ft:exclusive``; sublicensing is the
ODRL action ``grantUse``.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pyld import jsonld

from fairtrain.errors import InvalidInput

__all__ = [
    "ACTIONS",
    "CONTEXT",
    "LEFT_OPERANDS",
    "ODRL",
    "ODRL_CONTEXT_URL",
    "OPERATORS",
    "PROFILE",
    "Constraint",
    "LogicalConstraint",
    "Policy",
    "PolicyError",
    "Rule",
    "parse_policy",
    "parse_turtle_policy",
    "serialise_policy",
]

ODRL = "http://www.w3.org/ns/odrl/2/"
ODRL_CONTEXT_URL = "http://www.w3.org/ns/odrl.jsonld"
FT_NS = "https://w3id.org/fairtrain/odrl#"
PROFILE = "https://w3id.org/fairtrain/odrl-profile"

# ODRL's action hierarchy (odrl:includedIn) for the actions a data licence uses:
# permission to "use" covers every action below it.
ACTIONS: dict[str, str | None] = {
    "use": None,
    "read": "use",
    "reproduce": "use",
    "derive": "use",
    "modify": "use",
    "distribute": "use",
    "aggregate": "use",
    "annotate": "use",
    "index": "use",
    # Sublicensing is never implied by "use": it must be granted by name.
    "grantUse": None,
    "compensate": None,  # a duty's action
    "attribute": None,
    "delete": None,
    "inform": None,
}
LEFT_OPERANDS = frozenset(
    {"purpose", "spatial", "dateTime", "elapsedTime", "recipient", "count", "payAmount"}
)
OPERATORS = frozenset(
    {"eq", "neq", "lt", "lteq", "gt", "gteq", "isA", "isAnyOf", "isNoneOf", "isPartOf"}
)
LOGICAL = ("and", "or", "xone", "andSequence")

_VOCAB = {"@type": "@vocab"}
CONTEXT: dict[str, Any] = {
    "odrl": ODRL,
    "ft": FT_NS,
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "dpv": "https://w3id.org/dpv#",
    "ai": "https://w3id.org/dpv/ai#",
    "ftp": "https://w3id.org/fairtrain/purpose#",
    "uid": "@id",
    "type": "@type",
    "Policy": "odrl:Policy",
    "Set": "odrl:Set",
    "Offer": "odrl:Offer",
    "Agreement": "odrl:Agreement",
    "Permission": "odrl:Permission",
    "Prohibition": "odrl:Prohibition",
    "Duty": "odrl:Duty",
    "profile": {"@type": "@id", "@id": "odrl:profile"},
    "permission": {"@type": "@id", "@id": "odrl:permission", "@container": "@set"},
    "prohibition": {"@type": "@id", "@id": "odrl:prohibition", "@container": "@set"},
    "obligation": {"@type": "@id", "@id": "odrl:obligation", "@container": "@set"},
    "duty": {"@type": "@id", "@id": "odrl:duty", "@container": "@set"},
    "action": {**_VOCAB, "@id": "odrl:action", "@container": "@set"},
    "target": {"@type": "@id", "@id": "odrl:target"},
    "assigner": {"@type": "@id", "@id": "odrl:assigner"},
    "assignee": {"@type": "@id", "@id": "odrl:assignee"},
    "constraint": {"@type": "@id", "@id": "odrl:constraint", "@container": "@set"},
    "refinement": {"@type": "@id", "@id": "odrl:refinement", "@container": "@set"},
    "leftOperand": {**_VOCAB, "@id": "odrl:leftOperand"},
    "operator": {**_VOCAB, "@id": "odrl:operator"},
    "rightOperand": {"@id": "odrl:rightOperand", "@container": "@set"},
    "rightOperandReference": {"@type": "@id", "@id": "odrl:rightOperandReference"},
    "unit": {"@type": "@id", "@id": "odrl:unit"},
    "dataType": {"@type": "@id", "@id": "odrl:dataType"},
    "and": {"@type": "@id", "@id": "odrl:and", "@container": "@list"},
    "or": {"@type": "@id", "@id": "odrl:or", "@container": "@list"},
    "xone": {"@type": "@id", "@id": "odrl:xone", "@container": "@list"},
    "andSequence": {"@type": "@id", "@id": "odrl:andSequence", "@container": "@list"},
    "exclusive": {"@id": "ft:exclusive", "@type": "xsd:boolean"},
    # Terms of the ODRL vocabulary used as values (actions, operands, operators).
    **{name: f"odrl:{name}" for name in ACTIONS},
    **{name: f"odrl:{name}" for name in LEFT_OPERANDS},
    **{name: f"odrl:{name}" for name in OPERATORS},
}
_ODRL_CONTEXT_DOCUMENT = {"@context": CONTEXT}


class PolicyError(InvalidInput):
    """A policy that cannot be used; ``path`` names where in the policy."""

    default_code = "invalid_policy"

    def __init__(self, path: str, detail: str, *, code: str = "invalid_policy") -> None:
        super().__init__(f"{path}: {detail}" if path else detail, code=code, pointer=path or None)
        self.path = path


def _loader(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    if url.rstrip("/") in (ODRL_CONTEXT_URL, "https://www.w3.org/ns/odrl.jsonld"):
        return {
            "contentType": "application/ld+json",
            "contextUrl": None,
            "documentUrl": url,
            "document": copy.deepcopy(_ODRL_CONTEXT_DOCUMENT),
        }
    raise PolicyError(
        "@context",
        f"the remote context {url!r} is not allowed; use {ODRL_CONTEXT_URL} or an inline one",
        code="invalid_jsonld",
    )


# --- the model ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Constraint:
    left: str  # an ODRL left operand, e.g. "purpose"
    operator: str
    values: tuple[Any, ...]  # purpose keys, country codes, datetimes, Decimals…
    unit: str | None = None  # payAmount's currency (ISO 4217)
    path: str = field(default="", compare=False)  # where it was read from, for errors


@dataclass(frozen=True, slots=True)
class LogicalConstraint:
    operator: str  # and | or | xone | andSequence
    items: tuple[Constraint | LogicalConstraint, ...]
    path: str = field(default="", compare=False)


Condition = Constraint | LogicalConstraint


@dataclass(frozen=True, slots=True)
class Rule:
    uid: str
    kind: str  # permission | prohibition | obligation | duty
    actions: tuple[str, ...]
    target: str | None
    assignee: str | None
    constraints: tuple[Condition, ...]  # all must hold
    duties: tuple[Rule, ...] = ()
    path: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class Policy:
    uid: str
    type: str  # Set | Offer | Agreement
    permissions: tuple[Rule, ...]
    prohibitions: tuple[Rule, ...]
    obligations: tuple[Rule, ...] = ()
    assigner: str | None = None
    target: str | None = None
    exclusive: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self.permissions + self.prohibitions + self.obligations

    @property
    def sublicensing(self) -> bool:
        return any("grantUse" in rule.actions for rule in self.permissions)


# --- parsing --------------------------------------------------------------------------


def _normalise(document: Any) -> dict[str, Any]:
    options = {"documentLoader": _loader}
    try:
        expanded = jsonld.expand(document, options)
        compacted: dict[str, Any] = jsonld.compact(expanded, {"@context": CONTEXT}, options)
    except PolicyError:
        raise
    except jsonld.JsonLdError as exc:
        cause: BaseException | None = exc
        while cause is not None:  # our loader's refusal, wrapped by pyld
            if isinstance(cause, PolicyError):
                raise cause from None
            cause = getattr(cause, "cause", None) or cause.__cause__ or cause.__context__
        raise PolicyError(
            "", f"this is not valid JSON-LD ({exc.type or exc})", code="invalid_jsonld"
        ) from None
    compacted.pop("@context", None)
    if "@graph" in compacted:
        graph = [n for n in compacted["@graph"] if isinstance(n, dict)]
        nodes = [n for n in graph if _is_policy(n)]
        if len(nodes) != 1:
            raise PolicyError(
                "", "the document must hold exactly one policy", code="invalid_jsonld"
            )
        # A flattened document: rules, constraints and duties are nodes of their own,
        # named by id from the policy; inline them so the walk sees one tree.
        by_id = {n["uid"]: n for n in graph if isinstance(n.get("uid"), str)}
        policy = nodes[0]
        return dict(_inline(policy, by_id, frozenset({policy.get("uid")}), node=True))
    return compacted


def _inline(value: Any, by_id: dict[str, Any], inside: frozenset[Any], node: bool = False) -> Any:
    """``value`` with every reference to a node of ``by_id`` replaced by that node.

    ``inside`` holds the ids being inlined, so a cycle stays a reference; ``node`` says
    ``value`` is a node itself rather than a reference to one.
    """
    if isinstance(value, list):
        return [_inline(v, by_id, inside) for v in value]
    reference = value.get("uid") if isinstance(value, dict) and set(value) == {"uid"} else value
    if not node and isinstance(reference, str) and reference in by_id and reference not in inside:
        return _inline(by_id[reference], by_id, inside | {reference}, node=True)
    if not isinstance(value, dict):
        return value
    out = {k: v if k in ("uid", "type") else _inline(v, by_id, inside) for k, v in value.items()}
    if str(out.get("uid", "")).startswith("_:"):
        del out["uid"]  # a blank node's label is no name: the rule gets a path-based uid
    return out


def _is_policy(node: Any) -> bool:
    kinds = node.get("type") if isinstance(node, dict) else None
    kinds = kinds if isinstance(kinds, list) else [kinds]
    return bool({"Policy", "Set", "Offer", "Agreement"} & set(kinds))


def parse_policy(document: str | bytes | dict[str, Any]) -> Policy:
    """A policy from ODRL JSON-LD (text or parsed); raises :class:`PolicyError`."""
    if isinstance(document, str | bytes):
        try:
            document = json.loads(document)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PolicyError("", f"this is not JSON ({exc})", code="invalid_jsonld") from None
    if not isinstance(document, dict):
        raise PolicyError("", "a policy is a JSON object", code="invalid_jsonld")
    if "@context" not in document:
        raise PolicyError("@context", f"missing; use {ODRL_CONTEXT_URL!r}", code="invalid_jsonld")
    contexts = document["@context"]
    for context in contexts if isinstance(contexts, list) else [contexts]:
        if isinstance(context, str):
            _loader(context)  # refuses anything but the ODRL context, before pyld sees it
    return _policy(_normalise(document))


def parse_turtle_policy(text: str, policy_iri: str | None = None) -> Policy:
    """A policy from Turtle (e.g. the ODRL test suite), through rdflib and JSON-LD.

    Turtle writes a policy's rules, constraints and duties as nodes of their own; they
    are inlined into the policy node (a JSON-LD tree, as if framed), so the same walk as
    for JSON-LD reads them and errors name the same paths. A logical constraint's
    operands may be an RDF list or repeated objects (``odrl:and <a>, <b>``): both are read
    as a list. A rule without an action is about every action, as in the ODRL test suite;
    the broadest action the platform knows is ``use``.
    """
    from rdflib import Graph, URIRef
    from rdflib.namespace import RDF

    graph = Graph()
    try:
        graph.parse(data=text, format="turtle")
    except Exception as exc:  # rdflib raises many types for bad syntax
        raise PolicyError("", f"this is not valid Turtle ({exc})", code="invalid_turtle") from None
    kinds = {URIRef(ODRL + k) for k in ("Policy", "Set", "Offer", "Agreement")}
    candidates = sorted({str(s) for k in kinds for s in graph.subjects(RDF.type, k)})
    if policy_iri is None:
        if len(candidates) != 1:
            raise PolicyError("", "the graph must hold exactly one policy", code="invalid_turtle")
        policy_iri = candidates[0]
    elif policy_iri not in candidates:
        raise PolicyError("", f"policy {policy_iri} not found", code="invalid_turtle")
    tree = _turtle_node(graph, URIRef(policy_iri), frozenset())
    node = _normalise(tree)
    if node.get("uid") != policy_iri:  # pragma: no cover - one tree in, one node out
        raise PolicyError("", f"policy {policy_iri} not found", code="invalid_turtle")
    return _policy(node)


_RULE_IRIS = frozenset(ODRL + k for k in ("permission", "prohibition", "obligation"))
_LOGICAL_IRIS = frozenset(ODRL + k for k in LOGICAL)


def _turtle_node(graph: Any, node: Any, inside: frozenset[Any]) -> dict[str, Any]:
    """One node of an rdflib graph as expanded JSON-LD, with the nodes it names inlined."""
    from rdflib import URIRef
    from rdflib.namespace import RDF

    out: dict[str, Any] = {"@id": str(node)} if isinstance(node, URIRef) else {}
    if node in inside:  # a cycle: refer to the node instead of inlining it again
        return out
    inside = inside | {node}
    objects: dict[str, list[Any]] = {}
    for predicate, value in graph.predicate_objects(node):
        if predicate == RDF.type:
            out.setdefault("@type", []).append(str(value))
        elif str(predicate) != ODRL + "uid":  # the node's own IRI already says it
            objects.setdefault(str(predicate), []).append(value)
    for predicate, values in objects.items():
        items = [_turtle_value(graph, v, inside) for v in sorted(values, key=str)]
        if predicate in _LOGICAL_IRIS and not (len(items) == 1 and "@list" in items[0]):
            items = [{"@list": items}]
        if predicate in _RULE_IRIS:
            for rule in items:
                rule.setdefault(ODRL + "action", [{"@id": ODRL + "use"}])
        out[predicate] = items
    return out


def _turtle_value(graph: Any, value: Any, inside: frozenset[Any]) -> dict[str, Any]:
    from rdflib import Literal
    from rdflib.collection import Collection
    from rdflib.namespace import RDF, XSD

    if isinstance(value, Literal):
        if value.datatype == XSD.boolean:
            return {"@value": bool(value.toPython()), "@type": str(XSD.boolean)}
        literal: dict[str, Any] = {"@value": str(value)}
        if value.datatype is not None:
            literal["@type"] = str(value.datatype)
        elif value.language:
            literal["@language"] = value.language
        return literal
    if value == RDF.nil or graph.value(value, RDF.first) is not None:
        return {"@list": [_turtle_value(graph, v, inside) for v in Collection(graph, value)]}
    return _turtle_node(graph, value, inside)


def _list(node: dict[str, Any], key: str) -> list[Any]:
    value = node.get(key, [])
    return value if isinstance(value, list) else [value]


def _iri_tail(value: str) -> str:
    for prefix in ("odrl:", ODRL):
        if value.startswith(prefix):
            return value[len(prefix) :]
    return value


def _policy(node: dict[str, Any]) -> Policy:
    kinds = [k for k in _list(node, "type") if k in ("Policy", "Set", "Offer", "Agreement")]
    if not kinds:
        raise PolicyError("type", "must be Set, Offer or Agreement (or Policy)")
    uid = node.get("uid")
    if not isinstance(uid, str) or not uid:
        raise PolicyError("uid", "every policy needs a uid (an IRI)")
    exclusive = node.get("exclusive", False)
    if not isinstance(exclusive, bool):
        raise PolicyError("exclusive", "must be true or false")
    target = node.get("target")
    assigner = node.get("assigner")
    permissions = tuple(
        _rule(r, "permission", f"permission[{i}]", target, uid)
        for i, r in enumerate(_list(node, "permission"))
    )
    prohibitions = tuple(
        _rule(r, "prohibition", f"prohibition[{i}]", target, uid)
        for i, r in enumerate(_list(node, "prohibition"))
    )
    obligations = tuple(
        _rule(r, "obligation", f"obligation[{i}]", target, uid)
        for i, r in enumerate(_list(node, "obligation"))
    )
    if not (permissions or prohibitions or obligations):
        raise PolicyError("", "a policy needs at least one permission, prohibition or obligation")
    return Policy(
        uid=uid,
        type=kinds[0],
        permissions=permissions,
        prohibitions=prohibitions,
        obligations=obligations,
        assigner=_id(assigner, "assigner"),
        target=_id(target, "target"),
        exclusive=exclusive,
    )


def _id(value: Any, path: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict):
        value = value.get("uid")
    if not isinstance(value, str):
        raise PolicyError(path, "must be an IRI")
    return value


def _rule(node: Any, kind: str, path: str, policy_target: Any, base: str) -> Rule:
    if not isinstance(node, dict):
        raise PolicyError(path, "must be an object")
    actions = []
    for index, action in enumerate(_list(node, "action")):
        name = action.get("rdf:value", action.get("uid")) if isinstance(action, dict) else action
        name = _iri_tail(str(name)) if name is not None else None
        if name not in ACTIONS:
            raise PolicyError(
                f"{path}.action[{index}]", f"unknown action {name!r}", code="unknown_action"
            )
        actions.append(name)
    if not actions:
        if kind != "permission":
            raise PolicyError(f"{path}.action", "every rule needs an action")
        actions = ["use"]  # "anyone may do anything" (as in the ODRL test suite)
    constraints = tuple(
        _condition(c, f"{path}.constraint[{i}]") for i, c in enumerate(_list(node, "constraint"))
    )
    duties = tuple(
        _rule(d, "duty", f"{path}.duty[{i}]", None, base) for i, d in enumerate(_list(node, "duty"))
    )
    return Rule(
        uid=str(
            node.get("uid") or f"{base}#{path.replace('[', '-').replace(']', '').replace('.', '-')}"
        ),
        kind=kind,
        actions=tuple(actions),
        target=_id(node.get("target", policy_target), f"{path}.target"),
        assignee=_id(node.get("assignee"), f"{path}.assignee"),
        constraints=constraints,
        duties=duties,
        path=path,
    )


def _condition(node: Any, path: str) -> Condition:
    if not isinstance(node, dict):
        raise PolicyError(path, "a constraint must be an object")
    for logical in LOGICAL:
        # Operands given as a set rather than a list compact to "odrl:and" (RDF written
        # as ``odrl:and <a>, <b>``); order matters only to andSequence.
        key = f"odrl:{logical}" if logical != "andSequence" else logical
        if logical in node or key in node:
            items = node[logical] if logical in node else _list(node, key)
            items = items.get("@list", items) if isinstance(items, dict) else items
            if not isinstance(items, list) or len(items) < 1:
                raise PolicyError(f"{path}.{logical}", "needs a list of constraints")
            return LogicalConstraint(
                logical,
                tuple(_condition(c, f"{path}.{logical}[{i}]") for i, c in enumerate(items)),
                path,
            )
    left = node.get("leftOperand")
    operator = node.get("operator")
    if not isinstance(left, str):
        raise PolicyError(f"{path}.leftOperand", "missing")
    left = _iri_tail(left)
    if left not in LEFT_OPERANDS:
        raise PolicyError(
            f"{path}.leftOperand", f"{left!r} is not supported here", code="unsupported_constraint"
        )
    if not isinstance(operator, str) or _iri_tail(operator) not in OPERATORS:
        raise PolicyError(f"{path}.operator", f"unknown operator {operator!r}")
    operator = _iri_tail(operator)
    raw = _list(node, "rightOperand")
    if not raw:
        raise PolicyError(f"{path}.rightOperand", "missing")
    values = tuple(_right(left, v, f"{path}.rightOperand") for v in raw)
    unit = node.get("unit")
    if left == "payAmount":
        tail = str(_literal(unit) or "")
        for separator in ("#", "/", ":"):
            tail = tail.rsplit(separator, 1)[-1]
        currency = tail.upper()
        if len(currency) != 3 or not currency.isalpha():
            raise PolicyError(f"{path}.unit", "payAmount needs a currency (ISO 4217, e.g. EUR)")
        unit = currency
    return Constraint(left, operator, values, unit if isinstance(unit, str) else None, path)


def _literal(value: Any) -> Any:
    if isinstance(value, dict):
        if "@value" in value:
            return value["@value"]
        if "uid" in value:
            return value["uid"]
        if "@id" in value:
            return value["@id"]
    return value


def _right(left: str, value: Any, path: str) -> Any:
    from fairtrain.consent import purposes

    value = _literal(value)
    if left == "purpose":
        try:
            return purposes.resolve(str(value)).key
        except InvalidInput as exc:
            raise PolicyError(path, exc.detail, code=exc.code) from None
    if left == "spatial":
        code = str(value).rsplit("/", 1)[-1].upper()
        if not (len(code) == 2 and code.isalpha()) and code not in ("EU", "EEA", "WORLD"):
            raise PolicyError(path, f"{value!r} is not an ISO 3166 country code, EU, EEA or WORLD")
        return code
    if left == "dateTime":
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise PolicyError(path, f"{value!r} is not an ISO 8601 date-time") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if left == "elapsedTime":
        return _duration_days(str(value), path)
    if left in ("count", "payAmount"):
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise PolicyError(path, f"{value!r} is not a number") from None
        if number < 0:
            raise PolicyError(path, "must not be negative")
        return number
    return str(value)  # recipient: a party IRI


def _duration_days(text: str, path: str) -> int:
    """ISO 8601 durations in whole days (P12M = 365, P1Y = 365, P30D = 30, P2W = 14)."""
    import re

    match = re.fullmatch(r"P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?", text)
    if not match or not any(match.groups()):
        raise PolicyError(
            path, f"{text!r} is not an ISO 8601 duration in years, months, weeks or days"
        )
    years, months, weeks, days = (int(g or 0) for g in match.groups())
    return years * 365 + (months * 365) // 12 + weeks * 7 + days


# --- serialising ----------------------------------------------------------------------


def _condition_json(condition: Condition) -> dict[str, Any]:
    if isinstance(condition, LogicalConstraint):
        return {condition.operator: [_condition_json(c) for c in condition.items]}
    values = [_value_json(condition.left, v) for v in condition.values]
    out: dict[str, Any] = {
        "leftOperand": condition.left,
        "operator": condition.operator,
        "rightOperand": values if len(values) != 1 else values[0],
    }
    if condition.unit:
        out["unit"] = f"https://www.iso.org/iso-4217-currency-codes#{condition.unit}"
    return out


def _value_json(left: str, value: Any) -> Any:
    from fairtrain.consent import purposes

    if left == "purpose":
        return {"@id": purposes.PURPOSES[value].iri}
    if left == "dateTime":
        return {
            "@value": value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "@type": "xsd:dateTime",
        }
    if left == "elapsedTime":
        return {"@value": f"P{value}D", "@type": "xsd:duration"}
    if isinstance(value, Decimal):
        return {"@value": str(value), "@type": "xsd:decimal"}
    return value


def _rule_json(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {"uid": rule.uid, "action": list(rule.actions)}
    if rule.target:
        out["target"] = rule.target
    if rule.assignee:
        out["assignee"] = rule.assignee
    if rule.constraints:
        out["constraint"] = [_condition_json(c) for c in rule.constraints]
    if rule.duties:
        out["duty"] = [_rule_json(d) for d in rule.duties]
    return out


def serialise_policy(policy: Policy) -> dict[str, Any]:
    """Compact ODRL JSON-LD with the ODRL context plus the platform's terms."""
    out: dict[str, Any] = {
        "@context": [
            ODRL_CONTEXT_URL,
            {
                "ft": FT_NS,
                "exclusive": {
                    "@id": "ft:exclusive",
                    "@type": "http://www.w3.org/2001/XMLSchema#boolean",
                },
            },
        ],
        "uid": policy.uid,
        "type": policy.type,
        "profile": PROFILE,
        "exclusive": policy.exclusive,
    }
    if policy.assigner:
        out["assigner"] = policy.assigner
    if policy.target:
        out["target"] = policy.target
    for key, rules in (
        ("permission", policy.permissions),
        ("prohibition", policy.prohibitions),
        ("obligation", policy.obligations),
    ):
        if rules:
            out[key] = [_rule_json(r) for r in rules]
    return out
