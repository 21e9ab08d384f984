"""Message-id deduplication: a `source_message_id` seen within the window is stored once per workspace."""

import sqlite3


class DedupStore:
    def __init__(self, conn: sqlite3.Connection, window_ms: int) -> None:
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
