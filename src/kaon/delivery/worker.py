"""One worker per output: claim due jobs, transform, send, classify, record — isolated from other outputs."""

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from kaon.clock import now_ms
from kaon.delivery import store
from kaon.delivery.outcomes import WAITING, per_event
from kaon.delivery.retry import RetryPolicy
from kaon.delivery.send import send
from kaon.destinations.base import Destination, HttpRequest
from kaon.destinations.outcome import Outcome, SendResult
from kaon.store.db import Database

_log = logging.getLogger("kaon.delivery")
IDLE_S = 0.05


class OutputWorker:
    def __init__(self, db: Database, output_id: str, destination: Destination, settings: Any,
                 policy: RetryPolicy) -> None:
        self.db = db
        self.output_id = output_id
        self.destination = destination
        self.settings = settings
        self.retry = policy
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"kaon-deliver-{output_id}", daemon=True)
        self._client = httpx.Client(timeout=destination.policy.timeout_s,
                                    limits=httpx.Limits(max_connections=max(1, destination.policy.max_concurrency)))
        self._pool = ThreadPoolExecutor(max_workers=max(1, destination.policy.max_concurrency),
                                        thread_name_prefix=f"kaon-send-{output_id}")
        self._throttle_lock = threading.Lock()
        self._next_send = 0.0

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread.is_alive():
            self.thread.join(timeout=60)
        self._pool.shutdown(wait=True)
        self._client.close()

    def _throttle(self) -> None:
        rate = self.destination.policy.rate_limit_rps
        if rate:
            with self._throttle_lock:
                slot = max(self._next_send, time.monotonic())
                self._next_send = slot + 1.0 / rate
            wait = slot - time.monotonic()
            if wait > 0:
                self.stop_event.wait(wait)

    def _wait_for_slot(self, conn: Any, count: int) -> None:
        """With deliver workers on several machines, the output's rate limit is shared: wait for our slot."""
        rate = self.destination.policy.rate_limit_rps
        if not rate:
            return
        start = store.reserve_sends(conn, self.output_id, count, rate, now_ms())
        wait = (start - now_ms()) / 1000
        if wait > 0:
            self.stop_event.wait(wait)

    def run_once(self) -> int:
        """Deliver one claimed batch; returns how many jobs it handled."""
        conn = self.db.conn()
        jobs = store.claim(conn, self.output_id, now_ms(), max(1, self.destination.policy.batch_size))
        if not jobs:
            return 0
        started = time.monotonic()
        try:
            direct = self.destination.deliver([j.event for j in jobs], self.settings)
            requests = [] if direct is not None else self.destination.transform([j.event for j in jobs], self.settings)
        except Exception as error:  # a transform bug must not lose the events: dead-letter them visibly
            _log.exception("transform failed for output %s", self.output_id)
            results = [SendResult(Outcome.ABORT, f"transform failed: {type(error).__name__}: {error}")] * len(jobs)
        else:
            try:
                if direct is not None:
                    results = direct
                else:
                    self._wait_for_slot(conn, len(requests))
                    sent = self._send_all(requests, [j.mpid for j in jobs])
                    results = per_event(len(jobs), requests, sent)
            except Exception as error:  # recorded, never an unrecorded batch claimed again every second
                _log.exception("send failed for output %s", self.output_id)
                results = [SendResult(Outcome.ABORT, f"send failed: {type(error).__name__}: {error}")] * len(jobs)
        latency = int((time.monotonic() - started) * 1000)
        store.record(conn, self.output_id, list(zip(jobs, results, strict=True)), now_ms=now_ms(),
                     latency_ms=latency, policy=self.retry)
        return len(jobs)

    def _send_in_order(self, requests: list[HttpRequest], users: list[set[int | None]]) -> list[SendResult]:
        """Send one after another; once a user's request must be retried, that user's later ones wait."""
        held: set[int | None] = set()
        out = []
        for request, who in zip(requests, users, strict=True):
            if who & held:
                out.append(WAITING)
                continue
            self._throttle()
            result = send(self._client, self.destination, request, self.destination.policy.timeout_s)
            if result.outcome in (Outcome.RETRY, Outcome.RETRY_PART):
                held |= who
            out.append(result)
        return out

    def _send_all(self, requests: list[HttpRequest], mpids: list[int | None]) -> list[SendResult]:
        """Requests of different users go out in parallel (up to the destination's concurrency); each user's
        requests stay in order."""
        users = [{mpids[i] for i in r.event_indices} for r in requests]
        concurrency = self.destination.policy.max_concurrency
        if concurrency <= 1 or len(requests) <= 1 or any(len(u) != 1 for u in users):
            return self._send_in_order(requests, users)
        lanes: dict[int | None, list[int]] = {}
        for position, who in enumerate(users):
            lanes.setdefault(next(iter(who)), []).append(position)
        out: list[SendResult] = [WAITING] * len(requests)

        def run_lane(positions: list[int]) -> None:
            for position, result in zip(positions, self._send_in_order(
                    [requests[p] for p in positions], [users[p] for p in positions]), strict=True):
                out[position] = result

        list(self._pool.map(run_lane, lanes.values()))
        return out

    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                handled = self.run_once()
            except Exception:
                _log.exception("delivery to output %s failed; retrying", self.output_id)
                handled = 0
                self.stop_event.wait(1.0)
            if not handled:
                self.stop_event.wait(self._idle_s())

    def _idle_s(self) -> float:
        """Sleep until the next job is due (at least IDLE_S, at most a second: new jobs may arrive)."""
        due = store.next_due_ms(self.db.conn(), self.output_id)
        if due is None:
            return IDLE_S
        return min(1.0, max(IDLE_S, (due - now_ms()) / 1000))
