"""The PostgreSQL destination against a real throwaway cluster."""

import copy
import itertools
from collections.abc import Iterator
from typing import Any

import msgspec
import psycopg
import pytest

from destinations.audience_conformance import member
from destinations.conformance import DestinationConformance
from kaon.activation.membership import DELETE
from kaon.destinations.event import DeliveryEvent
from kaon.destinations.outcome import Outcome
from kaon.destinations.registry import destinations
from support.events import custom, every_kind, purchase, screen
from support.postgres import PostgresCluster, free_port, running_cluster

_schemas = itertools.count()


@pytest.fixture(scope="session")
def cluster() -> Iterator[PostgresCluster]:
    with running_cluster() as running:
        yield running


@pytest.fixture
def schema() -> str:
    """A schema of the test's own, so tests sharing the cluster do not see each other's tables."""
    return f"t{next(_schemas)}"


def deliver(destination: Any, events: list[DeliveryEvent], **settings: Any) -> list[Outcome]:
    results = destination.deliver(events, destination.parse_settings(settings))
    assert len(results) == len(events)
    return [r.outcome for r in results]


def query(cluster: PostgresCluster, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(cluster.dsn()) as conn:
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def columns(cluster: PostgresCluster, schema: str, table: str = "events") -> dict[str, str]:
    found = query(cluster, "SELECT column_name, data_type FROM information_schema.columns"
                           " WHERE table_schema = %s AND table_name = %s", schema, table)
    return {name: kind for name, kind in found}


class TestPostgres(DestinationConformance):
    name = "postgres"

    def settings(self, base_url: str) -> dict[str, Any]:
        return {"dsn": "postgresql://kaon:secret@db.internal/analytics", "schema": "kaon"}

    # The HTTP conformance tests, in their database equivalents.

    def test_settings_are_documented_and_have_a_base_url(self) -> None:
        schema = self.destination.settings_schema()
        props = schema["$defs"][schema["$ref"].split("/")[-1]]["properties"]
        assert "base_url" not in props and "dsn" in props, "a database destination names a DSN"
        for field, spec in props.items():
            assert spec.get("title") and spec.get("description"), f"setting {field} needs title and description"
        assert self.destination.title and self.destination.description and self.destination.category

    def test_transform_is_pure(self, cluster: PostgresCluster, schema: str) -> None:
        """`deliver` replaces `transform`: it leaves the events as they were."""
        events = every_kind()
        before = copy.deepcopy([msgspec.to_builtins(e) for e in events])
        assert deliver(self.destination, events, dsn=cluster.dsn(), schema=schema) == [Outcome.DELIVERED] * 4
        assert [msgspec.to_builtins(e) for e in events] == before

    def test_requests_go_to_the_base_url_and_cover_events_once(self, cluster: PostgresCluster, schema: str) -> None:
        deliver(self.destination, every_kind(), dsn=cluster.dsn(), schema=schema)
        assert query(cluster, f"SELECT event_id FROM {schema}.events ORDER BY event_id") == [(1,), (2,), (3,), (4,)]

    def test_delivers_to_the_vendor(self, cluster: PostgresCluster, schema: str) -> None:
        """Rows read back through psycopg (no psql) hold the standard columns."""
        events = every_kind()
        deliver(self.destination, events, dsn=cluster.dsn(), schema=schema)
        got = query(cluster, "SELECT source_message_id, event_type, event_name, mpid, identities, data,"
                             f" timestamp_ms, extract(epoch FROM \"timestamp\") * 1000 FROM {schema}.events"
                             " ORDER BY event_id")
        assert [(r[1], r[2]) for r in got] == [("custom_event", "Clicked Button"), ("screen_view", "Home"),
                                               ("commerce_event", "purchase"), ("user_attribute_change", None)]
        first = got[0]
        assert first[0] == events[0].source_message_id and first[3] == "8675310"
        assert first[4]["email"] == "jane@example.com" and first[5]["custom_event_type"] == "navigation"
        assert first[6] == events[0].timestamp_ms == int(first[7])

    def test_retry_classes(self, cluster: PostgresCluster, schema: str) -> None:
        """A server that does not answer is retried; bad credentials and a missing database abort."""
        down = f"postgresql://postgres:x@127.0.0.1:{free_port()}/kaon"
        assert deliver(self.destination, [custom()], dsn=down, schema=schema) == [Outcome.RETRY]
        for dsn in (cluster.dsn(password="wrong"), cluster.dsn(user="nobody"), cluster.dsn(database="nodb")):
            assert deliver(self.destination, [custom()], dsn=dsn, schema=schema) == [Outcome.ABORT], dsn

    # PostgreSQL proper.

    def test_attributes_become_typed_columns(self, cluster: PostgresCluster, schema: str) -> None:
        deliver(self.destination, [custom(1, attributes={"Plan Name": "pro", "seats": 3, "trial": True,
                                                         "tags": ["a", "b"], "event_type": "x"})],
                dsn=cluster.dsn(), schema=schema)
        got = columns(cluster, schema)
        assert {k: got[k] for k in ("plan_name", "seats", "trial", "tags", "attr_event_type")} == {
            "plan_name": "text", "seats": "double precision", "trial": "boolean", "tags": "jsonb",
            "attr_event_type": "text"}
        assert query(cluster, f"SELECT plan_name, seats, trial, tags, attr_event_type, event_type"
                              f" FROM {schema}.events") == [("pro", 3.0, True, ["a", "b"], "x", "custom_event")]

    def test_a_new_attribute_adds_a_column(self, cluster: PostgresCluster, schema: str) -> None:
        deliver(self.destination, [custom(1, attributes={"color": "blue"})], dsn=cluster.dsn(), schema=schema)
        assert "size" not in columns(cluster, schema)
        deliver(self.destination, [custom(2, attributes={"color": "red", "size": 42})],
                dsn=cluster.dsn(), schema=schema)
        assert columns(cluster, schema)["size"] == "double precision"
        assert query(cluster, f"SELECT color, size FROM {schema}.events ORDER BY event_id") == [
            ("blue", None), ("red", 42.0)]

    def test_columns_over_the_cap_abort_only_the_events_that_need_them(self, cluster: PostgresCluster,
                                                                      schema: str) -> None:
        wide = custom(2, attributes={f"a{i}": i for i in range(40)})
        results = self.destination.deliver(
            [custom(1, attributes={"color": "blue"}), wide, custom(3, attributes={"color": "red"})],
            self.destination.parse_settings({"dsn": cluster.dsn(), "schema": schema, "max_columns": 32}))
        assert [r.outcome for r in results] == [Outcome.DELIVERED, Outcome.ABORT, Outcome.DELIVERED]
        assert "max_columns" in results[1].message and "TooManyColumns" in results[1].message
        assert len(columns(cluster, schema)) <= 32
        assert query(cluster, f"SELECT color FROM {schema}.events ORDER BY event_id") == [("blue",), ("red",)]

    def test_the_default_cap_is_documented_and_bounded(self) -> None:
        schema = self.destination.settings_schema()
        props = schema["$defs"][schema["$ref"].split("/")[-1]]["properties"]["max_columns"]
        assert (props["default"], props["maximum"]) == (400, 1600)
        with pytest.raises(msgspec.ValidationError):
            self.destination.parse_settings({"dsn": "x", "max_columns": 1601})

    def test_postgresqls_own_column_limit_aborts_instead_of_retrying(self, cluster: PostgresCluster,
                                                                    schema: str) -> None:
        assert deliver(self.destination, [custom(1, attributes={"color": "blue"})], dsn=cluster.dsn(),
                       schema=schema, max_columns=1600) == [Outcome.DELIVERED]
        # Dropped columns still count toward PostgreSQL's 1600: the table looks small but takes no new column.
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            used = len(columns(cluster, schema))
            adds = ", ".join(f"ADD COLUMN filler_{i} int" for i in range(1600 - used))
            conn.execute(f"ALTER TABLE {schema}.events {adds}")
            drops = ", ".join(f"DROP COLUMN filler_{i}" for i in range(1600 - used))
            conn.execute(f"ALTER TABLE {schema}.events {drops}")
        results = self.destination.deliver(
            [custom(2, attributes={"color": "red", "size": 4}), custom(3, attributes={"color": "green"})],
            self.destination.parse_settings({"dsn": cluster.dsn(), "schema": schema, "max_columns": 1600}))
        assert [r.outcome for r in results] == [Outcome.ABORT, Outcome.DELIVERED]
        assert "1600 columns" in results[0].message

    def test_type_conflicts_keep_the_column_and_use_text(self, cluster: PostgresCluster, schema: str) -> None:
        deliver(self.destination, [custom(1, attributes={"label": "a", "count": 1, "meta": {"k": 1}})],
                dsn=cluster.dsn(), schema=schema)
        deliver(self.destination, [custom(2, attributes={"label": 7, "count": "many", "meta": "plain"})],
                dsn=cluster.dsn(), schema=schema)
        got = columns(cluster, schema)
        assert (got["label"], got["count"], got["count_str"], got["meta"]) == (
            "text", "double precision", "text", "jsonb")
        assert "label_str" not in got and "meta_str" not in got
        assert query(cluster, f"SELECT label, count, count_str, meta FROM {schema}.events ORDER BY event_id") == [
            ("a", 1.0, None, {"k": 1}), ("7", None, "many", "plain")]

    def test_table_per_event_type(self, cluster: PostgresCluster, schema: str) -> None:
        deliver(self.destination, every_kind(), dsn=cluster.dsn(), schema=schema, mode="table_per_event_type")
        tables = query(cluster, "SELECT table_name FROM information_schema.tables WHERE table_schema = %s"
                                " ORDER BY 1", schema)
        assert tables == [("commerce_event",), ("custom_event",), ("screen_view",), ("user_attribute_change",)]
        assert query(cluster, f"SELECT event_name, color FROM {schema}.custom_event") == [("Clicked Button", "blue")]
        assert "color" not in columns(cluster, schema, "screen_view")

    def test_redelivery_writes_no_duplicates(self, cluster: PostgresCluster, schema: str) -> None:
        deliver(self.destination, [custom(1), screen(2)], dsn=cluster.dsn(), schema=schema)
        again = deliver(self.destination, [screen(2), custom(1), purchase(3)], dsn=cluster.dsn(), schema=schema)
        assert again == [Outcome.DELIVERED] * 3
        assert query(cluster, f"SELECT event_id FROM {schema}.events ORDER BY event_id") == [(1,), (2,), (3,)]

    def test_one_transaction_per_batch(self, cluster: PostgresCluster, schema: str) -> None:
        """An event PostgreSQL refuses (here by a CHECK added by hand) rolls its batch back; the batch is then
        written event by event, so only that event aborts."""
        deliver(self.destination, [custom(1)], dsn=cluster.dsn(), schema=schema)
        query(cluster, f"ALTER TABLE {schema}.events ADD CONSTRAINT named CHECK (event_name <> 'Bad')")
        outcomes = deliver(self.destination, [custom(2), custom(3, name="Bad"), custom(4)],
                           dsn=cluster.dsn(), schema=schema)
        assert outcomes == [Outcome.DELIVERED, Outcome.ABORT, Outcome.DELIVERED]
        assert query(cluster, f"SELECT event_id FROM {schema}.events ORDER BY event_id") == [(1,), (2,), (4,)]

    def test_missing_rights_abort(self, cluster: PostgresCluster, schema: str) -> None:
        cluster.sql("DO $$ BEGIN CREATE ROLE reader LOGIN PASSWORD 'reader'; "
                    "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
        dsn = cluster.dsn(user="reader", password="reader")
        assert deliver(self.destination, [custom()], dsn=dsn, schema=schema) == [Outcome.ABORT]
        deliver(self.destination, [custom(1)], dsn=cluster.dsn(), schema=schema)
        cluster.sql(f"GRANT USAGE ON SCHEMA {schema} TO reader; GRANT SELECT, INSERT ON {schema}.events TO reader")
        # SELECT and INSERT suffice for known columns (ON CONFLICT reads the key); a new attribute needs ALTER
        # TABLE, which only the owner may run.
        results = self.destination.deliver([custom(2)], self.destination.parse_settings({"dsn": dsn, "schema": schema}))
        assert results is not None and [r.outcome for r in results] == [Outcome.DELIVERED], results
        assert deliver(self.destination, [custom(3, attributes={"fresh": 1})], dsn=dsn, schema=schema) == [
            Outcome.ABORT]

    def test_a_restarted_server_is_reconnected(self, cluster: PostgresCluster, schema: str) -> None:
        deliver(self.destination, [custom(1)], dsn=cluster.dsn(), schema=schema)
        cluster.stop()
        try:
            assert deliver(self.destination, [custom(2)], dsn=cluster.dsn(), schema=schema) == [Outcome.RETRY]
        finally:
            cluster.start()
        assert deliver(self.destination, [custom(3)], dsn=cluster.dsn(), schema=schema) == [Outcome.DELIVERED]
        # A restart between two batches cuts the idle connection: the next batch reconnects at once.
        cluster.stop()
        cluster.start()
        assert deliver(self.destination, [custom(4)], dsn=cluster.dsn(), schema=schema) == [Outcome.DELIVERED]
        assert query(cluster, f"SELECT event_id FROM {schema}.events ORDER BY event_id") == [(1,), (3,), (4,)]


def test_audience_members_are_kept_in_a_table_and_every_change_logged(cluster: PostgresCluster, schema: str) -> None:
    postgres = destinations()["postgres"]
    changes = [member(1, customer_id="a"), member(2, customer_id="b", email="b@example.com"), member(1, DELETE),
               custom(9)]
    assert deliver(postgres, changes, dsn=cluster.dsn(), schema=schema) == [Outcome.DELIVERED] * 4
    # Delivered again (a retry after a lost answer): nothing changes twice.
    assert deliver(postgres, changes[:3], dsn=cluster.dsn(), schema=schema) == [Outcome.DELIVERED] * 3
    members = query(cluster, f"SELECT audience_id, audience_name, mpid, identities FROM {schema}.audience_memberships")
    assert members == [("aud_1", "Cart abandoners", "8675311", {"customer_id": "b", "email": "b@example.com"})]
    log = query(cluster, f"SELECT source_message_id, mpid, action, cause FROM {schema}.audience_membership_changes"
                         " ORDER BY source_message_id")
    assert log == [("acn_1-1-add", "8675310", "add", "event"), ("acn_1-1-delete", "8675310", "delete", "event"),
                   ("acn_1-2-add", "8675311", "add", "event")]
    assert query(cluster, f"SELECT count(*) FROM {schema}.events") == [(1,)], "the ordinary event went to events"
