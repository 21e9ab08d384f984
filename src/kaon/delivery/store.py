"""Owner of the delivery tables: jobs, the pending queue, attempts, drops and per-hour output counters.

Enqueue (fan-out), claim due jobs (per-user order), record outcomes, dead letters, replay, the read models
(per-output hourly status, system alerts, the trace of one event) and the subject's erasure.

Per (output, mpid) order: a job is claimable only when no earlier job of the same user for the same output
is still waiting to be retried; other users' jobs are not held back.
"""

from collections import Counter
from dataclasses import dataclass
from typing import Any

import msgspec

from kaon.delivery.outcomes import WAITING
from kaon.delivery.retry import RetryPolicy
from kaon.destinations.event import DeliveryEvent
from kaon.destinations.outcome import Outcome, SendResult
from kaon.store.events import input_of_event
from kaon.store.metrics import hour_of
from kaon.store.outputs import OutputStore
from kaon.store.sql import Conn, chunks, marks, rows_limit
from kaon.store.subject import Subject
from kaon.store.tx import transaction

_unpack = msgspec.msgpack.Decoder(DeliveryEvent)
_pack = msgspec.msgpack.Encoder()
TERMINAL = {Outcome.DELIVERED: "delivered", Outcome.SKIP: "skipped", Outcome.ABORT: "dead"}
# How long a claimed job stays in one worker's hands (PostgreSQL) before it is due again for any worker.
CLAIM_MS = 60_000
# SQLite walks the queue in job order by this index (no sort); PostgreSQL's planner picks it by itself.
_IN_JOB_ORDER = {True: " INDEXED BY delivery_pending_in_order", False: ""}
# A per-hour output counter (workspace, output, connection, hour, metric, reason).
OutputKey = tuple[str, str, str, int, str, str]
_ADD_COUNTS = ("INSERT INTO output_stats (workspace_id, output_id, connection_id, hour_ms, metric, reason, count)"
               " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (workspace_id, output_id, connection_id, hour_ms, metric,"
               " reason) DO UPDATE SET count = output_stats.count + excluded.count")


@dataclass(frozen=True)
class Job:
    id: int
    workspace_id: str
    connection_id: str
    event_id: int
    mpid: int | None
    attempts: int
    first_attempt_ms: int | None
    event: DeliveryEvent


def claim(conn: Conn, output_id: str, now_ms: int, limit: int) -> list[Job]:
    """Due jobs of the output in job order, at most `limit`, none behind an earlier job of the same user that
    waits (for a retry, or in another worker's hands).

    SQLite: one deliver process holds each output, so claiming is a read. PostgreSQL: deliver workers on several
    machines share an output. Claims of one output are serialised (a transaction-scoped advisory lock, held
    for the claim only), and each claimed job is marked in flight for `CLAIM_MS` by moving its next attempt
    past it. That makes the same "an earlier job of the user waits" rule hold the user's later jobs back from
    every other worker, so per-(output, user) order holds across machines. A worker that dies leaves its jobs
    due again after `CLAIM_MS` (delivery is at least once; the idempotency key makes a repeat harmless).
    """
    if conn.dialect.sqlite:
        return due(conn, output_id, now_ms, limit)
    with transaction(conn):
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (output_id,))
        jobs = due(conn, output_id, now_ms, limit)
        for chunk in chunks([j.id for j in jobs]):
            conn.execute(f"UPDATE delivery_pending SET next_attempt_ms = ? WHERE job_id IN ({marks(chunk)})",
                         (now_ms + CLAIM_MS, *chunk))
    return jobs


def reserve_sends(conn: Conn, output_id: str, count: int, rate_per_s: float, now_ms: int) -> int:
    """The time (ms) from which `count` sends of this output may start, its rate limit shared by every worker.

    SQLite: the one worker of the output paces itself, so now. PostgreSQL: the output's next free slot moves
    on by `count / rate` seconds in one statement; a worker waits until the time it is given.
    """
    if conn.dialect.sqlite or rate_per_s <= 0 or count <= 0:
        return now_ms
    span = int(count * 1000 / rate_per_s)
    row = conn.execute(
        "INSERT INTO output_rates (output_id, next_slot_ms) VALUES (?, ?) ON CONFLICT (output_id) DO UPDATE"
        " SET next_slot_ms = greatest(output_rates.next_slot_ms, ?) + ? RETURNING next_slot_ms",
        (output_id, now_ms + span, now_ms, span)).fetchone()
    return int(row[0]) - span


