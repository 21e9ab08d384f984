"""`kaon status`: the processes of this Kaon (each `kaon serve`, its heartbeat) and how far processing has read."""

import argparse
import json
from typing import Any

from kaon.clock import now_ms
from kaon.settings import Settings
from kaon.store import processes
from kaon.store.db import Database, DatabaseUrl
from kaon.store.offsets import OffsetStore


def status(settings: Settings) -> dict[str, Any]:
    db = Database(DatabaseUrl.parse(settings.database_url), data_dir=settings.data_dir)
    try:
        conn = db.conn()
        now = now_ms()
        listed = processes.listing(conn, now)
        offsets = OffsetStore(conn).all()
        partitions = [{"partition": p, "processed_up_to": seq} for p, seq in sorted(offsets.items())]
    finally:
        db.close()
    return {"database": db.dialect, "processes": listed, "partitions": partitions}


def run_status(settings: Settings, args: argparse.Namespace) -> int:
    found = status(settings)
    if args.json:
        print(json.dumps(found))
        return 0
    print(f"database: {found['database']}")
    print(f"{'role':<9} {'state':<8} {'host':<20} {'pid':>7} {'address':<22} heartbeat")
    for p in found["processes"]:
        age = (now_ms() - p["heartbeat_ms"]) / 1000
        print(f"{p['role']:<9} {p['state']:<8} {p['host'][:20]:<20} {p['pid']:>7} {p['address'][:22]:<22} "
              f"{age:.0f}s ago")
    print(f"\n{'partition':<10} {'processed':>10}")
    for part in found["partitions"]:
        print(f"{part['partition']:<10} {part['processed_up_to']:>10}")
    return 0
