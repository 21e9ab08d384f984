"""Admin tokens of the caller's workspace: `/api/v1/tokens` (list, create, revoke)."""

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from kaon.admin.deps import Db, Workspace
from kaon.admin.paging import Paging
from kaon.clock import now_ms
from kaon.errors import NotFound
from kaon.store.tokens import AdminToken, TokenStore

router = APIRouter(tags=["tokens"])
DAY_MS = 86_400_000


class TokenOut(BaseModel):
    id: str
    name: str
    scope: Literal["read", "write"]
    operator: bool
    created_unixtime_ms: int
    expires_unixtime_ms: int | None
    revoked_unixtime_ms: int | None
    last_used_unixtime_ms: int | None


class Tokens(BaseModel):
    tokens: list[TokenOut]
    next_cursor: str | None


class TokenIn(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    scope: Literal["read", "write"] = "read"
    expires_in_days: Annotated[int | None, Field(ge=1, le=3650)] = None


class CreatedToken(TokenOut):
    token: str


def token_out(token: AdminToken) -> TokenOut:
    return TokenOut(id=token.id, name=token.name, scope=token.scope,  # type: ignore[arg-type]
                    operator=token.operator, created_unixtime_ms=token.created_ms,
                    expires_unixtime_ms=token.expires_ms, revoked_unixtime_ms=token.revoked_ms,
                    last_used_unixtime_ms=token.last_used_ms)


@router.get("/tokens", response_model=Tokens)
def list_tokens(db: Db, workspace_id: Workspace, page: Paging) -> Tokens:
    """The workspace's admin tokens (never the tokens themselves), in id order, revoked ones included."""
    after = page.after(str)
    found = [t for t in TokenStore(db.conn()).list(workspace_id) if after is None or t.id > after[0]]
    found.sort(key=lambda t: t.id)
    shown, next_cursor = page.take(found[:page.limit + 1], lambda t: (t.id,))
    return Tokens(tokens=[token_out(t) for t in shown], next_cursor=next_cursor)


@router.post("/tokens", status_code=201, response_model=CreatedToken)
def create_token(body: TokenIn, db: Db, workspace_id: Workspace) -> CreatedToken:
    """A new token for the workspace, shown once. An operator token is made only by `kaon tokens create`."""
    expires = None if body.expires_in_days is None else now_ms() + body.expires_in_days * DAY_MS
    token, record = TokenStore(db.conn()).create(workspace_id, body.name, scope=body.scope, expires_ms=expires)
    return CreatedToken(token=token, **token_out(record).model_dump())


@router.delete("/tokens/{token_id}", response_model=TokenOut)
def revoke_token(token_id: str, db: Db, workspace_id: Workspace) -> TokenOut:
    """Revoke a token (it answers 401 from now on); revoking twice is harmless."""
    try:
        return token_out(TokenStore(db.conn()).revoke(workspace_id, token_id))
    except NotFound as error:
        raise HTTPException(404, detail={"code": "NOT_FOUND", "message": str(error)}) from None
