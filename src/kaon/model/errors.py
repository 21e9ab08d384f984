"""Errors raised while decoding or checking a payload; each carries a stable `code` and an HTTP status.

    KaonError
    └── PayloadError            the request body cannot be accepted (status 400 unless said)
        ├── LimitExceeded       a documented size or count limit is exceeded (400 or 413)
        └── (codes)             INVALID_JSON, INVALID_SHAPE, UNSUPPORTED_EVENT_TYPE, ...
"""

import msgspec

from kaon.errors import KaonError


class PayloadError(KaonError):
    """A payload that cannot be accepted; `message` says where."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class LimitExceeded(PayloadError):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(code, message, status)


def located(error: msgspec.MsgspecError, prefix: str) -> PayloadError:
    """Translate a msgspec error into a PayloadError whose message names the JSON path under `prefix`."""
    text = str(error)
    if isinstance(error, msgspec.ValidationError):
        marker = " - at `$"
        if marker in text:
            head, _, tail = text.partition(marker)
            return PayloadError("INVALID_SHAPE", f"{head} - at `{prefix}{tail}")
        return PayloadError("INVALID_SHAPE", f"{text} - at `{prefix}`")
    return PayloadError("INVALID_JSON", f"Malformed JSON: {text}")
