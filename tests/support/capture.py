"""A local capture server standing in for a vendor's API: records every request, answers on demand."""

import json
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Captured:
    method: str
    path: str  # with the query string
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def route(self) -> str:
        return urlsplit(self.path).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.path).query)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class VendorCapture:
    """Answers `default` (200 `{}`) unless scripted; `answer_next(n, status, ...)` queues answers."""

    def __init__(self, default: Answer | None = None) -> None:
        self.default = default or Answer(200, {"Content-Type": "application/json"}, b"{}")
        self._lock = threading.Lock()
        self._requests: list[Captured] = []
        self._script: deque[Answer] = deque()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    def start(self) -> "VendorCapture":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def answer_next(self, n: int, status: int, *, headers: dict[str, str] | None = None, body: Any = b"") -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        with self._lock:
            self._script.extend(Answer(status, headers or {}, raw) for _ in range(n))

    def reset_answers(self) -> None:
        """Forget scripted answers: the vendor is back to its default answer."""
        with self._lock:
            self._script.clear()

    def requests(self) -> list[Captured]:
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def _record(self, captured: Captured) -> Answer:
        with self._lock:
            self._requests.append(captured)
            return self._script.popleft() if self._script else self.default

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        capture = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                answer = capture._record(Captured(self.command, self.path,
                                                  {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(answer.status)
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any  # noqa: N815 (http.server names)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
