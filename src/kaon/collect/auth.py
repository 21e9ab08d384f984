"""Input authentication on the hot path: an in-memory table of inputs, refreshed when config changes."""

import base64
import binascii
import time

import msgspec

from kaon.collect.errors import CollectError, unauthorized
from kaon.store.config import ConfigStore, secret_matches
from kaon.store.db import Database
from kaon.store.sealing import Sealer

MISS_REFRESH_S = 0.1


class InputInfo(msgspec.Struct, frozen=True):
    id: str
    workspace_id: str
    platform: str
    allow_key_only: bool
    enabled: bool
    rate_limit_rps: float | None
    secret_hash: str | None
    # The plain secret, unsealed in memory, for HMAC-signed requests (None when not sealed).
    secret: str | None = None


def parse_basic(value: bytes | None) -> tuple[str, str] | None:
    """`Authorization: Basic base64(user:password)` → (user, password); None when absent."""
    if value is None:
        return None
    scheme, _, encoded = value.partition(b" ")
    if scheme.lower() != b"basic":
        raise unauthorized("Authorization must be HTTP Basic with the input's key and secret.")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise unauthorized("Authorization header is not valid Basic credentials.") from None
    user, _, password = decoded.partition(":")
    return user, password


class Authenticator:
    """Looks keys up in a cached copy of the inputs table; `refresh` reloads it when config changed."""

    def __init__(self, db: Database, default_rate_limit: float | None = None, sealer: Sealer | None = None) -> None:
        self._db = db
        self._sealer = sealer
        self._default_rate = default_rate_limit
        self._version = -1
        self._refreshed_at = 0.0
        self._by_key: dict[str, InputInfo] = {}
        self.refresh()

    def refresh(self) -> None:
        self._refreshed_at = time.monotonic()
        store = ConfigStore(self._db.conn())
        version = store.version()
        if version == self._version:
            return
        table = {}
        for item, secret_hash, sealed in store.credentials_table():
            table[item.key] = InputInfo(
                id=item.id, workspace_id=item.workspace_id, platform=item.platform,
                allow_key_only=item.allow_key_only, enabled=item.enabled,
                rate_limit_rps=item.rate_limit_rps if item.rate_limit_rps is not None else self._default_rate,
                secret_hash=secret_hash,
                secret=None if sealed is None or self._sealer is None else self._sealer.unseal(sealed),
            )
        self._by_key = table
        self._version = version

    def _known(self, key: str) -> InputInfo:
        info = self._by_key.get(key)
        if info is None and time.monotonic() - self._refreshed_at > MISS_REFRESH_S:
            # A key created a moment ago (API or CLI) may not be in the table yet: look once more, at most
            # every MISS_REFRESH_S, so a flood of unknown keys costs one version read per interval.
            self.refresh()
            info = self._by_key.get(key)
        if info is None:
            raise unauthorized("Unknown API key.")
        if not info.enabled:
            raise unauthorized("This input is disabled.", info)
        return info

    def key_and_secret(self, key: str, secret: str) -> InputInfo:
        info = self._known(key)
        if not secret_matches(secret, info.secret_hash):
            raise unauthorized("Wrong API secret for this key.", info)
        return info

    def key_only(self, key: str) -> InputInfo:
        info = self._known(key)
        if not info.allow_key_only:
            raise CollectError(
                401, "UNAUTHORIZED",
                "This input needs its secret: key-only calls are accepted from web inputs "
                "or inputs configured to accept them.",
                input=info,
            )
        return info

    def key_only_or_secret(self, key: str) -> InputInfo:
        """The input for a key, whatever its key-only setting (the caller proves the secret otherwise)."""
        return self._known(key)

    def basic(self, credentials: tuple[str, str] | None) -> InputInfo:
        if credentials is None:
            raise unauthorized("Missing Authorization header: use HTTP Basic with the input's key and secret.")
        key, secret = credentials
        return self.key_and_secret(key, secret)

    def write_key(self, credentials: tuple[str, str] | None, body_key: str | None) -> InputInfo:
        """Segment-spec auth: Basic write key (empty password) or `writeKey` in the body."""
        if credentials is not None:
            key, secret = credentials
            return self.key_and_secret(key, secret) if secret else self.key_only(key)
        if body_key:
            return self.key_only(body_key)
        raise unauthorized("Missing write key: send it as the Basic user or as `writeKey` in the body.")
