"""Stream lifecycle (extension 0.4.0) against a real server: soft delete,
tombstones, truncation, retention, purge, erasure, redaction, lifecycle
events in the global log, and the privilege the destructive functions
need."""

from __future__ import annotations

import datetime
import time
import uuid

import psycopg
import pytest
from psycopg import sql

import event_store_client as es


@pytest.fixture(autouse=True, scope="module")
def needs_lifecycle(db):
    # A server without the lifecycle functions fails these tests rather than
    # skipping them, so that a run against the wrong build cannot pass
    # unnoticed.
    with db.connect_direct() as conn:
        version, present = conn.execute(
            "SELECT extversion, to_regprocedure('event_store.delete_stream(text,bigint)') IS NOT NULL"
            " FROM pg_extension WHERE extname = 'event_store'").fetchone()
    if tuple(int(p) for p in version.split(".")) < (0, 4, 0):
        pytest.fail(f"stream lifecycle needs event_store 0.4.0 or later, not {version}")
    if not present:
        pytest.fail(f"the installed event_store {version} has no event_store.delete_stream")


def append(conn, sid, expected, count, start=1):
    events = [es.Event("T", {"n": n}, id=es.new_event_id()) for n in range(start, start + count)]
    return es.append_to_stream(conn, sid, expected, events), events


def versions(conn, sid, **kwargs):
    return [e.version for e in es.read_stream(conn, sid, **kwargs)]


def stored_rows(conn, sid):
    return conn.execute("SELECT count(*) FROM event_store.events WHERE stream_id = %s",
                        (sid,)).fetchone()[0]


def last_position(conn):
    return conn.execute("SELECT coalesce(max(global_position), 0) FROM event_store.events"
                        ).fetchone()[0]


def read_all_after(conn, position):
    out = []
    while True:
        page = es.read_all(conn, position, 1000)
        out.extend(page)
        if len(page) < 1000:
            return out
        position = page[-1].global_position


def test_delete_then_append_expecting_no_stream_continues_at_head_plus_one(conn, stream):
    sid = stream("lc")
    append(conn, sid, es.NO_STREAM, 3)
    assert es.delete_stream(conn, sid, 3) == 3
    assert versions(conn, sid) == []
    assert es.stream_version(conn, sid) == 3          # versions are never reused

    with pytest.raises(es.WrongExpectedVersion):
        es.append_to_stream(conn, sid, es.STREAM_EXISTS, [es.Event("T", 0)])

    assert es.append_to_stream(conn, sid, es.NO_STREAM, [es.Event("New", {"n": 4})]) == 4
    assert es.append_to_stream(conn, sid, 4, [es.Event("New", {"n": 5})]) == 5
    events = list(es.read_stream(conn, sid))
    assert [(e.version, e.type) for e in events] == [(4, "New"), (5, "New")]
    assert versions(conn, sid, backward=True) == [5, 4]
    assert versions(conn, sid, from_version=1) == [4, 5]

    info = es.stream_info(conn, sid)
    assert (info.version, info.first_visible_version, info.tombstoned) == (5, 4, False)


def test_delete_with_the_head_as_expected_and_again(conn, stream):
    sid = stream("lc")
    append(conn, sid, es.NO_STREAM, 2)
    assert es.delete_stream(conn, sid, es.ANY) == 2
    assert es.delete_stream(conn, sid, es.ANY) == 2    # already deleted: the head
    assert es.append_to_stream(conn, sid, 2, [es.Event("T", 3)]) == 3
    assert versions(conn, sid) == [3]
    empty = stream("lc")
    assert es.delete_stream(conn, empty, es.NO_STREAM) == 0
    assert es.append_to_stream(conn, empty, es.NO_STREAM, [es.Event("T", 1)]) == 1


