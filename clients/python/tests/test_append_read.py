"""Appends and reads against a real server, and the errors they raise."""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest

import event_store_client as es


def test_alice_and_bob(db, stream):
    """Both read version 5; Bob appends; Alice gets WrongExpectedVersion
    (expected 5, actual 6), re-reads and succeeds."""
    product = stream("prod")
    with db.connect() as setup:
        assert es.append_to_stream(setup, product, es.NO_STREAM, [
            es.Event("ProductCreated", {"name": "Espresso machine", "price": 249, "stock": 10})]) == 1
        assert es.append_to_stream(setup, product, 1, [
            {"type": "PriceChanged", "data": {"price": 239}},
            {"type": "StockChanged", "data": {"stock": 8}},
            {"type": "DescriptionChanged", "data": {"text": "15 bar pump"}},
            {"type": "StockChanged", "data": {"stock": 9}},
        ]) == 5

    with db.connect() as alice, db.connect() as bob:
        alice_saw = [e.version for e in es.read_stream(alice, product)][-1]
        bob_saw = es.stream_version(bob, product)
        assert alice_saw == bob_saw == 5

        assert es.append_to_stream(bob, product, bob_saw, [
            es.Event("StockChanged", {"stock": 4}, {"user": "bob"})]) == 6

        with pytest.raises(es.WrongExpectedVersion) as caught:
            es.append_to_stream(alice, product, alice_saw, [
                es.Event("PriceChanged", {"price": 199}, {"user": "alice"})])
        conflict = caught.value
        assert (conflict.stream_id, conflict.expected, conflict.actual) == (product, 5, 6)
        assert conflict.sqlstate == "VE001"
        assert isinstance(conflict, es.EventStoreError)
        assert es.stream_version(alice, product) == 6  # nothing was written

        missed = list(es.read_stream(alice, product, alice_saw + 1))
        assert [(e.version, e.type, e.metadata) for e in missed] == [
            (6, "StockChanged", {"user": "bob"})]
        assert es.append_to_stream(alice, product, missed[-1].version, [
            es.Event("PriceChanged", {"price": 199}, {"user": "alice"})]) == 7

    with db.connect() as conn:
        history = list(es.read_stream(conn, product))
    assert [e.version for e in history] == list(range(1, 8))
    assert history[-1].data == {"price": 199} and history[-1].stream_id == product


def test_expected_version_forms(conn, stream):
    sid = stream()
    with pytest.raises(es.WrongExpectedVersion) as caught:
        es.append_to_stream(conn, sid, es.STREAM_EXISTS, [es.Event("A", 1)])
    assert (caught.value.expected, caught.value.actual) == (-1, 0)
    assert es.append_to_stream(conn, sid, es.ANY, [es.Event("A", 1)]) == 1
    assert es.append_to_stream(conn, sid, es.STREAM_EXISTS, [es.Event("A", 2)]) == 2
    with pytest.raises(es.WrongExpectedVersion):
        es.append_to_stream(conn, sid, es.NO_STREAM, [es.Event("A", 3)])
    assert es.append_to_stream(conn, sid, 2, []) == 2  # an assertion that writes nothing
    assert es.append_to_stream(conn, sid, es.ANY, [es.Event("A", None)]) == 3


def test_read_stream_pages_forward_and_backward(conn, stream):
    sid = stream()
    es.append_to_stream(conn, sid, es.NO_STREAM,
                        [es.Event("N", {"n": n}) for n in range(1, 24)])
    assert [e.version for e in es.read_stream(conn, sid, page_size=5)] == list(range(1, 24))
    assert [e.data["n"] for e in es.read_stream(conn, sid, 20, page_size=2)] == [20, 21, 22, 23]
    assert [e.version for e in es.read_stream(conn, sid, backward=True, page_size=4)] == \
        list(range(23, 0, -1))
    assert [e.version for e in es.read_stream(conn, sid, 7, True, page_size=3)] == \
        list(range(7, 0, -1))
    assert [e.version for e in es.read_stream(conn, sid, 3, page_size=4, limit=6)] == \
        list(range(3, 9))
    assert [e.version for e in es.read_stream(conn, sid, page_size=23)] == list(range(1, 24))
    assert list(es.read_stream(conn, stream("unknown"))) == []
    assert es.stream_version(conn, stream("unknown")) == 0


