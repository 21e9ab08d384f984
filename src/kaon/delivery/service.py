"""The deliver stage: one worker per enabled output, kept in step with the config (outputs come and go)."""

import logging
import os
import time
from typing import Any

from kaon.activation.sync import ensure_sync_worker
from kaon.clock import now_ms
from kaon.delivery.retry import RetryPolicy
from kaon.delivery.worker import OutputWorker
from kaon.destinations.registry import destination
from kaon.store.db import Database
from kaon.store.outputs import enabled_outputs, seal_stored

_log = logging.getLogger("kaon.delivery")


class DeliveryService:
    def __init__(self, db: Database, policy: RetryPolicy | None = None) -> None:
        self.db = db
        self.policy = policy or RetryPolicy.from_env()
        self.workers: dict[str, tuple[str, OutputWorker]] = {}
        if sealed := seal_stored(db.conn()):  # plaintext output secrets from an earlier release
            _log.info("sealed the secrets of %d outputs", sealed)

    def refresh(self) -> None:
        # Audience connections turn membership changes into this stage's jobs, on a thread of their own (one per
        # cluster: kaon.activation.sync), off the process stage's interpreter.
        ensure_sync_worker(self.db.conn(), now_ms())
        wanted: dict[str, tuple[str, str, dict[str, Any]]] = {
            output_id: (name, f"{updated}", settings)
            for output_id, name, settings, updated in enabled_outputs(self.db.conn())}
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
