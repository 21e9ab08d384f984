"""Fixtures of the activation tests: a pipeline on each dialect, a capture server standing in for a vendor."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.capture import VendorCapture
from support.pipeline import Pipeline, a_pipeline


@pytest.fixture
def pipeline(tmp_path: Path, database_url: str) -> Iterator[Pipeline]:
    with a_pipeline(tmp_path, url=database_url) as made:
        yield made


@pytest.fixture
def vendor() -> Iterator[VendorCapture]:
    server = VendorCapture().start()
    yield server
    server.stop()
