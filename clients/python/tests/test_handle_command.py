"""handle_command: retries under contention, lost acknowledgements, VE002."""

from __future__ import annotations

import random
import threading
import uuid
from collections import Counter
from dataclasses import dataclass

import psycopg
import pytest

import event_store_client as es
from event_store_client import command, errors


@dataclass(frozen=True)
class Counter_:
    """The state of a counter stream: how many increments, and the last value."""

    count: int = 0


def evolve(state: Counter_, event: es.RecordedEvent) -> Counter_:
    return Counter_(state.count + 1) if event.type == "Incremented" else state


def increment(by: str):
    """A command whose event carries the value it decided on: a decision made
    on a stale state would store a value twice."""
    def decide(state: Counter_):
        return [es.Event("Incremented", {"value": state.count + 1, "by": by})]
    return decide


def no_sleep(seconds: float) -> None:
    pass


def test_no_lost_update_under_16_concurrent_writers(db):
    streams = [f"counter-{i}-{random.getrandbits(40):x}" for i in range(3)]
    successes: Counter = Counter()
    attempts = []
    errors = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def writer(number: int) -> None:
        rng = random.Random(number)
        try:
            with db.connect() as conn:
                start.wait()
                for _ in range(25):
                    sid = rng.choice(streams)
                    result = es.handle_command(
                        conn, sid, Counter_(), evolve, increment(f"w{number}"),
                        max_attempts=200, backoff=es.Backoff(base=0.001, cap=0.05))
                    assert not result.already_done and len(result.events) == 1
                    with lock:
                        successes[sid] += 1
                        attempts.append(result.attempts)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    assert sum(successes.values()) == 16 * 25
    # The writers did collide: commands were retried after conflicts.
    assert max(attempts) > 1
    print(f"attempts: {sum(attempts)} for {len(attempts)} commands, at most {max(attempts)}")

    with db.connect() as conn:
        for sid in streams:
            events = list(es.read_stream(conn, sid))
            versions = [e.version for e in events]
            values = [e.data["value"] for e in events]
            # Gapless versions, each decision made on the state just before it.
            assert versions == list(range(1, successes[sid] + 1))
            assert values == versions
            assert es.stream_version(conn, sid) == successes[sid]
            assert len({e.id for e in events}) == len(events)


def lose_first_acknowledgement(monkeypatch, after=None):
    """Make the first append commit and then fail as if the connection had
    dropped before the acknowledgement came back."""
    real = command.append_to_stream
    calls = []

    def flaky(conn, stream_id, expected, events, **kwargs):
        calls.append([e.id for e in events])
        version = real(conn, stream_id, expected, events, **kwargs)
        if len(calls) == 1:
            if after is not None:
                after(conn)
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return version

    monkeypatch.setattr(command, "append_to_stream", flaky)
    return calls


def test_lost_acknowledgement_is_reported_done_without_a_second_write(conn, stream, monkeypatch):
    sid = stream("counter")
    es.append_to_stream(conn, sid, es.NO_STREAM, [es.Event("Incremented", {"value": 1})])
    calls = lose_first_acknowledgement(monkeypatch)
    result = es.handle_command(conn, sid, Counter_(), evolve, increment("me"), sleep=no_sleep)
    assert result.already_done
    assert result.attempts == 2
    assert result.version == 2
    assert len(calls) == 1  # the second attempt found its event and appended nothing
    events = list(es.read_stream(conn, sid))
    assert [e.data["value"] for e in events] == [1, 2]


def test_lost_acknowledgement_then_another_writer(db, stream, monkeypatch):
    sid = stream("counter")

    def someone_else_appends(_conn):
        with db.connect() as other:
            es.append_to_stream(other, sid, es.ANY, [es.Event("Incremented", {"value": 2})])

    calls = lose_first_acknowledgement(monkeypatch, after=someone_else_appends)
    with db.connect() as conn:
        result = es.handle_command(conn, sid, Counter_(), evolve, increment("me"), sleep=no_sleep)
        assert result.already_done and result.version == 1 and len(calls) == 1
        assert [e.data["value"] for e in es.read_stream(conn, sid)] == [1, 2]


def test_lost_acknowledgement_on_a_broken_connection_reconnects(db, stream, monkeypatch):
    """Through a connection factory: the connection really breaks after the
    commit; the retry runs on a new connection."""
    sid = stream("counter")
    opened = []

    def factory():
        connection = db.connect()
        opened.append(connection)
        return connection

    lose_first_acknowledgement(monkeypatch, after=lambda c: c.close())
    result = es.handle_command(factory, sid, Counter_(), evolve, increment("me"), sleep=no_sleep)
    assert result.already_done and result.version == 1
    assert len(opened) == 2 and all(c.closed for c in opened)
    with db.connect() as conn:
        assert es.stream_version(conn, sid) == 1


