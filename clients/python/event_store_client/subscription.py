"""Exactly-once projections: follow the global log from a checkpoint.

Each batch is one transaction, on a connection from the source (a pooler in
transaction mode is fine)::

    BEGIN;
    SELECT pg_try_advisory_xact_lock(hashtextextended(<name>, 0));
    -- if not granted: COMMIT, and look again after the poll interval
    SELECT ... FROM event_store.read_all(event_store.checkpoint(<name>), <batch>),
           event_store.last_read_position();
    -- handler(conn, events) updates the read model
    SELECT event_store.save_checkpoint(<name>, <how far the read got>);
    COMMIT;

A crash or an error anywhere rolls all of it back, so every event is applied
exactly once; the lock keeps two runners of the same subscriber from
applying the same batch. The lock is taken in a statement of its own and
the checkpoint read in the next one, so under ``READ COMMITTED`` the read
sees what the previous holder of the lock committed. The lock is only
tried: while another session holds it (another runner applying a batch),
the runner ends its transaction and waits as when idle, so that it never
sits in a lock wait that :meth:`Subscription.stop` cannot end.

The checkpoint saved is how far the read got (``last_read_position``,
0.5.0), not the last event returned: with ``event_types`` or
``categories``, a page can be short or empty while the read scanned far
past the events it left out, and the checkpoint moves past them all the
same. On a server before 0.5.0 (or a role that may not execute
``last_read_position``) an unfiltered runner saves the last event's
position, as before.

When a batch comes back short, the runner waits for more with
``event_store.wait_for_event`` (0.5.0), up to the poll interval: one
statement, which works through a pooler in transaction mode;
:meth:`Subscription.stop` cancels it. With ``listen``, or on a server
without ``wait_for_event``, it polls instead, and with ``listen`` also waits
for ``NOTIFY event_store`` on a dedicated connection of its own, which must
be a direct connection to the server (``LISTEN`` does not work through a
pooler in transaction mode). Appenders send the notification with
``append_to_stream(..., notify=True)`` or ``event_store.notify = on``.

With ``on_event_error="park"``, a batch is applied in a savepoint; when that
fails, its events are applied again one by one, each in a savepoint of its
own, and an event whose handler raises is rolled back to its savepoint and
parked with its error (``park_event``, in the batch's transaction); the
batch goes on.
"""

from __future__ import annotations

import datetime
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
from .parked import PARK, SAVEPOINT, error_text, parkable, rollback_to_savepoint
from .store import (
    _COLUMNS,
    _require_int,
    _require_stream_id,
    require_names,
    save_checkpoint,
)

__all__ = ["Subscription", "subscribe"]

log = logging.getLogger("event_store_client")

Handler = Callable[[psycopg.Connection, List[RecordedEvent]], Any]

_LOCK = "SELECT pg_try_advisory_xact_lock(hashtextextended(%s::text, 0))"
# Before 0.5.0: the read alone; the checkpoint is the last event's position.
_READ_ALL = (
    f"SELECT {_COLUMNS} FROM event_store.read_all("
    "event_store.checkpoint(%s::text), %s::bigint)"
)
_READ_CATEGORY = (
    f"SELECT {_COLUMNS} FROM event_store.read_category(%s::text, "
    "event_store.checkpoint(%s::text), %s::bigint, %s::integer, %s::integer)"
)


def _positioned_read(read_call: str) -> str:
    # 0.5.0: the checkpoint, the page and how far the read got, in one
    # statement. The position is taken in a CTE whose FROM counts the page,
    # so after the read has run (see store.with_read_position).
    return (
        "WITH cp AS MATERIALIZED (SELECT event_store.checkpoint(%(name)s::text) AS after), "
        f"page AS MATERIALIZED (SELECT r.* FROM cp, {read_call} r), "
        "reached AS MATERIALIZED (SELECT cp.after, event_store.last_read_position()"
        " AS read_position FROM cp, (SELECT count(*) FROM page) n) "
        f"SELECT reached.after, reached.read_position, {_COLUMNS}"
        " FROM reached LEFT JOIN page ON true ORDER BY page.global_position"
    )


_READ_ALL_POSITION = _positioned_read(
    "event_store.read_all(cp.after, %(batch)s::bigint, %(types)s::text[], %(categories)s::text[])")
