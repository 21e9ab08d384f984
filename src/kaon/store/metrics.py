"""Hourly counters per input (received, rejected by reason, processed, duplicates) and rejection records."""

from collections import Counter
from typing import Any

from kaon.store.sql import Conn, contains_any
from kaon.store.subject import Subject

HOUR_MS = 3_600_000
# Rejection records kept per workspace, and for those of no workspace (unauthenticated: bad key, unknown path,
# CORS refusal); past it the oldest are dropped. The `rejected` counters keep counting everything.
REJECTIONS_KEPT = 10_000
# Pruning runs once every this many records, so a bucket holds at most REJECTIONS_KEPT + PRUNE_EVERY rows.
PRUNE_EVERY = 100

# Counter key: (workspace_id, input_id, hour_ms, metric, reason)
CounterKey = tuple[str, str, int, str, str]
# Counters shown split by reason in stats rows (the others are summed over their reasons).
BY_REASON = frozenset({"rejected", "alias_refused", "aliases_applied", "invalid_timestamps"})


def hour_of(ms: int) -> int:
    return ms - ms % HOUR_MS


class MetricsStore:
    def __init__(self, conn: Conn, *, rejections_kept: int = REJECTIONS_KEPT) -> None:
        self.conn = conn
        self.rejections_kept = rejections_kept

    def add(self, counts: Counter[CounterKey]) -> None:
        self.conn.executemany(
            "INSERT INTO input_stats (workspace_id, input_id, hour_ms, metric, reason, count)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (workspace_id, input_id, hour_ms, metric, reason)"
            " DO UPDATE SET count = input_stats.count + excluded.count",
            [(*key, n) for key, n in counts.items() if n],
        )

    def record_rejection(
        self, *, workspace_id: str | None, input_id: str | None, received_ms: int, status: int, code: str,
        message: str, count: int, body: bytes | None,
    ) -> None:
        row = self.conn.execute(
            "INSERT INTO rejections (workspace_id, input_id, received_ms, status, code, message, count, body)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (workspace_id, input_id, received_ms, status, code, message, count, body),
        )
        if int(row.fetchone()[0]) % PRUNE_EVERY == 0:
            self.prune_rejections()

    def prune_rejections(self) -> None:
        """Drop the oldest records of every bucket (a workspace, or none) past `rejections_kept`."""
        self.conn.execute(
            "DELETE FROM rejections WHERE id IN (SELECT id FROM (SELECT id, row_number() OVER"
            " (PARTITION BY workspace_id ORDER BY id DESC) AS newer FROM rejections) AS ranked WHERE newer > ?)",
            (self.rejections_kept,))

    def stats(self, workspace_id: str, since_ms: int = 0, until_ms: int | None = None, *, input_id: str | None = None,
              after: tuple[int, str] | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """One row per (hour, input), oldest first, hours in [since, until); `after` is the last (hour, input) shown."""
        where, args = " AND hour_ms >= ?", [workspace_id, since_ms]
        if until_ms is not None:
            where += " AND hour_ms < ?"
            args.append(until_ms)
        if input_id is not None:
            where += " AND input_id = ?"
            args.append(input_id)
        if after is not None:
            where += " AND hour_ms >= ? AND (hour_ms > ? OR input_id > ?)"
            args.extend((after[0], after[0], after[1]))
        keys = None
        if limit is not None:  # the page's (hour, input) pairs first: a row gathers several counters
            keys = self.conn.execute(
                f"SELECT DISTINCT hour_ms, input_id FROM input_stats WHERE workspace_id = ?{where}"
                " ORDER BY hour_ms, input_id LIMIT ?", (*args, limit)).fetchall()
            if not keys:
                return []
            where += " AND hour_ms <= ?"
            args.append(keys[-1][0])
        rows = self.conn.execute(
            "SELECT input_id, hour_ms, metric, reason, count FROM input_stats"
            f" WHERE workspace_id = ?{where} ORDER BY hour_ms, input_id, metric, reason", args,
        )
        wanted = None if keys is None else {(input_, hour) for hour, input_ in keys}
        table: dict[tuple[str, int], dict[str, Any]] = {}
        for input_id_, hour_ms, metric, reason, count in rows:
            if wanted is not None and (input_id_, hour_ms) not in wanted:
                continue
            row = table.setdefault((input_id_, hour_ms), {
                "input_id": input_id_, "hour_start_unixtime_ms": hour_ms, "batches_received": 0,
                "events_received": 0, "events_processed": 0, "events_duplicate": 0, "rejected": {},
            })
            if metric in BY_REASON:
                by_reason = row.setdefault(metric, {})
                by_reason[reason] = by_reason.get(reason, 0) + count
            else:
                row[metric] = row.get(metric, 0) + count
        return list(table.values())

    def reasons(self, workspace_id: str, metric: str, since_ms: int = 0, until_ms: int | None = None, *,
                after: tuple[int, str, str] | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """One counter's rows by reason (e.g. `consent_unknown_purpose` by purpose): per hour, input and reason,
        oldest first; `after` is the last (hour, input, reason) shown."""
        sql = ("SELECT input_id, hour_ms, reason, count FROM input_stats WHERE workspace_id = ? AND metric = ?"
               " AND hour_ms >= ?")
        args: list[object] = [workspace_id, metric, since_ms]
        if until_ms is not None:
            sql += " AND hour_ms < ?"
            args.append(until_ms)
        if after is not None:
            sql += " AND hour_ms >= ? AND (hour_ms > ? OR (input_id, reason) > (?, ?))"
            args.extend((after[0], after[0], after[1], after[2]))
        rows = self.conn.execute(sql + " ORDER BY hour_ms, input_id, reason LIMIT ?", (*args, limit))
        return [{"input_id": i, "hour_start_unixtime_ms": h, "reason": r, "count": c} for i, h, r, c in rows]

    def rejections(self, workspace_id: str, limit: int, after: int | None = None, *,
                   unowned: bool = False) -> list[dict[str, Any]]:
        """The workspace's rejections (and, when `unowned`, those of no workspace), newest first; `after` is the
        id of the last rejection shown."""
        owner = "(workspace_id = ? OR workspace_id IS NULL)" if unowned else "workspace_id = ?"
        rows = self.conn.execute(
            "SELECT id, workspace_id, input_id, received_ms, status, code, message, count, body FROM rejections"
            f" WHERE {owner} AND id < ? ORDER BY id DESC LIMIT ?",
            (workspace_id, 2**63 - 1 if after is None else after, limit),
        )
        return [
            {"id": id_, "workspace_id": workspace, "input_id": input_id, "received_unixtime_ms": received,
             "status": status, "code": code, "message": message, "count": count,
             "body_sample": None if body is None else bytes(body).decode("utf-8", "replace")}
            for id_, workspace, input_id, received, status, code, message, count, body in rows
        ]


def erase_subject(conn: Conn, subject: Subject) -> dict[str, int]:
    """Delete the rejections of the workspace (or of none) whose body or message names the person; rows deleted."""
    d = conn.dialect
    body_match, body_args = contains_any(d, f"lower({d.text('body')})", subject.needles())
    # Messages name ids too: a refused alias names its previousId, userId and both profiles ("profile 123 (").
    message_match, message_args = contains_any(d, "lower(message)", subject.message_needles()
                                               + [f"profile {m} " for m in sorted(subject.mpids)])
    cursor = conn.execute(f"DELETE FROM rejections WHERE (workspace_id = ? OR workspace_id IS NULL) AND"
                          f" ({body_match} OR {message_match})", (subject.workspace_id, *body_args, *message_args))
    return {"rejections": cursor.rowcount}
