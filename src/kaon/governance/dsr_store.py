"""Data subject requests in the main store: rows, status changes (one transaction each) and callbacks queued."""

import hashlib
import hmac
import secrets
from typing import Any

import msgspec

from kaon.governance.dsr_model import API_VERSION, DsrError, Submission, iso
from kaon.store.sql import Conn

_json = msgspec.json.Encoder()
_decode = msgspec.json.Decoder()
ACTIVE = ("pending", "in_progress")
_COLUMNS = ("id, workspace_id, request_type, regulation, group_id, status, identities, identity_types, digests,"
            " fingerprint, callback_urls, base_url, received_ms, due_ms, expected_ms, updated_ms,"
            " results_expires_ms, extensions, summary")


class DsrRow(msgspec.Struct, kw_only=True):
    id: str
    workspace_id: str
    request_type: str
    regulation: str
    group_id: str | None
    status: str
    identities: dict[str, str]
    identity_types: list[str]
    digests: list[str]
    fingerprint: str
    callback_urls: list[str]
    base_url: str
    received_ms: int
    due_ms: int
    expected_ms: int | None
    updated_ms: int
    results_expires_ms: int | None
    extensions: list[dict[str, Any]]
    summary: dict[str, Any]


def _row(row: tuple[Any, ...]) -> DsrRow:
    return DsrRow(
        id=row[0], workspace_id=row[1], request_type=row[2], regulation=row[3], group_id=row[4], status=row[5],
        identities=_decode.decode(row[6]), identity_types=_decode.decode(row[7]), digests=_decode.decode(row[8]),
        fingerprint=row[9], callback_urls=_decode.decode(row[10]), base_url=row[11], received_ms=row[12],
        due_ms=row[13], expected_ms=row[14], updated_ms=row[15], results_expires_ms=row[16],
        extensions=_decode.decode(row[17]), summary=_decode.decode(row[18]),
    )


def salt(conn: Conn) -> bytes:
    """The install's key for identity digests (made on first use; the same for every process)."""
    row = conn.execute("SELECT value FROM dsr_settings WHERE name = 'digest_key'").fetchone()
    if row is None:
        conn.execute("INSERT OR IGNORE INTO dsr_settings (name, value) VALUES ('digest_key', ?)",
                     (secrets.token_hex(32),))
        row = conn.execute("SELECT value FROM dsr_settings WHERE name = 'digest_key'").fetchone()
    return bytes.fromhex(row[0])


def digest(key: bytes, workspace_id: str, identity_type: str, value: str) -> str:
    """A keyed hash of one identity: lets Kaon recognise a value again without keeping it."""
    return hmac.new(key, f"{workspace_id}\0{identity_type}\0{value}".encode(), hashlib.sha256).hexdigest()


def results_url(row: DsrRow, token: str | None) -> str | None:
    if token is None:
        return None
    return f"{row.base_url.rstrip('/')}/opendsr/v3/results/{row.id}?token={token}"


