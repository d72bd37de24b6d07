"""Subscriptions in production (extension 0.5.0): filtered reads and how far
they got, wait_for_event, the runner waking on wait_for_event, a sparse
filtered runner, status. (Parking: test_parked.py.) Run directly and
through pgbouncer alike."""

from __future__ import annotations

import datetime
import random
import threading
import time

import psycopg
import pytest

import event_store_client as es
from support import new_category, require_server_function


@pytest.fixture(scope="module", autouse=True)
def needs_wait_for_event(db):
    require_server_function(db, "event_store.wait_for_event(bigint,interval,text,text[])")


def append(conn, stream_id: str, *types: str) -> int:
    return es.append_to_stream(conn, stream_id, es.ANY,
                               [es.Event(t, {"i": i}) for i, t in enumerate(types)])


def wait_until(condition, timeout: float, what: str, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def test_filtered_reads_by_type_and_category(conn):
    a, b = new_category("fa"), new_category("fb")
    start = es.head_position(conn)
    append(conn, f"{a}-1", "Opened", "Noted", "Closed")
    append(conn, f"{b}-1", "Opened", "Noted")
    append(conn, f"{a}-2", "Noted")

    by_type = es.read_all(conn, start, event_types=["Opened", "Closed"])
    assert [(e.stream_id, e.type) for e in by_type] == [
        (f"{a}-1", "Opened"), (f"{a}-1", "Closed"), (f"{b}-1", "Opened")]
    assert [e.type for e in es.read_all(conn, start, categories=[b])] == ["Opened", "Noted"]
    both = es.read_all(conn, start, event_types=("Noted",), categories=[a])
    assert [e.stream_id for e in both] == [f"{a}-1", f"{a}-2"]
    assert es.read_all(conn, start, event_types=[]) == []
    assert es.read_all(conn, start, categories=[]) == []
    in_category = es.read_category(conn, a, start, event_types=["Noted"])
    assert [e.stream_id for e in in_category] == [f"{a}-1", f"{a}-2"]
    assert es.read_category(conn, a, start, event_types=[]) == []
    first = es.read_all(conn, start, 2, event_types=["Noted"])
    assert [e.stream_id for e in first] == [f"{a}-1", f"{b}-1"]


def test_read_with_position_moves_past_what_the_filter_left_out(conn):
    a = new_category("pa")
    start = es.head_position(conn)
    append(conn, f"{a}-1", "Wanted", "Other", "Other")
    append(conn, f"{a}-2", "Other", "Other")
    head = es.head_position(conn)

    page = es.read_all_with_position(conn, start, event_types=["Wanted"])
    assert isinstance(page, es.LogPage)
    assert [e.type for e in page.events] == ["Wanted"]
    assert page.position == head
    events, position = es.read_all_with_position(conn, start, event_types=["Absent"])
    assert (events, position) == ([], head)
    full = es.read_all_with_position(conn, start, 2)
    assert len(full.events) == 2 and full.position == full.events[1].global_position

    cat = es.read_category_with_position(conn, a, start, 10, event_types=["Other"])
    assert len(cat.events) == 4 and cat.position == head
    none = es.read_category_with_position(conn, new_category("none"), start)
    assert none.events == [] and none.position >= start
    assert es.read_all_with_position(conn, head) == es.LogPage([], head)

    # Inside a transaction of the caller's too.
    with conn.transaction():
        in_tx = es.read_all_with_position(conn, start, categories=[a], event_types=["Wanted"])
        assert len(in_tx.events) == 1 and in_tx.position == head


def test_wait_for_event_returns_an_event_appended_while_it_waits(db):
    cat = new_category("wait")
    with db.connect() as conn:
        head = es.head_position(conn)
    result = {}

    def waiter():
        with db.connect() as conn:
            result["position"] = es.wait_for_event(conn, head, 10)

    thread = threading.Thread(target=waiter)
    began = time.monotonic()
    thread.start()
    time.sleep(0.2)
    with db.connect() as conn:
        append(conn, f"{cat}-1", "Arrived")
        new_head = es.head_position(conn)
    thread.join(10)
    assert result["position"] == new_head > head
    assert time.monotonic() - began < 5
    with db.connect() as conn:
        assert es.wait_for_event(conn, head, 5) == new_head


def test_wait_for_event_returns_none_at_its_timeout_and_keeps_to_its_filters(db, conn):
    cat = new_category("quiet")
    head = es.head_position(conn)
    began = time.monotonic()
    assert es.wait_for_event(conn, head, 0.3) is None
    assert 0.25 <= time.monotonic() - began < 5
    assert es.wait_for_event(conn, head, datetime.timedelta(milliseconds=100)) is None

    result = {}

    def waiter():
        with db.connect() as c:
            result["position"] = es.wait_for_event(c, head, 10, category=cat,
                                                   event_types=["Wanted"])

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.15)
    append(conn, f"{new_category('elsewhere')}-1", "Wanted")
    append(conn, f"{cat}-1", "Unwanted")
    time.sleep(0.3)
    assert thread.is_alive(), "woken by an event of another category or type"
    append(conn, f"{cat}-2", "Wanted")
    thread.join(10)
    [event] = es.read_stream(conn, f"{cat}-2")
    assert result["position"] == event.global_position


