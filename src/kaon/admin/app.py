"""The admin API application (FastAPI; kept off the collection hot path)."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from kaon import __version__
from kaon.admin import (
    routes_audience_connections,
    routes_audiences,
    routes_calculated,
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
    routes_tokens,
    routes_userprofile,
)
from kaon.admin.errors import ERROR_RESPONSES, without_422
from kaon.admin.query_guard import reject_unknown_parameters
from kaon.admin.schemas import Health
from kaon.store.db import Database

PREFIX = "/api/v1"
# Swagger UI, vendored by scripts/vendor-swagger-ui.sh: the docs page loads nothing from other hosts.
SWAGGER_UI = Path(__file__).parent / "static" / "swagger-ui"
ASSETS = f"{PREFIX}/docs/assets"


def _install_docs(app: FastAPI) -> None:
    app.mount(ASSETS, StaticFiles(directory=SWAGGER_UI), name="swagger-ui")

    @app.get(f"{PREFIX}/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{PREFIX}/openapi.json", title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js", swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon-32x32.png",
            # Swagger UI's default asks validator.swagger.io to badge the document: no call leaves the server.
            swagger_ui_parameters={"validatorUrl": None},
        )


def _document_real_errors(app: FastAPI) -> None:
    """The served document declares the errors Kaon answers (400, not FastAPI's 422)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = without_422(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_admin_app(db: Database, is_ready: Any = lambda: True, *, role: str = "all",
                     parts: Callable[[], dict[str, str]] | None = None) -> FastAPI:
    app = FastAPI(
        title="Kaon admin API", version=__version__, openapi_url=f"{PREFIX}/openapi.json",
        docs_url=None, redoc_url=None, responses=ERROR_RESPONSES,
    )
    _document_real_errors(app)
    app.state.db = db
    # Kaon's own routes refuse query parameters they do not declare; the vendor routes keep their vendors' ways.
    guarded = [Depends(reject_unknown_parameters)]

    @app.get(f"{PREFIX}/health", response_model=Health, tags=["health"], dependencies=guarded,
             responses={503: {"description": "Starting"}})
    def health() -> Health | JSONResponse:
        """`ok` when this process runs every part its role has; which parts, and the role, for a load balancer."""
        found = parts() if parts is not None else {}
        if not is_ready():
            return JSONResponse({"status": "starting", "role": role, "parts": found}, status_code=503)
        if any(state == "stopped" for state in found.values()):
            return JSONResponse({"status": "degraded", "role": role, "parts": found}, status_code=503)
        return Health(status="ok", role=role, parts=found)

    for module in (routes_events, routes_inputs, routes_profiles, routes_stats, routes_outputs, routes_delivery,
                   routes_catalog, routes_plans, routes_consent, routes_tokens, routes_audiences,
                   routes_audience_connections, routes_calculated):
        app.include_router(module.router, prefix=PREFIX, dependencies=guarded)
    app.include_router(routes_userprofile.router)
    routes_opendsr.install(app)
    _install_docs(app)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        codes = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
        detail = exc.detail
        errors = detail if isinstance(detail, list) else [detail if isinstance(detail, dict) else {
            "code": codes.get(exc.status_code, "HTTP_ERROR"), "message": str(detail)}]
        return JSONResponse({"errors": errors}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"code": "INVALID_REQUEST",
             "message": f"{e['msg']} - at `{'.'.join(str(p) for p in e['loc'])}`"}
            for e in exc.errors()
        ]
        return JSONResponse({"errors": errors}, status_code=400)

    return app
