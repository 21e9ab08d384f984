"""Kaon's Python client SDK: `Kaon(key, secret, host)`, then `identify`, `log_event`, `flush`, `close`."""

from kaon.client.batcher import FlushResult
from kaon.client.client import Kaon
from kaon.client.errors import (
    ClientClosedError,
    ClientError,
    DeliveryError,
    EventTooLargeError,
    QueueFullError,
    RejectedError,
    RetriesExhaustedError,
)
from kaon.client.models import Product

__all__ = [
    "ClientClosedError",
    "ClientError",
    "DeliveryError",
    "EventTooLargeError",
    "FlushResult",
    "Kaon",
    "Product",
    "QueueFullError",
    "RejectedError",
    "RetriesExhaustedError",
]