_READ_CATEGORY_POSITION = _positioned_read(
    "event_store.read_category(%(category)s::text, cp.after, %(batch)s::bigint,"
    " %(member)s::integer, %(size)s::integer, %(types)s::text[])")
_WAIT = (
    "SELECT event_store.wait_for_event(%s::bigint, make_interval(secs => %s::double precision),"
    " %s::text, %s::text[])"
)
# What the server offers this role: a function it lacks, or may not
# execute, is left alone.
_FEATURES = (
    "SELECT coalesce(has_function_privilege("
    "to_regprocedure('event_store.last_read_position()')::oid, 'EXECUTE'), false),"
    " coalesce(has_function_privilege(to_regprocedure("
    "'event_store.wait_for_event(bigint, interval, text, text[])')::oid, 'EXECUTE'), false),"
    " coalesce(has_function_privilege(to_regprocedure("
    "'event_store.park_event(text, bigint, text)')::oid, 'EXECUTE'), false)"
)
# How often stop() sends the cancel again while a wait has not ended: a
# cancel that reaches the server before the statement has begun is ignored.
_CANCEL_AGAIN = 0.25


class Subscription:
    """A projection runner for one subscriber (one checkpoint).

    ``source``: where batches get their connection (a ``psycopg.Connection``
    outside any transaction, a pool, a callable returning a new connection,
    or a conninfo string, connected to in autocommit with server-side
    prepared statements off). ``name``: the subscriber, whose checkpoint
    and lock are used; give each consumer-group member its own.
    ``handler(conn, events)`` applies a batch inside the batch's
    transaction and must not commit.
    ``category`` and ``consumer_group=(member, size)`` narrow the log read;
    ``event_types`` (0.5.0) keeps only events of those types, and
    ``categories`` (0.5.0, without ``category``) only those categories.
    ``poll_interval``: after a short batch, the longest wait for new events
    (one ``wait_for_event``, which returns as soon as there is one), or the
    sleep before looking again with ``listen`` or before 0.5.0.
    ``listen``: a conninfo string or a callable returning a direct
    connection, for ``LISTEN event_store``, instead of ``wait_for_event``;
    None (the default) to wait with ``wait_for_event``.
    ``on_event_error``: ``"fail"`` (the default): an exception of the
    handler fails the batch; ``"park"`` (0.5.0): the event it fails on is
    parked with its error and the batch goes on (see the module's notes).
    ``on_parked(event, exc, attempts)`` is called for each event parked,
    after its batch commits.

    A transient error (see :func:`is_transient`: a lost connection,
    ``40001``, ``40P01``, ``55P03``, class ``08``, ``57P01`` to ``57P03``),
    from the runner's statements or the handler, rolls the batch back and
    is retried after ``backoff(n)`` seconds, ``n`` counting the failures in
    a row. Any other error (``55000``, ``53xxx``, a ``57014`` cancel, an
    exception of the handler that is not parked) rolls the batch back and
    stops the runner: :meth:`run` raises it, and a runner started with
    :meth:`start` keeps it in ``error``.
    """

    def __init__(
        self,
        source: Any,
        name: str,
        handler: Handler,
        *,
        category: Optional[str] = None,
        consumer_group: Optional[Tuple[int, int]] = None,
        event_types: Optional[Sequence[str]] = None,
        categories: Optional[Sequence[str]] = None,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        listen: Any = None,
        on_event_error: str = "fail",
        on_parked: Optional[Callable[[RecordedEvent, BaseException, int], Any]] = None,
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
        types = require_names(event_types, "event_types")
        cats = require_names(categories, "categories")
        if cats is not None and category is not None:
            raise ValueError("categories is for a runner over the whole log: "
                             "give category or categories, not both")
        _require_int("batch_size", batch_size)
        if batch_size < 1:
            raise ValueError("batch_size must be 1 or more")
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        if listen is not None and not (isinstance(listen, str) or callable(listen)):
            raise TypeError("listen must be a conninfo string or a callable")
        if on_event_error not in ("fail", "park"):
            raise ValueError(f"on_event_error must be 'fail' or 'park', not {on_event_error!r}")
        if on_parked is not None and not callable(on_parked):
            raise TypeError("on_parked must be callable")
        self.name = name
        self._source = as_source(source)
        self._owns_source = self._source is not source
        self._handler = handler
        self._category = category
        self._group = consumer_group
        self._event_types = types
        self._categories = cats
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._listen = listen
        self._park = on_event_error == "park"
        self._on_parked = on_parked
        self._backoff = backoff
        self._stop = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._thread: Optional[threading.Thread] = None
        # What the server offers: (positions, waits, parking), asked in the
        # first batch and again after a failed one.
        self._features: Optional[Tuple[bool, bool, bool]] = None
        # How far the last batch's read got, where a wait starts from.
        self._reached: Optional[int] = None
        self._locked = False
        # The connection a wait_for_event runs on, for stop() to cancel.
        self._waiting: Optional[psycopg.Connection] = None
        self.error: Optional[BaseException] = None
        self.processed = 0
        self.parked = 0
        self.position: Optional[int] = None

    @property
    def _filtered(self) -> bool:
        return self._event_types is not None or self._categories is not None

    # One batch.

    def run_once(self) -> int:
        """Apply one batch in one transaction; return how many events it had
        (0 also when another session holds the subscriber's lock)."""
        try:
            return self._run_once()
        except BaseException:
            # Ask again next time: the failure may have been a missing function.
            self._features = None
            raise

    def _run_once(self) -> int:
        parked: List[Tuple[RecordedEvent, BaseException, int]] = []
        with self._source.connection() as conn:
            self._check_connection(conn)
            with conn.transaction():
                with translated():
                    row = conn.execute(_LOCK, (self.name,)).fetchone()
                    if row is None or not row[0]:
                        log.debug("subscriber %r: another session holds its lock", self.name)
                        self._locked = True
                        return 0
                    self._locked = False
                    if self._features is None:
                        self._features = self._check_features(conn)
                    events, before, reached = self._read(conn)
                if events:
                    if self._park:
                        parked = self._apply_parking(conn, events)
                    else:
                        self._handler(conn, events)
                moved = reached is not None and (before is None or reached > before)
                if moved:
                    save_checkpoint(conn, self.name, reached)
        if moved or before is not None:
            self.position = reached if moved else before
        self._reached = reached if reached is not None else before
        self.processed += len(events) - len(parked)
        self.parked += len(parked)
        for event, exc, attempts in parked:
            log.warning("subscriber %r: parked event %d (attempt %d): %s",
                        self.name, event.global_position, attempts, exc)
            if self._on_parked is not None:
                self._on_parked(event, exc, attempts)
        return len(events)

    def _check_features(self, conn: psycopg.Connection) -> Tuple[bool, bool, bool]:
        positions, waits, parking = conn.execute(_FEATURES).fetchone()
        if self._filtered and not positions:
            raise psycopg.NotSupportedError(
                "event_types and categories need event_store 0.5.0 and EXECUTE on "
                "event_store.last_read_position() (the checkpoint of a filtered read)")
        if self._park and not (positions and parking):
            raise psycopg.NotSupportedError(
                "on_event_error='park' needs event_store 0.5.0 and EXECUTE on "
                "event_store.park_event(text, bigint, text) and "
                "event_store.last_read_position()")
        return positions, waits, parking

    def _read(self, conn: psycopg.Connection
              ) -> Tuple[List[RecordedEvent], Optional[int], Optional[int]]:
        """The batch's events, the checkpoint before it and how far the read
        got (None for both before 0.5.0, where the last event's position is
        the checkpoint)."""
        member, size = self._group if self._group else (None, None)
        assert self._features is not None
        if self._features[0]:
            if self._category is None:
                rows = conn.execute(_READ_ALL_POSITION, {
                    "name": self.name, "batch": self._batch_size,
                    "types": self._event_types, "categories": self._categories}).fetchall()
            else:
                rows = conn.execute(_READ_CATEGORY_POSITION, {
                    "name": self.name, "batch": self._batch_size, "category": self._category,
                    "member": member, "size": size, "types": self._event_types}).fetchall()
            events = [RecordedEvent(*row[2:]) for row in rows if row[2] is not None]
            return events, rows[0][0], rows[0][1]
        with conn.cursor(row_factory=args_row(RecordedEvent)) as cur:
            if self._category is None:
                cur.execute(_READ_ALL, (self.name, self._batch_size))
            else:
                cur.execute(_READ_CATEGORY,
                            (self._category, self.name, self._batch_size, member, size))
            events = cur.fetchall()
        return events, None, events[-1].global_position if events else None

    def _apply_parking(self, conn: psycopg.Connection, events: List[RecordedEvent]
                       ) -> List[Tuple[RecordedEvent, BaseException, int]]:
        """Apply a batch when parking: first the whole batch in one
        savepoint (a batch that applies costs one savepoint, not one per
        event: a transaction with more than 64 subtransactions that wrote
        slows other sessions' visibility checks while it is open); when that
        fails with an error that may be parked, the events one by one, each
        in a savepoint, parking those that fail. Returns the parked ones."""
        parked: List[Tuple[RecordedEvent, BaseException, int]] = []
        with translated():
            conn.execute(f"SAVEPOINT {SAVEPOINT}")
        try:
            self._handler(conn, events)
            # Fails when the handler left the transaction aborted: the batch
            # failed too.
            conn.execute(f"RELEASE SAVEPOINT {SAVEPOINT}")
            return parked
        except Exception as exc:
            if not parkable(conn, exc):
                raise
            rollback_to_savepoint(conn)
            if len(events) == 1:
                parked.append(self._park_one(conn, events[0], exc))
                return parked
        for event in events:
            with translated():
                conn.execute(f"SAVEPOINT {SAVEPOINT}")
            try:
                self._handler(conn, [event])
                conn.execute(f"RELEASE SAVEPOINT {SAVEPOINT}")
            except Exception as exc:
                if not parkable(conn, exc):
                    raise
                rollback_to_savepoint(conn)
                parked.append(self._park_one(conn, event, exc))
        return parked

    def _park_one(self, conn: psycopg.Connection, event: RecordedEvent,
                  exc: BaseException) -> Tuple[RecordedEvent, BaseException, int]:
        with translated():
            attempts = conn.execute(PARK, (self.name, event.global_position,
                                           error_text(exc))).fetchone()[0]
        return event, exc, attempts

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
                    if not self._stop.is_set():
                        if self._can_wait_for_event(listener):
                            self._wait_for_event()
                        else:
                            self._wait(self._poll_interval, listener)
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
        finally:
            if listener is not None:
                listener.close()
            if self._owns_source:
                self._source.close()

    def _can_wait_for_event(self, listener: Optional["_Listener"]) -> bool:
        features = self._features
        return (listener is None and not self._locked and self._reached is not None
                and features is not None and features[0] and features[1])

    def _wait_for_event(self) -> None:
        """Wait with wait_for_event for an event past where the last batch's
        read got, up to the poll interval; stop() cancels it."""
        category = self._category
        if category is None and self._categories is not None and len(self._categories) == 1:
            category = self._categories[0]
        params = (self._reached, float(self._poll_interval), category, self._event_types)
        with self._source.connection() as conn:
            # stop() reads _waiting after setting the flag: either it sees
            # this connection and cancels the wait, or the wait sees the flag.
            self._waiting = conn
            try:
                if self._stop.is_set():
                    return
                with translated():
                    if conn.autocommit:
                        conn.execute(_WAIT, params)
                    else:
                        with conn.transaction():
                            conn.execute(_WAIT, params)
            except psycopg.errors.QueryCanceled:
                if self._stop.is_set():
                    return
                raise
            finally:
                self._waiting = None

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
        """Ask the runner to stop after the batch it is applying; a wait in
        progress is cancelled."""
        self._stop.set()
        try:
            self._wake_w.send(b"x")
        except (BlockingIOError, OSError):
            pass
        conn = self._waiting
        if conn is not None:
            threading.Thread(target=self._cancel_wait, args=(conn,),
                             name=f"subscription-{self.name}-cancel", daemon=True).start()

    def _cancel_wait(self, conn: psycopg.Connection) -> None:
        # Sent again until the wait ends: a cancel that reaches the server
        # before the statement has begun is ignored.
        while self._waiting is conn:
            try:
                conn.cancel()
            except Exception:  # a closed connection, a failed cancel request
                return
            time.sleep(_CANCEL_AGAIN)

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
