"""Schemathesis against the served OpenAPI document: no generated request makes the admin API fail (5xx)."""

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings

from support.server import KaonServer


def test_no_generated_request_causes_a_server_error(kaon_server: KaonServer) -> None:
    schema = schemathesis.openapi.from_url(f"{kaon_server.url}/api/v1/openapi.json")
    headers = {"Authorization": f"Bearer {kaon_server.admin_token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 6, "the OpenAPI document must describe the admin API"
    failures: list[str] = []
    calls: list[int] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: Any) -> None:
            response = case.call(headers=headers)
            calls.append(response.status_code)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code} {response.text}")

        check()
    assert len(calls) > 5 * len(operations), "each operation must be exercised"
    assert not failures, failures
