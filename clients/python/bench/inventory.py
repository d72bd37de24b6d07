"""bench/inventory.py: handle_command and the projection runner under load,
in the shape of an inventory service.

Commands: USERS threads, each with its own connection, reserve one unit at
a time of one of PRODUCTS hot products through handle_command (re-read,
decide, append, retry with backoff and jitter), half of them with a shared
StateCache, for SECONDS seconds. Each product starts with more stock than
can sell out. Afterwards every product's stream is folded again: the units
sold must equal the reservations the users saw succeed (no lost update,
none counted twice), and the versions must be 1..head. Prints commands/s,
the spread of attempts per command, conflicts retried, and latency
percentiles.

Projection: a Subscription then projects the whole category into a table,
from checkpoint 0, in batches of BATCH (catch_up); prints events/s and
checks the table against the fold.

Usage: python3 bench/inventory.py [seconds] [users] [products] [batch]
Connection from PGHOST, PGPORT, PGUSER; with ES_PGBOUNCER_HOST and
ES_PGBOUNCER_PORT the users' connections go through that pgbouncer
(transaction mode, no server-side prepared statements). A database is
created and dropped.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from collections import Counter

import psycopg
from psycopg import sql

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from event_store_client import (NO_STREAM, StateCache, Subscription,  # noqa: E402
                                append_to_stream, handle_command, read_stream)

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 20
USERS = int(sys.argv[2]) if len(sys.argv) > 2 else 16
PRODUCTS = int(sys.argv[3]) if len(sys.argv) > 3 else 5
BATCH = int(sys.argv[4]) if len(sys.argv) > 4 else 500

BOUNCER = (os.environ.get("ES_PGBOUNCER_HOST"), os.environ.get("ES_PGBOUNCER_PORT"))
VIA_BOUNCER = all(BOUNCER)


def connect(dbname: str, direct: bool = False) -> psycopg.Connection:
    if VIA_BOUNCER and not direct:
        return psycopg.connect(host=BOUNCER[0], port=BOUNCER[1], dbname=dbname,
                               autocommit=True, prepare_threshold=None)
    return psycopg.connect(dbname=dbname, autocommit=True)


def evolve(state: dict, e) -> dict:
    if e.type == "Stocked":
        return {"stock": state["stock"] + e.data["units"], "reserved": state["reserved"]}
    if e.type == "Reserved":
        return {"stock": state["stock"] - e.data["units"],
                "reserved": state["reserved"] + e.data["units"]}
    return state


def decide(state: dict):
    if state["stock"] < 1:
        raise ValueError("out of stock")
    return [{"type": "Reserved", "data": {"units": 1}}]


def percentile(xs, p):
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def main() -> int:
    dbname = f"es_pyinventory_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dbname="postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        admin.execute(sql.SQL("ALTER DATABASE {} SET event_store.log_conflicts = off")
                      .format(sql.Identifier(dbname)))
    try:
        with connect(dbname, direct=True) as conn:
            conn.execute("CREATE EXTENSION event_store")
            conn.execute("CREATE TABLE stock_view (product text PRIMARY KEY,"
                         " reserved bigint NOT NULL)")
        streams = [f"product-{i}" for i in range(PRODUCTS)]
        with connect(dbname) as conn:
            for s in streams:
                append_to_stream(conn, s, NO_STREAM, [{"type": "Stocked", "data": {"units": 10**9}}])
        print(f"{USERS} users, {PRODUCTS} hot products, {SECONDS:g} s, "
              + ("through pgbouncer (transaction mode)" if VIA_BOUNCER else "direct connections"))

        cache = StateCache()
        lock = threading.Lock()
        sold = Counter()
        attempts = Counter()
        latencies = []
        failures = []
        end = time.monotonic() + SECONDS

        def user(u: int) -> None:
            try:
                with connect(dbname) as conn:
                    i = 0
                    while time.monotonic() < end:
                        s = streams[(u * 3 + i) % PRODUCTS]
                        i += 1
                        t0 = time.perf_counter()
                        r = handle_command(conn, s, {"stock": 0, "reserved": 0}, evolve, decide,
                                           max_attempts=100,
                                           cache=cache if u % 2 == 0 else None)
                        ms = (time.perf_counter() - t0) * 1000
                        if r.already_done:
                            raise AssertionError("a fresh command was reported already done")
                        with lock:
                            latencies.append(ms)
                            sold[s] += len(r.events)
                            attempts[r.attempts] += 1
            except BaseException as exc:  # reported below; the check must fail
                failures.append(exc)

        t0 = time.perf_counter()
        threads = [threading.Thread(target=user, args=(u,)) for u in range(USERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - t0
        if failures:
            print(f"FAILED: {failures[0]!r}")
            return 1

        lost = gaps = total = 0
        with connect(dbname) as conn:
            for s in streams:
                state = {"stock": 0, "reserved": 0}
                expect = 1
                for e in read_stream(conn, s):
                    gaps += e.version != expect
                    expect += 1
                    state = evolve(state, e)
                    total += 1
                lost += abs(state["reserved"] - sold[s])
        commands = sum(attempts.values())
        conflicts = sum((n - 1) * c for n, c in attempts.items())
        latencies.sort()

        def bucket(lo, hi):
            return sum(c for n, c in attempts.items() if lo <= n <= hi)

        print(f"commands: {commands} in {seconds:.1f} s = {commands / seconds:.0f}/s; "
              f"conflicts retried: {conflicts} ({conflicts / commands:.2f} per command)")
        print(f"attempts per command: 1: {bucket(1, 1)}, 2: {bucket(2, 2)}, 3-5: {bucket(3, 5)}, "
              f"6-10: {bucket(6, 10)}, more: {bucket(11, 10**9)}; most: {max(attempts)}")
        print(f"latency ms: p50 {percentile(latencies, 50):.1f}, p90 {percentile(latencies, 90):.1f}, "
              f"p99 {percentile(latencies, 99):.1f}, max {latencies[-1]:.1f}")
        ok = lost == 0 and gaps == 0
        print(f"check: units sold in the streams minus units the users saw sold: {lost}; "
              f"version gaps: {gaps} -> {'no lost update' if ok else 'FAILED'}")

        def apply(conn: psycopg.Connection, events) -> None:
            add = Counter()
            for e in events:
                if e.type == "Reserved":
                    add[e.stream_id] += e.data["units"]
            for product, n in add.items():
                conn.execute("INSERT INTO stock_view VALUES (%s, %s) ON CONFLICT (product)"
                             " DO UPDATE SET reserved = stock_view.reserved + excluded.reserved",
                             (product, n))

        t0 = time.perf_counter()
        with connect(dbname) as conn:
            sub = Subscription(conn, "stock_view", apply, category="product", batch_size=BATCH)
            projected = sub.catch_up()
            pseconds = time.perf_counter() - t0
            rows = dict(conn.execute("SELECT product, reserved FROM stock_view").fetchall())
        mismatched = sum(rows.get(s, 0) != sold[s] for s in streams)
        print(f"projection: {projected} events in {pseconds:.2f} s = {projected / pseconds:.0f} "
              f"events/s (batches of {BATCH}); products differing from the fold: {mismatched}")
        return 0 if ok and mismatched == 0 and projected == total else 1
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                          .format(sql.Identifier(dbname)))


if __name__ == "__main__":
    sys.exit(main())
