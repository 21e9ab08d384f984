"""Quarantine replay through the log interface: onto the PostgreSQL log's replay partition."""

import json
from pathlib import Path

from kaon.governance import quarantine
from kaon.governance.quarantine import QuarantineStore
from kaon.log.base import REPLAY_PARTITION
from kaon.log.postgres import PostgresLog
from kaon.store.db import Database, DatabaseUrl
from kaon.store.offsets import OffsetStore
from kaon.store.tx import transaction


def test_replay_appends_to_the_replay_partition_and_drops_what_was_processed(tmp_path: Path,
                                                                            pg_log: PostgresLog) -> None:
    conn = Database(DatabaseUrl.parse(f"sqlite:///{tmp_path / 'kaon.db'}")).conn()
    batch = json.dumps({"events": [{"event_type": "custom_event", "data": {"event_name": f"e{i}"}}
                                   for i in range(3)], "environment": "development"}).encode()
    with transaction(conn):
        ids = [quarantine.add(conn, workspace_id="ws", input_id="in", plan_id="p", plan_version=1,
                              received_ms=5, now=6, reasons=[], blocked_events=[1], batch=batch) for _ in range(2)]
    store = QuarantineStore(conn, "ws")
    assert store.replay(pg_log, [ids[0]]) == [ids[0]]
    [first] = pg_log.read(REPLAY_PARTITION, 0, 10)
    replayed = json.loads(first.entry.body)
    assert [e["data"]["event_name"] for e in replayed["events"]] == ["e1"]
    assert replayed["source_info"]["replay_request_id"] == f"kaon-quarantine:{ids[0]}"
    with transaction(conn):
        OffsetStore(conn).set(REPLAY_PARTITION, first.seq)  # the process stage applied it
    assert store.replay(pg_log, None) == ids
    assert [s.seq for s in pg_log.read(REPLAY_PARTITION, 0, 10)] == [2, 3]  # the processed one was truncated
