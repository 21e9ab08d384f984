"""The config store (owner of `workspaces`, `inputs`, `config_version`): workspaces, inputs (keys, hashed secrets)."""

import hashlib
import hmac
import secrets
import uuid
from typing import Any

import msgspec

from kaon.clock import now_ms
from kaon.errors import Conflict, NotFound
from kaon.store.sealing import Sealer
from kaon.store.sql import Conn
from kaon.store.tx import transaction
from kaon.types import InputId, WorkspaceId

PLATFORMS = frozenset({"web", "ios", "android", "server", "tvos", "roku", "alexa", "smart_tv", "fire_tv",
                       "xbox", "feed"})
KEY_ONLY_PLATFORMS = frozenset({"web"})


class Workspace(msgspec.Struct, frozen=True):
    id: WorkspaceId
    name: str
    created_ms: int


class Input(msgspec.Struct, frozen=True):
    id: InputId
    workspace_id: WorkspaceId
    name: str
    kind: str  # "platform" or "feed"
    platform: str
    key: str
    has_secret: bool
    allow_key_only: bool
    enabled: bool
    rate_limit_rps: float | None
    created_ms: int


class InputCredentials(msgspec.Struct, frozen=True):
    """What `create` and `rotate-secret` return once: the key and the plain secret (stored hashed)."""

    input: Input
    secret: str | None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, secret_hash: str | None) -> bool:
    return secret_hash is not None and hmac.compare_digest(hash_secret(secret), secret_hash)


_INPUT_COLUMNS = ("id, workspace_id, name, kind, platform, key, secret_hash IS NOT NULL, allow_key_only,"
                  " enabled, rate_limit_rps, created_ms")


def _input(row: tuple[object, ...]) -> Input:
    (id_, ws, name, kind, platform, key, has_secret, key_only, enabled, rate, created) = row
    return Input(
        id=InputId(str(id_)), workspace_id=WorkspaceId(str(ws)), name=str(name), kind=str(kind),
        platform=str(platform), key=str(key), has_secret=bool(has_secret), allow_key_only=bool(key_only),
        enabled=bool(enabled), rate_limit_rps=None if rate is None else float(str(rate)),
        created_ms=int(str(created)),
    )


