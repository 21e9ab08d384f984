"""`kaon dsr submit|status`: data subject requests straight in the data store (a running server processes them)."""

import argparse
import json
import os
import uuid

import msgspec

from kaon.clock import now_ms
from kaon.commands.workspace import chosen_workspace
from kaon.errors import KaonError
from kaon.governance.dsr_keys import SigningKey
from kaon.governance.dsr_model import EXTENSION_DOMAIN, DsrError, iso, parse_submission
from kaon.governance.dsr_store import DsrStore, results_url, status_body
from kaon.settings import Settings
from kaon.store.config import ConfigStore
from kaon.store.db import Database, DatabaseUrl
from kaon.store.tx import transaction

DAY_MS = 86_400_000


def run_dsr(settings: Settings, args: argparse.Namespace) -> int:
    db = Database(DatabaseUrl.parse(settings.database_url), data_dir=settings.data_dir)
    conn = db.conn()
    workspace = chosen_workspace(ConfigStore(conn), args.workspace)
    store = DsrStore(conn)
    try:
        if args.action == "submit":
            top = {"email": args.email, "controller_customer_id": args.customer_id}
            extension = {"mpid": args.mpid}
            body = {
                "subject_request_id": args.id or str(uuid.uuid4()), "subject_request_type": args.type,
                "regulation": args.regulation, "api_version": "3.0",
                "subject_identities": {k: {"value": v, "encoding": "raw"} for k, v in top.items() if v},
                "extensions": {EXTENSION_DOMAIN: {
                    "skip_waiting_period": args.skip_waiting_period,
                    "subject_identities": {k: {"value": v, "encoding": "raw"} for k, v in extension.items() if v}}},
            }
            submission = parse_submission(msgspec.json.encode(body))
            now = now_ms()
            waiting = 0 if submission.skip_waiting_period else int(
                float(os.environ.get("KAON_DSR_WAITING_DAYS") or 0) * DAY_MS)
            with transaction(conn):
                row = store.create(workspace.id, submission, f"http://{settings.host}:{settings.port}", now,
                                   now + waiting, now + waiting)
            print(json.dumps({"subject_request_id": row.id, "received_time": iso(row.received_ms),
                              "expected_completion_time": iso(row.expected_ms), "controller_id": workspace.id}))
            return 0
        found = store.get(args.request_id, workspace.id)
        if found is None:
            raise KaonError(f"no data subject request {args.request_id}")
        keys = SigningKey.for_data_dir(db.data_dir)
        token = keys.link_token(found.id, found.results_expires_ms) if found.results_expires_ms else None
        print(json.dumps(status_body(found, results_url(found, token))))
        return 0
    except DsrError as error:
        details = "; ".join(e["message"] for e in error.errors if e["message"] != error.message)
        raise KaonError(f"{error.message} {details}".strip()) from None
