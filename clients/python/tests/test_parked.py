"""Parked events (extension 0.5.0): a runner with on_event_error="park"
parks the event its handler fails on and goes on; replay_parked applies it
later and unparks it; park_event, read_parked, unpark_event. Run directly
and through pgbouncer alike."""

from __future__ import annotations

import time

import psycopg
import pytest

import event_store_client as es
from support import new_category, require_server_function


@pytest.fixture(scope="module", autouse=True)
def needs_parking(db):
    require_server_function(db, "event_store.park_event(text,bigint,text)")


def append(conn, stream_id: str, *types: str) -> int:
    return es.append_to_stream(conn, stream_id, es.ANY,
                               [es.Event(t, {"i": i}) for i, t in enumerate(types)])


def wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


class CannotApply(Exception):
    pass


def test_a_failing_event_is_parked_the_others_applied_once_and_replay_applies_it(db, conn):
    cat = new_category("park")
    name = f"park-{cat}"
    table = f"applied_{cat}"
    conn.execute(f"CREATE TABLE {table} (global_position bigint PRIMARY KEY, stream_id text)")
    for i in range(1, 7):
        append(conn, f"{cat}-{i}", "Poison" if i == 4 else "Good")
    head = es.head_position(conn)
    calls = []
    reported = []

    def suffix(event):
        return int(event.stream_id[len(cat) + 1:])

    def handler(c, events):
        calls.append([suffix(e) for e in events])
        for e in events:
            c.execute(f"INSERT INTO {table} VALUES (%s, %s)", (e.global_position, e.stream_id))
            if e.type == "Poison":
                raise CannotApply(f"cannot apply {e.stream_id}")

    runner = es.Subscription(db.connect, name, handler, category=cat, batch_size=4,
                             poll_interval=0.05, on_event_error="park",
                             on_parked=lambda e, exc, n: reported.append((e, exc, n)))
    with runner.start():
        wait_until(lambda: es.checkpoint(conn, name) == head, 20, "the checkpoint past the poison")
    assert runner.error is None
    # The first batch failed as a whole and was applied again one event at a
    # time; the second applied as a whole.
    assert calls == [[1, 2, 3, 4], [1], [2], [3], [4], [5, 6]]
    assert runner.processed == 5 and runner.parked == 1
    applied = [r[0] for r in conn.execute(f"SELECT stream_id FROM {table} ORDER BY 1")]
    assert applied == sorted(f"{cat}-{i}" for i in (1, 2, 3, 5, 6))

    [parked] = es.read_parked(conn, name)
    assert isinstance(parked, es.ParkedEvent)
    assert parked.error == f"CannotApply: cannot apply {cat}-4"
    assert parked.attempts == 1
    assert parked.event.type == "Poison" and parked.event.stream_id == f"{cat}-4"
    assert parked.global_position == parked.event.global_position
    [(event, exc, attempts)] = reported
    assert event == parked.event and isinstance(exc, CannotApply) and attempts == 1

    # A replay that fails again parks it again: attempts 2, the new error.
    def still_broken(c, events):
        raise ValueError("still broken")

    failing = es.replay_parked(db.connect, name, still_broken)
    assert (failing.replayed, failing.failed) == (0, 1)
    assert failing.errors[0][0] == parked.global_position
    assert isinstance(failing.errors[0][1], ValueError)
    [again] = es.read_parked(conn, name)
    assert (again.attempts, again.error) == (2, "ValueError: still broken")

    # The fix: the replay applies it once and unparks it, in one transaction.
    replayed_with = []

    def fixed(c, events):
        replayed_with.extend(events)
        for e in events:
            c.execute(f"INSERT INTO {table} VALUES (%s, %s)", (e.global_position, e.stream_id))

    result = es.replay_parked(db.conninfo, name, fixed)
    assert (result.replayed, result.failed, result.missing, result.skipped) == (1, 0, 0, 0)
    assert [e.global_position for e in replayed_with] == [parked.global_position]
    assert es.read_parked(conn, name) == []
    assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 6
    nothing = es.replay_parked(conn, name, still_broken)
    assert (nothing.replayed, nothing.failed, nothing.errors) == (0, 0, [])


