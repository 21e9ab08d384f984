"""What `kaon serve` tells its operator: the banner (where it listens, where the data is) and the access log."""

from pathlib import Path

import httpx

from kaon.server import banner
from kaon.settings import Settings
from support.server import KaonServer
from support.waiting import eventually


def test_banner_names_the_address_the_data_and_hides_a_database_password(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url="postgresql://kaon:s3cret@db.internal:5433/kaon",
                        host="0.0.0.0", port=9000)
    text = banner(settings)
    assert "listening on http://0.0.0.0:9000" in text
    assert str(tmp_path) in text and str(tmp_path / "log") in text
    assert "postgresql://kaon:***@db.internal:5433/kaon" in text
    assert "s3cret" not in text
    assert "access log: off" in text


def test_serve_prints_the_banner_and_logs_requests_when_asked(tmp_path: Path) -> None:
    server = KaonServer(tmp_path / "data", env={"KAON_ACCESS_LOG": "1"}).start()
    try:
        eventually(lambda: f"listening on {server.url}" in server.log_path.read_text(), timeout=10,
                   what="the banner in the server's output")
        assert str(server.data_dir.resolve()) in server.log_path.read_text()
        httpx.get(f"{server.url}/nowhere-{tmp_path.name}", timeout=10)
        eventually(lambda: f'"GET /nowhere-{tmp_path.name} HTTP/1.1" 404' in server.log_path.read_text(),
                   timeout=10, what="the request in the access log")
    finally:
        server.stop()


def test_the_access_log_is_off_by_default(tmp_path: Path) -> None:
    server = KaonServer(tmp_path / "data").start()
    try:
        httpx.get(f"{server.url}/api/v1/health", timeout=10)
        eventually(lambda: "access log: off" in server.log_path.read_text(), timeout=10, what="the banner")
    finally:
        server.stop()
    assert "GET /api/v1/health" not in server.log_path.read_text()
