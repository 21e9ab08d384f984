"""Rejection sampling: request-line samples are bounded, and a flood of distinct refusals costs bounded memory."""

import asyncio
from collections.abc import Callable
from pathlib import Path

import msgspec

from kaon.collect.errors import CollectError
from kaon.collect.rejections import (
    MAX_OVERFLOW_KEYS,
    MERGED_MESSAGE,
    REQUEST_LINE_BYTES,
    SAMPLES_PER_SECOND,
    Rejections,
)
from kaon.log.group_commit import GroupCommitter
from kaon.log.sqlite import SqliteLogReader, SqliteLogWriter
from kaon.messages import RejectionRecord


def recorded(tmp_path: Path, fill: Callable[[Rejections], None]) -> list[RejectionRecord]:
    writer = SqliteLogWriter(tmp_path, "0")
    committer = GroupCommitter(writer)
    loop = asyncio.new_event_loop()  # append_nowait needs no running loop; the writer thread needs one set
    committer.start(loop)
    rejections = Rejections(committer)
    fill(rejections)
    rejections.flush(0)
    committer.close()
    loop.close()
    reader = SqliteLogReader(tmp_path)
    records = [msgspec.json.decode(s.entry.body, type=RejectionRecord) for s in reader.read("0", 0, 100_000)]
    reader.close()
    writer.close()
    return records


def test_request_line_sample_is_bounded(tmp_path: Path) -> None:
    scope = {"method": "GET", "path": "/nope/" + "x" * 5000, "query_string": b"a=" + b"b" * 5000}
    error = CollectError(404, "NOT_FOUND", "No endpoint at /nope/xxx.")
    [record] = recorded(tmp_path, lambda r: r.record_request(scope, error, 0))
    assert record.code == "NOT_FOUND" and record.sample is not None
    assert record.sample.startswith("GET /nope/x") and len(record.sample) <= REQUEST_LINE_BYTES


def test_distinct_refusals_past_the_budget_are_merged(tmp_path: Path) -> None:
    flood = SAMPLES_PER_SECOND + MAX_OVERFLOW_KEYS + 500

    def fill(rejections: Rejections) -> None:
        for n in range(flood):
            rejections.record(None, CollectError(404, "NOT_FOUND", f"No endpoint at /p{n}."), None, 0)

    records = recorded(tmp_path, fill)
    assert sum(r.count for r in records) == flood  # every refusal counted
    assert len(records) <= SAMPLES_PER_SECOND + MAX_OVERFLOW_KEYS + 1  # but memory and rows are bounded
    merged = [r for r in records if r.message == MERGED_MESSAGE]
    assert len(merged) == 1 and merged[0].count == 500 and merged[0].code == "NOT_FOUND"
