"""Concurrent senders for the fault campaign: unique `(user, seq)` ids, a record of what was acknowledged."""

import base64
import http.client
import json
import threading
from urllib.parse import urlsplit

RECONNECT_PAUSE_S = 0.05  # between attempts while the server is down (it is being restarted)


def batch(user: str, seqs: list[int]) -> bytes:
    """One mParticle batch of custom events, one per seq, for `user` (its customer id)."""
    return json.dumps({
        "environment": "development",
        "user_identities": {"customer_id": user},
        "events": [{"event_type": "custom_event", "data": {
            "event_name": "fault", "custom_event_type": "other", "source_message_id": f"{user}-{seq}",
            "custom_attributes": {"user": user, "seq": seq}}} for seq in seqs],
    }).encode()


class Senders:
    """`count` threads, each one user sending its share of `events` in order (at most `rate` events/s in all,
    until stopped); an id is acked on a 202."""

    def __init__(self, url: str, key: str, secret: str, count: int, events: int, per_request: int,
                 rate: float | None = None) -> None:
        parts = urlsplit(url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._auth = "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()
        self._per_request = per_request
        self._interval = 0.0 if rate is None else per_request * count / rate  # per sender, between requests
        self._share = [events // count + (1 if i < events % count else 0) for i in range(count)]
        self._lock = threading.Lock()
        self._acked: set[str] = set()
        self._sent = 0
        self._stopping = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(f"u{i}", n), daemon=True)
                         for i, n in enumerate(self._share)]

    def start(self) -> "Senders":
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def done(self) -> bool:
        return not any(thread.is_alive() for thread in self._threads)

    def acked(self) -> set[str]:
        with self._lock:
            return set(self._acked)

    def acked_count(self) -> int:
        with self._lock:
            return len(self._acked)

    def sent(self) -> int:
        with self._lock:
            return self._sent

    def _run(self, user: str, total: int) -> None:
        connection: http.client.HTTPConnection | None = None
        seq = 0
        while seq < total and not self._stopping.is_set():
            if connection is None:
                try:
                    connection = http.client.HTTPConnection(self._host, self._port, timeout=10)
                    connection.connect()
                except OSError:  # down (killed, restarting): nothing sent, try again shortly
                    connection = None
                    self._stopping.wait(RECONNECT_PAUSE_S)
                    continue
            seqs = list(range(seq, min(seq + self._per_request, total)))
            seq = seqs[-1] + 1  # each id is sent once: an unanswered request is not retried under its ids
            with self._lock:
                self._sent += len(seqs)
            try:
                connection.request("POST", "/v2/events", body=batch(user, seqs), headers={
                    "Authorization": self._auth, "Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                if response.status == 202:
                    with self._lock:
                        self._acked.update(f"{user}:{s}" for s in seqs)
                if self._interval:
                    self._stopping.wait(self._interval)
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = None
        if connection is not None:
            connection.close()
