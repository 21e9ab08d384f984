"""An output worker against a local vendor: transform, send in parallel per-user lanes, record."""

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest

from kaon.clock import now_ms
from kaon.delivery.retry import RetryPolicy
from kaon.delivery.worker import OutputWorker
from kaon.destinations.base import HttpRequest
from kaon.destinations.event import DeliveryEvent
from kaon.destinations.webhook import Webhook, WebhookSettings
from kaon.destinations.webhook import destination as webhook
from kaon.store.db import Database, DatabaseUrl
from support.capture import Answer, Captured, VendorCapture
from support.events import custom
from support.waiting import eventually

OUT = "out_hook"
USER_A, USER_B = 1001, 2002
# Short delays so a retry is due again quickly; the window keeps jobs alive for the whole test.
QUICK = RetryPolicy(base_s=0.05, cap_s=0.1, max_attempts=5, window_s=600.0)
OK = Answer(200, {"Content-Type": "application/json"}, b"{}")
_pack = msgspec.msgpack.Encoder()


class Vendor(VendorCapture):
    """Answers 503 to `failing` users' events; logs (event name, status) in arrival order."""

    def __init__(self) -> None:
        super().__init__()
        self.failing: set[str] = set()
        self.answered: list[tuple[str, int]] = []
        self.first_held: threading.Event | None = None  # when set: hold the first request until it is set

    def _record(self, captured: Captured) -> Answer:
        answer = super()._record(captured)
        body = captured.json()
        hold = self.first_held
        if hold is not None and body["data"]["event_name"] == "a1":
            hold.wait(timeout=10)
        with self._lock:
            if body["mpid"] in self.failing:
                answer = Answer(503, {}, b"busy")
            self.answered.append((body["data"]["event_name"], answer.status))
        return answer

    def log(self, prefix: str = "") -> list[tuple[str, int]]:
        with self._lock:
            return [a for a in self.answered if a[0].startswith(prefix)]


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(DatabaseUrl.parse(f"sqlite:///{tmp_path / 'kaon.db'}"))


@pytest.fixture
def vendor() -> Iterator[Vendor]:
    started = Vendor()
    started.start()
    yield started
    started.stop()


def make_worker(db: Database, url: str, destination: Webhook = webhook) -> OutputWorker:
    return OutputWorker(db, OUT, destination, destination.parse_settings({"base_url": f"{url}/hook"}), QUICK)


@pytest.fixture
def workers() -> Iterator[list[OutputWorker]]:
    made: list[OutputWorker] = []
    yield made
    for worker in made:  # driven by run_once, never started: let its thread exit at once, then close it
        worker.stop_event.set()
        worker.start()
        worker.stop()


def enqueue(db: Database, mpid: int, name: str, source_message_id: str | None = None) -> int:
    """A pending job for `name`'s event; with `source_message_id` (the webhook's `Idempotency-Key`) when given."""
    conn = db.conn()
    event = msgspec.structs.replace(custom(len(name), name=name), mpid=mpid)
    if source_message_id is not None:
        event = msgspec.structs.replace(event, source_message_id=source_message_id)
    cursor = conn.execute(
        "INSERT INTO delivery_jobs (workspace_id, output_id, connection_id, event_id, mpid, created_ms, payload)"
        " VALUES ('ws_test', ?, 'con_a', ?, ?, ?, ?)", (OUT, event.event_id, mpid, now_ms(), _pack.encode(event)))
    job_id = int(cursor.lastrowid or 0)
    conn.execute("INSERT INTO delivery_pending (job_id, output_id, mpid, next_attempt_ms) VALUES (?, ?, ?, 0)",
                 (job_id, OUT, mpid))
    return job_id


def attempts(db: Database, job_id: int) -> list[tuple[int, str, int | None, str | None]]:
    rows = db.conn().execute("SELECT attempt, state, status, error FROM delivery_attempts WHERE job_id = ? ORDER BY id",
                             (job_id,))
    return [tuple(r) for r in rows]


