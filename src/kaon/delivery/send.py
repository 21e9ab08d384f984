"""Sending one transformed request over HTTP and classifying the answer.

Network errors are retried. A request that cannot be put on the wire at all (a header that is not printable
ASCII, an invalid URL, a refused address, any other exception) is aborted with the reason: it would fail the
same way on every retry, and must become a recorded outcome (dead letter, alert, replayable) rather than an
exception that drops the claimed batch.
"""

import logging

import httpx

from kaon import outbound
from kaon.destinations.base import Destination, HttpRequest
from kaon.destinations.outcome import HttpResponse, Outcome, SendResult

_log = logging.getLogger("kaon.delivery")
UNSENDABLE = "request could not be sent"


def header_problem(headers: dict[str, str]) -> str | None:
    """Why these headers cannot be sent as they are (None when they can)."""
    for name, value in headers.items():
        for part, text in (("name", name), ("value", value)):
            if not text.isascii() or not text.isprintable():
                shown = name.encode("ascii", "backslashreplace").decode()
                return f"header {shown!r}: its {part} is not printable ASCII"
    return None


def send(client: httpx.Client, destination: Destination, request: HttpRequest, timeout_s: float) -> SendResult:
    if problem := header_problem(request.headers):
        return SendResult(Outcome.ABORT, f"{UNSENDABLE}: {problem}")
    try:
        response = outbound.request(client, request.method, request.url, headers=request.headers,
                                    content=request.body, timeout=timeout_s)
    except outbound.Refused as error:
        return SendResult(Outcome.ABORT, f"{UNSENDABLE}: {error}")
    except httpx.TimeoutException as error:
        return SendResult(Outcome.RETRY, f"timeout: {error}")
    except (httpx.LocalProtocolError, httpx.UnsupportedProtocol, httpx.InvalidURL) as error:
        return SendResult(Outcome.ABORT, f"{UNSENDABLE}: {type(error).__name__}: {error}")
    except httpx.HTTPError as error:
        return SendResult(Outcome.RETRY, f"{type(error).__name__}: {error}")
    except Exception as error:  # a bug here must be recorded, not drop the claimed batch
        _log.exception("sending to %s failed", destination.name)
        return SendResult(Outcome.ABORT, f"{UNSENDABLE}: {type(error).__name__}: {error}")
    answer = HttpResponse(status=response.status_code,
                          headers={k.lower(): v for k, v in response.headers.items()}, body=response.content)
    return destination.classify(request, answer)
