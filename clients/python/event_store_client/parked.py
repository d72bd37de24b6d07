"""Parked events (extension 0.5.0): an event a subscriber could not apply,
kept with its error so that the subscriber can move on and apply it later.

- :func:`park_event`, :func:`read_parked`, :func:`unpark_event`: one SQL
  call each, in the connection's transaction;
- :func:`replay_parked`: each parked event applied and unparked in one
  transaction;
- ``Subscription(..., on_event_error="park")`` parks the events its handler
  fails on (see :mod:`event_store_client.subscription`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional, Tuple

import psycopg

from ._connections import as_source
from .errors import is_transient, translated
from .events import ParkedEvent, RecordedEvent
from .store import _require_int, _require_stream_id

__all__ = [
    "ReplayResult",
    "park_event",
    "read_parked",
    "unpark_event",
    "replay_parked",
]

log = logging.getLogger("event_store_client")

PARK = "SELECT event_store.park_event(%s::text, %s::bigint, %s::text)"
_READ_PARKED = (
    "SELECT global_position, stream_id, version, event_id, event_type, data, metadata,"
    " created_at, error, attempts, parked_at"
    " FROM event_store.read_parked(%s::text, %s::bigint, %s::bigint)"
)
_UNPARK = "SELECT event_store.unpark_event(%s::text, %s::bigint)"
# The subscriber's lock, the one its runner's batches take (waited for here).
_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%s::text, 0))"
#: The savepoint each event (or batch) is applied in.
SAVEPOINT = "event_store_event"


def error_text(exc: BaseException) -> str:
    """The text an error is parked with: ``TypeName: message``, without NUL
    characters, which a text value cannot hold."""
    message = str(exc)
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text.replace("\x00", "")


def parkable(conn: psycopg.Connection, exc: BaseException) -> bool:
    """Whether an error of a handler's work may be parked: an ``Exception``
    on a connection that is still usable, but not an error that passes on its
    own, which fails the whole batch instead so that it is tried again
    (parking it would set aside an event nothing is wrong with): a transient
    error (:func:`~event_store_client.is_transient`: ``40001``, ``40P01``,
    ``55P03``, a lost connection, ...), a cancel or ``statement_timeout``
    (``57014``) and a conflict (``VE001``)."""
    if not isinstance(exc, Exception) or conn.broken or conn.closed:
        return False
    if is_transient(exc):
        return False
    if isinstance(exc, psycopg.Error) and exc.sqlstate in ("57014", "VE001"):
        return False
    return True


def rollback_to_savepoint(conn: psycopg.Connection) -> None:
    """Roll the work back to the savepoint, and drop it."""
    with translated():
        conn.execute(f"ROLLBACK TO SAVEPOINT {SAVEPOINT}")
        conn.execute(f"RELEASE SAVEPOINT {SAVEPOINT}")


def _row_to_parked(row: Tuple[Any, ...]) -> ParkedEvent:
    event = RecordedEvent(*row[:8]) if row[3] is not None else None
    return ParkedEvent(row[0], event, row[8], row[9], row[10])


def park_event(conn: psycopg.Connection, subscriber: str, global_position: int,
               error: str) -> int:
    """Park an event a subscriber could not apply, with its error text;
    return the attempts so far (parking it again replaces the error and adds
    one). Raises psycopg's ``NoDataFound`` (``P0002``) for a position where
    the role can read no event."""
    _require_stream_id(subscriber, "subscriber")
    _require_int("global_position", global_position)
    if global_position < 1:
        raise ValueError(f"global_position must be 1 or more, not {global_position}")
    if not isinstance(error, str):
        raise TypeError(f"error must be a str, not {type(error).__name__}")
    with translated():
        return conn.execute(PARK, (subscriber, global_position,
                                   error.replace("\x00", ""))).fetchone()[0]


def read_parked(conn: psycopg.Connection, subscriber: str, max_count: int = 100,
                after_position: int = 0) -> List[ParkedEvent]:
    """A page of a subscriber's parked events after a position, by position,
    as :class:`ParkedEvent` (``event`` None when the event is gone)."""
    _require_stream_id(subscriber, "subscriber")
    _require_int("max_count", max_count)
    _require_int("after_position", after_position)
    if max_count < 0:
        raise ValueError("max_count must not be negative")
    with translated():
        rows = conn.execute(_READ_PARKED, (subscriber, max_count, after_position)).fetchall()
    return [_row_to_parked(row) for row in rows]


def unpark_event(conn: psycopg.Connection, subscriber: str, global_position: int) -> bool:
    """Remove a parking; True if this call removed it. Call it in the
    transaction that applies the event, and roll back on False: another
    replayer got there first."""
    _require_stream_id(subscriber, "subscriber")
    _require_int("global_position", global_position)
    with translated():
        return bool(conn.execute(_UNPARK, (subscriber, global_position)).fetchone()[0])


@dataclass
class ReplayResult:
    """What :func:`replay_parked` did: events ``replayed`` (applied and
    unparked), ``failed`` (the handler failed again: parked again with the
    new error, kept in ``errors`` as ``(global_position, exception)``),
    ``missing`` (gone from the log: unparked without the handler) and
    ``skipped`` (unparked by another replayer first)."""

    replayed: int = 0
    failed: int = 0
    missing: int = 0
    skipped: int = 0
    errors: List[Tuple[int, BaseException]] = field(default_factory=list)


def replay_parked(source: Any, subscriber: str,
                  handler: Callable[[psycopg.Connection, List[RecordedEvent]], Any], *,
                  page_size: int = 100) -> ReplayResult:
    """Apply a subscriber's parked events again.

    Each page of them (``page_size``) is one transaction that takes the
    subscriber's lock (the one its runner's batches take, so that a replay
    and a batch do not run at once) and then, for each event, in a
    savepoint: unpark it, and ``handler(conn, [event])``. When the handler
    raises, the savepoint is rolled back (the event is parked again) and the
    event is parked with the new error (its attempts go up); the replay goes
    on with the next. An event that another replayer unparked first is
    skipped; one that is gone (deleted, erased, purged since it was parked)
    is unparked without calling the handler. Errors that pass on their own
    (a lost connection, a deadlock, ``57014``, ...) roll the page back and
    are raised: run it again.

    ``source`` is what a :class:`~event_store_client.Subscription` takes: a
    connection, a pool, a callable returning a connection, or a conninfo
    string.
    """
    _require_stream_id(subscriber, "subscriber")
    if not callable(handler):
        raise TypeError("handler must be callable")
    _require_int("page_size", page_size)
    if page_size < 1:
        raise ValueError("page_size must be 1 or more")
    src = as_source(source)
    owns = src is not source
    result = ReplayResult()
    after = 0
    try:
        while True:
            with src.connection() as conn:
                count, after = _replay_page(conn, subscriber, handler, page_size, after, result)
            if count < page_size:
                return result
    finally:
        if owns:
            src.close()


def _replay_page(conn: psycopg.Connection, subscriber: str, handler: Callable[..., Any],
                 page_size: int, after: int, result: ReplayResult) -> Tuple[int, int]:
    page = ReplayResult()
    with conn.transaction():
        with translated():
            conn.execute(_LOCK, (subscriber,))
            rows = conn.execute(_READ_PARKED, (subscriber, page_size, after)).fetchall()
        for parked in map(_row_to_parked, rows):
            after = parked.global_position
            with translated():
                conn.execute(f"SAVEPOINT {SAVEPOINT}")
                unparked = conn.execute(_UNPARK, (subscriber, after)).fetchone()[0]
            if not unparked:
                rollback_to_savepoint(conn)
                page.skipped += 1
                continue
            if parked.event is None:
                with translated():
                    conn.execute(f"RELEASE SAVEPOINT {SAVEPOINT}")
                page.missing += 1
                continue
            try:
                handler(conn, [parked.event])
                with translated():
                    conn.execute(f"RELEASE SAVEPOINT {SAVEPOINT}")
            except Exception as exc:
                if not parkable(conn, exc):
                    raise
                # Back to before the unpark, then parked again with this error.
                rollback_to_savepoint(conn)
                with translated():
                    attempts = conn.execute(PARK, (subscriber, after, error_text(exc))).fetchone()[0]
                log.warning("subscriber %r: parked event %d failed again (attempt %d): %s",
                            subscriber, after, attempts, exc)
                page.failed += 1
                page.errors.append((after, exc))
                continue
            page.replayed += 1
    result.replayed += page.replayed
    result.failed += page.failed
    result.missing += page.missing
    result.skipped += page.skipped
    result.errors.extend(page.errors)
    return len(rows), after
