"""Every tenant's current client book, the sample book, and the training of new versions.

:class:`Portfolios` is what the service, the CLI and the scoring API hold: it resolves a
tenant's book (its newest version whose models are ready, else the packaged sample when
``AIMESH_SAMPLE_BOOK`` allows), imports new versions and trains their models. Built books
are kept per (tenant, version), so a run, a score and the next request share one loaded
table and its models.
"""

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pandas as pd
from pydantic import BaseModel

from aimesh.config import Settings
from aimesh.errors import (
    BookNotFoundError,
    ModelNotFoundError,
    ModelUnavailableError,
    StorageError,
)
from aimesh.ml.registry import ModelCard, ModelRegistry, Trained
from aimesh.portfolio.book import BookInfo, BookModel, ClientBook
from aimesh.portfolio.importer import AnyMapping, build_book, check_mapping
from aimesh.portfolio.sample import sample_book, sample_info
from aimesh.portfolio.store import BookStore, BookVersion
from aimesh.portfolio.training import BOOK_MODELS, load_book_model, train_book_models
from aimesh.store.database import Database

BOOKS_KEPT = 32
"""Loaded books kept in memory (tables and models), least recently used dropped first."""


class PortfolioView(BaseModel):
    """A tenant's client book as ``GET /portfolio`` and ``aimesh portfolio show`` show it.

    Attributes:
        tenant: The tenant.
        sample: True when the tenant is answered from the sample book (no ready version).
        current_version: The version answering now: 1, 2... of the tenant's, 0 for the
            sample, None when nothing answers (no ready version and the sample turned off).
        versions: The tenant's versions, newest first, with status, models and errors.
        sample_book: What the sample book is, when it answers.
    """

    tenant: str
    sample: bool
    current_version: int | None
    versions: list[BookVersion]
    sample_book: BookInfo | None = None


