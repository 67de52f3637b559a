"""A tenant's client book: one version of its client table, its schema and its models.

A :class:`ClientBook` is what every tool, scoring route and CLI command reads. It is built
by :mod:`aimesh.portfolio.books` either from an imported version (rows in a Parquet file,
metadata in the database, models in the tenant's registry) or from the packaged sample
(the Telco table, ``sample=True``). The table and the models load lazily, on first use, and
are then kept; a book is immutable once built, so one run reads one consistent version.
"""

import threading
from collections.abc import Callable
from typing import Any, Literal, TypeVar, cast

import pandas as pd
from pydantic import BaseModel, Field

from aimesh.errors import UnknownClientError
from aimesh.ml.anomaly import AnomalyDetector
from aimesh.ml.churn import ChurnModel
from aimesh.ml.registry import Trained

T = TypeVar("T")

CLIENT_ID = "client_id"
"""Name of the book's index: the MSP's own client id."""

FieldName = Literal[
    "client_id", "name", "churned", "monthly_charges", "tenure_months", "total_charges"
]
"""The columns a mapping can name; every other column is a feature."""

ColumnType = Literal["number", "category", "text"]
"""Inferred column types: ``number`` (float64; NaN missing), ``category`` (strings with at most
:data:`MAX_CATEGORIES` distinct values, listed in the schema), ``text`` (strings with more)."""

MAX_CATEGORIES = 50
"""Most distinct values of a ``category`` column (more makes it ``text``)."""


class Column(BaseModel):
    """One column of a book.

    Attributes:
        name: Column name in the book (a mapped field's canonical name, e.g. ``churned``).
        type: Inferred type.
        field: The field it was mapped to, None for a feature column.
        source: Column name in the imported file.
        values: The distinct values of a ``category`` column, sorted, else None.
        min: Smallest value of a ``number`` column, else None.
        max: Largest value of a ``number`` column, else None.
        missing: Rows with no value.
    """

    name: str
    type: ColumnType
    field: FieldName | None = None
    source: str
    values: list[str] | None = None
    min: float | None = None
    max: float | None = None
    missing: int = 0


class Label(BaseModel):
    """The past churn outcomes of a book (its ``churned`` column).

    Attributes:
        column: The file's column mapped to ``churned``.
        positives: Rows that churned.
        negatives: Rows that stayed.
    """

    column: str
    positives: int
    negatives: int


ModelStatus = Literal["pending", "training", "ready", "failed", "unavailable"]


class BookModel(BaseModel):
    """One model of a book version.

    Attributes:
        model: ``churn`` or ``billing-anomaly``.
        version: The model card's version once trained, else None.
        status: ``pending`` (queued), ``training``, ``ready``, ``failed`` (``detail`` says
            why; the previous version keeps answering) or ``unavailable`` (the book cannot
            have this model; ``detail`` says why, e.g. "no churn outcomes: 5000 rows, 0
            labelled").
        metrics: The card's metrics (churn: 5-fold CV ``roc_auc``, ``average_precision``...).
        detail: Why it failed or is unavailable.
    """

    model: str
    version: str | None = None
    status: ModelStatus
    metrics: dict[str, float] = Field(default_factory=dict)
    detail: str | None = None


class BookInfo(BaseModel):
    """What a book version is (the JSON of ``aimesh portfolio import --json``).

    Attributes:
        tenant: Owner.
        version: 1, 2, ... per tenant; 0 for the sample book.
        sample: True for the packaged sample book (not the tenant's own data).
        rows: Clients.
        columns: Every column with its type and mapped field.
        label: Churn outcomes, None when the book has none.
        models: The version's models and their status.
        source: File name (or ``json``) the rows came from.
        sha256: SHA-256 (hex) of the stored rows.
    """

    tenant: str
    version: int
    sample: bool = False
    rows: int
    columns: list[Column]
    label: Label | None = None
    models: list[BookModel] = Field(default_factory=list)
    source: str = ""
    sha256: str = ""

    def column(self, name: str) -> Column | None:
        """The column called ``name``, None if the book has none."""
        return next((c for c in self.columns if c.name == name), None)

    def model(self, name: str) -> BookModel | None:
        """The status of model ``name``, None if the book lists none."""
        return next((m for m in self.models if m.model == name), None)


