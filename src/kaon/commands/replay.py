"""`kaon replay --output ID --since WHEN [--until WHEN] [--status dead|all]`: queue an output's jobs again."""

import argparse
import sys
import time

from kaon.clock import now_ms
from kaon.commands.workspace import chosen_workspace
from kaon.delivery.store import replay, still_queued
from kaon.durations import DurationError, parse_point
from kaon.errors import ConfigError
from kaon.settings import Settings
from kaon.store.config import ConfigStore
from kaon.store.db import Database, DatabaseUrl
from kaon.store.outputs import OutputStore


def parse_since(value: str, option: str = "--since") -> int:
    """Unix milliseconds, an ISO-8601 time, or a duration back from now (`30m`, `6h`, `2d`): kaon.durations."""
    try:
        return parse_point(value, now_ms())
    except DurationError as error:
        raise ConfigError(f"{option}: {error}") from None


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = width if total == 0 else int(width * done / total)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


def run_replay(settings: Settings, args: argparse.Namespace) -> int:
    conn = Database(DatabaseUrl.parse(settings.database_url), data_dir=settings.data_dir).conn()
    workspace = chosen_workspace(ConfigStore(conn), args.workspace)
    OutputStore(conn, workspace.id).output(args.output)
    since = parse_since(args.since)
    until = None if args.until is None else parse_since(args.until, "--until")
    jobs = replay(conn, workspace.id, args.output, since, dead_only=args.status == "dead", now_ms=now_ms(),
                  until_ms=until)
    total = len(jobs)
    print(f"replaying {total} jobs of output {args.output} since {since}", file=sys.stderr)
    if args.no_wait or total == 0:
        return 0
    deadline = time.monotonic() + args.timeout
    while True:
        waiting = still_queued(conn, jobs)
        done = total - waiting
        print(f"\r{_bar(done, total)}", end="", file=sys.stderr, flush=True)
        if done >= total:
            print(file=sys.stderr)
            return 0
        if time.monotonic() > deadline:
            print(f"\n{total - done} jobs still queued after {args.timeout}s (is `kaon serve` running?)",
                  file=sys.stderr)
            return 1
        time.sleep(0.2)
