"""A Python client for the event_store PostgreSQL extension (psycopg 3).

Appends with optimistic concurrency, stream reads, the global log,
snapshots, a command loop with idempotent retries, and exactly-once
projections.
"""

from .command import Backoff, CommandResult, StateCache, handle_command
from .errors import (
    Deadlock,
    DuplicateEventId,
    EventAlreadyStored,
    EventStoreError,
    InvalidInput,
    LockTimeout,
    PermissionDenied,
    ReadOnly,
    SerializationConflict,
    StatementCanceled,
    TransientError,
    WrongExpectedVersion,
    is_transient,
    translate,
)
from .events import Event, RecordedEvent, Snapshot, new_event_id
from .store import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    append_to_stream,
    checkpoint,
    read_all,
    read_category,
    read_snapshot,
    read_stream,
    save_checkpoint,
    save_snapshot,
    stream_version,
)
from .subscription import Subscription, subscribe

__version__ = "0.1.0"

__all__ = [
    "ANY",
    "NO_STREAM",
    "STREAM_EXISTS",
    "Backoff",
    "CommandResult",
    "Deadlock",
    "DuplicateEventId",
    "Event",
    "EventAlreadyStored",
    "EventStoreError",
    "InvalidInput",
    "LockTimeout",
    "PermissionDenied",
    "ReadOnly",
    "RecordedEvent",
    "SerializationConflict",
    "Snapshot",
    "StateCache",
    "StatementCanceled",
    "Subscription",
    "TransientError",
    "WrongExpectedVersion",
    "append_to_stream",
    "checkpoint",
    "handle_command",
    "is_transient",
    "new_event_id",
    "read_all",
    "read_category",
    "read_snapshot",
    "read_stream",
    "save_checkpoint",
    "save_snapshot",
    "stream_version",
    "subscribe",
    "translate",
]