def test_delete_with_a_wrong_expected_version(conn, stream):
    sid = stream("lc")
    append(conn, sid, es.NO_STREAM, 3)
    with pytest.raises(es.WrongExpectedVersion) as caught:
        es.delete_stream(conn, sid, 2)
    assert (caught.value.expected, caught.value.actual, caught.value.stream_id) == (2, 3, sid)
    assert versions(conn, sid) == [1, 2, 3]
    with pytest.raises(es.WrongExpectedVersion):
        es.delete_stream(conn, sid, es.NO_STREAM)
    with pytest.raises(es.WrongExpectedVersion) as caught:
        es.delete_stream(conn, stream("lc"), es.STREAM_EXISTS)
    assert caught.value.actual == 0
    assert es.delete_stream(conn, sid, es.STREAM_EXISTS) == 3


def test_a_retry_of_an_append_stored_before_a_delete_is_a_repeat(conn, stream):
    sid = stream("lc")
    _, events = append(conn, sid, es.NO_STREAM, 2)
    es.delete_stream(conn, sid, 2)
    assert es.append_to_stream(conn, sid, es.NO_STREAM, events) == 2   # the first call's version
    assert versions(conn, sid) == []
    assert es.stream_version(conn, sid) == 2


def test_delete_removes_snapshots(conn, stream):
    sid = stream("lc")
    append(conn, sid, es.NO_STREAM, 2)
    es.save_snapshot(conn, sid, 2, {"total": 2})
    es.delete_stream(conn, sid, 2)
    assert es.read_snapshot(conn, sid) is None


def test_tombstone_then_every_append_is_refused(conn, stream):
    sid = stream("lc")
    _, events = append(conn, sid, es.NO_STREAM, 3)
    before = last_position(conn)
    assert es.tombstone_stream(conn, sid, 3) == 3
    (tombstoned,) = [e for e in read_all_after(conn, before) if es.is_lifecycle_event(e)]
    assert tombstoned.type == "$tombstoned"
    assert tombstoned.data == {"stream_id": sid, "version": 3, "events_removed": 3}
    assert stored_rows(conn, sid) == 0
    assert versions(conn, sid) == []

    for expected in (es.NO_STREAM, 3, es.ANY, es.STREAM_EXISTS):
        with pytest.raises(es.StreamTombstoned) as caught:
            es.append_to_stream(conn, sid, expected, [es.Event("T", 4)])
        error = caught.value
        assert error.sqlstate == "VE003"
        assert error.stream_id == sid
        assert isinstance(error, es.EventStoreError)
        assert not es.is_transient(error)
    # A repeat of the append stored before the tombstone, with the same ids.
    with pytest.raises(es.StreamTombstoned):
        es.append_to_stream(conn, sid, es.NO_STREAM, events)
    with pytest.raises(es.StreamTombstoned):
        es.append_to_stream(conn, sid, es.ANY, [])
    with pytest.raises(es.StreamTombstoned):
        es.save_snapshot(conn, sid, 3, {})
    with pytest.raises(es.StreamTombstoned):
        es.delete_stream(conn, sid, es.ANY)
    with pytest.raises(es.StreamTombstoned):
        es.truncate_stream(conn, sid, 2)
    with pytest.raises(es.StreamTombstoned):
        es.set_stream_retention(conn, sid, max_count=1)
    assert es.tombstone_stream(conn, sid, es.ANY) == 0
    info = es.stream_info(conn, sid)
    assert (info.tombstoned, info.version) == (True, 3)


def test_an_append_stored_before_the_tombstone_retried_with_the_same_ids(conn, stream):
    sid = stream("lc")
    paid = [es.Event("Paid", {"amount": 10}, id=es.new_event_id())]
    assert es.append_to_stream(conn, sid, es.NO_STREAM, paid) == 1
    assert es.append_to_stream(conn, sid, es.NO_STREAM, paid) == 1   # a repeat, before
    es.tombstone_stream(conn, sid, 1)
    with pytest.raises(es.StreamTombstoned) as caught:
        es.append_to_stream(conn, sid, es.NO_STREAM, paid)
    assert caught.value.stream_id == sid


