"""`kaon quarantine list|replay`: see what a data plan blocked, and run it through processing again."""

import argparse
import json
import sys

from kaon.commands.workspace import chosen_workspace
from kaon.errors import NotFound
from kaon.governance.quarantine import QuarantineStore
from kaon.settings import Settings
from kaon.store.config import ConfigStore
from kaon.store.db import Database, DatabaseUrl


def run_quarantine(settings: Settings, args: argparse.Namespace) -> int:
    conn = Database(DatabaseUrl.parse(settings.database_url), data_dir=settings.data_dir).conn()
    workspace = chosen_workspace(ConfigStore(conn), args.workspace)
    store = QuarantineStore(conn, workspace.id)
    if args.action == "list":
        entries, _ = store.page(args.limit, None)
        if args.json:
            print(json.dumps({"entries": entries, "total": store.count()}))
            return 0
        for entry in entries:
            reasons = ", ".join(f"{r['reason']} {r['data_point']}" for r in entry["reasons"])
            print(f"{entry['id']}\t{entry['plan_id']} v{entry['plan_version']}\t{entry['input_id']}\t{reasons}")
        print(f"{store.count()} quarantined", file=sys.stderr)
        return 0
    ids = None if args.all else [int(i) for i in args.ids]
    if ids is not None and not ids:
        raise NotFound("give quarantine ids or --all")
    queued = store.replay(settings.log_dir, ids)
    if args.json:
        print(json.dumps({"queued": len(queued), "ids": queued}))
    else:
        print(f"queued {len(queued)} quarantined batches for processing", file=sys.stderr)
    return 0
