"""Errors of the ingest log.

    KaonError
    └── LogMismatch      a partition file is not the log the consumer offsets in the main store were read from
"""

from kaon.errors import KaonError


class LogMismatch(KaonError):
    code = "LOG_EPOCH_MISMATCH"
