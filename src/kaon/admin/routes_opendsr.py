"""OpenDSR v3 (wire formats §7): data subject requests submitted by a controller.

Auth: an admin token of the workspace (the credential for managing it; an input's key:secret is for sending data
and is refused), as `Authorization: Bearer <token>` or, for OpenDSR clients that only speak Basic, as the Basic
password (any user name). The token's workspace is the OpenDSR controller.
Links (results, status, `processor_certificate`) are built from `KAON_PUBLIC_URL`, else from the address this
server listens on — never from the request's `Host` header, which the caller chooses.
Rate limit: `KAON_OPENDSR_RATE_LIMIT_PER_MINUTE` (default 1000, mParticle's; 0 turns it off) authenticated
requests per workspace in any 60 s, per server process; beyond it 429 with `Retry-After`.
"""

import base64
import binascii
import collections
import math
import os
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel

from kaon.admin.deps import READ_METHODS
from kaon.clock import now_ms
from kaon.governance import dsr_export
from kaon.governance.dsr_keys import DOMAIN, SigningKey
from kaon.governance.dsr_model import API_VERSION, REQUEST_TYPES, TOP_LEVEL, DsrError, iso, parse_submission
from kaon.governance.dsr_store import DsrRow, DsrStore, results_url, status_body
from kaon.settings import public_url
from kaon.store.db import Database
from kaon.store.tokens import TokenStore
from kaon.store.tx import transaction

PREFIX = "/opendsr/v3"
DAY_MS = 86_400_000


class DsrErrorItem(BaseModel):
    domain: str | None = None
    reason: str | None = None
    message: str | None = None


class DsrErrorBody(BaseModel):
    """OpenDSR's error shape (not the admin API's `{"errors": [{code, message}]}`)."""

    code: int
    message: str
    errors: list[DsrErrorItem] = []


def _dsr(description: str) -> dict[str, Any]:
    return {"model": DsrErrorBody, "description": description}


# What these routes really answer on refusal (declared over the admin API's error shape).
DSR_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _dsr("Invalid request"), 401: _dsr("Missing or invalid credentials"),
    403: _dsr("Invalid results link"), 404: _dsr("Not found"), 410: _dsr("Results link expired"),
    429: _dsr("Too many requests")}
router = APIRouter(prefix=PREFIX, tags=["opendsr"], responses=DSR_ERRORS)
_json = msgspec.json.Encoder()


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def _now(request: Request) -> int:
    clock = getattr(request.app.state, "dsr_clock", None)
    return int(clock()) if clock is not None else now_ms()


def _keys(request: Request) -> tuple[SigningKey, Path]:
    found: tuple[SigningKey, Path] | None = getattr(request.app.state, "dsr_keys", None)
    if found is None:
        data_dir = _db(request).data_dir
        found = (SigningKey.for_data_dir(data_dir), data_dir)
        request.app.state.dsr_keys = found
    return found


def _error(error: DsrError) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Basic realm="opendsr"'} if error.status == 401 else {}
    return JSONResponse(error.body(), status_code=error.status, headers={**headers, **error.headers})


class RateLimit:
    """At most `per_minute` requests per workspace in any sliding 60 s window (in this process)."""

    WINDOW_S = 60.0

    def __init__(self, per_minute: int, clock: Any = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._seen: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls) -> "RateLimit":
        return cls(int(os.environ.get("KAON_OPENDSR_RATE_LIMIT_PER_MINUTE") or 1000))

    def check(self, workspace_id: str) -> None:
        """Count one request; DsrError 429 with `Retry-After` (whole seconds) when over the limit."""
        if self.per_minute <= 0:
            return
        now = self.clock()
        with self._lock:
            seen = self._seen.setdefault(workspace_id, collections.deque())
            while seen and seen[0] <= now - self.WINDOW_S:
                seen.popleft()
            if len(seen) >= self.per_minute:
                wait = max(1, math.ceil(seen[0] + self.WINDOW_S - now))
                raise DsrError(429, f"Too many requests: at most {self.per_minute} per minute per workspace.",
                               reason="TooManyRequestsException", domain="RateLimit",
                               headers={"Retry-After": str(wait)})
            seen.append(now)


def _limit(request: Request) -> RateLimit:
    found: RateLimit | None = getattr(request.app.state, "dsr_rate_limit", None)
    if found is None:
        found = request.app.state.dsr_rate_limit = RateLimit.from_env()
    return found


def _token(header: str) -> str:
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if scheme.lower() == "basic":
        try:
            _user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (ValueError, binascii.Error, UnicodeDecodeError):
            password = ""
        if password:
            return password
    raise DsrError(401, "An admin token of the workspace is required: `Authorization: Bearer <token>`, or Basic "
                        "with the token as the password.", reason="AuthenticationException", domain="Authentication")


def controller(request: Request) -> str:
    """The workspace of the admin token the request carries (DsrError 401 otherwise)."""
    token = TokenStore(_db(request).conn()).authenticate(_token(request.headers.get("authorization", "")))
    if token is None:
        raise DsrError(401, "Unknown, revoked or expired admin token.", reason="AuthenticationException",
                       domain="Authentication")
    if token.scope != "write" and request.method not in READ_METHODS:
        raise DsrError(403, f"Admin token {token.id!r} is read-only; submitting or cancelling a request needs a "
                            "write token.", reason="AuthorizationException", domain="Authentication")
    _limit(request).check(token.workspace_id)
    return token.workspace_id


