"""Shared dependencies of the admin API: the runtime's stores and Bearer-token authentication.

Every `/api/v1` route that touches a workspace takes `Workspace` (any usable token; a `read` token only on
GET/HEAD) or `Reader` (any usable token, also for a POST that changes nothing, such as `/plans/validate`).
"""

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from kaon.store.db import Database
from kaon.store.sealing import Sealer
from kaon.store.tokens import AdminToken, TokenStore
from kaon.types import WorkspaceId

_bearer = HTTPBearer(auto_error=False)
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def unauthorized(message: str) -> HTTPException:
    return HTTPException(401, detail={"code": "UNAUTHORIZED", "message": message},
                         headers={"WWW-Authenticate": "Bearer"})


def admin_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AdminToken:
    """The usable admin token of the request; 401 when missing, unknown, revoked or expired."""
    if credentials is None:
        raise unauthorized("Missing Bearer admin token.")
    found = TokenStore(database(request).conn()).authenticate(credentials.credentials)
    if found is None:
        raise unauthorized("Unknown, revoked or expired admin token.")
    return found


def reader(token: Annotated[AdminToken, Depends(admin_token)]) -> WorkspaceId:
    """The token's workspace, for routes that change nothing."""
    return token.workspace_id


def workspace(request: Request, token: Annotated[AdminToken, Depends(admin_token)]) -> WorkspaceId:
    """The token's workspace; 403 READ_ONLY_TOKEN when a `read` token asks to change state."""
    if token.scope != "write" and request.method not in READ_METHODS:
        raise HTTPException(403, detail={"code": "READ_ONLY_TOKEN", "message": f"admin token {token.id!r} is "
                                         "read-only; this request changes state and needs a write token"})
    return token.workspace_id


def sealer(request: Request) -> Sealer | None:
    found: Sealer | None = getattr(request.app.state, "sealer", None)
    return found


Token = Annotated[AdminToken, Depends(admin_token)]
Workspace = Annotated[WorkspaceId, Depends(workspace)]
Reader = Annotated[WorkspaceId, Depends(reader)]
SealerDep = Annotated[Sealer | None, Depends(sealer)]
Db = Annotated[Database, Depends(database)]
