"""Consumer offsets: how far the process stage has read each ingest log partition."""

from kaon.store.sql import Conn


class OffsetStore:
    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    def get(self, partition: str) -> int:
        row = self.conn.execute("SELECT seq FROM log_offsets WHERE partition = ?", (partition,)).fetchone()
        return 0 if row is None else int(row[0])

    def set(self, partition: str, seq: int) -> None:
        self.conn.execute(
            "INSERT INTO log_offsets (partition, seq) VALUES (?, ?)"
            " ON CONFLICT (partition) DO UPDATE SET seq = excluded.seq",
            (partition, seq),
        )

    def all(self) -> dict[str, int]:
        return {p: int(s) for p, s in self.conn.execute("SELECT partition, seq FROM log_offsets")}
