"""Segment `alias` through the real process stage: the previous identity's history joins the user's profile.

Under `unify` the previous profile merges into the user's (audited, undoable); under strategies that never
merge its events are copied (mParticle's alias). Refusals change nothing and are counted and listed. The
result does not depend on where the alias sits in its bulk request.
"""

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kaon.identity.extract import DEVICE_STAMP
from kaon.identity.merge import unmerge
from kaon.store.outputs import OutputStore
from kaon.store.tx import transaction
from support.pipeline import NOW, Pipeline, a_pipeline


def track(name: str, *, anonymous: str | None = None, user: str | None = None, at: int = NOW - 10_000,
          **extra: Any) -> dict[str, Any]:
    call: dict[str, Any] = {"type": "track", "event": name, "messageId": name,
                            "timestamp": at / 1000, "properties": extra}
    if anonymous is not None:
        call["anonymousId"] = anonymous
    if user is not None:
        call["userId"] = user
    return call


def identify(user: str, message_id: str, *, anonymous: str | None = None, **traits: Any) -> dict[str, Any]:
    call: dict[str, Any] = {"type": "identify", "userId": user, "messageId": message_id, "traits": traits,
                            "timestamp": (NOW - 5_000) / 1000}
    if anonymous is not None:
        call["anonymousId"] = anonymous
    return call


def alias(user: str, message_id: str = "alias", *, previous: str | None = None,
          anonymous: str | None = None) -> dict[str, Any]:
    call: dict[str, Any] = {"type": "alias", "userId": user, "messageId": message_id,
                            "timestamp": (NOW - 1_000) / 1000}
    if previous is not None:
        call["previousId"] = previous
    if anonymous is not None:
        call["anonymousId"] = anonymous
    return call


@pytest.fixture
def pipeline(tmp_path: Path, database_url: str) -> Iterator[Pipeline]:
    with a_pipeline(tmp_path, url=database_url) as made:
        yield made


def user_profile(pipeline: Pipeline, user: str) -> int:
    mpid = pipeline.owner("customer_id", user)
    assert mpid is not None, f"no profile holds userId {user}"
    return mpid


# Unify: the previous profile merges into the user's

def test_alias_merges_the_anonymous_history_into_the_users_profile(pipeline: Pipeline) -> None:
    pipeline.segment(track("browse", anonymous="anon-1", plan="free"), track("cart", anonymous="anon-1"))
    pipeline.process()
    anonymous = pipeline.owner(DEVICE_STAMP, "anon-1")
    assert anonymous is not None
    pipeline.segment(identify("u-1", "id-1", email="u1@example.com"))
    pipeline.process()
    # analytics.alias(userId): previousId defaults to the call's anonymousId.
    pipeline.segment(alias("u-1", anonymous="anon-1"))
    pipeline.process()
    user = user_profile(pipeline, "u-1")
    assert user != anonymous
    assert pipeline.events_of(user) == ["alias", "browse", "cart"]
    assert pipeline.events_of(anonymous) == []
    assert pipeline.tombstones() == {anonymous}
    assert pipeline.identities(user) == {("customer_id", "u-1"), ("email", "u1@example.com"),
                                         (DEVICE_STAMP, "anon-1")}
    assert pipeline.merges() == [(user, anonymous, "alias: previousId 'anon-1' joined to userId 'u-1'")]
    assert pipeline.counters("aliases_applied") == {"merged": 1}
    assert pipeline.counters("alias_refused") == {}
    # Later anonymous events of that device land on the user's profile.
    pipeline.segment(track("later", anonymous="anon-1"))
    pipeline.process()
    assert "later" in pipeline.events_of(user)


def test_an_alias_merge_can_be_undone(pipeline: Pipeline) -> None:
    pipeline.segment(track("browse", anonymous="anon-2"))
    pipeline.process()
    anonymous = pipeline.owner(DEVICE_STAMP, "anon-2")
    pipeline.segment(track("bought", user="u-2"), alias("u-2", previous="anon-2"))
    pipeline.process()
    user = user_profile(pipeline, "u-2")
    assert pipeline.events_of(user) == ["alias", "bought", "browse"]
    (merge_id,) = [int(r[0]) for r in pipeline.rows("SELECT id FROM merges")]
    conn = pipeline.db.conn()
    with transaction(conn):
        unmerge(conn, pipeline.workspace_id, merge_id, actor="test", now_ms=NOW)
    assert anonymous is not None
    assert pipeline.events_of(anonymous) == ["browse"]
    assert pipeline.events_of(user) == ["alias", "bought"]
    assert pipeline.owner(DEVICE_STAMP, "anon-2") == anonymous


