"""Segment's and RudderStack's Node server SDKs (npm, pinned) as real clients of a real `kaon serve`.

Each test runs one `node` process (support/node/server-sdk-driver.js) that builds the SDK's client from
the README's settings (support/server_sdks.py), makes its calls and flushes it. What Kaon stored is read
through the admin API; what the SDK said (callback errors, its error hook) comes back from the driver.
"""

from typing import Any

import pytest

from support import server_sdks as sdks
from support.node_sdk import Call, ClientRun, run_node_sdk
from support.server import KaonServer
from support.stored import check_calls_stored, marker_stored, new_tag, now_ms, stored_batch, stored_by_message_id

NODE_SDKS = pytest.mark.parametrize("sdk", sdks.NODE_SDKS, ids=lambda sdk: sdk.driver_name)


def every_call(tag: str) -> list[Call]:
    """identify (with an email), track (with revenue and currency), page, screen, group and alias."""
    user_id = f"nuser-{tag}"
    return [
        ("identify", {"userId": user_id, "traits": {"email": f"{tag}@example.com", "plan": "pro"},
                      "messageId": f"node-{tag}-identify"}),
        ("track", {"userId": user_id, "event": f"Clicked {tag}",
                   "properties": {"revenue": 9.5, "currency": "EUR", "button": "buy"},
                   "messageId": f"node-{tag}-track"}),
        ("page", {"userId": user_id, "category": "Docs", "name": f"Home {tag}",
                  "properties": {"url": "https://example.com/docs"}, "messageId": f"node-{tag}-page"}),
        ("screen", {"userId": user_id, "name": f"Settings {tag}", "properties": {"tab": "privacy"},
                    "messageId": f"node-{tag}-screen"}),
        ("group", {"userId": user_id, "groupId": f"group-{tag}", "traits": {"name": "Acme", "employees": 50},
                   "messageId": f"node-{tag}-group"}),
        ("alias", {"userId": user_id, "previousId": f"anon-{tag}", "messageId": f"node-{tag}-alias"}),
    ]


@NODE_SDKS
def test_every_call_is_stored(kaon_server: KaonServer, sdk: sdks.NodeSdk) -> None:
    server = kaon_server
    tag = new_tag()
    user_id = f"nuser-{tag}"
    before = now_ms()
    [report] = run_node_sdk(sdk, ClientRun(sdks.node_arguments(sdk, server.url, server.web_key), every_call(tag)))
    after = now_ms() + 1  # the SDKs' timestamps are ISO strings with ms; Kaon keeps ms
    assert [c["error"] for c in report["calls"]] == [None] * 6, report
    assert report["errors"] == [], report
    assert report["statuses"] == ([200] if sdk is sdks.SEGMENT_NODE else []), report  # one batch; Rudder: failures only

    mid = {c["method"]: c["messageId"] for c in report["calls"]}
    identify = mid["identify"]
    identify_ids = {f"{identify}:identity:customer_id", f"{identify}:identity:email",
                    f"{identify}:attribute:email", f"{identify}:attribute:plan"}
    wanted = {mid[c] for c in ("track", "page", "screen", "group", "alias")} | identify_ids
    stored = stored_by_message_id(server, wanted)

    check_calls_stored(server, stored, since_ms=before, until_ms=after, customer_id=user_id)

    track = stored[mid["track"]]
    assert (track["event_type"], track["event_name"]) == ("custom_event", f"Clicked {tag}")
    assert track["data"]["custom_attributes"] == {"revenue": 9.5, "currency": "EUR", "button": "buy"}
    page = stored[mid["page"]]
    assert (page["event_type"], page["event_name"]) == ("screen_view", f"Docs Home {tag}")
    # Segment's SDK also copies the category into the properties (analytics-core's page()).
    copied = {"category": "Docs"} if sdk is sdks.SEGMENT_NODE else {}
    assert page["data"]["custom_attributes"] == {"url": "https://example.com/docs", **copied}
    screen = stored[mid["screen"]]
    assert (screen["event_type"], screen["event_name"]) == ("screen_view", f"Settings {tag}")
    assert screen["data"]["custom_attributes"] == {"tab": "privacy"}
    group = stored[mid["group"]]
    assert group["event_type"] == "group"
    assert (group["data"]["group_id"], group["data"]["traits"]) == (f"group-{tag}", {"name": "Acme", "employees": 50})
    alias = stored[mid["alias"]]
    assert alias["event_type"] == "alias"
    assert (alias["data"]["previous_id"], alias["data"]["user_id"]) == (f"anon-{tag}", user_id)

    email = stored[f"{identify}:identity:email"]
    assert email["event_type"] == "user_identity_change"
    assert (email["data"]["new"]["identity_type"], email["data"]["new"]["identity"]) == (
        "email", f"{tag}@example.com")
    assert stored[f"{identify}:identity:customer_id"]["data"]["new"]["identity"] == user_id
    plan = stored[f"{identify}:attribute:plan"]
    assert plan["event_type"] == "user_attribute_change"
    assert (plan["data"]["user_attribute_name"], plan["data"]["new"]) == ("plan", "pro")
    context = stored_batch(server, plan["batch_id"])
    assert context["user_identities"] == {"customer_id": user_id, "email": f"{tag}@example.com"}
    assert context["user_attributes"] == {"email": f"{tag}@example.com", "plan": "pro"}
    assert context["source_info"]["channel"] == "server_to_server"


def refused_then_marker(sdk: sdks.NodeSdk, server: KaonServer, tag: str) -> list[dict[str, Any]]:
    """A client with the server input's key as write key tracks `refused-{tag}`; then one with the web key
    tracks `marker-{tag}` (stored after the refused call was handled)."""
    refused: Call = ("track", {"userId": f"u-{tag}", "event": f"refused-{tag}", "messageId": f"refused-{tag}"})
    marker: Call = ("track", {"userId": f"u-{tag}", "event": f"marker-{tag}", "messageId": f"marker-{tag}"})
    return run_node_sdk(sdk, ClientRun(sdks.node_arguments(sdk, server.url, server.server_key), [refused]),
                        ClientRun(sdks.node_arguments(sdk, server.url, server.web_key), [marker]))


@NODE_SDKS
def test_server_input_key_as_write_key_is_refused_with_401(kaon_server: KaonServer, sdk: sdks.NodeSdk) -> None:
    server = kaon_server
    tag = new_tag()
    refused, good = refused_then_marker(sdk, server, tag)

    # What the SDK said: Segment's rejects the batch ("[401] Unauthorized" to the call's callback and its
    # "error" event); RudderStack's gives the upload's axios error (status 401) to errorHandler and the callback.
    assert refused["statuses"] == [401], refused
    [error] = refused["errors"]
    [call] = refused["calls"]
    if sdk is sdks.SEGMENT_NODE:
        assert (error["code"], error["message"]) == ("delivery_failure", "[401] Unauthorized"), refused
        assert call["error"]["message"] == "[401] Unauthorized", refused
    else:
        assert (error["code"], error["status"]) == ("upload_failed", 401), refused
        assert call["error"]["status"] == 401, refused

    assert good["statuses"] == ([200] if sdk is sdks.SEGMENT_NODE else []), good
    assert [c["error"] for c in good["calls"]] == [None], good
    marker_stored(server, tag)
    assert server.events_named(f"refused-{tag}") == []
