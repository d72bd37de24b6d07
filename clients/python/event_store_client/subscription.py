"""Exactly-once projections: follow the global log from a checkpoint.

Each batch is one transaction, on a connection from the source (a pooler in
transaction mode is fine)::

    BEGIN;
    SELECT pg_try_advisory_xact_lock(hashtextextended(<name>, 0));
    -- if not granted: COMMIT, and look again after the poll interval
    SELECT ... FROM event_store.read_all(event_store.checkpoint(<name>), <batch>);
    -- handler(conn, events) updates the read model
    SELECT event_store.save_checkpoint(<name>, <last position>);
    COMMIT;

A crash or an error anywhere rolls all of it back, so every event is applied
exactly once; the lock keeps two runners of the same subscriber from
applying the same batch. The lock is taken in a statement of its own and
the checkpoint read in the next one, so under ``READ COMMITTED`` the read
sees what the previous holder of the lock committed. The lock is only
tried: while another session holds it (another runner applying a batch),
the runner ends its transaction and waits as when idle, so that it never
sits in a lock wait that :meth:`Subscription.stop` cannot end.

When idle the runner polls; with ``listen`` it also waits for
``NOTIFY event_store`` on a dedicated connection of its own, which must be a
direct connection to the server (``LISTEN`` does not work through a pooler
in transaction mode). Appenders send the notification with
``append_to_stream(..., notify=True)`` or ``event_store.notify = on``.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
import time
from typing import Any, Callable, List, Optional, Sequence, Tuple

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import args_row

from ._connections import as_source
from .command import Backoff
from .errors import is_transient, translated
from .events import RecordedEvent
from .store import _COLUMNS, _require_int, _require_stream_id, save_checkpoint

__all__ = ["Subscription", "subscribe"]

log = logging.getLogger("event_store_client")

Handler = Callable[[psycopg.Connection, List[RecordedEvent]], Any]

_LOCK = "SELECT pg_try_advisory_xact_lock(hashtextextended(%s::text, 0))"
_READ_ALL = (
    f"SELECT {_COLUMNS} FROM event_store.read_all("
    "event_store.checkpoint(%s::text), %s::bigint)"
)
_READ_CATEGORY = (
    f"SELECT {_COLUMNS} FROM event_store.read_category(%s::text, "
    "event_store.checkpoint(%s::text), %s::bigint, %s::integer, %s::integer)"
)


class Subscription:
    """A projection runner for one subscriber (one checkpoint).

    ``source``: where batches get their connection (a ``psycopg.Connection``
    outside any transaction, a pool, a callable returning a new connection,
    or a conninfo string, connected to in autocommit with server-side
    prepared statements off). ``name``: the subscriber, whose checkpoint
    and lock are used; give each consumer-group member its own.
    ``handler(conn, events)`` applies a batch inside the batch's
    transaction and must not commit.
    ``category`` and ``consumer_group=(member, size)`` narrow the log read.
    ``listen``: a conninfo string or a callable returning a direct
    connection, for ``LISTEN event_store``; None to poll only.

    A transient error (see :func:`is_transient`: a lost connection,
    ``40001``, ``40P01``, ``55P03``, class ``08``, ``57P01`` to ``57P03``),
    from the runner's statements or the handler, rolls the batch back and
    is retried after ``backoff(n)`` seconds, ``n`` counting the failures in
    a row. Any other error (``55000``, ``53xxx``, a ``57014`` cancel, an
    exception of the handler) rolls the batch back and stops the runner:
    :meth:`run` raises it, and a runner started with :meth:`start` keeps it
    in ``error``.
    """

    def __init__(
        self,
        source: Any,
        name: str,
        handler: Handler,
        *,
        category: Optional[str] = None,
        consumer_group: Optional[Tuple[int, int]] = None,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        listen: Any = None,
        backoff: Callable[[int], float] = Backoff(base=0.1, cap=5.0),
    ) -> None:
        _require_stream_id(name, "name")
        if not callable(handler):
            raise TypeError("handler must be callable")
        if category is not None:
            _require_stream_id(category, "category")
        if consumer_group is not None:
            if category is None:
                raise ValueError("consumer_group needs a category")
            member, size = consumer_group
            _require_int("consumer group member", member)
            _require_int("consumer group size", size)
            if size < 1 or not 0 <= member < size:
                raise ValueError("consumer_group must be (member, size) with 0 <= member < size")
        _require_int("batch_size", batch_size)
        if batch_size < 1:
            raise ValueError("batch_size must be 1 or more")
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        if listen is not None and not (isinstance(listen, str) or callable(listen)):
            raise TypeError("listen must be a conninfo string or a callable")
        self.name = name
        self._source = as_source(source)
        self._owns_source = self._source is not source
        self._handler = handler
        self._category = category
        self._group = consumer_group
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._listen = listen
        self._backoff = backoff
        self._stop = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._thread: Optional[threading.Thread] = None
        self.error: Optional[BaseException] = None
        self.processed = 0

    # One batch.

    def run_once(self) -> int:
        """Apply one batch in one transaction; return how many events (0
        also when another session holds the subscriber's lock)."""
        with self._source.connection() as conn:
            self._check_connection(conn)
            with conn.transaction():
                with translated():
                    row = conn.execute(_LOCK, (self.name,)).fetchone()
                    if row is None or not row[0]:
                        log.debug("subscriber %r: another session holds its lock", self.name)
                        return 0
                    events = self._read(conn)
                if events:
                    self._handler(conn, events)
                    save_checkpoint(conn, self.name, events[-1].global_position)
        self.processed += len(events)
        return len(events)

    def _read(self, conn: psycopg.Connection) -> List[RecordedEvent]:
        with conn.cursor(row_factory=args_row(RecordedEvent)) as cur:
            if self._category is None:
                cur.execute(_READ_ALL, (self.name, self._batch_size))
            else:
                member, size = self._group if self._group else (None, None)
                cur.execute(_READ_CATEGORY,
                            (self._category, self.name, self._batch_size, member, size))
            return cur.fetchall()

    @staticmethod
    def _check_connection(conn: psycopg.Connection) -> None:
        if conn.info.transaction_status != TransactionStatus.IDLE:
            raise psycopg.ProgrammingError(
                "a projection batch needs a connection outside any transaction")
        if conn.isolation_level not in (None, psycopg.IsolationLevel.READ_COMMITTED):
            raise psycopg.ProgrammingError(
                "a projection batch needs READ COMMITTED: under a snapshot taken "
                "before the lock it could read an old checkpoint")

    def catch_up(self) -> int:
        """Apply batches until one comes back short (or stop() is called);
        return how many events."""
        total = 0
        while not self._stop.is_set():
            count = self.run_once()
            total += count
            if count < self._batch_size:
                break
        return total

    # The loop.

    def run(self) -> None:
        """Apply batches until :meth:`stop` is called; raise an error that
        is not transient."""
        listener = _Listener(self._listen) if self._listen is not None else None
        failures = 0
        try:
            if listener is not None:
                listener.open()
            while not self._stop.is_set():
                try:
                    self.catch_up()
                    failures = 0
                except psycopg.Error as exc:
                    if not is_transient(exc):
                        raise
                    failures += 1
                    delay = self._backoff(failures)
                    log.warning("subscriber %r: batch failed (%s: %s); retrying in %.2fs",
                                self.name, type(exc).__name__, exc, delay)
                    self._wait(delay, None)
                    continue
                if not self._stop.is_set():
                    self._wait(self._poll_interval, listener)
        finally:
            if listener is not None:
                listener.close()
            if self._owns_source:
                self._source.close()

    def _wait(self, timeout: float, listener: Optional["_Listener"]) -> None:
        """Sleep until the timeout, a notification or stop()."""
        if listener is not None and not listener.is_open:
            listener.open()
        fds: List[Any] = [self._wake_r]
        if listener is not None and listener.is_open:
            fds.append(listener.fileno())
        ready, _, _ = select.select(fds, [], [], timeout)
        if self._wake_r in ready:
            try:
                while self._wake_r.recv(64):
                    pass
            except BlockingIOError:
                pass
        if listener is not None and listener.is_open and listener.fileno() in ready:
            listener.drain()

    def stop(self) -> None:
        """Ask the runner to stop after the batch it is applying."""
        self._stop.set()
        try:
            self._wake_w.send(b"x")
        except (BlockingIOError, OSError):
            pass

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    # A background thread.

    def start(self) -> "Subscription":
        """Run in a daemon thread; an error that ends it is kept in ``error``."""
        if self._thread is not None:
            raise RuntimeError("already started")

        def target() -> None:
            try:
                self.run()
            except BaseException as exc:
                self.error = exc
                log.exception("subscriber %r stopped on an error", self.name)

        self._thread = threading.Thread(target=target, name=f"subscription-{self.name}",
                                        daemon=True)
        self._thread.start()
        return self

    def join(self, timeout: Optional[float] = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def close(self) -> None:
        """Stop, wait for the thread, and release the wake-up sockets."""
        self.stop()
        self.join()
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _Listener:
    """A dedicated direct connection that listens on channel event_store."""

    RETRY_AFTER = 5.0

    def __init__(self, target: Any) -> None:
        self._target = target
        self._conn: Optional[psycopg.Connection] = None
        self._failed_at = 0.0

    @property
    def is_open(self) -> bool:
        return self._conn is not None and not self._conn.closed

    def open(self) -> None:
        if self._failed_at and time.monotonic() - self._failed_at < self.RETRY_AFTER:
            return
        try:
            if isinstance(self._target, str):
                conn = psycopg.connect(self._target, autocommit=True)
            else:
                conn = self._target()
                conn.autocommit = True
            conn.execute("LISTEN event_store")
            self._conn = conn
            self._failed_at = 0.0
        except psycopg.Error as exc:
            log.warning("LISTEN connection failed (%s); polling meanwhile", exc)
            self._failed_at = time.monotonic()

    def fileno(self) -> int:
        assert self._conn is not None
        return self._conn.fileno()

    def drain(self) -> None:
        """Read what arrived; notifications need nothing more than that."""
        try:
            self._conn.execute("SELECT 1")
        except psycopg.Error as exc:
            log.warning("LISTEN connection lost (%s); polling meanwhile", exc)
            self.close()
            self._failed_at = time.monotonic()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except psycopg.Error:
                pass


def subscribe(source: Any, name: str, handler: Handler, **options: Any) -> Subscription:
    """Start a :class:`Subscription` in a background thread and return it.

    ``sub.stop()`` (or ``sub.close()``, which also waits) ends it.
    """
    return Subscription(source, name, handler, **options).start()
