"""Where the long-running helpers get their connections from.

A source is one of:

- a ``psycopg.Connection``: used as it is, never closed here;
- a pool (anything with a ``connection()`` context manager, such as
  ``psycopg_pool.ConnectionPool``): one connection per use;
- a callable returning a new ``psycopg.Connection``: one connection kept and
  reused, replaced when it breaks, closed by :meth:`Source.close`;
- a conninfo string: as a callable that connects to it in autocommit, with
  server-side prepared statements off (``prepare_threshold=None``), so that
  the same string also works through a pooler in transaction mode.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

import psycopg


class Source:
    """Hands out connections for one attempt or batch at a time."""

    def __init__(self, target: Any) -> None:
        if isinstance(target, str):
            conninfo = target
            self._kind = "factory"
            target = lambda: _connect(conninfo)  # noqa: E731
        elif isinstance(target, psycopg.Connection):
            self._kind = "connection"
        elif callable(getattr(target, "connection", None)):
            self._kind = "pool"
        elif callable(target):
            self._kind = "factory"
        else:
            raise TypeError(
                "expected a psycopg.Connection, a pool with a connection() method, "
                "a callable that returns a new connection, or a conninfo string"
            )
        self._target = target
        self._kept: Optional[psycopg.Connection] = None

    @property
    def can_reconnect(self) -> bool:
        """Whether a broken connection can be replaced."""
        return self._kind != "connection"

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        if self._kind == "pool":
            with self._target.connection() as conn:
                yield conn
            return
        if self._kind == "connection":
            yield self._target
            return
        if self._kept is None or self._kept.closed:
            self._kept = self._target()
        conn = self._kept
        try:
            yield conn
        except BaseException:
            self._after_failure(conn)
            raise

    def _after_failure(self, conn: psycopg.Connection) -> None:
        # A broken connection is dropped; a live one is made usable again.
        if conn.broken or conn.closed:
            self.close()
            return
        try:
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.rollback()
        except psycopg.Error:
            self.close()

    def close(self) -> None:
        """Close the connection kept for a factory."""
        kept, self._kept = self._kept, None
        if kept is not None:
            try:
                kept.close()
            except psycopg.Error:
                pass


def _connect(conninfo: str) -> psycopg.Connection:
    # Autocommit: the command loop's reads and appends commit on their own,
    # and a projection batch opens its own transaction. No prepared
    # statements: a named one lives on one server connection, which a
    # pooler in transaction mode may not give the next transaction.
    return psycopg.connect(conninfo, autocommit=True, prepare_threshold=None)


def as_source(target: Any) -> Source:
    return target if isinstance(target, Source) else Source(target)


ConnectFactory = Callable[[], psycopg.Connection]