def queued(db: Database) -> int:
    return int(db.conn().execute("SELECT COUNT(*) FROM delivery_pending").fetchone()[0])


def drain(worker: OutputWorker, db: Database) -> None:
    eventually(lambda: worker.run_once() >= 0 and queued(db) == 0, timeout=10, what="queue drained")


def names(vendor: VendorCapture) -> list[str]:
    return [r.json()["data"]["event_name"] for r in vendor.requests()]


def test_delivers_each_event_to_the_webhook(db: Database, vendor: Vendor, workers: list[OutputWorker]) -> None:
    jobs = [enqueue(db, USER_A, n) for n in ("a1", "a2", "a3")]
    worker = make_worker(db, vendor.url)
    workers.append(worker)
    assert worker.run_once() == 3
    assert names(vendor) == ["a1", "a2", "a3"]
    first = vendor.requests()[0]
    assert (first.method, first.route) == ("POST", "/hook")
    assert first.json()["mpid"] == str(USER_A) and first.json()["event_type"] == "custom_event"
    assert all(attempts(db, j) == [(1, "delivered", 200, None)] for j in jobs)
    assert queued(db) == 0
    assert worker.run_once() == 0


def test_503_then_200_delivers_in_order(db: Database, vendor: Vendor, workers: list[OutputWorker]) -> None:
    first, second = enqueue(db, USER_A, "a1"), enqueue(db, USER_A, "a2")
    vendor.answer_next(1, 503, headers={"Retry-After": "0"})
    worker = make_worker(db, vendor.url)
    workers.append(worker)
    assert worker.run_once() == 2
    assert names(vendor) == ["a1"]  # the user's second event waits: it is not sent, and not an attempt
    assert attempts(db, first) == [(1, "retry", 503, "HTTP 503")]
    assert attempts(db, second) == []
    drain(worker, db)
    assert names(vendor) == ["a1", "a1", "a2"]
    assert attempts(db, first) == [(1, "retry", 503, "HTTP 503"), (2, "delivered", 200, None)]
    assert attempts(db, second) == [(1, "delivered", 200, None)]


class Broken(Webhook):
    """A destination whose transform has a bug."""

    def transform(self, events: Sequence[DeliveryEvent], settings: Any) -> list[HttpRequest]:
        raise KeyError("currency")


def test_a_transform_exception_dead_letters_with_the_error(db: Database, vendor: Vendor,
                                                           workers: list[OutputWorker]) -> None:
    jobs = [enqueue(db, USER_A, "a1"), enqueue(db, USER_B, "b1")]
    worker = make_worker(db, vendor.url, Broken())
    workers.append(worker)
    assert worker.run_once() == 2
    assert vendor.requests() == []
    for job in jobs:
        assert attempts(db, job) == [(1, "dead", None, "transform failed: KeyError: 'currency'")]
    assert queued(db) == 0
    dead = db.conn().execute("SELECT SUM(count) FROM output_stats WHERE output_id = ? AND metric = 'dead_lettered'",
                             (OUT,)).fetchone()[0]
    assert dead == 2


def test_per_user_order_across_parallel_lanes(db: Database, vendor: Vendor, workers: list[OutputWorker]) -> None:
    names_in_order = ["a1", "b1", "a2", "b2", "a3", "b3"]
    jobs = {n: enqueue(db, USER_A if n[0] == "a" else USER_B, n) for n in names_in_order}
    vendor.failing = {str(USER_A)}
    # a1's answer is held until user B's last event has arrived: B's lane runs beside A's, not after it.
    vendor.first_held = threading.Event()
    worker = make_worker(db, vendor.url)
    workers.append(worker)
    done = threading.Thread(target=worker.run_once)
    done.start()
    eventually(lambda: "b3" in names(vendor), timeout=10, what="user B's events sent while a1 is in flight")
    vendor.first_held.set()
    done.join(timeout=30)
    assert vendor.log("b") == [("b1", 200), ("b2", 200), ("b3", 200)]
    assert vendor.log("a") == [("a1", 503)]  # a2, a3 were not sent behind the failed a1
    assert attempts(db, jobs["a2"]) == attempts(db, jobs["a3"]) == []
    # While a1 waits for its retry, A's later events stay queued; once the vendor is back, all go, in order.
    vendor.failing = set()
    drain(worker, db)
    assert [n for n, status in vendor.log("a") if status == 200] == ["a1", "a2", "a3"]
    assert vendor.log("a")[0] == ("a1", 503) and vendor.log("a")[-3:] == [("a1", 200), ("a2", 200), ("a3", 200)]
    assert vendor.log("b") == [("b1", 200), ("b2", 200), ("b3", 200)]  # never sent twice
    assert [a[1] for a in attempts(db, jobs["a1"])][-1] == "delivered"