class Portfolios:
    """Client books of every tenant.

    Args:
        settings: ``home_dir`` (books and models), ``sample_book``, ``seed``, ``cv_folds``,
            ``book_training_stale_s``.
        store: Where versions are stored.
    """

    def __init__(self, settings: Settings, store: BookStore) -> None:
        self.settings = settings
        self.store = store
        self._books: OrderedDict[tuple[str, int, str], ClientBook] = OrderedDict()

    async def book(self, tenant: str) -> ClientBook:
        """The tenant's current book: its newest ready version, else the sample.

        Raises:
            BookNotFoundError: No ready version and the sample book is turned off.
        """
        info = await self.store.current(tenant)
        if info is None:
            if not self.settings.sample_book:
                raise BookNotFoundError(tenant)
            return sample_book(self.settings)
        return self._built(info)

    async def view(self, tenant: str) -> PortfolioView:
        """The tenant's versions and which one answers now."""
        versions = await self.store.versions(tenant)
        ready = [v.info.version for v in versions if v.status == "ready"]
        on_sample = not ready and self.settings.sample_book
        return PortfolioView(
            tenant=tenant,
            sample=on_sample,
            current_version=max(ready) if ready else 0 if on_sample else None,
            versions=versions,
            sample_book=await asyncio.to_thread(sample_info, self.settings) if on_sample else None,
        )

    async def version(self, tenant: str, version: int) -> BookVersion | None:
        """One of the tenant's versions with its status, None when it has no such version."""
        return next(
            (v for v in await self.store.versions(tenant) if v.info.version == version), None
        )

    async def import_book(
        self,
        tenant: str,
        raw: pd.DataFrame,
        mapping: AnyMapping,
        source: str,
        created_by: str | None = None,
    ) -> BookInfo:
        """Validate and store a new version (all rows or none); its models are pending.

        Raises:
            InvalidInputError: A mapping, id, label or value is unusable (names the column
                or row); nothing is stored.
        """
        fields = check_mapping(mapping)
        frame, columns, label = await asyncio.to_thread(build_book, raw, fields)
        pending = [BookModel(model=name, status="pending") for name in BOOK_MODELS]
        return await self.store.add(
            tenant, frame, columns, label, fields, source, created_by=created_by, models=pending
        )

    async def train_pending(self, tenant: str | None = None) -> list[BookInfo]:
        """Train every version waiting for its models (of one tenant, or all), oldest first.

        Each version is claimed once (a conditional update), trained off the event loop and
        finished: ``ready`` when its models trained or are unavailable, ``failed`` otherwise
        (the previous version keeps answering).

        Returns:
            The versions trained, with their final model status.
        """
        done = []
        stale = self.settings.book_training_stale_s
        while (info := await self.store.claim(tenant, stale_after_s=stale)) is not None:
            models = await asyncio.to_thread(self._train, info)
            if not await self.store.finish(info.tenant, info.version, models, sha256=info.sha256):
                self._discard(info.tenant, models)  # deleted (and maybe re-imported) meanwhile
                continue
            done.append(info.model_copy(update={"models": models}))
        return done

    async def trained(self, tenant: str, version: int, poll_s: float = 1.0) -> BookInfo:
        """The version once its models are trained here or by another process.

        Raises:
            BookNotFoundError: The version is gone (the tenant's books were deleted).
        """
        while True:
            await self.train_pending(tenant)
            stored = await self.version(tenant, version)
            if stored is None:
                raise BookNotFoundError(tenant)
            if stored.status != "training":
                return stored.info
            await asyncio.sleep(poll_s)

    async def delete(self, tenant: str) -> int:
        """Delete the tenant's versions, files and models; returns how many versions."""
        removed = await self.store.delete(tenant)
        for key in [key for key in self._books if key[0] == tenant]:
            del self._books[key]
        return removed

    def card(self, tenant: str, model: BookModel) -> ModelCard | None:
        """The model card of a trained model of the tenant's, None when not trained.

        Raises:
            ModelUnreadableError: The card exists but cannot be read.
        """
        if model.version is None:
            return None
        try:
            return self._registry(tenant).card(model.model, model.version)
        except ModelNotFoundError:
            return None

    def _train(self, info: BookInfo) -> list[BookModel]:
        try:
            frame = self.store.read_frame(info.tenant, info.version, sha256=info.sha256)
        except StorageError as error:  # its file is gone or altered: the version fails
            return [
                BookModel(model=name, status="failed", detail=str(error)) for name in BOOK_MODELS
            ]
        return train_book_models(
            frame,
            info,
            self._registry(info.tenant),
            seed=self.settings.seed,
            folds=self.settings.cv_folds,
        )

    def _discard(self, tenant: str, models: list[BookModel]) -> None:
        """Remove the files of models trained for a version that is gone."""
        registry = self._registry(tenant)
        for model in models:
            if model.version is not None:
                registry.remove(model.model, model.version)

    def _registry(self, tenant: str) -> ModelRegistry:
        return ModelRegistry(self.store.registry_dir(tenant))

    def _built(self, info: BookInfo) -> ClientBook:
        key = (info.tenant, info.version, info.sha256)
        if key in self._books:
            self._books.move_to_end(key)
            return self._books[key]
        book = ClientBook(
            info,
            load_frame=lambda: self.store.read_frame(info.tenant, info.version, sha256=info.sha256),
            load_churn=lambda: self._model(info, "churn"),
            load_anomaly=lambda: self._model(info, "billing-anomaly"),
        )
        self._books[key] = book
        while len(self._books) > BOOKS_KEPT:
            self._books.popitem(last=False)
        return book

    def _model(self, info: BookInfo, name: str) -> Trained[Any]:
        status = info.model(name)
        if status is None or status.status != "ready" or status.version is None:
            reason = status.detail if status and status.detail else "it was not trained"
            raise ModelUnavailableError(name, reason)
        return load_book_model(self._registry(info.tenant), name, status.version)


@asynccontextmanager
async def opened_portfolios(settings: Settings) -> AsyncIterator[Portfolios]:
    """The client books of ``settings``' database and home, for a command-line run.

    Raises:
        StorageError: The database cannot be reached or migrated.
    """
    db = Database(settings.database)
    try:
        await db.migrate()
        yield Portfolios(settings, BookStore(db.engine, settings.home_dir))
    finally:
        await db.close()
