"""The data directory is 0700 and every database, log and key file in it 0600: made so by `kaon init` and
`kaon serve`, and tightened at start when an earlier release left them open."""

import json
import os
import stat
from pathlib import Path

import httpx

from support.server import KaonServer
from support.waiting import eventually


def modes(data_dir: Path) -> dict[str, int]:
    out = {".": stat.S_IMODE(os.stat(data_dir).st_mode)}
    for root, dirs, files in os.walk(data_dir):
        for name in dirs + files:
            path = Path(root) / name
            out[str(path.relative_to(data_dir))] = stat.S_IMODE(os.stat(path).st_mode)
    return out


def test_the_data_directory_and_its_files_are_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = KaonServer(data_dir)
    made = modes(data_dir)
    assert made["."] == 0o700 and made["kaon.db"] == 0o600 and made["secret.key"] == 0o600
    # As an earlier release (umask 022) left them:
    data_dir.chmod(0o755)
    (data_dir / "kaon.db").chmod(0o644)
    server.start()
    try:
        event = {"event_type": "custom_event", "data": {"event_name": "perm", "custom_event_type": "other"}}
        batch = {"environment": "production", "user_identities": {"customer_id": "perm"}, "events": [event]}
        answer = httpx.post(f"{server.url}/v2/events", content=json.dumps(batch), headers=server.basic())
        assert answer.status_code == 202
        eventually(lambda: server.events_named("perm"), timeout=20, what="the event stored")
        found = modes(data_dir)
        assert any(name.startswith("log") and name.endswith(".db") for name in found), found
        assert any(name.endswith("-wal") for name in found), found
        loose = {name: oct(mode) for name, mode in found.items()
                 if mode != (0o700 if (data_dir / name).is_dir() else 0o600)}
        assert loose == {}
    finally:
        server.stop()
