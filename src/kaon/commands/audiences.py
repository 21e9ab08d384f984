"""`kaon audiences|calculated list|activate ID|status ID`: definitions, and activation with a progress bar;
`kaon audiences connections ID|connect ID OUTPUT|disconnect ID CONNECTION`: audience connections.

`activate` starts the backfill and runs it in this process too (pages are claimed in transactions, so a running
`kaon serve` and this command share the work safely), drawing the progress until the definition is active.
`connect` and `disconnect` go through the same service as the admin API; a running `kaon serve` (its sync worker)
sends the members and removals.
"""

import argparse
import json
import sys
import time
from typing import Any

from kaon.activation import service as connections
from kaon.activation.store import AudienceConnection, ConnectionStore
from kaon.audiences import service
from kaon.audiences.backfill import step
from kaon.audiences.store import DefinitionRow, DefinitionStore
from kaon.clock import now_ms
from kaon.commands.workspace import chosen_workspace
from kaon.settings import Settings
from kaon.store.config import ConfigStore
from kaon.store.db import Database, DatabaseUrl
from kaon.store.sql import Conn

KINDS = {"audiences": "audience", "calculated": "calculated"}


def _bar(row: DefinitionRow, width: int = 30) -> str:
    p = row.progress
    total, done = p.get("events_total"), int(p.get("events_done") or 0)
    if row.phase == "profiles":
        return f"evaluating profiles: {int(p.get('profiles_done') or 0)} done"
    if not total:
        return f"[{'.' * width}] reading history"
    filled = int(width * min(done, total) / total)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} events"


def _summary(row: DefinitionRow) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "status": row.status, "backfill": service.progress_of(row)}


def _activate(conn: Conn, workspace_id: str, kind: str, definition_id: str) -> DefinitionRow:
    if kind == "audience":
        return service.activate_audience(conn, workspace_id, definition_id, "cli", now_ms())
    return service.activate_calculated(conn, workspace_id, definition_id, "cli", now_ms())


def _connection(conn: Conn, row: AudienceConnection) -> dict[str, Any]:
    return {"id": row.id, "audience_id": row.audience_id, "output_id": row.output_id, "mode": row.mode,
            "status": row.status, "settings": row.settings, "synced_members": connections.synced_count(conn, row),
            "progress": row.progress}


def _connections(conn: Conn, workspace_id: str, args: argparse.Namespace) -> int:
    if args.action == "connect":
        try:
            raw = json.loads(args.settings)
        except json.JSONDecodeError as error:
            raise ValueError(f"--settings is not JSON: {error}") from None
        rows = [connections.connect(conn, workspace_id, args.id, args.output_id, raw, now_ms())]
    elif args.action == "disconnect":
        rows = [connections.disconnect(conn, workspace_id, args.id, args.connection_id, now_ms())]
    else:
        DefinitionStore(conn, workspace_id).get("audience", args.id)  # an unknown audience is an error
        rows = ConnectionStore(conn, workspace_id).of_audience(args.id)
    shown = [_connection(conn, r) for r in rows]
    if args.json:
        print(json.dumps(shown if args.action == "connections" else shown[0]))
    else:
        for r in shown:
            print(f"{r['id']}\t{r['output_id']}\t{r['mode']}\t{r['status']}\t{r['synced_members']} synced")
    return 0


def run_audiences(settings: Settings, args: argparse.Namespace) -> int:
    conn = Database(DatabaseUrl.parse(settings.database_url), data_dir=settings.data_dir).conn()
    workspace = chosen_workspace(ConfigStore(conn), args.workspace)
    if args.action in ("connections", "connect", "disconnect"):
        return _connections(conn, workspace.id, args)
    kind = KINDS[args.command]
    store = DefinitionStore(conn, workspace.id)
    if args.action == "list":
        rows = [_summary(r) for r in store.all(kind)]
        if args.json:
            print(json.dumps(rows))
        else:
            for r in rows:
                print(f"{r['id']}\t{r['status']}\t{r['name']}")
        return 0
    if args.action == "status":
        print(json.dumps(_summary(store.get(kind, args.id))))
        return 0
    row = _activate(conn, workspace.id, kind, args.id)
    deadline = time.monotonic() + args.timeout
    while True:
        row = store.get(kind, args.id)
        if not args.json:
            print(f"\r{_bar(row)}", end="", file=sys.stderr, flush=True)
        if row.status != "backfilling":
            break
        if time.monotonic() > deadline:
            print(f"\nstill backfilling after {args.timeout}s", file=sys.stderr)
            return 1
        if not step(conn, row, now_ms()):
            time.sleep(0.1)  # another worker holds the page: look again
    if args.json:
        print(json.dumps(_summary(row)))
    else:
        print(f"\n{row.id} {row.status}", file=sys.stderr)
    return 0
