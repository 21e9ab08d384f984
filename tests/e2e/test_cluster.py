"""A cluster of role processes on one PostgreSQL: 2 collect + 2 process + 2 deliver, one of each killed -9.

The cluster is `bench/cluster.py` (also `scripts/cluster-demo.sh`); this runs it with fewer batches.
"""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from support.stores import PostgresStores

BENCH = Path(__file__).resolve().parents[2] / "bench" / "cluster.py"


def cluster_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kaon_bench_cluster", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_killing_one_process_of_each_role_loses_nothing_and_keeps_order(
        tmp_path: Path, postgres_stores: PostgresStores) -> None:
    cluster = cluster_module()
    report = cluster.run_cluster(postgres_stores.new_url(), tmp_path, users=60, batches=1200, timeout=240)
    assert report.killed == [k for k in report.killed if k.split()[0] in ("collect", "process", "deliver")]
    assert len(report.killed) == 3
    assert report.missing == 0 and report.stored_twice_or_more == 0
    assert report.stored_once == report.acknowledged == sum(1 + seq % 3 for seq in range(20)) * 60
    assert report.delivered_distinct == report.acknowledged
    assert report.requests_without_idempotency_key == 0
    assert report.order_breaks == 0
    assert report.profiles == 60
    assert report.identity_partition_equal


def test_the_order_check_sees_a_reordered_user() -> None:
    cluster = cluster_module()
    assert cluster.order_breaks(["u1:00000:0", "u1:00001:0", "u2:00000:0"]) == 0
    assert cluster.order_breaks(["u1:00001:0", "u1:00000:0"]) == 1
    assert cluster.order_breaks(["u1:00000:0", "u1:00000:0", "u1:00001:0"]) == 0  # a repeat is not a break


@pytest.mark.parametrize("role", ["collect", "process", "deliver"])
def test_a_role_process_needs_postgresql(role: str, tmp_path: Path) -> None:
    from kaon.settings import Settings

    with pytest.raises(ValueError, match="needs the store on PostgreSQL"):
        Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/kaon.db", role=role)
