"""Against a real `kaon serve`: identity changes replace the old value, and unreadable times are warned about.

- An mParticle `user_identity_change` with `old` (raw `/v2/events`; the Python SDK has no class for it) and an
  IDSync modify with `old_value` leave the profile with only the new email; the old one resolves to nobody.
- An unreadable Segment `timestamp` and an absurd mParticle `timestamp_unixtime_ms` are accepted, the event
  takes the receive time, and an `INVALID_TIMESTAMP` warning is listed and counted.
"""

import json
import uuid
from collections import Counter
from typing import Any

import httpx

from support.server import KaonServer
from support.stored import new_tag, now_ms
from support.waiting import eventually


def upload(server: KaonServer, batch: dict[str, Any]) -> None:
    response = httpx.post(f"{server.url}/v2/events", json=batch, headers=server.basic(), timeout=30)
    assert response.status_code == 202, response.text


def emails(profile: dict[str, Any]) -> set[str]:
    return {i["value"] for i in profile["user_identities"] if i["type"] == "email"}


def email_change(new: str, old: str) -> dict[str, Any]:
    return {"event_type": "user_identity_change", "data": {
        "new": {"identity_type": "email", "identity": new}, "old": {"identity_type": "email", "identity": old},
        "source_message_id": str(uuid.uuid4())}}


def test_an_identity_change_event_with_old_replaces_the_email(kaon_server: KaonServer) -> None:
    server, tag = kaon_server, new_tag()
    customer, old, new = f"c-{tag}", f"a-{tag}@x.io", f"b-{tag}@x.io"
    upload(server, {"environment": "production", "user_identities": {"customerid": customer, "email": old},
                    "events": []})
    profile = eventually(lambda: server.profile("customer_id", customer), timeout=20, what="the profile")
    assert emails(profile) == {old}
    upload(server, {"environment": "production", "user_identities": {"customerid": customer},
                    "events": [email_change(new, old)]})

    def replaced() -> dict[str, Any] | None:
        found = server.profile("customer_id", customer)
        return found if found and emails(found) == {new} else None

    assert eventually(replaced, timeout=20, what="only the new email")["mpid"] == profile["mpid"]
    assert server.profile("email", old) is None
    assert server.profile("email", new) is not None


def test_idsync_modify_replaces_the_email(kaon_server: KaonServer) -> None:
    server, tag = kaon_server, new_tag()
    old, new = f"m-{tag}@x.io", f"n-{tag}@x.io"

    def call(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = httpx.post(f"{server.url}{path}", content=json.dumps(body), timeout=30,
                              headers={"Content-Type": "application/json", **server.basic()})
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    mpid = call("/v1/identify", {"environment": "production",
                                 "known_identities": {"customerid": f"c-{tag}", "email": old}})["mpid"]
    call(f"/v1/{mpid}/modify", {"environment": "production", "identity_changes": [
        {"identity_type": "customerid", "old_value": f"c-{tag}", "new_value": f"c-{tag}"},
        {"identity_type": "email", "old_value": old, "new_value": new}]})
    profile = server.profile("email", new)
    assert profile is not None and profile["mpid"] == mpid
    assert emails(profile) == {new}
    assert server.profile("email", old) is None
    searched = httpx.post(f"{server.url}/v1/search", timeout=30, headers=server.basic(),
                          json={"environment": "production", "known_identities": {"email": old}})
    assert searched.status_code == 404, searched.text


def warnings_about(server: KaonServer, needle: str) -> list[dict[str, Any]]:
    return [r for r in server.listed("/rejections", "rejections")
            if r["code"] == "INVALID_TIMESTAMP" and needle in r["message"]]


def invalid_timestamp_totals(server: KaonServer) -> Counter[str]:
    totals: Counter[str] = Counter()
    for row in server.listed("/stats", "stats"):
        totals.update(row["invalid_timestamps"])
    return totals


def test_unreadable_times_take_the_receive_time_and_are_listed_and_counted(kaon_server: KaonServer) -> None:
    server, tag = kaon_server, new_tag()
    before = now_ms()
    response = httpx.post(f"{server.url}/v1/track", timeout=30, auth=(server.web_key, ""), json={
        "userId": f"u-{tag}", "event": f"segment-{tag}", "messageId": f"m-{tag}", "timestamp": f"soon-{tag}"})
    assert (response.status_code, response.json()) == (200, {"success": True})
    upload(server, {"environment": "production", "user_identities": {"customerid": f"c-{tag}"}, "events": [
        {"event_type": "custom_event", "data": {"event_name": f"mparticle-{tag}", "custom_event_type": "other",
                                                "timestamp_unixtime_ms": -1, "source_message_id": f"p-{tag}"}}]})
    after = now_ms()

    (segment,) = eventually(lambda: warnings_about(server, f"soon-{tag}"), timeout=20, what="the Segment warning")
    assert segment["status"] == 200 and segment["input_id"] == server.input("web")["id"]
    assert segment["message"] == (f"`timestamp` \"soon-{tag}\" is not a readable time - at `$.timestamp`; the event"
                                  f" time is the receive time (message id m-{tag})")
    (mparticle,) = eventually(lambda: warnings_about(server, f"p-{tag}"), timeout=20, what="the mParticle warning")
    assert mparticle["status"] == 202 and mparticle["input_id"] == server.input("server")["id"]
    assert "`timestamp_unixtime_ms` -1 is not a readable time" in mparticle["message"]
    for name in (f"segment-{tag}", f"mparticle-{tag}"):
        (event,) = server.events_named(name)
        assert before <= event["timestamp_unixtime_ms"] <= after  # the receive time
    totals = invalid_timestamp_totals(server)
    assert totals["timestamp"] >= 1 and totals["timestamp_unixtime_ms"] >= 1
    assert all(not r["rejected"].get("INVALID_TIMESTAMP") for r in server.listed("/stats", "stats"))
