"""Unit tests of aimesh.llm never touch the network (unix sockets stay allowed for asyncio)."""

from collections.abc import Iterator

import pytest
from pytest_socket import disable_socket, enable_socket


@pytest.fixture(autouse=True)
def _no_network() -> Iterator[None]:
    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()


@pytest.fixture(autouse=True)
def _no_provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings built in tests must not pick up keys from the environment."""
    for name in (
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "GOOGLE_API_KEY",
        "GEMINI_API_KEY",
        "AIMESH_ANTHROPIC_API_KEY",
        "AIMESH_OPENAI_API_KEY",
        "AIMESH_GOOGLE_API_KEY",
        "AIMESH_OPENAI_BASE_URL",
        "AIMESH_GGUF_PATH",
        "AIMESH_PROVIDERS",
    ):
        monkeypatch.delenv(name, raising=False)
