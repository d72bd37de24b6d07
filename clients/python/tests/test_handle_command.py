"""handle_command: retries under contention, lost acknowledgements, VE002."""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass

import psycopg
import pytest

import event_store_client as es
from event_store_client import command


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


def test_non_autocommit_connection_commits_each_attempt(db, stream):
    sid = stream("counter")
    with db.connect(autocommit=False) as conn:
        result = es.handle_command(conn, sid, Counter_(), evolve, increment("me"))
        assert result.version == 1
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    with db.connect() as other:
        assert es.stream_version(other, sid) == 1