def base_url(request: Request) -> str:
    """Where links point: KAON_PUBLIC_URL, else the address this server listens on (never the `Host` header)."""
    configured = public_url()
    if configured is not None:
        return configured
    server = request.scope.get("server")
    host, port = (server[0], server[1]) if server else ("127.0.0.1", 8080)
    host = f"[{host}]" if ":" in str(host) else host
    return f"http://{host}:{port}"


Controller = Annotated[str, Depends(controller)]


def _status(request: Request, row: DsrRow) -> dict[str, Any]:
    keys, _ = _keys(request)
    token = keys.link_token(row.id, row.results_expires_ms) if row.results_expires_ms else None
    return status_body(row, results_url(row, token))


@router.post("/requests/", status_code=201)
@router.post("/requests", status_code=201, include_in_schema=False)
async def submit(request: Request, workspace: Controller) -> Response:
    body = await request.body()
    submission = parse_submission(body)
    now = _now(request)
    waiting = 0 if submission.skip_waiting_period else int(float(os.environ.get("KAON_DSR_WAITING_DAYS") or 0)
                                                            * DAY_MS)
    conn = _db(request).conn()
    base = base_url(request)
    with transaction(conn):
        row = DsrStore(conn).create(workspace, submission, base, now, now + waiting, now + waiting)
    answer = _json.encode({"expected_completion_time": iso(row.expected_ms), "received_time": iso(row.received_ms),
                           "encoded_request": base64.b64encode(body).decode(), "subject_request_id": row.id,
                           "controller_id": workspace})
    keys, _ = _keys(request)
    return Response(answer, status_code=201, media_type="application/json",
                    headers={"X-OpenDSR-Processor-Domain": DOMAIN, "X-OpenDSR-Signature": keys.sign(answer)})


@router.get("/requests/{request_id}")
def status(request: Request, request_id: str, workspace: Controller) -> dict[str, Any]:
    row = DsrStore(_db(request).conn()).get(request_id, workspace)
    if row is None:
        raise DsrError(404, "Subject request not found.", reason="NotFoundException")
    return _status(request, row)


@router.get("/requests")
@router.get("/requests/", include_in_schema=False)
def by_group(request: Request, workspace: Controller, group_id: str | None = None) -> list[dict[str, Any]]:
    if not group_id:
        raise DsrError(400, "`group_id` is required.")
    return [_status(request, row) for row in DsrStore(_db(request).conn()).by_group(workspace, group_id)]


@router.delete("/requests/{request_id}")
def cancel(request: Request, request_id: str, workspace: Controller) -> dict[str, Any]:
    conn = _db(request).conn()
    store = DsrStore(conn)
    with transaction(conn):
        row = store.get(request_id, workspace)
        if row is None:
            raise DsrError(404, "Subject request not found.", reason="NotFoundException")
        if row.status != "pending":
            raise DsrError(400, f"Only a pending request can be cancelled; this one is {row.status}.",
                           reason="InvalidOperationException")
        row = store.set_status(row, "cancelled", _now(request), expected_ms=None)
    return {"expected_completion_time": None, "received_time": iso(row.received_ms), "subject_request_id": row.id,
            "controller_id": workspace}


@router.get("/discovery/")
@router.get("/discovery", include_in_schema=False)
def discovery(request: Request) -> dict[str, Any]:
    return {"api_version": API_VERSION,
            "supported_identities": [{"identity_type": t, "identity_format": "raw"} for t in TOP_LEVEL],
            "supported_subject_request_types": list(REQUEST_TYPES),
            "processor_certificate": f"{base_url(request)}{PREFIX}/cert.pem"}


@router.get("/cert.pem", response_class=PlainTextResponse, responses={200: {
    "description": "The processor's certificate (PEM)",
    "content": {"application/x-pem-file": {"schema": {"type": "string"}}}}})
def certificate(request: Request) -> PlainTextResponse:
    keys, _ = _keys(request)
    return PlainTextResponse(keys.certificate_pem.decode(), media_type="application/x-pem-file")


@router.get("/results/{request_id}")
def results(request: Request, request_id: str, token: str = "", format: str = "json") -> Response:
    """The access/portability download: the signed link itself is the credential (410 once it expired)."""
    keys, data_dir = _keys(request)
    verdict = keys.check_link(request_id, token, _now(request))
    if verdict == "invalid":
        raise DsrError(403, "Invalid results link.", reason="AuthenticationException", domain="Authentication")
    if verdict == "expired":
        raise DsrError(410, "This results link has expired.", reason="ExpiredException")
    suffix = ".csv" if format == "csv" else ".json"
    path = dsr_export.results_dir(data_dir) / f"{request_id.lower()}{suffix}"
    if not path.exists():
        raise DsrError(404, "No results for this request in that format.", reason="NotFoundException")
    media = "text/csv" if suffix == ".csv" else "application/json"
    return Response(path.read_bytes(), media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="{request_id}{suffix}"'})


async def _dsr_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DsrError)
    return _error(exc)


def install(app: FastAPI) -> None:
    """Routes and the OpenDSR error shape on the admin app."""
    app.include_router(router)
    app.add_exception_handler(DsrError, _dsr_error)
