"""One worker per output: claim due jobs, transform, send, classify, record — isolated from other outputs."""

import logging
import threading
import time
from typing import Any

import httpx

from kaon.clock import now_ms
from kaon.delivery import queue
from kaon.delivery.outcomes import WAITING, per_event
from kaon.delivery.retry import RetryPolicy
from kaon.delivery.send import send
from kaon.destinations.base import Destination
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
        self._client = httpx.Client(timeout=destination.policy.timeout_s)
        self._next_send = 0.0

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=60)
        self._client.close()

    def _throttle(self) -> None:
        rate = self.destination.policy.rate_limit_rps
        if rate:
            wait = self._next_send - time.monotonic()
            if wait > 0:
                self.stop_event.wait(wait)
            self._next_send = max(self._next_send, time.monotonic()) + 1.0 / rate

    def run_once(self) -> int:
        """Deliver one claimed batch; returns how many jobs it handled."""
        conn = self.db.conn()
        jobs = queue.claim(conn, self.output_id, now_ms(), max(1, self.destination.policy.batch_size))
        if not jobs:
            return 0
        started = time.monotonic()
        try:
            requests = self.destination.transform([j.event for j in jobs], self.settings)
        except Exception as error:  # a transform bug must not lose the events: dead-letter them visibly
            _log.exception("transform failed for output %s", self.output_id)
            results = [SendResult(Outcome.ABORT, f"transform failed: {type(error).__name__}: {error}")] * len(jobs)
        else:
            sent = []
            held: set[int | None] = set()  # users with an event that must be retried: their later ones wait
            for request in requests:
                users = {jobs[i].mpid for i in request.event_indices}
                if users & held:
                    sent.append(WAITING)
                    continue
                self._throttle()
                result = send(self._client, self.destination, request, self.destination.policy.timeout_s)
                if result.outcome in (Outcome.RETRY, Outcome.RETRY_PART):
                    held |= users
                sent.append(result)
            results = per_event(len(jobs), requests, sent)
        latency = int((time.monotonic() - started) * 1000)
        queue.record(conn, self.output_id, list(zip(jobs, results, strict=True)), now_ms=now_ms(),
                     latency_ms=latency, policy=self.retry)
        return len(jobs)

    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                handled = self.run_once()
            except Exception:
                _log.exception("delivery to output %s failed; retrying", self.output_id)
                handled = 0
                self.stop_event.wait(1.0)
            if not handled:
                self.stop_event.wait(IDLE_S)
