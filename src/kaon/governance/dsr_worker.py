"""Running data subject requests: pending → in_progress → completed, and their signed status callbacks.

The process stage's chore starts one worker thread per process (`ensure_worker`); the worker uses its own
connection with `secure_delete` on and short transactions, so vendor calls and file rewrites never hold the
stage's write transaction. The erasure of the main store (and the suppression of the erased identities) is
one transaction, so the identity step sees either the person or their suppression, never half of each.
"""

import logging
import os
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec

from kaon import outbound
from kaon.activation import erasure as audience_erasure
from kaon.clock import Clock, now_ms
from kaon.governance import dsr_export
from kaon.governance.dsr_erase import erase, find_subject
from kaon.governance.dsr_forward import forward, supports
from kaon.governance.dsr_keys import DOMAIN, SigningKey
from kaon.governance.dsr_scrub import scrub_files, scrub_log, scrub_postgres
from kaon.governance.dsr_store import DsrRow, DsrStore, results_url
from kaon.governance.dsr_suppress import suppress
from kaon.log.base import IngestLog
from kaon.log.factory import open_log
from kaon.store.db import Database, DatabaseUrl
from kaon.store.outputs import OutputStore
from kaon.store.sql import checkpoint, secure_delete, store_url, try_singleton_lock
from kaon.store.subject import Subject
from kaon.store.threads import StoreThread
from kaon.store.tx import transaction

_log = logging.getLogger("kaon.dsr")
DAY_MS = 86_400_000
RESULTS_MS = 7 * DAY_MS
CALLBACK_ATTEMPTS = 8
CALLBACK_CAP_S = 300.0


_json = msgspec.json.Encoder()
_subject = msgspec.json.Decoder(Subject)


def _merge(into: Subject, other: Subject) -> None:
    """Add what `other` knows of the person to `into` (before-erasure findings, or a crashed run's)."""
    into.mpids |= other.mpids
    into.identities |= other.identities
    into.attribute_values |= other.attribute_values
    into.event_ids = sorted(set(into.event_ids) | set(other.event_ids))
    audience_erasure.merge(into, other)


def _days_env(name: str, default: float) -> int:
    value = os.environ.get(name)
    return int(float(value) * DAY_MS) if value else int(default * DAY_MS)


