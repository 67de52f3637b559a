"""Client book versions on SQLite and PostgreSQL: numbered, all or nothing, ready in turn,
claimed by one trainer, deleted whole, and each tenant's own."""

import asyncio
import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from aimesh.errors import InvalidInputError, StorageError
from aimesh.portfolio import store as store_module
from aimesh.portfolio.book import BookInfo, BookModel
from aimesh.portfolio.importer import build_book
from aimesh.portfolio.reader import rows_table
from aimesh.portfolio.store import NUMBERING_TRIES, BookStore, tenant_key
from aimesh.store.database import Database
from aimesh.store.tables import BookRecord, utcnow

TENANT = "acme / MSP #1"  # not a safe path segment: it never becomes one
MAPPING = {"client_id": "id", "churned": "left", "monthly_charges": "monthly"}
PENDING = [BookModel(model="churn", status="pending"), BookModel(model="anomaly", status="pending")]
READY = [
    BookModel(model="churn", version="1", status="ready", metrics={"roc_auc": 0.8}),
    BookModel(model="anomaly", status="unavailable", detail="no monthly charges"),
]


@pytest.fixture
def store(db: Database, tmp_path: Path) -> BookStore:
    return BookStore(db.engine, tmp_path / "home")


def table(n_rows: int = 4, plan: str = "Gold") -> tuple[pd.DataFrame, Any, Any]:
    rows: list[dict[str, object]] = [
        {"id": f"C{i}", "left": "yes" if i % 2 else "no", "monthly": 10.0 + i, "plan": plan}
        for i in range(n_rows)
    ]
    return build_book(rows_table(rows, max_rows=100), MAPPING)


async def add(
    store: BookStore, tenant: str = TENANT, models: list[BookModel] = PENDING, **kw: Any
) -> BookInfo:
    frame, columns, label = table(**kw)
    return await store.add(tenant, frame, columns, label, MAPPING, "book.csv", models=models)


async def row_count(db: Database) -> int:
    async with db.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(BookRecord)) or 0)


def files(store: BookStore, tenant: str = TENANT) -> list[str]:
    directory = store.tenant_dir(tenant)
    return sorted(path.name for path in directory.iterdir()) if directory.exists() else []


async def test_versions_are_numbered_and_read_back_as_built(store: BookStore) -> None:
    frame, columns, label = table()

    first = await store.add(
        TENANT, frame, columns, label, MAPPING, "book.csv", models=PENDING, created_by="key-1"
    )
    second = await add(store, n_rows=6)

    assert (first.version, second.version) == (1, 2)
    assert (first.tenant, first.rows, first.source, first.label) == (TENANT, 4, "book.csv", label)
    assert first.columns == columns and first.models == PENDING
    path = store.frame_path(TENANT, 1)
    assert path == store.root / tenant_key(TENANT) / "1.parquet"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == first.sha256
    assert files(store) == ["1.parquet", "2.parquet"]  # no temporary file left
    assert await store.get(TENANT, 1) == first
    assert await store.get(TENANT, 3) is None
    read = store.read_frame(TENANT, 1, sha256=first.sha256)
    pd.testing.assert_frame_equal(read, frame)
    assert read.index.name == "client_id"

    listed = await store.versions(TENANT)
    assert [v.info.version for v in listed] == [2, 1]
    assert (listed[1].status, listed[1].created_by, listed[1].ready_at) == (
        "training",
        "key-1",
        None,
    )
    assert listed[1].created_at <= utcnow()


async def test_the_newest_ready_version_is_current(store: BookStore) -> None:
    await add(store)
    assert await store.current(TENANT) is None  # training: nothing to answer with yet

    assert await store.finish(TENANT, 1, READY)
    await add(store)  # version 2 trains: version 1 keeps answering
    current = await store.current(TENANT)
    assert current is not None and current.version == 1 and current.models == READY

    failed = [READY[0].model_copy(update={"status": "failed", "detail": "one class"}), READY[1]]
    assert await store.finish(TENANT, 2, failed)
    assert await store.current(TENANT) == current
    version_2 = (await store.versions(TENANT))[0]
    assert (version_2.status, version_2.error) == ("failed", "churn: one class")
    assert version_2.ready_at is not None

    third = await add(store, models=[READY[1]])  # nothing to train: ready at once
    assert await store.current(TENANT) == third and third.version == 3


async def test_finish_needs_every_model_terminal(store: BookStore) -> None:
    await add(store)

    with pytest.raises(ValueError, match="still training"):
        await store.finish(TENANT, 1, [READY[0], PENDING[1]])
    assert not await store.finish(TENANT, 9, READY)  # no such version
    assert (await store.versions(TENANT))[0].status == "training"


async def test_concurrent_imports_take_distinct_numbers(store: BookStore) -> None:
    infos = await asyncio.gather(*(add(store, n_rows=n) for n in range(2, 8)))

    assert sorted(info.version for info in infos) == [1, 2, 3, 4, 5, 6]
    for info in infos:  # each file is its own version's
        path = store.frame_path(TENANT, info.version)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == info.sha256
        assert len(store.read_frame(TENANT, info.version)) == info.rows


