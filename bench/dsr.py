"""Erasure time for one person with N events (default 10,000), next to another person with as many.

Builds a main store directly (profiles, identities, attributes, batches of 100 events, one delivery job per
event, a files output with every event as JSON Lines), then times `DsrWorker` on one erasure request and
checks the other person is untouched. Usage: `python bench/dsr.py [--events 10000]`.
"""

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path

import msgspec

from kaon.governance.dsr_model import parse_submission
from kaon.governance.dsr_store import DsrStore
from kaon.governance.dsr_worker import DsrWorker
from kaon.identity.store import ProfileStore
from kaon.store.config import ConfigStore
from kaon.store.db import Database, DatabaseUrl
from kaon.store.outputs import OutputStore
from kaon.store.tx import transaction


def person(db: Database, ws: str, tag: str, n: int, export: Path) -> int:
    conn = db.conn()
    now = int(time.time() * 1000)
    with transaction(conn):
        profiles = ProfileStore(conn, ws)
        mpid = profiles.create(now)
        profiles.link(mpid, ("email", f"{tag}@example.org"), now)
        profiles.link(mpid, ("customer_id", f"cust-{tag}"), now)
        profiles.set_attribute(mpid, "city", f"city-{tag}", now)
        rows = []
        for start in range(0, n, 100):
            batch = {"mpid": mpid, "user_identities": {"email": f"{tag}@example.org"}, "events": []}
            batch_id = conn.execute("INSERT INTO batches (workspace_id, input_id, received_ms, body) VALUES"
                                    " (?, 'in', ?, ?)", (ws, now, json.dumps(batch).encode())).lastrowid
            for i in range(start, min(start + 100, n)):
                message = str(uuid.uuid4())
                event_id = conn.execute(
                    "INSERT INTO events (workspace_id, input_id, batch_id, mpid, event_type, event_name,"
                    " source_message_id, timestamp_ms, received_ms, environment, body) VALUES (?, 'in', ?, ?,"
                    " 'custom_event', 'e', ?, ?, ?, 'production', ?)",
                    (ws, batch_id, mpid, message, now, now, json.dumps({"i": i}).encode())).lastrowid
                conn.execute("INSERT INTO message_ids VALUES (?, ?, ?)", (ws, message, now))
                job = conn.execute("INSERT INTO delivery_jobs (workspace_id, output_id, connection_id, event_id,"
                                   " mpid, created_ms, payload) VALUES (?, 'o', 'c', ?, ?, ?, ?)",
                                   (ws, event_id, mpid, now, f"{tag}@example.org".encode())).lastrowid
                conn.execute("INSERT INTO delivery_pending (job_id, output_id, mpid, next_attempt_ms) VALUES"
                             " (?, 'o', ?, ?)", (job, mpid, now))
                rows.append(json.dumps({"event_id": event_id, "mpid": str(mpid),
                                        "identities": {"email": f"{tag}@example.org"}}))
    part = export / "events" / "dt=2024-01-01" / f"part-{tag}.jsonl"
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_text("\n".join(rows) + "\n")
    return mpid


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        db = Database(DatabaseUrl.parse(f"sqlite:///{data / 'kaon.db'}"))
        ws = ConfigStore(db.conn()).create_workspace("bench").id
        OutputStore(db.conn(), ws).create_output("lake", "files", {"directory": str(data / "lake")}, True)
        started = time.perf_counter()
        person(db, ws, "erased", args.events, data / "lake")
        person(db, ws, "kept", args.events, data / "lake")
        built = time.perf_counter() - started
        submission = parse_submission(msgspec.json.encode({
            "subject_request_id": str(uuid.uuid4()), "subject_request_type": "erasure",
            "subject_identities": {"email": {"value": "erased@example.org", "encoding": "raw"}}}))
        conn = db.conn()
        with transaction(conn):
            DsrStore(conn).create(ws, submission, "http://localhost", 0, 0, 0)
        worker = DsrWorker(db, data)
        started = time.perf_counter()
        worker.run_once()
        took = time.perf_counter() - started
        row = DsrStore(conn).get(submission.subject_request_id)
        assert row is not None and row.status == "completed", row
        left = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        assert left == args.events, left
        print(json.dumps({"events_per_person": args.events, "build_s": round(built, 2),
                          "erasure_s": round(took, 3), "events_left_of_other_person": left,
                          "summary": row.summary}, indent=1))


if __name__ == "__main__":
    main()
