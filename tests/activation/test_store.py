"""The activation tables: identity updates are pruned per workspace, as far as its sync connections have read."""



from kaon.activation.store import ConnectionStore, IdentityUpdates
from kaon.audiences.store import Change, MemberStore
from kaon.store.config import ConfigStore
from support.pipeline import NOW, Pipeline


def a_connection(p: Pipeline, workspace_id: str, audience_id: str, mode: str, update_cursor: int) -> str:
    return ConnectionStore(p.db.conn(), workspace_id).create(
        audience_id=audience_id, audience_name="A", output_id="out_x", mode=mode, settings={}, change_cursor=0,
        member_cursor=None, update_cursor=update_cursor, now_ms=NOW).id


def test_a_quiet_connection_holds_back_only_its_own_workspaces_identity_updates(pipeline: Pipeline) -> None:
    conn = pipeline.db.conn()
    quiet = pipeline.workspace_id
    busy = ConfigStore(conn).create_workspace("busy").id
    alone = ConfigStore(conn).create_workspace("no connections").id
    updates = IdentityUpdates(conn)
    updates.note(quiet, [1, 2], NOW)  # ids 1, 2: the quiet connection (cursor 0) has not read them
    updates.note(busy, [3, 4], NOW)  # ids 3, 4
    updates.note(alone, [5], NOW)  # id 5: no sync connection wants it
    a_connection(pipeline, quiet, "aud_q", "sync", 0)
    a_connection(pipeline, busy, "aud_b", "sync", 3)  # has read id 3, not 4
    a_connection(pipeline, busy, "aud_t", "trigger", 0)  # a trigger reads no identity updates
    assert updates.prune() == 2
    assert pipeline.rows("SELECT workspace_id, mpid FROM audience_identity_updates ORDER BY id") == [
        (quiet, 1), (quiet, 2), (busy, 4)]
    assert updates.after(busy, 3, 10) == [(4, 4)]


def test_a_trace_reads_only_the_newest_changes_of_its_audience(pipeline: Pipeline) -> None:
    members = MemberStore(pipeline.db.conn(), pipeline.workspace_id)
    for n in range(5):
        members.record([Change("aud_a", 7, "enter" if n % 2 == 0 else "exit", NOW + n, "event"),
                        Change("aud_b", 7, "enter", NOW + n, "event")], NOW + n)
    newest = members.profile_changes(7, "aud_a", 2)
    assert [(c["audience_id"], c["action"], c["at_unixtime_ms"]) for c in newest] == [
        ("aud_a", "exit", NOW + 3), ("aud_a", "enter", NOW + 4)]
    assert len(members.profile_changes(7)) == 10
