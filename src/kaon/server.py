"""`kaon serve`: one ASGI app (collection doors + admin API) and its lifespan, run by uvicorn."""

import logging
import signal
from urllib.parse import urlsplit, urlunsplit

import uvicorn

from kaon import __version__
from kaon.admin.app import create_admin_app
from kaon.collect.http import Receive, Scope, Send
from kaon.connection_limits import ConnectionLimits, bounded_protocol, connection_cap, raise_file_limit
from kaon.runtime import Runtime
from kaon.settings import Settings

_log = logging.getLogger("kaon.server")


class KaonApp:
    """Routes collection paths to the raw ASGI doors and everything else to the admin app."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.admin = create_admin_app(runtime.db, is_ready=lambda: runtime.ready,
                                      max_body=runtime.settings.admin_max_body_bytes)
        self.admin.state.sealer = runtime.sealer
        self.admin.state.log_dir = runtime.settings.log_dir
        runtime.collect.fallback = self.admin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
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
        f"Kaon {__version__} listening on {base}",
        f"  collect:    {base}/v2/events, /v2/bulkevents, /v3/JS/<key>/events, /v1/batch (Segment spec),"
        " /v1/identify (IDSync)",
        f"  admin API:  {base}/api/v1 (docs {base}/api/v1/docs, health {base}/api/v1/health)",
        f"  data:       {settings.data_dir}",
        f"  database:   {_shown_url(settings.database_url)}",
        f"  ingest log: {settings.log_dir}",
        f"  access log: {'on (stderr)' if settings.access_log else 'off (--access-log or KAON_ACCESS_LOG=1)'}",
    ])


def serve(settings: Settings) -> None:
    """Run until SIGTERM/SIGINT, then drain: finish in-flight requests and let processing catch up."""
    runtime = Runtime(settings)
    limits = ConnectionLimits(
        header_timeout_s=settings.header_timeout_s, body_timeout_s=settings.body_timeout_s,
        max_header_bytes=settings.max_header_bytes,
        max_connections=connection_cap(settings.max_connections, raise_file_limit()))
    config = uvicorn.Config(
        KaonApp(runtime), host=settings.host, port=settings.port, loop="uvloop", http=bounded_protocol(limits),
        lifespan="on", log_level="warning", access_log=settings.access_log, timeout_graceful_shutdown=30,
    )
    if settings.access_log:
        # uvicorn sets its loggers to the config's level; the access log writes at INFO.
        logging.getLogger("uvicorn.access").setLevel(logging.INFO)
    # uvicorn re-raises the signal it caught once shutdown is done; with these handlers in place that
    # re-raise is a no-op, so a drained SIGTERM/SIGINT exits with status 0.
    signal.signal(signal.SIGTERM, lambda _sig, _frame: None)
    signal.signal(signal.SIGINT, lambda _sig, _frame: None)
    uvicorn.Server(config).run()
