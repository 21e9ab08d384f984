"""`kaon serve`: one ASGI app (collection doors + admin API) and its lifespan, run by uvicorn."""

import logging
import os
import resource
import signal
from urllib.parse import urlsplit, urlunsplit

import uvicorn

from kaon import __version__
from kaon.admin.app import create_admin_app
from kaon.admin.guard import AdminGuard
from kaon.collect.door import error_body
from kaon.collect.http import Receive, Scope, Send, respond
from kaon.runtime import Runtime
from kaon.server_protocol import ConnectionLimits, protocol_class
from kaon.settings import Settings

_log = logging.getLogger("kaon.server")


class KaonApp:
    """Routes collection paths to the raw ASGI doors and everything else to the admin app."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.collects = runtime.settings.runs_collect
        self.admin = create_admin_app(runtime.db, is_ready=lambda: runtime.ready, role=runtime.settings.role,
                                      parts=runtime.health)
        self.admin.state.sealer = runtime.sealer
        self.admin.state.log_dir = runtime.settings.log_dir
        runtime.collect.fallback = AdminGuard(self.admin, runtime.db, runtime.settings.admin_max_body_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            if not self.collects and self.runtime.collect.handles(scope["path"]):
                await respond(send, 404, error_body(
                    "NOT_A_COLLECT_PROCESS", f"this Kaon process runs the {self.runtime.settings.role} role; "
                    "send events to a collect process (docs/deploy.md)"))
                return
            await self.runtime.collect(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.runtime.start()
                except Exception as error:
                    _log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                await send({"type": "lifespan.startup.complete"})
                print(banner(self.runtime.settings), flush=True)
            elif message["type"] == "lifespan.shutdown":
                await self.runtime.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _shown_url(url: str) -> str:
    """A database URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def banner(settings: Settings) -> str:
    """What `kaon serve` prints once it answers: where it listens and where the data lives."""
    base = f"http://{settings.host}:{settings.port}"
    return "\n".join([
        f"Kaon {__version__} listening on {base} (role {settings.role})",
        f"  collect:    {base}/v2/events, /v2/bulkevents, /v3/JS/<key>/events, /v1/batch (Segment spec),"
        " /v1/identify (IDSync)",
        f"  admin API:  {base}/api/v1 (docs {base}/api/v1/docs, health {base}/api/v1/health)",
        f"  data:       {settings.data_dir}",
        f"  database:   {_shown_url(settings.database_url)}",
        f"  ingest log: {settings.log_dir}",
        f"  access log: {'on (stderr)' if settings.access_log else 'off (--access-log or KAON_ACCESS_LOG=1)'}",
    ])


# File descriptors kept for what is not a client connection: databases, log partitions, outbound requests.
RESERVED_FDS = 256


def connection_limits(settings: Settings) -> ConnectionLimits:
    """The connection bounds, after raising the soft file-descriptor limit to the hard one (capped)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        soft = wanted
    room = max(16, (65536 if soft == resource.RLIM_INFINITY else soft) - RESERVED_FDS)
    most = min(settings.max_connections or 10_000, room)
    return ConnectionLimits(max_connections=most, max_header_bytes=settings.max_header_bytes,
                            header_timeout=settings.header_timeout, body_timeout=settings.body_timeout)


def serve(settings: Settings) -> None:
    """Run until SIGTERM/SIGINT, then drain: finish in-flight requests and let processing catch up."""
    # The data directory of a store with no file (PostgreSQL), for the threads and child processes that open it.
    os.environ.setdefault("KAON_DATA_DIR", str(settings.data_dir))
    runtime = Runtime(settings)
    limits = connection_limits(settings)
    config = uvicorn.Config(
        KaonApp(runtime), host=settings.host, port=settings.port, loop="uvloop", http=protocol_class(limits),
        lifespan="on", log_level="warning", access_log=settings.access_log, timeout_graceful_shutdown=30,
        # Requests in flight are bounded too (503 past it); connections are bounded by the protocol itself.
        limit_concurrency=limits.max_connections + 1, timeout_keep_alive=5,
        h11_max_incomplete_event_size=settings.max_header_bytes,
    )
    if settings.access_log:
        # uvicorn sets its loggers to the config's level; the access log writes at INFO.
        logging.getLogger("uvicorn.access").setLevel(logging.INFO)
    # uvicorn re-raises the signal it caught once shutdown is done; with these handlers in place that
    # re-raise is a no-op, so a drained SIGTERM/SIGINT exits with status 0.
    signal.signal(signal.SIGTERM, lambda _sig, _frame: None)
    signal.signal(signal.SIGINT, lambda _sig, _frame: None)
    uvicorn.Server(config).run()