def test_retry_keeps_the_event_ids(conn, stream, monkeypatch):
    """An append that failed without committing is retried with the same ids,
    so a server that did commit it would recognise the repeat."""
    sid = stream("counter")
    real = command.append_to_stream
    calls = []

    def fails_first(conn_, stream_id, expected, events, **kwargs):
        calls.append([e.id for e in events])
        if len(calls) == 1:
            raise psycopg.OperationalError("connection reset before the append was sent")
        return real(conn_, stream_id, expected, events, **kwargs)

    monkeypatch.setattr(command, "append_to_stream", fails_first)
    result = es.handle_command(conn, sid, Counter_(), evolve, increment("me"), sleep=no_sleep)
    assert not result.already_done and result.version == 1 and result.attempts == 2
    assert calls[0] == calls[1] == [result.events[0].id]
    assert [e.id for e in es.read_stream(conn, sid)] == calls[0]


def test_server_recognises_a_repeat_with_the_same_ids(conn, stream):
    """The server side of a lost acknowledgement: the same call again returns
    the first call's version and writes nothing."""
    sid = stream()
    events = [es.Event("A", n, id=es.new_event_id()) for n in range(2)]
    assert es.append_to_stream(conn, sid, es.NO_STREAM, events) == 2
    assert es.append_to_stream(conn, sid, es.NO_STREAM, events) == 2
    assert es.stream_version(conn, sid) == 2


def test_command_already_carried_out_is_done_via_ve002(db, stream):
    """A command whose event id derives from the command id: the second
    handling finds the event stored (VE002) and reports it done."""
    sid = stream("order")
    command_event_id = es.new_event_id()

    def decide(state):
        return [es.Event("OrderPlaced", {"n": state.count}, id=command_event_id)]

    with db.connect() as conn:
        first = es.handle_command(conn, sid, Counter_(), evolve, decide)
        assert not first.already_done and first.version == 1
        es.append_to_stream(conn, sid, es.ANY, [es.Event("Incremented", {})])
        again = es.handle_command(conn, sid, Counter_(), evolve, decide)
        assert again.already_done and again.version == 1 and again.attempts == 1
        assert es.stream_version(conn, sid) == 2


def test_wrong_expected_version_is_retried_then_raised(conn, stream):
    sid = stream("counter")
    es.append_to_stream(conn, sid, es.NO_STREAM, [es.Event("Incremented", {"value": 1})])
    sleeps = []

    def decide_and_lose(state):
        # Another writer always gets in between the read and the append.
        es.append_to_stream(conn, sid, es.ANY, [es.Event("Incremented", {})])
        return [es.Event("Incremented", {"value": state.count + 1})]

    with pytest.raises(es.WrongExpectedVersion):
        es.handle_command(conn, sid, Counter_(), evolve, decide_and_lose, max_attempts=4,
                          backoff=es.Backoff(base=0.5, cap=0.5), sleep=sleeps.append)
    assert len(sleeps) == 3 and all(0 <= s <= 0.5 for s in sleeps)
    assert es.stream_version(conn, sid) == 1 + 4


def test_decide_errors_propagate_and_nothing_is_written(conn, stream):
    sid = stream()

    def refuse(state):
        raise ValueError("insufficient funds")

    with pytest.raises(ValueError, match="insufficient"):
        es.handle_command(conn, sid, Counter_(), evolve, refuse)
    result = es.handle_command(conn, sid, Counter_(), evolve, lambda s: [])
    assert result.version == 0 and result.events == () and not result.already_done
    assert es.stream_version(conn, sid) == 0


def test_state_cache_reads_only_what_is_new(conn, stream):
    sid = stream("counter")
    cache = es.StateCache()
    folded = []

    def counting_evolve(state, event):
        folded.append(event.version)
        return evolve(state, event)

    for expected_version in (1, 2, 3):
        result = es.handle_command(conn, sid, Counter_(), counting_evolve, increment("me"),
                                   cache=cache)
        assert result.version == expected_version
    # Each command read only the events after the state it had cached.
    assert folded == [1, 2]
    assert cache.get(sid) == (2, Counter_(2))

    # Events appended since the cached version are read and folded first.
    es.append_to_stream(conn, sid, 3, [es.Event("Incremented", {"value": 4})])
    result = es.handle_command(conn, sid, Counter_(), counting_evolve, increment("me"),
                               cache=cache, sleep=no_sleep)
    assert result.version == 5 and result.attempts == 1
    assert folded == [1, 2, 3, 4]
    assert [e.data["value"] for e in es.read_stream(conn, sid)] == [1, 2, 3, 4, 5]

    # clear() drops every entry: the next command folds the whole stream.
    cache.clear()
    assert len(cache) == 0 and cache.get(sid) is None
    result = es.handle_command(conn, sid, Counter_(), counting_evolve, increment("me"),
                               cache=cache, sleep=no_sleep)
    assert result.version == 6
    assert folded == [1, 2, 3, 4, 1, 2, 3, 4, 5]