def test_wait_for_event_can_be_cancelled_and_refuses_repeatable_read(db):
    with db.connect() as conn:
        head = es.head_position(conn)
        timer = threading.Timer(0.2, conn.cancel)
        began = time.monotonic()
        timer.start()
        with pytest.raises(es.StatementCanceled):
            es.wait_for_event(conn, head + 1_000_000, 20)
        assert time.monotonic() - began < 3
        assert es.head_position(conn) == head
    with db.connect(autocommit=False) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with pytest.raises(psycopg.errors.InvalidTransactionState):
            es.wait_for_event(conn, 0, 0.01)
        conn.rollback()


def waiting_sessions(conn) -> int:
    return conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND query LIKE '%%event_store.wait_for_event%%' AND state = 'active'"
        " AND pid <> pg_backend_pid()").fetchone()[0]


def test_an_idle_runner_is_woken_by_wait_for_event_and_stop_cancels_its_wait(db, conn):
    cat = new_category("wake")
    name = f"wake-{cat}"
    append(conn, f"{cat}-1", "First")
    seen = []
    runner = es.Subscription(db.connect, name, lambda c, ev: seen.extend(ev), category=cat,
                             poll_interval=60)
    runner.start()
    try:
        wait_until(lambda: len(seen) == 1, 10, "the first event")
        wait_until(lambda: waiting_sessions(conn) > 0, 10, "the runner to wait")
        began = time.monotonic()
        append(conn, f"{cat}-2", "Second")          # no notify
        wait_until(lambda: len(seen) == 2, 10, "the second event", 0.005)
        assert time.monotonic() - began < 5
        wait_until(lambda: runner.position == seen[1].global_position, 5, "the batch to commit")
        wait_until(lambda: waiting_sessions(conn) > 0, 10, "the runner to wait again")
    finally:
        stopping = time.monotonic()
        runner.close()
        assert time.monotonic() - stopping < 3
    assert runner.error is None
    wait_until(lambda: waiting_sessions(conn) == 0, 5, "the cancelled wait to end")
    assert es.checkpoint(conn, name) == seen[1].global_position
    assert [e.type for e in seen] == ["First", "Second"]


