"""Persist trained models with their cards, and train them on first use.

Layout under the registry root (``<AIMESH_HOME>/models``)::

    <name>/<version>/model.joblib   the fitted model (joblib)
    <name>/<version>/card.json      its ModelCard
    <name>/LATEST                   the version loaded by default

A version directory is written under a temporary name and renamed into place, and
``LATEST`` is replaced atomically, so a crash never leaves a half-written model visible.
"""

import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Generic, TypeVar

import joblib
from pydantic import BaseModel, Field

from aimesh.errors import InvalidInputError, ModelNotFoundError, ModelUnreadableError

ModelT = TypeVar("ModelT")

MODEL_FILE = "model.joblib"
CARD_FILE = "card.json"
LATEST_FILE = "LATEST"

_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_LIBRARIES = ("numpy", "pandas", "scikit-learn", "lightgbm", "statsmodels")


class ModelCard(BaseModel):
    """What a saved model is, what it was trained on and how well it does.

    Attributes:
        name: Registry name, e.g. ``"churn"``.
        version: Unique, sortable id ``<name>-<UTC timestamp to the microsecond>-<sha8>``.
        dataset: File name of the training data.
        data_sha256: SHA-256 (hex) of that file; a mismatch triggers retraining.
        target: Target column, ``None`` for unsupervised models.
        features: Input feature names in model order.
        params: Hyper-parameters.
        metrics: Evaluation figures (see ``evaluation`` for how they were computed).
        evaluation: How ``metrics`` were computed (e.g. 5-fold stratified CV, seed 42).
        trained_at: Training time, UTC.
        model_type: Class name of the model.
        positive_label: The target label modelled as 1, for classifiers.
        dropped_columns: Columns left out of the features, with the reason.
        n_rows: Training rows.
        training_seconds: Wall time of training including evaluation (s).
        library_versions: Versions of the ML libraries used.
    """

    name: str
    version: str
    dataset: str
    data_sha256: str
    target: str | None
    features: list[str]
    params: dict[str, Any]
    metrics: dict[str, float]
    evaluation: str
    trained_at: datetime
    model_type: str
    positive_label: str | None = None
    dropped_columns: dict[str, str] = Field(default_factory=dict)
    n_rows: int
    training_seconds: float
    library_versions: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def new(cls, *, name: str, data_sha256: str, **fields: Any) -> "ModelCard":
        """Create a card stamped now (UTC) with a fresh version and the library versions.

        Args:
            name: Registry name.
            data_sha256: SHA-256 of the training data; its first 8 hex digits end the version.
            **fields: The other :class:`ModelCard` fields.

        Returns:
            The card.
        """
        now = datetime.now(UTC)
        version = f"{name}-{now:%Y%m%dT%H%M%S%f}Z-{data_sha256[:8]}"
        return cls(
            name=name,
            version=version,
            data_sha256=data_sha256,
            trained_at=now,
            library_versions={lib: metadata.version(lib) for lib in _LIBRARIES},
            **fields,
        )


