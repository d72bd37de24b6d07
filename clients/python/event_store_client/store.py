"""Appends, stream reads, the global log, checkpoints and snapshots: one SQL
call each.

Every function takes a psycopg 3 connection and runs in whatever transaction
that connection is in. On an autocommit connection each call commits on its
own (an append is then one round trip); otherwise the caller commits.
Arguments are checked before any query is sent.
"""

from __future__ import annotations

import datetime
import json
import uuid
from typing import Any, Callable, Iterator, List, Mapping, Optional, Sequence, Union

import psycopg
from psycopg.rows import args_row

from .errors import translated
from .events import Event, LogPage, RecordedEvent, Snapshot

__all__ = [
    "ANY",
    "NO_STREAM",
    "STREAM_EXISTS",
    "append_to_stream",
    "read_stream",
    "stream_version",
    "read_all",
    "read_category",
    "read_all_with_position",
    "read_category_with_position",
    "checkpoint",
    "save_checkpoint",
    "save_snapshot",
    "read_snapshot",
]

#: Append without a version check.
ANY = -2
#: The stream must not exist yet (it has no events).
NO_STREAM = 0
#: The stream must exist (it has at least one event).
STREAM_EXISTS = -1

EventLike = Union[Event, Mapping[str, Any]]

_EVENT_KEYS = frozenset(("type", "data", "metadata", "id"))
_COLUMNS = "global_position, stream_id, version, event_id, event_type, data, metadata, created_at"

_APPEND = "SELECT event_store.append_events(%s::text, %s::bigint, %s::jsonb)"
# The sub-select runs first: it turns event_store.notify on for this
# transaction only, before the append looks at it.
_APPEND_NOTIFY = (
    "SELECT event_store.append_events(%s::text, %s::bigint, %s::jsonb)"
    " FROM (SELECT set_config('event_store.notify', 'on', true)) AS notify_on"
)
_READ_STREAM = (
    f"SELECT {_COLUMNS} FROM event_store.read_stream("
    "%s::text, %s::bigint, %s::bigint, %s::boolean)"
)
_SAVE_SNAPSHOT = "SELECT event_store.save_snapshot(%s::text, %s::bigint, %s::jsonb)"
_READ_SNAPSHOT = (
    "SELECT version, state, created_at FROM event_store.read_snapshot(%s::text, %s::bigint)"
)
_READ_ALL = f"SELECT {_COLUMNS} FROM event_store.read_all(%s::bigint, %s::bigint)"
_READ_CATEGORY = (
    f"SELECT {_COLUMNS} FROM event_store.read_category("
    "%s::text, %s::bigint, %s::bigint, %s::integer, %s::integer)"
)
# The filtered forms (0.5.0). Without filters the calls above are sent, so
# that unfiltered reads still work on a server before 0.5.0.
_READ_ALL_CALL = "event_store.read_all(%s::bigint, %s::bigint, %s::text[], %s::text[])"
_READ_CATEGORY_CALL = (
    "event_store.read_category(%s::text, %s::bigint, %s::bigint, %s::integer, %s::integer,"
    " %s::text[])"
)
_READ_ALL_FILTERED = f"SELECT {_COLUMNS} FROM {_READ_ALL_CALL}"
_READ_CATEGORY_FILTERED = f"SELECT {_COLUMNS} FROM {_READ_CATEGORY_CALL}"


def with_read_position(read_call: str) -> str:
    """One statement that reads a page with a read_all or read_category call
    and returns, beside it, ``event_store.last_read_position()``: how far that
    read got.

    The page is a materialized CTE, and the position is computed in another
    whose FROM counts the page's rows, so it is taken after the read has run,
    in the same transaction (the statement's). Each row is the position and
    an event, in order; an empty page gives one row with NULL event columns.
    """
    return (
        f"WITH page AS MATERIALIZED (SELECT * FROM {read_call}), "
        "reached AS MATERIALIZED (SELECT event_store.last_read_position() AS read_position"
        " FROM (SELECT count(*) FROM page) n) "
        f"SELECT reached.read_position, {_COLUMNS} FROM reached LEFT JOIN page ON true"
        " ORDER BY page.global_position"
    )


_READ_ALL_POSITION = with_read_position(_READ_ALL_CALL)
_READ_CATEGORY_POSITION = with_read_position(_READ_CATEGORY_CALL)


def _json_default(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, allow_nan=False, separators=(",", ":"))


