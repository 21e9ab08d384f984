"""A real SQLite store with one workspace for identity tests, and the identity service over it at a moving clock."""

from pathlib import Path
from typing import Any

import msgspec

from kaon.identity.policy import IdentityPolicy
from kaon.identity.service import Identity as IdentityService
from kaon.store.config import ConfigStore
from kaon.store.db import Database, DatabaseUrl


class IdentityWorld:
    def __init__(self, root: Path, **policy: Any) -> None:
        self.conn = Database(DatabaseUrl.parse(f"sqlite:///{root}/k.db")).conn()
        config = ConfigStore(self.conn)
        self.ws = config.create_workspace("w").id
        if policy:
            config.set_setting(self.ws, "identity", msgspec.to_builtins(IdentityPolicy(**policy)))
        self.clock = 1_000

    def service(self) -> IdentityService:
        """The identity service one second after the last one."""
        self.clock += 1_000
        return IdentityService(self.conn, self.ws, actor="test", now_ms=self.clock)
