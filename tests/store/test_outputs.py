"""Outputs and connections in the config store: settings validated by the destination, references checked."""

from collections.abc import Iterator

import msgspec
import pytest

from kaon.errors import Conflict, NotFound
from kaon.store.config import ConfigStore
from kaon.store.db import Database
from kaon.store.outputs import OutputStore

HOOK = {"base_url": "https://example.com/hook"}


@pytest.fixture
def db(database: Database) -> Iterator[Database]:
    yield database


def a_workspace(db: Database, name: str = "main") -> tuple[OutputStore, str]:
    """A workspace's output store and the id of one of its inputs."""
    config = ConfigStore(db.conn())
    workspace = config.create_workspace(name)
    source = config.create_input(workspace.id, "server", "server").input
    return OutputStore(db.conn(), workspace.id), source.id


def test_create_read_update_delete_an_output(db: Database) -> None:
    store, _ = a_workspace(db)
    created = store.create_output("hook", "webhook", {**HOOK, "batch": True}, True)
    assert created.id.startswith("out_")
    assert store.output(created.id) == created
    assert (created.name, created.destination, created.settings, created.enabled) == (
        "hook", "webhook", {**HOOK, "batch": True}, True)
    updated = store.update_output(created.id, name="renamed", settings={"headers": {"X-Team": "data"}},
                                  enabled=False)
    # Settings are merged into the current ones, then validated as a whole.
    assert updated.settings == {**HOOK, "batch": True, "headers": {"X-Team": "data"}}
    assert (updated.name, updated.enabled) == ("renamed", False)
    assert store.output(created.id) == updated
    assert store.update_output(created.id).settings == updated.settings  # nothing given, nothing changed
    assert [o.id for o in store.outputs()] == [created.id]
    store.delete_output(created.id)
    assert store.outputs() == []
    with pytest.raises(NotFound):
        store.output(created.id)
    with pytest.raises(NotFound):
        store.delete_output(created.id)
    with pytest.raises(NotFound):
        store.update_output(created.id, enabled=True)


@pytest.mark.parametrize(("settings", "field"), [
    ({}, "base_url"),  # required
    ({"base_url": 7}, "$.base_url"),
    ({"base_url": "ftp://example.com"}, "$.base_url"),  # must be http(s)
    ({**HOOK, "batch": "yes"}, "$.batch"),
    ({**HOOK, "colour": "red"}, "colour"),  # unknown setting
])
def test_bad_settings_are_refused_with_the_field_named(db: Database, settings: dict[str, object],
                                                       field: str) -> None:
    store, _ = a_workspace(db)
    with pytest.raises(msgspec.ValidationError, match=field.replace("$", r"\$")):
        store.create_output("hook", "webhook", settings, True)
    assert store.outputs() == []


def test_a_bad_update_is_refused_and_changes_nothing(db: Database) -> None:
    store, _ = a_workspace(db)
    output = store.create_output("hook", "webhook", HOOK, True)
    with pytest.raises(msgspec.ValidationError, match=r"\$\.base_url"):
        store.update_output(output.id, name="new", settings={"base_url": "not a url"}, enabled=False)
    assert store.output(output.id) == output


def test_an_unknown_destination_is_not_found(db: Database) -> None:
    store, _ = a_workspace(db)
    with pytest.raises(NotFound, match="nope"):
        store.create_output("hook", "nope", {}, True)
    assert store.outputs() == []


def test_output_names_are_unique_within_a_workspace(db: Database) -> None:
    store, _ = a_workspace(db)
    first = store.create_output("hook", "webhook", HOOK, True)
    with pytest.raises(Conflict, match="hook"):
        store.create_output("hook", "webhook", HOOK, True)
    other, _ = a_workspace(db, "other")
    other.create_output("hook", "webhook", HOOK, True)  # another workspace may use the name
    second = store.create_output("hook-2", "webhook", HOOK, True)
    with pytest.raises(Conflict, match="hook"):
        store.update_output(second.id, name="hook")
    assert store.output(second.id).name == "hook-2"
    assert store.update_output(first.id, name="hook").name == "hook"  # keeping its own name is fine


def test_connections_need_an_existing_input_and_output_of_the_workspace(db: Database) -> None:
    store, input_id = a_workspace(db)
    other, other_input = a_workspace(db, "other")
    output = store.create_output("hook", "webhook", HOOK, True)
    foreign = other.create_output("hook", "webhook", HOOK, True)
    with pytest.raises(NotFound, match="in_missing"):
        store.create_connection("in_missing", output.id, True, {})
    with pytest.raises(NotFound, match="out_missing"):
        store.create_connection(input_id, "out_missing", True, {})
    with pytest.raises(NotFound):
        store.create_connection(other_input, output.id, True, {})  # another workspace's input
    with pytest.raises(NotFound):
        store.create_connection(input_id, foreign.id, True, {})  # another workspace's output
    assert store.connections() == []


def test_create_update_delete_a_connection(db: Database) -> None:
    store, input_id = a_workspace(db)
    output = store.create_output("hook", "webhook", HOOK, True)
    rules = {"filters": {"event_names": {"deny": ["noise"]}}, "sampling_percent": 50}
    connection = store.create_connection(input_id, output.id, True, rules)
    assert connection.id.startswith("con_")
    assert store.connection(connection.id) == connection
    assert (connection.input_id, connection.output_id, connection.rules) == (input_id, output.id, rules)
    assert store.connections(input_id) == [connection]
    assert store.connections("in_other") == []
    with pytest.raises(msgspec.ValidationError, match="sampling_percent"):
        store.update_connection(connection.id, rules={"sampling_percent": 101})
    with pytest.raises(msgspec.ValidationError, match="bogus"):
        store.create_connection(input_id, output.id, True, {"bogus": 1})
    assert store.connections() == [connection]
    updated = store.update_connection(connection.id, enabled=False)
    assert (updated.enabled, updated.rules) == (False, rules)
    assert store.update_connection(connection.id, rules={}).rules == {}
    store.delete_connection(connection.id)
    assert store.connections() == []
    with pytest.raises(NotFound):
        store.connection(connection.id)


def test_deleting_an_output_deletes_its_connections(db: Database) -> None:
    store, input_id = a_workspace(db)
    doomed = store.create_output("doomed", "webhook", HOOK, True)
    kept = store.create_output("kept", "webhook", HOOK, True)
    store.create_connection(input_id, doomed.id, True, {})
    survivor = store.create_connection(input_id, kept.id, True, {})
    store.delete_output(doomed.id)
    assert store.connections() == [survivor]


def test_another_workspace_cannot_see_or_change_an_output(db: Database) -> None:
    store, _ = a_workspace(db)
    other, _ = a_workspace(db, "other")
    output = store.create_output("hook", "webhook", HOOK, True)
    assert other.outputs() == []
    with pytest.raises(NotFound):
        other.output(output.id)
    with pytest.raises(NotFound):
        other.update_output(output.id, enabled=False)
    with pytest.raises(NotFound):
        other.delete_output(output.id)
    assert store.output(output.id) == output
