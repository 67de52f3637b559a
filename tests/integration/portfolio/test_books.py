"""A tenant's books through Portfolios: the current version, and a training whose book was
deleted (and imported again) while it ran."""

import asyncio
from pathlib import Path
from typing import Any

import pytest

from aimesh.config import Settings
from aimesh.portfolio import books
from aimesh.portfolio.book import BookInfo, BookModel
from aimesh.portfolio.books import Portfolios
from aimesh.portfolio.importer import parse_mapping
from aimesh.portfolio.reader import read_table
from aimesh.portfolio.store import BookStore
from aimesh.portfolio.training import train_book_models
from aimesh.store.database import Database
from tests.helpers.exports import TELCO_MAP, csv_bytes, telco_export


@pytest.fixture
def portfolios(db: Database, tmp_path: Path) -> Portfolios:
    settings = Settings(home=tmp_path / "home", cv_folds=3)
    return Portfolios(settings, BookStore(db.engine, settings.home_dir))


async def import_rows(portfolios: Portfolios, rows: int) -> BookInfo:
    raw = read_table(csv_bytes(telco_export().head(rows)), "clients.csv", max_rows=10_000)
    return await portfolios.import_book("acme", raw, parse_mapping(TELCO_MAP), "clients.csv")


async def test_a_new_version_answers_once_its_models_are_trained(portfolios: Portfolios) -> None:
    await import_rows(portfolios, 300)
    assert (await portfolios.book("acme")).sample  # nothing ready yet: the sample answers

    [trained] = await portfolios.train_pending("acme")

    book = await portfolios.book("acme")
    assert not book.sample and book.version == 1
    assert {m.model: m.status for m in trained.models} == {
        "churn": "ready",
        "billing-anomaly": "ready",
    }
    assert book.churn().card.version == trained.model("churn").version  # type: ignore[union-attr]


async def test_a_training_of_a_deleted_book_lands_nowhere_and_leaves_no_files(
    portfolios: Portfolios, monkeypatch: pytest.MonkeyPatch
) -> None:
    await import_rows(portfolios, 300)
    loop = asyncio.get_running_loop()
    again: list[BookInfo] = []
    trained: list[BookModel] = []

    def deleted_while_training(*args: Any, **kwargs: Any) -> list[BookModel]:
        """Once the rows are read, delete the book and import v1 anew, then train."""
        monkeypatch.setattr(books, "train_book_models", train_book_models)
        asyncio.run_coroutine_threadsafe(portfolios.delete("acme"), loop).result()
        again.append(asyncio.run_coroutine_threadsafe(import_rows(portfolios, 200), loop).result())
        trained.extend(train_book_models(*args, **kwargs))
        return trained

    monkeypatch.setattr(books, "train_book_models", deleted_while_training)
    await portfolios.train_pending("acme")

    version = await portfolios.version("acme", 1)
    assert version is not None and version.info.sha256 == again[0].sha256
    assert version.status == "ready"  # the new v1, trained on its own rows after the old one
    assert all(m.version not in {t.version for t in trained} for m in version.info.models)
    registry = portfolios.store.registry_dir("acme")
    assert trained and not any((registry / m.model / m.version).exists() for m in trained)
