"""A local capture server standing in for Kaon's `/v2/bulkevents`: records requests, answers on demand."""

import json
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Captured:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class CaptureServer:
    """Answers 202 with an empty body unless told to answer otherwise for the next N requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[Captured] = []
        self._script: deque[Answer] = deque()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    def start(self) -> "CaptureServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    # Scripting
    def answer_next(self, n: int, status: int, *, headers: dict[str, str] | None = None,
                    body: Any = None) -> None:
        raw = b"" if body is None else json.dumps(body).encode()
        with self._lock:
            self._script.extend(Answer(status, headers or {}, raw) for _ in range(n))

    def too_many_next(self, n: int, retry_after: int) -> None:
        self.answer_next(n, 429, headers={"Retry-After": str(retry_after)},
                         body={"errors": [{"code": "TOO_MANY_REQUESTS", "message": "slow down"}]})

    def unavailable_next(self, n: int) -> None:
        self.answer_next(n, 503)

    def bad_request_next(self, n: int) -> None:
        self.answer_next(n, 400, body={"errors": [
            {"code": "BAD_REQUEST", "message": 'Required event field "event_type" is missing or empty.'}]})

    # Reading what arrived
    @property
    def requests(self) -> list[Captured]:
        with self._lock:
            return list(self._requests)

    def batches(self) -> list[dict[str, Any]]:
        return [batch for request in self.requests for batch in request.json()]

    def events(self) -> list[dict[str, Any]]:
        return [event for batch in self.batches() for event in batch["events"]]

    def message_ids(self) -> list[str]:
        return [event["data"]["source_message_id"] for event in self.events()]

    def _record(self, captured: Captured) -> Answer:
        with self._lock:
            self._requests.append(captured)
            return self._script.popleft() if self._script else Answer(202, {}, b"")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the client's httpx.Client expects

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                headers = {name.lower(): value for name, value in self.headers.items()}
                answer = server._record(Captured("POST", self.path, headers, body))
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                if answer.body:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
