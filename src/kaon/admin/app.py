"""The admin API application (FastAPI; kept off the collection hot path)."""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from kaon import __version__
from kaon.admin import (
    routes_catalog,
    routes_consent,
    routes_delivery,
    routes_events,
    routes_inputs,
    routes_opendsr,
    routes_outputs,
    routes_plans,
    routes_profiles,
    routes_stats,
    routes_userprofile,
)
from kaon.admin.schemas import Health
from kaon.store.db import Database

PREFIX = "/api/v1"


def create_admin_app(db: Database, is_ready: Any = lambda: True) -> FastAPI:
    app = FastAPI(
        title="Kaon admin API", version=__version__, openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs", redoc_url=None,
    )
    app.state.db = db

    @app.get(f"{PREFIX}/health", response_model=Health, tags=["health"])
    def health() -> Health | JSONResponse:
        if not is_ready():
            return JSONResponse({"status": "starting"}, status_code=503)
        return Health(status="ok")

    for module in (routes_events, routes_inputs, routes_profiles, routes_stats, routes_outputs, routes_delivery,
                   routes_catalog):
        app.include_router(module.router, prefix=PREFIX)
    app.include_router(routes_plans.router, prefix=PREFIX)
    app.include_router(routes_consent.router, prefix=PREFIX)
    app.include_router(routes_userprofile.router)
    routes_opendsr.install(app)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        codes = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
        detail = exc.detail if isinstance(exc.detail, dict) else {
            "code": codes.get(exc.status_code, "HTTP_ERROR"), "message": str(exc.detail)}
        return JSONResponse({"errors": [detail]}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"code": "INVALID_REQUEST",
             "message": f"{e['msg']} - at `{'.'.join(str(p) for p in e['loc'])}`"}
            for e in exc.errors()
        ]
        return JSONResponse({"errors": errors}, status_code=400)

    return app
