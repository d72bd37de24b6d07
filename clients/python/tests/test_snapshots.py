"""Snapshots: saving a stream's state at a version, reading the latest one
back, and loading an aggregate from a snapshot and the events after it."""

from __future__ import annotations

import dataclasses
import datetime
import math

import pytest
from psycopg.pq import TransactionStatus

import event_store_client as es


class NoQueries:
    """A connection stand-in that fails the test if anything touches it."""

    def __getattr__(self, name):
        raise AssertionError(f"the connection was used ({name}) before the arguments were checked")


@pytest.fixture(autouse=True, scope="module")
def needs_snapshots(db):
    # The rest of the package works with 0.3.0; snapshots came with 0.4.0.
    # A server too old for them fails these tests rather than skipping them,
    # so that a run against the wrong build cannot pass unnoticed.
    with db.connect_direct() as conn:
        version = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'event_store'").fetchone()[0]
    if tuple(int(p) for p in version.split(".")) < (0, 4, 0):
        pytest.fail(f"snapshots need event_store 0.4.0 or later, not {version}")


def deposits(conn, sid, amounts, expected=es.ANY):
    return es.append_to_stream(conn, sid, expected,
                               [es.Event("Deposited", {"amount": a}) for a in amounts])


def evolve(state, event):
    if event.type == "Deposited":
        return {"balance": state["balance"] + event.data["amount"],
                "count": state["count"] + 1}
    return state


INITIAL = {"balance": 0, "count": 0}


def fold(state, events):
    for event in events:
        state = evolve(state, event)
    return state


def test_save_and_read_back(conn, stream):
    sid = stream("acct")
    deposits(conn, sid, [10, 20, 30])
    before = conn.execute("SELECT now()").fetchone()[0]
    state = {"balance": 60, "owner": "ann", "tags": ["a", "b"], "ratio": 0.5}
    assert es.save_snapshot(conn, sid, 3, state) == 3

    snapshot = es.read_snapshot(conn, sid)
    assert isinstance(snapshot, es.Snapshot)
    assert (snapshot.version, snapshot.state) == (3, state)
    assert snapshot.created_at.tzinfo is not None
    assert snapshot.created_at >= before
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.version = 4


def test_any_json_value_but_none_is_a_state(conn, stream):
    sid = stream("acct")
    deposits(conn, sid, [1, 2, 3, 4])
    for version, state in enumerate([0, "text", [1, None], False], start=1):
        es.save_snapshot(conn, sid, version, state)
        assert es.read_snapshot(conn, sid).state == state


def test_latest_and_max_version(conn, stream):
    sid = stream("acct")
    deposits(conn, sid, [1] * 10)
    for version in (2, 5, 8):
        es.save_snapshot(conn, sid, version, {"at": version})

    assert es.read_snapshot(conn, sid).version == 8
    assert es.read_snapshot(conn, sid, None).version == 8
    assert es.read_snapshot(conn, sid, 10).version == 8
    assert es.read_snapshot(conn, sid, 8).version == 8
    assert es.read_snapshot(conn, sid, 7).state == {"at": 5}
    assert es.read_snapshot(conn, sid, max_version=2).version == 2
    assert es.read_snapshot(conn, sid, 1) is None
    assert es.read_snapshot(conn, sid, 0) is None


def test_none_when_there_is_no_snapshot(conn, stream):
    sid = stream("acct")
    assert es.read_snapshot(conn, sid) is None          # no stream at all
    deposits(conn, sid, [5])
    assert es.read_snapshot(conn, sid) is None          # events, no snapshot
    other = stream("acct")
    deposits(conn, other, [5])
    es.save_snapshot(conn, other, 1, {"balance": 5})
    assert es.read_snapshot(conn, sid) is None          # another stream's does not count


def test_saving_a_version_again_replaces_it(conn, stream):
    sid = stream("acct")
    deposits(conn, sid, [1, 2])
    es.save_snapshot(conn, sid, 2, {"fold": "old"})
    first = es.read_snapshot(conn, sid)
    assert es.save_snapshot(conn, sid, 2, {"fold": "new"}) == 2
    second = es.read_snapshot(conn, sid)
    assert (second.version, second.state) == (2, {"fold": "new"})
    assert second.created_at >= first.created_at
    assert conn.execute("SELECT count(*) FROM event_store.snapshots WHERE stream_id = %s",
                        (sid,)).fetchone()[0] == 1


@pytest.mark.parametrize("head, version", [(0, 1), (3, 4), (3, 1000)])
def test_a_version_the_stream_does_not_have_is_refused(conn, stream, head, version):
    sid = stream("acct")
    if head:
        deposits(conn, sid, [1] * head)
    with pytest.raises(es.InvalidInput) as caught:
        es.save_snapshot(conn, sid, version, {"balance": 1})
    error = caught.value
    assert error.sqlstate == "22023"
    assert error.stream_id == sid
    assert error.diag.message_detail == f"The stream is at version {head}."
    assert es.read_snapshot(conn, sid) is None
    assert es.stream_version(conn, sid) == head


