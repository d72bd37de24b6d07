"""Arguments are checked before any query; ids, backoff and errors without a
server where possible."""

from __future__ import annotations

import math
import pickle
import time
import uuid

import psycopg
import pytest
from psycopg.pq import TransactionStatus

import event_store_client as es
from event_store_client.store import events_to_json


class NoQueries:
    """A connection stand-in that fails the test if anything touches it."""

    def __getattr__(self, name):
        raise AssertionError(f"the connection was used ({name}) before the arguments were checked")


GOOD = [es.Event("Happened", {"n": 1})]


@pytest.mark.parametrize("expected", [None, True, False, 1.0, "1", b"1", [1]])
def test_expected_must_be_an_int_not_none_or_bool(expected):
    with pytest.raises(TypeError):
        es.append_to_stream(NoQueries(), "s-1", expected, GOOD)


def test_none_expected_names_the_choices():
    with pytest.raises(TypeError, match="ANY"):
        es.append_to_stream(NoQueries(), "s-1", None, GOOD)


def test_expected_below_any_is_refused():
    with pytest.raises(ValueError):
        es.append_to_stream(NoQueries(), "s-1", -3, GOOD)


def test_constants():
    assert (es.ANY, es.NO_STREAM, es.STREAM_EXISTS) == (-2, 0, -1)


@pytest.mark.parametrize("stream_id, error", [(None, TypeError), (5, TypeError),
                                              ("", ValueError), (b"s-1", TypeError)])
def test_stream_id_is_checked(stream_id, error):
    with pytest.raises(error):
        es.append_to_stream(NoQueries(), stream_id, 0, GOOD)
    with pytest.raises(error):
        es.read_stream(NoQueries(), stream_id)
    with pytest.raises(error):
        es.stream_version(NoQueries(), stream_id)


@pytest.mark.parametrize("events, error", [
    ("not a list", TypeError),
    ({"type": "A", "data": 1}, TypeError),
    (es.Event("A", 1), TypeError),
    (None, TypeError),
    ([42], TypeError),
    ([{"type": "A"}], ValueError),
    ([{"data": 1}], ValueError),
    ([{"type": "A", "data": 1, "meta": {}}], ValueError),
    ([{"type": "", "data": 1}], ValueError),
    ([{"type": 7, "data": 1}], TypeError),
    ([es.Event("A", 1, metadata=["not", "a", "mapping"])], TypeError),
    ([es.Event("A", 1, id="not-a-uuid")], ValueError),
    ([es.Event("A", 1, id=12345)], TypeError),
    ([es.Event("A", math.nan)], ValueError),
    ([es.Event("A", object())], TypeError),
])
def test_events_are_checked(events, error):
    with pytest.raises(error):
        es.append_to_stream(NoQueries(), "s-1", 0, events)


def test_events_serialize_to_the_batch_format():
    event_id = uuid.UUID("01900000-0000-7000-8000-000000000001")
    text = events_to_json([
        es.Event("A", {"when": uuid.UUID(int=1)}, {"user": "u"}, event_id),
        {"type": "B", "data": None},
        {"type": "C", "data": [1], "metadata": None, "id": str(event_id).replace("-", "")},
    ])
    assert text == (
        '[{"type":"A","data":{"when":"00000000-0000-0000-0000-000000000001"},'
        '"metadata":{"user":"u"},"id":"01900000-0000-7000-8000-000000000001"},'
        '{"type":"B","data":null},'
        '{"type":"C","data":[1],"id":"01900000-0000-7000-8000-000000000001"}]'
    )


def test_read_arguments_are_checked_at_the_call_not_at_iteration():
    for kwargs, error in [({"from_version": "1"}, TypeError),
                          ({"from_version": True}, TypeError),
                          ({"page_size": 0}, ValueError),
                          ({"limit": -1}, ValueError),
                          ({"backward": "yes"}, TypeError)]:
        with pytest.raises(error):
            es.read_stream(NoQueries(), "s-1", **kwargs)
    with pytest.raises(ValueError):
        es.read_all(NoQueries(), 0, -1)
    with pytest.raises(TypeError):
        es.read_all(NoQueries(), None)
    with pytest.raises(ValueError):
        es.read_category(NoQueries(), "s", member=0)
    with pytest.raises(TypeError):
        es.save_checkpoint(NoQueries(), "sub", None)


def test_handle_command_arguments_are_checked():
    def evolve(state, event):
        return state

    def decide(state):
        return []

    with pytest.raises(ValueError):
        es.handle_command(NoQueries(), "s-1", None, evolve, decide, max_attempts=0)
    with pytest.raises(TypeError):
        es.handle_command(NoQueries(), "s-1", None, evolve, decide, max_attempts=True)
    with pytest.raises(TypeError):
        es.handle_command(NoQueries(), None, None, evolve, decide)
    with pytest.raises(TypeError):
        es.handle_command(42, "s-1", None, evolve, decide)


