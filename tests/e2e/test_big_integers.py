"""Integers outside 64 bits, anywhere a value goes: refused at the door, never acknowledged and then dropped.

A real `kaon serve` with a connection to a capture destination, through the mParticle and Segment doors.
"""

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from support.capture import VendorCapture
from support.server import KaonServer
from support.waiting import eventually

BIG = 10**30


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KaonServer]:
    running = KaonServer(tmp_path_factory.mktemp("bigint")).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def hook(server: KaonServer) -> Iterator[VendorCapture]:
    capture = VendorCapture().start()
    output = server.admin("POST", "/outputs", json={"name": "hook", "destination": "webhook",
                                                     "settings": {"base_url": f"{capture.url}/hook"}})
    assert output.status_code == 201, output.text
    for platform in ("server", "web"):
        connection = server.admin("POST", "/connections", json={"input_id": server.input(platform)["id"],
                                                                "output_id": output.json()["id"]})
        assert connection.status_code == 201, connection.text
    yield capture
    capture.stop()


def event(name: str, **data: Any) -> dict[str, Any]:
    return {"event_type": "custom_event", "data": {"event_name": name, "custom_event_type": "other", **data}}


def batch(*events: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"environment": "production", "user_identities": {"customer_id": f"c-{uuid.uuid4().hex[:6]}"},
            "events": list(events), **fields}


def delivered(capture: VendorCapture) -> set[str]:
    return {r.json()["data"]["event_name"] for r in capture.requests() if r.json().get("data")}


def mparticle(server: KaonServer, body: Any, path: str = "/v2/events") -> httpx.Response:
    return httpx.post(f"{server.url}{path}", content=json.dumps(body), headers=server.basic(), timeout=30)


def segment(server: KaonServer, kind: str, body: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/{kind}", content=json.dumps(body), timeout=30,
                      headers={**server.basic(server.web_key, ""), "content-type": "application/json"})


def product(**attributes: Any) -> dict[str, Any]:
    return {"event_type": "commerce_event", "data": {"product_action": {
        "action": "purchase", "products": [{"id": "p", "name": "P", "price": 1, "attributes": attributes}]}}}


MPARTICLE_CASES = {
    "user_attributes": (batch(event("x"), user_attributes={"big": BIG}), "$.user_attributes.big"),
    "custom_attributes": (batch(event("x", custom_attributes={"big": BIG})), "$.events[0].data.custom_attributes.big"),
    "negative": (batch(event("x", custom_attributes={"big": -BIG})), "$.events[0].data.custom_attributes.big"),
    "list": (batch(event("x"), user_attributes={"l": [1, BIG]}), "$.user_attributes.l[1]"),
    "uint64": (batch(event("x"), user_attributes={"u": 2**64 - 1}), "$.user_attributes.u"),
    "product": (batch(product(big=BIG)), "$.events[0].data.product_action.products[0].attributes.big"),
    "timestamp": (batch(event("x", timestamp_unixtime_ms=BIG)), "$.events[0].data.timestamp_unixtime_ms"),
}


@pytest.mark.parametrize("case", sorted(MPARTICLE_CASES))
def test_mparticle_door_refuses_integers_outside_64_bits(server: KaonServer, hook: VendorCapture, case: str) -> None:
    body, where = MPARTICLE_CASES[case]
    answer = mparticle(server, body)
    assert answer.status_code == 400, answer.text
    error = answer.json()["errors"][0]
    assert error["code"] in {"INTEGER_OUT_OF_RANGE", "INVALID_SHAPE"} and where in error["message"], error
    bulk = mparticle(server, [batch(event("fine")), body], "/v2/bulkevents")
    assert bulk.status_code == 400 and where.replace("$", "$[1]", 1) in bulk.text, bulk.text


def test_attribute_values_at_the_64_bit_edges_are_stored_and_forwarded(server: KaonServer,
                                                                       hook: VendorCapture) -> None:
    tag = uuid.uuid4().hex[:6]
    edges = {"max": 2**63 - 1, "min": -(2**63), "float": 1e30}
    body = batch(event(f"edge-{tag}", custom_attributes=edges), user_attributes=edges)
    assert mparticle(server, body).status_code == 202
    eventually(lambda: f"edge-{tag}" in delivered(hook), timeout=30, what="the edge event delivered")
    sent = next(r.json() for r in hook.requests() if r.json().get("data", {}).get("event_name") == f"edge-{tag}")
    assert sent["data"]["custom_attributes"] == edges


def test_a_huge_timestamp_inside_64_bits_is_not_dropped(server: KaonServer, hook: VendorCapture) -> None:
    """Accepted (202) means stored and forwarded, even when the time itself cannot be read as a date."""
    tag = uuid.uuid4().hex[:6]
    for i, ms in enumerate((2**63 - 1, -(2**63), 10**17)):
        body = batch(event(f"time-{tag}-{i}", timestamp_unixtime_ms=ms), timestamp_unixtime_ms=ms)
        assert mparticle(server, body).status_code == 202
    wanted = {f"time-{tag}-{i}" for i in range(3)}
    eventually(lambda: wanted <= delivered(hook), timeout=30, what="every huge-timestamp event delivered")


SEGMENT_CASES = {
    "properties": ("track", {"event": "x", "properties": {"big": BIG}}, "$.properties.big"),
    "nested": ("track", {"event": "x", "properties": {"a": {"b": [0, BIG]}}}, "$.properties.a.b[1]"),
    "traits": ("identify", {"traits": {"big": -BIG}}, "$.traits.big"),
    "context": ("track", {"event": "x", "context": {"traits": {"big": BIG}}}, "$.context.traits.big"),
}


@pytest.mark.parametrize("case", sorted(SEGMENT_CASES))
def test_segment_door_refuses_integers_outside_64_bits(server: KaonServer, hook: VendorCapture, case: str) -> None:
    kind, call, where = SEGMENT_CASES[case]
    answer = segment(server, kind, {"userId": "u1", **call})
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "INTEGER_OUT_OF_RANGE" and where in answer.json()["message"], answer.text
    many = segment(server, "batch", {"batch": [{"type": "track", "event": "fine", "userId": "u1"},
                                               {"type": kind, "userId": "u1", **call}]})
    assert many.status_code == 400 and where.replace("$", "$.batch[1]", 1) in many.text, many.text


def test_segment_values_at_the_edges_are_forwarded(server: KaonServer, hook: VendorCapture) -> None:
    tag = uuid.uuid4().hex[:6]
    answer = segment(server, "track", {"userId": "u2", "event": f"seg-{tag}",
                                       "properties": {"max": 2**63 - 1, "n": {"min": -(2**63)}}})
    assert answer.status_code == 200, answer.text
    eventually(lambda: f"seg-{tag}" in delivered(hook), timeout=30, what="the Segment edge event delivered")
