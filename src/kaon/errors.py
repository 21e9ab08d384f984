"""Kaon's exception hierarchy.

    KaonError                  base of every error Kaon raises on purpose
    ├── ConfigError            bad settings or command-line arguments
    ├── NotFound               a referenced workspace, input or object does not exist
    └── Conflict               the operation clashes with existing state

Each package may define its own `errors.py` deriving from these; foreign exceptions
(sqlite3, httpx, msgspec) are translated at the boundary where they are caught.
"""


class KaonError(Exception):
    """Base class of Kaon's own errors; `code` is a stable machine-readable name."""

    code = "KAON_ERROR"


class ConfigError(KaonError):
    code = "CONFIG_ERROR"


class NotFound(KaonError):
    code = "NOT_FOUND"


class Conflict(KaonError):
    code = "CONFLICT"
