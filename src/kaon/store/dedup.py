"""Message-id deduplication: a `source_message_id` seen within the window is stored once per workspace."""

from collections.abc import Iterable

from kaon.store.sql import Conn, chunks, marks
from kaon.store.subject import Subject


class DedupStore:
    def __init__(self, conn: Conn, window_ms: int) -> None:
        self.conn = conn
        self.window_ms = window_ms

    def first_sighting(self, workspace_id: str, message_id: str, now_ms: int) -> bool:
        """Record the id; True when it was not seen within the window (the event is new)."""
        cursor = self.conn.execute(
            "INSERT INTO message_ids (workspace_id, source_message_id, seen_ms) VALUES (?, ?, ?)"
            " ON CONFLICT (workspace_id, source_message_id) DO UPDATE SET seen_ms = excluded.seen_ms"
            " WHERE message_ids.seen_ms < excluded.seen_ms - ?",
            (workspace_id, message_id, now_ms, self.window_ms),
        )
        return cursor.rowcount == 1

    def expire(self, now_ms: int) -> int:
        cursor = self.conn.execute("DELETE FROM message_ids WHERE seen_ms < ?", (now_ms - self.window_ms,))
        return cursor.rowcount

    def new_ids(self, workspace_id: str, message_ids: list[str], now_ms: int) -> set[str]:
        """Of these ids, those not seen within the window (recorded as seen now): two statements per chunk."""
        unique = list(dict.fromkeys(message_ids))
        seen: dict[str, int] = {}
        for chunk in chunks(unique, 500):
            rows = self.conn.execute(
                "SELECT source_message_id, seen_ms FROM message_ids WHERE workspace_id = ?"
                f" AND source_message_id IN ({marks(chunk)})",
                (workspace_id, *chunk),
            )
            seen.update((str(m), int(s)) for m, s in rows)
        oldest = now_ms - self.window_ms
        fresh = [m for m in unique if m not in seen or seen[m] < oldest]
        self.conn.executemany(
            "INSERT INTO message_ids (workspace_id, source_message_id, seen_ms) VALUES (?, ?, ?)"
            " ON CONFLICT (workspace_id, source_message_id) DO UPDATE SET seen_ms = excluded.seen_ms",
            [(workspace_id, m, now_ms) for m in fresh],
        )
        return set(fresh)

    def forget(self, workspace_id: str, message_ids: Iterable[str]) -> int:
        """Forget these ids (events never stored), so that a replay of them is not taken for a duplicate."""
        return sum(self.conn.execute(
            f"DELETE FROM message_ids WHERE workspace_id = ? AND source_message_id IN ({marks(chunk)})",
            (workspace_id, *chunk)).rowcount for chunk in chunks(dict.fromkeys(message_ids)))


def erase_subject(conn: Conn, subject: Subject) -> dict[str, int]:
    """Forget the message ids of the person's events (`subject.source_message_ids`); rows deleted."""
    return {"message_ids": DedupStore(conn, 0).forget(subject.workspace_id, subject.source_message_ids)}