def test_a_sparse_filtered_runner_checkpoints_at_the_head(db, conn):
    cat = new_category("sparse")
    name = f"sparse-{cat}"
    es.save_checkpoint(conn, name, es.head_position(conn))
    append(conn, f"{cat}-1", "Rare")
    for i in range(30):
        append(conn, f"{cat}-{i % 5}", *["Common"] * 5)
    seen = []
    runner = es.Subscription(db.connect, name, lambda c, ev: seen.extend(ev),
                             event_types=["Rare"], batch_size=10, poll_interval=0.1)
    runner.start()
    try:
        head = es.head_position(conn)
        wait_until(lambda: es.checkpoint(conn, name) == head, 20, "the checkpoint at the head")
        assert [e.type for e in seen] == ["Rare"]
        for _ in range(5):
            append(conn, f"{new_category('noise')}-1", "Common")
        head = es.head_position(conn)
        wait_until(lambda: es.checkpoint(conn, name) == head, 20, "the checkpoint at the new head")
        wait_until(lambda: runner.position == head, 5, "the runner's position")
        append(conn, f"{cat}-9", "Common", "Rare")
        head = es.head_position(conn)
        wait_until(lambda: len(seen) == 2, 10, "the second Rare event")
        wait_until(lambda: es.checkpoint(conn, name) == head, 20, "the checkpoint after it")
    finally:
        runner.close()
    assert runner.error is None
    assert [e.type for e in seen] == ["Rare", "Rare"]
    assert runner.processed == 2
    [status] = es.subscriptions(conn, name)
    assert (status.checkpoint, status.lag_positions, status.lag_events) == (head, 0, 0)


def test_a_runner_over_several_categories_with_types(db, conn):
    a, b = new_category("ma"), new_category("mb")
    name = f"multi-{a}"
    es.save_checkpoint(conn, name, es.head_position(conn))
    append(conn, f"{a}-1", "X", "Y")
    append(conn, f"{new_category('mc')}-1", "X")
    append(conn, f"{b}-1", "Y", "X")
    seen = []
    with es.Subscription(conn, name, lambda c, ev: seen.extend(ev),
                         categories=[a, b], event_types=["X"]) as runner:
        runner.catch_up()
    assert [f"{e.stream_id}:{e.type}" for e in seen] == [f"{a}-1:X", f"{b}-1:X"]
    assert es.checkpoint(conn, name) == es.head_position(conn)


def test_subscription_filter_arguments_are_checked():
    handler = lambda c, ev: None  # noqa: E731
    with pytest.raises(TypeError):
        es.Subscription("dbname=x", "s", handler, event_types="X")
    with pytest.raises(ValueError):
        es.Subscription("dbname=x", "s", handler, event_types=[""])
    with pytest.raises(TypeError):
        es.Subscription("dbname=x", "s", handler, categories=[1])
    with pytest.raises(ValueError):
        es.Subscription("dbname=x", "s", handler, category="a", categories=["b"])
    with pytest.raises(ValueError):
        es.Subscription("dbname=x", "s", handler, on_event_error="skip")
    with pytest.raises(TypeError):
        es.Subscription("dbname=x", "s", handler, on_parked="log")


def test_status_accessors(db, conn):
    cat = new_category("status")
    name = f"status-{cat}"
    append(conn, f"{cat}-1", "A", "B", "C")
    head = es.head_position(conn)
    es.save_checkpoint(conn, name, head - 2)
    [row] = es.subscriptions(conn, name)
    assert isinstance(row, es.SubscriptionStatus)
    assert (row.subscriber, row.checkpoint, row.head_position) == (name, head - 2, head)
    assert (row.lag_positions, row.lag_events) == (2, 2)
    assert isinstance(row.lag, datetime.timedelta) and row.lag >= datetime.timedelta(0)
    assert isinstance(row.saved_at, datetime.datetime)
    names = [r.subscriber for r in es.subscriptions(conn)]
    assert name in names and names == sorted(names)
    assert es.subscriptions(conn, name + "-none") == []

    assert es.log_holders(conn) == []
    with db.connect(autocommit=False) as holder:
        append(holder, f"{cat}-2", "Open")
        pid = holder.execute("SELECT pg_backend_pid()").fetchone()[0]
        [h] = es.log_holders(conn)
        assert isinstance(h, es.LogHolder)
        assert (h.position, h.pid, h.state) == (head + 1, pid, "idle in transaction")
        assert isinstance(h.xact_age, datetime.timedelta)
        assert isinstance(h.xact_start, datetime.datetime)
        holder.rollback()
    assert es.log_holders(conn) == []

    published = es.publish_watermark(conn)
    assert published >= head
    assert es.watermark(conn) == published


class NoQueries:
    """A connection stand-in that fails the test if anything touches it."""

    def __getattr__(self, name):
        raise AssertionError(f"the connection was used ({name}) before the arguments were checked")


