"""A do-nothing ASGI server, the ceiling Kaon's ingest is compared with: read the body, answer 202.

Served exactly as `kaon serve` serves Kaon (uvicorn, uvloop, httptools, no access log, one process), so the
difference between the two is Kaon's own work. Run: `python bench/noop_app.py --port 8081`.
"""

import argparse
import signal
from collections.abc import MutableMapping
from typing import Any

import uvicorn

from asgi import Receive, Send, lifespan

Message = MutableMapping[str, Any]

_HEADERS = [(b"content-length", b"0")]


async def app(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 202, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": b""})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # The same uvicorn settings as kaon.server.serve.
    config = uvicorn.Config(
        app, host=args.host, port=args.port, loop="uvloop", http="httptools", lifespan="on",
        log_level="warning", access_log=False, timeout_graceful_shutdown=30,
    )
    # As in kaon.server: uvicorn re-raises the signal it caught; a no-op handler makes SIGTERM exit 0.
    signal.signal(signal.SIGTERM, lambda _sig, _frame: None)
    signal.signal(signal.SIGINT, lambda _sig, _frame: None)
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