def test_ve003_from_your_own_sql_is_a_stream_tombstoned(conn, stream):
    sid = stream("lc")
    es.tombstone_stream(conn, sid, es.NO_STREAM)
    with pytest.raises(es.StreamTombstoned) as caught:
        conn.execute("SELECT event_store.append_event(%s, -2, 'T', '{}')", (sid,))
    assert caught.value.stream_id == sid


def test_tombstone_a_stream_without_events_and_a_wrong_expected_version(conn, stream):
    sid = stream("lc")
    assert es.tombstone_stream(conn, sid, es.NO_STREAM) == 0
    with pytest.raises(es.StreamTombstoned):
        es.append_to_stream(conn, sid, es.NO_STREAM, [es.Event("T", 1)])
    other = stream("lc")
    append(conn, other, es.NO_STREAM, 2)
    with pytest.raises(es.WrongExpectedVersion):
        es.tombstone_stream(conn, other, 1)
    assert es.stream_info(conn, other).tombstoned is False
    assert versions(conn, other) == [1, 2]


def test_handle_command_does_not_retry_a_tombstoned_stream(conn, stream):
    sid = stream("lc")
    append(conn, sid, es.NO_STREAM, 1)
    es.tombstone_stream(conn, sid, es.ANY)
    decided = []

    def decide(state):
        decided.append(state)
        return [es.Event("T", {})]

    with pytest.raises(es.StreamTombstoned):
        es.handle_command(conn, sid, 0, lambda s, e: s + 1, decide, max_attempts=5,
                          sleep=lambda _: None)
    assert decided == [0]


def test_truncate_and_stream_info(conn, stream):
    sid = stream("lc")
    append(conn, sid, es.NO_STREAM, 10)
    fresh = es.stream_info(conn, sid)
    assert isinstance(fresh, es.StreamInfo)
    assert (fresh.version, fresh.first_visible_version, fresh.max_count, fresh.max_age,
            fresh.tombstoned) == (10, 1, None, None, False)

    assert es.truncate_stream(conn, sid, 4) == 4
    assert versions(conn, sid) == [4, 5, 6, 7, 8, 9, 10]
    assert versions(conn, sid, backward=True) == [10, 9, 8, 7, 6, 5, 4]
    info = es.stream_info(conn, sid)
    assert (info.version, info.first_visible_version, info.truncate_before) == (10, 4, 4)
    assert es.stream_version(conn, sid) == 10

    with pytest.raises(es.InvalidInput) as caught:
        es.truncate_stream(conn, sid, 3)                  # lowering
    assert caught.value.sqlstate == "22023"
    assert caught.value.stream_id == sid
    with pytest.raises(es.InvalidInput):
        es.truncate_stream(conn, sid, 12)                 # beyond head + 1
    assert es.stream_info(conn, sid).first_visible_version == 4

    assert es.truncate_stream(conn, sid, 11) == 11
    assert versions(conn, sid) == []
    assert es.append_to_stream(conn, sid, 10, [es.Event("T", 11)]) == 11
    assert versions(conn, sid) == [11]


def test_stream_info_of_a_stream_that_does_not_exist(conn, stream):
    info = es.stream_info(conn, stream("lc"))
    assert (info.version, info.first_visible_version, info.max_count, info.max_age,
            info.tombstoned) == (0, 1, None, None, False)


