"""One workspace's identity machinery in a transaction: its policy, profile store, resolver and merges."""


import msgspec

from kaon.errors import NotFound
from kaon.identity.merge import merge
from kaon.identity.policy import DEFAULT_POLICY, IdentityPolicy
from kaon.identity.resolve import Resolver
from kaon.identity.store import ProfileStore
from kaon.store.config import ConfigStore
from kaon.store.sql import Conn


def load_policy(conn: Conn, workspace_id: str) -> IdentityPolicy:
    try:
        raw = ConfigStore(conn).settings(workspace_id).get("identity")
    except NotFound:  # events of a workspace deleted since they were accepted: defaults apply
        return DEFAULT_POLICY
    return DEFAULT_POLICY if raw is None else msgspec.convert(raw, IdentityPolicy)


class Identity:
    """Everything identity work needs for one workspace; `actor` is written to merge audit rows."""

    def __init__(self, conn: Conn, workspace_id: str, *, actor: str, now_ms: int,
                 policy: IdentityPolicy | None = None) -> None:
        self.conn = conn
        self.workspace_id = workspace_id
        self.policy = policy or load_policy(conn, workspace_id)
        self.store = ProfileStore(conn, workspace_id)
        self.now_ms = now_ms
        self.actor = actor
        self.resolver = Resolver(self.store, self.policy, self._merge)

    def _merge(self, survivor: int, merged: int, reason: str) -> None:
        merge(self.conn, self.workspace_id, survivor, merged, reason=reason, actor=self.actor, now_ms=self.now_ms)
