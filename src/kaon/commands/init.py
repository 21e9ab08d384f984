"""`kaon init`: data store, workspace, a server input, a web input and an admin token — once."""

import json
import os
from pathlib import Path
from typing import Any

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


def initialise(settings: Settings, workspace_name: str) -> dict[str, Any]:
    """Create what is missing and return the workspace's credentials (secrets kept in the data dir, 0600)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = ConfigStore(Database(DatabaseUrl.parse(settings.database_url)).conn(),
                        Sealer.for_data_dir(settings.data_dir))
    path = _credentials_path(settings)
    saved = _load(path)
    known: dict[str, Any] = saved.get(workspace_name, {})
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
        token = store.create_admin_token(workspace.id, "init")
    result = {"workspace_id": workspace.id, "inputs": inputs, "admin_token": token}
    saved[workspace_name] = {"secrets": secrets, "admin_token": token}
    _save(path, saved)
    return result


def run_init(settings: Settings, workspace_name: str, as_json: bool) -> int:
    result = initialise(settings, workspace_name)
    if as_json:
        print(json.dumps(result))
        return 0
    print(f"Kaon data store: {settings.data_dir}")
    print(f"Workspace:       {workspace_name} ({result['workspace_id']})")
    for item in result["inputs"]:
        secret = f"  secret {item['secret']}" if item["secret"] else ""
        print(f"Input {item['name']:<8} ({item['platform']}): key {item['key']}{secret}")
    print(f"Admin token:     {result['admin_token']}")
    return 0