def test_a_previous_user_id_is_looked_up_as_a_customer_id(pipeline: Pipeline) -> None:
    # With customer_id not unique, a previous userId's profile merges (Segment: "a User ID you previously
    # identified them with").
    pipeline.identity_settings(unique_types=[])
    pipeline.segment(track("old-login", user="old-id"))
    pipeline.process()
    previous = pipeline.owner("customer_id", "old-id")
    pipeline.segment(alias("new-id", previous="old-id"))
    pipeline.process()
    user = user_profile(pipeline, "new-id")
    assert user != previous
    assert pipeline.events_of(user) == ["alias", "old-login"]
    assert pipeline.identities(user) == {("customer_id", "new-id"), ("customer_id", "old-id")}


def test_delivery_jobs_after_an_alias_merge_carry_the_users_mpid(pipeline: Pipeline) -> None:
    outputs = OutputStore(pipeline.db.conn(), pipeline.workspace_id)
    output = outputs.create_output("hook", "webhook", {"base_url": "http://127.0.0.1:9/hook"}, True)
    outputs.create_connection(pipeline.input_id, output.id, True, {})
    # The anonymous event and the alias in one request, the alias first.
    pipeline.segment(alias("u-3", previous="anon-3"), track("browse", anonymous="anon-3"))
    pipeline.process()
    user = user_profile(pipeline, "u-3")
    jobs = pipeline.rows("SELECT j.mpid, p.mpid FROM delivery_jobs j JOIN delivery_pending p ON p.job_id = j.id")
    assert jobs == [(user, user), (user, user)]


# Order inside one request does not matter

WORLD = [
    track("anon-a", anonymous="device-9", tier="free"),
    identify("u-9", "id-9", email="u9@example.com"),
    track("anon-b", anonymous="device-9", at=NOW - 2_000),
    alias("u-9", previous="device-9"),
]


def outcome(pipeline: Pipeline) -> dict[str, Any]:
    user = user_profile(pipeline, "u-9")
    return {
        "events": pipeline.events_of(user),
        "identities": pipeline.identities(user),
        "live_profiles": len(pipeline.rows("SELECT 1 FROM profiles WHERE merged_into IS NULL")),
        "applied": pipeline.counters("aliases_applied"),
        "refused": pipeline.counters("alias_refused"),
        "attributes": pipeline.attributes(user),
    }


@pytest.mark.parametrize("order", list(itertools.permutations(range(len(WORLD)))))
def test_the_result_does_not_depend_on_where_the_alias_sits_in_the_request(tmp_path: Path,
                                                                          order: tuple[int, ...]) -> None:
    with a_pipeline(tmp_path) as pipeline:
        pipeline.segment(*(WORLD[i] for i in order))
        pipeline.process()
        assert outcome(pipeline) == {
            "events": ["alias", "anon-a", "anon-b"],
            "identities": {("customer_id", "u-9"), ("email", "u9@example.com"), (DEVICE_STAMP, "device-9")},
            "live_profiles": 1,
            "applied": {"merged": 1},
            "refused": {},
            "attributes": {"email": "u9@example.com"},
        }


# Refusals: counted, listed, nothing changes

def test_unknown_previous_id_is_refused_and_listed(pipeline: Pipeline) -> None:
    pipeline.segment(alias("u-4", previous="never-seen"))
    pipeline.process()
    user = user_profile(pipeline, "u-4")
    assert pipeline.events_of(user) == ["alias"]  # the call itself is kept
    assert pipeline.counters("alias_refused") == {"unknown_previous": 1}
    (warning,) = pipeline.warnings()
    assert warning["code"] == "ALIAS_REFUSED_UNKNOWN_PREVIOUS"
    assert warning["status"] == 200 and warning["count"] == 1
    assert warning["message"] == (
        f"previousId 'never-seen' is held by no profile (looked up as customer_id and device_application_stamp):"
        f" nothing was joined to profile {user} (userId 'u-4')")
    assert "never-seen" in (warning["body_sample"] or "")


