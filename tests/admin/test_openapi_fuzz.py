"""Schemathesis against the served OpenAPI document of a real `kaon serve`, with a valid admin token: no
generated request (valid or not) makes the admin API fail (5xx), and every answer is one the document declares
(status, content type, headers, body schema)."""

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from support.server import KaonServer

EXAMPLES = 8  # per operation and generation mode: the whole run stays within ~30 s on 2 busy cores
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_generated_requests_get_documented_answers_and_no_server_error(kaon_server: KaonServer,
                                                                       mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(f"{kaon_server.url}/api/v1/openapi.json")
    headers = {"Authorization": f"Bearer {kaon_server.admin_token}"}
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results), "every operation of the document must be readable"
    assert len(operations) >= 6, "the OpenAPI document must describe the admin API"
    failures: dict[str, str] = {}
    calls: list[int] = []
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None,
                  derandomize=True)
        def check(case: Any) -> None:
            try:
                response = case.call_and_validate(headers=headers, checks=CHECKS)
            except (Failure, FailureGroup) as failure:  # one line per operation and kind of failure
                failures.setdefault(f"{case.method} {case.path}: {type(failure).__name__}",
                                    f"{case.formatted_path} {str(failure)[:400]}")
                return
            calls.append(response.status_code)

        try:
            check()
        except Unsatisfiable:  # nothing in this operation can be made invalid (no parameters, no body)
            assert mode is GenerationMode.NEGATIVE, operation.path
    assert len(calls) + len(failures) >= 2 * len(operations), "each operation must be exercised"
    assert not failures, "\n".join(f"{k}\n    {v}" for k, v in sorted(failures.items()))