@dataclass(frozen=True)
class Trained(Generic[ModelT]):
    """A model ready for use.

    Attributes:
        model: The fitted model.
        card: Its card.
        notes: What happened to get it, when not a plain load (trained because absent,
            retrained because unreadable or because the data changed).
    """

    model: ModelT
    card: ModelCard
    notes: list[str] = field(default_factory=list)


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid registry name (it becomes a directory name).

    Raises:
        InvalidInputError: Not 1-64 of lowercase letters, digits, ``.``, ``_``, ``-``,
            starting with a letter or digit.
    """
    if not _NAME.fullmatch(name):
        raise InvalidInputError(
            "name",
            f"{name!r} is not a valid model name",
            "1-64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    return name


def sha256_file(path: Path) -> str:
    """Return the SHA-256 of a file as 64 hex digits (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ModelRegistry:
    """Model store on the local disk.

    Args:
        root: Directory of the registry, e.g. ``settings.home_dir / "models"``; created on
            the first save.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def save(self, model: Any, card: ModelCard) -> Path:
        """Store a model and its card as a new version and make it the latest.

        Args:
            model: Any joblib-serialisable fitted model.
            card: Its card; ``card.name`` is the registry name.

        Returns:
            The version directory.

        Raises:
            InvalidInputError: The card's name is not a valid registry name.
        """
        home = self._model_dir(card.name)
        home.mkdir(parents=True, exist_ok=True)
        staging = home / f".tmp-{card.version}-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            with (staging / MODEL_FILE).open("wb") as stream:
                joblib.dump(model, stream)
                _flush(stream)
            _write_text(staging / CARD_FILE, card.model_dump_json(indent=2))
            final = home / card.version
            staging.rename(final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        _write_text(home / LATEST_FILE, card.version)
        return final

    def load(self, name: str, version: str | None = None) -> tuple[Any, ModelCard]:
        """Load a version of a model, by default the latest.

        Args:
            name: Registry name.
            version: The card version to load exactly (e.g. the one a client book
                records); None for the latest.

        Returns:
            ``(model, card)``.

        Raises:
            ModelNotFoundError: No saved model under this name, or not this version.
            ModelUnreadableError: The pointer, card or model file cannot be read.
        """
        version_dir = (
            self._latest_dir(name) if version is None else self._version_dir(name, version)
        )
        card_path = version_dir / CARD_FILE
        try:
            card = ModelCard.model_validate_json(card_path.read_bytes())
        except (OSError, ValueError) as exc:
            raise ModelUnreadableError(card_path, _short(exc)) from exc
        model_path = version_dir / MODEL_FILE
        try:
            model = joblib.load(model_path)
        except Exception as exc:  # unpickling can fail with almost any exception type
            raise ModelUnreadableError(model_path, _short(exc)) from exc
        return model, card

    def card(self, name: str, version: str | None = None) -> ModelCard:
        """Read the card of a version of a model (default: the latest) without the model.

        Raises:
            ModelNotFoundError: No saved model under this name, or not this version.
            ModelUnreadableError: The card cannot be read.
        """
        version_dir = (
            self._latest_dir(name) if version is None else self._version_dir(name, version)
        )
        card_path = version_dir / CARD_FILE
        try:
            return ModelCard.model_validate_json(card_path.read_bytes())
        except (OSError, ValueError) as exc:
            raise ModelUnreadableError(card_path, _short(exc)) from exc

    def remove(self, name: str, version: str) -> None:
        """Delete one saved version of a model (nothing when it is absent).

        ``LATEST`` is left as it is: a caller that removes the latest version loads by
        version, as client books do.
        """
        if _is_version(version):
            shutil.rmtree(self._model_dir(name) / version, ignore_errors=True)

    def names(self) -> list[str]:
        """Return the names of the saved models, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(path.parent.name for path in self.root.glob(f"*/{LATEST_FILE}"))

    def versions(self, name: str) -> list[str]:
        """Return the saved versions of a model, oldest first."""
        home = self._model_dir(name)
        if not home.is_dir():
            return []
        return sorted(path.name for path in home.iterdir() if (path / CARD_FILE).is_file())

    def load_or_train(
        self,
        name: str,
        train: Callable[[], tuple[ModelT, ModelCard]],
        *,
        data_sha256: str | None = None,
        params: dict[str, Any] | None = None,
        features: list[str] | None = None,
    ) -> Trained[ModelT]:
        """Load a model, training and saving it first when needed.

        Trains when no model is saved, when the saved one is unreadable, or when the card
        differs from ``data_sha256`` (the training data changed), ``params`` (the
        hyper-parameters, e.g. the seed, changed) or ``features`` (the inputs the code
        derives, e.g. billing features, changed), each checked only when given.

        Args:
            name: Registry name.
            train: Returns a fitted model and its card (whose name must be ``name``).
            data_sha256: SHA-256 of the current training data.
            params: The hyper-parameters the model should have (as in its card).
            features: The input features the model should have (as in its card).

        Returns:
            The model, its card and notes on any (re)training.

        Raises:
            ValueError: ``train`` returned a card with another name.
        """
        try:
            model, card = self.load(name)
        except ModelNotFoundError:
            note = f"no saved model {name!r}; trained one"
        except ModelUnreadableError as exc:
            note = f"model file {exc.path} was unreadable ({exc.reason}); retrained"
        else:
            stale = _staleness(card, data_sha256, params, features)
            if stale is None:
                return Trained(model, card)
            note = f"{stale}; retrained"
        model, card = train()
        if card.name != name:
            raise ValueError(f"trainer for {name!r} returned a card named {card.name!r}")
        self.save(model, card)
        return Trained(model, card, [note])

    def _model_dir(self, name: str) -> Path:
        return self.root / check_name(name)

    def _latest_dir(self, name: str) -> Path:
        pointer = self._model_dir(name) / LATEST_FILE
        try:
            version = pointer.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise ModelNotFoundError(f"no saved model {name!r} in {self.root}") from None
        except (OSError, ValueError) as exc:
            raise ModelUnreadableError(pointer, _short(exc)) from exc
        if not _is_version(version):
            raise ModelUnreadableError(pointer, f"invalid version {version[:80]!r}")
        return pointer.parent / version

    def _version_dir(self, name: str, version: str) -> Path:
        path = self._model_dir(name) / version
        if not _is_version(version) or not (path / CARD_FILE).is_file():
            raise ModelNotFoundError(
                f"no version {version[:80]!r} of model {name!r} in {self.root}"
            )
        return path


def _is_version(version: str) -> bool:
    return bool(version) and Path(version).name == version and not version.startswith(".")


def _staleness(
    card: ModelCard,
    data_sha256: str | None,
    params: dict[str, Any] | None,
    features: list[str] | None,
) -> str | None:
    if data_sha256 is not None and card.data_sha256 != data_sha256:
        old, new = card.data_sha256[:12], data_sha256[:12]
        return f"training data of {card.name!r} changed (sha256 {old} -> {new})"
    if params is not None and card.params != params:
        return f"hyper-parameters of {card.name!r} changed ({card.params} -> {params})"
    if features is not None and card.features != features:
        return f"features of {card.name!r} changed ({card.features} -> {features})"
    return None


def _flush(stream: Any) -> None:
    stream.flush()
    os.fsync(stream.fileno())


def _write_text(path: Path, text: str) -> None:
    """Write a file atomically: a temporary sibling, flushed to disk, renamed over it."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with temporary.open("w", encoding="utf-8") as stream:
            stream.write(text)
            _flush(stream)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
