"""Concurrent first sightings of one identifier converge on exactly one profile.

Each writer has its own connection and transaction, as the process stage, the IDSync doors and a second
server process would. Threads share one process; the multiprocessing case uses `spawn`, so every writer
is a fresh interpreter that opens the store itself.
"""

import multiprocessing
import threading
from pathlib import Path

from kaon.identity.service import Identity as IdentityService
from kaon.store.config import ConfigStore
from kaon.store.db import Database, DatabaseUrl
from kaon.store.tx import transaction

WRITERS = 8

# Run by each spawned process through `exec` (a picklable builtin), so nothing depends on how pytest
# imported this module.
WORKER = '''
from kaon.identity.service import Identity
from kaon.store.db import Database, DatabaseUrl
from kaon.store.tx import transaction

def first_sighting(url, workspace_id, identities, start, out):
    conn = Database(DatabaseUrl.parse(url)).connect()
    start.wait(30)
    with transaction(conn):
        service = Identity(conn, workspace_id, actor="race", now_ms=1_000)
        result = service.resolver.resolve(identities, 1_000)
    out.put(result.mpid)

first_sighting(URL, WORKSPACE, IDENTITIES, START, OUT)
'''

IDENTITIES = [("customer_id", "c-race"), ("device_application_stamp", "d-race")]


def setup(tmp_path: Path) -> tuple[str, str]:
    url = f"sqlite:///{tmp_path}/k.db"
    conn = Database(DatabaseUrl.parse(url)).conn()
    return url, ConfigStore(conn).create_workspace("w").id


def profiles(url: str, workspace_id: str) -> tuple[list[int], list[tuple[str, str, int]]]:
    conn = Database(DatabaseUrl.parse(url)).connect()
    live = [int(r[0]) for r in conn.execute(
        "SELECT mpid FROM profiles WHERE workspace_id = ? AND merged_into IS NULL", (workspace_id,))]
    ids = [(t, v, int(m)) for t, v, m in conn.execute(
        "SELECT identity_type, value, mpid FROM identities WHERE workspace_id = ?", (workspace_id,))]
    return live, ids


def test_threads_converge_on_one_profile(tmp_path: Path) -> None:
    url, ws = setup(tmp_path)
    db = Database(DatabaseUrl.parse(url))
    barrier = threading.Barrier(WRITERS)
    got: list[int] = []
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            conn = db.connect()  # each thread its own connection
            # Half the writers see the identifiers in the other order.
            ids = IDENTITIES if n % 2 else list(reversed(IDENTITIES))
            barrier.wait(30)
            with transaction(conn):
                result = IdentityService(conn, ws, actor="race", now_ms=1_000).resolver.resolve(ids, 1_000)
            assert result is not None
            got.append(result.mpid)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(got) == WRITERS and len(set(got)) == 1
    live, ids = profiles(url, ws)
    assert live == [got[0]]
    assert sorted(ids) == sorted((t, v, got[0]) for t, v in IDENTITIES)


def test_processes_converge_on_one_profile(tmp_path: Path) -> None:
    url, ws = setup(tmp_path)
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=exec, args=(WORKER, {"URL": url, "WORKSPACE": ws, "IDENTITIES": IDENTITIES,
                                                     "START": start, "OUT": out}))
             for _ in range(WRITERS)]
    for p in procs:
        p.start()
    start.set()
    got = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert len(set(got)) == 1
    live, ids = profiles(url, ws)
    assert live == [got[0]]
    assert sorted(ids) == sorted((t, v, got[0]) for t, v in IDENTITIES)
