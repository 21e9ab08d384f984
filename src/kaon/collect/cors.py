"""The collection doors' CORS policy: which browser requests may call Kaon, and the headers that say so.

Collect routes are authenticated by keys, never by cookies, so any origin may call the browser doors and no
answer carries `Access-Control-Allow-Credentials`: browsers then never attach cookies to these calls.
A preflight is answered only when everything it asks for is on the lists below; anything else is refused
(403 `CORS_REFUSED`, no CORS headers, recorded in rejections) so a misconfigured page is visible to the
operator instead of failing silently in a browser. Server-to-server doors (`/v2/...`, which need the
input's secret) refuse every preflight: a secret in a web page is already leaked.
Chrome's Private Network Access preflights (a public page calling a Kaon on a private address, such as one on
the office network or `localhost` during development, asks `Access-Control-Request-Private-Network: true`) are
allowed the same way: the key, not the network, decides.
"""

import re

from kaon.collect.errors import CollectError
from kaon.collect.http import Scope, header

ALLOWED_METHODS = ("POST", "GET", "OPTIONS")
# What real SDKs send (lower case, as browsers list them in Access-Control-Request-Headers):
#   mParticle web SDK and IDSync: content-type, accept, x-mp-key (HMAC callers: date, x-mp-signature)
#   Segment analytics-next: content-type, authorization (Basic write key), x-retry-count on retries
#   RudderStack v2/v3: content-type, accept, authorization, anonymousid, sentat, rsa-* retry headers
ALLOWED_HEADERS = (
    "content-type", "content-encoding", "accept", "authorization", "date", "x-mp-key", "x-mp-signature",
    "anonymousid", "sentat", "rsa-recovered", "rsa-retry-attempt", "rsa-retry-reason",
    "rsa-since-first-attempt", "rsa-since-last-attempt", "x-retry-count",
)
MAX_AGE_S = 86_400
# Bounds on what a preflight may ask: a real SDK asks for a handful of short names.
MAX_ORIGIN_BYTES = 256
MAX_REQUEST_HEADERS_BYTES = 512
MAX_REQUEST_HEADERS = 16

_ALLOWED = frozenset(ALLOWED_HEADERS)
# A serialised origin: scheme "://" host [":" port], or the opaque "null" of sandboxed frames and files.
_ORIGIN = re.compile(rb"^(?:null|[a-z][a-z0-9+.-]*://[A-Za-z0-9._~\-]+(?::[0-9]{1,5})?|"
                     rb"[a-z][a-z0-9+.-]*://\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?)$")

_METHODS_VALUE = ", ".join(ALLOWED_METHODS).encode()
_HEADERS_VALUE = ", ".join(ALLOWED_HEADERS).encode()
_MAX_AGE_VALUE = str(MAX_AGE_S).encode()
# Segment's and RudderStack's SDKs read Retry-After on 429, which browsers hide cross-origin unless exposed.
_EXPOSE = (b"access-control-expose-headers", b"retry-after")
_VARY = (b"vary", b"Origin")

Headers = list[tuple[bytes, bytes]]


def valid_origin(origin: bytes | None) -> bool:
    return origin is not None and len(origin) <= MAX_ORIGIN_BYTES and _ORIGIN.match(origin) is not None


def response_headers(origin: bytes | None) -> Headers:
    """CORS headers for an actual (non-preflight) answer of a browser door; none without a valid Origin."""
    if not valid_origin(origin):
        return []
    assert origin is not None
    return [(b"access-control-allow-origin", origin), _VARY, _EXPOSE]


def refused(message: str) -> CollectError:
    return CollectError(403, "CORS_REFUSED", message)


def preflight_headers(origin: bytes | None, method: bytes | None, request_headers: bytes | None,
                      private_network: bytes | None = None) -> Headers:
    """The answer to `OPTIONS` on a browser door, or CollectError `CORS_REFUSED` when the policy says no.

    An OPTIONS without `Access-Control-Request-Method` is not a preflight; it gets the same answer (there is
    nothing to check), so plain `curl -X OPTIONS` shows the policy.
    """
    if origin is not None and not valid_origin(origin):
        raise refused(f"Origin is not a serialised origin of at most {MAX_ORIGIN_BYTES} bytes.")
    if method is not None and method.decode("latin-1").strip().upper() not in ALLOWED_METHODS:
        shown = method[:32].decode("latin-1")
        raise refused(f"Method {shown!r} is not allowed; allowed: {', '.join(ALLOWED_METHODS)}.")
    if request_headers is not None:
        if len(request_headers) > MAX_REQUEST_HEADERS_BYTES:
            raise refused(f"Access-Control-Request-Headers is over {MAX_REQUEST_HEADERS_BYTES} bytes.")
        names = [n.strip().lower() for n in request_headers.decode("latin-1").split(",") if n.strip()]
        if len(names) > MAX_REQUEST_HEADERS:
            raise refused(f"More than {MAX_REQUEST_HEADERS} headers requested.")
        unknown = sorted({n for n in names if n not in _ALLOWED})
        if unknown:
            raise refused(f"Header(s) not allowed: {', '.join(n[:40] for n in unknown[:5])}; "
                          f"allowed: {', '.join(ALLOWED_HEADERS)}.")
    out: Headers = [] if origin is None else [(b"access-control-allow-origin", origin), _VARY]
    out += [(b"access-control-allow-methods", _METHODS_VALUE), (b"access-control-allow-headers", _HEADERS_VALUE),
            (b"access-control-max-age", _MAX_AGE_VALUE)]
    if private_network is not None and private_network.strip().lower() == b"true":
        out.append((b"access-control-allow-private-network", b"true"))
    return out


def for_scope(scope: Scope) -> Headers:
    """`response_headers` for a request's own Origin."""
    return response_headers(header(scope, b"origin"))
