"""Shared fixtures: one trained ML service per test session, in a temporary AIMESH_HOME."""

from pathlib import Path

import pytest

from aimesh.config import Settings
from aimesh.ml.service import MLService
from aimesh.portfolio.book import ClientBook
from aimesh.portfolio.sample import sample_book


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings with a fresh data directory and only the local provider."""
    return Settings(home=tmp_path_factory.mktemp("aimesh-home"), providers=["local"])


@pytest.fixture(scope="session")
def ml(settings: Settings) -> MLService:
    """The ML service; its models are trained on first use and shared by the session."""
    return MLService(settings)


@pytest.fixture(scope="session")
def sample(settings: Settings) -> ClientBook:
    """The sample book; its models are trained on first use and shared by the session."""
    return sample_book(settings)


@pytest.fixture(scope="session")
def default_home() -> Path:
    """The user's data directory, where the 1.1 GB local model file is assembled once."""
    return Settings().home_dir
