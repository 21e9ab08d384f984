"""The configuration documents for browser SDKs: the shapes the SDKs validate, and nothing else."""

import json

from kaon.collect import config_documents as documents

KEY = "0123456789abcdef0123456789abcdef"


def test_rudderstack_source_config_passes_the_sdks_checks() -> None:
    doc = documents.rudderstack_source_config(KEY)
    source = doc["source"]
    # v3's isValidSourceConfig: object source with an id, an object config and a list of destinations.
    assert isinstance(source, dict) and source["id"] and isinstance(source["config"], dict)
    assert source["destinations"] == []  # no device mode: nothing is loaded from RudderStack's CDN
    assert source["enabled"] is True and source["writeKey"] == KEY
    stats = source["config"]["statsCollection"]
    assert stats == {"errors": {"enabled": False}, "metrics": {"enabled": False}}


def test_ids_are_stable_per_key_and_reveal_nothing() -> None:
    one, again, other = (documents.rudderstack_source_config(k)["source"] for k in (KEY, KEY, KEY[::-1]))
    assert one["id"] == again["id"] and one["workspaceId"] == again["workspaceId"]
    assert one["id"] != other["id"] and one["id"] != one["workspaceId"]
    assert KEY not in one["id"] and KEY not in one["workspaceId"]


def test_segment_settings_point_the_sdk_at_kaon_only() -> None:
    doc = documents.segment_settings(KEY, "kaon.example.com/v1", "https")
    assert doc["integrations"] == {"Segment.io": {"apiKey": KEY, "apiHost": "kaon.example.com/v1",
                                                  "protocol": "https"}}
    assert doc["metrics"] == {"sampleRate": 0}
    assert doc["remotePlugins"] == []


def test_mparticle_config_keeps_the_pages_own_settings() -> None:
    doc = documents.mparticle_config()
    assert doc == {"kitConfigs": [], "pixelConfigs": []}
    assert "flags" not in doc and "workspaceToken" not in doc


def test_documents_hold_nothing_but_the_key() -> None:
    for doc in (documents.rudderstack_source_config(KEY), documents.segment_settings(KEY, "h/v1", "http"),
                documents.mparticle_config()):
        text = json.dumps(doc).lower()
        assert "secret" not in text and "ws_" not in text and "in_" not in text
