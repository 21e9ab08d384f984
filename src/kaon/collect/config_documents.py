"""The configuration documents browser SDKs fetch before they send: mParticle's, RudderStack's, Segment's.

Each is built from the write key alone (a web key is public: it ships in every page), so a document says
nothing the key's holder does not already know: no input or workspace names or ids (the ids RudderStack's
SDKs require are derived from the key), no secrets, no other inputs, and no device-mode destinations or
kits (Kaon forwards server-side), so the SDK loads nothing from its vendor's CDN.
"""

import hashlib
from typing import Any


def opaque_id(key: str, kind: str) -> str:
    """A stable id that stands for the key's source or workspace without revealing Kaon's own ids."""
    return hashlib.sha256(f"kaon:{kind}:{key}".encode()).hexdigest()[:24]


def mparticle_config() -> dict[str, Any]:
    """`GET /JS/v2/{key}/config?env=...` for the mParticle web SDK (`requestConfig: true`).

    The SDK merges this document over its init options, so it holds only what Kaon decides: no kits and no
    pixels. It leaves out `flags` and the service URLs on purpose, so the page's own settings stand.
    """
    return {"kitConfigs": [], "pixelConfigs": []}


def rudderstack_source_config(key: str) -> dict[str, Any]:
    """`GET /sourceConfig/?writeKey=...` for RudderStack's JS SDKs (v2 and v3).

    v3 requires `source.id`, an object `source.config` and a list `source.destinations`; v2 reads
    `source.config`, `source.id` and `source.destinations`. Error and metrics collection are off, so neither
    SDK reports to RudderStack's own services.
    """
    return {
        "isHosted": False,
        "source": {
            "config": {"statsCollection": {"errors": {"enabled": False}, "metrics": {"enabled": False}}},
            "id": opaque_id(key, "source"),
            "name": "Kaon",
            "writeKey": key,
            "enabled": True,
            "workspaceId": opaque_id(key, "workspace"),
            "destinations": [],
        },
    }


def segment_settings(key: str, api_host: str, protocol: str) -> dict[str, Any]:
    """`GET /v1/projects/{writeKey}/settings` for Segment's analytics-next (`cdnURL` pointed at Kaon).

    `api_host` is Kaon's host and path prefix plus `/v1` (where analytics-next appends `/t`, `/b`, ...).
    Only the `Segment.io` integration is listed, so no device-mode destination is loaded; `sampleRate: 0`
    keeps the SDK from sending its own usage metrics anywhere.
    """
    return {
        "integrations": {"Segment.io": {"apiKey": key, "apiHost": api_host, "protocol": protocol}},
        "plan": {},
        "metrics": {"sampleRate": 0},
        "remotePlugins": [],
    }
