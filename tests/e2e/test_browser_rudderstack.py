"""RudderStack's JS SDKs from npm in Debian's Chromium against `kaon serve`, from a page on another origin,
with no RudderStack host reachable: v3 (`@rudderstack/analytics-js`, its `bundled` build, since the default
build loads even its XHR queue plugin from RudderStack's CDN) by XHR, XHR batches and beacon, and v2
(`rudder-sdk-js`) by XHR and beacon.

Each SDK fetches its source config from Kaon (`configUrl`, the README's exact options from
`support.browser_sdks`), makes the five calls, and the test checks what Kaon stored and what the browser saw.
"""

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

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

XHR_PATHS = {"/v1/page", "/v1/track", "/v1/identify", "/v1/group", "/v1/alias"}
SOURCE_CONFIG = "/sourceConfig/"


@pytest.fixture(scope="module")
def pages() -> Iterator[StaticServer]:
    server = StaticServer({**sdks.RUDDERSTACK_V3.files("/v3/"), **sdks.RUDDERSTACK_V2.files("/v2/")}).start()
    yield server
    server.stop()


Options = Callable[[str], dict[str, Any]]
MODES: dict[str, tuple[str, Options, set[str]]] = {
    # mode: (page prefix, load options, paths the SDK must have used besides the source config)
    "v3-xhr": ("/v3/", sdks.rudderstack_options, XHR_PATHS),
    "v3-batch": ("/v3/", sdks.rudderstack_batching, {"/v1/batch"}),
    "v3-beacon": ("/v3/", sdks.rudderstack_beacon, {"/beacon/v1/batch"}),
    "v2-xhr": ("/v2/", sdks.rudderstack_options, XHR_PATHS),
    "v2-beacon": ("/v2/", sdks.rudderstack_beacon, {"/beacon/v1/batch"}),
}


@pytest.mark.parametrize("mode", list(MODES))
def test_the_five_calls_reach_kaon(mode: str, offline_browser: Any, pages: StaticServer,
                                   kaon_server: KaonServer) -> None:
    prefix, options, paths = MODES[mode]
    tag = new_tag()
    with sdk_page(offline_browser, kaon_server, pages.url(f"{prefix}index.html")) as page:
        loaded = page.evaluate("([k, u, o]) => kaonSdk.load(k, u, o)", kaon_server.web_key, kaon_server.url,
                               options(kaon_server.url))
        assert loaded is True, page.describe()
        for method, args in the_five_calls(tag):
            page.evaluate("([m, a]) => kaonSdk.call(m, a)", method, args)
        check_stored(stored_calls(kaon_server, tag, page), tag, kaon_server.input("web")["id"])
        exchanges = check_traffic(page, paths | {SOURCE_CONFIG})
        check_source_config(page, exchanges, kaon_server)
        used = {urlsplit(x["url"]).path for x in exchanges}
        assert used == paths | {SOURCE_CONFIG}, page.describe()  # batch and beacon modes send nothing else


def check_source_config(page: SdkPage, exchanges: list[dict[str, Any]], kaon_server: KaonServer) -> None:
    fetched = [x for x in exchanges if urlsplit(x["url"]).path == SOURCE_CONFIG]
    assert len(fetched) == 1 and fetched[0]["method"] == "GET", page.describe()
    assert f"writeKey={kaon_server.web_key}" in fetched[0]["url"]


def test_a_v3_retry_reaches_kaon_with_its_retry_headers(offline_browser: Any, pages: StaticServer,
                                                       kaon_server: KaonServer) -> None:
    """An input limited to 2 requests/s answers some of the five calls 429; v3 retries them with
    `Rsa-Retry-Attempt`, `Rsa-Retry-Reason`, `Rsa-Since-Last-Attempt` and `Rsa-Since-First-Attempt`, which the
    CORS policy must allow for them to arrive."""
    key = rate_limited_key(kaon_server)
    tag = new_tag()
    with sdk_page(offline_browser, kaon_server, pages.url("/v3/index.html")) as page:
        assert page.evaluate("([k, u, o]) => kaonSdk.load(k, u, o)", key, kaon_server.url,
                             sdks.rudderstack_options(kaon_server.url)) is True, page.describe()
        for method, args in the_five_calls(tag):
            page.evaluate("([m, a]) => kaonSdk.call(m, a)", method, args)
        retry = retried(page, "/v1/", "rsa-retry-attempt")
        # The SDK's own words for why (the 429s, or a request it gave up waiting for): any of them is fine here.
        assert retry["headers"]["rsa-retry-reason"] in ("server-429", "client-network", "client-timeout")
        assert {"rsa-since-last-attempt", "rsa-since-first-attempt", "anonymousid", "sentat"} <= set(retry["headers"])
        limited = next(i["id"] for i in kaon_server.admin("GET", "/inputs").json()["inputs"] if i["key"] == key)
        check_stored(stored_calls(kaon_server, tag, page), tag, limited)
        assert page.log.cors_errors() == [], page.describe()
