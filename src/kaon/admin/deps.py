"""Shared dependencies of the admin API: the runtime's stores and Bearer-token authentication."""

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from kaon.store.config import ConfigStore
from kaon.store.db import Database
from kaon.store.sealing import Sealer
from kaon.types import WorkspaceId

_bearer = HTTPBearer(auto_error=False)


def database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def workspace(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> WorkspaceId:
    """The workspace the Bearer admin token belongs to; 401 otherwise."""
    if credentials is None:
        raise HTTPException(401, detail={"code": "UNAUTHORIZED", "message": "Missing Bearer admin token."},
                            headers={"WWW-Authenticate": "Bearer"})
    found = ConfigStore(database(request).conn()).workspace_for_token(credentials.credentials)
    if found is None:
        raise HTTPException(401, detail={"code": "UNAUTHORIZED", "message": "Unknown admin token."},
                            headers={"WWW-Authenticate": "Bearer"})
    return found


def sealer(request: Request) -> Sealer | None:
    found: Sealer | None = getattr(request.app.state, "sealer", None)
    return found


Workspace = Annotated[WorkspaceId, Depends(workspace)]
SealerDep = Annotated[Sealer | None, Depends(sealer)]
Db = Annotated[Database, Depends(database)]