def test_two_customer_ids_are_not_merged(pipeline: Pipeline) -> None:
    pipeline.segment(track("first", user="alice"), track("second", user="bob"))
    pipeline.process()
    alice, bob = user_profile(pipeline, "alice"), user_profile(pipeline, "bob")
    pipeline.segment(alias("bob", previous="alice"))
    pipeline.process()
    assert pipeline.events_of(alice) == ["first"]
    assert pipeline.events_of(bob) == ["alias", "second"]
    assert pipeline.tombstones() == set()
    assert pipeline.counters("alias_refused") == {"unique_conflict": 1}
    (warning,) = pipeline.warnings()
    assert warning["code"] == "ALIAS_REFUSED_UNIQUE_CONFLICT"
    assert warning["message"] == (
        f"profile {alice} (previousId 'alice') holds customer_id ['alice'] and profile {bob} (userId 'bob') holds"
        f" ['bob']: customer_id is unique, so they were not merged")


def test_an_alias_already_applied_is_refused_as_the_same_profile(pipeline: Pipeline) -> None:
    pipeline.segment(track("both", user="u-5", anonymous="anon-5"))
    pipeline.process()
    pipeline.segment(alias("u-5", previous="anon-5"))
    pipeline.process()
    assert pipeline.counters("alias_refused") == {"same_profile": 1}
    (warning,) = pipeline.warnings()
    assert warning["code"] == "ALIAS_REFUSED_SAME_PROFILE"
    assert "previousId 'anon-5' is already on profile" in warning["message"]


@pytest.mark.parametrize("previous", ["anonymous", "undefined", "00000000-0000-0000-0000-000000000000"])
def test_a_blocked_previous_id_is_refused(pipeline: Pipeline, previous: str) -> None:
    pipeline.segment(track("anon", anonymous="real-device"), alias("u-6", previous=previous))
    pipeline.process()
    assert pipeline.tombstones() == set()
    assert pipeline.counters("alias_refused") == {"blocked_value": 1}
    (warning,) = pipeline.warnings()
    assert warning["code"] == "ALIAS_REFUSED_BLOCKED_VALUE"
    assert warning["message"].startswith(f"previousId {previous!r} is a blocked value")


def test_a_duplicate_alias_call_is_not_applied_twice(pipeline: Pipeline) -> None:
    pipeline.segment(track("browse", anonymous="anon-7"), alias("u-7", previous="anon-7"))
    pipeline.process()
    pipeline.segment(alias("u-7", previous="anon-7"))  # the same messageId again: dropped by dedup
    pipeline.process()
    assert pipeline.counters("aliases_applied") == {"merged": 1}
    assert pipeline.counters("alias_refused") == {}


# Strategies that never merge: mParticle's alias copies the events

def test_without_merges_the_previous_events_are_copied(pipeline: Pipeline) -> None:
    pipeline.identity_settings(strategy="profile_link")
    # The alias first in its request: the copy runs once the whole request is stored.
    pipeline.segment(alias("u-8", previous="anon-8"), track("browse", anonymous="anon-8"))
    pipeline.process()
    user, anonymous = user_profile(pipeline, "u-8"), pipeline.owner(DEVICE_STAMP, "anon-8")
    assert anonymous is not None and anonymous != user
    assert pipeline.events_of(user) == ["alias", "browse"]
    assert pipeline.events_of(anonymous) == ["browse"]  # copied, not moved
    assert pipeline.tombstones() == set()
    assert pipeline.counters("aliases_applied") == {"copied": 1}
    # The same previous profile again: mParticle's overlap rule refuses it, visibly.
    pipeline.segment(alias("u-8", "alias-again", previous="anon-8"))
    pipeline.process()
    assert pipeline.counters("alias_refused") == {"overlap": 1}
    (warning,) = pipeline.warnings()
    assert warning["code"] == "ALIAS_REFUSED_OVERLAP"
    assert warning["message"] == (
        f"alias of profile {anonymous} (previousId 'anon-8') to profile {user} (userId 'u-8') refused:"
        " the source was already aliased for an overlapping window")


def test_without_merges_a_delayed_alias_copies_when_due(pipeline: Pipeline) -> None:
    pipeline.identity_settings(strategy="profile_conversion")
    pipeline.setting("alias_delay_hours", 24)
    pipeline.segment(track("browse", anonymous="anon-10"))
    pipeline.process()
    pipeline.segment(alias("u-10", previous="anon-10"))
    pipeline.process()
    user = user_profile(pipeline, "u-10")
    assert pipeline.events_of(user) == ["alias"]
    assert pipeline.counters("aliases_applied") == {"copied": 1}
    assert pipeline.rows("SELECT due_ms FROM alias_requests") == [(NOW + 24 * 3_600_000,)]
