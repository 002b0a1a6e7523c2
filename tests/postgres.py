"""Databases on the local PostgreSQL for the tests that need a server one (a Prefect server on
PostgreSQL, as production runs it): each made fresh and dropped afterwards.

ENRICH_TEST_POSTGRES (a postgresql:// URL to an existing database whose user may create
databases) points them elsewhere than postgres@127.0.0.1:5432."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Iterator

ADMIN_URL = os.environ.get("ENRICH_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


class PostgresUnavailableError(RuntimeError):
    """No PostgreSQL answers at ADMIN_URL, or it does not let the tests make a database."""


async def _admin(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty database, dropped on the way out; its postgresql:// URL."""
    import asyncpg

    name = f"enrich_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        message = f"no PostgreSQL at {ADMIN_URL} ({exc}); set ENRICH_TEST_POSTGRES to use another"
        raise PostgresUnavailableError(message) from exc
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def for_prefect(database_url: str) -> str:
    """``database_url`` as a Prefect server's PREFECT_SERVER_DATABASE_CONNECTION_URL."""
    return database_url.replace("postgresql://", "postgresql+asyncpg://", 1)
