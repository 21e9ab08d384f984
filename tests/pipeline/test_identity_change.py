"""`user_identity_change` events through the real process stage: `old` given and held is replaced by `new`.

A replacement is one step with the safeguards: a refusal (blocked value, unique or limit, held by another
profile) changes nothing and is counted in `identity_links_skipped` by reason.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.pipeline import NOW, Pipeline, a_pipeline


@pytest.fixture
def pipeline(tmp_path: Path, database_url: str) -> Iterator[Pipeline]:
    with a_pipeline(tmp_path, url=database_url) as made:
        yield made


def change(name: str, *, new: tuple[str, str] | None, old: tuple[str, str] | None) -> dict[str, Any]:
    data: dict[str, Any] = {"source_message_id": name, "timestamp_unixtime_ms": NOW - 1_000}
    for side, value in (("new", new), ("old", old)):
        if value is not None:
            data[side] = {"identity_type": value[0], "identity": value[1]}
    return {"event_type": "user_identity_change", "data": data}


def batch(identities: dict[str, str], *events: dict[str, Any]) -> dict[str, Any]:
    return {"environment": "production", "user_identities": identities, "events": list(events)}


def customer(pipeline: Pipeline, customer_id: str, **identities: str) -> int:
    pipeline.bulk(batch({"customer_id": customer_id, **identities}))
    pipeline.process()
    mpid = pipeline.owner("customer_id", customer_id)
    assert mpid is not None
    return mpid


def test_the_issue_event_replaces_the_old_email(pipeline: Pipeline) -> None:
    mpid = customer(pipeline, "c-1", email="a@x")
    pipeline.bulk(batch({"customer_id": "c-1"}, {"event_type": "user_identity_change", "data": {
        "new": {"identity_type": "email", "identity": "b@x"}, "old": {"identity_type": "email", "identity": "a@x"}}}))
    pipeline.process()
    assert pipeline.identities(mpid) == {("customer_id", "c-1"), ("email", "b@x")}
    assert pipeline.owner("email", "a@x") is None
    assert pipeline.counters("identity_links_skipped") == {}


def test_a_batch_carrying_the_new_value_too_ends_with_only_the_new_value(pipeline: Pipeline) -> None:
    # The web SDK's shape: the batch's identities are the current ones, the event says what changed.
    mpid = customer(pipeline, "c-2", email="a@x")
    pipeline.bulk(batch({"customer_id": "c-2", "email": "b@x"},
                        change("e", new=("email", "b@x"), old=("email", "a@x"))))
    pipeline.process()
    assert pipeline.identities(mpid) == {("customer_id", "c-2"), ("email", "b@x")}


@pytest.mark.parametrize("settings", [{"limits": {"email": 1}}, {"unique_types": ["customer_id", "email"]}])
def test_a_replacement_is_not_refused_by_the_limit_or_uniqueness_it_keeps(pipeline: Pipeline,
                                                                         settings: dict[str, Any]) -> None:
    pipeline.identity_settings(**settings)
    mpid = customer(pipeline, "c-3", email="a@x")
    pipeline.bulk(batch({"customer_id": "c-3"}, change("e", new=("email", "B@X "), old=("email", "A@x"))))
    pipeline.process()
    assert pipeline.identities(mpid) == {("customer_id", "c-3"), ("email", "b@x")}  # normalised
    # An add (no `old`) at the limit is still refused.
    pipeline.bulk(batch({"customer_id": "c-3"}, change("add", new=("email", "c@x"), old=None)))
    pipeline.process()
    assert pipeline.identities(mpid) == {("customer_id", "c-3"), ("email", "b@x")}
    reason = "limit" if "limits" in settings else "unique_conflict"
    assert pipeline.counters("identity_links_skipped") == {reason: 1}


def test_a_customer_id_change_replaces_the_unique_id(pipeline: Pipeline) -> None:
    mpid = customer(pipeline, "c-4")
    pipeline.bulk({"environment": "production", "mpid": mpid, "events": [
        change("e", new=("customer_id", "c-4b"), old=("customer_id", "c-4"))]})
    pipeline.process()
    assert pipeline.identities(mpid) == {("customer_id", "c-4b")}


def test_a_blocked_new_value_changes_nothing_and_is_counted(pipeline: Pipeline) -> None:
    mpid = customer(pipeline, "c-5", email="a@x")
    pipeline.bulk(batch({"customer_id": "c-5"}, change("e", new=("email", "undefined"), old=("email", "a@x"))))
    pipeline.process()
    assert pipeline.identities(mpid) == {("customer_id", "c-5"), ("email", "a@x")}
    assert pipeline.counters("identity_links_skipped") == {"blocked": 1}


def test_a_new_value_held_by_another_profile_changes_nothing_and_is_counted(pipeline: Pipeline) -> None:
    other = customer(pipeline, "c-other", email="b@x")
    mpid = customer(pipeline, "c-6", email="a@x")
    pipeline.bulk(batch({"customer_id": "c-6"}, change("e", new=("email", "b@x"), old=("email", "a@x"))))
    pipeline.process()
    assert pipeline.identities(mpid) == {("customer_id", "c-6"), ("email", "a@x")}
    assert pipeline.identities(other) == {("customer_id", "c-other"), ("email", "b@x")}
    assert pipeline.counters("identity_links_skipped") == {"held_elsewhere": 1}


def test_an_old_value_the_profile_does_not_hold_is_left_alone(pipeline: Pipeline) -> None:
    other = customer(pipeline, "c-other", email="a@x")
    mpid = customer(pipeline, "c-7")
    pipeline.bulk(batch({"customer_id": "c-7"}, change("e", new=("email", "b@x"), old=("email", "a@x"))))
    pipeline.process()
    assert pipeline.identities(mpid) == {("customer_id", "c-7"), ("email", "b@x")}
    assert pipeline.identities(other) == {("customer_id", "c-other"), ("email", "a@x")}


def test_old_without_new_removes_and_new_without_old_adds(pipeline: Pipeline) -> None:
    mpid = customer(pipeline, "c-8", email="a@x")
    pipeline.bulk(batch({"customer_id": "c-8"}, change("add", new=("email", "b@x"), old=None),
                        change("remove", new=None, old=("email", "a@x"))))
    pipeline.process()
    assert pipeline.identities(mpid) == {("customer_id", "c-8"), ("email", "b@x")}


def test_segment_identify_with_a_new_email_adds_it_as_mparticle_does(pipeline: Pipeline) -> None:
    # Email is not unique by default (mParticle's default): identify adds the new value; to replace it, send a
    # user_identity_change with `old` or use IDSync modify. With a limit, the new value is refused (counted).
    def identify(message_id: str, email: str) -> None:
        pipeline.segment({"type": "identify", "userId": "u-9", "messageId": message_id, "traits": {"email": email}})
        pipeline.process()

    identify("first", "a@x")
    identify("second", "b@x")
    mpid = pipeline.owner("customer_id", "u-9")
    assert mpid is not None
    assert pipeline.identities(mpid) == {("customer_id", "u-9"), ("email", "a@x"), ("email", "b@x")}
    pipeline.identity_settings(limits={"email": 2})
    identify("third", "c@x")
    assert pipeline.identities(mpid) == {("customer_id", "u-9"), ("email", "a@x"), ("email", "b@x")}
    assert pipeline.counters("identity_links_skipped") == {"limit": 1}  # one refusal, counted once
