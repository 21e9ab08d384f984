"""The delivery queue on a real store, SQLite and PostgreSQL: per-user order, append-only attempts, replay."""

from collections.abc import Iterator

import msgspec
import pytest

from kaon.delivery import store as queue
from kaon.delivery.outcomes import WAITING
from kaon.delivery.retry import RetryPolicy
from kaon.destinations.outcome import Outcome, SendResult
from kaon.store.db import Database
from support.events import custom

OUT = "out_a"
WS = "ws_test"
T0 = 1_800_000_000_000
SECOND = 1_000
POLICY = RetryPolicy(base_s=10.0, cap_s=10.0, max_attempts=3, window_s=60.0)
DELIVERED = SendResult(Outcome.DELIVERED, status=200)
LATER = SendResult(Outcome.RETRY, "HTTP 503", 503)
_pack = msgspec.msgpack.Encoder()


@pytest.fixture
def db(database: Database) -> Iterator[Database]:
    # The attempts table is append-only: make any UPDATE of it fail loudly.
    conn = database.conn()
    if conn.dialect.sqlite:
        conn.execute("CREATE TRIGGER attempts_append_only BEFORE UPDATE ON delivery_attempts"
                     " BEGIN SELECT RAISE(ABORT, 'delivery_attempts is append-only'); END")
    else:
        conn.execute("CREATE FUNCTION refuse_update() RETURNS trigger AS $$ BEGIN"
                     " RAISE EXCEPTION 'delivery_attempts is append-only'; END $$ LANGUAGE plpgsql")
        conn.execute("CREATE TRIGGER attempts_append_only BEFORE UPDATE ON delivery_attempts"
                     " FOR EACH ROW EXECUTE FUNCTION refuse_update()")
    yield database


def enqueue(db: Database, mpid: int | None, *, output: str = OUT, due_ms: int = T0, created_ms: int = T0,
            workspace: str = WS) -> int:
    """A job as fan-out writes it: the immutable job row plus its queue entry."""
    conn = db.conn()
    event = msgspec.structs.replace(custom(1), mpid=mpid)
    job_id = queue.enqueue(conn, workspace, output, "con_a", 1000 + (mpid or 0), mpid, created_ms, event)
    conn.execute("UPDATE delivery_pending SET next_attempt_ms = ? WHERE job_id = ?", (due_ms, job_id))
    return job_id


def ids(jobs: list[queue.Job]) -> list[int]:
    return [j.id for j in jobs]


def attempts(db: Database, job_id: int | None = None) -> list[tuple[int, int, str, int, int, int | None, str | None]]:
    sql = "SELECT job_id, attempt, state, terminal, at_ms, status, error FROM delivery_attempts"
    args: tuple[int, ...] = ()
    if job_id is not None:
        sql += " WHERE job_id = ?"
        args = (job_id,)
    return [tuple(r) for r in db.conn().execute(sql + " ORDER BY id", args)]


def pending(db: Database) -> dict[int, tuple[int, int | None, int]]:
    rows = db.conn().execute("SELECT job_id, attempts, first_attempt_ms, next_attempt_ms FROM delivery_pending")
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def stats(db: Database) -> dict[str, int]:
    rows = db.conn().execute("SELECT metric, SUM(count) FROM output_stats WHERE output_id = ? GROUP BY metric", (OUT,))
    return {r[0]: r[1] for r in rows}


def record(db: Database, outcomes: list[tuple[queue.Job, SendResult]], now: int,
           policy: RetryPolicy = POLICY) -> None:
    queue.record(db.conn(), OUT, outcomes, now_ms=now, latency_ms=12, policy=policy)


def claim_one(db: Database, job_id: int, now: int = T0) -> queue.Job:
    return next(j for j in queue.due(db.conn(), OUT, now, 100) if j.id == job_id)


