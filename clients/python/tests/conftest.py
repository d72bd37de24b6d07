"""Test databases for the client's tests.

The server comes from PGHOST, PGPORT and PGUSER (a superuser). Each session
creates a database with a random suffix, installs the extension there and
drops the database at the end; tests that need a database to themselves ask
``new_database``.

With ES_PGBOUNCER_HOST and ES_PGBOUNCER_PORT set, every connection the tests
use goes through that pgbouncer (transaction pooling), with server-side
prepared statements off, except for creating databases and for LISTEN,
which need direct connections.
"""

from __future__ import annotations

import os
import uuid
from typing import Callable, Dict, Iterator, List

import psycopg
import pytest
from psycopg import sql

BOUNCER_HOST = os.environ.get("ES_PGBOUNCER_HOST")
BOUNCER_PORT = os.environ.get("ES_PGBOUNCER_PORT")
VIA_PGBOUNCER = bool(BOUNCER_HOST and BOUNCER_PORT)


def _direct_params(dbname: str) -> Dict[str, str]:
    # libpq takes host, port and user from PGHOST, PGPORT and PGUSER.
    return {"dbname": dbname}


class Database:
    """One test database: how to reach it directly and through the pooler."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.via_pgbouncer = VIA_PGBOUNCER

    @property
    def direct_conninfo(self) -> str:
        return psycopg.conninfo.make_conninfo(**_direct_params(self.name))

    @property
    def conninfo(self) -> str:
        """What the code under test connects to (the pooler when there is one)."""
        if VIA_PGBOUNCER:
            return psycopg.conninfo.make_conninfo(
                host=BOUNCER_HOST, port=BOUNCER_PORT, dbname=self.name)
        return self.direct_conninfo

    @property
    def connect_kwargs(self) -> Dict[str, object]:
        # A pooler in transaction mode cannot keep named prepared statements.
        return {"prepare_threshold": None} if VIA_PGBOUNCER else {}

    def connect(self, autocommit: bool = True, **kwargs) -> psycopg.Connection:
        params = dict(self.connect_kwargs)
        params.update(kwargs)
        return psycopg.connect(self.conninfo, autocommit=autocommit, **params)

    def connect_direct(self, autocommit: bool = True) -> psycopg.Connection:
        return psycopg.connect(self.direct_conninfo, autocommit=autocommit)


def _create(name: str) -> Database:
    with psycopg.connect(**_direct_params("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        # Conflicts are expected here by the thousand: keep them out of the log.
        admin.execute(sql.SQL("ALTER DATABASE {} SET event_store.log_conflicts = off")
                      .format(sql.Identifier(name)))
    with psycopg.connect(**_direct_params(name), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION event_store")
        version = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'event_store'").fetchone()[0]
    if tuple(int(p) for p in version.split(".")) < (0, 3, 0):
        _drop(name)
        pytest.fail(f"the installed event_store is {version}; the client needs 0.3.0 or later")
    return Database(name)


def _drop(name: str) -> None:
    with psycopg.connect(**_direct_params("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                      .format(sql.Identifier(name)))


def _new_name() -> str:
    return f"es_pyclient_{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def db() -> Iterator[Database]:
    """A database shared by the session's tests (use unique stream ids)."""
    database = _create(_new_name())
    try:
        yield database
    finally:
        _drop(database.name)


@pytest.fixture
def new_database() -> Iterator[Callable[[], Database]]:
    """Make databases of the test's own, dropped after the test."""
    made: List[str] = []

    def make() -> Database:
        database = _create(_new_name())
        made.append(database.name)
        return database

    try:
        yield make
    finally:
        for name in made:
            _drop(name)


@pytest.fixture
def conn(db: Database) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the session database."""
    with db.connect() as connection:
        yield connection


@pytest.fixture
def stream() -> Callable[[str], str]:
    """Unique stream ids: stream('acct') -> 'acct-<random>'."""
    return lambda category="test": f"{category}-{uuid.uuid4().hex[:12]}"
