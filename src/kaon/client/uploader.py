"""Sends one `/v2/bulkevents` body over a keep-alive httpx client, retrying as the policy decides."""

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import msgspec

from kaon import __version__
from kaon.client.retry import backoff, classify

logger = logging.getLogger("kaon.client")

PATH = "/v2/bulkevents"


class _ErrorItem(msgspec.Struct):
    code: str | None = None
    message: str | None = None


class _ErrorBody(msgspec.Struct):
    errors: list[_ErrorItem] = []


@dataclass(frozen=True, slots=True)
class Sent:
    """The final answer for one body: delivered, or why not."""

    delivered: bool
    attempts: int
    status: int | None = None
    code: str | None = None
    message: str = ""
    retryable: bool = False


def _describe(response: httpx.Response) -> tuple[str | None, str]:
    """The server's first error code and message, from `{"errors":[{"code","message"}]}` or the raw text."""
    try:
        body = msgspec.json.decode(response.content, type=_ErrorBody)
    except msgspec.DecodeError:
        return None, response.text[:500] or response.reason_phrase
    if not body.errors:
        return None, response.reason_phrase
    first = body.errors[0]
    return first.code, first.message or first.code or response.reason_phrase


class Uploader:
    def __init__(
        self,
        host: str,
        key: str,
        secret: str,
        *,
        timeout: float,
        max_retries: int,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._max_retries = max_retries
        self._sleep = sleep
        self._jitter = jitter
        self._http = httpx.Client(
            base_url=host.rstrip("/"),
            auth=httpx.BasicAuth(key, secret),
            timeout=timeout,
            headers={"Content-Type": "application/json", "User-Agent": f"kaon-python/{__version__}"},
        )

    def send(self, body: bytes) -> Sent:
        """POST `body`, retrying 408/429/5xx and connection errors up to max_retries times."""
        attempt = 0
        while True:
            try:
                response = self._http.post(PATH, content=body)
            except httpx.TransportError as exc:
                # Timeouts, refused and reset connections: the body may not have arrived, so send it again.
                outcome = Sent(False, attempt + 1, message=f"{type(exc).__name__}: {exc}", retryable=True)
                retry_after = None
            else:
                decision = classify(response.status_code, response.headers)
                if decision.action == "delivered":
                    return Sent(True, attempt + 1, status=response.status_code)
                code, message = _describe(response)
                outcome = Sent(
                    False, attempt + 1, status=response.status_code, code=code, message=message,
                    retryable=decision.action == "retry",
                )
                retry_after = decision.retry_after
            if not outcome.retryable or attempt >= self._max_retries:
                return outcome
            delay = backoff(attempt, retry_after, self._jitter)
            logger.info(
                "kaon.client: attempt %d failed (%s %s); retrying in %.2fs",
                attempt + 1, outcome.status or "no answer", outcome.message, delay,
            )
            self._sleep(delay)
            attempt += 1

    def close(self) -> None:
        self._http.close()
