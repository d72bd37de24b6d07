"""The command loop of an event-sourced write: read, decide, append, retry.

:func:`handle_command` folds a stream into a state with ``evolve``, asks
``decide`` for the events a command produces, and appends them expecting
the version it read. On a conflict it reads what it missed and decides
again; on an error whose outcome is unknown (a lost acknowledgement, a
broken connection) it reads again and finds out. The event ids of a
decision are made once and kept across attempts, so a repeated append is
recognised by the server (or by the re-read) and never written twice.
"""

from __future__ import annotations

import copy
import logging
import random
import threading
import time
import uuid
from collections import OrderedDict
from contextlib import nullcontext
from dataclasses import dataclass
from typing import (Any, Callable, ContextManager, List, Optional, Sequence, Set, Tuple, TypeVar,
                    Union)

import psycopg
from psycopg.pq import TransactionStatus

from ._connections import as_source
from .errors import EventAlreadyStored, WrongExpectedVersion, is_transient, translated
from .events import Event, RecordedEvent, new_event_id
from .store import _require_int, _require_stream_id, append_to_stream, event_to_json, read_stream

__all__ = ["Backoff", "CommandResult", "StateCache", "handle_command"]

log = logging.getLogger("event_store_client")

S = TypeVar("S")


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter.

    Before retry ``n`` (1 for the first retry) wait a random time between 0
    and ``min(cap, base * 2 ** (n - 1))`` seconds.
    """

    base: float = 0.005
    cap: float = 1.0

    def __call__(self, retry: int) -> float:
        return random.uniform(0.0, min(self.cap, self.base * 2 ** (retry - 1)))


@dataclass(frozen=True)
class CommandResult:
    """What :func:`handle_command` did.

    ``version``: the stream's version after the command's events (for a
    command found already done, the version of its last event found, or
    the version the server reported). ``events``: the events appended, with
    their ids (empty when ``decide`` returned none or the command was
    already done). ``already_done``: the events were found stored by an
    earlier attempt or call. ``attempts``: attempts made (1 when the first
    one settled it).
    """

    version: int
    events: Tuple[Event, ...]
    already_done: bool
    attempts: int


class StateCache:
    """A thread-safe LRU map of stream id to ``(version, state)``.

    Lets :func:`handle_command` start from the last state it knew and read
    only the events after it. States are shared, so ``evolve`` must return
    a new state rather than change the one it is given. Any mapping that
    holds ``(version, state)`` pairs (a plain dict) can stand in for it:
    :func:`handle_command` uses ``get``, item assignment, and
    ``pop(stream_id, None)`` to drop an entry found ahead of its stream.
    """

    def __init__(self, maxsize: int = 10_000) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be 1 or more")
        self._maxsize = maxsize
        self._items: "OrderedDict[str, Tuple[int, Any]]" = OrderedDict()
        self._lock = threading.Lock()

    def get(self, stream_id: str, default: Any = None) -> Any:
        with self._lock:
            item = self._items.get(stream_id)
            if item is None:
                return default
            self._items.move_to_end(stream_id)
            return item

    def __setitem__(self, stream_id: str, item: Tuple[int, Any]) -> None:
        with self._lock:
            known = self._items.get(stream_id)
            if known is not None and known[0] > item[0]:
                return
            self._items[stream_id] = item
            self._items.move_to_end(stream_id)
            while len(self._items) > self._maxsize:
                self._items.popitem(last=False)

    def pop(self, stream_id: str, default: Any = None) -> Any:
        """Remove a stream's entry and return it (``default`` if none)."""
        with self._lock:
            return self._items.pop(stream_id, default)

    def clear(self) -> None:
        """Drop every entry (after restoring the store from an older backup, say)."""
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


def _with_ids(decision: Sequence[Any], assigned: List[uuid.UUID]) -> List[Event]:
    """Return the decision as Events, each with an id (the i-th id made for
    an earlier attempt, else a new one)."""
    if isinstance(decision, (str, bytes, dict, Event)) or not isinstance(decision, Sequence):
        raise TypeError("decide must return a list of Event objects or mappings")
    events = []
    for index, item in enumerate(decision):
        fields = event_to_json(item, index)
        if "id" in fields:
            event_id = uuid.UUID(fields["id"])
        else:
            while len(assigned) <= index:
                assigned.append(new_event_id())
            event_id = assigned[index]
        events.append(Event(fields["type"], fields["data"], fields.get("metadata"), event_id))
    return events


