"""A page server for the browser tests: fixed files on 127.0.0.1 and a port of its own (another origin than
Kaon's), so the browser applies CORS to every call a page makes to Kaon, exactly as on a customer's site."""

import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

# path → (body, content type)
Files = dict[str, tuple[bytes, str]]
JS = "text/javascript; charset=utf-8"
HTML = "text/html; charset=utf-8"


class _Handler(BaseHTTPRequestHandler):
    files: ClassVar[Files] = {}

    def do_GET(self) -> None:
        found = self.files.get(self.path.split("?", 1)[0])
        if found is None:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        body, content_type = found
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


class StaticServer:
    """Serves `files` (plus an empty favicon) until `stop`."""

    def __init__(self, files: Files) -> None:
        handler = type("PageHandler", (_Handler,), {"files": {"/favicon.ico": (b"", "image/x-icon"), **files}})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="test-page-server", daemon=True)

    def url(self, path: str) -> str:
        return f"{self.origin}{path}"

    def start(self) -> "StaticServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)
