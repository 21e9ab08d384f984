"""The SQLite ingest log and group commit: durable, ordered, shared commits, truncation."""

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kaon.log.base import LogEntry
from kaon.log.group_commit import GroupCommitter
from kaon.log.sqlite import SqliteLogReader, SqliteLogWriter


def entry(n: int, kind: str = "mparticle_batch") -> LogEntry:
    return LogEntry(kind=kind, workspace_id="ws", input_id="in", received_ms=1000 + n, ip="10.0.0.1",
                    body=f'{{"n":{n}}}'.encode())


def test_append_then_read_in_order_with_every_field(tmp_path: Path) -> None:
    writer = SqliteLogWriter(tmp_path, "0")
    writer.append([entry(1), entry(2)])
    writer.append([entry(3)])
    reader = SqliteLogReader(tmp_path)
    assert reader.partitions() == ["0"]
    got = reader.read("0", 0, 100)
    assert [s.entry for s in got] == [entry(1), entry(2), entry(3)]
    assert [s.seq for s in got] == sorted({s.seq for s in got})
    assert all(s.partition == "0" for s in got)
    assert [s.entry for s in reader.read("0", got[0].seq, 1)] == [entry(2)]
    assert reader.read("0", got[-1].seq, 100) == []
    writer.close()
    reader.close()


def test_partitions_are_separate_files(tmp_path: Path) -> None:
    assert SqliteLogReader(tmp_path / "missing").partitions() == []
    a, b = SqliteLogWriter(tmp_path, "a"), SqliteLogWriter(tmp_path, "b")
    a.append([entry(1)])
    b.append([entry(2), entry(3)])
    reader = SqliteLogReader(tmp_path)
    assert reader.partitions() == ["a", "b"]
    assert [s.entry for s in reader.read("b", 0, 10)] == [entry(2), entry(3)]
    for closable in (a, b, reader):
        closable.close()


def test_append_is_durable_when_it_returns(tmp_path: Path) -> None:
    # Another process appends and dies abruptly right after append() returns, without closing.
    src = Path(__file__).resolve().parents[2] / "src"
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(src)!r})
        from pathlib import Path
        from kaon.log.base import LogEntry
        from kaon.log.sqlite import SqliteLogWriter
        w = SqliteLogWriter(Path({str(tmp_path)!r}), "0")
        w.append([LogEntry(kind="k", workspace_id=None, input_id=None, received_ms=i, body=b"x")
                  for i in range(5)])
        os._exit(0)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    reader = SqliteLogReader(tmp_path)
    assert [s.entry.received_ms for s in reader.read("0", 0, 10)] == [0, 1, 2, 3, 4]
    reader.close()


def test_failed_append_writes_nothing(tmp_path: Path) -> None:
    writer = SqliteLogWriter(tmp_path, "0")
    bad = LogEntry(kind=None, workspace_id="ws", input_id="in", received_ms=1)  # type: ignore[arg-type]
    with pytest.raises(Exception, match="NOT NULL"):
        writer.append([entry(1), bad])
    reader = SqliteLogReader(tmp_path)
    assert reader.read("0", 0, 10) == []
    writer.append([entry(2)])
    assert [s.entry for s in reader.read("0", 0, 10)] == [entry(2)]
    writer.close()
    reader.close()


def test_truncate_drops_processed_entries_and_never_reuses_seqs(tmp_path: Path) -> None:
    writer = SqliteLogWriter(tmp_path, "0")
    writer.append([entry(i) for i in range(5)])
    reader = SqliteLogReader(tmp_path)
    seqs = [s.seq for s in reader.read("0", 0, 10)]
    assert writer.truncate(seqs[2]) == 3
    assert [s.seq for s in reader.read("0", 0, 10)] == seqs[3:]
    assert writer.truncate(seqs[-1]) == 2
    writer.append([entry(9)])
    # A consumer whose offset is the last truncated seq still sees the new entry.
    after = reader.read("0", seqs[-1], 10)
    assert [s.entry for s in after] == [entry(9)]
    assert after[0].seq > seqs[-1]
    writer.close()
    reader.close()


def run_committer(tmp_path: Path, n: int) -> tuple[list[int], int]:
    """Append n entries concurrently through a GroupCommitter; returns received_ms in log order, commits."""
    writer = SqliteLogWriter(tmp_path, "0")
    commits = []
    committer = GroupCommitter(writer, on_commit=lambda: commits.append(1))

    async def main() -> None:
        committer.start(asyncio.get_running_loop())
        await asyncio.gather(*(committer.append(entry(i)) for i in range(n)))
        # Each append resolved only after its entry was durable: all are readable now.
        reader = SqliteLogReader(tmp_path)
        assert len(reader.read("0", 0, n + 1)) == n
        reader.close()

    asyncio.run(main())
    committer.close()
    reader = SqliteLogReader(tmp_path)
    order = [s.entry.received_ms - 1000 for s in reader.read("0", 0, n + 1)]
    reader.close()
    writer.close()
    return order, len(commits)