class ConfigStore:
    """`sealer` (when given) also stores new secrets encrypted, so HMAC-signed requests can be checked."""

    def __init__(self, conn: Conn, sealer: Sealer | None = None) -> None:
        self.conn = conn
        self.sealer = sealer

    def _sealed(self, secret: str | None) -> str | None:
        return None if secret is None or self.sealer is None else self.sealer.seal(secret)

    def bump_version(self) -> None:
        self.conn.execute("UPDATE config_version SET version = version + 1 WHERE id = 1")

    def version(self) -> int:
        row = self.conn.execute("SELECT version FROM config_version WHERE id = 1").fetchone()
        return int(row[0])

    # Workspaces
    def workspace_by_name(self, name: str) -> Workspace | None:
        row = self.conn.execute("SELECT id, name, created_ms FROM workspaces WHERE name = ?", (name,)).fetchone()
        return None if row is None else Workspace(WorkspaceId(row[0]), row[1], row[2])

    def workspaces(self) -> list[Workspace]:
        """Every workspace, by name."""
        return [Workspace(WorkspaceId(r[0]), r[1], r[2]) for r in self.conn.execute(
            "SELECT id, name, created_ms FROM workspaces ORDER BY name")]

    def workspace(self, workspace_id: str) -> Workspace:
        row = self.conn.execute(
            "SELECT id, name, created_ms FROM workspaces WHERE id = ?", (workspace_id,)
        ).fetchone()
        if row is None:
            raise NotFound(f"workspace {workspace_id} not found")
        return Workspace(WorkspaceId(row[0]), row[1], row[2])

    def create_workspace(self, name: str) -> Workspace:
        workspace = Workspace(WorkspaceId(f"ws_{uuid.uuid4().hex[:16]}"), name, now_ms())
        with transaction(self.conn):
            if self.workspace_by_name(name) is not None:
                raise Conflict(f"workspace {name!r} already exists")
            self.conn.execute(
                "INSERT INTO workspaces (id, name, created_ms) VALUES (?, ?, ?)",
                (workspace.id, workspace.name, workspace.created_ms),
            )
        return workspace

    def settings(self, workspace_id: str) -> dict[str, Any]:
        row = self.conn.execute("SELECT settings FROM workspaces WHERE id = ?", (workspace_id,)).fetchone()
        if row is None:
            raise NotFound(f"workspace {workspace_id} not found")
        loaded: dict[str, Any] = msgspec.json.decode(row[0])
        return loaded

    def set_setting(self, workspace_id: str, key: str, value: object) -> None:
        with transaction(self.conn):
            current = self.settings(workspace_id)
            current[key] = value
            self.conn.execute("UPDATE workspaces SET settings = ? WHERE id = ?",
                              (msgspec.json.encode(current).decode(), workspace_id))
            self.bump_version()

    # Inputs
    def inputs(self, workspace_id: str | None = None) -> list[Input]:
        sql = f"SELECT {_INPUT_COLUMNS} FROM inputs"
        args: tuple[str, ...] = ()
        if workspace_id is not None:
            sql += " WHERE workspace_id = ?"
            args = (workspace_id,)
        return [_input(row) for row in self.conn.execute(sql + " ORDER BY created_ms, id", args)]

    def inputs_page(self, workspace_id: str, limit: int, after: tuple[int, str] | None = None) -> list[Input]:
        """A workspace's inputs, oldest first; `after` is the (created_ms, id) of the last one shown."""
        sql = f"SELECT {_INPUT_COLUMNS} FROM inputs WHERE workspace_id = ?"
        args: list[object] = [workspace_id]
        if after is not None:
            sql += " AND (created_ms > ? OR (created_ms = ? AND id > ?))"
            args.extend((after[0], after[0], after[1]))
        return [_input(row) for row in self.conn.execute(sql + " ORDER BY created_ms, id LIMIT ?", (*args, limit))]

    def input(self, input_id: str, workspace_id: str | None = None) -> Input:
        row = self.conn.execute(f"SELECT {_INPUT_COLUMNS} FROM inputs WHERE id = ?", (input_id,)).fetchone()
        if row is None or (workspace_id is not None and row[1] != workspace_id):
            raise NotFound(f"input {input_id} not found")
        return _input(row)

    def input_by_name(self, workspace_id: str, name: str) -> Input | None:
        row = self.conn.execute(
            f"SELECT {_INPUT_COLUMNS} FROM inputs WHERE workspace_id = ? AND name = ?", (workspace_id, name)
        ).fetchone()
        return None if row is None else _input(row)

    def credentials_table(self) -> list[tuple[Input, str | None, str | None]]:
        """Every input with its secret hash and sealed secret: what collect caches to authenticate requests."""
        rows = self.conn.execute(f"SELECT {_INPUT_COLUMNS}, secret_hash, secret_sealed FROM inputs").fetchall()
        return [(_input(row[:-2]), row[-2], row[-1]) for row in rows]

    def create_input(
        self,
        workspace_id: str,
        name: str,
        platform: str,
        *,
        feed: bool = False,
        with_secret: bool | None = None,
        allow_key_only: bool | None = None,
        rate_limit_rps: float | None = None,
    ) -> InputCredentials:
        if platform not in PLATFORMS:
            raise ValueError(f"platform must be one of {', '.join(sorted(PLATFORMS))}")
        key_only = platform in KEY_ONLY_PLATFORMS if allow_key_only is None else allow_key_only
        secret = None if (with_secret is False or (with_secret is None and platform == "web")) else (
            secrets.token_urlsafe(32)
        )
        created = Input(
            id=InputId(f"in_{uuid.uuid4().hex[:16]}"), workspace_id=WorkspaceId(workspace_id), name=name,
            kind="feed" if feed or platform == "feed" else "platform", platform=platform,
            key=secrets.token_hex(16), has_secret=secret is not None, allow_key_only=key_only, enabled=True,
            rate_limit_rps=rate_limit_rps, created_ms=now_ms(),
        )
        with transaction(self.conn):
            self.workspace(workspace_id)
            if self.input_by_name(workspace_id, name) is not None:
                raise Conflict(f"input {name!r} already exists in workspace {workspace_id}")
            self.conn.execute(
                "INSERT INTO inputs (id, workspace_id, name, kind, platform, key, secret_hash, secret_sealed,"
                " allow_key_only, enabled, rate_limit_rps, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
                (created.id, workspace_id, name, created.kind, platform, created.key,
                 None if secret is None else hash_secret(secret), self._sealed(secret), int(key_only),
                 rate_limit_rps, created.created_ms),
            )
            self.bump_version()
        return InputCredentials(created, secret)

    def set_enabled(self, input_id: str, enabled: bool, workspace_id: str | None = None) -> Input:
        with transaction(self.conn):
            self.input(input_id, workspace_id)
            self.conn.execute("UPDATE inputs SET enabled = ? WHERE id = ?", (int(enabled), input_id))
            self.bump_version()
        return self.input(input_id)

    def rotate_secret(self, input_id: str, workspace_id: str | None = None) -> InputCredentials:
        secret = secrets.token_urlsafe(32)
        with transaction(self.conn):
            self.input(input_id, workspace_id)
            self.conn.execute("UPDATE inputs SET secret_hash = ?, secret_sealed = ? WHERE id = ?",
                              (hash_secret(secret), self._sealed(secret), input_id))
            self.bump_version()
        return InputCredentials(self.input(input_id), secret)

    # Admin tokens (owned by kaon.store.tokens)
    def create_admin_token(self, workspace_id: str, name: str, *, operator: bool = False) -> str:
        """A write-scoped token that does not expire (what `kaon init` hands out)."""
        from kaon.store.tokens import TokenStore
        return TokenStore(self.conn).create(workspace_id, name, operator=operator)[0]

    def workspace_for_token(self, token: str) -> WorkspaceId | None:
        """The workspace of a usable (not revoked, not expired) token."""
        from kaon.store.tokens import TokenStore
        found = TokenStore(self.conn).authenticate(token, touch=False)
        return None if found is None else found.workspace_id
