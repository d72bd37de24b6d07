#!/usr/bin/python3
"""bench/subscriptions_latency.py: wake-up latency of subscribers, for
bench/subscriptions.sh.

    subscriptions_latency.py DB MODE WAITERS SECONDS [MIN_MS MAX_MS]

MODE is "wait" (each waiter loops on event_store.wait_for_event) or
"notify" (each waiter LISTENs on channel "event_store"; the writer appends
with event_store.notify on).  Connects through libpq's environment (PGHOST,
PGPORT, PGUSER).

One writer appends one event per transaction (append_event, autocommit,
synchronous_commit off) to a stream of its own, sleeping a random
MIN_MS..MAX_MS (default 5..15) between appends, so that its appends do not
keep step with a poll interval.  The append statement returns the server's
clock_timestamp() read after append_event returned (SELECT v,
clock_timestamp() FROM (SELECT append_event(...) AS v OFFSET 0) s: the
subquery is evaluated first): t_end, just before the commit.  The writer
also records its own clock when the reply arrives (t_recv); the commit
became visible between t_end and t_recv (a backend commits, makes the
commit visible, then replies).  WAITERS waiter processes, each with its own
connection, block until an event is there:

  wait:   SELECT w, clock_timestamp() FROM (SELECT wait_for_event(last, '1s')
          AS w OFFSET 0) s: the server's clock the moment the wait returned
          (t_srv); the waiter's clock after the reply arrived is t_cli.
          last := w.
  notify: select() on the connection, then poll(); t_cli when the
          notification has been read.  Notifications carry no payload; one
          commit sends one, in commit order, so the k-th one received is the
          writer's k-th append.

Latency of an event = t_srv (or t_cli) - t_end of its append.  All clocks
are this machine's CLOCK_REALTIME (Python's time.time() and PostgreSQL's
clock_timestamp() both read it).  The commit becomes visible after t_end, so
the latencies are high by the commit's own duration at most, which is below
t_recv - t_end (commit plus the reply's trip; reported as "commit+reply").
A waiter that returns with an event past the next one (two commits while it
was busy) records only the one it got.

Prints one JSON object: percentiles in milliseconds and sample counts.
"""

import json
import multiprocessing as mp
import os
import random
import select
import statistics
import sys
import time

import psycopg2


def connect(db):
    conn = psycopg2.connect(dbname=db)
    conn.autocommit = True
    return conn


def waiter(db, mode, start_pos, ready, stop, out):
    conn = connect(db)
    cur = conn.cursor()
    samples = []
    if mode == "notify":
        cur.execute("LISTEN event_store")
        ready.wait()
        k = 0
        while not stop.is_set():
            r, _, _ = select.select([conn], [], [], 0.5)
            if not r:
                continue
            conn.poll()
            t_cli = time.time()
            while conn.notifies:
                conn.notifies.pop(0)
                k += 1
                samples.append((k, None, t_cli))
    else:
        last = start_pos
        ready.wait()
        while not stop.is_set():
            cur.execute(
                "SELECT w, extract(epoch FROM clock_timestamp())::float8 "
                "FROM (SELECT event_store.wait_for_event(%s, '1 second') AS w "
                "OFFSET 0) s", (last,))
            w, t_srv = cur.fetchone()
            t_cli = time.time()
            if w is not None:
                samples.append((w, t_srv, t_cli))
                last = w
    conn.close()
    out.put(samples)


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    i = min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[i]


def main():
    db, mode, nwaiters, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    lo = float(sys.argv[5]) if len(sys.argv) > 5 else 5.0
    hi = float(sys.argv[6]) if len(sys.argv) > 6 else 15.0
    stream = "lat-%s-%d-%d" % (mode, nwaiters, os.getpid())

    wconn = connect(db)
    wcur = wconn.cursor()
    wcur.execute("SET synchronous_commit = off")
    wcur.execute("SET event_store.notify = %s", ("on" if mode == "notify" else "off",))
    wcur.execute("SELECT coalesce(max(global_position), 0) FROM event_store.events")
    start_pos = wcur.fetchone()[0]

    ctx = mp.get_context("fork")
    ready = ctx.Event()
    stop = ctx.Event()
    out = ctx.Queue()
    procs = [ctx.Process(target=waiter, args=(db, mode, start_pos, ready, stop, out))
             for _ in range(nwaiters)]
    for p in procs:
        p.start()
    # Let every waiter connect (and LISTEN, or enter its first wait).
    time.sleep(1.5)
    ready.set()
    time.sleep(0.5)

    sends = []  # (version, t_end, t_recv)
    end = time.time() + seconds
    rng = random.Random(42)
    while time.time() < end:
        time.sleep(rng.uniform(lo, hi) / 1000.0)
        wcur.execute(
            "SELECT v, extract(epoch FROM clock_timestamp())::float8 "
            "FROM (SELECT event_store.append_event(%s, -2, 'Lat', '{}') AS v "
            "OFFSET 0) s", (stream,))
        v, t_end = wcur.fetchone()
        t_recv = time.time()
        sends.append((v, t_end, t_recv))
    time.sleep(0.3)
    stop.set()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()

    wcur.execute("SELECT version, global_position FROM event_store.events WHERE stream_id = %s",
                 (stream,))
    pos_of = dict(wcur.fetchall())
    by_pos = {pos_of[v]: (te, tr) for v, te, tr in sends}
    by_k = {k + 1: (te, tr) for k, (v, te, tr) in enumerate(sends)}

    lat_srv, lat_cli = [], []
    unmatched = 0
    for samples in results:
        for key, t_srv, t_cli in samples:
            ref = (by_k if mode == "notify" else by_pos).get(key)
            if ref is None:
                unmatched += 1
                continue
            t_end = ref[0]
            if t_srv is not None:
                lat_srv.append((t_srv - t_end) * 1000.0)
            lat_cli.append((t_cli - t_end) * 1000.0)
    rtt = [(tr - te) * 1000.0 for _, te, tr in sends]
    r = {
        "mode": mode, "waiters": nwaiters, "appends": len(sends),
        "samples": len(lat_cli), "expected": len(sends) * nwaiters, "unmatched": unmatched,
        "srv_p50": pct(lat_srv, 50), "srv_p99": pct(lat_srv, 99), "srv_max": max(lat_srv) if lat_srv else None,
        "cli_p50": pct(lat_cli, 50), "cli_p99": pct(lat_cli, 99), "cli_max": max(lat_cli) if lat_cli else None,
        "rtt_p50": statistics.median(rtt) if rtt else None, "rtt_p99": pct(rtt, 99),
    }
    print(json.dumps(r))


if __name__ == "__main__":
    main()