class ClientBook:
    """One version of a tenant's client table with its models, loaded lazily.

    Args:
        info: What the version is.
        load_frame: Returns the table: index ``client_id`` (strings), one column per
            :class:`Column` but the id, named by field for mapped columns: ``churned``
            float64 1.0 churned / 0.0 stayed / NaN unknown, ``monthly_charges``,
            ``tenure_months`` and ``total_charges`` float64, ``name`` strings; feature
            columns float64 (``number``) or strings with NaN for missing.
        load_churn: Returns the version's churn model; raises
            :class:`~aimesh.errors.ModelUnavailableError` when the book has none.
        load_anomaly: Returns the version's billing-anomaly detector; raises
            :class:`~aimesh.errors.ModelUnavailableError` when the book has none.
        normalize_id: Maps a client id as a person wrote it to the book's form (the
            sample's ``c42`` -> ``C00042``); default: strip blanks.

    Thread-safe: parallel tool calls may share one book.
    """

    def __init__(
        self,
        info: BookInfo,
        load_frame: Callable[[], pd.DataFrame],
        load_churn: Callable[[], Trained[ChurnModel]],
        load_anomaly: Callable[[], Trained[AnomalyDetector]],
        normalize_id: Callable[[str], str] = str.strip,
    ) -> None:
        self.info = info
        self._loaders: dict[str, Callable[[], Any]] = {
            "frame": load_frame,
            "churn": load_churn,
            "anomaly": load_anomaly,
        }
        self._normalize_id = normalize_id
        self._lock = threading.RLock()
        self._cache: dict[str, Any] = {}

    @property
    def tenant(self) -> str:
        """The book's tenant."""
        return self.info.tenant

    @property
    def version(self) -> int:
        """The book version (0 for the sample)."""
        return self.info.version

    @property
    def sample(self) -> bool:
        """True for the packaged sample book."""
        return self.info.sample

    def frame(self) -> pd.DataFrame:
        """The client table (shared: do not modify it)."""
        return self.cached("frame", self._loaders["frame"])

    def churn(self) -> Trained[ChurnModel]:
        """The churn model of this version.

        Raises:
            ModelUnavailableError: The book has no churn model (no outcomes, one class...).
        """
        return self.cached("churn", self._loaders["churn"])

    def anomaly(self) -> Trained[AnomalyDetector]:
        """The billing-anomaly detector of this version.

        Raises:
            ModelUnavailableError: The book has no detector (no ``monthly_charges``).
        """
        return self.cached("anomaly", self._loaders["anomaly"])

    def normalize_id(self, client_id: str) -> str:
        """A client id as a person wrote it, in the book's form (the sample's c42 -> C00042).

        Raises:
            UnknownClientError: It cannot be an id of this book (the sample's ids are
                ``C`` and digits).
        """
        return self._normalize_id(client_id)

    def lookup(self, client_id: str) -> str:
        """The id of a client of this book, as the index holds it.

        Raises:
            UnknownClientError: The id is not in this book.
        """
        frame = self.frame()
        key = self.normalize_id(client_id) if isinstance(client_id, str) else None
        if key is None or key not in frame.index:
            example = str(frame.index[0]) if len(frame) else "an id of your book"
            raise UnknownClientError(str(client_id), example)
        return key

    def ids(self) -> frozenset[str]:
        """Every client id of this book, as the index holds them (cached)."""
        return self.cached("ids", lambda: frozenset(map(str, self.frame().index)))

    def cached(self, key: str, build: Callable[[], T]) -> T:
        """``build()`` once per book (thread-safe): derived tables such as scores."""
        with self._lock:
            if key not in self._cache:
                self._cache[key] = build()
            return cast(T, self._cache[key])
