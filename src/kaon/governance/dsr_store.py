"""Data subject requests in the main store (owner of the `dsr_*` tables and `suppressed_identities`): rows,
status changes (one transaction each), callbacks queued and sent, an erasure's progress, suppressed digests."""

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


def _text(value: object) -> str:
    """JSON for a TEXT column (bytes would be a BLOB on SQLite and refused on PostgreSQL)."""
    return _json.encode(value).decode()


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
        conn.execute("INSERT INTO dsr_settings (name, value) VALUES ('digest_key', ?) ON CONFLICT (name) DO NOTHING",
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
             submission.group_id, _text(submission.identities), _text(sorted(submission.identities)),
             _text(digests), fingerprint, _text(submission.status_callback_urls), base_url, now_ms, due_ms,
             expected_ms, now_ms),
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
        encoded = {k: _text(v) if isinstance(v, (dict, list)) else v for k, v in columns.items()}
        assignments = ", ".join(f"{k} = ?" for k in encoded)
        self.conn.execute(f"UPDATE dsr_requests SET {assignments} WHERE id = ?", (*encoded.values(), row.id))
        updated = self.get(row.id)
        assert updated is not None
        self._changed(updated, now_ms, url)
        return updated

    def set_extensions(self, row: DsrRow, extensions: list[dict[str, Any]], now_ms: int) -> None:
        self.conn.execute("UPDATE dsr_requests SET extensions = ?, updated_ms = ? WHERE id = ?",
                          (_text(extensions), now_ms, row.id))

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

    def others_with_digests(self, row: DsrRow) -> list[str]:
        """Ids of the workspace's other requests, erasures aside, for any of the same identities (by digest)."""
        mine = set(row.digests)
        return [str(r) for r, d in self.conn.execute(
            "SELECT id, digests FROM dsr_requests WHERE workspace_id = ? AND id != ? AND request_type != 'erasure'",
            (row.workspace_id, row.id)) if set(_decode.decode(d)) & mine]

    # An erasure's progress (the person as found, what was done) between its store transaction and completion
    def progress(self, request_id: str) -> tuple[bytes, dict[str, Any]] | None:
        """The saved subject (JSON) and summary of an erasure interrupted after its store transaction."""
        row = self.conn.execute("SELECT subject, summary FROM dsr_progress WHERE request_id = ?",
                                (request_id,)).fetchone()
        if row is None:
            return None
        subject = row[0] if isinstance(row[0], bytes) else str(row[0]).encode()
        return subject, _decode.decode(row[1])

    def save_progress(self, request_id: str, subject: bytes, summary: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT INTO dsr_progress (request_id, subject, summary) VALUES (?, ?, ?) ON CONFLICT (request_id)"
            " DO UPDATE SET subject = excluded.subject, summary = excluded.summary",
            (request_id, subject.decode(), _text(summary)))

    def clear_progress(self, request_id: str) -> None:
        self.conn.execute("DELETE FROM dsr_progress WHERE request_id = ?", (request_id,))

    # Status callbacks
    def callbacks_due(self, now_ms: int, max_attempts: int, limit: int = 100) -> list[tuple[int, str, bytes, int]]:
        """(id, url, body, attempts) of callbacks to send now, oldest first."""
        return [(int(i), str(u), bytes(b), int(a)) for i, u, b, a in self.conn.execute(
            "SELECT id, url, body, attempts FROM dsr_callbacks WHERE done_ms IS NULL AND next_ms <= ? AND attempts < ?"
            " ORDER BY id LIMIT ?", (now_ms, max_attempts, limit)).fetchall()]

    def callback_sent(self, callback_id: int, attempts: int, now_ms: int, status: int | None) -> None:
        self.conn.execute("UPDATE dsr_callbacks SET attempts = ?, done_ms = ?, last_status = ?, last_error = NULL"
                          " WHERE id = ?", (attempts, now_ms, status, callback_id))

    def callback_failed(self, callback_id: int, attempts: int, next_ms: int, status: int | None, error: str) -> None:
        self.conn.execute("UPDATE dsr_callbacks SET attempts = ?, next_ms = ?, last_status = ?, last_error = ?"
                          " WHERE id = ?", (attempts, next_ms, status, error, callback_id))


# Suppressed identities (keyed digests of erased values; kaon.governance.dsr_suppress decides what to digest)
def any_suppressed(conn: Conn, workspace_id: str, now_ms: int) -> bool:
    return conn.execute("SELECT 1 FROM suppressed_identities WHERE workspace_id = ? AND expires_ms > ? LIMIT 1",
                        (workspace_id, now_ms)).fetchone() is not None


def is_digest_suppressed(conn: Conn, workspace_id: str, key: str, now_ms: int) -> bool:
    return conn.execute("SELECT 1 FROM suppressed_identities WHERE workspace_id = ? AND digest = ? AND expires_ms > ?",
                        (workspace_id, key, now_ms)).fetchone() is not None


def suppress_digest(conn: Conn, workspace_id: str, key: str, identity_type: str, request_id: str, now_ms: int,
                    until_ms: int) -> None:
    """Suppress one digest until `until_ms` (a suppression already lasting longer keeps its end)."""
    expires = conn.dialect.greatest("suppressed_identities.expires_ms", "excluded.expires_ms")
    conn.execute(
        "INSERT INTO suppressed_identities (workspace_id, digest, identity_type, request_id, created_ms, expires_ms)"
        f" VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (workspace_id, digest) DO UPDATE SET expires_ms = {expires},"
        " request_id = excluded.request_id", (workspace_id, key, identity_type, request_id, now_ms, until_ms))


def suppressions(conn: Conn, workspace_id: str, now_ms: int) -> list[tuple[str, str, int, int]]:
    """(identity type, request id, created_ms, expires_ms) of the suppressions lasting now, oldest first."""
    return [(str(t), str(r), int(c), int(e)) for t, r, c, e in conn.execute(
        "SELECT identity_type, request_id, created_ms, expires_ms FROM suppressed_identities"
        " WHERE workspace_id = ? AND expires_ms > ? ORDER BY created_ms", (workspace_id, now_ms))]


def status_body(row: DsrRow, url: str | None) -> dict[str, Any]:
    """`GET /requests/{id}`."""
    return {"controller_id": row.workspace_id, "expected_completion_time": iso(row.expected_ms),
            "subject_request_id": row.id, "group_id": row.group_id, "request_status": row.status,
            "api_version": API_VERSION, "results_url": url, "extensions": row.extensions}


def callback_body(row: DsrRow, url: str | None) -> dict[str, Any]:
    return {"controller_id": row.workspace_id, "expected_completion_time": iso(row.expected_ms),
            "subject_request_id": row.id, "request_status": row.status, "api_version": API_VERSION,
            "results_url": url, "extensions": row.extensions}
