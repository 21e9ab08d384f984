"""Fixtures for the client SDK's tests: a capture server and a builder of clients pointed at it."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from client.capture import CaptureServer
from kaon.client import DeliveryError, Kaon

KEY, SECRET = "test-key", "test-secret"


@pytest.fixture
def capture() -> Iterator[CaptureServer]:
    server = CaptureServer().start()
    yield server
    server.stop()


class Errors(list[DeliveryError]):
    """An `on_error` callback that keeps what it is given."""

    def __call__(self, error: DeliveryError) -> None:
        self.append(error)


@pytest.fixture
def errors() -> Errors:
    return Errors()


@pytest.fixture
def a_client(capture: CaptureServer, errors: Errors) -> Iterator[Callable[..., Kaon]]:
    """Build clients for the capture server (long interval unless given); all closed after the test."""
    made: list[Kaon] = []

    def build(**settings: Any) -> Kaon:
        settings = {"flush_interval": 60.0, "on_error": errors, **settings}
        client = Kaon(KEY, SECRET, capture.url, **settings)
        made.append(client)
        return client

    yield build
    for client in made:
        client.close(timeout=30)