def due(conn: Conn, output_id: str, now_ms: int, limit: int) -> list[Job]:
    """The jobs `claim` would take now, without taking them (a read)."""
    rows = conn.execute(
        "SELECT p.job_id, j.workspace_id, j.connection_id, j.event_id, p.mpid, p.attempts, p.first_attempt_ms,"
        f" j.payload FROM delivery_pending p{_IN_JOB_ORDER[conn.dialect.sqlite]}"
        " JOIN delivery_jobs j ON j.id = p.job_id"
        " WHERE p.output_id = ? AND p.next_attempt_ms <= ? AND NOT EXISTS ("
        "   SELECT 1 FROM delivery_pending e WHERE e.output_id = p.output_id AND e.mpid IS NOT DISTINCT FROM p.mpid"
        "   AND e.job_id < p.job_id AND e.next_attempt_ms > ?)"
        " ORDER BY p.job_id LIMIT ?",
        (output_id, now_ms, now_ms, limit),
    ).fetchall()
    return [Job(id=r[0], workspace_id=r[1], connection_id=r[2], event_id=r[3], mpid=r[4], attempts=r[5],
                first_attempt_ms=r[6], event=_unpack.decode(r[7])) for r in rows]


def next_due_ms(conn: Conn, output_id: str) -> int | None:
    row = conn.execute("SELECT MIN(next_attempt_ms) FROM delivery_pending WHERE output_id = ?", (output_id,)).fetchone()
    return None if row[0] is None else int(row[0])


def record(conn: Conn, output_id: str, outcomes: list[tuple[Job, SendResult]], *, now_ms: int,
           latency_ms: int, policy: RetryPolicy) -> Counter[str]:
    """Append an attempt row per job and move it on (done, dead, or due again later). One transaction."""
    counts: Counter[str] = Counter()
    stats: Counter[OutputKey] = Counter()
    hour = hour_of(now_ms)
    with transaction(conn):
        for job, result in outcomes:
            if result is WAITING:  # held back behind the same user's earlier event: not an attempt, due again now
                conn.execute("UPDATE delivery_pending SET next_attempt_ms = ? WHERE job_id = ?", (now_ms, job.id))
                continue
            attempt = job.attempts + 1
            first = job.first_attempt_ms or now_ms
            state = TERMINAL.get(result.outcome)
            if state is None:  # retry or retry_part
                if policy.exhausted(attempt, first, now_ms):
                    state = "dead"
                else:
                    due = now_ms + int(policy.delay_s(attempt, result.retry_after_s) * 1000)
                    conn.execute("UPDATE delivery_pending SET attempts = ?, first_attempt_ms = ?, next_attempt_ms = ?"
                                 " WHERE job_id = ?", (attempt, first, due, job.id))
                    state = "retry"
            terminal = state != "retry"
            if terminal:
                conn.execute("DELETE FROM delivery_pending WHERE job_id = ?", (job.id,))
            conn.execute(
                "INSERT INTO delivery_attempts (job_id, output_id, attempt, state, terminal, at_ms, latency_ms, status,"
                " error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job.id, output_id, attempt, state, int(terminal), now_ms, latency_ms, result.status,
                 result.message or None))
            metric = {"delivered": "sent", "retry": "failed", "dead": "dead_lettered", "skipped": "skipped"}[state]
            counts[metric] += 1
            stats[(job.workspace_id, output_id, job.connection_id, hour, metric, "")] += 1
            if state == "delivered":  # send latency; the average is latency_ms_total / sent
                stats[(job.workspace_id, output_id, job.connection_id, hour, "latency_ms_total", "")] += latency_ms
        add_output_counts(conn, stats)
    return counts


def replay(conn: Conn, workspace_id: str, output_id: str, since_ms: int, *, dead_only: bool,
           now_ms: int, until_ms: int | None = None) -> list[int]:
    """Queue jobs of this output created in [since_ms, until_ms) again (only dead-lettered ones with `dead_only`);
    returns their ids."""
    with transaction(conn):
        rows = conn.execute(
            "SELECT j.id, j.mpid FROM delivery_jobs j"
            " WHERE j.workspace_id = ? AND j.output_id = ? AND j.created_ms >= ? AND j.created_ms < ?"
            " AND NOT EXISTS (SELECT 1 FROM delivery_pending p WHERE p.job_id = j.id)"
            " AND (? = 0 OR (SELECT a.state FROM delivery_attempts a WHERE a.job_id = j.id ORDER BY a.id DESC LIMIT 1)"
            "     = 'dead') ORDER BY j.id",
            (workspace_id, output_id, since_ms, 2**63 - 1 if until_ms is None else until_ms, int(dead_only))).fetchall()
        conn.executemany("INSERT INTO delivery_pending (job_id, output_id, mpid, next_attempt_ms) VALUES (?, ?, ?, ?)",
                         [(job_id, output_id, mpid, now_ms) for job_id, mpid in rows])
        conn.executemany(
            "INSERT INTO delivery_attempts (job_id, output_id, attempt, state, terminal, at_ms) VALUES (?, ?, 0,"
            " 'replayed', 0, ?)", [(job_id, output_id, now_ms) for job_id, _ in rows])
    return [int(job_id) for job_id, _ in rows]


