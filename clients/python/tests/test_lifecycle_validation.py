"""Stream lifecycle without a server: arguments are checked before any
query, each function sends one statement with the arguments in order, and
VE003 is a StreamTombstoned that is never retried."""

from __future__ import annotations

import datetime
import math
import uuid
from types import SimpleNamespace

import psycopg
import pytest

import event_store_client as es


class NoQueries:
    """A connection stand-in that fails the test if anything touches it."""

    def __getattr__(self, name):
        raise AssertionError(f"the connection was used ({name}) before the arguments were checked")


class Recorder:
    """A connection stand-in that records each statement and answers one row."""

    def __init__(self, row=(1,)):
        self.row = row
        self.statements = []

    def execute(self, query, params=None):
        self.statements.append((query, params))
        return SimpleNamespace(fetchone=lambda: self.row)

    def cursor(self, row_factory):
        recorder = self

        class Cursor:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

            def execute(self, query, params=None):
                recorder.statements.append((query, params))

            def fetchone(self):
                return row_factory(self)(recorder.row)

        return Cursor()

    @property
    def last(self):
        return self.statements[-1]


ID = uuid.UUID("0190f0e0-0000-7000-8000-0000000000aa")


@pytest.mark.parametrize("stream_id, error", [(None, TypeError), (5, TypeError),
                                              ("", ValueError), (b"s-1", TypeError)])
def test_stream_ids_are_checked(stream_id, error):
    calls = [
        lambda: es.delete_stream(NoQueries(), stream_id, es.ANY),
        lambda: es.tombstone_stream(NoQueries(), stream_id, es.ANY),
        lambda: es.truncate_stream(NoQueries(), stream_id, 1),
        lambda: es.set_stream_retention(NoQueries(), stream_id, 5),
        lambda: es.stream_info(NoQueries(), stream_id),
        lambda: es.erase_stream(NoQueries(), stream_id, "request 42"),
    ]
    for call in calls:
        with pytest.raises(error):
            call()


@pytest.mark.parametrize("expected, error", [
    (None, TypeError), (True, TypeError), (1.0, TypeError), ("1", TypeError), (-3, ValueError),
])
def test_expected_versions_are_checked_as_for_appends(expected, error):
    with pytest.raises(error):
        es.delete_stream(NoQueries(), "s-1", expected)
    with pytest.raises(error):
        es.tombstone_stream(NoQueries(), "s-1", expected)


def test_a_missing_expected_version_names_the_choices():
    with pytest.raises(TypeError, match="ANY"):
        es.delete_stream(NoQueries(), "s-1", None)


@pytest.mark.parametrize("before, error", [
    (None, TypeError), (True, TypeError), (2.0, TypeError), ("2", TypeError),
    (0, ValueError), (-1, ValueError),
])
def test_truncate_before_version_is_checked(before, error):
    with pytest.raises(error):
        es.truncate_stream(NoQueries(), "s-1", before)


@pytest.mark.parametrize("kwargs, error", [
    ({"max_count": 0}, ValueError),
    ({"max_count": -5}, ValueError),
    ({"max_count": 2.0}, TypeError),
    ({"max_count": "10"}, TypeError),
    ({"max_count": True}, TypeError),
    ({"max_age": datetime.timedelta(0)}, ValueError),
    ({"max_age": datetime.timedelta(seconds=-1)}, ValueError),
    ({"max_age": ""}, ValueError),
    ({"max_age": 3600}, TypeError),
    ({"max_age": 1.5}, TypeError),
    ({"max_age": datetime.date(2024, 1, 1)}, TypeError),
    ({"max_agee": "1 day"}, TypeError),
])
def test_retention_is_checked(kwargs, error):
    with pytest.raises(error):
        es.set_stream_retention(NoQueries(), "s-1", **kwargs)


@pytest.mark.parametrize("max_events, error", [
    (0, ValueError), (-1, ValueError), (2**31, ValueError),
    (1.0, TypeError), ("10", TypeError), (True, TypeError),
])
def test_purge_max_events_is_checked(max_events, error):
    with pytest.raises(error):
        es.purge(NoQueries(), max_events)


@pytest.mark.parametrize("reason, error", [(None, TypeError), ("", ValueError),
                                           (5, TypeError), (b"why", TypeError)])
def test_reasons_are_checked(reason, error):
    with pytest.raises(error):
        es.erase_stream(NoQueries(), "s-1", reason)
    with pytest.raises(error):
        es.redact_event(NoQueries(), ID, reason)