class DsrWorker:
    def __init__(self, db: Database, data_dir: Path, *, clock: Clock = now_ms,
                 client: httpx.Client | None = None) -> None:
        self.db = db
        self.data_dir = data_dir
        self.clock = clock
        self.client = client or httpx.Client()
        self.keys = SigningKey.for_data_dir(data_dir)
        self.suppress_ms = _days_env("KAON_DSR_SUPPRESS_DAYS", 30)
        self.callback_base_s = float(os.environ.get("KAON_DSR_CALLBACK_BASE_SECONDS") or 2.0)
        self.conn = db.connect()
        secure_delete(self.conn)

    def run_once(self) -> int:
        if not try_singleton_lock(self.conn, DSR_WORKER_LOCK):
            return 0  # another process of the cluster runs the requests
        done = 0
        for row in DsrStore(self.conn).due(self.clock()):
            self.work(row)
            done += 1
        self.send_callbacks()
        return done

    # Requests
    def work(self, row: DsrRow) -> None:
        store = DsrStore(self.conn)
        if row.status == "pending":
            with transaction(self.conn):
                current = store.get(row.id)
                if current is None or current.status != "pending":
                    return  # cancelled meanwhile
                row = store.set_status(current, "in_progress", self.clock())
        if row.request_type == "erasure":
            self._erase(row)
        else:
            self._export(row)
        checkpoint(self.conn)  # old page images leave SQLite's WAL

    def _erase(self, row: DsrRow) -> None:
        store = DsrStore(self.conn)
        # The store's own ingest log: files beside SQLite, the `kaon_log` tables of a PostgreSQL store.
        log = open_log(store_url(self.conn), self.data_dir / "log")
        try:
            self._erase_with(row, store, log)
        finally:
            log.close()

    def _erase_with(self, row: DsrRow, store: DsrStore, log: IngestLog) -> None:
        before = find_subject(self.conn, row.workspace_id, row.identities)
        # Resumed after a crash: the main store may already be erased; the person as found then is kept.
        saved = store.progress(row.id)
        earlier_summary: dict[str, Any] = {}
        if saved is not None:
            _merge(before, _subject.decode(saved[0]))
            earlier_summary = saved[1]
        summary: dict[str, Any] = {"log_entries": scrub_log(log, before)}
        with transaction(self.conn):
            subject = find_subject(self.conn, row.workspace_id, row.identities)
            subject.synced = audience_erasure.find(self.conn, subject)  # forgotten by the erasure: kept to remove
            _merge(subject, before)
            summary["store"] = erase(self.conn, subject)
            now = self.clock()
            summary["suppressed"] = suppress(self.conn, row.workspace_id, subject.identities, row.id, now,
                                             now + self.suppress_ms)
            for key in ("store", "suppressed"):  # what the interrupted run already did
                if earlier_summary.get(key) and not summary[key]:
                    summary[key] = earlier_summary[key]
            store.save_progress(row.id, _json.encode(subject), summary)
            earlier = store.others_with_digests(row)
        for request_id in earlier:
            dsr_export.remove(self.data_dir, request_id)  # an earlier access export of this person
        outputs = OutputStore(self.conn, row.workspace_id).outputs()
        extensions: list[dict[str, Any]] = []
        for output in outputs:
            try:
                if output.destination == "files":
                    summary[f"files:{output.id}"] = scrub_files(output, subject)
                elif output.destination == "postgres":
                    summary[f"postgres:{output.id}"] = scrub_postgres(output, subject)
            except Exception as error:  # recorded; the rest of the erasure goes on
                _log.exception("erasure in output %s failed", output.id)
                summary[f"error:{output.id}"] = type(error).__name__
        summary["log_entries"] += scrub_log(log, subject)
        for output in outputs:
            if supports(output):
                extensions.append(forward(output, subject, self.client)
                                  if output.enabled else {"domain": output.destination, "name": output.name,
                                                          "output_id": output.id, "status": "skipped",
                                                          "status_message": "output disabled"})
        extensions += audience_erasure.remove(subject, outputs, self.client, self.clock())
        with transaction(self.conn):
            current = store.get(row.id)
            assert current is not None
            store.set_status(current, "completed", self.clock(), extensions=extensions, summary=summary)
            store.clear_progress(row.id)

    def _export(self, row: DsrRow) -> None:
        store = DsrStore(self.conn)
        subject: Subject = find_subject(self.conn, row.workspace_id, row.identities)
        export = dsr_export.collect(self.conn, subject)
        dsr_export.write(self.data_dir, row.id, export, row.request_type == "portability")
        with transaction(self.conn):
            current = store.get(row.id)
            assert current is not None
            now = self.clock()
            expires = now + RESULTS_MS
            url = results_url(current, self.keys.link_token(row.id, expires))
            store.set_status(current, "completed", now, url=url, results_expires_ms=expires,
                             summary={"profiles": len(export["profiles"]), "events": len(export["events"])})

    # Callbacks
    def send_callbacks(self) -> int:
        store = DsrStore(self.conn)
        sent = 0
        for callback_id, url, body, attempts in store.callbacks_due(self.clock(), CALLBACK_ATTEMPTS):
            headers = {"Content-Type": "application/json", "X-OpenDSR-Processor-Domain": DOMAIN,
                       "X-OpenDSR-Signature": self.keys.sign(body)}
            status: int | None = None
            try:
                response = outbound.request(self.client, "POST", url, content=body, headers=headers, timeout=10)
                status, error = response.status_code, "" if response.is_success else response.text[:200]
            except (httpx.HTTPError, outbound.Refused) as failure:
                error = f"{type(failure).__name__}: {failure}"
            attempt = attempts + 1
            if not error:
                sent += 1
                store.callback_sent(callback_id, attempt, self.clock(), status)
                continue
            delay_ms = int(min(self.callback_base_s * 2 ** attempts, CALLBACK_CAP_S) * 1000)
            store.callback_failed(callback_id, attempt, self.clock() + delay_ms, status, error)
        return sent


DSR_WORKER_LOCK = 4_242_012  # one DSR worker per cluster (PostgreSQL advisory lock)


def _loop(url: str) -> None:
    db = Database(DatabaseUrl.parse(url))
    worker = DsrWorker(db, db.data_dir)
    while True:
        try:
            worker.run_once()
        except Exception:
            _log.exception("data subject request worker failed; retrying")
        time.sleep(1.0)


# The process-stage chore: this process runs the DSR worker thread (started on first call).
ensure_worker = StoreThread("kaon-dsr", _loop).ensure