def test_a_refused_save_leaves_earlier_snapshots_alone(conn, stream):
    sid = stream("acct")
    deposits(conn, sid, [1, 2])
    es.save_snapshot(conn, sid, 2, {"balance": 3})
    with pytest.raises(es.InvalidInput):
        es.save_snapshot(conn, sid, 3, {"balance": 99})
    snapshot = es.read_snapshot(conn, sid)
    assert (snapshot.version, snapshot.state) == (2, {"balance": 3})


def test_a_snapshot_saved_in_a_rolled_back_transaction_is_gone(db, stream):
    sid = stream("acct")
    with db.connect() as conn:
        deposits(conn, sid, [1, 2])
    with db.connect(autocommit=False) as conn:
        es.save_snapshot(conn, sid, 2, {"balance": 3})
        assert es.read_snapshot(conn, sid).version == 2
        conn.rollback()
        assert es.read_snapshot(conn, sid) is None
        conn.rollback()


def test_a_serializer_of_your_own(conn, stream):
    sid = stream("acct")
    deposits(conn, sid, [1])
    seen = []

    def dumps(value):
        seen.append(value)
        return '{"wrapped": true}'

    es.save_snapshot(conn, sid, 1, {"balance": 1}, dumps=dumps)
    assert seen == [{"balance": 1}]
    assert es.read_snapshot(conn, sid).state == {"wrapped": True}


def test_the_default_serializer_takes_dates(conn, stream):
    sid = stream("acct")
    deposits(conn, sid, [1])
    when = datetime.date(2024, 2, 29)
    es.save_snapshot(conn, sid, 1, {"opened": when})
    assert es.read_snapshot(conn, sid).state == {"opened": "2024-02-29"}


def test_load_from_a_snapshot_equals_the_full_fold(conn, stream):
    sid = stream("acct")
    version = deposits(conn, sid, range(1, 251), es.NO_STREAM)
    assert version == 250
    at_250 = fold(dict(INITIAL), es.read_stream(conn, sid))
    es.save_snapshot(conn, sid, version, at_250)
    deposits(conn, sid, range(1000, 1037), version)
    es.save_snapshot(conn, sid, 100, fold(dict(INITIAL), es.read_stream(conn, sid, limit=100)))

    full = fold(dict(INITIAL), es.read_stream(conn, sid))
    assert full == {"balance": sum(range(1, 251)) + sum(range(1000, 1037)), "count": 287}

    def load(max_version=None):
        snapshot = es.read_snapshot(conn, sid, max_version)
        state, start = (snapshot.state, snapshot.version + 1) if snapshot else (dict(INITIAL), 1)
        events = list(es.read_stream(conn, sid, start))
        if max_version is not None:
            events = [e for e in events if e.version <= max_version]
        return fold(state, events), len(events)

    state, read = load()
    assert state == full
    assert read == 37                                   # only the events after the snapshot

    # An older version's state from the latest snapshot at or below it.
    state, read = load(200)
    assert state == fold(dict(INITIAL), es.read_stream(conn, sid, limit=200))
    assert read == 100
    state, read = load(50)
    assert read == 50                                   # no snapshot that low: the full fold
    assert state == fold(dict(INITIAL), es.read_stream(conn, sid, limit=50))


@pytest.mark.parametrize("args, error", [
    ((None, 1, {}), TypeError),
    ((5, 1, {}), TypeError),
    (("", 1, {}), ValueError),
    ((b"s-1", 1, {}), TypeError),
    (("s-1", None, {}), TypeError),
    (("s-1", True, {}), TypeError),
    (("s-1", "1", {}), TypeError),
    (("s-1", 1.0, {}), TypeError),
    (("s-1", 0, {}), ValueError),
    (("s-1", -1, {}), ValueError),
    (("s-1", 1, None), TypeError),
    (("s-1", 1, {"x": math.nan}), ValueError),
    (("s-1", 1, {"x": object()}), TypeError),
])
def test_save_snapshot_arguments_are_checked(args, error):
    with pytest.raises(error):
        es.save_snapshot(NoQueries(), *args)


@pytest.mark.parametrize("args, error", [
    ((None,), TypeError),
    (("",), ValueError),
    ((7,), TypeError),
    (("s-1", "3"), TypeError),
    (("s-1", True), TypeError),
    (("s-1", 2.5), TypeError),
])
def test_read_snapshot_arguments_are_checked(args, error):
    with pytest.raises(error):
        es.read_snapshot(NoQueries(), *args)


def test_no_query_reaches_a_real_connection(db):
    # Outside autocommit, any query would open a transaction.
    with db.connect(autocommit=False) as conn:
        for args in [("s-1", 1, None), ("s-1", 0, {}), ("", 1, {}), ("s-1", 1, {"x": math.inf})]:
            with pytest.raises((TypeError, ValueError)):
                es.save_snapshot(conn, *args)
        with pytest.raises(TypeError):
            es.read_snapshot(conn, "s-1", "1")
        assert conn.info.transaction_status == TransactionStatus.IDLE


def test_exported():
    for name in ("Snapshot", "save_snapshot", "read_snapshot"):
        assert name in es.__all__ and hasattr(es, name)
