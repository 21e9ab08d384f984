"""Debian's Chromium driven by Playwright (never `playwright install`), plus a log of what the page saw.

`make system-deps` (scripts/install-system-deps.sh) installs `/usr/bin/chromium`. Playwright's `launch()`
gives every browser a fresh temporary `--user-data-dir` of its own (and removes it on close); each test
then opens its own context, so no cookie or localStorage state carries from one test to the next.
"""

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright import sync_api

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
]


def require_chromium() -> Path:
    """The Chromium binary, or a test failure that says how to get it (it is a declared system dependency)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make system-deps` (apt-get install chromium)", pytrace=False)
    return CHROMIUM


def require_npm() -> str:
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is missing: run `make system-deps` (apt-get install nodejs npm)", pytrace=False)
    return npm


# No host name but 127.0.0.1 resolves: a vendor's CDN or control plane cannot be reached, without routing
# requests through Playwright (whose interception answers CORS preflights itself, hiding Kaon's).
OFFLINE_ARGS = ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]


def launch(playwright: Any, offline: bool = False) -> Any:
    """A headless Chromium from the Debian package (Playwright's own browser downloads are never used)."""
    return playwright.chromium.launch(executable_path=str(require_chromium()), headless=True,
                                      args=CHROMIUM_ARGS + (OFFLINE_ARGS if offline else []), timeout=30_000)


@contextlib.contextmanager
def running_chromium(offline: bool = False) -> Iterator[Any]:
    """Playwright and one launched Chromium (see `launch`), both stopped afterwards: a module's browser."""
    playwright = sync_api.sync_playwright().start()
    try:
        chromium = launch(playwright, offline=offline)
        yield chromium
        chromium.close()
    finally:
        playwright.stop()


@dataclass
class PageLog:
    """Console messages, page errors, failed requests and every response from `watch_prefix` (Kaon)."""

    watch_prefix: str
    console: list[tuple[str, str]] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    exchanges: list[dict[str, Any]] = field(default_factory=list)
    _answered: set[int] = field(default_factory=set)

    def attach(self, page: Any) -> None:
        page.on("console", lambda msg: self.console.append((msg.type, msg.text)))
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on("requestfailed", self._request_failed)
        page.on("response", self._response)

    def _request_failed(self, request: Any) -> None:
        # The SDK never reads the (empty) body of an event upload's response, and Chromium then reports the
        # fetch as net::ERR_ABORTED after the response arrived: only a request that got no response failed.
        if id(request) not in self._answered:
            self.failed.append(f"{request.method} {request.url}: {request.failure}")

    def _response(self, response: Any) -> None:
        request = response.request
        self._answered.add(id(request))
        if not request.url.startswith(self.watch_prefix):
            return
        try:  # the headers as sent (Origin is added by the browser's network stack, not by the page)
            headers: dict[str, str] = request.all_headers()
        except Exception:
            headers = {}
        entry: dict[str, Any] = {"method": request.method, "url": request.url, "status": response.status,
                                 "request_body": request.post_data, "origin": headers.get("origin"),
                                 "headers": headers}
        try:
            entry["response_body"] = response.text()
        except Exception:  # the body of a response the page never read is gone (see _request_failed)
            entry["response_body"] = None
        self.exchanges.append(entry)

    def errors(self) -> list[str]:
        return [text for kind, text in self.console if kind == "error"] + self.page_errors

    def cors_errors(self) -> list[str]:
        return [text for text in self.errors() + self.failed
                if "cors" in text.lower() or "access-control" in text.lower()]

    def requests(self, method: str, path_part: str) -> list[dict[str, Any]]:
        return [x for x in self.exchanges if x["method"] == method and path_part in x["url"]]

    def describe(self) -> str:
        lines = [f"{x['method']} {x['url']} -> {x['status']} {x['response_body']!r:.300}" for x in self.exchanges]
        lines += [f"console.{kind}: {text}" for kind, text in self.console]
        lines += [f"pageerror: {text}" for text in self.page_errors]
        lines += [f"requestfailed: {text}" for text in self.failed]
        return "\n".join(lines)


@dataclass
class VendorGuard:
    """Remembers every request of a browser context to anywhere but 127.0.0.1 (an `offline` browser cannot
    resolve those hosts, so none succeeds; this says whether one was tried). It does not intercept."""

    attempted: list[str] = field(default_factory=list)

    def attach(self, context: Any) -> None:
        context.on("request", self._request)

    def _request(self, request: Any) -> None:
        url: str = request.url
        if not url.startswith(("http://127.0.0.1:", "https://127.0.0.1:", "data:", "blob:", "about:")):
            self.attempted.append(url)
