"""The models beside the client books: elasticities, the Shuttle benchmark, any CSV's churn.

Nothing is read or trained at import or construction; each model is loaded from the
registry (``<AIMESH_HOME>/models``) or trained there on first use, then kept in the
instance. Methods are thread-safe. The client books' own models live in
:mod:`aimesh.portfolio`.
"""

import re
import threading
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar, cast

import pandas as pd
from pydantic import BaseModel

from aimesh.config import Settings
from aimesh.errors import DataFileError, InvalidInputError
from aimesh.ml.anomaly import AnomalyDetector, train_labelled_detector
from aimesh.ml.churn import train_churn
from aimesh.ml.pricing import Elasticity, estimate_elasticity
from aimesh.ml.registry import ModelCard, ModelRegistry, Trained, check_name, sha256_file
from aimesh.ml.tabular import read_csv_file

T = TypeVar("T")

SHUTTLE_FILE = "shuttle_anomaly.csv.gz"
OJ_FILE = "dominicks_oj.csv.gz"

CHURN = "churn"
BILLING_ANOMALY = "billing-anomaly"
SHUTTLE_ANOMALY = "shuttle-anomaly"

REFERENCE_ELASTICITY = {1: -2.48, 2: -1.40, 3: -2.78}
"""Published-style reference elasticities of OJ brands 1-3 (data/README.md of the shared data)."""


class DataSource(BaseModel):
    """A data file a result came from.

    Attributes:
        file: File name.
        sha256: SHA-256 of its bytes (hex).
    """

    file: str
    sha256: str

    def __str__(self) -> str:
        """Short citation, e.g. ``telco_churn.csv (sha256 1a2b3c4d5e6f)``."""
        return f"{self.file} (sha256 {self.sha256[:12]})"


class EvalRow(BaseModel):
    """One model's evaluation.

    Attributes:
        model: Registry name or evaluation name.
        version: Model version (or estimator and data hash for the elasticities).
        dataset: Data file evaluated on.
        metrics: Metric name -> value (see each model's card ``evaluation``).
        evaluation: How the metrics were computed.
    """

    model: str
    version: str
    dataset: str
    metrics: dict[str, float]
    evaluation: str