@pytest.mark.parametrize("sqlstate", ["40001", "40P01", "57014"])
def test_errors_that_pass_on_their_own_are_not_parked(db, conn, sqlstate):
    cat = new_category("tpark")
    name = f"tpark-{cat}"
    append(conn, f"{cat}-1", "A")
    calls = []

    def handler(c, events):
        calls.append(len(events))
        if len(calls) == 1:
            c.execute(f"DO $$ BEGIN RAISE EXCEPTION 'injected' USING ERRCODE = '{sqlstate}';"
                      " END $$")

    runner = es.subscribe(db.connect, name, handler, category=cat, poll_interval=0.05,
                          on_event_error="park", backoff=lambda n: 0.01)
    try:
        if sqlstate == "57014":
            runner.join(10)
            assert runner.error.sqlstate == "57014"
        else:
            wait_until(lambda: es.checkpoint(conn, name) > 0, 10, "the retried batch")
    finally:
        runner.close()
    assert es.read_parked(conn, name) == []


def test_a_handler_that_swallowed_a_server_error_has_its_event_parked(db, conn):
    cat = new_category("swallow")
    name = f"swallow-{cat}"
    append(conn, f"{cat}-1", "A", "B", "C")
    calls = []

    def handler(c, events):
        for e in events:
            calls.append(e.type)
            if e.type == "B":
                try:
                    c.execute("SELECT 1/0")
                except psycopg.errors.DivisionByZero:
                    pass

    with es.Subscription(conn, name, handler, category=cat, on_event_error="park") as runner:
        assert runner.run_once() == 3
    assert calls == ["A", "B", "C", "A", "B", "C"]
    [parked] = es.read_parked(conn, name)
    assert parked.event.type == "B"
    assert "InFailedSqlTransaction" in parked.error
    assert es.checkpoint(conn, name) == es.head_position(conn)


def test_park_read_unpark_and_replay_of_events_gone_since(db, conn):
    cat = new_category("gone")
    name = f"gone-{cat}"
    append(conn, f"{cat}-1", "A", "B")
    a, b = es.read_stream(conn, f"{cat}-1")
    assert es.park_event(conn, name, a.global_position, "first") == 1
    assert es.park_event(conn, name, a.global_position, "second") == 2
    assert es.park_event(conn, name, b.global_position, "b failed") == 1
    [first] = es.read_parked(conn, name, 1)
    assert (first.global_position, first.error, first.attempts) == (a.global_position, "second", 2)
    assert [p.global_position for p in es.read_parked(conn, name, after_position=a.global_position)] \
        == [b.global_position]
    with pytest.raises(psycopg.errors.NoDataFound):
        es.park_event(conn, name, 999_999_999, "x")

    es.delete_stream(conn, f"{cat}-1", es.ANY)
    assert [p.event for p in es.read_parked(conn, name)] == [None, None]
    called = []
    result = es.replay_parked(conn, name, lambda c, ev: called.append(ev), page_size=1)
    assert called == [] and result.missing == 2
    assert es.read_parked(conn, name) == []
    assert es.unpark_event(conn, name, a.global_position) is False


def test_parking_arguments_are_checked():
    class NoQueries:
        def __getattr__(self, name):
            raise AssertionError(f"the connection was used ({name})")

    with pytest.raises(TypeError):
        es.park_event(NoQueries(), "s", 1, None)
    with pytest.raises(ValueError):
        es.park_event(NoQueries(), "s", 0, "e")
    with pytest.raises(ValueError):
        es.park_event(NoQueries(), "", 1, "e")
    with pytest.raises(TypeError):
        es.unpark_event(NoQueries(), "s", "1")
    with pytest.raises(ValueError):
        es.read_parked(NoQueries(), "s", -1)
    with pytest.raises(TypeError):
        es.replay_parked(NoQueries(), "s", None)
    with pytest.raises(ValueError):
        es.replay_parked(NoQueries(), "s", lambda c, ev: None, page_size=0)
