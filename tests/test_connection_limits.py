"""Slow, half-sent and oversized requests against a real `kaon serve`: answered or closed, never starving it."""

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kaon.connection_limits import FD_RESERVE, connection_cap
from support.server import KaonServer

FILE_LIMIT = 512  # soft and hard: what a default Linux account often has (1,024), halved to keep the test small


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KaonServer]:
    running = KaonServer(tmp_path_factory.mktemp("limits"), file_limit=FILE_LIMIT, env={
        "KAON_HEADER_TIMEOUT_S": "1", "KAON_BODY_TIMEOUT_S": "1", "KAON_MAX_HEADER_BYTES": "4096",
        "KAON_MAX_CONNECTIONS": "64", "KAON_ADMIN_MAX_BODY_BYTES": "100000"}).start()
    yield running
    running.stop()


def connect(server: KaonServer, first: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(first)
    return sock


def answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (the socket's timeout bounds the wait)."""
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


def event_body() -> bytes:
    return json.dumps({"environment": "development", "user_identities": {"customer_id": "c1"}, "events": [
        {"event_type": "custom_event", "data": {"event_name": "Through", "custom_event_type": "other"}}]}).encode()


def test_more_half_sent_requests_than_file_descriptors_do_not_stop_health_or_events(server: KaonServer) -> None:
    """600 connections that never finish their headers, against a server allowed 512 open files."""
    held = [connect(server, b"POST /v2/events HTTP/1.1\r\nHost: x\r\n") for _ in range(600)]
    try:
        assert httpx.get(f"{server.url}/api/v1/health", timeout=10).status_code == 200
        sent = httpx.post(f"{server.url}/v2/events", content=event_body(), timeout=10,
                          headers={**server.basic(), "content-type": "application/json"})
        assert sent.status_code == 202, sent.text
    finally:
        for sock in held:
            sock.close()


def test_headers_that_never_finish_get_408_and_the_connection_closed(server: KaonServer) -> None:
    with connect(server, b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n") as sock:
        got = answer(sock)
    assert got.startswith(b"HTTP/1.1 408") and b"REQUEST_TIMEOUT" in got


def test_an_idle_connection_is_closed(server: KaonServer) -> None:
    with connect(server, b"") as sock:
        assert answer(sock).startswith(b"HTTP/1.1 408")


def test_a_body_that_never_finishes_gets_408(server: KaonServer) -> None:
    head = (b"POST /v2/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n"
            + b"".join(f"{k}: {v}\r\n".encode() for k, v in server.basic().items()) + b"\r\n{")
    with connect(server, head) as sock:
        assert answer(sock).startswith(b"HTTP/1.1 408")


def test_oversized_headers_get_431(server: KaonServer) -> None:
    with connect(server, b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n") as sock:
        got = answer(sock)
    assert got.startswith(b"HTTP/1.1 431") and b"HEADERS_TOO_LARGE" in got


def test_an_admin_body_is_not_read_without_a_token(server: KaonServer) -> None:
    """The request promises 50 MB and sends none of it: the 401 comes at once."""
    with connect(server, b"POST /api/v1/inputs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 50000000\r\n\r\n") as sock:
        sock.settimeout(0.9)  # below the body timeout: only an answer that did not wait for the body arrives
        got = answer(sock)
    assert got.startswith(b"HTTP/1.1 401") and b"UNAUTHORIZED" in got


def test_an_admin_body_over_the_cap_gets_413(server: KaonServer) -> None:
    declared = server.admin("POST", "/inputs", content=b"x" * 100_001, headers={"content-type": "application/json"})
    assert declared.status_code == 413 and declared.json()["errors"][0]["code"] == "REQUEST_TOO_LARGE"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as read
        for _ in range(20):
            yield b" " * 10_000

    streamed = server.admin("POST", "/inputs", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    assert server.admin("POST", "/inputs", json={"name": "fits", "platform": "server"}).status_code == 201


def test_the_connection_cap_leaves_room_for_the_process() -> None:
    assert connection_cap(None, 1024) == 1024 - FD_RESERVE
    assert connection_cap(64, 1024) == 64
    assert connection_cap(None, 100) == 16
    assert connection_cap(None, 1 << 20) == 10_000


def test_settings_read_the_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kaon.settings import Settings
    monkeypatch.setenv("KAON_MAX_CONNECTIONS", "77")
    monkeypatch.setenv("KAON_HEADER_TIMEOUT_S", "2.5")
    settings = Settings.resolve(data_dir=str(tmp_path))
    assert (settings.max_connections, settings.header_timeout_s, settings.body_timeout_s) == (77, 2.5, 60.0)
