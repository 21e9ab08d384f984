"""Errors answered by the front doors, each with an HTTP status and a stable code.

    KaonError
    └── CollectError          refused request: status, code, message, extra headers
"""

from kaon.errors import KaonError


class CollectError(KaonError):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def unauthorized(message: str) -> CollectError:
    return CollectError(401, "UNAUTHORIZED", message)
