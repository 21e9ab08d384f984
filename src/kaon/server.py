"""`kaon serve`: one ASGI app (collection doors + admin API) and its lifespan, run by uvicorn."""

import logging
import signal

import uvicorn

from kaon.admin.app import create_admin_app
from kaon.collect.http import Receive, Scope, Send
from kaon.runtime import Runtime
from kaon.settings import Settings

_log = logging.getLogger("kaon.server")


class KaonApp:
    """Routes collection paths to the raw ASGI doors and everything else to the admin app."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.admin = create_admin_app(runtime.db, is_ready=lambda: runtime.ready)
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
            elif message["type"] == "lifespan.shutdown":
                await self.runtime.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


def serve(settings: Settings) -> None:
    """Run until SIGTERM/SIGINT, then drain: finish in-flight requests and let processing catch up."""
    runtime = Runtime(settings)
    config = uvicorn.Config(
        KaonApp(runtime), host=settings.host, port=settings.port, loop="uvloop", http="httptools",
        lifespan="on", log_level="warning", access_log=False, timeout_graceful_shutdown=30,
    )
    # uvicorn re-raises the signal it caught once shutdown is done; with these handlers in place that
    # re-raise is a no-op, so a drained SIGTERM/SIGINT exits with status 0.
    signal.signal(signal.SIGTERM, lambda _sig, _frame: None)
    signal.signal(signal.SIGINT, lambda _sig, _frame: None)
    uvicorn.Server(config).run()
