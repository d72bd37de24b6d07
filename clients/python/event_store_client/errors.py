"""Exceptions raised for the event store's errors, one class per kind.

Every class derives from :class:`EventStoreError`, which is a
:class:`psycopg.DatabaseError`, so ``except psycopg.Error`` still catches
them all.

The event store's own SQLSTATEs (``VE001``, ``VE002``, ``VE003``) are
registered with psycopg when this module is imported: psycopg raises
:class:`WrongExpectedVersion`, :class:`EventAlreadyStored` and
:class:`StreamTombstoned` for them from any query, the library's or your
own SQL.

Standard SQLSTATEs (``23505``, ``40001``, ...) are not registered globally,
since other code in the process may rely on psycopg's own classes. The
library's functions translate them into the classes below, each of which
also derives from psycopg's class for the same SQLSTATE (a
:class:`DuplicateEventId` is a :class:`psycopg.errors.UniqueViolation`).
:func:`translate` does the same for an error caught from your own SQL.
"""

from __future__ import annotations

import re
import uuid
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Optional, Type

import psycopg
from psycopg import errors as pg_errors

__all__ = [
    "EventStoreError",
    "WrongExpectedVersion",
    "EventAlreadyStored",
    "StreamTombstoned",
    "DuplicateEventId",
    "InvalidInput",
    "TransientError",
    "SerializationConflict",
    "Deadlock",
    "LockTimeout",
    "StatementCanceled",
    "ReadOnly",
    "PermissionDenied",
    "is_transient",
    "translate",
]

class EventStoreError(psycopg.DatabaseError):
    """Base class of every error the event store reports."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._source: Optional[psycopg.Error] = None
        self._stream_id: Optional[str] = None

    @property
    def diag(self) -> psycopg.errors.Diagnostic:
        """The server's diagnostic (of the original error, when translated)."""
        source = self.__dict__.get("_source")
        if source is not None:
            return source.diag
        return super().diag

    @property
    def stream_id(self) -> Optional[str]:
        """The stream the failed call was about, when known."""
        known = self.__dict__.get("_stream_id")
        if known is not None:
            return known
        match = _STREAM_IN_MESSAGE.search(self.diag.message_primary or "")
        return match.group(1) if match else None


class WrongExpectedVersion(EventStoreError, code="VE001"):
    """The stream is not at the expected version (SQLSTATE ``VE001``).

    Nothing was written. Read the stream again and decide on its current
    state. ``expected`` and ``actual`` are parsed from the server's DETAIL
    (``expected`` is ``-2`` if the server reports ``any``).
    """

    @property
    def expected(self) -> Optional[int]:
        """The expected version the call gave."""
        match = _VERSION_DETAIL.match(self.diag.message_detail or "")
        if not match:
            return None
        return -2 if match.group(1) == "any" else int(match.group(1))

    @property
    def actual(self) -> Optional[int]:
        """The stream's version when the call was checked."""
        match = _VERSION_DETAIL.match(self.diag.message_detail or "")
        return int(match.group(2)) if match else None


class EventAlreadyStored(EventStoreError, code="VE002"):
    """An event id of the call is already stored in this stream, though not
    as a repeat of this call (SQLSTATE ``VE002``).

    The command that made the event was carried out before: report it as
    done rather than retrying. Nothing was written by this call.
    """

    @property
    def event_id(self) -> Optional[uuid.UUID]:
        """The id of the stored event."""
        match = _STORED_DETAIL.match(self.diag.message_detail or "")
        return uuid.UUID(match.group(1)) if match else None

    @property
    def version(self) -> Optional[int]:
        """The version at which that event is stored."""
        match = _STORED_DETAIL.match(self.diag.message_detail or "")
        return int(match.group(2)) if match else None


class StreamTombstoned(EventStoreError, code="VE003"):
    """The stream is tombstoned (SQLSTATE ``VE003``): by
    ``tombstone_stream`` or ``erase_stream``.

    Nothing can be appended to it, or saved for it, ever again; an
    idempotent repeat of an append stored before the tombstone is refused
    too. Not a :class:`TransientError`: a retry can never succeed.
    """

    @property
    def stream_id(self) -> Optional[str]:
        """The stream the failed call was about, or the one the server names."""
        known = self.__dict__.get("_stream_id")
        if known is not None:
            return known
        match = _TOMBSTONED_MESSAGE.match(self.diag.message_primary or "")
        return match.group(1) if match else None


class DuplicateEventId(EventStoreError, pg_errors.UniqueViolation):
    """An event id belongs to another stream, or appears twice in one call
    (SQLSTATE ``23505``)."""

    @property
    def event_id(self) -> Optional[uuid.UUID]:
        """The id the server names, if it names one."""
        match = _ID_IN_MESSAGE.search(self.diag.message_primary or "")
        return uuid.UUID(match.group(1)) if match else None


class InvalidInput(EventStoreError, pg_errors.DataError):
    """The server refused an argument (SQLSTATE ``22004``, ``22023``,
    ``22001``, ``2201W``, ``22P02``); ``sqlstate`` says which."""


