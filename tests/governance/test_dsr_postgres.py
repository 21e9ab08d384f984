"""Erasure in a PostgreSQL output, against a real throwaway cluster: every table of the output's schema is
scrubbed of the person's rows (by mpid, event id or identity value), and another person's rows stay."""

from collections.abc import Iterator
from typing import Any

import msgspec
import psycopg
import pytest

from destinations.audience_conformance import member
from kaon.destinations.event import DeliveryEvent
from kaon.destinations.outcome import Outcome
from kaon.destinations.registry import destinations
from kaon.governance.dsr_erase import Subject
from kaon.governance.dsr_scrub import scrub_postgres
from kaon.store.outputs import Output
from support.events import custom, purchase, screen
from support.postgres import PostgresCluster, running_cluster

ADA = {"customer_id": "cust-ada-pg", "email": "ada.pg@example.org"}
BOB = {"customer_id": "cust-bob-pg", "email": "bob.pg@example.org"}


@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresCluster]:
    with running_cluster() as running:
        yield running


def person(events: list[DeliveryEvent], mpid: int, identities: dict[str, str]) -> list[DeliveryEvent]:
    return [msgspec.structs.replace(e, mpid=mpid, user_identities=dict(identities)) for e in events]


def rows(cluster: PostgresCluster, schema: str) -> list[tuple[Any, ...]]:
    """(table, mpid, event_id, identities text) of every row of every table in the schema."""
    found: list[tuple[Any, ...]] = []
    with psycopg.connect(cluster.dsn()) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,))]
        for table in tables:
            found += [(table, *r) for r in conn.execute(
                f'SELECT mpid, event_id, identities::text FROM "{schema}"."{table}"')]
    return found


@pytest.mark.parametrize("mode", ["events_table", "table_per_event_type"])
def test_erasure_removes_the_persons_rows_from_every_table(cluster: PostgresCluster, mode: str) -> None:
    schema = f"dsr_{mode}"
    settings = {"dsn": cluster.dsn(), "schema": schema, "mode": mode}
    postgres = destinations()["postgres"]
    ada = person([custom(1), screen(2), purchase(3)], 7001, ADA)
    # An event of Ada's found only by identity value (an anonymous profile's row that carries her email).
    stray = person([custom(4)], 7003, {"email": ADA["email"]})
    bob = person([custom(5), screen(6), purchase(7)], 7002, BOB)
    results = postgres.deliver(ada + stray + bob, postgres.parse_settings(settings))
    assert [r.outcome for r in results] == [Outcome.DELIVERED] * 7
    before = rows(cluster, schema)
    assert {r[1] for r in before} == {"7001", "7002", "7003"}
    if mode == "table_per_event_type":
        assert len({r[0] for r in before}) >= 3

    output = Output(id="out_pg", workspace_id="ws_test", name="warehouse", destination="postgres",
                    settings=settings, enabled=True, created_ms=0, updated_ms=0)
    subject = Subject(workspace_id="ws_test", mpids={7001}, identities={("email", ADA["email"]),
                                                                        ("customer_id", ADA["customer_id"])},
                      attribute_values=set(), event_ids=[1, 2, 3])
    assert scrub_postgres(output, subject) == 4

    after = rows(cluster, schema)
    assert {r[1] for r in after} == {"7002"} and sorted(r[2] for r in after) == [5, 6, 7]
    assert not [r for r in after if ADA["email"] in r[3] or ADA["customer_id"] in r[3]]
    assert all(BOB["email"] in r[3] for r in after)
    assert scrub_postgres(output, subject) == 0  # again: nothing left, no error


def test_erasure_also_removes_the_person_from_the_audience_tables(cluster: PostgresCluster) -> None:
    schema = "dsr_audiences"
    settings = {"dsn": cluster.dsn(), "schema": schema}
    postgres = destinations()["postgres"]
    changes = [msgspec.structs.replace(member(n, **ids), mpid=mpid)
               for n, (mpid, ids) in enumerate([(7001, ADA), (7002, BOB)])]
    assert [r.outcome for r in postgres.deliver(changes + person([custom(9)], 7001, ADA),
                                                postgres.parse_settings(settings))] == [Outcome.DELIVERED] * 3
    output = Output(id="out_pg", workspace_id="ws_test", name="warehouse", destination="postgres",
                    settings=settings, enabled=True, created_ms=0, updated_ms=0)
    subject = Subject(workspace_id="ws_test", mpids={7001}, identities={("email", ADA["email"])},
                      attribute_values=set(), event_ids=[9])
    assert scrub_postgres(output, subject) == 3  # the event, the membership and its change
    with psycopg.connect(cluster.dsn()) as conn:
        for table in ("audience_memberships", "audience_membership_changes"):
            left = conn.execute(f'SELECT mpid FROM "{schema}"."{table}"').fetchall()
            assert left == [("7002",)], table
