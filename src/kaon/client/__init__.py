"""Kaon's Python client SDK: `Kaon(key, secret, host)`, then `identify`, `log_event`, `flush`, `close`."""

from kaon.client.batcher import FlushResult
from kaon.client.client import Kaon
from kaon.client.errors import (
    ClientClosed,
    ClientError,
    DeliveryError,
    EventTooLarge,
    QueueFull,
    Rejected,
    RetriesExhausted,
)
from kaon.client.models import Product

__all__ = [
    "ClientClosed",
    "ClientError",
    "DeliveryError",
    "EventTooLarge",
    "FlushResult",
    "Kaon",
    "Product",
    "QueueFull",
    "Rejected",
    "RetriesExhausted",
]
