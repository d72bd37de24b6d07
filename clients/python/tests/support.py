"""Helpers the client's tests share (imported by the test modules; pytest
puts this directory on sys.path)."""

from __future__ import annotations

import random

import pytest


def require_server_function(db, signature: str) -> None:
    """Fail (not skip) when the server's event_store lacks a function, so
    that a run against the wrong build cannot pass. ``signature`` as
    to_regprocedure takes it, e.g. 'event_store.park_event(text,bigint,text)'."""
    with db.connect() as conn:
        version, present = conn.execute(
            "SELECT extversion, to_regprocedure(%s) IS NOT NULL"
            " FROM pg_extension WHERE extname = 'event_store'", (signature,)).fetchone()
    if not present:
        pytest.fail(f"the installed event_store {version} has no {signature.split('(')[0]}")


def new_category(prefix: str) -> str:
    """A category name of its own for each test."""
    return f"{prefix}{random.getrandbits(32):08x}"
