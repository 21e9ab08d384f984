"""Admin tokens (the `admin_tokens` table's owner): scopes, expiry, revocation, last use.

A token is shown once and stored as its SHA-256. Its public id is the first 16 hex digits of that hash, so it
can be listed and revoked without being known. `write` may change state, `read` may only read; `operator`
also sees what belongs to no workspace (unauthenticated rejections).
"""

import secrets
from typing import Any

import msgspec

from kaon.clock import now_ms
from kaon.errors import NotFound
from kaon.store.config import hash_secret
from kaon.store.sql import Conn
from kaon.store.tx import transaction
from kaon.types import WorkspaceId

SCOPES = ("read", "write")
# Last use is written at most this often per token, so reads do not each cost a write.
LAST_USED_EVERY_MS = 60_000


class AdminToken(msgspec.Struct, frozen=True):
    id: str
    workspace_id: WorkspaceId
    name: str
    scope: str
    operator: bool
    created_ms: int
    expires_ms: int | None
    revoked_ms: int | None
    last_used_ms: int | None

    def usable(self, at_ms: int) -> bool:
        return self.revoked_ms is None and (self.expires_ms is None or at_ms < self.expires_ms)


_COLUMNS = ("substr(token_hash, 1, 16), workspace_id, name, scope, operator, created_ms, expires_ms, revoked_ms,"
            " last_used_ms")


def _token(row: Any) -> AdminToken:
    return AdminToken(str(row[0]), WorkspaceId(str(row[1])), str(row[2]), str(row[3]), bool(row[4]), int(row[5]),
                      None if row[6] is None else int(row[6]), None if row[7] is None else int(row[7]),
                      None if row[8] is None else int(row[8]))


class TokenStore:
    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    def create(self, workspace_id: str, name: str, *, scope: str = "write", operator: bool = False,
               expires_ms: int | None = None) -> tuple[str, AdminToken]:
        """A new token (shown once) and its record."""
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
        token = f"kaon_{secrets.token_urlsafe(32)}"
        with transaction(self.conn):
            self.conn.execute(
                "INSERT INTO admin_tokens (token_hash, workspace_id, name, created_ms, scope, operator, expires_ms)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (hash_secret(token), workspace_id, name, now_ms(), scope, int(operator), expires_ms))
        found = self.authenticate(token, touch=False)
        assert found is not None
        return token, found

    def authenticate(self, token: str, *, touch: bool = True) -> AdminToken | None:
        """The token's record when it exists and is neither revoked nor expired; its last use noted."""
        digest = hash_secret(token)
        row = self.conn.execute(f"SELECT {_COLUMNS} FROM admin_tokens WHERE token_hash = ?", (digest,)).fetchone()
        if row is None:
            return None
        found = _token(row)
        now = now_ms()
        if not found.usable(now):
            return None
        if touch and (found.last_used_ms is None or now - found.last_used_ms >= LAST_USED_EVERY_MS):
            with transaction(self.conn):
                self.conn.execute("UPDATE admin_tokens SET last_used_ms = ? WHERE token_hash = ?", (now, digest))
        return found

    def list(self, workspace_id: str) -> list[AdminToken]:
        rows = self.conn.execute(f"SELECT {_COLUMNS} FROM admin_tokens WHERE workspace_id = ? ORDER BY created_ms,"
                                 " token_hash", (workspace_id,)).fetchall()
        return [_token(r) for r in rows]

    def revoke(self, workspace_id: str, token_id: str) -> AdminToken:
        """Revoke by public id (idempotent); NotFound when the workspace has no such token."""
        with transaction(self.conn):
            # A public id is 16 hex digits: a shorter one must not match every token it begins.
            found = 0 if len(token_id) != 16 else self.conn.execute(
                "UPDATE admin_tokens SET revoked_ms = coalesce(revoked_ms, ?) WHERE workspace_id = ?"
                " AND substr(token_hash, 1, 16) = ?", (now_ms(), workspace_id, token_id)).rowcount
            if found == 0:
                raise NotFound(f"admin token {token_id!r} not found")
        return next(t for t in self.list(workspace_id) if t.id == token_id)
