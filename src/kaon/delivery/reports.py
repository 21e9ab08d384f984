"""Read models of delivery: per-output hourly status, system alerts, and the trace of one event."""

from typing import Any

from kaon.store.sql import Conn


def output_status(conn: Conn, workspace_id: str, output_id: str, since_ms: int,
                  until_ms: int | None = None, *, after_hour: int | None = None, limit: int = -1) -> dict[str, Any]:
    """The output's queue now and its hourly counters in [since, until), oldest hour first; `after_hour` is the
    last hour shown (limit -1: every hour)."""
    where, args = _window(since_ms, until_ms, "hour_ms")
    if after_hour is not None:
        where += " AND hour_ms > ?"
        args.append(after_hour)
    # The page's hours first: an hour gathers several counters.
    wanted = [h for (h,) in conn.execute(
        f"SELECT DISTINCT hour_ms FROM output_stats WHERE workspace_id = ? AND output_id = ?{where}"
        " ORDER BY hour_ms LIMIT ?", (workspace_id, output_id, *args, limit))]
    hours: dict[int, dict[str, Any]] = {}
    if wanted:
        for hour, metric, reason, count in conn.execute(
                "SELECT hour_ms, metric, reason, SUM(count) FROM output_stats WHERE workspace_id = ? AND output_id = ?"
                " AND hour_ms >= ? AND hour_ms <= ? GROUP BY hour_ms, metric, reason ORDER BY hour_ms",
                (workspace_id, output_id, wanted[0], wanted[-1])):
            row = hours.setdefault(hour, {"hour_start_unixtime_ms": hour, "queued": 0, "sent": 0, "failed": 0,
                                          "dead_lettered": 0, "skipped": 0, "filtered": {}, "latency_ms_total": 0})
            if metric == "filtered":
                row["filtered"][reason] = row["filtered"].get(reason, 0) + count
            else:
                row[metric] = row.get(metric, 0) + count
    for row in hours.values():
        total = row.pop("latency_ms_total")
        row["average_latency_duration_ms"] = round(total / row["sent"], 1) if row["sent"] else None
    pending, oldest = conn.execute(
        "SELECT COUNT(*), MIN(j.created_ms) FROM delivery_pending p JOIN delivery_jobs j ON j.id = p.job_id"
        " WHERE p.output_id = ?", (output_id,)).fetchone()
    return {"output_id": output_id, "queue_depth": pending, "oldest_queued_unixtime_ms": oldest,
            "hours": list(hours.values())}


def _window(since_ms: int, until_ms: int | None, column: str) -> tuple[str, list[Any]]:
    if until_ms is None:
        return f" AND {column} >= ?", [since_ms]
    return f" AND {column} >= ? AND {column} < ?", [since_ms, until_ms]


def alerts(conn: Conn, workspace_id: str, since_ms: int, until_ms: int | None = None, *,
           after: tuple[int, str] | None = None, limit: int = -1) -> list[dict[str, Any]]:
    """One alert per output per hour with failed or dead-lettered events: how many, and the last error. Newest
    hour first, then by output; `after` is the last (hour, output id) shown (limit -1: all)."""
    out = []
    where, args = _window(since_ms, until_ms, "s.hour_ms")
    if after is not None:
        where += " AND s.hour_ms <= ? AND (s.hour_ms < ? OR s.output_id > ?)"
        args.extend((after[0], after[0], after[1]))
    rows = conn.execute(
        "SELECT s.output_id, o.name, s.hour_ms, SUM(CASE WHEN s.metric = 'failed' THEN s.count ELSE 0 END),"
        " SUM(CASE WHEN s.metric = 'dead_lettered' THEN s.count ELSE 0 END) FROM output_stats s"
        f" LEFT JOIN outputs o ON o.id = s.output_id WHERE s.workspace_id = ?{where}"
        " AND s.metric IN ('failed', 'dead_lettered') GROUP BY s.output_id, s.hour_ms"
        " ORDER BY s.hour_ms DESC, s.output_id LIMIT ?", (workspace_id, *args, limit)).fetchall()
    for output_id, name, hour, failed, dead in rows:
        last = conn.execute(
            "SELECT error, status FROM delivery_attempts WHERE output_id = ? AND at_ms >= ? AND at_ms < ?"
            " AND state IN ('retry', 'dead') ORDER BY id DESC LIMIT 1", (output_id, hour, hour + 3_600_000)).fetchone()
        out.append({"output_id": output_id, "output_name": name, "hour_start_unixtime_ms": hour,
                    "failed_attempts": failed, "dead_lettered": dead,
                    "error": None if last is None else last[0], "last_status": None if last is None else last[1]})
    return out


def trace(conn: Conn, workspace_id: str, event_id: int) -> dict[str, Any] | None:
    event = conn.execute("SELECT input_id, received_ms FROM events WHERE workspace_id = ? AND id = ?",
                         (workspace_id, event_id)).fetchone()
    if event is None:
        return None
    input_id = event[0]
    seen: set[str] = set()
    routes = []
    for connection_id, reason in conn.execute(
            "SELECT connection_id, reason FROM delivery_drops WHERE event_id = ?", (event_id,)):
        seen.add(connection_id)
        routes.append({"connection_id": connection_id, "result": "filtered", "reason": reason})
    for job_id, output_id, connection_id in conn.execute(
            "SELECT id, output_id, connection_id FROM delivery_jobs WHERE event_id = ? ORDER BY id", (event_id,)):
        seen.add(connection_id)
        attempts = [{"attempt": a, "state": s, "at_unixtime_ms": t, "status": st, "error": e} for a, s, t, st, e in
                    conn.execute("SELECT attempt, state, at_ms, status, error FROM delivery_attempts WHERE job_id = ?"
                                 " ORDER BY id", (job_id,))]
        queued = conn.execute("SELECT next_attempt_ms FROM delivery_pending WHERE job_id = ?", (job_id,)).fetchone()
        state = "queued" if queued is not None else (attempts[-1]["state"] if attempts else "queued")
        routes.append({"connection_id": connection_id, "output_id": output_id, "result": state, "job_id": job_id,
                       "next_attempt_unixtime_ms": None if queued is None else queued[0], "attempts": attempts})
    for (connection_id,) in conn.execute(
            "SELECT id FROM connections WHERE workspace_id = ? AND input_id = ?", (workspace_id, input_id)):
        if connection_id not in seen:
            routes.append({"connection_id": connection_id, "result": "not_routed",
                           "reason": "the connection did not exist (or was processed later) when the event arrived"})
    return {"event_id": event_id, "input_id": input_id, "connections": routes}
