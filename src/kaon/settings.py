"""Runtime settings, from command-line flags and `KAON_*` environment variables (flags win)."""

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_DATA_DIR = "./kaon-data"
DAY_MS = 86_400_000
ROLES = ("all", "collect", "process", "deliver")
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def _float_env(name: str) -> float | None:
    value = os.environ.get(name)
    return float(value) if value else None


def _int_env(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value else None


def _flag_env(name: str) -> bool:
    value = (os.environ.get(name) or "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"{name} must be 1/true/yes/on or 0/false/no/off, not {value!r}")


def public_url(environ: Mapping[str, str] | None = None) -> str | None:
    """`KAON_PUBLIC_URL`: the address clients reach Kaon at (`https://cdp.example.com`), used for the links Kaon
    hands out (OpenDSR results, status and certificate URLs) instead of a request's `Host`. None when unset."""
    value = ((environ if environ is not None else os.environ).get("KAON_PUBLIC_URL") or "").strip()
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"KAON_PUBLIC_URL must be an http(s) URL such as https://cdp.example.com, not {value!r}")
    return value.rstrip("/")


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    host: str = "127.0.0.1"
    port: int = 8080
    # A repeated source_message_id within this window is stored once per workspace.
    dedup_window_ms: int = DAY_MS
    # Requests/s per input when the input sets none; None = unlimited.
    default_rate_limit: float | None = None
    # Seconds SIGTERM waits for the process stage to catch up before exiting.
    drain_seconds: float = 10.0
    # "process": the process stage runs in its own OS process (default: its own GIL and core);
    # "thread": in a thread of the serving process (one process in all).
    process_stage: str = "process"
    # Log every request (uvicorn's access log) to stderr.
    access_log: bool = False
    # Connection bounds (docs/security.md, "Bounds: denial of service"). None: from the file-descriptor limit.
    max_connections: int | None = None
    max_header_bytes: int = 64 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    # Largest admin request body (a 10 MB plan document fits); larger answers 413 ADMIN_BODY_TOO_LARGE.
    admin_max_body_bytes: int = 16 * 1024 * 1024
    # KAON_PUBLIC_URL (see `public_url`): validated at start so a typo fails early.
    public_url: str | None = None
    # What this `kaon serve` runs (docs/deploy.md): "all" (collect, process and deliver), or one of them, for
    # role processes on several machines against one PostgreSQL database.
    role: str = "all"

    def __post_init__(self) -> None:
        if self.process_stage not in ("process", "thread"):
            raise ValueError("process stage must be `process` or `thread`")
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {self.role!r}")
        if self.role != "all" and not self.database_url.startswith(POSTGRES_SCHEMES):
            raise ValueError(f"--role {self.role} needs the store on PostgreSQL (--database-url postgresql://…): "
                             "role processes share one database and its ingest log (docs/deploy.md)")

    @property
    def runs_collect(self) -> bool:
        return self.role in ("all", "collect")

    @property
    def runs_process(self) -> bool:
        return self.role in ("all", "process")

    @property
    def runs_deliver(self) -> bool:
        return self.role in ("all", "deliver")

    @property
    def on_postgres(self) -> bool:
        return self.database_url.startswith(POSTGRES_SCHEMES)

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "log"

    @classmethod
    def resolve(
        cls,
        data_dir: str | None = None,
        database_url: str | None = None,
        host: str | None = None,
        port: int | None = None,
        process_stage: str | None = None,
        access_log: bool | None = None,
        role: str | None = None,
    ) -> "Settings":
        directory = Path(data_dir or os.environ.get("KAON_DATA_DIR") or DEFAULT_DATA_DIR).resolve()
        url = database_url or os.environ.get("KAON_DATABASE_URL") or f"sqlite:///{directory / 'kaon.db'}"
        window_hours = _float_env("KAON_DEDUP_WINDOW_HOURS")
        return cls(
            data_dir=directory,
            database_url=url,
            host=host or os.environ.get("KAON_HOST") or "127.0.0.1",
            port=port if port is not None else int(os.environ.get("KAON_PORT") or 8080),
            dedup_window_ms=DAY_MS if window_hours is None else int(window_hours * 3_600_000),
            default_rate_limit=_float_env("KAON_INPUT_RATE_LIMIT"),
            drain_seconds=_float_env("KAON_DRAIN_SECONDS") or 10.0,
            process_stage=process_stage or os.environ.get("KAON_PROCESS_STAGE") or "process",
            access_log=access_log if access_log is not None else _flag_env("KAON_ACCESS_LOG"),
            max_connections=_int_env("KAON_MAX_CONNECTIONS"),
            max_header_bytes=_int_env("KAON_MAX_HEADER_BYTES") or 64 * 1024,
            header_timeout=_float_env("KAON_HEADER_TIMEOUT") or 10.0,
            body_timeout=_float_env("KAON_BODY_TIMEOUT") or 30.0,
            admin_max_body_bytes=_int_env("KAON_ADMIN_MAX_BODY_BYTES") or 16 * 1024 * 1024,
            public_url=public_url(),
            role=role or os.environ.get("KAON_ROLE") or "all",
        )
