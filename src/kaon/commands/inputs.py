"""`kaon inputs list|create|enable|disable|rotate-secret`."""

import argparse
import json

import msgspec

from kaon.commands.workspace import chosen_workspace
from kaon.settings import Settings
from kaon.store.config import ConfigStore, Input
from kaon.store.db import Database, DatabaseUrl
from kaon.store.sealing import Sealer


def _row(item: Input, secret: str | None = None) -> dict[str, object]:
    row: dict[str, object] = msgspec.to_builtins(item)
    if secret is not None:
        row["secret"] = secret
    return row


def run_inputs(settings: Settings, args: argparse.Namespace) -> int:
    store = ConfigStore(Database(DatabaseUrl.parse(settings.database_url), data_dir=settings.data_dir).conn(),
                        Sealer.for_data_dir(settings.data_dir))
    workspace = chosen_workspace(store, args.workspace)
    rows: list[dict[str, object]]
    if args.action == "list":
        rows = [_row(item) for item in store.inputs(workspace.id)]
    elif args.action == "create":
        made = store.create_input(
            workspace.id, args.name, args.platform, feed=args.feed,
            allow_key_only=True if args.key_only else None, rate_limit_rps=args.rate_limit,
        )
        rows = [_row(made.input, made.secret)]
    elif args.action in ("disable", "enable"):
        rows = [_row(store.set_enabled(args.input_id, args.action == "enable", workspace.id))]
    else:
        made = store.rotate_secret(args.input_id, workspace.id)
        rows = [_row(made.input, made.secret)]
    if args.json:
        print(json.dumps(rows if args.action == "list" else rows[0]))
        return 0
    for row in rows:
        state = "enabled" if row["enabled"] else "disabled"
        secret = f" secret={row['secret']}" if "secret" in row else ""
        print(f"{row['id']}  {row['name']:<16} {row['platform']:<8} {state:<8} key={row['key']}{secret}")
    return 0
