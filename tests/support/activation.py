"""Audience activation in tests: a purchase batch, an active audience, an audience output, delivering what the
sync worker owes."""

from typing import Any

from kaon.activation import sync
from kaon.audiences import service as audiences
from kaon.audiences.backfill import run_backfills
from kaon.delivery.retry import RetryPolicy
from kaon.delivery.worker import OutputWorker
from kaon.destinations.registry import destination
from kaon.store.outputs import OutputStore
from support.capture import VendorCapture
from support.pipeline import NOW, Pipeline

QUICK = RetryPolicy(base_s=0.01, cap_s=0.02, max_attempts=3, window_s=600.0)
BUYERS = {"event": {"event_type": "commerce_event", "name": "purchase", "within": "7d"}}


def purchase(at: int, **identities: str) -> dict[str, Any]:
    return {"environment": "production", "user_identities": identities,
            "events": [{"event_type": "commerce_event", "data": {
                "timestamp_unixtime_ms": at, "product_action": {"action": "purchase", "total_amount": 5}}}]}


def an_audience(p: Pipeline, name: str = "Buyers", definition: dict[str, Any] | None = None) -> str:
    row = audiences.create_audience(p.db.conn(), p.workspace_id, {"name": name, "definition": definition or BUYERS},
                                    "test", NOW)
    audiences.activate_audience(p.db.conn(), p.workspace_id, row.id, "test", NOW)
    run_backfills(p.db.conn(), lambda: NOW)
    return row.id


def an_output(p: Pipeline, vendor: VendorCapture, name: str = "audience_webhook") -> str:
    settings = {"base_url": f"{vendor.url}/hook"}
    return OutputStore(p.db.conn(), p.workspace_id).create_output(name, name, settings, True).id


def deliver(p: Pipeline, output_id: str) -> None:
    """Queue what the connections owe, then deliver it all."""
    output = OutputStore(p.db.conn(), p.workspace_id).output(output_id)
    found = destination(output.destination)
    worker = OutputWorker(p.db, output_id, found, found.parse_settings(output.settings), QUICK)
    try:
        sync.run_all(p.db.conn())
        while worker.run_once():
            pass
    finally:
        worker.stop_event.set()
        worker.start()
        worker.stop()


