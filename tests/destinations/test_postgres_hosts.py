"""The PostgreSQL destination's hosts under the outbound policy: refused before connecting, pinned when allowed."""

import pytest
from psycopg.conninfo import conninfo_to_dict

from kaon import outbound
from kaon.destinations.outcome import Outcome
from kaon.destinations.postgres import destination as postgres
from kaon.destinations.postgres_hosts import check, pinned
from support.events import custom


def test_a_name_is_pinned_to_the_address_checked() -> None:
    info = conninfo_to_dict(pinned("postgresql://u:p@localhost:5999/db"))  # the suite lists 127.0.0.1
    assert info["host"] == "localhost" and info["hostaddr"] == "127.0.0.1"
    assert "hostaddr" not in conninfo_to_dict(pinned("host=/tmp/sockets dbname=x"))  # a local socket


@pytest.mark.parametrize("dsn", ["postgresql://u:p@10.0.0.5:5432/db", "host=169.254.169.254 dbname=x",
                                 "host=db.example hostaddr=192.168.1.4 dbname=x",
                                 "postgresql://u:p@127.0.0.1:5432,10.1.1.1:5432/db"])
def test_refused_hosts(dsn: str) -> None:
    with pytest.raises(outbound.Refused):
        check(dsn)


def test_a_socket_is_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(outbound.ENV, "")
    with pytest.raises(outbound.Refused, match="loopback"):
        check("host=/var/run/postgresql dbname=x")


def test_delivery_to_a_refused_host_is_aborted_without_connecting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(outbound.ENV, "")
    settings = postgres.parse_settings({"dsn": "postgresql://u:p@127.0.0.1:1/db"})
    [result] = postgres.deliver([custom()], settings)
    assert result.outcome == Outcome.ABORT and "KAON_OUTBOUND_ALLOW" in result.message