@pytest.mark.parametrize("kwargs, error", [
    ({"event_id": None}, TypeError),
    ({"event_id": 5}, TypeError),
    ({"event_id": "not-a-uuid"}, ValueError),
    ({"event_id": ""}, ValueError),
    ({"data": {"x": math.nan}}, ValueError),
    ({"data": {"x": object()}}, TypeError),
    ({"metadata": ["not", "a", "mapping"]}, TypeError),
    ({"metadata": "text"}, TypeError),
    ({"metadata": {"x": math.inf}}, ValueError),
])
def test_redaction_arguments_are_checked(kwargs, error):
    args = {"event_id": ID, "reason": "request 42"}
    args.update(kwargs)
    with pytest.raises(error):
        es.redact_event(NoQueries(), **args)


def test_one_statement_each_with_the_arguments_in_order():
    conn = Recorder((7,))
    assert es.delete_stream(conn, "s-1", 6) == 7
    assert "event_store.delete_stream(" in conn.last[0] and conn.last[1] == ("s-1", 6)
    assert es.tombstone_stream(conn, "s-1", es.NO_STREAM) == 7
    assert "event_store.tombstone_stream(" in conn.last[0] and conn.last[1] == ("s-1", 0)
    assert es.truncate_stream(conn, "s-1", 4) == 7
    assert "event_store.truncate_stream(" in conn.last[0] and conn.last[1] == ("s-1", 4)

    assert es.set_stream_retention(conn, "s-1", 3, "90 days") is None
    assert "%s::interval" in conn.last[0] and conn.last[1] == ("s-1", 3, "90 days")
    es.set_stream_retention(conn, "s-1", max_age=datetime.timedelta(hours=1))
    assert conn.last[1] == ("s-1", None, datetime.timedelta(hours=1))
    es.set_stream_retention(conn, "s-1")
    assert conn.last[1] == ("s-1", None, None)

    assert es.purge(conn) == 7
    assert "event_store.purge()" in conn.last[0] and conn.last[1] is None
    es.purge(conn, 500)
    assert "event_store.purge(%s::integer)" in conn.last[0] and conn.last[1] == (500,)

    assert es.erase_stream(conn, "s-1", "request 42") == 7
    assert conn.last[1] == ("s-1", "request 42")

    assert es.redact_event(conn, str(ID).upper(), "request 42") == 7
    assert "event_store.redact_event(" in conn.last[0]
    assert conn.last[1] == (str(ID), "request 42", "{}", None)
    es.redact_event(conn, ID, "request 42", {"name": None}, {"redacted": True})
    assert conn.last[1] == (str(ID), "request 42", '{"name":null}', '{"redacted":true}')
    es.redact_event(conn, ID, "request 42", data=None)
    assert conn.last[1][2] == "null"
    es.redact_event(conn, ID, "request 42", data=[1], dumps=lambda value: "[2]")
    assert conn.last[1][2] == "[2]"
    assert len(conn.statements) == 13


def test_stream_info_is_a_frozen_dataclass():
    row = (12, 9, 9, 3, datetime.timedelta(days=90), False)
    conn = Recorder(row)
    info = es.stream_info(conn, "s-1")
    assert isinstance(info, es.StreamInfo)
    assert (info.version, info.first_visible_version, info.truncate_before, info.max_count,
            info.max_age, info.tombstoned) == row
    assert conn.last[1] == ("s-1",)
    with pytest.raises(AttributeError):
        info.version = 13


def test_ve003_is_registered_and_not_transient():
    assert psycopg.errors.lookup("VE003") is es.StreamTombstoned
    assert issubclass(es.StreamTombstoned, es.EventStoreError)
    assert issubclass(es.StreamTombstoned, psycopg.DatabaseError)
    assert not issubclass(es.StreamTombstoned, es.TransientError)
    assert es.is_transient(es.StreamTombstoned()) is False
    assert "StreamTombstoned" in es.__all__


def test_is_lifecycle_event():
    def event(stream_id, event_type):
        return es.RecordedEvent(1, stream_id, 1, ID, event_type, {}, None,
                                datetime.datetime.now(datetime.timezone.utc))

    assert es.LIFECYCLE_STREAM == "$lifecycle"
    for event_type in ("$deleted", "$truncated", "$retention", "$tombstoned", "$erased",
                       "$redacted", "$"):
        assert es.is_lifecycle_event(event("$lifecycle", event_type)) is True
    assert es.is_lifecycle_event(event("$lifecycle", "deleted")) is False
    assert es.is_lifecycle_event(event("acct-1", "$deleted")) is False
    assert es.is_lifecycle_event(event("$lifecycle-x", "$deleted")) is False
    assert es.is_lifecycle_event({"stream_id": "$lifecycle", "type": "$deleted"}) is False
    assert es.is_lifecycle_event(None) is False


def test_exported():
    for name in ("delete_stream", "tombstone_stream", "truncate_stream", "set_stream_retention",
                 "stream_info", "purge", "erase_stream", "redact_event", "is_lifecycle_event",
                 "StreamInfo", "StreamTombstoned", "LIFECYCLE_STREAM"):
        assert name in es.__all__ and hasattr(es, name)
