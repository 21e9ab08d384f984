"""The catalog's owner: a data subject's example values erased, nobody else's touched."""

from pathlib import Path

from kaon.governance.catalog_store import erase_subject
from kaon.store.db import Database, DatabaseUrl
from kaon.store.sql import Conn
from kaon.store.subject import Subject

WS, OTHER = "ws_1", "ws_2"


def _examples(conn: Conn) -> set[tuple[str, str, str]]:
    return {(str(w), str(a), str(v)) for w, a, v in conn.execute(
        "SELECT workspace_id, attribute, value FROM catalog_examples")}


def test_erase_subject_deletes_the_persons_examples_only(tmp_path: Path) -> None:
    conn = Database(DatabaseUrl.parse("sqlite:///" + str(tmp_path / "kaon.db"))).conn()
    rows = [(ws, attribute, value) for ws in (WS, OTHER) for attribute, value in (
        ("email", "alice@x.com"),  # one of her identity values
        ("city", "Lyon"),  # one of her attribute values
        ("mpid", "1001"),  # one of her profiles
        ("contact", '{"to": "ALICE@x.com"}'),  # holds her identity as a JSON string
        ("email", "bob@x.com"), ("city", "Paris"), ("mpid", "10012"), ("contact", '{"to": "malice@x.com"}'))]
    conn.executemany("INSERT INTO catalog_examples (workspace_id, point_id, attribute, value, seen_ms)"
                     " VALUES (?, 'p1', ?, ?, 1)", rows)
    alice = Subject(workspace_id=WS, mpids={1001}, identities={("email", "alice@x.com")},
                    attribute_values={"Lyon"}, event_ids=[])
    assert erase_subject(conn, alice) == {"catalog_examples": 4}
    assert _examples(conn) == set(rows) - {(WS, "email", "alice@x.com"), (WS, "city", "Lyon"), (WS, "mpid", "1001"),
                                           (WS, "contact", '{"to": "ALICE@x.com"}')}
    assert erase_subject(conn, alice) == {"catalog_examples": 0}
