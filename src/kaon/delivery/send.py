"""Sending one transformed request over HTTP and classifying the answer (network errors are retried)."""

import httpx

from kaon.destinations.base import Destination, HttpRequest
from kaon.destinations.outcome import HttpResponse, Outcome, SendResult


def send(client: httpx.Client, destination: Destination, request: HttpRequest, timeout_s: float) -> SendResult:
    try:
        response = client.request(request.method, request.url, headers=request.headers, content=request.body,
                                  timeout=timeout_s)
    except httpx.TimeoutException as error:
        return SendResult(Outcome.RETRY, f"timeout: {error}")
    except httpx.HTTPError as error:
        return SendResult(Outcome.RETRY, f"{type(error).__name__}: {error}")
    answer = HttpResponse(status=response.status_code,
                          headers={k.lower(): v for k, v in response.headers.items()}, body=response.content)
    return destination.classify(request, answer)
