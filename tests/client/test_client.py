"""The public client: the request it makes and the batch body each call produces."""

import base64
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from client.capture import CaptureServer
from client.conftest import KEY, SECRET
from kaon.client import ClientClosedError, Kaon, Product
from kaon.errors import ConfigError

Build = Callable[..., Kaon]


def only_batch(capture: CaptureServer) -> dict[str, Any]:
    [batch] = capture.batches()
    return batch


def is_uuid4(value: str) -> bool:
    return uuid.UUID(value).version == 4


def test_posts_json_array_to_bulkevents_with_basic_auth(a_client: Build, capture: CaptureServer) -> None:
    client = a_client()
    client.log_event("Clicked")
    assert client.flush(timeout=10).sent == 1

    [request] = capture.requests
    assert (request.method, request.path) == ("POST", "/v2/bulkevents")
    expected = base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    assert request.headers["content-type"] == "application/json"
    assert isinstance(request.json(), list)


def test_custom_event_shape(a_client: Build, capture: CaptureServer) -> None:
    client = a_client()
    before = int(time.time() * 1000)
    client.log_event("Clicked", {"button": "home", "count": 2, "ok": True, "none": None},
                     event_type="navigation")
    client.flush(timeout=10)

    batch = only_batch(capture)
    assert batch["environment"] == "production"
    assert is_uuid4(batch["source_request_id"])
    [event] = batch["events"]
    assert event["event_type"] == "custom_event"
    data = event["data"]
    assert data["event_name"] == "Clicked"
    assert data["custom_event_type"] == "navigation"
    assert data["custom_attributes"] == {"button": "home", "count": 2, "ok": True, "none": None}
    assert before <= data["timestamp_unixtime_ms"] <= int(time.time() * 1000)
    assert is_uuid4(data["source_message_id"])


def test_custom_event_type_defaults_to_other(a_client: Build, capture: CaptureServer) -> None:
    client = a_client(environment="development")
    client.log_event("Plain")
    client.flush(timeout=10)

    batch = only_batch(capture)
    assert batch["environment"] == "development"
    assert batch["events"][0]["data"]["custom_event_type"] == "other"
    assert "custom_attributes" not in batch["events"][0]["data"]


def test_screen_view_shape(a_client: Build, capture: CaptureServer) -> None:
    client = a_client()
    client.log_screen("Home", {"referrer": "email"})
    client.flush(timeout=10)

    [event] = only_batch(capture)["events"]
    assert event["event_type"] == "screen_view"
    assert event["data"]["screen_name"] == "Home"
    assert event["data"]["custom_attributes"] == {"referrer": "email"}
    assert is_uuid4(event["data"]["source_message_id"])
    assert isinstance(event["data"]["timestamp_unixtime_ms"], int)


def test_commerce_event_shape(a_client: Build, capture: CaptureServer) -> None:
    client = a_client()
    client.log_commerce(
        "purchase",
        [Product("sku-1", "Mug", 12.5, quantity=2, brand="Kaon", category="kitchen", variant="blue",
                 position=1, custom_attributes={"color": "blue"}),
         Product("sku-2", "Tea", 3.0)],
        transaction_id="T-1", total_amount=28.0, tax_amount=0.5, shipping_amount=2.0,
        currency_code="EUR", attributes={"coupon": "none"},
    )
    client.flush(timeout=10)

    [event] = only_batch(capture)["events"]
    assert event["event_type"] == "commerce_event"
    data = event["data"]
    assert data["currency_code"] == "EUR"
    assert data["custom_attributes"] == {"coupon": "none"}
    assert is_uuid4(data["source_message_id"])
    action = data["product_action"]
    assert {k: action[k] for k in ("action", "transaction_id", "total_amount", "tax_amount",
                                   "shipping_amount")} == {
        "action": "purchase", "transaction_id": "T-1", "total_amount": 28.0, "tax_amount": 0.5,
        "shipping_amount": 2.0}
    assert action["products"] == [
        {"id": "sku-1", "name": "Mug", "price": 12.5, "quantity": 2, "brand": "Kaon",
         "category": "kitchen", "variant": "blue", "position": 1, "custom_attributes": {"color": "blue"}},
        {"id": "sku-2", "name": "Tea", "price": 3.0, "quantity": 1},
    ]


