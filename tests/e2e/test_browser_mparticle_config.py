"""The mParticle web SDK with its defaults (`forceHttps`, `requestConfig: true`) against Kaon behind https:
the SDK fetches its config from Kaon (`/JS/v2/{key}/config`, always over https), identifies through Kaon's
IDSync and uploads its events, from a page on another origin, with no mParticle host reachable.

Kaon sits behind a TLS front (`support.tls`), as an operator deploys it; the browser context accepts its
self-signed certificate. The init options are the README's (`support.browser_sdks.mparticle_https`).
"""

import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from support import browser_sdks as sdks
from support.browser import PageLog, VendorGuard
from support.server import KaonServer
from support.tls import TlsFront
from support.waiting import eventually
from support.websdk import PageServer, ensure_websdk


@pytest.fixture(scope="module")
def tls_front(kaon_server: KaonServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsFront]:
    front = TlsFront(kaon_server.port, tmp_path_factory.mktemp("tls")).start()
    yield front
    front.stop()


@pytest.fixture(scope="module")
def page_server() -> Iterator[PageServer]:
    server = PageServer(ensure_websdk()).start()
    yield server
    server.stop()


def test_default_config_request_is_answered_by_kaon(offline_browser: Any, page_server: PageServer, tls_front: TlsFront,
                                                    kaon_server: KaonServer) -> None:
    tag = uuid.uuid4().hex[:12]
    context = offline_browser.new_context(ignore_https_errors=True)
    try:
        guard = VendorGuard()
        guard.attach(context)
        page = context.new_page()
        page.set_default_timeout(20_000)
        log = PageLog(watch_prefix=tls_front.url)
        log.attach(page)
        page.goto(page_server.page_url)
        options = {**sdks.mparticle_https(tls_front.url), "isDevelopmentMode": True, "logLevel": "warning",
                   "flags": {"eventBatchingIntervalMillis": 0}}
        identified = page.evaluate("([key, options, ids]) => kaonHarness.init(key, options, ids)",
                                   [kaon_server.web_key, options, {"email": f"{tag}@example.com"}])
        assert identified["httpCode"] == 200, log.describe()
        page.evaluate("([name]) => mParticle.logEvent(name, mParticle.EventType.Navigation, {step: 'A'})",
                      [f"Clicked {tag}"])
        page.evaluate("([name]) => mParticle.logPageView(name)", [f"Home {tag}"])
        page.evaluate("() => mParticle.upload()")

        def stored() -> list[dict[str, Any]]:
            page.evaluate("() => true")  # lets the vendor guard's route handler run
            return [e for e in kaon_server.events() if tag in (e["event_name"] or "")]

        events = eventually(lambda: len(stored()) == 2 and stored(), timeout=20, what="both events stored")
        assert {e["event_type"] for e in events} == {"custom_event", "screen_view"}, events
        assert all(e["mpid"] == identified["callbackMpid"] for e in events), (events, identified)

        page.evaluate("() => true")
        config = [x for x in log.exchanges if urlsplit(x["url"]).path == f"/JS/v2/{kaon_server.web_key}/config"]
        assert len(config) == 1, log.describe()
        assert config[0]["status"] == 200 and "env=1" in config[0]["url"], log.describe()
        assert json.loads(config[0]["response_body"]) == {"kitConfigs": [], "pixelConfigs": []}
        assert all(x["url"].startswith("https://") for x in log.exchanges), log.describe()  # forceHttps
        assert all(x["origin"] == page_server.origin for x in log.exchanges), log.describe()
        assert all(200 <= x["status"] < 300 for x in log.exchanges), log.describe()
        assert log.cors_errors() == [] and log.failed == [], log.describe()
        assert guard.attempted == [], guard.attempted
    finally:
        context.close()

