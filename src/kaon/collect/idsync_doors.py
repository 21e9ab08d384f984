"""IDSync front doors (identify, search, login, logout, modify, alias): synchronous, answered with 200.

Auth, per mParticle: HTTP Basic `key:secret`; HMAC headers `x-mp-key` + `Date` + `x-mp-signature`
(hex HMAC-SHA256 of `METHOD\\nDATE\\nPATH+BODY` with the secret); or `x-mp-key` alone for key-only (web)
inputs. Error bodies carry both `errors` and `Errors`, which different web SDK code paths read.

A key-only call is **client-side** (its key is public): `search` is refused (403 `SERVER_CREDENTIAL_REQUIRED`),
identify/login answers reveal nothing about which identities exist, modify and alias may not take other
profiles' identities or events (kaon.identity.idsync, kaon.identity.alias). An HMAC `Date` must be within
SIGNATURE_WINDOW_S of now (`INVALID_SIGNATURE_DATE`), and a signature already accepted within that window is
refused (`SIGNATURE_REPLAYED`): a captured request cannot be played again.
The IDSync doors obey the per-input rate limit like the event doors.
"""

import asyncio
import collections
import hashlib
import hmac
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec

from kaon.clock import Clock, now_ms
from kaon.collect import cors
from kaon.collect.auth import Authenticator, InputInfo, parse_basic
from kaon.collect.errors import CollectError, unauthorized
from kaon.collect.http import Receive, Scope, Send, header, read_body, respond
from kaon.collect.ratelimit import RateLimiter
from kaon.collect.rejections import Rejections
from kaon.identity import idsync
from kaon.identity.alias import request_alias
from kaon.identity.resolve import MERGE_REASONS
from kaon.identity.service import Identity
from kaon.model.errors import PayloadError
from kaon.store.config import ConfigStore
from kaon.store.db import Database
from kaon.store.tx import transaction

_encoder = msgspec.json.Encoder()
Operation = Callable[[Identity, bytes, bool], dict[str, Any] | None]
SIGNATURE_WINDOW_S = 300
# Signatures remembered for replay checks; past this many within one window the oldest are forgotten early.
MAX_SEEN_SIGNATURES = 200_000
MPID_RANGE = range(-(2**63), 2**63)


def _error(code: str, message: str) -> bytes:
    item = {"code": code, "message": message}
    return _encoder.encode({"errors": [item], "Errors": [item]})