def test_non_autocommit_connection_commits_each_attempt(db, stream):
    sid = stream("counter")
    with db.connect(autocommit=False) as conn:
        result = es.handle_command(conn, sid, Counter_(), evolve, increment("me"))
        assert result.version == 1
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    with db.connect() as other:
        assert es.stream_version(other, sid) == 1


# A stock whose events carry a delta; selling below zero is refused.

def stock_evolve(state: int, event: es.RecordedEvent) -> int:
    return state + event.data["delta"]


def sell(state: int):
    if state < 1:
        raise ValueError("out of stock")
    return [{"type": "Sold", "data": {"delta": -1}}]


def restock(state: int):
    return [{"type": "StockAdded", "data": {"delta": 1}}]


def fold_stock(conn, sid: str) -> int:
    return sum(e.data["delta"] for e in es.read_stream(conn, sid))


def test_reads_in_a_callers_transaction_that_rolls_back_never_reach_the_cache(db, stream):
    sid = stream("prod")
    cache = es.StateCache()
    with db.connect() as conn:
        es.append_to_stream(conn, sid, es.NO_STREAM,
                            [{"type": "StockAdded", "data": {"delta": 1}}])
    with db.connect(autocommit=False) as caller:
        with caller.transaction() as tx:
            result = es.handle_command(caller, sid, 0, stock_evolve, restock, cache=cache)
            assert result.version == 2
            # Reads version 2, written by the caller's transaction and not committed.
            es.handle_command(caller, sid, 0, stock_evolve, lambda state: [], cache=cache)
            raise psycopg.Rollback(tx)
    assert cache.get(sid) is None

    with db.connect() as conn:
        assert es.handle_command(conn, sid, 0, stock_evolve, sell, cache=cache,
                                 sleep=no_sleep).version == 2
        # The stock is 0 now: a decision on the rolled-back stock of 2 would sell again.
        with pytest.raises(ValueError, match="out of stock"):
            es.handle_command(conn, sid, 0, stock_evolve, sell, cache=cache, sleep=no_sleep)
        assert es.stream_version(conn, sid) == 2 and fold_stock(conn, sid) == 0


def test_a_cached_state_ahead_of_the_stream_is_dropped_and_the_stream_read_again(conn, stream):
    sid = stream("prod")
    es.append_to_stream(conn, sid, es.NO_STREAM, [{"type": "StockAdded", "data": {"delta": 1}}])
    cache = es.StateCache()
    cache[sid] = (5, 10)   # never committed: version 5 with a stock of 10
    result = es.handle_command(conn, sid, 0, stock_evolve, sell, cache=cache, max_attempts=3,
                               sleep=no_sleep)
    assert result.version == 2 and result.attempts == 2 and not result.already_done
    # What the second attempt read from the start, before its own append.
    assert cache.get(sid) == (1, 1)
    assert fold_stock(conn, sid) == 0


def raise_on_append(monkeypatch, sqlstate: str):
    """Make every append raise the given SQLSTATE from the server."""
    calls = []

    def failing(conn, stream_id, expected, events, **kwargs):
        calls.append([e.id for e in events])
        with errors.translated(stream_id):
            conn.execute(f"DO $$ BEGIN RAISE EXCEPTION 'injected' USING ERRCODE = '{sqlstate}';"
                         " END $$")

    monkeypatch.setattr(command, "append_to_stream", failing)
    return calls


@pytest.mark.parametrize("sqlstate", ["40001", "40P01", "55P03", "08000", "08006",
                                      "57P01", "57P02", "57P03"])
def test_transient_errors_are_retried(conn, stream, monkeypatch, sqlstate):
    calls = raise_on_append(monkeypatch, sqlstate)
    with pytest.raises(psycopg.Error) as caught:
        es.handle_command(conn, stream(), Counter_(), evolve, increment("me"), max_attempts=3,
                          sleep=no_sleep)
    assert caught.value.sqlstate == sqlstate
    assert len(calls) == 3 and calls[0] == calls[1] == calls[2]


