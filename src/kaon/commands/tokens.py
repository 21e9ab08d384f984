"""`kaon tokens list|create|revoke`: the workspace's admin tokens (operator tokens are made only here)."""

import argparse
import json

import msgspec

from kaon.clock import now_ms
from kaon.commands.workspace import chosen_workspace
from kaon.settings import Settings
from kaon.store.config import ConfigStore
from kaon.store.db import Database, DatabaseUrl
from kaon.store.tokens import AdminToken, TokenStore

DAY_MS = 86_400_000


def _row(token: AdminToken, secret: str | None = None) -> dict[str, object]:
    row: dict[str, object] = msgspec.to_builtins(token)
    if secret is not None:
        row["token"] = secret
    return row


def run_tokens(settings: Settings, args: argparse.Namespace) -> int:
    conn = Database(DatabaseUrl.parse(settings.database_url), data_dir=settings.data_dir).conn()
    workspace = chosen_workspace(ConfigStore(conn), args.workspace)
    store = TokenStore(conn)
    rows: list[dict[str, object]]
    if args.action == "list":
        rows = [_row(t) for t in store.list(workspace.id)]
    elif args.action == "create":
        expires = None if args.expires_days is None else now_ms() + int(args.expires_days * DAY_MS)
        secret, made = store.create(workspace.id, args.name, scope=args.scope, operator=args.operator,
                                    expires_ms=expires)
        rows = [_row(made, secret)]
    else:
        rows = [_row(store.revoke(workspace.id, args.token_id))]
    if args.json:
        print(json.dumps(rows if args.action == "list" else rows[0]))
        return 0
    for row in rows:
        state = "revoked" if row["revoked_ms"] else "active"
        extra = " operator" if row["operator"] else ""
        shown = f" token={row['token']}" if "token" in row else ""
        print(f"{row['id']}  {row['name']:<16} {row['scope']:<5} {state}{extra}{shown}")
    return 0
