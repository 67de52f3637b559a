"""The sample book: the packaged Telco table, served to a tenant that has imported none.

The Telco file has no client ids, so the sample numbers its clients by row (``C00001`` is
the first row); lookups accept any case and missing zero padding (``c42`` is ``C00042``).
It is imported through the same mapping and typing as a tenant's file, and its models
train on first use into ``<home>/books/sample/models`` (retrained when the file, the seed
or the folds change). Everything built from it says ``sample: true``.
"""

import hashlib
import re
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from aimesh.config import Settings
from aimesh.errors import (
    DataFileError,
    ModelNotFoundError,
    ModelUnavailableError,
    ModelUnreadableError,
    UnknownClientError,
)
from aimesh.ml.registry import ModelRegistry, Trained
from aimesh.portfolio.book import BookInfo, BookModel, ClientBook
from aimesh.portfolio.importer import build_book
from aimesh.portfolio.reader import read_table
from aimesh.portfolio.training import BOOK_MODELS, load_book_model, train_book_models

SAMPLE_FILE = "telco_churn.csv"
"""The sample's file in ``data_dir``."""

SAMPLE_TENANT = "sample"
"""The tenant the sample book's info names."""

SAMPLE_MAPPING = {
    "client_id": "client_id",
    "churned": "churn",
    "monthly_charges": "monthly_charges",
    "tenure_months": "tenure",
    "total_charges": "total_charges",
}
"""How the Telco columns map to the book's fields (``client_id`` is added by row)."""

MAX_SAMPLE_ROWS = 100_000
"""A bound on the sample file's rows (it has 7,043)."""

_CLIENT_ID = re.compile(r"[cC](\d{1,9})")


def sample_client_id(position: int) -> str:
    """The id of the sample client in 0-based row ``position`` (0 -> ``"C00001"``)."""
    return f"C{position + 1:05d}"


def normalize_sample_id(value: str) -> str:
    """The canonical form of a sample client id (``" c42 "`` -> ``"C00042"``).

    Raises:
        UnknownClientError: Not ``C`` followed by digits, or ``C0``.
    """
    match = _CLIENT_ID.fullmatch(value.strip())
    if match is None or int(match.group(1)) == 0:
        raise UnknownClientError(value)
    return sample_client_id(int(match.group(1)) - 1)


def sample_book(settings: Settings) -> ClientBook:
    """The sample book of these settings' data and home (one per process and settings).

    Raises:
        DataFileError: The sample file is missing or unusable.
    """
    return _sample(settings.data_dir, settings.home_dir, settings.seed, settings.cv_folds)[0]


def sample_info(settings: Settings) -> BookInfo:
    """What the sample book is, with its models' status now (``pending`` until first use).

    Raises:
        DataFileError: The sample file is missing or unusable.
    """
    book, models = _sample(settings.data_dir, settings.home_dir, settings.seed, settings.cv_folds)
    return book.info.model_copy(update={"models": models.status()})


@lru_cache(maxsize=2)
def load_sample(data_dir: Path) -> tuple[pd.DataFrame, BookInfo]:
    """The sample's table and what it is, read and typed as an import would (cached).

    Raises:
        DataFileError: The sample file is missing or unusable.
    """
    path = data_dir / SAMPLE_FILE
    try:
        data = path.read_bytes()
    except OSError as error:
        reason = f"cannot read {path} ({error.strerror})"
        raise DataFileError("data_dir", reason, "a data_dir (AIMESH_DATA_DIR) with it") from None
    raw = read_table(data, SAMPLE_FILE, max_rows=MAX_SAMPLE_ROWS)
    raw.insert(0, "client_id", [sample_client_id(i) for i in range(len(raw))])
    frame, columns, label = build_book(raw, SAMPLE_MAPPING)
    info = BookInfo(
        tenant=SAMPLE_TENANT,
        version=0,
        sample=True,
        rows=len(frame),
        columns=columns,
        label=label,
        source=SAMPLE_FILE,
        sha256=hashlib.sha256(data).hexdigest(),
    )
    return frame, info


@lru_cache(maxsize=4)
def _sample(data_dir: Path, home: Path, seed: int, folds: int) -> tuple[ClientBook, "_Models"]:
    frame, info = load_sample(data_dir)
    registry = ModelRegistry(home / "books" / SAMPLE_TENANT / "models")
    models = _Models(frame, info, registry, seed, folds)
    book = ClientBook(
        info,
        load_frame=lambda: frame,
        load_churn=lambda: models.load("churn"),
        load_anomaly=lambda: models.load("billing-anomaly"),
        normalize_id=normalize_sample_id,
    )
    return book, models


class _Models:
    """The sample's models: loaded when trained on this file, seed and folds, else trained."""

    def __init__(
        self, frame: pd.DataFrame, info: BookInfo, registry: ModelRegistry, seed: int, folds: int
    ) -> None:
        self.frame = frame
        self.info = info
        self.registry = registry
        self.seed = seed
        self.folds = folds
        self._lock = threading.Lock()

    def status(self) -> list[BookModel]:
        """The models as trained so far (``pending``: trained on first use)."""
        return [
            self._saved(name) or BookModel(model=name, status="pending") for name in BOOK_MODELS
        ]

    def load(self, name: str) -> Trained[Any]:
        """The model ``name``, training both models first when either is stale.

        Raises:
            ModelUnavailableError: The sample cannot have it (its training failed).
        """
        with self._lock:
            saved = self._saved(name)
            if saved is None:
                trained = train_book_models(
                    self.frame, self.info, self.registry, seed=self.seed, folds=self.folds
                )
                saved = next(m for m in trained if m.model == name)
            if saved.status != "ready" or saved.version is None:
                raise ModelUnavailableError(name, saved.detail or "training failed")
            return load_book_model(self.registry, name, saved.version)

    def _saved(self, name: str) -> BookModel | None:
        try:
            card = self.registry.card(name)
        except (ModelNotFoundError, ModelUnreadableError):  # train (again)
            return None
        params = card.params
        stale = (
            params.get("seed") != self.seed
            or params.get("calibration_folds", self.folds) != self.folds
        )
        if card.data_sha256 != self.info.sha256 or stale:
            return None
        return BookModel(model=name, version=card.version, status="ready", metrics=card.metrics)
