"""Client books for tests: the Telco table shaped as a book, and books trained from frames."""

import hashlib
from pathlib import Path

import pandas as pd

from aimesh.config import REPO_DATA_DIR
from aimesh.errors import ModelUnavailableError
from aimesh.ml.registry import ModelRegistry, Trained
from aimesh.ml.service import BILLING_ANOMALY, CHURN
from aimesh.portfolio.book import (
    CLIENT_ID,
    MAX_CATEGORIES,
    BookInfo,
    ClientBook,
    Column,
    FieldName,
    Label,
)
from aimesh.portfolio.sample import load_sample, normalize_sample_id
from aimesh.portfolio.training import load_book_model, train_book_models

FIELDS: set[str] = {"name", "churned", "monthly_charges", "tenure_months", "total_charges"}


def telco_frame(rows: int | None = None) -> pd.DataFrame:
    """The Telco table as a book's frame: ids C00001.. by row, churned 1.0/0.0, numbers float."""
    frame = load_sample(REPO_DATA_DIR)[0]
    return frame.iloc[:rows].copy() if rows else frame.copy()


def book_info(
    frame: pd.DataFrame,
    *,
    tenant: str = "acme",
    version: int = 1,
    sample: bool = False,
    source: str = "book.csv",
) -> BookInfo:
    """The schema of a frame as the importer describes it (types, values, ranges, label)."""
    columns = [Column(name=CLIENT_ID, type="text", field=CLIENT_ID, source=CLIENT_ID)]
    columns += [_column(str(name), frame[name]) for name in frame.columns]
    label = None
    if "churned" in frame.columns:
        churned = frame["churned"]
        label = Label(
            column="churned",
            positives=int((churned == 1).sum()),
            negatives=int((churned == 0).sum()),
        )
    digest = hashlib.sha256(pd.util.hash_pandas_object(frame).to_numpy().tobytes())
    return BookInfo(
        tenant=tenant,
        version=version,
        sample=sample,
        rows=len(frame),
        columns=columns,
        label=label,
        source=source,
        sha256=digest.hexdigest(),
    )


def trained_book(
    frame: pd.DataFrame, info: BookInfo, root: Path, *, seed: int = 42, folds: int = 3
) -> ClientBook:
    """Train the book's models into a registry under ``root`` and open the book on them."""
    registry = ModelRegistry(root)
    info = info.model_copy(
        update={"models": train_book_models(frame, info, registry, seed=seed, folds=folds)}
    )
    return ClientBook(
        info,
        lambda: frame,
        lambda: _load(registry, info, CHURN),
        lambda: _load(registry, info, BILLING_ANOMALY),
        normalize_id=normalize_sample_id if info.sample else str.strip,
    )


def _load(registry: ModelRegistry, info: BookInfo, name: str) -> Trained:
    model = info.model(name)
    if model is None or model.status != "ready" or model.version is None:
        raise ModelUnavailableError(name, model.detail if model and model.detail else "none")
    return load_book_model(registry, name, model.version)


def _column(name: str, values: pd.Series) -> Column:
    field: FieldName | None = name if name in FIELDS else None  # type: ignore[assignment]
    present = values.dropna()
    if pd.api.types.is_numeric_dtype(values):
        return Column(
            name=name,
            type="number",
            field=field,
            source=name,
            min=float(present.min()) if len(present) else None,
            max=float(present.max()) if len(present) else None,
            missing=len(values) - len(present),
        )
    category = present.nunique() <= MAX_CATEGORIES
    return Column(
        name=name,
        type="category" if category else "text",
        field=field,
        source=name,
        values=sorted(str(v) for v in present.unique()) if category else None,
        missing=len(values) - len(present),
    )