def test_claim_returns_due_jobs_of_this_output_in_order(db: Database) -> None:
    a1, b1, a2 = enqueue(db, 1), enqueue(db, 2), enqueue(db, 1)
    enqueue(db, 3, output="out_other")
    future = enqueue(db, 4, due_ms=T0 + SECOND)
    jobs = queue.due(db.conn(), OUT, T0, 100)
    assert ids(jobs) == [a1, b1, a2]
    assert [(j.mpid, j.workspace_id, j.connection_id, j.attempts, j.first_attempt_ms) for j in jobs] == [
        (1, WS, "con_a", 0, None), (2, WS, "con_a", 0, None), (1, WS, "con_a", 0, None)]
    assert jobs[1].event.mpid == 2 and jobs[1].event.source_message_id == custom(1).source_message_id
    assert ids(queue.due(db.conn(), OUT, T0, 2)) == [a1, b1]
    assert ids(queue.due(db.conn(), OUT, T0 + SECOND, 100)) == [a1, b1, a2, future]
    assert queue.next_due_ms(db.conn(), OUT) == T0
    assert queue.next_due_ms(db.conn(), "out_none") is None


def test_a_user_waiting_for_a_retry_holds_back_only_their_own_later_jobs(db: Database) -> None:
    a1, b1, a2, b2, a3 = enqueue(db, 1), enqueue(db, 2), enqueue(db, 1), enqueue(db, 2), enqueue(db, 1)
    anon1, anon2 = enqueue(db, None), enqueue(db, None)
    jobs = {j.id: j for j in queue.due(db.conn(), OUT, T0, 100)}
    # a1 and anon1 fail; everything else of those users waits; user 2 is delivered.
    record(db, [(jobs[a1], LATER), (jobs[b1], DELIVERED), (jobs[a2], WAITING), (jobs[b2], DELIVERED),
                (jobs[a3], WAITING), (jobs[anon1], LATER), (jobs[anon2], WAITING)], T0)
    b3 = enqueue(db, 2)
    a4 = enqueue(db, 1)
    now = T0 + SECOND
    assert ids(queue.due(db.conn(), OUT, now, 100)) == [b3]
    due = pending(db)[a1][2]
    assert T0 + 5 * SECOND <= due <= T0 + 10 * SECOND  # 10 s backoff with jitter in [50%, 100%]
    # Once the earliest job is due again, the user's jobs come back together, in order.
    both_due = max(due, pending(db)[anon1][2])
    assert ids(queue.due(db.conn(), OUT, both_due, 100)) == [a1, a2, a3, anon1, anon2, b3, a4]


def test_record_appends_attempts_and_moves_jobs_on(db: Database) -> None:
    job_ids = [enqueue(db, m) for m in (1, 2, 3, 4)]
    jobs = queue.due(db.conn(), OUT, T0, 100)
    record(db, list(zip(jobs, [DELIVERED, LATER, SendResult(Outcome.ABORT, "HTTP 400: bad", 400),
                               SendResult(Outcome.SKIP, "not taken")], strict=True)), T0)
    assert attempts(db) == [
        (job_ids[0], 1, "delivered", 1, T0, 200, None),
        (job_ids[1], 1, "retry", 0, T0, 503, "HTTP 503"),
        (job_ids[2], 1, "dead", 1, T0, 400, "HTTP 400: bad"),
        (job_ids[3], 1, "skipped", 1, T0, None, "not taken"),
    ]
    assert set(pending(db)) == {job_ids[1]}
    assert pending(db)[job_ids[1]][:2] == (1, T0)
    assert stats(db) == {"sent": 1, "failed": 1, "dead_lettered": 1, "skipped": 1, "latency_ms_total": 12}
    first = attempts(db)
    # The retried job's next attempt is a new row; the earlier rows are unchanged.
    due = pending(db)[job_ids[1]][2]
    record(db, [(claim_one(db, job_ids[1], due), DELIVERED)], due)
    assert attempts(db)[:4] == first
    assert attempts(db)[4:] == [(job_ids[1], 2, "delivered", 1, due, 200, None)]
    assert pending(db) == {}
    assert stats(db)["sent"] == 2


def test_waiting_is_not_an_attempt(db: Database) -> None:
    job_id = enqueue(db, 1)
    record(db, [(claim_one(db, job_id), WAITING)], T0)
    assert attempts(db) == []
    assert pending(db) == {job_id: (0, None, T0)}
    assert stats(db) == {}


def test_retry_after_sets_the_next_attempt(db: Database) -> None:
    job_id = enqueue(db, 1)
    record(db, [(claim_one(db, job_id), SendResult(Outcome.RETRY, "HTTP 429", 429, 120.0))], T0)
    assert pending(db)[job_id] == (1, T0, T0 + 120 * SECOND)
    assert ids(queue.due(db.conn(), OUT, T0 + 119 * SECOND, 10)) == []


