"""Consumer offsets: how far the process stage has read each ingest log partition."""

from kaon.store.sql import Conn


class OffsetStore:
    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    def get(self, partition: str) -> int:
        row = self.conn.execute("SELECT seq FROM log_offsets WHERE partition = ?", (partition,)).fetchone()
        return 0 if row is None else int(row[0])

    def claim(self, partition: str) -> int:
        """The committed offset, locked until the caller's transaction ends: the fence of exactly-once.

        Two workers that both hold a slice of one partition (a lease that expired under a paused worker) then
        apply it one after the other, and the second finds the offset moved and skips what is done. SQLite's
        write transaction already serialises them; PostgreSQL locks the offset row (`FOR UPDATE`).
        """
        if self.conn.dialect.sqlite:
            return self.get(partition)
        self.conn.execute("INSERT INTO log_offsets (partition, seq) VALUES (?, 0) ON CONFLICT (partition) DO NOTHING",
                          (partition,))
        row = self.conn.execute("SELECT seq FROM log_offsets WHERE partition = ? FOR UPDATE", (partition,)).fetchone()
        return int(row[0])

    def set(self, partition: str, seq: int) -> None:
        self.conn.execute(
            "INSERT INTO log_offsets (partition, seq) VALUES (?, ?)"
            " ON CONFLICT (partition) DO UPDATE SET seq = excluded.seq",
            (partition, seq),
        )

    def all(self) -> dict[str, int]:
        return {p: int(s) for p, s in self.conn.execute("SELECT partition, seq FROM log_offsets")}
