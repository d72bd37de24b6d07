"""The projection runner: exactly once across kill -9, notifications, stop."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import psycopg
import pytest

import event_store_client as es

WORKER = Path(__file__).with_name("projection_worker.py")
PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def start_worker(database, name: str, listen: bool = False) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), env.get("PYTHONPATH")]))
    args = [sys.executable, str(WORKER), database.conninfo, database.direct_conninfo, name]
    if database.via_pgbouncer:
        args.append("--no-prepare")
    if listen:
        args.append("--listen")
    # stderr goes to a file: a pipe nobody reads could fill up and stall it.
    log = tempfile.TemporaryFile("w+")
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    process.log = log
    assert process.stdout.readline().strip() == "started", worker_log(process)
    return process


def worker_log(worker: subprocess.Popen) -> str:
    worker.log.seek(0)
    return worker.log.read()


def alive(worker: subprocess.Popen) -> bool:
    """True while the worker runs; fails the test at once if it died."""
    if worker.poll() is not None:
        pytest.fail(f"the projection worker exited with {worker.returncode}:\n"
                    f"{worker_log(worker)}")
    return True


def fold_everything(conn):
    """A fresh fold of the whole global log: (n, total, last version) per stream."""
    totals = defaultdict(lambda: [0, 0, 0])
    positions = []
    after = 0
    while True:
        page = es.read_all(conn, after, 1000)
        if not page:
            return dict(totals), positions
        for event in page:
            t = totals[event.stream_id]
            t[0] += 1
            t[1] += event.data["amount"]
            t[2] = max(t[2], event.version)
            positions.append(event.global_position)
        after = page[-1].global_position


def test_projection_killed_and_restarted_applies_every_event_once(new_database):
    database = new_database()
    name = "totals"
    with database.connect() as conn:
        conn.execute("CREATE TABLE rm_totals (stream_id text PRIMARY KEY, n bigint NOT NULL,"
                     " total bigint NOT NULL, last_version bigint NOT NULL)")
        conn.execute("CREATE TABLE rm_applied (global_position bigint PRIMARY KEY)")

    writers_done = threading.Event()
    writer_errors = []
    per_writer = 800

    def writer(number: int) -> None:
        rng = random.Random(number)
        try:
            with database.connect() as conn:
                written = 0
                while written < per_writer:
                    size = min(rng.randint(1, 5), per_writer - written)
                    sid = f"acct-{rng.randrange(40)}"
                    es.append_to_stream(conn, sid, es.ANY, [
                        es.Event("Deposited", {"amount": rng.randrange(1, 1000)})
                        for _ in range(size)], notify=True)
                    written += size
                    time.sleep(0.015)
        except BaseException as exc:
            writer_errors.append(exc)

    def checkpoint() -> int:
        with database.connect() as conn:
            return es.checkpoint(conn, name)

    def last_position() -> int:
        with database.connect() as conn:
            return conn.execute(
                "SELECT coalesce(max(global_position), 0) FROM event_store.events").fetchone()[0]

    writers = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in writers:
        t.start()
    workers = []
    kills_mid_load = []
    try:
        # Kill the runner four times while the writers are still going: two
        # runners that wait with LISTEN, two with wait_for_event.
        for number, kill_at in enumerate((400, 1000, 1600, 2200)):
            worker = start_worker(database, name, listen=number % 2 == 0)
            workers.append(worker)
            wait_until(lambda: alive(worker) and checkpoint() >= kill_at, 120,
                       f"checkpoint {kill_at}")
            assert alive(worker)
            kills_mid_load.append(any(t.is_alive() for t in writers))
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
            assert worker.returncode == -signal.SIGKILL

        # The last one waits with wait_for_event, which its SIGTERM cancels.
        worker = start_worker(database, name)
        workers.append(worker)
        for t in writers:
            t.join(300)
        assert not writer_errors, writer_errors
        total_events = 4 * per_writer
        assert last_position() >= total_events
        wait_until(lambda: alive(worker) and checkpoint() == last_position(), 120,
                   "the runner to catch up")
        assert alive(worker)
        worker.send_signal(signal.SIGTERM)
        out, _ = worker.communicate(timeout=30)
        assert worker.returncode == 0, worker_log(worker)
        assert "stopped after" in out
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
            w.stdout.close()
            w.log.close()

    assert any(kills_mid_load), "the writers finished before the kills: load too small"
    with database.connect() as conn:
        expected, positions = fold_everything(conn)
        assert len(positions) == total_events
        applied = [r[0] for r in conn.execute(
            "SELECT global_position FROM rm_applied ORDER BY 1")]
        assert applied == positions
        model = {r[0]: list(r[1:]) for r in conn.execute(
            "SELECT stream_id, n, total, last_version FROM rm_totals")}
        assert model == expected
        assert es.checkpoint(conn, name) == positions[-1]


def test_two_runners_of_one_subscriber_apply_each_event_once(new_database):
    database = new_database()
    with database.connect() as conn:
        conn.execute("CREATE TABLE applied (global_position bigint PRIMARY KEY, runner int)")
        for i in range(20):
            es.append_to_stream(conn, f"item-{i}", es.NO_STREAM,
                                [es.Event("Made", {"i": i, "k": k}) for k in range(10)])

    def handler_for(runner: int):
        def handler(conn, events):
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO applied VALUES (%s, %s)",
                                [(e.global_position, runner) for e in events])
            time.sleep(0.005)
        return handler

    runners = [es.Subscription(database.connect, "shared", handler_for(r), batch_size=7,
                               poll_interval=0.05) for r in range(2)]
    for r in runners:
        r.start()
    try:
        with database.connect() as conn:
            wait_until(lambda: es.checkpoint(conn, "shared") ==
                       conn.execute("SELECT max(global_position) FROM event_store.events"
                                    ).fetchone()[0], 60, "catching up")
            count, distinct = conn.execute(
                "SELECT count(*), count(DISTINCT global_position) FROM applied").fetchone()
            assert count == distinct == 200
    finally:
        for r in runners:
            r.close()
    assert all(r.error is None for r in runners), [r.error for r in runners]
    assert sum(r.processed for r in runners) == 200


def test_notification_wakes_an_idle_runner(db, stream):
    seen = []
    category = f"wake{random.getrandbits(32):x}"
    with db.connect() as conn:
        es.append_to_stream(conn, stream(category), es.NO_STREAM, [es.Event("A", 1)])
    runner = es.Subscription(db.connect, f"wake-{category}", lambda c, ev: seen.extend(ev),
                             category=category, poll_interval=60, listen=db.direct_conninfo)
    with runner.start():
        wait_until(lambda: len(seen) == 1, 10, "the first event")
        time.sleep(0.2)  # idle now, with 60 s until the next poll
        began = time.monotonic()
        with db.connect() as conn:
            es.append_to_stream(conn, stream(category), es.NO_STREAM, [es.Event("B", 2)],
                                notify=True)
        wait_until(lambda: len(seen) == 2, 10, "the notified event")
        assert time.monotonic() - began < 5
    assert runner.error is None
    assert [e.type for e in seen] == ["A", "B"]


def test_stop_ends_an_idle_runner_promptly(db):
    runner = es.Subscription(db.connect, f"idle-{random.getrandbits(32):x}",
                             lambda c, ev: None, category="nothing", poll_interval=60)
    runner.start()
    time.sleep(0.3)
    began = time.monotonic()
    runner.close()
    assert time.monotonic() - began < 5
    assert runner.error is None


def test_handler_error_rolls_back_and_stops_the_runner(db, stream):
    category = f"fail{random.getrandbits(32):x}"
    name = f"failing-{category}"
    with db.connect() as conn:
        es.append_to_stream(conn, stream(category), es.NO_STREAM, [es.Event("A", 1)])

    def handler(conn, events):
        conn.execute("SELECT event_store.save_checkpoint(%s, 999999)", (name,))
        raise RuntimeError("read model refused")

    runner = es.subscribe(db.connect, name, handler, category=category, poll_interval=0.05)
    runner.join(10)
    assert isinstance(runner.error, RuntimeError)
    runner.close()
    with db.connect() as conn:
        assert es.checkpoint(conn, name) == 0


def test_consumer_group_members_split_a_category(new_database):
    database = new_database()
    with database.connect() as conn:
        for i in range(30):
            es.append_to_stream(conn, f"job-{i}", es.NO_STREAM, [es.Event("Queued", {"i": i})])
    seen = {0: [], 1: [], 2: []}
    with database.connect() as conn:
        for member in seen:
            runner = es.Subscription(conn, f"jobs-{member}",
                                     lambda c, ev, m=member: seen[m].extend(ev),
                                     category="job", consumer_group=(member, 3))
            runner.catch_up()
            runner.close()
    streams = [{e.stream_id for e in events} for events in seen.values()]
    assert sum(len(s) for s in streams) == 30
    assert set.union(*streams) == {f"job-{i}" for i in range(30)}


def test_batch_refuses_a_connection_inside_a_transaction(db):
    with db.connect(autocommit=False) as conn:
        conn.execute("SELECT 1")
        runner = es.Subscription(conn, "in-tx", lambda c, ev: None)
        with pytest.raises(psycopg.ProgrammingError):
            runner.run_once()
        runner.close()


def test_a_lock_held_elsewhere_does_not_stall_the_runner(db, stream):
    """Another session holds the subscriber's lock (another runner in the
    middle of a batch): the runner waits as when idle, and stop() ends it
    promptly. Once the lock is free, the batch is applied."""
    category = f"held{random.getrandbits(32):x}"
    name = f"held-{category}"
    with db.connect() as conn:
        es.append_to_stream(conn, stream(category), es.NO_STREAM, [es.Event("A", 1)])
    seen = []
    runner = es.Subscription(db.connect, name, lambda c, ev: seen.extend(ev), category=category,
                             poll_interval=0.05)
    with db.connect(autocommit=False) as holder:
        try:
            holder.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (name,))
            runner.start()
            time.sleep(0.5)
            assert seen == []
            began = time.monotonic()
            runner.stop()
            runner.join(5)
            assert not runner._thread.is_alive(), "stop() did not end a runner kept off its lock"
            assert time.monotonic() - began < 2
        finally:
            holder.rollback()
    runner.close()
    assert runner.error is None and seen == []

    with db.connect() as conn:
        again = es.Subscription(conn, name, lambda c, ev: seen.extend(ev), category=category)
        assert again.run_once() == 1
        again.close()
    assert [e.type for e in seen] == ["A"]


def test_a_permanent_server_error_stops_the_runner(new_database):
    database = new_database()
    with database.connect() as conn:
        es.append_to_stream(conn, "item-1", es.NO_STREAM, [es.Event("A", 1)])
        # read_category needs the category index: without it the server
        # refuses with 55000 until the index is back.
        conn.execute("DROP INDEX event_store.events_category_idx")
    runner = es.subscribe(database.connect, "items", lambda c, ev: None, category="item",
                          poll_interval=0.05, backoff=lambda n: 0.05)
    try:
        runner.join(10)
        assert not runner._thread.is_alive()
        assert isinstance(runner.error, psycopg.Error) and runner.error.sqlstate == "55000"
    finally:
        runner.close()


@pytest.mark.parametrize("sqlstate, retried", [("40001", True), ("40P01", True),
                                               ("55P03", True), ("57P01", True),
                                               ("57014", False), ("53300", False),
                                               ("55000", False), ("42501", False)])
def test_handler_server_errors_retried_only_when_transient(db, stream, sqlstate, retried):
    category = f"err{random.getrandbits(32):x}"
    name = f"err-{category}"
    with db.connect() as conn:
        es.append_to_stream(conn, stream(category), es.NO_STREAM, [es.Event("A", 1)])
    calls = []

    def handler(conn, events):
        calls.append(len(events))
        if len(calls) == 1:
            conn.execute(f"DO $$ BEGIN RAISE EXCEPTION 'injected' USING ERRCODE = '{sqlstate}';"
                         " END $$")

    runner = es.subscribe(db.connect, name, handler, category=category, poll_interval=0.05,
                          backoff=lambda n: 0.01)
    try:
        if retried:
            wait_until(lambda: len(calls) == 2, 10, "the batch to be retried")
            with db.connect() as conn:
                wait_until(lambda: es.checkpoint(conn, name) > 0, 10, "the checkpoint")
            assert runner.error is None
        else:
            runner.join(10)
            assert not runner._thread.is_alive()
            assert runner.error.sqlstate == sqlstate and calls == [1]
            with db.connect() as conn:
                assert es.checkpoint(conn, name) == 0
    finally:
        runner.close()


def test_subscribe_takes_a_conninfo_string(db, stream):
    category = f"info{random.getrandbits(32):x}"
    with db.connect() as conn:
        for n in range(3):
            es.append_to_stream(conn, stream(category), es.NO_STREAM, [es.Event("A", n)])
    seen = []
    runner = es.subscribe(db.conninfo, f"info-{category}", lambda c, ev: seen.extend(ev),
                          category=category, poll_interval=0.05, batch_size=1)
    try:
        wait_until(lambda: len(seen) == 3, 10, "three events")
    finally:
        runner.close()
    assert runner.error is None
    assert sorted(e.data for e in seen) == [0, 1, 2]