def test_subscription_arguments_are_checked():
    def handler(conn, events):
        pass

    with pytest.raises(ValueError):
        es.Subscription(lambda: None, "p", handler, batch_size=0)
    with pytest.raises(ValueError):
        es.Subscription(lambda: None, "p", handler, consumer_group=(0, 2))
    with pytest.raises(ValueError):
        es.Subscription(lambda: None, "p", handler, category="c", consumer_group=(2, 2))
    with pytest.raises(TypeError):
        es.Subscription(lambda: None, "p", "not callable")


def test_no_query_reaches_a_real_connection(db):
    # Outside autocommit, any query would open a transaction.
    with db.connect(autocommit=False) as conn:
        for expected in (None, True, "3"):
            with pytest.raises(TypeError):
                es.append_to_stream(conn, "s-1", expected, GOOD)
        with pytest.raises(ValueError):
            es.append_to_stream(conn, "s-1", 0, [{"type": "A", "data": 1, "meta": 1}])
        assert conn.info.transaction_status == TransactionStatus.IDLE


def test_new_event_id_is_a_time_ordered_version_7_uuid():
    before = int(time.time() * 1000)
    ids = [es.new_event_id() for _ in range(20000)]
    after = int(time.time() * 1000)
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    for event_id in ids[:100]:
        assert event_id.version == 7
        assert event_id.variant == uuid.RFC_4122
    assert before <= ids[0].int >> 80 <= ids[-1].int >> 80 <= after + 1


def test_new_event_id_matches_the_server_format(conn):
    # The server accepts it as an event id and keeps it unchanged.
    event_id = es.new_event_id()
    es.append_to_stream(conn, f"ids-{event_id.hex}", es.NO_STREAM, [es.Event("A", 1, id=event_id)])
    (stored,) = es.read_stream(conn, f"ids-{event_id.hex}")
    assert stored.id == event_id


def test_backoff_is_full_jitter_and_capped():
    backoff = es.Backoff(base=0.01, cap=0.1)
    for retry in range(1, 20):
        ceiling = min(0.1, 0.01 * 2 ** (retry - 1))
        delays = [backoff(retry) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling / 2


def test_errors_are_psycopg_errors_and_registered():
    assert psycopg.errors.lookup("VE001") is es.WrongExpectedVersion
    assert psycopg.errors.lookup("VE002") is es.EventAlreadyStored
    assert issubclass(es.WrongExpectedVersion, psycopg.DatabaseError)
    assert issubclass(es.DuplicateEventId, psycopg.errors.UniqueViolation)
    assert issubclass(es.SerializationConflict, psycopg.errors.SerializationFailure)
    assert issubclass(es.LockTimeout, es.TransientError)
    # A cancel is a request to stop, not a failure to retry.
    assert not issubclass(es.StatementCanceled, es.TransientError)
    # The standard SQLSTATEs keep psycopg's own classes for other code.
    assert psycopg.errors.lookup("23505") is psycopg.errors.UniqueViolation


def test_errors_survive_pickling(conn, stream):
    sid = stream()
    es.append_to_stream(conn, sid, es.NO_STREAM, GOOD)
    with pytest.raises(es.WrongExpectedVersion) as caught:
        es.append_to_stream(conn, sid, es.NO_STREAM, GOOD)
    copy = pickle.loads(pickle.dumps(caught.value))
    assert isinstance(copy, es.WrongExpectedVersion)
    assert (copy.expected, copy.actual, copy.stream_id) == (0, 1, sid)


@pytest.mark.parametrize("error, transient", [
    (psycopg.OperationalError("server closed the connection unexpectedly"), True),
    (psycopg.errors.lookup("40001")(), True),
    (psycopg.errors.lookup("40P01")(), True),
    (psycopg.errors.lookup("55P03")(), True),
    (psycopg.errors.lookup("08006")(), True),
    (psycopg.errors.lookup("08001")(), True),
    (psycopg.errors.lookup("57P01")(), True),
    (psycopg.errors.lookup("57P02")(), True),
    (psycopg.errors.lookup("57P03")(), True),
    (psycopg.errors.lookup("57014")(), False),
    (psycopg.errors.lookup("55000")(), False),
    (psycopg.errors.lookup("53300")(), False),
    (psycopg.errors.lookup("53200")(), False),
    (psycopg.errors.lookup("42501")(), False),
    (es.WrongExpectedVersion(), False),
    (psycopg.InterfaceError("no SQLSTATE, not a lost connection"), False),
    (ValueError("not a database error"), False),
])
def test_is_transient(error, transient):
    assert es.is_transient(error) is transient