@pytest.mark.parametrize("bad, error", [("X", TypeError), (b"X", TypeError), ([""], ValueError),
                                        ([1], TypeError), ([None], TypeError), (5, TypeError)])
def test_filters_are_checked_before_any_query(bad, error):
    with pytest.raises(error):
        es.read_all(NoQueries(), event_types=bad)
    with pytest.raises(error):
        es.read_all(NoQueries(), categories=bad)
    with pytest.raises(error):
        es.read_category(NoQueries(), "c", event_types=bad)
    with pytest.raises(error):
        es.read_all_with_position(NoQueries(), event_types=bad)
    with pytest.raises(error):
        es.read_category_with_position(NoQueries(), "c", event_types=bad)
    with pytest.raises(error):
        es.wait_for_event(NoQueries(), 0, 1, event_types=bad)


@pytest.mark.parametrize("kwargs, error", [
    ({"after_position": None}, TypeError), ({"after_position": 1.0}, TypeError),
    ({"timeout": -1}, ValueError), ({"timeout": float("nan")}, ValueError),
    ({"timeout": float("inf")}, ValueError), ({"timeout": "10"}, TypeError),
    ({"timeout": True}, TypeError), ({"timeout": datetime.timedelta(seconds=-1)}, ValueError),
    ({"category": ""}, ValueError), ({"category": 5}, TypeError),
])
def test_wait_for_event_arguments_are_checked(kwargs, error):
    with pytest.raises(error):
        es.wait_for_event(NoQueries(), **kwargs)


def test_a_role_without_the_new_functions_polls_or_refuses(db, conn):
    """A role that may not execute last_read_position or wait_for_event: an
    unfiltered runner polls and saves the last event's position; a filtered
    or parking one stops with an error that says what is missing."""
    role = f"es_sub_{random.getrandbits(40):010x}"
    cat = new_category("old")
    conn.execute(f"CREATE ROLE {role} NOLOGIN")
    try:
        # The grants of a projection before 0.5.0: reads and checkpoints only.
        conn.execute(f"GRANT USAGE ON SCHEMA event_store TO {role}")
        conn.execute(f"GRANT SELECT ON event_store.events, event_store.streams TO {role}")
        conn.execute(f"GRANT SELECT, INSERT, UPDATE ON event_store.checkpoints TO {role}")
        conn.execute(
            "GRANT EXECUTE ON FUNCTION event_store.read_all(bigint, bigint, text[], text[]),"
            " event_store.read_category(text, bigint, bigint, integer, integer, text[]),"
            " event_store.checkpoint(text), event_store.save_checkpoint(text, bigint, boolean),"
            f" event_store.category(text), event_store.safe_position() TO {role}")

        def connect():
            # A direct connection: a session-level SET ROLE must not go
            # through a pooler in transaction mode.
            c = db.connect_direct()
            c.execute(f"SET ROLE {role}")
            return c

        append(conn, f"{cat}-1", "A", "B")
        seen = []
        runner = es.Subscription(connect, f"old-{cat}", lambda c, ev: seen.extend(ev),
                                 category=cat, poll_interval=0.05)
        with runner.start():
            wait_until(lambda: len(seen) == 2, 10, "the first batch")
            append(conn, f"{new_category('other')}-1", "X")
            append(conn, f"{cat}-2", "C")
            append(conn, f"{new_category('other')}-1", "Y")
            wait_until(lambda: len(seen) == 3, 10, "the polled batch")
            time.sleep(0.2)
        assert runner.error is None
        assert es.checkpoint(conn, f"old-{cat}") == seen[2].global_position
        assert seen[2].global_position < es.head_position(conn)

        for options, missing in (({"event_types": ["A"]}, "last_read_position"),
                                 ({"on_event_error": "park"}, "park_event")):
            refused = es.Subscription(connect, f"oldx-{cat}", lambda c, ev: None, **options)
            with pytest.raises(psycopg.NotSupportedError, match=missing):
                refused.run_once()
            refused.close()
            refused._source.close()     # run() would have closed it
    finally:
        conn.execute(f"DROP OWNED BY {role}")
        conn.execute(f"DROP ROLE {role}")
