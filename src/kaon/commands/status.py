"""`kaon status`: the processes of this Kaon (each `kaon serve`, its heartbeat) and how far processing has read.

On PostgreSQL it also lists the process workers' partition leases and each partition's lag (entries appended
but not yet processed).
"""

import argparse
import json
from typing import Any

from kaon.clock import now_ms
from kaon.log.leases import log_status
from kaon.log.postgres import PostgresLog
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
        workers: list[dict[str, Any]] = []
        if settings.on_postgres:
            log = PostgresLog(settings.database_url, application_name="kaon-status")
            try:
                found = log_status(log, offsets)
            finally:
                log.close()
            partitions = [{"partition": p.partition, "processed_up_to": p.committed_seq, "head": p.head_seq,
                           "lag": p.lag, "leased_by": p.owner} for p in found.partitions]
            workers = [{"worker": w.owner, "live": w.live, "heartbeat_ms": w.heartbeat_ms, "info": w.info,
                        "partitions": w.partitions} for w in found.workers]
    finally:
        db.close()
    return {"database": db.dialect, "processes": listed, "partitions": partitions, "workers": workers}


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
    if found["workers"]:
        print(f"\n{'process worker':<40} {'live':<5} partitions")
        for w in found["workers"]:
            print(f"{w['worker'][:40]:<40} {'yes' if w['live'] else 'no':<5} {','.join(w['partitions']) or '-'}")
    print(f"\n{'partition':<10} {'processed':>10} {'lag':>8} leased by")
    for part in found["partitions"]:
        print(f"{part['partition']:<10} {part['processed_up_to']:>10} {part.get('lag', 0):>8} "
              f"{part.get('leased_by') or '-'}")
    return 0
