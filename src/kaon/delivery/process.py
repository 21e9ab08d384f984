"""The deliver stage as its own OS process, started by `kaon serve`."""

import signal

from kaon.children import StopEvent
from kaon.delivery.service import DeliveryService
from kaon.settings import Settings
from kaon.store.db import Database, DatabaseUrl


def run_delivery(settings: Settings, stop: StopEvent, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda _s, _f: stop.set())
    db = Database(DatabaseUrl.parse(settings.database_url), data_dir=settings.data_dir)
    DeliveryService(db).run_until(stop, parent)
