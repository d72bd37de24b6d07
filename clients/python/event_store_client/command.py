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

import logging
import random
import threading
import time
import uuid
from collections import OrderedDict
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, List, Sequence, Set, Tuple, TypeVar, Union

import psycopg
from psycopg.pq import TransactionStatus

from ._connections import as_source
from .errors import EventAlreadyStored, WrongExpectedVersion
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
    holds ``(version, state)`` pairs (a plain dict) can stand in for it.
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

    Retried, up to ``max_attempts`` attempts in all, each after
    ``backoff(n)`` seconds (``n`` = 1 before the second attempt):
    :class:`WrongExpectedVersion`, and errors whose outcome is unknown or
    transient (``psycopg.OperationalError``: a broken connection, a lost
    acknowledgement, ``40001``, ``40P01``, ``55P03``, ``57014``). The last
    such error is raised when the attempts run out. Other errors, and
    whatever ``evolve`` or ``decide`` raise, propagate at once.

    Already done: if a re-read finds the events of an earlier attempt
    stored, or the server reports one of them stored
    (:class:`EventAlreadyStored`), the result has ``already_done`` set and
    nothing more is written.

    ``conn_or_pool_factory``: a ``psycopg.Connection`` (autocommit
    recommended: each read and the append then commit on their own; without
    autocommit each attempt runs in ``conn.transaction()``), a pool with a
    ``connection()`` method, or a callable that returns a new connection
    (kept for the call, replaced if it breaks, closed at the end).
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

    version, state = 0, initial_state
    if cache is not None:
        cached = cache.get(stream_id)
        if cached is not None:
            version, state = cached
    assigned: List[uuid.UUID] = []
    issued: Set[uuid.UUID] = set()
    attempts = 0
    try:
        while True:
            attempts += 1
            try:
                with source.connection() as conn:
                    with _attempt_scope(conn):
                        # Catch up; stop at the events of an earlier attempt.
                        found_version = None
                        for event in read_stream(conn, stream_id, version + 1, page_size=page_size):
                            if found_version is not None and event.id not in issued:
                                break
                            state = evolve(state, event)
                            version = event.version
                            if event.id in issued:
                                found_version = event.version
                        if found_version is not None:
                            _remember(cache, stream_id, version, state)
                            return CommandResult(found_version, (), True, attempts)
                        _remember(cache, stream_id, version, state)

                        events = _with_ids(decide(state), assigned)
                        if not events:
                            return CommandResult(version, (), False, attempts)
                        issued.update(e.id for e in events)
                        new_version = append_to_stream(conn, stream_id, version, events,
                                                       notify=notify)
                return CommandResult(new_version, tuple(events), False, attempts)
            except EventAlreadyStored as exc:
                # Carried out before: by an earlier attempt of this call, or
                # by an earlier call that used the same ids.
                stored_at = exc.version
                return CommandResult(stored_at if stored_at is not None else version,
                                     (), True, attempts)
            except (WrongExpectedVersion, psycopg.OperationalError) as exc:
                if attempts >= max_attempts:
                    raise
                if not source.can_reconnect and conn_or_pool_factory.closed:
                    raise
                delay = backoff(attempts)
                log.debug("stream %r: attempt %d failed (%s); retrying in %.3fs",
                          stream_id, attempts, type(exc).__name__, delay)
                if delay > 0:
                    sleep(delay)
    finally:
        if owned:
            source.close()


def _attempt_scope(conn: psycopg.Connection) -> ContextManager[Any]:
    """No transaction of ours on an idle autocommit connection (each
    statement commits itself); otherwise ``conn.transaction()``."""
    if conn.autocommit and conn.info.transaction_status == TransactionStatus.IDLE:
        return nullcontext()
    return conn.transaction()


def _remember(cache: Any, stream_id: str, version: int, state: Any) -> None:
    if cache is not None:
        cache[stream_id] = (version, state)
