"""Data-quality warnings through the real process stage: unreadable times are replaced, counted and listed.

Also: the listed records are bounded per slice, and every warning code is catalogued and documented.
"""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kaon.log.base import KIND_SEGMENT_PREFIX
from kaon.pipeline.quality import MAX_RECORDS_PER_CODE, WARNING_CODES
from support.pipeline import NOW, Pipeline, a_pipeline

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def pipeline(tmp_path: Path, database_url: str) -> Iterator[Pipeline]:
    with a_pipeline(tmp_path, url=database_url) as made:
        yield made


def segment_track(message_id: str, **times: Any) -> dict[str, Any]:
    return {"type": "track", "event": "Played", "userId": "u-1", "messageId": message_id, **times}


def test_an_unreadable_segment_timestamp_is_replaced_counted_and_listed(pipeline: Pipeline) -> None:
    pipeline.segment(segment_track("bad", timestamp="next tuesday"), segment_track("good", timestamp=NOW - 5))
    pipeline.process()
    assert pipeline.event_times() == {"bad": NOW, "good": NOW - 5}
    assert pipeline.counters("invalid_timestamps") == {"timestamp": 1}
    assert pipeline.counters("rejected") == {}  # accepted: a warning, not a refusal
    (warning,) = pipeline.warnings()
    assert (warning["code"], warning["status"], warning["count"]) == ("INVALID_TIMESTAMP", 200, 1)
    assert warning["message"] == ("`timestamp` \"next tuesday\" is not a readable time - at `$.batch[0].timestamp`;"
                                  " the event time is the receive time (message id bad)")
    assert "next tuesday" in (warning["body_sample"] or "")


def test_a_single_call_path_names_its_fields_at_the_top(pipeline: Pipeline) -> None:
    pipeline.append(KIND_SEGMENT_PREFIX + "track", segment_track("one", originalTimestamp="x", sentAt=-3))
    pipeline.process()
    assert pipeline.counters("invalid_timestamps") == {"originalTimestamp": 1, "sentAt": 1}
    assert [w["message"].split(" - at ")[1].split(";")[0] for w in pipeline.warnings()] == [
        "`$.originalTimestamp`", "`$.sentAt`"]


def test_absurd_mparticle_timestamps_take_the_receive_time_with_a_warning(pipeline: Pipeline) -> None:
    events = [{"event_type": "custom_event", "data": {"event_name": "e", "custom_event_type": "other",
                                                      "source_message_id": name, "timestamp_unixtime_ms": ms}}
              for name, ms in (("negative", -86_400_000), ("far", 10**17), ("fine", NOW - 7))]
    pipeline.bulk({"environment": "production", "user_identities": {"customer_id": "c"}, "events": events})
    pipeline.process()
    assert pipeline.event_times() == {"negative": NOW, "far": NOW, "fine": NOW - 7}
    assert pipeline.counters("invalid_timestamps") == {"timestamp_unixtime_ms": 2}
    first, second = pipeline.warnings()
    assert (first["status"], first["code"]) == (202, "INVALID_TIMESTAMP")
    assert first["message"] == ("`timestamp_unixtime_ms` -86400000 is not a readable time - at"
                                " `$[0].events[0].data.timestamp_unixtime_ms`; the event time is the receive time"
                                " (message id negative)")
    assert "events[1]" in second["message"]


def test_listed_warnings_are_bounded_per_slice_and_the_rest_counted(pipeline: Pipeline) -> None:
    calls = [segment_track(f"m{i}", timestamp=f"bad-{i}") for i in range(MAX_RECORDS_PER_CODE + 7)]
    pipeline.segment(*calls)
    pipeline.process()
    listed = pipeline.warnings()
    assert len(listed) == MAX_RECORDS_PER_CODE + 1
    assert sum(w["count"] for w in listed) == len(calls)
    assert listed[-1]["count"] == 7 and listed[-1]["body_sample"] is None
    assert listed[-1]["message"].startswith("7 more `INVALID_TIMESTAMP` warnings")
    assert pipeline.counters("invalid_timestamps") == {"timestamp": len(calls)}


def test_every_warning_code_is_documented_and_raised() -> None:
    docs = (ROOT / "docs/api/collect.md").read_text() + (ROOT / "docs/identity.md").read_text()
    sources = "".join(p.read_text() for p in (ROOT / "src/kaon").rglob("*.py"))
    for code, (counter, _meaning) in WARNING_CODES.items():
        assert f"`{code}`" in docs, f"{code} is not documented"
        assert f"`{counter}`" in docs, f"the {counter} counter is not documented"
    raised = set(re.findall(r'"(INVALID_TIMESTAMP)"', sources)) | {
        f"ALIAS_REFUSED_{reason.upper()}" for reason in re.findall(r'_refused\("([a-z_]+)"', sources)}
    assert raised <= set(WARNING_CODES), sorted(raised - set(WARNING_CODES))
