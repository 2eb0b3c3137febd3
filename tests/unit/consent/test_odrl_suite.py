"""Our rule activation states against the public ODRL evaluator test suite, case by case.

The suite (SolidLab ODRL-Test-Suite) is data outside the repository; without it the
module is skipped. See :mod:`tests.unit.consent.odrl_suite` for how a case is read.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from tests.unit.consent.odrl_suite import (
    SUITE,
    available,
    case_names,
    load_case,
    run_case,
)

if not available():
    pytest.skip(f"the ODRL test suite is not at {SUITE}", allow_module_level=True)

# Cases whose features the platform does not support, with the precise reason. Strict:
# a case listed here that starts to pass fails the run, so the list cannot go stale.
UNSUPPORTED: dict[str, str] = {}

NAMES = case_names()


def _param(name: str) -> object:
    if name in UNSUPPORTED:
        return pytest.param(
            name, marks=pytest.mark.xfail(strict=True, reason=UNSUPPORTED[name]), id=name
        )
    return pytest.param(name, id=name)


def test_the_whole_suite_is_here() -> None:
    assert len(NAMES) == 68, "the suite has 68 cases; a partial copy would hide failures"


@pytest.mark.parametrize("name", [_param(n) for n in NAMES])
def test_activation_states_match_the_expected_report(name: str) -> None:
    result = run_case(load_case(name))
    assert result.case.expected, f"{name}: the expected report names no rule"
    assert result.actual == result.case.expected, (
        f"{name} ({result.case.title}): why not active: {result.reasons}"
    )


def test_the_pass_count() -> None:
    results = [run_case(load_case(n)) for n in NAMES]
    passed = [r.case.name for r in results if r.passed]
    print(f"{len(passed)} of {len(results)} ODRL test-suite cases pass")
    assert len(passed) == len(results) - len(UNSUPPORTED)


@pytest.mark.parametrize(
    ("name", "forget"),
    [
        ("testcase-051-alice", "part_of"),  # alice is in the party collection
        ("testcase-053-alice-read-x", "part_of"),  # x is in the asset collection
        ("testcase-061-violated", "violated_duties"),  # the compensate duty was violated
    ],
)
def test_the_state_of_the_world_decides_these_cases(name: str, forget: str) -> None:
    case = load_case(name)
    without = replace(case, **{forget: {} if forget == "part_of" else frozenset()})
    assert run_case(case).passed
    assert not run_case(without).passed


def test_a_deprecated_write_is_read_as_modify() -> None:
    assert load_case("testcase-003-bob-write-y").request.action == "modify"
