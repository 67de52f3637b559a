"""The database of durable records: async engine, sessions, Alembic migrations.

SQLite (aiosqlite) by default, PostgreSQL (psycopg) when ``AIMESH_DATABASE_URL`` says so.
The LangGraph checkpointer lives in the same database (:meth:`Database.checkpointer`).
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from aimesh.errors import StorageError

MIGRATIONS = "aimesh.store:migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Database:
    """Engine and session factory for one database URL.

    Args:
        url: SQLAlchemy async URL: ``sqlite+aiosqlite:///path`` or
            ``postgresql+psycopg://user@host/db``.
    """

    def __init__(self, url: str) -> None:
        self.url = make_url(url)
        if self.is_sqlite:
            # One connection, shared in turn: SQLite has a single writer, and several
            # connections would wait for it in SQLite's sleeping busy handler (1-100 ms
            # naps; seen as 70-400 ms to a task's first event). So no session may wait for
            # another while it holds a transaction.
            # Sessions end every transaction themselves: no extra rollback on return.
            self.engine = create_async_engine(
                self.url, pool_size=1, max_overflow=0, pool_reset_on_return=None
            )
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_async_engine(self.url, pool_pre_ping=True, pool_size=10)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        """True for the embedded SQLite database."""
        return self.url.get_backend_name() == "sqlite"

    def describe(self) -> str:
        """The URL without its password, for messages."""
        return self.url.render_as_string(hide_password=True)

    async def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (a no-op when it is there).

        Raises:
            StorageError: The database cannot be reached or migrated.
        """
        try:
            async with self.engine.begin() as conn:
                await conn.run_sync(_upgrade)
        except (SQLAlchemyError, OSError) as exc:
            raise StorageError(
                f"database {self.describe()} cannot be migrated: {exc}; set "
                "AIMESH_DATABASE_URL to a reachable database or unset it for the SQLite file"
            ) from exc

    async def ping(self) -> None:
        """Run ``SELECT 1``; raises the driver's error when the database is unreachable."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    @asynccontextmanager
    async def checkpointer(self) -> AsyncIterator[Any]:
        """A LangGraph checkpointer on this same database (threads of conversations)."""
        if self.is_sqlite:
            from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

            async with AsyncSqliteSaver.from_conn_string(self.url.database or "") as saver:
                yield saver
            return
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        plain = self.url.set(drivername="postgresql").render_as_string(hide_password=False)
        async with AsyncPostgresSaver.from_conn_string(plain) as saver:
            await saver.setup()
            yield saver

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def _upgrade(connection: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
