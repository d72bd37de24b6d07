"""A projection process for the kill-and-restart test.

Usage: projection_worker.py CONNINFO LISTEN_CONNINFO SUBSCRIBER [--no-prepare] [--listen]

Follows the global log into the read model (tables rm_totals and
rm_applied, made by the test) until SIGTERM, which stops it from the signal
handler (cancelling a wait_for_event in progress). With --listen it waits
with LISTEN on LISTEN_CONNINFO instead. rm_applied's primary key makes
an event applied twice fail the batch, and the runner stop, instead of being
counted twice. Each batch sleeps a little inside its transaction, so that a
kill usually lands in the middle of one.
"""

from __future__ import annotations

import logging
import signal
import sys
import time

import psycopg

import event_store_client as es

HANDLER_PAUSE = 0.01


def apply(conn: psycopg.Connection, events) -> None:
    conn.execute("INSERT INTO rm_applied (global_position) SELECT unnest(%s::bigint[])",
                 ([e.global_position for e in events],))
    conn.execute(
        """
        INSERT INTO rm_totals AS t (stream_id, n, total, last_version)
        SELECT stream_id, count(*), sum(amount), max(version)
          FROM unnest(%s::text[], %s::bigint[], %s::bigint[]) AS e(stream_id, amount, version)
         GROUP BY stream_id
        ON CONFLICT (stream_id) DO UPDATE
           SET n = t.n + excluded.n,
               total = t.total + excluded.total,
               last_version = greatest(t.last_version, excluded.last_version)
        """,
        ([e.stream_id for e in events], [e.data["amount"] for e in events],
         [e.version for e in events]))
    time.sleep(HANDLER_PAUSE)


def main() -> None:
    conninfo, listen_conninfo, name = sys.argv[1:4]
    options = {"prepare_threshold": None} if "--no-prepare" in sys.argv[4:] else {}
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    def connect() -> psycopg.Connection:
        return psycopg.connect(conninfo, autocommit=True, **options)

    listen = listen_conninfo if "--listen" in sys.argv[4:] else None
    subscription = es.Subscription(connect, name, apply, batch_size=50, poll_interval=0.5,
                                   listen=listen)
    signal.signal(signal.SIGTERM, lambda *_: subscription.stop())
    print("started", flush=True)
    subscription.run()
    print(f"stopped after {subscription.processed} events", flush=True)


if __name__ == "__main__":
    main()