@pytest.mark.parametrize("sqlstate", ["55000", "53100", "53200", "53300", "57014", "57000",
                                      "42501", "22023", "XX000"])
def test_other_errors_are_raised_at_once(conn, stream, monkeypatch, sqlstate):
    calls = raise_on_append(monkeypatch, sqlstate)
    with pytest.raises(psycopg.Error) as caught:
        es.handle_command(conn, stream(), Counter_(), evolve, increment("me"), max_attempts=3,
                          sleep=no_sleep)
    assert caught.value.sqlstate == sqlstate
    assert len(calls) == 1


def test_a_statement_timeout_is_not_retried(db, stream):
    sid = stream("counter")
    with db.connect() as holder, db.connect() as conn:
        with holder.transaction():
            es.append_to_stream(holder, sid, es.NO_STREAM, [es.Event("Incremented", {})])
            decided = []

            def decide(state):
                decided.append(state)
                return [es.Event("Incremented", {})]

            with conn.transaction():
                conn.execute("SET LOCAL statement_timeout = '100ms'")
                with pytest.raises(es.StatementCanceled):
                    es.handle_command(conn, sid, Counter_(), evolve, decide, sleep=no_sleep)
            assert len(decided) == 1
    with db.connect() as conn:
        assert es.stream_version(conn, sid) == 1


@pytest.mark.parametrize("level", [psycopg.IsolationLevel.REPEATABLE_READ,
                                   psycopg.IsolationLevel.SERIALIZABLE,
                                   psycopg.IsolationLevel.READ_COMMITTED])
def test_conflict_in_a_callers_transaction(db, stream, level):
    """Under a snapshot that never moves a retry would meet the same conflict:
    raise at once. Under READ COMMITTED the retry in a savepoint sees the
    new event."""
    sid = stream("counter")
    decided = []
    with db.connect() as other, db.connect(autocommit=False) as conn:
        es.append_to_stream(other, sid, es.NO_STREAM, [es.Event("Incremented", {"value": 1})])

        def decide(state):
            decided.append(state.count)
            if len(decided) == 1:
                es.append_to_stream(other, sid, 1, [es.Event("Incremented", {"value": 2})])
            return [es.Event("Incremented", {"value": state.count + 1})]

        conn.isolation_level = level
        with conn.transaction():
            conn.execute("CREATE TEMP TABLE caller_work (x int) ON COMMIT DROP")
            conn.execute("INSERT INTO caller_work VALUES (1)")
            if level == psycopg.IsolationLevel.READ_COMMITTED:
                result = es.handle_command(conn, sid, Counter_(), evolve, decide, sleep=no_sleep)
                assert result.version == 3 and result.attempts == 2
                assert decided == [1, 2]
            else:
                with pytest.raises(es.WrongExpectedVersion):
                    es.handle_command(conn, sid, Counter_(), evolve, decide, sleep=no_sleep)
                assert decided == [1]
            # The caller's transaction goes on.
            assert conn.execute("SELECT count(*) FROM caller_work").fetchone()[0] == 1
        expected = 3 if level == psycopg.IsolationLevel.READ_COMMITTED else 2
        assert es.stream_version(other, sid) == expected


def test_ve002_reports_the_version_of_the_commands_last_event(conn, stream):
    sid = stream("order")
    ids = [es.new_event_id(), es.new_event_id()]

    def decide(state):
        return [es.Event("OrderPlaced", {}, id=ids[0]), es.Event("OrderPaid", {}, id=ids[1])]

    assert es.handle_command(conn, sid, Counter_(), evolve, decide).version == 2
    es.append_to_stream(conn, sid, es.ANY, [es.Event("Incremented", {})])
    again = es.handle_command(conn, sid, Counter_(), evolve, decide)
    assert again.already_done and again.attempts == 1 and again.events == ()
    assert again.version == 2
    assert es.stream_version(conn, sid) == 3


def test_a_retry_waits_for_the_earlier_attempt_still_in_flight(db, stream, monkeypatch):
    """The first append is still running on the server (it holds the
    stream's lock) when its connection is lost; it commits 0.3 s later. The
    retry decides differently with the same id: without waiting, the server
    would take its append for a repeat and the result would name an event
    never stored."""
    sid = stream("counter")
    real = command.append_to_stream
    calls = []
    committed = threading.Event()

    def in_flight(conn, stream_id, expected, events, **kwargs):
        calls.append(list(events))
        if len(calls) > 1:
            return real(conn, stream_id, expected, events, **kwargs)
        late = db.connect(autocommit=False)
        real(late, stream_id, expected, events, **kwargs)

        def commit():
            late.commit()
            late.close()
            committed.set()

        threading.Timer(0.3, commit).start()
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(command, "append_to_stream", in_flight)
    decisions = iter(["first", "second"])

    def decide(state):
        return [es.Event("Decided", {"attempt": next(decisions)})]

    with db.connect() as conn:
        result = es.handle_command(conn, sid, Counter_(), evolve, decide, sleep=no_sleep)
        assert committed.wait(10)
        stored = list(es.read_stream(conn, sid))
    assert [e.data["attempt"] for e in stored] == ["first"]
    assert result.already_done and result.version == 1 and result.events == ()
    assert len(calls) == 1