def fail_at(db: Database, job_id: int, now: int) -> None:
    """Record a failed attempt at `now` (claimed whenever it is due: the backoff is not under test here)."""
    record(db, [(claim_one(db, job_id, T0 + 1_000 * SECOND), LATER)], now)


def test_dead_lettered_exactly_when_both_attempts_and_window_are_spent(db: Database) -> None:
    quick, slow = enqueue(db, 1), enqueue(db, 2)
    # `quick` spends its 3 attempts within seconds: the 60 s window keeps it alive.
    for n in range(3):
        fail_at(db, quick, T0 + n * 10 * SECOND)
    assert attempts(db, quick)[-1][2] == "retry" and quick in pending(db)
    fail_at(db, quick, T0 + 59 * SECOND)  # attempt 4, window not yet spent
    assert attempts(db, quick)[-1][2] == "retry"
    fail_at(db, quick, T0 + 60 * SECOND)  # both spent now
    assert attempts(db, quick)[-1][1:4] == (5, "dead", 1)
    assert quick not in pending(db)
    # `slow` spends its window after 2 attempts: it is retried until it has had 3.
    fail_at(db, slow, T0)
    fail_at(db, slow, T0 + 61 * SECOND)
    assert attempts(db, slow)[-1][2] == "retry"
    fail_at(db, slow, T0 + 62 * SECOND)
    assert [a[2] for a in attempts(db, slow)] == ["retry", "retry", "dead"]
    assert slow not in pending(db)
    assert stats(db)["dead_lettered"] == 2


def test_a_failed_retry_part_counts_like_a_retry(db: Database) -> None:
    job_id = enqueue(db, 1)
    one_shot = RetryPolicy(base_s=1, cap_s=1, max_attempts=1, window_s=0)
    record(db, [(claim_one(db, job_id), SendResult(Outcome.RETRY_PART, "throttled", 429))], T0, one_shot)
    assert attempts(db) == [(job_id, 1, "dead", 1, T0, 429, "throttled")]


def die(db: Database, job_id: int) -> None:
    record(db, [(claim_one(db, job_id), SendResult(Outcome.ABORT, "HTTP 401", 401))], T0)


def test_replay_dead_jobs_only(db: Database) -> None:
    dead, done, queued = enqueue(db, 1), enqueue(db, 2), enqueue(db, 3)
    old_dead = enqueue(db, 4, created_ms=T0 - 10 * SECOND)
    die(db, dead)
    die(db, old_dead)
    record(db, [(claim_one(db, done), DELIVERED)], T0)
    replayed = queue.replay(db.conn(), WS, OUT, T0 - SECOND, dead_only=True, now_ms=T0 + SECOND)
    assert replayed == [dead]
    assert set(pending(db)) == {queued, dead}
    assert pending(db)[dead] == (0, None, T0 + SECOND)  # a fresh start: attempts and window again
    assert attempts(db, dead)[-1] == (dead, 0, "replayed", 0, T0 + SECOND, None, None)
    # Replaying again does not queue it twice.
    assert queue.replay(db.conn(), WS, OUT, T0 - SECOND, dead_only=True, now_ms=T0 + SECOND) == []
    record(db, [(claim_one(db, dead, T0 + SECOND), DELIVERED)], T0 + SECOND)
    assert [a[2] for a in attempts(db, dead)] == ["dead", "replayed", "delivered"]


def test_replay_all_jobs_of_the_output_and_workspace(db: Database) -> None:
    dead, done, skipped = enqueue(db, 1), enqueue(db, 2), enqueue(db, 3)
    queued = enqueue(db, 4)
    elsewhere = enqueue(db, 5, workspace="ws_other")
    other_output = enqueue(db, 6, output="out_other")
    die(db, dead)
    record(db, [(claim_one(db, done), DELIVERED), (claim_one(db, skipped), SendResult(Outcome.SKIP))], T0)
    record(db, [(claim_one(db, elsewhere), DELIVERED)], T0)
    queue.record(db.conn(), "out_other", [(queue.due(db.conn(), "out_other", T0, 1)[0], DELIVERED)], now_ms=T0,
                 latency_ms=1, policy=POLICY)
    assert queue.replay(db.conn(), WS, OUT, T0, dead_only=False, now_ms=T0 + SECOND) == [dead, done, skipped]
    assert set(pending(db)) == {dead, done, skipped, queued}
    assert other_output not in pending(db)


