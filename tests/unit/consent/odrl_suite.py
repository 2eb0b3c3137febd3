"""The public ODRL evaluator test suite (SolidLab ODRL-Test-Suite), run against our evaluator.

Each ``test_cases/*.ttl`` names a policy, a request, a state of the world (sotw) and an
expected FORCE compliance report. The parts live in ``policies/``, ``requests/`` and
``sotw/`` (or, in principle, in the test-case file itself: both are searched, the case
file first). For one case this module:

- reads the policy with :func:`~fairtrain.consent.odrl.parse_turtle_policy`;
- turns the request's single rule (assignee, action, target) and the sotw (the current
  time, ``odrl:partOf`` memberships, duty reports with a deontic state) into a
  :class:`~fairtrain.consent.evaluate.Request` and world facts;
- runs :func:`~fairtrain.consent.evaluate.rule_reports` and sets our activation state
  beside the expected one for every rule.

Run it as a script for the pass count: ``python -m tests.unit.consent.odrl_suite``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from rdflib import Graph, Namespace, URIRef
from rdflib.namespace import DCTERMS, RDF

from fairtrain.consent.evaluate import Request, rule_reports
from fairtrain.consent.odrl import ODRL, parse_turtle_policy

__all__ = [
    "SUITE",
    "CaseResult",
    "SuiteCase",
    "available",
    "case_names",
    "load_case",
    "run_case",
]

SUITE = Path(os.environ.get("FAIRTRAIN_ODRL_SUITE", "/work/shared/data/odrl-test-suite"))

EX = Namespace("http://example.org/")
REPORT = Namespace("https://w3id.org/force/compliance-report#")
CURRENT_TIME = URIRef("http://example.com/request/currentTime")
ODRL_NS = Namespace(ODRL)
_POLICY_TYPES = tuple(ODRL_NS[k] for k in ("Policy", "Set", "Offer", "Agreement"))

# ODRL 2.1 deprecated "write" (then "writeTo") in favour of "modify"; the suite's
# requests still use it. Every other action is passed on as it is named.
_DEPRECATED_ACTIONS = {"write": "modify", "writeTo": "modify"}


@dataclass(frozen=True, slots=True)
class SuiteCase:
    name: str  # the test-case file's stem, e.g. "testcase-001-alice"
    title: str
    policy_text: str  # the Turtle document that holds the policy
    policy_iri: str
    request: Request
    part_of: dict[str, frozenset[str]]  # asset or party IRI -> its collections
    violated_duties: frozenset[str]
    expected: dict[str, bool]  # rule IRI -> active?


@dataclass(frozen=True, slots=True)
class CaseResult:
    case: SuiteCase
    actual: dict[str, bool]  # rule IRI -> active? (ours)
    reasons: dict[str, str | None]  # rule IRI -> why it is not active (ours)

    @property
    def passed(self) -> bool:
        return self.actual == self.case.expected


def available() -> bool:
    return (SUITE / "test_cases").is_dir()


def case_names() -> list[str]:
    return sorted(p.stem for p in (SUITE / "test_cases").glob("*.ttl"))


@dataclass(frozen=True, slots=True)
class _Document:
    path: Path
    text: str
    graph: Graph


@cache
def _document(path: Path) -> _Document:
    text = path.read_text(encoding="utf-8")
    return _Document(path, text, Graph().parse(data=text, format="turtle"))


@cache
def _parts() -> tuple[_Document, ...]:
    return tuple(
        _document(path)
        for folder in ("policies", "requests", "sotw")
        for path in sorted((SUITE / folder).glob("*.ttl"))
    )


def _holding(case: _Document, node: URIRef, kinds: tuple[URIRef, ...]) -> _Document:
    """The document in which ``node`` is described as one of ``kinds``."""
    for document in (case, *_parts()):
        if any((node, RDF.type, kind) in document.graph for kind in kinds):
            return document
    raise LookupError(f"{case.path.name}: no document describes {node}")


def _tail(iri: object) -> str:
    text = str(iri)
    return text[len(ODRL) :] if text.startswith(ODRL) else text


def _request(graph: Graph, node: URIRef, at: datetime) -> Request:
    rules = [
        rule
        for key in ("permission", "prohibition", "obligation")
        for rule in graph.objects(node, ODRL_NS[key])
    ]
    if len(rules) != 1:
        raise ValueError(f"request {node} must ask for exactly one rule, not {len(rules)}")
    rule = rules[0]
    actions = [_tail(a) for a in graph.objects(rule, ODRL_NS.action)]
    if len(actions) != 1:
        raise ValueError(f"request {node} must name exactly one action")
    assignee = graph.value(rule, ODRL_NS.assignee)
    target = graph.value(rule, ODRL_NS.target)
    return Request(
        action=_DEPRECATED_ACTIONS.get(actions[0], actions[0]),
        at=at,
        assignee=str(assignee) if assignee is not None else None,
        target=str(target) if target is not None else None,
    )


def _current_time(graph: Graph) -> datetime:
    issued = graph.value(CURRENT_TIME, DCTERMS.issued)
    if issued is None:
        raise ValueError("the state of the world does not give the current time")
    moment = datetime.fromisoformat(str(issued).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _memberships(graph: Graph) -> dict[str, frozenset[str]]:
    found: dict[str, set[str]] = {}
    for member, collection in graph.subject_objects(ODRL_NS.partOf):
        found.setdefault(str(member), set()).add(str(collection))
    return {member: frozenset(collections) for member, collections in found.items()}


def _violated(graph: Graph) -> frozenset[str]:
    return frozenset(
        str(graph.value(report, REPORT.rule))
        for report in graph.subjects(RDF.type, REPORT.DutyReport)
        if graph.value(report, REPORT.deonticState) == REPORT.Violated
    )


def _expected(graph: Graph, report: URIRef) -> dict[str, bool]:
    states = {REPORT.Active: True, REPORT.Inactive: False}
    expected = {}
    for rule_report in graph.objects(report, REPORT.ruleReport):
        state = graph.value(rule_report, REPORT.activationState)
        if state not in states:
            raise ValueError(f"rule report {rule_report} has no activation state")
        expected[str(graph.value(rule_report, REPORT.rule))] = states[state]
    return expected


def load_case(name: str) -> SuiteCase:
    case = _document(SUITE / "test_cases" / f"{name}.ttl")
    node = case.graph.value(None, RDF.type, EX.TestCase, any=False)
    if not isinstance(node, URIRef):
        raise ValueError(f"{name}: not exactly one ex:TestCase")

    def link(predicate: URIRef) -> URIRef:
        value = case.graph.value(node, predicate)
        if not isinstance(value, URIRef):
            raise ValueError(f"{name}: no {predicate}")
        return value

    policy_iri, request_iri, sotw_iri = link(EX.policy), link(EX.request), link(EX.sotw)
    policy = _holding(case, policy_iri, _POLICY_TYPES)
    request = _holding(case, request_iri, (ODRL_NS.Request,))
    sotw = _holding(case, sotw_iri, (EX.Sotw,)).graph
    return SuiteCase(
        name=name,
        title=str(case.graph.value(node, DCTERMS.title) or name),
        policy_text=policy.text,
        policy_iri=str(policy_iri),
        request=_request(request.graph, request_iri, _current_time(sotw)),
        part_of=_memberships(sotw),
        violated_duties=_violated(sotw),
        expected=_expected(case.graph, link(EX.expectedReport)),
    )


def run_case(case: SuiteCase) -> CaseResult:
    policy = parse_turtle_policy(case.policy_text, case.policy_iri)
    reports = rule_reports(
        policy, case.request, part_of=case.part_of, violated_duties=case.violated_duties
    )
    return CaseResult(
        case,
        actual={r.rule: r.active for r in reports},
        reasons={r.rule: r.failed for r in reports},
    )


def main() -> int:
    if not available():
        print(f"The ODRL test suite is not at {SUITE}.")
        return 2
    results = [run_case(load_case(name)) for name in case_names()]
    for result in results:
        if not result.passed:
            print(
                f"FAIL {result.case.name}: expected {result.case.expected}, "
                f"got {result.actual} ({result.reasons})"
            )
    passed = sum(r.passed for r in results)
    print(f"{passed} of {len(results)} ODRL test-suite cases pass")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
