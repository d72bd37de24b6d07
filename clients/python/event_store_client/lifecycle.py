"""Stream lifecycle (extension 0.4.0): soft delete, tombstones, truncation,
retention, purge, erasure and redaction, one SQL call each.

Every function takes a psycopg 3 connection and runs in whatever
transaction that connection is in, as the functions of :mod:`.store` do.
The server allows them only to a role that holds ``EXECUTE`` on the
function and ``DELETE`` on ``event_store.events``; without them they raise
:class:`~event_store_client.PermissionDenied` (``42501``). Arguments are
checked before any query is sent.
"""

from __future__ import annotations

import datetime
import uuid
from types import MappingProxyType
from typing import Any, Callable, Mapping, Optional, Union

import psycopg
from psycopg.rows import args_row

from .errors import translated
from .events import StreamInfo
from .store import _dumps, _require_int, _require_stream_id, check_expected

__all__ = [
    "LIFECYCLE_STREAM",
    "delete_stream",
    "tombstone_stream",
    "truncate_stream",
    "set_stream_retention",
    "stream_info",
    "purge",
    "erase_stream",
    "redact_event",
    "is_lifecycle_event",
]

#: The reserved stream the server appends lifecycle events to.
LIFECYCLE_STREAM = "$lifecycle"

_DELETE = "SELECT event_store.delete_stream(%s::text, %s::bigint)"
_TOMBSTONE = "SELECT event_store.tombstone_stream(%s::text, %s::bigint)"
_TRUNCATE = "SELECT event_store.truncate_stream(%s::text, %s::bigint)"
_RETENTION = "SELECT event_store.set_stream_retention(%s::text, %s::bigint, %s::interval)"
_STREAM_INFO = (
    "SELECT version, first_visible_version, truncate_before, max_count, max_age, tombstoned"
    " FROM event_store.stream_info(%s::text)"
)
_PURGE_DEFAULT = "SELECT event_store.purge()"
_PURGE = "SELECT event_store.purge(%s::integer)"
_ERASE = "SELECT event_store.erase_stream(%s::text, %s::text)"
_REDACT = "SELECT event_store.redact_event(%s::uuid, %s::text, %s::jsonb, %s::jsonb)"

# purge's max_events is an integer (int4).
_MAX_INT4 = 2**31 - 1

# redact_event's default data: an empty JSON object. Read-only, so that
# the default can never be changed by a caller.
_EMPTY_OBJECT: Mapping[str, Any] = MappingProxyType({})


def _scalar(conn: psycopg.Connection, query: str, params: Optional[tuple] = None) -> Any:
    """Run a statement that returns one row of one value, and return the value."""
    row = conn.execute(query, params).fetchone()
    assert row is not None, "the function returns one row"
    return row[0]


def _require_reason(reason: Any) -> None:
    if not isinstance(reason, str):
        raise TypeError(f"reason must be a str, not {type(reason).__name__}")
    if not reason:
        raise ValueError("reason must not be empty")


def delete_stream(conn: psycopg.Connection, stream_id: str, expected_version: int) -> int:
    """Soft-delete a stream if it is at the expected version; return its head.

    ``expected_version`` is checked as an append's is (the version you
    read, :data:`NO_STREAM`, :data:`STREAM_EXISTS` or :data:`ANY`; else
    :class:`~event_store_client.WrongExpectedVersion`). Every version up to
    the head is hidden for good and the stream's snapshots are deleted; the
    stream then reads as empty, and an append expecting ``NO_STREAM`` or
    the head continues at head + 1 (versions are never reused). Deleting a
    stream without events, or one already deleted, changes nothing.
    """
    _require_stream_id(stream_id)
    check_expected(expected_version)
    with translated(stream_id):
        return _scalar(conn, _DELETE, (stream_id, expected_version))


def tombstone_stream(conn: psycopg.Connection, stream_id: str, expected_version: int) -> int:
    """Tombstone a stream if it is at the expected version; return the
    number of events removed.

    The stream's events and snapshots are removed, and every later append
    to it (an idempotent repeat of one stored before included) and every
    snapshot save raises :class:`~event_store_client.StreamTombstoned`.
    A stream without events can be tombstoned (its id is reserved);
    tombstoning a tombstoned stream changes nothing and returns 0.
    """
    _require_stream_id(stream_id)
    check_expected(expected_version)
    with translated(stream_id):
        return _scalar(conn, _TOMBSTONE, (stream_id, expected_version))


def truncate_stream(conn: psycopg.Connection, stream_id: str, before_version: int) -> int:
    """Hide the stream's versions below ``before_version``, for good; return
    the first visible version.

    ``before_version`` is an int of 1 or more; the server refuses one above
    head + 1, or below an earlier truncation, with
    :class:`~event_store_client.InvalidInput` (``22023``).
    """
    _require_stream_id(stream_id)
    _require_int("before_version", before_version)
    if before_version < 1:
        raise ValueError(f"before_version must be 1 or more, not {before_version}")
    with translated(stream_id):
        return _scalar(conn, _TRUNCATE, (stream_id, before_version))


