"""The ML facade tools use: lazily loaded data and models, cached per instance.

Nothing is read or trained at import or construction; each model is loaded from the
registry (``<AIMESH_HOME>/models``) or trained there on first use, then kept in the
instance. Methods are thread-safe (parallel tool calls may share one service).
"""

import re
import threading
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar, cast

import pandas as pd
from pydantic import BaseModel

from aimesh.config import Settings
from aimesh.errors import DataFileError, InvalidInputError
from aimesh.ml.anomaly import (
    AnomalyDetector,
    BillingAnomaly,
    billing_features,
    rank_billing_anomalies,
    score_billing,
    train_billing_detector,
    train_labelled_detector,
)
from aimesh.ml.churn import ChurnModel, new_churn_model, train_churn
from aimesh.ml.portfolio import BOOK_FIELD_NAMES, get_client, load_portfolio
from aimesh.ml.pricing import Elasticity, PriceRecommendation, estimate_elasticity, recommend_price
from aimesh.ml.registry import ModelCard, ModelRegistry, Trained, check_name, sha256_file
from aimesh.ml.tabular import read_csv_file

T = TypeVar("T")

PORTFOLIO_FILE = "telco_churn.csv"
SHUTTLE_FILE = "shuttle_anomaly.csv.gz"
OJ_FILE = "dominicks_oj.csv.gz"

CHURN = "churn"
BILLING_ANOMALY = "billing-anomaly"
SHUTTLE_ANOMALY = "shuttle-anomaly"

