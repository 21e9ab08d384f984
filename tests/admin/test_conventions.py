"""The admin API's one convention (docs/api/conventions.md), checked over the OpenAPI document a real server serves.

It walks every path, operation, parameter, request body and 2xx response schema (resolving `$ref`s) and fails on a
time-like name not spelled `*_unixtime_ms`, an array at the top of a response, a list without `next_cursor`, a GET
list without `limit` and `cursor`, offset paging, and a response without a declared model.
"""

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from support.server import KaonServer

# Routes that speak a vendor's wire format keep the vendor's shapes (each listed; a new one must be added here).
VENDOR_ROUTES = {
    "/userprofile/v1/resolve/{org_id}/{account_id}/{workspace_id}": "mParticle Profile API",
    "/userprofile/v1/{org_id}/{account_id}/{workspace_id}/{mpid}": "mParticle Profile API",
    "/opendsr/v3/requests/": "OpenDSR v3",
    "/opendsr/v3/requests": "OpenDSR v3",
    "/opendsr/v3/requests/{request_id}": "OpenDSR v3",
    "/opendsr/v3/discovery/": "OpenDSR v3",
    "/opendsr/v3/cert.pem": "OpenDSR v3",
    "/opendsr/v3/results/{request_id}": "OpenDSR v3",
}
# Parameters (query or request body) that take a point in time: unix ms, ISO-8601, or a duration meaning "that long
# ago" (`6h`). A response never uses these names: it says `*_unixtime_ms`.
POINT_PARAMETERS = {"since", "until"}
# Arrays inside one resource, bounded by that resource (they are parts of it, not lists to page through).
BOUNDED_ARRAYS = {
    ("Profile", "user_identities"): "at most one value per identity type (or the type's configured limit)",
    ("Profile", "device_identities"): "at most one value per device identity type (or its limit)",
    ("IdentitySettings", "priority"): "identity types, a closed set",
    ("IdentitySettings", "unique_types"): "identity types, a closed set",
    ("IdentitySettings", "login_types"): "identity types, a closed set",
    ("IdentitySettings", "blocked_values"): "the operator's own short list",
    ("ConsentSettings", "gdpr_purposes"): "the operator's own short list",
    ("Plan", "data_plan_versions"): "mParticle's plan document holds its versions",
    ("DataPoint", "seen"): "one entry per input and environment",
    ("DataPoint", "attributes"): "the attribute names of one data point",
    ("Connection", "forwarding"): "the connection's own rules, written by the operator",
    ("Connection", "transformations"): "the connection's own rules, written by the operator",
    ("Trace", "connections"): "the connections of the event's input",
    ("Validation", "results"): "the findings for the one batch validated",
    ("QuarantineReplay", "ids"): "the ids the request named (at most 10,000)",
    ("Unmerge", "restored"): "the two profiles of the merge",
    ("Profile", "audience_memberships"): "one per audience of the workspace the profile is in",
    ("ConnectionTrace", "changes"): "the profile's newest 100 membership changes of one audience",
    ("ConnectionTrace", "deliveries"): "the connection's newest 100 deliveries for the profile",
}
TIME_LIKE = re.compile(r"(_ms|_at)$|time|^(since|until)$")
LIMIT_MAX = 1000


def is_time_like(name: str) -> bool:
    return bool(TIME_LIKE.search(name))


def spelled_well(name: str, *, parameter: bool) -> bool:
    """`*_unixtime_ms` for points, `*_duration_ms` for durations; the point parameters where one is taken."""
    return name.endswith(("_unixtime_ms", "_duration_ms")) or (parameter and name in POINT_PARAMETERS)


