"""Connection bounds of a real `kaon serve` (raw sockets): slow and half-sent requests cannot starve the others."""

import json
import resource
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.server import KaonServer
from support.waiting import eventually

BOUNDS = {"KAON_MAX_CONNECTIONS": "1000", "KAON_HEADER_TIMEOUT": "2", "KAON_BODY_TIMEOUT": "2",
          "KAON_MAX_HEADER_BYTES": "8192"}


@pytest.fixture(scope="module")
def bounded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KaonServer]:
    """A server started under a small soft file-descriptor limit (256), as on many hosts (1024 there)."""
    server = KaonServer(tmp_path_factory.mktemp("bounded"), env=BOUNDS)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        server.start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    yield server
    server.stop()


def connect(server: KaonServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return sock


def answer_of(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def event_answered(server: KaonServer) -> bool:
    body = {"environment": "production", "user_identities": {"customer_id": "c-bounds"},
            "events": [{"event_type": "custom_event", "data": {"event_name": "Bounds", "custom_event_type": "other"}}]}
    return httpx.post(f"{server.url}/v2/events", json=body, headers=server.basic(), timeout=10).status_code == 202


def test_hundreds_of_half_sent_requests_do_not_stop_health_or_an_event(bounded: KaonServer) -> None:
    held: list[socket.socket] = []
    try:
        for index in range(400):  # more than the 256 descriptors the server was started with
            sock = connect(bounded)
            if index % 2:
                sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")  # headers never finished
            else:
                sock.sendall(b"POST /v2/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{")  # body never
            held.append(sock)
        assert httpx.get(f"{bounded.url}/api/v1/health", timeout=10).status_code == 200
        assert event_answered(bounded)
    finally:
        for sock in held:
            sock.close()


def test_a_half_sent_request_is_answered_408_once_its_read_time_is_over(bounded: KaonServer) -> None:
    with connect(bounded) as headers, connect(bounded) as body:
        headers.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        body.sendall(b"POST /api/v1/plans HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                     + bounded.admin_token.encode() + b"\r\nContent-Length: 50\r\n\r\n{")
        for sock, part in ((headers, "headers"), (body, "body")):
            answer = answer_of(sock)
            assert answer.startswith(b"HTTP/1.1 408 "), answer
            error = json.loads(answer.split(b"\r\n\r\n", 1)[1])["errors"][0]
            assert error["code"] == "REQUEST_TIMEOUT" and part in error["message"]


def test_headers_over_the_cap_are_refused_431(bounded: KaonServer) -> None:
    with connect(bounded) as sock:
        sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10_000 + b"\r\n\r\n")
        answer = answer_of(sock)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["errors"][0]["code"] == "HEADERS_TOO_LARGE"


def test_connections_past_the_cap_are_closed_and_the_server_recovers(tmp_path: Path) -> None:
    server = KaonServer(tmp_path / "capped", env={**BOUNDS, "KAON_MAX_CONNECTIONS": "20"}).start()
    held: list[socket.socket] = []
    try:
        held.extend(connect(server) for _ in range(20))
        for sock in held:
            sock.sendall(b"GET /api/v1/health HTTP/1.1\r\n")

        def refused() -> bool:
            with connect(server) as extra:
                try:
                    extra.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
                    return extra.recv(100) == b""
                except ConnectionError:
                    return True

        eventually(refused, timeout=10, what="a connection past the cap closed")
        for sock in held:  # the held ones are answered 408 and closed once their header time is over
            assert answer_of(sock).startswith(b"HTTP/1.1 408 ")
        eventually(lambda: httpx.get(f"{server.url}/api/v1/health", timeout=5).status_code == 200,
                   timeout=10, what="health answered again")
    finally:
        for sock in held:
            sock.close()
        server.stop()
