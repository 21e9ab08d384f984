"""Web (key-only) traffic through the real process stage: its batches and Segment aliases cannot take over profiles.

The same calls from the workspace's server input still merge, so each test fails if the rule is missing or if it
also applied to the server credential. Refusals are counted and listed as warnings.
"""

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kaon.store.config import ConfigStore
from support.pipeline import NOW, Pipeline, a_pipeline


@pytest.fixture
def pipeline(tmp_path: Path, database_url: str) -> Iterator[Pipeline]:
    with a_pipeline(tmp_path, url=database_url) as made:
        yield made


def web_of(pipeline: Pipeline) -> Pipeline:
    """The same stage, writing as the workspace's web input (key-only: its key is public)."""
    made = ConfigStore(pipeline.db.conn()).create_input(pipeline.workspace_id, "web", "web").input
    assert made.allow_key_only
    return dataclasses.replace(pipeline, input_id=made.id)


def batch(name: str, **identities: str) -> dict[str, Any]:
    stamp = identities.pop("das", None)
    out: dict[str, Any] = {"environment": "production", "user_identities": identities, "events": [
        {"event_type": "custom_event", "data": {"event_name": name, "custom_event_type": "other",
                                                "source_message_id": name, "timestamp_unixtime_ms": NOW - 1000}}]}
    if stamp is not None:
        out["mp_deviceid"] = stamp
    return out


def codes(pipeline: Pipeline) -> list[str]:
    return [w["code"] for w in pipeline.warnings()]


def test_a_web_batch_with_a_victims_email_does_not_merge_the_victims_profile(pipeline: Pipeline) -> None:
    web = web_of(pipeline)
    pipeline.bulk(batch("victim-signup", email="victim@x"))
    web.bulk(batch("attacker-login", customer_id="attacker"))
    pipeline.process()
    victim, attacker = pipeline.holder("email", "victim@x"), pipeline.holder("customer_id", "attacker")
    web.bulk(batch("attack", customer_id="attacker", email="victim@x"))
    pipeline.process()
    assert pipeline.merges() == [] and pipeline.holder("email", "victim@x") == victim
    assert pipeline.event_owners()["attack"] == attacker
    assert pipeline.counters("identity_merges_refused") == {"not_device_linked": 1}
    [warning] = [w for w in pipeline.warnings() if w["code"] == "IDENTITY_MERGE_REFUSED"]
    assert str(victim) in warning["message"] and warning["status"] == 202
    # The same batch from the server input unifies them.
    pipeline.bulk(batch("server", customer_id="attacker", email="victim@x"))
    pipeline.process()
    assert [(s, m) for s, m, _ in pipeline.merges()] == [(attacker, victim)]


def test_a_web_batch_still_merges_its_devices_anonymous_profile(pipeline: Pipeline) -> None:
    web = web_of(pipeline)
    web.bulk(batch("browse", das="das-2"), batch("login-elsewhere", customer_id="c-1"))
    pipeline.process()
    anonymous, known = pipeline.holder("device_application_stamp", "das-2"), pipeline.holder("customer_id", "c-1")
    web.bulk(batch("login", customer_id="c-1", das="das-2"))
    pipeline.process()
    assert [(s, m) for s, m, _ in pipeline.merges()] == [(known, anonymous)]
    assert "IDENTITY_MERGE_REFUSED" not in codes(pipeline)


def alias(user: str, previous: str, message_id: str) -> dict[str, Any]:
    return {"type": "alias", "userId": user, "previousId": previous, "messageId": message_id,
            "timestamp": (NOW - 1_000) / 1000}


def test_a_web_segment_alias_cannot_copy_a_known_users_events(pipeline: Pipeline) -> None:
    # Under unify two customer ids never merge anyway (unique); the copy strategies would copy the victim's events.
    pipeline.identity_settings(strategy="profile_conversion")
    web = web_of(pipeline)
    pipeline.segment({"type": "track", "event": "Bought", "userId": "victim", "messageId": "v-1",
                      "timestamp": (NOW - 5_000) / 1000})
    web.segment({"type": "identify", "userId": "attacker", "messageId": "a-1", "timestamp": (NOW - 4_000) / 1000})
    pipeline.process()
    web.segment(alias("attacker", "victim", "attack"))
    pipeline.process()
    attacker = pipeline.holder("customer_id", "attacker")
    assert pipeline.events_of(attacker) == ["alias"]  # the victim's `Bought` was not copied
    assert pipeline.counters("alias_refused") == {"known_previous": 1}
    assert "ALIAS_REFUSED_KNOWN_PREVIOUS" in codes(pipeline)
    pipeline.segment(alias("attacker", "victim", "server-alias"))
    pipeline.process()
    assert pipeline.counters("aliases_applied") == {"copied": 1}
    assert "Bought" in pipeline.events_of(attacker)


def test_a_web_segment_alias_still_joins_an_anonymous_id(pipeline: Pipeline) -> None:
    web = web_of(pipeline)
    web.segment({"type": "track", "event": "Browse", "anonymousId": "anon-1", "messageId": "b-1",
                 "timestamp": (NOW - 5_000) / 1000},
                {"type": "identify", "userId": "u-1", "messageId": "i-1", "timestamp": (NOW - 4_000) / 1000})
    web.segment(alias("u-1", "anon-1", "join"))
    pipeline.process()
    assert pipeline.counters("aliases_applied") == {"merged": 1}
    assert pipeline.event_owners()["Browse"] == pipeline.holder("customer_id", "u-1")


def test_a_web_batch_keeps_the_mpid_idsync_gave_it_after_that_profile_logged_in(pipeline: Pipeline) -> None:
    """The web SDK uploads events logged before a login with the anonymous mpid, after IDSync converted that
    profile (it now holds the customer id): they stay on it, not on a new profile."""
    web = web_of(pipeline)
    web.bulk(batch("anonymous-visit", das="stamp-1"))
    pipeline.process()
    anonymous = pipeline.event_owners()["anonymous-visit"]
    web.bulk({**batch("login", das="stamp-1", customer_id="c-1"), "mpid": str(anonymous)})
    pipeline.process()
    assert pipeline.holder("customer_id", "c-1") == anonymous
    web.bulk({**batch("late-upload", das="stamp-1"), "mpid": str(anonymous)})
    pipeline.process()
    assert pipeline.event_owners()["late-upload"] == anonymous
    assert pipeline.tombstones() == set()