def test_identify_attaches_identities_to_later_events(a_client: Build, capture: CaptureServer) -> None:
    client = a_client()
    client.log_event("Before")
    client.identify(customer_id="c-1", email="a@example.com", mpid=8675309, other="o-1",
                    mobile_number="+15550100")
    client.log_event("After")
    client.log_screen("Home")
    client.flush(timeout=10)

    anonymous, known = capture.batches()
    assert "user_identities" not in anonymous
    assert "mpid" not in anonymous
    assert [e["data"]["event_name"] for e in anonymous["events"]] == ["Before"]
    assert known["mpid"] == 8675309
    assert known["user_identities"] == {"customer_id": "c-1", "email": "a@example.com", "other": "o-1",
                                        "mobile_number": "+15550100"}
    assert [e["event_type"] for e in known["events"]] == ["custom_event", "screen_view"]


def test_each_user_gets_its_own_batch(a_client: Build, capture: CaptureServer) -> None:
    client = a_client()
    for user in ("u1", "u2", "u1"):
        client.identify(customer_id=user)
        client.log_event(f"by {user}")
    client.flush(timeout=10)

    [request] = capture.requests
    by_user = {b["user_identities"]["customer_id"]: [e["data"]["event_name"] for e in b["events"]]
               for b in request.json()}
    assert by_user == {"u1": ["by u1", "by u1"], "u2": ["by u2"]}


def test_user_attribute_changes(a_client: Build, capture: CaptureServer) -> None:
    client = a_client()
    client.identify(customer_id="c-1")
    client.set_user_attribute("tier", "gold")
    client.set_user_attribute("tier", "platinum")
    client.set_user_attribute("foods", ["pizza", "sushi"])
    client.set_user_attribute("color", "red")
    client.remove_user_attribute("color")
    client.remove_user_attribute("legacy")
    client.flush(timeout=10)

    batch = only_batch(capture)
    assert batch["user_attributes"] == {"tier": "platinum", "foods": ["pizza", "sushi"]}
    assert batch["deleted_user_attributes"] == ["color", "legacy"]
    changes = [e["data"] for e in batch["events"]]
    assert all(e["event_type"] == "user_attribute_change" for e in batch["events"])
    assert [(c["user_attribute_name"], c["new"], c["old"], c["deleted"], c["is_new_attribute"])
            for c in changes] == [
        ("tier", "gold", None, False, True),
        ("tier", "platinum", "gold", False, False),
        ("foods", ["pizza", "sushi"], None, False, True),
        ("color", "red", None, False, True),
        ("color", None, "red", True, False),
        ("legacy", None, None, True, True),
    ]
    assert all(is_uuid4(c["source_message_id"]) for c in changes)


def test_attributes_travel_with_the_users_next_batch(a_client: Build, capture: CaptureServer) -> None:
    client = a_client()
    client.identify(customer_id="c-1")
    client.set_user_attribute("tier", "gold")
    client.flush(timeout=10)
    client.log_event("Later")
    client.identify(customer_id="c-2")
    client.log_event("Other user")
    client.flush(timeout=10)

    _, later, other = capture.batches()
    assert later["user_attributes"] == {"tier": "gold"}
    assert "deleted_user_attributes" not in later
    assert "user_attributes" not in other  # a different user starts with none known


@pytest.mark.parametrize(("call", "error"), [
    (lambda c: c.identify(customerid="x"), ValueError),
    (lambda c: c.identify(customer_id=""), TypeError),
    (lambda c: c.log_event("x", {"nested": {"a": 1}}), TypeError),
    (lambda c: c.log_event("x", event_type="bogus"), ValueError),
    (lambda c: c.log_event(""), ValueError),
    (lambda c: c.log_commerce("buy", []), ValueError),
    (lambda c: c.set_user_attribute("tags", ["a", 1]), TypeError),
])
def test_bad_calls_raise_at_the_call(a_client: Build, call: Callable[[Kaon], None], error: type) -> None:
    with pytest.raises(error):
        call(a_client())


@pytest.mark.parametrize("settings", [
    {"environment": "staging"}, {"batch_size": 0}, {"max_retries": -1}, {"flush_interval": 0},
])
def test_bad_settings_are_config_errors(settings: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        Kaon(KEY, SECRET, **settings)


def test_logging_after_close_raises(a_client: Build) -> None:
    client = a_client()
    client.close()
    with pytest.raises(ClientClosedError):
        client.log_event("late")
