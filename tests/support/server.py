"""A real `kaon serve` in a subprocess on a free port, initialised with `kaon init --json`."""

import base64
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from support.waiting import eventually


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def kaon(*args: str, data_dir: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kaon", *args, "--data-dir", str(data_dir)],
                          capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=60)


class KaonServer:
    def __init__(self, data_dir: Path, env: dict[str, str] | None = None, file_limit: int | None = None) -> None:
        self.data_dir = data_dir
        # Capture servers listen on 127.0.0.1, which the outbound policy refuses unless listed.
        self.env = {"KAON_OUTBOUND_ALLOW": "127.0.0.1", **(env or {})}
        self.file_limit = file_limit  # the server's open-file limit (soft and hard), as a small machine has
        done = kaon("init", "--json", data_dir=data_dir, env=self.env)
        assert done.returncode == 0, done.stderr
        self.init: dict[str, Any] = json.loads(done.stdout)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "serve.log"

    # Credentials
    def input(self, platform: str) -> dict[str, Any]:
        return next(i for i in self.init["inputs"] if i["platform"] == platform)

    @property
    def server_key(self) -> str:
        return str(self.input("server")["key"])

    @property
    def server_secret(self) -> str:
        return str(self.input("server")["secret"])

    @property
    def web_key(self) -> str:
        return str(self.input("web")["key"])

    @property
    def admin_token(self) -> str:
        return str(self.init["admin_token"])

    def basic(self, key: str | None = None, secret: str | None = None) -> dict[str, str]:
        raw = f"{key or self.server_key}:{self.server_secret if secret is None else secret}"
        return {"Authorization": "Basic " + base64.b64encode(raw.encode()).decode()}

    # Lifecycle
    def start(self) -> "KaonServer":
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [*self._limits(), sys.executable, "-m", "kaon", "serve", "--data-dir", str(self.data_dir),
                 "--port", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env},
            )
        eventually(self._healthy, timeout=30, what=f"kaon serve healthy on {self.url}")
        return self

    def _limits(self) -> list[str]:
        """util-linux's prlimit before the command when the server's open files are limited."""
        return [] if self.file_limit is None else ["prlimit", f"--nofile={self.file_limit}:{self.file_limit}", "--"]

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"kaon serve exited: {self.log_path.read_text()}")
        try:
            return httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def terminate(self, timeout: float = 60) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.terminate()

    # Admin API
    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.admin_token}", **kwargs.pop("headers", {})}
        return httpx.request(method, f"{self.url}/api/v1{path}", headers=headers, timeout=30, **kwargs)

    def listed(self, path: str, key: str, limit: int = 1000, **params: Any) -> list[dict[str, Any]]:
        """Every item of an admin list (`{key: [...], "next_cursor": ...}`), following the cursors."""
        out: list[dict[str, Any]] = []
        cursor = None
        while True:
            query: dict[str, Any] = {**params, "limit": limit}
            if cursor:
                query["cursor"] = cursor
            response = self.admin("GET", path, params=query)
            assert response.status_code == 200, response.text
            page = response.json()
            out.extend(page[key])
            cursor = page["next_cursor"]
            if not cursor:
                return out

    def events(self, limit: int = 1000, **filters: Any) -> list[dict[str, Any]]:
        """Every stored event (matching the filters), newest first (follows cursors)."""
        return self.listed("/events", "events", limit, **filters)

    def profile(self, identity_type: str, value: str) -> dict[str, Any] | None:
        """The profile holding this identity, or None."""
        response = self.admin("GET", "/profiles", params={"identity_type": identity_type, "value": value})
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()["profiles"]
        return found[0] if found else None

    def events_named(self, name: str) -> list[dict[str, Any]]:
        return self.events(event_name=name)
