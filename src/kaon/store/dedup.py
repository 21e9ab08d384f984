"""Message-id deduplication: a `source_message_id` seen within the window is stored once per workspace."""

from kaon.store.sql import Conn


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
        for start in range(0, len(unique), 500):
            chunk = unique[start:start + 500]
            rows = self.conn.execute(
                "SELECT source_message_id, seen_ms FROM message_ids WHERE workspace_id = ?"
                f" AND source_message_id IN ({','.join('?' * len(chunk))})",
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
