"""API fuzzing with schemathesis against the app's own OpenAPI, as each kind of caller.

Checks: no server error ever, status codes, content types, headers and bodies conform to
the documented schema. (Positive-data acceptance is not checked: schema-valid input such
as a weak password is correctly refused by the domain rules.)
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from tests.factories import sign_up_buyer, sign_up_contributor

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def callers(client) -> dict[str, dict[str, str]]:  # type: ignore[no-untyped-def]
    """Headers of each kind of caller: nobody, a contributor's session, a buyer's API key."""
    contributor = sign_up_contributor(client)
    token = client.cookies.get("ft_session")
    client.cookies.clear()
    admin = sign_up_buyer(client)
    key = client.post(
        f"/api/v1/orgs/{admin.org_id}/api-keys",
        json={"name": "fuzz", "scopes": ["catalog:read"]},
        headers=admin.headers(),
    ).json()["secret"]
    client.cookies.clear()
    return {
        "anonymous": {},
        "contributor": {"Cookie": f"ft_session={token}", "X-CSRF-Token": contributor.csrf},
        "buyer_key": {"Authorization": f"Bearer {key}"},
    }


MAX_EXAMPLES_PER_OPERATION = 15


def test_api_conforms_and_never_errors(app, callers: dict[str, dict[str, str]]) -> None:  # type: ignore[no-untyped-def]
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case) -> None:  # type: ignore[no-untyped-def]
            for headers in callers.values():
                case.call_and_validate(headers=headers, checks=CHECKS)

        fuzz()