def dead_letter_pending(conn: Conn, output_id: str, reason: str, now_ms: int) -> int:
    """Dead-letter every queued job of an output (when it is deleted with force), visibly."""
    rows = conn.execute(
        "SELECT p.job_id, p.attempts, j.workspace_id, j.connection_id FROM delivery_pending p"
        " JOIN delivery_jobs j ON j.id = p.job_id WHERE p.output_id = ?", (output_id,)).fetchall()
    conn.executemany(
        "INSERT INTO delivery_attempts (job_id, output_id, attempt, state, terminal, at_ms, error)"
        " VALUES (?, ?, ?, 'dead', 1, ?, ?)", [(j, output_id, a + 1, now_ms, reason) for j, a, _, _ in rows])
    counts: Counter[OutputKey] = Counter(
        (ws, output_id, connection, hour_of(now_ms), "dead_lettered", "") for _, _, ws, connection in rows)
    add_output_counts(conn, counts)
    conn.execute("DELETE FROM delivery_pending WHERE output_id = ?", (output_id,))
    return len(rows)


def enqueue(tx: Conn, workspace_id: str, output_id: str, connection_id: str, event_id: int, mpid: int | None,
            now_ms: int, event: DeliveryEvent, *, numbered: bool = False) -> int:
    """Queue one event for one output (fan-out, inside the slice's transaction); returns the job id. `numbered`:
    the event carries the job id as its `event_id` (an audience membership change has no stored event, and
    outputs that key on event ids, such as files, need one unique and stable across retries)."""
    job_id = int(tx.execute(
        "INSERT INTO delivery_jobs (workspace_id, output_id, connection_id, event_id, mpid, created_ms, payload)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (workspace_id, output_id, connection_id, event_id, mpid, now_ms, b"" if numbered else _pack.encode(event))
    ).fetchone()[0])
    if numbered:
        tx.execute("UPDATE delivery_jobs SET payload = ? WHERE id = ?",
                   (_pack.encode(msgspec.structs.replace(event, event_id=job_id)), job_id))
    tx.execute("INSERT INTO delivery_pending (job_id, output_id, mpid, next_attempt_ms) VALUES (?, ?, ?, ?)",
               (job_id, output_id, mpid, now_ms))
    return job_id


def record_drop(tx: Conn, event_id: int, connection_id: str, reason: str) -> None:
    """Why a connection did not forward an event (for its trace)."""
    tx.execute("INSERT INTO delivery_drops (event_id, connection_id, reason) VALUES (?, ?, ?)"
               " ON CONFLICT (event_id, connection_id) DO UPDATE SET reason = excluded.reason",
               (event_id, connection_id, reason))


def add_output_counts(tx: Conn, counts: Counter[OutputKey]) -> None:
    tx.executemany(_ADD_COUNTS, [(*key, n) for key, n in counts.items() if n])


def queued_count(conn: Conn, output_id: str) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM delivery_pending WHERE output_id = ?", (output_id,)).fetchone()[0])


def still_queued(conn: Conn, job_ids: list[int]) -> int:
    """How many of these jobs are still waiting to be delivered."""
    return sum(int(conn.execute(f"SELECT COUNT(*) FROM delivery_pending WHERE job_id IN ({marks(chunk)})",
                                chunk).fetchone()[0]) for chunk in chunks(job_ids))


def erase_subject(conn: Conn, subject: Subject) -> dict[str, int]:
    """The person's delivery rows: jobs of their events or profiles (pending, attempts, the job) and drops."""
    counts: dict[str, int] = {}
    mpids = sorted(subject.mpids)
    job_ids: set[int] = set()
    for chunk in chunks(subject.event_ids):
        job_ids |= {int(r[0]) for r in conn.execute(
            f"SELECT id FROM delivery_jobs WHERE event_id IN ({marks(chunk)})", chunk)}
        counts["delivery_drops"] = counts.get("delivery_drops", 0) + conn.execute(
            f"DELETE FROM delivery_drops WHERE event_id IN ({marks(chunk)})", chunk).rowcount
    for chunk in chunks(mpids):
        job_ids |= {int(r[0]) for r in conn.execute(
            f"SELECT id FROM delivery_jobs WHERE workspace_id = ? AND mpid IN ({marks(chunk)})",
            (subject.workspace_id, *chunk))}
    for chunk in chunks(sorted(job_ids)):
        for table, column in (("delivery_pending", "job_id"), ("delivery_attempts", "job_id"),
                              ("delivery_jobs", "id")):
            counts[table] = counts.get(table, 0) + conn.execute(
                f"DELETE FROM {table} WHERE {column} IN ({marks(chunk)})", chunk).rowcount
    return {k: v for k, v in counts.items() if v}