def set_stream_retention(
    conn: psycopg.Connection,
    stream_id: str,
    max_count: Optional[int] = None,
    max_age: Optional[Union[datetime.timedelta, str]] = None,
) -> None:
    """Replace a stream's retention; None for no limit (no arguments clear it).

    ``max_count`` (an int of 1 or more) keeps only the last ``max_count``
    events visible; ``max_age`` (a positive :class:`datetime.timedelta`, or
    an interval in PostgreSQL's syntax such as ``"90 days"``) hides events
    older than it. Raising a limit shows again the hidden events that
    :func:`purge` has not removed yet.
    """
    _require_stream_id(stream_id)
    _require_int("max_count", max_count, allow_none=True)
    if max_count is not None and max_count < 1:
        raise ValueError(f"max_count must be 1 or more, not {max_count}")
    if isinstance(max_age, datetime.timedelta):
        if max_age <= datetime.timedelta(0):
            raise ValueError(f"max_age must be positive, not {max_age!r}")
    elif isinstance(max_age, str):
        if not max_age:
            raise ValueError("max_age must not be empty")
    elif max_age is not None:
        raise TypeError(
            f"max_age must be a datetime.timedelta, a str or None, not {type(max_age).__name__}")
    with translated(stream_id):
        conn.execute(_RETENTION, (stream_id, max_count, max_age))


def stream_info(conn: psycopg.Connection, stream_id: str) -> StreamInfo:
    """Return a stream's lifecycle state (version 0 and first visible version
    1 for a stream that does not exist)."""
    _require_stream_id(stream_id)
    with translated(stream_id):
        with conn.cursor(row_factory=args_row(StreamInfo)) as cur:
            cur.execute(_STREAM_INFO, (stream_id,))
            info = cur.fetchone()
    assert info is not None, "stream_info returns one row"
    return info


def purge(conn: psycopg.Connection, max_events: Optional[int] = None) -> int:
    """Remove hidden events physically, at most ``max_events`` of them
    (None: the server's default, 10000); return how many were removed.

    It takes no stream lock; a purge that finds another one running returns
    0 at once.
    """
    _require_int("max_events", max_events, allow_none=True)
    if max_events is not None and not 1 <= max_events <= _MAX_INT4:
        raise ValueError(f"max_events must be from 1 to {_MAX_INT4}, not {max_events}")
    with translated():
        if max_events is None:
            return _scalar(conn, _PURGE_DEFAULT)
        return _scalar(conn, _PURGE, (max_events,))


def erase_stream(conn: psycopg.Connection, stream_id: str, reason: str) -> int:
    """Erase a stream for data protection: a tombstone, with a row in
    ``event_store.erasures`` holding ``reason`` (a non-empty str). Return
    the number of events erased."""
    _require_stream_id(stream_id)
    _require_reason(reason)
    with translated(stream_id):
        return _scalar(conn, _ERASE, (stream_id, reason))


def redact_event(
    conn: psycopg.Connection,
    event_id: Union[uuid.UUID, str],
    reason: str,
    data: Any = _EMPTY_OBJECT,
    metadata: Optional[Mapping[str, Any]] = None,
    *,
    dumps: Callable[[Any], str] = _dumps,
) -> int:
    """Rewrite one event's data and metadata in place; return its global
    position.

    The event keeps its position, version, type and id. ``data`` is any
    JSON-serializable value (default ``{}``; None is JSON null),
    ``metadata`` a mapping or None; ``dumps`` serializes them (the default
    of :func:`~event_store_client.append_to_stream`). A row in
    ``event_store.erasures`` holds ``reason`` (a non-empty str). An
    unknown id raises psycopg's ``NoDataFound`` (``P0002``); an event of
    ``$lifecycle`` :class:`~event_store_client.InvalidInput` (``22023``).
    """
    if isinstance(event_id, uuid.UUID):
        id_text = str(event_id)
    elif isinstance(event_id, str):
        try:
            id_text = str(uuid.UUID(event_id))
        except ValueError:
            raise ValueError(f"event_id {event_id!r} is not a uuid") from None
    else:
        raise TypeError(f"event_id must be a uuid or str, not {type(event_id).__name__}")
    _require_reason(reason)
    data_text = "{}" if data is _EMPTY_OBJECT else dumps(data)
    metadata_text = None
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise TypeError(f"metadata must be a mapping or None, not {type(metadata).__name__}")
        metadata_text = dumps(dict(metadata))
    with translated():
        return _scalar(conn, _REDACT, (id_text, reason, data_text, metadata_text))


def is_lifecycle_event(event: Any) -> bool:
    """Whether an event (read with :func:`~event_store_client.read_all`) is a
    lifecycle event: of the stream ``$lifecycle``, with a type beginning
    with ``$`` (``$deleted``, ``$truncated``, ``$retention``,
    ``$tombstoned``, ``$erased``, ``$redacted``)."""
    event_type = getattr(event, "type", None)
    return (getattr(event, "stream_id", None) == LIFECYCLE_STREAM
            and isinstance(event_type, str) and event_type.startswith("$"))
