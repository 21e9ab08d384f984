"""The PostgreSQL destination's hosts under the outbound policy: checked when an output is saved, and pinned
(libpq's `hostaddr`) to the checked addresses when connecting, so a name cannot resolve elsewhere later.

A Unix-socket host (a path, or none: libpq's default socket) is local: it is treated as 127.0.0.1.
"""

import contextlib
import ipaddress

import httpx
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from kaon import outbound

LOCAL = "127.0.0.1"


def _hosts(dsn: str) -> tuple[list[str], list[str], str]:
    info = conninfo_to_dict(dsn)
    hosts = str(info.get("host") or "").split(",")
    ports = str(info.get("port") or "").split(",")
    return hosts, ports, str(info.get("hostaddr") or "")


def _port(ports: list[str], index: int) -> int:
    chosen = ports[index] if index < len(ports) else ports[-1]
    return int(chosen) if chosen.strip().isdigit() else 5432


def _is_socket(host: str) -> bool:
    return not host or host.startswith(("/", "@"))


def pinned(dsn: str) -> str:
    """`dsn` with `hostaddr` set to the checked address of each host. Raises outbound.Refused, or
    psycopg.OperationalError when a host does not resolve (retried, like any connection failure)."""
    policy = outbound.policy()
    hosts, ports, hostaddr = _hosts(dsn)
    if hostaddr:  # the operator gave the addresses: check them as they are
        for address in hostaddr.split(","):
            policy.resolve(address.strip(), 5432)
        return dsn
    addresses = []
    for index, host in enumerate(hosts):
        if _is_socket(host):
            policy.check_address(host or "the default socket", ipaddress.ip_address(LOCAL))
            addresses.append("")
            continue
        try:
            addresses.append(policy.resolve(host, _port(ports, index)))
        except httpx.ConnectError as error:
            raise psycopg.OperationalError(str(error)) from None
    if not any(addresses):
        return dsn
    return make_conninfo(dsn, hostaddr=",".join(addresses))


def check(dsn: str) -> None:
    """At creation: raises outbound.Refused for a refused host (one that does not resolve yet is accepted)."""
    with contextlib.suppress(psycopg.OperationalError, psycopg.ProgrammingError):
        pinned(dsn)
