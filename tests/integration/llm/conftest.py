"""Fixtures of the provider-chain tests: the wire-level fake providers (``fake_providers``)."""

from collections.abc import Iterator

import pytest

from tests.wire.fake_providers import FakeProviders


def _forget_shared_async_clients() -> None:
    """Make the next ``ChatAnthropic`` build a new async HTTP client.

    langchain-anthropic shares one pooled async client per (base URL, timeout) in the
    process (an ``lru_cache``); its connections belong to the event loop that opened them,
    and pytest-asyncio gives each test its own loop, so a later test would write through a
    closed loop ("Event loop is closed", raised as a connection error). langchain-openai
    builds a client per model when the timeout is an ``httpx.Timeout``; google-genai keeps
    one aiohttp session per loop.
    """
    from langchain_anthropic import _client_utils

    _client_utils._get_default_async_httpx_client.cache_clear()


@pytest.fixture(scope="session")
def fake_provider_server() -> Iterator[FakeProviders]:
    """The fake provider server of the test session (use ``fake_providers`` in tests)."""
    server = FakeProviders().start()
    yield server
    server.stop()


@pytest.fixture
def fake_providers(fake_provider_server: FakeProviders) -> Iterator[FakeProviders]:
    """The fake provider server, emptied for this test.

    At teardown the test fails if any request was unscripted (or hit an unknown path) or
    any scripted item was not used.
    """
    server = fake_provider_server
    server.reset()
    _forget_shared_async_clients()
    server.disconnect()  # the forgotten clients' kept-alive connections
    yield server
    errors, leftover = list(server.errors), server.leftover()
    server.reset()
    assert not errors, f"fake providers got unexpected requests: {errors}"
    assert not leftover, f"fake providers: scripted items never requested: {leftover}"
