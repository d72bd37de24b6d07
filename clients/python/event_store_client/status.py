"""Waiting for events, and the status of subscriptions and of the global log
(extension 0.5.0): one SQL call each, in the connection's transaction.

:func:`wait_for_event` is ``event_store.wait_for_event``: it returns as soon
as an event after a position (of a category, of given types) is readable,
or None at its timeout. Being one statement, it works through pgbouncer in
transaction mode, where ``LISTEN`` does not. ``conn.cancel()`` from another
thread stops it (:class:`~event_store_client.StatementCanceled`).
"""

from __future__ import annotations

import datetime
from typing import Any, List, Optional, Sequence, Union

import psycopg
from psycopg.rows import args_row

from .errors import translated
from .events import LogHolder, SubscriptionStatus
from .store import _require_int, _require_stream_id, require_names

__all__ = [
    "wait_for_event",
    "subscriptions",
    "log_holders",
    "head_position",
    "watermark",
    "publish_watermark",
]

_WAIT = (
    "SELECT event_store.wait_for_event(%s::bigint, make_interval(secs => %s::double precision),"
    " %s::text, %s::text[])"
)
_SUBSCRIPTIONS = (
    "SELECT subscriber, checkpoint, head_position, lag_positions, lag_events, lag, saved_at"
    " FROM event_store.subscriptions"
)
_LOG_HOLDERS = (
    "SELECT position, pid, role_name, application_name, client_addr, state, xact_start,"
    " xact_age, state_change, query FROM event_store.log_holders ORDER BY position"
)


def timeout_seconds(timeout: Any, name: str = "timeout") -> float:
    """A timeout in seconds (a number or a timedelta), 0 or more."""
    if isinstance(timeout, datetime.timedelta):
        seconds = timeout.total_seconds()
    elif isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        seconds = float(timeout)
    else:
        raise TypeError(f"{name} must be a number of seconds or a timedelta, "
                        f"not {type(timeout).__name__}")
    if not seconds >= 0 or seconds == float("inf"):
        raise ValueError(f"{name} must be finite and 0 or more, not {timeout!r}")
    return seconds


def wait_for_event(conn: psycopg.Connection, after_position: int = 0,
                   timeout: Union[float, datetime.timedelta] = 30.0, *,
                   category: Optional[str] = None,
                   event_types: Optional[Sequence[str]] = None) -> Optional[int]:
    """Wait until an event after ``after_position`` (of ``category``, of one
    of ``event_types``) is readable by the global log, for up to ``timeout``
    (seconds, or a timedelta; default 30); return its position, or None when
    the timeout passed first.

    It holds the connection while it waits; a ``statement_timeout`` shorter
    than ``timeout`` ends it first (``StatementCanceled``). Under
    ``REPEATABLE READ`` or ``SERIALIZABLE`` the server refuses it
    (``psycopg.errors.InvalidTransactionState``, ``25000``).
    """
    _require_int("after_position", after_position)
    seconds = timeout_seconds(timeout)
    if category is not None:
        _require_stream_id(category, "category")
    types = require_names(event_types, "event_types")
    with translated():
        return conn.execute(_WAIT, (after_position, seconds, category, types)).fetchone()[0]


def subscriptions(conn: psycopg.Connection,
                  subscriber: Optional[str] = None) -> List[SubscriptionStatus]:
    """Every subscriber's checkpoint, the log's head and the lag (the view
    ``event_store.subscriptions``), by name; with ``subscriber``, its row
    only (an empty list when it has no checkpoint)."""
    with translated():
        with conn.cursor(row_factory=args_row(SubscriptionStatus)) as cur:
            if subscriber is None:
                cur.execute(_SUBSCRIPTIONS + " ORDER BY subscriber")
            else:
                _require_stream_id(subscriber, "subscriber")
                cur.execute(_SUBSCRIPTIONS + " WHERE subscriber = %s::text", (subscriber,))
            return cur.fetchall()


def log_holders(conn: psycopg.Connection) -> List[LogHolder]:
    """What holds the global log back right now (the view
    ``event_store.log_holders``); an empty list when nothing does."""
    with translated():
        with conn.cursor(row_factory=args_row(LogHolder)) as cur:
            cur.execute(_LOG_HOLDERS)
            return cur.fetchall()


def head_position(conn: psycopg.Connection) -> int:
    """The highest global position stored (0 for an empty store)."""
    with translated():
        return conn.execute("SELECT event_store.head_position()").fetchone()[0]


def watermark(conn: psycopg.Connection) -> int:
    """The watermark for hot standbys as published (on a standby, as
    replayed)."""
    with translated():
        return conn.execute("SELECT event_store.watermark()").fetchone()[0]


def publish_watermark(conn: psycopg.Connection) -> int:
    """Publish the watermark now, on the primary; return it."""
    with translated():
        return conn.execute("SELECT event_store.publish_watermark()").fetchone()[0]
