"""Background batching: when uploads happen, what flush/close promise, and delivery at interpreter exit."""

import gc
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable

from client.capture import CaptureServer
from client.conftest import Errors
from kaon.client import Kaon, QueueFullError
from support.waiting import eventually

Build = Callable[..., Kaon]


def event_counts(capture: CaptureServer) -> list[int]:
    return [sum(len(batch["events"]) for batch in request.json()) for request in capture.requests]


def test_uploads_when_batch_size_events_are_queued(a_client: Build, capture: CaptureServer) -> None:
    client = a_client(batch_size=5, flush_interval=3600)
    for i in range(12):
        client.log_event(f"e{i}")

    # With an hour's interval and no flush, only reaching batch_size can trigger these uploads.
    eventually(lambda: event_counts(capture) == [5, 5], timeout=10, what="two uploads of 5")
    client.flush(timeout=10)
    assert event_counts(capture) == [5, 5, 2]


def test_uploads_every_flush_interval(a_client: Build, capture: CaptureServer) -> None:
    client = a_client(batch_size=100, flush_interval=0.1)
    client.log_event("first")
    eventually(capture.message_ids, timeout=10, what="first event sent without flush")
    client.log_event("second")
    eventually(lambda: len(capture.message_ids()) == 2, timeout=10, what="second event sent without flush")
    assert len(capture.requests) == 2


def test_flush_reports_what_it_waited_for(a_client: Build, capture: CaptureServer) -> None:
    client = a_client()
    assert client.flush(timeout=10).sent == 0
    for i in range(7):
        client.log_screen(f"s{i}")
    result = client.flush(timeout=10)
    assert (result.sent, result.failed, result.pending, result.ok) == (7, 0, 0, True)
    assert len(capture.message_ids()) == 7


def test_close_delivers_everything_queued(a_client: Build, capture: CaptureServer) -> None:
    client = a_client(batch_size=1000, flush_interval=3600)
    for i in range(250):
        client.log_event(f"e{i}")
    result = client.close(timeout=10)
    assert result.sent == 250
    assert [e["data"]["event_name"] for e in capture.events()] == [f"e{i}" for i in range(250)]


def test_context_manager_closes(capture: CaptureServer) -> None:
    with Kaon("k", "s", capture.url, flush_interval=3600) as client:
        client.log_event("inside")
    assert len(capture.message_ids()) == 1


def test_concurrent_logging_delivers_each_event_once(a_client: Build, capture: CaptureServer) -> None:
    client = a_client(batch_size=50)

    def log(thread: int) -> None:
        for i in range(200):
            client.log_event(f"t{thread}-{i}")

    threads = [threading.Thread(target=log, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert client.flush(timeout=30).ok  # counts only what was still pending; some went by batch_size
    names = [e["data"]["event_name"] for e in capture.events()]
    assert sorted(names) == sorted(f"t{t}-{i}" for t in range(8) for i in range(200))
    assert len(set(capture.message_ids())) == 1600


def test_full_queue_drops_and_reports(a_client: Build, capture: CaptureServer, errors: Errors) -> None:
    client = a_client(batch_size=100, max_queue=3)  # nothing is sent before flush, so the queue fills
    for i in range(10):
        client.log_event(f"e{i}")
    assert client.flush(timeout=10).sent == 3
    assert [e["data"]["event_name"] for e in capture.events()] == ["e0", "e1", "e2"]
    assert [type(e) for e in errors] == [QueueFullError] * 7
    assert all(e.events == 1 for e in errors)


def test_client_dropped_without_close_still_sends(capture: CaptureServer) -> None:
    client = Kaon("k", "s", capture.url, flush_interval=3600)
    client.log_event("orphan")
    del client
    gc.collect()
    eventually(capture.message_ids, timeout=10, what="event of a dropped client")


def test_events_are_sent_at_interpreter_exit(capture: CaptureServer) -> None:
    script = textwrap.dedent(f"""
        from kaon.client import Kaon
        client = Kaon("k", "s", {capture.url!r}, flush_interval=3600)
        client.identify(customer_id="exiting")
        for i in range(3):
            client.log_event(f"e{{i}}")
        # no close(): the atexit hook must deliver these
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert [e["data"]["event_name"] for e in capture.events()] == ["e0", "e1", "e2"]
    assert capture.batches()[0]["user_identities"] == {"customer_id": "exiting"}
