"""RudderStack's Python SDK (PyPI `rudder-sdk-python`, module `rudderstack.analytics`) against `kaon serve`.

It speaks the Segment spec to `{dataPlaneUrl}/v1/batch`, gzips its bodies, authenticates with the write key
as the Basic user, and puts identify traits in `context.traits` (not at the call's top level).
"""

from collections.abc import Iterator
from types import ModuleType

import pytest
import rudderstack.analytics as rudder_analytics
from rudderstack.analytics import Client

from support import server_sdks as sdks
from support.server import KaonServer
from support.stored import check_calls_stored, marker_stored, new_tag, now_ms, stored_batch, stored_by_message_id


@pytest.fixture
def rudder(kaon_server: KaonServer) -> Iterator[ModuleType]:
    """The SDK's documented module-level set-up: `write_key` and `dataPlaneUrl`, then call and flush."""
    for name, value in sdks.rudder_python_module(kaon_server.url, kaon_server.web_key).items():
        setattr(rudder_analytics, name, value)
    rudder_analytics.max_retries = 0
    try:
        yield rudder_analytics
    finally:
        if rudder_analytics.default_client is not None:
            rudder_analytics.shutdown()
        rudder_analytics.default_client = None


def test_every_call_is_stored(kaon_server: KaonServer, rudder: ModuleType) -> None:
    server = kaon_server
    tag = new_tag()
    user_id = f"ruser-{tag}"
    mid = {call: f"rudder-{tag}-{call}" for call in ("track", "identify", "page", "screen", "group", "alias")}
    before = now_ms()
    rudder.track(user_id, f"Signed Up {tag}", {"plan": "pro", "seats": 3}, message_id=mid["track"])
    rudder.identify(user_id, {"email": f"{tag}@example.com"}, message_id=mid["identify"])
    rudder.page(user_id, "Docs", f"Intro {tag}", {"url": "https://example.com/intro"}, message_id=mid["page"])
    rudder.screen(user_id, name=f"Home {tag}", properties={"tab": "feed"}, message_id=mid["screen"])
    rudder.group(user_id, f"group-{tag}", {"name": "Acme"}, message_id=mid["group"])
    rudder.alias(f"anon-{tag}", user_id, message_id=mid["alias"])
    rudder.flush()
    after = now_ms() + 1  # the SDK's timestamps have microseconds; Kaon rounds them to ms

    identify_ids = {f"{mid['identify']}:identity:customer_id", f"{mid['identify']}:identity:email"}
    wanted = {mid[c] for c in ("track", "page", "screen", "group", "alias")} | identify_ids
    stored = stored_by_message_id(server, wanted)

    check_calls_stored(server, stored, since_ms=before, until_ms=after, customer_id=user_id)

    track = stored[mid["track"]]
    assert (track["event_type"], track["event_name"]) == ("custom_event", f"Signed Up {tag}")
    assert track["data"]["custom_attributes"] == {"plan": "pro", "seats": 3}
    page = stored[mid["page"]]
    assert (page["event_type"], page["event_name"]) == ("screen_view", f"Docs Intro {tag}")
    assert page["data"]["custom_attributes"] == {"url": "https://example.com/intro"}
    screen = stored[mid["screen"]]
    assert (screen["event_type"], screen["event_name"]) == ("screen_view", f"Home {tag}")
    assert screen["data"]["custom_attributes"] == {"tab": "feed"}
    group = stored[mid["group"]]
    assert group["event_type"] == "group"
    assert (group["data"]["group_id"], group["data"]["traits"]) == (f"group-{tag}", {"name": "Acme"})
    alias = stored[mid["alias"]]
    assert alias["event_type"] == "alias"
    assert (alias["data"]["previous_id"], alias["data"]["user_id"]) == (f"anon-{tag}", user_id)

    email = stored[f"{mid['identify']}:identity:email"]
    assert email["event_type"] == "user_identity_change"
    assert email["data"]["new"] == {**email["data"]["new"], "identity_type": "email",
                                    "identity": f"{tag}@example.com"}
    context = stored_batch(server, email["batch_id"])
    assert context["user_identities"] == {"customer_id": user_id, "email": f"{tag}@example.com"}
    assert context["source_info"]["channel"] == "server_to_server"


def test_identify_traits_become_user_attributes(kaon_server: KaonServer) -> None:
    server = kaon_server
    tag = new_tag()
    client = Client(server.web_key, **sdks.rudder_python_client(server.url), sync_mode=True, max_retries=0)
    message_id = f"rudder-{tag}-traits"
    client.identify(f"ruser-{tag}", {"plan": "pro", "email": f"{tag}@example.com"}, message_id=message_id)

    stored = stored_by_message_id(server, {f"{message_id}:identity:customer_id"})
    context = stored_batch(server, stored[f"{message_id}:identity:customer_id"]["batch_id"])
    assert context.get("user_attributes", {}) == {"plan": "pro", "email": f"{tag}@example.com"}
    changes = [e for e in server.events() if e["source_message_id"] == f"{message_id}:attribute:plan"]
    assert [(e["event_type"], e["data"]["new"]) for e in changes] == [("user_attribute_change", "pro")]


def _refused_track(server: KaonServer, event: str) -> list[Exception]:
    """Track `event` with the server input's key as write key; the errors the SDK's on_error got."""
    errors: list[Exception] = []
    client = Client(server.server_key, **sdks.rudder_python_client(server.url), max_retries=0, upload_interval=0.05,
                    on_error=lambda error, _batch: errors.append(error))
    try:
        client.track("someone", event)
        client.flush()
    finally:
        client.shutdown()
    return errors


def test_server_input_key_is_refused_and_nothing_stored(kaon_server: KaonServer) -> None:
    server = kaon_server
    tag = new_tag()
    assert len(_refused_track(server, f"refused-{tag}")) == 1

    Client(server.web_key, **sdks.rudder_python_client(server.url), sync_mode=True).track(f"u-{tag}", f"marker-{tag}")
    marker_stored(server, tag)
    assert server.events_named(f"refused-{tag}") == []


def test_refusal_reaches_on_error_as_api_error_401(kaon_server: KaonServer) -> None:
    errors = _refused_track(kaon_server, f"refused-{new_tag()}")
    assert [type(e).__name__ for e in errors] == ["APIError"]
    assert [getattr(e, "status", None) for e in errors] == [401]
