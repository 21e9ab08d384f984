"""A vendor stand-in for the delivery bench: answers 200 `{}` (or a set status), counts events, times arrivals.

Served like `bench/noop_app.py` (uvicorn, uvloop, httptools, one process). A delivered body is a webhook event,
a webhook batch `{"batch": [...]}` or an Amplitude request `{"events": [...]}`; each event's custom attributes
(webhook `data.custom_attributes`, Amplitude `event_properties`) may carry `seq` (a unique id) and `sent` (the
sender's `time.monotonic()`, comparable across processes on one Linux machine).
Control: `POST /_status` with `{"status": 503}` sets the answer; `GET /_stats` returns the counts, and with
`?samples=1` also `[arrival, events]` per accepted request and `[arrival, sent]` per timed event.
Run: `python bench/capture_app.py --port 8082`.
"""

import argparse
import signal
import time
from collections.abc import MutableMapping
from typing import Any

import msgspec
import uvicorn

from asgi import Receive, Send, lifespan

Message = MutableMapping[str, Any]

_OK = b"{}"
_JSON = [(b"content-type", b"application/json")]


class Capture:
    def __init__(self) -> None:
        self.status = 200
        self.requests = 0
        self.rejected = 0
        self.events = 0
        self.seen: set[str] = set()
        self.arrivals: list[tuple[float, int]] = []
        self.sent: list[tuple[float, float]] = []

    def take(self, body: bytes, now: float) -> None:
        decoded = msgspec.json.decode(body)
        items: list[Any] = decoded.get("batch") or decoded.get("events") or [decoded]
        self.requests += 1
        self.events += len(items)
        self.arrivals.append((now, len(items)))
        for item in items:
            attrs = (item.get("data") or {}).get("custom_attributes") or item.get("event_properties") or {}
            if "seq" in attrs:
                self.seen.add(str(attrs["seq"]))
            if "sent" in attrs:
                self.sent.append((now, float(attrs["sent"])))

    def stats(self, samples: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "requests": self.requests, "rejected": self.rejected,
                               "events": self.events, "unique": len(self.seen),
                               "last": self.arrivals[-1][0] if self.arrivals else None}
        if samples:
            out["arrivals"], out["sent"] = self.arrivals, self.sent
        return out


capture = Capture()


async def _body(receive: Receive) -> bytes:
    chunks = []
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*_JSON, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def app(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    body = await _body(receive)
    now = time.monotonic()
    path = scope["path"]
    if path == "/_stats":
        await _answer(send, 200, msgspec.json.encode(capture.stats(b"samples=1" in scope["query_string"])))
    elif path == "/_status":
        capture.status = int(msgspec.json.decode(body)["status"])
        await _answer(send, 200, _OK)
    elif capture.status != 200:
        capture.rejected += 1
        await _answer(send, capture.status, _OK)
    else:
        capture.take(body, now)
        await _answer(send, 200, _OK)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    config = uvicorn.Config(app, host=args.host, port=args.port, loop="uvloop", http="httptools", lifespan="on",
                            log_level="warning", access_log=False, timeout_graceful_shutdown=5)
    signal.signal(signal.SIGTERM, lambda _sig, _frame: None)
    signal.signal(signal.SIGINT, lambda _sig, _frame: None)
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