def test_dead_letter_pending_dead_letters_every_queued_job_of_the_output(db: Database) -> None:
    fresh, retried = enqueue(db, 1), enqueue(db, 2)
    other = enqueue(db, 3, output="out_other")
    fail_at(db, retried, T0)
    assert queue.dead_letter_pending(db.conn(), OUT, "output deleted", T0 + SECOND) == 2
    assert set(pending(db)) == {other}
    assert attempts(db, fresh) == [(fresh, 1, "dead", 1, T0 + SECOND, None, "output deleted")]
    assert attempts(db, retried)[-1] == (retried, 2, "dead", 1, T0 + SECOND, None, "output deleted")
    assert queue.due(db.conn(), OUT, T0 + 100 * SECOND, 10) == []
    # Dead letters can be replayed.
    assert queue.replay(db.conn(), WS, OUT, 0, dead_only=True, now_ms=T0 + 2 * SECOND) == [fresh, retried]


def test_erase_subject_removes_their_jobs_and_drops_and_keeps_the_others(db: Database) -> None:
    from kaon.store.subject import Subject

    conn = db.conn()
    theirs = [enqueue(db, 7), enqueue(db, 7)]
    other = enqueue(db, 8)
    queue.record(conn, OUT, [(j, LATER) for j in queue.due(conn, OUT, T0, 10) if j.id == theirs[0]],
                 now_ms=T0, latency_ms=1, policy=POLICY)
    queue.record_drop(conn, 1007, "con_b", "filtered")
    queue.record_drop(conn, 1008, "con_b", "filtered")
    subject = Subject(workspace_id=WS, mpids={7}, identities=set(), attribute_values=set(), event_ids=[1007])

    erased = queue.erase_subject(conn, subject)

    assert erased == {"delivery_jobs": 2, "delivery_pending": 2, "delivery_attempts": 1, "delivery_drops": 1}
    assert [j.id for j in queue.due(conn, OUT, T0 + 60 * SECOND, 10)] == [other]
    assert conn.execute("SELECT event_id FROM delivery_drops").fetchall() == [(1008,)]
    assert not set(theirs) & {r[0] for r in conn.execute("SELECT job_id FROM delivery_attempts")}


def test_a_claim_takes_jobs_in_flight_so_a_second_worker_keeps_each_users_order(db: Database) -> None:
    a1, b1, a2 = enqueue(db, 1), enqueue(db, 2), enqueue(db, 1)
    first = queue.claim(db.conn(), OUT, T0, 1)
    second = queue.claim(db.conn(), OUT, T0, 100)
    assert ids(first) == [a1]
    if db.dialect == "sqlite":  # one deliver process per output: a claim is a read
        assert ids(second) == [a1, b1, a2]
        return
    # Another worker gets user 2's job, never user 1's later one while the first is in flight.
    assert ids(second) == [b1]
    record(db, [(first[0], DELIVERED)], T0)
    assert ids(queue.claim(db.conn(), OUT, T0, 100)) == [a2]
    # Workers that died: their jobs are due again for anyone after CLAIM_MS.
    assert ids(queue.due(db.conn(), OUT, T0 + queue.CLAIM_MS - 1, 100)) == []
    assert ids(queue.due(db.conn(), OUT, T0 + queue.CLAIM_MS, 100)) == [b1, a2]


def test_the_rate_limit_is_shared_by_the_workers_of_an_output(db: Database) -> None:
    conn = db.conn()
    starts = [queue.reserve_sends(conn, OUT, 10, 10.0, T0) for _ in range(3)]
    if db.dialect == "sqlite":
        assert starts == [T0] * 3
        return
    assert starts == [T0, T0 + 1000, T0 + 2000]  # 10 sends at 10/s each: one second apart
    assert queue.reserve_sends(conn, OUT, 10, 10.0, T0 + 10_000) == T0 + 10_000  # idle: no debt carried
