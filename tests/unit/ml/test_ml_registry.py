from pathlib import Path
from typing import Any

import joblib
import pytest

from aimesh.errors import InvalidInputError, ModelNotFoundError
from aimesh.ml import registry as registry_module
from aimesh.ml.registry import (
    LATEST_FILE,
    MODEL_FILE,
    ModelCard,
    ModelRegistry,
    sha256_file,
)


def card(name: str = "toy", sha: str = "a" * 64) -> ModelCard:
    return ModelCard.new(
        name=name,
        data_sha256=sha,
        dataset="toy.csv",
        target="y",
        features=["x"],
        params={"k": 1},
        metrics={"roc_auc": 0.9},
        evaluation="none",
        model_type="dict",
        n_rows=10,
        training_seconds=0.0,
    )


class Trainer:
    """Counts calls; returns a new toy model each time."""

    def __init__(self, name: str = "toy", sha: str = "a" * 64) -> None:
        self.calls = 0
        self.name = name
        self.sha = sha

    def __call__(self) -> tuple[dict[str, int], ModelCard]:
        self.calls += 1
        return {"weights": self.calls}, card(self.name, self.sha)


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "models")


def test_save_then_load_round_trips(registry: ModelRegistry) -> None:
    saved = card()
    path = registry.save({"weights": 1}, saved)

    model, loaded = registry.load("toy")

    assert model == {"weights": 1}
    assert loaded == saved
    assert path == registry.root / "toy" / saved.version
    assert registry.names() == ["toy"]
    assert registry.card("toy") == saved


def test_latest_version_wins_and_versions_sort_by_time(registry: ModelRegistry) -> None:
    first, second = card(), card()
    registry.save({"weights": 1}, first)
    registry.save({"weights": 2}, second)

    assert registry.versions("toy") == [first.version, second.version]
    assert registry.load("toy")[0] == {"weights": 2}


def test_load_missing_model_raises(registry: ModelRegistry) -> None:
    with pytest.raises(ModelNotFoundError):
        registry.load("absent")


def test_load_gives_exactly_the_version_asked_for(registry: ModelRegistry) -> None:
    first, second = card(), card()
    registry.save({"weights": 1}, first)
    registry.save({"weights": 2}, second)

    model, loaded = registry.load("toy", first.version)

    assert (model, loaded) == ({"weights": 1}, first)
    assert registry.load("toy", second.version)[0] == {"weights": 2}


@pytest.mark.parametrize("version", ["toy-19990101T000000000000Z-aaaaaaaa", "..", ".tmp-x", "a/b"])
def test_load_of_an_absent_version_raises(registry: ModelRegistry, version: str) -> None:
    registry.save({"weights": 1}, card())

    with pytest.raises(ModelNotFoundError, match="no version"):
        registry.load("toy", version)


def test_load_or_train_trains_once_then_loads(registry: ModelRegistry) -> None:
    trainer = Trainer()

    first = registry.load_or_train("toy", trainer)
    second = registry.load_or_train("toy", trainer)

    assert trainer.calls == 1
    assert first.notes == ["no saved model 'toy'; trained one"]
    assert second.notes == []
    assert second.card == first.card and second.model == first.model


@pytest.mark.parametrize("broken", [MODEL_FILE, "card.json"])
def test_unreadable_file_is_retrained_with_a_note(registry: ModelRegistry, broken: str) -> None:
    trainer = Trainer()
    first = registry.load_or_train("toy", trainer)
    (registry.root / "toy" / first.card.version / broken).write_bytes(b"\x00garbage")

    again = registry.load_or_train("toy", trainer)

    assert trainer.calls == 2
    assert again.card.version != first.card.version
    assert len(again.notes) == 1
    assert broken in again.notes[0] and "was unreadable" in again.notes[0]
    assert again.notes[0].endswith("; retrained")


def test_changed_training_data_is_retrained(registry: ModelRegistry) -> None:
    registry.load_or_train("toy", Trainer(sha="a" * 64), data_sha256="a" * 64)
    trainer = Trainer(sha="b" * 64)

    again = registry.load_or_train("toy", trainer, data_sha256="b" * 64)

    assert trainer.calls == 1
    assert again.card.data_sha256 == "b" * 64
    assert "changed" in again.notes[0]
    assert registry.load_or_train("toy", trainer, data_sha256="b" * 64).notes == []


def test_changed_hyper_parameters_are_retrained(registry: ModelRegistry) -> None:
    trainer = Trainer()
    registry.load_or_train("toy", trainer, params={"k": 1})

    again = registry.load_or_train("toy", trainer, params={"k": 2})

    assert trainer.calls == 2
    assert again.notes == ["hyper-parameters of 'toy' changed ({'k': 1} -> {'k': 2}); retrained"]


def test_changed_features_are_retrained(registry: ModelRegistry) -> None:
    trainer = Trainer()
    registry.load_or_train("toy", trainer, features=["x"])

    again = registry.load_or_train("toy", trainer, features=["x", "z"])

    assert trainer.calls == 2
    assert again.notes == ["features of 'toy' changed (['x'] -> ['x', 'z']); retrained"]


def test_crash_while_saving_leaves_previous_model(
    registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.save({"weights": 1}, card())

    def crash(model: Any, stream: Any) -> None:
        stream.write(b"half a model")
        raise KeyboardInterrupt

    monkeypatch.setattr(registry_module.joblib, "dump", crash)
    with pytest.raises(KeyboardInterrupt):
        registry.save({"weights": 2}, card())

    assert registry.load("toy")[0] == {"weights": 1}
    assert len(registry.versions("toy")) == 1
    leftovers = [p.name for p in (registry.root / "toy").iterdir()]
    assert sorted(leftovers) == sorted([LATEST_FILE, registry.versions("toy")[0]])


def test_invalid_names_are_rejected(registry: ModelRegistry) -> None:
    with pytest.raises(InvalidInputError, match="not a valid model name"):
        registry.save({}, card(name="../escape"))


def test_trainer_returning_another_name_is_an_error(registry: ModelRegistry) -> None:
    with pytest.raises(ValueError, match="returned a card named 'other'"):
        registry.load_or_train("toy", Trainer(name="other"))


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"abc")

    assert sha256_file(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_saved_model_is_plain_joblib(registry: ModelRegistry) -> None:
    saved = card()
    registry.save([1, 2], saved)

    assert joblib.load(registry.root / "toy" / saved.version / MODEL_FILE) == [1, 2]
