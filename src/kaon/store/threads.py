"""Background threads the process stage's chores keep running: one per store per process, restarted if it died."""

import threading
from collections.abc import Callable

from kaon.store.sql import Conn, store_url


class StoreThread:
    """`ensure(conn, now)` is a chore: it starts `loop(store_url)` on a daemon thread the first time it is called for
    a store (and again if the thread died)."""

    def __init__(self, name: str, loop: Callable[[str], None]) -> None:
        self.name = name
        self.loop = loop
        self._started: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def ensure(self, conn: Conn, _now: int) -> None:
        url = store_url(conn)
        with self._lock:
            thread = self._started.get(url)
            if thread is None or not thread.is_alive():
                thread = threading.Thread(target=self.loop, args=(url,), name=self.name, daemon=True)
                self._started[url] = thread
                thread.start()
