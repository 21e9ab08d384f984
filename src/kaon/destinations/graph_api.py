"""What Meta's two outputs share about the Graph API: its host and version settings, and reading its errors."""

from collections.abc import Callable
from typing import Annotated, Final

import msgspec

from kaon.destinations.outcome import HttpResponse, Outcome, SendResult, classify_http, retry_after

# Graph error codes that mean "throttled" or "temporarily unavailable" (RudderStack's networkHandler agrees).
RATE_LIMIT_CODES: Final = frozenset({4, 17, 32, 613, 80004})
TRANSIENT_CODES: Final = frozenset({1, 2, 341})
THROTTLE_WAIT_S: Final = 60.0
GRAPH_HOST: Final = "https://graph.facebook.com"
GRAPH_VERSION: Final = "v25.0"

GraphUrl = Annotated[str, msgspec.Meta(title="Graph API URL", description="The Graph API host.",
                                       pattern=r"^https?://")]
GraphVersion = Annotated[str, msgspec.Meta(title="Graph API version", description="The Graph API version in the "
                                           "path.", pattern=r"^v\d+\.\d+$", examples=[GRAPH_VERSION])]


class GraphError(msgspec.Struct, frozen=True):
    code: int
    subcode: int | None
    transient: bool
    message: str


def graph_error(body: bytes) -> GraphError | None:
    """The Graph API error of a response body, if it is one."""
    try:
        decoded = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    error = decoded.get("error") if isinstance(decoded, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("code"), int):
        return None
    subcode = error.get("error_subcode")
    return GraphError(error["code"], subcode if isinstance(subcode, int) else None, bool(error.get("is_transient")),
                      str(error.get("message", "")))


def classify_graph(response: HttpResponse,
                   special: Callable[[GraphError, str], str | None] | None = None) -> SendResult:
    """2xx delivered, 5xx retried; a Graph error by its code: throttling retried after Retry-After (or a minute),
    transient errors retried, the rest aborted. `special` may name an error to abort with that message."""
    result = classify_http(response)
    if result.outcome is Outcome.DELIVERED or response.status >= 500:
        return result
    error = graph_error(response.body)
    if error is None:
        return result
    text = f"Graph error {error.code}{f'/{error.subcode}' if error.subcode else ''}: {error.message}"[:300]
    if error.code in RATE_LIMIT_CODES:
        wait = retry_after(response.headers) or THROTTLE_WAIT_S
        return SendResult(Outcome.RETRY, text, response.status, wait, response_body=result.response_body)
    if special is not None and (message := special(error, text)) is not None:
        return SendResult(Outcome.ABORT, message, response.status, response_body=result.response_body)
    if error.code in TRANSIENT_CODES or error.transient:
        return SendResult(Outcome.RETRY, text, response.status, retry_after(response.headers),
                          response_body=result.response_body)
    return SendResult(Outcome.ABORT, text, response.status, response_body=result.response_body)