def test_concurrent_appends_share_commits_and_keep_order(tmp_path: Path) -> None:
    order, commits = run_committer(tmp_path, 200)
    assert order == list(range(200))
    assert 1 <= commits < 100, f"{commits} commits for 200 concurrent appends"


def test_append_nowait_entries_are_written_by_close(tmp_path: Path) -> None:
    writer = SqliteLogWriter(tmp_path, "0")
    committer = GroupCommitter(writer)

    async def main() -> None:
        committer.start(asyncio.get_running_loop())
        for i in range(10):
            committer.append_nowait(entry(i, kind="rejection"))

    asyncio.run(main())
    committer.close()
    reader = SqliteLogReader(tmp_path)
    assert [s.entry for s in reader.read("0", 0, 100)] == [entry(i, kind="rejection") for i in range(10)]
    reader.close()
    writer.close()


def test_append_after_close_is_refused(tmp_path: Path) -> None:
    writer = SqliteLogWriter(tmp_path, "0")
    committer = GroupCommitter(writer)

    async def main() -> None:
        committer.start(asyncio.get_running_loop())
        committer.close()
        with pytest.raises(RuntimeError, match="closing"):
            await committer.append(entry(1))
        committer.append_nowait(entry(2))  # dropped quietly, never raises

    asyncio.run(main())
    reader = SqliteLogReader(tmp_path)
    assert reader.read("0", 0, 10) == []
    reader.close()
    writer.close()


def test_failed_write_fails_every_waiter_and_acknowledges_nothing(tmp_path: Path) -> None:
    writer = SqliteLogWriter(tmp_path, "0")
    writer.close()  # every write now fails
    committer = GroupCommitter(writer)

    async def main() -> list[BaseException | None]:
        committer.start(asyncio.get_running_loop())
        return await asyncio.gather(*(committer.append(entry(i)) for i in range(5)), return_exceptions=True)

    results = asyncio.run(main())
    committer.close()
    assert all(isinstance(r, RuntimeError) and "append failed" in str(r) for r in results), results


FULL_DISK_CHILD = textwrap.dedent("""
    import resource, signal, sys
    from pathlib import Path
    from kaon.log.base import LogEntry
    from kaon.log.sqlite import SqliteLogReader, SqliteLogWriter
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    root = Path(sys.argv[1])
    def entry(size):
        return LogEntry(kind="mparticle_batch", workspace_id="w", input_id="i", received_ms=1, ip=None,
                        body=b"x" * size)
    writer = SqliteLogWriter(root, "p0")
    writer.append([entry(10)])
    used = sum(p.stat().st_size for p in root.iterdir())
    resource.setrlimit(resource.RLIMIT_FSIZE, (used + 20000, resource.RLIM_INFINITY))
    try:
        writer.append([entry(300_000)])
        print("no error")
    except Exception as error:
        print(f"refused: {type(error).__name__}: {error}")
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    writer.append([entry(20)])
    print("sizes", [len(e.entry.body) for e in SqliteLogReader(root).read("p0", 0, 10)])
""")


def test_a_full_disk_reports_the_disk_error_and_the_log_recovers(tmp_path: Path) -> None:
    """RLIMIT_FSIZE in a child makes SQLite's own writes fail as on a full disk (EFBIG), unprivileged."""
    done = subprocess.run([sys.executable, "-c", FULL_DISK_CHILD, str(tmp_path)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] in ("refused: OperationalError: disk I/O error",
                        "refused: OperationalError: database or disk is full"), done.stdout
    assert lines[1] == "sizes [10, 20]", done.stdout


def test_the_whole_log_appends_truncates_and_scrubs_every_partition(tmp_path: Path) -> None:
    from kaon.log.sqlite import SqliteLog

    log = SqliteLog(tmp_path)
    assert log.truncate("quarantine", 5) == 0 and log.partitions() == []  # no file is created for nothing
    log.append([entry(1), entry(2)])
    log.append_to("quarantine", [entry(3), entry(4)])
    assert log.partitions() == ["0", "quarantine"]
    assert [s.entry for s in log.read("quarantine", 0, 10)] == [entry(3), entry(4)]
    assert log.truncate("quarantine", 1) == 1
    assert log.scrub("ws", lambda body: body in (b'{"n":2}', b'{"n":4}')) == 2
    assert log.scrub("another-ws", lambda body: True) == 0
    assert [s.entry for s in log.read("0", 0, 10)] == [entry(1)]
    assert log.read("quarantine", 0, 10) == []
    log.close()
