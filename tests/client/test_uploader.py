"""Retries against a live capture server: 429/503 retried with the same events, 4xx dropped and reported."""

import logging
import socket
from collections.abc import Callable

import pytest

from client.capture import CaptureServer
from client.conftest import KEY, SECRET, Errors
from kaon.client import Kaon, RejectedError, RetriesExhaustedError
from kaon.client.uploader import Uploader

Build = Callable[..., Kaon]


def ids_per_request(capture: CaptureServer) -> list[list[str]]:
    return [[e["data"]["source_message_id"] for b in r.json() for e in b["events"]] for r in capture.requests]


def test_429_is_retried_after_retry_after_with_the_same_events(
    a_client: Build, capture: CaptureServer, errors: Errors
) -> None:
    capture.too_many_next(1, retry_after=1)
    client = a_client()
    client.log_event("a")
    client.log_screen("b")
    result = client.flush(timeout=30)

    assert (result.sent, result.failed) == (2, 0)
    first, second = capture.requests
    assert first.body == second.body  # same source_message_ids and source_request_id re-sent
    assert len(ids_per_request(capture)[0]) == 2
    assert not errors


def test_503_is_retried_until_success(a_client: Build, capture: CaptureServer, errors: Errors) -> None:
    capture.unavailable_next(2)
    client = a_client()
    client.log_event("a")
    assert client.flush(timeout=30).ok

    ids = ids_per_request(capture)
    assert len(ids) == 3
    assert ids[0] == ids[1] == ids[2]
    assert not errors


def test_400_is_not_retried_and_is_reported(
    a_client: Build, capture: CaptureServer, errors: Errors, caplog: pytest.LogCaptureFixture
) -> None:
    capture.bad_request_next(1)
    client = a_client()
    client.log_event("a")
    client.log_event("b")
    with caplog.at_level(logging.WARNING, logger="kaon.client"):
        result = client.flush(timeout=10)

    assert len(capture.requests) == 1
    assert (result.sent, result.failed) == (0, 2)
    [error] = errors
    assert isinstance(error, RejectedError)
    assert (error.status, error.server_code, error.events) == (400, "BAD_REQUEST", 2)
    assert error.source_message_ids == tuple(ids_per_request(capture)[0])
    assert result.errors == (error,)
    assert any(r.levelno == logging.WARNING and "dropped 2 event(s)" in r.getMessage() for r in caplog.records)

    client.log_event("c")  # the client keeps working after a rejection
    assert client.flush(timeout=10).sent == 1


def test_retries_stop_at_max_retries(a_client: Build, capture: CaptureServer, errors: Errors) -> None:
    capture.unavailable_next(10)
    client = a_client(max_retries=1)
    client.log_event("a")
    result = client.flush(timeout=30)

    assert len(capture.requests) == 2
    assert result.failed == 1
    [error] = errors
    assert isinstance(error, RetriesExhaustedError)
    assert error.status == 503


def test_backoff_between_attempts(capture: CaptureServer) -> None:
    capture.unavailable_next(3)
    slept: list[float] = []
    uploader = Uploader(capture.url, KEY, SECRET, timeout=5, max_retries=5, sleep=slept.append,
                        jitter=lambda: 0.5)
    try:
        sent = uploader.send(b"[]")
    finally:
        uploader.close()
    assert (sent.delivered, sent.attempts) == (True, 4)
    assert slept == [0.375, 0.75, 1.5]


def test_retry_after_sets_the_delay(capture: CaptureServer) -> None:
    capture.too_many_next(2, retry_after=7)
    slept: list[float] = []
    uploader = Uploader(capture.url, KEY, SECRET, timeout=5, max_retries=5, sleep=slept.append)
    try:
        assert uploader.send(b"[]").delivered
    finally:
        uploader.close()
    assert slept == [7.0, 7.0]


def test_connection_errors_are_retried_then_reported() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    slept: list[float] = []
    uploader = Uploader(url, KEY, SECRET, timeout=5, max_retries=3, sleep=slept.append, jitter=lambda: 0.0)
    try:
        sent = uploader.send(b"[]")
    finally:
        uploader.close()
    assert (sent.delivered, sent.retryable, sent.attempts, sent.status) == (False, True, 4, None)
    assert "ConnectError" in sent.message
    assert slept == [0.25, 0.5, 1.0]