async def test_taken_numbers_are_retried_then_refused(
    store: BookStore, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await add(store)
    tries: list[str] = []

    async def always_one(conn: AsyncConnection, tenant: str) -> int:
        tries.append(tenant)
        return 1

    monkeypatch.setattr(store_module, "_next_version", always_one)
    with pytest.raises(StorageError, match="version numbers in a row were taken"):
        await add(store, plan="Basic")

    assert len(tries) == NUMBERING_TRIES
    assert await row_count(db) == 1
    assert files(store) == ["1.parquet"]
    assert hashlib.sha256(store.frame_path(TENANT, 1).read_bytes()).hexdigest() == first.sha256


async def test_a_failed_commit_leaves_no_file_and_no_row(store: BookStore, db: Database) -> None:
    def refuse(_conn: Any) -> None:
        raise RuntimeError("the database went away")

    event.listen(db.engine.sync_engine, "commit", refuse)
    try:
        with pytest.raises(RuntimeError, match="went away"):
            await add(store)
    finally:
        event.remove(db.engine.sync_engine, "commit", refuse)

    assert await row_count(db) == 0
    assert files(store) == []
    assert (await add(store)).version == 1  # the failed transaction is not committed later
    assert await row_count(db) == 1


async def test_a_failed_move_into_place_stores_nothing(
    store: BookStore, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_move(_source: Path, _target: Path) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(store_module.os, "replace", no_move)
    with pytest.raises(PermissionError):
        await add(store)

    assert await row_count(db) == 0
    assert files(store) == []


async def test_a_failed_file_write_stores_nothing(
    store: BookStore, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(_descriptor: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_module.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        await add(store)

    assert await row_count(db) == 0
    assert files(store) == []


async def test_one_of_two_concurrent_claimers_gets_a_version(store: BookStore) -> None:
    await add(store)

    claims = await asyncio.gather(
        store.claim(stale_after_s=60), BookStore(store.engine, store.root).claim(stale_after_s=60)
    )

    assert sorted(claim is None for claim in claims) == [False, True]
    assert await store.claim(stale_after_s=60) is None


async def test_claims_take_the_oldest_first_and_retake_stale_ones(store: BookStore) -> None:
    await add(store, tenant="beta")
    await add(store)
    t0 = utcnow()

    first = await store.claim(stale_after_s=60, now=t0)
    second = await store.claim(stale_after_s=60, now=t0)
    assert first is not None and second is not None
    assert (first.tenant, second.tenant) == ("beta", TENANT)
    assert await store.claim(stale_after_s=60, now=t0 + timedelta(seconds=30)) is None

    later = t0 + timedelta(seconds=61)  # both trainers died
    retaken = await store.claim(stale_after_s=60, now=later)
    assert retaken is not None and retaken.tenant == "beta"

    await store.finish(TENANT, 1, READY)  # a finished version is never claimed
    assert await store.claim(TENANT, stale_after_s=60, now=later) is None


async def test_tenants_see_only_their_own_versions(store: BookStore) -> None:
    await add(store)
    await add(store, tenant="beta")
    await store.finish("beta", 1, READY)

    assert [v.info.tenant for v in await store.versions(TENANT)] == [TENANT]
    assert await store.current(TENANT) is None
    beta = await store.current("beta")
    assert beta is not None and beta.tenant == "beta"
    claimed = await store.claim("beta", stale_after_s=60)
    assert claimed is None  # beta's version is ready; acme's is not beta's to claim
    assert store.tenant_dir(TENANT) != store.tenant_dir("beta")


async def test_delete_removes_rows_files_and_models(store: BookStore, db: Database) -> None:
    await add(store)
    await add(store)
    await add(store, tenant="beta")
    store.registry_dir(TENANT).mkdir()
    (store.registry_dir(TENANT) / "churn.joblib").write_bytes(b"model")

    assert await store.delete(TENANT) == 2

    assert await store.versions(TENANT) == []
    assert not store.tenant_dir(TENANT).exists()
    assert await row_count(db) == 1 and files(store, "beta") == ["1.parquet"]
    assert await store.delete(TENANT) == 0
    assert (await add(store)).version == 1  # a new start


async def test_a_missing_or_altered_file_is_refused(store: BookStore) -> None:
    info = await add(store)

    with pytest.raises(StorageError, match="fail their SHA-256 check"):
        store.read_frame(TENANT, 1, sha256="0" * 64)
    store.frame_path(TENANT, 1).unlink()
    with pytest.raises(StorageError, match="are missing"):
        store.read_frame(TENANT, 1, sha256=info.sha256)


@pytest.mark.parametrize("tenant", ["", "t" * 65])
async def test_a_bad_tenant_is_refused(store: BookStore, db: Database, tenant: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        await add(store, tenant=tenant)

    assert caught.value.field == "tenant"
    assert await row_count(db) == 0