def test_retention_max_count_hides_old_events(conn, stream):
    sid = stream("lc")
    append(conn, sid, es.NO_STREAM, 10)
    assert es.set_stream_retention(conn, sid, max_count=3) is None
    assert versions(conn, sid) == [8, 9, 10]
    info = es.stream_info(conn, sid)
    assert (info.max_count, info.max_age, info.first_visible_version) == (3, None, 8)
    es.append_to_stream(conn, sid, 10, [es.Event("T", 11)])
    assert versions(conn, sid) == [9, 10, 11]
    es.set_stream_retention(conn, sid, 5)                 # raised before a purge
    assert versions(conn, sid) == [7, 8, 9, 10, 11]
    es.set_stream_retention(conn, sid)                    # cleared
    assert len(versions(conn, sid)) == 11
    info = es.stream_info(conn, sid)
    assert (info.max_count, info.first_visible_version) == (None, 1)


def test_retention_max_age_as_timedelta_or_str(conn, stream):
    sid = stream("lc")
    append(conn, sid, es.NO_STREAM, 3)
    es.set_stream_retention(conn, sid, max_age="90 days")
    info = es.stream_info(conn, sid)
    assert (info.max_age, info.max_count) == (datetime.timedelta(days=90), None)
    assert versions(conn, sid) == [1, 2, 3]
    es.set_stream_retention(conn, sid, 2, datetime.timedelta(hours=1))
    info = es.stream_info(conn, sid)
    assert (info.max_age, info.max_count) == (datetime.timedelta(hours=1), 2)
    assert versions(conn, sid) == [2, 3]
    es.set_stream_retention(conn, sid, max_age=datetime.timedelta(milliseconds=5))
    time.sleep(0.05)
    assert versions(conn, sid) == []
    assert es.stream_info(conn, sid).max_age == datetime.timedelta(milliseconds=5)
    with pytest.raises(es.InvalidInput) as caught:
        es.set_stream_retention(conn, sid, max_age="0 seconds")
    assert caught.value.sqlstate == "22023"
    with pytest.raises(psycopg.DataError):
        es.set_stream_retention(conn, sid, max_age="ninety days")


def test_purge_returns_a_count(conn, stream):
    kept = stream("lc")
    append(conn, kept, es.NO_STREAM, 10)
    es.set_stream_retention(conn, kept, max_count=4)
    deleted = stream("lc")
    append(conn, deleted, es.NO_STREAM, 5)
    es.delete_stream(conn, deleted, 5)
    assert (stored_rows(conn, kept), stored_rows(conn, deleted)) == (10, 5)

    assert es.purge(conn, 2) == 2
    removed = 2
    while True:
        count = es.purge(conn, 1000)
        assert isinstance(count, int)
        if count == 0:
            break
        removed += count
    assert removed >= 11
    assert (stored_rows(conn, kept), stored_rows(conn, deleted)) == (4, 0)
    assert es.purge(conn) == 0
    es.set_stream_retention(conn, kept, max_count=100)   # purged events stay gone
    assert versions(conn, kept) == [7, 8, 9, 10]


def test_a_second_purge_while_one_is_running_returns_0_at_once(db, conn, stream):
    while es.purge(conn, 10000) > 0:                    # nothing hidden but this test's stream
        pass
    sid = stream("lc")
    append(conn, sid, es.NO_STREAM, 6)
    es.delete_stream(conn, sid, 6)
    with db.connect(autocommit=False) as holder, db.connect() as other:
        assert es.purge(holder, 1) == 1                 # holds its lock until it commits
        with other.transaction():
            # A purge that waited for the first would fail on this timeout.
            other.execute("SET LOCAL statement_timeout = 5000")
            assert es.purge(other, 1000) == 0
        assert stored_rows(conn, sid) == 6
        holder.commit()
    assert stored_rows(conn, sid) == 5
    assert es.purge(conn, 1000) == 5
    assert stored_rows(conn, sid) == 0


