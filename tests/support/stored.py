"""What a real `kaon serve` stored, for the SDK end-to-end tests: events by message id or name, batches.

Events are read through the admin API; a batch's own context (user identities and attributes, consent,
data plan), which the admin API does not show, is read-only from the SQLite store the server wrote.
"""

import json
import sqlite3
import time
import uuid
from typing import Any

from support.server import KaonServer
from support.waiting import eventually


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_tag() -> str:
    """A random tag that makes a test's names and ids its own in a shared server."""
    return uuid.uuid4().hex[:12]


def stored_batch(server: KaonServer, batch_id: int) -> dict[str, Any]:
    """The batch context Kaon stored (identities, consent, data plan, ...), read-only from its store."""
    uri = f"file:{server.data_dir / 'kaon.db'}?mode=ro"
    with sqlite3.connect(uri, uri=True, timeout=30) as conn:
        row = conn.execute("SELECT body FROM batches WHERE id = ?", (batch_id,)).fetchone()
    assert row is not None, f"batch {batch_id} not in the store"
    body: dict[str, Any] = json.loads(bytes(row[0]))
    return body


def stored_by_message_id(server: KaonServer, message_ids: set[str]) -> dict[str, dict[str, Any]]:
    """The stored events with these `source_message_id`s, by id, once every one is there."""

    def probe() -> dict[str, dict[str, Any]]:
        got = {e["source_message_id"]: e for e in server.events() if e["source_message_id"] in message_ids}
        assert set(got) == message_ids, f"missing {sorted(message_ids - set(got))}"
        return got

    return eventually(probe, timeout=20, what="every call's events stored")


def check_calls_stored(server: KaonServer, stored: dict[str, dict[str, Any]], *, since_ms: int, until_ms: int,
                       customer_id: str) -> None:
    """Each stored event of an SDK's calls: its time in [since_ms, until_ms], the `web` input's, its batch the
    user's (the customer id the SDK identified)."""
    web = server.input("web")["id"]
    for event in stored.values():
        assert since_ms <= event["timestamp_unixtime_ms"] <= until_ms, event
        assert event["input_id"] == web
        assert stored_batch(server, event["batch_id"])["user_identities"]["customer_id"] == customer_id


def marker_stored(server: KaonServer, tag: str) -> list[dict[str, Any]]:
    """Wait until the event named `marker-{tag}` is stored (sent after refused ones, it shows they were handled)."""
    return eventually(lambda: server.events_named(f"marker-{tag}"), timeout=20, what="marker event stored")
