"""IDSync front doors (identify, search, login, logout, modify, alias): synchronous, answered with 200.

Auth, per mParticle: HTTP Basic `key:secret`; HMAC headers `x-mp-key` + `Date` + `x-mp-signature`
(hex HMAC-SHA256 of `METHOD\\nDATE\\nPATH+BODY` with the secret); or `x-mp-key` alone for key-only (web)
inputs. Error bodies carry both `errors` and `Errors`, which different web SDK code paths read.
"""

import asyncio
import hashlib
import hmac
from collections.abc import Callable
from typing import Any

import msgspec

from kaon.clock import Clock, now_ms
from kaon.collect import cors
from kaon.collect.auth import Authenticator, InputInfo, parse_basic
from kaon.collect.errors import CollectError, unauthorized
from kaon.collect.http import Receive, Scope, Send, header, read_body, respond
from kaon.collect.rejections import Rejections
from kaon.identity import idsync
from kaon.identity.alias import request_alias
from kaon.identity.service import Identity
from kaon.model.errors import PayloadError
from kaon.store.config import ConfigStore
from kaon.store.db import Database
from kaon.store.tx import transaction

_encoder = msgspec.json.Encoder()
Operation = Callable[[Identity, bytes], dict[str, Any] | None]


def _error(code: str, message: str) -> bytes:
    item = {"code": code, "message": message}
    return _encoder.encode({"errors": [item], "Errors": [item]})


def _identify(service: Identity, body: bytes) -> dict[str, Any] | None:
    return idsync.identify(service, idsync.decode(body, idsync.IdentityRequest))


def _search(service: Identity, body: bytes) -> dict[str, Any] | None:
    return idsync.search(service, idsync.decode(body, idsync.IdentityRequest))


def _logout(service: Identity, body: bytes) -> dict[str, Any] | None:
    return idsync.logout(service, idsync.decode(body, idsync.IdentityRequest))


OPERATIONS: dict[str, Operation] = {"identify": _identify, "login": _identify, "search": _search,
                                    "logout": _logout}


class IdSyncDoors:
    def __init__(self, auth: Authenticator, db: Database, clock: Clock = now_ms) -> None:
        self.auth = auth
        self.db = db
        self.clock = clock
        # Set by the collect app to its own, so IDSync refusals are counted with every other door's.
        self.rejections: Rejections | None = None

    def authenticate(self, scope: Scope, body: bytes, key_in_path: str | None = None) -> InputInfo:
        if key_in_path is not None:
            return self.auth.key_only(key_in_path)
        signature = header(scope, b"x-mp-signature")
        key = header(scope, b"x-mp-key")
        if signature is not None:
            date = header(scope, b"date")
            if key is None or date is None:
                raise unauthorized("HMAC auth needs x-mp-key, Date and x-mp-signature headers.")
            info = self.auth.key_only_or_secret(key.decode())
            if info.secret is None:
                raise unauthorized("This input cannot verify HMAC signatures (its secret predates sealing); "
                                   "rotate its secret or use Basic auth.", info)
            path = scope["path"] + (("?" + scope["query_string"].decode()) if scope.get("query_string") else "")
            message = f"{scope['method']}\n{date.decode()}\n{path}".encode() + body
            expected = hmac.new(info.secret.encode(), message, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, signature.decode().strip().lower()):
                raise unauthorized("x-mp-signature does not match.", info)
            return info
        basic = parse_basic(header(scope, b"authorization"))
        if basic is not None:
            return self.auth.basic(basic)
        if key is not None:
            return self.auth.key_only(key.decode())
        raise unauthorized("Missing credentials: Basic key:secret, HMAC headers, or x-mp-key for web inputs.")

    async def handle(self, scope: Scope, receive: Receive, send: Send, operation: str, *,
                     mpid: str | None = None, body: bytes | None = None, key_in_path: str | None = None) -> None:
        headers = cors.for_scope(scope)
        info: InputInfo | None = None
        try:
            if body is None:
                body = await read_body(scope, receive)
            info = self.authenticate(scope, body, key_in_path)
            status, answer = await asyncio.to_thread(self._run, info, operation, body, mpid)
        except PayloadError as error:
            await self._refuse(send, CollectError(error.status, error.code, error.message, input=info), body, headers)
            return
        except CollectError as error:
            if error.input is None:
                error.input = info
            await self._refuse(send, error, body, headers)
            return
        payload = b"" if answer is None else _encoder.encode(answer)
        await respond(send, status, payload, headers=headers)

    async def _refuse(self, send: Send, error: CollectError, body: bytes | None, headers: cors.Headers) -> None:
        if self.rejections is not None:
            self.rejections.record(error.input, error, body, self.clock())
        await respond(send, error.status, _error(error.code, error.message), headers=headers)

    def _run(self, info: InputInfo, operation: str, body: bytes, mpid: str | None) -> tuple[int, Any]:
        conn = self.db.conn()
        with transaction(conn):
            service = Identity(conn, info.workspace_id, actor=f"idsync:{info.id}", now_ms=self.clock())
            if operation == "modify":
                if mpid is None or not mpid.lstrip("-").isdigit() or len(mpid) > 20:
                    raise PayloadError("INVALID_MPID", f"`{mpid}` is not an mpid - at the path")
                result = idsync.modify(service, int(mpid), idsync.decode(body, idsync.ModifyRequest))
                if result is None:
                    raise CollectError(404, "NOT_FOUND", f"No profile with mpid {mpid}.")
                return 200, result
            if operation == "alias":
                request = idsync.decode(body, idsync.AliasRequest)
                delay_hours = ConfigStore(conn).settings(info.workspace_id).get("alias_delay_hours") or 0
                request_alias(conn, info.workspace_id, request.fields(), now_ms=service.now_ms,
                              delay_ms=int(float(delay_hours) * 3_600_000))
                return 202, None
            result = OPERATIONS[operation](service, body)
            if result is None:
                raise CollectError(404, "NOT_FOUND", "No profile matches these identities.")
            return 200, result