class TransientError(EventStoreError, pg_errors.OperationalError):
    """A failure that the same call may not meet again: retry it.

    Not every ``psycopg.OperationalError`` is transient: see
    :func:`is_transient`.
    """


class SerializationConflict(TransientError, pg_errors.SerializationFailure):
    """The stream moved after a ``REPEATABLE READ`` or ``SERIALIZABLE``
    transaction's snapshot (SQLSTATE ``40001``)."""


class Deadlock(TransientError, pg_errors.DeadlockDetected):
    """A lock wait was ended by the deadlock detector (SQLSTATE ``40P01``)."""


class LockTimeout(TransientError, pg_errors.LockNotAvailable):
    """A lock wait was ended by ``lock_timeout`` (SQLSTATE ``55P03``)."""


class StatementCanceled(EventStoreError, pg_errors.QueryCanceled):
    """A cancel or ``statement_timeout`` stopped the call; nothing of an
    append was stored (SQLSTATE ``57014``).

    Not a :class:`TransientError`: a cancel is a request to stop, and a
    statement that ran out of time would run out of time again.
    """


class ReadOnly(EventStoreError, pg_errors.ReadOnlySqlTransaction):
    """An append in a read-only transaction or on a standby (SQLSTATE
    ``25006``)."""


class PermissionDenied(EventStoreError, pg_errors.InsufficientPrivilege):
    """The role lacks a privilege the call needs (SQLSTATE ``42501``)."""


_TRANSLATIONS: Dict[str, Type[EventStoreError]] = {
    "VE001": WrongExpectedVersion,
    "VE002": EventAlreadyStored,
    "VE003": StreamTombstoned,
    "23505": DuplicateEventId,
    "22004": InvalidInput,
    "22023": InvalidInput,
    "22001": InvalidInput,
    "2201W": InvalidInput,
    "22P02": InvalidInput,
    "40001": SerializationConflict,
    "40P01": Deadlock,
    "55P03": LockTimeout,
    "57014": StatementCanceled,
    "25006": ReadOnly,
    "42501": PermissionDenied,
}

_VERSION_DETAIL = re.compile(r"^Expected version (any|-?\d+), actual version (-?\d+)\.$")
_STORED_DETAIL = re.compile(
    r"^Event id ([0-9a-fA-F-]{32,36}) is stored at version (\d+)\.$"
)
_STREAM_IN_MESSAGE = re.compile(r'stream "(.*)"$', re.DOTALL)
_TOMBSTONED_MESSAGE = re.compile(r'^stream "(.*)" is tombstoned$', re.DOTALL)
_ID_IN_MESSAGE = re.compile(r'event id "([0-9a-fA-F-]{32,36})"')


# SQLSTATEs of failures that a new attempt may not meet: a serialization
# failure, a deadlock, a lock wait ended by lock_timeout, and the server
# ending the session (57P01 admin_shutdown, 57P02 crash_shutdown,
# 57P03 cannot_connect_now). Class 08 (connection exceptions) is added in
# is_transient.
_TRANSIENT_SQLSTATES = frozenset(("40001", "40P01", "55P03", "57P01", "57P02", "57P03"))


def is_transient(exc: BaseException) -> bool:
    """Whether an error is worth retrying as it is: the same call may succeed.

    True for ``40001``, ``40P01``, ``55P03``, SQLSTATE class ``08``,
    ``57P01`` to ``57P03``, and a ``psycopg.OperationalError`` with no
    SQLSTATE (the server never answered: a lost connection, whose outcome
    is unknown, or a failed connect). False for everything else, among
    them ``57014`` (a cancel is a request to stop), ``55000`` (an object
    in the wrong state), ``53xxx`` (resources exhausted), ``VE001`` (a
    conflict: decide again on the new state rather than repeat the call)
    and ``VE003`` (a tombstoned stream stays tombstoned).
    """
    if not isinstance(exc, psycopg.Error):
        return False
    sqlstate = exc.sqlstate
    if sqlstate is None:
        return isinstance(exc, psycopg.OperationalError)
    return sqlstate in _TRANSIENT_SQLSTATES or sqlstate.startswith("08")


def translate(exc: psycopg.Error, stream_id: Optional[str] = None) -> psycopg.Error:
    """Return the event store's class for a psycopg error, or the error itself.

    An error whose SQLSTATE has no class here is returned unchanged. A new
    exception keeps the original as ``__cause__`` and serves its ``diag``.
    """
    if isinstance(exc, EventStoreError):
        if stream_id is not None and exc.__dict__.get("_stream_id") is None:
            exc._stream_id = stream_id
        return exc
    cls = _TRANSLATIONS.get(exc.sqlstate or "")
    if cls is None:
        return exc
    new = cls(*exc.args, info=exc.pgresult)
    new._source = exc
    new._stream_id = stream_id
    new.__cause__ = exc
    if new.sqlstate is None:
        new.sqlstate = exc.sqlstate
    return new


@contextmanager
def translated(stream_id: Optional[str] = None) -> Iterator[None]:
    """Re-raise psycopg errors raised in the block as event store errors."""
    try:
        yield
    except psycopg.Error as exc:
        new = translate(exc, stream_id)
        if new is exc:
            raise
        raise new from exc