def test_erase_stream_removes_events_and_snapshots(conn, stream):
    sid = stream("lc")
    append(conn, sid, es.NO_STREAM, 3)
    es.save_snapshot(conn, sid, 3, {"total": 3})
    before = last_position(conn)
    assert es.erase_stream(conn, sid, "subject request 42") == 3
    assert stored_rows(conn, sid) == 0
    assert versions(conn, sid) == []
    assert es.read_snapshot(conn, sid) is None
    assert conn.execute("SELECT count(*) FROM event_store.snapshots WHERE stream_id = %s",
                        (sid,)).fetchone()[0] == 0
    audit = conn.execute("SELECT event_count, reason FROM event_store.erasures"
                         " WHERE stream_id = %s", (sid,)).fetchall()
    assert audit == [(3, "subject request 42")]
    assert es.stream_info(conn, sid).tombstoned is True
    with pytest.raises(es.StreamTombstoned):
        es.append_to_stream(conn, sid, es.ANY, [es.Event("T", 1)])
    erased = [e for e in read_all_after(conn, before)
              if es.is_lifecycle_event(e) and e.type == "$erased"]
    assert len(erased) == 1
    assert (erased[0].data["stream_id"], erased[0].data["events_removed"]) == (sid, 3)


def test_redact_event_keeps_version_type_and_id(conn, stream):
    sid = stream("lc")
    es.append_to_stream(conn, sid, es.NO_STREAM, [
        es.Event("CustomerRegistered", {"name": "Ann", "email": "ann@example.com"},
                 {"ip": "10.0.0.1"}),
        es.Event("CustomerMoved", {"city": "Oslo"}, {"ip": "10.0.0.2"}),
    ])
    first, second = es.read_stream(conn, sid)
    before = last_position(conn)
    position = es.redact_event(conn, str(first.id).upper(), "subject request 7",
                               {"name": "[redacted]"}, {"redacted": True})
    assert position == first.global_position
    after, untouched = es.read_stream(conn, sid)
    assert (after.global_position, after.version, after.type, after.id, after.created_at) == (
        first.global_position, 1, "CustomerRegistered", first.id, first.created_at)
    assert (after.data, after.metadata) == ({"name": "[redacted]"}, {"redacted": True})
    assert untouched == second
    (redacted,) = [e for e in read_all_after(conn, before) if es.is_lifecycle_event(e)]
    assert redacted.type == "$redacted"
    assert (redacted.data["stream_id"], redacted.data["event_id"], redacted.data["version"],
            redacted.data["global_position"]) == (sid, str(first.id), 1, first.global_position)
    assert isinstance(redacted.data["erasure_id"], int)
    assert es.redact_event(conn, second.id, "subject request 7") == second.global_position
    _, bare = es.read_stream(conn, sid)
    assert (bare.type, bare.data, bare.metadata) == ("CustomerMoved", {}, None)
    assert es.stream_version(conn, sid) == 2
    assert conn.execute("SELECT count(*) FROM event_store.erasures WHERE stream_id = %s"
                        " AND reason = 'subject request 7'", (sid,)).fetchone()[0] == 2

    with pytest.raises(psycopg.errors.NoDataFound):
        es.redact_event(conn, es.new_event_id(), "x")


def test_lifecycle_events_cannot_be_redacted_and_dollar_streams_are_refused(conn, stream):
    sid = stream("lc")
    append(conn, sid, es.NO_STREAM, 1)
    before = last_position(conn)
    es.delete_stream(conn, sid, 1)
    (deleted,) = [e for e in read_all_after(conn, before) if es.is_lifecycle_event(e)]
    with pytest.raises(es.InvalidInput) as caught:
        es.redact_event(conn, deleted.id, "x")
    assert caught.value.sqlstate == "22023"
    calls = [
        lambda: es.delete_stream(conn, "$lifecycle", es.ANY),
        lambda: es.tombstone_stream(conn, "$lifecycle", es.ANY),
        lambda: es.truncate_stream(conn, "$lifecycle", 1),
        lambda: es.set_stream_retention(conn, "$lifecycle", 1),
        lambda: es.erase_stream(conn, "$lifecycle", "x"),
        lambda: es.append_to_stream(conn, "$lifecycle", es.ANY, [es.Event("$deleted", {})]),
        lambda: es.append_to_stream(conn, "$mine", es.ANY, [es.Event("T", {})]),
        lambda: es.append_to_stream(conn, sid, es.ANY, [es.Event("$deleted", {})]),
    ]
    for call in calls:
        with pytest.raises(es.InvalidInput) as caught:
            call()
        assert caught.value.sqlstate == "22023"


