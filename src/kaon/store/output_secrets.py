"""Output secrets at rest and through the API: sealed in the stored settings (the per-install key, as input
secrets are), shown redacted, the redacted placeholder never stored, and re-entered when an output's target
changes (else a changed URL would send the old credentials to a new place).

A sealed value is `kaon-sealed:<Fernet token>`; a value without the prefix is a plaintext one from an earlier
release (read as is, sealed by `seal_stored`). A secret setting is a string, or a map of strings (webhook
headers), sealed value by value.
"""

import functools
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from kaon.destinations.base import PLACEHOLDER, Destination, secret_fields
from kaon.store.sealing import Sealer
from kaon.store.sql import Conn, store_url

PREFIX = "kaon-sealed:"
# Settings that say where an output sends: changing one requires giving its secrets again.
TARGET_FIELDS = ("base_url", "dsn")


class SecretsRequired(ValueError):
    code = "SECRETS_REQUIRED"


def _data_dir(conn: Conn) -> Path | None:
    """`KAON_DATA_DIR`, else the main store's directory (the default layout, as `secret.key` is found); None
    for a store in memory."""
    configured = os.environ.get("KAON_DATA_DIR")
    if configured:
        return Path(configured).resolve()
    if not conn.dialect.sqlite:
        return None  # a cluster shares KAON_SECRET_KEY (or KAON_DATA_DIR): Settings insists on one of them
    main = store_url(conn).removeprefix("sqlite:///")
    return Path(main).resolve().parent if main else None


@functools.lru_cache(maxsize=16)
def _sealer(data_dir: Path | None, key: str) -> Sealer:
    if key:
        return Sealer(key.encode())
    return Sealer.for_data_dir(data_dir) if data_dir else Sealer(Fernet.generate_key())  # in memory: this process


def sealer_for(conn: Conn) -> Sealer:
    return _sealer(_data_dir(conn), os.environ.get("KAON_SECRET_KEY", ""))


def _map(value: Any, change: Any) -> Any:
    if isinstance(value, str) and value:
        return change(value)
    if isinstance(value, dict):
        return {k: change(v) if isinstance(v, str) and v else v for k, v in value.items()}
    return value


def seal(destination: Destination, settings: dict[str, Any], sealer: Sealer) -> dict[str, Any]:
    secrets = secret_fields(destination)

    def one(text: str) -> str:
        return text if text.startswith(PREFIX) else PREFIX + sealer.seal(text)

    return {k: _map(v, one) if k in secrets else v for k, v in settings.items()}


def unseal(destination: Destination, settings: dict[str, Any], sealer: Sealer) -> dict[str, Any]:
    secrets = secret_fields(destination)

    def one(text: str) -> str:
        if not text.startswith(PREFIX):
            return text  # plaintext from an earlier release
        opened = sealer.unseal(text[len(PREFIX):])
        if opened is None:
            raise ValueError("an output secret cannot be unsealed with this install's key (DATA_DIR/secret.key "
                             "or KAON_SECRET_KEY changed?)")
        return opened

    return {k: _map(v, one) if k in secrets else v for k, v in settings.items()}


def is_sealed(destination: Destination, settings: dict[str, Any]) -> bool:
    secrets = secret_fields(destination)
    for name in secrets & settings.keys():
        value = settings[name]
        values = list(value.values()) if isinstance(value, dict) else [value]
        if any(isinstance(v, str) and v and not v.startswith(PREFIX) for v in values):
            return False
    return True


def _holds_placeholder(value: Any) -> bool:
    return value == PLACEHOLDER or (isinstance(value, dict) and PLACEHOLDER in value.values())


def refuse_placeholder(destination: Destination, settings: dict[str, Any]) -> None:
    """A new output's secret cannot be the redacted placeholder (it would be stored as the secret)."""
    for name in sorted(secret_fields(destination) & settings.keys()):
        if _holds_placeholder(settings[name]):
            raise ValueError(f"`{name}` is the redacted placeholder {PLACEHOLDER!r}, not a secret - at `{name}`")


def merge(destination: Destination, current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """`current` (unsealed) with `patch` applied: a secret given as the placeholder keeps its stored value (a
    header's value too); changing a target field without giving the stored secrets again is refused."""
    secrets = secret_fields(destination)
    merged = dict(current)
    for name, value in patch.items():
        if name in secrets and value == PLACEHOLDER:
            continue
        if name in secrets and isinstance(value, dict):
            found = current.get(name)
            stored: dict[str, Any] = found if isinstance(found, dict) else {}
            unknown = [k for k, v in value.items() if v == PLACEHOLDER and k not in stored]
            if unknown:
                raise ValueError(f"`{name}.{unknown[0]}` is the redacted placeholder but has no stored value"
                                 f" - at `{name}`")
            merged[name] = {k: stored[k] if v == PLACEHOLDER else v for k, v in value.items()}
        else:
            merged[name] = value
    moved = [f for f in TARGET_FIELDS if f in patch and not _holds_placeholder(patch[f])
             and patch[f] != current.get(f)]
    if moved:
        stale = sorted(s for s in secrets - set(moved) if current.get(s)
                       and (s not in patch or _holds_placeholder(patch[s])))
        if stale:
            listed = ", ".join(f"`{s}`" for s in stale)
            raise SecretsRequired(f"changing `{moved[0]}` would send this output's secrets to a new place: give "
                                  f"{listed} again in the same request - at `{stale[0]}`")
    return merged
