"""Errors of the ingest log.

    KaonError
    ├── LogMismatch          a partition file is not the log the consumer offsets in the main store were read from
    ├── PartitionCountFixed  a PostgreSQL log opened with another partition count than it was created with
    └── UnknownPartition     a partition name the log does not have
"""

from kaon.errors import KaonError


class LogMismatch(KaonError):
    code = "LOG_EPOCH_MISMATCH"


class PartitionCountFixed(KaonError):
    code = "LOG_PARTITION_COUNT"


class UnknownPartition(KaonError):
    code = "LOG_UNKNOWN_PARTITION"
