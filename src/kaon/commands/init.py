"""`kaon init`: data store, workspace, a server input, a web input and an admin token — once."""

import json
import os
import shlex
from pathlib import Path
from typing import Any

from kaon.commands.workspace import init_workspace_name
from kaon.settings import Settings
from kaon.store.config import ConfigStore
from kaon.store.db import Database, DatabaseUrl
from kaon.store.sealing import Sealer

CREDENTIALS_FILE = "credentials.json"


def _credentials_path(settings: Settings) -> Path:
    return settings.data_dir / CREDENTIALS_FILE


def _load(path: Path) -> dict[str, Any]:
    if path.exists():
        loaded: dict[str, Any] = json.loads(path.read_text())
        return loaded
    return {}


def _save(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    tmp.replace(path)


def initialise(settings: Settings, workspace_choice: str | None) -> dict[str, Any]:
    """Create what is missing and return the workspace's credentials (secrets kept in the data dir, 0600)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = ConfigStore(Database(DatabaseUrl.parse(settings.database_url), data_dir=settings.data_dir).conn(),
                        Sealer.for_data_dir(settings.data_dir))
    workspace_name = init_workspace_name(store, workspace_choice)
    path = _credentials_path(settings)
    saved = _load(path)
    known: dict[str, Any] = saved.get(workspace_name, {})
    first = not store.workspaces()
    workspace = store.workspace_by_name(workspace_name) or store.create_workspace(workspace_name)
    secrets: dict[str, str | None] = known.get("secrets", {})
    inputs = []
    for name, platform in (("server", "server"), ("web", "web")):
        existing = store.input_by_name(workspace.id, name)
        if existing is None:
            made = store.create_input(workspace.id, name, platform)
            existing = made.input
            secrets[existing.id] = made.secret
        elif existing.id not in secrets and existing.has_secret:
            # The secret is stored hashed and the saved copy is gone: issue a new one.
            made = store.rotate_secret(existing.id)
            secrets[existing.id] = made.secret
        inputs.append({"id": existing.id, "name": existing.name, "platform": existing.platform,
                       "key": existing.key, "secret": secrets.get(existing.id)})
    token = known.get("admin_token")
    if token is None or store.workspace_for_token(token) != workspace.id:
        # Whoever initialises the install is its operator: the first workspace's init token also sees the
        # rejections that belong to no workspace (docs/security.md, "The admin surface").
        first = first or min(store.workspaces(), key=lambda w: (w.created_ms, w.id)).id == workspace.id
        token = store.create_admin_token(workspace.id, "init", operator=first)
    result = {"workspace_id": workspace.id, "workspace": workspace_name, "inputs": inputs, "admin_token": token}
    saved[workspace_name] = {"secrets": secrets, "admin_token": token}
    _save(path, saved)
    return result


def shell_exports(result: dict[str, Any]) -> list[str]:
    """`export NAME=value` lines (values shell-quoted) for the credentials a quick start needs."""
    server = next(i for i in result["inputs"] if i["platform"] == "server")
    web = next(i for i in result["inputs"] if i["platform"] == "web")
    values = {
        "KAON_WORKSPACE_ID": result["workspace_id"],
        "KAON_KEY": server["key"], "KAON_SECRET": server["secret"] or "", "KAON_SERVER_INPUT_ID": server["id"],
        "KAON_WEB_KEY": web["key"], "KAON_WEB_INPUT_ID": web["id"],
        "KAON_ADMIN_TOKEN": result["admin_token"],
    }
    return [f"export {name}={shlex.quote(str(value))}" for name, value in values.items()]


def run_init(settings: Settings, workspace: str | None, output: str) -> int:
    """Print the credentials as text, one JSON object (`json`) or shell exports (`shell`)."""
    result = initialise(settings, workspace)
    if output == "json":
        print(json.dumps(result))
        return 0
    if output == "shell":
        print("\n".join(shell_exports(result)))
        return 0
    print(f"Kaon data store: {settings.data_dir}")
    print(f"Workspace:       {result['workspace']} ({result['workspace_id']})")
    for item in result["inputs"]:
        secret = f"  secret {item['secret']}" if item["secret"] else ""
        print(f"Input {item['name']:<8} ({item['platform']}): key {item['key']}{secret}")
    print(f"Admin token:     {result['admin_token']}")
    print(f'Into your shell: eval "$(kaon init --data-dir {shlex.quote(str(settings.data_dir))} --shell)"')
    return 0