def test_recorded_event_fields(conn, stream):
    sid = stream("shop")
    event_id = es.new_event_id()
    es.append_to_stream(conn, sid, es.NO_STREAM, [
        es.Event("Opened", {"a": [1, 2]}, {"trace": "t"}, event_id)])
    (event,) = es.read_stream(conn, sid)
    assert event.id == event_id and isinstance(event.id, uuid.UUID)
    assert (event.stream_id, event.version, event.type) == (sid, 1, "Opened")
    assert event.data == {"a": [1, 2]} and event.metadata == {"trace": "t"}
    assert event.global_position > 0 and event.created_at.tzinfo is not None


def test_repeat_with_same_ids_is_idempotent(conn, stream):
    sid = stream()
    batch = [es.Event("A", n, id=es.new_event_id()) for n in range(3)]
    assert es.append_to_stream(conn, sid, es.NO_STREAM, batch) == 3
    assert es.append_to_stream(conn, sid, es.NO_STREAM, batch) == 3  # a retry
    assert es.append_to_stream(conn, sid, es.ANY, batch) == 3
    assert es.stream_version(conn, sid) == 3


def test_event_already_stored_maps_ve002(conn, stream):
    sid = stream()
    first = es.Event("Paid", {"amount": 10}, id=es.new_event_id())
    es.append_to_stream(conn, sid, es.NO_STREAM, [first])
    es.append_to_stream(conn, sid, 1, [es.Event("Other", {})])
    with pytest.raises(es.EventAlreadyStored) as caught:
        es.append_to_stream(conn, sid, 2, [first])
    assert caught.value.event_id == first.id
    assert caught.value.version == 1
    assert caught.value.stream_id == sid
    assert caught.value.sqlstate == "VE002"
    # Raised for your own SQL too: the SQLSTATE is registered with psycopg.
    with pytest.raises(es.EventAlreadyStored):
        conn.execute("SELECT event_store.append_event(%s, 2, 'Paid', '{}', NULL, %s)",
                     (sid, first.id))


def test_duplicate_event_id_in_another_stream(conn, stream):
    event = es.Event("A", 1, id=es.new_event_id())
    es.append_to_stream(conn, stream(), es.NO_STREAM, [event])
    with pytest.raises(es.DuplicateEventId) as caught:
        es.append_to_stream(conn, stream(), es.NO_STREAM, [event])
    assert caught.value.event_id == event.id
    assert isinstance(caught.value, psycopg.errors.UniqueViolation)
    with pytest.raises(es.DuplicateEventId):
        es.append_to_stream(conn, stream(), es.NO_STREAM, [
            es.Event("A", 1, id=event.id.hex), es.Event("B", 2, id=event.id)])


def test_server_errors_are_translated(conn, stream):
    with pytest.raises(es.InvalidInput) as caught:
        es.append_to_stream(conn, stream(), 0, [es.Event("x" * 300, 1)])
    assert caught.value.sqlstate == "22001"
    with pytest.raises(es.InvalidInput) as caught:
        es.append_to_stream(conn, "s" * 1001, 0, [es.Event("A", 1)])
    assert caught.value.sqlstate == "22001"

    with pytest.raises(es.ReadOnly):
        with conn.transaction():
            conn.execute("SET TRANSACTION READ ONLY")
            es.append_to_stream(conn, stream(), 0, [es.Event("A", 1)])

    # Your own SQL: translate() gives the same classes.
    try:
        conn.execute("SELECT event_store.append_events('x', NULL, '[]')")
    except psycopg.Error as exc:
        original, error = exc, es.translate(exc)
    assert isinstance(error, es.InvalidInput) and error.sqlstate == "22004"
    assert error.__cause__ is original
    assert error.diag.message_primary == original.diag.message_primary


