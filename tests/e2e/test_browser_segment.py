"""Segment's analytics-next (`@segment/analytics-next` from npm, its UMD build) in Debian's Chromium against
`kaon serve`, from a page on another origin, with no Segment host reachable.

Three ways a site sets it up, each with the README's exact options (`support.browser_sdks`): settings given
in the page (`cdnSettings`), settings fetched from Kaon (`cdnURL`), and batched delivery. Each test makes
the five calls and checks what Kaon stored and what the browser saw.
"""

import json
from collections.abc import Iterator
from typing import Any

import pytest

from support import browser_sdks as sdks
from support.pages import StaticServer
from support.sdk_session import (
    SdkPage,
    check_stored,
    check_traffic,
    rate_limited_key,
    retried,
    sdk_page,
    stored_calls,
    the_five_calls,
)
from support.server import KaonServer
from support.stored import new_tag

SHORT_PATHS = {"/v1/p", "/v1/t", "/v1/i", "/v1/g", "/v1/a"}


@pytest.fixture(scope="module")
def pages() -> Iterator[StaticServer]:
    server = StaticServer(sdks.SEGMENT.files("/segment/")).start()
    yield server
    server.stop()


@pytest.fixture
def segment_page(offline_browser: Any, pages: StaticServer, kaon_server: KaonServer) -> Iterator[SdkPage]:
    with sdk_page(offline_browser, kaon_server, pages.url("/segment/index.html")) as page:
        yield page


def load_and_call(page: SdkPage, settings: dict[str, Any], options: dict[str, Any], tag: str) -> list[str]:
    assert page.evaluate("([s, o]) => kaonSdk.load(s, o)", settings, options) is True, page.describe()
    return [page.evaluate("([m, a]) => kaonSdk.call(m, a)", method, args) for method, args in the_five_calls(tag)]


def sent_bodies(exchanges: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every call the SDK sent, unbatched."""
    out: list[dict[str, Any]] = []
    for x in exchanges:
        if x["method"] == "POST":
            body = json.loads(x["request_body"])
            out.extend(body.get("batch", [body]))
    return out


def check_alias_as_sent(kaon_server: KaonServer, exchanges: list[dict[str, Any]], tag: str) -> None:
    """analytics-next sets an alias's userId to the identified user; Kaon keeps both ids as sent."""
    sent = next(b for b in sent_bodies(exchanges) if b["type"] == "alias")
    stored = next(e for e in kaon_server.events() if e["event_type"] == "alias" and tag in json.dumps(e))
    assert (stored["data"]["previous_id"], stored["data"]["user_id"]) == (sent["previousId"], sent["userId"])


def test_standard_delivery_with_settings_in_the_page(segment_page: SdkPage, kaon_server: KaonServer) -> None:
    tag = new_tag()
    message_ids = load_and_call(segment_page, sdks.segment_settings(kaon_server.url, kaon_server.web_key), {}, tag)
    found = stored_calls(kaon_server, tag, segment_page)
    check_stored(found, tag, kaon_server.input("web")["id"])
    stored_ids = {e["source_message_id"].split(":")[0] for events in found.values() for e in events}
    assert stored_ids == set(message_ids)  # analytics-next's messageId is Kaon's source_message_id
    exchanges = check_traffic(segment_page, SHORT_PATHS)
    assert all(x["method"] == "POST" for x in exchanges), segment_page.describe()  # no settings fetch
    check_alias_as_sent(kaon_server, exchanges, tag)


def test_standard_delivery_with_settings_from_kaon(segment_page: SdkPage, kaon_server: KaonServer) -> None:
    tag = new_tag()
    load_and_call(segment_page, sdks.segment_cdn_url(kaon_server.url, kaon_server.web_key), {}, tag)
    check_stored(stored_calls(kaon_server, tag, segment_page), tag, kaon_server.input("web")["id"])
    settings_path = f"/v1/projects/{kaon_server.web_key}/settings"
    exchanges = check_traffic(segment_page, SHORT_PATHS | {settings_path})
    fetched = [x for x in exchanges if x["method"] == "GET"]
    assert [x["url"] for x in fetched] == [f"{kaon_server.url}{settings_path}"], segment_page.describe()
    settings = json.loads(fetched[0]["response_body"])
    assert settings["integrations"]["Segment.io"]["apiHost"] == f"{sdks.host(kaon_server.url)}/v1"


def test_batched_delivery(segment_page: SdkPage, kaon_server: KaonServer) -> None:
    tag = new_tag()
    settings = sdks.segment_settings(kaon_server.url, kaon_server.web_key)
    load_and_call(segment_page, settings, sdks.segment_batching(), tag)
    check_stored(stored_calls(kaon_server, tag, segment_page), tag, kaon_server.input("web")["id"])
    exchanges = check_traffic(segment_page, {"/v1/b"})
    assert {x["url"] for x in exchanges} == {f"{kaon_server.url}/v1/b"}, segment_page.describe()
    assert {b["type"] for b in sent_bodies(exchanges)} == {"page", "track", "identify", "group", "alias"}
    check_alias_as_sent(kaon_server, exchanges, tag)


def test_batched_delivery_with_settings_from_kaon(segment_page: SdkPage, kaon_server: KaonServer) -> None:
    """The page's `integrations` option is merged over the settings Kaon serves, so batching needs no settings
    in the page."""
    tag = new_tag()
    load_and_call(segment_page, sdks.segment_cdn_url(kaon_server.url, kaon_server.web_key), sdks.segment_batching(),
                  tag)
    check_stored(stored_calls(kaon_server, tag, segment_page), tag, kaon_server.input("web")["id"])
    settings_path = f"/v1/projects/{kaon_server.web_key}/settings"
    exchanges = check_traffic(segment_page, {"/v1/b", settings_path})
    posted = [x for x in exchanges if x["method"] == "POST"]
    assert {x["url"] for x in posted} == {f"{kaon_server.url}/v1/b"}, segment_page.describe()
    assert {b["type"] for b in sent_bodies(posted)} == {"page", "track", "identify", "group", "alias"}


def test_a_retry_reaches_kaon_with_x_retry_count(segment_page: SdkPage, kaon_server: KaonServer) -> None:
    """An input limited to 2 requests/s answers some of the five calls 429 (`Retry-After`, exposed to the page);
    analytics-next retries them with `X-Retry-Count`, which the CORS policy must allow for them to arrive."""
    key = rate_limited_key(kaon_server)
    tag = new_tag()
    load_and_call(segment_page, sdks.segment_settings(kaon_server.url, key), {}, tag)
    retry = retried(segment_page, "/v1/", "x-retry-count")
    assert int(retry["headers"]["x-retry-count"]) >= 1 and retry["origin"] == segment_page.origin
    assert any(x["status"] == 429 for x in segment_page.log.exchanges), segment_page.describe()
    limited = next(i["id"] for i in kaon_server.admin("GET", "/inputs").json()["inputs"] if i["key"] == key)
    check_stored(stored_calls(kaon_server, tag, segment_page), tag, limited)
    assert segment_page.log.cors_errors() == [], segment_page.describe()
