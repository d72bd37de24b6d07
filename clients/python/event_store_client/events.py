"""Events to append, events read back, snapshots read back, and client-side
event ids."""

from __future__ import annotations

import datetime
import os
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, List, Mapping, NamedTuple, Optional, Union

__all__ = ["Event", "LogHolder", "LogPage", "ParkedEvent", "RecordedEvent", "Snapshot",
           "StreamInfo", "SubscriptionStatus", "new_event_id"]


@dataclass(frozen=True)
class Event:
    """An event to append.

    ``data`` is any JSON-serializable value; ``metadata`` a mapping or None;
    ``id`` a uuid (or its string) or None, in which case the server makes
    one. Give an id when a retry must be recognised as a repeat.
    """

    type: str
    data: Any
    metadata: Optional[Mapping[str, Any]] = None
    id: Optional[Union[uuid.UUID, str]] = None


@dataclass(frozen=True)
class RecordedEvent:
    """An event as stored: one row of ``event_store.event``."""

    global_position: int
    stream_id: str
    version: int
    id: uuid.UUID
    type: str
    data: Any
    metadata: Optional[dict]
    created_at: datetime.datetime


@dataclass(frozen=True)
class Snapshot:
    """A stream's state as saved at one of its versions: one row of
    ``event_store.read_snapshot``.

    ``state`` is the saved value as JSON gives it back (a mapping becomes a
    ``dict``, a tuple a ``list``); the events after it start at
    ``version + 1``.
    """

    version: int
    state: Any
    created_at: datetime.datetime


@dataclass(frozen=True)
class StreamInfo:
    """A stream's lifecycle state: the row of ``event_store.stream_info``.

    ``version`` is the head, the last version ever appended (0 for a
    stream that does not exist); ``first_visible_version`` the first
    version reads return now (1 for a stream that does not exist);
    ``truncate_before`` the stream's truncation bound as the server keeps
    it; ``max_count`` and ``max_age`` (a :class:`datetime.timedelta`) its
    retention, None for no limit; ``tombstoned`` whether it is tombstoned.
    """

    version: int
    first_visible_version: int
    truncate_before: Optional[int]
    max_count: Optional[int]
    max_age: Optional[datetime.timedelta]
    tombstoned: bool


class LogPage(NamedTuple):
    """A page of the global log and how far its read got (0.5.0).

    ``position`` is ``event_store.last_read_position()`` of the read: every
    event at or below it that the read had to return, it returned. It is the
    checkpoint to save and to continue from, also when a filter left the
    page short or empty. Unpacks as ``events, position = page``.
    """

    events: List[RecordedEvent]
    position: int


@dataclass(frozen=True)
class SubscriptionStatus:
    """A row of the view ``event_store.subscriptions`` (0.5.0).

    ``lag_positions`` is the head minus the checkpoint (rolled-back
    positions and other categories' events count too); ``lag_events`` the
    events stored after the checkpoint; ``lag`` how old the first of them
    is (zero when caught up); ``saved_at`` when the checkpoint was saved.
    """

    subscriber: str
    checkpoint: int
    head_position: int
    lag_positions: int
    lag_events: int
    lag: datetime.timedelta
    saved_at: datetime.datetime


@dataclass(frozen=True)
class LogHolder:
    """A row of the view ``event_store.log_holders`` (0.5.0): the lowest
    position whose transaction is still open, and that session's activity
    (``pid`` and the rest are None for a prepared transaction, or one that
    has ended since; ``client_addr`` as psycopg reads an ``inet``)."""

    position: int
    pid: Optional[int]
    role_name: Optional[str]
    application_name: Optional[str]
    client_addr: Any
    state: Optional[str]
    xact_start: Optional[datetime.datetime]
    xact_age: Optional[datetime.timedelta]
    state_change: Optional[datetime.datetime]
    query: Optional[str]


@dataclass(frozen=True)
class ParkedEvent:
    """A parked event: a row of ``event_store.read_parked`` (0.5.0).

    ``event`` is the event as reads show it now, or None when it is gone
    (deleted, erased, purged, ... since it was parked); ``error`` the last
    failed attempt's error; ``attempts`` how many times it was parked;
    ``parked_at`` when it was last parked.
    """

    global_position: int
    event: Optional[RecordedEvent]
    error: str
    attempts: int
    parked_at: datetime.datetime


class _Uuid7:
    """Version 7 uuids (RFC 9562), ascending within this process.

    48 bits of Unix time in milliseconds, then 12 bits of a counter that
    starts at a random value below 2048 each millisecond (so that ids made in
    the same millisecond still ascend), then 62 random bits.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._counter = 0

    def __call__(self) -> uuid.UUID:
        with self._lock:
            ms = time.time_ns() // 1_000_000
            if ms <= self._last_ms:
                ms = self._last_ms
                self._counter += 1
                if self._counter > 0xFFF:
                    ms += 1
                    self._counter = int.from_bytes(os.urandom(2), "big") & 0x7FF
            else:
                self._counter = int.from_bytes(os.urandom(2), "big") & 0x7FF
            self._last_ms = ms
            counter = self._counter
        tail = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
        value = (
            (ms & ((1 << 48) - 1)) << 80
            | 0x7 << 76
            | counter << 64
            | 0b10 << 62
            | tail
        )
        return uuid.UUID(int=value)


_generator = _Uuid7()


def new_event_id() -> uuid.UUID:
    """Return a new version 7 uuid for an event.

    Made on the client, so the caller knows the id before the append and can
    repeat the append with the same id after a lost acknowledgement.
    """
    return _generator()


def _reinit_after_fork() -> None:
    _generator._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_after_fork)
