"""A vendor stand-in for the fault campaign: answers 503 during an outage, records delivered events in order."""

import json
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class OutageCapture:
    """Records each accepted webhook event's `(user, seq)` in arrival order; answers 503 while `down`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.down = False
        self.refused = 0
        self.delivered: dict[str, list[int]] = defaultdict(list)  # user → seqs in arrival order
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    def start(self) -> "OutageCapture":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def set_down(self, down: bool) -> None:
        with self._lock:
            self.down = down

    def snapshot(self) -> dict[str, list[int]]:
        with self._lock:
            return {user: list(seqs) for user, seqs in self.delivered.items()}

    def _take(self, body: bytes) -> int:
        with self._lock:
            if self.down:
                self.refused += 1
                return 503
            decoded: Any = json.loads(body)
            for event in decoded["batch"] if isinstance(decoded, dict) and "batch" in decoded else [decoded]:
                attributes = event["data"].get("custom_attributes", {})
                self.delivered[str(attributes["user"])].append(int(attributes["seq"]))
            return 200

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        capture = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = capture._take(body)
                answer = b"{}" if status == 200 else b'{"error": "outage"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