class MLService:
    """Elasticities, the Shuttle benchmark detector and churn models of any CSV.

    Args:
        settings: ``data_dir`` (datasets), ``home`` (registry), ``seed``, ``cv_folds``.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.RLock()
        self._cache: dict[str, Any] = {}

    @cached_property
    def registry(self) -> ModelRegistry:
        """The model registry under ``<home>/models``."""
        return ModelRegistry(self.settings.home_dir / "models")

    def source(self, file: str) -> DataSource:
        """The file name and SHA-256 of a dataset in ``data_dir`` (hashed once).

        Raises:
            DataFileError: The file does not exist.
        """

        def fingerprint() -> DataSource:
            path = self.settings.data_dir / file
            if not path.is_file():
                raise DataFileError(
                    "path", f"{path} does not exist", "a data_dir (AIMESH_DATA_DIR) with it"
                )
            return DataSource(file=file, sha256=sha256_file(path))

        return self._cached(f"source:{file}", fingerprint)

    def oj_source(self) -> DataSource:
        """Source of the elasticity figures."""
        return self.source(OJ_FILE)

    def elasticity(self, brand: int) -> Elasticity:
        """Own-price elasticity of an orange-juice brand (see :func:`estimate_elasticity`).

        Raises:
            InvalidInputError: The brand is not in the data.
        """
        return self._cached(f"elasticity:{brand}", lambda: estimate_elasticity(self._oj(), brand))

    def train_churn_csv(
        self, path: Path, target: str = "churn", name: str | None = None
    ) -> ModelCard:
        """Train a churn model on any CSV and save it in the registry.

        An evaluation of the file: agents answer from the client books, not these models.

        Args:
            path: The CSV.
            target: Its two-valued target column.
            name: Registry name, ``churn-`` and a name; default ``churn-<file stem>``.

        Returns:
            The saved model's card, with its cross-validated metrics.

        Raises:
            DataFileError: The file is unusable (see :func:`~aimesh.ml.tabular.prepare_tabular`).
            InvalidInputError: An invalid name, or one not starting with ``churn-``.
        """
        name = check_name(name or f"{CHURN}-{_slug(path)}")
        if not name.startswith(f"{CHURN}-"):
            raise InvalidInputError("name", f"{name!r} does not start with 'churn-'", "churn-x")
        frame = read_csv_file(path)
        model, card = train_churn(
            frame,
            target,
            self.settings.seed,
            self.settings.cv_folds,
            name=name,
            dataset=path.name,
            data_sha256=sha256_file(path),
        )
        self.registry.save(model, card)
        return card

    def evaluate(self, cards: Sequence[ModelCard] = ()) -> list[EvalRow]:
        """Evaluate every model (training those absent); see :func:`evaluate`."""
        rows = [*map(_card_row, cards), _card_row(self._shuttle().card)]
        rows += [self._elasticity_row(brand) for brand in sorted(REFERENCE_ELASTICITY)]
        others = [name for name in self.registry.names() if name.startswith(f"{CHURN}-")]
        rows += [_card_row(self.registry.card(name)) for name in others]
        return rows

    def _shuttle(self) -> Trained[AnomalyDetector]:
        source = self.source(SHUTTLE_FILE)

        def train() -> tuple[AnomalyDetector, ModelCard]:
            data = read_csv_file(self.settings.data_dir / SHUTTLE_FILE)
            return train_labelled_detector(
                data,
                "anomaly",
                self.settings.seed,
                name=SHUTTLE_ANOMALY,
                dataset=source.file,
                data_sha256=source.sha256,
            )

        return self.registry.load_or_train(
            SHUTTLE_ANOMALY,
            train,
            data_sha256=source.sha256,
            params=AnomalyDetector(seed=self.settings.seed).get_params(),
        )

    def _oj(self) -> pd.DataFrame:
        return self._cached("oj", lambda: read_csv_file(self.settings.data_dir / OJ_FILE))

    def _elasticity_row(self, brand: int) -> EvalRow:
        estimate = self.elasticity(brand)
        source = self.oj_source()
        reference = REFERENCE_ELASTICITY[brand]
        return EvalRow(
            model=f"oj-elasticity-brand{brand}",
            version=f"ols-store-fe-{source.sha256[:8]}",
            dataset=source.file,
            metrics={
                "elasticity": estimate.elasticity,
                "ci_low": estimate.ci_low,
                "ci_high": estimate.ci_high,
                "reference": reference,
                "abs_error": abs(estimate.elasticity - reference),
                "n_obs": float(estimate.n_obs),
            },
            evaluation=f"{estimate.method}; 95% CI; reference from the data README",
        )

    def _cached(self, key: str, build: Callable[[], T]) -> T:
        with self._lock:
            if key not in self._cache:
                self._cache[key] = build()
            return cast(T, self._cache[key])


def evaluate(settings: Settings, cards: Sequence[ModelCard] = ()) -> list[EvalRow]:
    """Evaluate every model: the rows of ``aimesh eval``.

    - ``cards``: models evaluated elsewhere, from their cards (``aimesh eval`` gives the
      sample book's: churn with 5-fold stratified CV ``roc_auc``, ``average_precision``,
      ``brier``..., and the billing detector's unlabelled score distribution).
    - ``shuttle-anomaly``: the anomaly detector fit unsupervised on all Shuttle rows and
      scored against the labels (``roc_auc``, ``average_precision``); no folds, since the
      labels never reach the fit.
    - ``oj-elasticity-brand1..3``: elasticity, 95% CI, reference and absolute error.
    - every ``churn-*`` model in the registry (``aimesh train``), from its card.

    Args:
        settings: Where the data and the registry are.
        cards: Cards of models to list first.

    Returns:
        One row per model.
    """
    return MLService(settings).evaluate(cards)


def _card_row(card: ModelCard) -> EvalRow:
    return EvalRow(
        model=card.name,
        version=card.version,
        dataset=card.dataset,
        metrics=card.metrics,
        evaluation=card.evaluation,
    )


def _slug(path: Path) -> str:
    stem = path.name.split(".")[0].lower()
    return re.sub(r"[^a-z0-9]+", "-", stem).strip("-") or "data"
