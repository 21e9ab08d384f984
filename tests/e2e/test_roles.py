"""Role processes on PostgreSQL: what each role serves, its health, and `kaon status` with leases and lag."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from support.server import KaonServer
from support.stores import PostgresStores
from support.waiting import eventually

from .test_cluster import cluster_module


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, postgres_stores: PostgresStores) -> Iterator[dict[str, Any]]:
    env = {"KAON_DATABASE_URL": postgres_stores.new_url(), "KAON_SECRET_KEY": Fernet.generate_key().decode(),
           "KAON_ROLE": "collect"}
    collect = KaonServer(tmp_path_factory.mktemp("collect"), env=env).start()
    bench = cluster_module()
    node_env = bench.kaon_env({k: v for k, v in env.items() if k != "KAON_ROLE"})
    process = bench.Node("process", tmp_path_factory.mktemp("process"), node_env).start()
    deliver = bench.Node("deliver", tmp_path_factory.mktemp("deliver"), node_env).start()
    yield {"collect": collect, "process": process, "deliver": deliver, "env": node_env}
    for node in (deliver, process):
        node.stop()
    collect.stop()


def health(url: str) -> dict[str, Any]:
    answer = httpx.get(f"{url}/api/v1/health", timeout=5)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def test_each_role_says_what_it_runs(cluster: dict[str, Any]) -> None:
    assert health(cluster["collect"].url) == {"status": "ok", "role": "collect",
                                              "parts": {"collect": "running", "process": "off", "deliver": "off"}}
    assert health(cluster["process"].url) == {"status": "ok", "role": "process",
                                              "parts": {"collect": "off", "process": "running", "deliver": "off"}}
    assert health(cluster["deliver"].url) == {"status": "ok", "role": "deliver",
                                              "parts": {"collect": "off", "process": "off", "deliver": "running"}}


def test_a_process_that_does_not_collect_refuses_events_with_a_code(cluster: dict[str, Any]) -> None:
    collect: KaonServer = cluster["collect"]
    for role in ("process", "deliver"):
        answer = httpx.post(f"{cluster[role].url}/v2/events", content=b"{}", headers=collect.basic())
        assert answer.status_code == 404
        assert answer.json()["errors"][0]["code"] == "NOT_A_COLLECT_PROCESS"


def status(env: dict[str, str], data_dir: Path) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "kaon", "status", "--json", "--data-dir", str(data_dir)],
                          capture_output=True, text=True, env={**os.environ, **env}, timeout=60, check=True)
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def test_status_lists_roles_leases_and_lag(cluster: dict[str, Any], tmp_path: Path) -> None:
    collect: KaonServer = cluster["collect"]
    body = {"environment": "production", "user_identities": {"customer_id": "status-user"},
            "events": [{"event_type": "custom_event", "data": {"event_name": "e", "custom_event_type": "other"}}]}
    assert httpx.post(f"{collect.url}/v2/events", json=body, headers=collect.basic()).status_code == 202

    def settled() -> dict[str, Any] | None:
        found = status(cluster["env"], tmp_path)
        live = [w for w in found["workers"] if w["live"]]
        done = all(p["lag"] == 0 for p in found["partitions"]) and sum(p["head"] for p in found["partitions"]) > 0
        return found if live and done else None

    found = eventually(settled, timeout=30, what="the event processed, no lag")
    assert found is not None
    assert {p["role"] for p in found["processes"] if p["state"] == "running"} == {"collect", "process", "deliver"}
    [worker] = [w for w in found["workers"] if w["live"]]
    assert worker["partitions"] == [p["partition"] for p in found["partitions"]]  # one worker holds them all
    assert {p["leased_by"] for p in found["partitions"]} == {worker["worker"]}


def test_a_role_whose_part_died_reports_degraded(cluster: dict[str, Any], tmp_path: Path) -> None:
    bench = cluster_module()
    node = bench.Node("deliver", tmp_path / "deliver", cluster["env"]).start()
    try:
        assert node.proc is not None
        children = Path(f"/proc/{node.proc.pid}/task/{node.proc.pid}/children").read_text().split()
        assert children, "the deliver role runs the delivery engine as a child process"
        for pid in children:
            os.kill(int(pid), 9)

        def degraded() -> dict[str, Any] | None:
            answer = httpx.get(f"{node.url}/api/v1/health", timeout=5)
            return answer.json() if answer.status_code == 503 else None

        found = eventually(degraded, timeout=30, what="health 503 once the delivery engine is gone")
        assert found == {"status": "degraded", "role": "deliver",
                         "parts": {"collect": "off", "process": "off", "deliver": "stopped"}}
    finally:
        node.stop()