def _text(value: bytes, name: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise unauthorized(f"The {name} header is not UTF-8.") from None


def signature_date(value: str, now_s: float) -> None:
    """Refuse a `Date` (ISO 8601 basic, `20170712T224127Z`) that is unreadable or outside the window."""
    try:
        when = datetime.strptime(value.strip(), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise CollectError(401, "INVALID_SIGNATURE_DATE", "The Date header must be ISO 8601 basic UTC "
                                                          "(e.g. 20170712T224127Z).") from None
    if abs(when - now_s) > SIGNATURE_WINDOW_S:
        raise CollectError(401, "INVALID_SIGNATURE_DATE", f"The signed Date is more than {SIGNATURE_WINDOW_S}s "
                                                          "from the server's time; sign each request anew.")


def parse_mpid(mpid: str | None) -> int:
    if mpid is None or not mpid.lstrip("-").isdigit() or len(mpid) > 21 or int(mpid) not in MPID_RANGE:
        raise PayloadError("INVALID_MPID", f"`{(mpid or '')[:40]}` is not a 64-bit mpid - at the path")
    return int(mpid)


def _identify(service: Identity, body: bytes, client_side: bool) -> dict[str, Any] | None:
    request = idsync.decode(body, idsync.IdentityRequest)
    answer, resolution = idsync.identify_resolved(service, request, client_side)
    if resolution.refused_merges:
        raise RefusedMerges(answer, resolution.refused_merges)
    return answer


def _search(service: Identity, body: bytes, client_side: bool) -> dict[str, Any] | None:
    if client_side:
        raise CollectError(403, "SERVER_CREDENTIAL_REQUIRED", "search needs a server credential (Basic key:secret "
                                                              "or HMAC); a web key may not look identities up.")
    return idsync.search(service, idsync.decode(body, idsync.IdentityRequest))


def _logout(service: Identity, body: bytes, client_side: bool) -> dict[str, Any] | None:
    return idsync.logout(service, idsync.decode(body, idsync.IdentityRequest), client_side)


class SeenSignatures:
    """Signatures accepted in the last SIGNATURE_WINDOW_S (bounded), so an identical request is refused."""

    def __init__(self) -> None:
        self._order: collections.deque[tuple[float, bytes]] = collections.deque()
        self._seen: set[bytes] = set()
        self._lock = threading.Lock()

    def first_use(self, signature: bytes, now_s: float) -> bool:
        with self._lock:
            while self._order and (self._order[0][0] < now_s - 2 * SIGNATURE_WINDOW_S
                                   or len(self._order) >= MAX_SEEN_SIGNATURES):
                self._seen.discard(self._order.popleft()[1])
            if signature in self._seen:
                return False
            self._seen.add(signature)
            self._order.append((now_s, signature))
            return True


class RefusedMerges(Exception):
    """An identify whose answer stands but whose client-side merges were refused: recorded, then answered."""

    def __init__(self, answer: dict[str, Any], refused: list[tuple[int, str]]) -> None:
        super().__init__("client-side merges refused")
        self.answer = answer
        self.refused = refused


OPERATIONS: dict[str, Operation] = {"identify": _identify, "login": _identify, "search": _search,
                                    "logout": _logout}


class IdSyncDoors:
    def __init__(self, auth: Authenticator, db: Database, clock: Clock = now_ms) -> None:
        self.auth = auth
        self.db = db
        self.clock = clock
        # Set by the collect app to its own, so IDSync refusals are counted with every other door's.
        self.rejections: Rejections | None = None
        self.limiter: RateLimiter | None = None  # likewise the event doors' limiter
        self.signatures = SeenSignatures()

    def authenticate(self, scope: Scope, body: bytes, key_in_path: str | None = None) -> tuple[InputInfo, bool]:
        """The input, and whether the call is client-side (key only: no secret proven)."""
        if key_in_path is not None:
            return self.auth.key_only(key_in_path), True
        signature = header(scope, b"x-mp-signature")
        key = header(scope, b"x-mp-key")
        if signature is not None:
            date = header(scope, b"date")
            if key is None or date is None:
                raise unauthorized("HMAC auth needs x-mp-key, Date and x-mp-signature headers.")
            info = self.auth.key_only_or_secret(_text(key, "x-mp-key"))
            if info.secret is None:
                raise unauthorized("This input cannot verify HMAC signatures (its secret predates sealing); "
                                   "rotate its secret or use Basic auth.", info)
            date_text = _text(date, "Date")
            query = scope.get("query_string") or b""
            path = scope["path"] + (("?" + query.decode("latin-1")) if query else "")
            message = f"{scope['method']}\n{date_text}\n{path}".encode() + body
            expected = hmac.new(info.secret.encode(), message, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected.encode(), signature.strip().lower()):
                raise unauthorized("x-mp-signature does not match.", info)
            try:
                signature_date(date_text, self.clock() / 1000)
            except CollectError as error:
                error.input = info
                raise
            if not self.signatures.first_use(info.id.encode() + b":" + expected.encode(), self.clock() / 1000):
                raise CollectError(401, "SIGNATURE_REPLAYED", "This signed request was already received; sign each "
                                                              "request anew (a new Date).", input=info)
            return info, False
        basic = parse_basic(header(scope, b"authorization"))
        if basic is not None:
            return self.auth.basic(basic), False
        if key is not None:
            return self.auth.key_only(_text(key, "x-mp-key")), True
        raise unauthorized("Missing credentials: Basic key:secret, HMAC headers, or x-mp-key for web inputs.")

    def _rate_limit(self, info: InputInfo) -> None:
        wait = 0 if self.limiter is None else self.limiter.check(info.id, info.rate_limit_rps)
        if wait:
            raise CollectError(
                429, "RATE_LIMITED",
                f"Rate limit of {info.rate_limit_rps:g} requests/s for this input exceeded; retry after {wait}s.",
                {"retry-after": str(wait)}, input=info,
            )

    async def handle(self, scope: Scope, receive: Receive, send: Send, operation: str, *,
                     mpid: str | None = None, body: bytes | None = None, key_in_path: str | None = None) -> None:
        headers = cors.for_scope(scope)
        info: InputInfo | None = None
        try:
            if body is None:
                body = await read_body(scope, receive)
            info, client_side = self.authenticate(scope, body, key_in_path)
            self._rate_limit(info)
            status, answer = await asyncio.to_thread(self._run, info, operation, body, mpid, client_side)
        except RefusedMerges as refused:
            self._record_refused_merges(info, refused, body)
            await respond(send, 200, _encoder.encode(refused.answer), headers=headers)
            return
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
        extra = [(k.encode(), v.encode()) for k, v in error.headers.items()]
        await respond(send, error.status, _error(error.code, error.message), headers=headers + extra)

    def _record_refused_merges(self, info: InputInfo | None, refused: RefusedMerges, body: bytes | None) -> None:
        """Counted and listed (status 200: the call was answered), never told to the caller."""
        if self.rejections is None:
            return
        for other, reason in refused.refused:
            message = (f"identify with a key-only credential resolved to profile {refused.answer['mpid']}; profile "
                       f"{other} was not merged into it ({reason}: {MERGE_REASONS[reason]})")
            self.rejections.record(info, CollectError(200, "IDENTITY_MERGE_REFUSED", message), body, self.clock())

    def _run(self, info: InputInfo, operation: str, body: bytes, mpid: str | None,
             client_side: bool) -> tuple[int, Any]:
        conn = self.db.conn()
        with transaction(conn):
            service = Identity(conn, info.workspace_id, actor=f"idsync:{info.id}", now_ms=self.clock())
            if operation == "modify":
                number = parse_mpid(mpid)
                result = idsync.modify(service, number, idsync.decode(body, idsync.ModifyRequest), client_side)
                if result is None:
                    raise CollectError(404, "NOT_FOUND", f"No profile with mpid {mpid}.")
                return 200, result
            if operation == "alias":
                request = idsync.decode(body, idsync.AliasRequest)
                delay_hours = ConfigStore(conn).settings(info.workspace_id).get("alias_delay_hours") or 0
                request_alias(conn, info.workspace_id, request.fields(), now_ms=service.now_ms,
                              delay_ms=int(float(delay_hours) * 3_600_000),
                              client_login_types=service.policy.login_types if client_side else None)
                return 202, None
            refused: RefusedMerges | None = None
            try:
                result = OPERATIONS[operation](service, body, client_side)
            except RefusedMerges as caught:  # the identify stands (committed); its refusals are recorded
                refused, result = caught, caught.answer
            if result is None:
                raise CollectError(404, "NOT_FOUND", "No profile matches these identities.")
        if refused is not None:
            raise refused
        return 200, result