def handle_command(
    conn_or_pool_factory: Any,
    stream_id: str,
    initial_state: S,
    evolve: Callable[[S, RecordedEvent], S],
    decide: Callable[[S], Sequence[Union[Event, dict]]],
    max_attempts: int = 10,
    backoff: Callable[[int], float] = Backoff(),
    *,
    cache: Any = None,
    page_size: int = 500,
    notify: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> CommandResult:
    """Carry out one command on one stream, with optimistic concurrency.

    Each attempt reads the events after the last version it knows (the
    whole stream on the first attempt, unless ``cache`` knows the stream),
    folds them with ``evolve(state, event) -> state``, calls
    ``decide(state) -> [events]`` and appends those expecting the version
    it read. ``decide`` may raise to refuse the command, and may return an
    empty list (nothing appended).

    Each command starts from its own deep copy of ``initial_state``.
    ``evolve`` must return a new state and leave the one it is given
    unchanged: states are passed on from attempt to attempt, and a cached
    state is shared by every command on its stream.

    Retried, up to ``max_attempts`` attempts in all, each after
    ``backoff(n)`` seconds (``n`` = 1 before the second attempt):
    :class:`WrongExpectedVersion`, and the errors :func:`is_transient`
    accepts: ``40001``, ``40P01``, ``55P03``, SQLSTATE class ``08``,
    ``57P01`` to ``57P03``, and a lost connection (no SQLSTATE; the
    outcome of an append is then unknown). The last such error is raised
    when the attempts run out. Every other error (``57014`` among them: a
    cancel is a request to stop) and whatever ``evolve`` or ``decide``
    raise propagate at once. A conflict whose actual version is below the
    version the command knew (a cached state that was never committed)
    drops the stream from ``cache`` and reads the stream again from the
    start.

    After an append whose outcome is unknown, the next attempt first waits
    for any append of the stream still in flight (an empty batch, which
    takes the stream's lock), then reads.

    Already done: if a re-read finds the events of an earlier attempt
    stored, or the server reports one of them stored
    (:class:`EventAlreadyStored`), the result has ``already_done`` set, the
    version of the last of this command's events found stored, and nothing
    more is written. So it has too when an append that followed an
    unknown outcome succeeded as a repeat of part of an earlier attempt's
    events and the rest of them follow it in the stream.

    ``conn_or_pool_factory``: a ``psycopg.Connection``, a pool with a
    ``connection()`` method, a callable that returns a new connection
    (kept for the call, replaced if it breaks, closed at the end), or a
    conninfo string (connected to in autocommit, with server-side prepared
    statements off, as such a callable). On a ``psycopg.Connection`` in
    autocommit (recommended) each read and the append commit on their own;
    without autocommit each attempt runs in ``conn.transaction()``. Inside
    a transaction the caller opened, each attempt is a savepoint, what it
    reads is never written to ``cache`` (the transaction may still roll
    back), and under ``REPEATABLE READ`` or ``SERIALIZABLE`` a conflict
    (``VE001`` or ``40001``) is raised at once: the transaction's snapshot
    never moves, so only a new transaction can see the stream as it is.
    """
    _require_stream_id(stream_id)
    _require_int("max_attempts", max_attempts)
    _require_int("page_size", page_size)
    if max_attempts < 1:
        raise ValueError("max_attempts must be 1 or more")
    if not (callable(evolve) and callable(decide) and callable(backoff)):
        raise TypeError("evolve, decide and backoff must be callable")
    source = as_source(conn_or_pool_factory)
    owned = source is not conn_or_pool_factory

    version, state = 0, copy.deepcopy(initial_state)
    if cache is not None:
        cached = cache.get(stream_id)
        if cached is not None:
            version, state = cached
    assigned: List[uuid.UUID] = []
    issued: Set[uuid.UUID] = set()
    attempts = 0
    # Set once an append failed without a known outcome: it may have
    # committed unacknowledged, or still be running on the server.
    unknown_outcome = False
    try:
        while True:
            attempts += 1
            appending = False
            in_callers_tx = False
            final = False
            known_ahead = False
            try:
                with source.connection() as conn:
                    # A transaction the caller opened may still roll back, so
                    # what is read in it must not reach the cache.
                    in_callers_tx = conn.info.transaction_status == TransactionStatus.INTRANS
                    keep = None if in_callers_tx else cache
                    try:
                        if unknown_outcome:
                            _wait_for_appends(conn, stream_id)
                        with _attempt_scope(conn):
                            # Catch up; stop at the events of an earlier attempt.
                            found_version = None
                            for event in read_stream(conn, stream_id, version + 1,
                                                     page_size=page_size):
                                if found_version is not None and event.id not in issued:
                                    break
                                state = evolve(state, event)
                                version = event.version
                                if event.id in issued:
                                    found_version = event.version
                            _remember(keep, stream_id, version, state)
                            if found_version is not None:
                                return CommandResult(found_version, (), True, attempts)

                            events = _with_ids(decide(state), assigned)
                            if not events:
                                return CommandResult(version, (), False, attempts)
                            sent_before = set(issued)
                            issued.update(e.id for e in events)
                            appending = True
                            new_version = append_to_stream(conn, stream_id, version, events,
                                                           notify=notify)
                        appending = False
                        if unknown_outcome and sent_before:
                            # The server takes an append whose ids are a prefix
                            # of an earlier attempt's stored events for a
                            # repeat: then the rest of that attempt's events
                            # follow, and its decision is the one stored.
                            done_at = _last_of_ours(conn, stream_id, new_version + 1,
                                                    sent_before, len(issued), page_size)
                            if done_at is not None:
                                return CommandResult(done_at, (), True, attempts)
                        return CommandResult(new_version, tuple(events), False, attempts)
                    except EventAlreadyStored as exc:
                        # Carried out before: by an earlier attempt of this
                        # call, or by an earlier call that used the same ids.
                        # The server names the first stored id; the command's
                        # events are stored from there on.
                        stored_at = exc.version
                        if stored_at is None:
                            return CommandResult(version, (), True, attempts)
                        last = _last_of_ours(conn, stream_id, stored_at, issued,
                                             len(issued), page_size)
                        return CommandResult(last if last is not None else stored_at,
                                             (), True, attempts)
                    except WrongExpectedVersion as exc:
                        if in_callers_tx and _snapshot_is_fixed(conn):
                            final = True
                        known_ahead = exc.actual is not None and exc.actual < version
                        raise
            except psycopg.Error as exc:
                if final or not (isinstance(exc, WrongExpectedVersion) or is_transient(exc)):
                    raise
                if in_callers_tx and exc.sqlstate == "40001":
                    raise
                if attempts >= max_attempts:
                    raise
                if not source.can_reconnect and conn_or_pool_factory.closed:
                    raise
                if appending and _outcome_unknown(exc):
                    unknown_outcome = True
                if known_ahead:
                    # The stream is behind what the command knew: the state
                    # came from a transaction that rolled back, or from a
                    # cache filled by one. Start again from the stream itself.
                    log.warning("stream %r: behind the version %d the command knew; "
                                "reading it again from the start", stream_id, version)
                    if cache is not None:
                        cache.pop(stream_id, None)
                    version, state = 0, copy.deepcopy(initial_state)
                delay = backoff(attempts)
                log.debug("stream %r: attempt %d failed (%s); retrying in %.3fs",
                          stream_id, attempts, type(exc).__name__, delay)
                if delay > 0:
                    sleep(delay)
    finally:
        if owned:
            source.close()


def _outcome_unknown(exc: psycopg.Error) -> bool:
    """Whether an append that raised this may still have been stored: the
    connection was lost before the server's answer came back."""
    sqlstate = exc.sqlstate
    return sqlstate is None or sqlstate.startswith("08") or sqlstate in ("57P01", "57P02",
                                                                          "57P03")


def _wait_for_appends(conn: psycopg.Connection, stream_id: str) -> None:
    """Wait until no append of the stream is in flight.

    An append holds the stream's lock until its transaction ends; an empty
    batch takes that lock, so it returns only once an append still running
    for a lost connection has committed or rolled back.
    """
    with _attempt_scope(conn), translated(stream_id):
        conn.execute("SELECT event_store.append_events(%s::text, -2, '[]')", (stream_id,))


def _last_of_ours(conn: psycopg.Connection, stream_id: str, from_version: int,
                  ours: Set[uuid.UUID], limit: int, page_size: int) -> Optional[int]:
    """The version of the last event of an unbroken run of ``ours`` ids
    starting at ``from_version``, or None if the event there is not ours."""
    last = None
    with _attempt_scope(conn):
        for event in read_stream(conn, stream_id, from_version, page_size=page_size,
                                 limit=limit):
            if event.id not in ours:
                break
            last = event.version
    return last


def _snapshot_is_fixed(conn: psycopg.Connection) -> bool:
    """Whether the connection's transaction keeps one snapshot throughout."""
    row = conn.execute("SHOW transaction_isolation").fetchone()
    return row is not None and row[0] in ("repeatable read", "serializable")


def _attempt_scope(conn: psycopg.Connection) -> ContextManager[Any]:
    """No transaction of ours on an idle autocommit connection (each
    statement commits itself); otherwise ``conn.transaction()``."""
    if conn.autocommit and conn.info.transaction_status == TransactionStatus.IDLE:
        return nullcontext()
    return conn.transaction()


def _remember(cache: Any, stream_id: str, version: int, state: Any) -> None:
    if cache is not None:
        cache[stream_id] = (version, state)
