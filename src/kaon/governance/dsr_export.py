"""Access and portability: everything held about a person as JSON (and CSV for portability), in the data dir."""

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from kaon.audiences import store as audience_store
from kaon.governance import consent_store
from kaon.identity import store as identity_store
from kaon.store import events
from kaon.store.sql import Conn
from kaon.store.subject import Subject


# moves to kaon.governance.consent_store.export_subject
def collect(conn: Conn, subject: Subject) -> dict[str, Any]:
    held = identity_store.export_subject(conn, subject)
    profiles = held["profiles"]
    return {"workspace_id": subject.workspace_id, "profiles": profiles, "identities": held["identities"],
            "attributes": held["attributes"],
            "consent": [{"mpid": p["mpid"], "consent": p["consent"]} for p in profiles],
            "consent_history": consent_store.export_subject(conn, subject),
            "events": events.export_subject(conn, subject)["events"],
            "audiences": audience_store.export_subject(conn, subject)}


def to_csv(export: dict[str, Any]) -> str:
    """One table: `section, mpid, name, value, timestamp_ms` (values of nested data as JSON)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["section", "mpid", "name", "value", "timestamp_ms"])
    for p in export["profiles"]:
        writer.writerow(["profile", p["mpid"], "consent", json.dumps(p["consent"]), p["last_seen_ms"]])
    for i in export["identities"]:
        writer.writerow(["identity", i["mpid"], i["identity_type"], i["value"], i["first_seen_ms"]])
    for a in export["attributes"]:
        writer.writerow(["attribute", a["mpid"], a["name"], json.dumps(a["value"]), a["updated_ms"]])
    for h in export.get("consent_history", []):
        writer.writerow(["consent", h["mpid"], f"{h['regulation']}:{h['purpose']}",
                         json.dumps({k: h[k] for k in ("consented", "document", "location", "hardware_id")}),
                         h["timestamp_ms"]])
    for e in export["events"]:
        writer.writerow(["event", e["mpid"], f"{e['event_type']}:{e['event_name'] or ''}", json.dumps(e["data"]),
                         e["timestamp_ms"]])
    return out.getvalue()


def results_dir(data_dir: Path) -> Path:
    return data_dir / "dsr" / "results"


def write(data_dir: Path, request_id: str, export: dict[str, Any], portability: bool) -> None:
    directory = results_dir(data_dir)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    files = {f"{request_id}.json": json.dumps(export, indent=1).encode()}
    if portability:
        files[f"{request_id}.csv"] = to_csv(export).encode()
    for name, payload in files.items():
        temp = directory / f".{name}.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.replace(temp, directory / name)


def remove(data_dir: Path, request_id: str) -> None:
    for suffix in (".json", ".csv"):
        (results_dir(data_dir) / f"{request_id}{suffix}").unlink(missing_ok=True)
