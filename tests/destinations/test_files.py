"""The files destination: JSON Lines / Parquet part files, partitioned by date, durable and idempotent."""

import copy
import errno
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import msgspec
import pyarrow.parquet as pq
import pytest

from destinations.audience_conformance import member
from destinations.conformance import DestinationConformance
from kaon.activation.membership import DELETE
from kaon.destinations.event import DeliveryEvent
from kaon.destinations.outcome import Outcome
from kaon.destinations.registry import destinations
from kaon.governance.dsr_scrub import scrub_files
from kaon.store.outputs import Output
from kaon.store.subject import Subject
from support.events import T0, custom, every_kind, purchase, screen

DAY = 86_400_000


def deliver(destination: Any, events: list[DeliveryEvent], **settings: Any) -> list[Outcome]:
    results = destination.deliver(events, destination.parse_settings(settings))
    assert len(results) == len(events)
    return [r.outcome for r in results]


def parts(root: Path, pattern: str = "**/part-*") -> list[Path]:
    return sorted(p for p in root.glob(pattern) if not p.name.startswith("."))


def rows(root: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in parts(root):
        if path.suffix == ".parquet":
            found += pq.read_table(path).to_pylist()
        else:
            found += [json.loads(line) for line in path.read_text().splitlines()]
    return sorted(found, key=lambda row: row["event_id"])


class TestFiles(DestinationConformance):
    name = "files"

    def settings(self, base_url: str) -> dict[str, Any]:
        return {"directory": "/var/lib/kaon/export", "format": "parquet"}

    # The HTTP conformance tests, in their file equivalents.

    def test_settings_are_documented_and_have_a_base_url(self) -> None:
        schema = self.destination.settings_schema()
        props = schema["$defs"][schema["$ref"].split("/")[-1]]["properties"]
        assert "base_url" not in props and "directory" in props, "a file destination names a directory"
        for field, spec in props.items():
            assert spec.get("title") and spec.get("description"), f"setting {field} needs title and description"
        assert self.destination.title and self.destination.description and self.destination.category

    def test_transform_is_pure(self, tmp_path: Path) -> None:
        """`deliver` replaces `transform`: it leaves the events as they were."""
        events = every_kind()
        before = copy.deepcopy([msgspec.to_builtins(e) for e in events])
        assert deliver(self.destination, events, directory=str(tmp_path)) == [Outcome.DELIVERED] * 4
        assert [msgspec.to_builtins(e) for e in events] == before

    def test_requests_go_to_the_base_url_and_cover_events_once(self, tmp_path: Path) -> None:
        deliver(self.destination, every_kind(), directory=str(tmp_path / "out"))
        assert [r["event_id"] for r in rows(tmp_path)] == [1, 2, 3, 4]
        assert all(p.is_relative_to(tmp_path / "out") for p in parts(tmp_path))

    def test_delivers_to_the_vendor(self, tmp_path: Path) -> None:
        events = every_kind()
        assert deliver(self.destination, events, directory=str(tmp_path)) == [Outcome.DELIVERED] * 4
        got = rows(tmp_path)
        assert [(r["event_type"], r["event_name"]) for r in got] == [
            ("custom_event", "Clicked Button"), ("screen_view", "Home"), ("commerce_event", "purchase"),
            ("user_attribute_change", None)]
        assert got[0]["source_message_id"] == events[0].source_message_id

    def test_retry_classes(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A full disk is retried; a directory that is a file is a bad setting and aborts."""
        def disk_full(fd: int) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        with monkeypatch.context() as patch:
            patch.setattr(os, "fsync", disk_full)
            assert deliver(self.destination, [custom()], directory=str(tmp_path / "out")) == [Outcome.RETRY]
        assert parts(tmp_path) == []
        (tmp_path / "file").write_text("not a directory")
        assert deliver(self.destination, [custom()], directory=str(tmp_path / "file" / "out")) == [Outcome.ABORT]

    # Files proper.

    def test_jsonl_rows_round_trip(self, tmp_path: Path) -> None:
        deliver(self.destination, every_kind(), directory=str(tmp_path))
        first = rows(tmp_path)[0]
        assert list(first) == ["event_id", "source_message_id", "event_type", "event_name", "timestamp",
                               "timestamp_ms", "mpid", "workspace_id", "input_id", "environment", "identities",
                               "user_attributes", "attributes", "data"]
        assert first["timestamp"] == "2026-11-25T09:46:41.000Z" and first["timestamp_ms"] == T0 + 1000
        assert first["mpid"] == "8675310" and first["identities"]["customer_id"] == "cust-1"
        assert first["attributes"] == {"color": "blue", "n": 3}
        assert first["user_attributes"]["tier"] == "gold"
        assert first["data"]["custom_event_type"] == "navigation"

    def test_parquet_rows_round_trip(self, tmp_path: Path) -> None:
        deliver(self.destination, every_kind(), directory=str(tmp_path), format="parquet")
        assert all(p.suffix == ".parquet" for p in parts(tmp_path))
        third = rows(tmp_path)[2]
        assert third["timestamp"].isoformat() == "2026-11-25T09:46:43+00:00"
        assert json.loads(third["data"])["product_action"]["products"][0]["id"] == "sku-1"
        assert json.loads(third["identities"])["email"] == "jane@example.com"

    def test_partitioned_by_utc_date_and_optionally_event_type(self, tmp_path: Path) -> None:
        late = msgspec.structs.replace(custom(7), timestamp_ms=T0 + DAY)
        deliver(self.destination, [custom(), screen(), late], directory=str(tmp_path / "a"))
        assert [str(p.relative_to(tmp_path / "a")) for p in parts(tmp_path / "a")] == [
            "events/dt=2026-11-25/part-000000000001-000000000002.jsonl",
            "events/dt=2026-11-26/part-000000000007-000000000007.jsonl"]
        deliver(self.destination, [custom(), screen(), late], directory=str(tmp_path / "b"),
                partition_by="event_type+date")
        assert [str(p.relative_to(tmp_path / "b")) for p in parts(tmp_path / "b")] == [
            "custom_event/dt=2026-11-25/part-000000000001-000000000001.jsonl",
            "custom_event/dt=2026-11-26/part-000000000007-000000000007.jsonl",
            "screen_view/dt=2026-11-25/part-000000000002-000000000002.jsonl"]

    def test_batch_size_caps_rows_per_part(self, tmp_path: Path) -> None:
        deliver(self.destination, [custom(n) for n in range(1, 6)], directory=str(tmp_path), batch_size=2)
        assert [p.name for p in parts(tmp_path)] == [
            "part-000000000001-000000000002.jsonl", "part-000000000003-000000000004.jsonl",
            "part-000000000005-000000000005.jsonl"]

    @pytest.mark.parametrize("file_format", ["jsonl", "parquet"])
    def test_redelivery_writes_no_duplicates(self, tmp_path: Path, file_format: str) -> None:
        settings = {"directory": str(tmp_path), "format": file_format}
        deliver(self.destination, [custom(1), screen(2), purchase(3)], **settings)
        # The same batch again, then a batch mixing written and new events.
        assert deliver(self.destination, [custom(1), screen(2), purchase(3)], **settings) == [Outcome.DELIVERED] * 3
        assert deliver(self.destination, [screen(2), custom(5), purchase(3)], **settings) == [Outcome.DELIVERED] * 3
        assert [r["event_id"] for r in rows(tmp_path)] == [1, 2, 3, 5]
        assert len(parts(tmp_path)) == 2

    @pytest.mark.parametrize("crash_at", ["fdopen", "fsync", "replace"])
    def test_a_crash_never_leaves_a_visible_part(self, tmp_path: Path, crash_at: str) -> None:
        """The process dies (no cleanup runs) with the temp file empty, written, or synced but not renamed:
        readers see no part, and re-delivery writes it whole."""
        script = textwrap.dedent(f"""
            import os, stat
            from kaon.destinations.registry import destinations
            from support.events import every_kind
            files = destinations()["files"]
            settings = files.parse_settings({{"directory": {str(tmp_path)!r}}})
            real = os.{crash_at}
            def crash(*args, **kwargs):
                if "{crash_at}" == "fsync" and not stat.S_ISREG(os.fstat(args[0]).st_mode):
                    return real(*args, **kwargs)  # a directory's fsync: not the part file yet
                os._exit(9)
            os.{crash_at} = crash
            files.deliver(every_kind(), settings)
        """)
        tests = Path(__file__).parents[1]
        done = subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(tests)},
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 9, done.stderr
        leftovers = [p for p in tmp_path.rglob("*") if p.is_file()]
        assert leftovers and all(p.name.startswith(".part-") and p.name.endswith(".tmp") for p in leftovers)
        assert parts(tmp_path) == [] and list(tmp_path.glob("**/*.jsonl")) == []
        assert deliver(self.destination, every_kind(), directory=str(tmp_path)) == [Outcome.DELIVERED] * 4
        assert [r["event_id"] for r in rows(tmp_path)] == [1, 2, 3, 4]

    def test_a_directory_that_cannot_be_created_aborts(self, tmp_path: Path) -> None:
        if os.geteuid() == 0:
            blocker = tmp_path / "a-file"  # a file where a directory must go refuses even root (ENOTDIR)
            blocker.write_text("")
            target = str(blocker / "export")
        else:
            locked = tmp_path / "locked"
            locked.mkdir(mode=0o500)
            target = str(locked / "export")
        results = self.destination.deliver([custom(), screen()],
                                           self.destination.parse_settings({"directory": target}))
        assert results is not None and [r.outcome for r in results] == [Outcome.ABORT] * 2
        assert any(s in results[0].message for s in ("ermission", "not permitted", "Not a directory"))


@pytest.mark.parametrize("directory", ["/", "//", "/etc", "/etc/kaon", "/usr/lib/x", "/proc/self", "/tmp/../etc",
                                       "/tmp/./x", "relative/x"])
def test_a_directory_kaon_may_not_own_is_refused_at_creation(directory: str) -> None:
    from kaon.destinations.registry import destination

    with pytest.raises(msgspec.ValidationError, match=r"directory|length >= 2|regex"):
        destination("files").parse_settings({"directory": directory})


def test_the_operator_can_bound_directories_to_allowed_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kaon.destinations.files import check_directory

    check_directory(str(tmp_path / "out"), roots=f"/nowhere:{tmp_path}")
    with pytest.raises(ValueError, match="KAON_FILES_ROOTS"):
        check_directory("/var/lib/kaon/export", roots=str(tmp_path))
    monkeypatch.setenv("KAON_FILES_ROOTS", str(tmp_path))
    with pytest.raises(ValueError, match="KAON_FILES_ROOTS"):
        check_directory("/srv/export")


@pytest.mark.parametrize("file_format", ["jsonl", "parquet"])
def test_audience_members_go_to_their_own_table_once_and_erasure_finds_them(tmp_path: Path, file_format: str) -> None:
    files = destinations()["files"]
    changes = [msgspec.structs.replace(member(1, customer_id="a"), event_id=501),
               msgspec.structs.replace(member(2, email="b@example.com"), event_id=502),
               msgspec.structs.replace(member(1, DELETE, customer_id="a"), event_id=503)]
    settings = {"directory": str(tmp_path), "format": file_format}
    assert deliver(files, [*changes, custom(9)], **settings) == [Outcome.DELIVERED] * 4
    assert deliver(files, changes, **settings) == [Outcome.DELIVERED] * 3  # a retry: no duplicate rows
    found = [p for p in parts(tmp_path) if p.parts[-3] == "audience_memberships"]
    assert found and all(p.parent.name.startswith("dt=") for p in found)
    if file_format == "parquet":
        written = [r for p in found for r in pq.read_table(p).to_pylist()]
        assert all(isinstance(r["identities"], str) for r in written)
        written = [{**r, "identities": json.loads(r["identities"])} for r in written]
    else:
        written = [json.loads(line) for p in found for line in p.read_text().splitlines()]
    assert sorted((r["event_id"], r["mpid"], r["action"], r["audience_id"]) for r in written) == [
        (501, "8675310", "add", "aud_1"), (502, "8675311", "add", "aud_1"), (503, "8675310", "delete", "aud_1")]
    assert {r["cause"] for r in written} == {"event"} and written[0]["identities"]
    output = Output(id="out_files", workspace_id="ws", name="export", destination="files", settings=settings,
                    enabled=True, created_ms=0, updated_ms=0)
    subject = Subject(workspace_id="ws", mpids={8675310}, identities=set(), attribute_values=set(), event_ids=[])
    assert scrub_files(output, subject) >= 2
    left = [r for p in parts(tmp_path) if p.parts[-3] == "audience_memberships" for r in (
        pq.read_table(p).to_pylist() if file_format == "parquet" else
        [json.loads(line) for line in p.read_text().splitlines()])]
    assert [r["mpid"] for r in left] == ["8675311"]