def test_a_lock_timeout_is_transient_and_a_statement_timeout_is_not(db, stream):
    sid = stream()
    with db.connect() as holder, db.connect() as waiter:
        with holder.transaction():
            es.append_to_stream(holder, sid, es.NO_STREAM, [es.Event("A", 1)])
            waiter.execute("SET lock_timeout = '100ms'")
            with pytest.raises(es.LockTimeout) as caught:
                es.append_to_stream(waiter, sid, es.ANY, [es.Event("B", 2)])
            assert isinstance(caught.value, es.TransientError)
            assert isinstance(caught.value, psycopg.errors.LockNotAvailable)
            waiter.execute("SET lock_timeout = 0")
            waiter.execute("SET statement_timeout = '100ms'")
            with pytest.raises(es.StatementCanceled) as caught:
                es.append_to_stream(waiter, sid, es.ANY, [es.Event("B", 2)])
            assert isinstance(caught.value, psycopg.errors.QueryCanceled)
            assert not isinstance(caught.value, es.TransientError)
            assert not es.is_transient(caught.value)
            waiter.execute("SET statement_timeout = 0")
    with db.connect() as conn:
        assert es.stream_version(conn, sid) == 1


def test_serialization_conflict(db, stream):
    sid = stream()
    with db.connect() as other, db.connect(autocommit=False) as conn:
        es.append_to_stream(other, sid, es.NO_STREAM, [es.Event("A", 1)])
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with pytest.raises(es.SerializationConflict):
            with conn.transaction():
                assert es.stream_version(conn, sid) == 1
                es.append_to_stream(other, sid, 1, [es.Event("B", 2)])
                es.append_to_stream(conn, sid, es.ANY, [es.Event("C", 3)])


def test_global_log_and_checkpoints(new_database):
    database = new_database()
    with database.connect() as conn:
        es.append_to_stream(conn, "acct-1", 0, [es.Event("A", n) for n in range(3)])
        es.append_to_stream(conn, "shop-1", 0, [es.Event("S", 0)])
        es.append_to_stream(conn, "acct-2", 0, [es.Event("A", 9)])
        everything = es.read_all(conn)
        assert [e.stream_id for e in everything] == ["acct-1"] * 3 + ["shop-1", "acct-2"]
        positions = [e.global_position for e in everything]
        assert positions == sorted(positions)
        assert es.read_all(conn, positions[1], 2) == everything[2:4]
        assert [e.stream_id for e in es.read_category(conn, "acct")] == ["acct-1"] * 3 + ["acct-2"]
        halves = [es.read_category(conn, "acct", 0, 100, member=m, group_size=2) for m in (0, 1)]
        assert sorted(e.global_position for h in halves for e in h) == \
            [e.global_position for e in everything if e.stream_id.startswith("acct")]
        assert es.checkpoint(conn, "proj") == 0
        assert es.save_checkpoint(conn, "proj", positions[2]) == positions[2]
        assert es.save_checkpoint(conn, "proj", positions[0]) == positions[2]
        assert es.save_checkpoint(conn, "proj", positions[0], allow_backwards=True) == positions[0]
        assert es.checkpoint(conn, "proj") == positions[0]


def test_notify_on_append(db, stream):
    got = threading.Event()
    with db.connect_direct() as listener, db.connect() as conn:
        listener.execute("LISTEN event_store")
        es.append_to_stream(conn, stream(), es.NO_STREAM, [es.Event("A", 1)], notify=True)

        def wait():
            for notify in listener.notifies():
                assert notify.channel == "event_store" and notify.payload == ""
                got.set()
                return

        waiter = threading.Thread(target=wait, daemon=True)
        waiter.start()
        waiter.join(10)
        assert got.is_set()
