"""The admin guard through a real `kaon serve`: no token, no body read; bodies capped with 413."""

import json
import socket
from collections.abc import Iterator

import pytest

from support.server import KaonServer

LIMIT = 100_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KaonServer]:
    started = KaonServer(tmp_path_factory.mktemp("guard"), env={"KAON_ADMIN_MAX_BODY_BYTES": str(LIMIT)}).start()
    yield started
    started.stop()


def exchange(server: KaonServer, head: bytes, body: bytes = b"") -> tuple[int, dict[str, object]]:
    """Send a request head and the start of a body; read the answer without sending the rest."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + b"\r\n" + body)
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < int(
                answer.split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0] if b"content-length: " in answer
                else b"1"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    return status, json.loads(answer.split(b"\r\n\r\n", 1)[1])


def test_an_unauthenticated_huge_body_gets_401_without_being_read(server: KaonServer) -> None:
    head = b"POST /api/v1/plans HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n"
    status, body = exchange(server, head, b'{"data_plan_id": "')  # the other 999,999,982 bytes are never sent
    assert status == 401
    assert body["errors"][0]["code"] == "UNAUTHORIZED"  # type: ignore[index]


def test_a_revoked_or_unknown_token_is_refused_before_the_body(server: KaonServer) -> None:
    head = (b"PUT /api/v1/settings/consent HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer kaon_nope\r\n"
            b"Content-Length: 1000000000\r\n")
    status, _ = exchange(server, head, b"{")
    assert status == 401


def test_an_oversized_authenticated_body_gets_413(server: KaonServer) -> None:
    auth = f"Authorization: Bearer {server.admin_token}\r\n".encode()
    head = b"POST /api/v1/plans HTTP/1.1\r\nHost: x\r\n" + auth + f"Content-Length: {LIMIT + 1}\r\n".encode()
    status, body = exchange(server, head, b"{")
    assert status == 413
    assert body["errors"][0]["code"] == "ADMIN_BODY_TOO_LARGE"  # type: ignore[index]
    assert str(LIMIT) in body["errors"][0]["message"]  # type: ignore[index]


def test_an_oversized_chunked_body_gets_413(server: KaonServer) -> None:
    auth = f"Authorization: Bearer {server.admin_token}\r\n".encode()
    head = b"POST /api/v1/plans HTTP/1.1\r\nHost: x\r\n" + auth + b"Transfer-Encoding: chunked\r\n"
    chunk = b"a" * 60_000
    status, body = exchange(server, head, b"%x\r\n%s\r\n" % (len(chunk), chunk) * 2 + b"0\r\n\r\n")
    assert status == 413
    assert body["errors"][0]["code"] == "ADMIN_BODY_TOO_LARGE"  # type: ignore[index]


def test_a_body_within_the_cap_still_works(server: KaonServer) -> None:
    answer = server.admin("POST", "/plans", json={"data_plan_id": "small", "data_plan_name": "small"})
    assert answer.status_code == 201, answer.text
