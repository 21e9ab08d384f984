"""`GET /api/v1/events` and a profile's events: every filter, filters combined with the cursor across pages."""

import functools
import uuid
from typing import Any

import httpx
import pytest

from support.server import KaonServer
from support.waiting import eventually


def accepted(server: KaonServer, body: dict[str, Any], key: str, secret: str) -> bool:
    return httpx.post(f"{server.url}/v2/events", json=body, headers=server.basic(key, secret),
                      timeout=30).status_code == 202


@pytest.fixture(scope="module")
def sent(kaon_server: KaonServer) -> dict[str, Any]:
    """Two customers' events of two names and types, through two inputs."""
    server = kaon_server
    tag = uuid.uuid4().hex[:8]
    feed = server.admin("POST", "/inputs", json={"name": f"feed-{tag}", "platform": "server"}).json()
    customers = {"ann": f"ann-{tag}", "bob": f"bob-{tag}"}
    for who, key, secret in (("ann", server.server_key, server.server_secret), ("bob", feed["key"], feed["secret"])):
        body = {"environment": "development", "user_identities": {"customer_id": customers[who]}, "events": [
            *({"event_type": "custom_event", "data": {"event_name": f"Buy {tag}"}} for _ in range(3)),
            {"event_type": "screen_view", "data": {"screen_name": f"Home {tag}"}},
        ]}
        # A new input's key reaches the doors' cache within seconds.
        eventually(functools.partial(accepted, server, body, key, secret), timeout=10, what="the batch accepted")
    eventually(lambda: len(server.events(since="1h", event_name=f"Buy {tag}")) == 6, timeout=30, what="stored")
    mpids = {who: (server.profile("customer_id", c) or {})["mpid"] for who, c in customers.items()}
    return {"tag": tag, "feed": feed["id"], "server": server.input("server")["id"], "mpids": mpids}


def names(server: KaonServer, path: str = "/events", **filters: Any) -> list[tuple[str, str, str]]:
    return [(e["event_name"], e["event_type"], e["mpid"]) for e in server.listed(path, "events", limit=1, **filters)]


def test_each_filter_narrows_the_list_and_holds_across_pages(kaon_server: KaonServer, sent: dict[str, Any]) -> None:
    tag, ann, bob = sent["tag"], sent["mpids"]["ann"], sent["mpids"]["bob"]
    buy, home = f"Buy {tag}", f"Home {tag}"
    assert names(kaon_server, event_name=buy) == [(buy, "custom_event", bob)] * 3 + [(buy, "custom_event", ann)] * 3
    assert names(kaon_server, event_name=home, event_type="screen_view") == [
        (home, "screen_view", bob), (home, "screen_view", ann)]
    assert names(kaon_server, mpid=ann) == [(home, "screen_view", ann)] + [(buy, "custom_event", ann)] * 3
    assert names(kaon_server, input_id=sent["feed"]) == [(home, "screen_view", bob)] + [(buy, "custom_event", bob)] * 3
    assert names(kaon_server, input_id=sent["server"], event_name=home) == [(home, "screen_view", ann)]
    assert names(kaon_server, event_name=buy, event_type="screen_view") == []
    assert names(kaon_server, event_name=buy, since="1h", mpid=bob) == [(buy, "custom_event", bob)] * 3


def test_a_profiles_events_take_the_same_filters(kaon_server: KaonServer, sent: dict[str, Any]) -> None:
    tag, ann = sent["tag"], sent["mpids"]["ann"]
    path = f"/profiles/{ann}/events"
    assert names(kaon_server, path) == [(f"Home {tag}", "screen_view", ann)] + [(f"Buy {tag}", "custom_event", ann)] * 3
    assert names(kaon_server, path, event_type="custom_event") == [(f"Buy {tag}", "custom_event", ann)] * 3
    refused = kaon_server.admin("GET", path, params={"mpid": ann})
    assert refused.status_code == 400 and refused.json()["errors"][0]["code"] == "UNKNOWN_PARAMETER"


def test_an_unknown_event_type_is_refused_by_name(kaon_server: KaonServer) -> None:
    response = kaon_server.admin("GET", "/events", params={"event_type": "purchase"})
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["code"] == "UNKNOWN_EVENT_TYPE" and "'purchase'" in error["message"]


def test_an_mpid_out_of_range_is_invalid(kaon_server: KaonServer) -> None:
    for mpid in (2**63, "abc"):
        response = kaon_server.admin("GET", "/events", params={"mpid": mpid})
        assert response.status_code == 400 and response.json()["errors"][0]["code"] == "INVALID_REQUEST"


def test_each_event_shows_its_batch_context(kaon_server: KaonServer) -> None:
    """A Segment call's web context (page, campaign, library, locale, ...) and an mParticle batch's device and
    application info, on the event listing and on the profile's events."""
    server, tag = kaon_server, uuid.uuid4().hex[:8]
    context = {"page": {"url": f"https://shop.example/{tag}", "referrer": "https://news.example/", "title": "Shoes"},
               "campaign": {"source": "news", "medium": "email", "name": "spring", "custom": "x"},
               "ip": "198.51.100.4", "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/121.0",
               "locale": "de-DE", "timezone": "Europe/Berlin", "library": {"name": "analytics.js", "version": "2.1"},
               "traits": {"plan": "pro"}}
    call = {"userId": f"ctx-{tag}", "event": f"Viewed {tag}", "context": context}
    assert httpx.post(f"{server.url}/v1/track", json=call, auth=(server.web_key, ""), timeout=30).status_code == 200
    mparticle = {"environment": "development", "user_identities": {"customer_id": f"mp-{tag}"},
                 "device_info": {"platform": "iOS", "os_version": "17.1"},
                 "application_info": {"application_version": "3.2"},
                 "events": [{"event_type": "custom_event", "data": {"event_name": f"Opened {tag}"}}]}
    assert accepted(server, mparticle, server.server_key, server.server_secret)
    eventually(lambda: len(server.events(since="1h", event_name=f"Viewed {tag}")) == 1
               and len(server.events(since="1h", event_name=f"Opened {tag}")) == 1, timeout=30, what="stored")
    [viewed] = server.events(since="1h", event_name=f"Viewed {tag}")
    shown = viewed["context"]
    assert shown["page"] == {"url": f"https://shop.example/{tag}", "referrer": "https://news.example/",
                             "title": "Shoes"}
    assert shown["campaign"] == {"name": "spring", "source": "news", "medium": "email", "other": {"custom": "x"}}
    assert shown["library"] == {"name": "analytics.js", "version": "2.1"}
    assert (shown["ip"], shown["locale"], shown["timezone"], shown["traits"]) == (
        "198.51.100.4", "de-DE", "Europe/Berlin", {"plan": "pro"})
    assert shown["device_info"]["http_header_user_agent"] == context["userAgent"]
    [opened] = server.events(since="1h", event_name=f"Opened {tag}")
    assert opened["context"]["device_info"] == {"platform": "iOS", "os_version": "17.1"}
    assert opened["context"]["application_info"] == {"application_version": "3.2"}
    [on_profile] = server.listed(f"/profiles/{viewed['mpid']}/events", "events")
    assert on_profile["context"] == shown
