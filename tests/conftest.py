"""Fixtures shared by the whole suite."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.browser import running_chromium
from support.capture import VendorCapture
from support.server import KaonServer

pytest_plugins = ["support.stores"]


@pytest.fixture(scope="module")
def kaon_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KaonServer]:
    """A running `kaon serve` shared by a test module."""
    server = KaonServer(tmp_path_factory.mktemp("kaon")).start()
    yield server
    server.stop()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[KaonServer]:
    """A `kaon serve` of the test's own (for crash and restart tests)."""
    server = KaonServer(tmp_path / "data")
    yield server
    server.stop()


@pytest.fixture
def capture() -> Iterator[VendorCapture]:
    """A local stand-in for a vendor's API (answers 200 `{}` unless scripted)."""
    started = VendorCapture().start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def offline_browser() -> Iterator[Any]:
    """Chromium with no route to the internet (vendor CDNs and control planes unreachable), one per module."""
    with running_chromium(offline=True) as chromium:
        yield chromium


@pytest.fixture(autouse=True)
def outbound_allows_local_vendors(monkeypatch: pytest.MonkeyPatch) -> None:
    """Capture servers listen on 127.0.0.1, which the outbound policy refuses by default: the suite lists it,
    as an operator would (tests of the default policy unset it)."""
    monkeypatch.setenv("KAON_OUTBOUND_ALLOW", "127.0.0.1")