def _require_int(name: str, value: Any, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")


def _require_stream_id(stream_id: Any, name: str = "stream_id") -> None:
    if not isinstance(stream_id, str):
        raise TypeError(f"{name} must be a str, not {type(stream_id).__name__}")
    if not stream_id:
        raise ValueError(f"{name} must not be empty")


def check_expected(expected: Any) -> None:
    """Refuse an expected version that is not an int of -2 or more."""
    if expected is None:
        raise TypeError(
            "expected must be an int: the version you read, NO_STREAM (0), "
            "STREAM_EXISTS (-1) or ANY (-2); None is refused"
        )
    _require_int("expected", expected)
    if expected < ANY:
        raise ValueError(f"expected must be -2 or more, not {expected}")


def _event_id(value: Any, index: int) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise ValueError(f"event {index}: id {value!r} is not a uuid") from None
    raise TypeError(f"event {index}: id must be a uuid or str, not {type(value).__name__}")


def event_to_json(event: EventLike, index: int = 0) -> dict:
    """Return the JSON object ``append_events`` takes for one event."""
    if isinstance(event, Event):
        fields = {"type": event.type, "data": event.data,
                  "metadata": event.metadata, "id": event.id}
    elif isinstance(event, Mapping):
        unknown = set(event) - _EVENT_KEYS
        if unknown:
            raise ValueError(
                f"event {index}: unknown key(s) {sorted(map(str, unknown))}; "
                "an event has only type, data, metadata and id"
            )
        if "type" not in event or "data" not in event:
            raise ValueError(f"event {index}: type and data are required")
        fields = dict(event)
    else:
        raise TypeError(f"event {index} must be an Event or a mapping, not {type(event).__name__}")
    event_type = fields["type"]
    if not isinstance(event_type, str):
        raise TypeError(f"event {index}: type must be a str, not {type(event_type).__name__}")
    if not event_type:
        raise ValueError(f"event {index}: type must not be empty")
    out = {"type": event_type, "data": fields["data"]}
    metadata = fields.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise TypeError(f"event {index}: metadata must be a mapping or None")
        out["metadata"] = dict(metadata)
    event_id = _event_id(fields.get("id"), index)
    if event_id is not None:
        out["id"] = event_id
    return out


def events_to_json(events: Any, dumps: Callable[[Any], str] = _dumps) -> str:
    """Check a list of events and return the JSON array ``append_events`` takes."""
    if isinstance(events, (str, bytes, Mapping, Event)) or not isinstance(events, Sequence):
        raise TypeError("events must be a list of Event objects or mappings")
    return dumps([event_to_json(e, i) for i, e in enumerate(events)])


def append_to_stream(
    conn: psycopg.Connection,
    stream_id: str,
    expected: int,
    events: Sequence[EventLike],
    *,
    notify: bool = False,
    dumps: Callable[[Any], str] = _dumps,
) -> int:
    """Append events to a stream, all or nothing, and return its new version.

    ``expected`` is the version you read (an int), or :data:`NO_STREAM`,
    :data:`STREAM_EXISTS`, :data:`ANY`. An empty list appends nothing,
    checks the expectation and returns the current version. With ``notify``
    the commit sends a ``NOTIFY event_store``. ``dumps`` serializes the list
    of event objects (default: :func:`json.dumps` that also takes uuids and
    dates).

    Raises :class:`~event_store_client.WrongExpectedVersion`,
    :class:`~event_store_client.EventAlreadyStored`,
    :class:`~event_store_client.DuplicateEventId`, ...
    """
    _require_stream_id(stream_id)
    check_expected(expected)
    payload = events_to_json(events, dumps)
    with translated(stream_id):
        row = conn.execute(_APPEND_NOTIFY if notify else _APPEND,
                           (stream_id, expected, payload)).fetchone()
    return row[0]


def read_stream(
    conn: psycopg.Connection,
    stream_id: str,
    from_version: Optional[int] = None,
    backward: bool = False,
    page_size: int = 500,
    limit: Optional[int] = None,
) -> Iterator[RecordedEvent]:
    """Yield a stream's events, a page of ``page_size`` per query.

    Forward: versions from ``from_version`` (None: 1) up. Backward: from
    ``from_version`` (None: the last) down. At most ``limit`` events (None:
    all). An unknown stream yields nothing.
    """
    _require_stream_id(stream_id)
    _require_int("from_version", from_version, allow_none=True)
    _require_int("page_size", page_size)
    _require_int("limit", limit, allow_none=True)
    if not isinstance(backward, bool):
        raise TypeError("backward must be a bool")
    if page_size < 1:
        raise ValueError("page_size must be 1 or more")
    if limit is not None and limit < 0:
        raise ValueError("limit must not be negative")
    return _read_stream_pages(conn, stream_id, from_version, backward, page_size, limit)


def _read_stream_pages(conn: psycopg.Connection, stream_id: str, position: Optional[int],
                       backward: bool, page_size: int,
                       limit: Optional[int]) -> Iterator[RecordedEvent]:
    remaining = limit
    while remaining is None or remaining > 0:
        count = page_size if remaining is None else min(page_size, remaining)
        if backward and position is not None and position < 1:
            return
        with translated(stream_id):
            with conn.cursor(row_factory=args_row(RecordedEvent)) as cur:
                cur.execute(_READ_STREAM, (stream_id, position, count, backward))
                page = cur.fetchall()
        yield from page
        if len(page) < count:
            return
        if remaining is not None:
            remaining -= len(page)
        position = page[-1].version - 1 if backward else page[-1].version + 1


def stream_version(conn: psycopg.Connection, stream_id: str) -> int:
    """Return the stream's current version, 0 if it has no events."""
    _require_stream_id(stream_id)
    with translated(stream_id):
        return conn.execute("SELECT event_store.stream_version(%s::text)",
                            (stream_id,)).fetchone()[0]


def _check_log_args(after_position: Any, max_count: Any) -> None:
    _require_int("after_position", after_position)
    _require_int("max_count", max_count)
    if max_count < 0:
        raise ValueError("max_count must not be negative")


def require_names(value: Any, name: str) -> Optional[List[str]]:
    """Check an optional filter (event types, categories): a sequence of
    non-empty strings, not a string itself. An empty one matches nothing.
    Returns it as a list, or None."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, set, frozenset)):
        raise TypeError(f"{name} must be a list of str, not {type(value).__name__}")
    names = list(value)
    for item in names:
        if not isinstance(item, str):
            raise TypeError(f"{name} must hold only str, not {type(item).__name__}")
        if not item:
            raise ValueError(f"{name} must not hold an empty string")
    return names


def _check_category_args(category: Any, after_position: Any, max_count: Any,
                         member: Any, group_size: Any) -> None:
    _require_stream_id(category, "category")
    _check_log_args(after_position, max_count)
    _require_int("member", member, allow_none=True)
    _require_int("group_size", group_size, allow_none=True)
    if (member is None) != (group_size is None):
        raise ValueError("member and group_size go together")


def _fetch_events(conn: psycopg.Connection, query: str, params: Sequence[Any]
                  ) -> List[RecordedEvent]:
    with translated():
        with conn.cursor(row_factory=args_row(RecordedEvent)) as cur:
            cur.execute(query, params)
            return cur.fetchall()


def _fetch_page(conn: psycopg.Connection, query: str, params: Sequence[Any]) -> LogPage:
    with translated():
        rows = conn.execute(query, params).fetchall()
    events = [RecordedEvent(*row[1:]) for row in rows if row[1] is not None]
    return LogPage(events, rows[0][0] if rows else None)


def read_all(conn: psycopg.Connection, after_position: int = 0,
             max_count: int = 1000, *, event_types: Optional[Sequence[str]] = None,
             categories: Optional[Sequence[str]] = None) -> List[RecordedEvent]:
    """Return up to ``max_count`` events of the global log after a position.

    Ascending by global position; an event that may still commit is never
    skipped, so the last position returned is an exact checkpoint.
    ``event_types`` and ``categories`` (0.5.0) keep only the events of those
    types and categories; with them, continue from
    :func:`read_all_with_position`'s position rather than the last event's.
    """
    _check_log_args(after_position, max_count)
    types = require_names(event_types, "event_types")
    cats = require_names(categories, "categories")
    if types is None and cats is None:
        return _fetch_events(conn, _READ_ALL, (after_position, max_count))
    return _fetch_events(conn, _READ_ALL_FILTERED, (after_position, max_count, types, cats))


def read_category(conn: psycopg.Connection, category: str, after_position: int = 0,
                  max_count: int = 1000, member: Optional[int] = None,
                  group_size: Optional[int] = None, *,
                  event_types: Optional[Sequence[str]] = None) -> List[RecordedEvent]:
    """Like :func:`read_all`, over one category (stream ids up to their first
    ``-``), or over one consumer-group member's share of it; ``event_types``
    (0.5.0) keeps only events of those types."""
    _check_category_args(category, after_position, max_count, member, group_size)
    types = require_names(event_types, "event_types")
    if types is None:
        return _fetch_events(conn, _READ_CATEGORY,
                             (category, after_position, max_count, member, group_size))
    return _fetch_events(conn, _READ_CATEGORY_FILTERED,
                         (category, after_position, max_count, member, group_size, types))


def read_all_with_position(conn: psycopg.Connection, after_position: int = 0,
                           max_count: int = 1000, *,
                           event_types: Optional[Sequence[str]] = None,
                           categories: Optional[Sequence[str]] = None) -> LogPage:
    """:func:`read_all` and how far the read got, in one statement (0.5.0).

    Returns a :class:`LogPage` ``(events, position)``: ``position`` is
    ``event_store.last_read_position()`` of that read, the checkpoint to
    save and to continue from, past the events the filters left out, also
    when the page is empty.
    """
    _check_log_args(after_position, max_count)
    types = require_names(event_types, "event_types")
    cats = require_names(categories, "categories")
    return _fetch_page(conn, _READ_ALL_POSITION, (after_position, max_count, types, cats))


def read_category_with_position(conn: psycopg.Connection, category: str,
                                after_position: int = 0, max_count: int = 1000,
                                member: Optional[int] = None,
                                group_size: Optional[int] = None, *,
                                event_types: Optional[Sequence[str]] = None) -> LogPage:
    """:func:`read_category` and how far the read got, in one statement
    (0.5.0): a :class:`LogPage` ``(events, position)``."""
    _check_category_args(category, after_position, max_count, member, group_size)
    types = require_names(event_types, "event_types")
    return _fetch_page(conn, _READ_CATEGORY_POSITION,
                       (category, after_position, max_count, member, group_size, types))


def checkpoint(conn: psycopg.Connection, subscriber: str) -> int:
    """Return a subscriber's checkpoint, 0 if it has none."""
    _require_stream_id(subscriber, "subscriber")
    with translated():
        return conn.execute("SELECT event_store.checkpoint(%s::text)",
                            (subscriber,)).fetchone()[0]


def save_checkpoint(conn: psycopg.Connection, subscriber: str, position: int,
                    allow_backwards: bool = False) -> int:
    """Store a subscriber's checkpoint and return it as stored (a checkpoint
    never moves backwards unless ``allow_backwards``)."""
    _require_stream_id(subscriber, "subscriber")
    _require_int("position", position)
    if not isinstance(allow_backwards, bool):
        raise TypeError("allow_backwards must be a bool")
    with translated():
        return conn.execute(
            "SELECT event_store.save_checkpoint(%s::text, %s::bigint, %s::boolean)",
            (subscriber, position, allow_backwards)).fetchone()[0]


def save_snapshot(
    conn: psycopg.Connection,
    stream_id: str,
    version: int,
    state: Any,
    *,
    dumps: Callable[[Any], str] = _dumps,
) -> int:
    """Save a stream's state at one of its versions and return the version.

    ``state`` is any JSON-serializable value but None; ``dumps`` serializes
    it (the same default as :func:`append_to_stream`). Saving the same
    version again replaces the state. The server takes the stream's lock,
    as an append does, and holds it to the end of the transaction.

    Raises :class:`~event_store_client.InvalidInput` (``22023``) when the
    stream has no such version (nothing is saved).
    """
    _require_stream_id(stream_id)
    _require_int("version", version)
    if version < 1:
        raise ValueError(f"version must be 1 or more, not {version}")
    # JSON null would be stored as a state; None is far more likely a
    # missing state than one meant to be saved.
    if state is None:
        raise TypeError("state must not be None")
    payload = dumps(state)
    with translated(stream_id):
        return conn.execute(_SAVE_SNAPSHOT, (stream_id, version, payload)).fetchone()[0]


def read_snapshot(conn: psycopg.Connection, stream_id: str,
                  max_version: Optional[int] = None) -> Optional[Snapshot]:
    """Return a stream's latest snapshot, or with ``max_version`` the latest
    at or below it; None when there is none.

    Load an aggregate from it by folding ``read_stream(conn, stream_id,
    snapshot.version + 1)`` into ``snapshot.state``.
    """
    _require_stream_id(stream_id)
    _require_int("max_version", max_version, allow_none=True)
    with translated(stream_id):
        with conn.cursor(row_factory=args_row(Snapshot)) as cur:
            cur.execute(_READ_SNAPSHOT, (stream_id, max_version))
            return cur.fetchone()