def test_a_retry_that_repeats_part_of_an_earlier_attempt_is_done(db, stream, monkeypatch):
    """The first attempt's two events land after the retry has read (an
    append that was still on its way); the retry decided one event with the
    first id, which the server takes for a repeat. The stored decision is
    the first attempt's, so the command is already done, at version 2."""
    sid = stream("counter")
    real = command.append_to_stream
    calls = []

    def lost(conn, stream_id, expected, events, **kwargs):
        calls.append(list(events))
        if len(calls) == 1:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return real(conn, stream_id, expected, events, **kwargs)

    monkeypatch.setattr(command, "append_to_stream", lost)
    decided = []

    def decide(state):
        decided.append(state.count)
        if len(decided) == 1:
            return [es.Event("Incremented", {"attempt": 1}),
                    es.Event("Incremented", {"attempt": 1})]
        with db.connect() as late:
            real(late, sid, es.NO_STREAM, calls[0])
        return [es.Event("Incremented", {"attempt": 2})]

    with db.connect() as conn:
        result = es.handle_command(conn, sid, Counter_(), evolve, decide, sleep=no_sleep)
        stored = list(es.read_stream(conn, sid))
    assert decided == [0, 0]
    assert [e.id for e in stored] == [e.id for e in calls[0]]
    assert calls[1][0].id == calls[0][0].id
    assert result.already_done and result.version == 2 and result.events == ()


def test_each_command_starts_from_its_own_copy_of_initial_state(conn, stream):
    initial = {"types": []}

    def evolve_in_place(state, event):
        # Against the rule (evolve must return a new state); it must not leak.
        state["types"].append(event.type)
        return state

    seen = []

    def decide(state):
        seen.append(list(state["types"]))
        return []

    first, second = stream(), stream()
    es.append_to_stream(conn, first, es.NO_STREAM, [es.Event("A", 1)])
    es.append_to_stream(conn, second, es.NO_STREAM, [es.Event("B", 1)])
    es.handle_command(conn, first, initial, evolve_in_place, decide)
    es.handle_command(conn, second, initial, evolve_in_place, decide)
    es.handle_command(conn, first, initial, evolve_in_place, decide)
    assert seen == [["A"], ["B"], ["A"]]
    assert initial == {"types": []}


def test_a_conninfo_string_is_a_source(db, stream):
    sid = stream("counter")
    for expected_version in (1, 2):
        result = es.handle_command(db.conninfo, sid, Counter_(), evolve, increment("me"))
        assert result.version == expected_version
    with db.connect() as conn:
        assert [e.data["value"] for e in es.read_stream(conn, sid)] == [1, 2]


def test_ids_given_in_upper_case_are_recognised(conn, stream, monkeypatch):
    sid = stream("order")
    ids = [str(es.new_event_id()).upper() for _ in range(2)]

    def decide(state):
        return [{"type": "OrderPlaced", "data": {}, "id": ids[0]},
                es.Event("OrderPaid", {}, id=ids[1])]

    # Found by the re-read after a lost acknowledgement.
    calls = lose_first_acknowledgement(monkeypatch)
    result = es.handle_command(conn, sid, Counter_(), evolve, decide, sleep=no_sleep)
    assert result.already_done and result.version == 2 and len(calls) == 1
    assert calls[0] == [uuid.UUID(i) for i in ids]
    monkeypatch.undo()
    # Reported by the server (VE002), the version read back by id.
    es.append_to_stream(conn, sid, es.ANY, [es.Event("Incremented", {})])
    again = es.handle_command(conn, sid, Counter_(), evolve, decide)
    assert again.already_done and again.version == 2
    # And as the result's ids when appended.
    other = stream("order")
    upper = str(es.new_event_id()).upper()
    done = es.handle_command(conn, other, Counter_(), evolve,
                             lambda s: [es.Event("OrderPlaced", {}, id=upper)])
    (stored,) = es.read_stream(conn, other)
    assert isinstance(done.events[0].id, uuid.UUID) and done.events[0].id == stored.id
