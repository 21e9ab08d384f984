"""The delivery queue in SQL: claim due jobs (per-user order), record outcomes, dead letters, replay.

Per (output, mpid) order: a job is claimable only when no earlier job of the same user for the same output
is still waiting to be retried; other users' jobs are not held back.
"""

from collections import Counter
from dataclasses import dataclass

import msgspec

from kaon.delivery.outcomes import WAITING
from kaon.delivery.retry import RetryPolicy
from kaon.destinations.event import DeliveryEvent
from kaon.destinations.outcome import Outcome, SendResult
from kaon.store.metrics import hour_of
from kaon.store.sql import Conn
from kaon.store.tx import transaction

_unpack = msgspec.msgpack.Decoder(DeliveryEvent)
TERMINAL = {Outcome.DELIVERED: "delivered", Outcome.SKIP: "skipped", Outcome.ABORT: "dead"}


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
    rows = conn.execute(
        "SELECT p.job_id, j.workspace_id, j.connection_id, j.event_id, p.mpid, p.attempts, p.first_attempt_ms,"
        " j.payload FROM delivery_pending p INDEXED BY delivery_pending_in_order"  # job order, no sort
        " JOIN delivery_jobs j ON j.id = p.job_id"
        " WHERE p.output_id = ? AND p.next_attempt_ms <= ? AND NOT EXISTS ("
        "   SELECT 1 FROM delivery_pending e WHERE e.output_id = p.output_id AND e.mpid IS p.mpid"
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
    stats: Counter[tuple[str, str, str, int, str, str]] = Counter()
    hour = hour_of(now_ms)
    with transaction(conn):
        for job, result in outcomes:
            if result is WAITING:
                continue  # held back behind the same user's earlier event: not an attempt, stays due
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
        conn.executemany(
            "INSERT INTO output_stats (workspace_id, output_id, connection_id, hour_ms, metric, reason, count)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (workspace_id, output_id, connection_id, hour_ms, metric,"
            " reason) DO UPDATE SET count = count + excluded.count",
            [(*key, n) for key, n in stats.items() if n])
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
    counts: Counter[tuple[str, str, str, int, str, str]] = Counter(
        (ws, output_id, connection, hour_of(now_ms), "dead_lettered", "") for _, _, ws, connection in rows)
    conn.executemany(
        "INSERT INTO output_stats (workspace_id, output_id, connection_id, hour_ms, metric, reason, count)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (workspace_id, output_id, connection_id, hour_ms, metric,"
        " reason) DO UPDATE SET count = count + excluded.count", [(*key, n) for key, n in counts.items()])
    conn.execute("DELETE FROM delivery_pending WHERE output_id = ?", (output_id,))
    return len(rows)