# Read models

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
        " ORDER BY hour_ms LIMIT ?", (workspace_id, output_id, *args, rows_limit(limit)))]
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
        "SELECT s.output_id, s.hour_ms, SUM(CASE WHEN s.metric = 'failed' THEN s.count ELSE 0 END),"
        " SUM(CASE WHEN s.metric = 'dead_lettered' THEN s.count ELSE 0 END) FROM output_stats s"
        f" WHERE s.workspace_id = ?{where}"
        " AND s.metric IN ('failed', 'dead_lettered') GROUP BY s.output_id, s.hour_ms"
        " ORDER BY s.hour_ms DESC, s.output_id LIMIT ?", (workspace_id, *args, rows_limit(limit))).fetchall()
    names = {o.id: o.name for o in OutputStore(conn, workspace_id).outputs()} if rows else {}
    for output_id, hour, failed, dead in rows:
        name = names.get(output_id)
        last = conn.execute(
            "SELECT error, status FROM delivery_attempts WHERE output_id = ? AND at_ms >= ? AND at_ms < ?"
            " AND state IN ('retry', 'dead') ORDER BY id DESC LIMIT 1", (output_id, hour, hour + 3_600_000)).fetchone()
        out.append({"output_id": output_id, "output_name": name, "hour_start_unixtime_ms": hour,
                    "failed_attempts": failed, "dead_lettered": dead,
                    "error": None if last is None else last[0], "last_status": None if last is None else last[1]})
    return out


def _job_route(conn: Conn, job_id: int, output_id: str, connection_id: str) -> dict[str, Any]:
    attempts = [{"attempt": a, "state": s, "at_unixtime_ms": t, "status": st, "error": e} for a, s, t, st, e in
                conn.execute("SELECT attempt, state, at_ms, status, error FROM delivery_attempts WHERE job_id = ?"
                             " ORDER BY id", (job_id,))]
    queued = conn.execute("SELECT next_attempt_ms FROM delivery_pending WHERE job_id = ?", (job_id,)).fetchone()
    state = "queued" if queued is not None else (attempts[-1]["state"] if attempts else "queued")
    return {"connection_id": connection_id, "output_id": output_id, "result": state, "job_id": job_id,
            "next_attempt_unixtime_ms": None if queued is None else queued[0], "attempts": attempts}


def profile_jobs(conn: Conn, workspace_id: str, connection_id: str, mpid: int, limit: int) -> list[dict[str, Any]]:
    """The newest jobs of one connection for one profile, oldest first, each with what was sent (the event) and
    its attempts (an audience connection's trace)."""
    rows = conn.execute("SELECT id, output_id, created_ms, payload FROM delivery_jobs WHERE workspace_id = ?"
                        " AND connection_id = ? AND mpid = ? ORDER BY id DESC LIMIT ?",
                        (workspace_id, connection_id, mpid, rows_limit(limit))).fetchall()
    out = []
    for job_id, output_id, created, payload in reversed(rows):
        event = _unpack.decode(payload)
        out.append({**_job_route(conn, int(job_id), str(output_id), connection_id),
                    "created_unixtime_ms": int(created), "event": event})
    return out


def trace(conn: Conn, workspace_id: str, event_id: int) -> dict[str, Any] | None:
    input_id = input_of_event(conn, workspace_id, event_id)
    if input_id is None:
        return None
    seen: set[str] = set()
    routes = []
    for connection_id, reason in conn.execute(
            "SELECT connection_id, reason FROM delivery_drops WHERE event_id = ?", (event_id,)):
        seen.add(connection_id)
        routes.append({"connection_id": connection_id, "result": "filtered", "reason": reason})
    for job_id, output_id, connection_id in conn.execute(
            "SELECT id, output_id, connection_id FROM delivery_jobs WHERE event_id = ? ORDER BY id", (event_id,)):
        seen.add(connection_id)
        routes.append(_job_route(conn, job_id, output_id, connection_id))
    for connection_id in (c.id for c in OutputStore(conn, workspace_id).connections(input_id)):
        if connection_id not in seen:
            routes.append({"connection_id": connection_id, "result": "not_routed",
                           "reason": "the connection did not exist (or was processed later) when the event arrived"})
    return {"event_id": event_id, "input_id": input_id, "connections": routes}