def test_a_non_ascii_message_id_is_sent_percent_encoded(db: Database, vendor: Vendor,
                                                        workers: list[OutputWorker]) -> None:
    """Fix: `r-café` in the Idempotency-Key raised UnicodeEncodeError out of `send`; the claimed batch was
    dropped unrecorded and re-sent every second, other users' events with it."""
    cafe = enqueue(db, USER_A, "a1", "r-café")
    other = enqueue(db, USER_B, "b1")
    worker = make_worker(db, vendor.url)
    workers.append(worker)
    assert worker.run_once() == 2
    assert attempts(db, cafe) == [(1, "delivered", 200, None)]
    assert attempts(db, other) == [(1, "delivered", 200, None)]
    assert sorted(names(vendor)) == ["a1", "b1"]  # each sent once
    keys = {r.json()["data"]["event_name"]: r.headers["idempotency-key"] for r in vendor.requests()}
    assert keys["a1"] == "r-caf%C3%A9"
    assert worker.run_once() == 0


def test_a_newline_in_a_message_id_does_not_hold_the_users_later_events(db: Database, vendor: Vendor,
                                                                        workers: list[OutputWorker]) -> None:
    """Fix: a newline made the header illegal, an error taken for a network failure: retried for 24 h while
    the user's later events waited behind it."""
    first = enqueue(db, USER_A, "a1", "line\nbreak")
    later = enqueue(db, USER_A, "a2")
    worker = make_worker(db, vendor.url)
    workers.append(worker)
    assert worker.run_once() == 2
    assert attempts(db, first) == [(1, "delivered", 200, None)]
    assert attempts(db, later) == [(1, "delivered", 200, None)]
    assert names(vendor) == ["a1", "a2"]
    assert vendor.requests()[0].headers["idempotency-key"] == "line%0Abreak"


def test_a_header_that_cannot_be_sent_dead_letters_with_the_error(db: Database, vendor: Vendor,
                                                                  workers: list[OutputWorker]) -> None:
    """A custom header value that is not ASCII, stored by an earlier release: every job gets a recorded abort
    (dead letter, alert, replayable) instead of an exception escaping `send` and the batch re-sent forever."""
    jobs = [enqueue(db, USER_A, "a1"), enqueue(db, USER_B, "b1")]
    # Saved before headers were checked at creation (the constructor does not validate, as an old row was not).
    settings = WebhookSettings(base_url=f"{vendor.url}/hook", headers={"X-Team": "équipe"})
    worker = OutputWorker(db, OUT, webhook, settings, QUICK)
    workers.append(worker)
    assert worker.run_once() == 2
    assert vendor.requests() == []
    for job in jobs:
        [(attempt, state, status, error)] = attempts(db, job)
        assert (attempt, state, status) == (1, "dead", None)
        assert error is not None and error.startswith("request could not be sent:") and "X-Team" in error
    assert queued(db) == 0
    assert worker.run_once() == 0
    dead = db.conn().execute("SELECT SUM(count) FROM output_stats WHERE output_id = ? AND metric = 'dead_lettered'",
                             (OUT,)).fetchone()[0]
    assert dead == 2
