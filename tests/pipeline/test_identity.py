"""The identity step through the real process stage: every effect of a slice lands on the live profile."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kaon.store.outputs import OutputStore
from support.pipeline import NOW, Pipeline, a_pipeline


def batch(identities: dict[str, str], *, name: str, at: int, attributes: dict[str, Any] | None = None,
          consent: bool | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "environment": "production", "user_identities": identities, "user_attributes": attributes or {},
        "events": [{"event_type": "custom_event", "data": {
            "event_name": name, "custom_event_type": "other", "source_message_id": name,
            "timestamp_unixtime_ms": at}}],
    }
    if consent is not None:
        out["consent_state"] = {"gdpr": {"marketing": {"consented": consent, "timestamp_unixtime_ms": at}}}
    return out


@pytest.fixture
def pipeline(tmp_path: Path, database_url: str) -> Iterator[Pipeline]:
    with a_pipeline(tmp_path, "identity", url=database_url) as made:
        yield made


def test_a_merge_later_in_the_slice_moves_what_earlier_batches_wrote(pipeline: Pipeline) -> None:
    # The reproduction: P0 holds c0; one bulk request creates P1 (email x, tier gold), then merges it.
    pipeline.bulk(batch({"customer_id": "c0"}, name="first", at=NOW - 3_000))
    pipeline.process()
    p0 = pipeline.holder("customer_id", "c0")
    pipeline.bulk(batch({"email": "x@example.com"}, name="anonymous", at=NOW - 2_000, attributes={"tier": "gold"},
                        consent=True),
                  batch({"customer_id": "c0", "email": "x@example.com"}, name="login", at=NOW - 1_000))
    pipeline.process()
    assert pipeline.holder("email", "x@example.com") == p0
    tombstones = pipeline.tombstones()
    assert len(tombstones) == 1
    assert pipeline.event_owners() == {"first": p0, "anonymous": p0, "login": p0}
    assert pipeline.attributes(p0) == {"tier": "gold"}
    consent = pipeline.rows("SELECT consent FROM profiles WHERE mpid = ?", p0)[0][0]
    assert json.loads(consent)["gdpr"]["marketing"]["consented"] is True
    for gone in tombstones:
        assert not pipeline.rows("SELECT 1 FROM profile_attributes WHERE mpid = ?", gone)
        assert pipeline.rows("SELECT consent FROM profiles WHERE mpid = ?", gone)[0][0] == "{}"
        assert not pipeline.rows("SELECT 1 FROM consent_history WHERE mpid = ?", gone)


def test_delivery_jobs_of_a_slice_carry_the_live_mpid(pipeline: Pipeline) -> None:
    outputs = OutputStore(pipeline.db.conn(), pipeline.workspace_id)
    output = outputs.create_output("hook", "webhook", {"base_url": "http://127.0.0.1:9/hook"}, True)
    outputs.create_connection(pipeline.input_id, output.id, True, {})
    pipeline.bulk(batch({"customer_id": "c0"}, name="first", at=NOW - 3_000))
    pipeline.process()
    pipeline.bulk(batch({"email": "x@example.com"}, name="anonymous", at=NOW - 2_000),
                  batch({"customer_id": "c0", "email": "x@example.com"}, name="login", at=NOW - 1_000))
    pipeline.process()
    p0 = pipeline.holder("customer_id", "c0")
    jobs = pipeline.rows("SELECT j.mpid, p.mpid FROM delivery_jobs j JOIN delivery_pending p ON p.job_id = j.id")
    assert len(jobs) == 3
    assert all(job == (p0, p0) for job in jobs), jobs


def test_a_chain_of_merges_in_one_slice_ends_on_the_last_survivor(pipeline: Pipeline) -> None:
    pipeline.bulk(
        batch({"email": "a@example.com"}, name="a", at=NOW - 5_000, attributes={"a": 1}),
        batch({"other": "o1"}, name="b", at=NOW - 4_000, attributes={"b": 2}),
        batch({"email": "a@example.com", "other": "o1"}, name="ab", at=NOW - 3_000),
        batch({"customer_id": "c9"}, name="c", at=NOW - 2_000, attributes={"c": 3}),
        batch({"customer_id": "c9", "other": "o1"}, name="abc", at=NOW - 1_000),
    )
    pipeline.process()
    live = pipeline.holder("customer_id", "c9")
    assert pipeline.holder("email", "a@example.com") == live == pipeline.holder("other", "o1")
    assert set(pipeline.event_owners().values()) == {live}
    assert pipeline.attributes(live) == {"a": 1, "b": 2, "c": 3}
    assert live not in pipeline.tombstones()
