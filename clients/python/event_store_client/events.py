"""Events to append, events read back, snapshots read back, and client-side
event ids."""

from __future__ import annotations

import datetime
import os
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Union

__all__ = ["Event", "RecordedEvent", "Snapshot", "StreamInfo", "new_event_id"]


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
