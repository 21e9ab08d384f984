"""The browser SDKs under test (pinned npm packages) and the exact init options that point each at Kaon.

These options are the single source: the e2e tests load the SDKs with them, and a test checks that the
README's "Point real SDKs at it" table shows the same (rendered for `README_URL` and `README_KEY`).
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.npm import ensure_package
from support.pages import HTML, JS, Files

STATIC_DIR = Path(__file__).resolve().parent / "static"
README_URL = "http://127.0.0.1:8080"
README_KEY = "WEB_KEY"


@dataclass(frozen=True)
class NpmSdk:
    package: str
    version: str
    cache_name: str
    bundle: str  # the browser (UMD) build inside the package
    harness: str  # tests/support/static/<harness>

    def files(self, prefix: str) -> Files:
        """The test page, the SDK's own bundle and the harness under `prefix` (e.g. "/segment/")."""
        root = ensure_package(self.package, self.version, self.cache_name)
        return {
            f"{prefix}index.html": ((STATIC_DIR / "sdk-page.html").read_bytes(), HTML),
            f"{prefix}sdk.js": ((root / self.bundle).read_bytes(), JS),
            f"{prefix}harness.js": ((STATIC_DIR / self.harness).read_bytes(), JS),
        }


MPARTICLE_WEBSDK_VERSION = "2.68.0"  # installed by support.websdk
SEGMENT = NpmSdk("@segment/analytics-next", "1.84.3", "analytics-next", "dist/umd/index.js", "segment-harness.js")
# v3's default build loads its plugins (even the XHR queue) from RudderStack's CDN at run time; the package's
# `bundled` build carries them, so nothing is fetched but the source config.
RUDDERSTACK_V3 = NpmSdk("@rudderstack/analytics-js", "3.34.1", "rudderstack-v3",
                        "dist/npm/modern/bundled/umd/index.js", "rudderstack-harness.js")
RUDDERSTACK_V2 = NpmSdk("rudder-sdk-js", "2.52.21", "rudderstack-v2", "dist/npm/index.js", "rudderstack-harness.js")


def host(kaon_url: str) -> str:
    return kaon_url.removeprefix("http://").removeprefix("https://")


def scheme(kaon_url: str) -> str:
    return kaon_url.split("://", 1)[0]


# Segment analytics-next: AnalyticsBrowser.load(settings, options)

def segment_settings(kaon_url: str, write_key: str) -> dict[str, Any]:
    """Settings given in the page (no settings fetch); `sampleRate: 0` stops the SDK's own usage metrics."""
    return {"writeKey": write_key, "cdnSettings": {
        "integrations": {"Segment.io": {"apiKey": write_key, "apiHost": f"{host(kaon_url)}/v1",
                                        "protocol": scheme(kaon_url)}},
        "metrics": {"sampleRate": 0}}}


def segment_cdn_url(kaon_url: str, write_key: str) -> dict[str, Any]:
    """Settings fetched from Kaon (`GET /v1/projects/{writeKey}/settings`), as the SDK fetches them from its CDN."""
    return {"writeKey": write_key, "cdnURL": kaon_url}


def segment_batching() -> dict[str, Any]:
    """The load options of batched delivery (`POST /v1/b`)."""
    return {"integrations": {"Segment.io": {"deliveryStrategy": {
        "strategy": "batching", "config": {"size": 10, "timeout": 500}}}}}


# RudderStack: rudderanalytics.load(writeKey, dataPlaneUrl, options)

def rudderstack_options(kaon_url: str) -> dict[str, Any]:
    """The source config from Kaon (`GET /sourceConfig/`); it lists no device-mode destinations."""
    return {"configUrl": kaon_url}


def rudderstack_batching(kaon_url: str) -> dict[str, Any]:
    """XHR batches (`POST /v1/batch`)."""
    return {**rudderstack_options(kaon_url), "queueOptions": {"batch": {"enabled": True, "flushInterval": 500}}}


def rudderstack_beacon(kaon_url: str) -> dict[str, Any]:
    """`navigator.sendBeacon` batches (`POST /beacon/v1/batch?writeKey=...`)."""
    return {**rudderstack_options(kaon_url), "useBeacon": True, "beaconQueueOptions": {"flushQueueInterval": 500}}


# mParticle web SDK: mParticle.init(key, options)

def mparticle_http(kaon_url: str) -> dict[str, Any]:
    """Kaon over plain http: no config fetch (the SDK fetches it over https only)."""
    return {"forceHttps": False, "requestConfig": False, "v3SecureServiceUrl": f"{host(kaon_url)}/v3/JS/",
            "identityUrl": f"{host(kaon_url)}/v1/", "aliasUrl": f"{host(kaon_url)}/v1/identity/"}


def mparticle_https(kaon_url: str) -> dict[str, Any]:
    """Kaon behind https, the SDK's defaults otherwise (`forceHttps`, `requestConfig`: the config is Kaon's)."""
    return {"configUrl": f"{host(kaon_url)}/JS/v2/", "v3SecureServiceUrl": f"{host(kaon_url)}/v3/JS/",
            "identityUrl": f"{host(kaon_url)}/v1/", "aliasUrl": f"{host(kaon_url)}/v1/identity/"}


def js(value: Any) -> str:
    return json.dumps(value)


def readme_rows() -> list[tuple[str, str]]:
    """(client, setting) rows of the README table for the browser SDKs, rendered for README_URL/README_KEY."""
    url, key = README_URL, README_KEY
    v3 = f"`{RUDDERSTACK_V3.package}@{RUDDERSTACK_V3.version}`"
    return [
        (f"Segment analytics-next (`{SEGMENT.package}@{SEGMENT.version}`), settings in the page",
         f"`AnalyticsBrowser.load({js(segment_settings(url, key))})`"),
        ("Segment analytics-next, settings from Kaon",
         f"`AnalyticsBrowser.load({js(segment_cdn_url(url, key))})`"),
        ("Segment analytics-next, batched delivery (settings in the page or from Kaon)",
         f"second argument `{js(segment_batching())}`"),
        (f"RudderStack v3 ({v3}, its `/bundled` build)",
         f"`rudderanalytics.load(\"{key}\", \"{url}\", {js(rudderstack_options(url))})`; batches: "
         f"`{js(rudderstack_batching(url))}`; beacon: `{js(rudderstack_beacon(url))}`"),
        (f"RudderStack v2 (`{RUDDERSTACK_V2.package}@{RUDDERSTACK_V2.version}`)",
         f"`rudderanalytics.load(\"{key}\", \"{url}\", {js(rudderstack_options(url))})`; beacon: "
         f"`{js(rudderstack_beacon(url))}`"),
        (f"mParticle web SDK (`@mparticle/web-sdk@{MPARTICLE_WEBSDK_VERSION}`), Kaon over http",
         f"`mParticle.init(\"{key}\", {js(mparticle_http(url))})`"),
        ("mParticle web SDK, Kaon behind https (SDK defaults otherwise)",
         f"`mParticle.init(\"{key}\", {js(mparticle_https('https://kaon.example.com'))})`"),
    ]