class Document:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def resolve(self, schema: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
        """(component name, schema) with `$ref`s followed."""
        name = None
        while "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            schema = self.document["components"]["schemas"][name]
        return name, schema

    def fields(self, schema: dict[str, Any], where: str, seen: frozenset[str] = frozenset()
               ) -> Iterator[tuple[str, str]]:
        """(where, property name) for every scalar property reachable from `schema`, nested models included.

        Objects and maps are walked into but not named: a point in time is a number or a string, so a map such as
        `invalid_timestamps` (counts by field) is not a time whatever its name says.
        """
        name, schema = self.resolve(schema)
        if name is not None:
            if name in seen:
                return
            seen = seen | {name}
        for key in ("anyOf", "oneOf", "allOf"):
            for part in schema.get(key, []):
                yield from self.fields(part, where, seen)
        if "items" in schema:
            yield from self.fields(schema["items"], f"{where}[]", seen)
        if isinstance(schema.get("additionalProperties"), dict):
            yield from self.fields(schema["additionalProperties"], f"{where}{{}}", seen)
        for prop, sub in schema.get("properties", {}).items():
            if not self.is_object(sub):
                yield f"{where}.{prop}", prop
            yield from self.fields(sub, f"{where}.{prop}", seen)

    def is_object(self, schema: dict[str, Any]) -> bool:
        _, schema = self.resolve(schema)
        parts = schema.get("anyOf", [])
        if parts:
            return all(self.is_object(s) or self.resolve(s)[1].get("type") == "null" for s in parts)
        return schema.get("type") == "object" or "properties" in schema

    def is_array(self, schema: dict[str, Any]) -> bool:
        _, schema = self.resolve(schema)
        return schema.get("type") == "array" or any(self.is_array(s) for s in schema.get("anyOf", []))

    def operations(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for path, item in self.document["paths"].items():
            for method, operation in item.items():
                if method in {"get", "put", "post", "patch", "delete"}:
                    yield path, method, operation


def json_schema(response: dict[str, Any]) -> dict[str, Any] | None:
    found: dict[str, Any] | None = response.get("content", {}).get("application/json", {}).get("schema")
    return found


def violations(document: dict[str, Any]) -> list[str]:
    """Every departure from the convention, one line each."""
    doc = Document(document)
    out: list[str] = []
    for path, method, op in doc.operations():
        if path in VENDOR_ROUTES:
            continue
        at = f"{method.upper()} {path}"
        if not path.startswith("/api/v1/"):
            out.append(f"{at}: outside /api/v1 and not a listed vendor route")
        params = {p["name"]: p for p in op.get("parameters", []) if p["in"] == "query"}
        for name in params:
            if is_time_like(name) and not spelled_well(name, parameter=True):
                out.append(f"{at}: query parameter `{name}` is time-like but not a point parameter or *_unixtime_ms")
        if "offset" in params:
            out.append(f"{at}: offset paging (use `limit` + `cursor`)")
        body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        if body is not None:
            for where, name in doc.fields(body, "body"):
                if is_time_like(name) and not spelled_well(name, parameter=True):
                    out.append(f"{at}: request field `{where}` is time-like but not spelled *_unixtime_ms")
        for status, response in op["responses"].items():
            if not status.startswith("2"):
                continue
            schema = json_schema(response)
            if schema is None:
                out.append(f"{at} {status}: no JSON response model")
                continue
            name, top = doc.resolve(schema)
            if doc.is_array(top):
                out.append(f"{at} {status}: a bare array at the top level")
                continue
            if not top.get("properties"):
                out.append(f"{at} {status}: the response model declares no fields")
            for where, field in doc.fields(schema, "response"):
                if is_time_like(field) and not spelled_well(field, parameter=False):
                    out.append(f"{at} {status}: response field `{where}` is time-like but not spelled *_unixtime_ms")
            arrays = [p for p, sub in top.get("properties", {}).items()
                      if doc.is_array(sub) and (name, p) not in BOUNDED_ARRAYS]
            if not arrays:
                continue
            if "next_cursor" not in top.get("properties", {}):
                out.append(f"{at} {status}: list `{arrays[0]}` without `next_cursor`")
            if method == "get" and not {"limit", "cursor"} <= set(params):
                out.append(f"{at}: list `{arrays[0]}` without `limit` and `cursor` parameters")
            if "limit" in params and params["limit"].get("schema", {}).get("maximum") != LIMIT_MAX:
                out.append(f"{at}: `limit` is not bounded by {LIMIT_MAX}")
    return out


@pytest.fixture(scope="module")
def document(kaon_server: KaonServer) -> dict[str, Any]:
    response = httpx.get(f"{kaon_server.url}/api/v1/openapi.json", timeout=30)
    assert response.status_code == 200
    found: dict[str, Any] = response.json()
    return found


def test_every_admin_route_follows_the_convention(document: dict[str, Any]) -> None:
    found = violations(document)
    assert not found, "\n".join(found)


def test_the_vendor_exemptions_are_routes_that_exist(document: dict[str, Any]) -> None:
    assert set(VENDOR_ROUTES) <= set(document["paths"])


def test_the_bounded_arrays_name_fields_that_exist(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for model, field in BOUNDED_ARRAYS:
        assert field in schemas.get(model, {}).get("properties", {}), f"{model}.{field} is not in the document"


def test_the_walk_finds_what_it_must() -> None:
    """The checker itself: each rule fires on a document that breaks it."""
    bad = {
        "paths": {
            "/api/v1/things": {"get": {
                "parameters": [{"name": "created_ms", "in": "query"}, {"name": "offset", "in": "query"}],
                "responses": {"200": {"content": {"application/json": {"schema": {
                    "type": "object", "properties": {"things": {"type": "array",
                                                                "items": {"$ref": "#/components/schemas/Thing"}}}}}}}},
            }},
            "/api/v1/bare": {"get": {"responses": {"200": {"content": {"application/json": {"schema": {
                "type": "array", "items": {}}}}}}}},
            "/api/v1/open": {"post": {"responses": {"201": {"content": {"application/json": {"schema": {
                "type": "object", "additionalProperties": True}}}}}}},
            "/vendor/x": {"get": {"responses": {"200": {"description": "no body"}}}},
        },
        "components": {"schemas": {"Thing": {"type": "object", "properties": {
            "hour_start_ms": {"type": "integer"}, "nested": {"$ref": "#/components/schemas/Nested"}}},
            "Nested": {"type": "object", "properties": {
                "updated_at": {"type": "string"},
                "bad_timestamps": {"type": "object", "additionalProperties": {"type": "integer"}}}}}},
    }
    found = "\n".join(violations(bad))
    assert "bad_timestamps" not in found  # a map of counts by field is not a time
    bad["components"]["schemas"]["Nested"]["properties"]["bad_timestamps"] = {"type": "integer"}
    assert "response.things[].nested.bad_timestamps" in "\n".join(violations(bad))
    for expected in ("query parameter `created_ms`", "offset paging",
                     "response field `response.things[].hour_start_ms`", "response.things[].nested.updated_at",
                     "list `things` without `next_cursor`",
                     "without `limit` and `cursor`", "GET /api/v1/bare 200: a bare array",
                     "POST /api/v1/open 201: the response model declares no fields",
                     "GET /vendor/x: outside /api/v1", "GET /vendor/x 200: no JSON response model"):
        assert expected in found, f"{expected!r} not reported in:\n{found}"
