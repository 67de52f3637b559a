"""Group commit on the real SQLite database: shared transactions, failures kept apart."""

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from aimesh.store.batch import GroupCommit
from aimesh.store.database import Database
from aimesh.store.tables import AuditEntry


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'batch.sqlite'}")
    await database.migrate()
    yield database
    await database.close()


def entry(action: str | None) -> dict[str, Any]:
    return {"tenant": "t", "action": action, "resource_type": "r", "result": "success"}


async def count(db: Database) -> int:
    async with db.engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(AuditEntry)) or 0)


async def test_concurrent_items_share_transactions_and_each_gets_its_result(db: Database) -> None:
    batches: list[int] = []

    async def write(connection: AsyncConnection, items: Sequence[dict[str, Any]]) -> list[str]:
        batches.append(len(items))
        await connection.execute(insert(AuditEntry), list(items))
        return [item["action"] for item in items]

    commit = GroupCommit(db.engine, write)
    results = await asyncio.gather(*(commit.submit(entry(f"a{i}")) for i in range(50)))

    assert results == [f"a{i}" for i in range(50)]
    assert await count(db) == 50
    assert sum(batches) == 50
    assert len(batches) < 50  # shared: the first alone, the rest together


async def test_a_bad_item_fails_only_its_caller(db: Database) -> None:
    async def write(connection: AsyncConnection, items: Sequence[dict[str, Any]]) -> list[None]:
        await connection.execute(insert(AuditEntry), list(items))
        return [None] * len(items)

    commit = GroupCommit(db.engine, write)
    actions = [f"a{i}" for i in range(10)]
    actions[5] = None  # NOT NULL column
    outcomes = await asyncio.gather(
        *(commit.submit(entry(a)) for a in actions), return_exceptions=True
    )

    assert isinstance(outcomes[5], IntegrityError)
    assert [o for i, o in enumerate(outcomes) if i != 5] == [None] * 9
    assert await count(db) == 9
