"""Erasure reaches the rejections list's messages: refused aliases name a person's ids and profiles there."""

from pathlib import Path

from kaon.governance.dsr_erase import Subject, erase
from kaon.store.config import ConfigStore
from kaon.store.db import Database, DatabaseUrl
from kaon.store.metrics import MetricsStore
from kaon.store.tx import transaction


def test_rejections_naming_the_person_in_their_message_are_erased(tmp_path: Path) -> None:
    conn = Database(DatabaseUrl.parse(f"sqlite:///{tmp_path / 'k.db'}")).conn()
    ws = ConfigStore(conn).create_workspace("w").id
    metrics = MetricsStore(conn)
    for code, message in (
        ("ALIAS_REFUSED_UNKNOWN_PREVIOUS", "previousId 'Alice-Anon' is held by no profile: nothing was joined"),
        ("ALIAS_REFUSED_SAME_PROFILE", "previousId 'x-1' is already on profile 4242 (userId 'u')"),
        ("ALIAS_REFUSED_SAME_PROFILE", "previousId 'x-2' is already on profile 42420 (userId 'v')"),
        ("INVALID_TIMESTAMP", "`timestamp` \"soon\" is not a readable time"),
    ):
        metrics.record_rejection(workspace_id=ws, input_id="in_1", received_ms=1, status=200, code=code,
                                 message=message, count=1, body=b"{}")
    subject = Subject(workspace_id=ws, mpids={4242}, identities={("device_application_stamp", "alice-anon")},
                      attribute_values=set(), event_ids=[])
    with transaction(conn):
        counts = erase(conn, subject)
    assert counts["rejections"] == 2
    left = [m for (m,) in conn.execute("SELECT message FROM rejections ORDER BY id")]
    assert left == ["previousId 'x-2' is already on profile 42420 (userId 'v')",
                    "`timestamp` \"soon\" is not a readable time"]
