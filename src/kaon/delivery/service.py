"""The deliver stage: one worker per enabled output, kept in step with the config (outputs come and go)."""

import logging
import os
import time
from typing import Any

import msgspec

from kaon.delivery.retry import RetryPolicy
from kaon.delivery.worker import OutputWorker
from kaon.destinations.registry import destination
from kaon.store.db import Database

_log = logging.getLogger("kaon.delivery")
_decode = msgspec.json.Decoder()


class DeliveryService:
    def __init__(self, db: Database, policy: RetryPolicy | None = None) -> None:
        self.db = db
        self.policy = policy or RetryPolicy.from_env()
        self.workers: dict[str, tuple[str, OutputWorker]] = {}

    def refresh(self) -> None:
        rows = self.db.conn().execute(
            "SELECT id, destination, settings, updated_ms FROM outputs WHERE enabled = 1").fetchall()
        wanted: dict[str, tuple[str, str, dict[str, Any]]] = {
            r[0]: (r[1], f"{r[3]}", _decode.decode(r[2])) for r in rows}
        for output_id, (version, worker) in list(self.workers.items()):
            if output_id not in wanted or wanted[output_id][1] != version:
                worker.stop()
                del self.workers[output_id]
        for output_id, (name, version, settings) in wanted.items():
            if output_id in self.workers:
                continue
            try:
                found = destination(name)
                parsed = found.parse_settings(settings)
            except Exception:
                _log.exception("output %s cannot start (destination %s)", output_id, name)
                continue
            worker = OutputWorker(self.db, output_id, found, parsed, self.policy)
            worker.start()
            self.workers[output_id] = (version, worker)

    def stop(self) -> None:
        for _, worker in self.workers.values():
            worker.stop()
        self.workers.clear()

    def run_until(self, stop: Any, parent: int) -> None:
        while not stop.is_set() and os.getppid() == parent:
            try:
                self.refresh()
            except Exception:
                _log.exception("delivery refresh failed")
            time.sleep(0.5)
        self.stop()