PRICE_COLUMN = "monthly_charges"
"""The portfolio's monthly price (USD); churn risk is constrained not to fall as it rises."""

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
    """Data, models and predictions for the tools.

    Args:
        settings: ``data_dir`` (datasets), ``home`` (registry), ``seed``, ``cv_folds``,
            ``price_change_limit``.
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

    def portfolio_source(self) -> DataSource:
        """Source of every portfolio, churn and billing figure."""
        return self.source(PORTFOLIO_FILE)

    def oj_source(self) -> DataSource:
        """Source of the elasticity figures."""
        return self.source(OJ_FILE)

    def portfolio(self) -> pd.DataFrame:
        """The client table, index ``client_id``; shared, so do not modify it.

        See :func:`~aimesh.ml.portfolio.load_portfolio`.

        Raises:
            DataFileError: The portfolio file is unusable.
        """
        return self._cached(
            "portfolio", lambda: load_portfolio(self.settings.data_dir / PORTFOLIO_FILE)
        )

    def billing_book(self) -> pd.DataFrame:
        """The portfolio under client-book field names (``tenure_months``, ``churned``).

        What :func:`~aimesh.ml.anomaly.billing_features` reads; shared, do not modify it.
        """
        return self._cached(
            "billing_book", lambda: self.portfolio().rename(columns=BOOK_FIELD_NAMES)
        )

    def client(self, client_id: str) -> pd.DataFrame:
        """One client's row.

        Raises:
            UnknownClientError: Malformed id or not in the portfolio.
        """
        return get_client(self.portfolio(), client_id)

    def churn(self) -> Trained[ChurnModel]:
        """The portfolio churn model (registry ``churn``), trained on first use.

        Trained on the portfolio file, target ``churn``, with churn risk non-decreasing in
        ``monthly_charges``; retrained when the file's SHA-256 changes.
        """
        return self._cached("churn", self._load_churn)

    def churn_scores(self) -> pd.Series:
        """Churn probability of every client, index ``client_id``, name ``churn_probability``."""

        def score() -> pd.Series:
            portfolio = self.portfolio()
            proba = self.churn().model.predict_proba(portfolio)
            return pd.Series(proba, index=portfolio.index, name="churn_probability")

        return self._cached("churn_scores", score)

    def anomaly(self) -> Trained[AnomalyDetector]:
        """The billing anomaly detector (registry ``billing-anomaly``), trained on first use.

        Fit on :func:`~aimesh.ml.anomaly.billing_features` of :meth:`billing_book`;
        retrained when the portfolio file's SHA-256 or the billing features change.
        """
        return self._cached("anomaly", self._load_anomaly)

    def billing_anomalies(self, limit: int = 10, offset: int = 0) -> list[BillingAnomaly]:
        """The most anomalous billing in the portfolio, most anomalous first.

        Raises:
            InvalidInputError: ``limit`` outside 1-500 or ``offset`` negative.
        """
        detector = self.anomaly().model
        book = self.billing_book()
        scored = self._cached("billing_scores", lambda: score_billing(detector, book))
        return rank_billing_anomalies(detector, book, limit, offset, scored=scored)

    def elasticity(self, brand: int) -> Elasticity:
        """Own-price elasticity of an orange-juice brand (see :func:`estimate_elasticity`).

        Raises:
            InvalidInputError: The brand is not in the data.
        """
        return self._cached(f"elasticity:{brand}", lambda: estimate_elasticity(self._oj(), brand))

    def recommend_price(
        self,
        client_id: str,
        max_change: float | None = None,
        max_churn_increase: float | None = None,
    ) -> PriceRecommendation:
        """Revenue-maximising monthly price of a client (see :func:`recommend_price`).

        Args:
            client_id: Portfolio id.
            max_change: Bound as a fraction (default ``settings.price_change_limit``).
            max_churn_increase: Cap on the churn-probability rise, None for no cap.

        Raises:
            UnknownClientError: Unknown client.
            InvalidInputError: An argument is out of range.
        """
        return recommend_price(
            self.churn().model,
            self.client(client_id),
            price_column=PRICE_COLUMN,
            max_change=self.settings.price_change_limit if max_change is None else max_change,
            max_churn_increase=max_churn_increase,
        )

    def train_churn_csv(
        self, path: Path, target: str = "churn", name: str | None = None
    ) -> ModelCard:
        """Train a churn model on any CSV and save it in the registry.

        Args:
            path: The CSV.
            target: Its two-valued target column.
            name: Registry name; default ``churn`` for the portfolio file (which reserves
                that name and adds the ``monthly_charges`` constraint), else
                ``churn-<file stem>``.

        Returns:
            The saved model's card, with its cross-validated metrics.

        Raises:
            DataFileError: The file is unusable (see :func:`~aimesh.ml.tabular.prepare_tabular`).
            InvalidInputError: ``churn`` requested for another file, or an invalid name.
        """
        is_portfolio = path.resolve() == (self.settings.data_dir / PORTFOLIO_FILE).resolve()
        name = check_name(name or (CHURN if is_portfolio else f"churn-{_slug(path)}"))
        if name == CHURN and not is_portfolio:
            raise InvalidInputError(
                "name", "'churn' is reserved for the portfolio model", "another name, e.g. churn-x"
            )
        frame = read_csv_file(path)
        model, card = train_churn(
            frame,
            target,
            self.settings.seed,
            self.settings.cv_folds,
            monotone_increasing=[PRICE_COLUMN] if is_portfolio else [],
            name=name,
            dataset=path.name,
            data_sha256=sha256_file(path),
        )
        self.registry.save(model, card)
        if name == CHURN:
            with self._lock:
                self._cache.pop("churn", None)
                self._cache.pop("churn_scores", None)
        return card

    def evaluate(self) -> list[EvalRow]:
        """Evaluate every model (training those absent); see :func:`evaluate`."""
        rows = [_card_row(self.churn().card), _card_row(self._shuttle().card)]
        rows.append(_card_row(self.anomaly().card))
        rows += [self._elasticity_row(brand) for brand in sorted(REFERENCE_ELASTICITY)]
        others = [name for name in self.registry.names() if name.startswith(f"{CHURN}-")]
        rows += [_card_row(self.registry.card(name)) for name in others]
        return rows

    def _load_churn(self) -> Trained[ChurnModel]:
        source = self.portfolio_source()
        return self.registry.load_or_train(
            CHURN,
            lambda: train_churn(
                self.portfolio(),
                "churn",
                self.settings.seed,
                self.settings.cv_folds,
                monotone_increasing=[PRICE_COLUMN],
                name=CHURN,
                dataset=source.file,
                data_sha256=source.sha256,
            ),
            data_sha256=source.sha256,
            params=new_churn_model(
                self.settings.seed, self.settings.cv_folds, [PRICE_COLUMN]
            ).get_params(),
        )

    def _load_anomaly(self) -> Trained[AnomalyDetector]:
        source = self.portfolio_source()
        return self.registry.load_or_train(
            BILLING_ANOMALY,
            lambda: train_billing_detector(
                self.billing_book(),
                self.settings.seed,
                name=BILLING_ANOMALY,
                dataset=source.file,
                data_sha256=source.sha256,
            ),
            data_sha256=source.sha256,
            params=AnomalyDetector(seed=self.settings.seed).get_params(),
            features=list(billing_features(self.billing_book()).columns),
        )

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


def evaluate(settings: Settings) -> list[EvalRow]:
    """Evaluate every model: the rows of ``aimesh eval``.

    - ``churn``: 5-fold stratified CV on Telco (``roc_auc``, ``average_precision``,
      ``brier``, ``log_loss``, ``f1``...), from its card.
    - ``shuttle-anomaly``: the anomaly detector fit unsupervised on all Shuttle rows and
      scored against the labels (``roc_auc``, ``average_precision``); no folds, since the
      labels never reach the fit.
    - ``billing-anomaly``: unlabelled; score distribution on the portfolio.
    - ``oj-elasticity-brand1..3``: elasticity, 95% CI, reference and absolute error.
    - every other ``churn-*`` model in the registry, from its card.

    Args:
        settings: Where the data and the registry are.

    Returns:
        One row per model.
    """
    return MLService(settings).evaluate()


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
