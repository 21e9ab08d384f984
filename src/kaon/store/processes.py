"""Owner of `processes`: every `kaon serve` process (any role, any machine) registers and beats here.

`kaon status` and `/api/v1/health` read it. A process that stops beating for `STALE_MS` is shown as lost; its
work (log partitions, delivery claims) is taken over through their own leases, not through this table.
"""

import os
import socket
import uuid
from typing import Any

from kaon import __version__
from kaon.store.sql import Conn

STALE_MS = 15_000


def register(conn: Conn, role: str, address: str, now_ms: int) -> str:
    """Record this process; returns its id (`host:pid:random`)."""
    host = socket.gethostname()
    process_id = f"{host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    conn.execute("INSERT INTO processes (id, role, host, pid, address, version, started_ms, heartbeat_ms)"
                 " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                 (process_id, role, host, os.getpid(), address, __version__, now_ms, now_ms))
    return process_id


def beat(conn: Conn, process_id: str, now_ms: int) -> None:
    conn.execute("UPDATE processes SET heartbeat_ms = ? WHERE id = ?", (now_ms, process_id))


def stopped(conn: Conn, process_id: str, now_ms: int) -> None:
    conn.execute("UPDATE processes SET stopped_ms = ?, heartbeat_ms = ? WHERE id = ?", (now_ms, now_ms, process_id))


def listing(conn: Conn, now_ms: int, keep_ms: int = 3_600_000) -> list[dict[str, Any]]:
    """Processes seen within `keep_ms`, newest first, each with its state: running, lost or stopped."""
    rows = conn.execute(
        "SELECT id, role, host, pid, address, version, started_ms, heartbeat_ms, stopped_ms FROM processes"
        " WHERE heartbeat_ms >= ? ORDER BY role, started_ms DESC", (now_ms - keep_ms,)).fetchall()
    out = []
    for pid_, role, host, pid, address, version, started, heartbeat, stopped_ms in rows:
        state = "stopped" if stopped_ms is not None else "lost" if now_ms - heartbeat > STALE_MS else "running"
        out.append({"id": pid_, "role": role, "host": host, "pid": int(pid), "address": address,
                    "version": version, "started_ms": int(started), "heartbeat_ms": int(heartbeat),
                    "state": state})
    return out


def forget_before(conn: Conn, before_ms: int) -> int:
    """Drop processes last seen before `before_ms` (housekeeping)."""
    return int(conn.execute("DELETE FROM processes WHERE heartbeat_ms < ?", (before_ms,)).rowcount)
