"""Hourly counters per input (received, rejected by reason, processed, duplicates) and rejection records."""

import sqlite3
from collections import Counter
from typing import Any

HOUR_MS = 3_600_000

# Counter key: (workspace_id, input_id, hour_ms, metric, reason)
CounterKey = tuple[str, str, int, str, str]


def hour_of(ms: int) -> int:
    return ms - ms % HOUR_MS


class MetricsStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def add(self, counts: Counter[CounterKey]) -> None:
        self.conn.executemany(
            "INSERT INTO input_stats (workspace_id, input_id, hour_ms, metric, reason, count)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (workspace_id, input_id, hour_ms, metric, reason)"
            " DO UPDATE SET count = count + excluded.count",
            [(*key, n) for key, n in counts.items() if n],
        )

    def record_rejection(
        self, *, workspace_id: str | None, input_id: str | None, received_ms: int, status: int, code: str,
        message: str, count: int, body: bytes | None,
    ) -> None:
        self.conn.execute(
            "INSERT INTO rejections (workspace_id, input_id, received_ms, status, code, message, count, body)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (workspace_id, input_id, received_ms, status, code, message, count, body),
        )

    def stats(self, workspace_id: str, since_ms: int) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT input_id, hour_ms, metric, reason, count FROM input_stats"
            " WHERE workspace_id = ? AND hour_ms >= ? ORDER BY hour_ms, input_id, metric, reason",
            (workspace_id, since_ms),
        )
        table: dict[tuple[str, int], dict[str, Any]] = {}
        for input_id, hour_ms, metric, reason, count in rows:
            row = table.setdefault((input_id, hour_ms), {
                "input_id": input_id, "hour_start_unixtime_ms": hour_ms, "batches_received": 0,
                "events_received": 0, "events_processed": 0, "events_duplicate": 0, "rejected": {},
            })
            if metric == "rejected":
                row["rejected"][reason] = row["rejected"].get(reason, 0) + count
            else:
                row[metric] = row.get(metric, 0) + count
        return list(table.values())

    def rejections(self, workspace_id: str, limit: int) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT id, input_id, received_ms, status, code, message, count, body FROM rejections"
            " WHERE workspace_id = ? OR workspace_id IS NULL ORDER BY id DESC LIMIT ?",
            (workspace_id, limit),
        )
        return [
            {"id": id_, "input_id": input_id, "received_unixtime_ms": received, "status": status, "code": code,
             "message": message, "count": count,
             "body_sample": None if body is None else bytes(body).decode("utf-8", "replace")}
            for id_, input_id, received, status, code, message, count, body in rows
        ]