class DsrStore:
    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    def get(self, request_id: str, workspace_id: str | None = None) -> DsrRow | None:
        row = self.conn.execute(f"SELECT {_COLUMNS} FROM dsr_requests WHERE id = ?",
                                (request_id.lower(),)).fetchone()
        if row is None or (workspace_id is not None and row[1] != workspace_id):
            return None
        return _row(row)

    def by_group(self, workspace_id: str, group_id: str) -> list[DsrRow]:
        return [_row(r) for r in self.conn.execute(
            f"SELECT {_COLUMNS} FROM dsr_requests WHERE workspace_id = ? AND group_id = ? ORDER BY received_ms, id",
            (workspace_id, group_id))]

    def due(self, now_ms: int) -> list[DsrRow]:
        """Requests to work on: in progress (resumed after a crash) first, then pending ones that are due."""
        return [_row(r) for r in self.conn.execute(
            f"SELECT {_COLUMNS} FROM dsr_requests WHERE status = 'in_progress'"
            f" OR (status = 'pending' AND due_ms <= ?) ORDER BY status = 'pending', due_ms", (now_ms,))]

    def create(self, workspace_id: str, submission: Submission, base_url: str, now_ms: int, due_ms: int,
               expected_ms: int) -> DsrRow:
        """Insert a pending request (raises DsrError 400 on a known id, 409 on an active duplicate)."""
        if self.get(submission.subject_request_id) is not None:
            raise DsrError(400, "Subject request already exists.", reason="InvalidOperationException")
        key = salt(self.conn)
        digests = sorted(digest(key, workspace_id, t, v) for t, v in submission.identities.items())
        fingerprint = hashlib.sha256(
            "\0".join([submission.subject_request_type, *digests]).encode()).hexdigest()
        active = self.conn.execute(
            "SELECT id FROM dsr_requests WHERE workspace_id = ? AND fingerprint = ? AND status IN (?, ?)",
            (workspace_id, fingerprint, *ACTIVE)).fetchone()
        if active is not None:
            raise DsrError(409, f"A {submission.subject_request_type} request for the same identities is in "
                                f"progress ({active[0]}).", reason="ConflictException")
        self.conn.execute(
            f"INSERT INTO dsr_requests ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
            " NULL, '[]', '{}')",
            (submission.subject_request_id, workspace_id, submission.subject_request_type, submission.regulation,
             submission.group_id, _json.encode(submission.identities),
             _json.encode(sorted(submission.identities)), _json.encode(digests), fingerprint,
             _json.encode(submission.status_callback_urls), base_url, now_ms, due_ms, expected_ms, now_ms),
        )
        row = self.get(submission.subject_request_id)
        assert row is not None
        self._changed(row, now_ms, None)
        return row

    def set_status(self, row: DsrRow, status: str, now_ms: int, url: str | None = None, **changes: Any) -> DsrRow:
        """Move a request on; a terminal status forgets its raw identities. Queues the callbacks."""
        columns = {"status": status, "updated_ms": now_ms, **changes}
        if status in ("completed", "cancelled"):
            columns["identities"] = {}
        encoded = {k: _json.encode(v) if isinstance(v, (dict, list)) else v for k, v in columns.items()}
        assignments = ", ".join(f"{k} = ?" for k in encoded)
        self.conn.execute(f"UPDATE dsr_requests SET {assignments} WHERE id = ?", (*encoded.values(), row.id))
        updated = self.get(row.id)
        assert updated is not None
        self._changed(updated, now_ms, url)
        return updated

    def set_extensions(self, row: DsrRow, extensions: list[dict[str, Any]], now_ms: int) -> None:
        self.conn.execute("UPDATE dsr_requests SET extensions = ?, updated_ms = ? WHERE id = ?",
                          (_json.encode(extensions), now_ms, row.id))

    def _changed(self, row: DsrRow, now_ms: int, url: str | None) -> None:
        self.conn.execute("INSERT INTO dsr_status_log (request_id, status, at_ms) VALUES (?, ?, ?)",
                          (row.id, row.status, now_ms))
        body = _json.encode(callback_body(row, url))
        for target in row.callback_urls:
            self.conn.execute(
                "INSERT INTO dsr_callbacks (request_id, url, body, created_ms, next_ms) VALUES (?, ?, ?, ?, ?)",
                (row.id, target, body, now_ms, now_ms))

    def history(self, request_id: str) -> list[tuple[str, int]]:
        return [(s, int(t)) for s, t in self.conn.execute(
            "SELECT status, at_ms FROM dsr_status_log WHERE request_id = ? ORDER BY id", (request_id,))]


def status_body(row: DsrRow, url: str | None) -> dict[str, Any]:
    """`GET /requests/{id}`."""
    return {"controller_id": row.workspace_id, "expected_completion_time": iso(row.expected_ms),
            "subject_request_id": row.id, "group_id": row.group_id, "request_status": row.status,
            "api_version": API_VERSION, "results_url": url, "extensions": row.extensions}


def callback_body(row: DsrRow, url: str | None) -> dict[str, Any]:
    return {"controller_id": row.workspace_id, "expected_completion_time": iso(row.expected_ms),
            "subject_request_id": row.id, "request_status": row.status, "api_version": API_VERSION,
            "results_url": url, "extensions": row.extensions}