def test_is_lifecycle_event_sees_the_deleted_event_in_read_all(conn, stream):
    sid = stream("lc")
    append(conn, sid, es.NO_STREAM, 2)
    before = last_position(conn)
    es.delete_stream(conn, sid, 2)
    es.append_to_stream(conn, sid, es.NO_STREAM, [es.Event("T", {"n": 3})])
    log = read_all_after(conn, before)
    lifecycle = [e for e in log if es.is_lifecycle_event(e)]
    assert len(lifecycle) == 1
    (deleted,) = lifecycle
    assert (deleted.stream_id, deleted.type) == ("$lifecycle", "$deleted")
    assert (deleted.data["stream_id"], deleted.data["version"],
            deleted.data["first_visible_version"]) == (sid, 2, 3)
    (appended,) = [e for e in log if e.stream_id == sid]
    assert appended.global_position > deleted.global_position
    assert not es.is_lifecycle_event(appended)
    # Also as the category $lifecycle.
    assert [e.id for e in es.read_category(conn, "$lifecycle", before)] == [deleted.id]

    es.truncate_stream(conn, sid, 4)
    es.set_stream_retention(conn, sid, 5, "1 day")
    more = [e for e in read_all_after(conn, appended.global_position) if es.is_lifecycle_event(e)]
    assert [e.type for e in more] == ["$truncated", "$retention"]
    assert (more[0].data["stream_id"], more[0].data["first_visible_version"]) == (sid, 4)
    assert more[1].data["max_count"] == 5
    assert isinstance(more[1].data["max_age"], str)


@pytest.fixture
def role(db):
    """A role made for the test (NOLOGIN), dropped after it."""
    name = f"es_lc_{uuid.uuid4().hex[:10]}"
    with db.connect_direct() as admin:
        admin.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with db.connect_direct() as admin:
            admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def test_a_role_without_delete_on_events_gets_42501(db, conn, stream, role):
    sid = stream("lc")
    append(conn, sid, es.NO_STREAM, 2)
    ident = sql.Identifier(role)
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA event_store TO {}").format(ident))
    conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA event_store TO {}").format(ident))
    conn.execute(sql.SQL("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA event_store TO {}")
                 .format(ident))

    with db.connect() as other:
        with pytest.raises(es.PermissionDenied) as caught:
            with other.transaction():
                other.execute(sql.SQL("SET LOCAL ROLE {}").format(ident))
                es.delete_stream(other, sid, es.ANY)
        assert caught.value.sqlstate == "42501"
        assert caught.value.stream_id == sid
        assert not es.is_transient(caught.value)
        assert versions(conn, sid) == [1, 2]

        # Without EXECUTE (PUBLIC has none): 42501 as well.
        conn.execute(sql.SQL("REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA event_store FROM {}")
                     .format(ident))
        with pytest.raises(es.PermissionDenied):
            with other.transaction():
                other.execute(sql.SQL("SET LOCAL ROLE {}").format(ident))
                es.tombstone_stream(other, sid, es.ANY)

        # With EXECUTE and DELETE on event_store.events, it goes through.
        conn.execute(sql.SQL("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA event_store TO {}")
                     .format(ident))
        conn.execute(sql.SQL("GRANT DELETE ON event_store.events TO {}").format(ident))
        with other.transaction():
            other.execute(sql.SQL("SET LOCAL ROLE {}").format(ident))
            assert es.delete_stream(other, sid, 2) == 2
    assert versions(conn, sid) == []
